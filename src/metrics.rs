//! What Lever counts for its operators, exposed by `GET /metrics` (see `server::metrics`) in
//! the Prometheus text format (version 0.0.4).
//!
//! One [`Metrics`] per [`App`](crate::app::App), owning its own registry (no global state: two
//! Apps in one process, as the tests run them, never share a counter). Every name starts with
//! `lever_`; counters end in `_total`, durations are in seconds. Label values come from closed
//! sets in this code (job kinds, policy reasons, outcomes, status classes), never from what a
//! request says (no repository, finding id or login), and every labelled family is created
//! with all its values up front: a scrape lists every metric from the first second, at zero.
//!
//! The README's "Metrics" table is the contract (a test compares it with a scrape).
//!
//! Where the numbers come from:
//! - the intake (`server::intake`): findings received and skipped, after their commit;
//! - the job runner (`worker::Worker`): job durations and outcomes, and the lifecycle events
//!   read from the audit entries a job committed ([`Metrics::committed`]): issues opened,
//!   closed, reopened, exceptions approved and expired, escalations, parked effects;
//! - the GitHub client (`github::auth`, through its pacer) and the Security Hub adapter
//!   (`securityhub::Lane::call`): calls by outcome, rate-limit waits;
//! - the HTTP edge (`server`): webhook and intake requests by status class and latency;
//! - the store at scrape time ([`Store::queue_stats`](crate::store::Store::queue_stats)):
//!   queue depth and the age of the oldest due job; and the SQLite store's writes and the
//!   commits they shared ([`Store::shared_commits`](crate::store::Store::shared_commits)).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use strum::IntoEnumIterator;

use crate::policy::Reason;
use crate::store::{AuditEntry, CombineStats, KNOWN_KINDS, QueueStats};

/// One label set: `(name, value)` pairs in a fixed order per family.
type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge<i64>>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// What the intake did with a finding (`lever_findings_received_total{disposition}`).
pub const DISPOSITIONS: &[&str] = &["open-issue", "tracked", "skipped", "repeat"];
/// How a job run ended (`lever_jobs_finished_total{result}`): the worker's `JobReport::result`.
pub const JOB_RESULTS: &[&str] = &["done", "retry", "postponed", "dead"];
/// How a GitHub call ended (`lever_github_calls_total{outcome}`).
pub const GITHUB_OUTCOMES: &[&str] = &[
    "ok",
    "not-found",
    "validation",
    "unauthorized",
    "forbidden",
    "rate-limited",
    "paced",
    "server-error",
    "transport",
    "other",
];
/// GitHub's gates a call can wait at (`github::Gate`, kebab-case).
pub const GITHUB_GATES: &[&str] = &["paused", "primary", "content"];
/// Security Hub operations Lever calls.
pub const SECURITYHUB_OPERATIONS: &[&str] = &[
    "GetFindings",
    "BatchUpdateFindings",
    "GetFindingsV2",
    "BatchUpdateFindingsV2",
];
/// How a Security Hub attempt ended.
pub const SECURITYHUB_OUTCOMES: &[&str] = &["ok", "retryable", "rejected"];
/// The HTTP endpoints measured (`lever_http_requests_total{endpoint}`).
pub const ENDPOINTS: &[&str] = &["webhook", "intake"];
/// Status classes of an answer.
pub const STATUS_CLASSES: &[&str] = &["2xx", "3xx", "4xx", "5xx"];
/// Job states the queue gauges count.
pub const QUEUE_STATES: &[&str] = &["pending", "due", "parked"];
/// Escalation levels.
pub const ESCALATION_LEVELS: &[&str] = &["backup", "security"];

/// Every metric Lever exposes, with its registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    findings_received: Counters,
    findings_skipped: Counters,
    issues_opened: Counter,
    issues_closed: Counter,
    issues_reopened: Counter,
    exceptions_approved: Counter,
    exceptions_expired: Counter,
    escalations: Counters,
    jobs_finished: Counters,
    jobs_parked: Counters,
    effects_parked: Counter,
    job_duration: Histograms,
    queue_jobs: Gauges,
    queue_oldest_due_age: FloatGauge,
    store_writes: Counter,
    store_commits: Counter,
    /// Serializes [`Metrics::set_store_writes`] (two scrapes at once would add a delta twice).
    store_totals: std::sync::Mutex<()>,
    github_calls: Counters,
    github_waits: Counters,
    github_wait_seconds: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    securityhub_calls: Counters,
    http_requests: Counters,
    http_duration: Histograms,
}

