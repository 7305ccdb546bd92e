//! What 64600c1 left in its database, in its shapes: groups in every lifecycle state with the
//! outbox inside `data` (64600c1's `pipeline::new_group`, `worker::open_issue::record`,
//! `worker::lifecycle::step`), their findings, pending jobs of every kind it had (with
//! `payload '{}'`, as its `NewJob`s were), some finished ones, deliveries, audit and kv.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use lever::config::Config;
use lever::controls::Catalog;
use lever::domain::lifecycle::{
    Ack, Action, CloseReason, Closure, Exception, FindingsView, State, Timer, Verification,
};
use lever::domain::{Finding, GroupKey, StableKey, WorkflowStatus};
use lever::store::{AuditEntry, DeliveryId, Effect, FindingRecord, Job};

use super::raw::{Raw, q, q_opt};
use crate::support::app::{INSTALLATION, NOW, root, t};

pub const LEDGER: &str = "acme/ledger";

/// A 64600c1 worker still running during the upgrade, in the middle of the "fixed" group's
/// `apply-effects`.
pub const IN_FLIGHT: &str = "lever-64600c1-in-flight";

/// The instant of the upgrade (the harness's clock).
pub fn now() -> DateTime<Utc> {
    t(NOW)
}

/// One issue group as 64600c1 stored it, and what this version must make of it.
pub struct OldGroup {
    pub name: &'static str,
    pub key: GroupKey,
    pub finding: Finding,
    /// The finding as Security Hub holds it.
    pub asff: Value,
    pub status: &'static str,
    pub issue: Option<u64>,
    pub version: i64,
    /// The `data` column exactly as 64600c1 wrote it (with its `outbox` array, if any).
    pub data: Value,
    pub lifecycle: Option<State>,
    /// The old `data.outbox`, typed: the rows 0002 must make of it, in this order.
    pub outbox: Vec<Effect>,
}

impl OldGroup {
    pub fn url(&self) -> Option<String> {
        self.issue
            .map(|n| format!("https://github.com/{LEDGER}/issues/{n}"))
    }

    /// Its one finding as 64600c1 recorded it.
    pub fn finding_record(&self) -> FindingRecord {
        let f = &self.finding;
        FindingRecord {
            product_arn: f.product_arn.clone(),
            finding_id: f.id.clone(),
            stable_key: StableKey::for_finding(f),
            group_key: self.key.clone(),
            account_id: f.account_id.clone(),
            severity: f.severity,
            compliance: f.compliance,
            record_state: f.record_state,
            workflow: f.workflow,
            updated_at: f.updated_at.clone(),
            fingerprint: lever::policy::fingerprint(f),
            finding: f.clone(),
            lever_writes: vec![],
            first_seen: now() - Duration::days(20),
            last_seen: now() - Duration::days(1),
        }
    }
}

/// One row of 64600c1's `jobs` table.
pub struct OldJob {
    pub kind: &'static str,
    pub subject: String,
    pub state: &'static str,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub lease: Option<(&'static str, DateTime<Utc>)>,
    pub last_error: Option<&'static str>,
    /// What this version must read it as.
    pub expect: Job,
}

/// The job this version must read from an old `(kind, subject)` row: 64600c1's kinds, one by
/// one (written out here, not taken from `Job::from_parts`).
fn expected(kind: &str, subject: &str) -> Job {
    let g = || GroupKey(subject.to_string());
    match kind {
        "open-issue" => Job::OpenIssue(g()),
        "notify-findings" => Job::NotifyFindings(g()),
        "github-event" => Job::GithubEvent(DeliveryId(subject.to_string())),
        "apply-effects" => Job::ApplyEffects(g()),
        "sync-group" => Job::SyncGroup(g()),
        "timer-exception-expiry" => Job::Timer(Timer::ExceptionExpiry, g()),
        "timer-verify" => Job::Timer(Timer::Verify, g()),
        "timer-escalation" => Job::Timer(Timer::Escalation, g()),
        "timer-sla" => Job::Timer(Timer::Sla, g()),
        "handoffs" => Job::Handoffs,
        "digest" => Job::Digest,
        "ensure-labels" => Job::EnsureLabels(subject.to_string()),
        "sync" => Job::Sync,
        other => panic!("64600c1 had no job kind {other:?}"),
    }
}

