//! The worker's side of GitHub pacing (`github::pacing`): how urgent a job's GitHub work is
//! ([`priority_of`]), and the backlog of issues waiting for the content budget ([`backlog`]),
//! logged when it is large and printed by `lever sync`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

use crate::app::App;
use crate::domain::lifecycle::Action;
use crate::domain::{GroupKey, Severity};
use crate::github::{ContentBudget, Gate, Paced, Priority};
use crate::store::{
    ChangeSet, Effect, GroupData, GroupRecord, GroupWrite, Job, JobRecord, JobState, Store,
    StoreError,
};

/// A backlog of at least this many issues is logged (at most every [`BACKLOG_LOG_EVERY`]).
pub const BACKLOG_LOG_AT: usize = 50;
/// How often a large backlog is logged.
pub const BACKLOG_LOG_EVERY: chrono::Duration = chrono::Duration::minutes(10);

fn is_production(environment: &str) -> bool {
    environment.eq_ignore_ascii_case("production") || environment.eq_ignore_ascii_case("prod")
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Informational => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// How urgent a job's GitHub writes are, from its kind and its group (severity, environment)
/// and, for `apply-effects`, what waits in the outbox:
///
/// | job | priority |
/// |---|---|
/// | jobs that decide (webhooks, timers, sync, handoffs, Security Hub updates) | 90 |
/// | `open-issue` | 40 + 10 × severity (INFORMATIONAL 0 … CRITICAL 4) + 5 in production: 40 … 85 |
/// | `noise-summary` (the noise cap's summary issue of a product) | 60 |
/// | `apply-effects` with a comment, label, assignment, close or reopen | 30 + the same: 30 … 75 |
/// | `ensure-labels`, `digest`, `tag-audit` | 20 |
/// | `apply-effects` with only checklist refreshes (and Security Hub updates, or nothing) | 10 |
///
/// A group that is gone counts as INFORMATIONAL outside production.
pub fn priority_of(job: &Job, group: Option<&GroupData>, outbox: &[Effect]) -> Priority {
    let weight = || {
        group.map_or(0, |g| {
            10 * rank(g.severity) + if is_production(&g.environment) { 5 } else { 0 }
        })
    };
    Priority::new(match job {
        Job::OpenIssue(_) => 40 + weight(),
        Job::NoiseSummary(_) => 60,
        // Security Hub updates wait in the same outbox but spend no GitHub budget.
        Job::ApplyEffects(_)
            if outbox.iter().all(|e| {
                matches!(
                    e.action,
                    Action::RefreshBody | Action::UpdateFindings { .. }
                )
            }) =>
        {
            10
        }
        Job::ApplyEffects(_) => 30 + weight(),
        Job::EnsureLabels(_) | Job::Digest | Job::TagAudit => 20,
        _ => 90,
    })
}

/// [`priority_of`] with the group and outbox loaded; a store failure gives the middle
/// priority (the job runs again either way).
pub async fn priority(app: &App, job: &Job) -> Priority {
    let load = async {
        let Some(key) = job.group() else {
            return Ok::<_, StoreError>((None, Vec::new()));
        };
        let group = app.store.group(key).await?;
        let outbox = match job {
            Job::ApplyEffects(_) => app.store.outbox(key).await?,
            _ => Vec::new(),
        };
        Ok((group, outbox))
    };
    match load.await {
        Ok((group, outbox)) => priority_of(job, group.as_ref().map(|g| &g.data), &outbox),
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the job's group to rank it");
            Priority::new(50)
        }
    }
}

/// One issue waiting to open.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitingIssue {
    pub group: GroupKey,
    pub repo: String,
    pub severity: Severity,
    pub environment: String,
    pub priority: u8,
    /// When its job is due (once it waits for the content budget: its fallback time; the queue
    /// in the process wakes it at its turn, usually earlier).
    pub due: DateTime<Utc>,
    /// When it should open at the earliest, given the budget and the writes before it.
    pub opens_at: DateTime<Utc>,
    /// Held back by the noise cap (`[noise]`): its product opened its quota within the hour;
    /// `due` is when the hour has room again.
    pub held_by_noise_cap: bool,
}

/// The issues waiting to open and when they should, for operators (`lever sync`, the log,
/// later `lever jobs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backlog {
    pub at: DateTime<Utc>,
    pub content_per_minute: u32,
    pub content_per_hour: u32,
    /// In the order they should open: priority first, then due time.
    pub issues: Vec<WaitingIssue>,
    /// Other pending jobs that write to GitHub (effects, labels, the digest): they share the
    /// budget, the more urgent ones before the issues.
    pub other_writes: usize,
    /// When the last waiting issue should open, at the earliest.
    pub last_opens_at: Option<DateTime<Utc>>,
    /// How many of `issues` the noise cap holds back.
    pub held_by_noise_cap: usize,
}

