//! The store suite: every case is written once against `Arc<dyn Store>` and runs against both
//! backends, as `store::sqlite::<case>` (a real temporary file) and `store::postgres::<case>`
//! (a fresh schema `lever_test_<uuid>` in the database named by `LEVER_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards).
//!
//! When PostgreSQL is unreachable the Postgres cases print a loud `*** SKIPPED ... ***` line
//! (straight to stderr, so it shows even for passing tests) and pass, unless
//! `LEVER_REQUIRE_POSTGRES=1`, in which case they fail.
//!
//! Time never comes from a clock: cases pass `now` explicitly and move it to expire leases.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use lever::domain::{
    ComplianceStatus, Control, Finding, GroupKey, RecordState, Resource, Severity, Source,
    StableKey, WorkflowStatus,
};
use lever::store::{
    AuditEntry, AuditFilter, ChangeSet, Delivery, DeliveryId, DeliveryOutcome, Effect,
    FindingRecord, GroupData, GroupRecord, GroupStatus, GroupWrite, IssueRef, Job, JobOutcome,
    JobRecord, JobState, NewDelivery, NewJob, OutboxWrite, PostgresStore, QueueStats, SqliteStore,
    Store, StoreError,
};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

// =============================================================================================
// Harness

use crate::support::pg::{self, loud};

enum Target {
    Sqlite { url: String },
    Postgres { url: String, schema: String },
}

/// One database for one test case.
struct Db {
    target: Target,
    main: tokio::sync::OnceCell<Arc<dyn Store>>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn is_postgres(&self) -> bool {
        matches!(self.target, Target::Postgres { .. })
    }

    /// A new store (own connection pool) on this database, not migrated: another replica.
    async fn replica(&self) -> Arc<dyn Store> {
        match &self.target {
            Target::Sqlite { url } => Arc::new(SqliteStore::connect(url).await.expect("sqlite")),
            Target::Postgres { url, schema } => Arc::new(
                PostgresStore::connect_with_schema(url, schema)
                    .await
                    .expect("postgres"),
            ),
        }
    }

    /// The case's main store, migrated on first use.
    async fn store(&self) -> Arc<dyn Store> {
        self.main
            .get_or_init(|| async {
                let store = self.replica().await;
                store.migrate().await.expect("migrate");
                store
            })
            .await
            .clone()
    }

    /// Runs raw SQL (statements separated by `;`) outside the store.
    async fn exec(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match &self.target {
            Target::Sqlite { url } => {
                let s = SqliteStore::connect(url).await.expect("sqlite");
                sqlx::raw_sql(sql).execute(s.pool()).await.expect("raw sql");
                s.pool().close().await;
            }
            Target::Postgres { url, schema } => {
                let s = PostgresStore::connect_with_schema(url, schema)
                    .await
                    .expect("postgres");
                sqlx::raw_sql(sql).execute(s.pool()).await.expect("raw sql");
                s.pool().close().await;
            }
        }
    }

    /// A single integer from raw SQL.
    async fn count(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_string());
        match &self.target {
            Target::Sqlite { url } => {
                let s = SqliteStore::connect(url).await.expect("sqlite");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(s.pool())
                    .await
                    .expect("count");
                s.pool().close().await;
                n
            }
            Target::Postgres { url, schema } => {
                let s = PostgresStore::connect_with_schema(url, schema)
                    .await
                    .expect("postgres");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(s.pool())
                    .await
                    .expect("count");
                s.pool().close().await;
                n
            }
        }
    }
}

type Case = fn(Arc<Db>) -> BoxFuture<'static, ()>;

async fn run_sqlite(case: Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    // `sqlite://PATH`, the file does not exist yet: connect must create it.
    let url = format!("sqlite://{}", dir.path().join("lever.db").display());
    let db = Arc::new(Db {
        target: Target::Sqlite { url },
        main: Default::default(),
        _dir: Some(dir),
    });
    case(db).await;
}

async fn run_postgres(name: &str, case: Case) {
    let url = pg::url();
    if let Err(e) = pg::available().await {
        if pg::required() {
            panic!(
                "PostgreSQL required (LEVER_REQUIRE_POSTGRES=1) but cannot connect to {url}: {e}"
            );
        }
        loud(&format!(
            "*** SKIPPED: PostgreSQL store suite case store::postgres::{name} \
             (cannot connect to {url}: {e}) ***"
        ));
        return;
    }
    static BANNER: std::sync::Once = std::sync::Once::new();
    BANNER.call_once(|| {
        loud(&format!(
            "*** PostgreSQL store suite: RUNNING against {url} ***"
        ))
    });
    let schema = format!("lever_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url).await.expect("admin connection");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create schema");
    let db = Arc::new(Db {
        target: Target::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        },
        main: Default::default(),
        _dir: None,
    });
    let outcome = AssertUnwindSafe(case(db.clone())).catch_unwind().await;
    drop(db);
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop schema");
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generates `sqlite::<case>` and `postgres::<case>` for every case.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_sqlite(|db| Box::pin(super::$case(db))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_postgres(stringify!($case), |db| Box::pin(super::$case(db))).await;
                }
            )*
        }
    };
}

suite!(
    reports_backend_and_pings,
    migrate_is_idempotent,
    migrate_concurrently_from_several_replicas,
    findings_upsert_and_read,
    group_insert_if_absent_keeps_existing,
    group_reads_and_issue_lookup,
    group_update_checks_version,
    concurrent_group_updates_exactly_one_wins,
    conflict_rolls_back_the_whole_change_set,
    timestamps_round_trip_at_microsecond_precision,
    enqueue_duplicate_pending_job_is_merged,
    pending_job_ids_name_each_pending_row,
    finishing_and_reenqueueing_in_one_change_set_makes_a_new_job,
    lease_order_and_due_time,
    lease_expiry_lets_another_runner_take_over,
    job_outcomes_update_state,
    postponing_gives_back_the_attempt,
    outcome_without_the_lease_conflicts,
    next_job_at_tracks_when_work_is_leasable,
    a_job_is_leased_by_id_due_or_not_but_never_twice,
    a_job_is_never_due_before_its_time_at_microsecond_precision,
    queue_stats_count_pending_due_and_parked_jobs_by_kind,
    concurrent_leasing_leases_each_job_exactly_once,
    record_deliveries_dedupes_and_keeps_bodies_only_when_tracked,
    a_group_another_replica_committed_makes_a_delivery_tracked,
    record_deliveries_is_all_or_nothing,
    untracked_deliveries_store_at_most_1_kb,
    a_body_recorded_under_another_id_is_a_duplicate,
    a_large_batch_records_each_delivery_once,
    a_padded_insert_records_its_last_delivery_once,
    concurrent_record_deliveries_same_id_exactly_one_wins,
    audit_filters,
    kv_roundtrip,
    corrupt_rows_are_reported_not_panicked,
    unknown_job_kinds_are_left_to_newer_replicas,
    prune_keeps_what_work_and_deduplication_still_need,
    noise_cap_slots_hold_across_replicas,
    ungrouped_findings_are_those_of_the_account_without_a_group,
    ignore_tag_snapshot_is_replaced_whole,
    group_history_follows_every_group_write,
    a_large_change_set_writes_what_its_parts_would_in_order,
);

// =============================================================================================
// Fixtures

/// `t(s)`: `s` seconds after a fixed instant.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

fn finding(arn: &str, id: &str, group: &str, severity: Severity) -> FindingRecord {
    let f = Finding {
        id: id.to_string(),
        product_arn: arn.to_string(),
        product: "aws/securityhub".into(),
        product_name: Some("Security Hub".into()),
        generator_id: Some("security-control/S3.1".into()),
        account_id: "111122223333".into(),
        region: "eu-west-1".into(),
        title: "S3 general purpose buckets should have block public access settings enabled".into(),
        description: "Checks \"quotes\", <html> and ünïcödé survive".into(),
        severity,
        types: vec!["Software and Configuration Checks".into()],
        created_at: Some("2025-01-01T00:00:00.000Z".into()),
        updated_at: Some("2025-01-02T00:00:00.000Z".into()),
        first_observed_at: None,
        last_observed_at: None,
        compliance: Some(ComplianceStatus::Failed),
        compliance_reasons: vec![],
        record_state: RecordState::Active,
        workflow: WorkflowStatus::New,
        remediation_text: None,
        remediation_url: Some("https://docs.aws.amazon.com/".into()),
        source_url: None,
        resources: vec![Resource {
            id: format!("arn:aws:s3:::{id}"),
            kind: Some("AwsS3Bucket".into()),
            region: Some("eu-west-1".into()),
            tags: BTreeMap::from([("team".to_string(), "web".to_string())]),
        }],
        note: None,
        source: Source::Control(Control {
            id: "S3.1".into(),
            reported_id: None,
            standard: "fsbp".into(),
        }),
        vulnerabilities: Vec::new(),
    };
    FindingRecord {
        product_arn: arn.to_string(),
        finding_id: id.to_string(),
        stable_key: StableKey(format!("S3.1|{id}")),
        group_key: GroupKey(group.to_string()),
        account_id: "111122223333".into(),
        severity,
        compliance: Some(ComplianceStatus::Failed),
        record_state: RecordState::Active,
        workflow: WorkflowStatus::New,
        updated_at: f.updated_at.clone(),
        fingerprint: format!("fp-{id}-{}", severity.slug()),
        finding: f,
        lever_writes: vec![],
        first_seen: t(0),
        last_seen: t(1),
    }
}

fn effect(id: &str, group: &str) -> Effect {
    Effect {
        id: id.to_string(),
        group_key: GroupKey(group.to_string()),
        action: lever::domain::lifecycle::Action::Comment {
            body: format!("effect {id}"),
        },
        source: "test".into(),
    }
}

/// Migrations in `migrations/<backend>/`, the same number for both backends.
/// The migrations of this version (`migrations/sqlite/` and `migrations/postgres/` hold the
/// same versions).
pub fn migrations() -> i64 {
    let count = |db: &str| {
        std::fs::read_dir(crate::support::app::root().join("migrations").join(db))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count() as i64
    };
    assert_eq!(
        count("sqlite"),
        count("postgres"),
        "both backends have every migration"
    );
    count("sqlite")
}

/// Typed group data with a route whose chain is `chain`.
fn group_data(chain: &[&str]) -> GroupData {
    GroupData {
        route: lever::routing::Route {
            repo: lever::config::RepoName::parse("acme/web").unwrap(),
            rule_line: Some(1),
            chain: chain.iter().map(|c| c.to_string()).collect(),
            warnings: vec![],
            assignees: vec![],
        },
        account_id: "111122223333".into(),
        environment: "prod".into(),
        mode: "enforce".into(),
        severity: lever::domain::Severity::High,
        control_id: Some("S3.1".into()),
        title: "S3 buckets should block public access".into(),
        reason: "test".into(),
        lifecycle: None,
        recreated_from: None,
        last_event_at: None,
        reroute: None,
    }
}

fn group(key: &str, repo: &str, issue: Option<u64>, status: GroupStatus) -> GroupRecord {
    GroupRecord {
        group_key: GroupKey(key.to_string()),
        repo: repo.to_string(),
        issue_number: issue,
        issue_url: issue.map(|n| format!("https://github.com/{repo}/issues/{n}")),
        status,
        assignee: Some("octocat".into()),
        data: group_data(&["a", "b"]),
        created_at: t(0),
        updated_at: t(0),
        version: 1,
    }
}

/// A job of a known kind (`kind`, `subject` as stored).
fn new_job(kind: &str, subject: &str, run_at: DateTime<Utc>) -> NewJob {
    let job = Job::from_parts(kind, subject);
    assert!(
        !matches!(job, Job::Unknown { .. }),
        "test job kind {kind:?} is not a known kind"
    );
    NewJob::new(job, run_at)
}

fn audit_entry(at: DateTime<Utc>, action: &str, group: &str, issue: Option<&str>) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        actor: "lever".into(),
        action: action.to_string(),
        group_key: Some(GroupKey(group.to_string())),
        issue: issue.map(str::to_string),
        source: Some("job:1".into()),
        detail: json!({"before": "pending", "after": "open"}),
    }
}

/// A delivery to record: `issues.closed` of `issue` (`None`: an event about no issue), with a
/// body of its own.
struct Incoming {
    id: String,
    event: String,
    body: Vec<u8>,
    sha: [u8; 32],
    issue: Option<(String, u64)>,
    at: DateTime<Utc>,
}

impl Incoming {
    fn new(id: &str, issue: Option<(&str, u64)>, at: DateTime<Utc>) -> Incoming {
        let body = json!({
            "action": "closed",
            "issue": {"number": issue.map(|i| i.1)},
            "repository": {"full_name": issue.map(|i| i.0)},
            "id": id,
        });
        Incoming::with_body(id, issue, at, body.to_string().into_bytes())
    }

    fn with_body(
        id: &str,
        issue: Option<(&str, u64)>,
        at: DateTime<Utc>,
        body: Vec<u8>,
    ) -> Incoming {
        use sha2::Digest;
        Incoming {
            id: id.to_string(),
            event: "issues.closed".into(),
            sha: sha2::Sha256::digest(&body).into(),
            body,
            issue: issue.map(|(r, n)| (r.to_string(), n)),
            at,
        }
    }

    fn new_delivery(&self) -> NewDelivery<'_> {
        NewDelivery {
            id: &self.id,
            event: &self.event,
            body: &self.body,
            body_sha256: &self.sha,
            issue: self.issue.as_ref().map(|(repo, number)| IssueRef {
                repo,
                number: *number,
            }),
            received_at: self.at,
        }
    }

    /// As the store reads it back: with its body when `tracked`.
    fn stored(&self, tracked: bool) -> Delivery {
        Delivery {
            id: self.id.clone(),
            event: self.event.clone(),
            body_sha256: Some(self.sha),
            body: tracked.then(|| self.body.clone()),
            received_at: self.at,
        }
    }
}

async fn record(
    store: &dyn Store,
    batch: &[&Incoming],
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    let batch: Vec<NewDelivery<'_>> = batch.iter().map(|d| d.new_delivery()).collect();
    store.record_deliveries(&batch).await
}

