use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    t("2026-11-23T12:00:00Z")
}

fn ctx() -> Ctx {
    Ctx {
        issue_url: "https://github.com/acme/payments/issues/7".into(),
        approvers: vec!["cto-user".into()],
        allow_self_approval: false,
        default_exception: Duration::days(90),
        max_exception: Duration::days(365),
        verify_after: Duration::minutes(15),
        verify_grace: Duration::hours(24),
        on_call: Some("alice".into()),
        other_owners: vec![],
        backup: Some("dave".into()),
        security: Some("sam".into()),
        ack_deadline: Some(t("2026-11-23T16:00:00Z")),
        ack_within: "4h".into(),
        follow_unacknowledged: true,
        follow_acknowledged: false,
        sla_reminder: Duration::days(2),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn failing() -> FindingsView {
    FindingsView {
        failing: set(&["r1", "r2"]),
        fixed: set(&[]),
        unnotified: 0,
        ..FindingsView::default()
    }
}

fn person(login: &str) -> Actor {
    Actor::person(login, false)
}

fn approver(login: &str) -> Actor {
    Actor::person(login, true)
}

/// The states of the table, by name.
fn states() -> Vec<(&'static str, State)> {
    let mut open = State::opened(
        Some("bob".into()),
        failing(),
        &["security-finding".into(), "severity:high".into()],
    );
    // bob got it at 06:00 with 4 hours to acknowledge; the fix is due tomorrow.
    open.ack_deadline = Some(t("2026-11-23T10:00:00Z"));
    open.due = Some(t("2026-11-24T12:00:00Z"));
    let acknowledged = State {
        acknowledged: Some(Ack {
            by: "bob".into(),
            at: t("2026-11-23T07:00:00Z"),
        }),
        ack_deadline: None,
        ..open.clone()
    };
    let at_backup = State {
        level: 1,
        assignee: Some("dave".into()),
        ..open.clone()
    };
    let past_due = State {
        due: Some(t("2026-11-20T00:00:00Z")),
        ..acknowledged.clone()
    };
    let approved = State {
        approved_by: Some("cto-user".into()),
        labels: set(&["security-finding", "cto-approved"]),
        ..open.clone()
    };
    let fixed = State {
        open: false,
        closure: Some(Closure::Fixed),
        findings: FindingsView {
            failing: set(&[]),
            fixed: set(&["r1", "r2"]),
            unnotified: 0,
            ..FindingsView::default()
        },
        ..open.clone()
    };
    let excepted = State {
        open: false,
        closure: Some(Closure::Exception),
        labels: set(&["security-finding", "cto-approved"]),
        exception: Some(Exception {
            approver: "cto-user".into(),
            approved_at: t("2026-11-01T00:00:00Z"),
            expires_at: t("2027-01-30T00:00:00Z"),
            covers: Some(set(&["r1", "r2"])),
        }),
        ..open.clone()
    };
    let unverified = State {
        open: false,
        closure: Some(Closure::Unverified),
        verification: Some(Verification {
            closed_by: "bob".into(),
            closed_at: t("2026-11-23T11:00:00Z"),
            commented: false,
            grace_until: None,
        }),
        ..open.clone()
    };
    let waiting = State {
        labels: set(&["security-finding", "needs-verification"]),
        verification: Some(Verification {
            closed_by: "bob".into(),
            closed_at: t("2026-11-22T11:00:00Z"),
            commented: true,
            grace_until: Some(t("2026-11-23T11:15:00Z")),
        }),
        ..unverified.clone()
    };
    let deleted = State {
        open: false,
        deleted: true,
        ..open.clone()
    };
    // cto-user owned the issue earlier in this period (then handed it to bob).
    let owned_by_approver = State {
        owners: set(&["bob", "cto-user"]),
        ..open.clone()
    };
    // Closed as fixed by an older version that left the approver's label on.
    let fixed_with_label = State {
        labels: set(&["security-finding", "cto-approved"]),
        ..fixed.clone()
    };
    vec![
        ("open", open),
        ("open, approver owned it earlier", owned_by_approver),
        ("open+acknowledged", acknowledged),
        ("open-at-backup", at_backup),
        ("open-past-due", past_due),
        ("open+approved", approved),
        ("closed-fixed", fixed),
        ("closed-fixed, label left on", fixed_with_label),
        ("closed-exception", excepted),
        ("closed-unverified", unverified),
        ("closed-awaiting-grace", waiting),
        ("deleted", deleted),
    ]
}

/// The events of the table, by name.
fn events() -> Vec<(&'static str, Event)> {
    let label = |l: &str, by: Actor| Event::Labeled {
        label: l.into(),
        by,
    };
    vec![
        (
            "label cto-approved by approver",
            label("cto-approved", approver("cto-user")),
        ),
        (
            "label cto-approved by non-approver",
            label("cto-approved", person("mallory")),
        ),
        (
            "label cto-approved by the assignee-approver",
            label("cto-approved", approver("bob")),
        ),
        (
            "label cto-approved by lever",
            label("cto-approved", Actor::Lever),
        ),
        (
            "label acknowledged by person",
            label("acknowledged", person("bob")),
        ),
        (
            "label exception-requested by person",
            label("exception-requested", person("bob")),
        ),
        ("label unrelated", label("bug", person("bob"))),
        (
            "unlabel cto-approved by person",
            Event::Unlabeled {
                label: "cto-approved".into(),
                by: person("bob"),
            },
        ),
        (
            "unlabel cto-approved by lever",
            Event::Unlabeled {
                label: "cto-approved".into(),
                by: Actor::Lever,
            },
        ),
        (
            "close by person",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved: None,
            },
        ),
        (
            "close with cto by approver",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved: Some(LabelHistory::Current(LabelAuthor {
                    login: "cto-user".into(),
                    approver: true,
                })),
            },
        ),
        (
            "close with cto by non-approver",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved: Some(LabelHistory::Current(LabelAuthor {
                    login: "mallory".into(),
                    approver: false,
                })),
            },
        ),
        (
            "close with cto from before the reopen",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved: Some(LabelHistory::Stale {
                    why: "it was applied before the issue was last reopened".into(),
                }),
            },
        ),
        (
            "close with cto, history unreadable",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved: Some(LabelHistory::Unreadable {
                    why: "GitHub answered: 502".into(),
                }),
            },
        ),
        (
            "close by lever",
            Event::Closed {
                by: Actor::Lever,
                state_reason: Some("completed".into()),
                cto_approved: None,
            },
        ),
        ("reopen by person", Event::Reopened { by: person("bob") }),
        ("reopen by lever", Event::Reopened { by: Actor::Lever }),
        (
            "assign",
            Event::Assigned {
                user: "carol".into(),
                by: person("bob"),
            },
        ),
        (
            "self-assign",
            Event::Assigned {
                user: "carol".into(),
                by: person("carol"),
            },
        ),
        (
            "unassign",
            Event::Unassigned {
                user: "bob".into(),
                by: person("bob"),
            },
        ),
        (
            "delete",
            Event::Deleted {
                by: person("admin"),
            },
        ),
        (
            "transfer",
            Event::Transferred {
                repo: "acme/ledger".into(),
                number: 3,
                by: person("admin"),
            },
        ),
        (
            "expiry comment by approver",
            Event::Commented {
                by: approver("cto-user"),
                body: "ok\nException-Expires: 2027-03-31".into(),
            },
        ),
        (
            "expiry comment by another approver",
            Event::Commented {
                by: approver("ciso"),
                body: "Exception-Expires: 2027-03-31".into(),
            },
        ),
        (
            "expiry comment by non-approver",
            Event::Commented {
                by: person("bob"),
                body: "Exception-Expires: 2030-01-01".into(),
            },
        ),
        (
            "plain comment by the owner",
            Event::Commented {
                by: person("bob"),
                body: "working on it".into(),
            },
        ),
        (
            "plain comment by someone else",
            Event::Commented {
                by: person("erin"),
                body: "+1".into(),
            },
        ),
        (
            "findings all resolved",
            Event::Findings {
                view: FindingsView {
                    failing: set(&[]),
                    fixed: set(&["r1", "r2"]),
                    unnotified: 0,
                    ..FindingsView::default()
                },
            },
        ),
        (
            "findings one fixed",
            Event::Findings {
                view: FindingsView {
                    failing: set(&["r2"]),
                    fixed: set(&["r1"]),
                    unnotified: 0,
                    ..FindingsView::default()
                },
            },
        ),
        (
            "findings new resource",
            Event::Findings {
                view: FindingsView {
                    failing: set(&["r1", "r2", "r3"]),
                    fixed: set(&[]),
                    unnotified: 1,
                    ..FindingsView::default()
                },
            },
        ),
        (
            "findings unchanged, reset to NEW",
            Event::Findings {
                view: FindingsView {
                    failing: set(&["r1", "r2"]),
                    fixed: set(&[]),
                    unnotified: 2,
                    ..FindingsView::default()
                },
            },
        ),
        (
            "findings: r1 fixed, r2 control disabled",
            Event::Findings {
                view: FindingsView {
                    failing: set(&[]),
                    fixed: set(&["r1"]),
                    unconfirmed: [("r2".to_string(), "the control was disabled".to_string())]
                        .into_iter()
                        .collect(),
                    unnotified: 0,
                    ..FindingsView::default()
                },
            },
        ),
        ("findings gone", Event::FindingsGone),
        ("exception timer due", Event::ExceptionTimer),
        ("verify: failing", Event::VerifyTimer { failing: true }),
        ("verify: passing", Event::VerifyTimer { failing: false }),
        ("escalation timer", Event::EscalationTimer),
        ("sla timer", Event::SlaTimer),
        ("handoff", Event::Handoff),
        (
            "github refuses bob",
            Event::AssigneeRefused { user: "bob".into() },
        ),
        (
            "github refuses dave",
            Event::AssigneeRefused {
                user: "dave".into(),
            },
        ),
        (
            "enforced",
            Event::Enforced {
                due: Some(now() + Duration::days(30)),
            },
        ),
    ]
}

/// A compact, reviewable summary of an outcome.
fn summary(o: &Outcome) -> String {
    let s = &o.state;
    let state = format!(
        "{}{}{}{}",
        if s.deleted {
            "deleted"
        } else if s.open {
            "open"
        } else {
            "closed"
        },
        s.closure
            .map(|c| format!("/{}", serde_json::to_value(c).unwrap().as_str().unwrap()))
            .unwrap_or_default(),
        if s.exception.is_some() {
            "+exception"
        } else {
            ""
        },
        if s.approved_by.is_some() {
            "+approved"
        } else {
            ""
        },
    );
    let state = format!(
        "{state} @{}/L{}{}{}{}",
        s.assignee.as_deref().unwrap_or("-"),
        s.level,
        if s.acknowledged.is_some() { "+ack" } else { "" },
        if s.overdue { "+overdue" } else { "" },
        if s.refused.is_empty() {
            String::new()
        } else {
            format!(" refused:{}", s.refused.join(","))
        },
    );
    let actions: Vec<String> = o
        .actions
        .iter()
        .map(|a| match a {
            Action::Comment { .. } => "comment".to_string(),
            Action::AddLabel { label } => format!("+{label}"),
            Action::RemoveLabel { label } => format!("-{label}"),
            Action::Close { reason } => format!(
                "close:{}",
                serde_json::to_value(reason).unwrap().as_str().unwrap()
            ),
            Action::Reopen => "reopen".into(),
            Action::Assign { user } => format!("assign:{user}"),
            Action::UpdateFindings { workflow, .. } => format!("sh:{}", workflow.as_str()),
            Action::RefreshBody => "body".into(),
            Action::Schedule { timer, .. } => format!(
                "timer:{}",
                serde_json::to_value(timer).unwrap().as_str().unwrap()
            ),
            Action::Recreate => "recreate".into(),
            Action::Moved { .. } => "moved".into(),
        })
        .collect();
    format!("{state} | {} | {}", actions.join(","), o.log.join(","))
}

