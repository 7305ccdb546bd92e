//! `lever jobs`: the durable work queue as operators see it. Pending work (in the order it will
//! run), and *parked* work: jobs that failed for good (too many attempts, or an error that
//! cannot succeed by waiting), kept with their last error until someone re-queues them with
//! `lever jobs retry ID` or `lever jobs retry --all` (a later finding of a parked group
//! re-queues its issue by itself).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{Failure, Format, print_table, runtime};
use crate::app::open_store;
use crate::config::ProcessSettings;
use crate::store::{AuditEntry, ChangeSet, JobOutcome, JobRecord, JobState, NewJob};

/// One line of `lever jobs --format json` (JSON Lines). A contract: fields are only added.
#[derive(Debug, Serialize)]
pub struct JobLine<'a> {
    pub id: i64,
    /// `open-issue`, `apply-effects`, `sync`, … (see docs/DESIGN.md § The job shape).
    pub kind: &'a str,
    /// The record the job works on: a group key, a delivery id, a repository, or a fixed word.
    pub subject: &'a str,
    /// `pending` (waiting or running), `parked` (failed for good), or `done`.
    pub state: &'static str,
    /// When it runs next (pending) or ran last.
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<&'a str>,
    /// The worker running it now, if any.
    pub lease_owner: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A parked effect in `lever jobs --failed --format json` (`kind` is always `effect`).
#[derive(Debug, Serialize)]
pub struct EffectLine<'a> {
    pub kind: &'static str,
    pub effect_id: &'a str,
    /// What it would do: `comment`, `label`, `close`, `reopen`, `assign`, `update-findings`, …
    pub action: &'a serde_json::Value,
    /// The group whose issue it is for.
    pub subject: &'a str,
    pub state: &'static str,
    pub last_error: &'a str,
    /// The event that caused it.
    pub source: &'a str,
}

pub fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Pending => "pending",
        JobState::Done => "done",
        JobState::Dead => "parked",
    }
}