fn key(s: &str) -> GroupKey {
    GroupKey(s.to_string())
}

fn pair(f: &FindingRecord) -> (String, String) {
    (f.product_arn.clone(), f.finding_id.clone())
}

async fn enqueue(store: &dyn Store, jobs: Vec<NewJob>, now: DateTime<Utc>) {
    store
        .apply(
            ChangeSet {
                jobs,
                ..Default::default()
            },
            now,
        )
        .await
        .expect("enqueue");
}

async fn outcome(store: &dyn Store, o: JobOutcome, now: DateTime<Utc>) -> Result<(), StoreError> {
    store
        .apply(
            ChangeSet {
                job_outcomes: vec![o],
                ..Default::default()
            },
            now,
        )
        .await
}

async fn lease(store: &dyn Store, owner: &str, now: DateTime<Utc>) -> Option<JobRecord> {
    store
        .lease_job(owner, now, Duration::seconds(60))
        .await
        .expect("lease")
}

fn assert_conflict(result: Result<(), StoreError>, expected: &str) {
    match result {
        Err(StoreError::Conflict(k)) => assert_eq!(k, expected),
        other => panic!("expected Conflict({expected}), got {other:?}"),
    }
}

// =============================================================================================
// Cases

async fn reports_backend_and_pings(db: Arc<Db>) {
    let store = db.store().await;
    let expected = if db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(store.backend(), expected);
    store.ping().await.expect("ping");
    store
        .apply(ChangeSet::default(), t(0))
        .await
        .expect("empty change set");
    assert!(store.jobs(None).await.unwrap().is_empty());
    assert!(store.list_groups(None).await.unwrap().is_empty());
    assert_eq!(store.next_job_at().await.unwrap(), None);
}

async fn migrate_is_idempotent(db: Arc<Db>) {
    let first = db.replica().await;
    first.migrate().await.expect("first migrate");
    first
        .apply(
            ChangeSet {
                kv: vec![("cursor".into(), "abc".into())],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    // Again on the same pool, and from a restarted process (new pool): no error, data kept.
    first.migrate().await.expect("second migrate");
    let restarted = db.replica().await;
    restarted.migrate().await.expect("migrate after restart");
    assert_eq!(
        restarted.kv_get("cursor").await.unwrap().as_deref(),
        Some("abc")
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        migrations(),
        "each migration recorded once"
    );
}

async fn migrate_concurrently_from_several_replicas(db: Arc<Db>) {
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(db.replica().await);
    }
    let results = join_all(replicas.iter().map(|r| {
        let r = r.clone();
        tokio::spawn(async move { r.migrate().await })
    }))
    .await;
    for r in results {
        r.expect("task").expect("concurrent migrate");
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        migrations()
    );
    // Every replica can use the schema.
    for (i, r) in replicas.iter().enumerate() {
        enqueue(
            r.as_ref(),
            vec![new_job("sync-group", &format!("s{i}"), t(0))],
            t(0),
        )
        .await;
    }
    assert_eq!(replicas[0].jobs(None).await.unwrap().len(), 4);
}

async fn findings_upsert_and_read(db: Arc<Db>) {
    let store = db.store().await;
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    let a = finding(arn, "f-a", "G", Severity::High);
    let b = finding(arn, "f-b", "G", Severity::Low);
    let c = finding(arn, "f-c", "H", Severity::Critical);
    store
        .apply(
            ChangeSet {
                // Out of key order on purpose.
                findings: vec![c.clone(), b.clone(), a.clone()],
                ..Default::default()
            },
            t(1),
        )
        .await
        .unwrap();

    let missing = (arn.to_string(), "nope".to_string());
    let got = store
        .findings(&[pair(&b), missing.clone(), pair(&a)])
        .await
        .unwrap();
    assert_eq!(got, vec![a.clone(), b.clone()], "found ones, by key");
    assert!(store.findings(&[]).await.unwrap().is_empty());
    assert!(store.findings(&[missing]).await.unwrap().is_empty());
    assert_eq!(
        store.findings_in_group(&key("G")).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.findings_in_group(&key("H")).await.unwrap(), vec![c]);
    assert!(
        store
            .findings_in_group(&key("none"))
            .await
            .unwrap()
            .is_empty()
    );

    // Upsert: same (ProductArn, Id), everything else new, including the group.
    let mut a2 = finding(arn, "f-a", "H", Severity::Critical);
    a2.compliance = None;
    a2.record_state = RecordState::Archived;
    a2.workflow = WorkflowStatus::Suppressed;
    a2.updated_at = None;
    a2.last_seen = t(100);
    // What Lever wrote to it travels with the finding (inside `data`).
    a2.lever_writes = vec![lever::domain::LeverWrite {
        workflow: WorkflowStatus::Suppressed,
        note: "Lever: exception \"quoted\" until 2027-01-30".into(),
        at: t(99),
    }];
    store
        .apply(
            ChangeSet {
                findings: vec![a2.clone()],
                ..Default::default()
            },
            t(100),
        )
        .await
        .unwrap();
    assert_eq!(store.findings(&[pair(&a)]).await.unwrap(), vec![a2]);
    assert_eq!(store.findings_in_group(&key("G")).await.unwrap(), vec![b]);
    assert_eq!(store.findings_in_group(&key("H")).await.unwrap().len(), 2);
}

async fn ungrouped_findings_are_those_of_the_account_without_a_group(db: Arc<Db>) {
    let store = db.store().await;
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    let grouped = finding(arn, "f-grouped", "G", Severity::High);
    let skipped_b = finding(arn, "f-b", "H", Severity::Low);
    let skipped_a = finding(arn, "f-a", "I", Severity::Medium);
    let mut elsewhere = finding(arn, "f-other", "J", Severity::Low);
    elsewhere.account_id = "444455556666".into();
    store
        .apply(
            ChangeSet {
                findings: vec![
                    skipped_b.clone(),
                    grouped,
                    elsewhere.clone(),
                    skipped_a.clone(),
                ],
                groups: vec![GroupWrite::InsertIfAbsent(group(
                    "G",
                    "acme/web",
                    None,
                    GroupStatus::Pending,
                ))],
                ..Default::default()
            },
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .ungrouped_findings(Some("111122223333"))
            .await
            .unwrap(),
        vec![skipped_a.clone(), skipped_b.clone()],
        "without a group, of that account, by (ProductArn, Id)"
    );
    assert_eq!(
        store
            .ungrouped_findings(Some("444455556666"))
            .await
            .unwrap(),
        vec![elsewhere.clone()]
    );
    assert!(
        store
            .ungrouped_findings(Some("999999999999"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.ungrouped_findings(None).await.unwrap(),
        vec![skipped_a, skipped_b, elsewhere],
        "of every account"
    );
}

async fn group_insert_if_absent_keeps_existing(db: Arc<Db>) {
    let store = db.store().await;
    let original = group("G", "acme/web", None, GroupStatus::Pending);
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(original.clone())],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(
        store.group(&key("G")).await.unwrap(),
        Some(original.clone())
    );

    let mut other = group("G", "acme/other", Some(9), GroupStatus::Open);
    other.version = 7;
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(other)],
                ..Default::default()
            },
            t(1),
        )
        .await
        .expect("insert-if-absent of an existing key is not an error");
    assert_eq!(
        store.group(&key("G")).await.unwrap(),
        Some(original),
        "existing row untouched"
    );
    assert_eq!(store.group(&key("missing")).await.unwrap(), None);
}

async fn group_reads_and_issue_lookup(db: Arc<Db>) {
    let store = db.store().await;
    let groups = [
        group("b|2", "Acme/Web", Some(12), GroupStatus::Open),
        group("a|1", "acme/web", Some(11), GroupStatus::Closed),
        group("C|0", "acme/api", Some(12), GroupStatus::Open),
        group("c|3", "acme/web", None, GroupStatus::Pending),
    ];
    store
        .apply(
            ChangeSet {
                groups: groups
                    .iter()
                    .cloned()
                    .map(GroupWrite::InsertIfAbsent)
                    .collect(),
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();

    let keys = |gs: Vec<GroupRecord>| gs.into_iter().map(|g| g.group_key.0).collect::<Vec<_>>();
    // Byte order, like Rust's: upper case before lower case, on both backends.
    let cases: [(Option<GroupStatus>, &[&str]); 4] = [
        (None, &["C|0", "a|1", "b|2", "c|3"]),
        (Some(GroupStatus::Open), &["C|0", "b|2"]),
        (Some(GroupStatus::Closed), &["a|1"]),
        (Some(GroupStatus::Pending), &["c|3"]),
    ];
    for (status, expected) in cases {
        assert_eq!(
            keys(store.list_groups(status).await.unwrap()),
            expected,
            "list_groups({status:?})"
        );
    }

    assert_eq!(
        keys(
            store
                .groups(&[key("c|3"), key("zzz"), key("a|1")])
                .await
                .unwrap()
        ),
        ["a|1", "c|3"]
    );
    assert!(store.groups(&[]).await.unwrap().is_empty());

    let lookups: [(&str, u64, Option<&str>); 7] = [
        ("acme/web", 12, Some("b|2")),
        ("ACME/WEB", 12, Some("b|2")),
        ("Acme/Web", 11, Some("a|1")),
        ("acme/api", 12, Some("C|0")),
        ("acme/web", 13, None),
        ("acme/other", 12, None),
        ("acme/web", u64::MAX, None),
    ];
    for (repo, number, expected) in lookups {
        let got = store.group_by_issue(repo, number).await.unwrap();
        assert_eq!(
            got.map(|g| g.group_key.0).as_deref(),
            expected,
            "group_by_issue({repo}, {number})"
        );
    }
}

async fn group_update_checks_version(db: Arc<Db>) {
    let store = db.store().await;
    let g = group("G", "acme/web", None, GroupStatus::Pending);
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(g.clone())],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();

    let mut opened = g.clone();
    opened.issue_number = Some(42);
    opened.issue_url = Some("https://github.com/acme/web/issues/42".into());
    opened.status = GroupStatus::Open;
    opened.assignee = None;
    opened.data = group_data(&["opened"]);
    opened.created_at = t(50); // ignored: created_at is kept
    opened.updated_at = t(60);
    opened.version = 99; // ignored: expected_version decides
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::Update {
                    record: opened.clone(),
                    expected_version: 1,
                }],
                ..Default::default()
            },
            t(60),
        )
        .await
        .expect("update at the right version");
    let stored = store.group(&key("G")).await.unwrap().unwrap();
    assert_eq!(
        stored,
        GroupRecord {
            created_at: t(0),
            version: 2,
            ..opened.clone()
        }
    );

    // Stale (1), future (3) and for a group that does not exist: all conflicts, nothing changes.
    let mut missing = opened.clone();
    missing.group_key = key("missing");
    for (record, expected_version, conflict_key) in [
        (opened.clone(), 1, "G"),
        (opened.clone(), 3, "G"),
        (missing, 1, "missing"),
    ] {
        let result = store
            .apply(
                ChangeSet {
                    groups: vec![GroupWrite::Update {
                        record,
                        expected_version,
                    }],
                    ..Default::default()
                },
                t(70),
            )
            .await;
        assert_conflict(result, conflict_key);
    }
    assert_eq!(store.group(&key("G")).await.unwrap().unwrap().version, 2);
    assert_eq!(store.group(&key("missing")).await.unwrap(), None);
}

async fn concurrent_group_updates_exactly_one_wins(db: Arc<Db>) {
    let store = db.store().await;
    let g = group("G", "acme/web", None, GroupStatus::Pending);
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(g.clone())],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    let replicas = [store.clone(), db.replica().await, db.replica().await];
    let tasks = (0..6).map(|i| {
        let store = replicas[i % replicas.len()].clone();
        let mut record = g.clone();
        record.assignee = Some(format!("user{i}"));
        tokio::spawn(async move {
            store
                .apply(
                    ChangeSet {
                        groups: vec![GroupWrite::Update {
                            record,
                            expected_version: 1,
                        }],
                        audit: vec![audit_entry(t(1), &format!("update-{i}"), "G", None)],
                        ..Default::default()
                    },
                    t(1),
                )
                .await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one update wins: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Conflict(k) if k == "G"), "{e:?}");
        }
    }
    let stored = store.group(&key("G")).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.assignee, Some(format!("user{}", winners[0])));
    let audit = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(audit.len(), 1, "only the winner's audit entry landed");
    assert_eq!(audit[0].action, format!("update-{}", winners[0]));
}

