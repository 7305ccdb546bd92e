//! `lever serve` end to end: the real HTTP server, store, octocrab and AWS SDK against the
//! fakes. Findings become explanation issues exactly once; webhooks are verified and recorded.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TestApp, root};

fn issue_labels(issue: &Value) -> Vec<String> {
    issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

fn assignees(issue: &Value) -> Vec<String> {
    issue["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn demo_findings_become_one_assigned_issue_per_problem() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    assert_eq!(
        t.github_writes(),
        0,
        "the request only records; workers act later"
    );
    let reports = t.drain().await;
    assert!(reports.iter().all(|r| r.result == "done"), "{reports:#?}");

    // Six issues: S3.1 (three standards), the checkout ASG (three instances), staging IAM.6,
    // the ledger database, the logs bucket, and the unknown account's GuardDuty finding.
    let payments = t.gh.issues("acme/payments");
    let ledger = t.gh.issues("acme/ledger");
    let platform = t.gh.issues("acme/platform");
    let security = t.gh.issues("acme/security");
    assert_eq!(
        (payments.len(), ledger.len(), platform.len(), security.len()),
        (3, 1, 1, 1)
    );
    assert_eq!(
        t.gh.count("POST", "/repos/*/*/issues"),
        6,
        "one create call per issue"
    );

    let s3 = payments
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with("S3.1:"))
        .expect("S3.1 issue");
    assert_eq!(
        s3["title"],
        "S3.1: S3 Block Public Access setting should be enabled (payments-prod)"
    );
    assert_eq!(
        issue_labels(s3),
        [
            "security-finding",
            "severity:high",
            "env:production",
            "control:s3.1"
        ]
    );
    assert_eq!(
        assignees(s3),
        ["bob"],
        "the engineer on call for payments on {}",
        crate::support::app::NOW
    );
    let body = s3["body"].as_str().unwrap();
    assert!(
        body.contains(
            "<!-- lever:group=control|S3.1|111111111111|us-east-1|AWS::::Account:111111111111 -->"
        ),
        "{body}"
    );
    assert!(
        body.contains("reported as PCI.S3.6 (pci-dss-3.2.1)"),
        "{body}"
    );

    let asg = payments
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with("EC2.8:"))
        .expect("ASG issue");
    let body = asg["body"].as_str().unwrap();
    for id in [
        "i-0a1b2c3d4e5f60001",
        "i-0a1b2c3d4e5f60002",
        "i-0a1b2c3d4e5f60003",
    ] {
        assert!(body.contains(id), "the ASG issue lists {id}");
    }
    assert_eq!(assignees(&ledger[0]), ["carol"]);
    assert_eq!(assignees(&platform[0]), ["erin"]);
    assert_eq!(assignees(&security[0]), ["sam"]);
    assert!(issue_labels(&security[0]).contains(&"source:guardduty".to_string()));
    assert!(issue_labels(&security[0]).contains(&"env:unknown".to_string()));
    let staging = payments
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with("IAM.6:"))
        .unwrap();
    assert!(issue_labels(staging).contains(&"env:staging".to_string()));

    // Security Hub: every ticketed finding is NOTIFIED with a note linking its issue.
    for f in t.sh.findings() {
        let account = f["AwsAccountId"].as_str().unwrap();
        let workflow = f["Workflow"]["Status"].as_str().unwrap_or("NEW");
        let title = f["Title"].as_str().unwrap_or("");
        let ticketed = f["Compliance"]["Status"] != "PASSED"
            && f["RecordState"] != "ARCHIVED"
            && workflow != "SUPPRESSED"
            && !matches!(account, "333333333333")
            && !(account == "111111111111" && f["Severity"]["Label"] == "MEDIUM")
            && !(account == "222222222222" && f["Severity"]["Label"] == "HIGH");
        if ticketed {
            assert_eq!(workflow, "NOTIFIED", "{title}");
            let note = &f["Note"];
            assert_eq!(note["UpdatedBy"], "lever", "{title}");
            let text = note["Text"].as_str().unwrap();
            assert!(text.starts_with("Lever: tracked in https://"), "{text}");
            assert!(text.chars().count() <= 512);
        } else {
            assert_ne!(
                workflow, "NOTIFIED",
                "skipped findings are left alone: {title}"
            );
        }
    }
    t.gh.assert_conformant();
    t.sh.assert_conformant();
}

