//! SQLite's writer: a batch of webhook deliveries, or a change set, written in one thread
//! hand-off.
//!
//! Through sqlx, every SQLite statement runs on the connection's worker thread: it is sent
//! there and its result, row by row, sent back. Recording a batch of deliveries took six such
//! round trips or more (the pool's ping, `BEGIN IMMEDIATE`, the tracked-issue query, the
//! insert and the rows it returns, `COMMIT`), an intake batch's change set fifteen or more (its
//! findings, groups, history rows, jobs and audit rows, a few statements each), and under load
//! on two cores most of a batch's time was threads waiting to be scheduled, not SQLite working
//! (`docs/PERFORMANCE.md`).
//!
//! The writer is a thread of its own with a [`rusqlite`] connection to the same file. The whole
//! transaction runs there at once, and the batch's task waits for its one answer:
//!
//! * **deliveries**: `BEGIN IMMEDIATE`, the statements the shared path binds
//!   ([`Dialect::SELECT_TRACKED_ISSUES`], [`INSERT_DELIVERIES`], the jobs through
//!   `sql::enqueue_all`),
//!   `COMMIT`; what is decided from their rows (duplicates within the batch and before it,
//!   which deliveries are tracked, their jobs) is the shared path's own code
//!   ([`sql::first_occurrences`], [`sql::delivery_outcomes`]);
//! * **a change set** ([`Store::apply`](super::Store::apply) of one that finishes no job, see
//!   the SQLite dialect's `apply`): `sql::apply_in` itself, the code every store writes a
//!   change set with, run on this connection through `store::write`'s two traits; each
//!   statement is a call that returns at once, so the function's future is ready when polled
//!   (`futures::executor::block_on`). Parameters are bound by their `$N` name, as sqlx binds
//!   them ([`ParamOrder`]).
//!
//! **It writes alone.** Before its transaction begins, the batch takes the process's write turn
//! ([`Combiner::exclusive`], which commits what the other writers left open), and the writer's
//! thread releases that turn once the transaction has ended, even when nobody waits for the
//! answer any more: no other writer of the process begins meanwhile. Other processes on the
//! file are kept out by SQLite's write lock and the busy timeout, as for every writer. The
//! connection has the store's settings (WAL, the same `synchronous`, the busy timeout, foreign
//! keys, the checkpoint threshold and the WAL size limit): what it acknowledges is as durable
//! as what is committed through sqlx (`docs/DESIGN.md`, "Durability").
//!
//! The thread starts with the first batch (an idle store starts none) and ends when the store's
//! last clone is dropped. A database kept in memory has no file a second connection could
//! open: it keeps the shared path.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::Serialize;
use sqlx::Sqlite;
use tokio::sync::oneshot;

use super::combine::{Combiner, Exclusive};
use super::common::{self, At};
use super::dialect::Dialect;
use super::rows;
use super::sql::{self, INSERT_DELIVERIES};
use super::sqlite::{BUSY_TIMEOUT, SqliteSynchronous, WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES};
use super::write::{Binder, Param, WriteConn};
use super::{ChangeSet, DeliveryOutcome, IssueRef, NewDelivery, Result, StoreError};

/// Parameters of one row of [`INSERT_DELIVERIES`].
const DELIVERY_PARAMS: usize = 5;

/// The writer of one file store (shared by the store's clones).
pub(super) struct Writer {
    path: PathBuf,
    synchronous: SqliteSynchronous,
    /// The store's writers: the turn is taken from it, and the writer's commits counted in it
    /// (`lever_store_commits_total`), waited for or not.
    combiner: Arc<Combiner<Sqlite>>,
    /// The thread's queue; `None` until the first batch, or after the thread stopped.
    queue: Mutex<Option<mpsc::Sender<Batch>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .finish_non_exhaustive()
    }
}

/// One batch, handed to the thread with the write turn it holds.
struct Batch {
    work: Work,
    turn: Exclusive<Sqlite>,
}

