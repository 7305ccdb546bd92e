//! Crash test (issue 10, item 10): the real `lever serve` is killed with SIGKILL at random
//! points (seeded: `LEVER_CRASH_SEED=N` replays the kill schedule) during a burst of findings
//! (single-finding EventBridge events on `POST /events/securityhub`) and signed webhooks, and
//! started again, several times; then it runs to quiescence, and:
//! - every group has exactly one issue in the fake GitHub (the one it records, with its marker);
//! - every delivery was processed once: each person's action on a tracked issue caused exactly
//!   one reaction (one comment, the refused label removed once), and its `github-event` job is
//!   done, once;
//! - every acknowledged finding is in the store and its group has its issue.
//!
//! On SQLite (one process) and on PostgreSQL with two replicas killed independently. The fakes
//! run in the test process, so they outlive the kills. A sender whose request got no answer
//! (the process died) sends it again, as EventBridge and Lever's redelivery do.
//!
//! Size: [`FINDINGS`] findings in [`GROUPS`] groups plus [`UNTRACKED`] + [`TRACKED`] webhooks
//! (1,812 requests), with [`KILLS`] kills. On this shared 2-core machine SQLite takes about
//! 80 s (a 15 s burst, then up to a minute for the leases of the jobs the killed process held,
//! `worker::LEASE`) and PostgreSQL with two replicas about 160 s (its burst is slower: two debug
//! binaries committing to one database). More would not find more: every kill lands in a
//! different phase (intake batches, job runs, commits), and the seed varies them run to run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::github::{FakeGitHub, WebhookDelivery};
use crate::fakes::securityhub::FakeSecurityHub;
use crate::faults::{finding, seed};
use crate::support::app::{INGEST_TOKEN, WEBHOOK_SECRET, demo_config_with_budget, demo_github};
use crate::support::bin::Served;

/// Findings in the burst, one event each.
const FINDINGS: usize = 1500;
/// Groups they fall in (one issue each), over two repositories.
const GROUPS: usize = 30;
/// Issues opened before the burst, that people act on during it.
const TRACKED: usize = 12;
/// Issues people open during the burst (Lever records their deliveries and ignores them).
const UNTRACKED: usize = 300;
/// SIGKILLs during the burst (spread over the replicas).
const KILLS: usize = 5;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;

/// Group `g`'s Auto Scaling group, account and extra tags: even groups go to acme/payments,
/// odd ones to acme/ledger.
fn group_finding(g: usize, i: usize) -> Value {
    let tags: &[(&str, &str)] = if g.is_multiple_of(2) {
        &[]
    } else {
        &[("team", "ledger")]
    };
    finding(
        "111111111111",
        &format!("i-crash-{g}-{i}"),
        &format!("asg-crash-{g}"),
        tags,
        false,
    )
}

fn event(f: &Value) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": "111111111111",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [f["Id"]],
        "detail": {"findings": [f]},
    })
}

#[derive(Clone)]
enum Item {
    Event(Value),
    Webhook(WebhookDelivery),
}

/// The replicas' base URLs (`None` while one is down).
type Bases = Arc<Mutex<Vec<Option<String>>>>;