impl OldJob {
    fn pending(kind: &'static str, subject: &str, run_at: DateTime<Utc>) -> OldJob {
        OldJob {
            kind,
            subject: subject.to_string(),
            state: "pending",
            run_at,
            attempts: 0,
            lease: None,
            last_error: None,
            expect: expected(kind, subject),
        }
    }
}

/// A delivery as 64600c1 and 691e1c2 (schemas 0001, 0002) stored it: GitHub's payload as JSON.
pub struct OldDelivery {
    pub id: String,
    pub event: String,
    pub payload: Value,
    pub received_at: DateTime<Utc>,
}

pub struct Old {
    pub groups: Vec<OldGroup>,
    pub jobs: Vec<OldJob>,
    pub deliveries: Vec<OldDelivery>,
    pub kv: Vec<(String, String)>,
    /// In `seq` order, from 1.
    pub audit: Vec<AuditEntry>,
}

impl Old {
    pub fn group(&self, name: &str) -> &OldGroup {
        self.groups.iter().find(|g| g.name == name).unwrap()
    }
}

/// A variant of the demo's ledger finding (RDS.2, CRITICAL, payments-prod, `team=ledger`):
/// one group per variant, routed to `acme/ledger`, owned by carol.
fn ledger_asff(name: &str, workflow: WorkflowStatus, compliance: &str) -> Value {
    let path = root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:111111111111:security-control/RDS.2/finding/upgrade-{name}"
    ));
    v["Resources"][0]["Id"] = json!(format!(
        "arn:aws:rds:us-east-1:111111111111:db:ledger-{name}"
    ));
    v.as_object_mut().unwrap().remove("WorkflowState");
    v["Workflow"]["Status"] = json!(workflow.as_str());
    v["Compliance"]["Status"] = json!(compliance);
    v
}

/// A group: name, issue, status, the finding's workflow and compliance, the lifecycle state,
/// and the effects still waiting in its outbox.
struct Spec(
    &'static str,
    Option<u64>,
    &'static str,
    WorkflowStatus,
    &'static str,
    Option<State>,
    Vec<Action>,
);

fn specs(now: DateTime<Utc>) -> Vec<Spec> {
    use WorkflowStatus::{New, Notified};
    let labels = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let open = |names: &[&str]| State {
        open: true,
        assignee: Some("carol".into()),
        labels: labels(names),
        ..State::default()
    };
    let closed = |closure, names: &[&str]| State {
        open: false,
        closure: Some(closure),
        ..open(names)
    };
    let comment = |body: &str| Action::Comment { body: body.into() };
    let label = |label: &str| Action::AddLabel {
        label: label.into(),
    };
    let ack = |days| {
        Some(Ack {
            by: "carol".into(),
            at: now - Duration::days(days),
        })
    };
    vec![
        // Decided, no issue yet (`new_group`: no lifecycle, no outbox).
        Spec("pending", None, "pending", New, "FAILED", None, vec![]),
        // Its issue was deleted while the problem remained (`Recreate`: a default lifecycle,
        // an emptied outbox, `recreated_from`).
        Spec(
            "recreated",
            None,
            "pending",
            Notified,
            "FAILED",
            Some(State::default()),
            vec![],
        ),
        // Open, unacknowledged; the acknowledgement deadline passed during the upgrade.
        Spec(
            "open",
            Some(1),
            "open",
            New,
            "FAILED",
            Some(State {
                ack_deadline: Some(now - Duration::hours(1)),
                due: Some(now + Duration::days(6)),
                ..open(&["security-finding"])
            }),
            vec![
                comment("@carol owns this issue: add the `acknowledged` label to take it."),
                label("security-finding"),
            ],
        ),
        // Open, acknowledged; the fix deadline passed during the upgrade.
        Spec(
            "acknowledged",
            Some(2),
            "open",
            Notified,
            "FAILED",
            Some(State {
                acknowledged: ack(3),
                due: Some(now - Duration::hours(1)),
                reminded: true,
                ..open(&["security-finding", "acknowledged"])
            }),
            vec![comment("Acknowledged by @carol."), label("acknowledged")],
        ),
        // Open, an exception requested and approved (it starts when the issue is closed).
        Spec(
            "exception-approved",
            Some(3),
            "open",
            Notified,
            "FAILED",
            Some(State {
                approved_by: Some("cto-user".into()),
                acknowledged: ack(2),
                due: Some(now + Duration::days(5)),
                ..open(&[
                    "security-finding",
                    "acknowledged",
                    "exception-requested",
                    "cto-approved",
                ])
            }),
            vec![
                comment("Approved by @cto-user: the exception starts when the issue is closed."),
                label("cto-approved"),
            ],
        ),
        // Closed with an exception in force, not yet sent to Security Hub; it expired during
        // the upgrade.
        Spec(
            "exception",
            Some(4),
            "closed",
            Notified,
            "FAILED",
            Some(State {
                exception: Some(Exception {
                    approver: "cto-user".into(),
                    approved_at: now - Duration::hours(3),
                    expires_at: now - Duration::hours(1),
                    covers: None,
                }),
                ..closed(
                    Closure::Exception,
                    &["security-finding", "exception-requested", "cto-approved"],
                )
            }),
            vec![
                comment("Exception approved by cto-user: Security Hub suppresses the findings."),
                Action::UpdateFindings {
                    workflow: WorkflowStatus::Suppressed,
                    note: "Exception approved by cto-user".into(),
                    resources: None,
                },
            ],
        ),
        // Closed by carol without approval: waiting for Security Hub to confirm the fix.
        Spec(
            "verification",
            Some(5),
            "closed",
            Notified,
            "FAILED",
            Some(State {
                verification: Some(Verification {
                    closed_by: "carol".into(),
                    closed_at: now - Duration::hours(1),
                    commented: false,
                    grace_until: None,
                }),
                ..closed(Closure::Unverified, &["security-finding"])
            }),
            vec![
                comment("Closed by @carol: Lever checks with Security Hub in 15 minutes."),
                label("needs-verification"),
            ],
        ),
        // Security Hub reports it fixed: Lever decided to close the issue, not done yet.
        Spec(
            "fixed",
            Some(6),
            "closed",
            Notified,
            "PASSED",
            Some(closed(Closure::Fixed, &["security-finding"])),
            vec![
                comment("Security Hub reports every resource fixed: closing."),
                Action::Close {
                    reason: CloseReason::Completed,
                },
            ],
        ),
    ]
}