impl Backlog {
    /// One line for logs and `lever sync`.
    pub fn summary(&self) -> String {
        match (self.issues.first(), &self.last_opens_at) {
            (Some(first), Some(last)) => format!(
                "{} issue(s) waiting to open (next: {} in {}, {}), the last at about {} \
                 (budget {}/min, {}/h per installation); {} held by the noise cap; {} other GitHub \
                 write job(s) pending",
                self.issues.len(),
                first.severity.slug().to_uppercase(),
                first.environment,
                first.group,
                last.to_rfc3339(),
                self.content_per_minute,
                self.content_per_hour,
                self.held_by_noise_cap,
                self.other_writes
            ),
            _ => format!(
                "no issue waiting to open; {} other GitHub write job(s) pending",
                self.other_writes
            ),
        }
    }
}

/// How many pending jobs' groups [`backlog`] reads at a time.
const BACKLOG_CHUNK: usize = 500;

fn writes_to_github(job: &Job) -> bool {
    matches!(
        job,
        Job::OpenIssue(_)
            | Job::ApplyEffects(_)
            | Job::EnsureLabels(_)
            | Job::Digest
            | Job::NoiseSummary(_)
    )
}

/// The backlog at `now`: every pending job that writes to GitHub, in the order the pacing lets
/// them go (priority, then due time), and when each waiting issue should open if `budget`
/// starts full at `now` and each job makes one write. An estimate: jobs making several writes
/// (labels, several effects) and earlier writes push it later; issues spread over several
/// installations (each with its own budget) open sooner. Issues held by the noise cap are
/// flagged; their due time is when their product's hour has room again.
pub async fn backlog(
    store: &dyn Store,
    budget: &ContentBudget,
    now: DateTime<Utc>,
) -> Result<Backlog, StoreError> {
    /// What the ranking keeps of a pending job besides the job itself (`jobs[index]`): for an
    /// opening, the few fields of its group the backlog shows. Groups are read
    /// [`BACKLOG_CHUNK`] at a time and dropped, so a backlog of 100,000 new groups (a first
    /// sync) does not hold their whole records at once.
    struct Ranked {
        priority: Priority,
        index: usize,
        opening: Option<(String, Severity, String)>,
    }
    let jobs: Vec<JobRecord> = store
        .jobs(Some(JobState::Pending))
        .await?
        .into_iter()
        .filter(|j| writes_to_github(&j.job))
        .collect();
    let held: std::collections::HashSet<GroupKey> = store
        .noise_held()
        .await?
        .into_iter()
        .map(|e| e.group_key)
        .collect();
    let mut ranked = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(BACKLOG_CHUNK) {
        let keys: Vec<GroupKey> = chunk
            .iter()
            .filter_map(|j| j.job.group().cloned())
            .collect();
        let groups: HashMap<GroupKey, GroupRecord> = store
            .groups(&keys)
            .await?
            .into_iter()
            .map(|g| (g.group_key.clone(), g))
            .collect();
        for j in chunk {
            let group = j.job.group().and_then(|k| groups.get(k));
            let outbox = match &j.job {
                Job::ApplyEffects(key) => store.outbox(key).await?,
                _ => Vec::new(),
            };
            let priority = priority_of(&j.job, group.map(|g| &g.data), &outbox);
            let opening = match (&j.job, group) {
                (Job::OpenIssue(_), Some(g)) => {
                    Some((g.repo.clone(), g.data.severity, g.data.environment.clone()))
                }
                _ => None,
            };
            ranked.push(Ranked {
                priority,
                // Pushed in the order of `jobs`.
                index: ranked.len(),
                opening,
            });
        }
    }
    ranked.sort_by(|a, b| {
        let (ja, jb) = (&jobs[a.index], &jobs[b.index]);
        b.priority
            .cmp(&a.priority)
            .then(ja.run_at.cmp(&jb.run_at))
            .then(ja.id.cmp(&jb.id))
    });
    // GCRA from a full bucket: the burst at once, then one write per period.
    let period = chrono::Duration::from_std(budget.period()).unwrap_or(chrono::Duration::MAX);
    let tolerance = period * (budget.burst() as i32 - 1);
    let mut tat = now;
    let mut issues = Vec::new();
    let mut other_writes = 0;
    for r in ranked {
        let j = &jobs[r.index];
        let noise_held = matches!(&j.job, Job::OpenIssue(key) if held.contains(key));
        // An issue the noise cap holds waits for its product's hour, not for the writes
        // before it: it does not push the others back.
        let at = if noise_held {
            j.run_at.max(now)
        } else {
            let at = j.run_at.max(now).max(tat - tolerance);
            tat = tat.max(at) + period;
            at
        };
        match (&j.job, r.opening) {
            (Job::OpenIssue(key), Some((repo, severity, environment))) => {
                issues.push(WaitingIssue {
                    group: key.clone(),
                    repo,
                    severity,
                    environment,
                    priority: r.priority.get(),
                    due: j.run_at,
                    opens_at: at,
                    held_by_noise_cap: noise_held,
                })
            }
            _ => other_writes += 1,
        }
    }
    Ok(Backlog {
        at: now,
        content_per_minute: budget.per_minute(),
        content_per_hour: budget.per_hour(),
        last_opens_at: issues.iter().map(|i| i.opens_at).max(),
        held_by_noise_cap: issues.iter().filter(|i| i.held_by_noise_cap).count(),
        issues,
        other_writes,
    })
}

