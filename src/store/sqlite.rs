//! Sqlite backend of [`Store`](super::Store).
//!
//! One file (`sqlite://PATH`, created if missing) in WAL mode with a busy timeout and foreign
//! keys on; `sqlite::memory:` keeps the database in one pooled connection (tests, demos).
//! Timestamps are INTEGER microseconds since the Unix epoch, JSON is TEXT.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so it holds SQLite's write lock from
//! its first statement (no lock upgrade that could fail half-way); writers of one process also
//! queue on an in-process mutex so they wait in order instead of in SQLite's busy handler.
//! Several processes on one file are serialized by the write lock and the busy timeout.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::common::{self, At, RowExt, audit_cols, finding_cols, group_cols, job_cols, micros};
use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const MAX_CONNECTIONS: u32 = 4;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serializes this process's write transactions.
    write: Arc<Mutex<()>>,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (relative to the working directory; the file is created if missing,
    /// its directory is not) or `sqlite::memory:`. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| invalid(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // Every connection to `:memory:` is its own database: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await?;
        Ok(SqliteStore {
            pool,
            write: Arc::new(Mutex::new(())),
        })
    }

    /// The underlying pool, for operators' tools and tests (raw SQL).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction holding SQLite's write lock (and this process's write mutex,
    /// released with the returned guard).
    async fn write_tx(&self) -> Result<(MutexGuard<'_, ()>, Transaction<'static, Sqlite>)> {
        let guard = self.write.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((guard, tx))
    }
}

/// Applies the pending migrations on `conn`.
///
/// `Migrator::run` takes an `Acquire`, whose impls are "not general enough" for the `Send`
/// bound of an `async_trait` future (rust-lang/rust#64552); `run_direct` is what `run` calls
/// after acquiring, and what sqlx itself documents as the way around that error (it is
/// `#[doc(hidden)]`: revisit when upgrading sqlx).
/// Nested in the caller's transaction, each migration runs in a savepoint.
async fn run_migrations(conn: &mut SqliteConnection) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run_direct(None, conn, false).await
}

async fn enqueue(conn: &mut SqliteConnection, job: &NewJob, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(common::ENQUEUE_JOB)
        .bind(job.job.kind())
        .bind(job.job.subject())
        .bind(micros(job.run_at))
        .bind(micros(now))
        .execute(conn)
        .await?;
    Ok(())
}

async fn apply_in(
    conn: &mut SqliteConnection,
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
            .bind(micros(f.first_seen))
            .bind(micros(f.last_seen))
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
                    .bind(micros(r.created_at))
                    .bind(micros(r.updated_at))
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
                    .bind(micros(r.updated_at))
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
                    .bind(micros(now))
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
                    .bind(micros(*retry_at))
                    .bind(error)
                    .bind(micros(now))
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
                    .bind(micros(now))
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
                    .bind(micros(now))
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
            .bind(micros(a.at))
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
            .bind(micros(now))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn record_delivery_in(
    conn: &mut SqliteConnection,
    delivery: &Delivery,
    job: Option<NewJob>,
) -> Result<bool> {
    let inserted = sqlx::query(common::INSERT_DELIVERY)
        .bind(&delivery.id)
        .bind(&delivery.event)
        .bind(Json(&delivery.payload))
        .bind(micros(delivery.received_at))
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
                 ORDER BY run_at, id LIMIT 1)
             RETURNING ",
            job_cols!()
        ),
        kinds = common::known_kinds_sql()
    )
});

static NEXT_JOB_AT: std::sync::LazyLock<String> = std::sync::LazyLock::new(common::next_job_at_sql);

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// Runs the migrations inside one `BEGIN IMMEDIATE` transaction: sqlx's migrator takes no
    /// lock on SQLite, so the write lock is what keeps two processes starting at once from
    /// applying the same migration twice (the second waits, then finds it applied).
    async fn migrate(&self) -> Result<()> {
        let (_guard, mut tx) = self.write_tx().await?;
        let result = run_migrations(&mut tx).await.map_err(StoreError::from);
        common::finish(tx, result).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (_guard, mut tx) = self.write_tx().await?;
        let result = apply_in(&mut tx, changes, now).await;
        common::finish(tx, result).await
    }

    async fn record_delivery(&self, delivery: &Delivery, job: Option<NewJob>) -> Result<bool> {
        let (_guard, mut tx) = self.write_tx().await?;
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
        let pairs = serde_json::to_string(ids)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            finding_cols!(),
            " FROM findings
              WHERE (product_arn, finding_id) IN (
                  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                  FROM json_each($1))
              ORDER BY product_arn, finding_id"
        ))
        .bind(pairs)
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
        let keys = serde_json::to_string(keys)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            group_cols!(),
            " FROM groups WHERE group_key IN (SELECT value FROM json_each($1))
              ORDER BY group_key"
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
            " FROM groups WHERE ($1 IS NULL OR status = $1) ORDER BY group_key"
        ))
        .bind(status.map(GroupStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::group_from_row)
    }

    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        let (_guard, mut tx) = self.write_tx().await?;
        let result = sqlx::query(LEASE_JOB.as_str())
            .bind(owner)
            .bind(micros(common::lease_end(now, lease_for)))
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)
            .and_then(|row| row.as_ref().map(common::job_from_row).transpose());
        common::finish(tx, result).await
    }

    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs WHERE ($1 IS NULL OR state = $1) ORDER BY created_at, id"
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
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit WHERE 1 = 1"
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
            q.push(" AND at >= ").push_bind(micros(since));
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

fn get<'r, T>(row: &'r SqliteRow, at: &At, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col).map_err(|e| at.corrupt(col, e))
}

impl RowExt for SqliteRow {
    fn text(&self, at: &At, col: &'static str) -> Result<String> {
        get(self, at, col)
    }
    fn opt_text(&self, at: &At, col: &'static str) -> Result<Option<String>> {
        get(self, at, col)
    }
    fn int(&self, at: &At, col: &'static str) -> Result<i64> {
        get(self, at, col)
    }
    fn opt_int(&self, at: &At, col: &'static str) -> Result<Option<i64>> {
        get(self, at, col)
    }
    fn ts(&self, at: &At, col: &'static str) -> Result<DateTime<Utc>> {
        at.decode_micros(col, get(self, at, col)?)
    }
    fn opt_ts(&self, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        get::<Option<i64>>(self, at, col)?
            .map(|us| at.decode_micros(col, us))
            .transpose()
    }
    fn json<T: DeserializeOwned>(&self, at: &At, col: &'static str) -> Result<T> {
        at.decode_json_str(col, &get::<String>(self, at, col)?)
    }
}
