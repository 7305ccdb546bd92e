//! The ramp-up at work, from store jobs (so it survives restarts and runs once across
//! replicas):
//!
//! - `enforcement`, on each date of the accounts' schedules (`enforce_from`,
//!   `min_severity_from`): one `promote` job per open informational issue of an account now
//!   enforced, the backfill (stored findings without a group are planned again: those that now
//!   count open their issue, through the same pipeline as any finding), then the next date;
//! - `promote`: one issue leaves ramp-up (the state machine's `Enforced` event);
//! - `settle`: a settle delay is over; the group's findings are planned again, and open an
//!   issue only if they still count.

use chrono::{DateTime, Utc};

use super::{JobError, JobOutput, Postponed, Run};
use crate::app::App;
use crate::config::{Config, Mode};
use crate::domain::GroupKey;
use crate::domain::lifecycle::Event;
use crate::store::{ChangeSet, GroupStatus, GroupWrite, Job, NewJob};

/// The store key holding the instant the last `enforcement` run applied.
pub const LAST_RUN: &str = "enforcement:last";

/// Every instant any account's schedule (or the defaults') changes something, in order.
pub fn schedule_dates(config: &Config) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = config
        .settings
        .accounts
        .values()
        .chain(std::iter::once(&config.settings.defaults))
        .flat_map(|a| a.schedule.dates())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// When the `enforcement` job should run, given the instant the last run applied (`last`):
/// now, when a date came since (or ever, on the first start) that no run applied; else the
/// next date; `None` without any date to come. Pure.
pub fn enforcement_due(
    config: &Config,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let dates = schedule_dates(config);
    let missed = dates
        .iter()
        .any(|d| *d <= now && last.is_none_or(|l| *d > l));
    if missed {
        return Some(now);
    }
    dates.into_iter().find(|d| *d > now)
}