#[tokio::test]
async fn the_same_findings_again_and_lever_s_own_echo_make_no_github_call() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    t.drain().await;
    let requests = t.gh.requests().len();
    let issues = t.gh.issues("acme/payments").len();

    // EventBridge delivers the same events again.
    t.ingest_demo().await;
    assert!(t.drain().await.is_empty(), "a repeat schedules no job");
    // Security Hub echoes Lever's own BatchUpdateFindings as Imported events.
    let echoed = t.forward_securityhub_events().await;
    assert!(echoed >= 10, "every NOTIFIED finding comes back ({echoed})");
    assert!(t.drain().await.is_empty(), "an echo schedules no job");
    assert_eq!(t.gh.requests().len(), requests, "no GitHub call at all");
    assert_eq!(t.gh.issues("acme/payments").len(), issues);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn ingest_answers_401_400_413_and_202() {
    let t = TestApp::start().await;
    let url = format!("{}/events/securityhub", t.url);
    let finding: Value = serde_json::from_slice(
        &std::fs::read(root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
            .unwrap(),
    )
    .unwrap();

    let res = t.http.post(&url).json(&finding).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = t
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&finding)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());

    let res = t
        .http
        .post(&url)
        .bearer_auth(crate::support::app::INGEST_TOKEN)
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err = res.json::<Value>().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("line 1"), "{err}");

    let (status, body) = t.post_event(&json!({"detail-type": "Security Hub Insight Results", "source": "aws.securityhub", "detail": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = t.post_event(&json!([{"Id": "x"}])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["rejected"][0]["index"], 0, "{body}");
    assert!(
        body["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ProductArn"),
        "{body}"
    );

    let big = vec![b' '; 6 * 1024 * 1024 + 1];
    let res = t
        .http
        .post(&url)
        .bearer_auth(crate::support::app::INGEST_TOKEN)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // One bad finding never drops the others: 202 with the rejection listed.
    let mut doc = vec![finding.clone(), json!({"Id": "broken"})];
    doc.swap(0, 1);
    let (status, body) = t.post_event(&Value::Array(doc)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(body["issues_to_open"], 1);
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
}

#[tokio::test]
async fn health_and_readiness() {
    let t = TestApp::start().await;
    let res = t
        .http
        .get(format!("{}/healthz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = t
        .http
        .get(format!("{}/readyz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_recorded() {
    let t = TestApp::start().await;
    let (_, opened) =
        t.gh.human_open_issue("acme/payments", "Question", "hello", "alice");
    let (status, body) = t.post_webhook(&opened).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "recorded");
    let (status, body) = t.post_webhook(&opened).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a redelivery is acknowledged, not re-applied: {body}"
    );
    assert_eq!(body["status"], "duplicate");
    let stored = t
        .app
        .store
        .delivery(&format!("github:{}", opened.id))
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(stored.event, "issues.opened");
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(opened.body()).into();
    assert_eq!(
        (stored.body_sha256, stored.body),
        (Some(digest), None),
        "not about a tracked issue: only what deduplication needs"
    );

    let labeled =
        t.gh.human_add_label("acme/payments", 1, "acknowledged", "bob");
    let (status, _) = t.post_webhook_signed(&labeled, "not-the-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        t.app
            .store
            .delivery(&format!("github:{}", labeled.id))
            .await
            .unwrap()
            .is_none(),
        "nothing recorded"
    );

    let url = format!("{}/webhooks/github", t.url);
    let body = labeled.body();
    let sig = crate::fakes::github::sign(crate::support::app::WEBHOOK_SECRET, &body);
    let send = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut req = t.http.post(&url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let res = send(
        vec![
            ("x-hub-signature-256", sig.clone()),
            ("x-github-event", "issues".into()),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "missing X-GitHub-Delivery"
    );
    let garbage = b"not json".to_vec();
    let garbage_sig = crate::fakes::github::sign(crate::support::app::WEBHOOK_SECRET, &garbage);
    let res = send(
        vec![
            ("x-hub-signature-256", garbage_sig),
            ("x-github-event", "issues".into()),
            ("x-github-delivery", "d-1".into()),
        ],
        garbage,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    // Signed, JSON, but not what GitHub sends for the event: refused, naming the field.
    let mut no_label = labeled.payload.clone();
    no_label.as_object_mut().unwrap().remove("label");
    let no_label = serde_json::to_vec(&no_label).unwrap();
    let res = send(
        vec![
            (
                "x-hub-signature-256",
                crate::fakes::github::sign(crate::support::app::WEBHOOK_SECRET, &no_label),
            ),
            ("x-github-event", "issues".into()),
            ("x-github-delivery", "d-no-label".into()),
        ],
        no_label,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let error = res.json::<Value>().await.unwrap()["error"].clone();
    assert!(
        error.as_str().unwrap().contains("missing field `label`"),
        "{error}"
    );
    assert!(
        t.app
            .store
            .delivery("github:d-no-label")
            .await
            .unwrap()
            .is_none(),
        "nothing recorded"
    );
    let res = send(
        vec![
            ("x-github-event", "issues".into()),
            ("x-github-delivery", "d-2".into()),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "unsigned");
    let huge = vec![b'x'; 25 * 1024 * 1024 + 1];
    let res = send(
        vec![
            ("x-github-event", "issues".into()),
            ("x-github-delivery", "d-3".into()),
        ],
        huge,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn webhook_secrets_can_be_rotated() {
    let mut t = TestApp::start().await;
    std::sync::Arc::make_mut(&mut t.app.secrets).webhook_secrets =
        vec!["new-secret".into(), "old-secret".into()];
    // A server with the rotated secrets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(lever::server::serve(
        listener,
        t.app.clone(),
        std::future::pending(),
    ));
    t.url = url;
    let (_, a) = t.gh.human_open_issue("acme/payments", "A", "a", "alice");
    let (_, b) = t.gh.human_open_issue("acme/payments", "B", "b", "alice");
    let (_, c) = t.gh.human_open_issue("acme/payments", "C", "c", "alice");
    assert_eq!(
        t.post_webhook_signed(&a, "old-secret").await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.post_webhook_signed(&b, "new-secret").await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.post_webhook_signed(&c, "other").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Every real webhook example of the conformance data goes through the endpoint.
#[tokio::test]
async fn real_github_webhook_examples_are_accepted() {
    let Some(dir) = crate::fakes::require_conformance("real_github_webhook_examples_are_accepted")
    else {
        return;
    };
    let t = TestApp::start().await;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("webhooks"))
        .unwrap()
        .chain(std::fs::read_dir(dir.join("webhooks/supplemental")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 34, "32 examples + 2 real issues.closed");
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(path).unwrap();
        let event = name.split('.').next().unwrap().to_string();
        let sig = crate::fakes::github::sign(crate::support::app::WEBHOOK_SECRET, &body);
        let res = t
            .http
            .post(format!("{}/webhooks/github", t.url))
            .header("x-github-event", &event)
            .header("x-github-delivery", format!("conformance-{i}"))
            .header("x-hub-signature-256", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{name}");
        let stored = t
            .app
            .store
            .delivery(&format!("github:conformance-{i}"))
            .await
            .unwrap()
            .unwrap();
        let action =
            serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap()["action"]
                .as_str()
                .map(str::to_string);
        let want = match action {
            Some(a) => format!("{event}.{a}"),
            None => event.clone(),
        };
        assert_eq!(stored.event, want, "{name}");
    }
}

#[tokio::test]
async fn a_refused_assignee_falls_back_to_the_next_person_and_the_issue_says_so() {
    let t = TestApp::start().await;
    t.gh.remove_collaborator("acme/payments", "bob");
    t.ingest_file(
        &root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json"),
    )
    .await;
    let reports = t.drain().await;
    assert!(reports.iter().all(|r| r.result == "done"), "{reports:#?}");
    let issues = t.gh.issues("acme/payments");
    assert_eq!(issues.len(), 1, "never lost, never duplicated");
    assert_eq!(
        assignees(&issues[0]),
        ["sam"],
        "the next person in the chain"
    );
    let body = issues[0]["body"].as_str().unwrap();
    assert!(
        body.contains("GitHub would not assign bob, the engineer on call"),
        "{body}"
    );
    assert!(body.contains("Owner: @sam"), "{body}");
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(group.assignee.as_deref(), Some("sam"));
    assert_eq!(group.state().refused, ["bob"], "the walk remembers bob");
    t.gh.assert_conformant();
}

#[tokio::test]
async fn nobody_assignable_still_opens_the_issue() {
    let t = TestApp::start().await;
    t.gh.remove_collaborator("acme/ledger", "carol");
    t.gh.remove_collaborator("acme/ledger", "sam");
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.drain().await;
    let issues = t.gh.issues("acme/ledger");
    assert_eq!(issues.len(), 1);
    assert!(assignees(&issues[0]).is_empty());
    let body = issues[0]["body"].as_str().unwrap();
    assert!(
        body.contains("GitHub would not assign anyone in the escalation chain (carol, sam)"),
        "{body}"
    );
    assert!(body.contains("Nobody could be assigned yet"), "{body}");
    let state = t.app.store.list_groups(None).await.unwrap()[0].state();
    assert_eq!(
        (state.assignee, state.refused),
        (None, vec!["carol".to_string(), "sam".to_string()])
    );
}

#[tokio::test]
async fn a_crash_between_created_and_recorded_never_makes_a_second_issue() {
    let t = TestApp::start().await;
    // GitHub creates the issue, then the response is lost (502).
    t.gh.fail_after_effect("POST", "/repos/acme/ledger/issues", 1);
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    let first = t.drain().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].result, "retry", "{first:#?}");
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "GitHub has the issue; Lever does not know yet"
    );
    // The retry is due after the backoff.
    t.clock.advance(chrono::Duration::minutes(2));
    let second = t.drain().await;
    assert!(second.iter().all(|r| r.result == "done"), "{second:#?}");
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "adopted, not duplicated"
    );
    assert_eq!(t.gh.count("POST", "/repos/acme/ledger/issues"), 1);
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(group.issue_number, Some(1));
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "issue-adopted"),
        "{audit:#?}"
    );
    t.gh.assert_conformant();
}

#[tokio::test]
async fn only_issues_created_by_the_app_are_trusted_to_carry_the_marker() {
    let t = TestApp::start().await;
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    // Someone pastes the marker into an issue of their own before Lever's retry runs.
    let group_key = t.app.store.list_groups(None).await.unwrap()[0]
        .group_key
        .clone();
    t.gh.human_open_issue(
        "acme/ledger",
        "fake",
        &format!("<!-- lever:group={group_key} -->"),
        "mallory",
    );
    t.gh.fail_next("POST", "/repos/acme/ledger/issues", 502, 1);
    t.drain().await;
    t.clock.advance(chrono::Duration::minutes(2));
    t.drain().await;
    let issues = t.gh.issues("acme/ledger");
    assert_eq!(
        issues.len(),
        2,
        "Lever opened its own issue instead of adopting mallory's"
    );
    let group = t.app.store.group(&group_key).await.unwrap().unwrap();
    assert_eq!(group.issue_number, Some(2));
}

#[tokio::test]
async fn public_repositories_never_receive_finding_details() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["lever.toml", "OWNERS"] {
        std::fs::copy(root().join("examples/demo").join(f), dir.path().join(f)).unwrap();
    }
    let owners = std::fs::read_to_string(dir.path().join("OWNERS"))
        .unwrap()
        .replace("acme/ledger ", "acme/ledger-public ");
    std::fs::write(dir.path().join("OWNERS"), owners).unwrap();
    let t = TestApp::builder().config(dir.path()).start().await;
    t.gh.add_repo(
        "acme/ledger-public",
        false,
        Some(crate::support::app::INSTALLATION),
    );
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.drain().await;
    assert!(t.gh.issues("acme/ledger-public").is_empty());
    let security = t.gh.issues("acme/security");
    assert_eq!(security.len(), 1);
    assert_eq!(assignees(&security[0]), ["sam"]);
    assert!(
        security[0]["body"]
            .as_str()
            .unwrap()
            .contains("is public, so this issue was opened in acme/security")
    );
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert_eq!(group.repo, "acme/security");
}

#[tokio::test]
async fn installation_tokens_are_cached_per_installation() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    t.drain().await;
    assert_eq!(
        t.gh.tokens_issued().len(),
        1,
        "one token for the one installation, reused for 6 issues"
    );
    assert_eq!(
        t.gh.count("GET", "/repos/*/*/installation"),
        4,
        "one lookup per repository"
    );
}

/// GitHub revokes an installation token before it expires (the App was reinstalled, a key was
/// rotated): the call answered 401 forgets the cached token, so the retry mints a fresh one
/// instead of failing with the revoked token until its expiry an hour later.
#[tokio::test]
async fn a_revoked_installation_token_is_replaced_on_the_next_call() {
    let t = TestApp::start().await;
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
    assert_eq!(t.gh.tokens_issued().len(), 1);

    t.gh.revoke_tokens();
    t.ingest_file(&root().join("examples/demo/findings/04-payments-prod-logs-bucket-s3.5.json"))
        .await;
    let reports = t.drain().await;
    let open = reports.iter().find(|r| r.kind == "open-issue").unwrap();
    assert_eq!(open.result, "retry", "{reports:#?}");
    assert!(
        open.error
            .as_deref()
            .unwrap()
            .contains("authentication failed"),
        "{reports:#?}"
    );
    assert_eq!(
        t.gh.tokens_issued().len(),
        1,
        "the 401 itself mints nothing"
    );

    t.clock.advance(chrono::Duration::minutes(5));
    let reports = t.drain().await;
    let open = reports.iter().find(|r| r.kind == "open-issue").unwrap();
    assert_eq!(open.result, "done", "{reports:#?}");
    assert_eq!(t.gh.tokens_issued().len(), 2, "a fresh token for the retry");
    assert_eq!(t.gh.issues("acme/platform").len(), 1);
}

#[tokio::test]
async fn a_wrong_app_key_is_refused_by_github_and_nothing_is_lost() {
    let t = TestApp::builder()
        .private_key(crate::fakes::github::OTHER_TEST_PRIVATE_KEY_PEM)
        .start()
        .await;
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    let reports = t.drain().await;
    assert_eq!(reports[0].result, "retry");
    assert!(
        reports[0]
            .error
            .as_deref()
            .unwrap()
            .contains("authentication failed"),
        "{reports:#?}"
    );
    assert!(t.gh.issues("acme/ledger").is_empty());
    let pending = t
        .app
        .store
        .jobs(Some(lever::store::JobState::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "the job waits for a fixed key");
    assert!(
        t.gh.requests()
            .iter()
            .any(|r| matches!(r.token, crate::fakes::github::TokenKind::BadJwt))
    );
}

#[tokio::test]
async fn security_hub_throttling_and_unprocessed_findings_are_retried() {
    let t = TestApp::start().await;
    t.sh.throttle_next("BatchUpdateFindings", 1);
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    let reports = t.drain().await;
    let notify = reports
        .iter()
        .find(|r| r.kind == "notify-findings")
        .unwrap();
    assert_eq!(notify.result, "retry", "{reports:#?}");
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "the issue does not wait for Security Hub"
    );
    let id = t.sh.findings()[0]["Id"].as_str().unwrap().to_string();
    t.sh.force_unprocessed(&id, "FindingNotFound", 1);
    t.clock.advance(chrono::Duration::minutes(5));
    let reports = t.drain().await;
    assert_eq!(reports[0].result, "retry", "{reports:#?}");
    assert_eq!(t.sh.finding(&id).unwrap()["Workflow"]["Status"], "NEW");
    t.clock.advance(chrono::Duration::minutes(10));
    let reports = t.drain().await;
    assert_eq!(reports[0].result, "done", "{reports:#?}");
    assert_eq!(t.sh.finding(&id).unwrap()["Workflow"]["Status"], "NOTIFIED");
    t.sh.assert_conformant();
}

/// Two replicas (two apps, each with its own pool and worker) sharing one PostgreSQL database
/// race for the same jobs: every group gets exactly one issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_open_each_issue_exactly_once() {
    let Some(url) =
        crate::support::pg::or_skip("two_replicas_on_postgres_open_each_issue_exactly_once").await
    else {
        return;
    };
    let t = TestApp::builder().postgres(url.clone()).start().await;
    t.ingest_demo().await;
    let replica_store = t.replica_store().await;
    assert_eq!(replica_store.backend(), "postgres");
    let second = crate::support::app::app_on(
        &root().join("examples/demo"),
        replica_store,
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
    )
    .await;
    let w2 = lever::worker::Worker::new(second, "test-worker-2");
    let (a, b) = tokio::join!(t.worker.run_until_idle(), w2.run_until_idle());
    let (a, b) = (a.unwrap(), b.unwrap());
    let opened: usize = [&a, &b]
        .iter()
        .map(|r| {
            r.iter()
                .filter(|x| x.kind == "open-issue" && x.result == "done")
                .count()
        })
        .sum();
    assert_eq!(opened, 6, "each open-issue job ran once: {a:#?} {b:#?}");
    let total: usize = [
        "acme/payments",
        "acme/ledger",
        "acme/platform",
        "acme/security",
    ]
    .iter()
    .map(|r| t.gh.issues(r).len())
    .sum();
    assert_eq!(total, 6);
    assert_eq!(t.gh.count("POST", "/repos/*/*/issues"), 6);
}

/// The real `lever serve` binary, configured only through its documented environment:
/// `GITHUB_APP_ID`, `GITHUB_PRIVATE_KEY_PATH`, `GITHUB_API_URL`, `GITHUB_WEBHOOK_SECRET`,
/// `LEVER_INGEST_TOKEN`, `AWS_ENDPOINT_URL_SECURITYHUB` and the default `DATABASE_URL`
/// (`sqlite://lever.db` in the working directory). Its workers run on real time, so this test
/// polls the fakes (with a deadline) instead of draining jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lever_binary_serves_from_its_environment() {
    use crate::support::app::{INGEST_TOKEN, WEBHOOK_SECRET, demo_github};
    let gh = crate::fakes::github::FakeGitHub::start_with_test_app().await;
    demo_github(&gh);
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args([
            "serve",
            "--config",
            root().join("examples/demo").to_str().unwrap(),
            "--listen",
            &listen,
        ])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "GITHUB_APP_ID",
            crate::fakes::github::TEST_APP_ID.to_string(),
        )
        .env(
            "GITHUB_PRIVATE_KEY_PATH",
            root().join("tests/fixtures/github-app-test-key.TEST-ONLY.pem"),
        )
        .env("GITHUB_API_URL", gh.url())
        .env(
            "GITHUB_WEBHOOK_SECRET",
            format!("old-secret,{WEBHOOK_SECRET}"),
        )
        .env("LEVER_INGEST_TOKEN", INGEST_TOKEN)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", sh.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lever serve");
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let until = |what: &'static str| {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
    };
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            break;
        }
        until("readiness");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        work.path().join("lever.db").is_file(),
        "the default database is created in the working directory"
    );

    let doc: Value = serde_json::from_slice(
        &std::fs::read(root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
            .unwrap(),
    )
    .unwrap();
    sh.seed(doc.clone());
    let res = http
        .post(format!("{base}/events/securityhub"))
        .bearer_auth(INGEST_TOKEN)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    loop {
        let notified = sh
            .findings()
            .iter()
            .all(|f| f["Workflow"]["Status"] == "NOTIFIED");
        if gh.issues("acme/ledger").len() == 1 && notified {
            break;
        }
        until("the issue and the Security Hub update");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(assignees(&gh.issues("acme/ledger")[0]), ["carol"]);
    let (_, delivery) = gh.human_open_issue("acme/ledger", "hello", "", "carol");
    let res = delivery
        .send(&http, &format!("{base}/webhooks/github"), WEBHOOK_SECRET)
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::ACCEPTED,
        "the second configured secret verifies"
    );
    gh.assert_conformant();
    sh.assert_conformant();

    // SIGTERM: a graceful stop.
    let pid = child.id().expect("running");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_refuses_to_start_without_its_secrets() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args([
            "serve",
            "--config",
            root().join("examples/demo").to_str().unwrap(),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GITHUB_WEBHOOK_SECRET is not set"), "{err}");
}
