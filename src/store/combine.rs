//! Write combining: the writers of one process share SQLite's write transactions.
//!
//! SQLite has one writer at a time, and with `synchronous=FULL` every commit is an fsync. The
//! store's writers (the webhook and Security Hub intake batches, the workers' leases and job
//! outcomes, the pacing permits) used to queue on a mutex and commit one transaction each, so
//! under load the fsyncs, not the CPU, bounded the process (`docs/PERFORMANCE.md`, "Intake").
//!
//! A [`Combiner`] keeps the queue but lets its writers share a commit. A writer takes its
//! [`Turn`] (in arrival order), runs its statements, and [`finish`](Turn::finish)es:
//!
//! * nobody waiting behind it: it commits the transaction (its own part and those of the
//!   writers before it) and every writer of that transaction gets the commit's result;
//! * somebody waiting: it leaves the transaction open for the next writer and waits for the
//!   commit it will be part of (at most [`MAX_PARTS`] writers share one).
//!
//! A writer's part that fails is rolled back alone: every part after the first runs inside a
//! `SAVEPOINT`, so an error (a conflict, a constraint) undoes that part and leaves the others
//! to commit. No writer returns before its part is committed (or known not to be): a failed
//! `COMMIT` fails every writer that shared it, and each returns an error, as a failed
//! transaction of its own would have. A writer whose future is dropped mid-part (a cancelled
//! task, a panic) has its part rolled back (to its savepoint, by a task that holds the turn
//! until then) and the others commit; one dropped while it waits for its turn (or while it
//! joins) hands the open transaction to a task that commits it, so no writer waits for a
//! commit nobody will make.
//!
//! The parts run one after the other, as they did with one transaction each: a part sees the
//! parts before it as if they had committed (the same connection, the same transaction), and
//! nothing outside the process sees any of them before the commit.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::{Database, Pool, Transaction};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, watch};

use super::dialect::{Dialect, WriteTx};
use super::{Result, StoreError};

/// At most this many writers share one commit (a bound on how long the first of them waits).
pub const MAX_PARTS: usize = 32;

/// The outcome of one shared commit, for the writers waiting on it (`None` until it is known).
type Outcome = Option<std::result::Result<(), Arc<str>>>;

/// A transaction some writers finished their part of, waiting for its commit.
pub struct Open<D: Database> {
    tx: Transaction<'static, D>,
    /// Writers whose part is in the transaction and waits for the commit.
    parts: usize,
    outcome: watch::Sender<Outcome>,
}

impl<D: Database> Open<D> {
    /// Commits, and tells the writers waiting on it.
    async fn commit(self, combiner: &Combiner<D>) -> Result<()> {
        let commits = combiner.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if commits.is_multiple_of(4096) {
            let parts = combiner.parts.load(Ordering::Relaxed);
            tracing::debug!(commits, parts, "store: writes and the commits they shared");
        }
        let result = self.tx.commit().await.map_err(StoreError::from);
        let _ = self.outcome.send(Some(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|e| e.to_string().into()),
        ));
        result
    }

    /// Rolls the transaction back (on drop) and fails the writers waiting on it.
    fn abandon(self, why: &str) {
        if self.parts > 0 {
            tracing::warn!(parts = self.parts, %why, "store: a shared write transaction was rolled back");
        }
        let _ = self.outcome.send(Some(Err(why.into())));
    }
}

/// The turn of a writer that writes alone ([`Combiner::exclusive`]).
pub type Exclusive<D> = OwnedMutexGuard<Option<Open<D>>>;

/// Queues one process's writers and lets them share commits (see the module doc).
pub struct Combiner<D: Database> {
    slot: Arc<Mutex<Option<Open<D>>>>,
    /// Writers waiting for their turn (not the ones waiting for a commit).
    waiting: AtomicUsize,
    /// Parts that succeeded, and commits attempted: [`Combiner::stats`].
    parts: AtomicU64,
    commits: AtomicU64,
}

/// How much the writers of a [`Combiner`] shared, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CombineStats {
    /// Writers' parts that succeeded (and went to a commit).
    pub parts: u64,
    /// Commits attempted: `parts / commits` writers shared each.
    pub commits: u64,
}

