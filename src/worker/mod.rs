//! Workers drain the durable job queue and perform the side effects (GitHub, Security Hub).
//! A job is leased, run, and its outcome committed together with the state it produced; a
//! worker that dies mid-job loses its lease and another worker takes the job over.

mod approvers;
mod digest;
mod effects;
mod history;
pub mod lifecycle;
pub mod noise;
mod notify;
mod open_issue;
pub mod pacing;
pub mod rampup;
pub mod reconcile;
mod redeliver;
pub mod reroute;
pub mod sync;
pub mod tag_audit;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use tracing::Instrument;

use lifecycle::{GroupNews, group_news};

use crate::app::App;
use crate::domain::lifecycle::Timer;
use crate::github::{GitHubError, Paced};
use crate::securityhub::SecurityHubError;
use crate::store::{AuditEntry, ChangeSet, Job, JobOutcome, JobRecord, NewJob, StoreError};

/// What a running job knows about its own run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub id: i64,
    /// Attempts including this one (a retry is `> 1`: an earlier attempt may have succeeded).
    pub attempts: i32,
}

impl Run {
    /// The audit source of what this run does (`job:<id>`).
    pub fn source(&self) -> String {
        format!("job:{}", self.id)
    }
    pub fn is_retry(&self) -> bool {
        self.attempts > 1
    }
}

/// How long a job is leased for; a job still running after this may be taken over. A running
/// job renews its lease every [`HEARTBEAT`], so the lease only bounds how long the jobs of a
/// process that died (SIGKILL, OOM, lost host) wait before another worker takes them over.
pub const LEASE: Duration = Duration::minutes(1);
/// After this many attempts (about a day and a half of backoff) a job is given up (state
/// `dead`, kept for operators and listed by `lever audit`).
pub const MAX_ATTEMPTS: i32 = 36;

/// Why a job did not finish.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub message: String,
    pub retryable: bool,
    /// When to retry, if the failure says (rate limits).
    pub retry_at: Option<DateTime<Utc>>,
    /// How long to wait before retrying, if the failure says so relative to when it happened
    /// (a rate limit of the App's own calls: `Retry-After`, or the reset as GitHub's clock
    /// tells it): counted from the worker's clock when the outcome is recorded.
    pub retry_in: Option<Duration>,
    /// Progress made before the failure, committed with the retry.
    pub partial: Option<Box<ChangeSet>>,
    /// GitHub was not called (or answered with a rate limit): the job is postponed, without
    /// counting the attempt, and waits in the installation's content queue (`Pacer::postpone`).
    pub paced: Option<Paced>,
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retryable: false,
            retry_at: None,
            retry_in: None,
            partial: None,
            paced: None,
        }
    }
    pub fn retry(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retryable: true,
            retry_at: None,
            retry_in: None,
            partial: None,
            paced: None,
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        let retryable = !matches!(e, StoreError::Corrupt(_));
        JobError {
            message: e.to_string(),
            retryable,
            retry_at: None,
            retry_in: None,
            partial: None,
            paced: None,
        }
    }
}

impl From<GitHubError> for JobError {
    fn from(e: GitHubError) -> Self {
        // Calls as an installation come back rate limited as `Paced` (with the App's clock);
        // only the App's own calls (installation lookup, token) can be `RateLimited` here.
        // `Retry-After` and the reset are GitHub's, on the wall clock: kept as a wait, so the
        // retry is scheduled on the App's clock (`Worker::finish`).
        let wall = Utc::now();
        let (retry_at, retry_in) = match &e {
            GitHubError::RateLimited { .. } => {
                (None, e.rate_limited_until(wall).map(|until| until - wall))
            }
            _ => (e.rate_limited_until(wall), None),
        };
        let paced = match &e {
            GitHubError::Paced(p) => Some(*p),
            _ => None,
        };
        // A 401 can be a token revoked mid-flight: worth one more try with a fresh token.
        let retryable = e.is_retryable() || matches!(e, GitHubError::Unauthorized(_));
        JobError {
            message: e.to_string(),
            retryable,
            retry_at,
            retry_in,
            partial: None,
            paced,
        }
    }
}

impl From<SecurityHubError> for JobError {
    fn from(e: SecurityHubError) -> Self {
        JobError {
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_at: None,
            retry_in: None,
            partial: None,
            paced: None,
        }
    }
}

