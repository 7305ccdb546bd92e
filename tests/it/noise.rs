//! The noise cap (issue 10, item 8): at most N new issues per product (the repository they
//! open in) per hour; beyond it, one summary issue in the security repository lists what is
//! held back, and the rest opens as the cap allows. Time is the test's manual clock.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use lever::clock::Clock;
use lever::store::JobState;
use lever::worker::{JobReport, Worker};

use crate::support::app::{NOW, TestApp, demo_config_with, root};

/// The cap of the noisy product in these tests.
const CAP: usize = 3;
const NOISY: &str = "acme/payments";
const QUIET: &str = "acme/ledger";
const SECURITY: &str = "acme/security";

/// A Security Hub control finding of the payments production account on EC2 instance
/// `instance`: routed to acme/payments, or to acme/ledger when tagged `team=ledger`.
fn finding(instance: &str, severity: &str, ledger: bool) -> Value {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(
            root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut f = doc["Findings"][0].clone();
    f["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:111111111111:security-control/EC2.8/finding/{instance}"
    ));
    f["Severity"] = json!({"Label": severity, "Original": severity});
    f["Title"] = json!(format!("IMDSv2 on {instance}"));
    f["Resources"][0]["Id"] = json!(format!(
        "arn:aws:ec2:us-east-1:111111111111:instance/{instance}"
    ));
    f["Resources"][0]["Tags"] = if ledger {
        json!({"team": "ledger"})
    } else {
        json!({})
    };
    f
}

