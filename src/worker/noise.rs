//! The noise cap: at most `[noise] max_new_issues_per_product_per_hour` new issues per product
//! (the repository they open in) per hour.
//!
//! * **The count lives in the store.** An `open-issue` job about to create its issue asks the
//!   store for a slot ([`Store::take_issue_slot`](crate::store::Store::take_issue_slot)): one
//!   transaction, serialized per product across workers and replicas, counts the product's
//!   issues opened within the last hour. A slot is taken only when an issue is about to be
//!   created (an adopted issue takes none), and a retry keeps the slot it took.
//! * **Held, never dropped.** A job beyond the cap is postponed (no attempt counted, never
//!   parked) to when the hour has room again, plus `100 - priority` seconds: when one slot frees
//!   and several issues wait, the most urgent goes first (a CRITICAL production issue before a
//!   HIGH staging one, as `worker::pacing` ranks them).
//! * **One summary issue per product and episode.** The first hold of a product queues a
//!   `noise-summary` job. It opens one issue in the security repository (`[github]
//!   fallback_repo`) listing what is held back (severity, environment, repository, title,
//!   group, when it should open; finding text rendered inert), updates it when the list
//!   changes, and once everything held back has opened, rewrites it with a final note and
//!   closes it. The issue carries a hidden marker (`<!-- lever:noise-summary=PRODUCT -->`): a
//!   retry after a lost response adopts the open summary instead of opening another.
//!   The summary is an issue like any other for GitHub's content budget (per installation),
//!   and never counts against a product's cap.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{JobError, JobOutput, Postponed, Run, pacing};
use crate::app::App;
use crate::config::noise::WINDOW;
use crate::domain::{GroupKey, Severity};
use crate::explain::inert;
use crate::github::{Issue, IssueUpdate};
use crate::store::{ChangeSet, GroupRecord, IssueSlot, Job, JobState, NewJob, NoiseEntry};

/// The label of the summary issues.
pub const SUMMARY_LABEL: &str = "lever-noise-cap";
/// Every postponement by the cap starts with this (the job's last error, in `lever jobs`).
pub const HELD_REASON: &str = "held by the noise cap";
/// The summary lists at most this many held-back issues (GitHub bodies end at 65,536
/// characters); it says how many more there are.
pub const MAX_LISTED: usize = 200;
/// Pages of the App's recent issues in the security repository searched for a summary's
/// marker on a retry.
const ADOPT_PAGES: u32 = 3;

/// Where the summary of a product is, in the key/value table.
fn state_key(product: &str) -> String {
    format!("noise.summary:{product}")
}

/// The hidden marker of a product's summary issue.
pub fn marker(product: &str) -> String {
    format!("<!-- lever:noise-summary={product} -->")
}

/// When each of `held` waiting issues can open at the earliest, in order, given when the
/// product's issues within the window opened (`opened`, ascending), at most `limit` per
/// `window`. Pure; the first is when the window next has room.
pub fn opening_times(
    opened: &[DateTime<Utc>],
    limit: u32,
    held: usize,
    window: Duration,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let limit = limit.max(1) as usize;
    let mut times: Vec<DateTime<Utc>> = opened
        .iter()
        .copied()
        .filter(|t| *t > now - window)
        .collect();
    times.sort();
    let mut out = Vec::with_capacity(held);
    for _ in 0..held {
        let at = if times.len() < limit {
            now
        } else {
            (times[times.len() - limit] + window).max(now)
        };
        times.push(at);
        out.push(at);
    }
    out
}

/// When a held job runs again: when the window has room, plus `100 - priority` seconds, so
/// that the most urgent of the waiting issues takes a freed slot first.
pub fn held_until(room: DateTime<Utc>, priority: u8) -> DateTime<Utc> {
    room + Duration::seconds(100 - i64::from(priority.min(100)))
}