async fn conflict_rolls_back_the_whole_change_set(db: Arc<Db>) {
    let store = db.store().await;
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    let existing = group("G", "acme/web", None, GroupStatus::Pending);
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(existing.clone())],
                jobs: vec![new_job("open-issue", "G", t(0))],
                kv: vec![("cursor".into(), "old".into())],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    let leased = lease(store.as_ref(), "runner-1", t(1))
        .await
        .expect("a job");

    // A change set that does a bit of everything, plus one failing check.
    let everything = |failing: GroupWrite, outcome: JobOutcome| ChangeSet {
        findings: vec![finding(arn, "f-new", "NEW", Severity::High)],
        groups: vec![
            GroupWrite::InsertIfAbsent(group("NEW", "acme/web", None, GroupStatus::Pending)),
            failing,
        ],
        jobs: vec![new_job("open-issue", "NEW", t(2))],
        job_outcomes: vec![outcome],
        outbox: vec![OutboxWrite::Add(effect("e-new", "NEW"))],
        audit: vec![audit_entry(t(2), "finding-updated", "NEW", None)],
        kv: vec![("cursor".into(), "new".into())],
    };
    let mut bumped = existing.clone();
    bumped.status = GroupStatus::Open;
    let good_update = GroupWrite::Update {
        record: bumped.clone(),
        expected_version: 1,
    };
    let stale_update = GroupWrite::Update {
        record: bumped,
        expected_version: 5,
    };
    let done_by = |owner: &str| JobOutcome::Done {
        id: leased.id,
        lease_owner: owner.to_string(),
    };
    let job_key = format!("job:{}", leased.id);
    let cases = [
        (
            "stale group version",
            stale_update,
            done_by("runner-1"),
            "G",
        ),
        (
            "lost lease",
            good_update,
            done_by("runner-2"),
            job_key.as_str(),
        ),
    ];
    for (name, failing, outcome, conflict_key) in cases {
        let result = store.apply(everything(failing, outcome), t(2)).await;
        assert_conflict(result, conflict_key);

        assert!(
            store
                .findings(&[(arn.into(), "f-new".into())])
                .await
                .unwrap()
                .is_empty(),
            "{name}: finding rolled back"
        );
        assert_eq!(store.group(&key("NEW")).await.unwrap(), None, "{name}");
        assert_eq!(
            store.group(&key("G")).await.unwrap(),
            Some(existing.clone()),
            "{name}: group untouched"
        );
        let jobs = store.jobs(None).await.unwrap();
        assert_eq!(jobs, vec![leased.clone()], "{name}: no new job, lease kept");
        assert!(
            store
                .audit(&AuditFilter::default())
                .await
                .unwrap()
                .is_empty(),
            "{name}: no audit"
        );
        assert_eq!(
            store.kv_get("cursor").await.unwrap().as_deref(),
            Some("old"),
            "{name}: kv rolled back"
        );
        assert!(
            store.outbox(&key("NEW")).await.unwrap().is_empty(),
            "{name}: outbox rolled back"
        );
    }

    // The same change set without the failing part commits all of it.
    let mut ok = everything(
        GroupWrite::InsertIfAbsent(existing.clone()),
        done_by("runner-1"),
    );
    ok.groups.pop();
    store.apply(ok, t(3)).await.expect("commits");
    assert!(store.group(&key("NEW")).await.unwrap().is_some());
    assert_eq!(store.jobs(Some(JobState::Done)).await.unwrap().len(), 1);
    assert_eq!(store.jobs(Some(JobState::Pending)).await.unwrap().len(), 1);
    assert_eq!(
        store.kv_get("cursor").await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(store.audit(&AuditFilter::default()).await.unwrap().len(), 1);
    assert_eq!(
        store.outbox(&key("NEW")).await.unwrap(),
        vec![effect("e-new", "NEW")]
    );
}

async fn timestamps_round_trip_at_microsecond_precision(db: Arc<Db>) {
    let store = db.store().await;
    let precise = t(0) + Duration::nanoseconds(123_456_789);
    let truncated = t(0) + Duration::microseconds(123_456);
    let mut g = group("G", "acme/web", None, GroupStatus::Pending);
    g.created_at = precise;
    g.updated_at = t(-86_400 * 365 * 60); // 1965: before both epochs (1970 and 2000)
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(g.clone())],
                jobs: vec![new_job("sync-group", "s", precise)],
                ..Default::default()
            },
            precise,
        )
        .await
        .unwrap();
    let stored = store.group(&key("G")).await.unwrap().unwrap();
    assert_eq!(stored.created_at, truncated);
    assert_eq!(stored.updated_at, g.updated_at);
    // A job's run_at is a time it must not run before: rounded up, not truncated (see
    // `a_job_is_never_due_before_its_time_at_microsecond_precision`).
    let rounded_up = truncated + Duration::microseconds(1);
    let job = &store.jobs(None).await.unwrap()[0];
    assert_eq!((job.run_at, job.created_at), (rounded_up, truncated));
    assert_eq!(store.next_job_at().await.unwrap(), Some(rounded_up));
    // Comparisons happen at the same precision: due exactly at its stored run_at.
    assert!(lease(store.as_ref(), "w", truncated).await.is_none());
    assert!(lease(store.as_ref(), "w", rounded_up).await.is_some());
}

/// The id of each job's pending row, in the order asked; `None` for a job never enqueued or
/// no longer pending (done), and for the same subject of another kind.
async fn pending_job_ids_name_each_pending_row(db: Arc<Db>) {
    let store = db.store().await;
    assert_eq!(store.pending_job_ids(&[]).await.unwrap(), vec![]);
    enqueue(
        store.as_ref(),
        vec![
            new_job("open-issue", "A", t(5)),
            new_job("open-issue", "B", t(1)),
            new_job("apply-effects", "A", t(1)),
        ],
        t(0),
    )
    .await;
    let done = lease(store.as_ref(), "w", t(2)).await.expect("B is due");
    assert_eq!(done.job.subject(), "B");
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: done.id,
            lease_owner: "w".into(),
        },
        t(2),
    )
    .await
    .unwrap();
    let pending = store.jobs(Some(JobState::Pending)).await.unwrap();
    let id_of = |kind: &str, subject: &str| {
        pending
            .iter()
            .find(|j| j.job.kind() == kind && j.job.subject() == subject)
            .map(|j| j.id)
    };
    let asked = [
        ("apply-effects", "A"),
        ("open-issue", "B"),
        ("open-issue", "C"),
        ("open-issue", "A"),
        ("apply-effects", "A"),
        ("noise-summary", "A"),
    ];
    let jobs: Vec<Job> = asked.iter().map(|(k, s)| Job::from_parts(k, s)).collect();
    let ids = store.pending_job_ids(&jobs).await.unwrap();
    let expected = vec![
        id_of("apply-effects", "A"),
        None,
        None,
        id_of("open-issue", "A"),
        id_of("apply-effects", "A"),
        None,
    ];
    assert!(expected[0].is_some() && expected[3].is_some());
    assert_ne!(expected[0], expected[3]);
    assert_eq!(ids, expected);
}

async fn enqueue_duplicate_pending_job_is_merged(db: Arc<Db>) {
    // (first run_at, duplicate run_at, stored run_at afterwards)
    let cases = [
        ("later duplicate keeps the earlier run_at", 10, 20, 10),
        ("earlier duplicate moves run_at earlier", 20, 10, 10),
        ("same run_at", 10, 10, 10),
    ];
    let store = db.store().await;
    for (i, (name, first, second, expected)) in cases.into_iter().enumerate() {
        let subject = format!("G{i}");
        let original = new_job("open-issue", &subject, t(first));
        enqueue(store.as_ref(), vec![original.clone()], t(0)).await;
        let dup = new_job("open-issue", &subject, t(second));
        enqueue(store.as_ref(), vec![dup], t(1)).await;

        let jobs: Vec<JobRecord> = store
            .jobs(Some(JobState::Pending))
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.job.subject() == subject)
            .collect();
        assert_eq!(jobs.len(), 1, "{name}: one pending job");
        assert_eq!(jobs[0].run_at, t(expected), "{name}");
        assert_eq!(jobs[0].created_at, t(0), "{name}");
    }

    // Other kinds or subjects are separate jobs; duplicates inside one change set merge too.
    enqueue(
        store.as_ref(),
        vec![
            new_job("open-issue", "X", t(5)),
            new_job("apply-effects", "X", t(5)),
            new_job("open-issue", "Y", t(5)),
            new_job("open-issue", "X", t(1)),
        ],
        t(2),
    )
    .await;
    let pending = store.jobs(Some(JobState::Pending)).await.unwrap();
    let mut pairs: Vec<(String, String, DateTime<Utc>)> = pending
        .iter()
        .map(|j| {
            (
                j.job.kind().to_string(),
                j.job.subject().to_string(),
                j.run_at,
            )
        })
        .filter(|(_, s, _)| s == "X" || s == "Y")
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("apply-effects".into(), "X".into(), t(5)),
            ("open-issue".into(), "X".into(), t(1)),
            ("open-issue".into(), "Y".into(), t(5)),
        ]
    );

    // A leased (running) job is still pending: a duplicate merges into it, lease untouched.
    let leased = lease(store.as_ref(), "w", t(1)).await.unwrap();
    enqueue(
        store.as_ref(),
        vec![NewJob::new(leased.job.clone(), t(0))],
        t(3),
    )
    .await;
    let same: Vec<JobRecord> = store
        .jobs(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.job == leased.job)
        .collect();
    assert_eq!(same.len(), 1);
    assert_eq!(same[0].lease_owner.as_deref(), Some("w"));
    assert_eq!(same[0].lease_expires, leased.lease_expires);

    // ... and asks for a re-run: finishing it leaves it pending (due now, attempts reset), so
    // what arrived during the run is handled; a second Done then finishes it for good.
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: leased.id,
            lease_owner: "w".into(),
        },
        t(4),
    )
    .await
    .unwrap();
    let rerun = store
        .jobs(Some(JobState::Pending))
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.id == leased.id);
    let rerun = rerun.expect("the job is pending again after a re-run request");
    assert_eq!(
        (rerun.run_at, rerun.attempts, rerun.lease_owner.clone()),
        (t(4), 0, None)
    );
    let again = lease(store.as_ref(), "w2", t(4)).await.unwrap();
    assert_eq!(again.id, leased.id);
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: again.id,
            lease_owner: "w2".into(),
        },
        t(5),
    )
    .await
    .unwrap();
    let finished = store.jobs(Some(JobState::Done)).await.unwrap();
    assert!(
        finished.iter().any(|j| j.id == leased.id),
        "done after the re-run"
    );

    // A duplicate of a job whose lease expired (its runner died) asks for nothing extra.
    enqueue(
        store.as_ref(),
        vec![new_job("notify-findings", "E", t(0))],
        t(0),
    )
    .await;
    let dead_runner = lease(store.as_ref(), "gone", t(10)).await.unwrap();
    assert_eq!(dead_runner.job.kind(), "notify-findings");
    let after_expiry = dead_runner.lease_expires.unwrap() + chrono::Duration::seconds(1);
    enqueue(
        store.as_ref(),
        vec![new_job("notify-findings", "E", t(0))],
        after_expiry,
    )
    .await;
    let taken = lease(store.as_ref(), "w3", after_expiry).await.unwrap();
    assert_eq!(taken.id, dead_runner.id);
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: taken.id,
            lease_owner: "w3".into(),
        },
        after_expiry,
    )
    .await
    .unwrap();
    assert!(
        store
            .jobs(Some(JobState::Done))
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == taken.id)
    );
}

async fn finishing_and_reenqueueing_in_one_change_set_makes_a_new_job(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(store.as_ref(), vec![new_job("sync-group", "G", t(0))], t(0)).await;
    let job = lease(store.as_ref(), "w", t(0)).await.unwrap();
    store
        .apply(
            ChangeSet {
                job_outcomes: vec![JobOutcome::Done {
                    id: job.id,
                    lease_owner: "w".into(),
                }],
                jobs: vec![new_job("sync-group", "G", t(30))],
                ..Default::default()
            },
            t(1),
        )
        .await
        .unwrap();
    let done = store.jobs(Some(JobState::Done)).await.unwrap();
    let pending = store.jobs(Some(JobState::Pending)).await.unwrap();
    assert_eq!(done.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    assert_eq!(pending.len(), 1);
    assert_ne!(pending[0].id, job.id);
    assert_eq!(pending[0].run_at, t(30));
    assert_eq!(pending[0].attempts, 0);

    // Once done, a plain enqueue of the same (kind, subject) also creates a new job.
    store
        .apply(
            ChangeSet {
                job_outcomes: vec![JobOutcome::Dead {
                    id: lease(store.as_ref(), "w", t(30)).await.unwrap().id,
                    lease_owner: "w".into(),
                    error: "boom".into(),
                }],
                ..Default::default()
            },
            t(31),
        )
        .await
        .unwrap();
    enqueue(
        store.as_ref(),
        vec![new_job("sync-group", "G", t(40))],
        t(32),
    )
    .await;
    assert_eq!(store.jobs(None).await.unwrap().len(), 3);
    assert_eq!(store.jobs(Some(JobState::Pending)).await.unwrap().len(), 1);
}

async fn lease_order_and_due_time(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(
        store.as_ref(),
        vec![
            new_job("sync-group", "late", t(30)),
            new_job("sync-group", "first-tie", t(10)),
            new_job("sync-group", "middle", t(20)),
            new_job("sync-group", "second-tie", t(10)),
        ],
        t(0),
    )
    .await;
    assert_eq!(
        lease(store.as_ref(), "w", t(9)).await,
        None,
        "nothing due yet"
    );

    let mut order = Vec::new();
    while let Some(job) = lease(store.as_ref(), "w", t(25)).await {
        assert_eq!(job.attempts, 1);
        assert_eq!(job.lease_owner.as_deref(), Some("w"));
        assert_eq!(job.lease_expires, Some(t(25) + Duration::seconds(60)));
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.updated_at, t(25));
        order.push(job.job.subject().to_string());
    }
    assert_eq!(order, ["first-tie", "second-tie", "middle"]);
    // "late" becomes due at exactly its run_at.
    let late = lease(store.as_ref(), "w", t(30)).await.unwrap();
    assert_eq!(late.job.subject(), "late");
    assert_eq!(lease(store.as_ref(), "w", t(40)).await, None, "all leased");

    // The leased state is what `jobs` reports too (oldest first).
    let jobs = store.jobs(Some(JobState::Pending)).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.job.subject()).collect::<Vec<_>>(),
        ["late", "first-tie", "middle", "second-tie"]
    );
    assert!(jobs.iter().all(|j| j.lease_owner.as_deref() == Some("w")));
}

async fn lease_expiry_lets_another_runner_take_over(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(store.as_ref(), vec![new_job("sync-group", "s", t(0))], t(0)).await;
    let first = store
        .lease_job("runner-a", t(0), Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.lease_expires, Some(t(60)));

    for (now, expect_lease) in [(t(1), false), (t(59), false), (t(60), true)] {
        let got = store
            .lease_job("runner-b", now, Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(got.is_some(), expect_lease, "lease by b at {now}");
        if let Some(job) = got {
            assert_eq!(job.id, first.id);
            assert_eq!(job.attempts, 2, "the takeover counts an attempt");
            assert_eq!(job.lease_owner.as_deref(), Some("runner-b"));
            assert_eq!(job.lease_expires, Some(t(120)));
        }
    }

    // The runner that lost its lease cannot finish the job; the new holder can.
    let by_a = JobOutcome::Done {
        id: first.id,
        lease_owner: "runner-a".into(),
    };
    assert_conflict(
        outcome(store.as_ref(), by_a, t(61)).await,
        &format!("job:{}", first.id),
    );
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: first.id,
            lease_owner: "runner-b".into(),
        },
        t(62),
    )
    .await
    .unwrap();
    let job = &store.jobs(None).await.unwrap()[0];
    assert_eq!(job.state, JobState::Done);
    assert_eq!((job.lease_owner.clone(), job.lease_expires), (None, None));
    assert_eq!(job.updated_at, t(62));
}

