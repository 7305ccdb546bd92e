//! Pacing within GitHub's and Security Hub's limits, against fakes that enforce them.
//!
//! Time is the test's manual clock: the fake GitHub enforces its secondary limits in that time,
//! Lever paces in it, and the tests move it to the next due job instead of sleeping. Nothing
//! here asserts how long anything took.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lever::clock::Clock;
use lever::domain::WorkflowStatus;
use lever::securityhub::{FindingRef, ManualTimer, Pacer, RetryPolicy, SecurityHub, Sleeper};
use lever::store::{ChangeSet, JobRecord, JobState};
use lever::worker::{JobReport, Worker};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::github::{FaultKind, RecordedRequest, SecondaryLimits, TokenKind};
use crate::fakes::securityhub::FakeSecurityHub;
use crate::support::app::{INSTALLATION, TestApp, demo_config_with, root};

// ---- helpers --------------------------------------------------------------------------------

/// The demo configuration without Security Hub write-back (the tests here are about GitHub).
fn config() -> tempfile::TempDir {
    let dir = demo_config_with("");
    let path = dir.path().join("lever.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        toml.replacen("[securityhub]\n", "[securityhub]\nwriteback = false\n", 1),
    )
    .unwrap();
    dir
}

async fn start(dir: &tempfile::TempDir, per_minute: u32, per_hour: u32) -> TestApp {
    TestApp::builder()
        .config(dir.path())
        .content_budget(per_minute, per_hour)
        .start()
        .await
}

/// The fake GitHub enforces these limits from now on, in the test's time.
fn enforce(t: &TestApp, per_minute: u32, per_hour: u32) {
    let clock = t.clock.clone();
    t.gh.enforce_secondary_limits(SecondaryLimits::new(per_minute, per_hour), move || {
        clock.now()
    });
}

/// The label vocabulary is known to exist in every demo repository (no `ensure-labels` job).
async fn labels_exist(t: &TestApp) {
    let kv = [
        "acme/payments",
        "acme/ledger",
        "acme/platform",
        "acme/security",
    ]
    .iter()
    .map(|r| (format!("labels:{r}"), "1".to_string()))
    .collect();
    t.app
        .store
        .apply(
            ChangeSet {
                kv,
                ..ChangeSet::default()
            },
            t.app.now(),
        )
        .await
        .unwrap();
}

/// A Security Hub control finding of account `account` on EC2 instance `instance` (in Auto
/// Scaling group `asg`, when given: one issue per group), shaped like the demo's.
fn finding(
    account: &str,
    instance: &str,
    severity: &str,
    asg: Option<&str>,
    passed: bool,
) -> Value {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(
            root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut f = doc["Findings"][0].clone();
    f["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:{account}:security-control/EC2.8/finding/{instance}"
    ));
    f["AwsAccountId"] = json!(account);
    f["Severity"] = json!({"Label": severity, "Original": severity});
    f["Title"] = json!(format!("IMDSv2 on {instance}"));
    f["Resources"][0]["Id"] = json!(format!(
        "arn:aws:ec2:us-east-1:{account}:instance/{instance}"
    ));
    f["Resources"][0]["Tags"] = match asg {
        Some(g) => json!({"aws:autoscaling:groupName": g}),
        None => json!({}),
    };
    if passed {
        f["Compliance"]["Status"] = json!("PASSED");
        f["UpdatedAt"] = json!("2026-11-21T08:15:00.000Z");
    }
    f
}