/// What a job produced: state to commit, and optionally a request to run again later (with
/// the partial progress committed).
#[derive(Debug, Default)]
pub struct JobOutput {
    pub changes: ChangeSet,
    pub again: Option<JobError>,
    /// Not now, for a reason outside the job (the noise cap): `changes` commit and the job is
    /// postponed to this time without counting the attempt (never parked for it).
    pub postpone: Option<Postponed>,
}

/// See [`JobOutput::postpone`].
#[derive(Debug, Clone)]
pub struct Postponed {
    pub run_at: DateTime<Utc>,
    pub reason: String,
}

impl JobOutput {
    pub fn done(changes: ChangeSet) -> JobOutput {
        JobOutput {
            changes,
            again: None,
            postpone: None,
        }
    }
}

/// One finished job, for logs and tests.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    /// `done`, `retry`, `postponed` (GitHub's limits or the noise cap: run later, no attempt
    /// counted) or `dead`.
    pub result: &'static str,
    pub error: Option<String>,
}

/// Makes sure the periodic jobs are pending: the Security Hub sync (`[sync] interval`, due
/// now), the next rotation handoff, the next digest, the webhook redelivery (`[sync]
/// webhooks`, due now) and the reconciliation of tracked issues (`[sync] reconcile`, due
/// now), and the ramp-up schedule's next date (`enforcement`: now when a date passed that no
/// run applied). Safe from every replica at every start: at most one pending job of each
/// exists.
pub async fn schedule_periodic(app: &App) -> Result<(), StoreError> {
    let now = app.now();
    let settings = &app.config.settings;
    let mut jobs = Vec::new();
    if settings.lifecycle.sync.interval.is_some() {
        jobs.push(NewJob::new(Job::Sync, now));
    }
    if let Some(at) = lifecycle::next_handoff(&app.config, now) {
        jobs.push(NewJob::new(Job::Handoffs, at));
    }
    if let Some(at) = settings.escalation.digest.next_after(now) {
        jobs.push(NewJob::new(Job::Digest, at));
    }
    if settings.lifecycle.sync.webhooks.is_some() {
        jobs.push(NewJob::new(Job::Redeliver, now));
    }
    if settings.lifecycle.sync.reconcile.is_some() {
        jobs.push(NewJob::new(Job::Reconcile, now));
    }
    if settings.tags.audit_every.is_some() {
        jobs.push(NewJob::new(Job::TagAudit, now));
    }
    jobs.push(NewJob::new(Job::Prune, now + PRUNE_EVERY));
    app.store
        .apply(
            ChangeSet {
                jobs,
                ..ChangeSet::default()
            },
            now,
        )
        .await?;
    rampup::schedule(app.store.as_ref(), &app.config, now).await
}

/// How often finished work is pruned.
pub const PRUNE_EVERY: Duration = Duration::days(1);

/// `prune`: finished jobs and old deliveries go, as `[retention]` says; the next run is
/// scheduled a day later.
async fn prune(app: &App) -> Result<JobOutput, JobError> {
    let now = app.now();
    let keep = &app.config.settings.lifecycle.retention;
    let pruned = app
        .store
        .prune(now - keep.jobs, now - keep.deliveries)
        .await?;
    tracing::info!(
        jobs = pruned.jobs,
        deliveries = pruned.deliveries,
        "pruned finished work"
    );
    let mut changes = ChangeSet::default();
    changes
        .jobs
        .push(NewJob::new(Job::Prune, now + PRUNE_EVERY));
    Ok(JobOutput::done(changes))
}

/// `ensure-labels`: the label vocabulary, created in the repository if missing. The
/// repository's labels are read first (reads are cheap), so only the missing ones spend the
/// content budget; a run postponed half-way creates only the rest.
async fn labels(app: &App, repo: &str) -> Result<JobOutput, JobError> {
    let have: Vec<String> = app
        .github
        .label_names(repo)
        .await?
        .into_iter()
        .map(|n| n.to_lowercase())
        .collect();
    for (name, color, description) in crate::domain::lifecycle::labels::VOCABULARY {
        if have.contains(&name.to_lowercase()) {
            continue;
        }
        app.github
            .ensure_label(repo, name, color, description)
            .await?;
    }
    let mut changes = ChangeSet::default();
    changes.kv.push((
        format!("labels:{}", repo.to_ascii_lowercase()),
        "1".to_string(),
    ));
    Ok(JobOutput::done(changes))
}

