//! `GET /metrics` (issue 16, part 2): off by default, behind its own token or on its own
//! address; counters that move with a scripted story; the README's table is what a scrape
//! shows; and the scrape passes `promtool check metrics` (mandatory with
//! `LEVER_REQUIRE_PROMTOOL=1`, as `.ci/run` sets it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::app::{INGEST_TOKEN, TestApp, root};

const TOKEN: &str = "test-metrics-token";
const LEDGER: &str = "acme/ledger";
const LEDGER_FINDING: &str = "examples/demo/findings/03-payments-prod-ledger-rds.2.json";

async fn get(t: &TestApp, url: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = t.http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (res.status(), content_type, res.text().await.unwrap())
}

/// A scrape of the main listener with the token, as a map from series to value.
async fn scrape(t: &TestApp) -> (String, BTreeMap<String, f64>) {
    let (status, _, text) = get(t, &format!("{}/metrics", t.url), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let samples = samples(&text);
    (text, samples)
}

/// `name{labels}` → value, for every sample line.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample is `series value`");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// `# TYPE name type` lines: name → type.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, ty) = l.split_once(' ').unwrap();
            (name.to_string(), ty.to_string())
        })
        .collect()
}

fn value(s: &BTreeMap<String, f64>, series: &str) -> f64 {
    *s.get(series)
        .unwrap_or_else(|| panic!("no series {series} in {:#?}", s.keys()))
}

/// The sum of every series of `name` whose labels contain all of `with`.
fn sum(s: &BTreeMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            (k.as_str() == name || k.starts_with(&format!("{name}{{")))
                && with.iter().all(|w| k.contains(w))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let t = TestApp::start().await;
    for token in [None, Some(TOKEN), Some(INGEST_TOKEN)] {
        let (status, _, body) = get(&t, &format!("{}/metrics", t.url), token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token:?}: {body}");
        assert!(!body.contains("lever_"), "{body}");
    }
}