/// Sends `item` to a live replica until one acknowledges it (202, or 200 for a delivery it
/// already has).
async fn send(http: &reqwest::Client, bases: &Bases, item: &Item, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for attempt in 0.. {
        assert!(Instant::now() < deadline, "never acknowledged");
        let base = {
            let b = bases.lock().unwrap();
            let live: Vec<&String> = b.iter().flatten().collect();
            (!live.is_empty()).then(|| live[(n + attempt) % live.len()].clone())
        };
        let Some(base) = base else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let res = match item {
            Item::Event(e) => {
                http.post(format!("{base}/events/securityhub"))
                    .bearer_auth(INGEST_TOKEN)
                    .json(e)
                    .send()
                    .await
            }
            Item::Webhook(d) => {
                d.send(http, &format!("{base}/webhooks/github"), WEBHOOK_SECRET)
                    .await
            }
        };
        match res.map(|r| r.status()) {
            Ok(StatusCode::ACCEPTED) | Ok(StatusCode::OK) => return,
            // Killed mid-request, not listening yet, or shutting down: send it again.
            Ok(s) if s.is_server_error() => {}
            Err(_) => {}
            Ok(s) => panic!("{s} for an item the test made valid"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn crash_and_converge(database_url: String, replicas: usize) {
    let seed = seed("LEVER_CRASH_SEED");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let gh = FakeGitHub::start_with_test_app().await;
    demo_github(&gh);
    let sh = FakeSecurityHub::start().await;
    let config = demo_config_with_budget((1_000_000, 60_000_000));
    let work = tempfile::tempdir().unwrap();
    let start = {
        let (gh, sh, url, config) = (
            gh.clone(),
            sh.clone(),
            database_url.clone(),
            config.path().to_path_buf(),
        );
        let work = work.path().to_path_buf();
        move || {
            let (gh, sh, url, config, work) = (
                gh.clone(),
                sh.clone(),
                url.clone(),
                config.clone(),
                work.clone(),
            );
            async move { Served::start_in(&gh, &sh, &work, Some(&url), &config, &[]).await }
        }
    };
    let mut served = Vec::new();
    for _ in 0..replicas {
        served.push(Some(start().await));
    }
    let bases: Bases = Arc::new(Mutex::new(
        served
            .iter()
            .map(|s| s.as_ref().map(|s| s.base.clone()))
            .collect(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let store = lever::store::open(&database_url)
        .await
        .expect("the database");

    // Before the burst: the tracked groups' issues exist.
    let mut all: Vec<Value> = Vec::new();
    for g in 0..TRACKED {
        all.push(group_finding(g, 0));
    }
    sh.seed(Value::Array(all.clone()));
    for (n, f) in all.iter().enumerate() {
        send(&http, &bases, &Item::Event(event(f)), n).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let tracked: Vec<(String, u64)> = loop {
        let groups = store.list_groups(None).await.unwrap();
        if groups.len() == TRACKED && groups.iter().all(|g| g.issue_number.is_some()) {
            let mut v: Vec<(String, u64)> = (groups.iter())
                .map(|g| (g.repo.clone(), g.issue_number.unwrap()))
                .collect();
            v.sort();
            break v;
        }
        assert!(Instant::now() < deadline, "the tracked issues never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The burst: findings (new groups and the tracked ones'), people's actions on the tracked
    // issues (an exception asked for on half of them, a refused approval on the others), and
    // issues people open, shuffled.
    let mut items: Vec<Item> = Vec::new();
    let mut burst_findings = Vec::new();
    for i in 0..FINDINGS {
        let f = group_finding(i % GROUPS, 1 + i / GROUPS);
        burst_findings.push(f.clone());
        items.push(Item::Event(event(&f)));
    }
    sh.seed(Value::Array(burst_findings.clone()));
    all.extend(burst_findings);
    let mut acted = Vec::new();
    for (k, (repo, n)) in tracked.iter().enumerate() {
        let who = if repo == "acme/ledger" {
            "carol"
        } else {
            "bob"
        };
        let d = if k % 2 == 0 {
            gh.human_add_label(repo, *n, "exception-requested", who)
        } else {
            gh.human_add_label(repo, *n, "cto-approved", "mallory")
        };
        acted.push((repo.clone(), *n, k % 2 == 0, d.id.clone()));
        items.push(Item::Webhook(d));
    }
    for i in 0..UNTRACKED {
        let (_, d) = gh.human_open_issue("acme/payments", &format!("question {i}"), "", "bob");
        items.push(Item::Webhook(d));
    }
    // Shuffled with the seed.
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
    sh.drain_events();
    let total = items.len();
    let queue = Arc::new(Mutex::new(
        items.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (queue, bases, http, sent) = (queue.clone(), bases.clone(), http.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some((n, item)) = queue.lock().unwrap().pop() else {
                    return;
                };
                send(&http, &bases, &item, n).await;
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }

    // The kills: at random points of the burst, a random replica.
    let began = Instant::now();
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        // A share of the burst passes between kills.
        let at = rng.random_range(total / (KILLS * 4)..total / KILLS);
        let before = sent.load(std::sync::atomic::Ordering::Relaxed);
        while sent.load(std::sync::atomic::Ordering::Relaxed) < (before + at).min(total) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let extra = Duration::from_millis(rng.random_range(0..300));
        tokio::time::sleep(extra).await;
        let r = rng.random_range(0..replicas);
        bases.lock().unwrap()[r] = None;
        served[r].take().expect("running").kill9().await;
        kills.push((r, sent.load(std::sync::atomic::Ordering::Relaxed)));
        let s = start().await;
        bases.lock().unwrap()[r] = Some(s.base.clone());
        served[r] = Some(s);
    }
    for s in senders {
        s.await.unwrap();
    }
    eprintln!(
        "burst of {total} items ({FINDINGS} findings) acknowledged in {:?}; kills (replica, items sent): {kills:?}",
        began.elapsed()
    );

    // Quiescence: every group has its issue, and no job but the periodic ones is due.
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let groups = store.list_groups(None).await.unwrap();
        let jobs = store
            .jobs(Some(lever::store::JobState::Pending))
            .await
            .unwrap();
        let busy: Vec<String> = (jobs.iter())
            .filter(|j| {
                !j.job.is_periodic()
                    && j.run_at < chrono::Utc::now() + chrono::TimeDelta::minutes(10)
            })
            .map(|j| format!("{} {} ({:?})", j.job.kind(), j.job.subject(), j.last_error))
            .collect();
        if groups.len() == GROUPS.max(TRACKED)
            && groups.iter().all(|g| g.issue_number.is_some())
            && busy.is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: no quiescence; {} groups, {} without issue; busy: {busy:#?}",
            groups.len(),
            groups.iter().filter(|g| g.issue_number.is_none()).count()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("quiet {:?} after the burst began", began.elapsed());

    // Exactly one issue per group: the one it records, carrying its marker; no other issue
    // by Lever.
    let groups = store.list_groups(None).await.unwrap();
    let bot = gh.bot_login();
    let mut by_marker: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for repo in [
        "acme/payments",
        "acme/ledger",
        "acme/platform",
        "acme/security",
    ] {
        for i in gh.issues(repo) {
            if i["user"]["login"] != bot {
                continue;
            }
            let key = i["body"]
                .as_str()
                .and_then(lever::explain::parse_marker)
                .unwrap_or_else(|| panic!("{repo}#{} without a marker", i["number"]));
            by_marker
                .entry(key.0)
                .or_default()
                .push((repo.to_string(), i["number"].as_u64().unwrap()));
        }
    }
    assert_eq!(
        by_marker.len(),
        groups.len(),
        "seed {seed}: issues per group {by_marker:#?}"
    );
    for g in &groups {
        assert_eq!(
            by_marker.get(&g.group_key.0),
            Some(&vec![(g.repo.clone(), g.issue_number.unwrap())]),
            "seed {seed}: {}",
            g.group_key
        );
    }

    // Every delivery processed once.
    let jobs = store.jobs(None).await.unwrap();
    for (repo, n, exception, id) in &acted {
        let delivery = format!("github:{id}");
        assert!(
            store.delivery(&delivery).await.unwrap().is_some(),
            "{delivery} lost"
        );
        let runs: Vec<_> = (jobs.iter())
            .filter(|j| matches!(&j.job, lever::store::Job::GithubEvent(of) if of.0 == delivery))
            .collect();
        assert!(
            runs.len() == 1 && runs[0].state == lever::store::JobState::Done,
            "seed {seed}: {delivery}: {runs:?}"
        );
        let comments: Vec<String> = (gh.comments(repo, *n).iter())
            .filter(|c| c["user"]["login"] == bot)
            .map(|c| c["body"].as_str().unwrap().to_string())
            .collect();
        let (what, expected) = if *exception {
            ("please review", 1)
        } else {
            ("mallory is not an approver", 1)
        };
        let seen = comments.iter().filter(|c| c.contains(what)).count();
        assert_eq!(seen, expected, "seed {seed}: {repo}#{n}: {comments:#?}");
        if !exception {
            let labels: Vec<String> = (gh.issue(repo, *n).unwrap()["labels"]
                .as_array()
                .unwrap()
                .iter())
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
            assert!(
                !labels.contains(&"cto-approved".to_string()),
                "{repo}#{n}: {labels:?}"
            );
            let removals = gh
                .requests()
                .iter()
                .filter(|r| {
                    r.method == "DELETE"
                        && r.path == format!("/repos/{repo}/issues/{n}/labels/cto-approved")
                })
                .count();
            assert_eq!(
                removals, 1,
                "seed {seed}: {repo}#{n}: the refused label removed once"
            );
        }
    }

    // Every acknowledged finding is in the store, and its group has its issue.
    let ids: Vec<(String, String)> = (all.iter())
        .map(|f| {
            (
                f["ProductArn"].as_str().unwrap().to_string(),
                f["Id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let stored = store.findings(&ids).await.unwrap();
    assert_eq!(stored.len(), ids.len(), "seed {seed}: findings lost");
    for f in &stored {
        let g = store.group(&f.group_key).await.unwrap().expect("its group");
        assert!(g.issue_number.is_some(), "{}", f.finding_id);
    }
    gh.assert_conformant();

    for s in served.into_iter().flatten() {
        s.kill9().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_lever_loses_and_doubles_nothing_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lever.db").display());
    crash_and_converge(url, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_two_replicas_lose_and_double_nothing_postgres() {
    let Some(url) = crate::support::pg::or_skip(
        "killed_at_random_two_replicas_lose_and_double_nothing_postgres",
    )
    .await
    else {
        return;
    };
    let schema = crate::support::pg::Schema::create(&url).await;
    crash_and_converge(schema.database_url(), 2).await;
}

/// Found by the crash test on PostgreSQL with two replicas (`committing a batch failed:
/// deadlock detected`): two change sets that enqueue the same jobs in opposite orders, committed
/// at once, each take the pending jobs' row locks in their own order. Both commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_sets_enqueueing_the_same_jobs_in_opposite_orders_both_commit_postgres() {
    use lever::domain::GroupKey;
    use lever::store::{ChangeSet, Job, NewJob};
    let Some(url) = crate::support::pg::or_skip(
        "change_sets_enqueueing_the_same_jobs_in_opposite_orders_both_commit_postgres",
    )
    .await
    else {
        return;
    };
    let schema = crate::support::pg::Schema::create(&url).await;
    let one = lever::store::open(&schema.database_url()).await.unwrap();
    let other = lever::store::open(&schema.database_url()).await.unwrap();
    let now = chrono::Utc::now();
    let jobs: Vec<NewJob> = (0..40)
        .map(|i| NewJob::new(Job::OpenIssue(GroupKey(format!("g{i:03}"))), now))
        .collect();
    let mut reversed = jobs.clone();
    reversed.reverse();
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            one.apply(
                ChangeSet {
                    jobs: jobs.clone(),
                    ..ChangeSet::default()
                },
                now
            ),
            other.apply(
                ChangeSet {
                    jobs: reversed.clone(),
                    ..ChangeSet::default()
                },
                now
            ),
        );
        a.expect("one commits");
        b.expect("the other commits");
    }
}
