//! SQLite's reader: the lookups that plan every intake batch, by key, on the calling thread.
//!
//! Through sqlx, a query runs on the connection's worker thread: it is sent there, and its rows
//! are sent back. Under an intake flood on two cores, the three lookups on each batch's serial
//! path (the findings by (`ProductArn`, `Id`) and the groups by key that `pipeline::prepare_many`
//! plans with, the pending job ids of the new issues after the commit) took 0.5, 0.2 and
//! 0.15 ms a batch of 16 events, most of it waiting for those threads to be scheduled, while
//! SQLite's own work is a few B-tree searches in pages the operating system holds
//! (`docs/PERFORMANCE.md`).
//!
//! The reader is a [`rusqlite`] connection of its own to the same file (`query_only`), taken
//! with `try_lock` by whoever asks and used on the asker's thread: each statement runs in
//! autocommit, so it reads the last committed state, as a pooled connection would. It never
//! holds that thread long: only lookups of at most [`MAX_KEYS`] keys come here (a few
//! microseconds a key), and it waits at most [`BUSY_WAIT`] for a lock (a reader of a WAL
//! database rarely meets one: another connection recovering the WAL). A larger lookup, one
//! while the reader is busy with another caller, and one that met a lock take the pool as
//! before, whose worker threads may wait the store's whole busy timeout. Rows decode with the code every store decodes them
//! with (`common::finding_from_row`, `group_from_row`, through [`RowExt`]).
//!
//! The connection opens with the first lookup and is reopened after an error. A database kept
//! in memory has no file a second connection could open: it has no reader.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, TryLockError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::common::{At, RowExt};
use super::dialect::Lookup;
use super::{Result, StoreError};

/// The most keys one lookup reads here; more go through the pool.
pub(super) const MAX_KEYS: usize = 256;
/// How long a lookup here waits for a lock before leaving the lookup to the pool.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The reader of one file store (shared by the store's clones).
pub(super) struct Reader {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Reader {
    pub(super) fn new(path: &Path) -> Self {
        Reader {
            path: path.to_path_buf(),
            conn: Mutex::new(None),
        }
    }

    /// `L` for `keys` on the reader's connection, or `None` when this lookup is not for the
    /// reader (too many keys, the reader busy with another caller, or the file locked): the
    /// caller takes the pool.
    pub(super) fn lookup<L: Lookup, K: Serialize>(
        &self,
        keys: &[K],
    ) -> Option<Result<Vec<L::Out>>> {
        if keys.len() > MAX_KEYS {
            return None;
        }
        let mut slot = match self.conn.try_lock() {
            Ok(slot) => slot,
            // Poisoned: a panic while it read; the connection is opened again below.
            Err(TryLockError::Poisoned(p)) => {
                let mut slot = p.into_inner();
                *slot = None;
                slot
            }
            Err(TryLockError::WouldBlock) => return None,
        };
        let result = (|| {
            let conn = match &mut *slot {
                Some(conn) => conn,
                empty => empty.insert(open(&self.path)?),
            };
            let asked = keys.len();
            let keys = serde_json::to_string(keys)
                .map_err(|e| StoreError::Corrupt(format!("a lookup's keys: {e}")))?;
            let mut stmt = conn.prepare_cached(L::sql::<sqlx::Sqlite>())?;
            let mut rows = stmt.query([keys])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(L::decode(&LiteRow(row), asked)?);
            }
            Ok(out)
        })();
        match result {
            // Locked: the pool waits for it, on its own thread.
            Err(StoreError::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                None
            }
            Err(StoreError::Sqlite(e)) => {
                *slot = None;
                Some(Err(StoreError::Sqlite(e)))
            }
            result => Some(result),
        }
    }
}

/// The reader's connection, with the store's settings that concern reading.
fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_WAIT)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// A row of the reader, decoded as the pool's rows are ([`RowExt`]).
pub(super) struct LiteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl LiteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, at: &At, col: &'static str) -> Result<T> {
        self.0.get(col).map_err(|e| at.corrupt(col, e))
    }
}

impl RowExt for LiteRow<'_, '_> {
    fn text(&self, at: &At, col: &'static str) -> Result<String> {
        self.get(at, col)
    }
    fn opt_text(&self, at: &At, col: &'static str) -> Result<Option<String>> {
        self.get(at, col)
    }
    fn int(&self, at: &At, col: &'static str) -> Result<i64> {
        self.get(at, col)
    }
    fn opt_int(&self, at: &At, col: &'static str) -> Result<Option<i64>> {
        self.get(at, col)
    }
    fn ts(&self, at: &At, col: &'static str) -> Result<DateTime<Utc>> {
        self.opt_ts(at, col)?
            .ok_or_else(|| at.corrupt(col, "unexpected NULL"))
    }
    fn opt_ts(&self, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        self.get::<Option<i64>>(at, col)?
            .map(|us| at.decode_micros(col, us))
            .transpose()
    }
    fn json<T: DeserializeOwned>(&self, at: &At, col: &'static str) -> Result<T> {
        at.decode_json_str(col, &self.get::<String>(at, col)?)
    }
    fn opt_bytes(&self, at: &At, col: &'static str) -> Result<Option<Vec<u8>>> {
        self.get(at, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GroupKey;
    use crate::store::sql::GroupsByKey;
    use crate::store::{SqliteStore, Store};

    /// A migrated store's file in a directory of its own (removed when dropped).
    async fn migrated_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lever.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.pool().close().await;
        (dir, path)
    }

    /// The reader never waits: while another caller reads on it, and for a list longer than
    /// [`MAX_KEYS`], it declines and the store asks the pool instead.
    #[tokio::test]
    async fn a_busy_reader_or_a_long_list_is_left_to_the_pool() {
        let (_dir, path) = migrated_file().await;
        let reader = Reader::new(&path);
        let one = [GroupKey("G".into())];
        assert!(matches!(reader.lookup::<GroupsByKey, _>(&one), Some(Ok(v)) if v.is_empty()));

        let held = reader.conn.lock().unwrap();
        assert!(reader.lookup::<GroupsByKey, _>(&one).is_none());
        drop(held);

        let many: Vec<GroupKey> = (0..=MAX_KEYS).map(|i| GroupKey(format!("G{i}"))).collect();
        assert!(reader.lookup::<GroupsByKey, _>(&many).is_none());
        assert!(reader.lookup::<GroupsByKey, _>(&many[..MAX_KEYS]).is_some());
    }

    /// A lookup that meets a lock (another connection holding the file exclusively) waits at
    /// most [`BUSY_WAIT`] on the caller's thread, then leaves the lookup to the pool, whose
    /// threads may wait the store's whole busy timeout (30 s, which the reader held before).
    #[tokio::test]
    async fn a_locked_file_is_left_to_the_pool_after_a_short_wait() {
        let (_dir, path) = migrated_file().await;
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .unwrap();
        let reader = Reader::new(&path);
        let started = std::time::Instant::now();
        let found = reader.lookup::<GroupsByKey, _>(&[GroupKey("G".into())]);
        assert!(found.is_none(), "{found:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        holder.execute_batch("COMMIT").unwrap();
    }

    /// The reader's connection only reads.
    #[tokio::test]
    async fn the_readers_connection_cannot_write() {
        let (_dir, path) = migrated_file().await;
        let conn = open(&path).unwrap();
        let err = conn
            .execute("DELETE FROM groups", [])
            .expect_err("query_only");
        assert!(err.to_string().contains("readonly"), "{err}");
    }
}
