use super::*;
use crate::config::{AccountPolicy, Mode, PolicySettings};
use crate::domain::sample::control_finding;
use crate::domain::{ComplianceStatus, Note, RecordState, Severity, WorkflowStatus};

fn account(mode: Mode, min: Severity) -> AccountPolicy {
    AccountPolicy {
        id: Some("111111111111".into()),
        name: Some("payments-prod".into()),
        environment: "production".into(),
        min_severity: min,
        mode,
    }
}

fn policy() -> PolicySettings {
    PolicySettings {
        ignore_tag: "lever:ignore".into(),
    }
}

type DecideCase = (
    &'static str,
    Mode,
    Severity,
    Severity,
    fn(&mut Finding),
    Reason,
);

#[test]
#[rustfmt::skip]
fn decide_table() {
    let none: fn(&mut Finding) = |_| {};
    let cases: Vec<DecideCase> = vec![
        ("enforce, high >= high", Mode::Enforce, Severity::High, Severity::High, none, Reason::Ticket),
        ("enforce, critical >= high", Mode::Enforce, Severity::High, Severity::Critical, none, Reason::Ticket),
        ("enforce, medium < high", Mode::Enforce, Severity::High, Severity::Medium, none, Reason::BelowThreshold),
        ("critical-only account, high", Mode::Enforce, Severity::Critical, Severity::High, none, Reason::BelowThreshold),
        ("informational floor", Mode::Enforce, Severity::Informational, Severity::Informational, none, Reason::Ticket),
        ("ramp-up tickets", Mode::RampUp, Severity::High, Severity::High, none, Reason::Ticket),
        ("off beats everything", Mode::Off, Severity::Informational, Severity::Critical, none, Reason::AccountOff),
        ("archived", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.record_state = RecordState::Archived, Reason::Archived),
        ("passed", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.compliance = Some(ComplianceStatus::Passed), Reason::Passed),
        ("not available", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.compliance = Some(ComplianceStatus::NotAvailable), Reason::NotAvailable),
        ("warning still tickets", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.compliance = Some(ComplianceStatus::Warning), Reason::Ticket),
        ("no compliance (GuardDuty-like)", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.compliance = None, Reason::Ticket),
        ("suppressed", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.workflow = WorkflowStatus::Suppressed, Reason::Suppressed),
        ("notified still tickets", Mode::Enforce, Severity::Low, Severity::Critical, |f| f.workflow = WorkflowStatus::Notified, Reason::Ticket),
        ("archived beats passed", Mode::Enforce, Severity::Low, Severity::Critical, |f| { f.record_state = RecordState::Archived; f.compliance = Some(ComplianceStatus::Passed) }, Reason::Archived),
        ("passed beats below-threshold", Mode::Enforce, Severity::Critical, Severity::Low, |f| f.compliance = Some(ComplianceStatus::Passed), Reason::Passed),
        ("ignore tag with reason", Mode::Enforce, Severity::Low, Severity::Critical, |f| { f.resources[0].tags.insert("lever:ignore".into(), "decommissioned in Q1".into()); }, Reason::Ignored),
        ("ignore tag in ramp-up", Mode::RampUp, Severity::Low, Severity::Critical, |f| { f.resources[0].tags.insert("lever:ignore".into(), "test data only".into()); }, Reason::Ignored),
        ("ignore tag without reason", Mode::Enforce, Severity::Low, Severity::Critical, |f| { f.resources[0].tags.insert("lever:ignore".into(), "  ".into()); }, Reason::Ticket),
        ("below threshold beats ignore", Mode::Enforce, Severity::Critical, Severity::High, |f| { f.resources[0].tags.insert("lever:ignore".into(), "x".into()); }, Reason::BelowThreshold),
    ];
    for (name, mode, min, sev, tweak, want) in cases {
        let mut f = control_finding("S3.1", "S3 Block Public Access setting should be enabled", sev);
        tweak(&mut f);
        let v = decide(&f, &account(mode, min), &policy());
        assert_eq!(v.reason, want, "{name}: {}", v.detail);
        let want_decision = if want == Reason::Ticket { Decision::Ticket } else { Decision::Skip };
        assert_eq!(v.decision, want_decision, "{name}");
        assert!(!v.detail.is_empty(), "{name}: detail must explain");
    }
}