fn old_group(config: &Config, spec: Spec, source: &str) -> OldGroup {
    let Spec(name, issue, status, workflow, compliance, mut lifecycle, actions) = spec;
    let now = now();
    let asff = ledger_asff(name, workflow, compliance);
    let intake = lever::asff::parse_value(&asff, Catalog::embedded()).expect("ASFF");
    let finding = intake.findings().next().cloned().expect("one finding");
    let key = GroupKey::for_finding(&finding, &config.settings.grouping);
    let account = config.account(&finding.account_id);
    let route = lever::routing::route(&finding, config, now, &|_| None);
    let verdict = lever::policy::decide(&finding, account, &config.settings.policy);
    // 64600c1's `Route` had no `assignees`.
    let mut route = serde_json::to_value(&route).unwrap();
    route.as_object_mut().unwrap().remove("assignees");
    let mut data = json!({
        "route": route,
        "account_id": finding.account_id,
        "environment": account.environment,
        "mode": account.mode,
        "severity": finding.severity,
        "control_id": finding.control_id(),
        "title": finding.title,
        "reason": verdict.detail,
    });
    let outbox: Vec<Effect> = actions
        .into_iter()
        .map(|action| Effect {
            id: uuid::Uuid::new_v4().simple().to_string(),
            group_key: key.clone(),
            action,
            source: source.to_string(),
        })
        .collect();
    if let Some(state) = lifecycle.as_mut() {
        state.findings = FindingsView::of(std::slice::from_ref(&finding));
        data["lifecycle"] = json!(state);
        if name == "exception-approved" {
            // 64600c1 kept one `Exception-Expires:` date for anyone's approval; this version
            // keeps each approver's own for the current period, and drops the old one.
            data["lifecycle"]["requested_expiry"] = json!("2027-01-31");
        }
        // 64600c1's `lifecycle::Effect`: {id, action, source}.
        let effects: Vec<Value> = outbox
            .iter()
            .map(|e| json!({"id": e.id, "action": e.action, "source": e.source}))
            .collect();
        data["outbox"] = json!(effects);
    }
    if name == "recreated" {
        data["recreated_from"] = json!(format!("https://github.com/{LEDGER}/issues/99"));
    }
    OldGroup {
        name,
        key,
        finding,
        asff,
        status,
        issue,
        version: if issue.is_some() { 4 } else { 0 },
        data,
        lifecycle,
        outbox,
    }
}