impl<D: Database> Default for Combiner<D> {
    fn default() -> Self {
        Combiner {
            slot: Arc::new(Mutex::new(None)),
            waiting: AtomicUsize::new(0),
            parts: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }
}

impl<D: Database> std::fmt::Debug for Combiner<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combiner")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts a writer waiting for its turn; dropped before the turn comes (the writer's task was
/// cancelled), it makes sure the transaction left open for it is committed by somebody.
struct Waiting<D: Dialect> {
    combiner: Arc<Combiner<D>>,
    armed: bool,
}

impl<D: Dialect> Drop for Waiting<D> {
    fn drop(&mut self) {
        self.combiner.waiting.fetch_sub(1, Ordering::SeqCst);
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let combiner = self.combiner.clone();
            runtime.spawn(async move {
                let open = combiner.slot.lock().await.take();
                if let Some(open) = open {
                    let _ = open.commit(&combiner).await;
                }
            });
        }
    }
}

/// A writer's turn: its statements run on [`Deref`]'s connection, inside the shared
/// transaction; [`finish`](Turn::finish) ends the part.
pub struct Turn<'a, D: Dialect> {
    guard: Option<OwnedMutexGuard<Option<Open<D>>>>,
    combiner: &'a Arc<Combiner<D>>,
    /// The part runs inside a savepoint (other writers' parts are before it).
    savepoint: bool,
}

const SAVEPOINT: &str = "SAVEPOINT lever_part";
const ROLLBACK_TO: &str = "ROLLBACK TO lever_part";

impl<D: Dialect> Combiner<D> {
    pub fn stats(&self) -> CombineStats {
        CombineStats {
            parts: self.parts.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }

    /// Waits for this writer's turn, then joins the open transaction or begins one with
    /// `begin` (e.g. `BEGIN IMMEDIATE`).
    pub async fn turn<'a>(
        self: &'a Arc<Self>,
        pool: &Pool<D>,
        begin: &'static str,
    ) -> Result<Turn<'a, D>> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut waiting = Waiting {
            combiner: self.clone(),
            armed: true,
        };
        let mut guard = self.slot.clone().lock_owned().await;
        // `waiting` stays armed until the turn is made: a writer cancelled while it takes its
        // savepoint or begins must still leave the open transaction to a committer.
        let savepoint = match guard.as_mut() {
            Some(open) => {
                if let Err(e) = D::execute(&mut open.tx, sqlx::query(SAVEPOINT)).await {
                    let open = guard.take().expect("checked");
                    open.abandon("a savepoint could not be taken");
                    return Err(e.into());
                }
                true
            }
            None => {
                let tx = pool.begin_with(begin).await?;
                *guard = Some(Open {
                    tx,
                    parts: 0,
                    outcome: watch::Sender::new(None),
                });
                false
            }
        };
        waiting.armed = false;
        drop(waiting);
        Ok(Turn {
            guard: Some(guard),
            combiner: self,
            savepoint,
        })
    }

    /// Waits for the turn, commits what is open (the writers waiting on it get the result), and
    /// begins a transaction of its own that no other writer joins: for the migrations.
    pub async fn alone<'a>(
        self: &'a Arc<Self>,
        pool: &Pool<D>,
        begin: &'static str,
    ) -> Result<(MutexGuard<'a, Option<Open<D>>>, Transaction<'static, D>)> {
        let mut guard = self.slot.lock().await;
        if let Some(open) = guard.take() {
            open.commit(self).await?;
        }
        let tx = pool.begin_with(begin).await?;
        Ok((guard, tx))
    }

    /// Waits for the turn and commits what is open (the writers waiting on it get the result):
    /// while the guard lives, no writer of this combiner writes, so a writer on a connection
    /// of its own (SQLite's writer) holds the database's write lock alone. The
    /// guard may be dropped on any thread; the writer's own transaction counts as one part
    /// and one commit ([`Combiner::count_own_commit`]).
    pub async fn exclusive(&self) -> Result<Exclusive<D>> {
        let mut guard = self.slot.clone().lock_owned().await;
        if let Some(open) = guard.take() {
            open.commit(self).await?;
        }
        Ok(guard)
    }

    /// Counts a transaction committed under an [`exclusive`](Combiner::exclusive) turn.
    pub fn count_own_commit(&self) {
        self.parts.fetch_add(1, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
}

impl<D: Dialect> WriteTx<D> for Turn<'_, D> {
    /// Ends this writer's part: on error its part is rolled back (and only its part); on
    /// success it commits, or leaves the commit to the writer waiting behind it. Returns once
    /// the part is committed, with `result`, or with the error that kept it from committing.
    async fn finish<T: Send>(mut self, result: Result<T>) -> Result<T> {
        let mut guard = self.guard.take().expect("finished once");
        let combiner = self.combiner;
        let savepoint = self.savepoint;
        let open = guard.as_mut().expect(HOLDS_OPEN);
        match result {
            Err(e) if !savepoint => {
                // The first part: nobody else's work is in the transaction.
                let open = guard.take().expect("checked");
                let _ = open.tx.rollback().await;
                Err(e)
            }
            Err(e) => {
                undo_part(
                    guard,
                    combiner,
                    "a failed part could not be rolled back alone",
                )
                .await;
                Err(e)
            }
            Ok(value) => {
                open.parts += 1;
                combiner.parts.fetch_add(1, Ordering::Relaxed);
                if combiner.waiting.load(Ordering::SeqCst) > 0 && open.parts < MAX_PARTS {
                    // The part's savepoint stays: the next part nests its own inside it, and
                    // the COMMIT releases them all (one statement fewer per part).
                    let mut outcome = open.outcome.subscribe();
                    drop(guard);
                    let result = match outcome.wait_for(Option::is_some).await {
                        Ok(done) => done.clone().expect("waited for it"),
                        Err(_) => Err("the shared transaction was dropped".into()),
                    };
                    return result
                        .map(|()| value)
                        .map_err(|why| StoreError::SharedCommit(why.to_string()));
                }
                if open.parts == 1 {
                    // Nobody else's part: a cancelled commit concerns this writer alone.
                    let open = guard.take().expect("checked");
                    return open.commit(combiner).await.map(|()| value);
                }
                // In a task of its own, holding the turn: a writer cancelled while it commits
                // must not leave the writers that share the commit without its outcome.
                let combiner = combiner.clone();
                let committed = tokio::spawn(async move {
                    let open = guard.take().expect("checked");
                    open.commit(&combiner).await
                });
                match committed.await {
                    Ok(result) => result.map(|()| value),
                    Err(e) => Err(StoreError::SharedCommit(format!("the commit failed: {e}"))),
                }
            }
        }
    }
}

