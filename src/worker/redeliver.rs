//! `redeliver`: webhooks Lever missed come back. GitHub does not redeliver a failed delivery by
//! itself (it keeps the App's deliveries for 3 days): on start-up and every `[sync] webhooks`,
//! Lever lists the App's recent deliveries and asks for each failed one again, unless a later
//! attempt succeeded or Lever recorded the delivery anyway. What it already recorded is never
//! re-applied (deliveries are deduplicated by id).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{JobError, JobOutput};
use crate::app::App;
use crate::github::HookDelivery;
use crate::store::{AuditEntry, ChangeSet, Job, NewJob};

/// How far back GitHub keeps deliveries.
pub const WINDOW: Duration = Duration::days(3);
/// At most this many pages of 100 deliveries are read per run (GitHub's rate limit for the App
/// JWT is shared with token minting).
pub const MAX_PAGES: usize = 20;
/// At most this many redeliveries are asked per run; the rest wait for the next run.
pub const MAX_REDELIVERIES: usize = 100;

/// The attempts to redeliver: for every event (guid) delivered since `since` whose attempts all
/// failed and that Lever did not record (`recorded`), its latest attempt. Newest first. Pure.
pub fn choose(
    attempts: &[HookDelivery],
    recorded: &HashSet<String>,
    since: DateTime<Utc>,
) -> Vec<u64> {
    let mut by_guid: HashMap<&str, Vec<&HookDelivery>> = HashMap::new();
    for a in attempts.iter().filter(|a| a.delivered_at >= since) {
        by_guid.entry(a.guid.as_str()).or_default().push(a);
    }
    let mut out: Vec<(DateTime<Utc>, u64)> = by_guid
        .into_iter()
        .filter(|(guid, tries)| !recorded.contains(*guid) && !tries.iter().any(|t| t.succeeded()))
        .filter_map(|(_, tries)| {
            tries
                .into_iter()
                .max_by_key(|t| (t.delivered_at, t.id))
                .map(|t| (t.delivered_at, t.id))
        })
        .collect();
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|(_, id)| id).collect()
}

/// One run: read the deliveries of the last [`WINDOW`], redeliver the failed ones, schedule
/// the next run.
pub(super) async fn run(app: &App) -> Result<JobOutput, JobError> {
    let now = app.now();
    let since = now - WINDOW;
    let mut attempts = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (page, next) = app.github.hook_deliveries(cursor.as_deref()).await?;
        let older = page.last().is_none_or(|d| d.delivered_at < since);
        attempts.extend(page);
        match next {
            Some(n) if !older => cursor = Some(n),
            _ => break,
        }
    }
    let failed: HashSet<&str> = attempts
        .iter()
        .filter(|a| !a.succeeded())
        .map(|a| a.guid.as_str())
        .collect();
    let mut recorded = HashSet::new();
    for guid in failed {
        if app
            .store
            .delivery(&format!("github:{guid}"))
            .await?
            .is_some()
        {
            recorded.insert(guid.to_string());
        }
    }
    let chosen = choose(&attempts, &recorded, since);
    let mut asked = 0;
    for id in chosen.iter().take(MAX_REDELIVERIES) {
        app.github.redeliver(*id).await?;
        asked += 1;
    }
    let mut changes = ChangeSet::default();
    if asked > 0 {
        tracing::warn!(asked, "asked GitHub to redeliver webhooks Lever missed");
        changes.audit.push(AuditEntry {
            seq: 0,
            at: now,
            actor: "lever".into(),
            action: "webhooks-redelivered".into(),
            group_key: None,
            issue: None,
            source: None,
            detail: json!({ "asked": asked, "waiting": chosen.len() - asked }),
        });
    }
    if let Some(every) = app.config.settings.lifecycle.sync.webhooks {
        changes.jobs.push(NewJob::new(Job::Redeliver, now + every));
    }
    Ok(JobOutput::done(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn attempt(id: u64, guid: &str, when: &str, status: u16) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: at(when),
            redelivery: false,
            status_code: status,
            event: "issues".into(),
            action: Some("labeled".into()),
        }
    }

    #[test]
    fn only_events_whose_every_attempt_failed_and_that_lever_never_recorded() {
        let since = at("2026-11-20T12:00:00Z");
        let attempts = [
            attempt(1, "ok", "2026-11-23T10:00:00Z", 202),
            attempt(2, "dup", "2026-11-23T10:01:00Z", 200),
            attempt(3, "down", "2026-11-23T10:02:00Z", 0),
            attempt(4, "busy", "2026-11-23T10:03:00Z", 503),
            attempt(5, "busy", "2026-11-23T10:30:00Z", 503),
            attempt(6, "healed", "2026-11-23T10:04:00Z", 502),
            attempt(7, "healed", "2026-11-23T10:40:00Z", 202),
            attempt(8, "seen", "2026-11-23T10:05:00Z", 504),
            attempt(9, "old", "2026-11-19T10:00:00Z", 500),
        ];
        let recorded: HashSet<String> = ["seen".to_string()].into();
        // busy: its latest attempt (5); down: its only one (3); newest first.
        assert_eq!(choose(&attempts, &recorded, since), vec![5, 3]);
        assert!(choose(&[], &recorded, since).is_empty());
    }
}