async fn job_outcomes_update_state(db: Arc<Db>) {
    let store = db.store().await;
    struct Expect {
        state: JobState,
        run_at: DateTime<Utc>,
        last_error: Option<&'static str>,
    }
    type MakeOutcome = fn(i64) -> JobOutcome;
    let cases: Vec<(&str, MakeOutcome, Expect)> = vec![
        (
            "done",
            |id| JobOutcome::Done {
                id,
                lease_owner: "w".into(),
            },
            Expect {
                state: JobState::Done,
                run_at: t(0),
                last_error: None,
            },
        ),
        (
            "retry",
            |id| JobOutcome::Retry {
                id,
                lease_owner: "w".into(),
                retry_at: t(300),
                error: "github: 502".into(),
            },
            Expect {
                state: JobState::Pending,
                run_at: t(300),
                last_error: Some("github: 502"),
            },
        ),
        (
            "dead",
            |id| JobOutcome::Dead {
                id,
                lease_owner: "w".into(),
                error: "too many attempts".into(),
            },
            Expect {
                state: JobState::Dead,
                run_at: t(0),
                last_error: Some("too many attempts"),
            },
        ),
    ];
    for (name, make, expect) in cases {
        enqueue(
            store.as_ref(),
            vec![new_job("sync-group", &format!("s-{name}"), t(0))],
            t(0),
        )
        .await;
        let job = lease(store.as_ref(), "w", t(1)).await.unwrap();
        assert_eq!(job.job.subject(), format!("s-{name}"));
        outcome(store.as_ref(), make(job.id), t(2)).await.unwrap();
        let after = store
            .jobs(None)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.id == job.id)
            .unwrap();
        assert_eq!(after.state, expect.state, "{name}");
        assert_eq!(after.run_at, expect.run_at, "{name}");
        assert_eq!(after.last_error.as_deref(), expect.last_error, "{name}");
        assert_eq!(after.lease_owner, None, "{name}: lease released");
        assert_eq!(after.lease_expires, None, "{name}: lease released");
        assert_eq!(after.attempts, 1, "{name}: attempts counted at lease time");
        assert_eq!(after.updated_at, t(2), "{name}");
    }

    // The retried job runs again at retry_at, not before, counting a second attempt.
    assert_eq!(lease(store.as_ref(), "w", t(299)).await, None);
    let again = lease(store.as_ref(), "w2", t(300)).await.unwrap();
    assert_eq!((again.job.subject(), again.attempts), ("s-retry", 2));
    assert_eq!(again.last_error.as_deref(), Some("github: 502"));
    // Done and dead jobs are never leased again (the retried one is under w2's lease).
    assert_eq!(lease(store.as_ref(), "w", t(359)).await, None);
}

/// A job postponed for GitHub's limits runs again at its slot, and the attempt its lease
/// counted is given back (a retry's is not), whatever a duplicate enqueued meanwhile asked.
async fn postponing_gives_back_the_attempt(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(store.as_ref(), vec![new_job("open-issue", "g", t(0))], t(0)).await;
    let postpone = |id: i64, run_at: DateTime<Utc>| JobOutcome::Postpone {
        id,
        lease_owner: "w".into(),
        run_at,
        reason: "GitHub call not made: content budget".into(),
    };
    // A first attempt that fails for real, then two postponements.
    let job = lease(store.as_ref(), "w", t(1)).await.unwrap();
    outcome(
        store.as_ref(),
        JobOutcome::Retry {
            id: job.id,
            lease_owner: "w".into(),
            retry_at: t(10),
            error: "github: 502".into(),
        },
        t(2),
    )
    .await
    .unwrap();
    for (now, slot) in [(t(10), t(20)), (t(20), t(30))] {
        let job = lease(store.as_ref(), "w", now).await.unwrap();
        assert_eq!(job.attempts, 2, "the failed attempt still counts");
        // News while it waits for the budget: merged into the job, not a second job.
        enqueue(store.as_ref(), vec![new_job("open-issue", "g", now)], now).await;
        outcome(store.as_ref(), postpone(job.id, slot), now)
            .await
            .unwrap();
        let after = store.jobs(Some(JobState::Pending)).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(
            (
                after[0].attempts,
                after[0].run_at,
                after[0].lease_owner.as_deref(),
                after[0].last_error.as_deref()
            ),
            (1, slot, None, Some("GitHub call not made: content budget"))
        );
        assert_eq!(
            lease(store.as_ref(), "w", slot - Duration::seconds(1)).await,
            None
        );
    }
    let job = lease(store.as_ref(), "w", t(30)).await.unwrap();
    assert_eq!(job.attempts, 2, "still the second attempt: a retry");
    // Never below zero, even for a job whose attempts were reset meanwhile.
    db.exec(&format!(
        "UPDATE jobs SET attempts = 0 WHERE id = {}",
        job.id
    ))
    .await;
    outcome(store.as_ref(), postpone(job.id, t(40)), t(31))
        .await
        .unwrap();
    let after = store.jobs(Some(JobState::Pending)).await.unwrap();
    assert_eq!(after[0].attempts, 0);
}

async fn outcome_without_the_lease_conflicts(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(
        store.as_ref(),
        vec![
            new_job("sync-group", "leased", t(0)),
            new_job("sync-group", "finished", t(0)),
            new_job("sync-group", "never-leased", t(50)),
        ],
        t(0),
    )
    .await;
    let leased = lease(store.as_ref(), "owner", t(0)).await.unwrap();
    let finished = lease(store.as_ref(), "owner", t(0)).await.unwrap();
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: finished.id,
            lease_owner: "owner".into(),
        },
        t(1),
    )
    .await
    .unwrap();
    let never = store
        .jobs(None)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.job.subject() == "never-leased")
        .unwrap();

    let retry = |id: i64, owner: &str| JobOutcome::Retry {
        id,
        lease_owner: owner.into(),
        retry_at: t(99),
        error: "x".into(),
    };
    let dead = |id: i64, owner: &str| JobOutcome::Dead {
        id,
        lease_owner: owner.into(),
        error: "x".into(),
    };
    let cases = [
        ("someone else's lease", retry(leased.id, "intruder")),
        ("someone else's lease (dead)", dead(leased.id, "intruder")),
        (
            "someone else's lease (postpone)",
            JobOutcome::Postpone {
                id: leased.id,
                lease_owner: "intruder".into(),
                run_at: t(99),
                reason: "x".into(),
            },
        ),
        ("job already done", retry(finished.id, "owner")),
        ("job never leased", dead(never.id, "owner")),
        ("no such job", retry(1_000_000, "owner")),
        (
            "requeue of a job that is not parked",
            JobOutcome::Requeued { id: never.id },
        ),
    ];
    let before = store.jobs(None).await.unwrap();
    for (name, o) in cases {
        let id = match &o {
            JobOutcome::Done { id, .. }
            | JobOutcome::Retry { id, .. }
            | JobOutcome::Postpone { id, .. }
            | JobOutcome::Dead { id, .. }
            | JobOutcome::Requeued { id } => *id,
        };
        let result = store
            .apply(
                ChangeSet {
                    job_outcomes: vec![o],
                    kv: vec![("touched".into(), name.into())],
                    ..Default::default()
                },
                t(2),
            )
            .await;
        assert_conflict(result, &format!("job:{id}"));
        assert_eq!(store.kv_get("touched").await.unwrap(), None, "{name}");
        assert_eq!(
            store.jobs(None).await.unwrap(),
            before,
            "{name}: no job changed"
        );
    }
}

/// Times are stored to the microsecond; a job's `run_at` (enqueued, retried or postponed) is
/// rounded up, never down: a timer due at 10.0000005 s is not leased at 10.000000 s (it then
/// fired "early", rescheduled itself at the same stored instant and ran again and again).
async fn a_job_is_never_due_before_its_time_at_microsecond_precision(db: Arc<Db>) {
    let store = db.store().await;
    let at = t(10) + Duration::nanoseconds(500);
    enqueue(store.as_ref(), vec![new_job("sync-group", "a", at)], t(0)).await;
    assert_eq!(lease(store.as_ref(), "w", t(10)).await, None, "not yet due");
    let job = lease(store.as_ref(), "w", t(10) + Duration::microseconds(1))
        .await
        .expect("due at the next microsecond");
    assert!(job.run_at >= at);
    let later = t(20) + Duration::nanoseconds(1);
    outcome(
        store.as_ref(),
        JobOutcome::Postpone {
            id: job.id,
            lease_owner: "w".into(),
            run_at: later,
            reason: "paced".into(),
        },
        t(11),
    )
    .await
    .unwrap();
    assert_eq!(
        lease(store.as_ref(), "w", t(20)).await,
        None,
        "postponed to after t(20)"
    );
    assert!(
        lease(store.as_ref(), "w", t(20) + Duration::microseconds(1))
            .await
            .is_some()
    );
}

/// GitHub's content queue leases the job whose turn came by id, before its `run_at`; never one
/// under a live lease, nor a finished one.
async fn a_job_is_leased_by_id_due_or_not_but_never_twice(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(
        store.as_ref(),
        vec![new_job("sync-group", "a", t(100))],
        t(0),
    )
    .await;
    let id = store.jobs(None).await.unwrap()[0].id;
    let leased = store
        .lease_job_id(id, "w", t(10), Duration::seconds(60))
        .await
        .unwrap()
        .expect("pending, due later: leased now");
    assert_eq!(
        (leased.id, leased.lease_expires, leased.attempts),
        (id, Some(t(70)), 1)
    );
    assert_eq!(
        store
            .lease_job_id(id, "other", t(20), Duration::seconds(60))
            .await
            .unwrap(),
        None,
        "under a live lease"
    );
    assert!(
        store
            .lease_job_id(id + 1000, "w", t(20), Duration::seconds(60))
            .await
            .unwrap()
            .is_none(),
        "no such job"
    );
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id,
            lease_owner: "w".into(),
        },
        t(21),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .lease_job_id(id, "w", t(80), Duration::seconds(60))
            .await
            .unwrap(),
        None,
        "finished"
    );
}

async fn next_job_at_tracks_when_work_is_leasable(db: Arc<Db>) {
    let store = db.store().await;
    assert_eq!(store.next_job_at().await.unwrap(), None, "empty queue");
    enqueue(
        store.as_ref(),
        vec![
            new_job("sync-group", "a", t(10)),
            new_job("sync-group", "b", t(100)),
        ],
        t(0),
    )
    .await;
    assert_eq!(store.next_job_at().await.unwrap(), Some(t(10)));

    // "a" is leased until t(70): nothing can be leased before then.
    let a = lease(store.as_ref(), "w", t(10)).await.unwrap();
    assert_eq!(a.lease_expires, Some(t(70)));
    assert_eq!(store.next_job_at().await.unwrap(), Some(t(70)));
    // Every pending job under a lease ("b" leased by id before it is due, until t(70), so
    // leasable again at its run_at): the earliest of them still counts.
    let early = store
        .lease_job_id(a.id + 1, "w2", t(10), Duration::seconds(60))
        .await
        .unwrap()
        .expect("b, by id");
    assert_eq!(early.job.subject(), "b");
    assert_eq!(store.next_job_at().await.unwrap(), Some(t(70)));

    // Finished jobs do not count.
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: a.id,
            lease_owner: "w".into(),
        },
        t(11),
    )
    .await
    .unwrap();
    assert_eq!(store.next_job_at().await.unwrap(), Some(t(100)));
    let b = lease(store.as_ref(), "w", t(100)).await.unwrap();
    outcome(
        store.as_ref(),
        JobOutcome::Dead {
            id: b.id,
            lease_owner: "w".into(),
            error: "x".into(),
        },
        t(101),
    )
    .await
    .unwrap();
    assert_eq!(store.next_job_at().await.unwrap(), None);
}

async fn queue_stats_count_pending_due_and_parked_jobs_by_kind(db: Arc<Db>) {
    let store = db.store().await;
    assert_eq!(
        store.queue_stats(t(0)).await.unwrap(),
        vec![],
        "empty queue"
    );
    enqueue(
        store.as_ref(),
        vec![
            new_job("open-issue", "d", t(1)),
            new_job("open-issue", "e", t(2)),
            new_job("sync-group", "a", t(10)),
            new_job("sync-group", "b", t(20)),
            new_job("sync-group", "c", t(500)),
        ],
        t(0),
    )
    .await;
    // Leased in run_at order: "d" finishes (no longer counted), "e" is parked, "a" stays
    // leased (still pending, and due).
    let d = lease(store.as_ref(), "w", t(50)).await.unwrap();
    let e = lease(store.as_ref(), "w", t(50)).await.unwrap();
    let a = lease(store.as_ref(), "w", t(50)).await.unwrap();
    assert_eq!(
        [d.job.subject(), e.job.subject(), a.job.subject()],
        ["d", "e", "a"]
    );
    let done = JobOutcome::Done {
        id: d.id,
        lease_owner: "w".into(),
    };
    outcome(store.as_ref(), done, t(51)).await.unwrap();
    let dead = JobOutcome::Dead {
        id: e.id,
        lease_owner: "w".into(),
        error: "x".into(),
    };
    outcome(store.as_ref(), dead, t(51)).await.unwrap();
    let stats = store.queue_stats(t(100)).await.unwrap();
    assert_eq!(
        stats,
        vec![
            QueueStats {
                kind: "open-issue".into(),
                pending: 0,
                due: 0,
                parked: 1,
                oldest_due: None,
            },
            QueueStats {
                kind: "sync-group".into(),
                pending: 3,
                due: 2,
                parked: 0,
                oldest_due: Some(t(10)),
            },
        ]
    );
    // Later, "c" is due too; the oldest due is still "a"'s run time.
    let later = store.queue_stats(t(600)).await.unwrap();
    assert_eq!((later[1].due, later[1].oldest_due), (3, Some(t(10))));
}

