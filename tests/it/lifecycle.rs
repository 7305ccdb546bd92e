//! The issue lifecycle through the real webhook endpoint, with signed payloads from the fake
//! GitHub shaped like the real ones, and the real Security Hub client against the fake:
//! labels, close and reopen drive Security Hub, and findings drive issues.

use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::app::{TestApp, root};

const LEDGER: &str = "acme/ledger";

fn ledger_finding() -> Value {
    serde_json::from_slice(
        &std::fs::read(root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
            .unwrap(),
    )
    .unwrap()
}

async fn opened() -> TestApp {
    let t = TestApp::start().await;
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1);
    t
}

#[tokio::test]
async fn the_exception_story_through_the_webhook_endpoint() {
    let t = opened().await;
    // The label vocabulary exists in the repository.
    let repo_labels = t.gh.repo_labels(LEDGER);
    for l in [
        "acknowledged",
        "in-progress",
        "exception-requested",
        "cto-approved",
        "needs-verification",
    ] {
        assert!(
            repo_labels.iter().any(|x| x == l),
            "{l} missing from {repo_labels:?}"
        );
    }
    assert_eq!(t.workflow(), ["NOTIFIED"]);

    // carol acknowledges, then asks for an exception.
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "acknowledged",
        "carol",
    )])
    .await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "exception-requested",
        "carol",
    )])
    .await;
    let c = t.comments_by_bot(LEDGER, 1);
    assert!(
        c.last().unwrap().contains("@cto-user: please review"),
        "{c:#?}"
    );

    // mallory is not an approver: the label goes, nothing is suppressed.
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "mallory",
    )])
    .await;
    assert!(
        !t.labels(LEDGER, 1).contains(&"cto-approved".to_string()),
        "Lever removed the label"
    );
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("mallory is not an approver")
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);

    // The CTO approves; carol closes the issue.
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "cto-user",
    )])
    .await;
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("Approved by @cto-user")
    );
    assert_eq!(
        t.workflow(),
        ["NOTIFIED"],
        "approval alone suppresses nothing"
    );
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "not_planned", "carol")])
        .await;
    t.settle().await;
    let f = &t.sh.findings()[0];
    assert_eq!(f["Workflow"]["Status"], "SUPPRESSED");
    let note = f["Note"]["Text"].as_str().unwrap();
    let issue_url = t.gh.issue(LEDGER, 1).unwrap()["html_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        note,
        format!("Exception approved by cto-user, expires 2027-02-21: {issue_url}")
    );
    assert_eq!(f["Note"]["UpdatedBy"], "lever");
    assert!(
        t.gh.requests()
            .iter()
            .any(|r| r.path.ends_with("/issues/1/events")),
        "the approval was confirmed from the issue's events"
    );

    // 90 days later the exception expires: findings reported again, issue reopened, owner on call.
    t.clock.advance(Duration::days(90) + Duration::minutes(1));
    t.settle().await;
    let issue = t.gh.issue(LEDGER, 1).unwrap();
    assert_eq!(issue["state"], "open");
    assert_eq!(issue["assignees"][0]["login"], "carol");
    assert!(!t.labels(LEDGER, 1).contains(&"cto-approved".to_string()));
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    // (The fix deadline passed during the exception, so an overdue notice follows it.)
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .any(|c| c.contains("expired on 2027-02-21"))
    );
    assert_eq!(t.gh.issues(LEDGER).len(), 1, "still one issue");
    t.gh.assert_conformant();
    t.sh.assert_conformant();

    // `lever audit` shows the story.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["audit", "--issue", "acme/ledger#1", "--format", "json"])
        .env("DATABASE_URL", &t.database_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actions: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|a| !a.starts_with("effect-") && a != "observed" && a != "findings-notified")
        .collect();
    assert_eq!(
        actions,
        [
            "issue-opened",
            "acknowledged",
            "exception-requested",
            "approval-rejected",
            "approval-recorded",
            "exception-approved",
            "exception-ended",
            // The fix deadline (7 days for CRITICAL) passed during the 90-day exception.
            "overdue"
        ],
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["audit", "--issue", "acme/ledger#1"])
        .env("DATABASE_URL", &t.database_url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("mallory") && text.contains("approval-rejected") && text.contains("cto-user"),
        "{text}"
    );
}

