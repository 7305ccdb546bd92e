//! The HTTP edge under abuse (issue 9, items 8 and 10): what someone who captured a signed
//! webhook, or anyone on the network, can try against the real server. Each bypass test
//! failed before the edge was hardened.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fakes::github::WebhookDelivery;
use crate::support::app::{INGEST_TOKEN, TestApp, root};
use crate::support::bin::Served;

const LEDGER: &str = "acme/ledger";

/// The demo's RDS.2 finding opened as acme/ledger#1.
async fn ledger_opened(t: &TestApp) {
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.settle().await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1);
}

fn fresh_id(d: &WebhookDelivery) -> WebhookDelivery {
    WebhookDelivery {
        id: uuid::Uuid::new_v4().to_string(),
        ..d.clone()
    }
}

async fn group_open(t: &TestApp) -> bool {
    let g = t
        .app
        .store
        .group_by_issue(LEDGER, 1)
        .await
        .unwrap()
        .unwrap();
    g.state().open
}

/// A captured signed body sent again under a fresh `X-GitHub-Delivery` (the header is not
/// signed) is a duplicate: 200, nothing recorded, nothing done.
#[tokio::test]
async fn a_signed_body_replayed_under_a_fresh_delivery_id_changes_nothing() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    let close = t.gh.human_close(LEDGER, 1, "completed", "mallory");
    let (status, body) = t.post_webhook(&close).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    let writes = t.github_writes();
    let replay = fresh_id(&close);
    let (status, body) = t.post_webhook(&replay).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "duplicate");
    assert!(
        t.app
            .store
            .delivery(&format!("github:{}", replay.id))
            .await
            .unwrap()
            .is_none(),
        "the replay was recorded"
    );
    t.settle().await;
    assert_eq!(t.github_writes(), writes, "the replay caused GitHub writes");
}

/// `X-GitHub-Event` is not signed: an `issue_comment.deleted` body sent as `issues` would
/// read as `issues.deleted` (Lever would recreate the issue). Refused with 400.
#[tokio::test]
async fn an_issue_comment_body_under_another_event_name_is_refused() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    let mut d = t.gh.human_comment(LEDGER, 1, "looking", "mallory");
    d.payload["action"] = "deleted".into();
    d.event = "issues".into();
    let (status, body) = t.post_webhook(&d).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("issue_comment payload"), "{error}");
    t.settle().await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1, "no second issue");
    assert!(group_open(&t).await);
    // Under its own name the same body is fine.
    d.event = "issue_comment".into();
    assert_eq!(t.post_webhook(&d).await.0, StatusCode::ACCEPTED);
}

/// A delivery older (`issue.updated_at`) than the last one applied to its issue, whose change
/// GitHub no longer shows, changes nothing: a close that arrives after the reopen that undid it
/// does not close the group again.
#[tokio::test]
async fn a_late_close_undone_by_a_later_reopen_changes_nothing() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    let mut close = t.gh.human_close(LEDGER, 1, "not_planned", "mallory");
    let reopen = t.gh.human_reopen(LEDGER, 1, "carol");
    // GitHub's timestamps have whole seconds: the close came a minute before the reopen.
    let reopened_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(reopen.payload["issue"]["updated_at"].clone()).unwrap();
    close.payload["issue"]["updated_at"] = json!(reopened_at - chrono::Duration::minutes(1));
    assert_eq!(t.post_webhook(&reopen).await.0, StatusCode::ACCEPTED);
    t.settle().await;
    assert!(group_open(&t).await);
    let writes = t.github_writes();
    // The close arrives only now.
    let (status, body) = t.post_webhook(&close).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.drain().await;
    assert!(group_open(&t).await, "the stale close was applied");
    assert_eq!(
        t.github_writes(),
        writes,
        "the stale close caused GitHub writes"
    );
}

/// Found by the fault test: a close whose job was retrying while a later delivery about the
/// issue (Lever's own comment) was applied was dropped as "older than the last one applied",
/// so the approved exception never started. A stale delivery whose change GitHub still shows
/// is applied.
#[tokio::test]
async fn a_late_close_that_github_still_shows_is_applied() {
    let t = TestApp::start().await;
    ledger_opened(&t).await;
    let comment = t.gh.human_comment(LEDGER, 1, "on it", "carol");
    let applied_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(comment.payload["issue"]["updated_at"].clone()).unwrap();
    assert_eq!(t.post_webhook(&comment).await.0, StatusCode::ACCEPTED);
    t.settle().await;
    // A close from before that comment arrives now; the issue is closed on GitHub.
    let mut late = t.gh.human_close(LEDGER, 1, "completed", "carol");
    late.payload["issue"]["updated_at"] = json!(applied_at - chrono::Duration::hours(1));
    let (status, body) = t.post_webhook(&late).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    assert!(!group_open(&t).await, "the close GitHub shows was dropped");
}

