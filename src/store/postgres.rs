//! Postgres backend of [`Store`](super::Store).
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
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};

use super::common::{self, At, RowExt, audit_cols, finding_cols, group_cols, job_cols};
use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const MAX_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: StdDuration = StdDuration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` / `postgresql://...` (waits up to 30 s for the server).
    /// Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(Self::parse(url)?).await
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
        Self::connect_with(Self::parse(url)?.options([("search_path", schema)])).await
    }

    fn parse(url: &str) -> Result<PgConnectOptions> {
        PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(PostgresStore { pool })
    }

    /// The underlying pool, for operators' tools and tests (raw SQL).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Applies the pending migrations on `conn`.
///
/// `Migrator::run` takes an `Acquire`, whose impls are "not general enough" for the `Send`
/// bound of an `async_trait` future (rust-lang/rust#64552); `run_direct` is what `run` calls
/// after acquiring, and what sqlx itself documents as the way around that error (it is
/// `#[doc(hidden)]`: revisit when upgrading sqlx).
async fn run_migrations(conn: &mut PgConnection) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run_direct(None, conn, false).await
}

async fn enqueue(conn: &mut PgConnection, job: &NewJob, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(common::ENQUEUE_JOB)
        .bind(job.job.kind())
        .bind(job.job.subject())
        .bind(job.run_at)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

async fn apply_in(
    conn: &mut PgConnection,
    mut changes: ChangeSet,
    now: DateTime<Utc>,
) -> Result<()> {
    common::sorted_for_locking(&mut changes);
    for f in &changes.findings {
        sqlx::query(common::UPSERT_FINDING)
            .bind(&f.product_arn)
            .bind(&f.finding_id)
            .bind(&f.stable_key.0)
            .bind(&f.group_key.0)
            .bind(&f.account_id)
            .bind(f.severity.as_str())
            .bind(f.compliance.map(|c| c.as_str()))
            .bind(f.record_state.as_str())
            .bind(f.workflow.as_str())
            .bind(&f.updated_at)
            .bind(&f.fingerprint)
            .bind(Json(&f.finding))
            .bind(f.first_seen)
            .bind(f.last_seen)
            .execute(&mut *conn)
            .await?;
    }
    for g in &changes.groups {
        match g {
            GroupWrite::InsertIfAbsent(r) => {
                sqlx::query(common::INSERT_GROUP_IF_ABSENT)
                    .bind(&r.group_key.0)
                    .bind(&r.repo)
                    .bind(common::issue_number_param(r.issue_number)?)
                    .bind(&r.issue_url)
                    .bind(r.status.as_str())
                    .bind(&r.assignee)
                    .bind(Json(&r.data))
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .bind(r.version)
                    .execute(&mut *conn)
                    .await?;
            }
            GroupWrite::Update {
                record: r,
                expected_version,
            } => {
                let done = sqlx::query(common::UPDATE_GROUP)
                    .bind(&r.group_key.0)
                    .bind(&r.repo)
                    .bind(common::issue_number_param(r.issue_number)?)
                    .bind(&r.issue_url)
                    .bind(r.status.as_str())
                    .bind(&r.assignee)
                    .bind(Json(&r.data))
                    .bind(r.updated_at)
                    .bind(*expected_version)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(r.group_key.0.clone()));
                }
            }
        }
    }
    // Outcomes before enqueues: a change set that finishes job (k, s) and enqueues a new
    // (k, s) gets a new pending job rather than a no-op against the one being finished.
    for o in &changes.job_outcomes {
        let (id, done) = match o {
            JobOutcome::Done { id, lease_owner } => (
                *id,
                sqlx::query(common::JOB_DONE)
                    .bind(id)
                    .bind(lease_owner)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?,
            ),
            JobOutcome::Retry {
                id,
                lease_owner,
                retry_at,
                error,
            } => (
                *id,
                sqlx::query(common::JOB_RETRY)
                    .bind(id)
                    .bind(lease_owner)
                    .bind(retry_at)
                    .bind(error)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?,
            ),
            JobOutcome::Dead {
                id,
                lease_owner,
                error,
            } => (
                *id,
                sqlx::query(common::JOB_DEAD)
                    .bind(id)
                    .bind(lease_owner)
                    .bind(error)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?,
            ),
        };
        if done.rows_affected() != 1 {
            return Err(common::lease_lost(id));
        }
    }
    for job in &changes.jobs {
        enqueue(conn, job, now).await?;
    }
    for w in &changes.outbox {
        match w {
            OutboxWrite::Add(e) => {
                sqlx::query(common::INSERT_EFFECT)
                    .bind(&e.id)
                    .bind(&e.group_key.0)
                    .bind(Json(&e.action))
                    .bind(&e.source)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
            }
            OutboxWrite::Remove(id) => {
                sqlx::query(common::DELETE_EFFECT)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
            }
            OutboxWrite::Clear(key) => {
                sqlx::query(common::CLEAR_OUTBOX)
                    .bind(&key.0)
                    .execute(&mut *conn)
                    .await?
            }
        };
    }
    for a in &changes.audit {
        sqlx::query(common::INSERT_AUDIT)
            .bind(a.at)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(a.group_key.as_ref().map(|k| &k.0))
            .bind(&a.issue)
            .bind(&a.source)
            .bind(Json(&a.detail))
            .execute(&mut *conn)
            .await?;
    }
    for (key, value) in &changes.kv {
        sqlx::query(common::UPSERT_KV)
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn record_delivery_in(
    conn: &mut PgConnection,
    delivery: &Delivery,
    job: Option<NewJob>,
) -> Result<bool> {
    let inserted = sqlx::query(common::INSERT_DELIVERY)
        .bind(&delivery.id)
        .bind(&delivery.event)
        .bind(Json(&delivery.payload))
        .bind(delivery.received_at)
        .execute(&mut *conn)
        .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    if let Some(job) = job {
        enqueue(conn, &job, delivery.received_at).await?;
    }
    Ok(true)
}

/// The lease query; only kinds this version knows (see [`KNOWN_KINDS`]).
static LEASE_JOB: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        concat!(
            "UPDATE jobs SET lease_owner = $1, lease_expires = $2, attempts = attempts + 1,
                 updated_at = $3
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE state = 'pending' AND run_at <= $3 AND kind IN ({kinds})
                   AND (lease_expires IS NULL OR lease_expires <= $3)
                 ORDER BY run_at, id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING ",
            job_cols!()
        ),
        kinds = common::known_kinds_sql()
    )
});