/// The `open-issue` hook: `None` when the group may open its issue now (no cap for its
/// product, or a slot taken); otherwise the job's output that postpones it and queues the
/// product's summary.
pub(super) async fn admit(
    app: &App,
    group: &GroupRecord,
    repo: &str,
    now: DateTime<Utc>,
) -> Result<Option<JobOutput>, JobError> {
    let product = repo.to_ascii_lowercase();
    let Some(limit) = app.config.settings.noise.limit_for(&product) else {
        return Ok(None);
    };
    let slot = app
        .store
        .take_issue_slot(&product, &group.group_key, limit, WINDOW, now)
        .await?;
    let IssueSlot::Held { opened } = slot else {
        return Ok(None);
    };
    let room = opening_times(&opened, limit, 1, WINDOW, now)[0];
    let priority = pacing::priority_of(
        &Job::OpenIssue(group.group_key.clone()),
        Some(&group.data),
        &[],
    );
    let run_at = held_until(room, priority.get());
    tracing::info!(group = %group.group_key, %product, limit, %run_at, "new issue held back by the noise cap");
    let mut changes = ChangeSet::default();
    changes
        .jobs
        .push(NewJob::new(Job::NoiseSummary(product.clone()), now));
    Ok(Some(JobOutput {
        changes,
        again: None,
        postpone: Some(Postponed {
            run_at,
            reason: format!(
                "{HELD_REASON}: {product} opened {limit} new issue(s) within the hour ([noise]); \
                 opens at the earliest at {}",
                run_at.to_rfc3339()
            ),
        }),
    }))
}

/// The summary issue of a product, as the key/value table keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SummaryState {
    repo: String,
    number: u64,
    url: String,
    /// When this episode's summary was opened.
    since: DateTime<Utc>,
    /// Every group listed during the episode.
    listed: BTreeSet<GroupKey>,
    /// The body last written.
    body: String,
    /// Closed with its final note: the next hold opens a new summary.
    closed: bool,
}

/// One held-back issue, as the summary lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldIssue {
    pub group: GroupKey,
    pub repo: String,
    pub severity: Severity,
    pub environment: String,
    pub title: String,
    pub opens_at: DateTime<Utc>,
}

/// The summary's body while issues are held back. Pure; every text from findings is inert.
pub fn render_summary(
    product: &str,
    limit: u32,
    opened_in_window: usize,
    held: &[HeldIssue],
    now: DateTime<Utc>,
) -> String {
    let mut body = format!(
        "Lever holds back new issues of **{}**: it opened {opened_in_window} new issue(s) there within the last \
         hour, and at most {limit} may open per hour (`[noise] max_new_issues_per_product_per_hour` in lever.toml).\n\n",
        inert::prose(product)
    );
    if let (Some(first), Some(last)) = (held.first(), held.last()) {
        body += &format!(
            "{} issue(s) are waiting (as of {}). They open as the cap allows, most urgent first: the next at about {}, \
             the last at about {}. Nothing is dropped; this issue is updated as the list changes and closed once \
             everything has opened.\n\n",
            held.len(),
            now.to_rfc3339(),
            first.opens_at.to_rfc3339(),
            last.opens_at.to_rfc3339()
        );
    }
    body += "| Severity | Environment | Repository | Problem | Group | Opens at about |\n";
    body += "|---|---|---|---|---|---|\n";
    for h in held.iter().take(MAX_LISTED) {
        body += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            h.severity.slug().to_uppercase(),
            inert::prose(&h.environment),
            inert::prose(&h.repo),
            inert::prose(&h.title),
            inert::prose(h.group.as_str()),
            h.opens_at.to_rfc3339()
        );
    }
    if held.len() > MAX_LISTED {
        body += &format!("\n…and {} more.\n", held.len() - MAX_LISTED);
    }
    body += &format!("\n{}\n", marker(product));
    body
}

/// The summary's final body, once nothing is held back any more. Pure.
pub fn render_final(product: &str, listed: usize, now: DateTime<Utc>) -> String {
    format!(
        "Lever held back new issues of **{}** under the noise cap (`[noise]` in lever.toml). All {listed} of \
         them have opened since (the last by {}); nothing is held back any more.\n\n{}\n",
        inert::prose(product),
        now.to_rfc3339(),
        marker(product)
    )
}