async fn post(t: &TestApp, findings: Vec<Value>) {
    let (status, body) = t.post_event(&Value::Array(findings)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Runs `workers` side by side until nothing is due, then moves the clock to the next due job
/// (or GitHub permit a queued job waits for), until the next one is after `until`. Each worker's reports.
async fn run_until(t: &TestApp, workers: &[Worker], until: DateTime<Utc>) -> Vec<Vec<JobReport>> {
    let mut reports = vec![Vec::new(); workers.len()];
    for round in 0.. {
        // Side by side, each round another worker first.
        let order: Vec<usize> = (0..workers.len())
            .map(|i| (i + round) % workers.len())
            .collect();
        let runs =
            futures::future::join_all(order.iter().map(|&i| workers[i].run_until_idle())).await;
        for (&i, r) in order.iter().zip(runs) {
            reports[i].extend(r.expect("store reachable"));
        }
        // The next due job, or the next permit a replica's queued job waits for.
        let mut next = None;
        for w in workers {
            next = next.into_iter().chain(w.next_due().await.unwrap()).min();
        }
        match next {
            Some(next) if next <= until => {
                if next > t.clock.now() {
                    t.clock.set(next);
                }
            }
            _ => break,
        }
    }
    reports
}

/// Requests made with an installation token that write (the content-creating kind).
fn writes(reqs: &[RecordedRequest]) -> Vec<RecordedRequest> {
    reqs.iter()
        .filter(|r| r.method != "GET" && matches!(r.token, TokenKind::Installation { .. }))
        .cloned()
        .collect()
}

// ---- GitHub ---------------------------------------------------------------------------------

/// A burst of new groups drained by two workers side by side: the fake GitHub, enforcing the
/// secondary limits, refuses nothing, while Lever uses the budget (at least 95 % of the hour's
/// in the first hour) and opens every issue exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_drain_a_burst_within_the_secondary_limits() {
    const PER_MINUTE: u32 = 10;
    const PER_HOUR: u32 = 40;
    const GROUPS: usize = 60;
    let dir = config();
    let t = start(&dir, PER_MINUTE, PER_HOUR).await;
    enforce(&t, PER_MINUTE, PER_HOUR);
    let start_at = t.clock.now();
    // Sixty new groups over two repositories (account 111111111111's own, and the ledger
    // team's), in production, HIGH.
    let burst: Vec<Value> = (0..GROUPS)
        .map(|i| {
            let mut f = finding(
                "111111111111",
                &format!("i-burst{i:04}"),
                "HIGH",
                None,
                false,
            );
            if i % 2 == 1 {
                f["Resources"][0]["Tags"] = json!({"team": "ledger"});
            }
            f
        })
        .collect();
    post(&t, burst).await;

    let second = Worker::new(t.app.clone(), "test-worker-2");
    let workers = [t.worker.clone(), second];
    let reports = run_until(&t, &workers, start_at + TimeDelta::hours(4)).await;

    assert_eq!(
        t.gh.breaches(),
        vec![],
        "no request over the secondary limits"
    );
    let issues = t.gh.issues("acme/payments").len() + t.gh.issues("acme/ledger").len();
    assert_eq!(issues, GROUPS, "every group has its issue");
    assert_eq!(
        t.gh.count("POST", "/repos/*/*/issues"),
        GROUPS,
        "each created once: a postponed job never called"
    );
    // The budget is used: the first hour holds at least 95 % of what the hour allows.
    let accepted = t.gh.content_requests(INSTALLATION);
    let first_hour = accepted
        .iter()
        .filter(|at| **at < start_at + TimeDelta::hours(1))
        .count();
    assert!(
        first_hour * 100 >= PER_HOUR as usize * 95 && first_hour <= PER_HOUR as usize,
        "{first_hour} writes in the first hour, budget {PER_HOUR}"
    );
    assert!(
        accepted.len() > GROUPS,
        "the labels were written under the same budget"
    );
    // Both workers opened issues, and waiting never cost a job an attempt.
    for (worker, reports) in reports.iter().enumerate() {
        assert!(
            reports.iter().any(|r| r.kind == "open-issue"),
            "worker {worker} took part"
        );
        assert!(
            reports
                .iter()
                .all(|r| r.result != "dead" && r.result != "retry"),
            "{reports:#?}"
        );
    }
    assert!(reports.iter().flatten().any(|r| r.result == "postponed"));
    let dead = t.app.store.jobs(Some(JobState::Dead)).await.unwrap();
    assert_eq!(dead, vec![]);
    t.gh.assert_conformant();
}

/// Over the whole drain, not only its first hour, every permit of the budget is used and goes
/// to the most urgent waiting job, whatever each job writes: two workers, three classes of new
/// groups posted least urgent first, and two repositories whose label vocabulary is missing
/// (a job that writes many times, after the issues). The last write comes within 5 % of when
/// the budget's own schedule allows it, and after the first issue (which took the burst before
/// the others arrived in the queue) no issue opens while a more urgent one waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_drain_uses_every_permit_in_priority_order() {
    const PER_MINUTE: u32 = 10;
    const PER_HOUR: u32 = 40;
    let dir = config();
    let t = start(&dir, PER_MINUTE, PER_HOUR).await;
    enforce(&t, PER_MINUTE, PER_HOUR);
    let start_at = t.clock.now();
    // Least urgent first: HIGH in production, CRITICAL in staging, CRITICAL in production.
    let classes = [
        ("111111111111", "high-prod", "HIGH"),
        ("222222222222", "crit-staging", "CRITICAL"),
        ("111111111111", "crit-prod", "CRITICAL"),
    ];
    for (account, class, severity) in classes {
        let findings = (0..8)
            .map(|i| {
                let mut f = finding(account, &format!("i-{class}-{i}"), severity, None, false);
                if i % 2 == 1 {
                    f["Resources"][0]["Tags"] = json!({"team": "ledger"});
                }
                f
            })
            .collect();
        post(&t, findings).await;
    }
    let second = Worker::new(t.app.clone(), "test-worker-2");
    let workers = [t.worker.clone(), second];
    run_until(&t, &workers, start_at + TimeDelta::hours(6)).await;

    assert_eq!(t.gh.breaches(), vec![]);
    let opened: Vec<usize> =
        t.gh.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/issues") && r.status == 201)
            .filter_map(|r| {
                let body = r.body.as_ref()?["body"].as_str()?.to_string();
                classes
                    .iter()
                    .position(|(_, c, _)| body.contains(&format!("i-{c}-")))
            })
            .collect();
    assert_eq!(opened.len(), 24, "every group has its issue, once");
    let later_than_a_more_urgent: Vec<usize> = (1..opened.len())
        .filter(|&i| opened[i + 1..].iter().any(|c| *c > opened[i]))
        .collect();
    assert_eq!(
        later_than_a_more_urgent,
        Vec::<usize>::new(),
        "issues opened while a more urgent one waited (classes in order: {opened:?})"
    );
    // The burst's writes (issues and labels; later the acknowledgement deadlines pass and the
    // backups take over, which is not the burst) against the budget's schedule: the burst at
    // once, then one write a period.
    let accepted = t.gh.content_requests(INSTALLATION);
    let written = writes(&t.gh.requests());
    assert_eq!(written.len(), accepted.len());
    let burst_writes: Vec<DateTime<Utc>> = written
        .iter()
        .zip(&accepted)
        .filter(|(r, _)| {
            r.method == "POST" && r.path.ends_with("/issues") || r.path.ends_with("/labels")
        })
        .map(|(_, at)| *at)
        .collect();
    assert!(
        burst_writes.len() > 24 + 10,
        "the label vocabulary was written too"
    );
    let budget = t.app.github.pacer().budget();
    let period = TimeDelta::from_std(budget.period()).unwrap();
    let n = i32::try_from(burst_writes.len()).unwrap();
    let allowed = period * (n - i32::try_from(budget.burst()).unwrap());
    let took = *burst_writes.last().unwrap() - start_at;
    assert!(
        took.num_milliseconds() * 95 <= allowed.num_milliseconds() * 100,
        "{n} writes took {took}, the budget allows them in {allowed}: {:.1} %",
        allowed.num_milliseconds() as f64 * 100.0 / took.num_milliseconds() as f64
    );
    t.gh.assert_conformant();
}

