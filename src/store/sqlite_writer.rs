//! SQLite's delivery writer: a batch of webhook deliveries recorded in one thread hand-off.
//!
//! Through sqlx, every SQLite statement runs on the connection's worker thread: it is sent
//! there and its result, row by row, sent back. Recording a batch of deliveries took six such
//! round trips or more (the pool's ping, `BEGIN IMMEDIATE`, the tracked-issue query, the
//! insert and the rows it returns, `COMMIT`), and under load on two cores most of a batch's
//! time was threads waiting to be scheduled, not SQLite working (`docs/PERFORMANCE.md`).
//!
//! The writer is a thread of its own with a [`rusqlite`] connection to the same file. The whole
//! transaction runs there at once (`BEGIN IMMEDIATE`, the statements the shared path binds:
//! [`Dialect::SELECT_TRACKED_ISSUES`], [`INSERT_DELIVERIES`], [`common::ENQUEUE_JOB`];
//! `COMMIT`), and the batch's task waits for its one answer. What is decided from their rows
//! (duplicates within the batch and before it, which deliveries are tracked, their jobs) is the
//! shared path's own code ([`sql::first_occurrences`], [`sql::delivery_outcomes`]).
//!
//! **It writes alone.** Before its transaction begins, the batch takes the process's write turn
//! ([`Combiner::exclusive`], which commits what the other writers left open), and the writer's
//! thread releases that turn once the transaction has ended, even when nobody waits for the
//! answer any more: no other writer of the process begins meanwhile. Other processes on the
//! file are kept out by SQLite's write lock and the busy timeout, as for every writer. The
//! connection has the store's settings (WAL, the same `synchronous`, the busy timeout, foreign
//! keys, the checkpoint threshold and the WAL size limit): a delivery it acknowledges is as
//! durable as one committed through sqlx (`docs/DESIGN.md`, "Durability").
//!
//! The thread starts with the first batch (an idle store starts none) and ends when the store's
//! last clone is dropped. A database kept in memory has no file a second connection could
//! open: it keeps the shared path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use sqlx::Sqlite;
use tokio::sync::oneshot;

use super::combine::{Combiner, Exclusive};
use super::common::{self, At};
use super::dialect::Dialect;
use super::rows;
use super::sql::{self, INSERT_DELIVERIES};
use super::sqlite::{BUSY_TIMEOUT, SqliteSynchronous, WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES};
use super::{DeliveryOutcome, IssueRef, NewDelivery, Result, StoreError};

/// Parameters of one row of [`INSERT_DELIVERIES`].
const DELIVERY_PARAMS: usize = 5;

/// The writer of one file store (shared by the store's clones).
pub(super) struct DeliveryWriter {
    path: PathBuf,
    synchronous: SqliteSynchronous,
    /// The store's writers: the turn is taken from it, and the writer's commits counted in it
    /// (`lever_store_commits_total`), waited for or not.
    combiner: Arc<Combiner<Sqlite>>,
    /// The thread's queue; `None` until the first batch, or after the thread stopped.
    queue: Mutex<Option<mpsc::Sender<Batch>>>,
}

impl std::fmt::Debug for DeliveryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryWriter")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .finish_non_exhaustive()
    }
}

/// One batch, handed to the thread with the write turn it holds.
struct Batch {
    deliveries: Vec<Owned>,
    turn: Exclusive<Sqlite>,
    answer: oneshot::Sender<Result<Vec<DeliveryOutcome>>>,
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

impl DeliveryWriter {
    /// The writer of the database file at `path`, taking turns with the other writers of
    /// `combiner` (no thread yet).
    pub(super) fn new(
        path: &Path,
        synchronous: SqliteSynchronous,
        combiner: Arc<Combiner<Sqlite>>,
    ) -> DeliveryWriter {
        DeliveryWriter {
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
        let turn = self.combiner.exclusive().await?;
        let (answer, answered) = oneshot::channel();
        self.send(Batch {
            deliveries,
            turn,
            answer,
        })?;
        answered
            .await
            .map_err(|_| StoreError::DeliveryWriter("its thread stopped before answering".into()))?
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
            StoreError::DeliveryWriter("its thread stopped".into())
        })
    }

    fn start(&self) -> Result<mpsc::Sender<Batch>> {
        let (sender, batches) = mpsc::channel();
        let (path, synchronous) = (self.path.clone(), self.synchronous);
        let combiner = self.combiner.clone();
        std::thread::Builder::new()
            .name("lever-sqlite-writer".into())
            .spawn(move || run(&path, synchronous, &combiner, &batches))
            .map_err(|e| StoreError::DeliveryWriter(format!("could not start its thread: {e}")))?;
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
    let mut conn: Option<Connection> = None;
    while let Ok(Batch {
        deliveries,
        turn,
        answer,
    }) = batches.recv()
    {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let conn = match conn.as_mut() {
                Some(conn) => conn,
                None => conn.insert(open(path, synchronous)?),
            };
            record(conn, &deliveries)
        }))
        .unwrap_or_else(|_| {
            // The connection's transaction, if any, was rolled back as it unwound.
            Err(StoreError::DeliveryWriter("a batch panicked".into()))
        });
        match &result {
            Ok(_) => combiner.count_own_commit(),
            // Opened again for the next batch: whatever went wrong stays with this one.
            Err(_) => conn = None,
        }
        // The transaction has ended (committed or rolled back): the other writers may go.
        drop(turn);
        let _ = answer.send(result);
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
        return Err(StoreError::DeliveryWriter(format!(
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
    // The tracked-issue query, seven sizes of insert, two enqueues.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// One batch in one `BEGIN IMMEDIATE` transaction (see the module doc).
fn record(conn: &mut Connection, deliveries: &[Owned]) -> Result<Vec<DeliveryOutcome>> {
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
    for (job, now) in &jobs {
        let statement = if job.if_absent {
            common::ENQUEUE_JOB_IF_ABSENT
        } else {
            common::ENQUEUE_JOB
        };
        tx.prepare_cached(statement)?.execute((
            job.job.kind(),
            job.job.subject(),
            common::micros(common::not_before(job.run_at)),
            common::micros(*now),
        ))?;
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
        .map_err(|e| StoreError::DeliveryWriter(format!("the asked issues: {e}")))?;
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