/// `noise-summary`: opens, updates or closes the summary issue of `product`. Reschedules
/// itself for when the next held-back issues should have opened, while any wait.
pub(super) async fn summary(app: &App, run: &Run, product: &str) -> Result<JobOutput, JobError> {
    let now = app.now();
    let key = state_key(product);
    let state: Option<SummaryState> = match app.store.kv_get(&key).await? {
        Some(v) => Some(serde_json::from_str(&v).map_err(|e| {
            JobError::permanent(format!("kv {key}: not a noise summary state: {e}"))
        })?),
        None => None,
    };
    let state = state.filter(|s| !s.closed);
    let ledger = app.store.noise_ledger(product, now - WINDOW).await?;
    // Held rows whose `open-issue` job still waits (a group whose job is gone or parked is
    // not listed: it is not waiting for the cap).
    let pending: HashSet<GroupKey> = app
        .store
        .jobs(Some(JobState::Pending))
        .await?
        .into_iter()
        .filter_map(|j| match j.job {
            Job::OpenIssue(k) => Some(k),
            _ => None,
        })
        .collect();
    let held: Vec<&NoiseEntry> = ledger
        .held
        .iter()
        .filter(|e| pending.contains(&e.group_key))
        .collect();
    let keys: Vec<GroupKey> = held.iter().map(|e| e.group_key.clone()).collect();
    let groups: HashMap<GroupKey, GroupRecord> = app
        .store
        .groups(&keys)
        .await?
        .into_iter()
        .map(|g| (g.group_key.clone(), g))
        .collect();
    let mut waiting: Vec<(u8, DateTime<Utc>, &GroupRecord)> = held
        .iter()
        .filter_map(|e| {
            let g = groups.get(&e.group_key)?;
            (g.issue_number.is_none()).then_some(())?;
            let p = pacing::priority_of(&Job::OpenIssue(g.group_key.clone()), Some(&g.data), &[]);
            Some((p.get(), e.at, g))
        })
        .collect();
    waiting.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

    let gh = &app.config.settings.github;
    let fallback = gh.fallback_repo.to_string();
    let mut changes = ChangeSet::default();
    if waiting.is_empty() {
        let Some(mut state) = state else {
            return Ok(JobOutput::done(changes));
        };
        let body = render_final(product, state.listed.len(), now);
        app.github
            .update_issue(
                &state.repo,
                state.number,
                &IssueUpdate {
                    body: Some(body.clone()),
                    state: Some("closed".into()),
                    state_reason: Some("completed".into()),
                    ..IssueUpdate::default()
                },
            )
            .await?;
        tracing::info!(%product, issue = state.number, "noise cap: everything held back has opened; summary closed");
        state.body = body;
        state.closed = true;
        changes.kv.push((key, to_json(&state)?));
        return Ok(JobOutput::done(changes));
    }

    let limit = app
        .config
        .settings
        .noise
        .limit_for(product)
        .unwrap_or(u32::MAX);
    let opened: Vec<DateTime<Utc>> = ledger.opened.iter().map(|e| e.at).collect();
    let times = opening_times(&opened, limit, waiting.len(), WINDOW, now);
    let rows: Vec<HeldIssue> = waiting
        .iter()
        .zip(&times)
        .map(|((_, _, g), at)| HeldIssue {
            group: g.group_key.clone(),
            repo: g.repo.clone(),
            severity: g.data.severity,
            environment: g.data.environment.clone(),
            title: g.data.title.clone(),
            opens_at: *at,
        })
        .collect();
    let body = render_summary(product, limit, opened.len(), &rows, now);
    let mut state = match state {
        Some(mut s) => {
            if s.body != body {
                app.github
                    .update_issue(
                        &s.repo,
                        s.number,
                        &IssueUpdate {
                            body: Some(body.clone()),
                            ..IssueUpdate::default()
                        },
                    )
                    .await?;
                s.body = body;
            }
            s
        }
        None => {
            let adopted = if run.is_retry() {
                find_summary(app, &fallback, product).await?
            } else {
                None
            };
            let issue = match adopted {
                Some(issue) => {
                    tracing::info!(%product, issue = issue.number, "adopting the noise summary an earlier attempt did not record");
                    app.github
                        .update_issue(
                            &fallback,
                            issue.number,
                            &IssueUpdate {
                                body: Some(body.clone()),
                                ..IssueUpdate::default()
                            },
                        )
                        .await?
                }
                None => {
                    app.github
                        .create_issue(
                            &fallback,
                            &inert::plain(&format!(
                                "Lever noise cap: new issues of {product} held back"
                            )),
                            &body,
                            &[SUMMARY_LABEL.to_string()],
                            &[],
                        )
                        .await?
                }
            };
            tracing::info!(%product, issue = issue.number, held = rows.len(), "noise cap summary opened");
            SummaryState {
                repo: fallback.clone(),
                number: issue.number,
                url: issue.html_url,
                since: now,
                listed: BTreeSet::new(),
                body,
                closed: false,
            }
        }
    };
    state.listed.extend(rows.iter().map(|r| r.group.clone()));
    changes.kv.push((key, to_json(&state)?));
    // Look again once the next ones should have opened (each takes its slot within 100 s of
    // the window having room).
    changes.jobs.push(NewJob::new(
        Job::NoiseSummary(product.to_string()),
        times[0].max(now) + Duration::seconds(120),
    ));
    Ok(JobOutput::done(changes))
}