impl<'a> JobLine<'a> {
    pub fn of(j: &'a JobRecord) -> JobLine<'a> {
        JobLine {
            id: j.id,
            kind: j.job.kind(),
            subject: j.job.subject(),
            state: state_name(j.state),
            run_at: j.run_at,
            attempts: j.attempts,
            last_error: j.last_error.as_deref(),
            lease_owner: j.lease_owner.as_deref(),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// `lever jobs [--failed]`: pending jobs in the order they run, or parked ones.
pub(super) fn list(
    settings: &ProcessSettings,
    failed: bool,
    format: Format,
) -> Result<(), Failure> {
    runtime()?.block_on(async move {
        let store = open_store(settings).await.map_err(Failure::startup)?;
        let state = if failed {
            JobState::Dead
        } else {
            JobState::Pending
        };
        let mut jobs = store.jobs(Some(state)).await.map_err(Failure::failed)?;
        if !failed {
            jobs.sort_by_key(|j| (j.run_at, j.id));
        }
        let effects = if failed {
            store.parked_effects().await.map_err(Failure::failed)?
        } else {
            Vec::new()
        };
        let actions: Vec<serde_json::Value> = effects
            .iter()
            .map(|(e, _)| serde_json::to_value(&e.action).unwrap_or_default())
            .collect();
        match format {
            Format::Json => {
                for j in &jobs {
                    println!("{}", json!(JobLine::of(j)));
                }
                for ((e, error), action) in effects.iter().zip(&actions) {
                    let line = EffectLine {
                        kind: "effect",
                        effect_id: &e.id,
                        action,
                        subject: e.group_key.as_str(),
                        state: "parked",
                        last_error: error,
                        source: &e.source,
                    };
                    println!("{}", json!(line));
                }
            }
            Format::Text => {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.to_string(),
                            j.job.kind().to_string(),
                            j.job.subject().to_string(),
                            j.run_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            j.attempts.to_string(),
                            j.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID",
                        "KIND",
                        "SUBJECT",
                        "RUN AT (UTC)",
                        "ATTEMPTS",
                        "LAST ERROR",
                    ],
                    &rows,
                );
                let what = if failed { "parked" } else { "pending" };
                println!("{} {what} job(s)", jobs.len());
                for ((e, error), action) in effects.iter().zip(&actions) {
                    println!(
                        "parked effect {} ({}) for {}: {error}",
                        e.id,
                        action["kind"].as_str().unwrap_or("?"),
                        e.group_key
                    );
                }
                if failed && !(jobs.is_empty() && effects.is_empty()) {
                    println!("re-queue with `lever jobs retry ID` or `lever jobs retry --all`");
                }
            }
        }
        Ok(())
    })
}

/// `lever jobs retry ID|--all`: parked jobs go back to the queue, due now, with fresh
/// attempts; the parked rows stay for history (state done, error prefixed `retried: `) and an
/// audit entry records who asked.
pub(super) fn retry(settings: &ProcessSettings, id: Option<i64>, by: &str) -> Result<(), Failure> {
    runtime()?.block_on(async move {
        let store = open_store(settings)
            .await
            .map_err(Failure::startup)?;
        let parked = store
            .jobs(Some(JobState::Dead))
            .await
            .map_err(Failure::failed)?;
        let chosen: Vec<&JobRecord> = parked
            .iter()
            .filter(|j| id.is_none_or(|id| j.id == id))
            .collect();
        if let Some(id) = id
            && chosen.is_empty()
        {
            return Err(Failure::failed(format!(
                "job {id} is not parked (see `lever jobs --failed`)"
            )));
        }
        let now = Utc::now();
        let actor = by.to_string();
        let mut changes = ChangeSet::default();
        // `--all` also hands parked effects back to their outboxes.
        let effects = if id.is_none() {
            store.parked_effects().await.map_err(Failure::failed)?
        } else {
            Vec::new()
        };
        let mut groups = std::collections::BTreeSet::new();
        for (e, error) in &effects {
            changes.outbox.push(crate::store::OutboxWrite::Unpark(e.id.clone()));
            groups.insert(e.group_key.clone());
            changes.audit.push(AuditEntry {
                seq: 0,
                at: now,
                actor: actor.clone(),
                action: "effect-retried".into(),
                group_key: Some(e.group_key.clone()),
                issue: None,
                source: Some(e.source.clone()),
                detail: json!({ "effect": e.action, "error": error }),
            });
        }
        for g in groups {
            // Due at once, whatever clock the workers keep.
            changes.jobs.push(NewJob::new(
                crate::store::Job::ApplyEffects(g),
                DateTime::<Utc>::UNIX_EPOCH,
            ));
        }
        for j in &chosen {
            changes.job_outcomes.push(JobOutcome::Requeued { id: j.id });
            // Due at once: when it was parked (never later than now).
            changes
                .jobs
                .push(NewJob::new(j.job.clone(), j.updated_at.min(now)));
            changes.audit.push(AuditEntry {
                seq: 0,
                at: now,
                actor: actor.clone(),
                action: "job-retried".into(),
                group_key: j.job.group().cloned(),
                issue: None,
                source: Some(format!("job:{}", j.id)),
                detail: json!({ "kind": j.job.kind(), "subject": j.job.subject(), "error": j.last_error }),
            });
        }
        store.apply(changes, now).await.map_err(Failure::failed)?;
        println!("{} parked job(s) re-queued", chosen.len());
        if !effects.is_empty() {
            println!("{} parked effect(s) handed back", effects.len());
        }
        Ok(())
    })
}

/// `lever jobs backlog --config DIR`: the issues waiting to open, most urgent first, with when
/// each should open within the content budget.
pub(super) fn backlog(
    settings: &ProcessSettings,
    config: &std::path::Path,
    format: Format,
) -> Result<(), Failure> {
    let config = super::load_config(config)?;
    let gh = &config.settings.github;
    let budget =
        crate::github::pacing::ContentBudget::new(gh.content_per_minute, gh.content_per_hour)
            .ok_or_else(|| Failure::usage("[github] content budgets must be above zero"))?;
    runtime()?.block_on(async move {
        let store = open_store(settings).await.map_err(Failure::startup)?;
        let report = crate::worker::pacing::backlog(store.as_ref(), &budget, Utc::now())
            .await
            .map_err(Failure::failed)?;
        match format {
            Format::Json => println!("{}", json!(report)),
            Format::Text => {
                let rows: Vec<Vec<String>> = report
                    .issues
                    .iter()
                    .map(|i| {
                        vec![
                            i.severity.as_str().to_string(),
                            i.environment.clone(),
                            i.repo.clone(),
                            i.group.to_string(),
                            i.opens_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            if i.held_by_noise_cap {
                                "noise cap".to_string()
                            } else {
                                String::new()
                            },
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "SEVERITY",
                        "ENVIRONMENT",
                        "REPOSITORY",
                        "GROUP",
                        "OPENS AT (UTC)",
                        "HELD BY",
                    ],
                    &rows,
                );
                println!("{}", report.summary());
            }
        }
        Ok(())
    })
}
