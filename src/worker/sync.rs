//! Reconciliation with Security Hub: GetFindings pages fed through the same pipeline as pushed
//! events, so a first deployment picks up existing findings and missed events are repaired.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobError, JobOutput};
use crate::app::App;
use crate::asff;
use crate::config::{Mode, SecurityHubApi};
use crate::domain::{Finding, Severity};
use crate::pipeline::{self, Disposition};
use crate::securityhub::{FindingQuery, PagerPosition};
use crate::store::{ChangeSet, Job, NewJob};

/// Where the last sync started (RFC 3339); the next one reads findings updated since then.
pub const CURSOR_KEY: &str = "sync.cursor";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// `backfill` (first sync: active findings at or above the lowest minimum) or `since
    /// <instant>` (every finding updated since the previous sync, minus the overlap).
    pub query: String,
    pub pages: usize,
    pub findings: usize,
    pub rejected: usize,
    pub issues_to_open: usize,
    pub repeats: usize,
    pub cursor: Option<DateTime<Utc>>,
}

/// Parses GetFindings (ASFF) and GetFindingsV2 (OCSF) results; findings Lever cannot use are
/// counted, not fatal.
fn parse(values: &[serde_json::Value], app: &App) -> (Vec<Finding>, usize) {
    let mut out = Vec::with_capacity(values.len());
    let mut rejected = 0;
    for (i, v) in values.iter().enumerate() {
        match asff::parse_any_finding(v, i, app.catalog) {
            Ok(f) => out.push(f),
            Err(e) => {
                rejected += 1;
                tracing::warn!(error = %e, "GetFindings returned a finding Lever cannot use");
            }
        }
    }
    (out, rejected)
}

/// The current findings for these (`ProductArn`, `Id`) pairs, as Security Hub returns them:
/// ASFF ones through GetFindings, OCSF ones (a `productv2` ARN) through GetFindingsV2 by
/// `finding_info.uid`. The caller asks only for findings whose API `[securityhub] api`
/// enables.
pub async fn fetch_by_id(app: &App, refs: &[(String, String)]) -> Result<Vec<Finding>, JobError> {
    let (v2, cspm): (Vec<_>, Vec<_>) = refs
        .iter()
        .partition(|(arn, _)| crate::ocsf::is_v2_product(arn));
    let mut values = Vec::new();
    for (api, refs) in [(SecurityHubApi::Cspm, cspm), (SecurityHubApi::V2, v2)] {
        if refs.is_empty() {
            continue;
        }
        let query = FindingQuery::everything().finding_ids(refs.iter().map(|(_, id)| id.clone()));
        let pager = app
            .securityhub
            .pages_in(&query, api, PagerPosition::default());
        values.extend(pager.collect_all().await?);
    }
    let (findings, _) = parse(&values, app);
    Ok(findings
        .into_iter()
        .filter(|f| {
            refs.iter()
                .any(|(arn, id)| *arn == f.product_arn && *id == f.id)
        })
        .collect())
}

/// The lowest minimum severity over the accounts Lever acts in (defaults included).
fn lowest_minimum(app: &App) -> Severity {
    lowest_minimum_of(&app.config.settings)
}

/// [`lowest_minimum`] of `settings`, the ramp-up steps included (the lowest an account's
/// minimum will be): what a step's date backfills from the store must be there. Pure.
pub(crate) fn lowest_minimum_of(settings: &crate::config::Settings) -> Severity {
    std::iter::once(&settings.defaults)
        .chain(settings.accounts.values())
        .filter(|a| a.mode != Mode::Off)
        .flat_map(|a| {
            std::iter::once(a.min_severity).chain(a.schedule.min_severity_from.values().copied())
        })
        .min()
        .unwrap_or(Severity::Critical)
}

/// Where an unfinished sync stands between two pages (kept under [`PROGRESS_KEY`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    /// When the sync started: the next sync's cursor.
    started: DateTime<Utc>,
    /// `None` for the backfill, else findings updated since this instant.
    since: Option<DateTime<Utc>>,
    /// The backfill's lowest severity, fixed when it started.
    min_severity: Severity,
    at: PagerPosition,
    /// The APIs read (`[securityhub] api` when the sync started; older progress records
    /// predate v2 and read CSPM).
    #[serde(default)]
    api: SecurityHubApi,
    report: SyncReport,
}

/// A sync in progress (JSON of `Progress`; empty when none).
pub const PROGRESS_KEY: &str = "sync.progress";

impl Progress {
    fn query(&self) -> FindingQuery {
        match self.since {
            None => FindingQuery::sync().min_severity(self.min_severity),
            Some(since) => FindingQuery::everything().updated_since(since),
        }
    }
}

