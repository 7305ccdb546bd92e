//! The write path of both endpoints (issue 8): requests arriving while a commit runs are
//! committed together in one transaction (group commit), each still gets its own answer, a
//! failed batch answers 503 to every request in it and records none of them, and an untracked
//! webhook delivery keeps at most 1 KB.
//!
//! Batches are made deterministic without sleeping on time: a [`Spy`] store holds the first
//! commit until the other requests are queued behind it (the writer's own counters say when).
//!
//! [`Spy`]: crate::support::spy::Spy

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use lever::server::batch::BatchStats;
use lever::store::{Job, JobState};

use crate::fakes::github::WebhookDelivery;
use crate::support::app::{TestApp, root};
use crate::support::spy::Probe;

/// Waits (polling, with a deadline) until `stats` says `n` items were submitted.
async fn until_submitted(stats: impl Fn() -> BatchStats, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while stats().submitted < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {:?} submitted, waiting for {n}",
            stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

fn probe(t: &TestApp) -> Arc<Probe> {
    t.probe.clone().expect("started with a spy")
}

/// Posts every delivery at once; their answers in the same order.
async fn post_all(t: &Arc<TestApp>, deliveries: &[WebhookDelivery]) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = deliveries
        .iter()
        .map(|d| {
            let (t, d) = (t.clone(), d.clone());
            tokio::spawn(async move { t.post_webhook(&d).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// The demo's ledger finding opens `acme/ledger#1`: an issue Lever tracks.
async fn tracked_issue(t: &TestApp) {
    let (status, body) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_webhooks_are_committed_together_and_a_duplicate_once() {
    let t = Arc::new(TestApp::builder().spy().start().await);
    tracked_issue(&t).await;
    let probe = probe(&t);
    let stats = || t.app.intake.webhooks.stats();
    let before = stats();

    // A first delivery's commit is held; eleven more arrive meanwhile: ten about an issue
    // Lever does not track, and carol's label on the tracked issue, delivered twice.
    probe.hold();
    let (_, first) = t.gh.human_open_issue("acme/payments", "first", "", "alice");
    let first = tokio::spawn({
        let t = t.clone();
        async move { t.post_webhook(&first).await }
    });
    probe.entered().await;
    let mut deliveries: Vec<WebhookDelivery> = (0..10)
        .map(|i| {
            let (_, d) =
                t.gh.human_open_issue("acme/payments", &format!("q{i}"), "", "bob");
            d
        })
        .collect();
    let labeled =
        t.gh.human_add_label("acme/ledger", 1, "acknowledged", "carol");
    deliveries.push(labeled.clone());
    deliveries.push(labeled.clone());
    let answers = tokio::spawn({
        let (t, deliveries) = (t.clone(), deliveries.clone());
        async move { post_all(&t, &deliveries).await }
    });
    until_submitted(stats, before.submitted + 13).await;
    probe.release();

    let (status, body) = first.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let answers = answers.await.unwrap();
    for (d, (status, body)) in deliveries[..10].iter().zip(&answers) {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "recorded");
        assert_eq!(body["delivery"], d.id.as_str());
    }
    let mut twice: Vec<_> = answers[10..]
        .iter()
        .map(|(status, body)| (*status, body["status"].as_str().unwrap().to_string()))
        .collect();
    twice.sort();
    assert_eq!(
        twice,
        [
            (StatusCode::OK, "duplicate".to_string()),
            (StatusCode::ACCEPTED, "recorded".to_string()),
        ],
        "the first of the two in the batch wins"
    );

    // Two transactions: the held one, and one for the twelve that waited behind it.
    assert_eq!(*probe.delivery_batches.lock().unwrap(), [1, 12]);
    let after = stats();
    assert_eq!(
        (
            after.batches - before.batches,
            after.committed - before.committed
        ),
        (2, 13)
    );
    assert_eq!(after.largest, 12);

    // Recorded once, with one job; the label is applied once.
    let id = format!("github:{}", labeled.id);
    let stored = t.app.store.delivery(&id).await.unwrap().expect("recorded");
    assert_eq!(
        stored.body.as_deref(),
        Some(&labeled.body()[..]),
        "tracked: the body as sent"
    );
    let jobs = t.app.store.jobs(Some(JobState::Pending)).await.unwrap();
    let events: Vec<_> = jobs
        .iter()
        .filter(|j| matches!(j.job, Job::GithubEvent(_)))
        .map(|j| j.job.subject().to_string())
        .collect();
    assert_eq!(events, [id]);
    for d in &deliveries[..10] {
        let stored = t.app.store.delivery(&format!("github:{}", d.id)).await;
        assert_eq!(stored.unwrap().expect("recorded").body, None, "untracked");
    }
    let reports = t.drain().await;
    assert!(reports.iter().all(|r| r.result == "done"), "{reports:#?}");
    let group = t.app.store.list_groups(None).await.unwrap().pop().unwrap();
    assert!(group.state().labels.contains("acknowledged"), "{group:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_answers_503_to_each_of_its_requests_and_records_none() {
    let t = Arc::new(TestApp::builder().spy().start().await);
    let probe = probe(&t);
    let stats = || t.app.intake.webhooks.stats();

    probe.hold();
    let (_, first) = t.gh.human_open_issue("acme/payments", "first", "", "alice");
    let first = tokio::spawn({
        let t = t.clone();
        async move { t.post_webhook(&first).await }
    });
    probe.entered().await;
    // The held batch will commit; the next one finds the database gone.
    probe.fail_next(1);
    let deliveries: Vec<WebhookDelivery> = (0..5)
        .map(|i| {
            let (_, d) =
                t.gh.human_open_issue("acme/payments", &format!("q{i}"), "", "bob");
            d
        })
        .collect();
    let answers = tokio::spawn({
        let (t, deliveries) = (t.clone(), deliveries.clone());
        async move { post_all(&t, &deliveries).await }
    });
    until_submitted(stats, 6).await;
    probe.release();

    let (status, body) = first.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for (status, body) in answers.await.unwrap() {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("could not record the delivery"), "{body}");
    }
    assert_eq!(*probe.delivery_batches.lock().unwrap(), [1]);
    let s = stats();
    assert_eq!((s.batches, s.failed, s.committed, s.largest), (2, 1, 1, 5));

    // None of the failed batch was recorded, and the writer goes on: GitHub's redeliveries
    // are accepted (and a redelivery of the first is a duplicate).
    for d in &deliveries {
        let stored = t.app.store.delivery(&format!("github:{}", d.id)).await;
        assert_eq!(stored.unwrap(), None, "{}", d.id);
        let (status, body) = t.post_webhook(d).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    // The same for findings: a failed batch is 503, and EventBridge's retry is accepted.
    let doc: Value = serde_json::from_slice(
        &std::fs::read(root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
            .unwrap(),
    )
    .unwrap();
    probe.fail_next(1);
    let (status, body) = t.post_event(&doc).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(t.app.store.list_groups(None).await.unwrap().is_empty());
    let (status, body) = t.post_event(&doc).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["issues_to_open"], 1, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_of_concurrent_requests_are_planned_and_committed_together() {
    let t = Arc::new(TestApp::builder().spy().start().await);
    let probe = probe(&t);
    let stats = || t.app.intake.findings.stats();
    let file = |name: &str| -> Value {
        let path = root().join("examples/demo/findings").join(name);
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        t.sh.seed(doc.clone());
        doc
    };
    let logs = file("04-payments-prod-logs-bucket-s3.5.json");
    let ledger = file("03-payments-prod-ledger-rds.2.json");
    let s3 = file("01-payments-prod-s3.1-three-standards.json");

    probe.hold();
    let first = tokio::spawn({
        let t = t.clone();
        async move { t.post_event(&logs).await }
    });
    probe.entered().await;
    // Three requests wait behind it, two of them carrying the same finding.
    let rest: Vec<_> = [ledger.clone(), ledger, s3]
        .into_iter()
        .map(|doc| {
            let t = t.clone();
            tokio::spawn(async move { t.post_event(&doc).await })
        })
        .collect();
    until_submitted(stats, 4).await;
    probe.release();

    let (status, body) = first.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut answers = Vec::new();
    for r in rest {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        answers.push(body);
    }
    // Each request gets its own answer; of the two carrying the ledger finding, the one
    // planned first opens the issue, the other is a repeat of it.
    let mut ledger_answers: Vec<(u64, u64, u64)> = answers[..2]
        .iter()
        .map(|b| {
            assert_eq!(b["rejected"], serde_json::json!([]), "{b}");
            let n = |k: &str| b[k].as_u64().unwrap();
            (n("accepted"), n("issues_to_open"), n("repeats"))
        })
        .collect();
    ledger_answers.sort();
    assert_eq!(ledger_answers, [(1, 0, 1), (1, 1, 0)]);
    assert_eq!(answers[2]["accepted"], 3, "{}", answers[2]);
    assert_eq!(
        answers[2]["issues_to_open"], 1,
        "three standards, one problem"
    );
    assert_eq!(answers[2]["repeats"], 0);

    // Two transactions: the held one and one for the three requests (4 findings: the
    // repeat writes nothing).
    assert_eq!(*probe.applied_findings.lock().unwrap(), [1, 4]);
    let s = stats();
    assert_eq!((s.batches, s.committed, s.largest), (2, 4, 3));

    let reports = t.drain().await;
    assert!(reports.iter().all(|r| r.result == "done"), "{reports:#?}");
    assert_eq!(t.gh.issues("acme/ledger").len(), 1, "one issue, not two");
    assert_eq!(t.gh.issues("acme/payments").len(), 1, "S3.1");
    assert_eq!(t.gh.issues("acme/platform").len(), 1, "the logs bucket");
    assert_eq!(t.gh.count("POST", "/repos/*/*/issues"), 3);
}

/// A delivery about an issue Lever does not track (the common case: every `issues` event of
/// every installed repository) keeps at most 1 KB, here with GitHub's own 11.8 KB
/// `issues.labeled` example. Measured on the database file: pages in use before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untracked_webhook_delivery_stores_at_most_1_kb() {
    let Some(dir) =
        crate::fakes::require_conformance("an_untracked_webhook_delivery_stores_at_most_1_kb")
    else {
        return;
    };
    let body = std::fs::read(dir.join("webhooks/issues.labeled.0.json")).unwrap();
    assert!(body.len() > 11_000, "{} bytes", body.len());
    let t = TestApp::start().await;
    let pool = sqlx::SqlitePool::connect(&t.database_url).await.unwrap();
    let size = || async {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT (page_count - freelist_count) * page_size \
             FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        bytes
    };
    let before = size().await;
    const N: i64 = 500;
    let url = format!("{}/webhooks/github", t.url);
    for i in 0..N {
        // Each a different body (the same one again would be a replay, a duplicate): the
        // same JSON with `i` spaces after it.
        let mut body = body.clone();
        body.extend(std::iter::repeat_n(b' ', i as usize));
        let signature = crate::fakes::github::sign(crate::support::app::WEBHOOK_SECRET, &body);
        let res = t
            .http
            .post(&url)
            .header("x-github-event", "issues")
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .header("x-hub-signature-256", &signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let after = size().await;
    let per_delivery = (after - before) / N;
    assert!(
        per_delivery <= 1024,
        "{per_delivery} bytes per untracked delivery ({before} -> {after} bytes for {N})"
    );
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE body IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, N);
}

/// A 202 is durable: `lever serve` (the real binary) is killed with SIGKILL as soon as it has
/// answered a burst of deliveries and findings, then started again on the same database, and
/// every acknowledged delivery is there (with its body and its `github-event` job when it is
/// about a tracked issue), and every acknowledged finding.
async fn acknowledged_means_durable(database_url: Option<String>) {
    use crate::support::app::{INGEST_TOKEN, WEBHOOK_SECRET, demo_github};
    use crate::support::bin::Served;
    let gh = crate::fakes::github::FakeGitHub::start_with_test_app().await;
    demo_github(&gh);
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let url = database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", work.path().join("lever.db").display()));
    let served = Served::start(&gh, &sh, work.path(), database_url.as_deref()).await;
    let http = reqwest::Client::new();
    let post_event = |base: String, doc: Value| {
        let http = http.clone();
        async move {
            let res = http
                .post(format!("{base}/events/securityhub"))
                .bearer_auth(INGEST_TOKEN)
                .json(&doc)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let doc = |name: &str| -> Value {
        let path = root().join("examples/demo/findings").join(name);
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        sh.seed(doc.clone());
        doc
    };

    // An issue Lever tracks: the ledger finding's, opened by the binary's own worker.
    let (status, body) = post_event(
        served.base.clone(),
        doc("03-payments-prod-ledger-rds.2.json"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let store = lever::store::open(&url).await.expect("the same database");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (store.list_groups(None).await.unwrap().iter()).all(|g| g.issue_number.is_none()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the issue never opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The burst: deliveries about untracked and tracked issues, and findings, all at once.
    let untracked: Vec<WebhookDelivery> = (0..60)
        .map(|i| {
            gh.human_open_issue("acme/payments", &format!("q{i}"), "", "bob")
                .1
        })
        .collect();
    let tracked: Vec<WebhookDelivery> = (0..20)
        .map(|i| gh.human_add_label("acme/ledger", 1, &format!("note-{i}"), "carol"))
        .collect();
    let webhook_url = format!("{}/webhooks/github", served.base);
    let mut tasks = Vec::new();
    for d in untracked.iter().chain(&tracked) {
        let (http, d, url) = (http.clone(), d.clone(), webhook_url.clone());
        tasks.push(tokio::spawn(async move {
            let res = d.send(&http, &url, WEBHOOK_SECRET).await.unwrap();
            res.status()
        }));
    }
    let findings = tokio::spawn(post_event(
        served.base.clone(),
        doc("01-payments-prod-s3.1-three-standards.json"),
    ));
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let (findings_status, findings_body) = findings.await.unwrap();
    // Killed at once: nothing the process holds in memory survives.
    served.kill9().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );
    assert_eq!(findings_status, StatusCode::ACCEPTED, "{findings_body}");

    // Started again on the same database: everything acknowledged is there.
    let served = Served::start(&gh, &sh, work.path(), database_url.as_deref()).await;
    let jobs = store.jobs(None).await.unwrap();
    for (d, is_tracked) in
        (untracked.iter().map(|d| (d, false))).chain(tracked.iter().map(|d| (d, true)))
    {
        let id = format!("github:{}", d.id);
        let stored = store.delivery(&id).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("{id} acknowledged but lost"));
        assert_eq!(stored.body.is_some(), is_tracked, "{id}");
        let has_job = (jobs.iter()).any(|j| matches!(&j.job, Job::GithubEvent(of) if of.0 == id));
        assert_eq!(has_job, is_tracked, "{id}: its github-event job");
    }
    let s3 = (store.list_groups(None).await.unwrap().into_iter())
        .find(|g| g.data.control_id.as_deref() == Some("S3.1"));
    assert!(s3.is_some(), "the acknowledged finding's group");
    // The restarted server knows them: a redelivery is a duplicate.
    let res = tracked[0]
        .send(
            &http,
            &format!("{}/webhooks/github", served.base),
            WEBHOOK_SECRET,
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(served.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_sigkill_sqlite() {
    acknowledged_means_durable(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_sigkill_postgres() {
    let Some(url) =
        crate::support::pg::or_skip("acknowledged_deliveries_survive_sigkill_postgres").await
    else {
        return;
    };
    let schema = crate::support::pg::Schema::create(&url).await;
    acknowledged_means_durable(Some(schema.database_url())).await;
}
