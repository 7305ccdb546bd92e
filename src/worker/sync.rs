//! Reconciliation with Security Hub: GetFindings pages fed through the same pipeline as pushed
//! events, so a first deployment picks up existing findings and missed events are repaired.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{JobError, Outcome};
use crate::app::App;
use crate::asff;
use crate::config::Mode;
use crate::domain::{Finding, Severity};
use crate::pipeline::{self, Action, jobs};
use crate::securityhub::FindingQuery;
use crate::store::{ChangeSet, Job, NewJob};

/// Where the last sync started (RFC 3339); the next one reads findings updated since then.
pub const CURSOR_KEY: &str = "sync.cursor";

#[derive(Debug, Clone, Default, Serialize)]
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

/// Parses GetFindings results; findings Lever cannot use are counted, not fatal.
fn parse(values: &[serde_json::Value], app: &App) -> (Vec<Finding>, usize) {
    let mut out = Vec::with_capacity(values.len());
    let mut rejected = 0;
    for (i, v) in values.iter().enumerate() {
        match asff::parse_finding(v, i, app.catalog) {
            Ok(f) => out.push(f),
            Err(e) => {
                rejected += 1;
                tracing::warn!(error = %e, "GetFindings returned a finding Lever cannot use");
            }
        }
    }
    (out, rejected)
}

/// The current findings for these (`ProductArn`, `Id`) pairs, as Security Hub returns them.
pub async fn fetch_by_id(app: &App, refs: &[(String, String)]) -> Result<Vec<Finding>, JobError> {
    let query = FindingQuery::everything().finding_ids(refs.iter().map(|(_, id)| id.clone()));
    let values = app.securityhub.pages(&query).collect_all().await?;
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
    let s = &app.config.settings;
    std::iter::once(&s.defaults)
        .chain(s.accounts.values())
        .filter(|a| a.mode != Mode::Off)
        .map(|a| a.min_severity)
        .min()
        .unwrap_or(Severity::Critical)
}

/// One reconciliation: pages GetFindings (at most 3 requests a second) and ingests each page.
/// The cursor moves to the instant the run started, so findings updated while it ran are read
/// again next time (repeats cost nothing).
pub async fn run(app: &App) -> Result<SyncReport, JobError> {
    let started = app.now();
    let cursor = app
        .store
        .kv_get(CURSOR_KEY)
        .await?
        .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
        .map(|c| c.with_timezone(&Utc));
    let (query, label) = match cursor {
        None => (
            FindingQuery::sync().min_severity(lowest_minimum(app)),
            "backfill".to_string(),
        ),
        Some(c) => {
            let since = c - app.config.settings.lifecycle.sync.overlap;
            (
                FindingQuery::everything().updated_since(since),
                format!("since {}", since.to_rfc3339()),
            )
        }
    };
    let mut report = SyncReport {
        query: label,
        ..SyncReport::default()
    };
    let mut pager = app.securityhub.pages(&query);
    while let Some(page) = pager.next_page().await? {
        report.pages += 1;
        let (findings, rejected) = parse(&page.findings, app);
        report.findings += findings.len();
        report.rejected += rejected;
        let outcomes = pipeline::ingest(
            app.store.as_ref(),
            &app.config,
            &findings,
            app.now(),
            "sync",
        )
        .await?;
        report.issues_to_open += outcomes
            .iter()
            .filter(|o| matches!(o.action, Action::OpenIssue))
            .count();
        report.repeats += outcomes
            .iter()
            .filter(|o| matches!(o.action, Action::Repeat))
            .count();
    }
    let changes = ChangeSet {
        kv: vec![(CURSOR_KEY.to_string(), started.to_rfc3339())],
        ..ChangeSet::default()
    };
    app.store.apply(changes, app.now()).await?;
    report.cursor = Some(started);
    app.jobs_ready.notify_waiters();
    Ok(report)
}

/// The `sync` job of `lever serve`: one reconciliation, then the next one scheduled.
pub(super) async fn job(app: &App, job: &Job) -> Result<Outcome, JobError> {
    let report = run(app).await?;
    tracing::info!(?report, "sync finished");
    let mut changes = ChangeSet::default();
    if let Some(every) = app.config.settings.lifecycle.sync.interval {
        changes.jobs.push(NewJob {
            kind: jobs::SYNC.into(),
            subject: job.subject.clone(),
            payload: json!({}),
            run_at: app.now() + every,
        });
    }
    Ok(Outcome::done(changes))
}