/// A second replica: another process's `App` on the same database (its own pool, GitHub client
/// and pacer), wired to the same fakes and clock, with the same content budget.
async fn replica(t: &TestApp, dir: &tempfile::TempDir, budget: (u32, u32)) -> Worker {
    let app = crate::support::app::app_on_with_budget(
        dir.path(),
        t.replica_store().await,
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
        budget,
    )
    .await;
    Worker::new(app, "replica-2")
}

/// Two replicas drain a burst side by side: each process has its own GitHub client and pacer,
/// yet together they stay within the installation's secondary limits (the budget is taken from
/// the database they share), use it, and open every issue once. PostgreSQL only: replicas need
/// it (SQLite is one process, paced by its own pacer).
async fn two_replicas_share_the_installation_budget(t: TestApp, dir: tempfile::TempDir) {
    const PER_MINUTE: u32 = 10;
    const PER_HOUR: u32 = 40;
    const GROUPS: usize = 50;
    enforce(&t, PER_MINUTE, PER_HOUR);
    labels_exist(&t).await;
    let start_at = t.clock.now();
    let burst: Vec<Value> = (0..GROUPS)
        .map(|i| {
            finding(
                "111111111111",
                &format!("i-replica{i:04}"),
                "HIGH",
                None,
                false,
            )
        })
        .collect();
    post(&t, burst).await;
    let workers = [
        t.worker.clone(),
        replica(&t, &dir, (PER_MINUTE, PER_HOUR)).await,
    ];
    let reports = run_until(&t, &workers, start_at + TimeDelta::hours(3)).await;
    assert_eq!(
        t.gh.breaches(),
        vec![],
        "two replicas together stay within the limits"
    );
    assert_eq!(t.gh.issues("acme/payments").len(), GROUPS);
    assert_eq!(t.gh.count("POST", "/repos/*/*/issues"), GROUPS);
    let accepted = t.gh.content_requests(INSTALLATION);
    let first_hour = accepted
        .iter()
        .filter(|at| **at < start_at + TimeDelta::hours(1))
        .count();
    assert!(
        first_hour * 100 >= PER_HOUR as usize * 95,
        "{first_hour} writes in the first hour, budget {PER_HOUR}"
    );
    for (worker, reports) in reports.iter().enumerate() {
        assert!(
            reports
                .iter()
                .any(|r| r.kind == "open-issue" && r.result == "done"),
            "replica {worker} took part"
        );
    }
    t.gh.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_share_the_installation_budget() {
    let Some(url) =
        crate::support::pg::or_skip("two_replicas_on_postgres_share_the_installation_budget").await
    else {
        return;
    };
    let dir = config();
    let t = TestApp::builder()
        .config(dir.path())
        .content_budget(10, 40)
        .postgres(url)
        .start()
        .await;
    two_replicas_share_the_installation_budget(t, dir).await;
}

/// A rate-limit answer seen by one replica pauses the other: its jobs are postponed to the
/// pause's end without a single call made with the installation's token.
#[tokio::test]
async fn a_rate_limit_answer_pauses_every_replica_of_the_installation() {
    let Some(url) =
        crate::support::pg::or_skip("a_rate_limit_answer_pauses_every_replica_of_the_installation")
            .await
    else {
        return;
    };
    let dir = config();
    let t = TestApp::builder()
        .config(dir.path())
        .content_budget(1_000_000, 60_000_000)
        .postgres(url)
        .start()
        .await;
    labels_exist(&t).await;
    for f in [
        "03-payments-prod-ledger-rds.2.json",
        "04-payments-prod-logs-bucket-s3.5.json",
        "02-payments-prod-checkout-asg-ec2.8.json",
    ] {
        t.ingest_file(&root().join("examples/demo/findings").join(f))
            .await;
    }
    t.gh.inject(
        "POST",
        "/repos/*/*/issues",
        FaultKind::SecondaryRateLimit {
            status: 403,
            retry_after_secs: 120,
        },
        1,
    );
    let paused_at = t.clock.now();
    let first = t.worker.run_once().await.unwrap().unwrap();
    assert_eq!(first.result, "postponed", "{first:?}");
    let installation_calls = |t: &TestApp| {
        t.gh.requests()
            .iter()
            .filter(|r| matches!(r.token, TokenKind::Installation { .. }))
            .count()
    };
    let before = installation_calls(&t);
    let other = replica(&t, &dir, (1_000_000, 60_000_000)).await;
    let reports = other.run_until_idle().await.unwrap();
    assert!(
        reports.len() == 2 && reports.iter().all(|r| r.result == "postponed"),
        "{reports:#?}"
    );
    assert_eq!(
        installation_calls(&t),
        before,
        "the other replica made no call with the installation's token during the pause"
    );
    t.clock.set(paused_at + TimeDelta::seconds(121));
    let reports = other.run_until_idle().await.unwrap();
    assert!(
        reports.iter().all(|r| r.result == "done") && reports.len() == 3,
        "{reports:#?}"
    );
    t.gh.assert_conformant();
}

/// The control experiment: the same kind of burst without Lever's content budget breaches the
/// limits the fake enforces (so the zero above is not the fake's doing), once: the breach's
/// `Retry-After` pauses the installation, and the other jobs wait instead of calling.
#[tokio::test]
async fn without_pacing_the_same_burst_breaches_the_limits() {
    let dir = config();
    let t = start(&dir, 1_000_000, 60_000_000).await;
    enforce(&t, 10, 40);
    let burst: Vec<Value> = (0..20)
        .map(|i| {
            finding(
                "111111111111",
                &format!("i-burst{i:04}"),
                "HIGH",
                None,
                false,
            )
        })
        .collect();
    post(&t, burst).await;
    t.drain().await;
    assert_eq!(t.gh.breaches().len(), 1, "{:#?}", t.gh.breaches());
    assert_eq!(
        t.gh.issues("acme/payments").len(),
        10,
        "the minute's ten, then the pause"
    );
}

/// A 429 or 403 with `Retry-After` pauses every worker of the installation: the other worker
/// does not call GitHub during the pause (its jobs are postponed to the pause's end without
/// calling), and nothing is lost after it.
#[tokio::test]
async fn a_rate_limit_answer_pauses_every_worker_of_the_installation() {
    for status in [429, 403] {
        let dir = config();
        let t = start(&dir, 1_000_000, 60_000_000).await;
        labels_exist(&t).await;
        // Three new groups: the ledger database, the logs bucket, the checkout instances.
        for f in [
            "03-payments-prod-ledger-rds.2.json",
            "04-payments-prod-logs-bucket-s3.5.json",
            "02-payments-prod-checkout-asg-ec2.8.json",
        ] {
            t.ingest_file(&root().join("examples/demo/findings").join(f))
                .await;
        }
        t.gh.inject(
            "POST",
            "/repos/*/*/issues",
            FaultKind::SecondaryRateLimit {
                status,
                retry_after_secs: 120,
            },
            1,
        );
        let paused_at = t.clock.now();
        let first = t.worker.run_once().await.unwrap().unwrap();
        assert_eq!(
            (first.kind.as_str(), first.result),
            ("open-issue", "postponed"),
            "{status}: {first:?}"
        );
        let before = t.gh.requests().len();

        // The second worker, and the first one again: nothing reaches GitHub during the pause.
        let second = Worker::new(t.app.clone(), "test-worker-2");
        let reports = second.run_until_idle().await.unwrap();
        assert!(
            reports.iter().all(|r| r.result == "postponed") && reports.len() == 2,
            "{status}: {reports:#?}"
        );
        assert_eq!(t.worker.run_until_idle().await.unwrap().len(), 0);
        t.clock.set(paused_at + TimeDelta::seconds(119));
        assert_eq!(second.run_until_idle().await.unwrap().len(), 0);
        assert_eq!(t.worker.run_until_idle().await.unwrap().len(), 0);
        assert_eq!(
            t.gh.requests().len(),
            before,
            "{status}: no call during the pause, from either worker"
        );

        // After the pause, every issue opens once; no attempt was counted for the waiting.
        t.clock.set(paused_at + TimeDelta::seconds(121));
        let pending = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
        assert!(
            pending.iter().all(|j| j.attempts == 0),
            "{status}: {pending:#?}"
        );
        let reports = second.run_until_idle().await.unwrap();
        assert!(
            reports.iter().all(|r| r.result == "done"),
            "{status}: {reports:#?}"
        );
        assert_eq!(
            (
                t.gh.issues("acme/payments").len(),
                t.gh.issues("acme/ledger").len(),
                t.gh.issues("acme/platform").len()
            ),
            (1, 1, 1),
            "{status}"
        );
        assert_eq!(
            t.gh.count("POST", "/repos/*/*/issues"),
            4,
            "{status}: the refused call and one per issue"
        );
        t.gh.assert_conformant();
    }
}

/// When the content budget is scarce, a new CRITICAL issue in production goes before the
/// issues already waiting (a HIGH one in production, a CRITICAL one in staging) and before a
/// checklist refresh that was queued first; then the others follow in priority order. The fake
/// enforces the same limits and refuses nothing.
#[tokio::test]
async fn a_critical_production_issue_goes_first_when_the_budget_is_scarce() {
    let dir = config();
    // One write a minute (burst 1).
    let t = start(&dir, 1, 60).await;
    enforce(&t, 1, 60);
    labels_exist(&t).await;
    // An open issue with a checklist of four instances (HIGH, production).
    let asg = |n: usize, passed| {
        finding(
            "111111111111",
            &format!("i-asg{n}"),
            "HIGH",
            Some("checkout-web"),
            passed,
        )
    };
    post(&t, (0..4).map(|n| asg(n, false)).collect()).await;
    t.drain().await;
    assert_eq!(t.gh.issues("acme/payments").len(), 1);
    let before = t.gh.requests().len();

    // The budget is spent. One instance is fixed (a checklist refresh waits), and two new
    // groups wait: HIGH in production, CRITICAL in staging.
    t.clock.advance(TimeDelta::seconds(1));
    post(&t, vec![asg(0, true)]).await;
    post(
        &t,
        vec![
            finding("111111111111", "i-high-prod", "HIGH", None, false),
            finding(
                "222222222222",
                "i-critical-staging",
                "CRITICAL",
                None,
                false,
            ),
        ],
    )
    .await;
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .filter(|r| r.kind != "sync-group")
            .all(|r| r.result == "postponed"),
        "{reports:#?}"
    );
    // Later, before the next permit, a CRITICAL finding in production.
    t.clock.advance(TimeDelta::seconds(1));
    post(
        &t,
        vec![finding(
            "111111111111",
            "i-critical-prod",
            "CRITICAL",
            None,
            false,
        )],
    )
    .await;
    t.drain().await;
    assert_eq!(
        writes(&t.gh.requests()[before..]).len(),
        0,
        "nothing was written yet"
    );
    // The backlog says what waits, in the order it will go, and when the last should open.
    let backlog = backlog_now(&t).await;
    let waiting: Vec<String> = backlog
        .issues
        .iter()
        .map(|i| {
            let instance = ["i-critical-prod", "i-critical-staging", "i-high-prod"]
                .into_iter()
                .find(|n| i.group.0.contains(n))
                .unwrap_or("?");
            format!("{} {} {instance}", i.severity.slug(), i.environment)
        })
        .collect();
    assert_eq!(
        waiting,
        [
            "critical production i-critical-prod",
            "critical staging i-critical-staging",
            "high production i-high-prod",
        ]
    );
    assert_eq!(backlog.other_writes, 1, "the checklist refresh");
    let period = TimeDelta::from_std(t.app.github.pacer().budget().period()).unwrap();
    for w in backlog.issues.windows(2) {
        assert!(w[1].opens_at - w[0].opens_at >= period, "{w:#?}");
    }
    assert_eq!(
        backlog.last_opens_at,
        backlog.issues.last().map(|i| i.opens_at)
    );
    assert!(
        backlog
            .summary()
            .starts_with("3 issue(s) waiting to open (next: CRITICAL in production"),
        "{}",
        backlog.summary()
    );

    run_until(
        &t,
        std::slice::from_ref(&t.worker),
        t.clock.now() + TimeDelta::minutes(10),
    )
    .await;
    // Each write, named by the instance of the issue it creates, or as the refresh.
    let order: Vec<String> = writes(&t.gh.requests()[before..])
        .iter()
        .map(|r| match (r.method.as_str(), &r.body) {
            ("POST", Some(b)) if b.get("title").is_some() => {
                let body = b["body"].as_str().unwrap();
                ["i-critical-prod", "i-critical-staging", "i-high-prod"]
                    .iter()
                    .find(|i| body.contains(*i))
                    .map_or_else(|| "another issue".to_string(), |i| format!("open {i}"))
            }
            ("PATCH", Some(b)) if b.get("body").is_some() => "refresh checklist".to_string(),
            (m, _) => format!("{m} {}", r.path),
        })
        .collect();
    assert_eq!(
        order,
        [
            "open i-critical-prod",
            "open i-critical-staging",
            "open i-high-prod",
            "refresh checklist",
        ],
        "one write a minute, the most urgent first"
    );
    assert_eq!(t.gh.breaches(), vec![]);
    t.gh.assert_conformant();
}