/// What a batch writes, and where its answer goes.
enum Work {
    Deliveries {
        deliveries: Vec<Owned>,
        answer: oneshot::Sender<Result<Vec<DeliveryOutcome>>>,
    },
    Apply {
        changes: ChangeSet,
        now: DateTime<Utc>,
        answer: oneshot::Sender<Result<()>>,
    },
}

/// A [`NewDelivery`] the thread owns: the request that borrowed it may be cancelled while the
/// thread still writes it.
struct Owned {
    id: String,
    event: String,
    body: Vec<u8>,
    body_sha256: [u8; 32],
    issue: Option<(String, u64)>,
    received_at: DateTime<Utc>,
}

impl Owned {
    fn of(d: &NewDelivery<'_>) -> Owned {
        Owned {
            id: d.id.to_string(),
            event: d.event.to_string(),
            body: d.body.to_vec(),
            body_sha256: *d.body_sha256,
            issue: d.issue.map(|i| (i.repo.to_string(), i.number)),
            received_at: d.received_at,
        }
    }

    fn view(&self) -> NewDelivery<'_> {
        NewDelivery {
            id: &self.id,
            event: &self.event,
            body: &self.body,
            body_sha256: &self.body_sha256,
            issue: self.issue.as_ref().map(|(repo, number)| IssueRef {
                repo,
                number: *number,
            }),
            received_at: self.received_at,
        }
    }
}

impl Writer {
    /// The writer of the database file at `path`, taking turns with the other writers of
    /// `combiner` (no thread yet).
    pub(super) fn new(
        path: &Path,
        synchronous: SqliteSynchronous,
        combiner: Arc<Combiner<Sqlite>>,
    ) -> Writer {
        Writer {
            path: path.to_path_buf(),
            synchronous,
            combiner,
            queue: Mutex::new(None),
        }
    }

    /// [`Store::record_deliveries`](super::Store::record_deliveries) for a non-empty batch:
    /// copies it, takes the write turn, and waits for the thread's answer.
    pub(super) async fn record(
        &self,
        deliveries: &[NewDelivery<'_>],
    ) -> Result<Vec<DeliveryOutcome>> {
        let deliveries = deliveries.iter().map(Owned::of).collect();
        self.hand_over(|answer| Work::Deliveries { deliveries, answer })
            .await
    }

    /// [`Store::apply`](super::Store::apply) for a non-empty change set, in one hand-off: the
    /// thread runs `sql::apply_in`, the statements every store writes a change set with, on
    /// its own connection (`store::write`).
    pub(super) async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        self.hand_over(|answer| Work::Apply {
            changes,
            now,
            answer,
        })
        .await
    }

    /// Takes the write turn, queues the work `work` makes (given where its answer goes) with
    /// it for the thread, and waits for the answer.
    async fn hand_over<T>(
        &self,
        work: impl FnOnce(oneshot::Sender<Result<T>>) -> Work,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let turn = self.combiner.exclusive().await?;
        self.send(Batch {
            work: work(answer),
            turn,
        })?;
        answered
            .await
            .map_err(|_| StoreError::SqliteWriter("its thread stopped before answering".into()))?
    }

    /// Queues `batch` for the thread, starting it if it is not running.
    fn send(&self, batch: Batch) -> Result<()> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let sender = match queue.as_ref() {
            Some(sender) => sender,
            None => queue.insert(self.start()?),
        };
        sender.send(batch).map_err(|_| {
            // The thread is gone (it cannot panic out of a batch, see `run`): the next batch
            // starts another.
            *queue = None;
            StoreError::SqliteWriter("its thread stopped".into())
        })
    }

    fn start(&self) -> Result<mpsc::Sender<Batch>> {
        let (sender, batches) = mpsc::channel();
        let (path, synchronous) = (self.path.clone(), self.synchronous);
        let combiner = self.combiner.clone();
        std::thread::Builder::new()
            .name("lever-sqlite-writer".into())
            .spawn(move || run(&path, synchronous, &combiner, &batches))
            .map_err(|e| StoreError::SqliteWriter(format!("could not start its thread: {e}")))?;
        Ok(sender)
    }
}