#[tokio::test]
async fn metrics_need_their_own_token_on_the_main_listener() {
    let t = TestApp::builder().metrics_token(TOKEN).start().await;
    let url = format!("{}/metrics", t.url);
    for token in [
        None,
        Some("wrong"),
        Some(INGEST_TOKEN),
        Some("test-metrics-token2"),
    ] {
        let (status, _, body) = get(&t, &url, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert!(!body.contains("lever_"), "{body}");
    }
    let (status, content_type, body) = get(&t, &url, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(content_type.contains("version=0.0.4"), "{content_type}");
    assert!(
        body.contains("# TYPE lever_issues_opened_total counter"),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_on_a_separate_address_need_no_token_and_serve_nothing_else() {
    let t = TestApp::builder().metrics_listener().start().await;
    let addr = t.metrics_url.clone().unwrap();
    let (status, _, body) = get(&t, &format!("{addr}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("# TYPE lever_queue_jobs gauge"), "{body}");
    for path in ["/healthz", "/webhooks/github", "/events/securityhub"] {
        let (status, _, _) = get(&t, &format!("{addr}{path}"), None).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{path} on the metrics address"
        );
    }
    // Without a token, the main listener still does not serve it.
    let (status, _, _) = get(&t, &format!("{}/metrics", t.url), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_move_with_a_story() {
    let t = TestApp::builder().metrics_token(TOKEN).start().await;
    let (_, before) = scrape(&t).await;
    for (series, want) in [
        ("lever_issues_opened_total", 0.0),
        (
            r#"lever_findings_received_total{disposition="open-issue"}"#,
            0.0,
        ),
        (
            r#"lever_findings_skipped_total{reason="below-threshold"}"#,
            0.0,
        ),
        (
            r#"lever_queue_jobs{kind="open-issue",state="pending"}"#,
            0.0,
        ),
        ("lever_queue_oldest_due_age_seconds", 0.0),
    ] {
        assert_eq!(value(&before, series), want, "{series}");
    }

    // A finding arrives: recorded, an open-issue job waits (due now).
    let mut finding: Value =
        serde_json::from_slice(&std::fs::read(root().join(LEDGER_FINDING)).unwrap()).unwrap();
    let (status, _) = t.post_event(&finding).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, s) = scrape(&t).await;
    // The SQLite store counts its writes and the commits they shared (each write commits once
    // at most; a lone write commits its own).
    let (writes, commits) = (
        value(&s, "lever_store_writes_total"),
        value(&s, "lever_store_commits_total"),
    );
    assert!(
        writes >= value(&before, "lever_store_writes_total") + 1.0,
        "{writes}"
    );
    assert!((1.0..=writes).contains(&commits), "{commits} of {writes}");
    assert_eq!(
        value(
            &s,
            r#"lever_findings_received_total{disposition="open-issue"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&s, r#"lever_queue_jobs{kind="open-issue",state="pending"}"#),
        1.0
    );
    assert_eq!(
        value(&s, r#"lever_queue_jobs{kind="open-issue",state="due"}"#),
        1.0
    );
    // The clock stands still in the tests: due now, waited 0 s.
    assert_eq!(value(&s, "lever_queue_oldest_due_age_seconds"), 0.0);
    t.clock.advance(chrono::Duration::seconds(90));
    let (_, s) = scrape(&t).await;
    assert_eq!(value(&s, "lever_queue_oldest_due_age_seconds"), 90.0);

    // The issue opens (the webhooks of Lever's own calls are delivered too).
    t.settle().await;
    assert_eq!(t.gh.issues(LEDGER).len(), 1);
    let (_, s) = scrape(&t).await;
    assert_eq!(value(&s, "lever_issues_opened_total"), 1.0);
    assert_eq!(
        value(&s, r#"lever_queue_jobs{kind="open-issue",state="pending"}"#),
        0.0
    );
    assert_eq!(value(&s, "lever_queue_oldest_due_age_seconds"), 0.0);
    assert_eq!(
        value(
            &s,
            r#"lever_jobs_finished_total{kind="open-issue",result="done"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&s, r#"lever_job_duration_seconds_count{kind="open-issue"}"#),
        1.0
    );
    assert!(
        sum(
            &s,
            "lever_github_calls_total",
            &[r#"call="write""#, r#"outcome="ok""#]
        ) >= 1.0
    );
    assert_eq!(
        sum(&s, "lever_github_calls_total", &[r#"outcome="paced""#]),
        0.0
    );
    assert!(
        value(
            &s,
            r#"lever_securityhub_calls_total{operation="BatchUpdateFindings",outcome="ok"}"#
        ) >= 1.0,
        "the findings were marked NOTIFIED"
    );
    assert_eq!(
        value(
            &s,
            r#"lever_http_requests_total{endpoint="intake",status="2xx"}"#
        ),
        1.0
    );
    let webhooks = value(
        &s,
        r#"lever_http_requests_total{endpoint="webhook",status="2xx"}"#,
    );
    assert!(webhooks >= 1.0, "Lever's own webhooks were delivered");
    assert_eq!(
        value(
            &s,
            r#"lever_http_request_duration_seconds_count{endpoint="webhook"}"#
        ),
        webhooks
    );

    // Fixed: the issue closes. It fails again: the issue reopens.
    finding["Compliance"]["Status"] = "PASSED".into();
    finding["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    finding["Workflow"]["Status"] = "RESOLVED".into();
    t.sh.seed(finding.clone());
    t.post_event(&finding).await;
    t.settle().await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "closed");
    finding["Compliance"]["Status"] = "FAILED".into();
    finding["UpdatedAt"] = "2026-11-25T09:00:00.000Z".into();
    finding["Workflow"]["Status"] = "NEW".into();
    t.sh.seed(finding.clone());
    t.post_event(&finding).await;
    t.settle().await;
    assert_eq!(t.gh.issue(LEDGER, 1).unwrap()["state"], "open");
    let (_, s) = scrape(&t).await;
    assert_eq!(value(&s, "lever_issues_closed_total"), 1.0);
    assert_eq!(value(&s, "lever_issues_reopened_total"), 1.0);
    assert_eq!(
        value(&s, "lever_issues_opened_total"),
        1.0,
        "the same issue"
    );
    assert_eq!(
        value(
            &s,
            r#"lever_findings_received_total{disposition="tracked"}"#
        ),
        2.0
    );

    // A person closes it: counted like Lever's own close.
    t.deliver(vec![t.gh.human_close(LEDGER, 1, "not_planned", "carol")])
        .await;
    let (_, s) = scrape(&t).await;
    assert_eq!(value(&s, "lever_issues_closed_total"), 2.0);

    // GitHub refuses an issue for good: the job is parked, and the queue shows it.
    t.gh.fail_next("POST", "/repos/acme/payments/issues", 403, 1);
    let (status, _) = t
        .ingest_file(
            &root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "open-issue" && r.result == "dead"),
        "{reports:#?}"
    );
    let (_, s) = scrape(&t).await;
    assert_eq!(
        value(&s, r#"lever_jobs_parked_total{kind="open-issue"}"#),
        1.0
    );
    assert_eq!(
        value(&s, r#"lever_queue_jobs{kind="open-issue",state="parked"}"#),
        1.0
    );
    assert_eq!(
        value(
            &s,
            r#"lever_github_calls_total{call="write",outcome="forbidden"}"#
        ),
        1.0
    );

    // Findings the policy skips are counted by reason, and every skip has one.
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/05-payments-prod-skips.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, s) = scrape(&t).await;
    let skipped = value(
        &s,
        r#"lever_findings_received_total{disposition="skipped"}"#,
    );
    assert!(skipped >= 1.0, "the demo's skips were skipped");
    assert_eq!(sum(&s, "lever_findings_skipped_total", &[]), skipped);

    // A request with a wrong ingest token: a 4xx for the intake.
    let res = t
        .http
        .post(format!("{}/events/securityhub", t.url))
        .bearer_auth("wrong")
        .json(&finding)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (text, s) = scrape(&t).await;
    assert_eq!(
        value(
            &s,
            r#"lever_http_requests_total{endpoint="intake",status="4xx"}"#
        ),
        1.0
    );
    promtool_check(&text);
}

/// The README's "Metrics" table, as (name, type) pairs.
fn readme_metrics() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README has a `## Metrics` section");
    let section = section.split("\n## ").next().unwrap();
    let rows: BTreeMap<String, String> = section
        .lines()
        .filter(|l| l.starts_with("| `lever_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect();
    assert!(rows.len() >= 10, "the README's metrics table: {rows:#?}");
    rows
}

#[tokio::test]
async fn metrics_the_readme_table_is_what_a_scrape_shows() {
    let t = TestApp::builder().metrics_token(TOKEN).start().await;
    let (text, _) = scrape(&t).await;
    let scraped = types(&text);
    let documented = readme_metrics();
    let only_scraped: BTreeSet<_> = scraped
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let only_documented: BTreeSet<_> = documented
        .keys()
        .filter(|k| !scraped.contains_key(*k))
        .collect();
    assert!(
        only_scraped.is_empty() && only_documented.is_empty(),
        "scraped but not in the README: {only_scraped:?}; in the README but not scraped: {only_documented:?}"
    );
    for (name, ty) in &documented {
        assert_eq!(&scraped[name], ty, "{name}: the README says {ty}");
    }
    // Every labelled metric has its series from the start (nothing appears only later).
    for name in scraped.keys() {
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name.as_str())),
            "{name} has no series yet"
        );
    }
    promtool_check(&text);
}

/// `promtool check metrics` on `text`, when `promtool` is installed; a loud skip otherwise,
/// a failure with `LEVER_REQUIRE_PROMTOOL=1`.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("LEVER_REQUIRE_PROMTOOL").as_deref() == Ok("1") {
                panic!(
                    "LEVER_REQUIRE_PROMTOOL=1 but promtool cannot run ({e}): apt-get install prometheus"
                );
            }
            eprintln!(
                "SKIPPED: promtool check metrics (promtool cannot run: {e}; apt-get install prometheus, or set LEVER_REQUIRE_PROMTOOL=1 to fail)"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}",
        out.status
    );
}

/// The real `lever serve`, configured through its environment: the token on the main listener,
/// the metrics address beside it, and a clean stop (SIGTERM) with both listening.
#[tokio::test]
async fn metrics_lever_serve_reads_its_environment() {
    use crate::fakes::github::FakeGitHub;
    use crate::fakes::securityhub::FakeSecurityHub;
    use crate::support::bin::Served;
    let gh = FakeGitHub::start_with_test_app().await;
    crate::support::app::demo_github(&gh);
    let sh = FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let served = Served::start_with(
        &gh,
        &sh,
        work.path(),
        None,
        &[
            ("LEVER_METRICS_TOKEN", TOKEN),
            ("LEVER_METRICS_ADDR", &addr),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let main = format!("{}/metrics", served.base);
    let r = http.get(&main).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http.get(&main).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("lever_queue_jobs"));
    let r = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#"lever_queue_jobs{kind="prune",state="pending"} 1"#),
        "the periodic prune is queued: {text}"
    );
    promtool_check(&text);
    assert!(served.terminate().await.success());
}

/// An address that does not parse stops `lever serve` with the usage code, naming the variable.
#[test]
fn metrics_a_bad_metrics_address_is_a_usage_error_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["serve", "--config", "examples/demo"])
        .current_dir(root())
        .env("LEVER_METRICS_ADDR", "metrics.internal")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LEVER_METRICS_ADDR=\"metrics.internal\""),
        "{err}"
    );
}

/// Calls Lever's content budget holds back are counted with what they were told to wait.
#[tokio::test]
async fn metrics_count_the_github_calls_the_content_budget_holds_back() {
    let t = TestApp::builder()
        .metrics_token(TOKEN)
        .content_budget(1, 60)
        .start()
        .await;
    // Several issues to open at once: the budget lets one write through per minute.
    let (status, _) = t
        .ingest_file(
            &root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = t.ingest_file(&root().join(LEDGER_FINDING)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reports = t.drain().await;
    assert!(
        reports.iter().any(|r| r.result == "postponed"),
        "{reports:#?}"
    );
    let (_, s) = scrape(&t).await;
    let waits = value(&s, r#"lever_github_rate_limit_waits_total{gate="content"}"#);
    assert!(waits >= 1.0, "{waits}");
    assert_eq!(
        sum(&s, "lever_github_calls_total", &[r#"outcome="paced""#]),
        sum(&s, "lever_github_rate_limit_waits_total", &[])
    );
    // Each postponed job says until when its call was held: the waits counted are those.
    let now = t.app.now();
    let told: Vec<f64> = reports
        .iter()
        .filter(|r| r.result == "postponed")
        .map(|r| {
            let error = r.error.as_deref().unwrap();
            let until = error.rsplit_once(" until ").expect(error).1;
            let until = chrono::DateTime::parse_from_rfc3339(until.trim()).expect(error);
            (until.with_timezone(&chrono::Utc) - now).as_seconds_f64()
        })
        .collect();
    assert_eq!(told.len() as f64, waits, "{reports:#?}");
    let seconds = value(
        &s,
        r#"lever_github_rate_limit_wait_seconds_total{gate="content"}"#,
    );
    assert!(seconds > 0.0);
    assert!(
        (seconds - told.iter().sum::<f64>()).abs() < 1e-3,
        "{seconds} s counted, {told:?} told"
    );
    assert!(
        sum(&s, "lever_jobs_finished_total", &[r#"result="postponed""#]) >= 1.0,
        "{s:#?}"
    );
}