/// After a job was postponed for the content budget: logs the backlog when it is large, at
/// most every [`BACKLOG_LOG_EVERY`] per process.
pub async fn report_backlog(app: &App, paced: &Paced) {
    if paced.gate != Gate::Content {
        return;
    }
    let now = app.now();
    {
        let mut last = app
            .caches
            .backlog_logged_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now - at < BACKLOG_LOG_EVERY) {
            return;
        }
        *last = Some(now);
    }
    let budget = app.github.pacer().budget();
    match backlog(app.store.as_ref(), &budget, now).await {
        Ok(b) if b.issues.len() >= BACKLOG_LOG_AT => {
            tracing::warn!(
                issues = b.issues.len(),
                last_opens_at = ?b.last_opens_at,
                period = ?budget.period(),
                "GitHub backlog: {}",
                b.summary()
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the GitHub backlog"),
    }
}

/// An issue's opening queued in the content queue as it was planned (see [`queue_openings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedOpening {
    pub job: Job,
    pub installation: u64,
    pub priority: Priority,
}

/// Plans the new groups' `open-issue` jobs of `changes` into the content queue when their
/// installation's queue already holds jobs (during a flood of new groups): each is stored due
/// at its fallback time ([`Pacer::queue_place`](crate::github::Pacer::queue_place)), so the
/// store's lease leaves it alone, and once committed it joins the queue ([`enqueue_openings`])
/// to be woken at its turn, as if it had been leased, refused by the content gate and
/// postponed, without those two write transactions and the reads around them. Only what this
/// process's pacer knows counts: an owner whose installation it has not met yet, or an empty
/// queue, leaves the job due now. Returns the jobs so planned.
pub fn queue_openings(pacer: &crate::github::Pacer, changes: &mut ChangeSet) -> Vec<QueuedOpening> {
    let ChangeSet { jobs, groups, .. } = changes;
    let mut queued = Vec::new();
    let mut new_groups: Option<HashMap<&GroupKey, &GroupRecord>> = None;
    for job in jobs.iter_mut() {
        // A re-queued opening (`if_absent`) of a group still waiting keeps its own schedule.
        let Job::OpenIssue(key) = &job.job else {
            continue;
        };
        if job.if_absent {
            continue;
        }
        let new_groups = new_groups.get_or_insert_with(|| {
            groups
                .iter()
                .filter_map(|g| match g {
                    GroupWrite::InsertIfAbsent(r) => Some((&r.group_key, r)),
                    GroupWrite::Update { .. } => None,
                })
                .collect()
        });
        let Some(group) = new_groups.get(key) else {
            continue;
        };
        let owner = group.repo.split('/').next().unwrap_or_default();
        let Some(installation) = pacer.queue_of(owner) else {
            continue;
        };
        let priority = priority_of(&job.job, Some(&group.data), &[]);
        job.run_at = job.run_at.max(pacer.queue_place(installation, priority));
        queued.push(QueuedOpening {
            job: job.job.clone(),
            installation,
            priority,
        });
    }
    queued
}

/// Commits `changes` (when there are any) with the new issues they plan queued behind a
/// waiting content queue ([`queue_openings`] before, [`enqueue_openings`] after); whether a
/// job is due at `now`. The intake, every job's outcome and `lever sync` commit through it.
pub async fn apply_with_openings(
    store: &dyn Store,
    pacer: &crate::github::Pacer,
    mut changes: ChangeSet,
    now: DateTime<Utc>,
) -> Result<bool, crate::store::StoreError> {
    let queued = queue_openings(pacer, &mut changes);
    let work_due = changes.jobs.iter().any(|j| j.run_at <= now);
    if changes.is_empty() {
        return Ok(work_due);
    }
    if queued.is_empty() {
        store.apply(changes, now).await?;
        return Ok(work_due);
    }
    let jobs: Vec<Job> = queued.iter().map(|q| q.job.clone()).collect();
    let ids = store.apply_then_pending_ids(changes, now, &jobs).await?;
    enqueue_openings(pacer, &queued, ids);
    Ok(work_due)
}