/// A backlog of more new groups than `pacing::backlog` reads at a time (it reads their groups
/// in chunks, so a first sync's 100,000 do not sit in memory at once): every one is listed
/// once, in one order across the chunks (priority, then due time), the most urgent first.
#[tokio::test]
async fn a_backlog_larger_than_one_read_is_whole_and_in_one_order() {
    let dir = config();
    let t = start(&dir, 1, 60).await;
    // Staging counts CRITICAL only (the demo's minimums): three kinds of new groups.
    let n = 1_200;
    let findings: Vec<Value> = (0..n)
        .map(|i| {
            let (account, severity) = match i % 3 {
                0 => ("222222222222", "CRITICAL"),
                1 => ("111111111111", "HIGH"),
                _ => ("111111111111", "CRITICAL"),
            };
            finding(account, &format!("i-bulk-{i:04}"), severity, None, false)
        })
        .collect();
    for chunk in findings.chunks(100) {
        post(&t, chunk.to_vec()).await;
    }
    let backlog = backlog_now(&t).await;
    assert_eq!(backlog.issues.len(), n, "{}", backlog.summary());
    let groups: std::collections::HashSet<_> = backlog.issues.iter().map(|i| &i.group).collect();
    assert_eq!(groups.len(), n, "each group once");
    for w in backlog.issues.windows(2) {
        assert!(
            w[0].priority > w[1].priority
                || (w[0].priority == w[1].priority && w[0].due <= w[1].due),
            "out of order across a chunk: {w:#?}"
        );
    }
    let first = &backlog.issues[0];
    assert_eq!(
        (first.severity.slug(), first.environment.as_str()),
        ("critical", "production")
    );
    let kinds: Vec<(&str, &str)> = backlog
        .issues
        .iter()
        .map(|i| (i.severity.slug(), i.environment.as_str()))
        .collect();
    let mut runs = kinds.clone();
    runs.dedup();
    assert_eq!(
        runs,
        [
            ("critical", "production"),
            ("critical", "staging"),
            ("high", "production"),
        ],
        "one run of each kind, the most urgent first"
    );
}