#[tokio::test]
async fn an_approver_may_not_approve_their_own_issue() {
    let t = TestApp::start().await;
    t.gh.add_collaborator(LEDGER, "cto-user", "write");
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.settle().await;
    t.deliver(vec![t.gh.human_assign(LEDGER, 1, "cto-user", "cto-user")])
        .await;
    t.deliver(vec![t.gh.human_unassign(LEDGER, 1, "carol", "cto-user")])
        .await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "cto-user",
    )])
    .await;
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("may not approve their own exception")
    );
    assert!(!t.labels(LEDGER, 1).contains(&"cto-approved".to_string()));
}

#[tokio::test]
async fn fixed_then_passed_closes_and_a_regression_reopens_the_same_issue() {
    let t = opened().await;
    let mut f = ledger_finding();
    f["Compliance"]["Status"] = "PASSED".into();
    f["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    f["Workflow"]["Status"] = "RESOLVED".into();
    t.sh.seed(f.clone());
    let (status, _) = t.post_event(&f).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
    let issue = t.gh.issue(LEDGER, 1).unwrap();
    assert_eq!(issue["state"], "closed");
    assert_eq!(issue["state_reason"], "completed");
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("every resource fixed")
    );
    assert!(
        issue["body"]
            .as_str()
            .unwrap()
            .contains("- [x] `arn:aws:rds:us-east-1:111111111111:db:ledger-primary`"),
        "the checklist is ticked"
    );

    // Security Hub resets the workflow to NEW when the finding fails again.
    f["Compliance"]["Status"] = "FAILED".into();
    f["UpdatedAt"] = "2026-11-25T09:00:00.000Z".into();
    f["Workflow"]["Status"] = "NEW".into();
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    let issue = t.gh.issue(LEDGER, 1).unwrap();
    assert_eq!(issue["state"], "open");
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("reports the problem again")
    );
    assert_eq!(
        t.gh.issues(LEDGER).len(),
        1,
        "the same issue, never a new one"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn late_events_older_than_what_lever_holds_change_nothing() {
    let t = opened().await;
    let issue_state = |t: &TestApp| t.gh.issue(LEDGER, 1).unwrap()["state"].clone();
    let send = async |t: &TestApp, compliance: &str, updated_at: &str| {
        let mut f = ledger_finding();
        f["Compliance"]["Status"] = compliance.into();
        f["UpdatedAt"] = updated_at.into();
        let (status, body) = t.post_event(&f).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        t.settle().await;
    };
    // Fixed at 13:00: the issue closes.
    send(&t, "PASSED", "2026-11-23T13:00:00.000Z").await;
    assert_eq!(issue_state(&t), "closed");
    let writes = t.github_writes();
    // EventBridge delivers an earlier FAILED evaluation late: it must not reopen the issue.
    send(&t, "FAILED", "2026-11-22T08:00:00.000Z").await;
    assert_eq!(
        issue_state(&t),
        "closed",
        "a late FAILED reopened the issue"
    );
    assert_eq!(
        t.github_writes(),
        writes,
        "no GitHub call for a stale event"
    );
    // A real regression reopens it ...
    send(&t, "FAILED", "2026-11-25T09:00:00.000Z").await;
    assert_eq!(issue_state(&t), "open");
    // ... and the PASSED of 11-24, delivered after it, must not close it.
    let writes = t.github_writes();
    send(&t, "PASSED", "2026-11-24T10:00:00.000Z").await;
    assert_eq!(
        issue_state(&t),
        "open",
        "a late PASSED closed a failing issue"
    );
    assert_eq!(t.github_writes(), writes);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn an_update_signed_as_lever_by_someone_else_is_news() {
    let t = opened().await;
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    // Anyone who may call BatchUpdateFindings resets the workflow to NEW, with a note of their
    // own and `UpdatedBy` set to Lever's value. Security Hub keeps `UpdatedAt` as it was and
    // sends the finding as an Imported event.
    let f = t.sh.findings()[0].clone();
    t.sh.client()
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(f["Id"].as_str().unwrap())
                .product_arn(f["ProductArn"].as_str().unwrap())
                .build(),
        )
        .note(
            NoteUpdate::builder()
                .text("reset by a script")
                .updated_by("lever")
                .build(),
        )
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::New)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(t.workflow(), ["NEW"]);
    assert_eq!(t.forward_securityhub_events().await, 1);
    t.settle().await;
    // News, not Lever's echo: the finding is notified again, linking the issue.
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    let note = t.sh.findings()[0]["Note"]["Text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(note.contains("issues/1"), "{note}");
    t.sh.assert_conformant();
}

/// The ledger finding with its database tagged `lever:ignore=<reason>`, updated at `at`.
fn ignore_tagged_ledger(reason: &str, at: &str) -> Value {
    let mut f = ledger_finding();
    f["Resources"][0]["Tags"]["lever:ignore"] = reason.into();
    f["UpdatedAt"] = at.into();
    f
}

#[tokio::test]
async fn an_ignore_tag_does_not_keep_an_enforced_finding_from_its_issue() {
    // payments-prod is in enforce mode; ignore tags are honoured only in ramp-up (the default).
    let t = TestApp::start().await;
    let f = ignore_tagged_ledger("legacy, will be deleted", "2026-11-20T08:15:00.000Z");
    t.sh.seed(f.clone());
    let (status, body) = t.post_event(&f).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    let issues = t.gh.issues(LEDGER);
    assert_eq!(
        issues.len(),
        1,
        "the tag did not keep the issue from opening"
    );
    let text = issues[0]["body"].as_str().unwrap();
    assert!(
        text.contains("honours only during ramp-up: it does not stop this issue"),
        "{text}"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);
}

#[tokio::test]
async fn a_new_ignore_tag_on_an_enforced_issue_is_reported_and_changes_nothing_else() {
    let t = opened().await;
    let f = ignore_tagged_ledger("legacy", "2026-11-23T14:00:00.000Z");
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    let issue = t.gh.issue(LEDGER, 1).unwrap();
    assert_eq!(issue["state"], "open");
    let comments = t.comments_by_bot(LEDGER, 1);
    let last = comments.last().unwrap();
    assert!(
        last.contains(
            "`arn:aws:rds:us-east-1:111111111111:db:ledger-primary` is tagged `lever:ignore=legacy`"
        ) && last.contains("ask for an exception"),
        "{comments:#?}"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"], "nothing is suppressed");
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action.contains("ignore-tag-reported")),
        "{audit:#?}"
    );
    // The same tag again (a later evaluation): reported once.
    let f = ignore_tagged_ledger("legacy", "2026-11-23T18:00:00.000Z");
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    assert_eq!(t.comments_by_bot(LEDGER, 1).len(), comments.len());
    t.gh.assert_conformant();
}

