use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::Config;
use crate::domain::sample::control_finding;
use crate::domain::{Control, Note, Severity, Source, WorkflowStatus};
use crate::store::{FindingRecord, GroupRecord, GroupWrite};

/// Plans `findings` against an empty store.
fn plan_fresh(findings: &[Finding], cfg: &Config) -> (ChangeSet, Vec<FindingOutcome>) {
    plan(
        findings,
        &HashMap::new(),
        &HashMap::new(),
        cfg,
        now(),
        "test",
    )
}

fn demo() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn prod(sev: Severity) -> Finding {
    control_finding(
        "S3.1",
        "S3 Block Public Access setting should be enabled",
        sev,
    )
}

/// What the store would hold after applying `changes`.
fn stored(
    changes: &ChangeSet,
) -> (
    HashMap<(String, String), FindingRecord>,
    HashMap<GroupKey, GroupRecord>,
) {
    let findings = changes
        .findings
        .iter()
        .map(|r| ((r.product_arn.clone(), r.finding_id.clone()), r.clone()))
        .collect();
    let groups = changes
        .groups
        .iter()
        .map(|g| match g {
            GroupWrite::InsertIfAbsent(r) | GroupWrite::Update { record: r, .. } => {
                (r.group_key.clone(), r.clone())
            }
        })
        .collect();
    (findings, groups)
}

#[test]
fn a_new_ticketed_finding_creates_group_job_and_audit() {
    let cfg = demo();
    let (changes, out) = plan_fresh(&[prod(Severity::High)], &cfg);
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].action, Disposition::OpenIssue));
    assert_eq!(out[0].change, Change::New);
    assert_eq!(changes.findings.len(), 1);
    assert_eq!(changes.groups.len(), 1);
    assert_eq!(changes.jobs.len(), 1);
    assert_eq!(
        changes.jobs[0].job,
        crate::store::Job::OpenIssue(out[0].group_key.clone())
    );
    assert_eq!(changes.audit.len(), 1);
    let GroupWrite::InsertIfAbsent(g) = &changes.groups[0] else {
        panic!("insert expected")
    };
    assert_eq!(g.repo, "acme/payments");
    assert_eq!(g.assignee.as_deref(), Some("bob")); // week of 2026-11-16: bob
    assert_eq!(g.status, GroupStatus::Pending);
}

#[test]
fn the_same_finding_again_writes_nothing() {
    let cfg = demo();
    let f = prod(Severity::High);
    let (first, _) = plan_fresh(std::slice::from_ref(&f), &cfg);
    let (prev, groups) = stored(&first);
    let (again, out) = plan(&[f], &prev, &groups, &cfg, now(), "test");
    assert!(again.is_empty(), "{again:#?}");
    assert!(matches!(out[0].action, Disposition::Repeat));
}

#[test]
fn three_standards_one_problem_one_group() {
    let cfg = demo();
    let consolidated = prod(Severity::High);
    let mut fsbp = consolidated.clone();
    fsbp.id = "arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.1/finding/1".into();
    fsbp.source = Source::Control(Control {
        id: "S3.1".into(),
        reported_id: None,
        standard: "fsbp".into(),
    });
    let mut pci = consolidated.clone();
    pci.id = "arn:aws:securityhub:us-east-1:111111111111:subscription/pci-dss/v/3.2.1/PCI.S3.6/finding/2".into();
    pci.source = Source::Control(Control {
        id: "S3.1".into(),
        reported_id: Some("PCI.S3.6".into()),
        standard: "pci-dss-3.2.1".into(),
    });
    let (changes, out) = plan_fresh(&[fsbp, pci, consolidated], &cfg);
    assert_eq!(
        changes.findings.len(),
        3,
        "each ASFF finding is kept (BatchUpdateFindings needs every Id)"
    );
    assert_eq!(changes.groups.len(), 1);
    assert_eq!(changes.jobs.len(), 1);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o.action, Disposition::OpenIssue))
            .count(),
        1
    );
    assert!(out.iter().all(|o| o.stable_key == out[0].stable_key));
}