/// Makes sure the `enforcement` job is pending for `config`'s schedule (when
/// [`enforcement_due`] says; an earlier pending run is kept): at every start, and when a
/// configuration change is in force.
pub async fn schedule(
    store: &dyn crate::store::Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(), crate::store::StoreError> {
    let last = store
        .kv_get(LAST_RUN)
        .await?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    let Some(at) = enforcement_due(config, last, now) else {
        return Ok(());
    };
    store
        .apply(
            ChangeSet {
                jobs: vec![NewJob::new(Job::Enforcement, at)],
                ..ChangeSet::default()
            },
            now,
        )
        .await
}

/// Which accounts a date can widen: every account (`None`) when `[defaults]` has a schedule
/// (the accounts it covers are not listed anywhere), else the configured accounts with one.
fn scheduled_accounts(config: &Config) -> Vec<Option<String>> {
    if !config.settings.defaults.schedule.is_empty() {
        return vec![None];
    }
    config
        .settings
        .accounts
        .iter()
        .filter(|(_, a)| !a.schedule.is_empty())
        .map(|(id, _)| Some(id.clone()))
        .collect()
}

/// `enforcement`: promotions, the backfill, and the next run, in one commit.
pub(super) async fn enforcement(app: &App, run: &Run) -> Result<JobOutput, JobError> {
    let now = app.now();
    let config = &app.config;
    let mut changes = ChangeSet::default();
    for group in app.store.list_groups(Some(GroupStatus::Open)).await? {
        if group.issue_number.is_some()
            && group.data.mode == Mode::RampUp.as_str()
            && config.account_at(&group.data.account_id, now).mode == Mode::Enforce
        {
            changes
                .jobs
                .push(NewJob::new(Job::Promote(group.group_key), now));
        }
    }
    let mut backfilled = 0usize;
    for account in scheduled_accounts(config) {
        let findings: Vec<_> = app
            .store
            .ungrouped_findings(account.as_deref())
            .await?
            .into_iter()
            .map(|r| r.finding)
            .collect();
        if findings.is_empty() {
            continue;
        }
        let (planned, outcomes) = crate::pipeline::prepare(
            app.store.as_ref(),
            config,
            &findings,
            now,
            &format!("{}:enforcement", run.source()),
        )
        .await?;
        backfilled += outcomes
            .iter()
            .filter(|o| matches!(o.action, crate::pipeline::Disposition::OpenIssue))
            .count();
        changes.merge(planned);
    }
    tracing::info!(
        promoted = changes
            .jobs
            .iter()
            .filter(|j| matches!(j.job, Job::Promote(_)))
            .count(),
        backfilled,
        "ramp-up schedule applied"
    );
    changes.kv.push((LAST_RUN.to_string(), now.to_rfc3339()));
    if let Some(next) = schedule_dates(config).into_iter().find(|d| *d > now) {
        changes.jobs.push(NewJob::new(Job::Enforcement, next));
    }
    Ok(JobOutput::done(changes))
}

/// `promote`: an open informational issue whose account is enforced now gets its owner, its
/// deadlines and one comment; the group remembers it is enforced, so it happens once.
pub(super) async fn promote(app: &App, run: &Run, key: &GroupKey) -> Result<JobOutput, JobError> {
    let Some(group) = app
        .store
        .group(key)
        .await?
        .filter(|g| g.issue_number.is_some())
    else {
        return Ok(JobOutput::default());
    };
    let now = app.now();
    let enforced = app.config.account_at(&group.data.account_id, now).mode == Mode::Enforce;
    if group.data.mode != Mode::RampUp.as_str() || !enforced {
        return Ok(JobOutput::default());
    }
    let due = super::lifecycle::due_date(&app.config, &group, now);
    let mut changes = super::lifecycle::step(
        &app.config,
        &group,
        &Event::Enforced { due },
        &run.source(),
        now,
    );
    for write in &mut changes.groups {
        if let GroupWrite::Update { record, .. } = write
            && record.group_key == group.group_key
        {
            record.data.mode = Mode::Enforce.as_str().to_string();
        }
    }
    Ok(JobOutput::done(changes))
}

/// `settle`: the group's findings planned again now that (some of) their settle delay is over.
/// Findings still settling postpone this job to the earliest end of their delay.
pub(super) async fn settle(app: &App, run: &Run, key: &GroupKey) -> Result<JobOutput, JobError> {
    if app.store.group(key).await?.is_some() {
        return Ok(JobOutput::default());
    }
    let findings = super::lifecycle::group_findings(app, key).await?;
    if findings.is_empty() {
        return Ok(JobOutput::default());
    }
    let now = app.now();
    let (mut changes, _) = crate::pipeline::prepare(
        app.store.as_ref(),
        &app.config,
        &findings,
        now,
        &run.source(),
    )
    .await?;
    // This job's own next run: a postponement, not a duplicate (which would run it again at
    // once).
    let again = changes
        .jobs
        .iter()
        .filter(|j| j.job == Job::Settle(key.clone()))
        .map(|j| j.run_at)
        .min();
    changes.jobs.retain(|j| j.job != Job::Settle(key.clone()));
    Ok(JobOutput {
        changes,
        again: None,
        postpone: again.map(|run_at| Postponed {
            run_at,
            reason: "still settling".into(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lever.toml"),
            "[github]\nfallback_repo = \"acme/security\"\n\
             [accounts.111111111111]\nmode = \"ramp-up\"\nenforce_from = \"2027-01-04\"\n\
             min_severity = \"CRITICAL\"\nmin_severity_from = { \"2027-02-01\" = \"HIGH\" }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("OWNERS"), "").unwrap();
        Config::load(dir.path()).unwrap()
    }

    /// (last applied run, now) → when `enforcement` is due.
    #[test]
    #[rustfmt::skip]
    fn enforcement_due_table() {
        let c = config();
        let cases: [(Option<&str>, &str, Option<&str>); 7] = [
            // Before every date: the first one.
            (None, "2026-12-01T00:00:00Z", Some("2027-01-04T00:00:00Z")),
            // A date passed that no run applied (first start after it, or a restart): now.
            (None, "2027-01-10T00:00:00Z", Some("2027-01-10T00:00:00Z")),
            (Some("2026-12-01T00:00:00Z"), "2027-01-04T00:00:00Z", Some("2027-01-04T00:00:00Z")),
            // Applied: the next date.
            (Some("2027-01-04T00:00:00Z"), "2027-01-04T00:00:01Z", Some("2027-02-01T00:00:00Z")),
            (Some("2027-01-05T00:00:00Z"), "2027-01-20T00:00:00Z", Some("2027-02-01T00:00:00Z")),
            // The last date missed by a stopped process.
            (Some("2027-01-04T00:00:00Z"), "2027-03-01T00:00:00Z", Some("2027-03-01T00:00:00Z")),
            // All applied: nothing more.
            (Some("2027-02-01T00:00:00Z"), "2027-03-01T00:00:00Z", None),
        ];
        for (last, now, want) in cases {
            assert_eq!(
                enforcement_due(&c, last.map(at), at(now)),
                want.map(at),
                "last {last:?}, now {now}"
            );
        }
    }
}
