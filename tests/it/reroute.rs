//! A repository that refuses Lever (the App not installed, uninstalled or suspended there, the
//! repository archived, an issue transferred to a repository without the App): the work goes
//! to the fallback repository with a note saying why, or is parked with the reason, never
//! dropped; a suspension lifted brings the parked effects back.

use chrono::Duration;
use reqwest::StatusCode;

use crate::support::app::{INSTALLATION, TestApp, demo_config_with, root};
use lever::store::{AuditFilter, JobState};

const LEDGER: &str = "acme/ledger";
const SECURITY: &str = "acme/security";
/// CRITICAL must be acknowledged within 4 h; the platform rotation backs the owners up.
const ESCALATION: &str = "[escalation]\nbackup = [\"@rotation:platform\"]\n[escalation.acknowledge]\ncritical = \"4h\"\n";
const LEDGER_FINDING: &str = "examples/demo/findings/03-payments-prod-ledger-rds.2.json";

async fn ingest_ledger(t: &TestApp) {
    let (status, _) = t.ingest_file(&root().join(LEDGER_FINDING)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
}

fn body(t: &TestApp, repo: &str, n: u64) -> String {
    t.gh.issue(repo, n).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn audit_actions(t: &TestApp) -> Vec<String> {
    t.app
        .store
        .audit(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect()
}

/// The App is not installed on the owner's repository (never was, or uninstalled while Lever
/// missed the webhook): the issue opens in the fallback repository saying which repository
/// refused and what GitHub answered, and the reason is recorded.
#[tokio::test]
async fn a_repository_without_the_app_sends_the_issue_to_the_fallback_repository() {
    let t = TestApp::start().await;
    // The App loses the repository; Lever never hears of it.
    let _missed = t.gh.remove_repo_from_installation(LEDGER, "admin");
    ingest_ledger(&t).await;
    assert!(t.gh.issues(LEDGER).is_empty());
    let issues = t.gh.issues(SECURITY);
    assert_eq!(issues.len(), 1, "one issue, in the fallback repository");
    let text = body(&t, SECURITY, 1);
    assert!(
        text.contains("because the owning repository acme/ledger refuses Lever")
            && text.contains("Not Found"),
        "{text}"
    );
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(group.repo, SECURITY);
    assert!(
        group
            .data
            .route
            .warnings
            .iter()
            .any(|w| w.contains("acme/ledger refuses Lever")),
        "{:?}",
        group.data.route.warnings
    );
    assert!(audit_actions(&t).await.contains(&"issue-rerouted".into()));
    assert!(
        t.app
            .store
            .jobs(Some(JobState::Dead))
            .await
            .unwrap()
            .is_empty()
    );
    t.gh.assert_conformant();
}

/// An archived repository is read-only: the issue opens in the fallback repository.
#[tokio::test]
async fn an_archived_repository_sends_the_issue_to_the_fallback_repository() {
    let t = TestApp::start().await;
    t.gh.archive_repo(LEDGER);
    ingest_ledger(&t).await;
    assert!(t.gh.issues(LEDGER).is_empty());
    assert_eq!(t.gh.issues(SECURITY).len(), 1);
    let text = body(&t, SECURITY, 1);
    assert!(text.contains("acme/ledger is archived"), "{text}");
    t.gh.assert_conformant();
}

/// When the fallback repository refuses too, the job is parked (visible in
/// `lever jobs --failed`) with both reasons.
#[tokio::test]
async fn when_the_fallback_refuses_too_the_job_is_parked_with_both_reasons() {
    let t = TestApp::start().await;
    t.gh.archive_repo(LEDGER);
    t.gh.archive_repo(SECURITY);
    ingest_ledger(&t).await;
    assert!(t.gh.issues(LEDGER).is_empty() && t.gh.issues(SECURITY).is_empty());
    let dead = t.app.store.jobs(Some(JobState::Dead)).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:#?}");
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert_eq!(dead[0].job.kind(), "open-issue");
    assert!(
        error.contains("acme/ledger is archived")
            && error.contains("the fallback repository acme/security refused too")
            && error.contains("Repository was archived so is read-only."),
        "{error}"
    );
}

/// An issue transferred to a repository without the App: Lever cannot follow it there, so a
/// new issue opens in the fallback repository, linking the transferred one, and the group's
/// later effects and escalation go on there.
#[tokio::test]
async fn an_issue_transferred_to_a_repository_without_the_app_falls_back() {
    let dir = demo_config_with(ESCALATION);
    let t = TestApp::builder().config(dir.path()).start().await;
    t.gh.add_collaborator(SECURITY, "erin", "write");
    ingest_ledger(&t).await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1);
    t.gh.add_repo("other-org/archive", true, None);
    let (moved_to, transferred) =
        t.gh.human_transfer_issue(LEDGER, 1, "other-org/archive", "carol");
    t.deliver(vec![transferred]).await;
    t.settle().await;
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(
        (group.repo.as_str(), group.issue_number),
        (SECURITY, Some(1)),
        "a new issue in the fallback repository"
    );
    let text = body(&t, SECURITY, 1);
    assert!(
        text.contains("transferred to other-org/archive, where the App is not installed")
            && text.contains(&format!("other-org/archive/issues/{moved_to}")),
        "{text}"
    );
    // Its escalation goes on: unacknowledged after 4 h, the issue says so.
    t.clock.advance(Duration::hours(4));
    t.settle().await;
    let said = t.comments_by_bot(SECURITY, 1);
    assert!(
        said.iter()
            .any(|c| c.contains("@sam did not acknowledge this issue within 4h")),
        "{said:#?}"
    );
    assert_eq!(t.assignees(SECURITY, 1), ["erin"], "the backup owns it now");
    t.gh.assert_conformant();
}

/// The App removed from the repository (`installation_repositories.removed`): the open issue
/// Lever tracked there is replaced by one in the fallback repository linking it.
#[tokio::test]
async fn the_app_removed_from_a_repository_moves_its_open_issues_to_the_fallback() {
    let t = TestApp::start().await;
    ingest_ledger(&t).await;
    let old_url = t.gh.issue(LEDGER, 1).unwrap()["html_url"]
        .as_str()
        .unwrap()
        .to_string();
    let removed = t.gh.remove_repo_from_installation(LEDGER, "admin");
    // The delivery is shaped as GitHub's description says.
    if let Some(spec) = crate::fakes::openapi::spec() {
        let errors = spec.validate_webhook(&removed.schema_name(), &removed.payload);
        assert!(errors.is_empty(), "{errors:#?}");
    }
    t.deliver(vec![removed]).await;
    t.settle().await;
    let text = body(&t, SECURITY, 1);
    assert!(
        text.contains("App uninstalled from acme/ledger") && text.contains(&old_url),
        "{text}"
    );
    let actions = audit_actions(&t).await;
    for a in [
        "repo-access-uninstalled",
        "issue-unreachable",
        "issue-rerouted",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
    t.gh.assert_conformant();
}

/// The App suspended: the effects decided meanwhile (an escalation) are parked with the reason,
/// not attempted; unsuspended, they run.
#[tokio::test]
async fn a_suspension_parks_effects_and_lifting_it_runs_them() {
    let dir = demo_config_with("[escalation.acknowledge]\ncritical = \"4h\"\n");
    let t = TestApp::builder().config(dir.path()).start().await;
    ingest_ledger(&t).await;
    t.deliver(vec![t.gh.suspend_installation(INSTALLATION, "admin")])
        .await;
    t.clock.advance(Duration::hours(4));
    t.settle().await;
    let parked = t.app.store.parked_effects().await.unwrap();
    assert!(!parked.is_empty(), "the escalation's effects are parked");
    assert!(
        parked
            .iter()
            .all(|(_, why)| why == "App suspended on acme/ledger"),
        "{parked:#?}"
    );
    assert!(
        !t.comments_by_bot(LEDGER, 1)
            .iter()
            .any(|c| c.contains("did not acknowledge")),
        "nothing written while suspended"
    );
    t.deliver(vec![t.gh.unsuspend_installation(INSTALLATION, "admin")])
        .await;
    t.settle().await;
    assert!(t.app.store.parked_effects().await.unwrap().is_empty());
    assert!(
        t.comments_by_bot(LEDGER, 1)
            .iter()
            .any(|c| c.contains("did not acknowledge this issue within 4h")),
        "{:#?}",
        t.comments_by_bot(LEDGER, 1)
    );
}

/// When the group's issue is out of reach and its next issue will open in the fallback
/// repository, the GitHub effects that were waiting for the old issue are dropped (the audit
/// says which), not parked: a parked effect handed back by `lever jobs retry` would be applied
/// to the group's *new* issue (a close, a reopen, a comment meant for the old one). Security Hub
/// writes stay in the outbox and still run.
#[tokio::test]
async fn effects_waiting_for_an_unreachable_issue_are_dropped_not_parked() {
    use lever::domain::WorkflowStatus;
    use lever::domain::lifecycle::Action;
    use lever::store::{Effect, OutboxWrite, Reroute};
    let t = TestApp::start().await;
    ingest_ledger(&t).await;
    let group = t
        .app
        .store
        .list_groups(None)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.repo == LEDGER)
        .expect("the ledger group");
    let effect = |id: &str, action: Action| Effect {
        id: id.into(),
        group_key: group.group_key.clone(),
        action,
        source: "test".into(),
    };
    let outbox = vec![
        effect("reopen-old", Action::Reopen),
        effect(
            "notified",
            Action::UpdateFindings {
                workflow: WorkflowStatus::Notified,
                note: "back to NOTIFIED".into(),
                resources: None,
            },
        ),
        effect("refresh-old", Action::RefreshBody),
    ];
    let mut record = group.clone();
    let changes = lever::worker::reroute::detach(
        &mut record,
        &outbox,
        Reroute {
            repo: LEDGER.into(),
            previous: group.issue_url.clone(),
            reason: "App uninstalled from acme/ledger".into(),
        },
        "test",
        t.app.now(),
    );
    assert_eq!(
        changes.outbox,
        vec![
            OutboxWrite::Remove("reopen-old".into()),
            OutboxWrite::Remove("refresh-old".into()),
        ],
        "GitHub effects for the old issue are dropped; the Security Hub write stays"
    );
    let audit = &changes.audit[0];
    assert_eq!(audit.action, "issue-unreachable");
    assert_eq!(
        audit.detail["dropped_effects"],
        serde_json::json!(["reopen", "refresh-body"]),
        "{audit:#?}"
    );
}