/// The thread: one batch at a time, each in a transaction of its own, until the store is gone.
fn run(
    path: &Path,
    synchronous: SqliteSynchronous,
    combiner: &Combiner<Sqlite>,
    batches: &mpsc::Receiver<Batch>,
) {
    let mut thread = Thread {
        path,
        synchronous,
        combiner,
        conn: None,
        params: ParamOrder::default(),
    };
    while let Ok(Batch { work, turn }) = batches.recv() {
        // The answer is sent once the transaction has ended (committed or rolled back) and
        // the turn is given back: the other writers may go.
        match work {
            Work::Deliveries { deliveries, answer } => {
                let result = thread.perform(|conn, params| record(conn, params, &deliveries));
                drop(turn);
                let _ = answer.send(result);
            }
            Work::Apply {
                mut changes,
                now,
                answer,
            } => {
                let result = thread.perform(|conn, params| apply(conn, params, &mut changes, now));
                drop(turn);
                let _ = answer.send(result);
            }
        }
    }
}

/// What the thread keeps from one batch to the next.
struct Thread<'a> {
    path: &'a Path,
    synchronous: SqliteSynchronous,
    combiner: &'a Combiner<Sqlite>,
    /// Opened at the first batch, and again after a batch that failed.
    conn: Option<Connection>,
    params: ParamOrder,
}

impl Thread<'_> {
    /// Runs one batch's transaction (`write`) on the connection, a panic answered as an error.
    fn perform<T>(
        &mut self,
        write: impl FnOnce(&mut Connection, &mut ParamOrder) -> Result<T>,
    ) -> Result<T> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let conn = match self.conn.as_mut() {
                Some(conn) => conn,
                None => self.conn.insert(open(self.path, self.synchronous)?),
            };
            write(conn, &mut self.params)
        }))
        .unwrap_or_else(|_| {
            // The connection's transaction, if any, was rolled back as it unwound.
            Err(StoreError::SqliteWriter("a batch panicked".into()))
        });
        match &result {
            Ok(_) => self.combiner.count_own_commit(),
            // A change set refused by its own checks (a stale group version) was rolled back
            // on a connection that is fine.
            Err(StoreError::Conflict(_)) => {}
            // Opened again for the next batch: whatever went wrong stays with this one.
            Err(_) => self.conn = None,
        }
        result
    }
}

/// A change set in one `BEGIN IMMEDIATE` transaction: `sql::apply_in` on this connection,
/// where every statement is a call that returns at once (so its future is ready when polled).
fn apply(
    conn: &mut Connection,
    params: &mut ParamOrder,
    changes: &mut ChangeSet,
    now: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    futures::executor::block_on(sql::apply_in(
        &mut TxConn { conn: &tx, params },
        changes,
        now,
    ))?;
    tx.commit()?;
    Ok(())
}

/// For each statement text, the argument each of its parameters takes: SQLite numbers `$N`
/// in order of first appearance, not by `N` (`UPDATE … $2 … WHERE group_key = $1` has `$2`
/// first), so, as sqlx does, each parameter is bound by its name. Learnt once per text.
#[derive(Default)]
struct ParamOrder(HashMap<&'static str, Vec<usize>>);

impl ParamOrder {
    /// The arguments (0-based) of `statement`'s parameters 1, 2, …
    fn of(&mut self, sql: &'static str, statement: &rusqlite::Statement<'_>) -> Result<&[usize]> {
        if !self.0.contains_key(sql) {
            let order = (1..=statement.parameter_count())
                .map(|i| {
                    statement
                        .parameter_name(i)
                        .and_then(|name| name.strip_prefix('$'))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n >= 1)
                        .map(|n| n - 1)
                        .ok_or_else(|| {
                            StoreError::SqliteWriter(format!(
                                "parameter {i} of a statement is not $N: {sql}"
                            ))
                        })
                })
                .collect::<Result<Vec<usize>>>()?;
            self.0.insert(sql, order);
        }
        Ok(&self.0[sql])
    }
}