async fn post(t: &TestApp, findings: Vec<Value>) {
    let (status, body) = t.post_event(&Value::Array(findings)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The finding issues of `repo` (not the noise summaries), by title.
fn titles(t: &TestApp, repo: &str) -> Vec<String> {
    t.gh.issues(repo)
        .iter()
        .filter(|i| !is_summary(i))
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

/// The instances whose group has its issue in `repo`, as the store records it.
async fn opened(t: &TestApp, repo: &str) -> Vec<String> {
    let mut out: Vec<String> = t
        .app
        .store
        .list_groups(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.repo == repo && g.issue_number.is_some())
        .filter_map(|g| {
            let (_, rest) = g.group_key.as_str().split_once("instance/")?;
            Some(rest.split('|').next()?.to_string())
        })
        .collect();
    out.sort();
    out
}

fn is_summary(issue: &Value) -> bool {
    issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["name"] == "lever-noise-cap")
}

fn summaries(t: &TestApp) -> Vec<Value> {
    t.gh.issues(SECURITY)
        .into_iter()
        .filter(is_summary)
        .collect()
}

/// Two workers side by side until nothing is due (the cap must hold across workers).
async fn drain_two(t: &TestApp, second: &Worker) -> Vec<JobReport> {
    let (a, b) = tokio::join!(t.worker.run_until_idle(), second.run_until_idle());
    let mut all = a.unwrap();
    all.extend(b.unwrap());
    all
}

/// Moves the clock from due job to due job up to `until` (as time passes, never jumping over
/// a job), running what is due with both workers at each step.
async fn advance_to(t: &TestApp, until: DateTime<Utc>, second: &Worker) -> Vec<JobReport> {
    let mut reports = drain_two(t, second).await;
    for _ in 0..1_000 {
        match t.app.store.next_job_at().await.unwrap() {
            Some(next) if next <= until => {
                if next > t.clock.now() {
                    t.clock.set(next);
                }
                reports.extend(drain_two(t, second).await);
            }
            _ => {
                t.clock.set(until);
                reports.extend(drain_two(t, second).await);
                return reports;
            }
        }
    }
    panic!("jobs keep coming");
}

async fn burst_over_two_products(t: TestApp) {
    let second = Worker::new(t.app.clone(), "test-worker-2");
    let start = crate::support::app::t(NOW);
    // The noisy product: 4 HIGH findings first (they are queued first and take the 3 slots),
    // then 3 CRITICAL ones. The quiet product: 2 findings.
    let high: Vec<String> = (1..=4).map(|i| format!("i-high-{i}")).collect();
    let critical: Vec<String> = (1..=3).map(|i| format!("i-crit-{i}")).collect();
    post(&t, high.iter().map(|i| finding(i, "HIGH", false)).collect()).await;
    post(
        &t,
        critical
            .iter()
            .map(|i| finding(i, "CRITICAL", false))
            .collect(),
    )
    .await;
    post(
        &t,
        vec![
            finding("i-ledger-1", "HIGH", true),
            finding("i-ledger-2", "CRITICAL", true),
        ],
    )
    .await;
    let reports = drain_two(&t, &second).await;
    assert!(
        reports.iter().all(|r| r.result != "dead"),
        "nothing is parked for the cap: {reports:#?}"
    );

    // Exactly CAP issues of the noisy product in the hour; the quiet product is not held.
    let noisy = opened(&t, NOISY).await;
    assert_eq!(noisy.len(), CAP, "{noisy:?}");
    assert_eq!(titles(&t, NOISY).len(), CAP);
    assert_eq!(
        titles(&t, QUIET).len(),
        2,
        "the quiet product is not held back"
    );
    // One summary in the security repository, listing the 4 held back.
    let s = summaries(&t);
    assert_eq!(s.len(), 1, "{s:#?}");
    let body = s[0]["body"].as_str().unwrap();
    assert!(
        body.contains("<!-- lever:noise-summary=acme/payments -->"),
        "{body}"
    );
    let held: Vec<&String> = high
        .iter()
        .chain(&critical)
        .filter(|i| !noisy.contains(i))
        .collect();
    assert_eq!(held.len(), 4);
    for i in &held {
        assert!(
            body.contains(&format!("IMDSv2 on {i}")),
            "{i} not listed: {body}"
        );
    }
    assert!(body.contains("at most 3 may open per hour"), "{body}");
    assert!(
        body.contains("the next at about 2026-11-23T13:00:00+00:00"),
        "{body}"
    );
    assert_eq!(s[0]["state"], "open");
    // The held jobs wait (pending, attempts given back) and the backlog says why.
    let pending = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
    let waiting: Vec<_> = pending
        .iter()
        .filter(|j| j.job.kind() == "open-issue")
        .collect();
    let shown: Vec<_> = pending
        .iter()
        .map(|j| {
            (
                j.job.to_string(),
                j.run_at,
                j.attempts,
                j.last_error.clone(),
            )
        })
        .collect();
    assert_eq!(waiting.len(), 4, "{shown:#?}");
    for j in &waiting {
        assert!(j.run_at >= start + Duration::hours(1), "{j:?}");
        assert!(
            j.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("held by the noise cap")),
            "{j:?}"
        );
        assert_eq!(j.attempts, 0, "waiting for the cap is no attempt: {j:?}");
    }
    let budget = t.app.github.pacer().budget();
    let backlog = lever::worker::pacing::backlog(t.app.store.as_ref(), &budget, t.app.now())
        .await
        .unwrap();
    assert_eq!(backlog.held_by_noise_cap, 4, "{backlog:#?}");
    assert!(backlog.issues.iter().all(|i| i.held_by_noise_cap));
    assert!(backlog.summary().contains("4 held by the noise cap"));

    // More of the noisy product within the hour: held too, the same summary lists it.
    post(&t, vec![finding("i-late", "HIGH", false)]).await;
    advance_to(&t, start + Duration::minutes(30), &second).await;
    assert_eq!(titles(&t, NOISY).len(), CAP);
    let s = summaries(&t);
    assert_eq!(s.len(), 1, "updated, not duplicated: {s:#?}");
    let body = s[0]["body"].as_str().unwrap();
    assert!(body.contains("IMDSv2 on i-late"), "{body}");
    assert!(body.contains("5 issue(s) are waiting"), "{body}");

    // The hour has room again: 3 more open, the CRITICAL ones first (the most urgent).
    advance_to(
        &t,
        start + Duration::hours(1) + Duration::minutes(3),
        &second,
    )
    .await;
    let noisy = opened(&t, NOISY).await;
    assert_eq!(titles(&t, NOISY).len(), 2 * CAP, "{noisy:?}");
    for i in &critical {
        assert!(
            noisy.contains(i),
            "CRITICAL {i} opens before the HIGH ones: {noisy:?}"
        );
    }
    let s = summaries(&t);
    assert_eq!(s.len(), 1);
    let body = s[0]["body"].as_str().unwrap();
    assert!(body.contains("2 issue(s) are waiting"), "{body}");
    assert_eq!(s[0]["state"], "open");

    // The next hour: the rest opens, and the summary closes with its final note.
    advance_to(
        &t,
        start + Duration::hours(2) + Duration::minutes(6),
        &second,
    )
    .await;
    assert_eq!(titles(&t, NOISY).len(), 8, "every finding has its issue");
    assert_eq!(titles(&t, QUIET).len(), 2);
    let s = summaries(&t);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0]["state"], "closed");
    let body = s[0]["body"].as_str().unwrap();
    assert!(body.contains("All 5 of them have opened"), "{body}");
    let pending = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
    assert!(
        !pending
            .iter()
            .any(|j| j.job.kind() == "open-issue" || j.job.kind() == "noise-summary"),
        "{pending:#?}"
    );
    // Exactly one issue per group: nothing doubled.
    let mut all = opened(&t, NOISY).await;
    all.dedup();
    assert_eq!(all.len(), 8);
    t.gh.assert_conformant();
}

