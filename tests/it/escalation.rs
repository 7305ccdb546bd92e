//! On-call ownership with an injected clock: acknowledgement deadlines, escalation to a backup
//! and to the security team, handoffs, fix deadlines, the digest; restarts and replicas.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::app::{TestApp, app_on, demo_config_with, root};

const LEDGER: &str = "acme/ledger";

/// CRITICAL must be acknowledged within 4 h; the platform rotation backs the owners up; the
/// security rotation (the fallback assignees) comes last.
const ESCALATION: &str = r#"
[escalation]
backup = ["@rotation:platform"]
[escalation.acknowledge]
critical = "4h"
"#;

async fn open_ledger(config: &std::path::Path) -> TestApp {
    let t = TestApp::builder().config(config).start().await;
    // The platform engineers back the ledger team up, so they can be assigned there.
    t.gh.add_collaborator(LEDGER, "dave", "write");
    t.gh.add_collaborator(LEDGER, "erin", "write");
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(t.assignees(LEDGER, 1), ["carol"]);
    t
}

#[tokio::test]
async fn unacknowledged_goes_to_the_backup_then_to_the_security_rotation() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    t.clock.advance(Duration::hours(4) - Duration::seconds(1));
    t.drain().await;
    assert_eq!(t.assignees(LEDGER, 1), ["carol"], "not before the deadline");

    t.clock.advance(Duration::seconds(1));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(
        t.assignees(LEDGER, 1),
        ["erin"],
        "the platform rotation's engineer on call (one owner)"
    );
    let said = t.comments_by_bot(LEDGER, 1);
    let last = said.last().unwrap();
    assert!(
        last.contains("@carol did not acknowledge this issue within 4h")
            && last.contains("@erin (the backup) owns it now"),
        "{last}"
    );

    t.clock.advance(Duration::hours(4));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(t.assignees(LEDGER, 1), ["sam"]);
    let last = t.comments_by_bot(LEDGER, 1).last().unwrap().clone();
    assert!(
        last.contains("@erin did not acknowledge")
            && last.contains("@sam (the security team's engineer on call)"),
        "{last}"
    );

    // The last level has no deadline: nothing more happens.
    let writes = t.github_writes();
    t.clock.advance(Duration::days(1));
    t.drain().await;
    assert_eq!(t.github_writes(), writes);
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    let steps: Vec<&str> = audit
        .iter()
        .map(|a| a.action.as_str())
        .filter(|a| a.starts_with("escalated"))
        .collect();
    assert_eq!(steps, ["escalated-to-backup", "escalated-to-security"]);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn acknowledged_in_time_nothing_happens() {
    let dir = demo_config_with(ESCALATION);
    for how in ["label", "comment", "self-assign"] {
        let t = open_ledger(dir.path()).await;
        t.clock.advance(Duration::hours(1));
        let d = match how {
            "label" => t.gh.human_add_label(LEDGER, 1, "acknowledged", "carol"),
            "comment" => t.gh.human_comment(LEDGER, 1, "Looking at it.", "carol"),
            _ => {
                t.gh.add_collaborator(LEDGER, "dave", "write");
                t.gh.human_assign(LEDGER, 1, "dave", "dave")
            }
        };
        t.deliver(vec![d]).await;
        let writes = t.github_writes();
        t.clock.advance(Duration::hours(12));
        t.drain().await;
        assert_eq!(
            t.github_writes(),
            writes,
            "{how}: acknowledged, so no escalation"
        );
        let state = t.app.store.list_groups(None).await.unwrap()[0].state();
        assert!(state.acknowledged.is_some(), "{how}");
    }
}

#[tokio::test]
async fn lever_s_own_events_never_acknowledge() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    // Lever's own webhooks (the opened issue, its labels and assignee) were delivered above.
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert!(state.acknowledged.is_none());
    // Someone other than the owner commenting is not an acknowledgement either.
    t.deliver(vec![t.gh.human_comment(
        LEDGER,
        1,
        "+1, we saw this too",
        "mallory",
    )])
    .await;
    t.clock.advance(Duration::hours(4));
    t.drain().await;
    assert_eq!(t.assignees(LEDGER, 1), ["erin"]);
}