#[tokio::test]
async fn ignore_tags_always_keeps_the_old_behaviour_by_choice() {
    let dir = crate::support::app::demo_config_with("");
    let toml = std::fs::read_to_string(dir.path().join("lever.toml")).unwrap();
    let toml = toml.replace(
        "name = \"payments-prod\"\n",
        "name = \"payments-prod\"\nignore_tags = \"always\"\n",
    );
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    let t = TestApp::builder().config(dir.path()).start().await;
    let f = ignore_tagged_ledger("legacy", "2026-11-20T08:15:00.000Z");
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    assert!(t.gh.issues(LEDGER).is_empty(), "honoured in every mode");
}

#[tokio::test]
async fn one_resource_of_many_fixed_ticks_its_checklist_item_and_keeps_human_edits() {
    let t = TestApp::start().await;
    let asg = root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json");
    t.ingest_file(&asg).await;
    t.settle().await;
    let (n, repo) = (1, "acme/payments");
    // A person edits the body outside Lever's section.
    let body = t.gh.issue(repo, n).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    let edited = format!("Team note: rolling out a new launch template this week.\n\n{body}");
    t.deliver(vec![t.gh.human_edit(repo, n, None, Some(&edited), "bob")])
        .await;
    // One instance is replaced (its finding passes).
    let doc: Value = serde_json::from_slice(&std::fs::read(&asg).unwrap()).unwrap();
    let mut f = doc["Findings"][1].clone();
    f["Compliance"]["Status"] = "PASSED".into();
    f["UpdatedAt"] = "2026-11-23T15:00:00.000Z".into();
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    let issue = t.gh.issue(repo, n).unwrap();
    let body = issue["body"].as_str().unwrap();
    assert_eq!(issue["state"], "open");
    assert!(
        body.starts_with("Team note: rolling out"),
        "human edits are kept"
    );
    assert!(
        body.contains("- [x] `arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60002`"),
        "{body}"
    );
    assert!(
        body.contains("- [ ] `arn:aws:ec2:us-east-1:111111111111:instance/i-0a1b2c3d4e5f60001`")
    );
}

