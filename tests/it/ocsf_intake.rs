//! OCSF through the real HTTP server (issue 14): `POST /events/securityhub` accepts a bare OCSF
//! finding and a `Findings Imported V2` event beside ASFF, and the same CSPM problem reported in
//! both formats opens one issue, whichever arrives first.
//!
//! The OCSF twin (`tests/fixtures/ocsf/rds-2-ledger-twin.json`) is hand-made: the RDS.2 failure
//! of the demo's ASFF finding `03-payments-prod-ledger-rds.2.json`, written as Security Hub v2
//! would report it (see `tests/fixtures/ocsf/README.md`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TestApp, root};

const ASFF: &str = "examples/demo/findings/03-payments-prod-ledger-rds.2.json";
const OCSF: &str = "tests/fixtures/ocsf/rds-2-ledger-twin.json";

fn read(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join(rel)).unwrap()).unwrap()
}

fn v2_event(finding: Value) -> Value {
    json!({
        "version": "0", "id": "4f1c2d3e-ocsf-twin", "detail-type": "Findings Imported V2",
        "source": "aws.securityhub", "account": "111111111111",
        "time": "2026-11-20T08:15:05Z", "region": "us-east-1",
        "resources": ["0e6f1c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00112233"],
        "detail": {"findings": [finding]}
    })
}

