//! Multi-row statements: a batch writes its rows with a few statements instead of one each.
//!
//! On SQLite every statement is a round trip to sqlx's worker thread (two thread hand-offs),
//! on PostgreSQL a round trip to the server; an intake batch of 32 new findings used to run
//! about 200 statements. [`Rows`] turns a one-row `INSERT … VALUES (…) …` of `common.rs` into
//! the same statement for 64, 32, 16, 8, 4, 2 or 1 rows ([`CHUNKS`]: the statement cache holds
//! seven texts per statement, and a run of `n` rows takes one statement per bit set in `n`,
//! at most six below 64), and [`chunks`] cuts a batch into such runs without ever putting one
//! key twice in a statement: PostgreSQL refuses an upsert that touches a row twice, and the
//! order of the two writes would be lost. Rows keep their order, so a batch locks rows in the
//! order [`sorted_for_locking`](super::common::sorted_for_locking) gave them.
//!
//! An `INSERT … ON CONFLICT DO NOTHING` ([`Rows::of_idempotent`]) can do better:
//! [`write_padded`] writes up to 64 rows in one statement whatever their number, padding with
//! copies of the last row, which the conflict clause skips.

use std::collections::HashSet;
use std::hash::Hash;
use std::ops::Range;

use super::Result;
use super::common::At;
use super::dialect::{Dialect, Query};
use super::write::WriteConn;

/// Rows per statement, largest first.
pub(super) const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// One `INSERT` for each size of [`CHUNKS`].
#[derive(Debug)]
pub(super) struct Rows {
    by_size: Vec<(usize, String)>,
    /// A row written twice changes nothing (`ON CONFLICT DO NOTHING`): [`write_padded`] may
    /// repeat rows.
    idempotent: bool,
}

impl Rows {
    /// From a one-row statement: its first `VALUES (…)` is the row, repeated with its `$N`
    /// renumbered (`$1` of the third row is `$(2·width + 1)`, `width` the row's highest `$N`).
    ///
    /// Panics when `one_row` has no `VALUES (…)`: the statements are this crate's constants.
    pub(super) fn of(one_row: &str) -> Rows {
        Rows::shaped(one_row, 0, in_values)
    }

    /// [`Rows::of`] an `INSERT … ON CONFLICT DO NOTHING`, whose rows [`write_padded`] may
    /// repeat: the second copy of a row conflicts with the first and is skipped (on SQLite and
    /// on PostgreSQL alike; only `DO UPDATE` refuses to touch a row twice).
    ///
    /// Panics when `one_row` has no `ON CONFLICT DO NOTHING` (one without a conflict target:
    /// every unique constraint then skips the copy).
    pub(super) fn of_idempotent(one_row: &str) -> Rows {
        Rows::idempotent(one_row, 0, in_values)
    }

    /// [`Rows::of`] with the statement around the rows written by `shape(head, rows, tail)`
    /// (`head` what comes before `VALUES`, `rows` the rows joined, `tail` what follows them),
    /// and the rows' parameters numbered after the statement's own first `before` (`$1` of the
    /// first row is `$(before + 1)`).
    pub(super) fn shaped(
        one_row: &str,
        before: usize,
        shape: impl Fn(&str, &str, &str) -> String,
    ) -> Rows {
        let (head, row, tail) = split_values(one_row);
        let width = placeholders(row).map(|(_, n)| n).max().unwrap_or(0);
        let by_size = CHUNKS
            .iter()
            .map(|&size| {
                let rows: Vec<String> = (0..size)
                    .map(|r| substitute(row, |n| format!("${}", before + n + r * width)))
                    .collect();
                (size, shape(head, &rows.join(", "), tail))
            })
            .collect();
        Rows {
            by_size,
            idempotent: false,
        }
    }

