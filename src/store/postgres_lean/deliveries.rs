//! PostgreSQL: a batch of webhook deliveries in one round trip.
//!
//! The shared path ([`sql::record_deliveries_tx`]) asks which lifecycle deliveries name an
//! issue a group owns ([`Postgres::SELECT_TRACKED_ISSUES`]), then inserts the batch, in a
//! transaction: four round trips, two when the insert alone is atomic (no delivery tracked,
//! at most 64 rows). Most deliveries are untracked: a GitHub App receives every `issues` and
//! `issue_comment` event of every installed repository. Here such a batch is one statement:
//! the tracked-issue query is a `WITH` query of the padded insert ([`sql::INSERT_DELIVERIES`]'s
//! row, derived, not rewritten), which inserts only when it found nothing, so the question and
//! the insert see one snapshot, as they would in one `READ COMMITTED` transaction. When it finds
//! a tracked delivery nothing is written, and the batch takes the transaction, its tracked
//! deliveries known (their bodies are kept and their `github-event` jobs enqueued with them).

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres};

use crate::store::common::{self, At, RowExt};
use crate::store::dialect::{Args, Dialect, Exec};
use crate::store::rows::{self, Rows};
use crate::store::{DeliveryOutcome, NewDelivery, Result, sql};

/// [`Store::record_deliveries`](crate::store::Store::record_deliveries) on PostgreSQL: a batch
/// of at most 64 distinct deliveries first tries [`insert_unless_tracked`]; a larger one, or
/// one with a tracked delivery, is written in a transaction (the padded inserts and the
/// tracked deliveries' jobs commit together).
pub(in crate::store) async fn record(
    pool: &PgPool,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<DeliveryOutcome>> {
    let mut conn = pool.acquire().await?;
    let firsts = sql::first_occurrences(deliveries);
    let tracked = if rows::padded(firsts.len()).len() == 1 {
        match insert_unless_tracked(&mut conn, deliveries, &firsts).await? {
            Written(outcomes) => return Ok(outcomes),
            Tracked(tracked) => tracked,
        }
    } else {
        sql::tracked_issues::<Postgres>(&mut conn, deliveries).await?
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let result = sql::write_deliveries::<Postgres>(&mut tx, deliveries, &firsts, &tracked).await;
    common::finish(tx, result).await
}

/// What [`insert_unless_tracked`] did.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::store) enum Unless {
    /// No delivery was tracked: the rows are written, each delivery's outcome.
    Written(Vec<DeliveryOutcome>),
    /// Nothing was written: which deliveries (by index) concern an issue a group owns.
    Tracked(Vec<bool>),
}
use Unless::{Tracked, Written};

/// One statement: the deliveries `firsts` (at most 64) inserted, padded, unless one of
/// `deliveries` names an issue a group owns, in which case nothing is inserted and those are
/// told.
pub(in crate::store) async fn insert_unless_tracked(
    conn: &mut PgConnection,
    deliveries: &[NewDelivery<'_>],
    firsts: &[usize],
) -> Result<Unless> {
    let asked = sql::asked_issues(deliveries);
    let pairs: Vec<(&str, i64)> = asked.iter().map(|(_, pair)| *pair).collect();
    let (size, items) = rows::padded_items(firsts)
        .next()
        .expect("a batch has a first delivery");
    let mut q = sqlx::query(INSERT_UNLESS_TRACKED.sql(size)).json(&pairs);
    for &i in items {
        q = sql::bind_delivery(q, deliveries[i], false);
    }
    let found = Postgres::fetch_all(conn, q).await?;
    let at = At::new("deliveries", "(recorded ids, tracked issues)");
    let mut tracked = vec![false; deliveries.len()];
    let mut inserted = HashSet::new();
    for row in &found {
        match row.opt_int(&at, "k")? {
            Some(k) => tracked[asked[common::index_asked(k, &at, asked.len())?].0] = true,
            None => {
                inserted.insert(row.text(&at, "id")?);
            }
        }
    }
    if tracked.contains(&true) {
        if !inserted.is_empty() {
            return Err(at.corrupt("id", "rows inserted although a delivery is tracked"));
        }
        return Ok(Tracked(tracked));
    }
    Ok(Written(
        sql::delivery_outcomes(deliveries, firsts, &tracked, inserted).0,
    ))
}

/// The statement of [`insert_unless_tracked`] in each size of [`CHUNKS`](rows::CHUNKS):
/// [`sql::INSERT_DELIVERY`]'s rows after `$1` (the pairs asked), its `VALUES` a subquery that
/// yields no row when the tracked-issue query (a `WITH` query on `$1`) finds one; the statement
/// returns the tracked pairs' indexes (`k`, `id` null) and the ids inserted (`id`, `k` null).
pub(in crate::store) static INSERT_UNLESS_TRACKED: LazyLock<Rows> = LazyLock::new(|| {
    Rows::idempotent(sql::INSERT_DELIVERY, 1, |head, rows, tail| {
        format!(
            "WITH tracked AS ({tracked}), \
             ins AS ({head}SELECT * FROM (VALUES {rows}) AS v \
             WHERE NOT EXISTS (SELECT 1 FROM tracked){tail}) \
             SELECT k, NULL::text AS id FROM tracked UNION ALL SELECT NULL::bigint, id FROM ins",
            tracked = Postgres::SELECT_TRACKED_ISSUES,
        )
    })
});
