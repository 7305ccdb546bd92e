//! Nothing lost: work that fails for good is parked where operators see it (`lever jobs`),
//! and comes back by itself (a later finding) or on request (`lever jobs retry`).

use serde_json::Value;

use crate::support::app::{TestApp, root};

const LEDGER_FINDING: &str = "examples/demo/findings/03-payments-prod-ledger-rds.2.json";

fn lever(t: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(args)
        .env("DATABASE_URL", &t.database_url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The ledger finding again, later: Security Hub re-evaluated it and it still fails.
fn updated_ledger_finding() -> Value {
    let text = std::fs::read_to_string(root().join(LEDGER_FINDING)).unwrap();
    let mut f: Value = serde_json::from_str(&text).unwrap();
    f["UpdatedAt"] = "2026-11-23T11:00:00.000Z".into();
    f["LastObservedAt"] = "2026-11-23T11:00:00.000Z".into();
    f
}

/// GitHub refuses to create the issue for good (403: the App cannot write there): the job is
/// parked with its error.
async fn parked_open_issue(t: &TestApp) {
    t.gh.fail_next("POST", "/repos/acme/ledger/issues", 403, 1);
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "open-issue" && r.result == "dead"),
        "{reports:#?}"
    );
    assert!(t.gh.issues("acme/ledger").is_empty());
}

#[tokio::test]
async fn parked_work_is_listed_with_its_error() {
    let t = TestApp::start().await;
    parked_open_issue(&t).await;
    let (ok, out, err) = lever(&t, &["jobs", "--failed", "--format", "json"]);
    assert!(ok, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    let j = &lines[0];
    assert_eq!(j["kind"], "open-issue");
    assert_eq!(j["state"], "parked");
    assert!(j["subject"].as_str().unwrap().contains("RDS.2"), "{j}");
    assert!(
        j["last_error"].as_str().unwrap().contains("forbidden"),
        "{j}"
    );
    for field in ["id", "run_at", "attempts", "created_at", "updated_at"] {
        assert!(!j[field].is_null(), "{field} missing: {j}");
    }
    let (ok, text, _) = lever(&t, &["jobs", "--failed"]);
    assert!(ok);
    assert!(text.contains("1 parked job(s)"), "{text}");
    assert!(text.contains("lever jobs retry"), "{text}");
}

#[tokio::test]
async fn a_later_finding_of_a_parked_group_tries_again() {
    let t = TestApp::start().await;
    parked_open_issue(&t).await;
    let (status, body) = t.post_event(&updated_ledger_finding()).await;
    assert_eq!(status, 202, "{body}");
    t.drain().await;
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "the issue opens on news"
    );
}

#[tokio::test]
async fn lever_jobs_retry_requeues_parked_work_and_audits_it() {
    let t = TestApp::start().await;
    parked_open_issue(&t).await;
    let (ok, _, err) = lever(&t, &["jobs", "retry", "12345"]);
    assert!(!ok, "an unknown id fails");
    assert!(err.contains("is not parked"), "{err}");

    let (ok, out, err) = lever(&t, &["jobs", "retry", "--all", "--by", "alice"]);
    assert!(ok, "{err}");
    assert!(out.contains("1 parked job(s) re-queued"), "{out}");
    let (_, pending, _) = lever(&t, &["jobs", "--format", "json"]);
    let pending = json_lines(&pending);
    assert!(
        pending
            .iter()
            .any(|j| j["kind"] == "open-issue" && j["attempts"] == 0),
        "{pending:?}"
    );
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
    let (_, parked, _) = lever(&t, &["jobs", "--failed", "--format", "json"]);
    assert!(json_lines(&parked).is_empty(), "nothing parked any more");
    let (_, audit, _) = lever(&t, &["audit", "--format", "json"]);
    let retried: Vec<Value> = json_lines(&audit)
        .into_iter()
        .filter(|a| a["action"] == "job-retried")
        .collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["actor"], "alice");
}