    /// [`Rows::shaped`] of an `INSERT … ON CONFLICT DO NOTHING` (see [`Rows::of_idempotent`]).
    pub(super) fn idempotent(
        one_row: &str,
        before: usize,
        shape: impl Fn(&str, &str, &str) -> String,
    ) -> Rows {
        let flat = one_row.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("ON CONFLICT DO NOTHING"),
            "only an INSERT … ON CONFLICT DO NOTHING may repeat a row: {one_row}"
        );
        Rows {
            idempotent: true,
            ..Rows::shaped(one_row, before, shape)
        }
    }

    /// The statement for `n` rows, `n` one of [`CHUNKS`].
    pub(super) fn sql(&self, n: usize) -> &str {
        self.by_size
            .iter()
            .find(|(size, _)| *size == n)
            .map(|(_, sql)| sql.as_str())
            .expect("a size of CHUNKS")
    }
}

/// The rows where the one-row statement had its row: `head VALUES rows tail`.
fn in_values(head: &str, rows: &str, tail: &str) -> String {
    format!("{head}VALUES {rows}{tail}")
}

/// A one-row `INSERT … VALUES (…) …` cut in three: what comes before `VALUES`, the row with
/// its parentheses, and what follows it (a conflict clause, `RETURNING`).
///
/// Panics when `one_row` has no `VALUES (…)`: the statements are this crate's constants.
pub(super) fn split_values(one_row: &str) -> (&str, &str, &str) {
    let values = one_row.find("VALUES (").expect("an INSERT … VALUES (…)");
    let start = values + "VALUES ".len();
    let mut depth = 0;
    let end = start
        + one_row[start..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .expect("balanced parentheses")
            .0
        + 1;
    (&one_row[..values], &one_row[start..end], &one_row[end..])
}

/// Each `$N` of `sql`: the byte range of its digits and `N`.
pub(super) fn placeholders(sql: &str) -> impl Iterator<Item = (Range<usize>, usize)> + '_ {
    let bytes = sql.as_bytes();
    (0..bytes.len()).filter_map(move |i| {
        if bytes[i] != b'$' {
            return None;
        }
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let range = i + 1..i + 1 + digits;
        sql[range.clone()].parse().ok().map(|n| (range, n))
    })
}

/// `sql` with every `$N` replaced by `with(N)`.
pub(super) fn substitute(sql: &str, with: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut last = 0;
    for (range, n) in placeholders(sql) {
        out.push_str(&sql[last..range.start - 1]);
        out.push_str(&with(n));
        last = range.end;
    }
    out.push_str(&sql[last..]);
    out
}

/// Cuts items with these keys (in order) into consecutive ranges, each of a size in
/// [`CHUNKS`] and none holding a key twice: a repeated key starts a new run.
pub(super) fn chunks<K: Eq + Hash>(keys: impl IntoIterator<Item = K>) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0;
    let mut len = 0;
    for (i, key) in keys.into_iter().enumerate() {
        if seen.contains(&key) {
            runs.push(start..i);
            seen.clear();
            start = i;
        }
        seen.insert(key);
        len = i + 1;
    }
    if len > start {
        runs.push(start..len);
    }
    let mut out = Vec::new();
    for run in runs {
        let mut at = run.start;
        while at < run.end {
            let size = CHUNKS
                .iter()
                .copied()
                .find(|&s| s <= run.end - at)
                .unwrap_or(1);
            out.push(at..at + size);
            at += size;
        }
    }
    out
}

/// The statements of [`write_padded`] for `n` rows: (the rows, the statement's size) in
/// order; runs of 64, the last one as many rows as are left, in the smallest size of
/// [`CHUNKS`] that holds them (`ceil(n / 64)` statements).
pub(super) fn padded(n: usize) -> Vec<(Range<usize>, usize)> {
    let largest = CHUNKS[0];
    (0..n)
        .step_by(largest)
        .map(|at| {
            let len = largest.min(n - at);
            let size = CHUNKS
                .iter()
                .copied()
                .filter(|&s| s >= len)
                .min()
                .unwrap_or(largest);
            (at..at + len, size)
        })
        .collect()
}