async fn concurrent_leasing_leases_each_job_exactly_once(db: Arc<Db>) {
    const JOBS: usize = 60;
    const TASKS: usize = 8;
    let store = db.store().await;
    enqueue(
        store.as_ref(),
        (0..JOBS)
            .map(|i| new_job("sync-group", &format!("s{i}"), t((i % 7) as i64)))
            .collect(),
        t(0),
    )
    .await;
    let all: BTreeSet<i64> = store
        .jobs(None)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all.len(), JOBS);

    // Three replicas (separate pools: separate processes, as far as the database can tell).
    let replicas = [store.clone(), db.replica().await, db.replica().await];
    let tasks = (0..TASKS).map(|i| {
        let store = replicas[i % replicas.len()].clone();
        tokio::spawn(async move {
            let owner = format!("runner-{i}");
            let mut mine = Vec::new();
            while let Some(job) = store
                .lease_job(&owner, t(10), Duration::seconds(600))
                .await
                .expect("lease")
            {
                assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                // Every other job is finished right away, so leasing races with commits.
                if job.id % 2 == 0 {
                    store
                        .apply(
                            ChangeSet {
                                job_outcomes: vec![JobOutcome::Done {
                                    id: job.id,
                                    lease_owner: owner.clone(),
                                }],
                                ..Default::default()
                            },
                            t(11),
                        )
                        .await
                        .expect("done by the holder");
                }
                mine.push(job.id);
            }
            mine
        })
    });
    let leased: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .flat_map(|r| r.expect("task"))
        .collect();
    let unique: BTreeSet<i64> = leased.iter().copied().collect();
    assert_eq!(leased.len(), JOBS, "no job leased twice: {leased:?}");
    assert_eq!(unique, all, "every job leased");
    let jobs = store.jobs(None).await.unwrap();
    assert!(jobs.iter().all(|j| j.attempts == 1));
    assert_eq!(
        jobs.iter().filter(|j| j.state == JobState::Done).count(),
        all.iter().filter(|id| *id % 2 == 0).count()
    );
}

async fn record_deliveries_dedupes_and_keeps_bodies_only_when_tracked(db: Arc<Db>) {
    use DeliveryOutcome::{Duplicate, Tracked, Untracked};
    let store = db.store().await;
    let changes = ChangeSet {
        groups: vec![
            GroupWrite::InsertIfAbsent(group("G1", "acme/web", Some(1), GroupStatus::Open)),
            GroupWrite::InsertIfAbsent(group("G2", "acme/web", None, GroupStatus::Pending)),
        ],
        ..Default::default()
    };
    store.apply(changes, t(0)).await.unwrap();
    assert_eq!(record(store.as_ref(), &[]).await.unwrap(), []);

    let tracked = Incoming::new("github:d-1", Some(("acme/web", 1)), t(5));
    let other_case = Incoming::new("github:d-2", Some(("ACME/Web", 1)), t(6));
    let other_issue = Incoming::new("github:d-3", Some(("acme/web", 2)), t(7));
    let no_issue = Incoming::new("github:d-4", None, t(8));
    let same_id = Incoming::new("github:d-1", Some(("acme/web", 1)), t(9));
    let batch = [&tracked, &other_case, &other_issue, &no_issue, &same_id];
    assert_eq!(
        record(store.as_ref(), &batch).await.unwrap(),
        [Tracked, Tracked, Untracked, Untracked, Duplicate],
        "repo names compare without case; the first of one id wins"
    );
    for (d, kept) in [
        (&tracked, true),
        (&other_case, true),
        (&other_issue, false),
        (&no_issue, false),
    ] {
        assert_eq!(
            store.delivery(&d.id).await.unwrap(),
            Some(d.stored(kept)),
            "{}",
            d.id
        );
    }
    let jobs = store.jobs(None).await.unwrap();
    let jobs: Vec<_> = jobs
        .iter()
        .map(|j| (j.job.clone(), j.run_at, j.created_at))
        .collect();
    let event = |d: &Incoming| Job::GithubEvent(DeliveryId(d.id.clone()));
    assert_eq!(
        jobs,
        [
            (event(&tracked), t(5), t(5)),
            (event(&other_case), t(6), t(6)),
        ],
        "a job per tracked delivery, due when it was received"
    );

    // A redelivery changes nothing: not the delivery, not the jobs.
    let again = Incoming::new("github:d-3", Some(("acme/web", 1)), t(50));
    assert_eq!(
        record(store.as_ref(), &[&again]).await.unwrap(),
        [Duplicate]
    );
    assert_eq!(
        store.delivery(&again.id).await.unwrap(),
        Some(other_issue.stored(false))
    );
    assert_eq!(store.jobs(None).await.unwrap().len(), 2);
}

/// Whether a delivery is tracked is read from the database when it is recorded, never from
/// what this replica saw before.
async fn a_group_another_replica_committed_makes_a_delivery_tracked(db: Arc<Db>) {
    let store = db.store().await;
    let before = Incoming::new("github:before", Some(("acme/web", 3)), t(1));
    assert_eq!(
        record(store.as_ref(), &[&before]).await.unwrap(),
        [DeliveryOutcome::Untracked]
    );
    let replica = db.replica().await;
    let changes = ChangeSet {
        groups: vec![GroupWrite::InsertIfAbsent(group(
            "G",
            "acme/web",
            Some(3),
            GroupStatus::Open,
        ))],
        ..Default::default()
    };
    replica.apply(changes, t(2)).await.unwrap();
    let after = Incoming::new("github:after", Some(("acme/web", 3)), t(3));
    assert_eq!(
        record(store.as_ref(), &[&after]).await.unwrap(),
        [DeliveryOutcome::Tracked]
    );
}

/// Every job of the store, whatever its state, in the order `Store::jobs` gives.
async fn all_jobs(store: &dyn Store) -> Vec<Job> {
    let jobs = store.jobs(None).await.unwrap();
    jobs.into_iter().map(|j| j.job).collect()
}

/// Stores an open group `key` that owns issue acme/web#1: a delivery about it is tracked.
async fn track_acme_web_1(store: &dyn Store, key: &str) {
    let changes = ChangeSet {
        groups: vec![GroupWrite::InsertIfAbsent(group(
            key,
            "acme/web",
            Some(1),
            GroupStatus::Open,
        ))],
        ..Default::default()
    };
    store.apply(changes, t(0)).await.unwrap();
}

async fn record_deliveries_is_all_or_nothing(db: Arc<Db>) {
    let store = db.store().await;
    track_acme_web_1(store.as_ref(), "G").await;
    let untracked = Incoming::new("github:u", None, t(1));
    let tracked = Incoming::new("github:t", Some(("acme/web", 1)), t(1));
    // The job cannot be enqueued: the delivery recorded before it in the batch is rolled back.
    db.exec("ALTER TABLE jobs RENAME TO jobs_away").await;
    let failed = record(store.as_ref(), &[&untracked, &tracked]).await;
    db.exec("ALTER TABLE jobs_away RENAME TO jobs").await;
    // SQLite's delivery writer reports rusqlite's error, the shared path sqlx's.
    assert!(
        matches!(failed, Err(StoreError::Database(_) | StoreError::Sqlite(_))),
        "{failed:?}"
    );
    for d in [&untracked, &tracked] {
        assert_eq!(store.delivery(&d.id).await.unwrap(), None, "{}", d.id);
    }
    // Redelivered, both are recorded.
    assert_eq!(
        record(store.as_ref(), &[&untracked, &tracked])
            .await
            .unwrap(),
        [DeliveryOutcome::Untracked, DeliveryOutcome::Tracked]
    );
}

/// The bytes an untracked delivery adds to the database (table and indexes): at most 1 KB,
/// whatever the size of its body. Measured on the database files (SQLite: pages in use;
/// PostgreSQL: `pg_total_relation_size`), over enough deliveries that page granularity does
/// not matter.
async fn untracked_deliveries_store_at_most_1_kb(db: Arc<Db>) {
    let store = db.store().await;
    let size = if db.is_postgres() {
        "SELECT pg_total_relation_size('deliveries')"
    } else {
        "SELECT (page_count - freelist_count) * page_size \
         FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
    };
    let before = db.count(size).await;
    let filler = "x".repeat(12 * 1024);
    const N: usize = 2000;
    for chunk in 0..N / 100 {
        let batch: Vec<Incoming> = (0..100)
            .map(|i| {
                // A GUID, as GitHub sends.
                let id = format!("github:{}", uuid::Uuid::new_v4());
                let n = chunk * 100 + i;
                let issue = Some(("acme/web", n as u64));
                // Distinct bodies: the same body again is a duplicate.
                let body = serde_json::to_vec(&json!({ "n": n, "filler": filler })).unwrap();
                Incoming::with_body(&id, issue, t(1), body)
            })
            .collect();
        let refs: Vec<&Incoming> = batch.iter().collect();
        let outcomes = record(store.as_ref(), &refs).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == DeliveryOutcome::Untracked));
    }
    let after = db.count(size).await;
    let per_delivery = (after - before) / N as i64;
    assert!(
        per_delivery <= 1024,
        "{per_delivery} bytes per untracked delivery ({before} -> {after} bytes for {N})"
    );
    let rows = db
        .count("SELECT COUNT(*) FROM deliveries WHERE body IS NULL")
        .await;
    assert_eq!(rows, N as i64);
}

/// A signed body replayed under a fresh delivery id (the header is not signed) is a duplicate,
/// in a later batch and in the same batch; a different body is not.
async fn a_body_recorded_under_another_id_is_a_duplicate(db: Arc<Db>) {
    let store = db.store().await;
    let body = br#"{"action":"closed"}"#.to_vec();
    let first = Incoming::with_body("github:a", None, t(1), body.clone());
    let replay = Incoming::with_body("github:b", None, t(2), body.clone());
    let again = Incoming::with_body("github:c", None, t(2), body.clone());
    let other = Incoming::with_body("github:d", None, t(2), br#"{"action":"reopened"}"#.into());
    let outcomes = record(store.as_ref(), &[&first]).await.unwrap();
    assert_eq!(outcomes, [DeliveryOutcome::Untracked]);
    let outcomes = record(store.as_ref(), &[&replay, &other, &again])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            DeliveryOutcome::Duplicate,
            DeliveryOutcome::Untracked,
            DeliveryOutcome::Duplicate
        ]
    );
    assert!(store.delivery("github:b").await.unwrap().is_none());
    assert!(store.delivery("github:d").await.unwrap().is_some());
}

/// A batch larger than one `INSERT` (150 deliveries, 147 after the in-batch duplicates: two
/// statements of 64 rows and one of 32, its last 13 rows copies of the batch's last delivery)
/// records each delivery once: repeats of an id or of a
/// body within the batch, and one recorded by an earlier batch, are duplicates wherever they
/// fall; tracked ones keep their body and get their job, in order.
async fn a_large_batch_records_each_delivery_once(db: Arc<Db>) {
    use DeliveryOutcome::{Duplicate, Tracked, Untracked};
    let store = db.store().await;
    track_acme_web_1(store.as_ref(), "G1").await;
    let earlier = Incoming::new("github:earlier", None, t(1));
    assert_eq!(
        record(store.as_ref(), &[&earlier]).await.unwrap(),
        [Untracked]
    );

    let mut batch: Vec<Incoming> = (0..144)
        .map(|i| {
            let issue = (i % 50 == 0).then_some(("acme/web", 1));
            Incoming::new(&format!("github:d-{i}"), issue, t(10 + i))
        })
        .collect();
    let mut expected: Vec<DeliveryOutcome> = (0..144)
        .map(|i| if i % 50 == 0 { Tracked } else { Untracked })
        .collect();
    // The same id with another body, a body under another id, the earlier batch's delivery,
    // and the same id twice at the end.
    batch.push(Incoming::with_body(
        "github:d-3",
        None,
        t(200),
        b"{}".to_vec(),
    ));
    batch.push(Incoming::with_body(
        "github:replay-5",
        None,
        t(201),
        batch[5].body.clone(),
    ));
    batch.push(Incoming::new("github:earlier", None, t(202)));
    batch.push(Incoming::new("github:late", None, t(203)));
    batch.push(Incoming::new("github:late", None, t(204)));
    batch.push(Incoming::new("github:d-149", Some(("acme/web", 1)), t(205)));
    expected.extend([
        Duplicate, Duplicate, Duplicate, Untracked, Duplicate, Tracked,
    ]);
    let refs: Vec<&Incoming> = batch.iter().collect();
    assert_eq!(record(store.as_ref(), &refs).await.unwrap(), expected);

    let rows = db.count("SELECT COUNT(*) FROM deliveries").await;
    assert_eq!(rows, 1 + 144 + 2, "earlier, d-0..d-143, late, d-149");
    assert_eq!(store.delivery("github:replay-5").await.unwrap(), None);
    assert_eq!(
        store.delivery("github:d-3").await.unwrap(),
        Some(batch[3].stored(false)),
        "the first of an id wins"
    );
    assert_eq!(
        store.delivery("github:d-100").await.unwrap(),
        Some(batch[100].stored(true))
    );
    let jobs = all_jobs(store.as_ref()).await;
    let event = |id: &str| Job::GithubEvent(DeliveryId(id.to_string()));
    assert_eq!(
        jobs,
        ["github:d-0", "github:d-50", "github:d-100", "github:d-149"].map(event)
    );
}

