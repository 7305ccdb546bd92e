//! The SQLite dialect of [`SqlStore`].
//!
//! One file (`sqlite://PATH`, created if missing) in WAL mode with a busy timeout and foreign
//! keys on; `sqlite::memory:` keeps the database in one pooled connection (tests, demos).
//! `synchronous` is FULL unless asked otherwise ([`SqliteSynchronous`]): every commit is
//! flushed to the disk before it returns, so what was acknowledged survives a power loss.
//! Timestamps are INTEGER microseconds since the Unix epoch, JSON is TEXT.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so it holds SQLite's write lock from
//! its first statement (no lock upgrade that could fail half-way); writers of one process also
//! queue in-process, so they wait in order instead of in SQLite's busy handler, and a writer
//! with another queued behind it leaves the transaction open for that one: they share the
//! commit and its fsync (`store::combine`). Several processes on one file are serialized by
//! the write lock and the busy timeout. On a file, webhook deliveries are recorded by a thread
//! of their own with a `rusqlite` connection, the whole transaction in one hand-off, while it
//! holds the process's write turn alone (`store::sqlite_writer`).
//!
//! SQLite copies the WAL back into the database file (a checkpoint) inside the `COMMIT` that
//! finds the WAL longer than `wal_autocheckpoint` pages, and the writers queued behind that
//! commit wait for it. At SQLite's default of 1,000 pages that was a checkpoint about every 200
//! webhook deliveries under load (each delivery dirties a few pages of two random-keyed
//! indexes); at [`WAL_CHECKPOINT_PAGES`] the checkpoints are 16 times rarer and each copies a
//! page written many times over once: +5 to +18 % webhook throughput, the p99 at 32
//! connections from about 10.5 to about 7 ms and at a fixed 2,000 requests/s from about 4.2 to
//! about 3 ms; the intake's p99 at saturation rose from 12 to 31 ms, each rarer checkpoint
//! copying more (`docs/PERFORMANCE.md`). The WAL file grows to
//! about that size (64 MiB) and is reused, never larger after a checkpoint
//! (`journal_size_limit`). A checkpoint in a task of its own, off the commit path, was tried and
//! dropped: under a steady stream of commits a `PASSIVE` checkpoint never catches up with the
//! last frame, so the WAL never restarts and grows to the limit anyway. A second try that
//! finished the copy under the process's write turn (so the WAL did start again) kept the WAL
//! at 12–40 MB, but did not move the p99 at 2,000 requests/s beyond the noise and added stalls
//! of 0.3–0.4 s (`docs/PERFORMANCE.md`, "SQLite checkpoints off the commit path…"): not kept.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteRow,
};
use sqlx::types::Json;
use sqlx::{Row, Sqlite};

use super::combine::{CombineStats, Combiner, Turn};
use super::common::{self, At, finding_cols, group_cols, micros, tracked_issue_sql};
use super::dialect::{Dialect, Lookup, Query, WriteTx};
use super::sql::SqlStore;
use super::sqlite_reader::Reader;
use super::sqlite_writer::Writer;
use super::{DeliveryOutcome, JobRecord, NewDelivery, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another process's write lock before giving up.
pub(super) const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);
const MAX_CONNECTIONS: u32 = 4;
/// The WAL's length, in pages, that makes a commit checkpoint (see the module doc); 64 MiB at
/// the default page size of 4 KiB.
pub const WAL_CHECKPOINT_PAGES: u32 = 16 * 1024;
/// The WAL file's size after a checkpoint at most (`journal_size_limit`): those pages, at 4 KiB.
pub const WAL_SIZE_LIMIT_BYTES: u64 = WAL_CHECKPOINT_PAGES as u64 * 4096;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// How one process's writers of a SQLite store take turns (shared by the store's clones).
#[derive(Debug, Clone, Default)]
pub struct SqliteGate {
    /// This process's writers, in arrival order, sharing commits (`store::combine`).
    pub(super) combiner: Arc<Combiner<Sqlite>>,
    /// On a file, the thread that records webhook deliveries and writes the change sets that
    /// finish no job (`store::sqlite_writer`), taking its turns from `combiner`.
    pub(super) writer: Option<Arc<Writer>>,
    /// On a file, the connection that reads the keys planning a batch asks for
    /// (`store::sqlite_reader`).
    pub(super) reader: Option<Arc<Reader>>,
}

