//! The PostgreSQL dialect of [`SqlStore`].
//!
//! A connection pool; several replicas (processes) may share one database. Timestamps are
//! TIMESTAMPTZ, JSON is JSONB. Transactions run at READ COMMITTED: the group version check is a
//! compare-and-swap `UPDATE ... WHERE version = $expected` (a concurrent writer blocks, then
//! finds the version moved), jobs are leased with `FOR UPDATE SKIP LOCKED`, and deliveries are
//! deduplicated by `INSERT ... ON CONFLICT DO NOTHING` (a concurrent insert of the same id waits
//! for the first to commit, then does nothing).
//!
//! Tables live in the first schema of the connection's `search_path`: the database default
//! (`public`), or the schema given to [`PostgresStore::connect_with_schema`] (also possible in
//! the URL: `?options=-c%20search_path%3Dlever`).

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

use super::combine::CombineStats;
use super::common::{self, At, finding_cols, group_cols, tracked_issue_sql};
use super::dialect::{Dialect, Lookup, Query};
use super::sql::SqlStore;
use super::{DeliveryOutcome, JobRecord, NewDelivery, Result, StoreError};

/// A pooled connection idle this long is pinged before it is used again (one round trip), and
/// replaced if it does not answer; one in use more often than that is not pinged: under load
/// every transaction paid that round trip (about 7 % of PostgreSQL's webhook throughput,
/// `docs/PERFORMANCE.md`). The price: a connection the server dropped within the last ten
/// seconds of use (a restart, a failover) fails its next statement instead, once; sqlx then
/// closes it. That write is not acknowledged: a webhook or an EventBridge event is answered
/// 503 (EventBridge retries; Lever's `[sync] webhooks` asks GitHub to redeliver), a job is
/// retried.
const IDLE_PING: std::time::Duration = std::time::Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const MAX_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to `postgres://...` / `postgresql://...` (waits up to 30 s for the server).
    /// Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(parse(url)?).await
    }

    /// Like [`connect`](Self::connect), with every connection's `search_path` set to `schema`,
    /// so Lever's tables (and sqlx's `_sqlx_migrations`) live there. The schema must exist.
    /// `schema` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    /// Used by the tests to give each test a fresh schema in one database.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(StoreError::InvalidUrl {
                url: url.to_string(),
                reason: format!("schema {schema:?} is not a plain lower-case identifier"),
            });
        }
        Self::connect_with(parse(url)?.options([("search_path", schema)])).await
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.statement_cache_capacity(common::STATEMENT_CACHE))
            .await?;
        Ok(SqlStore::new(pool))
    }
}

