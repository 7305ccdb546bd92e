//! Issue-group history (`group_history`, migration 0013): one row per change of a group's
//! [`HistoryState`], severity or repository, written by [`Store::apply`] in the same
//! transaction as the group itself, so the history never disagrees with the groups. The
//! report (`crate::report`) reads it back with [`Store::group_history`] to answer "how many
//! issues were open at instant T" and the times to acknowledge and to fix.
//!
//! Rows written by the migration's backfill (groups that existed before it) know the creation,
//! the acknowledgement (to the second) and the close (at the group's last update).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

use std::sync::LazyLock;

use super::common::{At, RowExt};
use super::dialect::{Args, Dialect};
use super::rows::{self, Rows};
use super::write::{Binder, WriteConn};
use super::*;
use crate::domain::lifecycle::Closure;

/// Where a group stands, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum HistoryState {
    /// Decided, the issue not created yet.
    Pending,
    /// The issue is open and nobody acknowledged it.
    Open,
    /// The issue is open and its owner acknowledged it.
    Acknowledged,
    /// The issue is closed (fixed, or closed by a person awaiting verification).
    Closed,
    /// The issue is closed under an approved exception (the findings are suppressed).
    Suppressed,
}

string_codes!(HistoryState);

impl HistoryState {
    /// The issue is open (acknowledged or not).
    pub fn is_open(self) -> bool {
        matches!(self, HistoryState::Open | HistoryState::Acknowledged)
    }

    /// The state of `g` as stored. Pure.
    pub fn of(g: &GroupRecord) -> HistoryState {
        match g.status {
            GroupStatus::Pending => HistoryState::Pending,
            GroupStatus::Open if g.state().acknowledged.is_some() => HistoryState::Acknowledged,
            GroupStatus::Open => HistoryState::Open,
            GroupStatus::Closed if g.state().closure == Some(Closure::Exception) => {
                HistoryState::Suppressed
            }
            GroupStatus::Closed => HistoryState::Closed,
        }
    }
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Assigned by the store (ascending in commit order of one group's rows).
    pub seq: i64,
    pub group_key: GroupKey,
    /// `owner/repo` of the issue: the team that owns it.
    pub repo: String,
    pub account_id: String,
    pub environment: String,
    pub severity: Severity,
    pub state: HistoryState,
    pub at: DateTime<Utc>,
}

impl HistoryRow {
    /// The row `g` would add at `at` (`seq` 0 until stored).
    pub fn of(g: &GroupRecord, at: DateTime<Utc>) -> HistoryRow {
        HistoryRow {
            seq: 0,
            group_key: g.group_key.clone(),
            repo: g.repo.clone(),
            account_id: g.data.account_id.clone(),
            environment: g.data.environment.clone(),
            severity: g.data.severity,
            state: HistoryState::of(g),
            at,
        }
    }
}

const LAST: &str = "SELECT state, severity, repo FROM group_history
     WHERE group_key = $1 ORDER BY seq DESC LIMIT 1";
pub(super) const INSERT: &str = "INSERT INTO group_history
     (group_key, repo, account_id, environment, severity, state, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// Every row of the groups that matter to a period starting at `$1`: those with a row at or
/// after it, and those not closed now (open, or pending, for the whole period).
const SELECT_SINCE: &str =
    "SELECT seq, group_key, repo, account_id, environment, severity, state, at
     FROM group_history
     WHERE group_key IN (SELECT group_key FROM group_history WHERE at >= $1)
        OR group_key IN (SELECT group_key FROM groups WHERE status <> 'closed')
     ORDER BY group_key, seq";

/// Records the first row of each of `groups`, just created, at `now` inside [`Store::apply`]'s
/// transaction (a few multi-row statements).
pub(super) async fn record_new_in<W: WriteConn>(
    conn: &mut W,
    groups: &[&GroupRecord],
    now: DateTime<Utc>,
) -> Result<()> {
    static INSERT_ROWS: LazyLock<Rows> = LazyLock::new(|| Rows::of(INSERT));
    let rows: Vec<HistoryRow> = groups.iter().map(|g| HistoryRow::of(g, now)).collect();
    // Rows of their own: no key repeats.
    rows::write(
        conn,
        &INSERT_ROWS,
        &rows,
        std::ptr::from_ref,
        |q, row| Ok(bind_row(q, row)),
        None,
    )
    .await?;
    Ok(())
}

pub(super) fn bind_row<B: Binder>(q: B, row: &HistoryRow) -> B {
    q.arg(row.group_key.as_str())
        .arg(row.repo.as_str())
        .arg(row.account_id.as_str())
        .arg(row.environment.as_str())
        .arg(row.severity.as_str())
        .arg(row.state.as_str())
        .ts(row.at)
}

/// Records `g`'s row at `now` inside [`Store::apply`]'s transaction when its state, severity or
/// repository differs from its latest row (or it has none).
pub(super) async fn record_in<W: WriteConn>(
    conn: &mut W,
    g: &GroupRecord,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = HistoryRow::of(g, now);
    let at = At::new("group_history", format!("{:?}", g.group_key.as_str()));
    let last = conn
        .fetch_texts(
            conn.stmt(LAST).arg(g.group_key.as_str()),
            &["state", "severity", "repo"],
            &at,
        )
        .await?;
    if let Some([state, severity, repo]) = last.first().map(Vec::as_slice)
        && state == row.state.as_str()
        && severity == row.severity.as_str()
        && *repo == row.repo
    {
        return Ok(());
    }
    let insert = bind_row(conn.stmt(INSERT), &row);
    conn.execute(insert).await?;
    Ok(())
}

pub(super) fn since_query<D: Dialect>(since: DateTime<Utc>) -> dialect::Query<'static, D> {
    sqlx::query(SELECT_SINCE).ts(since)
}

pub(super) fn from_row<D: Dialect>(row: &D::Row) -> Result<HistoryRow> {
    let seq = row.int(&At::unknown("group_history"), "seq")?;
    let at = At::new("group_history", format!("seq={seq}"));
    let severity = row.text(&at, "severity")?;
    let state = row.text(&at, "state")?;
    Ok(HistoryRow {
        seq,
        group_key: GroupKey(row.text(&at, "group_key")?),
        repo: row.text(&at, "repo")?,
        account_id: row.text(&at, "account_id")?,
        environment: row.text(&at, "environment")?,
        severity: at.code("severity", &severity, |s| s.parse::<Severity>().ok())?,
        state: at.code("state", &state, HistoryState::parse)?,
        at: row.ts(&at, "at")?,
    })
}