/// The writer's connection inside its transaction, as a [`WriteConn`].
struct TxConn<'c> {
    conn: &'c Connection,
    params: &'c mut ParamOrder,
}

/// A statement the writer binds (owned values, as rusqlite binds them).
struct Stmt {
    sql: &'static str,
    args: Vec<Value>,
    /// A JSON value that could not be encoded: the statement fails with it.
    error: Option<String>,
}

impl Binder for Stmt {
    fn arg<'v>(mut self, value: impl Into<Param<'v>>) -> Self {
        self.args.push(match value.into() {
            Param::Text(v) => v.map_or(Value::Null, |v| Value::Text(v.to_owned())),
            Param::Int(v) => v.map_or(Value::Null, Value::Integer),
            Param::Bytes(v) => v.map_or(Value::Null, |v| Value::Blob(v.to_vec())),
        });
        self
    }
    /// As the SQLite dialect's `bind_ts`: microseconds since the epoch.
    fn ts(mut self, t: DateTime<Utc>) -> Self {
        self.args.push(Value::Integer(common::micros(t)));
        self
    }
    /// As the SQLite dialect's `bind_json`: the JSON text.
    fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => self.args.push(Value::Text(text)),
            Err(e) => {
                self.error.get_or_insert(format!("a JSON parameter: {e}"));
                self.args.push(Value::Null);
            }
        }
        self
    }
}

impl<'c> TxConn<'c> {
    /// `stmt` prepared (from the connection's cache) with its arguments bound.
    fn bind(&mut self, stmt: &Stmt) -> Result<rusqlite::CachedStatement<'c>> {
        if let Some(e) = &stmt.error {
            return Err(StoreError::SqliteWriter(format!("{e}: {}", stmt.sql)));
        }
        let mut statement = self.conn.prepare_cached(stmt.sql)?;
        let order = self.params.of(stmt.sql, &statement)?;
        for (i, &arg) in order.iter().enumerate() {
            let value = stmt.args.get(arg).ok_or_else(|| {
                StoreError::SqliteWriter(format!(
                    "{} arguments for ${} of: {}",
                    stmt.args.len(),
                    arg + 1,
                    stmt.sql
                ))
            })?;
            statement.raw_bind_parameter(i + 1, value)?;
        }
        Ok(statement)
    }
}

impl WriteConn for TxConn<'_> {
    type Stmt = Stmt;

    fn stmt(&self, sql: &'static str) -> Stmt {
        Stmt {
            sql,
            args: Vec::new(),
            error: None,
        }
    }

    fn execute(&mut self, stmt: Stmt) -> impl Future<Output = Result<u64>> + Send + '_ {
        let result = self
            .bind(&stmt)
            .and_then(|mut statement| Ok(statement.raw_execute()? as u64));
        std::future::ready(result)
    }

    fn fetch_texts<'a>(
        &'a mut self,
        stmt: Stmt,
        cols: &'static [&'static str],
        at: &'a At,
    ) -> impl Future<Output = Result<Vec<Vec<String>>>> + Send + 'a {
        let result = self.bind(&stmt).and_then(|mut statement| {
            let mut out = Vec::new();
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next()? {
                let texts = cols
                    .iter()
                    .map(|&col| match row.get_ref(col)? {
                        ValueRef::Null => Err(at.corrupt(col, "unexpected NULL")),
                        ValueRef::Text(t) => {
                            String::from_utf8(t.to_vec()).map_err(|e| at.corrupt(col, e))
                        }
                        other => Err(at.corrupt(col, format!("{:?}, not text", other.data_type()))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                out.push(texts);
            }
            Ok(out)
        });
        std::future::ready(result)
    }
}

/// The writer's connection to the file, with the store's settings.
fn open(path: &Path, synchronous: SqliteSynchronous) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::SqliteWriter(format!(
            "{} is in journal mode {mode}, not WAL",
            path.display()
        )));
    }
    let synchronous = match synchronous {
        SqliteSynchronous::Full => "FULL",
        SqliteSynchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string())?;
    // Every statement of a change set and of a delivery batch, in all their sizes.
    conn.set_prepared_statement_cache_capacity(common::STATEMENT_CACHE);
    Ok(conn)
}

