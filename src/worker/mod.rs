//! Workers drain the durable job queue and perform the side effects (GitHub, Security Hub).
//! A job is leased, run, and its outcome committed together with the state it produced; a
//! worker that dies mid-job loses its lease and another worker takes the job over.

mod approvers;
mod digest;
mod effects;
pub mod lifecycle;
mod notify;
mod open_issue;
pub mod sync;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::app::App;
use crate::domain::lifecycle::Event;
use crate::github::GitHubError;
use crate::pipeline::jobs;
use crate::securityhub::SecurityHubError;
use crate::store::{AuditEntry, ChangeSet, Job, JobOutcome, StoreError};

/// How long a job is leased for; a job still running after this may be taken over.
pub const LEASE: Duration = Duration::minutes(5);
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
    /// Progress made before the failure, committed with the retry.
    pub partial: Option<Box<ChangeSet>>,
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retryable: false,
            retry_at: None,
            partial: None,
        }
    }
    pub fn retry(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retryable: true,
            retry_at: None,
            partial: None,
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
            partial: None,
        }
    }
}

impl From<GitHubError> for JobError {
    fn from(e: GitHubError) -> Self {
        let retry_at = match &e {
            GitHubError::RateLimited { retry_at } => *retry_at,
            _ => None,
        };
        // A 401 can be a token revoked mid-flight: worth one more try with a fresh token.
        let retryable = e.is_retryable() || matches!(e, GitHubError::Unauthorized(_));
        JobError {
            message: e.to_string(),
            retryable,
            retry_at,
            partial: None,
        }
    }
}

impl From<SecurityHubError> for JobError {
    fn from(e: SecurityHubError) -> Self {
        JobError {
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_at: None,
            partial: None,
        }
    }
}

/// What a job produced: state to commit, and optionally a request to run again later (with
/// the partial progress committed).
#[derive(Debug, Default)]
pub struct Outcome {
    pub changes: ChangeSet,
    pub again: Option<JobError>,
}

impl Outcome {
    pub fn done(changes: ChangeSet) -> Outcome {
        Outcome {
            changes,
            again: None,
        }
    }
}

/// One finished job, for logs and tests.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    /// `done`, `retry` or `dead`.
    pub result: &'static str,
    pub error: Option<String>,
}

/// Makes sure the periodic jobs are pending: the Security Hub sync (`[sync] interval`, due
/// now), the next rotation handoff, and the next digest. Safe from every replica at every
/// start: at most one pending job of each exists.
pub async fn schedule_periodic(app: &App) -> Result<(), StoreError> {
    let now = app.now();
    let settings = &app.config.settings;
    let mut jobs = Vec::new();
    let mut add = |kind: &str, subject: &str, run_at: DateTime<Utc>| {
        jobs.push(crate::store::NewJob {
            kind: kind.into(),
            subject: subject.into(),
            payload: serde_json::json!({}),
            run_at,
        });
    };
    if settings.lifecycle.sync.interval.is_some() {
        add(jobs::SYNC, "securityhub", now);
    }
    if let Some(at) = lifecycle::next_handoff(app, now) {
        add(jobs::HANDOFFS, "rotations", at);
    }
    if let Some(at) = settings.escalation.digest.next_after(now) {
        add(jobs::DIGEST, "digest", at);
    }
    app.store
        .apply(
            ChangeSet {
                jobs,
                ..ChangeSet::default()
            },
            now,
        )
        .await
}

/// `ensure-labels`: the label vocabulary, created in the repository if missing.
async fn labels(app: &App, job: &Job) -> Result<Outcome, JobError> {
    for (name, color, description) in crate::domain::lifecycle::labels::VOCABULARY {
        app.github
            .ensure_label(&job.subject, name, color, description)
            .await?;
    }
    let mut changes = ChangeSet::default();
    changes.kv.push((
        format!("labels:{}", job.subject.to_ascii_lowercase()),
        "1".to_string(),
    ));
    Ok(Outcome::done(changes))
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
}

impl Worker {
    pub fn new(app: App, id: impl Into<String>) -> Worker {
        Worker { app, id: id.into() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    async fn execute(&self, job: &Job) -> Result<Outcome, JobError> {
        match job.kind.as_str() {
            jobs::OPEN_ISSUE => open_issue::run(&self.app, job).await,
            jobs::NOTIFY_FINDINGS => notify::run(&self.app, job).await,
            jobs::GITHUB_EVENT => lifecycle::github_event(&self.app, job).await,
            jobs::APPLY_EFFECTS => effects::run(&self.app, job).await,
            jobs::SYNC_GROUP => lifecycle::sync_group(&self.app, job).await,
            jobs::TIMER_EXCEPTION => lifecycle::timer(&self.app, job, Event::ExceptionTimer).await,
            jobs::TIMER_ESCALATION => {
                lifecycle::timer(&self.app, job, Event::EscalationTimer).await
            }
            jobs::TIMER_SLA => lifecycle::timer(&self.app, job, Event::SlaTimer).await,
            jobs::HANDOFFS => lifecycle::handoffs(&self.app, job).await,
            jobs::DIGEST => digest::run(&self.app, job).await,
            jobs::TIMER_VERIFY => lifecycle::verify_timer(&self.app, job).await,
            jobs::ENSURE_LABELS => labels(&self.app, job).await,
            jobs::SYNC => sync::job(&self.app, job).await,
            other => Err(JobError::permanent(format!("unknown job kind {other:?}"))),
        }
    }

    /// Leases and runs one due job. `Ok(None)` when no job is due.
    pub async fn run_once(&self) -> Result<Option<JobReport>, StoreError> {
        let now = self.app.now();
        let Some(job) = self.app.store.lease_job(&self.id, now, LEASE).await? else {
            return Ok(None);
        };
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, subject = %job.subject, attempt = job.attempts);
        let _enter = span.enter();
        let result = self.execute(&job).await;
        let now = self.app.now();
        let owner = self.id.clone();
        let (mut changes, failure) = match result {
            Ok(Outcome { changes, again }) => (changes, again),
            Err(mut e) => (e.partial.take().map(|p| *p).unwrap_or_default(), Some(e)),
        };
        let report = match failure {
            None => {
                changes.job_outcomes.push(JobOutcome::Done {
                    id: job.id,
                    lease_owner: owner,
                });
                JobReport {
                    id: job.id,
                    kind: job.kind.clone(),
                    subject: job.subject.clone(),
                    result: "done",
                    error: None,
                }
            }
            Some(e) if e.retryable && job.attempts < MAX_ATTEMPTS => {
                let retry_at = e
                    .retry_at
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
                    kind: job.kind.clone(),
                    subject: job.subject.clone(),
                    result: "retry",
                    error: Some(e.message),
                }
            }
            Some(e) => {
                tracing::error!(error = %e, "job failed for good");
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
                    group_key: jobs::is_group_job(&job.kind).then(|| crate::domain::GroupKey(job.subject.clone())),
                    issue: None,
                    source: Some(format!("job:{}", job.id)),
                    detail: json!({ "kind": job.kind, "attempts": job.attempts, "error": e.message }),
                });
                JobReport {
                    id: job.id,
                    kind: job.kind.clone(),
                    subject: job.subject.clone(),
                    result: "dead",
                    error: Some(e.message),
                }
            }
        };
        match self.app.store.apply(changes, now).await {
            Ok(()) => {}
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

    /// Runs until `shutdown` becomes true: drains due jobs, then sleeps until the next job is
    /// due, new work is recorded, or a second passes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_until_idle().await {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "worker cannot reach the store"),
            }
            let sleep = match self.app.store.next_job_at().await {
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