#[test]
fn skipped_findings_are_recorded_and_open_once_policy_widens() {
    let mut cfg = demo();
    let f = prod(Severity::Medium); // below HIGH in payments-prod
    let (first, out) = plan_fresh(std::slice::from_ref(&f), &cfg);
    assert!(matches!(out[0].action, Disposition::Skipped));
    assert_eq!(first.findings.len(), 1);
    assert!(first.groups.is_empty() && first.jobs.is_empty());
    let (prev, groups) = stored(&first);
    // Unchanged and still below the threshold: nothing.
    let (again, out) = plan(
        std::slice::from_ref(&f),
        &prev,
        &groups,
        &cfg,
        now(),
        "test",
    );
    assert!(again.is_empty());
    assert!(matches!(out[0].action, Disposition::Repeat));
    // The account is widened to MEDIUM: the unchanged finding now opens an issue.
    cfg.settings
        .accounts
        .get_mut("111111111111")
        .unwrap()
        .min_severity = Severity::Medium;
    let (widened, out) = plan(&[f], &prev, &groups, &cfg, now(), "test");
    assert!(matches!(out[0].action, Disposition::OpenIssue));
    assert_eq!(widened.jobs.len(), 1);
    assert!(
        widened.findings.is_empty(),
        "the finding itself did not change"
    );
}

const TRACKED: &str = "Lever: tracked in https://github.com/acme/payments/issues/1";

/// `f` as Security Hub holds it after Lever wrote `workflow` and `note` to it.
fn written(f: &Finding, workflow: WorkflowStatus, note: &str) -> Finding {
    let mut f = f.clone();
    f.workflow = workflow;
    f.note = Some(Note {
        text: note.into(),
        updated_by: "lever".into(),
        updated_at: None,
    });
    f
}

/// The store after `worker::effects::update_findings` wrote `workflow` and `note`.
fn record_write(
    prev: &mut HashMap<(String, String), FindingRecord>,
    workflow: WorkflowStatus,
    note: &str,
) {
    for r in prev.values_mut() {
        r.workflow = workflow;
        r.finding = written(&r.finding, workflow, note);
        crate::domain::LeverWrite::remember(
            &mut r.lever_writes,
            crate::domain::LeverWrite {
                workflow,
                note: note.into(),
                at: now(),
            },
        );
    }
}