#[tokio::test]
async fn a_periodic_job_that_fails_is_not_parked_but_runs_again() {
    let t = TestApp::start().await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    t.sh.fail_next(
        "GetFindings",
        403,
        "AccessDeniedException",
        "not authorized to perform securityhub:GetFindings",
        1,
    );
    let reports = t.drain().await;
    let sync = reports
        .iter()
        .find(|r| r.kind == "sync")
        .expect("the sync ran");
    assert_eq!(sync.result, "retry", "{reports:#?}");
    let pending = t
        .app
        .store
        .jobs(Some(lever::store::JobState::Pending))
        .await
        .unwrap();
    let again = pending
        .iter()
        .find(|j| j.job == lever::store::Job::Sync)
        .expect("the sync is still scheduled");
    assert!(
        again
            .last_error
            .as_deref()
            .unwrap()
            .contains("not authorized")
    );
    // After its backoff, it runs (and succeeds) and schedules the next one.
    t.clock.set(again.run_at);
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "sync" && r.result == "done"),
        "{reports:#?}"
    );
    assert!(
        t.app
            .store
            .jobs(Some(lever::store::JobState::Pending))
            .await
            .unwrap()
            .iter()
            .any(|j| j.job == lever::store::Job::Sync),
        "the next sync is scheduled"
    );
}

/// Waits (bounded) until `cond` holds on the store; panics with `what` otherwise.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_outlives_its_lease_is_not_run_twice() {
    let t = TestApp::start().await;
    // GitHub is slow to create the issue: the job outlives its 5-minute lease.
    t.gh.delay_next("POST", "/repos/acme/ledger/issues", 1_000, 1);
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    let slow = lever::worker::Worker::new(t.app.clone(), "slow-worker")
        .with_heartbeat(std::time::Duration::from_millis(20));
    let running = tokio::spawn(async move { slow.run_once().await });
    let store = t.app.store.clone();
    let leased_by_slow = || {
        let store = store.clone();
        async move {
            store.jobs(None).await.unwrap().iter().any(|j| {
                j.job.kind() == "open-issue" && j.lease_owner.as_deref() == Some("slow-worker")
            })
        }
    };
    eventually("the slow worker holds the job", leased_by_slow).await;
    let later = t.app.now() + chrono::Duration::minutes(6);
    t.clock.set(later);
    let renewed =
        || {
            let store = store.clone();
            async move {
                store.jobs(None).await.unwrap().iter().any(|j| {
                    j.job.kind() == "open-issue" && j.lease_expires.is_some_and(|e| e > later)
                })
            }
        };
    eventually("the running job's lease is renewed past the clock", renewed).await;
    // Another worker finds nothing to take over while the slow one still works.
    let other = t.worker.run_once().await.unwrap();
    assert!(other.is_none(), "{other:?}");
    let report = running
        .await
        .unwrap()
        .unwrap()
        .expect("the slow job finished");
    assert_eq!(report.result, "done", "{report:?}");
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1, "exactly one issue");
}