/// Writes `items` with `rows` (made by [`Rows::of_idempotent`]) in the fewest statements:
/// each statement's rows are padded with copies of its last item, which change nothing.
/// A batch of up to 64 rows is one statement, where [`write`] takes one per bit set in its
/// length (on SQLite each statement is a round trip to sqlx's worker thread, and under load a
/// round trip costs far more than binding a few more rows: `docs/PERFORMANCE.md`).
///
/// Unlike [`write`], keys may repeat only as the statement tolerates: the caller passes items
/// whose rows are distinct, or whose repeats are meant to be skipped.
pub(super) async fn write_padded<'q, D: Dialect, T>(
    conn: &mut D::Connection,
    rows: &'static Rows,
    items: &'q [T],
    bind: impl Fn(Query<'q, D>, &'q T) -> Result<Query<'q, D>>,
) -> Result<Vec<D::Row>> {
    assert!(rows.idempotent, "write_padded needs Rows::of_idempotent");
    let mut out = Vec::new();
    for (size, statement_items) in padded_items(items) {
        let mut q = sqlx::query(rows.sql(size));
        for item in statement_items {
            q = bind(q, item)?;
        }
        out.extend(D::fetch_all(conn, q).await?);
    }
    Ok(out)
}

/// [`padded`] applied to `items`: for each statement, its size and the items it binds, in
/// order, the last one repeated to fill it (SQLite's writer binds the same rows).
pub(super) fn padded_items<T>(
    items: &[T],
) -> impl Iterator<Item = (usize, impl Iterator<Item = &T>)> {
    padded(items.len()).into_iter().map(move |(range, size)| {
        let last = &items[range.end - 1];
        let fill = size - range.len();
        (
            size,
            items[range].iter().chain(std::iter::repeat_n(last, fill)),
        )
    })
}

