//! PostgreSQL: an intake batch's change set written by one statement (and, in [`deliveries`],
//! a batch of untracked webhook deliveries).
//!
//! Through [`sql::apply_tx`] a change set is a transaction of many statements, each a round
//! trip to the server: `BEGIN`, the findings, the groups, their history, the jobs, the audit
//! entries (each in a few multi-row statements, `rows.rs`), `COMMIT`. Timed with sqlx's
//! statement log during the intake benchmark (`docs/PERFORMANCE.md`), an intake batch of 16
//! new findings took about 15 round trips of 250–500 µs each on two busy cores, most of the
//! batch. Here the same rows are written by one statement, which commits on its own: each
//! table's rows travel as one JSON array, read back by `jsonb_array_elements`, and the writes
//! are data-modifying `WITH` queries of that statement.
//!
//! The statements are not written twice: each `WITH` query is derived from the one-row
//! statement of `common.rs` that [`sql::apply_in`] runs ([`from_json_rows`]: its `$N` becomes
//! element N − 1 of a row, cast as the column needs), and each row is bound by the same
//! function ([`sql::bind_finding`], …) into a [`JsonRow`] instead of a statement.
//!
//! Only change sets that one statement writes exactly as the transaction would take this
//! path ([`lean`]): findings, new groups (with their first history row), jobs enqueued and
//! audit entries, no key twice in a table (an upsert may not touch a row twice in one
//! statement, and the order of the two writes would be lost). Every other change set (a
//! job's outcome, a group update, the outbox, a repeated key, a timestamp the text form cannot
//! carry) goes through the transaction.
//!
//! What differs from the transaction: the writes of one statement see the same snapshot, so
//! none of them may depend on another's effect, and none does here (the history rows depend on
//! which groups were inserted, which `RETURNING` tells them). Jobs get their ids plain
//! enqueues first, then the if-absent ones (in the transaction, runs in their order): ids only
//! break ties between jobs due at the same instant.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Utc};
use serde_json::value::RawValue;
use sqlx::PgPool;
use sqlx::types::Json;

use super::history::{self, HistoryRow};
use super::write::{Binder, Param};
use super::{ChangeSet, GroupWrite, Job, Result, common, rows, sql};

/// How a parameter of a one-row statement is read back from its JSON element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Col {
    /// `arg(&str)` / `arg(Option<&str>)`: a JSON string or null.
    Text,
    /// `arg(i64)` / `arg(Option<i64>)`: a JSON number or null.
    BigInt,
    /// `json(…)`: the document itself.
    Jsonb,
    /// `ts(…)`: text PostgreSQL parses as the instant sqlx would have bound.
    Ts,
}

impl Col {
    /// Element `i` of the row `r`, as this column's type.
    fn read(self, i: usize) -> String {
        match self {
            Col::Text => format!("r->>{i}"),
            Col::BigInt => format!("(r->>{i})::bigint"),
            Col::Jsonb => format!("r->{i}"),
            Col::Ts => format!("(r->>{i})::timestamptz"),
        }
    }
}

use Col::{BigInt, Jsonb, Text, Ts};

/// [`sql::bind_finding`]'s parameters.
const FINDING: &[Col] = &[
    Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Text, Jsonb, Ts, Ts,
];
/// [`sql::bind_new_group`]'s.
const GROUP: &[Col] = &[Text, Text, BigInt, Text, Text, Text, Jsonb, Ts, Ts, BigInt];
/// [`history::bind_row`]'s.
const HISTORY: &[Col] = &[Text, Text, Text, Text, Text, Text, Ts];
/// [`sql::bind_job`]'s.
const JOB: &[Col] = &[Text, Text, Ts, Ts];
/// [`sql::bind_audit`]'s.
const AUDIT: &[Col] = &[Ts, Text, Text, Text, Text, Text, Jsonb];

/// `one_row` (an `INSERT … VALUES (…) …` of one row, `cols` its parameters) as an
/// `INSERT … SELECT` of the rows of the JSON array `$param`, in their order (the order the
/// transaction writes, and locks, them), `filter` (a `WHERE` on the row `r`, or nothing)
/// keeping some.
pub(super) fn from_json_rows(one_row: &str, param: usize, cols: &[Col], filter: &str) -> String {
    let (head, row, tail) = rows::split_values(one_row);
    let inner = &row[1..row.len() - 1];
    let select = rows::substitute(inner, |n| cols[n - 1].read(n - 1));
    format!(
        "{head}SELECT {select} FROM jsonb_array_elements(${param}) WITH ORDINALITY AS e(r, ord) \
         {filter} ORDER BY ord{tail}"
    )
}

