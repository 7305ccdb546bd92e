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
        verify_after: Duration::minutes(15),
        verify_grace: Duration::hours(24),
        on_call: Some("alice".into()),
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
    let open = State::opened(
        Some("bob".into()),
        failing(),
        &["security-finding".into(), "severity:high".into()],
    );
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
    vec![
        ("open", open),
        ("open+approved", approved),
        ("closed-fixed", fixed),
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
                cto_approved_by: None,
            },
        ),
        (
            "close with cto by approver",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved_by: Some(LabelAuthor {
                    login: "cto-user".into(),
                    approver: true,
                }),
            },
        ),
        (
            "close with cto by non-approver",
            Event::Closed {
                by: person("bob"),
                state_reason: Some("completed".into()),
                cto_approved_by: Some(LabelAuthor {
                    login: "mallory".into(),
                    approver: false,
                }),
            },
        ),
        (
            "close by lever",
            Event::Closed {
                by: Actor::Lever,
                state_reason: Some("completed".into()),
                cto_approved_by: None,
            },
        ),
        ("reopen by person", Event::Reopened { by: person("bob") }),
        ("reopen by lever", Event::Reopened { by: Actor::Lever }),
        (
            "assign",
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
            "expiry comment by non-approver",
            Event::Commented {
                by: person("bob"),
                body: "Exception-Expires: 2030-01-01".into(),
            },
        ),
        (
            "plain comment",
            Event::Commented {
                by: person("bob"),
                body: "working on it".into(),
            },
        ),
        (
            "findings all resolved",
            Event::Findings {
                view: FindingsView {
                    failing: set(&[]),
                    fixed: set(&["r1", "r2"]),
                    unnotified: 0,
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
                },
            },
        ),
        ("findings gone", Event::FindingsGone),
        ("exception timer due", Event::ExceptionTimer),
        ("verify: failing", Event::VerifyTimer { failing: true }),
        ("verify: passing", Event::VerifyTimer { failing: false }),
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
        ("open", "label cto-approved by approver", "open+approved | comment | approval-recorded"),
        ("open", "label cto-approved by non-approver", "open | -cto-approved,comment | approval-rejected"),
        ("open", "label cto-approved by the assignee-approver", "open | -cto-approved,comment | approval-rejected"),
        ("open", "label cto-approved by lever", "open |  | "),
        ("open", "label acknowledged by person", "open |  | "),
        ("open", "label exception-requested by person", "open | comment | exception-requested"),
        ("open", "label unrelated", "open |  | "),
        ("open", "unlabel cto-approved by person", "open |  | "),
        ("open", "unlabel cto-approved by lever", "open |  | "),
        ("open", "close by person", "closed/unverified | timer:verify | closed-unverified"),
        ("open", "close with cto by approver", "closed/exception+exception | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
        ("open", "close with cto by non-approver", "closed/unverified | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
        ("open", "close by lever", "closed |  | "),
        ("open", "reopen by person", "open |  | "),
        ("open", "reopen by lever", "open |  | "),
        ("open", "assign", "open |  | "),
        ("open", "unassign", "open |  | "),
        ("open", "delete", "deleted | recreate | issue-deleted-recreate"),
        ("open", "transfer", "open | moved | issue-transferred"),
        ("open", "expiry comment by approver", "open |  | exception-expiry-set"),
        ("open", "expiry comment by non-approver", "open | comment | "),
        ("open", "plain comment", "open |  | "),
        ("open", "findings all resolved", "closed/fixed | body,close:completed,comment | closed-fixed"),
        ("open", "findings one fixed", "open | body | resources-fixed"),
        ("open", "findings new resource", "open | body,comment,sh:NOTIFIED | resources-added"),
        ("open", "findings unchanged, reset to NEW", "open | sh:NOTIFIED | "),
        ("open", "findings gone", "closed/fixed | close:completed,comment | closed-findings-gone"),
        ("open", "exception timer due", "open |  | "),
        ("open", "verify: failing", "open |  | "),
        ("open", "verify: passing", "open |  | "),
        ("open+approved", "label cto-approved by approver", "open+approved | comment | approval-recorded"),
        ("open+approved", "label cto-approved by non-approver", "open+approved | -cto-approved,comment | approval-rejected"),
        ("open+approved", "label cto-approved by the assignee-approver", "open+approved | -cto-approved,comment | approval-rejected"),
        ("open+approved", "label cto-approved by lever", "open+approved |  | "),
        ("open+approved", "label acknowledged by person", "open+approved |  | "),
        ("open+approved", "label exception-requested by person", "open+approved | comment | exception-requested"),
        ("open+approved", "label unrelated", "open+approved |  | "),
        ("open+approved", "unlabel cto-approved by person", "open |  | "),
        ("open+approved", "unlabel cto-approved by lever", "open+approved |  | "),
        ("open+approved", "close by person", "closed/unverified | timer:verify | closed-unverified"),
        ("open+approved", "close with cto by approver", "closed/exception+exception | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
        ("open+approved", "close with cto by non-approver", "closed/unverified | -cto-approved,comment,timer:verify | approval-rejected,closed-unverified"),
        ("open+approved", "close by lever", "closed |  | "),
        ("open+approved", "reopen by person", "open+approved |  | "),
        ("open+approved", "reopen by lever", "open+approved |  | "),
        ("open+approved", "assign", "open+approved |  | "),
        ("open+approved", "unassign", "open+approved |  | "),
        ("open+approved", "delete", "deleted+approved | recreate | issue-deleted-recreate"),
        ("open+approved", "transfer", "open+approved | moved | issue-transferred"),
        ("open+approved", "expiry comment by approver", "open+approved |  | exception-expiry-set"),
        ("open+approved", "expiry comment by non-approver", "open+approved | comment | "),
        ("open+approved", "plain comment", "open+approved |  | "),
        ("open+approved", "findings all resolved", "closed/fixed | body,close:completed,comment | closed-fixed"),
        ("open+approved", "findings one fixed", "open+approved | body | resources-fixed"),
        ("open+approved", "findings new resource", "open+approved | body,comment,sh:NOTIFIED | resources-added"),
        ("open+approved", "findings unchanged, reset to NEW", "open+approved | sh:NOTIFIED | "),
        ("open+approved", "findings gone", "closed/fixed | close:completed,comment | closed-findings-gone"),
        ("open+approved", "exception timer due", "open+approved |  | "),
        ("open+approved", "verify: failing", "open+approved |  | "),
        ("open+approved", "verify: passing", "open+approved |  | "),
        ("closed-fixed", "label cto-approved by approver", "closed/fixed |  | "),
        ("closed-fixed", "label cto-approved by non-approver", "closed/fixed | -cto-approved,comment | approval-rejected"),
        ("closed-fixed", "label cto-approved by the assignee-approver", "closed/fixed | -cto-approved,comment | approval-rejected"),
        ("closed-fixed", "label cto-approved by lever", "closed/fixed |  | "),
        ("closed-fixed", "label acknowledged by person", "closed/fixed |  | "),
        ("closed-fixed", "label exception-requested by person", "closed/fixed |  | "),
        ("closed-fixed", "label unrelated", "closed/fixed |  | "),
        ("closed-fixed", "unlabel cto-approved by person", "closed/fixed |  | "),
        ("closed-fixed", "unlabel cto-approved by lever", "closed/fixed |  | "),
        ("closed-fixed", "close by person", "closed/fixed |  | "),
        ("closed-fixed", "close with cto by approver", "closed/fixed |  | "),
        ("closed-fixed", "close with cto by non-approver", "closed/fixed |  | "),
        ("closed-fixed", "close by lever", "closed/fixed |  | "),
        ("closed-fixed", "reopen by person", "open |  | reopened"),
        ("closed-fixed", "reopen by lever", "open/fixed |  | "),
        ("closed-fixed", "assign", "closed/fixed |  | "),
        ("closed-fixed", "unassign", "closed/fixed |  | "),
        ("closed-fixed", "delete", "deleted/fixed |  | issue-deleted"),
        ("closed-fixed", "transfer", "closed/fixed | moved | issue-transferred"),
        ("closed-fixed", "expiry comment by approver", "closed/fixed |  | exception-expiry-set"),
        ("closed-fixed", "expiry comment by non-approver", "closed/fixed | comment | "),
        ("closed-fixed", "plain comment", "closed/fixed |  | "),
        ("closed-fixed", "findings all resolved", "closed/fixed |  | "),
        ("closed-fixed", "findings one fixed", "open | reopen,body,sh:NOTIFIED,assign:alice,comment | regression-reopened"),
        ("closed-fixed", "findings new resource", "open | reopen,body,sh:NOTIFIED,assign:alice,comment | regression-reopened"),
        ("closed-fixed", "findings unchanged, reset to NEW", "open | reopen,body,sh:NOTIFIED,assign:alice,comment | regression-reopened"),
        ("closed-fixed", "findings gone", "closed/fixed |  | "),
        ("closed-fixed", "exception timer due", "closed/fixed |  | "),
        ("closed-fixed", "verify: failing", "closed/fixed |  | "),
        ("closed-fixed", "verify: passing", "closed/fixed |  | "),
        ("closed-exception", "label cto-approved by approver", "closed/exception+exception |  | "),
        ("closed-exception", "label cto-approved by non-approver", "closed/exception+exception |  | "),
        ("closed-exception", "label cto-approved by the assignee-approver", "closed/exception+exception |  | "),
        ("closed-exception", "label cto-approved by lever", "closed/exception+exception |  | "),
        ("closed-exception", "label acknowledged by person", "closed/exception+exception |  | "),
        ("closed-exception", "label exception-requested by person", "closed/exception+exception |  | "),
        ("closed-exception", "label unrelated", "closed/exception+exception |  | "),
        ("closed-exception", "unlabel cto-approved by person", "open | reopen,sh:NOTIFIED,assign:alice,comment | exception-ended"),
        ("closed-exception", "unlabel cto-approved by lever", "closed/exception+exception |  | "),
        ("closed-exception", "close by person", "closed/exception+exception |  | "),
        ("closed-exception", "close with cto by approver", "closed/exception+exception |  | "),
        ("closed-exception", "close with cto by non-approver", "closed/exception+exception |  | "),
        ("closed-exception", "close by lever", "closed/exception+exception |  | "),
        ("closed-exception", "reopen by person", "open | -cto-approved,sh:NOTIFIED,assign:alice,comment | exception-ended"),
        ("closed-exception", "reopen by lever", "open/exception+exception |  | "),
        ("closed-exception", "assign", "closed/exception+exception |  | "),
        ("closed-exception", "unassign", "closed/exception+exception |  | "),
        ("closed-exception", "delete", "deleted/exception | sh:NOTIFIED,recreate | issue-deleted-recreate"),
        ("closed-exception", "transfer", "closed/exception+exception | moved | issue-transferred"),
        ("closed-exception", "expiry comment by approver", "closed/exception+exception | sh:SUPPRESSED,timer:exception-expiry,comment | exception-expiry-set"),
        ("closed-exception", "expiry comment by non-approver", "closed/exception+exception | comment | "),
        ("closed-exception", "plain comment", "closed/exception+exception |  | "),
        ("closed-exception", "findings all resolved", "closed/fixed | body,comment | fixed-under-exception"),
        ("closed-exception", "findings one fixed", "closed/exception+exception | body | "),
        ("closed-exception", "findings new resource", "closed/exception+exception | sh:SUPPRESSED,body | "),
        ("closed-exception", "findings unchanged, reset to NEW", "closed/exception+exception | sh:SUPPRESSED | "),
        ("closed-exception", "findings gone", "closed/fixed |  | "),
        ("closed-exception", "exception timer due", "closed/exception+exception | timer:exception-expiry | "),
        ("closed-exception", "verify: failing", "closed/exception+exception |  | "),
        ("closed-exception", "verify: passing", "closed/exception+exception |  | "),
        ("closed-unverified", "label cto-approved by approver", "closed/exception+exception | sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
        ("closed-unverified", "label cto-approved by non-approver", "closed/unverified | -cto-approved,comment | approval-rejected"),
        ("closed-unverified", "label cto-approved by the assignee-approver", "closed/unverified | -cto-approved,comment | approval-rejected"),
        ("closed-unverified", "label cto-approved by lever", "closed/unverified |  | "),
        ("closed-unverified", "label acknowledged by person", "closed/unverified |  | "),
        ("closed-unverified", "label exception-requested by person", "closed/unverified |  | "),
        ("closed-unverified", "label unrelated", "closed/unverified |  | "),
        ("closed-unverified", "unlabel cto-approved by person", "closed/unverified |  | "),
        ("closed-unverified", "unlabel cto-approved by lever", "closed/unverified |  | "),
        ("closed-unverified", "close by person", "closed/unverified |  | "),
        ("closed-unverified", "close with cto by approver", "closed/unverified |  | "),
        ("closed-unverified", "close with cto by non-approver", "closed/unverified |  | "),
        ("closed-unverified", "close by lever", "closed/unverified |  | "),
        ("closed-unverified", "reopen by person", "open |  | reopened"),
        ("closed-unverified", "reopen by lever", "open/unverified |  | "),
        ("closed-unverified", "assign", "closed/unverified |  | "),
        ("closed-unverified", "unassign", "closed/unverified |  | "),
        ("closed-unverified", "delete", "deleted/unverified | recreate | issue-deleted-recreate"),
        ("closed-unverified", "transfer", "closed/unverified | moved | issue-transferred"),
        ("closed-unverified", "expiry comment by approver", "closed/unverified |  | exception-expiry-set"),
        ("closed-unverified", "expiry comment by non-approver", "closed/unverified | comment | "),
        ("closed-unverified", "plain comment", "closed/unverified |  | "),
        ("closed-unverified", "findings all resolved", "closed/fixed | body | fix-verified"),
        ("closed-unverified", "findings one fixed", "closed/unverified | body | "),
        ("closed-unverified", "findings new resource", "closed/unverified | body | "),
        ("closed-unverified", "findings unchanged, reset to NEW", "closed/unverified |  | "),
        ("closed-unverified", "findings gone", "closed/fixed |  | "),
        ("closed-unverified", "exception timer due", "closed/unverified |  | "),
        ("closed-unverified", "verify: failing", "closed/unverified | +needs-verification,timer:verify,comment | verification-failed"),
        ("closed-unverified", "verify: passing", "closed/fixed |  | fix-verified"),
        ("closed-awaiting-grace", "label cto-approved by approver", "closed/exception+exception | -needs-verification,sh:SUPPRESSED,timer:exception-expiry,comment | exception-approved"),
        ("closed-awaiting-grace", "label cto-approved by non-approver", "closed/unverified | -cto-approved,comment | approval-rejected"),
        ("closed-awaiting-grace", "label cto-approved by the assignee-approver", "closed/unverified | -cto-approved,comment | approval-rejected"),
        ("closed-awaiting-grace", "label cto-approved by lever", "closed/unverified |  | "),
        ("closed-awaiting-grace", "label acknowledged by person", "closed/unverified |  | "),
        ("closed-awaiting-grace", "label exception-requested by person", "closed/unverified |  | "),
        ("closed-awaiting-grace", "label unrelated", "closed/unverified |  | "),
        ("closed-awaiting-grace", "unlabel cto-approved by person", "closed/unverified |  | "),
        ("closed-awaiting-grace", "unlabel cto-approved by lever", "closed/unverified |  | "),
        ("closed-awaiting-grace", "close by person", "closed/unverified |  | "),
        ("closed-awaiting-grace", "close with cto by approver", "closed/unverified |  | "),
        ("closed-awaiting-grace", "close with cto by non-approver", "closed/unverified |  | "),
        ("closed-awaiting-grace", "close by lever", "closed/unverified |  | "),
        ("closed-awaiting-grace", "reopen by person", "open | -needs-verification | reopened"),
        ("closed-awaiting-grace", "reopen by lever", "open/unverified |  | "),
        ("closed-awaiting-grace", "assign", "closed/unverified |  | "),
        ("closed-awaiting-grace", "unassign", "closed/unverified |  | "),
        ("closed-awaiting-grace", "delete", "deleted/unverified | recreate | issue-deleted-recreate"),
        ("closed-awaiting-grace", "transfer", "closed/unverified | moved | issue-transferred"),
        ("closed-awaiting-grace", "expiry comment by approver", "closed/unverified |  | exception-expiry-set"),
        ("closed-awaiting-grace", "expiry comment by non-approver", "closed/unverified | comment | "),
        ("closed-awaiting-grace", "plain comment", "closed/unverified |  | "),
        ("closed-awaiting-grace", "findings all resolved", "closed/fixed | -needs-verification,body | fix-verified"),
        ("closed-awaiting-grace", "findings one fixed", "closed/unverified | body | "),
        ("closed-awaiting-grace", "findings new resource", "closed/unverified | body | "),
        ("closed-awaiting-grace", "findings unchanged, reset to NEW", "closed/unverified |  | "),
        ("closed-awaiting-grace", "findings gone", "closed/fixed |  | "),
        ("closed-awaiting-grace", "exception timer due", "closed/unverified |  | "),
        ("closed-awaiting-grace", "verify: failing", "open | reopen,-needs-verification,assign:alice,comment | verification-reopened"),
        ("closed-awaiting-grace", "verify: passing", "closed/fixed | -needs-verification | fix-verified"),
        ("deleted", "label cto-approved by approver", "deleted |  | "),
        ("deleted", "label cto-approved by non-approver", "deleted |  | "),
        ("deleted", "label cto-approved by the assignee-approver", "deleted |  | "),
        ("deleted", "label cto-approved by lever", "deleted |  | "),
        ("deleted", "label acknowledged by person", "deleted |  | "),
        ("deleted", "label exception-requested by person", "deleted |  | "),
        ("deleted", "label unrelated", "deleted |  | "),
        ("deleted", "unlabel cto-approved by person", "deleted |  | "),
        ("deleted", "unlabel cto-approved by lever", "deleted |  | "),
        ("deleted", "close by person", "deleted |  | "),
        ("deleted", "close with cto by approver", "deleted |  | "),
        ("deleted", "close with cto by non-approver", "deleted |  | "),
        ("deleted", "close by lever", "deleted |  | "),
        ("deleted", "reopen by person", "deleted |  | "),
        ("deleted", "reopen by lever", "deleted |  | "),
        ("deleted", "assign", "deleted |  | "),
        ("deleted", "unassign", "deleted |  | "),
        ("deleted", "delete", "deleted |  | "),
        ("deleted", "transfer", "deleted |  | "),
        ("deleted", "expiry comment by approver", "deleted |  | "),
        ("deleted", "expiry comment by non-approver", "deleted |  | "),
        ("deleted", "plain comment", "deleted |  | "),
        ("deleted", "findings all resolved", "deleted |  | "),
        ("deleted", "findings one fixed", "deleted |  | "),
        ("deleted", "findings new resource", "deleted |  | "),
        ("deleted", "findings unchanged, reset to NEW", "deleted |  | "),
        ("deleted", "findings gone", "deleted |  | "),
        ("deleted", "exception timer due", "deleted |  | "),
        ("deleted", "verify: failing", "deleted |  | "),
        ("deleted", "verify: passing", "deleted |  | "),
];

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
            cto_approved_by: Some(LabelAuthor {
                login: "cto-user".into(),
                approver: true,
            }),
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
            expires_at: expires
        })
    );
    let Action::UpdateFindings { workflow, note } = &o.actions[0] else {
        panic!("{o:#?}")
    };
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
        matches!(&o.actions[2], Action::UpdateFindings { workflow: crate::domain::WorkflowStatus::Notified, note } if note.contains("Exception ended (it expired on 2027-02-21)")),
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
        o.state.requested_expiry,
        Some(NaiveDate::from_ymd_opt(2027, 3, 31).unwrap())
    );
    let o = step(
        &o.state,
        Event::Closed {
            by: person("bob"),
            state_reason: None,
            cto_approved_by: Some(LabelAuthor {
                login: "cto-user".into(),
                approver: true,
            }),
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
        cto_approved_by: Some(LabelAuthor {
            login: "cto-user".into(),
            approver: true,
        }),
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
        ("> Exception-Expires: 2027-03-31", Some(Ok("2027-03-31"))),
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
            cto_approved_by: None,
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
            cto_approved_by: None,
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