/// Writes `items` with the multi-row statement `rows`, in the runs [`chunks`] cuts by
/// `key`, `bind` binding one item's parameters; returns the columns `returning` names of the
/// rows the statements return (as [`WriteConn::fetch_texts`]), nothing without `returning`.
pub(super) async fn write<'q, W: WriteConn, T, K: Eq + Hash>(
    conn: &mut W,
    rows: &'static Rows,
    items: &'q [T],
    key: impl Fn(&'q T) -> K,
    bind: impl Fn(W::Stmt, &'q T) -> Result<W::Stmt>,
    returning: Option<(&'static [&'static str], &At)>,
) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for range in chunks(items.iter().map(key)) {
        let mut q = conn.stmt(rows.sql(range.len()));
        for item in &items[range] {
            q = bind(q, item)?;
        }
        match returning {
            None => {
                conn.execute(q).await?;
            }
            Some((cols, at)) => out.extend(conn.fetch_texts(q, cols, at).await?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_row_statement_becomes_one_for_each_chunk_size() {
        let rows = Rows::of(
            "INSERT INTO jobs (kind, subject, state, run_at) VALUES ($1, $2, 'pending', $3, $3)
             ON CONFLICT (kind, subject) WHERE state = 'pending' DO NOTHING",
        );
        assert_eq!(
            rows.sql(1),
            "INSERT INTO jobs (kind, subject, state, run_at) VALUES ($1, $2, 'pending', $3, $3)
             ON CONFLICT (kind, subject) WHERE state = 'pending' DO NOTHING"
        );
        assert_eq!(
            rows.sql(4),
            "INSERT INTO jobs (kind, subject, state, run_at) VALUES ($1, $2, 'pending', $3, $3), \
             ($4, $5, 'pending', $6, $6), ($7, $8, 'pending', $9, $9), \
             ($10, $11, 'pending', $12, $12)
             ON CONFLICT (kind, subject) WHERE state = 'pending' DO NOTHING"
        );
        assert!(
            rows.sql(64)
                .contains("($190, $191, 'pending', $192, $192)\n")
        );
    }

    #[test]
    fn padded_statements_are_one_per_64_rows_in_the_smallest_size_that_holds_them() {
        type Statements = &'static [(Range<usize>, usize)];
        let table: &[(usize, Statements)] = &[
            (0, &[]),
            (1, &[(0..1, 1)]),
            (2, &[(0..2, 2)]),
            (3, &[(0..3, 4)]),
            (5, &[(0..5, 8)]),
            (15, &[(0..15, 16)]),
            (33, &[(0..33, 64)]),
            (64, &[(0..64, 64)]),
            (65, &[(0..64, 64), (64..65, 1)]),
            (150, &[(0..64, 64), (64..128, 64), (128..150, 32)]),
        ];
        for (n, want) in table {
            assert_eq!(padded(*n), *want, "{n} rows");
        }
        for n in 0..=300usize {
            let runs = padded(n);
            assert_eq!(runs.len(), n.div_ceil(64), "{n} rows");
            assert_eq!(runs.iter().map(|(r, _)| r.len()).sum::<usize>(), n);
            for (r, size) in &runs {
                assert!(CHUNKS.contains(size) && *size >= r.len() && *size < 2 * r.len().max(1));
            }
        }
    }

    /// Each statement binds its items in order, then its last item again until it is full.
    #[test]
    fn padded_items_repeat_each_statements_last_item() {
        let bound = |n: usize| -> Vec<(usize, Vec<usize>)> {
            let items: Vec<usize> = (0..n).collect();
            padded_items(&items)
                .map(|(size, rows)| (size, rows.copied().collect()))
                .collect()
        };
        assert_eq!(bound(0), []);
        assert_eq!(bound(1), [(1, vec![0])]);
        assert_eq!(bound(3), [(4, vec![0, 1, 2, 2])]);
        let last = bound(65);
        assert_eq!(last.len(), 2);
        assert_eq!(last[0], (64, (0..64).collect()));
        assert_eq!(last[1], (1, vec![64]));
        for n in 0..=150 {
            for (size, rows) in bound(n) {
                assert_eq!(rows.len(), size, "{n} items");
            }
        }
    }

    #[test]
    #[should_panic(expected = "only an INSERT … ON CONFLICT DO NOTHING may repeat a row")]
    fn only_a_do_nothing_insert_may_be_padded() {
        Rows::of_idempotent(
            "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        );
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a table of expected runs, some of one run
    fn chunks_keep_the_order_take_the_largest_sizes_and_never_repeat_a_key() {
        let table: &[(&[u32], &[Range<usize>])] = &[
            (&[], &[]),
            (&[7], &[0..1]),
            (&[1, 2, 3], &[0..2, 2..3]),
            (&[1, 2, 3, 4, 5], &[0..4, 4..5]),
            (&[1, 2, 3, 4, 5, 6, 7], &[0..4, 4..6, 6..7]),
            (&[1, 1], &[0..1, 1..2]),
            (&[1, 2, 3, 4, 1, 2, 3, 4], &[0..4, 4..8]),
            (&[1, 2, 3, 4, 5, 1], &[0..4, 4..5, 5..6]),
            (&[1, 2, 1, 2, 1], &[0..2, 2..4, 4..5]),
            (&[1, 1, 1], &[0..1, 1..2, 2..3]),
        ];
        for (keys, want) in table {
            assert_eq!(chunks(keys.iter()), *want, "{keys:?}");
        }
        let many: Vec<Range<usize>> = chunks(0..150);
        assert_eq!(many, vec![0..64, 64..128, 128..144, 144..148, 148..150]);
        // A run of n distinct keys below 64 takes one statement per bit set in n.
        for n in 1..64usize {
            assert_eq!(chunks(0..n).len(), n.count_ones() as usize, "{n} rows");
        }
        // Every run: consecutive, within bounds, no key twice, sizes from CHUNKS.
        let keys: Vec<u32> = (0..500).map(|i| (i * 7919) % 97).collect();
        let runs = chunks(keys.iter());
        assert_eq!(runs.first().map(|r| r.start), Some(0));
        assert_eq!(runs.last().map(|r| r.end), Some(500));
        for w in runs.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for r in &runs {
            assert!(CHUNKS.contains(&r.len()), "{r:?}");
            let distinct: HashSet<_> = keys[r.clone()].iter().collect();
            assert_eq!(distinct.len(), r.len(), "{r:?}");
        }
    }
}