#[tokio::test]
async fn a_restart_in_between_changes_nothing() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    // "Restart": a new process with its own pool, caches and worker on the same database.
    let store = t.replica_store().await;
    let restarted = app_on(
        dir.path(),
        store,
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
    )
    .await;
    lever::worker::schedule_periodic(&restarted).await.unwrap();
    let worker = lever::worker::Worker::new(restarted, "after-restart");
    t.clock.advance(Duration::hours(4));
    worker.run_until_idle().await.unwrap();
    worker.run_until_idle().await.unwrap();
    assert_eq!(t.assignees(LEDGER, 1), ["erin"]);
    assert_eq!(
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .filter(|c| c.contains("did not acknowledge"))
            .count(),
        1
    );
    // The old worker, still around, finds nothing left to do.
    assert!(t.drain().await.iter().all(|r| r.kind != "timer-escalation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_fire_each_step_once() {
    let Some(url) =
        crate::support::pg::or_skip("two_replicas_on_postgres_fire_each_step_once").await
    else {
        return;
    };
    let dir = demo_config_with(ESCALATION);
    let t = TestApp::builder()
        .config(dir.path())
        .postgres(url)
        .start()
        .await;
    t.gh.add_collaborator(LEDGER, "erin", "write");
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.drain().await;
    let second = app_on(
        dir.path(),
        t.replica_store().await,
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
    )
    .await;
    let w2 = lever::worker::Worker::new(second, "replica-2");
    for _ in 0..2 {
        t.clock.advance(Duration::hours(4));
        let (a, b) = tokio::join!(t.worker.run_until_idle(), w2.run_until_idle());
        a.unwrap();
        b.unwrap();
        // Anything left (a job one replica retried after a conflict) is finished by either.
        t.drain().await;
    }
    let escalations = t
        .comments_by_bot(LEDGER, 1)
        .iter()
        .filter(|c| c.contains("did not acknowledge"))
        .count();
    assert_eq!(escalations, 2, "each step fired once");
    let assigns =
        t.gh.requests()
            .iter()
            .filter(|r| {
                r.method == "PATCH"
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b.get("assignees").is_some())
            })
            .count();
    assert_eq!(assigns, 2);
    assert_eq!(t.assignees(LEDGER, 1), ["sam"]);
}

#[tokio::test]
async fn a_backup_github_refuses_hands_over_to_the_next_person_and_says_so() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    t.gh.remove_collaborator(LEDGER, "erin");
    t.clock.advance(Duration::hours(4));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(
        t.assignees(LEDGER, 1),
        ["sam"],
        "never left without an owner"
    );
    let said = t.comments_by_bot(LEDGER, 1);
    assert!(
        said.iter()
            .any(|c| c.contains("GitHub would not assign erin")
                && c.contains("@sam, the next person")),
        "{said:#?}"
    );
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert_eq!(
        state.assignee.as_deref(),
        Some("sam"),
        "Lever's own assignment webhook keeps the state true"
    );
}

/// PATCHes that tried to assign `user`.
fn assign_attempts(t: &TestApp, user: &str) -> usize {
    t.gh.requests()
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.body
                    .as_ref()
                    .and_then(|b| b.get("assignees"))
                    .is_some_and(|a| a == &serde_json::json!([user]))
        })
        .count()
}

