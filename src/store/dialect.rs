//! What differs between the two databases, behind one small trait.
//!
//! [`SqlStore`](super::SqlStore) holds the one implementation of [`Store`](super::Store); a
//! [`Dialect`] supplies what cannot be shared: how a timestamp and a JSON value are stored, how
//! a write transaction is entered, how a job is leased atomically, how the schema is migrated,
//! and the few statements whose SQL differs. The dialects are sqlx's own database types
//! ([`sqlx::Sqlite`] in `sqlite.rs`, [`sqlx::Postgres`] in `postgres.rs`).
//!
//! sqlx states "this type can be bound / decoded" per database, which generic code cannot
//! name in one place; [`Bind`], [`Get`] and [`Exec`] restate those facts as supertraits of
//! [`Dialect`], once, with blanket impls, so the store needs no `where` clauses.

use std::fmt::Debug;
use std::future::Future;
use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type,
};

use super::common::{At, RowExt};
use super::{DeliveryOutcome, JobRecord, NewDelivery, Result};

/// A query of database `DB`, arguments included.
pub type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// One SQL database the store runs on.
pub trait Dialect:
    Database
    + Exec
    + for<'a> Bind<'a, &'a str>
    + for<'a> Bind<'a, Option<&'a str>>
    + for<'a> Bind<'a, &'a [u8]>
    + for<'a> Bind<'a, Option<&'a [u8]>>
    + Bind<'static, i64>
    + Bind<'static, Option<i64>>
    + Bind<'static, Option<String>>
    + Bind<'static, Option<Vec<u8>>>
    + Get<String>
    + Get<Option<String>>
    + Get<i64>
    + Get<i32>
    + Get<Option<i64>>
    + Get<Option<Vec<u8>>>
{
    /// `sqlite` or `postgres`, for logs and `/readyz`.
    const BACKEND: &'static str;

    /// Findings whose (`product_arn`, `finding_id`) is in `$1`, a JSON array of pairs, ordered
    /// by that pair.
    const SELECT_FINDINGS_BY_ID: &'static str;

    /// Groups whose key is in `$1`, a JSON array of strings, ordered by key.
    const SELECT_GROUPS_BY_KEY: &'static str;

    /// For each pair of `$1`, a JSON array of `[repo, issue number]` pairs, whose issue a group
    /// owns (`common::tracked_issue_sql`): the pair's index in the array, as column `k`, in
    /// ascending order.
    const SELECT_TRACKED_ISSUES: &'static str;

    /// For each pair of `$1`, a JSON array of `[kind, subject]` pairs, the pending job of that
    /// kind and subject, if any: the pair's index in the array as column `k`, the job's `id`.
    const SELECT_PENDING_JOB_IDS: &'static str;

    /// Serializes the noise cap's slot decisions for one product (`$1`) until the transaction
    /// ends, across processes; `None` when write transactions are serialized already.
    const LOCK_NOISE_PRODUCT: Option<&'static str>;

    /// When the next pending job can be leased (`common::next_job_at_sql`), as column `next_at`.
    fn next_job_at_sql() -> &'static str;

    /// The lease statement (`common::lease_job_sql` with this dialect's row lock).
    fn lease_job_sql() -> &'static str;

    /// The store's own state for serializing writes (shared by clones of the store).
    type Gate: Debug + Default + Clone + Send + Sync;

    /// How this process's writes shared commits (`store::combine`); `None` where every write
    /// is a transaction of its own.
    fn shared_commits(gate: &Self::Gate) -> Option<super::combine::CombineStats>;

    /// A write transaction in progress: its statements run on the connection it derefs to.
    type Write<'a>: WriteTx<Self> + 'a;

    /// Starts a transaction for writing.
    fn begin_write<'a>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
    ) -> impl Future<Output = Result<Self::Write<'a>>> + Send;

    /// Applies the pending migrations, safely against other processes doing the same.
    fn migrate(pool: &Pool<Self>, gate: &Self::Gate) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::record_deliveries`](super::Store::record_deliveries) for a non-empty batch, all
    /// or nothing: [`record_deliveries_tx`](super::sql::record_deliveries_tx) (the statements
    /// every dialect shares, in one write transaction), unless the dialect has a faster way to
    /// run the same statements (SQLite's writer, `store::sqlite_writer`; on
    /// PostgreSQL, an untracked batch in one statement, the tracked-issue query included,
    /// [`postgres_lean::deliveries`](super::postgres_lean::deliveries)).
    fn record_deliveries<'a>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
        deliveries: &'a [NewDelivery<'a>],
    ) -> impl Future<Output = Result<Vec<DeliveryOutcome>>> + Send;

    /// A [`Lookup`] of a non-empty list of keys: through the pool
    /// ([`lookup_pooled`](super::sql::lookup_pooled)), unless the dialect reads faster
    /// (SQLite's reader on a file, `store::sqlite_reader`).
    fn lookup<'a, L: Lookup, K: Serialize + Sync>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
        keys: &'a [K],
    ) -> impl Future<Output = Result<Vec<L::Out>>> + Send;

    /// [`Store::apply`](super::Store::apply) for a non-empty change set, all or nothing:
    /// [`apply_tx`](super::sql::apply_tx) (`sql::apply_in`'s statements in one write
    /// transaction through sqlx), unless the dialect runs the same statements a faster way
    /// (SQLite's writer thread, `store::sqlite_writer`).
    fn apply<'a>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
        changes: super::ChangeSet,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`apply`](Self::apply), and the ids of the pending jobs of `jobs` when the write itself
    /// tells them (PostgreSQL's one statement, `store::postgres_lean`); `None` when it does
    /// not (the caller then asks [`Store::pending_job_ids`](super::Store::pending_job_ids)).
    fn apply_telling_ids<'a>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
        changes: super::ChangeSet,
        now: DateTime<Utc>,
        jobs: &'a [super::Job],
    ) -> impl Future<Output = Result<Option<Vec<Option<i64>>>>> + Send {
        let _ = jobs;
        async move { Self::apply(pool, gate, changes, now).await.map(|()| None) }
    }

    /// Runs `lease` (a bound [`lease_job_sql`](Self::lease_job_sql)) so that two callers never lease
    /// the same job, and decodes the row.
    fn lease<'a>(
        pool: &'a Pool<Self>,
        gate: &'a Self::Gate,
        lease: Query<'a, Self>,
    ) -> impl Future<Output = Result<Option<JobRecord>>> + Send;

    fn bind_ts(q: Query<'_, Self>, t: DateTime<Utc>) -> Query<'_, Self>;

    fn bind_json<'q, T: Serialize + ?Sized>(q: Query<'q, Self>, value: &T) -> Query<'q, Self>;

    /// A timestamp column (NULL as `None`).
    fn get_ts(row: &Self::Row, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>>;

    /// A JSON column decoded into `T`.
    fn get_json<T: DeserializeOwned>(row: &Self::Row, at: &At, col: &'static str) -> Result<T>;

    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// A write transaction of database `D` ([`Dialect::begin_write`]).
pub trait WriteTx<D: Database>: DerefMut<Target = D::Connection> + Send {
    /// Commits on success, rolls back on error; returns `result`, or the error that kept it
    /// from being committed.
    fn finish<T: Send>(self, result: Result<T>) -> impl Future<Output = Result<T>> + Send;
}

/// A read by a list of keys, bound as one JSON array (`$1`): the statements that plan every
/// intake batch ([`FindingsById`](super::sql::FindingsById),
/// [`GroupsByKey`](super::sql::GroupsByKey), [`PendingJobIds`](super::sql::PendingJobIds)).
/// Its rows decode the same from any connection ([`RowExt`]).
pub trait Lookup {
    type Out: Send;
    /// The statement in dialect `D`.
    fn sql<D: Dialect>() -> &'static str;
    /// One row; `asked` is the number of keys asked.
    fn decode(row: &impl RowExt, asked: usize) -> Result<Self::Out>;
}

/// A transaction of its own (a turn in a shared one: `store::combine::Turn`).
impl<D: Database> WriteTx<D> for Transaction<'static, D> {
    async fn finish<T: Send>(self, result: Result<T>) -> Result<T> {
        super::common::finish(self, result).await
    }
}

/// `T` binds as a parameter of this database (`'a`: how long `T` borrows).
pub trait Bind<'a, T>: Database {
    fn bind_value(q: Query<'_, Self>, value: T) -> Query<'_, Self>;
}