fn config() -> tempfile::TempDir {
    demo_config_with(&format!(
        "[noise]\nmax_new_issues_per_product_per_hour = {CAP}\n\n[noise.products]\n\"acme/platform\" = 0\n"
    ))
}

#[tokio::test]
async fn a_noisy_product_opens_at_most_its_cap_per_hour_on_sqlite() {
    let dir = config();
    let app = TestApp::builder().config(dir.path()).start().await;
    burst_over_two_products(app).await;
}

#[tokio::test]
async fn a_noisy_product_opens_at_most_its_cap_per_hour_on_postgres() {
    let Some(url) =
        crate::support::pg::or_skip("a_noisy_product_opens_at_most_its_cap_per_hour_on_postgres")
            .await
    else {
        return;
    };
    let dir = config();
    let app = TestApp::builder()
        .config(dir.path())
        .postgres(url)
        .start()
        .await;
    burst_over_two_products(app).await;
}

/// The summary's creation succeeds at GitHub but its answer is lost (502 after the effect):
/// the retry finds the summary by its hidden marker and adopts it; there is never a second
/// summary, and it still closes once everything held back has opened.
#[tokio::test]
async fn a_lost_answer_when_opening_the_summary_is_adopted_not_duplicated() {
    let dir = demo_config_with("[noise]\nmax_new_issues_per_product_per_hour = 1\n");
    let t = TestApp::builder().config(dir.path()).start().await;
    let second = Worker::new(t.app.clone(), "test-worker-2");
    let start = crate::support::app::t(NOW);
    t.gh.fail_after_effect("POST", "/repos/acme/security/issues", 1);
    post(
        &t,
        (1..=3)
            .map(|i| finding(&format!("i-{i}"), "HIGH", false))
            .collect(),
    )
    .await;
    let reports = drain_two(&t, &second).await;
    let failed: Vec<&JobReport> = reports
        .iter()
        .filter(|r| r.kind == "noise-summary" && r.result == "retry")
        .collect();
    assert_eq!(failed.len(), 1, "the lost answer is retried: {reports:#?}");
    assert_eq!(summaries(&t).len(), 1, "GitHub made it once");
    assert_eq!(opened(&t, NOISY).await.len(), 1);

    // The retry (after its backoff) adopts the summary and lists both held issues.
    advance_to(&t, start + Duration::minutes(5), &second).await;
    let s = summaries(&t);
    assert_eq!(s.len(), 1, "adopted, not duplicated: {s:#?}");
    let body = s[0]["body"].as_str().unwrap();
    assert!(body.contains("2 issue(s) are waiting"), "{body}");

    // Two hours later everything has opened and the one summary is closed.
    advance_to(
        &t,
        start + Duration::hours(2) + Duration::minutes(5),
        &second,
    )
    .await;
    assert_eq!(opened(&t, NOISY).await.len(), 3);
    let s = summaries(&t);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["state"], "closed");
    t.gh.assert_conformant();
}