/// Rolls a part back to its savepoint (the innermost of that name); the parts before it commit
/// now when nobody waits for a turn, else with the next writer. A transaction that cannot go
/// back is abandoned: the parts before fail with it.
async fn undo_part<D: Dialect>(
    mut guard: OwnedMutexGuard<Option<Open<D>>>,
    combiner: &Combiner<D>,
    why: &str,
) {
    let open = guard.as_mut().expect(HOLDS_OPEN);
    if D::execute(&mut open.tx, sqlx::query(ROLLBACK_TO))
        .await
        .is_err()
    {
        guard.take().expect("checked").abandon(why);
    } else if combiner.waiting.load(Ordering::SeqCst) == 0 {
        let open = guard.take().expect("checked");
        let _ = open.commit(combiner).await;
    }
}

impl<D: Dialect> Drop for Turn<'_, D> {
    /// A turn dropped before [`Turn::finish`] (its task cancelled mid-part, say a lease renewal
    /// whose job ended meanwhile, or a panic): its part is rolled back. The first part is the
    /// whole transaction; a later one goes back to its savepoint in a task that keeps the turn
    /// until then, and the parts before it commit as they would have.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if guard.is_none() {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if self.savepoint => {
                let combiner = self.combiner.clone();
                runtime.spawn(async move {
                    undo_part(
                        guard,
                        &combiner,
                        "a stopped part could not be rolled back alone",
                    )
                    .await;
                });
            }
            _ => {
                if let Some(open) = guard.take() {
                    open.abandon("a writer stopped in the middle of its part");
                }
            }
        }
    }
}

impl<D: Dialect> Deref for Turn<'_, D> {
    type Target = D::Connection;
    fn deref(&self) -> &D::Connection {
        let open = self.guard.as_ref().and_then(|g| g.as_ref());
        &open.expect(HOLDS_OPEN).tx
    }
}

impl<D: Dialect> DerefMut for Turn<'_, D> {
    fn deref_mut(&mut self) -> &mut D::Connection {
        let open = self.guard.as_mut().and_then(|g| g.as_mut());
        &mut open.expect(HOLDS_OPEN).tx
    }
}

