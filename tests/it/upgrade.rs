//! Upgrades lose nothing (issue 7), on both backends.
//!
//! * `upgrade_from_64600c1_*`: a database written by the previous version (64600c1: schema
//!   0001, each group's outbox inside `groups.data`, jobs with a `payload`) is opened by this
//!   version, which runs 0002. Every record survives and decodes (groups into `GroupData`, the
//!   outbox into rows in its order, jobs into `Job`); then the real server and worker run every
//!   pending job to the end against the fakes, and the effects the old version left undone are
//!   done exactly once, in order, on the right issue.
//! * `upgrade_from_691e1c2_*`: the same database after 691e1c2 (the version before this one)
//!   ran its migration 0002 on it: this version runs 0003 (lean deliveries). The delivery of
//!   the pending `github-event` job keeps its JSON payload as its body, and the job runs; the
//!   other deliveries keep only what deduplication needs.
//! * `rolling_upgrade_*`: a job of a kind this version does not know (written by a newer
//!   replica) is left alone: never leased, never failed, ignored by `next_job_at`.
//!
//! The old database is made as 64600c1 made it (see `upgrade/raw.rs`: its frozen migration,
//! applied by sqlx's migrator) and filled with raw SQL in its shapes (see `upgrade/old.rs`).

mod old;
mod raw;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use lever::config::Config;
use lever::domain::lifecycle::Action;
use lever::store::{AuditFilter, Job, JobRecord, JobState};

use crate::support::app::{TestApp, root};
use old::{IN_FLIGHT, LEDGER, Old, OldJob};
use raw::{Fresh, q};

/// `v` without its `null` members (an absent optional and a `null` one mean the same).
fn without_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

// =============================================================================================
// 1. 64600c1's database, opened and run by this version

/// The version whose database this version opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    /// Schema 0001.
    V64600c1,
    /// Schema 0002 (deliveries as in 0001).
    V691e1c2,
}