pub fn world(config: &Config) -> Old {
    let now = now();
    let groups: Vec<OldGroup> = specs(now)
        .into_iter()
        .enumerate()
        .map(|(i, spec)| old_group(config, spec, &format!("job:{}", 100 + i)))
        .collect();
    let g = |name: &str| {
        groups
            .iter()
            .find(|g| g.name == name)
            .unwrap()
            .key
            .0
            .clone()
    };
    let delivery = format!("github:{}", uuid::Uuid::new_v4());
    let minutes = Duration::minutes;
    let mut jobs: Vec<OldJob> = [
        ("open-issue", g("pending"), now - minutes(5)),
        ("open-issue", g("recreated"), now - minutes(5)),
        ("notify-findings", g("open"), now - minutes(30)),
        ("github-event", delivery.clone(), now - minutes(10)),
        ("sync-group", g("fixed"), now - minutes(180)),
        ("timer-exception-expiry", g("exception"), now - minutes(60)),
        ("timer-verify", g("verification"), now - minutes(45)),
        ("timer-escalation", g("open"), now - minutes(60)),
        ("timer-sla", g("acknowledged"), now - minutes(60)),
        // The demo rotations' weekly handoff, and the weekly digest.
        ("handoffs", "rotations".into(), t("2026-11-23T00:00:00Z")),
        ("digest", "digest".into(), t("2026-11-23T09:00:00Z")),
        ("ensure-labels", LEDGER.into(), now - minutes(5)),
        ("sync", "securityhub".into(), now - minutes(6)),
    ]
    .into_iter()
    .map(|(kind, subject, run_at)| OldJob::pending(kind, &subject, run_at))
    .collect();
    // The sync was running on a 64600c1 worker stopped for the upgrade (its lease ran out).
    let sync = jobs.last_mut().unwrap();
    sync.attempts = 1;
    sync.lease = Some(("lever-64600c1-worker", now - minutes(1)));
    for g in groups.iter().filter(|g| !g.outbox.is_empty()) {
        let mut job = OldJob::pending("apply-effects", &g.key.0, now - minutes(120));
        if g.name == "fixed" {
            // Running on a 64600c1 worker that is still up (see `IN_FLIGHT`).
            job.attempts = 1;
            job.lease = Some((IN_FLIGHT, now + minutes(4)));
        }
        jobs.push(job);
    }
    // History: the issues 64600c1 opened, and a job it gave up on.
    for g in groups.iter().filter(|g| g.issue.is_some()) {
        jobs.push(OldJob {
            state: "done",
            attempts: 1,
            ..OldJob::pending("open-issue", &g.key.0, now - Duration::days(20))
        });
    }
    jobs.push(OldJob {
        state: "dead",
        attempts: 36,
        last_error: Some("Security Hub: ServiceUnavailable"),
        ..OldJob::pending("notify-findings", &g("exception"), now - Duration::days(10))
    });

    let deliveries = vec![
        OldDelivery {
            id: format!("github:{}", uuid::Uuid::new_v4()),
            event: "issues.opened".into(),
            payload: json!({"action": "opened", "issue": {"number": 1},
                            "repository": {"full_name": LEDGER}}),
            received_at: now - Duration::days(20),
        },
        OldDelivery {
            id: "eventbridge:3f2c1b8e-0d7a-4d9e-9c51-0000000000c1".into(),
            event: "Security Hub Findings - Imported".into(),
            payload: json!({"detail-type": "Security Hub Findings - Imported",
                            "detail": {"findings": []}}),
            received_at: now - Duration::days(1),
        },
        // What the pending `github-event` is for: carol added `in-progress` on #2 (64600c1
        // stored GitHub's payload; these are the fields it reads).
        OldDelivery {
            id: delivery,
            event: "issues.labeled".into(),
            payload: json!({
                "action": "labeled",
                "issue": {
                    "number": 2,
                    "state": "open",
                    "html_url": format!("https://github.com/{LEDGER}/issues/2"),
                    "labels": [{"name": "security-finding"}, {"name": "acknowledged"},
                               {"name": "in-progress"}],
                },
                "label": {"name": "in-progress"},
                "repository": {"full_name": LEDGER, "private": true},
                "sender": {"login": "carol", "type": "User"},
                "installation": {"id": INSTALLATION},
            }),
            received_at: now - minutes(10),
        },
    ];
    let kv = vec![
        (format!("labels:{LEDGER}"), "1".to_string()),
        ("sync.cursor".into(), (now - minutes(120)).to_rfc3339()),
    ];
    let mut audit = Vec::new();
    for g in &groups {
        let entry = |action: &str, actor: &str, issue: Option<String>, detail| AuditEntry {
            seq: 0,
            at: now - Duration::days(20),
            actor: actor.into(),
            action: action.into(),
            group_key: Some(g.key.clone()),
            issue,
            source: Some("eventbridge:demo".into()),
            detail,
        };
        audit.push(entry(
            "group-created",
            "securityhub",
            None,
            json!({"finding_id": g.finding.id, "repo": LEDGER, "owner": "carol"}),
        ));
        if let Some(n) = g.issue {
            audit.push(entry(
                "issue-opened",
                "lever",
                Some(format!("{LEDGER}#{n}")),
                json!({"url": g.url(), "owner": "carol"}),
            ));
        }
    }
    for (i, a) in audit.iter_mut().enumerate() {
        a.seq = i as i64 + 1;
    }
    Old {
        groups,
        jobs,
        deliveries,
        kv,
        audit,
    }
}