#[tokio::test]
async fn closed_without_approval_is_verified_and_reopened_after_the_grace_period() {
    let t = opened().await;
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "completed", "carol")])
        .await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "closed");
    // Shortly after the close, Lever asks Security Hub: still failing.
    t.clock.advance(Duration::minutes(16));
    t.settle().await;
    assert!(
        t.sh.requests()
            .iter()
            .any(|r| r.operation.as_deref() == Some("GetFindings")),
        "Lever asked Security Hub"
    );
    assert_eq!(
        t.gh.issue(LEDGER, 1).unwrap()["state"],
        "closed",
        "no reopen loop"
    );
    assert!(
        t.labels(LEDGER, 1)
            .contains(&"needs-verification".to_string())
    );
    let said = t.comments_by_bot(LEDGER, 1);
    assert!(
        said.last().unwrap().contains("still reports this problem"),
        "{said:#?}"
    );
    // After the grace period, still failing: reopened once.
    t.clock.advance(Duration::hours(24));
    t.settle().await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "open");
    assert!(
        !t.labels(LEDGER, 1)
            .contains(&"needs-verification".to_string())
    );
    assert_eq!(
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .filter(|c| c.contains("still reports this problem"))
            .count(),
        1,
        "said once"
    );
}

#[tokio::test]
async fn closed_and_really_fixed_stays_closed() {
    let t = opened().await;
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "completed", "carol")])
        .await;
    // The fix is deployed: Security Hub now says PASSED (no event was pushed).
    let mut f = ledger_finding();
    f["Compliance"]["Status"] = "PASSED".into();
    f["UpdatedAt"] = "2026-11-23T12:10:00.000Z".into();
    t.sh.seed(f);
    t.clock.advance(Duration::minutes(16));
    t.settle().await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "closed");
    assert!(
        !t.labels(LEDGER, 1)
            .contains(&"needs-verification".to_string())
    );
    t.clock.advance(Duration::days(2));
    t.settle().await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "closed");
}

#[tokio::test]
async fn removing_the_approval_or_reopening_ends_the_exception() {
    let t = opened().await;
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "cto-user",
    )])
    .await;
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "not_planned", "carol")])
        .await;
    t.settle().await;
    assert_eq!(t.workflow(), ["SUPPRESSED"]);
    t.deliver(vec![t.gh.human_reopen(LEDGER, 1, "carol")]).await;
    t.settle().await;
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    assert!(!t.labels(LEDGER, 1).contains(&"cto-approved".to_string()));
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("carol reopened the issue")
    );
}

#[tokio::test]
async fn deleted_issues_are_replaced_and_transferred_issues_followed() {
    let t = opened().await;
    t.gh.add_repo(
        "acme/ledger-archive",
        true,
        Some(crate::support::app::INSTALLATION),
    );
    let (new_number, moved) =
        t.gh.human_transfer_issue(LEDGER, 1, "acme/ledger-archive", "carol");
    t.deliver(vec![moved]).await;
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(
        (group.repo.as_str(), group.issue_number),
        ("acme/ledger-archive", Some(new_number))
    );
    // Later events on the moved issue are still Lever's.
    t.deliver(vec![t.gh.human_add_label(
        "acme/ledger-archive",
        new_number,
        "cto-approved",
        "mallory",
    )])
    .await;
    assert!(
        t.comments_by_bot("acme/ledger-archive", new_number)
            .last()
            .unwrap()
            .contains("not an approver")
    );
    // Deleting it does not make the risk go away: a new issue opens.
    t.deliver(vec![t.gh.human_delete_issue(
        "acme/ledger-archive",
        new_number,
        "admin",
    )])
    .await;
    t.settle().await;
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    let repo = group.repo.clone();
    let n = group.issue_number.expect("a new issue");
    let issue = t.gh.issue(&repo, n).unwrap();
    assert!(
        issue["body"]
            .as_str()
            .unwrap()
            .contains("was deleted, but Security Hub still reports it")
    );
}