/// One batch in one `BEGIN IMMEDIATE` transaction (see the module doc).
fn record(
    conn: &mut Connection,
    params: &mut ParamOrder,
    deliveries: &[Owned],
) -> Result<Vec<DeliveryOutcome>> {
    let deliveries: Vec<NewDelivery<'_>> = deliveries.iter().map(Owned::view).collect();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tracked = tracked_issues(&tx, &deliveries)?;
    let firsts = sql::first_occurrences(&deliveries);
    let mut inserted = HashSet::with_capacity(firsts.len());
    for (size, statement_rows) in rows::padded_items(&firsts) {
        let mut insert = tx.prepare_cached(INSERT_DELIVERIES.sql(size))?;
        for (row, &i) in statement_rows.enumerate() {
            let d = &deliveries[i];
            let at = row * DELIVERY_PARAMS;
            insert.raw_bind_parameter(at + 1, d.id)?;
            insert.raw_bind_parameter(at + 2, d.event)?;
            insert.raw_bind_parameter(at + 3, &d.body_sha256[..])?;
            insert.raw_bind_parameter(at + 4, tracked[i].then_some(d.body))?;
            insert.raw_bind_parameter(at + 5, common::micros(d.received_at))?;
        }
        let mut returned = insert.raw_query();
        while let Some(row) = returned.next()? {
            inserted.insert(row.get::<_, String>(0)?);
        }
    }
    let (outcomes, jobs) = sql::delivery_outcomes(&deliveries, &firsts, &tracked, inserted);
    let mut conn = TxConn { conn: &tx, params };
    for (job, now) in &jobs {
        futures::executor::block_on(sql::enqueue_all(&mut conn, std::slice::from_ref(job), *now))?;
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Which of `deliveries` concern an issue a group owns (`sql::tracked_issues`' query).
fn tracked_issues(conn: &Connection, deliveries: &[NewDelivery<'_>]) -> Result<Vec<bool>> {
    let mut tracked = vec![false; deliveries.len()];
    let asked = sql::asked_issues(deliveries);
    if asked.is_empty() {
        return Ok(tracked);
    }
    let pairs: Vec<(&str, i64)> = asked.iter().map(|(_, pair)| *pair).collect();
    let pairs = serde_json::to_string(&pairs)
        .map_err(|e| StoreError::SqliteWriter(format!("the asked issues: {e}")))?;
    let mut query = conn.prepare_cached(Sqlite::SELECT_TRACKED_ISSUES)?;
    let mut rows = query.query([pairs])?;
    let at = At::new("groups", "(tracked issues)");
    while let Some(row) = rows.next()? {
        let k: i64 = row.get("k")?;
        tracked[asked[common::index_asked(k, &at, asked.len())?].0] = true;
    }
    Ok(tracked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer binds by position: each statement's `$N` must be its N-th parameter (SQLite
    /// numbers named parameters in order of first appearance), and an insert of n rows has
    /// n × [`DELIVERY_PARAMS`] of them. Prepared on the migrated schema.
    #[tokio::test]
    async fn the_statements_number_their_parameters_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let _store = file_store(&dir).await;
        let file = dir.path().join("lever.db");
        let conn = open(&file, SqliteSynchronous::Full).unwrap();
        let mut statements: Vec<(String, usize)> = rows::CHUNKS
            .iter()
            .map(|&n| (INSERT_DELIVERIES.sql(n).to_string(), n * DELIVERY_PARAMS))
            .collect();
        statements.push((common::ENQUEUE_JOB.into(), 4));
        statements.push((common::ENQUEUE_JOB_IF_ABSENT.into(), 4));
        statements.push((Sqlite::SELECT_TRACKED_ISSUES.into(), 1));
        for (sql, params) in &statements {
            let statement = conn.prepare(sql).unwrap();
            assert_eq!(statement.parameter_count(), *params, "{sql}");
            for n in 1..=*params {
                assert_eq!(
                    statement.parameter_name(n),
                    Some(format!("${n}").as_str()),
                    "{sql}"
                );
            }
        }
    }

    /// The writer's connection has the store's settings.
    #[tokio::test]
    async fn the_writers_connection_has_the_stores_settings() {
        let dir = tempfile::tempdir().unwrap();
        let _store = file_store(&dir).await;
        let file = dir.path().join("lever.db");
        for (setting, synchronous) in [(SqliteSynchronous::Full, 2), (SqliteSynchronous::Normal, 1)]
        {
            let conn = open(&file, setting).unwrap();
            let pragma = |name: &str| -> String {
                conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
            };
            assert_eq!(pragma("journal_mode"), "wal");
            assert_eq!(pragma("synchronous"), synchronous.to_string());
            assert_eq!(pragma("foreign_keys"), "1");
            assert_eq!(pragma("busy_timeout"), BUSY_TIMEOUT.as_millis().to_string());
            assert_eq!(
                pragma("wal_autocheckpoint"),
                WAL_CHECKPOINT_PAGES.to_string()
            );
            assert_eq!(
                pragma("journal_size_limit"),
                WAL_SIZE_LIMIT_BYTES.to_string()
            );
        }
    }

    async fn file_store(dir: &tempfile::TempDir) -> super::super::SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("lever.db").display());
        let store = super::super::SqliteStore::connect(&url).await.unwrap();
        super::super::Store::migrate(&store).await.unwrap();
        store
    }

    fn delivery<'a>(id: &'a str, body: &'a [u8], digest: &'a [u8; 32]) -> NewDelivery<'a> {
        NewDelivery {
            id,
            event: "issues.labeled",
            body,
            body_sha256: digest,
            issue: Some(IssueRef {
                repo: "acme/web",
                number: 1,
            }),
            received_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    /// A batch whose caller stopped waiting (its task cancelled) right after handing it over
    /// is still committed, and counted; a writer through sqlx after it finds it committed.
    #[tokio::test]
    async fn a_batch_whose_caller_stopped_waiting_is_still_committed() {
        use super::super::Store;
        use futures::FutureExt;
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let digest = [7u8; 32];
        let batch = [delivery("github:dropped", b"{}", &digest)];
        // Polled once: copied, the turn taken, handed to the thread; then dropped.
        assert!(store.record_deliveries(&batch).now_or_never().is_none());
        // A writer through sqlx waits for the turn, and finds the batch committed.
        let until = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        store.pause_github(42, until).await.unwrap();
        assert_eq!(store.github_paused_until(42).await.unwrap(), Some(until));
        let recorded = store.delivery("github:dropped").await.unwrap().unwrap();
        assert_eq!(recorded.body_sha256, Some(digest));
        assert_eq!(recorded.body, None, "untracked: no group owns acme/web#1");
        let stats = store.shared_commits().unwrap();
        assert_eq!((stats.parts, stats.commits), (2, 2), "{stats:?}");
    }

    /// The write turn comes back only once the writer's transaction has ended: whoever takes
    /// it next (here the test, at once) finds the whole batch committed, read from another
    /// connection, though the batch's caller stopped waiting. (Released when the batch was
    /// handed over, the turn would let the next writer begin while the thread still writes.)
    #[tokio::test]
    async fn the_turn_comes_back_only_after_the_commit() {
        use super::super::Store;
        use futures::FutureExt;
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let ids: Vec<String> = (0..64).map(|i| format!("github:{i}")).collect();
        let digests: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
        for round in 0..5 {
            let batch: Vec<NewDelivery<'_>> = (ids.iter().zip(&digests))
                .map(|(id, digest)| NewDelivery {
                    id: &id[..],
                    body_sha256: digest,
                    ..delivery("", b"{}", digest)
                })
                .collect();
            sqlx::raw_sql("DELETE FROM deliveries")
                .execute(store.pool())
                .await
                .unwrap();
            assert!(store.record_deliveries(&batch).now_or_never().is_none());
            let _turn = store.gate().combiner.exclusive().await.unwrap();
            let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(recorded, 64, "round {round}");
        }
    }

    /// Every row of Lever's tables in `file`, table by table, in insertion order (each value
    /// as SQLite holds it).
    fn dump(file: &Path) -> Vec<(&'static str, Vec<String>)> {
        let conn = Connection::open(file).unwrap();
        [
            "findings",
            "groups",
            "group_history",
            "jobs",
            "audit",
            "kv",
            "outbox",
        ]
        .into_iter()
        .map(|table| {
            let mut statement = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
                .unwrap();
            let columns = statement.column_count();
            let rows = statement
                .query_map([], |row| {
                    Ok((0..columns)
                        .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join(" | "))
                })
                .unwrap()
                .collect::<rusqlite::Result<Vec<String>>>()
                .unwrap();
            (table, rows)
        })
        .collect()
    }

    /// The writer's thread writes a change set exactly as sqlx does: the demo's findings
    /// planned three times (new, repeated, then changed: new groups, repeats, group updates
    /// and their history), then an outbox, audit and key/value set, each applied to one file
    /// through the writer and to another through sqlx (`sql::apply_tx`), leave the two files
    /// equal row for row in every table; a conflicting group update fails on both and writes
    /// nothing on either.
    #[tokio::test]
    async fn the_writer_applies_a_change_set_as_sqlx_does() {
        use super::super::{AuditEntry, Effect, GroupWrite, OutboxWrite, Store};
        use crate::config::Config;
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (file_store(&dir_a).await, file_store(&dir_b).await);
        let writer = a.gate().writer.clone().expect("a file store has a writer");
        let config =
            Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")).unwrap();
        let mut findings = Vec::new();
        for entry in
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/findings"))
                .unwrap()
        {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let intake =
                crate::asff::parse_document(&bytes, crate::controls::Catalog::embedded()).unwrap();
            findings.extend(intake.findings().cloned());
        }
        assert!(findings.len() >= 8, "{} demo findings", findings.len());
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for round in 0..3i64 {
            let now = t0 + chrono::Duration::hours(round);
            if round == 2 {
                for f in &mut findings {
                    f.severity = crate::domain::Severity::Critical;
                    f.updated_at = Some("2030-01-01T00:00:00.000Z".into());
                }
            }
            let (changes, _) = crate::pipeline::prepare(&a, &config, &findings, now, "test")
                .await
                .unwrap();
            let (same, _) = crate::pipeline::prepare(&b, &config, &findings, now, "test")
                .await
                .unwrap();
            assert_eq!(format!("{changes:?}"), format!("{same:?}"), "round {round}");
            writer.apply(changes, now).await.unwrap();
            super::super::sql::apply_tx(b.pool(), b.gate(), same, now)
                .await
                .unwrap();
        }
        let histories = dump(&dir_a.path().join("lever.db"))[2].1.len();
        // A group's issue opened (a history row), then only its assignee changed (none).
        let mut group = a.list_groups(None).await.unwrap()[0].clone();
        let key = group.group_key.clone();
        let version = group.version;
        group.status = super::super::GroupStatus::Open;
        group.issue_number = Some(7);
        group.issue_url = Some("https://github.com/acme/web/issues/7".into());
        group.updated_at = t0;
        let opened = group.clone();
        group.assignee = Some("octocat".into());
        let moved = || ChangeSet {
            groups: vec![
                GroupWrite::Update {
                    record: opened.clone(),
                    expected_version: version,
                },
                GroupWrite::Update {
                    record: group.clone(),
                    expected_version: version + 1,
                },
            ],
            ..ChangeSet::default()
        };
        writer.apply(moved(), t0).await.unwrap();
        super::super::sql::apply_tx(b.pool(), b.gate(), moved(), t0)
            .await
            .unwrap();
        let effect = |id: &str| Effect {
            id: id.into(),
            group_key: key.clone(),
            action: crate::domain::lifecycle::Action::Comment {
                body: format!("comment {id}"),
            },
            source: "test".into(),
        };
        let misc = || ChangeSet {
            outbox: vec![
                OutboxWrite::Add(effect("e1")),
                OutboxWrite::Add(effect("e2")),
                OutboxWrite::Park {
                    id: "e1".into(),
                    error: "gone".into(),
                },
                OutboxWrite::Unpark("e1".into()),
                OutboxWrite::Remove("e2".into()),
            ],
            audit: vec![AuditEntry {
                seq: 0,
                at: t0,
                actor: "octocat".into(),
                action: "test".into(),
                group_key: Some(key.clone()),
                issue: None,
                source: Some("test".into()),
                detail: serde_json::json!({"a": [1, "b", null]}),
            }],
            kv: vec![
                ("cursor".into(), "one".into()),
                ("cursor".into(), "two".into()),
            ],
            ..ChangeSet::default()
        };
        writer.apply(misc(), t0).await.unwrap();
        super::super::sql::apply_tx(b.pool(), b.gate(), misc(), t0)
            .await
            .unwrap();
        let before = dump(&dir_a.path().join("lever.db"));
        // A stale version: the update's compare-and-swap fails, after the findings were
        // written in the same transaction; nothing of it stays.
        let mut group = a.list_groups(None).await.unwrap()[0].clone();
        group.assignee = Some("someone-else".into());
        let stale = || ChangeSet {
            findings: vec![],
            groups: vec![GroupWrite::Update {
                record: group.clone(),
                expected_version: group.version - 1,
            }],
            kv: vec![("cursor".into(), "three".into())],
            ..ChangeSet::default()
        };
        let (ea, eb) = (
            writer.apply(stale(), t0).await.unwrap_err(),
            super::super::sql::apply_tx(b.pool(), b.gate(), stale(), t0)
                .await
                .unwrap_err(),
        );
        assert!(matches!(ea, StoreError::Conflict(_)), "{ea}");
        assert_eq!(ea.to_string(), eb.to_string());
        let (after_a, after_b) = (
            dump(&dir_a.path().join("lever.db")),
            dump(&dir_b.path().join("lever.db")),
        );
        assert_eq!(after_a, before, "the failed change set wrote nothing");
        for ((table, rows_a), (_, rows_b)) in after_a.iter().zip(&after_b) {
            assert_eq!(rows_a, rows_b, "table {table}");
        }
        let rows = |table: &str| after_a.iter().find(|(t, _)| *t == table).unwrap().1.len();
        assert!(rows("findings") >= 8 && rows("groups") >= 4, "{after_a:?}");
        assert_eq!(
            rows("group_history"),
            histories + 1,
            "the opened issue's history row"
        );
        assert!(rows("jobs") > 0 && rows("audit") > 0 && rows("kv") == 1 && rows("outbox") == 1);
    }

    /// A batch that fails writes nothing and answers the error; the thread opens its
    /// connection again and the next batch is recorded.
    #[tokio::test]
    async fn a_failed_batch_writes_nothing_and_the_next_one_is_recorded() {
        use super::super::{DeliveryOutcome, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        sqlx::raw_sql("ALTER TABLE deliveries RENAME TO deliveries_away")
            .execute(store.pool())
            .await
            .unwrap();
        let digest = [1u8; 32];
        let err = store
            .record_deliveries(&[delivery("github:one", b"{}", &digest)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("deliveries"), "{err}");
        sqlx::raw_sql("ALTER TABLE deliveries_away RENAME TO deliveries")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(store.delivery("github:one").await.unwrap(), None);
        let other = [2u8; 32];
        let outcomes = store
            .record_deliveries(&[
                delivery("github:one", b"{}", &digest),
                delivery("github:two", b"{}", &other),
                delivery("github:one", b"{}", &digest),
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            [
                DeliveryOutcome::Untracked,
                DeliveryOutcome::Untracked,
                DeliveryOutcome::Duplicate
            ]
        );
    }
}