/// Runs one `redeliver` job now (as `lever serve` does on start-up and every `[sync] webhooks`).
async fn run_redelivery(t: &TestApp) {
    let now = t.app.now();
    t.app
        .store
        .apply(
            lever::store::ChangeSet {
                jobs: vec![lever::store::NewJob::new(lever::store::Job::Redeliver, now)],
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    t.drain().await;
}

#[tokio::test]
async fn webhooks_missed_while_lever_was_down_are_redelivered() {
    let t = TestApp::start().await;
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    let ledger = "acme/ledger";
    assert!(
        t.app.store.list_groups(None).await.unwrap()[0]
            .state()
            .acknowledged
            .is_none()
    );

    // Lever is down: the acknowledgement never arrives (GitHub could not connect).
    let missed = t.gh.human_add_label(ledger, 1, "acknowledged", "carol");
    t.gh.log_delivery(&missed, 0);
    // A delivery Lever recorded although GitHub saw a timeout must not come back.
    let recorded = t.gh.human_comment(ledger, 1, "Looking into it.", "sam");
    let (status, _) = t.post_webhook(&recorded).await;
    assert_eq!(status, 202);
    t.gh.log_delivery(&recorded, 504);
    t.drain().await;
    assert!(
        t.app.store.list_groups(None).await.unwrap()[0]
            .state()
            .acknowledged
            .is_none(),
        "a comment by someone else is no acknowledgement"
    );

    run_redelivery(&t).await;
    assert_eq!(t.gh.redelivery_requests().len(), 1, "only the missed one");
    t.deliver(t.gh.drain_webhooks()).await;
    assert!(
        t.app.store.list_groups(None).await.unwrap()[0]
            .state()
            .acknowledged
            .is_some(),
        "the missed acknowledgement was applied"
    );

    // Nothing left to ask for: the redelivered event succeeded.
    run_redelivery(&t).await;
    assert_eq!(t.gh.redelivery_requests().len(), 1);
    t.gh.assert_conformant();
}

#[tokio::test]
async fn lever_jobs_shows_the_queue_and_the_backlog_of_issues_to_open() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    let (ok, out, err) = lever(&t, &["jobs", "--format", "json"]);
    assert!(ok, "{err}");
    let pending = json_lines(&out);
    let opens = pending.iter().filter(|j| j["kind"] == "open-issue").count();
    assert!(opens >= 5, "{out}");
    assert!(pending.iter().all(|j| j["state"] == "pending"));
    let demo = root().join("examples/demo");
    let (ok, out, err) = lever(
        &t,
        &[
            "jobs",
            "backlog",
            "--config",
            demo.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let issues = report["issues"].as_array().unwrap();
    assert_eq!(issues.len(), opens, "{report}");
    // Most urgent first: priorities never rise, and open times never go back.
    let priorities: Vec<u64> = issues
        .iter()
        .map(|i| i["priority"].as_u64().unwrap())
        .collect();
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "{priorities:?}"
    );
    let opens_at: Vec<&str> = issues
        .iter()
        .map(|i| i["opens_at"].as_str().unwrap())
        .collect();
    assert!(opens_at.windows(2).all(|w| w[0] <= w[1]), "{opens_at:?}");
    assert_eq!(issues[0]["severity"], "CRITICAL", "{report}");
    assert!(!report["last_opens_at"].is_null(), "{report}");
    let (ok, text, _) = lever(&t, &["jobs", "backlog", "--config", demo.to_str().unwrap()]);
    assert!(ok);
    assert!(text.contains("issue(s) waiting to open"), "{text}");
}

#[tokio::test]
async fn a_nul_character_in_a_finding_does_not_fail_its_batch_on_postgres() {
    let Some(url) = crate::support::pg::or_skip(
        "a_nul_character_in_a_finding_does_not_fail_its_batch_on_postgres",
    )
    .await
    else {
        return;
    };
    let t = TestApp::builder().postgres(url).start().await;
    let text = std::fs::read_to_string(root().join(LEDGER_FINDING)).unwrap();
    let mut f: Value = serde_json::from_str(&text).unwrap();
    f["Title"] = "RDS snapshot public\u{0}ly restorable".into();
    f["Description"] = "text with a NUL \u{0} inside".into();
    f["Resources"][0]["Tags"]["note\u{0}"] = "x\u{0}y".into();
    let (status, body) = t.post_event(&f).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "open-issue" && r.result == "done"),
        "{reports:#?}"
    );
    let issues = t.gh.issues("acme/ledger");
    assert_eq!(issues.len(), 1, "the issue opens");
    let group = &t.app.store.list_groups(None).await.unwrap()[0];
    let stored = t
        .app
        .store
        .findings_in_group(&group.group_key)
        .await
        .unwrap();
    assert!(
        stored[0].finding.title.contains('\u{FFFD}'),
        "{}",
        stored[0].finding.title
    );
}

#[tokio::test]
async fn a_refused_security_hub_write_is_retried_until_it_goes_through() {
    let t = TestApp::start().await;
    t.sh.seed_file(&root().join(LEDGER_FINDING));
    // The IAM permission is missing: Security Hub refuses, again and again, until fixed.
    t.sh.fail_next(
        "BatchUpdateFindings",
        403,
        "AccessDeniedException",
        "not authorized to perform securityhub:BatchUpdateFindings",
        3,
    );
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    for _ in 0..3 {
        let reports = t.drain().await;
        let notify = reports
            .iter()
            .find(|r| r.kind == "notify-findings")
            .expect("the writeback ran");
        assert_eq!(
            notify.result, "retry",
            "never parked while refused: {reports:#?}"
        );
        let next = t
            .app
            .store
            .jobs(Some(lever::store::JobState::Pending))
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.job.kind() == "notify-findings")
            .expect("still queued");
        t.clock.set(next.run_at);
    }
    // The permission was granted: the next attempt goes through.
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "notify-findings" && r.result == "done"),
        "{reports:#?}"
    );
    assert_eq!(t.workflow(), ["NOTIFIED"]);
}