/// A batch of three deliveries is one `INSERT` of four rows, the last delivery written twice:
/// the copy changes nothing, on SQLite and on PostgreSQL alike. The last delivery is recorded
/// once and, tracked, gets one job; when it was recorded before, it is a duplicate, copy
/// included.
async fn a_padded_insert_records_its_last_delivery_once(db: Arc<Db>) {
    use DeliveryOutcome::{Duplicate, Tracked, Untracked};
    let store = db.store().await;
    track_acme_web_1(store.as_ref(), "G").await;
    let a = Incoming::new("github:a", None, t(1));
    let b = Incoming::new("github:b", None, t(2));
    let c = Incoming::new("github:c", Some(("acme/web", 1)), t(3));
    assert_eq!(
        record(store.as_ref(), &[&a, &b, &c]).await.unwrap(),
        [Untracked, Untracked, Tracked]
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM deliveries").await, 3);
    assert_eq!(
        store.delivery("github:c").await.unwrap(),
        Some(c.stored(true))
    );
    let jobs = all_jobs(store.as_ref()).await;
    assert_eq!(jobs, [Job::GithubEvent(DeliveryId("github:c".into()))]);

    // Five rows, padded to eight with copies of `c`, recorded before.
    let more: Vec<Incoming> = (0..4)
        .map(|i| Incoming::new(&format!("github:m-{i}"), None, t(10 + i)))
        .collect();
    let mut refs: Vec<&Incoming> = more.iter().collect();
    refs.push(&c);
    assert_eq!(
        record(store.as_ref(), &refs).await.unwrap(),
        [Untracked, Untracked, Untracked, Untracked, Duplicate]
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM deliveries").await, 7);
    assert_eq!(store.jobs(None).await.unwrap().len(), 1);
}

async fn concurrent_record_deliveries_same_id_exactly_one_wins(db: Arc<Db>) {
    let store = db.store().await;
    track_acme_web_1(store.as_ref(), "G").await;
    let replicas = [store.clone(), db.replica().await, db.replica().await];
    for round in 0..3 {
        let id = format!("github:race-{round}");
        let tasks = (0..8).map(|i| {
            let store = replicas[i % replicas.len()].clone();
            let d = Incoming::new(&id, Some(("acme/web", 1)), t(5));
            tokio::spawn(async move { record(store.as_ref(), &[&d]).await.expect("record") })
        });
        let results: Vec<DeliveryOutcome> = join_all(tasks)
            .await
            .into_iter()
            .flat_map(|r| r.unwrap())
            .collect();
        let recorded = results
            .iter()
            .filter(|r| **r == DeliveryOutcome::Tracked)
            .count();
        assert_eq!(
            recorded, 1,
            "round {round}: exactly one recorded: {results:?}"
        );
        assert!(store.delivery(&id).await.unwrap().is_some());
        assert_eq!(
            store.jobs(None).await.unwrap().len(),
            round + 1,
            "round {round}: one job"
        );
    }
}

async fn audit_filters(db: Arc<Db>) {
    let store = db.store().await;
    let entries = [
        audit_entry(t(10), "issue-opened", "G1", Some("acme/web#1")),
        audit_entry(t(20), "finding-updated", "G2", None),
        audit_entry(t(30), "issue-assigned", "G1", Some("acme/web#1")),
        audit_entry(t(40), "issue-opened", "G3", Some("acme/web#2")),
        audit_entry(t(50), "issue-closed", "G1", Some("acme/web#1")),
    ];
    // Two change sets: seq keeps growing across transactions.
    store
        .apply(
            ChangeSet {
                audit: entries[..2].to_vec(),
                ..Default::default()
            },
            t(20),
        )
        .await
        .unwrap();
    store
        .apply(
            ChangeSet {
                audit: entries[2..].to_vec(),
                ..Default::default()
            },
            t(50),
        )
        .await
        .unwrap();

    let all = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "ascending seq");
    for (got, want) in all.iter().zip(&entries) {
        assert_eq!(
            got,
            &AuditEntry {
                seq: got.seq,
                ..want.clone()
            }
        );
    }

    let actions = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
        }
    };
    let cases: Vec<(&str, AuditFilter, Vec<&str>)> = vec![
        (
            "by issue",
            AuditFilter {
                issue: Some("acme/web#1".into()),
                ..Default::default()
            },
            vec!["issue-opened", "issue-assigned", "issue-closed"],
        ),
        (
            "by issue, other case",
            AuditFilter {
                issue: Some("ACME/Web#2".into()),
                ..Default::default()
            },
            vec!["issue-opened"],
        ),
        (
            "by group",
            AuditFilter {
                group_key: Some(key("G2")),
                ..Default::default()
            },
            vec!["finding-updated"],
        ),
        (
            "since (inclusive)",
            AuditFilter {
                since: Some(t(30)),
                ..Default::default()
            },
            vec!["issue-assigned", "issue-opened", "issue-closed"],
        ),
        (
            "limit keeps the first ones",
            AuditFilter {
                limit: Some(2),
                ..Default::default()
            },
            vec!["issue-opened", "finding-updated"],
        ),
        (
            "combined",
            AuditFilter {
                issue: Some("acme/web#1".into()),
                group_key: Some(key("G1")),
                since: Some(t(11)),
                limit: Some(1),
            },
            vec!["issue-assigned"],
        ),
        (
            "nothing matches",
            AuditFilter {
                group_key: Some(key("G9")),
                ..Default::default()
            },
            vec![],
        ),
        (
            "limit 0",
            AuditFilter {
                limit: Some(0),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(actions(filter).await, expected, "{name}");
    }
}

async fn kv_roundtrip(db: Arc<Db>) {
    let store = db.store().await;
    assert_eq!(store.kv_get("cursor").await.unwrap(), None);
    let steps: [&[(&str, &str)]; 3] = [
        &[("cursor", "page-1"), ("other", "x")],
        &[("cursor", "page-2")],
        // Repeats in one change set: the last one wins.
        &[("cursor", "page-3"), ("cursor", "page-4")],
    ];
    for (i, step) in steps.iter().enumerate() {
        store
            .apply(
                ChangeSet {
                    kv: step
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                },
                t(i as i64),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.kv_get("cursor").await.unwrap().as_deref(),
        Some("page-4")
    );
    assert_eq!(store.kv_get("other").await.unwrap().as_deref(), Some("x"));
    assert_eq!(
        store.kv_get("CURSOR").await.unwrap(),
        None,
        "keys are exact"
    );
}

async fn ignore_tag_snapshot_is_replaced_whole(db: Arc<Db>) {
    use lever::domain::tags::IgnoredResource;
    let store = db.store().await;
    assert_eq!(store.ignore_tags().await.unwrap(), (vec![], None));
    let r = |arn: &str, reason: &str, first: i64| IgnoredResource {
        arn: arn.into(),
        account_id: "111122223333".into(),
        region: "eu-west-1".into(),
        reason: reason.into(),
        first_seen: t(first),
        reason_since: t(first + 1),
    };
    // Untrusted reasons (quotes, markup, blank) round-trip as written; rows come back by ARN.
    let first = vec![
        r("arn:b", "it's <b>legacy</b> \"ok\"", 1),
        r("arn:a", "   ", 2),
    ];
    store.record_ignore_tags(&first, t(10)).await.unwrap();
    let (rows, at) = store.ignore_tags().await.unwrap();
    assert_eq!(at, Some(t(10)));
    assert_eq!(rows, vec![first[1].clone(), first[0].clone()]);
    // The next audit replaces the snapshot: a resource left out is gone.
    let second = vec![r("arn:c", "new", 20)];
    store.record_ignore_tags(&second, t(30)).await.unwrap();
    assert_eq!(store.ignore_tags().await.unwrap(), (second, Some(t(30))));
    // An empty audit empties it and still records when it ran.
    store.record_ignore_tags(&[], t(40)).await.unwrap();
    assert_eq!(store.ignore_tags().await.unwrap(), (vec![], Some(t(40))));
}

/// The group history (migration 0013): a row whenever a committed group write changes the
/// group's state, severity or repository, at the change set's instant, in the same transaction
/// (a conflict writes none); `group_history(since)` answers every row of the groups that
/// matter to a period starting then.
async fn group_history_follows_every_group_write(db: Arc<Db>) {
    use lever::domain::lifecycle::{Ack, Closure, Exception, State};
    use lever::store::HistoryState;
    let store = db.store().await;
    let write = |w: GroupWrite, at: i64| {
        let store = store.clone();
        async move {
            store
                .apply(
                    ChangeSet {
                        groups: vec![w],
                        ..Default::default()
                    },
                    t(at),
                )
                .await
        }
    };
    let update = |r: &GroupRecord, v: i64| GroupWrite::Update {
        record: r.clone(),
        expected_version: v,
    };
    // A: pending, then open, an unrelated change, acknowledged, severity raised, suppressed.
    let mut a = group("A", "acme/web", None, GroupStatus::Pending);
    write(GroupWrite::InsertIfAbsent(a.clone()), 0)
        .await
        .unwrap();
    a.status = GroupStatus::Open;
    a.issue_number = Some(1);
    a.data.lifecycle = Some(State {
        open: true,
        ..State::default()
    });
    write(update(&a, 1), 10).await.unwrap();
    a.assignee = Some("someone-else".into());
    write(update(&a, 2), 20).await.unwrap();
    // Inserting it again changes nothing, and writes no history.
    write(GroupWrite::InsertIfAbsent(a.clone()), 25)
        .await
        .unwrap();
    let mut acked = a.clone();
    acked.data.lifecycle.as_mut().unwrap().acknowledged = Some(Ack {
        by: "octocat".into(),
        at: t(30),
    });
    write(update(&acked, 3), 30).await.unwrap();
    // A stale write conflicts: no group change, no history row.
    let mut stale = acked.clone();
    stale.status = GroupStatus::Closed;
    assert_conflict(write(update(&stale, 3), 35).await, "A");
    acked.data.severity = Severity::Critical;
    write(update(&acked, 4), 40).await.unwrap();
    let mut suppressed = acked.clone();
    suppressed.status = GroupStatus::Closed;
    let l = suppressed.data.lifecycle.as_mut().unwrap();
    l.open = false;
    l.closure = Some(Closure::Exception);
    l.exception = Some(Exception {
        approver: "cto".into(),
        approved_at: t(50),
        expires_at: t(5000),
        covers: None,
    });
    write(update(&suppressed, 5), 50).await.unwrap();
    // B: open and fixed long before; C: open all along.
    let mut b = group("B", "acme/api", Some(2), GroupStatus::Open);
    write(GroupWrite::InsertIfAbsent(b.clone()), 1)
        .await
        .unwrap();
    b.status = GroupStatus::Closed;
    b.data.lifecycle = Some(State {
        closure: Some(Closure::Fixed),
        ..State::default()
    });
    write(update(&b, 1), 2).await.unwrap();
    let c = group("C", "acme/api", Some(3), GroupStatus::Open);
    write(GroupWrite::InsertIfAbsent(c.clone()), 3)
        .await
        .unwrap();

    let rows = store.group_history(t(0)).await.unwrap();
    let seen: Vec<(&str, HistoryState, Severity, DateTime<Utc>)> = rows
        .iter()
        .map(|r| (r.group_key.as_str(), r.state, r.severity, r.at))
        .collect();
    use HistoryState::*;
    assert_eq!(
        seen,
        vec![
            ("A", Pending, Severity::High, t(0)),
            ("A", Open, Severity::High, t(10)),
            ("A", Acknowledged, Severity::High, t(30)),
            ("A", Acknowledged, Severity::Critical, t(40)),
            ("A", Suppressed, Severity::Critical, t(50)),
            ("B", Open, Severity::High, t(1)),
            ("B", Closed, Severity::High, t(2)),
            ("C", Open, Severity::High, t(3)),
        ]
    );
    let r = &rows[0];
    assert_eq!(
        (
            r.repo.as_str(),
            r.account_id.as_str(),
            r.environment.as_str()
        ),
        ("acme/web", "111122223333", "prod")
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0].group_key != w[1].group_key || w[0].seq < w[1].seq)
    );
    // A period starting at t(10): B (closed before, nothing since) is left out; A (rows since)
    // and C (open now) come whole.
    let keys: BTreeSet<String> = store
        .group_history(t(10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.group_key.0)
        .collect();
    assert_eq!(keys, BTreeSet::from(["A".to_string(), "C".to_string()]));
    assert_eq!(
        store.group_history(t(10)).await.unwrap().len(),
        6,
        "every row of A and C"
    );
}

#[derive(Debug, Clone, Copy)]
enum Read {
    Findings,
    FindingsInGroup,
    Group,
    Groups,
    ListGroups,
    Jobs,
    LeaseJob,
    Delivery,
    Audit,
    Outbox,
}

async fn read(store: &dyn Store, what: Read) -> Result<(), StoreError> {
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub".to_string();
    match what {
        Read::Findings => store.findings(&[(arn, "f-1".into())]).await.map(drop),
        Read::FindingsInGroup => store.findings_in_group(&key("G")).await.map(drop),
        Read::Group => store.group(&key("G")).await.map(drop),
        Read::Groups => store.groups(&[key("G")]).await.map(drop),
        Read::ListGroups => store.list_groups(None).await.map(drop),
        Read::Jobs => store.jobs(None).await.map(drop),
        Read::LeaseJob => store
            .lease_job("w", t(100), Duration::seconds(1))
            .await
            .map(drop),
        Read::Delivery => store.delivery("github:d1").await.map(drop),
        Read::Audit => store.audit(&AuditFilter::default()).await.map(drop),
        Read::Outbox => store.outbox(&key("G")).await.map(drop),
    }
}

/// A rolling upgrade: a job of a kind this version does not know (written by a newer replica)
/// is listed as it is, never leased, never failed, and does not wake an idle worker.
async fn unknown_job_kinds_are_left_to_newer_replicas(db: Arc<Db>) {
    let store = db.store().await;
    enqueue(
        store.as_ref(),
        vec![
            new_job("sync-group", "future", t(0)),
            new_job("sync-group", "known", t(0)),
        ],
        t(0),
    )
    .await;
    db.exec("UPDATE jobs SET kind = 'reconcile-issues' WHERE subject = 'future'")
        .await;
    let leased = lease(store.as_ref(), "old-replica", t(10))
        .await
        .expect("the known job");
    assert_eq!(leased.job.subject(), "known");
    assert_eq!(lease(store.as_ref(), "old-replica", t(20)).await, None);
    outcome(
        store.as_ref(),
        JobOutcome::Done {
            id: leased.id,
            lease_owner: "old-replica".into(),
        },
        t(21),
    )
    .await
    .unwrap();
    assert_eq!(
        store.next_job_at().await.unwrap(),
        None,
        "nothing this version can run"
    );
    let future = store
        .jobs(Some(JobState::Pending))
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.job.subject() == "future")
        .expect("still pending");
    assert_eq!(
        future.job,
        Job::Unknown {
            kind: "reconcile-issues".into(),
            subject: "future".into()
        }
    );
    assert_eq!(
        (future.attempts, future.lease_owner, future.last_error),
        (0, None, None),
        "untouched"
    );
}