/// `/readyz` says ready or not ready, nothing else: the database error (which may name a
/// host, a user, a password) goes to the log only.
#[tokio::test]
async fn readyz_tells_nothing_but_ready_or_not() {
    let t = TestApp::builder().spy().start().await;
    let res = t
        .http
        .get(format!("{}/readyz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
    *t.probe.as_ref().unwrap().ping_error.lock().unwrap() =
        Some("connection to postgres://lever:hunter2@db.internal:5432 refused".into());
    let res = t
        .http
        .get(format!("{}/readyz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = res.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"status": "not ready"})
    );
    for leak in ["hunter2", "db.internal", "postgres", "lever"] {
        assert!(!text.contains(leak), "{text}");
    }
}

/// `lever serve` with a `DATABASE_URL` whose password is wrong (or whose server is down) says
/// so without printing the password, on every line it writes.
#[test]
fn a_database_url_password_is_never_printed() {
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["serve", "--config"])
        .arg(root().join("examples/demo"))
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITHUB_APP_ID", "1")
        .env(
            "GITHUB_PRIVATE_KEY_PATH",
            root().join("tests/fixtures/github-app-test-key.TEST-ONLY.pem"),
        )
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .env("LEVER_INGEST_TOKEN", "t")
        // Nothing listens on port 1: the connection is refused at once.
        .env(
            "DATABASE_URL",
            "postgres://lever:pw-DO-NOT-PRINT@127.0.0.1:1/lever?password=pw-DO-NOT-PRINT",
        )
        .env("RUST_LOG", "debug")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run lever serve");
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("DATABASE_URL"), "{all}");
    assert!(!all.contains("pw-DO-NOT-PRINT"), "{all}");
}

/// Reads from `s` until the server closes it (bounded: the test fails rather than hang);
/// what the server sent before closing.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept a slow connection open");
    String::from_utf8_lossy(&got).into_owned()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn healthz(http: &reqwest::Client, base: &str) -> StatusCode {
    match http.get(format!("{base}/healthz")).send().await {
        Ok(r) => r.status(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Slow headers, slow bodies and idle connections against the real `lever serve`, with small
/// limits (16 connections, 2 large bodies, 1 s for headers, 2 s per request): each is closed
/// (408 or dropped), one connection too many is answered 503, the server keeps answering
/// `/healthz` to others, and its memory stays under the bound the README states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_and_others_are_served() {
    let gh = crate::fakes::github::FakeGitHub::start_with_test_app().await;
    crate::support::app::demo_github(&gh);
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let served = Served::start_with(
        &gh,
        &sh,
        work.path(),
        None,
        &[
            ("LEVER_MAX_CONNECTIONS", "16"),
            ("LEVER_MAX_LARGE_BODIES", "2"),
            ("LEVER_HEADER_TIMEOUT", "1"),
            ("LEVER_REQUEST_TIMEOUT", "2"),
        ],
    )
    .await;
    let pid = served.child.id().unwrap();
    let addr = served.base.trim_start_matches("http://").to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let baseline = rss_kib(pid);

    // 4 idle connections, 4 sending headers a byte at a time, 3 large slow bodies (2 slots).
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut slow_headers = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow_headers.push(s);
    }
    let mut slow_bodies = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 20000000\r\n\r\n{\"a\":",
        )
        .await
        .unwrap();
        slow_bodies.push(s);
    }
    // Others are still served meanwhile (5 of 16 connections are free).
    assert_eq!(healthz(&http, &served.base).await, StatusCode::OK);
    let trickle = tokio::spawn({
        let mut streams = std::mem::take(&mut slow_headers);
        async move {
            // A byte of header every 200 ms, until the server closes each.
            for _ in 0..100 {
                let mut open = 0;
                for s in &mut streams {
                    if s.write_all(b"X").await.is_ok() {
                        open += 1;
                    }
                }
                if open == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            streams
        }
    });
    let mut answers = Vec::new();
    for s in &mut slow_bodies {
        answers.push(until_closed(s).await);
    }
    let refused = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503"))
        .count();
    let timed_out = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 408"))
        .count();
    assert_eq!((refused, timed_out), (1, 2), "{answers:?}");
    for s in &mut idle {
        until_closed(s).await;
    }
    for mut s in trickle.await.unwrap() {
        let answer = until_closed(&mut s).await;
        assert!(
            !answer.contains(" 200 "),
            "a slow header was served: {answer}"
        );
    }

    // One connection too many: 30 idle connections for 16 places.
    let mut flood = Vec::new();
    for _ in 0..30 {
        flood.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut over = 0;
    for s in &mut flood {
        if until_closed(s).await.starts_with("HTTP/1.1 503") {
            over += 1;
        }
    }
    assert!(over >= 14, "{over} connections answered 503");
    // Once the idle ones are cut off, others are served again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while healthz(&http, &served.base).await != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The bound of the README for these limits: 16 connections x 192 KiB + 2 large bodies x
    // 64 MiB above what the process used before.
    let bound = 16 * 192 + 2 * 64 * 1024;
    let used = rss_kib(pid);
    assert!(
        used < baseline + bound,
        "RSS {used} KiB, {baseline} KiB before, bound {bound} KiB"
    );
    served.terminate().await;
}

/// `LEVER_INGEST_TOKEN` takes several tokens (rotation without downtime), trimmed: each one is
/// accepted, anything else is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_ingest_token_is_accepted() {
    let gh = crate::fakes::github::FakeGitHub::start_with_test_app().await;
    crate::support::app::demo_github(&gh);
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let tokens = format!(" old-ingest-token ,{INGEST_TOKEN}\n");
    let served = Served::start_with(
        &gh,
        &sh,
        work.path(),
        None,
        &[("LEVER_INGEST_TOKEN", tokens.as_str())],
    )
    .await;
    let http = reqwest::Client::new();
    let post = |token: &'static str| {
        http.post(format!("{}/events/securityhub", served.base))
            .bearer_auth(token)
            .json(&json!({"Findings": []}))
            .send()
    };
    assert_eq!(
        post("old-ingest-token").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(INGEST_TOKEN).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let wrong = post("old-ingest-token,test-ingest-token").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    served.terminate().await;
}