#[tokio::test]
async fn lever_sync_exits_1_when_security_hub_refuses_its_writes() {
    let t = TestApp::start().await;
    t.sh.seed_file(&root().join(LEDGER_FINDING));
    t.sh.fail_next(
        "BatchUpdateFindings",
        403,
        "AccessDeniedException",
        "not authorized to perform securityhub:BatchUpdateFindings",
        100,
    );
    let (db, gh_url, sh_url) = (t.database_url.clone(), t.gh.url(), t.sh.url());
    let config = crate::support::app::demo_config_with_budget(crate::support::app::GENEROUS_BUDGET);
    let dir = config.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::bin::lever_against_fakes(
            &[
                "sync",
                "--config",
                dir.to_str().unwrap(),
                "--format",
                "json",
            ],
            &db,
            &gh_url,
            &sh_url,
        )
        .output()
        .unwrap()
    })
    .await
    .unwrap();
    drop(config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Security Hub write(s) refused"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["securityhub_writes_refused"], 1, "{report}");
    assert_eq!(report["jobs_retrying"], 1, "{report}");
    assert_eq!(report["jobs_parked"], 0, "{report}");
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "the issue opened all the same"
    );
}

#[tokio::test]
async fn a_parked_writeback_is_driven_again_by_the_next_report_of_its_finding() {
    let dir = crate::support::app::demo_config_with("");
    let path = dir.path().join("lever.toml");
    let toml = std::fs::read_to_string(&path).unwrap().replacen(
        "[securityhub]\n",
        "[securityhub]\nretry_writes_for = \"1m\"\n",
        1,
    );
    std::fs::write(&path, toml).unwrap();
    let t = TestApp::builder().config(dir.path()).start().await;
    t.sh.seed_file(&root().join(LEDGER_FINDING));
    t.sh.fail_next(
        "BatchUpdateFindings",
        403,
        "AccessDeniedException",
        "not authorized to perform securityhub:BatchUpdateFindings",
        2,
    );
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    t.drain().await;
    t.clock.advance(chrono::Duration::minutes(5));
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "notify-findings" && r.result == "dead"),
        "parked past the ceiling: {reports:#?}"
    );
    assert_eq!(t.workflow(), ["NEW"]);
    // Security Hub reports the finding again (still failing, still NEW): Lever writes again.
    let (status, _) = t.post_event(&updated_ledger_finding()).await;
    assert_eq!(status, 202);
    t.drain().await;
    assert_eq!(t.workflow(), ["NOTIFIED"]);
}