/// Puts the committed jobs [`queue_openings`] planned into their installation's content queue,
/// given their ids (`Store::apply_then_pending_ids`). A job the store did not find (another
/// writer finished it meanwhile) is skipped; should the store have been unreadable, the jobs
/// run at their fallback time instead (later, never lost).
pub fn enqueue_openings(
    pacer: &crate::github::Pacer,
    queued: &[QueuedOpening],
    ids: Result<Vec<Option<i64>>, crate::store::StoreError>,
) {
    match ids {
        Ok(ids) => {
            for (q, id) in queued.iter().zip(ids) {
                if let Some(id) = id {
                    pacer.enqueue(q.installation, id, q.priority);
                }
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            jobs = queued.len(),
            "could not queue the new issues for GitHub's content budget; they run at their fallback time"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RepoName;
    use crate::routing::Route;

    fn data(severity: Severity, environment: &str) -> GroupData {
        GroupData {
            route: Route {
                repo: RepoName::parse("acme/web").unwrap(),
                rule_line: None,
                chain: vec![],
                warnings: vec![],
                assignees: vec![],
            },
            account_id: "111111111111".into(),
            environment: environment.into(),
            mode: "enforce".into(),
            severity,
            control_id: None,
            title: String::new(),
            reason: String::new(),
            lifecycle: None,
            recreated_from: None,
            last_event_at: None,
            reroute: None,
        }
    }

    fn effect(action: Action) -> Effect {
        Effect {
            id: "e".into(),
            group_key: GroupKey("g".into()),
            action,
            source: "test".into(),
        }
    }

    #[test]
    fn priority_table() {
        let g = || GroupKey("g".into());
        let refresh = [
            effect(Action::RefreshBody),
            effect(Action::UpdateFindings {
                workflow: crate::domain::WorkflowStatus::Notified,
                note: "n".into(),
                resources: None,
            }),
            effect(Action::RefreshBody),
        ];
        let comment = [
            effect(Action::RefreshBody),
            effect(Action::Comment { body: "x".into() }),
        ];
        let crit_prod = data(Severity::Critical, "production");
        let crit_stage = data(Severity::Critical, "staging");
        let high_prod = data(Severity::High, "Production");
        let low = data(Severity::Low, "unknown");
        /// (name, job, its group, its outbox, expected priority)
        type Row<'a> = (&'a str, Job, Option<&'a GroupData>, &'a [Effect], u8);
        let rows: Vec<Row> = vec![
            (
                "CRITICAL prod issue",
                Job::OpenIssue(g()),
                Some(&crit_prod),
                &[],
                85,
            ),
            (
                "CRITICAL staging issue",
                Job::OpenIssue(g()),
                Some(&crit_stage),
                &[],
                80,
            ),
            (
                "HIGH prod issue",
                Job::OpenIssue(g()),
                Some(&high_prod),
                &[],
                75,
            ),
            ("LOW issue", Job::OpenIssue(g()), Some(&low), &[], 50),
            ("issue of a gone group", Job::OpenIssue(g()), None, &[], 40),
            (
                "CRITICAL prod comment",
                Job::ApplyEffects(g()),
                Some(&crit_prod),
                &comment,
                75,
            ),
            (
                "LOW comment",
                Job::ApplyEffects(g()),
                Some(&low),
                &comment,
                40,
            ),
            (
                "checklist refreshes",
                Job::ApplyEffects(g()),
                Some(&crit_prod),
                &refresh,
                10,
            ),
            (
                "empty outbox",
                Job::ApplyEffects(g()),
                Some(&crit_prod),
                &[],
                10,
            ),
            (
                "labels",
                Job::EnsureLabels("acme/web".into()),
                None,
                &[],
                20,
            ),
            ("digest", Job::Digest, None, &[], 20),
            (
                "noise summary",
                Job::NoiseSummary("acme/web".into()),
                None,
                &[],
                60,
            ),
            (
                "webhook",
                Job::GithubEvent(crate::store::DeliveryId("d".into())),
                None,
                &[],
                90,
            ),
            ("sync", Job::Sync, None, &[], 90),
        ];
        let wrong: Vec<String> = rows
            .iter()
            .filter_map(|(name, job, group, outbox, want)| {
                let got = priority_of(job, *group, outbox).get();
                (got != *want).then(|| format!("{name}: {got}, expected {want}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
        // The story of the issue: a new CRITICAL issue in production goes before a refresh,
        // and before every lower issue.
        let top = priority_of(&Job::OpenIssue(g()), Some(&crit_prod), &[]);
        for (_, job, group, outbox, _) in &rows {
            if matches!(
                job,
                Job::OpenIssue(_) | Job::ApplyEffects(_) | Job::EnsureLabels(_) | Job::Digest
            ) {
                assert!(top >= priority_of(job, *group, outbox));
            }
        }
    }
}