/// The statement: findings (`$1`), new groups (`$2`) and the first history row of those it
/// inserted (`$3`), plain enqueues (`$4`), if-absent enqueues (`$5`), audit entries (`$6`).
/// It returns the plain enqueues' pending jobs (`kind`, `subject`, `id`: the row inserted, or
/// the pending one it updated).
static STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH f AS ({}), g AS ({} RETURNING group_key), h AS ({}), \
         jp AS ({} RETURNING kind, subject, id), ja AS ({}), a AS ({}) \
         SELECT kind, subject, id FROM jp",
        from_json_rows(common::UPSERT_FINDING, 1, FINDING, ""),
        from_json_rows(common::INSERT_GROUP_IF_ABSENT, 2, GROUP, ""),
        from_json_rows(
            history::INSERT,
            3,
            HISTORY,
            "WHERE r->>0 IN (SELECT group_key FROM g)"
        ),
        from_json_rows(common::ENQUEUE_JOB, 4, JOB, ""),
        from_json_rows(common::ENQUEUE_JOB_IF_ABSENT, 5, JOB, ""),
        from_json_rows(common::INSERT_AUDIT, 6, AUDIT, ""),
    )
});

/// One row's parameters as a JSON array (`$N` is element N − 1), bound by the functions that
/// bind a statement ([`Binder`]). A parameter the JSON form cannot carry exactly spoils the
/// row ([`JsonRow::done`] is `None`): text holding NUL (sqlx refuses it as a parameter; the
/// transaction reports it), bytes, an instant outside the years 1–9999.
#[derive(Debug, Default)]
pub(super) struct JsonRow {
    values: Vec<Box<RawValue>>,
    cols: Vec<Col>,
    spoilt: bool,
}

impl JsonRow {
    fn push(mut self, col: Col, value: serde_json::Result<Box<RawValue>>) -> Self {
        match value {
            Ok(v) if !self.spoilt => {
                self.values.push(v);
                self.cols.push(col);
            }
            _ => self.spoilt = true,
        }
        self
    }

    /// The row, unless a parameter spoilt it.
    fn done(self) -> Option<Vec<Box<RawValue>>> {
        (!self.spoilt).then_some(self.values)
    }
}

impl Binder for JsonRow {
    fn arg<'v>(self, value: impl Into<Param<'v>>) -> Self {
        match value.into() {
            Param::Text(Some(t)) if t.contains('\0') => self.push(Text, Err(not_carried())),
            Param::Text(t) => self.push(Text, serde_json::value::to_raw_value(&t)),
            Param::Int(i) => self.push(BigInt, serde_json::value::to_raw_value(&i)),
            Param::Bytes(_) => self.push(Text, Err(not_carried())),
        }
    }

    /// sqlx binds an instant truncated to the microsecond; so is its text here.
    fn ts(self, t: DateTime<Utc>) -> Self {
        if !(1..=9999).contains(&t.year()) {
            return self.push(Ts, Err(not_carried()));
        }
        let text = t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
        self.push(Ts, serde_json::value::to_raw_value(&text))
    }

    fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.push(Jsonb, super::postgres::jsonb_text(value))
    }
}

/// The error standing for "not carried as JSON" (never shown: the row falls back).
fn not_carried() -> serde_json::Error {
    serde::de::Error::custom("not carried as JSON")
}

/// The rows of [`STATEMENT`], one JSON array per table.
#[derive(Debug, Default)]
pub(super) struct Lean {
    findings: Vec<Vec<Box<RawValue>>>,
    groups: Vec<Vec<Box<RawValue>>>,
    history: Vec<Vec<Box<RawValue>>>,
    enqueue: Vec<Vec<Box<RawValue>>>,
    enqueue_if_absent: Vec<Vec<Box<RawValue>>>,
    audit: Vec<Vec<Box<RawValue>>>,
}