async fn upgrade(db: Fresh, from: From) {
    let config = Config::load(&root().join("examples/demo")).unwrap();
    let raw = &db.raw;
    raw.migrate_like_64600c1().await;
    let old = old::world(&config);
    old::write(raw, &old).await;
    if from == From::V691e1c2 {
        raw.migrate_like_691e1c2().await;
    }
    let before = raw.counts().await;
    assert_eq!(
        before,
        BTreeMap::from([
            ("audit", 14),
            ("deliveries", 3),
            ("findings", 8),
            ("groups", 8),
            ("jobs", 26),
            ("kv", 2),
        ]),
        "the old database as written"
    );
    let old_jobs: BTreeMap<i64, &OldJob> = raw.job_ids().await.into_iter().zip(&old.jobs).collect();

    let payload_bytes = raw.delivery_bytes("length(CAST(payload AS TEXT))").await;

    // --- `lever serve` of this version opens it: migrations 0002 (unless 691e1c2 ran it)
    // 0003 and 0004 run.
    let store = lever::store::open(&db.url).await.expect("open + migrate");
    assert_eq!(
        raw.count("_sqlx_migrations").await,
        crate::store::migrations(),
        "every migration of this version ran"
    );
    assert_eq!(raw.counts().await, before, "no row lost or added");
    let effects: usize = old.groups.iter().map(|g| g.outbox.len()).sum();
    assert_eq!(
        raw.count("outbox").await,
        effects as i64,
        "a row per effect"
    );
    for (key, data) in raw.group_data().await {
        assert!(
            data.get("outbox").is_none(),
            "{key} kept its outbox: {data}"
        );
    }

    // Migration 0013 backfilled the history: every group's latest row is where it stands.
    let history = store
        .group_history(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
        .await
        .unwrap();
    for g in store.list_groups(None).await.unwrap() {
        let last = history
            .iter()
            .rfind(|r| r.group_key == g.group_key)
            .unwrap_or_else(|| panic!("{}: no history", g.group_key.0));
        assert_eq!(
            (last.state, last.severity, last.repo.as_str()),
            (
                lever::store::HistoryState::of(&g),
                g.data.severity,
                g.repo.as_str()
            ),
            "{}: backfilled history",
            g.group_key.0
        );
    }

    // Every group decodes into `GroupData`: nothing lost, nothing invented.
    assert_eq!(
        store.list_groups(None).await.unwrap().len(),
        old.groups.len()
    );
    for g in &old.groups {
        let rec = store.group(&g.key).await.unwrap().unwrap();
        assert_eq!(rec.data.lifecycle, g.lifecycle, "{}: lifecycle", g.name);
        if let Some(state) = &g.lifecycle {
            assert_eq!(&rec.state(), state, "{}", g.name);
        }
        // 64600c1 recorded no route assignees (the route falls back to its OWNERS line).
        assert!(rec.data.route.assignees.is_empty(), "{}", g.name);
        let mut data = serde_json::to_value(&rec.data).unwrap();
        data["route"].as_object_mut().unwrap().remove("assignees");
        let mut was = g.data.clone();
        was.as_object_mut().unwrap().remove("outbox");
        // The one thing dropped on purpose: 64600c1's single `Exception-Expires:` date, written
        // by any approver and never cleared; this version keeps each approver's own date for the
        // current period only.
        if let Some(l) = was.get_mut("lifecycle").and_then(|l| l.as_object_mut()) {
            l.remove("requested_expiry");
        }
        assert_eq!(without_nulls(data), without_nulls(was), "{}: data", g.name);
        assert_eq!(
            (rec.repo.as_str(), rec.issue_number, rec.issue_url.clone()),
            (LEDGER, g.issue, g.url()),
            "{}",
            g.name
        );
        assert_eq!(
            (rec.status.as_str(), rec.assignee.as_deref(), rec.version),
            (g.status, Some("carol"), g.version),
            "{}",
            g.name
        );
        // The outbox: the old array, as rows, in its order.
        assert_eq!(store.outbox(&g.key).await.unwrap(), g.outbox, "{}", g.name);
        assert_eq!(
            store.findings_in_group(&g.key).await.unwrap(),
            vec![g.finding_record()],
            "{}: findings",
            g.name
        );
    }

    // Every job decodes to the job it was, with its state, times, attempts and lease.
    let jobs = store.jobs(None).await.unwrap();
    assert_eq!(jobs.len(), old.jobs.len());
    for j in &jobs {
        let was = old_jobs[&j.id];
        assert!(!matches!(j.job, Job::Unknown { .. }), "{}", j.job);
        assert_eq!(j.job, was.expect, "job {}", j.id);
        assert_eq!(
            (
                j.state.as_str(),
                j.run_at,
                j.attempts,
                j.last_error.as_deref()
            ),
            (was.state, was.run_at, was.attempts, was.last_error),
            "{}",
            j.job
        );
        assert_eq!(j.lease_expires, was.lease.map(|l| l.1), "{}", j.job);
        if was.lease.is_none_or(|l| l.0 != IN_FLIGHT) {
            assert_eq!(
                j.lease_owner.as_deref(),
                was.lease.map(|l| l.0),
                "{}",
                j.job
            );
        }
    }
    let kinds: BTreeSet<&str> = old_jobs.values().map(|j| j.kind).collect();
    assert_eq!(kinds.len(), 13, "every kind 64600c1 had: {kinds:?}");
    // Deliveries: a pending `github-event` job's keeps its payload (as JSON text, which the
    // job parses); the others keep only what deduplication needs (their digest is unknown).
    let kept_bytes = raw
        .delivery_bytes("COALESCE(length(body_sha256), 0) + COALESCE(length(body), 0)")
        .await;
    for d in &old.deliveries {
        let stored = store.delivery(&d.id).await.unwrap().expect("kept");
        assert_eq!(
            (
                stored.event.as_str(),
                stored.received_at,
                stored.body_sha256
            ),
            (d.event.as_str(), d.received_at, None),
            "{}",
            d.id
        );
        let pending_job = old
            .jobs
            .iter()
            .any(|j| j.kind == "github-event" && j.subject == d.id && j.state == "pending");
        if pending_job {
            let body = stored.body.expect("the job's body");
            let body: Value = serde_json::from_slice(&body).expect("JSON text");
            assert_eq!(body, d.payload, "{}", d.id);
        } else {
            assert_eq!(stored.body, None, "{}", d.id);
            assert_eq!(kept_bytes[&d.id], 0, "{}", d.id);
            assert!(payload_bytes[&d.id] > 50, "{}", d.id);
        }
    }
    assert_eq!(
        (old.deliveries.iter())
            .filter(|d| kept_bytes[&d.id] > 0)
            .count(),
        1,
        "one delivery has a pending job"
    );
    for (k, v) in &old.kv {
        assert_eq!(store.kv_get(k).await.unwrap().as_ref(), Some(v), "{k}");
    }
    assert_eq!(
        store.audit(&AuditFilter::default()).await.unwrap(),
        old.audit
    );

    // A 64600c1 worker still up (a rolling deploy) was performing the "fixed" group's effects
    // when 0002 ran: it had posted the comment (see `set_the_scene`); it finds no outbox in
    // `groups.data` any more, so nothing left to do, and finishes the job with 64600c1's
    // statement. That must neither strand the moved effects nor repeat the comment.
    let in_flight = old_jobs
        .iter()
        .find(|(_, j)| j.lease.is_some_and(|l| l.0 == IN_FLIGHT));
    let (id, at) = (in_flight.unwrap().0, raw.ts(old::now()));
    raw.exec(&format!(
        "UPDATE jobs SET
            state = CASE WHEN rerun THEN 'pending' ELSE 'done' END,
            run_at = CASE WHEN rerun THEN {at} ELSE run_at END,
            attempts = CASE WHEN rerun THEN 0 ELSE attempts END,
            rerun = FALSE, lease_owner = NULL, lease_expires = NULL, updated_at = {at}
         WHERE id = {id} AND state = 'pending' AND lease_owner = {}",
        q(IN_FLIGHT)
    ))
    .await;
    let jobs = store.jobs(None).await.unwrap();
    let job = jobs.iter().find(|j| j.id == *id).unwrap();
    assert_eq!(
        job.state,
        JobState::Pending,
        "not finished by the old worker: {job:?}"
    );
    drop(store);

    // --- Then it runs, against fakes holding what 64600c1 had done on GitHub and in
    // Security Hub.
    let app = TestApp::builder().database(&db.url).start().await;
    set_the_scene(&app, &old).await;
    let (github_before, sh_before) = (app.gh.requests().len(), app.sh.requests().len());
    app.settle().await;
    // The in-flight job runs once the old worker's lease has ended.
    app.clock.advance(Duration::minutes(5));
    app.settle().await;

    // Every job 64600c1 left pending ran to the end; nothing died; nothing due is left.
    let jobs: BTreeMap<i64, JobRecord> = (app.app.store.jobs(None).await.unwrap())
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    for (id, was) in &old_jobs {
        let expected = if was.state == "dead" {
            JobState::Dead
        } else {
            JobState::Done
        };
        let j = &jobs[id];
        assert_eq!(j.state, expected, "{} ({:?})", j.job, j.last_error);
    }
    let dead = jobs.values().filter(|j| j.state == JobState::Dead).count();
    assert_eq!(dead, 1, "only the job 64600c1 had given up on");
    let now = app.app.now();
    let due: Vec<&JobRecord> = (jobs.values())
        .filter(|j| j.state == JobState::Pending && j.run_at <= now)
        .collect();
    assert!(due.is_empty(), "due jobs left: {due:#?}");
    for g in &old.groups {
        let left = app.app.store.outbox(&g.key).await.unwrap();
        assert!(left.is_empty(), "{}: {left:?}", g.name);
    }

    // The effects 64600c1 left undone were done, each once, in order, on the right issue.
    let github = &app.gh.requests()[github_before..];
    let securityhub = &app.sh.requests()[sh_before..];
    for g in &old.groups {
        let Some(n) = g.issue else { continue };
        let issue_path = format!("/repos/{LEDGER}/issues/{n}");
        let mut last = 0;
        for e in &g.outbox {
            let seq = match &e.action {
                Action::Comment { body } => {
                    let marker = format!("<!-- lever:effect={} -->", e.id);
                    // Counted over the whole log: 64600c1's worker may have posted it.
                    let posted: Vec<_> = (app.gh.requests().into_iter())
                        .filter(|r| r.method == "POST")
                        .filter(|r| {
                            r.body
                                .as_ref()
                                .is_some_and(|b| b.to_string().contains(&marker))
                        })
                        .collect();
                    assert_eq!(posted.len(), 1, "{}: {marker}", g.name);
                    assert_eq!(
                        posted[0].path,
                        format!("{issue_path}/comments"),
                        "{}",
                        g.name
                    );
                    let on_issue = app.comments_by_bot(LEDGER, n);
                    assert!(
                        on_issue
                            .iter()
                            .any(|c| c.starts_with(body.as_str()) && c.contains(&marker)),
                        "{}: {on_issue:#?}",
                        g.name
                    );
                    posted[0].seq
                }
                Action::AddLabel { label } => {
                    (github.iter())
                        .find(|r| {
                            r.method == "POST"
                                && r.path == format!("{issue_path}/labels")
                                && r.body
                                    .as_ref()
                                    .is_some_and(|b| b["labels"][0] == label.as_str())
                        })
                        .unwrap_or_else(|| panic!("{}: label {label} on #{n}", g.name))
                        .seq
                }
                Action::Close { .. } => {
                    (github.iter())
                        .find(|r| {
                            r.method == "PATCH"
                                && r.path == issue_path
                                && r.body.as_ref().is_some_and(|b| b["state"] == "closed")
                        })
                        .unwrap_or_else(|| panic!("{}: #{n} not closed", g.name))
                        .seq
                }
                Action::UpdateFindings { workflow, .. } => {
                    let sent = securityhub.iter().any(|r| {
                        r.operation.as_deref() == Some("BatchUpdateFindings")
                            && r.body.as_ref().is_some_and(|b| {
                                b["Workflow"]["Status"] == workflow.as_str()
                                    && b["FindingIdentifiers"][0]["Id"] == g.finding.id.as_str()
                            })
                    });
                    assert!(sent, "{}: {workflow:?} not sent", g.name);
                    last
                }
                other => panic!("no check for {other:?}"),
            };
            assert!(seq >= last, "{}: effects out of order", g.name);
            last = seq;
        }
    }

    // And the jobs did their work: the pending groups got their issues (#7, #8), the delivery
    // was applied, the expired exception was lifted, the labels and the digest exist, the
    // sync ran.
    let mut opened = BTreeSet::new();
    for name in ["pending", "recreated"] {
        let rec = app.app.store.group(&old.group(name).key).await.unwrap();
        opened.insert(rec.unwrap().issue_number.expect("issue opened"));
    }
    assert_eq!(opened, BTreeSet::from([7, 8]));
    let acknowledged = app.app.store.group(&old.group("acknowledged").key).await;
    let labels = acknowledged.unwrap().unwrap().state().labels;
    assert!(labels.contains("in-progress"), "{labels:?}");
    assert_eq!(app.gh.issue(LEDGER, 4).unwrap()["state"], "open");
    let exception = app.sh.finding(&old.group("exception").finding.id).unwrap();
    assert_eq!(exception["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(app.gh.issue(LEDGER, 6).unwrap()["state"], "closed");
    assert!(app.gh.repo_labels(LEDGER).iter().any(|l| l == "overdue"));
    let digest = app.gh.issues("acme/security");
    assert!(
        digest
            .iter()
            .any(|i| i["title"] == "Lever digest: open security issues")
    );
    assert_ne!(
        app.app.store.kv_get("sync.cursor").await.unwrap(),
        old.kv
            .iter()
            .find(|(k, _)| k == "sync.cursor")
            .map(|(_, v)| v.clone()),
        "the sync ran"
    );
}

/// The fakes as 64600c1 left them: the issues its bot opened (#1..#6), what people did to
/// them (the deliveries of which 64600c1 had handled, but one), the findings in Security Hub.
async fn set_the_scene(app: &TestApp, old: &Old) {
    for g in old.groups.iter().filter(|g| g.issue.is_some()) {
        let body = format!("Security Hub reports `{}`.", g.finding.id);
        let issue = (app.app.github)
            .create_issue(
                LEDGER,
                &g.finding.title,
                &body,
                &["security-finding".to_string()],
                &["carol".to_string()],
            )
            .await
            .unwrap();
        assert_eq!(Some(issue.number), g.issue, "{}", g.name);
    }
    // The effect the in-flight 64600c1 worker had just performed (see `upgrade`).
    let fixed = old.group("fixed");
    let Action::Comment { body } = &fixed.outbox[0].action else {
        panic!("fixed: a comment first")
    };
    let comment = format!("{body}\n\n<!-- lever:effect={} -->", fixed.outbox[0].id);
    let n = fixed.issue.unwrap();
    app.app
        .github
        .create_comment(LEDGER, n, &comment)
        .await
        .unwrap();
    let gh = &app.gh;
    gh.human_add_label(LEDGER, 2, "acknowledged", "carol");
    gh.human_add_label(LEDGER, 2, "in-progress", "carol"); // its delivery waits in the store
    gh.human_add_label(LEDGER, 3, "acknowledged", "carol");
    gh.human_add_label(LEDGER, 3, "exception-requested", "carol");
    gh.human_add_label(LEDGER, 3, "cto-approved", "cto-user");
    gh.human_add_label(LEDGER, 4, "exception-requested", "carol");
    gh.human_add_label(LEDGER, 4, "cto-approved", "cto-user");
    gh.human_close(LEDGER, 4, "not_planned", "carol");
    gh.human_close(LEDGER, 5, "completed", "carol");
    gh.drain_webhooks();
    for g in &old.groups {
        app.sh.seed(g.asff.clone());
    }
    app.sh.drain_events();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_64600c1_loses_nothing_sqlite() {
    upgrade(Fresh::sqlite().await, From::V64600c1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_64600c1_loses_nothing_postgres() {
    if let Some(db) = Fresh::postgres("upgrade_from_64600c1_loses_nothing_postgres").await {
        upgrade(db, From::V64600c1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_691e1c2_loses_nothing_sqlite() {
    upgrade(Fresh::sqlite().await, From::V691e1c2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_691e1c2_loses_nothing_postgres() {
    if let Some(db) = Fresh::postgres("upgrade_from_691e1c2_loses_nothing_postgres").await {
        upgrade(db, From::V691e1c2).await;
    }
}

// =============================================================================================
// 2. A rolling upgrade: a job kind of a newer replica

async fn rolling(db: Fresh) {
    let app = TestApp::builder().database(&db.url).start().await;
    let store = &app.app.store;
    let now = app.app.now();
    let raw = &db.raw;
    let row = |kind: &str, subject: &str, run_at: DateTime<Utc>| {
        let created = raw.ts(now - Duration::hours(3));
        format!(
            "INSERT INTO jobs (kind, subject, state, run_at, attempts, created_at, updated_at)
             VALUES ({}, {}, 'pending', {}, 0, {created}, {created});\n",
            q(kind),
            q(subject),
            raw.ts(run_at),
        )
    };
    // Known jobs on both sides of the newer replica's, which is due first.
    let rows = [
        row("ensure-labels", LEDGER, now - Duration::hours(2)),
        row("reconcile-issues", LEDGER, now - Duration::hours(3)),
        row("ensure-labels", "acme/payments", now - Duration::hours(1)),
    ];
    raw.exec(&rows.concat()).await;
    let future = Job::Unknown {
        kind: "reconcile-issues".into(),
        subject: LEDGER.into(),
    };
    let listed = store.jobs(None).await.unwrap();
    assert_eq!(
        listed.iter().map(|j| j.job.clone()).collect::<Vec<_>>(),
        [
            Job::EnsureLabels(LEDGER.into()),
            future.clone(),
            Job::EnsureLabels("acme/payments".into()),
        ]
    );
    let unknown = listed[1].clone();
    assert_eq!(
        store.next_job_at().await.unwrap(),
        Some(now - Duration::hours(2)),
        "next_job_at ignores the unknown kind"
    );

    let ran = app.drain().await;
    let ran: Vec<_> = ran
        .iter()
        .map(|r| (r.kind.as_str(), r.subject.as_str(), r.result))
        .collect();
    assert_eq!(
        ran,
        [
            ("ensure-labels", LEDGER, "done"),
            ("ensure-labels", "acme/payments", "done"),
        ],
        "only the known jobs ran"
    );
    for repo in [LEDGER, "acme/payments"] {
        let have = app.gh.repo_labels(repo);
        for (name, _, _) in lever::domain::lifecycle::labels::VOCABULARY {
            assert!(have.iter().any(|h| h == name), "{repo}: label {name}");
        }
    }

    // The unknown job is exactly as the newer replica wrote it: pending, never leased.
    let after = store.jobs(None).await.unwrap();
    let still: Vec<&JobRecord> = after.iter().filter(|j| j.job == future).collect();
    assert_eq!(still, [&unknown], "untouched");
    assert_eq!(
        (
            unknown.state,
            unknown.attempts,
            unknown.lease_owner.as_deref()
        ),
        (JobState::Pending, 0, None)
    );
    assert_eq!(
        (unknown.lease_expires, unknown.last_error.as_deref()),
        (None, None)
    );
    let pending = store.jobs(Some(JobState::Pending)).await.unwrap();
    assert_eq!(
        pending.iter().map(|j| &j.job).collect::<Vec<_>>(),
        [&future]
    );
    assert_eq!(
        store.next_job_at().await.unwrap(),
        None,
        "nothing runnable is pending"
    );
    let later = now + Duration::days(1);
    let leased = store
        .lease_job("another", later, Duration::minutes(5))
        .await;
    assert!(
        leased.unwrap().is_none(),
        "never leased, even long after it was due"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_upgrade_leaves_unknown_job_kinds_alone_sqlite() {
    rolling(Fresh::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_upgrade_leaves_unknown_job_kinds_alone_postgres() {
    let test = "rolling_upgrade_leaves_unknown_job_kinds_alone_postgres";
    if let Some(db) = Fresh::postgres(test).await {
        rolling(db).await;
    }
}