#[tokio::test]
async fn webhooks_for_issues_lever_does_not_own_are_ignored_cheaply() {
    let t = TestApp::start().await;
    let (n, opened) = t.gh.human_open_issue(LEDGER, "A bug", "not ours", "carol");
    let labeled = t.gh.human_add_label(LEDGER, n, "cto-approved", "mallory");
    let before = t.gh.requests().len();
    t.deliver(vec![opened, labeled]).await;
    assert!(
        t.app.store.jobs(None).await.unwrap().is_empty(),
        "no work for issues Lever does not own"
    );
    assert_eq!(t.gh.requests().len(), before, "no GitHub call");
}

/// `lever sync` against the fake Security Hub opens issues for pre-existing findings; a second
/// run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lever_sync_backfills_then_changes_nothing() {
    let t = TestApp::start().await;
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(root().join("examples/demo/findings"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    for f in &files {
        t.sh.seed_file(f);
    }
    let (db, gh_url, sh_url) = (t.database_url.clone(), t.gh.url(), t.sh.url());
    // Unpaced, like every test about something else (the demo's 30-odd writes exceed the
    // default content budget's burst: the rest would wait for `lever serve` or the next run).
    let config = std::sync::Arc::new(crate::support::app::demo_config_with_budget(
        crate::support::app::GENEROUS_BUDGET,
    ));
    let run = move || {
        crate::support::bin::lever_against_fakes(
            &[
                "sync",
                "--config",
                config.path().to_str().unwrap(),
                "--format",
                "json",
            ],
            &db,
            &gh_url,
            &sh_url,
        )
        .output()
        .unwrap()
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sync"]["query"], "backfill");
    // The backfill reads ACTIVE findings in NEW or NOTIFIED at or above the lowest account
    // minimum (HIGH): 13 of the demo's 16 (not the MEDIUM, ARCHIVED or SUPPRESSED ones).
    assert_eq!(report["sync"]["findings"], 13, "{report}");
    assert_eq!(report["sync"]["issues_to_open"], 6, "{report}");
    let total: usize = [
        "acme/payments",
        "acme/ledger",
        "acme/platform",
        "acme/security",
    ]
    .iter()
    .map(|r| t.gh.issues(r).len())
    .sum();
    assert_eq!(
        total, 6,
        "the same six issues as when the findings are pushed"
    );
    let writes = t.github_writes();
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["sync"]["query"]
            .as_str()
            .unwrap()
            .starts_with("since "),
        "{report}"
    );
    assert_eq!(report["sync"]["issues_to_open"], 0);
    assert_eq!(
        t.github_writes(),
        writes,
        "the second sync changes nothing on GitHub"
    );
    t.sh.assert_conformant();
}

#[tokio::test]
async fn team_approvers_count_only_with_an_active_membership() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["lever.toml", "OWNERS"] {
        std::fs::copy(root().join("examples/demo").join(f), dir.path().join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(dir.path().join("lever.toml")).unwrap();
    std::fs::write(
        dir.path().join("lever.toml"),
        toml.replace(
            r#"approvers = ["cto-user"]"#,
            r#"approvers = ["@acme/security-leads"]"#,
        ),
    )
    .unwrap();
    let t = TestApp::builder().config(dir.path()).start().await;
    t.gh.add_team("acme", "security-leads");
    t.gh.add_team_member("acme", "security-leads", "lead-active", "active");
    t.gh.add_team_member("acme", "security-leads", "lead-pending", "pending");
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.settle().await;

    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "lead-pending",
    )])
    .await;
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("lead-pending is not an approver")
    );
    t.deliver(vec![t.gh.human_add_label(
        LEDGER,
        1,
        "cto-approved",
        "lead-active",
    )])
    .await;
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .last()
            .unwrap()
            .contains("Approved by @lead-active")
    );
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "not_planned", "carol")])
        .await;
    t.settle().await;
    assert_eq!(t.workflow(), ["SUPPRESSED"]);
    let asked = t.gh.count(
        "GET",
        "/orgs/acme/teams/security-leads/memberships/lead-active",
    );
    assert_eq!(
        asked, 1,
        "the membership is cached briefly (label, then close)"
    );
    t.gh.assert_conformant();
}