impl<'a, DB: Database, T: Encode<'a, DB> + Type<DB>> Bind<'a, T> for DB {
    fn bind_value(q: Query<'_, DB>, value: T) -> Query<'_, DB> {
        q.bind(value)
    }
}

/// A column of this database decodes as `T`.
pub trait Get<T>: Database {
    fn get_value(row: &Self::Row, col: &str) -> Result<T, sqlx::Error>;
}

impl<DB: Database, T> Get<T> for DB
where
    T: for<'r> Decode<'r, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
{
    fn get_value(row: &DB::Row, col: &str) -> Result<T, sqlx::Error> {
        row.try_get(col)
    }
}

/// Runs queries on a connection of this database.
pub trait Exec: Database {
    fn execute<'e>(
        conn: &'e mut Self::Connection,
        q: Query<'e, Self>,
    ) -> BoxFuture<'e, sqlx::Result<Self::QueryResult>>;

    fn fetch_optional<'e>(
        conn: &'e mut Self::Connection,
        q: Query<'e, Self>,
    ) -> BoxFuture<'e, sqlx::Result<Option<Self::Row>>>;

    fn fetch_all<'e>(
        conn: &'e mut Self::Connection,
        q: Query<'e, Self>,
    ) -> BoxFuture<'e, sqlx::Result<Vec<Self::Row>>>;
}