static NEXT_JOB_AT: std::sync::LazyLock<String> = std::sync::LazyLock::new(common::next_job_at_sql);

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// sqlx's migrator holds a session-level advisory lock (`pg_advisory_lock`, keyed by the
    /// database name) while it checks and applies migrations, so replicas starting at once
    /// apply each migration exactly once: the others wait, then find it applied. If a
    /// migration fails, the connection is closed rather than returned to the pool, which
    /// releases the lock it may still hold.
    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let result = run_migrations(&mut conn).await;
        if result.is_err() {
            conn.close_on_drop();
        }
        Ok(result?)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let result = apply_in(&mut tx, changes, now).await;
        common::finish(tx, result).await
    }

    async fn record_delivery(&self, delivery: &Delivery, job: Option<NewJob>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let result = record_delivery_in(&mut tx, delivery, job).await;
        common::finish(tx, result).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let row = sqlx::query(common::SELECT_DELIVERY)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(common::delivery_from_row).transpose()
    }

    async fn findings(&self, ids: &[(String, String)]) -> Result<Vec<FindingRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (arns, finding_ids): (Vec<&str>, Vec<&str>) = ids
            .iter()
            .map(|(arn, id)| (arn.as_str(), id.as_str()))
            .unzip();
        let rows = sqlx::query(concat!(
            "SELECT ",
            finding_cols!(),
            " FROM findings
              WHERE (product_arn, finding_id) IN (
                  SELECT * FROM UNNEST($1::text[], $2::text[]))
              ORDER BY product_arn, finding_id"
        ))
        .bind(arns)
        .bind(finding_ids)
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::finding_from_row)
    }

    async fn findings_in_group(&self, group: &GroupKey) -> Result<Vec<FindingRecord>> {
        let rows = sqlx::query(common::SELECT_FINDINGS_IN_GROUP)
            .bind(&group.0)
            .fetch_all(&self.pool)
            .await?;
        common::decode_all(&rows, common::finding_from_row)
    }

    async fn group(&self, key: &GroupKey) -> Result<Option<GroupRecord>> {
        let row = sqlx::query(common::SELECT_GROUP)
            .bind(&key.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(common::group_from_row).transpose()
    }

    async fn outbox(&self, group: &GroupKey) -> Result<Vec<Effect>> {
        let rows = sqlx::query(common::SELECT_OUTBOX)
            .bind(&group.0)
            .fetch_all(&self.pool)
            .await?;
        common::decode_all(&rows, common::effect_from_row)
    }

    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<GroupRecord>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = keys.iter().map(GroupKey::as_str).collect();
        let rows = sqlx::query(concat!(
            "SELECT ",
            group_cols!(),
            " FROM groups WHERE group_key = ANY($1) ORDER BY group_key"
        ))
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::group_from_row)
    }

    async fn group_by_issue(&self, repo: &str, number: u64) -> Result<Option<GroupRecord>> {
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        let row = sqlx::query(common::SELECT_GROUP_BY_ISSUE)
            .bind(repo)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(common::group_from_row).transpose()
    }

    async fn list_groups(&self, status: Option<GroupStatus>) -> Result<Vec<GroupRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            group_cols!(),
            " FROM groups WHERE ($1::text IS NULL OR status = $1) ORDER BY group_key"
        ))
        .bind(status.map(GroupStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::group_from_row)
    }

    /// One statement: the inner `SELECT ... FOR UPDATE SKIP LOCKED` locks the chosen row (rows
    /// other leasers hold are skipped, rows they just leased fail the recheck), the outer
    /// `UPDATE` writes the lease; it commits on its own.
    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        let row = sqlx::query(LEASE_JOB.as_str())
            .bind(owner)
            .bind(common::lease_end(now, lease_for))
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(common::job_from_row).transpose()
    }

    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY created_at, id"
        ))
        .bind(state.map(JobState::as_str))
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::job_from_row)
    }

    async fn next_job_at(&self) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(NEXT_JOB_AT.as_str())
            .fetch_one(&self.pool)
            .await?;
        row.opt_ts(&At::new("jobs", "(next run)"), "next_at")
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit WHERE TRUE"
        ));
        if let Some(issue) = &filter.issue {
            q.push(" AND lower(issue) = lower(")
                .push_bind(issue.clone())
                .push(")");
        }
        if let Some(key) = &filter.group_key {
            q.push(" AND group_key = ").push_bind(key.0.clone());
        }
        if let Some(since) = filter.since {
            q.push(" AND at >= ").push_bind(since);
        }
        q.push(" ORDER BY seq");
        if let Some(limit) = filter.limit {
            q.push(" LIMIT ").push_bind(i64::from(limit));
        }
        let rows = q.build().fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::audit_from_row)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query(common::SELECT_KV)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.text(&At::new("kv", format!("{key:?}")), "value"))
            .transpose()
    }
}