#[tokio::test]
async fn after_a_restore_from_backup_lever_adopts_the_issues_it_made_since() {
    let t = TestApp::start().await;
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
    // The backup predates the issue: the group waits for its issue to be opened.
    let store = t.app.store.clone();
    let mut group = store.list_groups(None).await.unwrap().remove(0);
    let version = group.version;
    group.issue_number = None;
    group.issue_url = None;
    group.status = lever::store::GroupStatus::Pending;
    group.data.lifecycle = None;
    let now = t.app.now();
    store
        .apply(
            lever::store::ChangeSet {
                groups: vec![lever::store::GroupWrite::Update {
                    record: group.clone(),
                    expected_version: version,
                }],
                jobs: vec![lever::store::NewJob::new(
                    lever::store::Job::OpenIssue(group.group_key.clone()),
                    now,
                )],
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    // Lever restarts on the restored store.
    let restarted = crate::support::app::app_on(
        &root().join("examples/demo"),
        store.clone(),
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
    )
    .await;
    let reports = lever::worker::Worker::new(restarted, "after-restore")
        .run_until_idle()
        .await
        .unwrap();
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "open-issue" && r.result == "done"),
        "{reports:#?}"
    );
    assert_eq!(
        t.gh.issues("acme/ledger").len(),
        1,
        "adopted, not duplicated"
    );
    let group = store.group(&group.group_key).await.unwrap().unwrap();
    assert_eq!(group.issue_number, Some(1));
    let audit = store.audit(&Default::default()).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "issue-adopted"),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn an_effect_that_cannot_be_performed_is_parked_alone_and_the_next_ones_run() {
    let t = TestApp::start().await;
    t.ingest_file(&root().join(LEDGER_FINDING)).await;
    t.drain().await;
    t.deliver(t.gh.drain_webhooks()).await;
    let group = t.app.store.list_groups(None).await.unwrap().remove(0);
    let effect = |id: &str, action: lever::domain::lifecycle::Action| lever::store::Effect {
        id: id.into(),
        group_key: group.group_key.clone(),
        action,
        source: "test".into(),
    };
    let now = t.app.now();
    t.app
        .store
        .apply(
            lever::store::ChangeSet {
                outbox: vec![
                    lever::store::OutboxWrite::Add(effect(
                        "e-comment",
                        lever::domain::lifecycle::Action::Comment {
                            body: "A note from Lever.".into(),
                        },
                    )),
                    lever::store::OutboxWrite::Add(effect(
                        "e-label",
                        lever::domain::lifecycle::Action::AddLabel {
                            label: "overdue".into(),
                        },
                    )),
                ],
                jobs: vec![lever::store::NewJob::new(
                    lever::store::Job::ApplyEffects(group.group_key.clone()),
                    now,
                )],
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    // GitHub refuses the comment for good (403: the repository was archived).
    t.gh.fail_next("POST", "/repos/acme/ledger/issues/1/comments", 403, 1);
    let reports = t.drain().await;
    assert!(
        reports
            .iter()
            .any(|r| r.kind == "apply-effects" && r.result == "done"),
        "{reports:#?}"
    );
    assert!(
        t.labels("acme/ledger", 1).contains(&"overdue".to_string()),
        "the next effect ran"
    );
    assert!(
        !t.comments_by_bot("acme/ledger", 1)
            .iter()
            .any(|c| c.contains("A note from Lever."))
    );
    let (ok, out, err) = lever(&t, &["jobs", "--failed", "--format", "json"]);
    assert!(ok, "{err}");
    let lines = json_lines(&out);
    let parked: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "effect").collect();
    assert_eq!(parked.len(), 1, "{out}");
    assert_eq!(parked[0]["effect_id"], "e-comment");
    assert_eq!(parked[0]["action"]["kind"], "comment");
    assert_eq!(parked[0]["state"], "parked");
    assert!(
        parked[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("forbidden"),
        "{out}"
    );

    // Fixed (the repository unarchived): the operator hands it back.
    let (ok, out, err) = lever(&t, &["jobs", "retry", "--all"]);
    assert!(ok, "{err}");
    assert!(out.contains("1 parked effect(s) handed back"), "{out}");
    t.drain().await;
    assert!(
        t.comments_by_bot("acme/ledger", 1)
            .iter()
            .any(|c| c.contains("A note from Lever."))
    );
    let (_, out, _) = lever(&t, &["jobs", "--failed", "--format", "json"]);
    assert!(json_lines(&out).is_empty(), "{out}");
}

/// `lever serve` stopping (SIGTERM) while many jobs are due: each worker finishes the job in
/// hand and stops, leaving the rest queued for the next start, instead of draining the whole
/// queue first (which, with thousands of jobs failing against an unreachable GitHub, kept a
/// stopping process alive for minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_finishes_the_job_in_hand_and_leaves_the_rest_queued() {
    let t = TestApp::start().await;
    t.ingest_demo().await;
    let due = |t: &TestApp| {
        let store = t.app.store.clone();
        async move {
            store
                .jobs(Some(lever::store::JobState::Pending))
                .await
                .unwrap()
                .iter()
                .filter(|j| j.job.kind() == "open-issue")
                .count()
        }
    };
    let queued = due(&t).await;
    assert!(queued >= 3, "the demo queues several issues: {queued}");
    // Every issue creation is slow, so the worker is inside its first job when told to stop.
    t.gh.delay_next("POST", "/repos/*/issues", 300, 100);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = lever::worker::Worker::new(t.app.clone(), "stopping-worker");
    let running = tokio::spawn(worker.run(stop_rx));
    let store = t.app.store.clone();
    eventually("the worker holds a job", || {
        let store = store.clone();
        async move {
            store
                .jobs(None)
                .await
                .unwrap()
                .iter()
                .any(|j| j.lease_owner.as_deref() == Some("stopping-worker"))
        }
    })
    .await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the worker stops")
        .unwrap();
    let left = due(&t).await;
    assert!(
        left >= queued - 1,
        "a stopping worker finishes at most the job in hand: {queued} queued, {left} left"
    );
}
