use super::*;
use crate::config::{AccountPolicy, IgnoreTags, Mode, PolicySettings};
use crate::domain::sample::control_finding;
use crate::domain::{ComplianceStatus, LeverWrite, Note, RecordState, Severity, WorkflowStatus};

fn account(mode: Mode, min: Severity) -> AccountPolicy {
    AccountPolicy {
        id: Some("111111111111".into()),
        name: Some("payments-prod".into()),
        environment: "production".into(),
        min_severity: min,
        mode,
        ignore_tags: Default::default(),
        schedule: Default::default(),
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
        ("ignore tag with reason, enforce: not outside ramp-up", Mode::Enforce, Severity::Low, Severity::Critical, |f| { f.resources[0].tags.insert("lever:ignore".into(), "decommissioned in Q1".into()); }, Reason::Ticket),
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

type IgnoreCase = (IgnoreTags, Mode, Option<&'static str>, IgnoreTag, Reason);

/// Where an ignore tag keeps an issue from opening: per account `ignore_tags` × mode × tag.
#[test]
#[rustfmt::skip]
fn ignore_tag_table() {
    let honoured = || IgnoreTag::Honoured { reason: "test data".into() };
    let reported = || IgnoreTag::Reported { reason: "test data".into() };
    let cases: Vec<IgnoreCase> = vec![
        // The default: honoured only during ramp-up.
        (IgnoreTags::RampUp, Mode::RampUp, Some("test data"), honoured(), Reason::Ignored),
        (IgnoreTags::RampUp, Mode::Enforce, Some("test data"), reported(), Reason::Ticket),
        (IgnoreTags::RampUp, Mode::Off, Some("test data"), reported(), Reason::AccountOff),
        (IgnoreTags::RampUp, Mode::Enforce, Some("  "), IgnoreTag::NoReason, Reason::Ticket),
        (IgnoreTags::RampUp, Mode::RampUp, Some(""), IgnoreTag::NoReason, Reason::Ticket),
        (IgnoreTags::RampUp, Mode::Enforce, None, IgnoreTag::Absent, Reason::Ticket),
        // Today's behaviour, by choice.
        (IgnoreTags::Always, Mode::Enforce, Some("test data"), honoured(), Reason::Ignored),
        (IgnoreTags::Always, Mode::RampUp, Some("test data"), honoured(), Reason::Ignored),
        (IgnoreTags::Always, Mode::Enforce, Some(" "), IgnoreTag::NoReason, Reason::Ticket),
        // Not read at all.
        (IgnoreTags::Never, Mode::RampUp, Some("test data"), IgnoreTag::Disregarded, Reason::Ticket),
        (IgnoreTags::Never, Mode::Enforce, Some("test data"), IgnoreTag::Disregarded, Reason::Ticket),
        (IgnoreTags::Never, Mode::Enforce, None, IgnoreTag::Absent, Reason::Ticket),
    ];
    for (ignore_tags, mode, tag, want_tag, want) in cases {
        let name = format!("{ignore_tags} / {mode} / {tag:?}");
        let mut f = control_finding("S3.1", "t", Severity::Critical);
        if let Some(v) = tag {
            f.resources[0].tags.insert("lever:ignore".into(), v.into());
        }
        // A second, untagged resource changes nothing.
        f.resources.push(f.resources[0].clone());
        f.resources[1].id.push_str("-other");
        f.resources[1].tags.clear();
        let acct = AccountPolicy { ignore_tags, ..account(mode, Severity::Low) };
        assert_eq!(ignore_tag(&f, &acct, &policy()), want_tag, "{name}");
        let v = decide(&f, &acct, &policy());
        assert_eq!(v.reason, want, "{name}: {}", v.detail);
    }
}

/// The ignore tag counts on any resource of the finding, not only the primary one: the first
/// resource (in the finding's order) with a reason gives it; a blank value anywhere is no reason.
#[test]
#[rustfmt::skip]
fn ignore_tag_on_any_resource_table() {
    type Case = (&'static str, IgnoreTags, Mode, [Option<&'static str>; 3], IgnoreTag);
    let honoured = |r: &str| IgnoreTag::Honoured { reason: r.into() };
    let reported = |r: &str| IgnoreTag::Reported { reason: r.into() };
    let cases: Vec<Case> = vec![
        ("primary only", IgnoreTags::RampUp, Mode::RampUp, [Some("a"), None, None], honoured("a")),
        ("second resource only", IgnoreTags::RampUp, Mode::RampUp, [None, Some("b"), None], honoured("b")),
        ("last resource only", IgnoreTags::RampUp, Mode::RampUp, [None, None, Some("c")], honoured("c")),
        ("the first with a reason wins", IgnoreTags::RampUp, Mode::RampUp, [None, Some("b"), Some("c")], honoured("b")),
        ("a blank primary does not hide a reason elsewhere", IgnoreTags::RampUp, Mode::RampUp, [Some(" "), Some("b"), None], honoured("b")),
        ("blank everywhere is no reason", IgnoreTags::RampUp, Mode::RampUp, [Some(""), None, Some("  ")], IgnoreTag::NoReason),
        ("outside ramp-up a secondary tag is reported", IgnoreTags::RampUp, Mode::Enforce, [None, Some("b"), None], reported("b")),
        ("never: a secondary tag is not read", IgnoreTags::Never, Mode::RampUp, [None, Some("b"), None], IgnoreTag::Disregarded),
        ("no tag anywhere", IgnoreTags::Always, Mode::Enforce, [None, None, None], IgnoreTag::Absent),
    ];
    let mut wrong = Vec::new();
    for (name, ignore_tags, mode, tags, want) in cases {
        let mut f = control_finding("EC2.18", "t", Severity::Critical);
        let first = f.resources[0].clone();
        f.resources = (0..3)
            .map(|i| {
                let mut r = first.clone();
                r.id = format!("{}-{i}", first.id);
                r.tags.clear();
                if let Some(v) = tags[i] {
                    r.tags.insert("lever:ignore".into(), v.into());
                }
                r
            })
            .collect();
        let acct = AccountPolicy { ignore_tags, ..account(mode, Severity::Low) };
        let got = ignore_tag(&f, &acct, &policy());
        if got != want {
            wrong.push(format!("{name}: {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every resource whose ignore tag is reported (not honoured) is listed, not only the primary.
#[test]
fn reported_ignore_tags_lists_every_tagged_resource() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let config = crate::config::Config::load(&dir).unwrap();
    let mut f = control_finding("EC2.18", "t", Severity::Critical);
    f.account_id = "111111111111".into(); // enforce: tags are reported
    let mut second = f.resources[0].clone();
    second.id.push_str("-2");
    second.tags.insert("lever:ignore".into(), "shared".into());
    let mut third = f.resources[0].clone();
    third.id.push_str("-3");
    third.tags.insert("lever:ignore".into(), " ".into());
    f.resources.push(second.clone());
    f.resources.push(third);
    let got = reported_ignore_tags(&[f], &config, chrono::Utc::now());
    assert_eq!(
        got,
        [(second.id.clone(), "lever:ignore=shared".to_string())].into()
    );
}

/// Honoured tags take resources off an issue by the rule `decide` applies: a finding ignored by
/// a tag on any of its resources ignores all of them, unless a finding that is not ignored names
/// the resource too; tags not honoured, blank ones and passed findings take nothing off.
#[test]
fn honoured_ignore_tags_follow_the_finding_rule() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let mut config = crate::config::Config::load(&dir).unwrap();
    config
        .settings
        .accounts
        .get_mut("111111111111")
        .unwrap()
        .mode = Mode::RampUp;
    let finding = |ids: &[&str], tags: &[(usize, &str)]| {
        let mut f = control_finding("EC2.18", "t", Severity::Critical);
        let first = f.resources[0].clone();
        f.resources = ids
            .iter()
            .map(|id| {
                let mut r = first.clone();
                r.id = id.to_string();
                r
            })
            .collect();
        for (i, v) in tags {
            f.resources[*i]
                .tags
                .insert("lever:ignore".into(), v.to_string());
        }
        f
    };
    let passed = {
        let mut f = finding(&["p"], &[(0, "x")]);
        f.compliance = Some(ComplianceStatus::Passed);
        f
    };
    let got = honoured_ignore_tags(
        &[
            finding(&["i", "sg"], &[(1, "shared sg")]),
            finding(&["sg2", "j"], &[(0, "legacy")]),
            finding(&["j"], &[]),
            finding(&["k"], &[(0, "  ")]),
            passed,
        ],
        &config,
        chrono::Utc::now(),
    );
    let want: BTreeMap<String, String> = [
        ("i", "lever:ignore=shared sg (on sg)"),
        ("sg", "lever:ignore=shared sg"),
        ("sg2", "lever:ignore=legacy"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    let enforce = crate::config::Config::load(&dir).unwrap();
    assert!(
        honoured_ignore_tags(
            &[finding(&["sg"], &[(0, "x")])],
            &enforce,
            chrono::Utc::now()
        )
        .is_empty()
    );
}

#[test]
fn a_tag_not_honoured_says_so_and_how_to_stop_tracking() {
    let mut f = control_finding("S3.1", "t", Severity::Critical);
    f.resources[0]
        .tags
        .insert("lever:ignore".into(), "legacy".into());
    let v = decide(&f, &account(Mode::Enforce, Severity::Low), &policy());
    assert!(
        v.detail.ends_with(
            "; tag lever:ignore=\"legacy\" is honoured only in ramp-up (ignore_tags = \"ramp-up\"): \
             an exception is the way not to fix it"
        ),
        "{}",
        v.detail
    );
    let never = AccountPolicy {
        ignore_tags: IgnoreTags::Never,
        ..account(Mode::Enforce, Severity::Low)
    };
    assert!(
        decide(&f, &never, &policy())
            .detail
            .contains("is not read in this account")
    );
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

/// What Lever recorded for a finding: its snapshot and the writes Lever made to it.
#[derive(Clone)]
struct Recorded {
    finding: Finding,
    writes: Vec<LeverWrite>,
}

const TRACKED: &str = "Lever: tracked in https://github.com/acme/payments/issues/1";
const EXCEPTION: &str = "Lever: exception approved by cto-user until 2027-01-30";

fn note(text: &str, by: &str) -> Option<Note> {
    Some(Note {
        text: text.into(),
        updated_by: by.into(),
        updated_at: None,
    })
}

fn write(workflow: WorkflowStatus, text: &str) -> LeverWrite {
    LeverWrite {
        workflow,
        note: text.into(),
        at: chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    }
}

/// Lever set the finding to NOTIFIED and recorded it (`worker::effects::update_findings`).
fn notified(r: &mut Recorded) {
    r.finding.workflow = WorkflowStatus::Notified;
    r.finding.note = note(TRACKED, "lever");
    r.writes.push(write(WorkflowStatus::Notified, TRACKED));
}

/// ... then SUPPRESSED (an exception), recorded too.
fn suppressed(r: &mut Recorded) {
    notified(r);
    r.finding.workflow = WorkflowStatus::Suppressed;
    r.finding.note = note(EXCEPTION, "lever");
    r.writes.push(write(WorkflowStatus::Suppressed, EXCEPTION));
}

const V2: &str = "arn:aws:securityhub:us-east-1::productv2/aws/securityhub";

type ClassifyCase = (&'static str, fn(&mut Recorded), fn(&mut Finding), Change);

#[test]
#[rustfmt::skip]
fn classify_table() {
    let base = control_finding("S3.1", "t", Severity::High);
    let fresh: fn(&mut Recorded) = |_| {};
    let cases: Vec<ClassifyCase> = vec![
        ("identical", fresh, |_| {}, Change::Repeat),
        ("updated_at only", fresh, |f| f.updated_at = Some("2026-11-21T00:00:00Z".into()), Change::Refreshed),
        ("observed times only", fresh, |f| f.last_observed_at = Some("2026-11-22T00:00:00Z".into()), Change::Repeat),
        ("severity", fresh, |f| f.severity = Severity::Critical, Change::Changed),
        ("compliance passed", fresh, |f| f.compliance = Some(ComplianceStatus::Passed), Change::Changed),
        ("archived", fresh, |f| f.record_state = RecordState::Archived, Change::Changed),
        ("new resource", fresh, |f| { let mut r = f.resources[0].clone(); r.id.push_str("-2"); f.resources.push(r); }, Change::Changed),
        ("resource tag", fresh, |f| { f.resources[0].tags.insert("team".into(), "ledger".into()); }, Change::Changed),
        // Echoes: what Lever wrote, as it recorded it.
        ("lever's own echo (the write is recorded, the snapshot not yet)", |r| r.writes.push(write(WorkflowStatus::Notified, TRACKED)), |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "lever");
        }, Change::OwnEcho),
        ("lever's echo once recorded is a repeat", notified, |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "lever");
        }, Change::Repeat),
        ("a late echo of an earlier write of lever's", suppressed, |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "lever");
        }, Change::OwnEcho),
        ("UpdatedBy = lever, a note lever never wrote", notified, |f| {
            f.workflow = WorkflowStatus::Suppressed;
            f.note = note("accepted risk, see ticket", "lever");
        }, Change::Changed),
        ("UpdatedBy = lever, lever's note, a workflow lever did not write with it", notified, |f| {
            f.workflow = WorkflowStatus::Resolved;
            f.note = note(TRACKED, "lever");
        }, Change::Changed),
        ("UpdatedBy = lever, but lever wrote nothing", fresh, |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "lever");
        }, Change::Changed),
        ("lever's text under another UpdatedBy", fresh, |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "arn:aws:iam::1:user/alice");
        }, Change::Changed),
        ("workflow changed by a person", fresh, |f| {
            f.workflow = WorkflowStatus::Suppressed;
            f.note = note("accepted risk", "arn:aws:iam::1:user/alice");
        }, Change::Changed),
        ("stale replay: workflow differs, no note", fresh, |f| f.workflow = WorkflowStatus::Notified, Change::Repeat),
        ("OCSF: status changed without a comment, same modified_time", |r| r.finding.product_arn = V2.into(), |f| {
            f.product_arn = V2.into();
            f.workflow = WorkflowStatus::Suppressed;
        }, Change::Changed),
        ("OCSF: nothing changed", |r| r.finding.product_arn = V2.into(), |f| f.product_arn = V2.into(), Change::Repeat),
        // V2 keeps no UpdatedBy: Lever's echo is its recorded status and comment.
        ("OCSF: lever's echo (In Progress with lever's comment, no UpdatedBy)", |r| {
            r.finding.product_arn = V2.into();
            r.writes.push(write(WorkflowStatus::Notified, TRACKED));
        }, |f| {
            f.product_arn = V2.into();
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "");
        }, Change::OwnEcho),
        ("OCSF: lever's comment with a status lever did not write", |r| {
            r.finding.product_arn = V2.into();
            r.writes.push(write(WorkflowStatus::Notified, TRACKED));
        }, |f| {
            f.product_arn = V2.into();
            f.workflow = WorkflowStatus::Suppressed;
            f.note = note(TRACKED, "");
        }, Change::Changed),
        ("OCSF: lever's comment, but lever wrote nothing", |r| r.finding.product_arn = V2.into(), |f| {
            f.product_arn = V2.into();
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "");
        }, Change::Changed),
        ("ASFF: lever's status and text without UpdatedBy is not lever's", |r| r.writes.push(write(WorkflowStatus::Notified, TRACKED)), |f| {
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "");
        }, Change::Changed),
        ("stale replay with a newer UpdatedAt", fresh, |f| { f.workflow = WorkflowStatus::Notified; f.updated_at = Some("2026-11-21T00:00:00Z".into()); }, Change::Refreshed),
        // Order: an update older than the recorded one never changes state.
        ("FAILED older than a recorded PASSED", |r| {
            r.finding.compliance = Some(ComplianceStatus::Passed);
            r.finding.updated_at = Some("2026-11-23T13:00:00.000Z".into());
        }, |f| f.updated_at = Some("2026-11-22T08:00:00.000Z".into()), Change::Stale),
        ("PASSED older than a recorded FAILED", |r| r.finding.updated_at = Some("2026-11-25T09:00:00.000Z".into()), |f| {
            f.compliance = Some(ComplianceStatus::Passed);
            f.updated_at = Some("2026-11-23T13:00:00.000Z".into());
        }, Change::Stale),
        ("older, whatever it says (a note by lever)", notified, |f| {
            f.updated_at = Some("2026-11-19T00:00:00Z".into());
            f.workflow = WorkflowStatus::Notified;
            f.note = note(TRACKED, "lever");
        }, Change::Stale),
        ("older by a millisecond, other spelling", fresh, |f| { f.updated_at = Some("2026-11-20T08:59:59.999Z".into()); f.severity = Severity::Low; }, Change::Stale),
        ("the same instant, other spelling", fresh, |f| f.updated_at = Some("2026-11-20T09:00:00Z".into()), Change::Refreshed),
        ("unreadable UpdatedAt: judged without order", fresh, |f| { f.updated_at = Some("yesterday".into()); f.compliance = Some(ComplianceStatus::Passed); }, Change::Changed),
    ];
    for (name, record, tweak, want) in cases {
        let mut recorded = Recorded { finding: base.clone(), writes: vec![] };
        record(&mut recorded);
        let mut f = base.clone();
        tweak(&mut f);
        let r = &recorded.finding;
        let fp = fingerprint(r);
        let prev = Previous {
            updated_at: r.updated_at.as_deref(),
            fingerprint: &fp,
            workflow: r.workflow,
            note_text: r.note.as_ref().map(|n| n.text.as_str()),
            lever_writes: &recorded.writes,
        };
        assert_eq!(classify(Some(prev), &f, "lever"), want, "{name}");
    }
    assert_eq!(classify(None, &base, "lever"), Change::New);
}