async fn corrupt_rows_are_reported_not_panicked(db: Arc<Db>) {
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    // (name, raw SQL for SQLite, raw SQL for PostgreSQL (JSONB refuses non-JSON text, so
    // there: valid JSON of the wrong shape), reads that must fail, words the error names)
    type CorruptCase = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static [Read],
        &'static [&'static str],
    );
    let cases: [CorruptCase; 9] = [
        (
            "finding data not JSON",
            Some("UPDATE findings SET data = '{not json'"),
            None,
            &[Read::Findings, Read::FindingsInGroup],
            &["findings", "f-1", "data"],
        ),
        (
            "finding data of the wrong shape",
            Some(r#"UPDATE findings SET data = '{"garbage": true}'"#),
            Some(r#"UPDATE findings SET data = '{"garbage": true}'"#),
            &[Read::Findings, Read::FindingsInGroup],
            &["findings", "f-1", "data"],
        ),
        (
            "finding severity unknown",
            Some("UPDATE findings SET severity = 'APOCALYPTIC'"),
            Some("UPDATE findings SET severity = 'APOCALYPTIC'"),
            &[Read::Findings],
            &["findings", "f-1", "severity", "APOCALYPTIC"],
        ),
        (
            "group data not JSON",
            Some("UPDATE groups SET data = 'nope'"),
            None,
            &[Read::Group, Read::Groups, Read::ListGroups],
            &["groups", "G", "data"],
        ),
        (
            "group data of the wrong shape (no route)",
            Some(r#"UPDATE groups SET data = '{"account_id": "1", "severity": "HIGH"}'"#),
            Some(r#"UPDATE groups SET data = '{"account_id": "1", "severity": "HIGH"}'"#),
            &[Read::Group, Read::Groups, Read::ListGroups],
            &["groups", "G", "data", "route"],
        ),
        (
            "job attempts out of range",
            Some("UPDATE jobs SET attempts = 9999999999"),
            None,
            &[Read::Jobs, Read::LeaseJob],
            &["jobs", "id=", "attempts"],
        ),
        (
            "effect action of the wrong shape",
            Some(r#"UPDATE outbox SET action = '{"kind": "teleport"}'"#),
            Some(r#"UPDATE outbox SET action = '{"kind": "teleport"}'"#),
            &[Read::Outbox],
            &["outbox", "e-1", "action", "teleport"],
        ),
        (
            "delivery digest of the wrong length",
            Some("UPDATE deliveries SET body_sha256 = X'00'"),
            Some("UPDATE deliveries SET body_sha256 = '\\x00'::bytea"),
            &[Read::Delivery],
            &["deliveries", "github:d1", "body_sha256", "1 bytes"],
        ),
        (
            "audit detail not JSON",
            Some("UPDATE audit SET detail = '}'"),
            None,
            &[Read::Audit],
            &["audit", "seq=", "detail"],
        ),
    ];
    let mut ran = 0;
    for (name, sqlite_sql, pg_sql, reads, words) in cases {
        let sql = if db.is_postgres() { pg_sql } else { sqlite_sql };
        let Some(sql) = sql else { continue };
        ran += 1;
        // A fresh set of rows for every case (other rows stay readable).
        let store = db.store().await;
        db.exec("DELETE FROM findings; DELETE FROM groups; DELETE FROM jobs; DELETE FROM deliveries; DELETE FROM audit")
            .await;
        store
            .apply(
                ChangeSet {
                    findings: vec![finding(arn, "f-1", "G", Severity::High)],
                    groups: vec![GroupWrite::InsertIfAbsent(group(
                        "G",
                        "acme/web",
                        Some(1),
                        GroupStatus::Open,
                    ))],
                    jobs: vec![new_job("sync-group", "s", t(0))],
                    outbox: vec![OutboxWrite::Add(effect("e-1", "G"))],
                    audit: vec![audit_entry(t(0), "x", "G", None)],
                    ..Default::default()
                },
                t(0),
            )
            .await
            .unwrap();
        let d1 = Incoming::new("github:d1", None, t(0));
        assert_eq!(
            record(store.as_ref(), &[&d1]).await.unwrap(),
            [DeliveryOutcome::Untracked]
        );
        db.exec(sql).await;
        for what in reads {
            match read(store.as_ref(), *what).await {
                Err(StoreError::Corrupt(msg)) => {
                    for word in words {
                        assert!(
                            msg.contains(word),
                            "{name} / {what:?}: {msg:?} lacks {word:?}"
                        );
                    }
                }
                other => panic!("{name} / {what:?}: expected Corrupt, got {other:?}"),
            }
        }
        // The store still works for everything else.
        store.ping().await.unwrap();
        assert_eq!(store.kv_get("k").await.unwrap(), None);
    }
    assert!(ran >= 2, "at least two corruption cases per backend");
}

// =============================================================================================
// Backend-specific checks (outside the shared suite).

#[tokio::test]
async fn open_rejects_unknown_url_schemes() {
    for url in ["mysql://localhost/lever", "lever.db", ""] {
        match lever::store::open(url).await {
            Err(StoreError::InvalidUrl { url: u, .. }) => assert_eq!(u, url),
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_open_creates_the_file_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let store = lever::store::open(&url).await.expect("open migrates");
    assert!(path.exists(), "file created");
    assert_eq!(store.backend(), "sqlite");

    let s = SqliteStore::connect(&url).await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .unwrap();
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(s.pool())
        .await
        .unwrap();
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(journal.to_lowercase(), "wal");
    assert_eq!(fk, 1);
    assert!(busy >= 1000, "busy timeout set: {busy} ms");
}

/// The three lookups that plan every intake batch (findings by id, groups by key, pending job
/// ids) read on the caller's thread, not through sqlx's pool, whose worker threads and
/// hand-offs were a third of a batch's time under a flood: they answer while every pooled
/// connection is held elsewhere (they waited for one before, here for the 30 s acquire
/// timeout). A list longer than the reader takes goes through the pool, with the same answer.
#[tokio::test]
async fn sqlite_planning_lookups_answer_while_every_pooled_connection_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lever.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    let written = vec![
        finding(arn, "f-1", "G", Severity::Critical),
        finding(arn, "f-2", "G", Severity::High),
    ];
    store
        .apply(
            ChangeSet {
                findings: written.clone(),
                groups: vec![GroupWrite::InsertIfAbsent(group(
                    "G",
                    "acme/web",
                    None,
                    GroupStatus::Pending,
                ))],
                jobs: vec![new_job("open-issue", "G", t(0))],
                ..ChangeSet::default()
            },
            t(0),
        )
        .await
        .unwrap();
    let job_id = store.jobs(Some(JobState::Pending)).await.unwrap()[0].id;
    let asked = vec![
        pair(&written[1]),
        (arn.to_string(), "missing".to_string()),
        pair(&written[0]),
    ];
    // Every connection the pool will open, held: the next acquire would wait.
    let mut held = Vec::new();
    while let Ok(conn) = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        store.pool().acquire(),
    )
    .await
    {
        held.push(conn.unwrap());
    }
    assert_eq!(
        held.len() as u32,
        store.pool().options().get_max_connections()
    );
    let lookups = async {
        let found = store.findings(&asked).await.unwrap();
        let groups = store.groups(&[key("missing"), key("G")]).await.unwrap();
        let ids = store
            .pending_job_ids(&[
                Job::from_parts("sync-group", "G"),
                Job::from_parts("open-issue", "G"),
            ])
            .await
            .unwrap();
        (found, groups, ids)
    };
    let (found, groups, ids) = tokio::time::timeout(std::time::Duration::from_secs(5), lookups)
        .await
        .expect("the lookups answered without a pooled connection");
    assert_eq!(found, written, "ordered by (ProductArn, Id)");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].group_key, key("G"));
    assert_eq!(groups[0].repo, "acme/web");
    assert_eq!(ids, vec![None, Some(job_id)]);
    drop(held);
    // More keys than the reader takes: the pool answers the same.
    let mut many: Vec<(String, String)> = (0..300)
        .map(|i| (arn.to_string(), format!("other-{i}")))
        .collect();
    many.extend(asked);
    assert_eq!(store.findings(&many).await.unwrap(), written);
}

#[tokio::test]
async fn sqlite_in_memory_database_works() {
    let store = lever::store::open("sqlite::memory:").await.expect("open");
    enqueue(store.as_ref(), vec![new_job("sync-group", "s", t(0))], t(0)).await;
    assert!(lease(store.as_ref(), "w", t(0)).await.is_some());
    assert_eq!(store.jobs(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_missing_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("no/such/dir/x.db").display());
    let err = lever::store::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

#[tokio::test]
async fn postgres_schema_name_is_validated() {
    for schema in [
        "",
        "Upper",
        "has space",
        "semi;colon",
        "1starts_with_digit",
        &"x".repeat(64),
    ] {
        match PostgresStore::connect_with_schema(&pg::url(), schema).await {
            Err(StoreError::InvalidUrl { reason, .. }) => assert!(reason.contains("schema")),
            other => panic!("{schema:?}: expected InvalidUrl, got {other:?}"),
        }
    }
}

/// Leases the job with this subject at `at`, putting the others leased before it back for
/// much later.
async fn lease_subject(store: &dyn Store, subject: &str, at: DateTime<Utc>) -> JobRecord {
    loop {
        let l = lease(store, "w", at).await.expect("the job is due");
        if l.job.subject() == subject {
            return l;
        }
        outcome(
            store,
            JobOutcome::Retry {
                id: l.id,
                lease_owner: "w".into(),
                retry_at: t(10_000),
                error: "later".into(),
            },
            at,
        )
        .await
        .unwrap();
    }
}

/// `[retention]`: finished jobs and old deliveries go; pending and parked jobs, the deliveries
/// they need, recent ones and the audit trail stay.
async fn prune_keeps_what_work_and_deduplication_still_need(db: Arc<Db>) {
    use DeliveryOutcome::{Tracked, Untracked};
    let store = db.store().await;
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(group(
                    "G1",
                    "acme/web",
                    Some(1),
                    GroupStatus::Open,
                ))],
                audit: vec![audit_entry(t(0), "issue-opened", "G1", None)],
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    let needed = Incoming::new("github:needed", Some(("acme/web", 1)), t(5));
    let old = Incoming::new("github:old", None, t(6));
    let recent = Incoming::new("github:recent", None, t(200));
    assert_eq!(
        record(store.as_ref(), &[&needed, &old, &recent])
            .await
            .unwrap(),
        [Tracked, Untracked, Untracked]
    );
    // Three other jobs: finished long ago, finished recently, parked long ago.
    enqueue(
        store.as_ref(),
        vec![
            new_job("sync-group", "finished-old", t(0)),
            new_job("sync-group", "parked", t(0)),
        ],
        t(0),
    )
    .await;
    enqueue(
        store.as_ref(),
        vec![new_job("sync-group", "finished-new", t(300))],
        t(300),
    )
    .await;
    for (subject, at, dead) in [
        ("finished-old", t(10), false),
        ("parked", t(11), true),
        ("finished-new", t(300), false),
    ] {
        let leased = lease_subject(store.as_ref(), subject, at).await;
        let o = if dead {
            JobOutcome::Dead {
                id: leased.id,
                lease_owner: "w".into(),
                error: "gone".into(),
            }
        } else {
            JobOutcome::Done {
                id: leased.id,
                lease_owner: "w".into(),
            }
        };
        outcome(store.as_ref(), o, at).await.unwrap();
    }

    let pruned = store.prune(t(100), t(100)).await.unwrap();
    assert_eq!((pruned.jobs, pruned.deliveries), (1, 1), "{pruned:?}");
    let left: Vec<String> = store
        .jobs(None)
        .await
        .unwrap()
        .iter()
        .map(|j| j.job.subject().to_string())
        .collect();
    assert!(!left.contains(&"finished-old".to_string()), "{left:?}");
    for kept in ["parked", "finished-new", "github:needed"] {
        assert!(left.contains(&kept.to_string()), "{kept} kept: {left:?}");
    }
    assert!(store.delivery("github:old").await.unwrap().is_none());
    assert!(
        store.delivery("github:needed").await.unwrap().is_some(),
        "its job needs it"
    );
    assert!(store.delivery("github:recent").await.unwrap().is_some());
    assert_eq!(
        store.audit(&AuditFilter::default()).await.unwrap().len(),
        1,
        "the audit trail is never pruned"
    );
    // Idempotent.
    assert_eq!(store.prune(t(100), t(100)).await.unwrap().jobs, 0);
}

/// The noise cap's count is the store's: 4 replicas asking at once for 20 slots of one product
/// with a cap of 5 get exactly 5; a retry keeps its slot; the hour frees them; another product
/// has its own count.
async fn noise_cap_slots_hold_across_replicas(db: Arc<Db>) {
    use lever::store::IssueSlot;
    let store = db.store().await;
    let mut replicas = vec![store.clone()];
    for _ in 0..3 {
        replicas.push(db.replica().await);
    }
    let hour = chrono::Duration::hours(1);
    let now = t(0);
    let key = |i: usize| GroupKey(format!("EC2.8|arn:aws:ec2:::instance/i-{i}|1|r"));
    let asks = join_all((0..20).map(|i| {
        let r = replicas[i % replicas.len()].clone();
        tokio::spawn(async move { r.take_issue_slot("acme/web", &key(i), 5, hour, now).await })
    }))
    .await;
    let answers: Vec<IssueSlot> = asks
        .into_iter()
        .map(|a| a.expect("task").expect("slot"))
        .collect();
    let granted: Vec<usize> = (0..20)
        .filter(|i| answers[*i] == IssueSlot::Granted)
        .collect();
    assert_eq!(granted.len(), 5, "{answers:?}");
    for a in &answers {
        if let IssueSlot::Held { opened } = a {
            assert_eq!(opened.len(), 5, "{a:?}");
        }
    }
    // A retry of a group that took a slot keeps it, and is not counted twice.
    let later = now + chrono::Duration::minutes(10);
    assert_eq!(
        store
            .take_issue_slot("acme/web", &key(granted[0]), 5, hour, later)
            .await
            .unwrap(),
        IssueSlot::Granted
    );
    let ledger = store.noise_ledger("acme/web", later - hour).await.unwrap();
    assert_eq!(ledger.opened.len(), 5);
    assert_eq!(ledger.held.len(), 15);
    // A held group keeps the time it was first held.
    let held = (0..20).find(|i| !granted.contains(i)).unwrap();
    assert!(matches!(
        store
            .take_issue_slot("acme/web", &key(held), 5, hour, later)
            .await
            .unwrap(),
        IssueSlot::Held { .. }
    ));
    let ledger = store.noise_ledger("acme/web", later - hour).await.unwrap();
    assert!(ledger.held.iter().all(|e| e.at == now), "{ledger:?}");
    assert_eq!(store.noise_held().await.unwrap().len(), 15);
    // Another product counts on its own.
    assert_eq!(
        store
            .take_issue_slot("acme/other", &key(0), 5, hour, later)
            .await
            .unwrap(),
        IssueSlot::Granted
    );
    // An hour later the slots are free again; the held group that takes one leaves the held.
    let next_hour = now + hour + chrono::Duration::seconds(1);
    assert_eq!(
        store
            .take_issue_slot("acme/web", &key(held), 5, hour, next_hour)
            .await
            .unwrap(),
        IssueSlot::Granted
    );
    let ledger = store
        .noise_ledger("acme/web", next_hour - hour)
        .await
        .unwrap();
    assert_eq!(ledger.opened.len(), 1);
    assert_eq!(ledger.held.len(), 14);
    assert!(!ledger.held.iter().any(|e| e.group_key == key(held)));
}

/// A change set larger than one statement holds (multi-row statements of 64 rows down to 1)
/// writes exactly what its parts would, one by one and in order: a finding written twice keeps
/// its last write, a group inserted and then updated in the same change set ends updated, a
/// group already stored is left alone and gets no history row, a job enqueued twice is one job
/// at the earlier time (an if-absent enqueue leaves it as it is), every audit entry is kept in
/// order. PostgreSQL refuses an upsert that touches one row twice: the run must be cut there.
async fn a_large_change_set_writes_what_its_parts_would_in_order(db: Arc<Db>) {
    let store = db.store().await;
    let mut existing = group("G007", "acme/old", None, GroupStatus::Pending);
    existing.created_at = t(-10);
    store
        .apply(
            ChangeSet {
                groups: vec![GroupWrite::InsertIfAbsent(existing.clone())],
                ..Default::default()
            },
            t(-10),
        )
        .await
        .unwrap();

    let arn = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";
    let mut findings: Vec<FindingRecord> = (0..150)
        .map(|i| {
            finding(
                arn,
                &format!("f{i:03}"),
                &format!("G{:03}", i % 100),
                Severity::High,
            )
        })
        .collect();
    // f010 again, later in the set, now CRITICAL: the last write wins.
    let mut again = finding(arn, "f010", "G010", Severity::Critical);
    again.fingerprint = "second".into();
    findings.insert(120, again);
    let mut groups: Vec<GroupWrite> = (0..100)
        .map(|i| {
            GroupWrite::InsertIfAbsent(group(
                &format!("G{i:03}"),
                "acme/web",
                None,
                GroupStatus::Pending,
            ))
        })
        .collect();
    // G042 is inserted and updated (opened) in the same change set.
    let mut opened = group("G042", "acme/web", Some(42), GroupStatus::Open);
    opened.updated_at = t(5);
    groups.push(GroupWrite::Update {
        record: opened.clone(),
        expected_version: 1,
    });
    let mut jobs: Vec<NewJob> = (0..90)
        .map(|i| new_job("sync-group", &format!("G{:03}", i % 80), t(100 + i)))
        .collect();
    // sync-group G003 again, earlier: one job at t(50). open-issue G001 if absent, twice:
    // the first one stands.
    jobs.push(new_job("sync-group", "G003", t(50)));
    jobs.push(NewJob::if_absent(
        Job::from_parts("open-issue", "G001"),
        t(60),
    ));
    jobs.push(NewJob::if_absent(
        Job::from_parts("open-issue", "G001"),
        t(70),
    ));
    let audit: Vec<AuditEntry> = (0..70)
        .map(|i| audit_entry(t(i), &format!("action-{i}"), "G000", None))
        .collect();
    store
        .apply(
            ChangeSet {
                findings,
                groups,
                jobs,
                audit,
                ..Default::default()
            },
            t(1),
        )
        .await
        .unwrap();

    let ids: Vec<(String, String)> = (0..150)
        .map(|i| (arn.to_string(), format!("f{i:03}")))
        .collect();
    let stored = store.findings(&ids).await.unwrap();
    assert_eq!(stored.len(), 150);
    let f010 = stored.iter().find(|f| f.finding_id == "f010").unwrap();
    assert_eq!(
        (f010.severity, f010.fingerprint.as_str()),
        (Severity::Critical, "second")
    );
    assert!(
        stored
            .iter()
            .filter(|f| f.finding_id != "f010")
            .all(|f| f.severity == Severity::High)
    );

    let keys: Vec<GroupKey> = (0..100).map(|i| key(&format!("G{i:03}"))).collect();
    let stored = store.groups(&keys).await.unwrap();
    assert_eq!(stored.len(), 100);
    for g in &stored {
        match g.group_key.as_str() {
            "G007" => assert_eq!(g, &existing, "a stored group is left alone"),
            "G042" => assert_eq!(
                (g.status, g.issue_number, g.version),
                (GroupStatus::Open, Some(42), 2)
            ),
            _ => assert_eq!(
                (g.status, g.repo.as_str(), g.version),
                (GroupStatus::Pending, "acme/web", 1)
            ),
        }
    }
    let history = store.group_history(t(-100)).await.unwrap();
    let rows_of = |k: &str| history.iter().filter(|h| h.group_key.as_str() == k).count();
    assert_eq!(
        history.len(),
        1 + 99 + 1,
        "G007 once (before), each new group once, G042 opened"
    );
    assert_eq!(
        (rows_of("G007"), rows_of("G042"), rows_of("G099")),
        (1, 2, 1)
    );

    let stored = store.jobs(None).await.unwrap();
    assert_eq!(
        stored.len(),
        80 + 1,
        "80 sync-group subjects and one open-issue"
    );
    let run_at = |kind: &str, subject: &str| {
        stored
            .iter()
            .find(|j| j.job.kind() == kind && j.job.subject() == subject)
            .map(|j| j.run_at)
            .unwrap()
    };
    assert_eq!(run_at("sync-group", "G003"), t(50));
    assert_eq!(
        run_at("sync-group", "G005"),
        t(105),
        "G005 at 105 and at 185: the earlier"
    );
    assert_eq!(run_at("open-issue", "G001"), t(60));

    let entries = store.audit(&AuditFilter::default()).await.unwrap();
    let actions: Vec<String> = entries.iter().map(|e| e.action.clone()).collect();
    let want: Vec<String> = (0..70).map(|i| format!("action-{i}")).collect();
    assert_eq!(actions, want);
}

// =============================================================================================
// The connection itself

/// Every connection Lever opens to PostgreSQL over TCP sends a message as soon as it is written
/// (`TCP_NODELAY`). With Nagle's algorithm on, the tail of a statement larger than one segment
/// (an intake batch of 16 findings is about 70 KB) waited for the server's delayed ACK: 40 ms a
/// statement, which held PostgreSQL intake at ~400 events/s (sqlx 0.9.0 stopped setting the
/// option; 0.9.1 sets it again). The sockets are this test process's own, found in
/// `/proc/self/fd` by their peer, PostgreSQL's address.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_send_without_delay() {
    use std::os::fd::BorrowedFd;

    let Some(url) = pg::or_skip("store::postgres_connections_send_without_delay").await else {
        return;
    };
    let server: Vec<std::net::SocketAddr> = {
        let u = url::Url::parse(&url).expect("the PostgreSQL URL");
        let host = u.host_str().expect("a host").to_string();
        let port = u.port().unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve the PostgreSQL host")
            .collect()
    };
    let schema = pg::Schema::create(&url).await;
    let store = lever::store::open(&schema.database_url())
        .await
        .expect("Lever's PostgreSQL store");
    // A statement larger than a loopback segment (64 KB), through the store's own pool.
    let big = "x".repeat(100_000);
    let changes = ChangeSet {
        kv: vec![("nagle-probe".to_string(), big.clone())],
        ..ChangeSet::default()
    };
    store.apply(changes, t(0)).await.expect("a large write");
    assert_eq!(
        store.kv_get("nagle-probe").await.expect("read back"),
        Some(big)
    );

    let mut checked = 0;
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed for two getsockopt-style calls; should another
        // thread close it meanwhile, the calls fail (or see another socket, whose peer is not
        // PostgreSQL's) and it is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let Some(peer) = sock.peer_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        if !server.contains(&peer) {
            continue;
        }
        let nodelay = sock.tcp_nodelay().expect("TCP_NODELAY of a TCP socket");
        assert!(
            nodelay,
            "the connection to PostgreSQL on fd {fd:?} (peer {peer}) leaves Nagle's algorithm on"
        );
        checked += 1;
    }
    assert!(
        checked > 0,
        "no TCP connection to PostgreSQL at {server:?} found in /proc/self/fd"
    );
}

/// A migrated PostgreSQL store in a fresh schema, talking to the server through a
/// [`pg::Relay`]; `None` (the loud skip) without PostgreSQL.
async fn relayed_store(test: &str) -> Option<(pg::Schema, pg::Relay, Arc<dyn Store>)> {
    let url = pg::or_skip(test).await?;
    let schema = pg::Schema::create(&url).await;
    let relay = pg::Relay::start(&schema.database_url()).await;
    let store = lever::store::open(&relay.url)
        .await
        .expect("Lever's PostgreSQL store, through the relay");
    store.migrate().await.expect("migrated");
    Some((schema, relay, store))
}

/// A pooled PostgreSQL connection in steady use goes straight to its statement: no ping (an
/// empty `Sync` and its answer, one more round trip) before each transaction, which sqlx does by
/// default and which cost PostgreSQL webhooks about 7 % of their throughput. Connections idle
/// for longer than ten seconds are still pinged before use (`store::postgres::IDLE_PING`). The
/// pings are counted on the wire, through a loopback relay between the store and the server
/// (without TLS): a ping is a client message of its own, exactly `S` and the length 4. Before,
/// 80 over the 40 transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_in_use_are_not_pinged_before_each_transaction() {
    let Some((_schema, relay, store)) =
        relayed_store("store::postgres_connections_in_use_are_not_pinged").await
    else {
        return;
    };
    // The ping that hands the migration's connection back to the pool, in before counting.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    relay.clear();
    for i in 0..20 {
        let changes = ChangeSet {
            kv: vec![(format!("ping-probe-{i}"), "x".to_string())],
            ..ChangeSet::default()
        };
        store.apply(changes, t(0)).await.expect("a write");
        assert_eq!(
            store
                .kv_get(&format!("ping-probe-{i}"))
                .await
                .expect("a read"),
            Some("x".to_string())
        );
    }
    // sqlx also pings every connection it takes back into the pool (unconditionally, in a task
    // of its own once the caller has its answer): one a transaction is that ping alone.
    let transactions = 40;
    let counted = relay.pings();
    assert!(
        counted <= transactions,
        "{counted} pings over {transactions} transactions on connections in steady use: \
         each was pinged before it was used too"
    );
}