/// The backlog at the test's time, with the App's content budget.
async fn backlog_now(t: &TestApp) -> lever::worker::pacing::Backlog {
    lever::worker::pacing::backlog(
        t.app.store.as_ref(),
        &t.app.github.pacer().budget(),
        t.clock.now(),
    )
    .await
    .unwrap()
}

/// The pending `open-issue` job of the group of `instance`.
fn opening_of<'a>(pending: &'a [JobRecord], instance: &str) -> &'a JobRecord {
    pending
        .iter()
        .find(|j| j.job.kind() == "open-issue" && j.job.subject().contains(instance))
        .unwrap_or_else(|| panic!("the opening of {instance} is queued"))
}

/// Runs the worker for five minutes of the test's time: the issues of `i-first` (opened
/// before the backlog), `i-urgent` (CRITICAL, queued later) and `i-waiting` (HIGH) open each
/// once, in that order, without a breach of GitHub's limits.
async fn opens_by_urgency(t: &TestApp) {
    run_until(
        t,
        std::slice::from_ref(&t.worker),
        t.clock.now() + TimeDelta::minutes(5),
    )
    .await;
    let opened: Vec<&str> = writes(&t.gh.requests())
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/issues"))
        .filter_map(|r| {
            let body = r.body.as_ref()?["body"].as_str()?;
            ["i-first", "i-urgent", "i-waiting"]
                .into_iter()
                .find(|i| body.contains(i))
        })
        .collect();
    assert_eq!(
        opened,
        ["i-first", "i-urgent", "i-waiting"],
        "each once, by urgency"
    );
    assert_eq!(t.gh.breaches(), vec![]);
    t.gh.assert_conformant();
}