/// Titles of the issues of `repo`.
fn titles(t: &TestApp, repo: &str) -> Vec<String> {
    t.gh.issues(repo)
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ocsf_finding_opens_the_issue_and_its_asff_twin_does_not_open_another() {
    let t = TestApp::builder().start().await;

    // The bare OCSF finding, as `lever plan` or a forwarder would post it.
    let (status, body) = t.post_event(&read(OCSF)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["issues_to_open"].clone()),
        (json!(1), json!(1)),
        "{body}"
    );
    t.drain().await;
    let issues = titles(&t, "acme/ledger");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].contains("RDS.2"), "{issues:?}");

    // The same problem in ASFF: the same group, no second issue.
    let (status, body) = t.ingest_file(&root().join(ASFF)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["issues_to_open"], 0, "{body}");
    t.settle().await;
    assert_eq!(titles(&t, "acme/ledger").len(), 1);
    let groups = t.app.store.list_groups(None).await.unwrap();
    assert_eq!(groups.len(), 1, "one group for both formats: {groups:?}");
    // One resource in the checklist, spelled as the ASFF twin spells it.
    let body = t.gh.issues("acme/ledger")[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("- [") && l.contains("ledger-primary"))
        .collect();
    assert_eq!(
        lines,
        [
            "- [ ] `arn:aws:rds:us-east-1:111111111111:db:ledger-primary` (AwsRdsDbInstance, us-east-1)"
        ],
        "{body}"
    );

    // With the default `[securityhub] api = "cspm"` Lever does not write the OCSF finding back
    // (BatchUpdateFindings does not know a `productv2` finding; the V2 API is used only with
    // api = "v2" or "both", see ocsf_v2.rs). The ASFF twin is written back as before.
    assert!(t.sh.count("BatchUpdateFindings") >= 1);
    for r in t.sh.requests() {
        if r.operation.as_deref() == Some("BatchUpdateFindings") {
            let body = r.body.unwrap_or_default().to_string();
            assert!(!body.contains("productv2"), "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asff_finding_opens_the_issue_and_its_findings_imported_v2_twin_does_not_open_another() {
    let t = TestApp::builder().start().await;
    let (status, body) = t.ingest_file(&root().join(ASFF)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["issues_to_open"], 1, "{body}");
    t.settle().await;
    assert_eq!(titles(&t, "acme/ledger").len(), 1);

    let (status, body) = t.post_event(&v2_event(read(OCSF))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["issues_to_open"].clone()),
        (json!(1), json!(0)),
        "{body}"
    );
    t.settle().await;
    assert_eq!(titles(&t, "acme/ledger").len(), 1);
    assert_eq!(t.app.store.list_groups(None).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ocsf_finding_is_answered_400_naming_the_field() {
    let t = TestApp::builder().start().await;
    let mut bad = read(OCSF);
    bad["resources"] = json!([{"type": "AWS::RDS::DBInstance"}]);
    let (status, body) = t.post_event(&v2_event(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["rejected"][0]["field"], "resources[0].uid", "{body}");
    assert_eq!(body["rejected"][0]["index"], 0, "{body}");
    assert!(t.gh.issues("acme/ledger").is_empty());
}

/// `lever plan` reads OCSF files as it reads ASFF ones: the twin gets the same decision,
/// route, stable key and group key as the ASFF finding.
#[test]
fn lever_plan_reads_ocsf_files_and_keys_the_twins_alike() {
    let plan = |file: &str| -> Value {
        let out = crate::support::bin::lever(&[
            "plan",
            "--config",
            "examples/demo",
            "--findings",
            file,
            "--format",
            "json",
            "--now",
            "2026-11-23T12:00:00Z",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: stderr: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<&str> = stdout.lines().collect();
        assert_eq!(rows.len(), 1, "{file}: {stdout}");
        serde_json::from_str(rows[0]).unwrap_or_else(|e| panic!("not JSON: {}: {e}", rows[0]))
    };
    let (asff, ocsf) = (plan(ASFF), plan(OCSF));
    for field in [
        "stable_key",
        "group_key",
        "control_id",
        "decision",
        "repo",
        "severity",
    ] {
        assert_eq!(asff[field], ocsf[field], "{field}: {asff:#} vs {ocsf:#}");
    }
    assert_eq!(ocsf["control_id"], "RDS.2");
    assert_eq!(ocsf["decision"], "ticket");
    assert_eq!(ocsf["repo"], "acme/ledger");
}

/// Closing an issue Lever opened for an OCSF finding starts the fix verification as for ASFF.
/// GetFindings cannot see OCSF findings and the default `api = "cspm"` does not call
/// GetFindingsV2 (ocsf_v2.rs tests it with api = "v2"), so Lever judges the finding on the
/// state its last event recorded: still failing, never "gone"; the next V2 event
/// saying the control passes confirms the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ocsf_issue_closed_by_hand_is_verified_on_its_recorded_state_not_taken_for_gone() {
    let t = TestApp::builder().start().await;
    let (status, body) = t.post_event(&v2_event(read(OCSF))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    let issues = t.gh.issues("acme/ledger");
    assert_eq!(issues.len(), 1);
    let n = issues[0]["number"].as_u64().unwrap();

    let asked_before = t.sh.count("GetFindings");
    t.deliver(vec![t.gh.human_close(
        "acme/ledger",
        n,
        "completed",
        "carol",
    )])
    .await;
    t.clock.advance(chrono::Duration::minutes(16));
    t.settle().await;
    assert_eq!(
        t.sh.count("GetFindings"),
        asked_before,
        "an OCSF finding is not looked up through GetFindings"
    );
    assert!(
        t.labels("acme/ledger", n)
            .contains(&"needs-verification".to_string()),
        "still failing as recorded, not gone"
    );
    let said = t.comments_by_bot("acme/ledger", n);
    assert!(
        said.last().unwrap().contains("still reports this problem"),
        "{said:#?}"
    );

    // Security Hub v2 now says the control passes (Resolved, compliance Pass).
    let mut fixed = read(OCSF);
    fixed["status"] = json!("Resolved");
    fixed["status_id"] = json!(4);
    fixed["compliance"]["status"] = json!("Pass");
    fixed["compliance"]["status_id"] = json!(1);
    fixed["severity"] = json!("Informational");
    fixed["severity_id"] = json!(1);
    fixed["finding_info"]["modified_time_dt"] = json!("2026-11-23T12:30:00.000Z");
    let (status, body) = t.post_event(&v2_event(fixed)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    t.clock.advance(chrono::Duration::days(2));
    t.settle().await;
    assert_eq!(t.gh.issue("acme/ledger", n).unwrap()["state"], "closed");
    assert!(
        !t.labels("acme/ledger", n)
            .contains(&"needs-verification".to_string()),
        "the fix is confirmed"
    );
}