impl<DB: Database> Exec for DB
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    fn execute<'e>(
        conn: &'e mut DB::Connection,
        q: Query<'e, DB>,
    ) -> BoxFuture<'e, sqlx::Result<DB::QueryResult>> {
        conn.execute(q)
    }

    fn fetch_optional<'e>(
        conn: &'e mut DB::Connection,
        q: Query<'e, DB>,
    ) -> BoxFuture<'e, sqlx::Result<Option<DB::Row>>> {
        conn.fetch_optional(q)
    }

    fn fetch_all<'e>(
        conn: &'e mut DB::Connection,
        q: Query<'e, DB>,
    ) -> BoxFuture<'e, sqlx::Result<Vec<DB::Row>>> {
        conn.fetch_all(q)
    }
}

/// Binding in a chain: `query(SQL).arg(key).ts(now).json(&data)`.
pub trait Args<D: Dialect>: Sized {
    fn arg<'a, T>(self, value: T) -> Self
    where
        D: Bind<'a, T>;
    fn ts(self, t: DateTime<Utc>) -> Self;
    fn json<T: Serialize + ?Sized>(self, value: &T) -> Self;
}

impl<D: Dialect> Args<D> for Query<'_, D> {
    fn arg<'a, T>(self, value: T) -> Self
    where
        D: Bind<'a, T>,
    {
        D::bind_value(self, value)
    }
    fn ts(self, t: DateTime<Utc>) -> Self {
        D::bind_ts(self, t)
    }
    fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        D::bind_json(self, value)
    }
}

fn get<D: Dialect + Get<T>, T>(row: &D::Row, at: &At, col: &'static str) -> Result<T> {
    D::get_value(row, col).map_err(|e| at.corrupt(col, e))
}

impl<R: Row, D: Dialect + Database<Row = R>> RowExt for R
where
    R: Row<Database = D>,
{
    fn text(&self, at: &At, col: &'static str) -> Result<String> {
        get::<D, _>(self, at, col)
    }
    fn opt_text(&self, at: &At, col: &'static str) -> Result<Option<String>> {
        get::<D, _>(self, at, col)
    }
    /// BIGINT, or INTEGER (PostgreSQL's `jobs.attempts`).
    fn int(&self, at: &At, col: &'static str) -> Result<i64> {
        match <D as Get<i64>>::get_value(self, col) {
            Ok(v) => Ok(v),
            Err(sqlx::Error::ColumnDecode { .. }) => get::<D, i32>(self, at, col).map(i64::from),
            Err(e) => Err(at.corrupt(col, e)),
        }
    }
    fn opt_int(&self, at: &At, col: &'static str) -> Result<Option<i64>> {
        get::<D, _>(self, at, col)
    }
    fn ts(&self, at: &At, col: &'static str) -> Result<DateTime<Utc>> {
        D::get_ts(self, at, col)?.ok_or_else(|| at.corrupt(col, "unexpected NULL"))
    }
    fn opt_ts(&self, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>> {
        D::get_ts(self, at, col)
    }
    fn json<T: DeserializeOwned>(&self, at: &At, col: &'static str) -> Result<T> {
        D::get_json(self, at, col)
    }
    fn opt_bytes(&self, at: &At, col: &'static str) -> Result<Option<Vec<u8>>> {
        get::<D, _>(self, at, col)
    }
}