/// What a [`Turn`] holds from its start until it finishes.
const HOLDS_OPEN: &str = "a turn holds the open transaction until it finishes";

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures::poll;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use sqlx::{Sqlite, SqlitePool};

    use super::*;

    const BEGIN: &str = "BEGIN IMMEDIATE";

    /// A SQLite file (WAL, foreign keys on) with a table `t` and a deferred foreign key.
    async fn db() -> (tempfile::TempDir, SqlitePool, Arc<Combiner<Sqlite>>) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("combine.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE t (v INTEGER PRIMARY KEY)",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        (dir, pool, Arc::new(Combiner::default()))
    }

    async fn insert(turn: &mut Turn<'_, Sqlite>, sql: &'static str, v: i64) -> Result<()> {
        sqlx::query(sql).bind(v).execute(&mut **turn).await?;
        Ok(())
    }

    async fn rows(pool: &SqlitePool, table: &str) -> Vec<i64> {
        // A table name of this test, not input.
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {table} ORDER BY 1"
        )))
        .fetch_all(pool)
        .await
        .unwrap()
    }

    const INSERT_T: &str = "INSERT INTO t (v) VALUES ($1)";

    /// One write: its own turn, one row, finished.
    async fn write(combiner: &Arc<Combiner<Sqlite>>, pool: &SqlitePool, v: i64) -> Result<()> {
        let mut turn = combiner.turn(pool, BEGIN).await?;
        let result = insert(&mut turn, INSERT_T, v).await;
        turn.finish(result).await
    }

    #[tokio::test]
    async fn a_lone_writer_commits_its_own_transaction() {
        let (_dir, pool, combiner) = db().await;
        write(&combiner, &pool, 1).await.unwrap();
        write(&combiner, &pool, 2).await.unwrap();
        assert_eq!(rows(&pool, "t").await, [1, 2]);
        assert_eq!(
            combiner.stats(),
            CombineStats {
                parts: 2,
                commits: 2
            }
        );
    }

    /// The point of it: forty writers at once, a handful of commits (each of at most
    /// `MAX_PARTS` parts), every row there.
    #[tokio::test]
    async fn writers_queued_behind_one_share_its_commit() {
        let (_dir, pool, combiner) = db().await;
        let mut tasks = tokio::task::JoinSet::new();
        for v in 0..40 {
            let (pool, combiner) = (pool.clone(), combiner.clone());
            tasks.spawn(async move { write(&combiner, &pool, v).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(rows(&pool, "t").await, (0..40).collect::<Vec<_>>());
        let stats = combiner.stats();
        assert_eq!(stats.parts, 40);
        assert!(
            (2..=10).contains(&stats.commits),
            "40 writers at once shared commits of at most {MAX_PARTS}: {stats:?}"
        );
    }

    /// A: a part; B: a part that fails half-way (its first row went in); C: a part. One
    /// transaction: A's and C's rows commit, none of B's.
    #[tokio::test]
    async fn a_failed_part_is_rolled_back_alone() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        let b = async {
            let mut turn = combiner.turn(&pool, BEGIN).await?;
            let result = async {
                insert(&mut turn, INSERT_T, 2).await?;
                insert(&mut turn, INSERT_T, 1).await // already there: a constraint error
            }
            .await;
            turn.finish(result).await
        };
        let c = write(&combiner, &pool, 3);
        let (mut b, mut c) = (pin!(b), pin!(c));
        // B, then C, queue for their turns.
        assert!(poll!(&mut b).is_pending());
        assert!(poll!(&mut c).is_pending());
        let a = a.finish(Ok(()));
        let (a, b, c) = tokio::join!(a, b, c);
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Database(_))), "{b:?}");
        c.unwrap();
        assert_eq!(rows(&pool, "t").await, [1, 3]);
        assert_eq!(
            combiner.stats(),
            CombineStats {
                parts: 2,
                commits: 1
            }
        );
    }

    /// A part that breaks a deferred constraint makes the `COMMIT` fail: every writer that
    /// shared it gets an error, and nothing of either part is kept.
    #[tokio::test]
    async fn a_failed_commit_fails_every_writer_that_shared_it() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        let b = async {
            let mut turn = combiner.turn(&pool, BEGIN).await?;
            let result = insert(&mut turn, "INSERT INTO child (pid) VALUES ($1)", 99).await;
            turn.finish(result).await
        };
        let mut b = pin!(b);
        assert!(poll!(&mut b).is_pending());
        let (a, b) = tokio::join!(a.finish(Ok(())), b);
        assert!(matches!(a, Err(StoreError::SharedCommit(_))), "{a:?}");
        assert!(matches!(b, Err(StoreError::Database(_))), "{b:?}");
        assert!(rows(&pool, "t").await.is_empty());
        assert!(rows(&pool, "child").await.is_empty());
    }

    /// A left the transaction open for B, and B's task went away before its turn came: A's
    /// part is still committed (by the task B's leaving started), and A returns.
    #[tokio::test]
    async fn a_writer_gone_before_its_turn_leaves_nobody_waiting() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        let mut b = Box::pin(write(&combiner, &pool, 2));
        assert!(poll!(&mut b).is_pending());
        let mut a = pin!(a.finish(Ok(())));
        // A sees B waiting, leaves the commit to it, and waits.
        assert!(poll!(&mut a).is_pending());
        drop(b);
        a.await.unwrap();
        assert_eq!(rows(&pool, "t").await, [1]);
    }

    /// B's turn came after A left the transaction open for it, and B's task went away while
    /// B was taking its savepoint: A's part is still committed. Whether B's `SAVEPOINT` is
    /// still on the connection's thread when B is dropped depends on that thread, so the
    /// scenario runs until it was (and A must commit every time, whichever way it went).
    #[tokio::test]
    async fn a_writer_gone_while_joining_leaves_nobody_waiting() {
        let (_dir, pool, combiner) = db().await;
        let mut hit = 0;
        for v in 0..200 {
            let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
            insert(&mut a, INSERT_T, v).await.unwrap();
            let mut b = Box::pin(combiner.turn(&pool, BEGIN));
            assert!(poll!(&mut b).is_pending());
            let mut a = pin!(a.finish(Ok(())));
            assert!(poll!(&mut a).is_pending());
            // B gets the turn and sends its SAVEPOINT to the connection's thread.
            if poll!(&mut b).is_pending() {
                hit += 1;
            }
            drop(b);
            let a = tokio::time::timeout(std::time::Duration::from_secs(10), a).await;
            assert!(matches!(a, Ok(Ok(()))), "{a:?}");
            if hit == 3 {
                break;
            }
        }
        assert!(hit > 0, "B was never dropped mid-SAVEPOINT");
        let rows = rows(&pool, "t").await;
        assert_eq!(rows, (0..rows.len() as i64).collect::<Vec<_>>());
    }

    /// B took its turn after A and stopped in the middle of its part (its task cancelled, or
    /// a panic): B's part is rolled back to its savepoint and A's commits.
    #[tokio::test]
    async fn a_writer_stopped_mid_part_is_rolled_back_alone() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        let mut b = pin!(combiner.turn(&pool, BEGIN));
        assert!(poll!(&mut b).is_pending());
        let mut a = pin!(a.finish(Ok(())));
        assert!(poll!(&mut a).is_pending());
        let mut b = b.await.unwrap();
        insert(&mut b, INSERT_T, 2).await.unwrap();
        drop(b);
        a.await.unwrap();
        assert_eq!(rows(&pool, "t").await, [1]);
        // The next writer starts afresh.
        write(&combiner, &pool, 3).await.unwrap();
        assert_eq!(rows(&pool, "t").await, [1, 3]);
    }

    /// The first writer stopped mid-part: its transaction, which holds nobody else's part, is
    /// rolled back.
    #[tokio::test]
    async fn a_first_writer_stopped_mid_part_leaves_nothing() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        drop(a);
        write(&combiner, &pool, 2).await.unwrap();
        assert_eq!(rows(&pool, "t").await, [2]);
    }

    /// The migrations' transaction commits what waits first and is shared with nobody.
    #[tokio::test]
    async fn alone_commits_what_is_open_first() {
        let (_dir, pool, combiner) = db().await;
        let mut a = combiner.turn(&pool, BEGIN).await.unwrap();
        insert(&mut a, INSERT_T, 1).await.unwrap();
        let mut alone = pin!(combiner.alone(&pool, BEGIN));
        // `alone` is not counted as waiting: A commits at once.
        assert!(poll!(&mut alone).is_pending());
        a.finish(Ok(())).await.unwrap();
        let (_guard, mut tx) = alone.await.unwrap();
        sqlx::query(INSERT_T)
            .bind(2)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.finish(Ok(())).await.unwrap();
        assert_eq!(rows(&pool, "t").await, [1, 2]);
    }
}