/// Loads the sync in progress, or starts one at `now` from the stored cursor.
async fn load(app: &App, now: DateTime<Utc>) -> Result<Progress, JobError> {
    if let Some(p) = app
        .store
        .kv_get(PROGRESS_KEY)
        .await?
        .filter(|p| !p.is_empty())
    {
        match serde_json::from_str(&p) {
            Ok(p) => return Ok(p),
            Err(e) => tracing::warn!(error = %e, "unreadable sync progress; starting over"),
        }
    }
    let cursor = app
        .store
        .kv_get(CURSOR_KEY)
        .await?
        .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
        .map(|c| c.with_timezone(&Utc));
    let since = cursor.map(|c| c - app.config.settings.lifecycle.sync.overlap);
    Ok(Progress {
        started: now,
        since,
        min_severity: lowest_minimum(app),
        at: PagerPosition::default(),
        api: app.config.settings.securityhub.api,
        report: SyncReport {
            query: match since {
                None => "backfill".to_string(),
                Some(s) => format!("since {}", s.to_rfc3339()),
            },
            ..SyncReport::default()
        },
    })
}

/// One page of a sync: load where it stands, read the next page, plan its findings, and return
/// one change set (the findings' writes and the new position, or the new cursor when the sync
/// is complete) with the report so far and whether more pages remain.
async fn page(app: &App) -> Result<(ChangeSet, SyncReport, bool), JobError> {
    let now = app.now();
    let mut progress = load(app, now).await?;
    let query = progress.query();
    let mut pager = app
        .securityhub
        .pages_in(&query, progress.api, progress.at.clone());
    let mut changes = ChangeSet::default();
    if let Some(page) = pager.next_page().await? {
        let report = &mut progress.report;
        report.pages += 1;
        let (findings, rejected) = parse(&page.findings, app);
        report.findings += findings.len();
        report.rejected += rejected;
        let (planned, outcomes) =
            pipeline::prepare(app.store.as_ref(), &app.config, &findings, now, "sync").await?;
        changes = planned;
        report.issues_to_open += outcomes
            .iter()
            .filter(|o| matches!(o.action, Disposition::OpenIssue))
            .count();
        report.repeats += outcomes
            .iter()
            .filter(|o| matches!(o.action, Disposition::Repeat))
            .count();
    }
    progress.at = pager.position();
    let more = !pager.is_done();
    if more {
        let json =
            serde_json::to_string(&progress).map_err(|e| JobError::permanent(e.to_string()))?;
        changes.kv.push((PROGRESS_KEY.to_string(), json));
    } else {
        progress.report.cursor = Some(progress.started);
        changes.kv.push((PROGRESS_KEY.to_string(), String::new()));
        changes
            .kv
            .push((CURSOR_KEY.to_string(), progress.started.to_rfc3339()));
    }
    Ok((changes, progress.report, more))
}

/// One whole reconciliation (`lever sync`): pages GetFindings (at most 3 requests a second),
/// committing each page as the `sync` job does. The cursor moves to the instant the run
/// started, so findings updated while it ran are read again next time (repeats cost nothing).
pub async fn run(app: &App) -> Result<SyncReport, JobError> {
    loop {
        let (changes, report, more) = page(app).await?;
        let pacer = app.github.pacer();
        super::pacing::apply_with_openings(app.store.as_ref(), pacer, changes, app.now()).await?;
        if !more {
            app.jobs_ready.notify_waiters();
            return Ok(report);
        }
    }
}

/// The `sync` job of `lever serve`: one page per run (one commit each); while pages remain the
/// job runs again at once, then the next sync is scheduled.
pub(super) async fn job(app: &App) -> Result<JobOutput, JobError> {
    let (mut changes, report, more) = page(app).await?;
    if more {
        changes.jobs.push(NewJob::new(Job::Sync, app.now()));
    } else {
        tracing::info!(?report, "sync finished");
        if let Some(every) = app.config.settings.lifecycle.sync.interval {
            changes.jobs.push(NewJob::new(Job::Sync, app.now() + every));
        }
    }
    Ok(JobOutput::done(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> crate::config::Settings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lever.toml"),
            format!("[github]\nfallback_repo = \"acme/security\"\n{toml}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("OWNERS"), "").unwrap();
        crate::config::Config::load(dir.path()).unwrap().settings
    }

    /// The backfill fetches what any account counts now or will count after its ramp-up
    /// steps: the store must hold what a step's date backfills.
    #[test]
    #[rustfmt::skip]
    fn lowest_minimum_table() {
        let cases = [
            ("", Severity::Critical),
            ("[accounts.111111111111]\nmin_severity = \"HIGH\"\n", Severity::High),
            ("[accounts.111111111111]\nmin_severity = \"LOW\"\nmode = \"off\"\n", Severity::Critical),
            ("[accounts.111111111111]\nmode = \"ramp-up\"\nmin_severity = \"CRITICAL\"\nmin_severity_from = { \"2027-02-01\" = \"HIGH\", \"2027-04-01\" = \"MEDIUM\" }\n", Severity::Medium),
            ("[defaults]\nmin_severity = \"CRITICAL\"\nmin_severity_from = { \"2027-02-01\" = \"LOW\" }\n", Severity::Low),
        ];
        for (toml, want) in cases {
            assert_eq!(lowest_minimum_of(&settings(toml)), want, "{toml}");
        }
    }
}