/// Every state × every event: the resulting state, the actions (in order) and the audit log.
/// Reviewed row by row; a change to the state machine shows up here as a diff.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str)] = &[
    ("open", "label cto-approved by approver", "open+approved @bob/L0 | comment | approval-recorded"),
    ("open", "label cto-approved by non-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open", "label cto-approved by the assignee-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open", "label cto-approved by lever", "open @bob/L0 |  | "),
    ("open", "label acknowledged by person", "open @bob/L0+ack |  | acknowledged"),
    ("open", "label exception-requested by person", "open @bob/L0 | comment | exception-requested"),
    ("open", "label unrelated", "open @bob/L0 |  | "),
    ("open", "unlabel cto-approved by person", "open @bob/L0 |  | "),
    ("open", "unlabel cto-approved by lever", "open @bob/L0 |  | "),
    ("open", "close by person", "closed/unverified @bob/L0 | timer:verify | closed-unverified"),
    ("open", "close with cto by approver", "closed/exception+exception @bob/L0 | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("open", "close with cto by non-approver", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open", "close with cto from before the reopen", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open", "close with cto, history unreadable", "closed/unverified @bob/L0 | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open", "close by lever", "closed @bob/L0 |  | "),
    ("open", "reopen by person", "open @bob/L0 |  | "),
    ("open", "reopen by lever", "open @bob/L0 |  | "),
    ("open", "assign", "open @carol/L0 |  | "),
    ("open", "self-assign", "open @carol/L0+ack |  | acknowledged-by-self-assignment"),
    ("open", "unassign", "open @-/L0 |  | "),
    ("open", "delete", "deleted @bob/L0 | recreate | issue-deleted-recreate"),
    ("open", "transfer", "open @bob/L0 | moved | issue-transferred"),
    ("open", "expiry comment by approver", "open @bob/L0 |  | exception-expiry-set"),
    ("open", "expiry comment by another approver", "open @bob/L0 |  | exception-expiry-set"),
    ("open", "expiry comment by non-approver", "open @bob/L0+ack | comment | acknowledged-by-comment"),
    ("open", "plain comment by the owner", "open @bob/L0+ack |  | acknowledged-by-comment"),
    ("open", "plain comment by someone else", "open @bob/L0 |  | "),
    ("open", "findings all resolved", "closed/fixed @bob/L0 | body,close:completed,comment | closed-fixed"),
    ("open", "findings one fixed", "open @bob/L0 | body | resources-fixed"),
    ("open", "findings new resource", "open @bob/L0 | body,comment,sh:NOTIFIED | resources-added"),
    ("open", "findings unchanged, reset to NEW", "open @bob/L0 | sh:NOTIFIED | "),
    ("open", "findings: r1 fixed, r2 control disabled", "open @bob/L0 | body,comment | fix-unconfirmed"),
    ("open", "findings gone", "closed/fixed @bob/L0 | close:completed,comment | closed-findings-gone"),
    ("open", "exception timer due", "open @bob/L0 |  | "),
    ("open", "verify: failing", "open @bob/L0 |  | "),
    ("open", "verify: passing", "open @bob/L0 |  | "),
    ("open", "escalation timer", "open @dave/L1 | assign:dave,timer:escalation,comment | escalated-to-backup"),
    ("open", "sla timer", "open @bob/L0 | comment,timer:sla | due-reminder"),
    ("open", "handoff", "open @alice/L0 | assign:alice,timer:escalation,comment | handoff"),
    ("open", "github refuses bob", "open @alice/L0 refused:bob | assign:alice,comment | assignee-refused"),
    ("open", "github refuses dave", "open @bob/L0 |  | "),
    ("open", "enforced", "open @alice/L0 | assign:alice,timer:escalation,timer:sla,-ramp-up,comment | enforced"),
    ("open, approver owned it earlier", "label cto-approved by approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open, approver owned it earlier", "label cto-approved by non-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open, approver owned it earlier", "label cto-approved by the assignee-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open, approver owned it earlier", "label cto-approved by lever", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "label acknowledged by person", "open @bob/L0+ack |  | acknowledged"),
    ("open, approver owned it earlier", "label exception-requested by person", "open @bob/L0 | comment | exception-requested"),
    ("open, approver owned it earlier", "label unrelated", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "unlabel cto-approved by person", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "unlabel cto-approved by lever", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "close by person", "closed/unverified @bob/L0 | timer:verify | closed-unverified"),
    ("open, approver owned it earlier", "close with cto by approver", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open, approver owned it earlier", "close with cto by non-approver", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open, approver owned it earlier", "close with cto from before the reopen", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open, approver owned it earlier", "close with cto, history unreadable", "closed/unverified @bob/L0 | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open, approver owned it earlier", "close by lever", "closed @bob/L0 |  | "),
    ("open, approver owned it earlier", "reopen by person", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "reopen by lever", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "assign", "open @carol/L0 |  | "),
    ("open, approver owned it earlier", "self-assign", "open @carol/L0+ack |  | acknowledged-by-self-assignment"),
    ("open, approver owned it earlier", "unassign", "open @-/L0 |  | "),
    ("open, approver owned it earlier", "delete", "deleted @bob/L0 | recreate | issue-deleted-recreate"),
    ("open, approver owned it earlier", "transfer", "open @bob/L0 | moved | issue-transferred"),
    ("open, approver owned it earlier", "expiry comment by approver", "open @bob/L0 |  | exception-expiry-set"),
    ("open, approver owned it earlier", "expiry comment by another approver", "open @bob/L0 |  | exception-expiry-set"),
    ("open, approver owned it earlier", "expiry comment by non-approver", "open @bob/L0+ack | comment | acknowledged-by-comment"),
    ("open, approver owned it earlier", "plain comment by the owner", "open @bob/L0+ack |  | acknowledged-by-comment"),
    ("open, approver owned it earlier", "plain comment by someone else", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "findings all resolved", "closed/fixed @bob/L0 | body,close:completed,comment | closed-fixed"),
    ("open, approver owned it earlier", "findings one fixed", "open @bob/L0 | body | resources-fixed"),
    ("open, approver owned it earlier", "findings new resource", "open @bob/L0 | body,comment,sh:NOTIFIED | resources-added"),
    ("open, approver owned it earlier", "findings unchanged, reset to NEW", "open @bob/L0 | sh:NOTIFIED | "),
    ("open, approver owned it earlier", "findings: r1 fixed, r2 control disabled", "open @bob/L0 | body,comment | fix-unconfirmed"),
    ("open, approver owned it earlier", "findings gone", "closed/fixed @bob/L0 | close:completed,comment | closed-findings-gone"),
    ("open, approver owned it earlier", "exception timer due", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "verify: failing", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "verify: passing", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "escalation timer", "open @dave/L1 | assign:dave,timer:escalation,comment | escalated-to-backup"),
    ("open, approver owned it earlier", "sla timer", "open @bob/L0 | comment,timer:sla | due-reminder"),
    ("open, approver owned it earlier", "handoff", "open @alice/L0 | assign:alice,timer:escalation,comment | handoff"),
    ("open, approver owned it earlier", "github refuses bob", "open @alice/L0 refused:bob | assign:alice,comment | assignee-refused"),
    ("open, approver owned it earlier", "github refuses dave", "open @bob/L0 |  | "),
    ("open, approver owned it earlier", "enforced", "open @alice/L0 | assign:alice,timer:escalation,timer:sla,-ramp-up,comment | enforced"),
    ("open+acknowledged", "label cto-approved by approver", "open+approved @bob/L0+ack | comment | approval-recorded"),
    ("open+acknowledged", "label cto-approved by non-approver", "open @bob/L0+ack | -cto-approved,comment | approval-rejected"),
    ("open+acknowledged", "label cto-approved by the assignee-approver", "open @bob/L0+ack | -cto-approved,comment | approval-rejected"),
    ("open+acknowledged", "label cto-approved by lever", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "label acknowledged by person", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "label exception-requested by person", "open @bob/L0+ack | comment | exception-requested"),
    ("open+acknowledged", "label unrelated", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "unlabel cto-approved by person", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "unlabel cto-approved by lever", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "close by person", "closed/unverified @bob/L0+ack | timer:verify | closed-unverified"),
    ("open+acknowledged", "close with cto by approver", "closed/exception+exception @bob/L0+ack | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("open+acknowledged", "close with cto by non-approver", "closed/unverified @bob/L0+ack | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open+acknowledged", "close with cto from before the reopen", "closed/unverified @bob/L0+ack | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open+acknowledged", "close with cto, history unreadable", "closed/unverified @bob/L0+ack | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open+acknowledged", "close by lever", "closed @bob/L0+ack |  | "),
    ("open+acknowledged", "reopen by person", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "reopen by lever", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "assign", "open @carol/L0+ack |  | "),
    ("open+acknowledged", "self-assign", "open @carol/L0+ack |  | "),
    ("open+acknowledged", "unassign", "open @-/L0+ack |  | "),
    ("open+acknowledged", "delete", "deleted @bob/L0+ack | recreate | issue-deleted-recreate"),
    ("open+acknowledged", "transfer", "open @bob/L0+ack | moved | issue-transferred"),
    ("open+acknowledged", "expiry comment by approver", "open @bob/L0+ack |  | exception-expiry-set"),
    ("open+acknowledged", "expiry comment by another approver", "open @bob/L0+ack |  | exception-expiry-set"),
    ("open+acknowledged", "expiry comment by non-approver", "open @bob/L0+ack | comment | "),
    ("open+acknowledged", "plain comment by the owner", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "plain comment by someone else", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "findings all resolved", "closed/fixed @bob/L0+ack | body,close:completed,comment | closed-fixed"),
    ("open+acknowledged", "findings one fixed", "open @bob/L0+ack | body | resources-fixed"),
    ("open+acknowledged", "findings new resource", "open @bob/L0+ack | body,comment,sh:NOTIFIED | resources-added"),
    ("open+acknowledged", "findings unchanged, reset to NEW", "open @bob/L0+ack | sh:NOTIFIED | "),
    ("open+acknowledged", "findings: r1 fixed, r2 control disabled", "open @bob/L0+ack | body,comment | fix-unconfirmed"),
    ("open+acknowledged", "findings gone", "closed/fixed @bob/L0+ack | close:completed,comment | closed-findings-gone"),
    ("open+acknowledged", "exception timer due", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "verify: failing", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "verify: passing", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "escalation timer", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "sla timer", "open @bob/L0+ack | comment,timer:sla | due-reminder"),
    ("open+acknowledged", "handoff", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "github refuses bob", "open @alice/L0+ack refused:bob | assign:alice,comment | assignee-refused"),
    ("open+acknowledged", "github refuses dave", "open @bob/L0+ack |  | "),
    ("open+acknowledged", "enforced", "open @bob/L0+ack | timer:sla,-ramp-up,comment | enforced"),
    ("open-at-backup", "label cto-approved by approver", "open+approved @dave/L1 | comment | approval-recorded"),
    ("open-at-backup", "label cto-approved by non-approver", "open @dave/L1 | -cto-approved,comment | approval-rejected"),
    ("open-at-backup", "label cto-approved by the assignee-approver", "open @dave/L1 | -cto-approved,comment | approval-rejected"),
    ("open-at-backup", "label cto-approved by lever", "open @dave/L1 |  | "),
    ("open-at-backup", "label acknowledged by person", "open @dave/L1+ack |  | acknowledged"),
    ("open-at-backup", "label exception-requested by person", "open @dave/L1 | comment | exception-requested"),
    ("open-at-backup", "label unrelated", "open @dave/L1 |  | "),
    ("open-at-backup", "unlabel cto-approved by person", "open @dave/L1 |  | "),
    ("open-at-backup", "unlabel cto-approved by lever", "open @dave/L1 |  | "),
    ("open-at-backup", "close by person", "closed/unverified @dave/L1 | timer:verify | closed-unverified"),
    ("open-at-backup", "close with cto by approver", "closed/exception+exception @dave/L1 | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("open-at-backup", "close with cto by non-approver", "closed/unverified @dave/L1 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open-at-backup", "close with cto from before the reopen", "closed/unverified @dave/L1 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open-at-backup", "close with cto, history unreadable", "closed/unverified @dave/L1 | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open-at-backup", "close by lever", "closed @dave/L1 |  | "),
    ("open-at-backup", "reopen by person", "open @dave/L1 |  | "),
    ("open-at-backup", "reopen by lever", "open @dave/L1 |  | "),
    ("open-at-backup", "assign", "open @carol/L1 |  | "),
    ("open-at-backup", "self-assign", "open @carol/L1+ack |  | acknowledged-by-self-assignment"),
    ("open-at-backup", "unassign", "open @dave/L1 |  | "),
    ("open-at-backup", "delete", "deleted @dave/L1 | recreate | issue-deleted-recreate"),
    ("open-at-backup", "transfer", "open @dave/L1 | moved | issue-transferred"),
    ("open-at-backup", "expiry comment by approver", "open @dave/L1 |  | exception-expiry-set"),
    ("open-at-backup", "expiry comment by another approver", "open @dave/L1 |  | exception-expiry-set"),
    ("open-at-backup", "expiry comment by non-approver", "open @dave/L1 | comment | "),
    ("open-at-backup", "plain comment by the owner", "open @dave/L1 |  | "),
    ("open-at-backup", "plain comment by someone else", "open @dave/L1 |  | "),
    ("open-at-backup", "findings all resolved", "closed/fixed @dave/L1 | body,close:completed,comment | closed-fixed"),
    ("open-at-backup", "findings one fixed", "open @dave/L1 | body | resources-fixed"),
    ("open-at-backup", "findings new resource", "open @dave/L1 | body,comment,sh:NOTIFIED | resources-added"),
    ("open-at-backup", "findings unchanged, reset to NEW", "open @dave/L1 | sh:NOTIFIED | "),
    ("open-at-backup", "findings: r1 fixed, r2 control disabled", "open @dave/L1 | body,comment | fix-unconfirmed"),
    ("open-at-backup", "findings gone", "closed/fixed @dave/L1 | close:completed,comment | closed-findings-gone"),
    ("open-at-backup", "exception timer due", "open @dave/L1 |  | "),
    ("open-at-backup", "verify: failing", "open @dave/L1 |  | "),
    ("open-at-backup", "verify: passing", "open @dave/L1 |  | "),
    ("open-at-backup", "escalation timer", "open @sam/L2 | assign:sam,comment | escalated-to-security"),
    ("open-at-backup", "sla timer", "open @dave/L1 | comment,timer:sla | due-reminder"),
    ("open-at-backup", "handoff", "open @dave/L1 |  | "),
    ("open-at-backup", "github refuses bob", "open @dave/L1 |  | "),
    ("open-at-backup", "github refuses dave", "open @sam/L1 refused:dave | assign:sam,comment | assignee-refused"),
    ("open-at-backup", "enforced", "open @alice/L0 | assign:alice,timer:escalation,timer:sla,-ramp-up,comment | enforced"),
    ("open-past-due", "label cto-approved by approver", "open+approved @bob/L0+ack | comment | approval-recorded"),
    ("open-past-due", "label cto-approved by non-approver", "open @bob/L0+ack | -cto-approved,comment | approval-rejected"),
    ("open-past-due", "label cto-approved by the assignee-approver", "open @bob/L0+ack | -cto-approved,comment | approval-rejected"),
    ("open-past-due", "label cto-approved by lever", "open @bob/L0+ack |  | "),
    ("open-past-due", "label acknowledged by person", "open @bob/L0+ack |  | "),
    ("open-past-due", "label exception-requested by person", "open @bob/L0+ack | comment | exception-requested"),
    ("open-past-due", "label unrelated", "open @bob/L0+ack |  | "),
    ("open-past-due", "unlabel cto-approved by person", "open @bob/L0+ack |  | "),
    ("open-past-due", "unlabel cto-approved by lever", "open @bob/L0+ack |  | "),
    ("open-past-due", "close by person", "closed/unverified @bob/L0+ack | timer:verify | closed-unverified"),
    ("open-past-due", "close with cto by approver", "closed/exception+exception @bob/L0+ack | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("open-past-due", "close with cto by non-approver", "closed/unverified @bob/L0+ack | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open-past-due", "close with cto from before the reopen", "closed/unverified @bob/L0+ack | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open-past-due", "close with cto, history unreadable", "closed/unverified @bob/L0+ack | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open-past-due", "close by lever", "closed @bob/L0+ack |  | "),
    ("open-past-due", "reopen by person", "open @bob/L0+ack |  | "),
    ("open-past-due", "reopen by lever", "open @bob/L0+ack |  | "),
    ("open-past-due", "assign", "open @carol/L0+ack |  | "),
    ("open-past-due", "self-assign", "open @carol/L0+ack |  | "),
    ("open-past-due", "unassign", "open @-/L0+ack |  | "),
    ("open-past-due", "delete", "deleted @bob/L0+ack | recreate | issue-deleted-recreate"),
    ("open-past-due", "transfer", "open @bob/L0+ack | moved | issue-transferred"),
    ("open-past-due", "expiry comment by approver", "open @bob/L0+ack |  | exception-expiry-set"),
    ("open-past-due", "expiry comment by another approver", "open @bob/L0+ack |  | exception-expiry-set"),
    ("open-past-due", "expiry comment by non-approver", "open @bob/L0+ack | comment | "),
    ("open-past-due", "plain comment by the owner", "open @bob/L0+ack |  | "),
    ("open-past-due", "plain comment by someone else", "open @bob/L0+ack |  | "),
    ("open-past-due", "findings all resolved", "closed/fixed @bob/L0+ack | body,close:completed,comment | closed-fixed"),
    ("open-past-due", "findings one fixed", "open @bob/L0+ack | body | resources-fixed"),
    ("open-past-due", "findings new resource", "open @bob/L0+ack | body,comment,sh:NOTIFIED | resources-added"),
    ("open-past-due", "findings unchanged, reset to NEW", "open @bob/L0+ack | sh:NOTIFIED | "),
    ("open-past-due", "findings: r1 fixed, r2 control disabled", "open @bob/L0+ack | body,comment | fix-unconfirmed"),
    ("open-past-due", "findings gone", "closed/fixed @bob/L0+ack | close:completed,comment | closed-findings-gone"),
    ("open-past-due", "exception timer due", "open @bob/L0+ack |  | "),
    ("open-past-due", "verify: failing", "open @bob/L0+ack |  | "),
    ("open-past-due", "verify: passing", "open @bob/L0+ack |  | "),
    ("open-past-due", "escalation timer", "open @bob/L0+ack |  | "),
    ("open-past-due", "sla timer", "open @bob/L0+ack+overdue | +overdue,comment | overdue"),
    ("open-past-due", "handoff", "open @bob/L0+ack |  | "),
    ("open-past-due", "github refuses bob", "open @alice/L0+ack refused:bob | assign:alice,comment | assignee-refused"),
    ("open-past-due", "github refuses dave", "open @bob/L0+ack |  | "),
    ("open-past-due", "enforced", "open @bob/L0+ack | timer:sla,-ramp-up,comment | enforced"),
    ("open+approved", "label cto-approved by approver", "open+approved @bob/L0 | comment | approval-recorded"),
    ("open+approved", "label cto-approved by non-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open+approved", "label cto-approved by the assignee-approver", "open @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("open+approved", "label cto-approved by lever", "open+approved @bob/L0 |  | "),
    ("open+approved", "label acknowledged by person", "open+approved @bob/L0+ack |  | acknowledged"),
    ("open+approved", "label exception-requested by person", "open @bob/L0 | -cto-approved,comment | exception-requested"),
    ("open+approved", "label unrelated", "open+approved @bob/L0 |  | "),
    ("open+approved", "unlabel cto-approved by person", "open @bob/L0 |  | "),
    ("open+approved", "unlabel cto-approved by lever", "open+approved @bob/L0 |  | "),
    ("open+approved", "close by person", "closed/unverified @bob/L0 | timer:verify | closed-unverified"),
    ("open+approved", "close with cto by approver", "closed/exception+exception @bob/L0 | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("open+approved", "close with cto by non-approver", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open+approved", "close with cto from before the reopen", "closed/unverified @bob/L0 | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
    ("open+approved", "close with cto, history unreadable", "closed/unverified @bob/L0 | comment,timer:verify | approval-unconfirmed,closed-unverified"),
    ("open+approved", "close by lever", "closed @bob/L0 |  | "),
    ("open+approved", "reopen by person", "open+approved @bob/L0 |  | "),
    ("open+approved", "reopen by lever", "open+approved @bob/L0 |  | "),
    ("open+approved", "assign", "open+approved @carol/L0 |  | "),
    ("open+approved", "self-assign", "open+approved @carol/L0+ack |  | acknowledged-by-self-assignment"),
    ("open+approved", "unassign", "open+approved @-/L0 |  | "),
    ("open+approved", "delete", "deleted+approved @bob/L0 | recreate | issue-deleted-recreate"),
    ("open+approved", "transfer", "open+approved @bob/L0 | moved | issue-transferred"),
    ("open+approved", "expiry comment by approver", "open+approved @bob/L0 |  | exception-expiry-set"),
    ("open+approved", "expiry comment by another approver", "open+approved @bob/L0 |  | exception-expiry-set"),
    ("open+approved", "expiry comment by non-approver", "open+approved @bob/L0+ack | comment | acknowledged-by-comment"),
    ("open+approved", "plain comment by the owner", "open+approved @bob/L0+ack |  | acknowledged-by-comment"),
    ("open+approved", "plain comment by someone else", "open+approved @bob/L0 |  | "),
    ("open+approved", "findings all resolved", "closed/fixed @bob/L0 | body,-cto-approved,close:completed,comment | closed-fixed"),
    ("open+approved", "findings one fixed", "open+approved @bob/L0 | body | resources-fixed"),
    ("open+approved", "findings new resource", "open @bob/L0 | body,-cto-approved,comment,sh:NOTIFIED | resources-added"),
    ("open+approved", "findings unchanged, reset to NEW", "open+approved @bob/L0 | sh:NOTIFIED | "),
    ("open+approved", "findings: r1 fixed, r2 control disabled", "open+approved @bob/L0 | body,comment | fix-unconfirmed"),
    ("open+approved", "findings gone", "closed/fixed @bob/L0 | -cto-approved,close:completed,comment | closed-findings-gone"),
    ("open+approved", "exception timer due", "open+approved @bob/L0 |  | "),
    ("open+approved", "verify: failing", "open+approved @bob/L0 |  | "),
    ("open+approved", "verify: passing", "open+approved @bob/L0 |  | "),
    ("open+approved", "escalation timer", "open+approved @dave/L1 | assign:dave,timer:escalation,comment | escalated-to-backup"),
    ("open+approved", "sla timer", "open+approved @bob/L0 | comment,timer:sla | due-reminder"),
    ("open+approved", "handoff", "open+approved @alice/L0 | assign:alice,timer:escalation,comment | handoff"),
    ("open+approved", "github refuses bob", "open+approved @alice/L0 refused:bob | assign:alice,comment | assignee-refused"),
    ("open+approved", "github refuses dave", "open+approved @bob/L0 |  | "),
    ("open+approved", "enforced", "open+approved @alice/L0 | assign:alice,timer:escalation,timer:sla,-ramp-up,comment | enforced"),
    ("closed-fixed", "label cto-approved by approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-not-needed"),
    ("closed-fixed", "label cto-approved by non-approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-fixed", "label cto-approved by the assignee-approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-fixed", "label cto-approved by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "label acknowledged by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "label exception-requested by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "label unrelated", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "unlabel cto-approved by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "unlabel cto-approved by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close with cto by approver", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close with cto by non-approver", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close with cto from before the reopen", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close with cto, history unreadable", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "close by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "reopen by person", "open @bob/L0 |  | reopened"),
    ("closed-fixed", "reopen by lever", "open/fixed @bob/L0 |  | "),
    ("closed-fixed", "assign", "closed/fixed @carol/L0 |  | "),
    ("closed-fixed", "self-assign", "closed/fixed @carol/L0 |  | "),
    ("closed-fixed", "unassign", "closed/fixed @-/L0 |  | "),
    ("closed-fixed", "delete", "deleted/fixed @bob/L0 |  | issue-deleted"),
    ("closed-fixed", "transfer", "closed/fixed @bob/L0 | moved | issue-transferred"),
    ("closed-fixed", "expiry comment by approver", "closed/fixed @bob/L0 |  | exception-expiry-set"),
    ("closed-fixed", "expiry comment by another approver", "closed/fixed @bob/L0 |  | exception-expiry-set"),
    ("closed-fixed", "expiry comment by non-approver", "closed/fixed @bob/L0 | comment | "),
    ("closed-fixed", "plain comment by the owner", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "plain comment by someone else", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "findings all resolved", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "findings one fixed", "open @alice/L0 | reopen,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed", "findings new resource", "open @alice/L0 | reopen,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed", "findings unchanged, reset to NEW", "open @alice/L0 | reopen,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed", "findings: r1 fixed, r2 control disabled", "closed/fixed @bob/L0 | body | "),
    ("closed-fixed", "findings gone", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "exception timer due", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "verify: failing", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "verify: passing", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "escalation timer", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "sla timer", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "handoff", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "github refuses bob", "closed/fixed @-/L0 refused:bob |  | assignee-refused"),
    ("closed-fixed", "github refuses dave", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed", "enforced", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "label cto-approved by approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-not-needed"),
    ("closed-fixed, label left on", "label cto-approved by non-approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-fixed, label left on", "label cto-approved by the assignee-approver", "closed/fixed @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-fixed, label left on", "label cto-approved by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "label acknowledged by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "label exception-requested by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "label unrelated", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "unlabel cto-approved by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "unlabel cto-approved by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close by person", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close with cto by approver", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close with cto by non-approver", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close with cto from before the reopen", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close with cto, history unreadable", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "close by lever", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "reopen by person", "open @bob/L0 | -cto-approved,comment | reopened"),
    ("closed-fixed, label left on", "reopen by lever", "open/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "assign", "closed/fixed @carol/L0 |  | "),
    ("closed-fixed, label left on", "self-assign", "closed/fixed @carol/L0 |  | "),
    ("closed-fixed, label left on", "unassign", "closed/fixed @-/L0 |  | "),
    ("closed-fixed, label left on", "delete", "deleted/fixed @bob/L0 |  | issue-deleted"),
    ("closed-fixed, label left on", "transfer", "closed/fixed @bob/L0 | moved | issue-transferred"),
    ("closed-fixed, label left on", "expiry comment by approver", "closed/fixed @bob/L0 |  | exception-expiry-set"),
    ("closed-fixed, label left on", "expiry comment by another approver", "closed/fixed @bob/L0 |  | exception-expiry-set"),
    ("closed-fixed, label left on", "expiry comment by non-approver", "closed/fixed @bob/L0 | comment | "),
    ("closed-fixed, label left on", "plain comment by the owner", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "plain comment by someone else", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "findings all resolved", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "findings one fixed", "open @alice/L0 | reopen,-cto-approved,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed, label left on", "findings new resource", "open @alice/L0 | reopen,-cto-approved,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed, label left on", "findings unchanged, reset to NEW", "open @alice/L0 | reopen,-cto-approved,body,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | regression-reopened"),
    ("closed-fixed, label left on", "findings: r1 fixed, r2 control disabled", "closed/fixed @bob/L0 | body | "),
    ("closed-fixed, label left on", "findings gone", "closed/fixed @bob/L0 | -cto-approved,comment | "),
    ("closed-fixed, label left on", "exception timer due", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "verify: failing", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "verify: passing", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "escalation timer", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "sla timer", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "handoff", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "github refuses bob", "closed/fixed @-/L0 refused:bob |  | assignee-refused"),
    ("closed-fixed, label left on", "github refuses dave", "closed/fixed @bob/L0 |  | "),
    ("closed-fixed, label left on", "enforced", "closed/fixed @bob/L0 |  | "),
    ("closed-exception", "label cto-approved by approver", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label cto-approved by non-approver", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label cto-approved by the assignee-approver", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label cto-approved by lever", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label acknowledged by person", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label exception-requested by person", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "label unrelated", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "unlabel cto-approved by person", "open @alice/L0 | reopen,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | exception-ended"),
    ("closed-exception", "unlabel cto-approved by lever", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close by person", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close with cto by approver", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close with cto by non-approver", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close with cto from before the reopen", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close with cto, history unreadable", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "close by lever", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "reopen by person", "open @alice/L0 | -cto-approved,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | exception-ended"),
    ("closed-exception", "reopen by lever", "open/exception+exception @bob/L0 |  | "),
    ("closed-exception", "assign", "closed/exception+exception @carol/L0 |  | "),
    ("closed-exception", "self-assign", "closed/exception+exception @carol/L0 |  | "),
    ("closed-exception", "unassign", "closed/exception+exception @-/L0 |  | "),
    ("closed-exception", "delete", "deleted/exception @bob/L0 | sh:NOTIFIED,recreate | issue-deleted-recreate"),
    ("closed-exception", "transfer", "closed/exception+exception @bob/L0 | moved | issue-transferred"),
    ("closed-exception", "expiry comment by approver", "closed/exception+exception @bob/L0 | sh:SUPPRESSED,timer:exception-expiry,comment | exception-expiry-set"),
    ("closed-exception", "expiry comment by another approver", "closed/exception+exception @bob/L0 | comment | "),
    ("closed-exception", "expiry comment by non-approver", "closed/exception+exception @bob/L0 | comment | "),
    ("closed-exception", "plain comment by the owner", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "plain comment by someone else", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "findings all resolved", "closed/fixed @bob/L0 | body,-cto-approved,comment | fixed-under-exception"),
    ("closed-exception", "findings one fixed", "closed/exception+exception @bob/L0 | body | "),
    ("closed-exception", "findings new resource", "open @alice/L0 | body,reopen,-cto-approved,sh:NOTIFIED,assign:alice,timer:escalation,timer:sla,comment | resource-not-covered,exception-ended"),
    ("closed-exception", "findings unchanged, reset to NEW", "closed/exception+exception @bob/L0 | sh:SUPPRESSED | "),
    ("closed-exception", "findings: r1 fixed, r2 control disabled", "closed/exception+exception @bob/L0 | body | "),
    ("closed-exception", "findings gone", "closed/fixed @bob/L0 | -cto-approved,comment | "),
    ("closed-exception", "exception timer due", "closed/exception+exception @bob/L0 | timer:exception-expiry | "),
    ("closed-exception", "verify: failing", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "verify: passing", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "escalation timer", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "sla timer", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "handoff", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "github refuses bob", "closed/exception+exception @-/L0 refused:bob |  | assignee-refused"),
    ("closed-exception", "github refuses dave", "closed/exception+exception @bob/L0 |  | "),
    ("closed-exception", "enforced", "closed/exception+exception @bob/L0 |  | "),
    ("closed-unverified", "label cto-approved by approver", "closed/exception+exception @bob/L0 | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("closed-unverified", "label cto-approved by non-approver", "closed/unverified @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-unverified", "label cto-approved by the assignee-approver", "closed/unverified @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-unverified", "label cto-approved by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "label acknowledged by person", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "label exception-requested by person", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "label unrelated", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "unlabel cto-approved by person", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "unlabel cto-approved by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close by person", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close with cto by approver", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close with cto by non-approver", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close with cto from before the reopen", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close with cto, history unreadable", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "close by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "reopen by person", "open @bob/L0 |  | reopened"),
    ("closed-unverified", "reopen by lever", "open/unverified @bob/L0 |  | "),
    ("closed-unverified", "assign", "closed/unverified @carol/L0 |  | "),
    ("closed-unverified", "self-assign", "closed/unverified @carol/L0 |  | "),
    ("closed-unverified", "unassign", "closed/unverified @-/L0 |  | "),
    ("closed-unverified", "delete", "deleted/unverified @bob/L0 | recreate | issue-deleted-recreate"),
    ("closed-unverified", "transfer", "closed/unverified @bob/L0 | moved | issue-transferred"),
    ("closed-unverified", "expiry comment by approver", "closed/unverified @bob/L0 |  | exception-expiry-set"),
    ("closed-unverified", "expiry comment by another approver", "closed/unverified @bob/L0 |  | exception-expiry-set"),
    ("closed-unverified", "expiry comment by non-approver", "closed/unverified @bob/L0 | comment | "),
    ("closed-unverified", "plain comment by the owner", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "plain comment by someone else", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "findings all resolved", "closed/fixed @bob/L0 | body | fix-verified"),
    ("closed-unverified", "findings one fixed", "closed/unverified @bob/L0 | body | "),
    ("closed-unverified", "findings new resource", "closed/unverified @bob/L0 | body | "),
    ("closed-unverified", "findings unchanged, reset to NEW", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "findings: r1 fixed, r2 control disabled", "closed/unverified @bob/L0 | body | "),
    ("closed-unverified", "findings gone", "closed/fixed @bob/L0 |  | "),
    ("closed-unverified", "exception timer due", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "verify: failing", "closed/unverified @bob/L0 | +needs-verification,timer:verify,comment | verification-failed"),
    ("closed-unverified", "verify: passing", "closed/fixed @bob/L0 |  | fix-verified"),
    ("closed-unverified", "escalation timer", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "sla timer", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "handoff", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "github refuses bob", "closed/unverified @-/L0 refused:bob |  | assignee-refused"),
    ("closed-unverified", "github refuses dave", "closed/unverified @bob/L0 |  | "),
    ("closed-unverified", "enforced", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "label cto-approved by approver", "closed/exception+exception @bob/L0 | -needs-verification,sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
    ("closed-awaiting-grace", "label cto-approved by non-approver", "closed/unverified @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-awaiting-grace", "label cto-approved by the assignee-approver", "closed/unverified @bob/L0 | -cto-approved,comment | approval-rejected"),
    ("closed-awaiting-grace", "label cto-approved by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "label acknowledged by person", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "label exception-requested by person", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "label unrelated", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "unlabel cto-approved by person", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "unlabel cto-approved by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close by person", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close with cto by approver", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close with cto by non-approver", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close with cto from before the reopen", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close with cto, history unreadable", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "close by lever", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "reopen by person", "open @bob/L0 | -needs-verification | reopened"),
    ("closed-awaiting-grace", "reopen by lever", "open/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "assign", "closed/unverified @carol/L0 |  | "),
    ("closed-awaiting-grace", "self-assign", "closed/unverified @carol/L0 |  | "),
    ("closed-awaiting-grace", "unassign", "closed/unverified @-/L0 |  | "),
    ("closed-awaiting-grace", "delete", "deleted/unverified @bob/L0 | recreate | issue-deleted-recreate"),
    ("closed-awaiting-grace", "transfer", "closed/unverified @bob/L0 | moved | issue-transferred"),
    ("closed-awaiting-grace", "expiry comment by approver", "closed/unverified @bob/L0 |  | exception-expiry-set"),
    ("closed-awaiting-grace", "expiry comment by another approver", "closed/unverified @bob/L0 |  | exception-expiry-set"),
    ("closed-awaiting-grace", "expiry comment by non-approver", "closed/unverified @bob/L0 | comment | "),
    ("closed-awaiting-grace", "plain comment by the owner", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "plain comment by someone else", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "findings all resolved", "closed/fixed @bob/L0 | -needs-verification,body | fix-verified"),
    ("closed-awaiting-grace", "findings one fixed", "closed/unverified @bob/L0 | body | "),
    ("closed-awaiting-grace", "findings new resource", "closed/unverified @bob/L0 | body | "),
    ("closed-awaiting-grace", "findings unchanged, reset to NEW", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "findings: r1 fixed, r2 control disabled", "closed/unverified @bob/L0 | body | "),
    ("closed-awaiting-grace", "findings gone", "closed/fixed @bob/L0 |  | "),
    ("closed-awaiting-grace", "exception timer due", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "verify: failing", "open @alice/L0 | reopen,-needs-verification,assign:alice,timer:escalation,timer:sla,comment | verification-reopened"),
    ("closed-awaiting-grace", "verify: passing", "closed/fixed @bob/L0 | -needs-verification | fix-verified"),
    ("closed-awaiting-grace", "escalation timer", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "sla timer", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "handoff", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "github refuses bob", "closed/unverified @-/L0 refused:bob |  | assignee-refused"),
    ("closed-awaiting-grace", "github refuses dave", "closed/unverified @bob/L0 |  | "),
    ("closed-awaiting-grace", "enforced", "closed/unverified @bob/L0 |  | "),
    ("deleted", "label cto-approved by approver", "deleted @bob/L0 |  | "),
    ("deleted", "label cto-approved by non-approver", "deleted @bob/L0 |  | "),
    ("deleted", "label cto-approved by the assignee-approver", "deleted @bob/L0 |  | "),
    ("deleted", "label cto-approved by lever", "deleted @bob/L0 |  | "),
    ("deleted", "label acknowledged by person", "deleted @bob/L0 |  | "),
    ("deleted", "label exception-requested by person", "deleted @bob/L0 |  | "),
    ("deleted", "label unrelated", "deleted @bob/L0 |  | "),
    ("deleted", "unlabel cto-approved by person", "deleted @bob/L0 |  | "),
    ("deleted", "unlabel cto-approved by lever", "deleted @bob/L0 |  | "),
    ("deleted", "close by person", "deleted @bob/L0 |  | "),
    ("deleted", "close with cto by approver", "deleted @bob/L0 |  | "),
    ("deleted", "close with cto by non-approver", "deleted @bob/L0 |  | "),
    ("deleted", "close with cto from before the reopen", "deleted @bob/L0 |  | "),
    ("deleted", "close with cto, history unreadable", "deleted @bob/L0 |  | "),
    ("deleted", "close by lever", "deleted @bob/L0 |  | "),
    ("deleted", "reopen by person", "deleted @bob/L0 |  | "),
    ("deleted", "reopen by lever", "deleted @bob/L0 |  | "),
    ("deleted", "assign", "deleted @bob/L0 |  | "),
    ("deleted", "self-assign", "deleted @bob/L0 |  | "),
    ("deleted", "unassign", "deleted @bob/L0 |  | "),
    ("deleted", "delete", "deleted @bob/L0 |  | "),
    ("deleted", "transfer", "deleted @bob/L0 |  | "),
    ("deleted", "expiry comment by approver", "deleted @bob/L0 |  | "),
    ("deleted", "expiry comment by another approver", "deleted @bob/L0 |  | "),
    ("deleted", "expiry comment by non-approver", "deleted @bob/L0 |  | "),
    ("deleted", "plain comment by the owner", "deleted @bob/L0 |  | "),
    ("deleted", "plain comment by someone else", "deleted @bob/L0 |  | "),
    ("deleted", "findings all resolved", "deleted @bob/L0 |  | "),
    ("deleted", "findings one fixed", "deleted @bob/L0 |  | "),
    ("deleted", "findings new resource", "deleted @bob/L0 |  | "),
    ("deleted", "findings unchanged, reset to NEW", "deleted @bob/L0 |  | "),
    ("deleted", "findings: r1 fixed, r2 control disabled", "deleted @bob/L0 |  | "),
    ("deleted", "findings gone", "deleted @bob/L0 |  | "),
    ("deleted", "exception timer due", "deleted @bob/L0 |  | "),
    ("deleted", "verify: failing", "deleted @bob/L0 |  | "),
    ("deleted", "verify: passing", "deleted @bob/L0 |  | "),
    ("deleted", "escalation timer", "deleted @bob/L0 |  | "),
    ("deleted", "sla timer", "deleted @bob/L0 |  | "),
    ("deleted", "handoff", "deleted @bob/L0 |  | "),
    ("deleted", "github refuses bob", "deleted @bob/L0 |  | "),
    ("deleted", "github refuses dave", "deleted @bob/L0 |  | "),
    ("deleted", "enforced", "deleted @bob/L0 |  | "),
];

/// Every row as reviewed; a mismatch prints what the machine decides now, so a changed row is
/// reviewed from the failure output.
#[test]
fn every_state_by_every_event() {
    let states = states();
    let events = events();
    assert_eq!(
        MATRIX.len(),
        states.len() * events.len(),
        "the table covers every pair"
    );
    let mut mismatches = Vec::new();
    for (sn, en, want) in MATRIX {
        let st = &states
            .iter()
            .find(|(n, _)| n == sn)
            .unwrap_or_else(|| panic!("state {sn}"))
            .1;
        let ev = &events
            .iter()
            .find(|(n, _)| n == en)
            .unwrap_or_else(|| panic!("event {en}"))
            .1;
        let got = summary(&transition(st, ev, &ctx(), now()));
        if got != *want {
            mismatches.push(format!("{sn} × {en}:\n  want {want}\n  got  {got}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

fn comments(o: &Outcome) -> Vec<&str> {
    o.actions
        .iter()
        .filter_map(|a| {
            if let Action::Comment { body } = a {
                Some(body.as_str())
            } else {
                None
            }
        })
        .collect()
}

fn step(s: &State, e: Event, at: DateTime<Utc>, c: &Ctx) -> Outcome {
    transition(s, &e, c, at)
}

#[test]
fn the_exception_story() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let o = step(
        &s,
        Event::Labeled {
            label: "exception-requested".into(),
            by: person("bob"),
        },
        now(),
        &c,
    );
    assert!(
        comments(&o)[0].contains("@cto-user: please review"),
        "{o:#?}"
    );
    let o = step(
        &o.state,
        Event::Labeled {
            label: "cto-approved".into(),
            by: person("mallory"),
        },
        now(),
        &c,
    );
    assert_eq!(
        o.actions[0],
        Action::RemoveLabel {
            label: "cto-approved".into()
        }
    );
    assert!(
        comments(&o)[0].contains("mallory is not an approver"),
        "{o:#?}"
    );
    assert!(comments(&o)[0].contains("Nothing was suppressed"));
    assert!(o.state.approved_by.is_none());
    let o = step(
        &o.state,
        Event::Labeled {
            label: "cto-approved".into(),
            by: approver("cto-user"),
        },
        now(),
        &c,
    );
    assert_eq!(o.state.approved_by.as_deref(), Some("cto-user"));
    assert!(
        o.actions
            .iter()
            .all(|a| !matches!(a, Action::UpdateFindings { .. })),
        "labeling alone suppresses nothing"
    );
    let close_at = now() + Duration::hours(1);
    let o = step(
        &o.state,
        Event::Closed {
            by: person("bob"),
            state_reason: Some("completed".into()),
            cto_approved: Some(LabelHistory::Current(LabelAuthor {
                login: "cto-user".into(),
                approver: true,
            })),
        },
        close_at,
        &c,
    );
    let expires = close_at + Duration::days(90);
    assert_eq!(o.state.closure, Some(Closure::Exception));
    assert_eq!(
        o.state.exception,
        Some(Exception {
            approver: "cto-user".into(),
            approved_at: close_at,
            expires_at: expires,
            covers: Some(set(&["r1", "r2"])),
        })
    );
    let Action::UpdateFindings {
        workflow,
        note,
        resources,
    } = &o.actions[0]
    else {
        panic!("{o:#?}")
    };
    assert_eq!(
        resources.as_ref(),
        Some(&set(&["r1", "r2"])),
        "only what the exception covers"
    );
    assert_eq!(*workflow, crate::domain::WorkflowStatus::Suppressed);
    assert_eq!(
        note,
        "Exception approved by cto-user, expires 2027-02-21: https://github.com/acme/payments/issues/7"
    );
    assert!(note.chars().count() <= 512);
    assert_eq!(
        o.actions[1],
        Action::Schedule {
            timer: Timer::ExceptionExpiry,
            at: expires
        }
    );
    assert!(comments(&o)[0].contains("until **2027-02-21**"), "{o:#?}");

    // The timer fires at the expiry.
    let o = step(&o.state, Event::ExceptionTimer, expires, &c);
    assert!(o.state.open && o.state.exception.is_none() && o.state.closure.is_none());
    assert_eq!(o.actions[0], Action::Reopen);
    assert_eq!(
        o.actions[1],
        Action::RemoveLabel {
            label: "cto-approved".into()
        }
    );
    assert!(
        matches!(&o.actions[2], Action::UpdateFindings { workflow: crate::domain::WorkflowStatus::Notified, note, resources: None } if note.contains("Exception ended (it expired on 2027-02-21)")),
        "{o:#?}"
    );
    assert_eq!(
        o.actions[3],
        Action::Assign {
            user: "alice".into()
        }
    );
    assert!(comments(&o)[0].contains("expired on 2027-02-21"), "{o:#?}");
    assert!(
        comments(&o)[0].contains("@alice (on call) owns it again"),
        "{o:#?}"
    );
    assert_eq!(o.log, ["exception-ended"]);
}

#[test]
fn an_approver_sets_the_expiry_before_or_during_the_exception() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let o = step(
        &s,
        Event::Commented {
            by: approver("cto-user"),
            body: "Accepted.\nException-Expires: 2027-03-31\n".into(),
        },
        now(),
        &c,
    );
    assert_eq!(
        o.state.expiry_requests.get("cto-user"),
        Some(&NaiveDate::from_ymd_opt(2027, 3, 31).unwrap())
    );
    let o = step(
        &o.state,
        Event::Closed {
            by: person("bob"),
            state_reason: None,
            cto_approved: Some(LabelHistory::Current(LabelAuthor {
                login: "cto-user".into(),
                approver: true,
            })),
        },
        now(),
        &c,
    );
    assert_eq!(
        o.state.exception.as_ref().unwrap().expires_at,
        t("2027-03-31T23:59:59Z")
    );
    // The latest line wins; the note and the timer follow.
    let o = step(
        &o.state,
        Event::Commented {
            by: approver("cto-user"),
            body: "Exception-Expires: 2027-01-15\nException-Expires: 2027-02-01".into(),
        },
        now(),
        &c,
    );
    assert_eq!(
        o.state.exception.as_ref().unwrap().expires_at,
        t("2027-02-01T23:59:59Z")
    );
    assert!(o.actions.contains(&Action::Schedule {
        timer: Timer::ExceptionExpiry,
        at: t("2027-02-01T23:59:59Z")
    }));
    // An early timer (scheduled for an older, earlier expiry) waits for the real one.
    let early = step(
        &o.state,
        Event::ExceptionTimer,
        t("2027-01-15T00:00:00Z"),
        &c,
    );
    assert_eq!(
        early.actions,
        [Action::Schedule {
            timer: Timer::ExceptionExpiry,
            at: t("2027-02-01T23:59:59Z")
        }]
    );
    assert!(early.state.exception.is_some());
    // Bad and past dates are refused with a comment.
    let bad = step(
        &o.state,
        Event::Commented {
            by: approver("cto-user"),
            body: "Exception-Expires: next year".into(),
        },
        now(),
        &c,
    );
    assert!(comments(&bad)[0].contains("is not a date"), "{bad:#?}");
    let past = step(
        &o.state,
        Event::Commented {
            by: approver("cto-user"),
            body: "Exception-Expires: 2020-01-01".into(),
        },
        now(),
        &c,
    );
    assert!(comments(&past)[0].contains("in the past"));
    assert_eq!(past.state, o.state);
}

#[test]
fn self_approval_needs_the_config() {
    let s = State::opened(Some("cto-user".into()), failing(), &[]);
    let closed = Event::Closed {
        by: person("x"),
        state_reason: None,
        cto_approved: Some(LabelHistory::Current(LabelAuthor {
            login: "cto-user".into(),
            approver: true,
        })),
    };
    let refused = step(&s, closed.clone(), now(), &ctx());
    assert_eq!(refused.state.closure, Some(Closure::Unverified));
    assert!(comments(&refused)[0].contains("may not approve their own exception"));
    let allowed = step(
        &s,
        closed,
        now(),
        &Ctx {
            allow_self_approval: true,
            ..ctx()
        },
    );
    assert_eq!(allowed.state.closure, Some(Closure::Exception));
}

#[test]
fn exception_expires_line_table() {
    let cases: &[(&str, Option<Result<&str, ()>>)] = &[
        ("Exception-Expires: 2027-03-31", Some(Ok("2027-03-31"))),
        ("exception-expires:2027-03-31", Some(Ok("2027-03-31"))),
        // Quoted text is someone else's words.
        ("> Exception-Expires: 2027-03-31", None),
        ("  >Exception-Expires: 2027-03-31\nok", None),
        (
            "> Exception-Expires: 2030-01-01\nException-Expires: 2027-03-31",
            Some(Ok("2027-03-31")),
        ),
        (
            "a\nException-Expires: 2027-01-01\nb\nException-Expires: 2027-02-02",
            Some(Ok("2027-02-02")),
        ),
        ("Exception-Expires: 31/03/2027", Some(Err(()))),
        ("no date here", None),
        ("Expires: 2027-03-31", None),
    ];
    for (body, want) in cases {
        let got = requested_expiry(body);
        match (got, want) {
            (None, None) => {}
            (Some(Ok(d)), Some(Ok(w))) => assert_eq!(d.to_string(), *w, "{body:?}"),
            (Some(Err(_)), Some(Err(()))) => {}
            (got, want) => panic!("{body:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_close_without_approval_is_verified_then_reopened_after_the_grace() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let o = step(
        &s,
        Event::Closed {
            by: person("bob"),
            state_reason: Some("completed".into()),
            cto_approved: None,
        },
        now(),
        &c,
    );
    assert_eq!(
        o.actions,
        [Action::Schedule {
            timer: Timer::Verify,
            at: now() + Duration::minutes(15)
        }]
    );
    let first = now() + Duration::minutes(15);
    let o = step(&o.state, Event::VerifyTimer { failing: true }, first, &c);
    assert!(o.state.labels.contains("needs-verification"));
    assert_eq!(
        o.actions
            .iter()
            .filter(|a| matches!(a, Action::Comment { .. }))
            .count(),
        1,
        "it says so once"
    );
    assert!(o.actions.contains(&Action::Schedule {
        timer: Timer::Verify,
        at: first + Duration::hours(24)
    }));
    assert!(!o.state.open, "no reopen loop");
    // A check before the grace ends (e.g. the periodic sync) only waits.
    let o2 = step(
        &o.state,
        Event::VerifyTimer { failing: true },
        first + Duration::hours(1),
        &c,
    );
    assert_eq!(
        o2.actions,
        [Action::Schedule {
            timer: Timer::Verify,
            at: first + Duration::hours(24)
        }]
    );
    // After the grace, still failing: reopen, once.
    let o3 = step(
        &o2.state,
        Event::VerifyTimer { failing: true },
        first + Duration::hours(24),
        &c,
    );
    assert!(o3.state.open);
    assert_eq!(o3.log, ["verification-reopened"]);
    assert!(o3.actions.contains(&Action::RemoveLabel {
        label: "needs-verification".into()
    }));
    // The same closed issue, fixed in time: stays closed and loses the label.
    let fixed = step(
        &o.state,
        Event::Findings {
            view: FindingsView {
                failing: set(&[]),
                fixed: set(&["r1", "r2"]),
                unnotified: 0,
                ..FindingsView::default()
            },
        },
        first + Duration::hours(2),
        &c,
    );
    assert_eq!(
        (fixed.state.open, fixed.state.closure),
        (false, Some(Closure::Fixed))
    );
    assert!(fixed.actions.contains(&Action::RemoveLabel {
        label: "needs-verification".into()
    }));
}

#[test]
fn fixed_then_failing_again_reopens_the_same_issue() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let resolved = FindingsView {
        failing: set(&[]),
        fixed: set(&["r1", "r2"]),
        unnotified: 0,
        ..FindingsView::default()
    };
    let o = step(&s, Event::Findings { view: resolved }, now(), &c);
    assert_eq!(
        o.actions[1],
        Action::Close {
            reason: CloseReason::Completed
        }
    );
    assert!(
        comments(&o)[0].contains("every resource fixed (`r1`, `r2`)"),
        "{o:#?}"
    );
    let again = FindingsView {
        failing: set(&["r2"]),
        fixed: set(&["r1"]),
        unnotified: 1,
        ..FindingsView::default()
    };
    let o = step(
        &o.state,
        Event::Findings { view: again },
        now() + Duration::days(3),
        &c,
    );
    assert!(o.state.open);
    assert_eq!(o.log, ["regression-reopened"]);
    assert!(comments(&o)[0].contains("again on `r2`"), "{o:#?}");
    assert!(o.actions.contains(&Action::Assign {
        user: "alice".into()
    }));
    assert!(!o.actions.contains(&Action::Recreate), "never a new issue");
}

#[test]
fn events_caused_by_lever_never_count_as_human_actions() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    for e in [
        Event::Labeled {
            label: "cto-approved".into(),
            by: Actor::Lever,
        },
        Event::Closed {
            by: Actor::Lever,
            state_reason: None,
            cto_approved: None,
        },
        Event::Reopened { by: Actor::Lever },
        Event::Unlabeled {
            label: "cto-approved".into(),
            by: Actor::Lever,
        },
        Event::Commented {
            by: Actor::Lever,
            body: "Exception-Expires: 2027-01-01".into(),
        },
    ] {
        let o = step(&s, e.clone(), now(), &c);
        assert!(o.actions.is_empty() && o.log.is_empty(), "{e:?}: {o:#?}");
        assert!(o.state.exception.is_none() && o.state.verification.is_none());
    }
}

fn escalation_state() -> State {
    let mut s = State::opened(Some("bob".into()), failing(), &[]);
    s.ack_deadline = Some(t("2026-11-23T10:00:00Z"));
    s
}

#[test]
fn escalation_skips_missing_or_repeated_people() {
    let s = escalation_state();
    // No backup configured: straight to the security team.
    let o = step(
        &s,
        Event::EscalationTimer,
        now(),
        &Ctx {
            backup: None,
            ..ctx()
        },
    );
    assert_eq!(
        (o.state.assignee.as_deref(), o.state.level),
        (Some("sam"), 2)
    );
    assert!(
        o.state.ack_deadline.is_none(),
        "the last level has no deadline"
    );
    // The backup is the owner already (e.g. on both rotations): skip to the security team.
    let o = step(
        &s,
        Event::EscalationTimer,
        now(),
        &Ctx {
            backup: Some("BOB".into()),
            ..ctx()
        },
    );
    assert_eq!(o.state.assignee.as_deref(), Some("sam"));
    // Nobody left at all.
    let o = step(
        &s,
        Event::EscalationTimer,
        now(),
        &Ctx {
            backup: None,
            security: Some("bob".into()),
            ..ctx()
        },
    );
    assert_eq!(o.log, ["escalation-exhausted"]);
    assert!(o.actions.is_empty());
    // Fired before the deadline (moved later): waits.
    let early = step(
        &s,
        Event::EscalationTimer,
        t("2026-11-23T09:00:00Z"),
        &ctx(),
    );
    assert_eq!(
        early.actions,
        [Action::Schedule {
            timer: Timer::Escalation,
            at: t("2026-11-23T10:00:00Z")
        }]
    );
    // No acknowledgement deadline (ramp-up): nothing.
    let none = step(
        &State {
            ack_deadline: None,
            ..s.clone()
        },
        Event::EscalationTimer,
        now(),
        &ctx(),
    );
    assert!(none.actions.is_empty());
}

#[test]
fn escalation_comment_mentions_both_people_and_the_rule() {
    let o = step(
        &escalation_state(),
        Event::EscalationTimer,
        now(),
        &Ctx {
            ack_within: "8h of working time (eu-office)".into(),
            ..ctx()
        },
    );
    let c = comments(&o);
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with("@bob did not acknowledge this issue within 8h of working time (eu-office). @dave (the backup) owns it now"), "{}", c[0]);
    assert_eq!(
        o.actions[0],
        Action::Assign {
            user: "dave".into()
        },
        "one owner: the backup replaces the assignee"
    );
    assert_eq!(o.state.ack_deadline, Some(t("2026-11-23T16:00:00Z")));
}

#[test]
fn sla_timer_schedules_reminder_then_overdue() {
    let mut s = State::opened(Some("bob".into()), failing(), &[]);
    s.due = Some(t("2026-12-10T00:00:00Z"));
    let early = step(&s, Event::SlaTimer, now(), &ctx());
    assert_eq!(
        early.actions,
        [Action::Schedule {
            timer: Timer::Sla,
            at: t("2026-12-08T00:00:00Z")
        }]
    );
    let reminder = step(&s, Event::SlaTimer, t("2026-12-08T00:00:00Z"), &ctx());
    assert!(reminder.state.reminded);
    assert!(comments(&reminder)[0].contains("@bob: this issue is due on **2026-12-10**"));
    let again = step(
        &reminder.state,
        Event::SlaTimer,
        t("2026-12-09T00:00:00Z"),
        &ctx(),
    );
    assert!(comments(&again).is_empty(), "one reminder");
    let overdue = step(
        &reminder.state,
        Event::SlaTimer,
        t("2026-12-10T00:00:00Z"),
        &ctx(),
    );
    assert!(overdue.state.overdue && overdue.state.labels.contains("overdue"));
    let closed = step(
        &State {
            open: false,
            ..s.clone()
        },
        Event::SlaTimer,
        t("2026-12-11T00:00:00Z"),
        &ctx(),
    );
    assert!(closed.actions.is_empty(), "closed issues are never overdue");
}

#[test]
fn handoff_policy_table() {
    let unack = State::opened(Some("bob".into()), failing(), &[]);
    let ack = State {
        acknowledged: Some(Ack {
            by: "bob".into(),
            at: now(),
        }),
        ..unack.clone()
    };
    // (state, follow_unacknowledged, follow_acknowledged, new owner)
    let cases = [
        (&unack, true, false, "alice"),
        (&unack, false, false, "bob"),
        (&ack, true, false, "bob"),
        (&ack, true, true, "alice"),
    ];
    for (i, (s, fu, fa, want)) in cases.into_iter().enumerate() {
        let c = Ctx {
            follow_unacknowledged: fu,
            follow_acknowledged: fa,
            ..ctx()
        };
        let o = step(s, Event::Handoff, now(), &c);
        assert_eq!(o.state.assignee.as_deref(), Some(want), "case {i}");
        if want == "alice" {
            assert_eq!(
                o.state.acknowledged.is_some(),
                s.acknowledged.is_some(),
                "case {i}: an acknowledged issue stays acknowledged"
            );
        }
    }
    // Escalated issues stay with the backup.
    let at_backup = State {
        level: 1,
        ..unack.clone()
    };
    assert!(
        step(&at_backup, Event::Handoff, now(), &ctx())
            .actions
            .is_empty()
    );
}

/// GitHub refuses `user` (the worker's report of a refused `Assign`).
fn refused(user: &str) -> Event {
    Event::AssigneeRefused { user: user.into() }
}

/// alice (on call) was just given the issue: level 0, with her acknowledgement deadline.
fn assigned_to_alice() -> State {
    let mut s = State::opened(Some("alice".into()), failing(), &[]);
    s.ack_deadline = Some(t("2026-11-23T16:00:00Z"));
    s
}

#[test]
fn a_refused_owner_hands_over_to_the_backup_and_the_issue_says_so() {
    let s = assigned_to_alice();
    let o = step(&s, refused("alice"), now(), &ctx());
    assert_eq!(
        o.actions,
        [
            Action::Assign {
                user: "dave".into()
            },
            Action::Comment {
                body: "GitHub would not assign alice, the engineer on call (not a collaborator of this repository), \
                       so @dave, the next person in the escalation chain, owns this issue."
                    .into()
            },
        ]
    );
    assert_eq!(o.state.assignee.as_deref(), Some("dave"));
    assert_eq!(o.state.refused, ["alice"]);
    assert_eq!(o.log, ["assignee-refused"]);
    // dave owns it now, and has owned it in this period (he may not approve its exception).
    assert_eq!(
        o.state.owners,
        BTreeSet::from(["alice".into(), "dave".into()])
    );
    // Only the owner changed: the level, the acknowledgement deadline and the rest stay.
    assert_eq!(
        State {
            assignee: Some("alice".into()),
            owners: s.owners.clone(),
            refused: vec![],
            ..o.state.clone()
        },
        s
    );
}

#[test]
fn the_other_owners_of_the_repository_come_before_the_backup() {
    let c = Ctx {
        other_owners: vec!["olga".into(), "dave".into()],
        ..ctx()
    };
    let o = step(&assigned_to_alice(), refused("alice"), now(), &c);
    assert_eq!(o.state.assignee.as_deref(), Some("olga"));
    assert!(matches!(&o.actions[1], Action::Comment { body } if body.contains("@olga")));
    let o = step(&o.state, refused("olga"), now(), &c);
    assert_eq!(o.state.assignee.as_deref(), Some("dave"));
    let Action::Comment { body } = &o.actions[1] else {
        panic!("{:?}", o.actions)
    };
    assert!(
        body.starts_with("GitHub would not assign olga, an owner of this repository"),
        "{body}"
    );
    // dave (an owner and the backup) refused: sam (security) is next, nobody twice.
    let o = step(&o.state, refused("dave"), now(), &c);
    assert_eq!(o.state.assignee.as_deref(), Some("sam"));
    assert_eq!(o.state.refused, ["alice", "olga", "dave"]);
}

#[test]
fn a_refused_backup_hands_over_to_the_security_team() {
    let o = step(&assigned_to_alice(), refused("alice"), now(), &ctx());
    let o = step(&o.state, refused("DAVE"), now(), &ctx());
    assert_eq!(o.actions[0], Action::Assign { user: "sam".into() });
    assert!(
        comments(&o)[0].starts_with("GitHub would not assign DAVE, the backup (not a collaborator"),
        "{o:#?}"
    );
    assert!(
        comments(&o)[0]
            .contains("so @sam, the next person in the escalation chain, owns this issue.")
    );
    assert_eq!(o.state.assignee.as_deref(), Some("sam"));
    assert_eq!(o.state.refused, ["alice", "DAVE"]);
    // The same from the backup's own level (an escalation GitHub refused).
    let at_backup = State {
        assignee: Some("dave".into()),
        level: 1,
        ..assigned_to_alice()
    };
    let o = step(&at_backup, refused("dave"), now(), &ctx());
    assert_eq!(
        (o.state.assignee.as_deref(), o.state.level),
        (Some("sam"), 1)
    );
}

#[test]
fn when_everyone_is_refused_nobody_is_assigned_and_it_is_said_once() {
    let c = ctx();
    let mut s = assigned_to_alice();
    let mut said = Vec::new();
    for who in ["alice", "dave", "sam"] {
        let o = step(&s, refused(who), now(), &c);
        said.extend(comments(&o).iter().map(|c| c.to_string()));
        s = o.state;
    }
    assert_eq!(s.assignee, None);
    assert_eq!(s.refused, ["alice", "dave", "sam"]);
    assert_eq!(said.len(), 3, "one comment per refusal: {said:#?}");
    assert_eq!(
        said[2],
        "GitHub would not assign anyone in the escalation chain (alice, dave, sam): nobody is assigned. Give them \
         access to this repository, or assign an owner by hand."
    );
    // A repeated report (a retried job) or a late one for anyone of the walk: nothing more.
    for who in ["sam", "alice", "dave"] {
        let again = step(&s, refused(who), now(), &c);
        assert!(
            again.actions.is_empty() && again.log.is_empty() && again.state == s,
            "{who}: {again:#?}"
        );
    }
    // The last of the chain refused at once: nobody, without trying anyone before them.
    let at_security = State {
        assignee: Some("sam".into()),
        level: 2,
        ..assigned_to_alice()
    };
    let o = step(&at_security, refused("sam"), now(), &c);
    assert_eq!(o.state.assignee, None);
    assert_eq!(o.log, ["nobody-assignable"]);
    assert!(
        comments(&o)[0].contains("in the escalation chain (sam): nobody is assigned"),
        "{o:#?}"
    );
    assert!(!o.actions.iter().any(|a| matches!(a, Action::Assign { .. })));
}

#[test]
fn a_refused_person_is_never_tried_again_in_the_same_walk() {
    // alice is on call and also the security team's engineer on call.
    let c = Ctx {
        security: Some("Alice".into()),
        ..ctx()
    };
    let o = step(&assigned_to_alice(), refused("alice"), now(), &c);
    let o = step(&o.state, refused("dave"), now(), &c);
    assert_eq!(
        o.state.assignee, None,
        "alice is not tried again as security"
    );
    assert!(
        comments(&o)[0].contains("(alice, dave): nobody is assigned"),
        "{o:#?}"
    );
    // Someone outside the chain (an owner from before a handoff) refused: the whole chain is
    // walked from its start, and the walk still remembers everyone it tried.
    let bob = State::opened(Some("bob".into()), failing(), &[]);
    let o = step(&bob, refused("bob"), now(), &ctx());
    assert!(
        comments(&o)[0].starts_with("GitHub would not assign bob (not a collaborator"),
        "no role for someone outside the chain: {o:#?}"
    );
    assert_eq!(o.state.assignee.as_deref(), Some("alice"));
    let o = step(&o.state, refused("alice"), now(), &ctx());
    assert_eq!(o.state.assignee.as_deref(), Some("dave"));
    assert_eq!(o.state.refused, ["bob", "alice"]);
    // Lever's own assignment coming back as a webhook is not a new owner: the walk goes on.
    let echo = step(
        &o.state,
        Event::Assigned {
            user: "dave".into(),
            by: Actor::Lever,
        },
        now(),
        &ctx(),
    );
    assert_eq!(echo.state.refused, ["bob", "alice"]);
    let o = step(&echo.state, refused("dave"), now(), &ctx());
    assert_eq!(o.state.assignee.as_deref(), Some("sam"));
    // A stale refusal (someone a later decision no longer gives the issue to) changes nothing.
    let stale = step(&o.state, refused("erin"), now(), &ctx());
    assert_eq!(stale.state, o.state);
    assert!(stale.actions.is_empty() && stale.log.is_empty());
}

#[test]
fn a_later_change_of_owner_starts_a_fresh_walk() {
    // Everyone refused, nobody owns the issue (still at level 0)...
    let c = ctx();
    let mut s = assigned_to_alice();
    for who in ["alice", "dave", "sam"] {
        s = step(&s, refused(who), now(), &c).state;
    }
    // ... then the rotation hands off to erin: a new owner, a new walk, everyone tried again.
    let handoff = Ctx {
        on_call: Some("erin".into()),
        ..ctx()
    };
    let o = step(&s, Event::Handoff, now(), &handoff);
    assert_eq!(o.state.assignee.as_deref(), Some("erin"));
    assert!(o.state.refused.is_empty(), "{o:#?}");
    let o = step(&o.state, refused("erin"), now(), &handoff);
    assert_eq!(
        o.actions[0],
        Action::Assign {
            user: "dave".into()
        },
        "dave, refused in the earlier walk, is tried again"
    );

    // A walk that ended with the backup: the escalation to the security team is a new owner.
    let o = step(&assigned_to_alice(), refused("alice"), now(), &c);
    let at = t("2026-11-23T16:00:00Z");
    let o = step(&o.state, Event::EscalationTimer, at, &c);
    assert_eq!(
        (o.state.assignee.as_deref(), o.state.level),
        (Some("sam"), 2)
    );
    assert!(o.state.refused.is_empty(), "{o:#?}");
    let o = step(&o.state, refused("sam"), at, &c);
    assert_eq!(o.state.refused, ["sam"]);
    assert!(
        comments(&o)[0].contains("(sam): nobody is assigned"),
        "{o:#?}"
    );

    // A person assigning someone by hand, or a reopen that gives the issue to the engineer on
    // call: the same.
    let walked = step(&assigned_to_alice(), refused("alice"), now(), &c).state;
    let by_hand = step(
        &walked,
        Event::Assigned {
            user: "carol".into(),
            by: person("carol"),
        },
        now(),
        &c,
    );
    assert!(by_hand.state.refused.is_empty());
    let closed = State {
        open: false,
        closure: Some(Closure::Fixed),
        ..walked
    };
    let reopened = step(
        &closed,
        Event::Findings {
            view: FindingsView {
                failing: set(&["r1"]),
                fixed: set(&[]),
                unnotified: 1,
                ..FindingsView::default()
            },
        },
        now(),
        &c,
    );
    assert_eq!(reopened.state.assignee.as_deref(), Some("alice"));
    assert!(reopened.state.refused.is_empty(), "{reopened:#?}");
    assert!(reopened.actions.contains(&Action::Assign {
        user: "alice".into()
    }));
}

#[test]
fn a_closed_issue_only_forgets_its_refused_owner() {
    let closed = State {
        open: false,
        closure: Some(Closure::Fixed),
        ..assigned_to_alice()
    };
    let o = step(&closed, refused("alice"), now(), &ctx());
    assert_eq!(o.state.assignee, None);
    assert_eq!(o.state.refused, ["alice"]);
    assert!(o.actions.is_empty(), "no comment on a closed issue: {o:#?}");
    assert_eq!(o.log, ["assignee-refused"]);
}

#[test]
fn the_refused_list_is_stored_only_when_there_is_one() {
    let s = assigned_to_alice();
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("refused").is_none(), "{json}");
    let walked = step(&s, refused("alice"), now(), &ctx()).state;
    let json = serde_json::to_value(&walked).unwrap();
    assert_eq!(json["refused"], serde_json::json!(["alice"]));
    let back: State = serde_json::from_value(json).unwrap();
    assert_eq!(back, walked);
}

/// An ignore tag that does not stop tracking (outside ramp-up) is reported once when it
/// appears, in every state but a deleted issue and one under an exception; the rest of the
/// transition is what the same view without the tag does.
#[test]
fn a_new_ignore_tag_is_reported_not_obeyed() {
    let c = ctx();
    let tagged = |reason: &str| FindingsView {
        ignore_tagged: [("r1".to_string(), format!("lever:ignore={reason}"))].into(),
        ..failing()
    };
    let want = [
        ("open", true),
        ("open, approver owned it earlier", true),
        ("open+acknowledged", true),
        ("open-at-backup", true),
        ("open-past-due", true),
        ("open+approved", true),
        ("closed-fixed", true),
        ("closed-fixed, label left on", true),
        ("closed-exception", false),
        ("closed-unverified", true),
        ("closed-awaiting-grace", true),
        ("deleted", false),
    ];
    let mut mismatches = Vec::new();
    for ((name, s), (want_name, reported)) in states().into_iter().zip(want) {
        assert_eq!(name, want_name);
        let plain = step(&s, Event::Findings { view: failing() }, now(), &c);
        let o = step(
            &s,
            Event::Findings {
                view: tagged("legacy"),
            },
            now(),
            &c,
        );
        let said = comments(&o)
            .iter()
            .any(|c| c.contains("`r1` is tagged `lever:ignore=legacy`"));
        let logged = o.log.contains(&"ignore-tag-reported".to_string());
        let same_otherwise = o.state.open == plain.state.open
            && o.state.closure == plain.state.closure
            && o.state.exception == plain.state.exception
            && o.actions.len() == plain.actions.len() + usize::from(reported);
        if said != reported || logged != reported || !same_otherwise {
            mismatches.push(format!(
                "{name}: reported {said}/{logged}, else same {same_otherwise}: {o:#?}"
            ));
        }
        // The same tag again: nothing more; a new reason: reported again.
        let again = step(
            &o.state,
            Event::Findings {
                view: tagged("legacy"),
            },
            now(),
            &c,
        );
        if again.log.contains(&"ignore-tag-reported".to_string()) {
            mismatches.push(format!("{name}: reported twice"));
        }
        let changed = step(
            &o.state,
            Event::Findings {
                view: tagged("other"),
            },
            now(),
            &c,
        );
        if changed.log.contains(&"ignore-tag-reported".to_string()) != reported {
            mismatches.push(format!("{name}: a new reason"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn an_ignore_tag_reason_cannot_break_out_of_its_code_span() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let view = FindingsView {
        ignore_tagged: [(
            "r1".to_string(),
            "lever:ignore=`x`\n\n@mallory acme/other#1".to_string(),
        )]
        .into(),
        ..failing()
    };
    let o = step(&s, Event::Findings { view }, now(), &c);
    assert!(
        comments(&o)[0].contains("`r1` is tagged `lever:ignore='x'  @mallory acme/other#1`"),
        "{o:#?}"
    );
}

/// What a finding says about its resources, with `Compliance.StatusReasons` codes Security Hub
/// writes (user guide, "Compliance details for control findings"; the WARNING,
/// CONFIG_ACCESS_DENIED and CONFIG_EVALUATIONS_EMPTY ones are in the conformance findings).
#[test]
fn verdict_table() {
    use crate::domain::{ComplianceStatus as C, RecordState as R};
    /// (name, compliance, record state, reason codes, verdict)
    type Case = (&'static str, Option<C>, R, &'static [&'static str], Verdict);
    let unconfirmed = |why: &str| Verdict::Unconfirmed(why.to_string());
    let disabled = |status: &str| {
        unconfirmed(&format!(
            "Security Hub archived the finding while it was still {status}: the control or its standard was \
             disabled, or the finding was archived by hand"
        ))
    };
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("failed", Some(C::Failed), R::Active, &[], Verdict::Failing),
        ("warning (Config access denied)", Some(C::Warning), R::Active, &["CONFIG_ACCESS_DENIED"], Verdict::Failing),
        ("not a control, active", None, R::Active, &[], Verdict::Failing),
        ("passed", Some(C::Passed), R::Active, &[], Verdict::Fixed),
        ("passed, nothing in scope", Some(C::Passed), R::Active, &["CONFIG_EVALUATIONS_EMPTY"], Verdict::Fixed),
        ("passed and archived", Some(C::Passed), R::Archived, &[], Verdict::Fixed),
        ("not a control, archived by its product", None, R::Archived, &[], Verdict::Fixed),
        ("resource deleted", Some(C::NotAvailable), R::Archived, &["CONFIG_RETURNS_NOT_APPLICABLE"], Verdict::Fixed),
        ("resource deleted, no reason", Some(C::NotAvailable), R::Archived, &[], Verdict::Fixed),
        ("control disabled", Some(C::Failed), R::Archived, &[], disabled("FAILED")),
        ("control disabled (warning)", Some(C::Warning), R::Archived, &[], disabled("WARNING")),
        ("evaluation failed", Some(C::NotAvailable), R::Active, &["CONFIG_ACCESS_DENIED"],
            unconfirmed("Security Hub could not evaluate it (NOT_AVAILABLE: CONFIG_ACCESS_DENIED)")),
        ("evaluation failed, archived", Some(C::NotAvailable), R::Archived, &["CONFIG_RULE_EVALUATION_ERROR"],
            unconfirmed("Security Hub could not evaluate it (NOT_AVAILABLE: CONFIG_RULE_EVALUATION_ERROR)")),
        ("not applicable and an error", Some(C::NotAvailable), R::Archived, &["CONFIG_RETURNS_NOT_APPLICABLE", "INTERNAL_SERVICE_ERROR"],
            unconfirmed("Security Hub could not evaluate it (NOT_AVAILABLE: INTERNAL_SERVICE_ERROR)")),
        ("unknown reason", Some(C::NotAvailable), R::Archived, &["SOMETHING_NEW"],
            unconfirmed("Security Hub could not evaluate it (NOT_AVAILABLE: SOMETHING_NEW)")),
        ("not available, still active", Some(C::NotAvailable), R::Active, &["CONFIG_RETURNS_NOT_APPLICABLE"],
            unconfirmed("Security Hub could not evaluate it (NOT_AVAILABLE, finding still active)")),
    ];
    let mut wrong = Vec::new();
    for (name, compliance, record_state, reasons, want) in cases {
        let mut f =
            crate::domain::sample::control_finding("S3.1", "t", crate::domain::Severity::High);
        f.compliance = *compliance;
        f.record_state = *record_state;
        f.compliance_reasons = reasons.iter().map(|r| r.to_string()).collect();
        let got = verdict(&f);
        if &got != want {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        assert_eq!(is_failing(&f), *want == Verdict::Failing, "{name}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_resource_not_confirmed_fixed_is_neither_failing_nor_fixed() {
    let mut ok = crate::domain::sample::control_finding("S3.1", "t", crate::domain::Severity::High);
    ok.compliance = Some(crate::domain::ComplianceStatus::Passed);
    ok.resources[0].id = "a".into();
    let mut disabled = ok.clone();
    disabled.compliance = Some(crate::domain::ComplianceStatus::Failed);
    disabled.record_state = crate::domain::RecordState::Archived;
    disabled.resources[0].id = "b".into();
    let mut failing = disabled.clone();
    failing.record_state = crate::domain::RecordState::Active;
    failing.resources[0].id = "c".into();
    // `b` is named by an unconfirmed finding and by a failing one: failing wins.
    let mut failing_b = failing.clone();
    failing_b.resources[0].id = "b".into();
    let v = FindingsView::of(&[ok.clone(), disabled.clone(), failing.clone()]);
    assert_eq!(v.failing, set(&["c"]));
    assert_eq!(v.fixed, set(&["a"]));
    assert_eq!(
        v.unconfirmed.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["b"])
    );
    assert!(!v.all_resolved());
    let v = FindingsView::of(&[ok, disabled, failing_b]);
    assert_eq!(v.failing, set(&["b"]));
    assert!(v.unconfirmed.is_empty());
}

/// Nothing fails any more but the fix is not confirmed: the open issue stays open, says why
/// once (again only when the picture changes), and leaves the decision to the security team.
#[test]
fn a_fix_security_hub_does_not_confirm_keeps_the_issue_open() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let view = FindingsView {
        failing: set(&[]),
        fixed: set(&["r1"]),
        unconfirmed: [(
            "r2".to_string(),
            "Security Hub could not evaluate it (NOT_AVAILABLE: CONFIG_ACCESS_DENIED)".to_string(),
        )]
        .into_iter()
        .collect(),
        unnotified: 0,
        ..FindingsView::default()
    };
    let o = step(&s, Event::Findings { view: view.clone() }, now(), &c);
    assert!(o.state.open);
    assert_eq!(o.log, ["fix-unconfirmed"]);
    let said = comments(&o)[0];
    assert!(
        said.contains(
            "`r2`: Security Hub could not evaluate it (NOT_AVAILABLE: CONFIG_ACCESS_DENIED)"
        ) && said.contains("not a fix")
            && said.contains("@sam (security team): please decide"),
        "{said}"
    );
    assert!(!o.actions.iter().any(|a| matches!(a, Action::Close { .. })));
    // The same picture again: nothing more to say.
    let again = step(&o.state, Event::Findings { view }, now(), &c);
    assert!(
        again.actions.is_empty() && again.log.is_empty(),
        "{again:#?}"
    );
    // A close by a person is not verified by it: the verification says what is missing.
    let closed = step(
        &o.state,
        Event::Closed {
            by: person("bob"),
            state_reason: None,
            cto_approved: None,
        },
        now(),
        &c,
    );
    assert_eq!(closed.state.closure, Some(Closure::Unverified));
    let v = step(
        &closed.state,
        Event::VerifyTimer { failing: true },
        now() + Duration::minutes(15),
        &c,
    );
    assert!(
        comments(&v)[0].contains("does not confirm the fix on `r2`"),
        "{v:#?}"
    );
}

/// An approval, an `Exception-Expires:` request and the owners belong to the period since the
/// issue was last (re)opened.
#[test]
fn a_reopen_starts_a_new_period() {
    let c = ctx();
    let s = State {
        approved_by: Some("cto-user".into()),
        expiry_requests: [(
            "cto-user".to_string(),
            NaiveDate::from_ymd_opt(2027, 6, 30).unwrap(),
        )]
        .into_iter()
        .collect(),
        owners: set(&["bob", "cto-user"]),
        ..State::opened(Some("bob".into()), failing(), &["cto-approved".into()])
    };
    let closed = step(
        &s,
        Event::Closed {
            by: person("bob"),
            state_reason: None,
            cto_approved: None,
        },
        now(),
        &c,
    );
    let o = step(
        &closed.state,
        Event::Reopened { by: person("bob") },
        now(),
        &c,
    );
    assert!(o.state.approved_by.is_none());
    assert!(o.state.expiry_requests.is_empty());
    assert_eq!(o.state.owners, set(&["bob"]));
    assert!(o.actions.contains(&Action::RemoveLabel {
        label: "cto-approved".into()
    }));
    assert!(
        comments(&o)[0].starts_with("Lever removed `cto-approved`: the issue was reopened."),
        "{o:#?}"
    );
    // cto-user may approve in the new period: they do not own it any more.
    let o = step(
        &o.state,
        Event::Labeled {
            label: "cto-approved".into(),
            by: approver("cto-user"),
        },
        now(),
        &c,
    );
    assert_eq!(o.log, ["approval-recorded"]);
    assert!(comments(&o)[0].contains("until 2027-02-21"), "{o:#?}");
}

/// Only the approving approver's own date counts, and never beyond `max_exception` from the
/// approval; during the exception only its approver moves it.
#[test]
fn the_expiry_is_the_approvers_own_and_capped() {
    let c = Ctx {
        max_exception: Duration::days(180),
        ..ctx()
    };
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let o = step(
        &s,
        Event::Commented {
            by: approver("ciso"),
            body: "Exception-Expires: 2027-01-31".into(),
        },
        now(),
        &c,
    );
    let o = step(
        &o.state,
        Event::Commented {
            by: approver("cto-user"),
            body: "Exception-Expires: 2030-12-31".into(),
        },
        now(),
        &c,
    );
    let close = |s: &State, who: &str| {
        step(
            s,
            Event::Closed {
                by: person("bob"),
                state_reason: None,
                cto_approved: Some(LabelHistory::Current(LabelAuthor {
                    login: who.into(),
                    approver: true,
                })),
            },
            now(),
            &c,
        )
    };
    // ciso approves: ciso's date.
    let by_ciso = close(&o.state, "ciso");
    assert_eq!(
        by_ciso.state.exception.as_ref().unwrap().expires_at,
        t("2027-01-31T23:59:59Z")
    );
    // cto-user approves: cto-user's date, capped at 180 days, and the comment says so.
    let by_cto = close(&o.state, "cto-user");
    let ex = by_cto.state.exception.clone().unwrap();
    assert_eq!(ex.expires_at, now() + Duration::days(180));
    assert!(
        comments(&by_cto)[0].contains("the longest `exceptions.max_expiry` allows (180 days"),
        "{by_cto:#?}"
    );
    // During the exception, ciso cannot move cto-user's exception; cto-user can, capped.
    let moved = step(
        &by_cto.state,
        Event::Commented {
            by: approver("ciso"),
            body: "Exception-Expires: 2027-02-01".into(),
        },
        now(),
        &c,
    );
    assert_eq!(moved.state.exception, by_cto.state.exception);
    assert!(comments(&moved)[0].contains("Only cto-user, who approved this exception"));
    let moved = step(
        &by_cto.state,
        Event::Commented {
            by: approver("cto-user"),
            body: "Exception-Expires: 2027-02-01".into(),
        },
        now(),
        &c,
    );
    assert_eq!(
        moved.state.exception.as_ref().unwrap().expires_at,
        t("2027-02-01T23:59:59Z")
    );
}

/// An exception covers the resources that were not fixed when it started: a covered resource
/// failing again is suppressed again, one that joins later ends the exception. An exception
/// recorded before Lever recorded coverage covers what the group had when last seen.
#[test]
fn an_exception_covers_what_was_approved() {
    let c = ctx();
    let s = State::opened(Some("bob".into()), failing(), &[]);
    let excepted = step(
        &s,
        Event::Closed {
            by: person("bob"),
            state_reason: None,
            cto_approved: Some(LabelHistory::Current(LabelAuthor {
                login: "cto-user".into(),
                approver: true,
            })),
        },
        now(),
        &c,
    )
    .state;
    assert_eq!(
        excepted.exception.as_ref().unwrap().covers,
        Some(set(&["r1", "r2"]))
    );
    assert!(
        comments(&step(
            &s,
            Event::Closed {
                by: person("bob"),
                state_reason: None,
                cto_approved: Some(LabelHistory::Current(LabelAuthor {
                    login: "cto-user".into(),
                    approver: true
                }))
            },
            now(),
            &c
        ))[0]
            .contains(
                "It covers `r1`, `r2`; a resource that joins this group later is not covered."
            )
    );
    // r2 reset to NEW by Security Hub: suppressed again, only what is covered.
    let reset = step(
        &excepted,
        Event::Findings {
            view: FindingsView {
                unnotified: 1,
                ..failing()
            },
        },
        now(),
        &c,
    );
    assert!(
        matches!(
            &reset.actions[0],
            Action::UpdateFindings { workflow: crate::domain::WorkflowStatus::Suppressed, resources: Some(r), .. } if *r == set(&["r1", "r2"])
        ),
        "{reset:#?}"
    );
    // r3 joins: the exception ends, saying why.
    let joined = FindingsView {
        failing: set(&["r1", "r2", "r3"]),
        unnotified: 1,
        ..FindingsView::default()
    };
    let o = step(
        &excepted,
        Event::Findings {
            view: joined.clone(),
        },
        now(),
        &c,
    );
    assert!(o.state.open && o.state.exception.is_none());
    assert_eq!(o.log, ["resource-not-covered", "exception-ended"]);
    let said = comments(&o)[0];
    assert!(
        said.contains(
            "`r3` failing in this group is not covered by it (it was approved for `r1`, `r2`)"
        ),
        "{said}"
    );
    // A legacy exception (no coverage recorded) covers what the group had when last seen.
    let legacy = State {
        exception: Some(Exception {
            covers: None,
            ..excepted.exception.clone().unwrap()
        }),
        ..excepted.clone()
    };
    let o = step(&legacy, Event::Findings { view: joined }, now(), &c);
    assert_eq!(o.log, ["resource-not-covered", "exception-ended"]);
    let o = step(
        &legacy,
        Event::Findings {
            view: FindingsView {
                unnotified: 2,
                ..failing()
            },
        },
        now(),
        &c,
    );
    assert!(o.state.exception.is_some(), "{o:#?}");
}

/// An ignore tag the account honours (ramp-up), added to a resource of an open issue: the
/// resource is taken off the checklist with a comment naming the tag (inert); when nothing is
/// left to fix, the issue closes. Tags already known say nothing again; a closed or deleted issue
/// is not commented on.
#[test]
fn an_honoured_ignore_tag_takes_the_resource_off_and_closes_when_nothing_is_left() {
    let c = ctx();
    let open = State::opened(Some("bob".into()), failing(), &[]);
    let ignored = |rs: &[&str]| {
        failing().with_ignored(
            rs.iter()
                .map(|r| {
                    (
                        r.to_string(),
                        "lever:ignore=`legacy` @mallory #1".to_string(),
                    )
                })
                .collect(),
        )
    };
    // One of two resources tagged: a comment, the body refreshed, the issue stays open.
    let o = step(
        &open,
        Event::Findings {
            view: ignored(&["r1"]),
        },
        now(),
        &c,
    );
    let said = comments(&o);
    assert_eq!(said.len(), 1, "{o:#?}");
    assert!(
        said[0].contains("`r1`: `lever:ignore='legacy' @mallory #1`"),
        "{}",
        said[0]
    );
    assert!(said[0].contains("taken off"), "{}", said[0]);
    assert!(
        o.actions.iter().any(|a| matches!(a, Action::RefreshBody)),
        "{o:#?}"
    );
    assert!(
        !o.actions.iter().any(|a| matches!(a, Action::Close { .. })),
        "{o:#?}"
    );
    assert!(o.state.open);
    // The same view again: nothing new.
    let again = step(
        &o.state,
        Event::Findings {
            view: ignored(&["r1"]),
        },
        now(),
        &c,
    );
    assert!(comments(&again).is_empty(), "{again:#?}");
    assert!(
        !again
            .actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. }))
    );
    // The last resource tagged too: closed, saying why (not "fixed").
    let last = step(
        &o.state,
        Event::Findings {
            view: ignored(&["r1", "r2"]),
        },
        now(),
        &c,
    );
    assert!(
        last.actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. })),
        "{last:#?}"
    );
    assert!(!last.state.open);
    let said = comments(&last);
    assert!(
        said.iter().any(|c| c.contains("`r2`: `lever:ignore=")),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|c| c.contains("Nothing is left to fix")),
        "{said:#?}"
    );
    assert!(
        !said
            .iter()
            .any(|c| c.contains("reports every resource fixed")),
        "{said:#?}"
    );
    // Both tagged at once on a fresh issue: one comment listing both, then closed.
    let both = step(
        &open,
        Event::Findings {
            view: ignored(&["r1", "r2"]),
        },
        now(),
        &c,
    );
    assert!(
        both.actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. })),
        "{both:#?}"
    );
    // A deleted issue says nothing.
    let mut deleted = open.clone();
    deleted.deleted = true;
    let o = step(
        &deleted,
        Event::Findings {
            view: ignored(&["r1"]),
        },
        now(),
        &c,
    );
    assert!(comments(&o).is_empty(), "{o:#?}");
}