#[tokio::test]
async fn when_github_refuses_everyone_left_nobody_is_assigned_and_it_is_said_once() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    t.gh.remove_collaborator(LEDGER, "erin");
    t.gh.remove_collaborator(LEDGER, "sam");
    t.clock.advance(Duration::hours(4));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    // The walk: erin (the backup), then sam (security), each tried once, nobody after them.
    assert_eq!(
        (assign_attempts(&t, "erin"), assign_attempts(&t, "sam")),
        (1, 1)
    );
    assert_eq!(
        t.assignees(LEDGER, 1),
        ["carol"],
        "GitHub assigned nobody new"
    );
    let said = t.comments_by_bot(LEDGER, 1);
    let last3: Vec<&str> = said
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    // In order: the escalation as decided, then what GitHub's refusals changed.
    assert!(
        last3[0].contains("@carol did not acknowledge")
            && last3[0].contains("@erin (the backup) owns it now"),
        "{said:#?}"
    );
    assert!(
        last3[1].starts_with("GitHub would not assign erin, the backup (not a collaborator of this repository), so @sam"),
        "{said:#?}"
    );
    assert!(
        last3[2].starts_with("GitHub would not assign anyone in the escalation chain (erin, sam): nobody is assigned."),
        "{said:#?}"
    );
    assert_eq!(
        said.iter()
            .filter(|c| c.contains("nobody is assigned"))
            .count(),
        1,
        "said once"
    );
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert_eq!(state.assignee, None);
    assert_eq!(state.refused, ["erin", "sam"]);
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|a| a.action.as_str())
        .filter(|a| a.contains("refused") || a.contains("assignable"))
        .collect();
    assert_eq!(
        actions,
        [
            "effect-assign-refused",
            "assignee-refused",
            "effect-assign-refused",
            "nobody-assignable"
        ]
    );
    // Nothing more happens on its own before the next deadline.
    let writes = t.github_writes();
    t.drain().await;
    assert_eq!(t.github_writes(), writes);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn a_failure_after_a_refusal_keeps_the_decision_and_retries_with_backoff() {
    let dir = demo_config_with(ESCALATION);
    let t = open_ledger(dir.path()).await;
    t.gh.remove_collaborator(LEDGER, "erin");
    // The escalation comment, performed right after erin's refused assignment, fails once.
    t.gh.fail_next("POST", "/repos/acme/ledger/issues/1/comments", 502, 1);
    t.clock.advance(Duration::hours(4));
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "apply-effects" && r.result == "retry"),
        "{reports:#?}"
    );
    // The refusal was decided and committed with the failure; its effects wait for the retry,
    // which keeps its backoff (no second job runs them now).
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert_eq!(state.assignee.as_deref(), Some("sam"));
    assert_eq!(assign_attempts(&t, "sam"), 0);
    assert_eq!(t.assignees(LEDGER, 1), ["carol"]);
    t.clock.advance(Duration::minutes(2));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(t.assignees(LEDGER, 1), ["sam"]);
    assert_eq!(
        (assign_attempts(&t, "erin"), assign_attempts(&t, "sam")),
        (1, 1)
    );
    let said = t.comments_by_bot(LEDGER, 1);
    let n = said.len();
    assert!(
        said[n - 2].contains("@erin (the backup) owns it now"),
        "{said:#?}"
    );
    assert!(
        said[n - 1].starts_with("GitHub would not assign erin, the backup"),
        "{said:#?}"
    );
    assert_eq!(
        said.iter()
            .filter(|c| c.contains("GitHub would not assign"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_handoff_github_refuses_goes_to_the_next_person_after_the_handoff_comment() {
    // No acknowledgement deadlines: only the handoff moves the issue.
    let dir = demo_config_with("[escalation.acknowledge]\n");
    let t = TestApp::builder().config(dir.path()).start().await;
    t.ingest_file(
        &root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json"),
    )
    .await;
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(t.assignees("acme/payments", 1), ["bob"]);
    // alice, on call from the next handoff, cannot be assigned in the repository.
    t.gh.remove_collaborator("acme/payments", "alice");
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    t.clock.set(crate::support::app::t("2026-11-30T00:00:00Z"));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(t.assignees("acme/payments", 1), ["sam"]);
    let said = t.comments_by_bot("acme/payments", 1);
    let n = said.len();
    assert!(
        said[n - 2].contains("Handoff: @alice is now on call")
            && said[n - 2].contains("(it was @bob)"),
        "{said:#?}"
    );
    assert!(
        said[n - 1].starts_with(
            "GitHub would not assign alice, the engineer on call (not a collaborator of this repository), so @sam, \
             the next person in the escalation chain, owns this issue."
        ),
        "{said:#?}"
    );
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert_eq!(
        (
            state.assignee.as_deref(),
            state.level,
            state.refused.clone()
        ),
        (Some("sam"), 0, vec!["alice".to_string()])
    );
    assert_eq!(assign_attempts(&t, "alice"), 1);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn handoffs_move_unacknowledged_issues_to_the_new_person_on_call() {
    // No acknowledgement deadlines here: only handoffs move issues.
    let dir = demo_config_with(
        "[escalation.acknowledge]
",
    );
    let t = TestApp::builder().config(dir.path()).start().await;
    // Two payments issues for bob (on call until 2026-11-30); bob acknowledges one.
    t.ingest_file(
        &root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json"),
    )
    .await;
    t.ingest_file(&root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"))
        .await;
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(
        (
            t.assignees("acme/payments", 1),
            t.assignees("acme/payments", 2)
        ),
        (vec!["bob".to_string()], vec!["bob".to_string()])
    );
    t.deliver(vec![t.gh.human_add_label(
        "acme/payments",
        2,
        "acknowledged",
        "bob",
    )])
    .await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    t.clock.set(crate::support::app::t("2026-11-30T00:00:00Z"));
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    assert_eq!(
        t.assignees("acme/payments", 1),
        ["alice"],
        "unacknowledged: follows the handoff"
    );
    assert_eq!(
        t.assignees("acme/payments", 2),
        ["bob"],
        "acknowledged: stays with bob"
    );
    let last = t
        .comments_by_bot("acme/payments", 1)
        .last()
        .unwrap()
        .clone();
    assert!(
        last.contains("Handoff: @alice is now on call") && last.contains("(it was @bob)"),
        "{last}"
    );
    // The next handoff is scheduled.
    let pending = t
        .app
        .store
        .jobs(Some(lever::store::JobState::Pending))
        .await
        .unwrap();
    let next = pending
        .iter()
        .find(|j| j.job == lever::store::Job::Handoffs)
        .expect("next handoff scheduled");
    assert_eq!(next.run_at, crate::support::app::t("2026-12-07T00:00:00Z"));
}

#[tokio::test]
async fn fix_deadlines_show_remind_and_mark_overdue() {
    let dir = demo_config_with("[sla]\nreminder = \"1d\"\n[sla.production]\ncritical = \"3d\"\n");
    let t = open_ledger(dir.path()).await;
    let body = t.gh.issue(LEDGER, 1).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains("Fix by **2026-11-26** (the deadline for CRITICAL findings in production)"),
        "{body}"
    );
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "acknowledged",
        "carol",
    )])
    .await;
    t.clock.advance(Duration::days(2));
    t.drain().await;
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("@carol: this issue is due on **2026-11-26**")
    );
    t.clock.advance(Duration::days(1));
    t.drain().await;
    let labels: Vec<String> = t.gh.issue(LEDGER, 1).unwrap()["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert!(labels.contains(&"overdue".to_string()), "{labels:?}");
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("now overdue")
    );
    assert_eq!(
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .filter(|c| c.contains("due on"))
            .count(),
        2,
        "one reminder, one overdue notice"
    );
}