#[test]
fn details_name_the_deciding_values() {
    let f = control_finding("S3.1", "t", Severity::Medium);
    let v = decide(&f, &account(Mode::Enforce, Severity::High), &policy());
    assert_eq!(
        v.detail,
        "severity MEDIUM is below the minimum HIGH of account 111111111111 (payments-prod)"
    );
    let v = decide(&f, &account(Mode::RampUp, Severity::Low), &policy());
    assert!(v.detail.contains("ramp-up"), "{}", v.detail);
    let mut unknown = account(Mode::Enforce, Severity::Critical);
    unknown.name = None;
    let v = decide(&f, &unknown, &policy());
    assert!(
        v.detail.contains("not configured, defaults apply"),
        "{}",
        v.detail
    );
    let mut tagged = f.clone();
    tagged.resources[0]
        .tags
        .insert("lever:ignore".into(), "".into());
    let v = decide(&tagged, &account(Mode::Enforce, Severity::Low), &policy());
    assert!(v.detail.contains("has no reason"), "{}", v.detail);
}

#[test]
fn reason_codes_are_stable() {
    let codes: Vec<&str> = [
        Reason::Ticket,
        Reason::AccountOff,
        Reason::Archived,
        Reason::Passed,
        Reason::NotAvailable,
        Reason::Suppressed,
        Reason::BelowThreshold,
        Reason::Ignored,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(
        codes,
        [
            "ticket",
            "account-off",
            "archived",
            "passed",
            "not-available",
            "suppressed",
            "below-threshold",
            "ignored"
        ]
    );
    for r in [Reason::BelowThreshold, Reason::AccountOff] {
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!(r.as_str())
        );
    }
}

fn prev_of(f: &Finding) -> (String, Option<String>, WorkflowStatus, Option<String>) {
    (
        fingerprint(f),
        f.updated_at.clone(),
        f.workflow,
        f.note.as_ref().map(|n| n.text.clone()),
    )
}

type ClassifyCase = (&'static str, fn(&mut Finding), Change);

#[test]
#[rustfmt::skip]
fn classify_table() {
    let base = control_finding("S3.1", "t", Severity::High);
    let cases: Vec<ClassifyCase> = vec![
        ("identical", |_| {}, Change::Repeat),
        ("updated_at only", |f| f.updated_at = Some("2026-11-21T00:00:00Z".into()), Change::Refreshed),
        ("observed times only", |f| f.last_observed_at = Some("2026-11-22T00:00:00Z".into()), Change::Repeat),
        ("severity", |f| f.severity = Severity::Critical, Change::Changed),
        ("compliance passed", |f| f.compliance = Some(ComplianceStatus::Passed), Change::Changed),
        ("archived", |f| f.record_state = RecordState::Archived, Change::Changed),
        ("new resource", |f| { let mut r = f.resources[0].clone(); r.id.push_str("-2"); f.resources.push(r); }, Change::Changed),
        ("resource tag", |f| { f.resources[0].tags.insert("team".into(), "ledger".into()); }, Change::Changed),
        ("lever's own echo", |f| {
            f.workflow = WorkflowStatus::Notified;
            f.updated_at = Some("2026-11-21T00:00:00Z".into());
            f.note = Some(Note { text: "Tracked in acme/payments#1".into(), updated_by: "lever".into(), updated_at: None });
        }, Change::OwnEcho),
        ("workflow changed by a person", |f| {
            f.workflow = WorkflowStatus::Suppressed;
            f.note = Some(Note { text: "accepted risk".into(), updated_by: "arn:aws:iam::1:user/alice".into(), updated_at: None });
        }, Change::Changed),
        ("stale replay: workflow differs, no note", |f| f.workflow = WorkflowStatus::Notified, Change::Repeat),
        ("stale replay with a newer UpdatedAt", |f| { f.workflow = WorkflowStatus::Notified; f.updated_at = Some("2026-11-21T00:00:00Z".into()); }, Change::Refreshed),
    ];
    for (name, tweak, want) in cases {
        let mut f = base.clone();
        tweak(&mut f);
        let (fp, upd, wf, note) = prev_of(&base);
        let prev = Previous { updated_at: upd.as_deref(), fingerprint: &fp, workflow: wf, note_text: note.as_deref() };
        assert_eq!(classify(Some(prev), &f, "lever"), want, "{name}");
    }
    assert_eq!(classify(None, &base, "lever"), Change::New);
}

#[test]
fn fingerprint_ignores_resource_order() {
    let mut a = control_finding("S3.1", "t", Severity::High);
    let mut r2 = a.resources[0].clone();
    r2.id = "arn:aws:s3:::other".into();
    a.resources.push(r2);
    let mut b = a.clone();
    b.resources.reverse();
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_eq!(fingerprint(&a).len(), 32);
}