/// During a backlog a new group's issue joins the content queue when its finding is recorded:
/// its job is stored due at its fallback time, so no worker leases it only to be refused and
/// postpone it (two write transactions per new group during a flood), and the queue wakes it
/// at its turn, before the less urgent jobs that waited longer.
#[tokio::test]
async fn a_new_issue_during_a_backlog_joins_the_queue_without_being_leased() {
    let dir = config();
    // One write a minute (burst 1).
    let t = start(&dir, 1, 60).await;
    enforce(&t, 1, 60);
    labels_exist(&t).await;
    // Whether recording findings woke the workers.
    let wakes = async |findings: Vec<Value>| {
        let woken = t.app.jobs_ready.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        post(&t, findings).await;
        futures::poll!(woken).is_ready()
    };
    assert!(
        wakes(vec![
            finding("111111111111", "i-first", "HIGH", None, false),
            finding("111111111111", "i-waiting", "HIGH", None, false),
        ])
        .await,
        "issues to open now"
    );
    let reports = t.drain().await;
    let results: Vec<&str> = reports.iter().map(|r| r.result).collect();
    assert_eq!(results, ["done", "postponed"], "{reports:#?}");
    assert_eq!(t.gh.issues("acme/payments").len(), 1);

    t.clock.advance(TimeDelta::seconds(1));
    assert!(
        !wakes(vec![finding(
            "111111111111",
            "i-urgent",
            "CRITICAL",
            None,
            false
        )])
        .await,
        "nothing is due: the queue wakes the job at its turn"
    );
    let now = t.clock.now();
    let pending = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
    let urgent = opening_of(&pending, "i-urgent");
    assert!(
        urgent.run_at > now,
        "stored due at its fallback: {urgent:#?}"
    );
    let waiting = pending
        .iter()
        .find(|j| j.job.subject().contains("i-waiting"))
        .unwrap();
    assert!(
        urgent.run_at < waiting.run_at,
        "ahead of the less urgent one"
    );
    assert_eq!(t.app.github.pacer().waiting(INSTALLATION), 2);
    assert_eq!(t.drain().await.len(), 0, "nothing leased before its turn");

    opens_by_urgency(&t).await;
}