/// On PostgreSQL a batch of untracked deliveries (most of what a GitHub App receives) is one
/// statement with no transaction around it: the tracked-issue query, then the padded insert,
/// each atomic by itself (two round trips; `BEGIN` and `COMMIT` made four). A batch with a
/// tracked delivery still writes its insert and its job in one transaction. Seen on the wire,
/// through a relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_untracked_deliveries_are_one_statement_without_a_transaction() {
    use DeliveryOutcome::{Tracked, Untracked};
    let Some((_schema, relay, store)) =
        relayed_store("store::postgres_untracked_deliveries_are_one_statement").await
    else {
        return;
    };
    let changes = ChangeSet {
        groups: vec![GroupWrite::InsertIfAbsent(group(
            "G1",
            "acme/web",
            Some(1),
            GroupStatus::Open,
        ))],
        ..Default::default()
    };
    store.apply(changes, t(0)).await.expect("a tracked issue");
    let transactions =
        |relay: &pg::Relay| (relay.containing(b"BEGIN"), relay.containing(b"COMMIT"));

    relay.clear();
    let untracked = [
        Incoming::new("github:u-1", Some(("acme/web", 2)), t(5)),
        Incoming::new("github:u-2", None, t(6)),
    ];
    assert_eq!(
        record(store.as_ref(), &untracked.iter().collect::<Vec<_>>())
            .await
            .expect("recorded"),
        [Untracked, Untracked]
    );
    assert_eq!(
        transactions(&relay),
        (0, 0),
        "no transaction for one statement"
    );
    for d in &untracked {
        assert_eq!(store.delivery(&d.id).await.unwrap(), Some(d.stored(false)));
    }

    relay.clear();
    let mixed = [
        Incoming::new("github:m-1", Some(("acme/web", 1)), t(7)),
        Incoming::new("github:m-2", Some(("acme/web", 3)), t(8)),
    ];
    assert_eq!(
        record(store.as_ref(), &mixed.iter().collect::<Vec<_>>())
            .await
            .expect("recorded"),
        [Tracked, Untracked]
    );
    assert_eq!(
        transactions(&relay),
        (1, 1),
        "the insert and the job together"
    );
    assert_eq!(
        store.delivery(&mixed[0].id).await.unwrap(),
        Some(mixed[0].stored(true))
    );
    let jobs = store.jobs(None).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.job.clone()).collect::<Vec<_>>(),
        [Job::GithubEvent(DeliveryId(mixed[0].id.clone()))]
    );
}