/// `changes` (sorted for locking) as [`STATEMENT`]'s rows, when one statement writes it
/// exactly as [`sql::apply_in`]'s transaction would (see the module doc); `None` otherwise.
pub(super) fn lean(changes: &ChangeSet, now: DateTime<Utc>) -> Option<Lean> {
    if !(changes.job_outcomes.is_empty() && changes.outbox.is_empty() && changes.kv.is_empty()) {
        return None;
    }
    let findings: Vec<(&str, &str)> = changes
        .findings
        .iter()
        .map(|f| (f.product_arn.as_str(), f.finding_id.as_str()))
        .collect();
    let jobs: Vec<(&str, &str)> = changes
        .jobs
        .iter()
        .map(|j| (j.job.kind(), j.job.subject()))
        .collect();
    let mut groups = Vec::with_capacity(changes.groups.len());
    for g in &changes.groups {
        match g {
            GroupWrite::InsertIfAbsent(r) => groups.push(r),
            GroupWrite::Update { .. } => return None,
        }
    }
    let keys: Vec<&str> = groups.iter().map(|g| g.group_key.as_str()).collect();
    if !all_distinct(keys) || !all_distinct(findings) || !all_distinct(jobs) {
        return None;
    }
    let all = |rows: Vec<JsonRow>| rows.into_iter().map(JsonRow::done).collect::<Option<_>>();
    let (plain, if_absent): (Vec<_>, Vec<_>) = changes.jobs.iter().partition(|j| !j.if_absent);
    let job_rows = |jobs: Vec<&super::NewJob>| {
        all(jobs
            .into_iter()
            .map(|j| sql::bind_job(JsonRow::default(), j, now))
            .collect())
    };
    Some(Lean {
        findings: all(changes
            .findings
            .iter()
            .map(|f| sql::bind_finding(JsonRow::default(), f))
            .collect())?,
        groups: all(groups
            .iter()
            .map(|g| sql::bind_new_group(JsonRow::default(), g))
            .collect::<Result<_>>()
            .ok()?)?,
        history: all(groups
            .iter()
            .map(|g| history::bind_row(JsonRow::default(), &HistoryRow::of(g, now)))
            .collect())?,
        enqueue: job_rows(plain)?,
        enqueue_if_absent: job_rows(if_absent)?,
        audit: all(changes
            .audit
            .iter()
            .map(|a| sql::bind_audit(JsonRow::default(), a))
            .collect())?,
    })
}

/// No key of `keys` appears twice.
fn all_distinct<K: Ord>(mut keys: Vec<K>) -> bool {
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    keys.len() == n
}

/// [`Store::apply`](super::Store::apply) on PostgreSQL: [`STATEMENT`] when [`lean`] says so,
/// otherwise [`sql::apply_tx`]; applied again when chosen as a deadlock victim. With the
/// statement, the ids of the pending jobs of `jobs` when it returned every one of them (the
/// plain enqueues); `None` otherwise.
pub(super) async fn apply(
    pool: &PgPool,
    gate: &(),
    mut changes: ChangeSet,
    now: DateTime<Utc>,
    jobs: &[Job],
) -> Result<Option<Vec<Option<i64>>>> {
    common::sorted_for_locking(&mut changes);
    let Some(rows) = lean(&changes, now) else {
        return sql::apply_tx(pool, gate, changes, now).await.map(|()| None);
    };
    let mut attempt = 1;
    loop {
        let result: Result<Vec<(String, String, i64)>> = sqlx::query_as(STATEMENT.as_str())
            .bind(Json(&rows.findings))
            .bind(Json(&rows.groups))
            .bind(Json(&rows.history))
            .bind(Json(&rows.enqueue))
            .bind(Json(&rows.enqueue_if_absent))
            .bind(Json(&rows.audit))
            .fetch_all(pool)
            .await
            .map_err(Into::into);
        if !sql::again_after_deadlock(&result, &mut attempt).await {
            let enqueued: HashMap<(String, String), i64> = result?
                .into_iter()
                .map(|(kind, subject, id)| ((kind, subject), id))
                .collect();
            let ids: Option<Vec<Option<i64>>> = jobs
                .iter()
                .map(|j| {
                    enqueued
                        .get(&(j.kind().to_string(), j.subject().to_string()))
                        .map(|id| Some(*id))
                })
                .collect();
            return Ok(ids);
        }
    }
}

pub(super) mod deliveries;

#[cfg(test)]
mod tests;