/// The same when the finding arrives through a sync page (the `sync` job of `lever serve`):
/// the page's new issues join the waiting content queue as the page is committed, instead of
/// being leased, refused and postponed one by one.
#[tokio::test]
async fn a_new_issue_read_by_a_sync_during_a_backlog_joins_the_queue_without_being_leased() {
    let dir = config();
    // One write a minute (burst 1).
    let t = start(&dir, 1, 60).await;
    enforce(&t, 1, 60);
    labels_exist(&t).await;
    post(
        &t,
        vec![
            finding("111111111111", "i-first", "HIGH", None, false),
            finding("111111111111", "i-waiting", "HIGH", None, false),
        ],
    )
    .await;
    let results: Vec<&str> = t.drain().await.iter().map(|r| r.result).collect();
    assert_eq!(results, ["done", "postponed"]);

    t.clock.advance(TimeDelta::seconds(1));
    t.sh.seed(json!([finding(
        "111111111111",
        "i-urgent",
        "CRITICAL",
        None,
        false
    )]));
    let now = t.clock.now();
    t.app
        .store
        .apply(
            ChangeSet {
                jobs: vec![lever::store::NewJob::new(lever::store::Job::Sync, now)],
                ..ChangeSet::default()
            },
            now,
        )
        .await
        .unwrap();
    let reports = t.drain().await;
    let ran: Vec<(&str, &str)> = reports
        .iter()
        .map(|r| (r.kind.as_str(), r.result))
        .collect();
    assert_eq!(
        ran,
        [("sync", "done")],
        "the sync's new issue is not leased before its turn: {reports:#?}"
    );
    let pending = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
    let urgent = opening_of(&pending, "i-urgent");
    assert!(
        urgent.run_at > now,
        "stored due at its fallback: {urgent:#?}"
    );
    assert_eq!(t.app.github.pacer().waiting(INSTALLATION), 2);

    opens_by_urgency(&t).await;
}

