//! A change set's statements, written once, run two ways.
//!
//! [`Store::apply`](super::Store::apply) writes a change set with the statements of
//! `sql::apply_in`. Through sqlx ([`SqlxConn`]) every statement is a round trip: to the server
//! on PostgreSQL, to the connection's worker thread on SQLite (two thread hand-offs each, and
//! one more per row returned). SQLite's writer thread (`store::sqlite_writer`) runs the very
//! same code on its own `rusqlite` connection, where a statement is a function call: the whole
//! transaction in one hand-off. The code is written once against two small traits: a
//! statement being bound ([`Binder`]: `arg`, `ts`, `json`, as the sqlx queries of `common.rs`
//! are bound) and a connection that runs it ([`WriteConn`]: rows changed, or the text columns
//! of the rows returned).

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Result;
use super::common::At;
use super::dialect::{Args, Dialect, Query};

/// One parameter of a write statement: text, integer or bytes, possibly NULL (NULL keeps its
/// type: PostgreSQL's parameters are typed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Param<'q> {
    Text(Option<&'q str>),
    Int(Option<i64>),
    Bytes(Option<&'q [u8]>),
}

impl<'q> From<&'q str> for Param<'q> {
    fn from(v: &'q str) -> Self {
        Param::Text(Some(v))
    }
}
impl<'q> From<Option<&'q str>> for Param<'q> {
    fn from(v: Option<&'q str>) -> Self {
        Param::Text(v)
    }
}
impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl<'q> From<&'q [u8]> for Param<'q> {
    fn from(v: &'q [u8]) -> Self {
        Param::Bytes(Some(v))
    }
}
impl<'q> From<Option<&'q [u8]>> for Param<'q> {
    fn from(v: Option<&'q [u8]>) -> Self {
        Param::Bytes(v)
    }
}

/// A statement being bound, parameter after parameter (`$1`, `$2`, … in order). It owns what
/// it binds, so that a statement outlives nothing it was given.
pub(super) trait Binder: Sized + Send {
    fn arg<'v>(self, value: impl Into<Param<'v>>) -> Self;
    /// A timestamp, stored as the database stores timestamps (the dialect's `bind_ts`).
    fn ts(self, t: DateTime<Utc>) -> Self;
    /// A JSON value, stored as the database stores JSON (the dialect's `bind_json`).
    fn json<T: Serialize + ?Sized>(self, value: &T) -> Self;
}

/// A connection inside a write transaction, running a change set's statements.
pub(super) trait WriteConn {
    type Stmt: Binder;

    /// The statement `sql`, no parameter bound yet.
    fn stmt(&self, sql: &'static str) -> Self::Stmt;

    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(&mut self, stmt: Self::Stmt) -> impl Future<Output = Result<u64>> + Send + '_;

    /// Runs a statement and returns the columns `cols` of every row it returns, as text; a
    /// column that is NULL or not text is [`StoreError::Corrupt`](super::StoreError::Corrupt)
    /// `at`.
    fn fetch_texts<'a>(
        &'a mut self,
        stmt: Self::Stmt,
        cols: &'static [&'static str],
        at: &'a At,
    ) -> impl Future<Output = Result<Vec<Vec<String>>>> + Send + 'a;
}

/// Runs `stmt` and reports whether it changed exactly one row.
pub(super) async fn execute_one<W: WriteConn>(conn: &mut W, stmt: W::Stmt) -> Result<bool> {
    Ok(conn.execute(stmt).await? == 1)
}

/// A sqlx connection of dialect `D` as a [`WriteConn`].
pub(super) struct SqlxConn<'c, D: Dialect>(pub(super) &'c mut D::Connection);

/// A sqlx query as a [`Binder`].
pub(super) struct SqlxStmt<D: Dialect>(Query<'static, D>);

impl<D: Dialect> Binder for SqlxStmt<D> {
    fn arg<'v>(self, value: impl Into<Param<'v>>) -> Self {
        SqlxStmt(match value.into() {
            Param::Text(v) => self.0.arg(v.map(str::to_owned)),
            Param::Int(v) => self.0.arg(v),
            Param::Bytes(v) => self.0.arg(v.map(<[u8]>::to_vec)),
        })
    }
    fn ts(self, t: DateTime<Utc>) -> Self {
        SqlxStmt(D::bind_ts(self.0, t))
    }
    fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        SqlxStmt(D::bind_json(self.0, value))
    }
}

impl<D: Dialect> WriteConn for SqlxConn<'_, D> {
    type Stmt = SqlxStmt<D>;

    fn stmt(&self, sql: &'static str) -> SqlxStmt<D> {
        SqlxStmt(sqlx::query(sql))
    }

    fn execute(&mut self, stmt: SqlxStmt<D>) -> impl Future<Output = Result<u64>> + Send + '_ {
        let run = D::execute(&mut *self.0, stmt.0);
        async move { Ok(D::rows_affected(&run.await?)) }
    }

    fn fetch_texts<'a>(
        &'a mut self,
        stmt: SqlxStmt<D>,
        cols: &'static [&'static str],
        at: &'a At,
    ) -> impl Future<Output = Result<Vec<Vec<String>>>> + Send + 'a {
        use super::common::RowExt;
        let run = D::fetch_all(&mut *self.0, stmt.0);
        async move {
            run.await?
                .iter()
                .map(|row| cols.iter().map(|col| row.text(at, col)).collect())
                .collect()
        }
    }
}
