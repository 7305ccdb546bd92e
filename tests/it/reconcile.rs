//! Changes made on GitHub while Lever was down, whose deliveries GitHub no longer keeps (older
//! than its 3-day window, so `redeliver` cannot bring them back): the periodic `reconcile` job
//! compares the tracked issues with what Lever believes and feeds each difference through the
//! lifecycle as the event it missed, with the same approver checks as a webhook. While nothing
//! changed, it costs one conditional request per repository, answered 304.

use chrono::Duration;
use reqwest::StatusCode;

use crate::support::app::{TestApp, root};
use lever::domain::lifecycle::Closure;
use lever::store::AuditFilter;

const LEDGER: &str = "acme/ledger";
const LEDGER_FINDING: &str = "examples/demo/findings/03-payments-prod-ledger-rds.2.json";

/// The ledger issue, acknowledged by carol, with the periodic jobs scheduled as `lever serve`
/// does at start-up, and run once.
async fn started() -> TestApp {
    let t = TestApp::start().await;
    let (status, _) = t.ingest_file(&root().join(LEDGER_FINDING)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "acknowledged",
        "carol",
    )])
    .await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    t.settle().await;
    t
}

/// Lever was down for four days: GitHub no longer lists the deliveries it missed. Then the
/// periodic jobs run as they come due.
async fn back_after_four_days(t: &TestApp) {
    t.clock.advance(Duration::days(4));
    t.settle().await;
}

async fn group(t: &TestApp) -> lever::store::GroupRecord {
    t.app.store.list_groups(None).await.unwrap().pop().unwrap()
}

async fn events_seen(t: &TestApp) -> Vec<String> {
    t.app
        .store
        .audit(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.source.as_deref().is_some_and(|s| s.starts_with("job:")))
        .filter_map(|a| a.detail["event"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_label_removed_and_an_issue_closed_while_lever_was_down_are_seen() {
    let t = started().await;
    assert!(group(&t).await.state().labels.contains("acknowledged"));

    // Never delivered (Lever was down; the delivery is gone from GitHub's list).
    let _missed = t.gh.human_remove_label(LEDGER, 1, "acknowledged", "carol");
    back_after_four_days(&t).await;
    let g = group(&t).await;
    assert!(
        !g.state().labels.contains("acknowledged"),
        "{:?}",
        g.state().labels
    );
    assert!(
        events_seen(&t)
            .await
            .contains(&"issues.unlabeled".to_string())
    );

    let _missed = t.gh.human_close(LEDGER, 1, "completed", "carol");
    back_after_four_days(&t).await;
    let g = group(&t).await;
    assert!(!g.state().open, "Lever knows the issue was closed");
    assert!(events_seen(&t).await.contains(&"issues.closed".to_string()));
    // Security Hub still reports the problem: the close waits for verification, as after a
    // webhook, by carol.
    assert_eq!(g.state().closure, Some(Closure::Unverified));
    assert_eq!(
        g.state().verification.map(|v| v.closed_by),
        Some("carol".to_string())
    );
    t.gh.assert_conformant();
}

#[tokio::test]
async fn unchanged_issues_cost_only_304s() {
    let t = started().await;
    // A run that found nothing new, then a run with nothing changed meanwhile.
    t.clock.advance(Duration::hours(7));
    t.settle().await;
    let mark = t.gh.requests().len();
    t.clock.advance(Duration::hours(7));
    t.settle().await;
    let asked: Vec<_> = t.gh.requests()[mark..]
        .iter()
        .filter(|r| r.path.starts_with("/repos/") && r.path.contains("/issues"))
        .cloned()
        .collect();
    assert!(!asked.is_empty(), "the reconcile ran");
    assert!(
        asked
            .iter()
            .all(|r| r.status == 304 && r.path == "/repos/acme/ledger/issues"),
        "{:#?}",
        asked
            .iter()
            .map(|r| format!("{} {}?{} → {}", r.method, r.path, r.query, r.status))
            .collect::<Vec<_>>()
    );
    assert!(
        asked.iter().all(|r| r.query.contains("since=")),
        "{asked:#?}"
    );
    t.gh.assert_conformant();
}

#[tokio::test]
async fn an_approval_applied_while_lever_was_down_counts_only_from_an_approver() {
    let t = started().await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "exception-requested",
        "carol",
    )])
    .await;

    // mallory is no approver: not honoured, whether Lever saw it live or later.
    let _missed = t.gh.human_add_label(LEDGER, 1, "cto-approved", "mallory");
    back_after_four_days(&t).await;
    let said = t.comments_by_bot(LEDGER, 1);
    assert!(
        said.last().unwrap().contains("not an approver"),
        "{said:#?}"
    );
    assert!(group(&t).await.state().approved_by.is_none());
    assert!(!t.labels(LEDGER, 1).contains(&"cto-approved".to_string()));

    // cto-user approves and carol closes, both while Lever is down: the exception starts.
    let _missed = t.gh.human_add_label(LEDGER, 1, "cto-approved", "cto-user");
    let _missed = t.gh.human_close(LEDGER, 1, "not_planned", "carol");
    back_after_four_days(&t).await;
    let state = group(&t).await.state();
    assert_eq!(
        state.exception.as_ref().map(|e| e.approver.as_str()),
        Some("cto-user"),
        "{state:#?}"
    );
    assert_eq!(t.workflow(), ["SUPPRESSED"]);
    t.gh.assert_conformant();
}

/// Found by the crash test on PostgreSQL: a reconcile run that came due while a webhook was
/// accepted but not applied yet saw the webhook's change on GitHub and applied it too, so a
/// non-approver's `cto-approved` was refused twice (two comments). Reconcile now waits until
/// accepted webhooks are applied.
#[tokio::test]
async fn a_reconcile_run_does_not_apply_a_change_whose_webhook_is_still_queued() {
    let t = started().await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "exception-requested",
        "carol",
    )])
    .await;
    let refusals = |t: &TestApp| {
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .filter(|c| c.contains("not an approver"))
            .count()
    };
    assert_eq!(refusals(&t), 0);

    // The reconcile run comes due; a moment later mallory's label arrives and is accepted, so
    // its job is queued behind the reconcile run (jobs run in due order).
    t.clock.advance(Duration::hours(6) + Duration::seconds(1));
    let d = t.gh.human_add_label(LEDGER, 1, "cto-approved", "mallory");
    let (status, body) = t.post_webhook(&d).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    t.clock.advance(Duration::minutes(2));
    t.settle().await;

    assert_eq!(refusals(&t), 1, "{:#?}", t.comments_by_bot(LEDGER, 1));
    assert!(!t.labels(LEDGER, 1).contains(&"cto-approved".to_string()));
    assert!(group(&t).await.state().approved_by.is_none());
    t.gh.assert_conformant();
}