fn parse(url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";

    /// One lookup in `findings_pkey` per pair asked (each pair once), for the reason given at
    /// [`Self::SELECT_GROUPS_BY_KEY`].
    const SELECT_FINDINGS_BY_ID: &'static str = concat!(
        "SELECT f.* FROM (SELECT DISTINCT p->>0 AS arn, p->>1 AS id
             FROM jsonb_array_elements($1) AS p) AS k
         CROSS JOIN LATERAL (SELECT ",
        finding_cols!(),
        " FROM findings WHERE product_arn = k.arn AND finding_id = k.id LIMIT 1) AS f
         ORDER BY f.product_arn, f.finding_id"
    );

    /// One lookup in `groups_pkey` per key asked (each key once). `group_key IN (…)` let the
    /// planner, which expects a hundred keys from the JSON array, hash them and scan every
    /// group while the table was small enough for that to look cheaper (3 ms a lookup at 4,400
    /// groups during the intake benchmark, where the two lookups that plan each batch were
    /// most of the server's CPU). `LIMIT 1` keeps the subquery a probe of the unique index.
    const SELECT_GROUPS_BY_KEY: &'static str = concat!(
        "SELECT g.* FROM (SELECT DISTINCT jsonb_array_elements_text($1) AS key) AS k
         CROSS JOIN LATERAL (SELECT ",
        group_cols!(),
        " FROM groups WHERE group_key = k.key LIMIT 1) AS g
         ORDER BY g.group_key"
    );

    /// One lookup in `jobs_pending_kind_subject` per pair: a plain join let the planner
    /// hash the pairs against every pending job (it expects a hundred pairs and, after
    /// `ANALYZE`, scans the table: 3.7 ms a lookup at 15,000 pending, growing with the backlog
    /// of a flood). `LIMIT 1` keeps the subquery a loop over the index (the index is unique:
    /// one pending job per pair at most).
    const SELECT_PENDING_JOB_IDS: &'static str = "SELECT p.ord - 1 AS k, j.id AS id
         FROM jsonb_array_elements($1) WITH ORDINALITY AS p(v, ord) CROSS JOIN LATERAL (
             SELECT id FROM jobs
             WHERE state = 'pending' AND kind = p.v->>0 AND subject = p.v->>1
             LIMIT 1) AS j";

    /// One probe of `groups_issue` per pair: as an `EXISTS`, the planner turned the lookup
    /// into a hash join over every group owning an issue until the table grew large enough for
    /// a hundred probes to look cheaper (1.7 ms a webhook batch at 3,000 groups; index probes
    /// again at 30,000).
    const SELECT_TRACKED_ISSUES: &'static str = concat!(
        "SELECT p.ord - 1 AS k FROM jsonb_array_elements($1) WITH ORDINALITY AS p(v, ord)
         CROSS JOIN LATERAL (",
        tracked_issue_sql!("p.v->>0", "(p.v->>1)::bigint"),
        " LIMIT 1) AS g ORDER BY k"
    );

    /// A transaction-scoped advisory lock on the product's name (two-key form, class 0x6e6f6973
    /// "nois", apart from sqlx's single-key migration lock): two replicas deciding a slot of
    /// the same product take turns, so the count they read is the count they write against.
    const LOCK_NOISE_PRODUCT: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(1852795251, hashtext($1))");

    fn next_job_at_sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| common::next_job_at_sql("jobs"));
        &SQL
    }

    /// The inner `SELECT ... FOR UPDATE SKIP LOCKED` locks the chosen row (rows other leasers
    /// hold are skipped, rows they just leased fail the recheck), the outer `UPDATE` writes
    /// the lease.
    fn lease_job_sql() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| common::lease_job_sql("jobs", " FOR UPDATE SKIP LOCKED"));
        &SQL
    }

    /// Nothing: PostgreSQL's row locks and the version checks serialize writers.
    type Gate = ();
    type Write<'a> = Transaction<'static, Postgres>;

    /// Every write is a transaction of its own (PostgreSQL batches WAL flushes itself).
    fn shared_commits(_gate: &()) -> Option<CombineStats> {
        None
    }

    async fn begin_write<'a>(
        pool: &'a PgPool,
        _gate: &'a (),
    ) -> Result<Transaction<'static, Postgres>> {
        Ok(pool.begin().await?)
    }

    /// A batch of untracked deliveries in one statement, the question which are tracked
    /// included; any other batch in a transaction (`postgres_lean::deliveries`).
    async fn record_deliveries<'a>(
        pool: &'a PgPool,
        _gate: &'a (),
        deliveries: &'a [NewDelivery<'a>],
    ) -> Result<Vec<DeliveryOutcome>> {
        super::postgres_lean::deliveries::record(pool, deliveries).await
    }

    async fn lookup<'a, L: Lookup, K: Serialize + Sync>(
        pool: &'a PgPool,
        _gate: &'a (),
        keys: &'a [K],
    ) -> Result<Vec<L::Out>> {
        super::sql::lookup_pooled::<Self, L, K>(pool, keys).await
    }

    /// An intake batch's change set (findings, new groups, jobs enqueued, audit entries) as one
    /// statement, which commits on its own (`store::postgres_lean`); any other, one transaction
    /// through the pool. Either is applied again when chosen as a deadlock victim.
    async fn apply<'a>(
        pool: &'a PgPool,
        gate: &'a (),
        changes: super::ChangeSet,
        now: DateTime<Utc>,
    ) -> Result<()> {
        super::postgres_lean::apply(pool, gate, changes, now, &[])
            .await
            .map(|_| ())
    }

    /// Through [`apply`](Dialect::apply)'s path; one statement also tells the ids.
    async fn apply_telling_ids<'a>(
        pool: &'a PgPool,
        gate: &'a (),
        changes: super::ChangeSet,
        now: DateTime<Utc>,
        jobs: &'a [super::Job],
    ) -> Result<Option<Vec<Option<i64>>>> {
        super::postgres_lean::apply(pool, gate, changes, now, jobs).await
    }

    /// sqlx's migrator holds a session-level advisory lock (`pg_advisory_lock`, keyed by the
    /// database name) while it checks and applies migrations, so replicas starting at once
    /// apply each migration exactly once: the others wait, then find it applied. If a
    /// migration fails, the connection is closed rather than returned to the pool, which
    /// releases the lock it may still hold.
    async fn migrate(pool: &PgPool, _gate: &()) -> Result<()> {
        let mut conn = pool.acquire().await?;
        let result = common::run_migrations(&MIGRATOR, &mut *conn).await;
        if result.is_err() {
            conn.close_on_drop();
        }
        Ok(result?)
    }

    /// One statement, which commits on its own.
    async fn lease<'a>(
        pool: &'a PgPool,
        _gate: &'a (),
        lease: Query<'a, Postgres>,
    ) -> Result<Option<JobRecord>> {
        let row = lease.fetch_optional(pool).await?;
        row.as_ref().map(common::job_from_row).transpose()
    }

    fn bind_ts(q: Query<'_, Postgres>, t: DateTime<Utc>) -> Query<'_, Postgres> {
        q.bind(t)
    }

    /// JSONB refuses NUL characters (`\u0000`): a document holding one is stored with
    /// U+FFFD in its place instead of failing its whole transaction.
    fn bind_json<'q, T: Serialize + ?Sized>(
        q: Query<'q, Postgres>,
        value: &T,
    ) -> Query<'q, Postgres> {
        // Serialized once: the text is checked, then bound as it is.
        match jsonb_text(value) {
            Ok(raw) => q.bind(Json(raw)),
            Err(_) => q.bind(Json(value)), // the encoder reports the error
        }
    }

    fn get_ts(row: &PgRow, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        row.try_get(col).map_err(|e| at.corrupt(col, e))
    }

    fn get_json<T: DeserializeOwned>(row: &PgRow, at: &At, col: &'static str) -> Result<T> {
        let value: serde_json::Value = row.try_get(col).map_err(|e| at.corrupt(col, e))?;
        at.decode_json_value(col, value)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// `value` as JSON text that JSONB accepts: a NUL character (`\u0000`), which JSONB refuses,
/// becomes U+FFFD instead of failing the whole transaction (`Dialect::bind_json`, and the
/// rows of `postgres_lean`).
pub(super) fn jsonb_text<T: Serialize + ?Sized>(
    value: &T,
) -> serde_json::Result<Box<serde_json::value::RawValue>> {
    let text = serde_json::to_string(value)?;
    if text.contains("\\u0000") {
        let v = serde_json::from_str::<serde_json::Value>(&text)?;
        return serde_json::value::to_raw_value(&crate::domain::nul::without_nul(&v));
    }
    serde_json::value::RawValue::from_string(text)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::GroupKey;
    use crate::store::{ChangeSet, Job, NewJob, Store};
    use sqlx::Connection;

    /// A fresh schema of the test database (`LEVER_TEST_POSTGRES_URL`, by default the local
    /// server's `test`) with Lever's tables, dropped afterwards; `None`, said loudly, when no
    /// server answers, unless `LEVER_REQUIRE_POSTGRES=1` (`.ci/run`), which fails instead.
    pub(in crate::store) async fn schema(test: &str) -> Option<(PostgresStore, String, String)> {
        let url = std::env::var("LEVER_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut admin = match sqlx::PgConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) if std::env::var("LEVER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
                panic!("{test}: PostgreSQL required (LEVER_REQUIRE_POSTGRES=1) but {url}: {e}")
            }
            Err(e) => {
                eprintln!("*** SKIPPED {test}: no PostgreSQL at {url}: {e} ***");
                return None;
            }
        };
        let name = format!("lever_unit_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let store = PostgresStore::connect_with_schema(&url, &name)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        Some((store, url, name))
    }

    pub(in crate::store) async fn drop_schema(url: &str, name: &str) {
        let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    /// The plan of `sql` run with `$1` bound to `keys` as JSON: `EXPLAIN (ANALYZE, FORMAT JSON)`'s
    /// top node.
    async fn plan_of(store: &PostgresStore, sql: &str, keys: impl Serialize) -> serde_json::Value {
        let explained: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
        )))
        .bind(Json(keys))
        .fetch_one(store.pool())
        .await
        .unwrap();
        explained[0]["Plan"].clone()
    }

    /// Rows of `table` the plan of an `EXPLAIN (ANALYZE, FORMAT JSON)` read, over all its
    /// nodes and loops.
    fn rows_read(plan: &serde_json::Value, table: &str) -> f64 {
        let own = if plan["Relation Name"] == table {
            plan["Actual Rows"].as_f64().unwrap_or(0.0)
                * plan["Actual Loops"].as_f64().unwrap_or(1.0)
                + plan["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
                + plan["Rows Removed by Index Recheck"]
                    .as_f64()
                    .unwrap_or(0.0)
        } else {
            0.0
        };
        own + plan["Plans"]
            .as_array()
            .map(|plans| plans.iter().map(|p| rows_read(p, table)).sum())
            .unwrap_or(0.0)
    }

    /// The two reads that plan every intake batch, the findings by (`ProductArn`, `Id`) and
    /// the groups by key, read one index entry per row asked, however large the tables: with
    /// 3,000 of each, analysed, PostgreSQL's planner hashed the asked keys and scanned every
    /// group (3 ms a lookup at 4,400 groups during the intake benchmark; with the findings'
    /// lookup, most of the server's CPU there).
    #[tokio::test]
    async fn the_finding_and_group_lookups_read_only_the_rows_asked_for() {
        let test =
            "store::postgres::tests::the_finding_and_group_lookups_read_only_the_rows_asked_for";
        let Some((store, url, name)) = schema(test).await else {
            return;
        };
        sqlx::raw_sql(
            "INSERT INTO groups (group_key, repo, status, data, created_at, updated_at, version)
             SELECT 'group-' || i, 'acme/web', 'pending', '{}', now(), now(), 1
             FROM generate_series(0, 2999) AS i;
             INSERT INTO findings (product_arn, finding_id, stable_key, group_key, account_id,
                 severity, record_state, workflow, fingerprint, data, first_seen, last_seen)
             SELECT 'arn:product', 'finding-' || i, 'stable-' || i, 'group-' || i,
                 '111122223333', 'HIGH', 'ACTIVE', 'NEW', 'f', '{}', now(), now()
             FROM generate_series(0, 2999) AS i;
             ANALYZE groups; ANALYZE findings;",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let groups = plan_of(
            &store,
            Postgres::SELECT_GROUPS_BY_KEY,
            ["group-7", "group-404", "never-made", "group-2999"],
        )
        .await;
        let findings = plan_of(
            &store,
            Postgres::SELECT_FINDINGS_BY_ID,
            [
                ["arn:product", "finding-7"],
                ["arn:product", "never-seen"],
                ["arn:product", "finding-2999"],
            ],
        )
        .await;
        drop_schema(&url, &name).await;
        assert_eq!(groups["Actual Rows"], 3, "the groups found: {groups:#}");
        assert_eq!(
            findings["Actual Rows"], 2,
            "the findings found: {findings:#}"
        );
        let read = rows_read(&groups, "groups");
        assert!(
            read <= 4.0,
            "{read} rows of groups read to find 4 keys among 3,000: {groups:#}"
        );
        let read = rows_read(&findings, "findings");
        assert!(
            read <= 3.0,
            "{read} rows of findings read to find 3 ids among 3,000: {findings:#}"
        );
    }

    /// Deciding whether a webhook batch's deliveries concern issues Lever tracks (every batch
    /// with a lifecycle event) reads one index entry per issue asked: with 3,000 groups owning
    /// an issue, analysed, PostgreSQL's planner hashed the asked pairs and scanned every group.
    #[tokio::test]
    async fn the_tracked_issue_lookup_reads_only_the_issues_asked_for() {
        let test =
            "store::postgres::tests::the_tracked_issue_lookup_reads_only_the_issues_asked_for";
        let Some((store, url, name)) = schema(test).await else {
            return;
        };
        sqlx::raw_sql(
            "INSERT INTO groups (group_key, repo, issue_number, status, data, created_at,
                 updated_at, version)
             SELECT 'group-' || i, 'acme/web', i, 'open', '{}', now(), now(), 1
             FROM generate_series(0, 2999) AS i;
             ANALYZE groups;",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let pairs = serde_json::json!([["Acme/Web", 5], ["acme/api", 7], ["acme/web", 2999]]);
        let plan = plan_of(&store, Postgres::SELECT_TRACKED_ISSUES, &pairs).await;
        let tracked: Vec<i64> = sqlx::query_scalar(Postgres::SELECT_TRACKED_ISSUES)
            .bind(Json(&pairs))
            .fetch_all(store.pool())
            .await
            .unwrap();
        drop_schema(&url, &name).await;
        assert_eq!(tracked, [0, 2], "the pairs whose issue a group owns");
        let read = rows_read(&plan, "groups");
        assert!(
            read <= 3.0,
            "{read} rows of groups read to find 3 issues among 3,000: {plan:#}"
        );
    }

    /// Looking up the pending jobs of a batch's new issues (`Store::pending_job_ids`, after
    /// every intake batch during a flood) reads one index entry per job asked, however many
    /// jobs are pending: with 3,000 pending and the table analysed, PostgreSQL's planner
    /// joined the asked pairs to every pending job (a sequential scan, 3.7 ms a lookup at
    /// 15,000 pending, growing with the backlog the flood is making).
    #[tokio::test]
    async fn the_pending_job_lookup_reads_only_the_jobs_asked_for() {
        let test = "store::postgres::tests::the_pending_job_lookup_reads_only_the_jobs_asked_for";
        let Some((store, url, name)) = schema(test).await else {
            return;
        };
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let jobs: Vec<Job> = (0..3000)
            .map(|i| Job::OpenIssue(GroupKey(format!("group-{i}"))))
            .collect();
        store
            .apply(
                ChangeSet {
                    jobs: jobs.iter().map(|j| NewJob::new(j.clone(), now)).collect(),
                    ..ChangeSet::default()
                },
                now,
            )
            .await
            .unwrap();
        sqlx::raw_sql("ANALYZE jobs")
            .execute(store.pool())
            .await
            .unwrap();
        let asked = [
            jobs[7].clone(),
            Job::OpenIssue(GroupKey("never-enqueued".into())),
            jobs[2999].clone(),
        ];
        let ids = store.pending_job_ids(&asked).await.unwrap();
        assert!(
            ids[0].is_some() && ids[1].is_none() && ids[2].is_some(),
            "{ids:?}"
        );
        let pairs: Vec<(&str, &str)> = asked.iter().map(|j| (j.kind(), j.subject())).collect();
        let plan = plan_of(&store, Postgres::SELECT_PENDING_JOB_IDS, &pairs).await;
        let read = rows_read(&plan, "jobs");
        drop_schema(&url, &name).await;
        assert!(
            read <= pairs.len() as f64,
            "{read} rows of jobs read to find {} jobs among 3,000 pending: {plan:#}",
            pairs.len()
        );
    }
}