/// Exponential backoff: 30 s, 1 min, 2 min, ... capped at 1 h, with up to 20 % jitter.
pub fn backoff(attempts: i32, now: DateTime<Utc>) -> DateTime<Utc> {
    let exp = attempts.clamp(1, 12) - 1;
    let base = (30i64 << exp).min(3600);
    let jitter = rand::random_range(0..=base / 5);
    now + Duration::seconds(base + jitter)
}

#[derive(Debug, Clone)]
pub struct Worker {
    app: App,
    id: String,
    /// How often (real time) a running job's lease is renewed.
    heartbeat: StdDuration,
}

/// The lease is renewed three times per lease period while a job runs.
pub const HEARTBEAT: StdDuration = StdDuration::from_secs(20);

impl Worker {
    pub fn new(app: App, id: impl Into<String>) -> Worker {
        Worker {
            app,
            id: id.into(),
            heartbeat: HEARTBEAT,
        }
    }

    /// Renews running jobs' leases this often instead of [`HEARTBEAT`].
    pub fn with_heartbeat(mut self, every: StdDuration) -> Worker {
        self.heartbeat = every;
        self
    }

    /// Runs the job and, meanwhile, renews its lease every [`Worker::heartbeat`], so a slow job
    /// is never taken over (and run twice) by another worker while it still runs.
    async fn execute_leased(&self, rec: &JobRecord) -> Result<JobOutput, JobError> {
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.heartbeat).await;
                let now = self.app.now();
                match self
                    .app
                    .store
                    .renew_lease(rec.id, &self.id, now + LEASE, now)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the job's lease was lost; its outcome will not commit")
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the job's lease failed"),
                }
            }
        };
        // The job's id goes with its GitHub calls, for the content queue's turn.
        let run = crate::github::pacing::CURRENT_JOB.scope(rec.id, self.execute(rec));
        tokio::select! {
            result = run => result,
            never = heartbeat => never,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs one job: every arm loads what it needs, decides (pure), performs its calls, and
    /// returns one change set that is committed together with the job's outcome.
    async fn execute(&self, rec: &JobRecord) -> Result<JobOutput, JobError> {
        // The configuration in force when the job starts, for the whole job.
        let app = &self.app.refreshed();
        let run = Run {
            id: rec.id,
            attempts: rec.attempts,
        };
        match &rec.job {
            Job::OpenIssue(key) => open_issue::run(app, &run, key).await,
            Job::NotifyFindings(key) => notify::run(app, &run, key).await,
            Job::GithubEvent(delivery) => lifecycle::github_event(app, &run, delivery).await,
            Job::ApplyEffects(key) => effects::run(app, &run, key).await,
            Job::SyncGroup(key) => group_news(app, &run, key, GroupNews::FindingsChanged).await,
            Job::Timer(Timer::Verify, key) => lifecycle::verify_timer(app, &run, key).await,
            Job::Timer(timer, key) => group_news(app, &run, key, GroupNews::Timer(*timer)).await,
            Job::Handoffs => lifecycle::handoffs(app).await,
            Job::Handoff(key) => group_news(app, &run, key, GroupNews::Handoff).await,
            Job::Digest => digest::run(app).await,
            Job::EnsureLabels(repo) => labels(app, repo).await,
            Job::Sync => sync::job(app).await,
            Job::Redeliver => redeliver::run(app).await,
            Job::Prune => prune(app).await,
            Job::NoiseSummary(product) => noise::summary(app, &run, product).await,
            Job::Reconcile => reconcile::run(app, &run).await,
            Job::RepoAccess(repo) => reroute::run(app, &run, repo).await,
            Job::Enforcement => rampup::enforcement(app, &run).await,
            Job::Promote(key) => rampup::promote(app, &run, key).await,
            Job::Settle(key) => rampup::settle(app, &run, key).await,
            Job::TagAudit => tag_audit::run(app, &run).await,
            // Never leased (the lease query takes known kinds only); should one get here, it is
            // left for a replica that knows it, never failed.
            Job::Unknown { kind, .. } => Err(JobError {
                retry_at: Some(app.now() + Duration::minutes(5)),
                ..JobError::retry(format!("job kind {kind:?} is unknown to this version"))
            }),
        }
    }

    /// Leases and runs one due job. `Ok(None)` when no job is due.
    pub async fn run_once(&self) -> Result<Option<JobReport>, StoreError> {
        let now = self.app.now();
        let job = match self.lease_woken(now).await? {
            Some(job) => job,
            None => match self.app.store.lease_job(&self.id, now, LEASE).await? {
                Some(job) => job,
                None => return Ok(None),
            },
        };
        let span = tracing::info_span!("job", id = job.id, kind = %job.job.kind(), subject = %job.job.subject(), attempt = job.attempts);
        self.finish(job).instrument(span).await
    }

    /// Leases the job whose turn it is in GitHub's content queue (`Pacer::wake`), if any;
    /// one the store cannot lease (gone, or running elsewhere) leaves the queue, and the next
    /// one is woken instead.
    async fn lease_woken(&self, now: DateTime<Utc>) -> Result<Option<JobRecord>, StoreError> {
        let pacer = self.app.github.pacer();
        for _ in 0..8 {
            let Some(id) = pacer.wake() else {
                return Ok(None);
            };
            if let Some(job) = self
                .app
                .store
                .lease_job_id(id, &self.id, now, LEASE)
                .await?
            {
                return Ok(Some(job));
            }
            pacer.finished(id);
        }
        Ok(None)
    }

    /// Runs a leased job and commits its change set with its outcome.
    async fn finish(&self, job: JobRecord) -> Result<Option<JobReport>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.execute_leased(&job).await;
        let now = self.app.now();
        let owner = self.id.clone();
        let (mut changes, failure, postponed) = match result {
            Ok(JobOutput {
                changes,
                again,
                postpone,
            }) => (changes, again, postpone),
            Err(mut e) => (
                e.partial.take().map(|p| *p).unwrap_or_default(),
                Some(e),
                None,
            ),
        };
        if failure.as_ref().is_none_or(|e| e.paced.is_none()) {
            // It ran without waiting for GitHub: its place in the content queue, if it had
            // one, is given up (and its turn passes to the next job).
            self.app.github.pacer().finished(job.id);
        }
        let report = match failure {
            None if postponed.is_some() => {
                let Postponed { run_at, reason } = postponed.expect("checked");
                tracing::info!(%run_at, %reason, "job postponed");
                changes.job_outcomes.push(JobOutcome::Postpone {
                    id: job.id,
                    lease_owner: owner,
                    run_at,
                    reason: reason.clone(),
                });
                JobReport {
                    id: job.id,
                    kind: job.job.kind().to_string(),
                    subject: job.job.subject().to_string(),
                    result: "postponed",
                    error: Some(reason),
                }
            }
            None => {
                changes.job_outcomes.push(JobOutcome::Done {
                    id: job.id,
                    lease_owner: owner,
                });
                JobReport {
                    id: job.id,
                    kind: job.job.kind().to_string(),
                    subject: job.job.subject().to_string(),
                    result: "done",
                    error: None,
                }
            }
            Some(e) if e.paced.is_some() => {
                let paced = e.paced.expect("checked");
                let priority = pacing::priority(&self.app, &job.job).await;
                let run_at = self
                    .app
                    .github
                    .pacer()
                    .postpone(&paced, Some(job.id), priority);
                tracing::info!(%paced, priority = priority.get(), %run_at, "GitHub call postponed");
                changes.job_outcomes.push(JobOutcome::Postpone {
                    id: job.id,
                    lease_owner: owner,
                    run_at,
                    reason: e.message.clone(),
                });
                pacing::report_backlog(&self.app, &paced).await;
                JobReport {
                    id: job.id,
                    kind: job.job.kind().to_string(),
                    subject: job.job.subject().to_string(),
                    result: "postponed",
                    error: Some(e.message),
                }
            }
            // Periodic jobs (sync, handoffs, digest) are never parked: each replica schedules
            // them only once at start-up, so a parked one would stop until a restart. They
            // retry with backoff (capped at an hour) for as long as they fail.
            // Security Hub writes converge: a refused write (throttled, or an IAM permission
            // missing until someone adds it) retries with backoff for `[securityhub]
            // retry_writes_for` since the job was queued, whatever the error, before parking.
            Some(e)
                if (e.retryable && job.attempts < MAX_ATTEMPTS)
                    || job.job.is_periodic()
                    || (matches!(job.job, Job::NotifyFindings(_))
                        && now - job.created_at
                            < self
                                .app
                                .live_config
                                .current()
                                .settings
                                .securityhub
                                .retry_writes_for) =>
            {
                let retry_at = e
                    .retry_at
                    .or(e.retry_in.map(|wait| now + wait))
                    .filter(|t| *t > now)
                    .unwrap_or_else(|| backoff(job.attempts, now));
                tracing::warn!(error = %e, %retry_at, "job failed; will retry");
                changes.job_outcomes.push(JobOutcome::Retry {
                    id: job.id,
                    lease_owner: owner,
                    retry_at,
                    error: e.message.clone(),
                });
                JobReport {
                    id: job.id,
                    kind: job.job.kind().to_string(),
                    subject: job.job.subject().to_string(),
                    result: "retry",
                    error: Some(e.message),
                }
            }
            Some(e) => {
                tracing::error!(error = %e, "job failed for good; parked (see `lever jobs --failed`)");
                changes.job_outcomes.push(JobOutcome::Dead {
                    id: job.id,
                    lease_owner: owner,
                    error: e.message.clone(),
                });
                changes.audit.push(AuditEntry {
                    seq: 0,
                    at: now,
                    actor: "lever".into(),
                    action: "job-failed".into(),
                    group_key: job.job.group().cloned(),
                    issue: None,
                    source: Some(format!("job:{}", job.id)),
                    detail: json!({ "kind": job.job.kind(), "attempts": job.attempts, "error": e.message }),
                });
                JobReport {
                    id: job.id,
                    kind: job.job.kind().to_string(),
                    subject: job.job.subject().to_string(),
                    result: "dead",
                    error: Some(e.message),
                }
            }
        };
        // What the metrics count once the outcome is committed (nothing when it is not).
        let audit = changes.audit.clone();
        let metrics = &self.app.metrics;
        // During a flood, the new issues a job planned (a sync page's) join GitHub's content
        // queue directly, as the intake's do.
        let pacer = self.app.github.pacer();
        match pacing::apply_with_openings(self.app.store.as_ref(), pacer, changes, now).await {
            Ok(_) => {
                metrics.committed(&audit);
                metrics.job_finished(job.job.kind(), report.result, started.elapsed());
            }
            Err(StoreError::Conflict(what)) => {
                // Someone changed the group meanwhile (or the lease was lost): nothing was
                // committed. Run again soon, from the state as it is now.
                tracing::warn!(%what, "job outcome not committed (conflict); it runs again");
                let retry = ChangeSet {
                    job_outcomes: vec![JobOutcome::Retry {
                        id: job.id,
                        lease_owner: self.id.clone(),
                        retry_at: now + Duration::seconds(1),
                        error: format!("conflict on {what}"),
                    }],
                    ..ChangeSet::default()
                };
                match self.app.store.apply(retry, now).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                metrics.job_finished(job.job.kind(), "retry", started.elapsed());
                return Ok(Some(JobReport {
                    result: "retry",
                    error: Some(format!("conflict on {what}")),
                    ..report
                }));
            }
            Err(e) => return Err(e),
        }
        Ok(Some(report))
    }

    /// Runs jobs until none is due; returns what ran.
    pub async fn run_until_idle(&self) -> Result<Vec<JobReport>, StoreError> {
        let mut reports = Vec::new();
        while let Some(r) = self.run_once().await? {
            reports.push(r);
        }
        Ok(reports)
    }

    /// When there is work next: the next due job, or the next GitHub permit a job waits for
    /// (it is leased then, see `lease_woken`).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = self.app.store.next_job_at().await?;
        Ok(at
            .into_iter()
            .chain(self.app.github.pacer().next_wake())
            .min())
    }

    /// Runs until `shutdown` becomes true: drains due jobs, then sleeps until the next job is
    /// due, new work is recorded, or a second passes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Drain due jobs, but look at the stop signal between two jobs: a stopping
            // process finishes the job in hand and leaves the rest queued for the next start
            // (with thousands due, draining first kept a SIGTERM'd `lever serve` alive for
            // minutes).
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match self.run_once().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "worker cannot reach the store");
                        break;
                    }
                }
            }
            let sleep = match self.next_due().await {
                Ok(Some(at)) => (at - self.app.now())
                    .to_std()
                    .unwrap_or(StdDuration::ZERO)
                    .min(StdDuration::from_secs(1)),
                _ => StdDuration::from_secs(1),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep.max(StdDuration::from_millis(50))) => {}
                _ = self.app.jobs_ready.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for (attempts, min, max) in [
            (1, 30, 36),
            (2, 60, 72),
            (3, 120, 144),
            (8, 3600, 4320),
            (12, 3600, 4320),
            (50, 3600, 4320),
        ] {
            let secs = (backoff(attempts, now) - now).num_seconds();
            assert!(
                (min..=max).contains(&secs),
                "attempt {attempts}: {secs}s not in {min}..={max}"
            );
        }
    }
}