fn one(name: &'static str, value: &str) -> Labels {
    vec![(name, value.to_string())]
}

fn two(a: &'static str, av: &str, b: &'static str, bv: &str) -> Labels {
    vec![(a, av.to_string()), (b, bv.to_string())]
}

/// Job run times: 5 ms to about 80 s.
fn job_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// HTTP answer times: 1 ms to about 16 s.
fn http_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// `kind` when this version knows it, else `unknown` (a kind read from the database is not
/// trusted to be one of a closed set).
pub fn job_kind(kind: &str) -> &'static str {
    KNOWN_KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("unknown")
}

/// `2xx`, `4xx`... for an HTTP status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric, each labelled family created with all its values at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lever");
        let m = Metrics {
            findings_received: Counters::default(),
            findings_skipped: Counters::default(),
            issues_opened: Counter::default(),
            issues_closed: Counter::default(),
            issues_reopened: Counter::default(),
            exceptions_approved: Counter::default(),
            exceptions_expired: Counter::default(),
            escalations: Counters::default(),
            jobs_finished: Counters::default(),
            jobs_parked: Counters::default(),
            effects_parked: Counter::default(),
            job_duration: Family::new_with_constructor(job_histogram),
            queue_jobs: Gauges::default(),
            queue_oldest_due_age: FloatGauge::default(),
            store_writes: Counter::default(),
            store_commits: Counter::default(),
            store_totals: std::sync::Mutex::new(()),
            github_calls: Counters::default(),
            github_waits: Counters::default(),
            github_wait_seconds: Family::default(),
            securityhub_calls: Counters::default(),
            http_requests: Counters::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            registry: Registry::default(),
        };
        registry.register(
            "findings_received",
            "Findings received over HTTP and committed, by what the intake did with them",
            m.findings_received.clone(),
        );
        registry.register(
            "findings_skipped",
            "Findings the policy gave no issue, by the policy's reason code",
            m.findings_skipped.clone(),
        );
        registry.register(
            "issues_opened",
            "Issues Lever opened (or adopted after a lost answer)",
            m.issues_opened.clone(),
        );
        registry.register(
            "issues_closed",
            "Issues that went from open to closed (by Lever or by a person)",
            m.issues_closed.clone(),
        );
        registry.register(
            "issues_reopened",
            "Issues that went from closed to open again",
            m.issues_reopened.clone(),
        );
        registry.register(
            "exceptions_approved",
            "Exceptions approved: the group's findings are suppressed in Security Hub",
            m.exceptions_approved.clone(),
        );
        registry.register(
            "exceptions_expired",
            "Exceptions that reached their expiry date (findings reported again)",
            m.exceptions_expired.clone(),
        );
        registry.register(
            "escalations",
            "Unacknowledged issues handed to the next person, by level",
            m.escalations.clone(),
        );
        registry.register(
            "jobs_finished",
            "Job runs, by job kind and result",
            m.jobs_finished.clone(),
        );
        registry.register(
            "jobs_parked",
            "Jobs given up and parked (see `lever jobs --failed`), by job kind",
            m.jobs_parked.clone(),
        );
        registry.register(
            "effects_parked",
            "Issue effects parked because they can never be performed",
            m.effects_parked.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Time to run a job and commit its outcome, by job kind",
            Unit::Seconds,
            m.job_duration.clone(),
        );
        registry.register(
            "queue_jobs",
            "Jobs in the queue now, by kind and state (pending, due now, parked)",
            m.queue_jobs.clone(),
        );
        registry.register_with_unit(
            "queue_oldest_due_age",
            "How long the oldest due job has waited past its run time (0 when none is due)",
            Unit::Seconds,
            m.queue_oldest_due_age.clone(),
        );
        registry.register(
            "store_writes",
            "Writes committed by the SQLite store (0 on PostgreSQL)",
            m.store_writes.clone(),
        );
        registry.register(
            "store_commits",
            "Commits (fsyncs) the SQLite store's writes shared (0 on PostgreSQL)",
            m.store_commits.clone(),
        );
        registry.register(
            "github_calls",
            "GitHub API calls as an installation, by call (read or write) and outcome",
            m.github_calls.clone(),
        );
        registry.register(
            "github_rate_limit_waits",
            "GitHub calls not made because of a rate limit or budget, by gate",
            m.github_waits.clone(),
        );
        registry.register_with_unit(
            "github_rate_limit_wait",
            "Seconds the refused GitHub calls were told to wait, by gate",
            Unit::Seconds,
            m.github_wait_seconds.clone(),
        );
        registry.register(
            "securityhub_calls",
            "Security Hub API attempts, by operation and outcome",
            m.securityhub_calls.clone(),
        );
        registry.register(
            "http_requests",
            "Webhook and intake requests answered, by endpoint and status class",
            m.http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer a webhook or intake request, by endpoint",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        m.preset();
        Metrics { registry, ..m }
    }

    /// Creates every child of every labelled family (at zero).
    fn preset(&self) {
        for d in DISPOSITIONS {
            self.findings_received
                .get_or_create_owned(&one("disposition", d));
        }
        for r in Reason::iter().filter(|r| *r != Reason::Ticket) {
            self.findings_skipped
                .get_or_create_owned(&one("reason", r.as_str()));
        }
        for l in ESCALATION_LEVELS {
            self.escalations.get_or_create_owned(&one("level", l));
        }
        for kind in KNOWN_KINDS.iter().copied().chain(["unknown"]) {
            for r in JOB_RESULTS {
                self.jobs_finished
                    .get_or_create_owned(&two("kind", kind, "result", r));
            }
            self.jobs_parked.get_or_create_owned(&one("kind", kind));
            self.job_duration.get_or_create_owned(&one("kind", kind));
            for s in QUEUE_STATES {
                self.queue_jobs
                    .get_or_create_owned(&two("kind", kind, "state", s));
            }
        }
        for call in ["read", "write"] {
            for o in GITHUB_OUTCOMES {
                self.github_calls
                    .get_or_create_owned(&two("call", call, "outcome", o));
            }
        }
        for g in GITHUB_GATES {
            self.github_waits.get_or_create_owned(&one("gate", g));
            self.github_wait_seconds
                .get_or_create_owned(&one("gate", g));
        }
        for op in SECURITYHUB_OPERATIONS {
            for o in SECURITYHUB_OUTCOMES {
                self.securityhub_calls
                    .get_or_create_owned(&two("operation", op, "outcome", o));
            }
        }
        for e in ENDPOINTS {
            self.http_duration.get_or_create_owned(&one("endpoint", e));
            for s in STATUS_CLASSES {
                self.http_requests
                    .get_or_create_owned(&two("endpoint", e, "status", s));
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The `Content-Type` of [`Metrics::encode`]'s text.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    /// A finding the intake committed: `disposition` is one of [`DISPOSITIONS`]; `skipped`
    /// carries the policy's reason when the policy gave it no issue.
    pub fn finding_received(&self, disposition: &'static str, skipped: Option<Reason>) {
        self.findings_received
            .get_or_create(&one("disposition", disposition))
            .inc();
        if let Some(reason) = skipped {
            self.findings_skipped
                .get_or_create(&one("reason", reason.as_str()))
                .inc();
        }
    }

    /// A job run of `kind` ended with `result` (one of [`JOB_RESULTS`]) after `took`, its
    /// outcome committed.
    pub fn job_finished(&self, kind: &str, result: &str, took: Duration) {
        let kind = job_kind(kind);
        let result = JOB_RESULTS
            .iter()
            .find(|r| **r == result)
            .copied()
            .unwrap_or("retry");
        self.jobs_finished
            .get_or_create(&two("kind", kind, "result", result))
            .inc();
        self.job_duration
            .get_or_create(&one("kind", kind))
            .observe(took.as_secs_f64());
        if result == "dead" {
            self.jobs_parked.get_or_create(&one("kind", kind)).inc();
        }
    }

    /// Counts the lifecycle events in audit entries a job just committed (the audit trail's
    /// stable codes; see `worker::lifecycle::step` and `worker::open_issue`).
    pub fn committed(&self, audit: &[AuditEntry]) {
        for entry in audit {
            let codes = || entry.action.split(',');
            if matches!(entry.action.as_str(), "issue-opened" | "issue-adopted") {
                self.issues_opened.inc();
            }
            if entry.action.starts_with("effect-") && entry.action.ends_with("-parked") {
                self.effects_parked.inc();
            }
            let open = |side: &str| entry.detail.get(side)?.get("open")?.as_bool();
            match (open("before"), open("after")) {
                (Some(true), Some(false)) => self.issues_closed.inc(),
                (Some(false), Some(true)) => self.issues_reopened.inc(),
                _ => 0,
            };
            for code in codes() {
                match code {
                    "exception-approved" => {
                        self.exceptions_approved.inc();
                    }
                    "exception-ended"
                        if entry.detail.get("event").and_then(|e| e.as_str())
                            == Some("timer.exception-expiry") =>
                    {
                        self.exceptions_expired.inc();
                    }
                    "escalated-to-backup" => {
                        self.escalations
                            .get_or_create(&one("level", "backup"))
                            .inc();
                    }
                    "escalated-to-security" => {
                        self.escalations
                            .get_or_create(&one("level", "security"))
                            .inc();
                    }
                    _ => {}
                }
            }
        }
    }

    /// A GitHub call as an installation ended with `outcome` (one of [`GITHUB_OUTCOMES`]).
    pub fn github_call(&self, write: bool, outcome: &'static str) {
        let call = if write { "write" } else { "read" };
        self.github_calls
            .get_or_create(&two("call", call, "outcome", outcome))
            .inc();
    }

    /// A GitHub call was not made: `gate` (one of [`GITHUB_GATES`]) holds it for `wait`.
    pub fn github_wait(&self, gate: &'static str, wait: Duration) {
        self.github_waits.get_or_create(&one("gate", gate)).inc();
        self.github_wait_seconds
            .get_or_create(&one("gate", gate))
            .inc_by(wait.as_secs_f64());
    }

    /// One Security Hub attempt of `operation` ended with `outcome`.
    pub fn securityhub_call(&self, operation: &'static str, outcome: &'static str) {
        self.securityhub_calls
            .get_or_create(&two("operation", operation, "outcome", outcome))
            .inc();
    }

    /// A request to `endpoint` (one of [`ENDPOINTS`]) answered `status` after `took`.
    pub fn http_request(&self, endpoint: &'static str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&two("endpoint", endpoint, "status", status_class(status)))
            .inc();
        self.http_duration
            .get_or_create(&one("endpoint", endpoint))
            .observe(took.as_secs_f64());
    }

    /// Brings the store's write counters up to the totals the store keeps (`None`: PostgreSQL,
    /// which does not count them).
    pub fn set_store_writes(&self, stats: Option<CombineStats>) {
        let Some(stats) = stats else { return };
        let _one_at_a_time = self.store_totals.lock().unwrap_or_else(|e| e.into_inner());
        for (counter, total) in [
            (&self.store_writes, stats.parts),
            (&self.store_commits, stats.commits),
        ] {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        }
    }

    /// Sets the queue gauges from what the store counted (kinds absent from `stats` at zero).
    pub fn set_queue(&self, stats: &[QueueStats], now: chrono::DateTime<chrono::Utc>) {
        for kind in KNOWN_KINDS.iter().copied().chain(["unknown"]) {
            for s in QUEUE_STATES {
                self.queue_jobs
                    .get_or_create(&two("kind", kind, "state", s))
                    .set(0);
            }
        }
        let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
        for q in stats {
            let kind = job_kind(&q.kind);
            for (state, n) in [("pending", q.pending), ("due", q.due), ("parked", q.parked)] {
                self.queue_jobs
                    .get_or_create(&two("kind", kind, "state", state))
                    .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
            }
            if let Some(at) = q.oldest_due {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        let age = oldest
            .map(|at| (now - at).to_std().unwrap_or_default().as_secs_f64())
            .unwrap_or(0.0);
        self.queue_oldest_due_age.set(age);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn entry(action: &str, detail: serde_json::Value) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            actor: "lever".into(),
            action: action.into(),
            group_key: None,
            issue: None,
            source: None,
            detail,
        }
    }

    /// The value of the sample `line` starts with (name and labels), from `text`.
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn metrics_every_family_is_listed_before_anything_happens() {
        let text = Metrics::new().encode();
        for name in [
            "lever_findings_received_total",
            "lever_findings_skipped_total",
            "lever_escalations_total",
            "lever_jobs_finished_total",
            "lever_job_duration_seconds",
            "lever_queue_jobs",
            "lever_queue_oldest_due_age_seconds",
            "lever_github_calls_total",
            "lever_github_rate_limit_wait_seconds_total",
            "lever_securityhub_calls_total",
            "lever_http_requests_total",
            "lever_http_request_duration_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} in\n{text}"
            );
        }
        assert_eq!(
            sample(
                &text,
                r#"lever_findings_skipped_total{reason="below-threshold"}"#
            ),
            0.0
        );
        assert!(!text.contains(r#"reason="ticket""#), "ticket is not a skip");
    }

    #[test]
    fn metrics_audit_entries_count_lifecycle_events() {
        let m = Metrics::new();
        m.committed(&[
            entry("issue-opened", json!({})),
            entry("issue-adopted", json!({})),
            entry(
                "closed-fixed",
                json!({"event": "findings", "before": {"open": true}, "after": {"open": false}}),
            ),
            entry(
                "regression-reopened",
                json!({"event": "findings", "before": {"open": false}, "after": {"open": true}}),
            ),
            entry(
                "exception-ended,handoff",
                json!({"event": "timer.exception-expiry", "before": {"open": false}, "after": {"open": true}}),
            ),
            entry(
                "exception-ended",
                json!({"event": "issues.unlabeled", "before": {"open": true}, "after": {"open": true}}),
            ),
            entry("exception-approved", json!({"event": "issues.labeled"})),
            entry("escalated-to-backup", json!({})),
            entry("effect-close-parked", json!({})),
            entry("observed", json!({"before": {"open": true}, "after": {"open": true}})),
        ]);
        let text = m.encode();
        for (series, want) in [
            ("lever_issues_opened_total", 2.0),
            ("lever_issues_closed_total", 1.0),
            ("lever_issues_reopened_total", 2.0),
            ("lever_exceptions_expired_total", 1.0),
            ("lever_exceptions_approved_total", 1.0),
            (r#"lever_escalations_total{level="backup"}"#, 1.0),
            (r#"lever_escalations_total{level="security"}"#, 0.0),
            ("lever_effects_parked_total", 1.0),
        ] {
            assert_eq!(sample(&text, series), want, "{series}");
        }
    }

    #[test]
    fn metrics_unknown_job_kinds_and_results_stay_bounded() {
        let m = Metrics::new();
        m.job_finished(
            "drop-table-from-the-future",
            "dead",
            Duration::from_millis(3),
        );
        m.job_finished("open-issue", "done", Duration::from_millis(30));
        let text = m.encode();
        assert_eq!(
            sample(&text, r#"lever_jobs_parked_total{kind="unknown"}"#),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                r#"lever_jobs_finished_total{kind="open-issue",result="done"}"#
            ),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                r#"lever_job_duration_seconds_count{kind="open-issue"}"#
            ),
            1.0
        );
        assert!(!text.contains("drop-table"));
    }

    #[test]
    fn metrics_queue_gauges_are_reset_at_each_scrape() {
        let m = Metrics::new();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0).unwrap();
        m.set_queue(
            &[QueueStats {
                kind: "open-issue".into(),
                pending: 3,
                due: 2,
                parked: 1,
                oldest_due: Some(now - chrono::Duration::seconds(45)),
            }],
            now,
        );
        let text = m.encode();
        assert_eq!(
            sample(&text, r#"lever_queue_jobs{kind="open-issue",state="due"}"#),
            2.0
        );
        assert_eq!(sample(&text, "lever_queue_oldest_due_age_seconds"), 45.0);
        m.set_queue(&[], now);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                r#"lever_queue_jobs{kind="open-issue",state="pending"}"#
            ),
            0.0
        );
        assert_eq!(sample(&text, "lever_queue_oldest_due_age_seconds"), 0.0);
    }

    #[test]
    fn metrics_status_classes() {
        for (code, class) in [(200, "2xx"), (202, "2xx"), (401, "4xx"), (503, "5xx")] {
            assert_eq!(status_class(code), class, "{code}");
        }
    }

    /// The store keeps running totals; the counters follow them, never go back, and stay put
    /// on PostgreSQL (`None`).
    #[test]
    fn the_store_counters_follow_the_store_totals() {
        let m = Metrics::new();
        let read = |m: &Metrics| {
            let text = m.encode();
            (
                sample(&text, "lever_store_writes_total"),
                sample(&text, "lever_store_commits_total"),
            )
        };
        assert_eq!(read(&m), (0.0, 0.0));
        for (stats, want) in [
            (Some((3, 2)), (3.0, 2.0)),
            (Some((3, 2)), (3.0, 2.0)),
            (Some((10, 4)), (10.0, 4.0)),
            (None, (10.0, 4.0)),
            (Some((7, 1)), (10.0, 4.0)),
        ] {
            m.set_store_writes(stats.map(|(parts, commits)| CombineStats { parts, commits }));
            assert_eq!(read(&m), want, "{stats:?}");
        }
    }
}
