//! The noise cap's ledger (`noise_ledger`, migration 0007): the SQL behind
//! [`Store::take_issue_slot`], [`Store::noise_ledger`] and [`Store::noise_held`].

use chrono::{DateTime, Duration, Utc};

use super::common::{At, RowExt};
use super::dialect::{Args, Dialect};
use super::*;

const FORGET_OPENED: &str =
    "DELETE FROM noise_ledger WHERE product = $1 AND state = 'opened' AND at <= $2";
const STATE_OF: &str = "SELECT state FROM noise_ledger WHERE product = $1 AND group_key = $2";
const OPENED_OF: &str = "SELECT product, group_key, at FROM noise_ledger
     WHERE product = $1 AND state = 'opened' AND at > $2 ORDER BY at, group_key";
const HELD_OF: &str = "SELECT product, group_key, at FROM noise_ledger
     WHERE product = $1 AND state = 'held' ORDER BY at, group_key";
const ALL_HELD: &str = "SELECT product, group_key, at FROM noise_ledger
     WHERE state = 'held' ORDER BY product, at, group_key";
const TAKE: &str =
    "INSERT INTO noise_ledger (product, group_key, state, at) VALUES ($1, $2, 'opened', $3)
     ON CONFLICT (product, group_key) DO UPDATE SET state = 'opened', at = excluded.at";
/// A group held before keeps the time it was first held.
const HOLD: &str =
    "INSERT INTO noise_ledger (product, group_key, state, at) VALUES ($1, $2, 'held', $3)
     ON CONFLICT (product, group_key) DO NOTHING";

pub(super) fn entry_from_row<D: Dialect>(row: &D::Row) -> Result<NoiseEntry> {
    let at = At::new("noise_ledger", "(entry)");
    let product = row.text(&at, "product")?;
    let group_key = GroupKey(row.text(&at, "group_key")?);
    let at = At::new("noise_ledger", format!("{product:?} {group_key}"));
    Ok(NoiseEntry {
        at: row.ts(&at, "at")?,
        product,
        group_key,
    })
}

/// [`Store::take_issue_slot`] inside its write transaction.
pub(super) async fn take_slot_in<D: Dialect>(
    conn: &mut D::Connection,
    product: &str,
    group: &GroupKey,
    limit: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<IssueSlot> {
    if let Some(lock) = D::LOCK_NOISE_PRODUCT {
        D::execute(conn, sqlx::query(lock).arg(product)).await?;
    }
    let start = now - window;
    D::execute(conn, sqlx::query(FORGET_OPENED).arg(product).ts(start)).await?;
    let state =
        D::fetch_optional(conn, sqlx::query(STATE_OF).arg(product).arg(group.as_str())).await?;
    let at = At::new("noise_ledger", format!("{product:?} {group}"));
    if let Some(row) = state
        && row.text(&at, "state")? == "opened"
    {
        return Ok(IssueSlot::Granted);
    }
    let rows = D::fetch_all(conn, sqlx::query(OPENED_OF).arg(product).ts(start)).await?;
    let opened = common::decode_all(&rows, |r| entry_from_row::<D>(r).map(|e| e.at))?;
    if opened.len() < limit as usize {
        D::execute(
            conn,
            sqlx::query(TAKE).arg(product).arg(group.as_str()).ts(now),
        )
        .await?;
        return Ok(IssueSlot::Granted);
    }
    D::execute(
        conn,
        sqlx::query(HOLD).arg(product).arg(group.as_str()).ts(now),
    )
    .await?;
    Ok(IssueSlot::Held { opened })
}

pub(super) fn opened_query<'q, D: Dialect>(
    product: &'q str,
    since: DateTime<Utc>,
) -> dialect::Query<'q, D> {
    sqlx::query(OPENED_OF).arg(product).ts(since)
}

pub(super) fn held_query<D: Dialect>(product: &str) -> dialect::Query<'_, D> {
    sqlx::query(HELD_OF).arg(product)
}

pub(super) fn all_held_query<D: Dialect>() -> dialect::Query<'static, D> {
    sqlx::query(ALL_HELD)
}