#[test]
fn lever_remembers_its_latest_writes() {
    let mut writes = vec![];
    for i in 0..12 {
        LeverWrite::remember(
            &mut writes,
            write(WorkflowStatus::Notified, &format!("n{i}")),
        );
    }
    LeverWrite::remember(&mut writes, write(WorkflowStatus::Notified, "n5"));
    let notes: Vec<&str> = writes.iter().map(|w| w.note.as_str()).collect();
    assert_eq!(notes, ["n4", "n6", "n7", "n8", "n9", "n10", "n11", "n5"]);
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

/// After `enforce_from`, a ramp-up account is enforced: ignore tags on its open issues are
/// reported, no longer honoured (they do not take resources off).
#[test]
fn ignore_tags_on_issues_follow_the_account_as_it_is_now() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let mut config = crate::config::Config::load(&dir).unwrap();
    let acct = config.settings.accounts.get_mut("111111111111").unwrap();
    acct.mode = Mode::RampUp;
    acct.schedule.enforce_from = chrono::NaiveDate::from_ymd_opt(2027, 1, 4);
    let mut f = control_finding("EC2.18", "t", Severity::Critical);
    f.resources[0]
        .tags
        .insert("lever:ignore".into(), "test data".into());
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let before = at("2027-01-03T23:59:59Z");
    let after = at("2027-01-04T00:00:00Z");
    let fs = std::slice::from_ref(&f);
    assert_eq!(honoured_ignore_tags(fs, &config, before).len(), 1);
    assert!(reported_ignore_tags(fs, &config, before).is_empty());
    assert!(honoured_ignore_tags(fs, &config, after).is_empty());
    assert_eq!(reported_ignore_tags(fs, &config, after).len(), 1);
}
