//! The tag audit's snapshot (`ignore_tags`, migration 0012): the SQL behind
//! [`Store::ignore_tags`] and [`Store::record_ignore_tags`].

use chrono::{DateTime, Utc};

use super::common::{At, RowExt};
use super::dialect::{Args, Dialect};
use super::*;
use crate::domain::tags::IgnoredResource;

/// The kv key of when the last audit ran.
pub const AUDITED_AT: &str = "tags.audited_at";

const SELECT: &str = "SELECT resource_arn, account_id, region, reason, first_seen, reason_since
     FROM ignore_tags ORDER BY resource_arn";
const CLEAR: &str = "DELETE FROM ignore_tags";
const INSERT: &str = "INSERT INTO ignore_tags
     (resource_arn, account_id, region, reason, first_seen, reason_since)
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(super) fn select_query<D: Dialect>() -> dialect::Query<'static, D> {
    sqlx::query(SELECT)
}

pub(super) fn from_row<D: Dialect>(row: &D::Row) -> Result<IgnoredResource> {
    let arn = row.text(&At::unknown("ignore_tags"), "resource_arn")?;
    let at = At::new("ignore_tags", format!("{arn:?}"));
    Ok(IgnoredResource {
        account_id: row.text(&at, "account_id")?,
        region: row.text(&at, "region")?,
        reason: row.text(&at, "reason")?,
        first_seen: row.ts(&at, "first_seen")?,
        reason_since: row.ts(&at, "reason_since")?,
        arn,
    })
}

/// [`Store::record_ignore_tags`] inside its write transaction: the snapshot is replaced whole.
pub(super) async fn record_in<D: Dialect>(
    conn: &mut D::Connection,
    resources: &[IgnoredResource],
    now: DateTime<Utc>,
) -> Result<()> {
    D::execute(conn, sqlx::query(CLEAR)).await?;
    for r in resources {
        let q = sqlx::query(INSERT)
            .arg(r.arn.as_str())
            .arg(r.account_id.as_str())
            .arg(r.region.as_str())
            .arg(r.reason.as_str())
            .ts(r.first_seen)
            .ts(r.reason_since);
        D::execute(conn, q).await?;
    }
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    D::execute(
        conn,
        sqlx::query(common::UPSERT_KV)
            .arg(AUDITED_AT)
            .arg(stamp.as_str())
            .ts(now),
    )
    .await?;
    Ok(())
}