fn get<'r, T>(row: &'r PgRow, at: &At, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(|e| at.corrupt(col, e))
}

impl RowExt for PgRow {
    fn text(&self, at: &At, col: &'static str) -> Result<String> {
        get(self, at, col)
    }
    fn opt_text(&self, at: &At, col: &'static str) -> Result<Option<String>> {
        get(self, at, col)
    }
    /// BIGINT, or INTEGER (`jobs.attempts`).
    fn int(&self, at: &At, col: &'static str) -> Result<i64> {
        match self.try_get::<i64, _>(col) {
            Ok(v) => Ok(v),
            Err(sqlx::Error::ColumnDecode { .. }) => get::<i32>(self, at, col).map(i64::from),
            Err(e) => Err(at.corrupt(col, e)),
        }
    }
    fn opt_int(&self, at: &At, col: &'static str) -> Result<Option<i64>> {
        get(self, at, col)
    }
    fn ts(&self, at: &At, col: &'static str) -> Result<DateTime<Utc>> {
        get(self, at, col)
    }
    fn opt_ts(&self, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        get(self, at, col)
    }
    fn json<T: DeserializeOwned>(&self, at: &At, col: &'static str) -> Result<T> {
        at.decode_json_value(col, get::<serde_json::Value>(self, at, col)?)
    }
}