#[test]
fn own_echoes_change_nothing() {
    let cfg = demo();
    let f = prod(Severity::High);
    let (first, _) = plan_fresh(std::slice::from_ref(&f), &cfg);
    let (mut prev, groups) = stored(&first);
    record_write(&mut prev, WorkflowStatus::Notified, TRACKED);
    // The echo of what the store holds: a repeat.
    let echo = written(&f, WorkflowStatus::Notified, TRACKED);
    let (changes, out) = plan(
        std::slice::from_ref(&echo),
        &prev,
        &groups,
        &cfg,
        now(),
        "test",
    );
    assert_eq!(out[0].change, Change::Repeat);
    assert!(changes.is_empty(), "{changes:#?}");
    // Lever suppresses it later; the NOTIFIED echo arrives after that: Lever's own, and it must
    // not undo the later write in the store.
    record_write(
        &mut prev,
        WorkflowStatus::Suppressed,
        "Lever: exception approved",
    );
    let (changes, out) = plan(&[echo], &prev, &groups, &cfg, now(), "test");
    assert_eq!(out[0].change, Change::OwnEcho);
    assert!(matches!(out[0].action, Disposition::Tracked));
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn update_by_someone_else_signed_as_lever_is_news() {
    let cfg = demo();
    let f = prod(Severity::High);
    let (first, _) = plan_fresh(std::slice::from_ref(&f), &cfg);
    let (mut prev, mut groups) = stored(&first);
    for g in groups.values_mut() {
        g.issue_number = Some(1);
        g.status = GroupStatus::Open;
    }
    record_write(&mut prev, WorkflowStatus::Notified, TRACKED);
    // Any caller of BatchUpdateFindings can write `UpdatedBy = "lever"`.
    let forged = written(&f, WorkflowStatus::New, "reset by a script");
    let (changes, out) = plan(&[forged], &prev, &groups, &cfg, now(), "test");
    assert_eq!(out[0].change, Change::Changed);
    assert_eq!(changes.findings.len(), 1, "recorded as it is now");
    assert_eq!(
        changes.findings[0].lever_writes,
        prev.values().next().unwrap().lever_writes,
        "what Lever wrote is kept"
    );
    // The issue hears of it, and Lever's NOTIFIED is written again (writebacks converge).
    assert_eq!(
        changes.jobs.iter().map(|j| &j.job).collect::<Vec<_>>(),
        [
            &crate::store::Job::SyncGroup(out[0].group_key.clone()),
            &crate::store::Job::NotifyFindings(out[0].group_key.clone())
        ]
    );
    assert!(changes.jobs[1].if_absent, "never cuts a backoff short");
}

#[test]
fn updates_older_than_the_recorded_one_never_change_state() {
    let cfg = demo();
    let failed = prod(Severity::High);
    let mut passed = failed.clone();
    passed.compliance = Some(crate::domain::ComplianceStatus::Passed);
    passed.updated_at = Some("2026-11-23T13:00:00.000Z".into());
    // Recorded PASSED (skipped, no group); a FAILED from before it arrives late.
    let (first, _) = plan_fresh(std::slice::from_ref(&passed), &cfg);
    let (prev, groups) = stored(&first);
    assert!(groups.is_empty());
    let mut late = failed.clone();
    late.updated_at = Some("2026-11-22T08:00:00.000Z".into());
    let (changes, out) = plan(&[late], &prev, &groups, &cfg, now(), "test");
    assert_eq!(out[0].change, Change::Stale);
    assert!(matches!(out[0].action, Disposition::Repeat));
    assert!(
        changes.is_empty(),
        "no issue for a finding that passes now: {changes:#?}"
    );
    // Recorded FAILED (with its issue); a PASSED from before it arrives late.
    let mut failing = failed.clone();
    failing.updated_at = Some("2026-11-25T09:00:00.000Z".into());
    let (first, _) = plan_fresh(std::slice::from_ref(&failing), &cfg);
    let (prev, mut groups) = stored(&first);
    for g in groups.values_mut() {
        g.issue_number = Some(1);
        g.status = GroupStatus::Open;
    }
    let (changes, out) = plan(&[passed], &prev, &groups, &cfg, now(), "test");
    assert_eq!(out[0].change, Change::Stale);
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn accounts_off_and_passed_findings_never_open() {
    let cfg = demo();
    let mut proto = prod(Severity::Critical);
    proto.account_id = "333333333333".into();
    let mut passed = prod(Severity::Critical);
    passed.compliance = Some(crate::domain::ComplianceStatus::Passed);
    let (changes, out) = plan_fresh(&[proto, passed], &cfg);
    assert!(changes.groups.is_empty() && changes.jobs.is_empty());
    assert_eq!(out[0].verdict.reason, crate::policy::Reason::AccountOff);
    assert_eq!(out[1].verdict.reason, crate::policy::Reason::Passed);
}

/// A finding stays in the group it joined while that group exists, even when grouping now
/// gives it another key (an upgrade that folds Inspector findings by package, a changed
/// `[grouping]`): its issue keeps tracking it, and learns when it is fixed.
#[test]
fn a_finding_stays_in_the_group_it_joined() {
    let cfg = demo();
    let f = prod(Severity::High);
    let (changes, out) = plan_fresh(std::slice::from_ref(&f), &cfg);
    let (mut findings, mut groups) = stored(&changes);
    // The finding was grouped under another key by an earlier version.
    let old = GroupKey("control|S3.1|per-an-earlier-version".into());
    let record = findings.values_mut().next().unwrap();
    record.group_key = old.clone();
    let mut group = groups.remove(&out[0].group_key).unwrap();
    group.group_key = old.clone();
    group.issue_number = Some(7);
    groups.insert(old.clone(), group);
    let mut passed = f.clone();
    passed.compliance = Some(crate::domain::ComplianceStatus::Passed);
    passed.updated_at = Some("2026-11-24T00:00:00Z".into());
    let (changes, out) = plan(&[passed], &findings, &groups, &cfg, now(), "test");
    assert_eq!(out[0].group_key, old, "the group it joined");
    assert_eq!(changes.findings[0].group_key, old);
    assert!(changes.groups.is_empty(), "no new group");
    assert!(
        changes
            .jobs
            .iter()
            .any(|j| j.job == crate::store::Job::SyncGroup(old.clone())),
        "its issue hears the news: {:?}",
        changes.jobs
    );
    // Once that group is gone, grouping decides again.
    let (_, out) = plan(&[f], &findings, &HashMap::new(), &cfg, now(), "test");
    assert_ne!(out[0].group_key, old);
}