#[tokio::test]
async fn the_digest_summarises_open_issues_in_the_security_repository() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    t.deliver(vec![t.gh.human_add_label(
        "acme/ledger",
        1,
        "acknowledged",
        "carol",
    )])
    .await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    // The first digest is due next Monday 09:00 UTC.
    t.clock.set(crate::support::app::t("2026-11-30T09:00:00Z"));
    t.drain().await;
    let digest: Vec<Value> =
        t.gh.issues("acme/security")
            .into_iter()
            .filter(|i| i["title"] == "Lever digest: open security issues")
            .collect();
    assert_eq!(digest.len(), 1);
    let body = digest[0]["body"].as_str().unwrap();
    assert!(
        body.contains("**6** open issue(s): 1 acknowledged"),
        "{body}"
    );
    assert!(
        body.contains("| acme/payments | 1 | 2 | 0 | 0 | 0 |"),
        "{body}"
    );
    assert!(
        body.contains("| acme/ledger | 1 | 0 | 0 | 0 | 0 |"),
        "{body}"
    );
    assert!(
        !body.contains("@bob"),
        "the digest names people without pinging them"
    );
    let n = digest[0]["number"].as_u64().unwrap();
    let pinged: Vec<String> =
        t.gh.mentions()
            .into_iter()
            .filter(|m| m.repo == "acme/security" && m.issue == n)
            .map(|m| m.what)
            .collect();
    assert!(pinged.is_empty(), "as GitHub reads it: {pinged:?}");
    // A week later: a comment on the same issue.
    t.clock.set(crate::support::app::t("2026-12-07T09:00:00Z"));
    t.drain().await;
    assert_eq!(t.gh.comments("acme/security", n).len(), 1);
}