/// Several updates to one issue while its job waits become one write: the checklist
/// refreshes coalesce.
#[tokio::test]
async fn several_checklist_refreshes_become_one_write() {
    let dir = config();
    let t = start(&dir, 1, 60).await;
    labels_exist(&t).await;
    let asg = |n: usize, passed| {
        finding(
            "111111111111",
            &format!("i-asg{n}"),
            "HIGH",
            Some("checkout-web"),
            passed,
        )
    };
    post(&t, (0..4).map(|n| asg(n, false)).collect()).await;
    t.drain().await;
    let issue = t.gh.issues("acme/payments")[0].clone();
    let number = issue["number"].as_u64().unwrap();
    let before = t.gh.requests().len();

    // Three instances fixed, one at a time, while the budget is spent.
    for n in 0..3 {
        t.clock.advance(TimeDelta::seconds(5));
        post(&t, vec![asg(n, true)]).await;
        t.drain().await;
    }
    assert_eq!(
        writes(&t.gh.requests()[before..]).len(),
        0,
        "the budget is spent: the refreshes wait"
    );
    run_until(
        &t,
        std::slice::from_ref(&t.worker),
        t.clock.now() + TimeDelta::minutes(5),
    )
    .await;
    let patches: Vec<RecordedRequest> = writes(&t.gh.requests()[before..]);
    assert_eq!(
        patches
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [(
            "PATCH",
            format!("/repos/acme/payments/issues/{number}").as_str()
        )],
        "one write for the three updates"
    );
    let body = t.gh.issue("acme/payments", number).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 0..3 {
        assert!(
            body.contains(&format!(
                "- [x] `arn:aws:ec2:us-east-1:111111111111:instance/i-asg{n}`"
            )),
            "{body}"
        );
    }
    assert!(
        body.contains("- [ ] `arn:aws:ec2:us-east-1:111111111111:instance/i-asg3`"),
        "{body}"
    );
    let audit = t
        .app
        .store
        .audit(&lever::store::AuditFilter::default())
        .await
        .unwrap();
    let count = |action: &str| audit.iter().filter(|a| a.action == action).count();
    assert_eq!(
        (
            count("effect-refresh-body"),
            count("effect-refresh-body-coalesced")
        ),
        (1, 2)
    );
}

// ---- Security Hub ---------------------------------------------------------------------------

/// BatchUpdateFindings: at most 100 findings a request, at most 10 requests a second (in
/// virtual time), retries paced too.
#[tokio::test]
async fn batch_updates_are_paced_and_hold_at_most_one_hundred_findings() {
    let sh = FakeSecurityHub::start().await;
    let refs: Vec<FindingRef> = (0..250)
        .map(|i| {
            let f = finding("111111111111", &format!("i-{i:04}"), "HIGH", None, false);
            sh.seed(f.clone());
            FindingRef {
                id: f["Id"].as_str().unwrap().to_string(),
                product_arn: f["ProductArn"].as_str().unwrap().to_string(),
            }
        })
        .collect();
    let timer = Arc::new(ManualTimer::new());
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };
    let hub = SecurityHub::from_client(sh.client()).with_writes(
        Pacer::with_timer(NonZeroU32::new(10).unwrap(), timer.clone()),
        retry,
    );
    sh.throttle_next("BatchUpdateFindings", 1);
    let out = hub
        .update_workflow(&refs, WorkflowStatus::Notified, "tracked", "lever")
        .await
        .unwrap();
    assert_eq!(out.processed.len(), 250);
    let sizes: Vec<(u16, usize)> = sh
        .requests()
        .iter()
        .filter(|r| r.operation.as_deref() == Some("BatchUpdateFindings"))
        .map(|r| {
            let n = r.body.as_ref().unwrap()["FindingIdentifiers"]
                .as_array()
                .unwrap()
                .len();
            (r.status, n)
        })
        .collect();
    assert_eq!(
        sizes.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [100, 100, 100, 50],
        "the throttled first batch again, then the rest"
    );
    assert_ne!(sizes[0].0, 200, "the first was throttled");
    // Virtual time: the retry backed off, and no two requests were closer than 100 ms.
    let sleeps = timer.sleeps();
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    assert!(timer.elapsed() >= Duration::from_millis(300));
    sh.assert_conformant();
}