/// SQLite's `synchronous` setting, in WAL mode: what a commit promises once it returns.
/// Either way a commit survives the process being killed (SIGKILL, a panic, an OOM kill): the
/// WAL was written to the operating system before the commit returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// `synchronous=NORMAL`: the WAL is flushed to the disk only at checkpoints, so a power
    /// loss or an operating system crash may roll back the last commits (never corrupt the
    /// database).
    Normal,
    /// `synchronous=FULL`: the WAL is flushed to the disk (fsync) at every commit, so a commit
    /// also survives a power loss or an operating system crash.
    #[default]
    Full,
}

impl SqlStore<Sqlite> {
    /// Opens `sqlite://PATH` (relative to the working directory; the file is created if missing,
    /// its directory is not) or `sqlite::memory:`, with `synchronous=FULL`. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_options(url, SqliteSynchronous::default()).await
    }

    /// [`connect`](Self::connect) with the given `synchronous` setting.
    pub async fn connect_with_options(url: &str, synchronous: SqliteSynchronous) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| invalid(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match synchronous {
                SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
                SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            })
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .statement_cache_capacity(common::STATEMENT_CACHE)
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string());
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool: SqlitePool = if in_memory {
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
        .connect_with(options.clone())
        .await?;
        let combiner = Arc::<Combiner<Sqlite>>::default();
        let file = options.get_filename();
        let writer =
            (!in_memory).then(|| Arc::new(Writer::new(file, synchronous, combiner.clone())));
        let reader = (!in_memory).then(|| Arc::new(Reader::new(file)));
        Ok(SqlStore::with_gate(
            pool,
            SqliteGate {
                combiner,
                writer,
                reader,
            },
        ))
    }
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";

    /// SQLite's planner searches the primary key for each pair of the `IN` list whatever the
    /// table's size (PostgreSQL's needs telling, see its dialect).
    const SELECT_FINDINGS_BY_ID: &'static str = concat!(
        "SELECT ",
        finding_cols!(),
        " FROM findings WHERE (product_arn, finding_id) IN (",
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1)",
        ") ORDER BY product_arn, finding_id"
    );

    const SELECT_GROUPS_BY_KEY: &'static str = concat!(
        "SELECT ",
        group_cols!(),
        " FROM groups WHERE group_key IN (SELECT value FROM json_each($1)) ORDER BY group_key"
    );

    const SELECT_TRACKED_ISSUES: &'static str = concat!(
        "SELECT CAST(p.key AS INTEGER) AS k FROM json_each($1) AS p WHERE EXISTS (",
        tracked_issue_sql!(
            "json_extract(p.value, '$[0]')",
            "json_extract(p.value, '$[1]')"
        ),
        ") ORDER BY k"
    );

    /// The pairs drive (`CROSS JOIN` keeps them the outer loop) and each is one lookup in
    /// `jobs_pending_kind_subject`: left to itself, SQLite's planner walked every pending job
    /// (`jobs_state`) for each pair, 2.7 ms of CPU per event during an intake flood.
    const SELECT_PENDING_JOB_IDS: &'static str = "SELECT CAST(p.key AS INTEGER) AS k, j.id AS id
         FROM json_each($1) AS p CROSS JOIN jobs AS j INDEXED BY jobs_pending_kind_subject
         WHERE j.state = 'pending' AND j.kind = json_extract(p.value, '$[0]')
           AND j.subject = json_extract(p.value, '$[1]')";

    /// Nothing: every write transaction holds SQLite's write lock (`BEGIN IMMEDIATE`).
    const LOCK_NOISE_PRODUCT: Option<&'static str> = None;

    /// Walks `jobs_pending_due` in `(run_at, id)` order, as the lease does.
    fn next_job_at_sql() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| common::next_job_at_sql("jobs INDEXED BY jobs_pending_due"));
        &SQL
    }

    /// Walks `jobs_pending_due` in `(run_at, id)` order: without statistics (no `ANALYZE`)
    /// SQLite's planner would take `jobs_state` and sort every pending job to lease one.
    fn lease_job_sql() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| common::lease_job_sql("jobs INDEXED BY jobs_pending_due", ""));
        &SQL
    }

    type Gate = SqliteGate;
    type Write<'a> = Turn<'a, Sqlite>;

    fn shared_commits(gate: &Self::Gate) -> Option<CombineStats> {
        Some(gate.combiner.stats())
    }

    /// On a file, SQLite's writer thread runs the batch's whole transaction in one
    /// hand-off (`store::sqlite_writer`); in memory, the shared statements through sqlx.
    async fn record_deliveries<'a>(
        pool: &'a SqlitePool,
        gate: &'a SqliteGate,
        deliveries: &'a [NewDelivery<'a>],
    ) -> Result<Vec<DeliveryOutcome>> {
        match &gate.writer {
            Some(writer) => writer.record(deliveries).await,
            None => super::sql::record_deliveries_tx(pool, gate, deliveries).await,
        }
    }

    /// On a file, a lookup of at most a few batches' keys reads on the caller's thread
    /// (`store::sqlite_reader`); a larger one, one while the reader is busy or the file
    /// locked, and any in memory, through the pool.
    async fn lookup<'a, L: Lookup, K: Serialize + Sync>(
        pool: &'a SqlitePool,
        gate: &'a SqliteGate,
        keys: &'a [K],
    ) -> Result<Vec<L::Out>> {
        match gate.reader.as_ref().and_then(|r| r.lookup::<L, K>(keys)) {
            Some(found) => found,
            None => super::sql::lookup_pooled::<Self, L, K>(pool, keys).await,
        }
    }

    /// On a file, a change set that finishes no job (an intake batch, a page of `lever sync`,
    /// an operator's command) is written by the writer's thread in one hand-off
    /// (`store::sqlite_writer`); a job's outcome, of which several workers often have one at
    /// once, shares a commit with the other writers queued (`store::combine`: one fsync for
    /// all of them). In memory, every change set takes the shared path.
    async fn apply<'a>(
        pool: &'a SqlitePool,
        gate: &'a SqliteGate,
        changes: super::ChangeSet,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match &gate.writer {
            Some(writer) if changes.job_outcomes.is_empty() => writer.apply(changes, now).await,
            _ => super::sql::apply_tx(pool, gate, changes, now).await,
        }
    }

    /// A turn in a transaction holding SQLite's write lock (`BEGIN IMMEDIATE`), shared with
    /// the writers queued before and after this one.
    async fn begin_write<'a>(
        pool: &'a SqlitePool,
        gate: &'a Self::Gate,
    ) -> Result<Turn<'a, Sqlite>> {
        gate.combiner.turn(pool, "BEGIN IMMEDIATE").await
    }

    /// Runs the migrations inside one `BEGIN IMMEDIATE` transaction of their own: sqlx's
    /// migrator takes no lock on SQLite, so the write lock is what keeps two processes starting
    /// at once from applying the same migration twice (the second waits, then finds it applied).
    async fn migrate(pool: &SqlitePool, gate: &Self::Gate) -> Result<()> {
        let (_alone, mut tx) = gate.combiner.alone(pool, "BEGIN IMMEDIATE").await?;
        let result = common::run_migrations(&MIGRATOR, &mut *tx)
            .await
            .map_err(StoreError::from);
        common::finish(tx, result).await
    }

    /// In a write transaction: the `UPDATE` then cannot race another leaser, and a row that
    /// does not decode leaves the job unleased.
    async fn lease<'a>(
        pool: &'a SqlitePool,
        gate: &'a Self::Gate,
        lease: Query<'a, Sqlite>,
    ) -> Result<Option<JobRecord>> {
        let mut tx = Self::begin_write(pool, gate).await?;
        let result = lease
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)
            .and_then(|row| row.as_ref().map(common::job_from_row).transpose());
        tx.finish(result).await
    }

    fn bind_ts(q: Query<'_, Sqlite>, t: DateTime<Utc>) -> Query<'_, Sqlite> {
        q.bind(micros(t))
    }

    fn bind_json<'q, T: Serialize + ?Sized>(q: Query<'q, Sqlite>, value: &T) -> Query<'q, Sqlite> {
        q.bind(Json(value))
    }

    fn get_ts(row: &SqliteRow, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        let us: Option<i64> = row.try_get(col).map_err(|e| at.corrupt(col, e))?;
        us.map(|us| at.decode_micros(col, us)).transpose()
    }

    fn get_json<T: DeserializeOwned>(row: &SqliteRow, at: &At, col: &'static str) -> Result<T> {
        let text: String = row.try_get(col).map_err(|e| at.corrupt(col, e))?;
        at.decode_json_str(col, &text)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Every connection of a file store checkpoints the WAL at [`WAL_CHECKPOINT_PAGES`] (not
    /// SQLite's 1,000) and keeps the WAL file within that size after a checkpoint.
    #[tokio::test]
    async fn file_connections_checkpoint_the_wal_at_the_larger_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lever.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // Held together, so each is another connection.
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut conn = store.pool().acquire().await.unwrap();
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(pages, i64::from(WAL_CHECKPOINT_PAGES));
            let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(limit, 64 * 1024 * 1024);
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            held.push(conn);
        }
    }

    /// The lines of `EXPLAIN QUERY PLAN sql` on a migrated, empty database.
    async fn plan(sql: &str) -> Vec<String> {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        // A statement of this crate, not input.
        sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect()
    }

    /// SQLite keeps no statistics unless `ANALYZE` runs, and without them its planner took
    /// `jobs_state` (`state = ?` looks selective) and sorted every pending job to lease one:
    /// 2.4 ms a lease with 4,700 jobs pending during an intake flood (measured with sqlx's
    /// statement log), which held the write lock and starved intake. The lease walks
    /// `jobs_pending_due` in `(run_at, id)` order and stops at the first leasable row.
    #[tokio::test]
    async fn the_lease_walks_the_due_index_and_sorts_nothing() {
        let plan = plan(Sqlite::lease_job_sql()).await;
        assert!(
            plan.iter()
                .any(|l| l.contains("USING INDEX jobs_pending_due")),
            "{plan:#?}"
        );
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
    }

    /// The next job's time reads the due index in order and stops, whatever the number of
    /// pending jobs: never a walk over all of them (every idle worker asks it after each
    /// wake-up, and during a flood thousands of jobs wait for GitHub's content budget).
    #[tokio::test]
    async fn the_next_job_time_reads_the_due_index_in_order() {
        let plan = plan(Sqlite::next_job_at_sql()).await;
        assert!(
            plan.iter()
                .any(|l| l == "SEARCH jobs USING INDEX jobs_pending_due (run_at<?)"),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|l| l.contains("jobs_state") || l.contains("TEMP B-TREE")),
            "{plan:#?}"
        );
    }

    /// Each asked pair is one lookup in the pending jobs' (kind, subject) index, never a walk
    /// over every pending job (the planner's own choice, measured at 2.7 ms of CPU per event
    /// during an intake flood with 5,900 jobs pending).
    #[tokio::test]
    async fn pending_job_ids_look_each_pair_up_in_the_index() {
        let plan = plan(Sqlite::SELECT_PENDING_JOB_IDS).await;
        assert!(
            plan.iter().any(|l| l.starts_with("SCAN p")),
            "the pairs drive: {plan:#?}"
        );
        assert!(
            plan.iter().any(|l| l.starts_with("SEARCH j")
                && l.contains("INDEX jobs_pending_kind_subject (kind=? AND subject=?)")),
            "{plan:#?}"
        );
    }
}
