//! Trust: a finding is suppressed only by a current, verified approval, and an issue closes only
//! on a real fix. Each test is a bypass that worked before (issue 9), tried as an attacker would,
//! end to end: signed webhooks to the real endpoint, the fake GitHub's events and the fake
//! Security Hub's workflow state.

use reqwest::StatusCode;
use serde_json::{Value, json};

use lever::store::{AuditEntry, AuditFilter};

use crate::support::app::{TestApp, root};

const LEDGER: &str = "acme/ledger";

fn ledger_finding() -> Value {
    serde_json::from_slice(
        &std::fs::read(root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
            .unwrap(),
    )
    .unwrap()
}

/// The demo's RDS.2 finding opened as acme/ledger#1 (owner carol).
async fn ledger_opened(t: &TestApp) {
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1);
}

/// Security Hub reports the ledger finding with `compliance` and `workflow` at `updated_at`
/// (seeded in the fake and pushed to Lever), then Lever settles.
async fn ledger_update(t: &TestApp, edit: impl FnOnce(&mut Value)) {
    let mut f = ledger_finding();
    edit(&mut f);
    t.sh.seed(f.clone());
    let (status, body) = t.post_event(&f).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
}

fn state(t: &TestApp, repo: &str, n: u64) -> String {
    t.gh.issue(repo, n).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn audit(t: &TestApp, issue: &str) -> Vec<AuditEntry> {
    t.app
        .store
        .audit(&AuditFilter {
            issue: Some(issue.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn audit_actions(t: &TestApp, issue: &str) -> Vec<String> {
    audit(t, issue)
        .await
        .into_iter()
        .map(|e| e.action)
        .filter(|a| !a.starts_with("effect-") && a != "observed")
        .collect()
}

// ---- 5. Only a real fix closes ---------------------------------------------------------------

/// The control is disabled in the member account: Security Hub archives its findings while the
/// resource still fails. That is not a fix: the issue stays open and says why.
#[tokio::test]
async fn a_disabled_control_is_not_a_fix() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    ledger_update(&t, |f| {
        f["RecordState"] = "ARCHIVED".into();
        f["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    })
    .await;
    assert_eq!(state(&t, LEDGER, 1), "open");
    let said = t.comments_by_bot(LEDGER, 1);
    assert!(
        said.last().unwrap().contains("not a fix") && said.last().unwrap().contains("@sam"),
        "{said:#?}"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);
    assert!(
        audit_actions(&t, "acme/ledger#1")
            .await
            .contains(&"fix-unconfirmed".to_string()),
        "{:?}",
        audit_actions(&t, "acme/ledger#1").await
    );
}

/// AWS Config cannot evaluate the rule any more (its access was broken in the member account):
/// Security Hub reports NOT_AVAILABLE with the reason. Not a fix either.
#[tokio::test]
async fn a_failed_evaluation_is_not_a_fix() {
    let Some(conformance) = crate::fakes::require_conformance("a_failed_evaluation_is_not_a_fix")
    else {
        return;
    };
    // A real StatusReasons value written by Security Hub.
    let real: Value = serde_json::from_slice(
        &std::fs::read(conformance.join("asff/findings/asr-layer-test-CIS-1.3.json")).unwrap(),
    )
    .unwrap();
    let reasons = real["detail"]["findings"][0]["Compliance"]["StatusReasons"].clone();
    let reasons = if reasons.is_null() {
        real["Compliance"]["StatusReasons"].clone()
    } else {
        reasons
    };
    assert_eq!(reasons[0]["ReasonCode"], "CONFIG_ACCESS_DENIED", "{real}");
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    ledger_update(&t, |f| {
        f["Compliance"]["Status"] = "NOT_AVAILABLE".into();
        f["Compliance"]["StatusReasons"] = reasons;
        f["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    })
    .await;
    assert_eq!(state(&t, LEDGER, 1), "open");
    let said = t.comments_by_bot(LEDGER, 1);
    assert!(
        said.last().unwrap().contains("CONFIG_ACCESS_DENIED"),
        "{said:#?}"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);
}

/// The resource was deleted: Security Hub reports NOT_AVAILABLE and archives the finding. That
/// closes the issue as completed.
#[tokio::test]
async fn a_deleted_resource_closes_the_issue() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    ledger_update(&t, |f| {
        f["Compliance"]["Status"] = "NOT_AVAILABLE".into();
        f["Compliance"]["StatusReasons"] = json!([{
            "ReasonCode": "CONFIG_RETURNS_NOT_APPLICABLE",
            "Description": "The compliance status is NOT_AVAILABLE because AWS Config returned a status of Not Applicable."
        }]);
        f["RecordState"] = "ARCHIVED".into();
        f["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    })
    .await;
    let issue = t.gh.issue(LEDGER, 1).unwrap();
    assert_eq!(issue["state"], "closed");
    assert_eq!(issue["state_reason"], "completed");
}