fn to_json(state: &SummaryState) -> Result<String, JobError> {
    serde_json::to_string(state).map_err(|e| JobError::permanent(e.to_string()))
}

/// The open summary of `product` the App's bot made in `repo` (its recent pages), by marker.
async fn find_summary(app: &App, repo: &str, product: &str) -> Result<Option<Issue>, JobError> {
    let bot = app.github.bot_login().await?;
    let want = marker(product);
    for page in 1..=ADOPT_PAGES {
        let issues = app
            .github
            .list_issues(repo, None, Some(&bot), page, 100)
            .await?;
        let n = issues.len();
        let found = issues.into_iter().find(|i| {
            i.state == "open"
                && i.user
                    .as_ref()
                    .is_some_and(|u| u.login.eq_ignore_ascii_case(&bot))
                && i.body.as_deref().is_some_and(|b| b.contains(&want))
        });
        if found.is_some() {
            return Ok(found);
        }
        if n < 100 {
            break;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn opening_times_table() {
        let now = t("2026-11-23T12:30:00Z");
        let h = Duration::hours(1);
        let at = |s: &str| t(&format!("2026-11-23T{s}Z"));
        type Row<'a> = (&'a str, Vec<DateTime<Utc>>, u32, usize, Vec<DateTime<Utc>>);
        let rows: Vec<Row> = vec![
            (
                "room now: at once",
                vec![at("12:00:00")],
                3,
                2,
                vec![now, now],
            ),
            (
                "full: when the oldest leaves the window",
                vec![at("12:00:00"), at("12:10:00"), at("12:20:00")],
                3,
                1,
                vec![at("13:00:00")],
            ),
            (
                "full: one by one, then a second hour",
                vec![at("12:00:00"), at("12:10:00")],
                2,
                4,
                vec![
                    at("13:00:00"),
                    at("13:10:00"),
                    at("14:00:00"),
                    at("14:10:00"),
                ],
            ),
            (
                "a burst opened at once frees at once",
                vec![at("12:05:00"), at("12:05:00")],
                2,
                3,
                vec![at("13:05:00"), at("13:05:00"), at("14:05:00")],
            ),
            (
                "openings older than the window do not count",
                vec![at("11:00:00"), at("11:29:59"), at("12:20:00")],
                2,
                2,
                vec![now, at("13:20:00")],
            ),
            ("nothing held", vec![at("12:00:00")], 1, 0, vec![]),
        ];
        let wrong: Vec<String> = rows
            .iter()
            .filter_map(|(name, opened, limit, held, want)| {
                let got = opening_times(opened, *limit, *held, h, now);
                (got != *want).then(|| format!("{name}: {got:?}, expected {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn held_jobs_run_most_urgent_first() {
        let room = t("2026-11-23T13:00:00Z");
        // CRITICAL production (85) before HIGH staging (70) before LOW (50).
        assert_eq!(held_until(room, 85), room + Duration::seconds(15));
        assert!(held_until(room, 85) < held_until(room, 70));
        assert!(held_until(room, 70) < held_until(room, 50));
        assert_eq!(held_until(room, 100), room);
    }

    #[test]
    fn the_summary_is_inert_and_carries_its_marker() {
        let now = t("2026-11-23T12:30:00Z");
        let held = vec![HeldIssue {
            group: GroupKey("S3.1|arn:aws:s3:::b|111111111111|us-east-1".into()),
            repo: "acme/payments".into(),
            severity: Severity::High,
            environment: "production".into(),
            title: "@everyone see #1 | [x](https://evil.example) <script>".into(),
            opens_at: t("2026-11-23T13:00:15Z"),
        }];
        let body = render_summary("acme/payments", 2, 2, &held, now);
        assert!(
            body.contains("<!-- lever:noise-summary=acme/payments -->"),
            "{body}"
        );
        assert!(!body.contains("@everyone"), "{body}");
        assert!(!body.contains("#1 "), "{body}");
        assert!(!body.contains("<script>"), "{body}");
        assert!(!body.contains("](https://"), "{body}");
        // A pipe in the title or the group key never splits the table row: 6 cells.
        let row = body.lines().find(|l| l.starts_with("| HIGH")).unwrap();
        assert_eq!(row.matches(" | ").count() + 2, 7, "{row}");
        assert!(
            body.contains("the next at about 2026-11-23T13:00:15+00:00"),
            "{body}"
        );
        let last = render_final("acme/payments", 5, now);
        assert!(last.contains("All 5 of them have opened"), "{last}");
        assert!(last.contains(&marker("acme/payments")));
    }
}