/// Writes `old` into 64600c1's schema with raw SQL, in its column shapes.
pub async fn write(raw: &Raw, old: &Old) {
    let mut sql = String::new();
    let mut insert = |table: &str, cols: &str, values: Vec<String>| {
        sql.push_str(&format!(
            "INSERT INTO {table} ({cols}) VALUES ({});\n",
            values.join(", ")
        ));
    };
    let created = now() - Duration::days(20);
    for g in &old.groups {
        let r = g.finding_record();
        insert(
            "findings",
            "product_arn, finding_id, stable_key, group_key, account_id, severity, compliance,
             record_state, workflow, asff_updated_at, fingerprint, data, first_seen, last_seen",
            vec![
                q(&r.product_arn),
                q(&r.finding_id),
                q(&r.stable_key.0),
                q(&r.group_key.0),
                q(&r.account_id),
                q(r.severity.as_str()),
                q_opt(r.compliance.map(|c| c.as_str())),
                q(r.record_state.as_str()),
                q(r.workflow.as_str()),
                q_opt(r.updated_at.as_deref()),
                q(&r.fingerprint),
                raw.json(&serde_json::to_value(&r.finding).unwrap()),
                raw.ts(r.first_seen),
                raw.ts(r.last_seen),
            ],
        );
        insert(
            "groups",
            "group_key, repo, issue_number, issue_url, status, assignee, data, created_at,
             updated_at, version",
            vec![
                q(&g.key.0),
                q(LEDGER),
                g.issue.map_or("NULL".into(), |n| n.to_string()),
                q_opt(g.url().as_deref()),
                q(g.status),
                q("carol"),
                raw.json(&g.data),
                raw.ts(created),
                raw.ts(now() - Duration::hours(2)),
                g.version.to_string(),
            ],
        );
    }
    for j in &old.jobs {
        let created = j.run_at.min(now() - Duration::minutes(1));
        insert(
            "jobs",
            "kind, subject, payload, state, run_at, attempts, lease_owner, lease_expires,
             last_error, created_at, updated_at",
            vec![
                q(j.kind),
                q(&j.subject),
                raw.json(&json!({})),
                q(j.state),
                raw.ts(j.run_at),
                j.attempts.to_string(),
                q_opt(j.lease.map(|(owner, _)| owner)),
                raw.ts_opt(j.lease.map(|(_, expires)| expires)),
                q_opt(j.last_error),
                raw.ts(created),
                raw.ts(created),
            ],
        );
    }
    for d in &old.deliveries {
        insert(
            "deliveries",
            "id, event, payload, received_at",
            vec![
                q(&d.id),
                q(&d.event),
                raw.json(&d.payload),
                raw.ts(d.received_at),
            ],
        );
    }
    for (k, v) in &old.kv {
        insert(
            "kv",
            "key, value, updated_at",
            vec![q(k), q(v), raw.ts(now() - Duration::hours(2))],
        );
    }
    for a in &old.audit {
        insert(
            "audit",
            "at, actor, action, group_key, issue, source, detail",
            vec![
                raw.ts(a.at),
                q(&a.actor),
                q(&a.action),
                q_opt(a.group_key.as_ref().map(|k| k.0.as_str())),
                q_opt(a.issue.as_deref()),
                q_opt(a.source.as_deref()),
                raw.json(&a.detail),
            ],
        );
    }
    raw.exec(&sql).await;
}
