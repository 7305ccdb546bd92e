//! What both backends share: SQL that reads the same in both dialects (SQLite accepts `$N`
//! placeholders too), row decoding with context (a bad column becomes
//! [`StoreError::Corrupt`] naming the table, the key and the column, never a panic), and value
//! conversions.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;

use super::*;

// ---------------------------------------------------------------------------------------------
// Column lists (macros so that `concat!` can build `&'static str` queries from them).

macro_rules! finding_cols {
    () => {
        "product_arn, finding_id, stable_key, group_key, account_id, severity, compliance, \
         record_state, workflow, asff_updated_at, fingerprint, data, first_seen, last_seen"
    };
}
macro_rules! group_cols {
    () => {
        "group_key, repo, issue_number, issue_url, status, assignee, data, created_at, \
         updated_at, version"
    };
}
macro_rules! job_cols {
    () => {
        "id, kind, subject, state, run_at, attempts, lease_owner, lease_expires, \
         last_error, created_at, updated_at"
    };
}
macro_rules! audit_cols {
    () => {
        "seq, at, actor, action, group_key, issue, source, detail"
    };
}

/// A group owns the issue `$repo` (compared case-insensitively) number `$number`: the body of
/// a subquery that each dialect's [`Dialect::SELECT_TRACKED_ISSUES`] applies to every pair it
/// was given (an `EXISTS` on SQLite; a `LATERAL … LIMIT 1` on PostgreSQL, whose planner hashed
/// an `EXISTS` against every group). `groups_issue` (`lower(repo), issue_number`) serves it.
///
/// [`Dialect::SELECT_TRACKED_ISSUES`]: super::dialect::Dialect::SELECT_TRACKED_ISSUES
macro_rules! tracked_issue_sql {
    ($repo:literal, $number:literal) => {
        concat!(
            "SELECT 1 FROM groups WHERE issue_number IS NOT NULL AND lower(repo) = lower(",
            $repo,
            ") AND issue_number = ",
            $number
        )
    };
}
pub(super) use {audit_cols, finding_cols, group_cols, tracked_issue_sql};

/// Prepared statements each connection keeps (sqlx's default is 100): every statement of this
/// file and the dialects', and each multi-row statement in its seven sizes (`rows.rs`), so a
/// busy intake never evicts and prepares again.
pub(super) const STATEMENT_CACHE: usize = 256;

// ---------------------------------------------------------------------------------------------
// Statements identical in both dialects.

pub(super) const UPSERT_FINDING: &str = concat!(
    "INSERT INTO findings (",
    finding_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (product_arn, finding_id) DO UPDATE SET
        stable_key = excluded.stable_key,
        group_key = excluded.group_key,
        account_id = excluded.account_id,
        severity = excluded.severity,
        compliance = excluded.compliance,
        record_state = excluded.record_state,
        workflow = excluded.workflow,
        asff_updated_at = excluded.asff_updated_at,
        fingerprint = excluded.fingerprint,
        data = excluded.data,
        first_seen = excluded.first_seen,
        last_seen = excluded.last_seen"
);

pub(super) const INSERT_GROUP_IF_ABSENT: &str = concat!(
    "INSERT INTO groups (",
    group_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (group_key) DO NOTHING"
);

/// `created_at` is kept from the stored row; the version check makes this a compare-and-swap.
pub(super) const UPDATE_GROUP: &str = "UPDATE groups SET
        repo = $2, issue_number = $3, issue_url = $4, status = $5, assignee = $6, data = $7,
        updated_at = $8, version = $9 + 1
     WHERE group_key = $1 AND version = $9";

/// Enqueue: at most one pending job per (kind, subject). A duplicate moves the stored `run_at` earlier when the new one is earlier (never later).
pub(super) const ENQUEUE_JOB: &str = "INSERT INTO jobs
        (kind, subject, state, run_at, attempts, created_at, updated_at)
     VALUES ($1, $2, 'pending', $3, 0, $4, $4)
     ON CONFLICT (kind, subject) WHERE state = 'pending' DO UPDATE SET
        run_at = CASE WHEN excluded.run_at < jobs.run_at THEN excluded.run_at ELSE jobs.run_at END,
        rerun = (jobs.rerun OR (jobs.lease_owner IS NOT NULL AND jobs.lease_expires > excluded.updated_at)),
        updated_at = excluded.updated_at";

/// Enqueue unless a pending job of this (kind, subject) exists (which is left as it is: its
/// `run_at`, backoff included, does not move).
pub(super) const ENQUEUE_JOB_IF_ABSENT: &str = "INSERT INTO jobs
        (kind, subject, state, run_at, attempts, created_at, updated_at)
     VALUES ($1, $2, 'pending', $3, 0, $4, $4)
     ON CONFLICT (kind, subject) WHERE state = 'pending' DO NOTHING";

pub(super) const JOB_DONE: &str = "UPDATE jobs SET
        state = CASE WHEN rerun THEN 'pending' ELSE 'done' END,
        run_at = CASE WHEN rerun THEN $3 ELSE run_at END,
        attempts = CASE WHEN rerun THEN 0 ELSE attempts END,
        rerun = FALSE, lease_owner = NULL, lease_expires = NULL, updated_at = $3
     WHERE id = $1 AND state = 'pending' AND lease_owner = $2";

pub(super) const JOB_RETRY: &str = "UPDATE jobs SET
        rerun = FALSE, lease_owner = NULL, lease_expires = NULL, run_at = $3, last_error = $4, updated_at = $5
     WHERE id = $1 AND state = 'pending' AND lease_owner = $2";

/// Like a retry, but the attempt counted by the lease is given back.
pub(super) const JOB_POSTPONE: &str = "UPDATE jobs SET
        rerun = FALSE, lease_owner = NULL, lease_expires = NULL, run_at = $3, last_error = $4,
        attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $5
     WHERE id = $1 AND state = 'pending' AND lease_owner = $2";

pub(super) const JOB_DEAD: &str = "UPDATE jobs SET
        state = 'dead', lease_owner = NULL, lease_expires = NULL, last_error = $3, updated_at = $4
     WHERE id = $1 AND state = 'pending' AND lease_owner = $2";

/// Finished jobs older than the retention (parked and pending ones are never pruned).
pub(super) const PRUNE_JOBS: &str = "DELETE FROM jobs WHERE state = 'done' AND updated_at < $1";

/// Deliveries older than the retention, unless a job still needs one.
pub(super) const PRUNE_DELIVERIES: &str = "DELETE FROM deliveries
     WHERE received_at < $1
       AND NOT EXISTS (
           SELECT 1 FROM jobs
           WHERE jobs.kind = 'github-event' AND jobs.subject = deliveries.id
             AND jobs.state IN ('pending', 'dead'))";

pub(super) const RENEW_LEASE: &str = "UPDATE jobs SET lease_expires = $3, updated_at = $4
     WHERE id = $1 AND state = 'pending' AND lease_owner = $2";

/// A parked job handed back by an operator: kept (as `done`, its error prefixed) for history;
/// the change set enqueues the job anew.
pub(super) const JOB_REQUEUED: &str = "UPDATE jobs SET
        state = 'done', last_error = 'retried: ' || COALESCE(last_error, ''), updated_at = $2
     WHERE id = $1 AND state = 'dead'";

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit
        (at, actor, action, group_key, issue, source, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(super) const UPSERT_KV: &str = "INSERT INTO kv (key, value, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

/// `body` is NULL for an untracked delivery.
pub(super) const SELECT_DELIVERY: &str =
    "SELECT id, event, body_sha256, body, received_at FROM deliveries WHERE id = $1";

pub(super) const SELECT_FINDINGS_IN_GROUP: &str = concat!(
    "SELECT ",
    finding_cols!(),
    " FROM findings WHERE group_key = $1 ORDER BY product_arn, finding_id"
);

pub(super) const SELECT_ALL_UNGROUPED_FINDINGS: &str = concat!(
    "SELECT ",
    finding_cols!(),
    " FROM findings WHERE NOT EXISTS \
     (SELECT 1 FROM groups g WHERE g.group_key = findings.group_key) \
     ORDER BY product_arn, finding_id"
);

pub(super) const SELECT_UNGROUPED_FINDINGS: &str = concat!(
    "SELECT ",
    finding_cols!(),
    " FROM findings WHERE account_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM groups g WHERE g.group_key = findings.group_key) \
     ORDER BY product_arn, finding_id"
);

pub(super) const SELECT_GROUP: &str = concat!(
    "SELECT ",
    group_cols!(),
    " FROM groups WHERE group_key = $1"
);

/// Several groups claiming one issue would be a bug elsewhere; the lowest key wins, so the
/// answer is at least deterministic.
pub(super) const SELECT_GROUP_BY_ISSUE: &str = concat!(
    "SELECT ",
    group_cols!(),
    " FROM groups WHERE lower(repo) = lower($1) AND issue_number = $2
      ORDER BY group_key LIMIT 1"
);

/// The queue per kind at `$1` (now): pending, due and parked counts, the earliest due
/// `run_at` (see [`QueueStats`]).
pub(super) const QUEUE_STATS: &str = "SELECT kind,
        SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
        SUM(CASE WHEN state = 'pending' AND run_at <= $1 THEN 1 ELSE 0 END) AS due,
        SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS parked,
        MIN(CASE WHEN state = 'pending' AND run_at <= $1 THEN run_at END) AS oldest_due
     FROM jobs WHERE state IN ('pending', 'dead')
     GROUP BY kind ORDER BY kind";

/// The earliest moment a pending job can be leased: its `run_at`, or the end of its lease
/// while a lease is held (so a worker never spins on a job another worker is running).
///
/// Without walking every pending job (thousands wait during a flood, and every idle worker
/// asks this after each wake-up): the first job in `(run_at, id)` order whose lease does not
/// outlast its `run_at` is leasable at its `run_at`; only the jobs before it in that order
/// can be leasable earlier, and each of those is under a lease (few: the running ones), so
/// the `MIN` reads only them. `from` names `jobs`, with the index that serves `(run_at, id)`
/// order where the planner needs telling.
pub(super) fn next_job_at_sql(from: &str) -> String {
    // With no such first job, every pending job is under a lease: all of them count.
    format!(
        "SELECT MIN(CASE
            WHEN lease_expires IS NOT NULL AND lease_expires > run_at THEN lease_expires
            ELSE run_at END) AS next_at
     FROM {from} WHERE state = 'pending' AND kind IN ({kinds})
       AND run_at <= COALESCE(
            (SELECT run_at FROM {from} WHERE state = 'pending' AND kind IN ({kinds})
               AND (lease_expires IS NULL OR lease_expires <= run_at)
             ORDER BY run_at, id LIMIT 1),
            (SELECT MAX(run_at) FROM {from} WHERE state = 'pending'))",
        kinds = known_kinds_sql()
    )
}

/// A job that can be leased: pending, of a kind this version knows (see [`KNOWN_KINDS`]), not
/// under a live lease at `$3`.
fn leasable() -> String {
    format!(
        "state = 'pending' AND kind IN ({}) AND (lease_expires IS NULL OR lease_expires <= $3)",
        known_kinds_sql()
    )
}

/// Leases the job(s) `which` selects: `$1` owner, `$2` lease end, `$3` now; returns the row.
fn lease_sql(which: &str) -> String {
    format!(
        concat!(
            "UPDATE jobs SET lease_owner = $1, lease_expires = $2, attempts = attempts + 1,
                 updated_at = $3
             WHERE {which}
             RETURNING ",
            job_cols!()
        ),
        which = which,
    )
}

/// The lease statement: leases the next due job (see [`leasable`]); `$1` owner, `$2` lease
/// end, `$3` now; returns the job's row. `from` is the inner `SELECT`'s source (`jobs`, with the
/// dialect's index hint), `lock` what the dialect adds to it to skip rows other leasers hold.
pub(super) fn lease_job_sql(from: &str, lock: &str) -> String {
    lease_sql(&format!(
        "id = (SELECT id FROM {from} WHERE {leasable} AND run_at <= $3
               ORDER BY run_at, id LIMIT 1{lock})",
        leasable = leasable(),
    ))
}

/// [`lease_job_sql`] for one job, `$4` its id, whether due or not (see `Store::lease_job_id`).
pub(super) fn lease_job_id_sql() -> String {
    lease_sql(&format!("id = $4 AND {}", leasable()))
}

pub(super) const INSERT_EFFECT: &str = "INSERT INTO outbox
        (effect_id, group_key, action, source, created_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (effect_id) DO NOTHING";

pub(super) const DELETE_EFFECT: &str = "DELETE FROM outbox WHERE effect_id = $1";

pub(super) const CLEAR_OUTBOX: &str = "DELETE FROM outbox WHERE group_key = $1";

pub(super) const SELECT_OUTBOX: &str = "SELECT effect_id, group_key, action, source
     FROM outbox WHERE group_key = $1 AND parked_error IS NULL ORDER BY seq";

pub(super) const SELECT_PARKED_EFFECTS: &str =
    "SELECT effect_id, group_key, action, source, parked_error
     FROM outbox WHERE parked_error IS NOT NULL ORDER BY seq";

pub(super) const PARK_EFFECT: &str = "UPDATE outbox SET parked_error = $2 WHERE effect_id = $1";

pub(super) const UNPARK_EFFECT: &str = "UPDATE outbox SET parked_error = NULL WHERE effect_id = $1";

/// The kinds this version leases, as an SQL list (`'open-issue', 'sync', ...`): constants
/// without quotes, so formatting them into the query is safe.
pub(super) fn known_kinds_sql() -> String {
    KNOWN_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CAST` gives the parameter a type when it is NULL (PostgreSQL needs one).
pub(super) const SELECT_GROUPS_BY_STATUS: &str = concat!(
    "SELECT ",
    group_cols!(),
    " FROM groups WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) ORDER BY group_key"
);

pub(super) const SELECT_JOBS_BY_STATE: &str = concat!(
    "SELECT ",
    job_cols!(),
    " FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) ORDER BY created_at, id"
);

pub(super) const SELECT_KV: &str = "SELECT value FROM kv WHERE key = $1";

// ---------------------------------------------------------------------------------------------
// Row decoding.

/// Where a decoded value came from, for error messages.
pub struct At {
    table: &'static str,
    key: String,
}

impl At {
    pub(super) fn new(table: &'static str, key: impl Into<String>) -> Self {
        At {
            table,
            key: key.into(),
        }
    }

    /// The key columns themselves could not be read.
    pub(super) fn unknown(table: &'static str) -> Self {
        At::new(table, "(unreadable key)")
    }

    pub(super) fn corrupt(&self, col: &str, what: impl Display) -> StoreError {
        StoreError::Corrupt(format!("{} {}: column {col}: {what}", self.table, self.key))
    }

    /// A text column holding one of a fixed set of codes.
    pub(super) fn code<T>(
        &self,
        col: &str,
        s: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        parse(s).ok_or_else(|| self.corrupt(col, format!("unknown value {s:?}")))
    }

    pub(super) fn decode_json_str<T: DeserializeOwned>(&self, col: &str, s: &str) -> Result<T> {
        serde_json::from_str(s).map_err(|e| self.corrupt(col, format!("invalid JSON: {e}")))
    }

    pub(super) fn decode_json_value<T: DeserializeOwned>(
        &self,
        col: &str,
        v: serde_json::Value,
    ) -> Result<T> {
        serde_json::from_value(v).map_err(|e| self.corrupt(col, format!("invalid JSON: {e}")))
    }

    pub(super) fn decode_micros(&self, col: &str, us: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| self.corrupt(col, format!("timestamp {us} out of range")))
    }
}

/// Typed access to a row of either backend; every failure names the table, key and column.
pub trait RowExt {
    fn text(&self, at: &At, col: &'static str) -> Result<String>;
    fn opt_text(&self, at: &At, col: &'static str) -> Result<Option<String>>;
    fn int(&self, at: &At, col: &'static str) -> Result<i64>;
    fn opt_int(&self, at: &At, col: &'static str) -> Result<Option<i64>>;
    fn ts(&self, at: &At, col: &'static str) -> Result<DateTime<Utc>>;
    fn opt_ts(&self, at: &At, col: &'static str) -> Result<Option<DateTime<Utc>>>;
    /// A JSON column decoded into `T`.
    fn json<T: DeserializeOwned>(&self, at: &At, col: &'static str) -> Result<T>;
    /// A BLOB (SQLite) or BYTEA (PostgreSQL) column.
    fn opt_bytes(&self, at: &At, col: &'static str) -> Result<Option<Vec<u8>>>;
}

/// The `k` column of a row answering a lookup by JSON array (`json_each` / `jsonb_array_elements
/// WITH ORDINALITY`): the index, below `len`, of the asked entry the row answers.
pub(super) fn asked_index(row: &impl RowExt, at: &At, len: usize) -> Result<usize> {
    index_asked(row.int(at, "k")?, at, len)
}

/// Column `k` of a row answering pairs asked as a JSON array of `len`: an index in it.
pub(super) fn index_asked(k: i64, at: &At, len: usize) -> Result<usize> {
    usize::try_from(k)
        .ok()
        .filter(|&k| k < len)
        .ok_or_else(|| at.corrupt("k", format!("index {k} out of range")))
}

pub(super) fn finding_from_row(row: &impl RowExt) -> Result<FindingRecord> {
    let unknown = At::unknown("findings");
    let product_arn = row.text(&unknown, "product_arn")?;
    let finding_id = row.text(&unknown, "finding_id")?;
    let at = At::new(
        "findings",
        format!("(product_arn={product_arn:?}, finding_id={finding_id:?})"),
    );
    let severity = row.text(&at, "severity")?;
    let compliance = row.opt_text(&at, "compliance")?;
    let record_state = row.text(&at, "record_state")?;
    let workflow = row.text(&at, "workflow")?;
    let data: FindingData<Finding> = row.json(&at, "data")?;
    Ok(FindingRecord {
        stable_key: StableKey(row.text(&at, "stable_key")?),
        group_key: GroupKey(row.text(&at, "group_key")?),
        account_id: row.text(&at, "account_id")?,
        severity: at.code("severity", &severity, |s| Severity::from_str(s).ok())?,
        compliance: compliance
            .map(|s| at.code("compliance", &s, ComplianceStatus::parse))
            .transpose()?,
        record_state: at.code("record_state", &record_state, RecordState::parse)?,
        workflow: at.code("workflow", &workflow, WorkflowStatus::parse)?,
        updated_at: row.opt_text(&at, "asff_updated_at")?,
        fingerprint: row.text(&at, "fingerprint")?,
        finding: data.finding,
        lever_writes: data.lever_writes,
        first_seen: row.ts(&at, "first_seen")?,
        last_seen: row.ts(&at, "last_seen")?,
        product_arn,
        finding_id,
    })
}

pub(super) fn group_from_row(row: &impl RowExt) -> Result<GroupRecord> {
    let key = row.text(&At::unknown("groups"), "group_key")?;
    let at = At::new("groups", format!("{key:?}"));
    let status = row.text(&at, "status")?;
    let issue_number = match row.opt_int(&at, "issue_number")? {
        None => None,
        Some(n) => Some(
            u64::try_from(n).map_err(|_| at.corrupt("issue_number", format!("negative: {n}")))?,
        ),
    };
    Ok(GroupRecord {
        repo: row.text(&at, "repo")?,
        issue_number,
        issue_url: row.opt_text(&at, "issue_url")?,
        status: at.code("status", &status, GroupStatus::parse)?,
        assignee: row.opt_text(&at, "assignee")?,
        data: row.json(&at, "data")?,
        created_at: row.ts(&at, "created_at")?,
        updated_at: row.ts(&at, "updated_at")?,
        version: row.int(&at, "version")?,
        group_key: GroupKey(key),
    })
}

pub(super) fn job_from_row(row: &impl RowExt) -> Result<JobRecord> {
    let id = row.int(&At::unknown("jobs"), "id")?;
    let at = At::new("jobs", format!("id={id}"));
    let state = row.text(&at, "state")?;
    let attempts = row.int(&at, "attempts")?;
    Ok(JobRecord {
        id,
        job: Job::from_parts(&row.text(&at, "kind")?, &row.text(&at, "subject")?),
        state: at.code("state", &state, JobState::parse)?,
        run_at: row.ts(&at, "run_at")?,
        attempts: i32::try_from(attempts)
            .map_err(|_| at.corrupt("attempts", format!("out of range: {attempts}")))?,
        lease_owner: row.opt_text(&at, "lease_owner")?,
        lease_expires: row.opt_ts(&at, "lease_expires")?,
        last_error: row.opt_text(&at, "last_error")?,
        created_at: row.ts(&at, "created_at")?,
        updated_at: row.ts(&at, "updated_at")?,
    })
}

pub(super) fn queue_stats_from_row(row: &impl RowExt) -> Result<QueueStats> {
    let kind = row.text(&At::unknown("jobs"), "kind")?;
    let at = At::new("jobs", format!("kind={kind:?} (queue stats)"));
    let count = |col: &'static str| -> Result<u64> {
        let n = row.int(&at, col)?;
        u64::try_from(n).map_err(|_| at.corrupt(col, format!("negative count {n}")))
    };
    Ok(QueueStats {
        pending: count("pending")?,
        due: count("due")?,
        parked: count("parked")?,
        oldest_due: row.opt_ts(&at, "oldest_due")?,
        kind,
    })
}

pub(super) fn effect_from_row(row: &impl RowExt) -> Result<Effect> {
    let id = row.text(&At::unknown("outbox"), "effect_id")?;
    let at = At::new("outbox", format!("{id:?}"));
    Ok(Effect {
        group_key: GroupKey(row.text(&at, "group_key")?),
        action: row.json(&at, "action")?,
        source: row.text(&at, "source")?,
        id,
    })
}

pub(super) fn delivery_from_row(row: &impl RowExt) -> Result<Delivery> {
    let id = row.text(&At::unknown("deliveries"), "id")?;
    let at = At::new("deliveries", format!("{id:?}"));
    let body_sha256 =
        match row.opt_bytes(&at, "body_sha256")? {
            None => None,
            Some(digest) => Some(<[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
                at.corrupt("body_sha256", format!("{} bytes, not 32", digest.len()))
            })?),
        };
    Ok(Delivery {
        event: row.text(&at, "event")?,
        body_sha256,
        body: row.opt_bytes(&at, "body")?,
        received_at: row.ts(&at, "received_at")?,
        id,
    })
}

pub(super) fn audit_from_row(row: &impl RowExt) -> Result<AuditEntry> {
    let seq = row.int(&At::unknown("audit"), "seq")?;
    let at = At::new("audit", format!("seq={seq}"));
    Ok(AuditEntry {
        seq,
        at: row.ts(&at, "at")?,
        actor: row.text(&at, "actor")?,
        action: row.text(&at, "action")?,
        group_key: row.opt_text(&at, "group_key")?.map(GroupKey),
        issue: row.opt_text(&at, "issue")?,
        source: row.opt_text(&at, "source")?,
        detail: row.json(&at, "detail")?,
    })
}

/// Collects decoded rows, stopping at the first corrupt one.
pub(super) fn decode_all<R, T>(rows: &[R], f: impl Fn(&R) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

// ---------------------------------------------------------------------------------------------
// Values going in.

/// Microseconds since the Unix epoch: the SQLite timestamp representation. PostgreSQL's
/// TIMESTAMPTZ has the same precision, so both backends round-trip a time identically.
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn issue_number_param(n: Option<u64>) -> Result<Option<i64>> {
    n.map(|n| {
        i64::try_from(n).map_err(|_| {
            StoreError::Database(sqlx::Error::Encode(
                format!("issue number {n} out of range").into(),
            ))
        })
    })
    .transpose()
}

/// `t` rounded up to the store's precision (the microsecond), for the times a job must not
/// run before (`run_at`, retries, postponements): truncating them made a timer due a fraction
/// of a microsecond before its deadline, so it fired "early", scheduled itself again at the
/// same stored instant and, with a clock standing at that instant, ran again and again.
pub(super) fn not_before(t: DateTime<Utc>) -> DateTime<Utc> {
    match t.timestamp_subsec_nanos() % 1_000 {
        0 => t,
        ns => t
            .checked_add_signed(Duration::nanoseconds(i64::from(1_000 - ns)))
            .unwrap_or(t),
    }
}

/// When a lease taken at `now` for `lease_for` ends (saturating far in the future).
pub(super) fn lease_end(now: DateTime<Utc>, lease_for: Duration) -> DateTime<Utc> {
    now.checked_add_signed(lease_for)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Findings and groups are written in key order (stable, so repeats of one key keep their
/// order): two PostgreSQL transactions touching the same rows then lock them in the same order
/// and cannot deadlock on each other.
pub(super) fn sorted_for_locking(changes: &mut ChangeSet) {
    changes
        .findings
        .sort_by(|a, b| (&a.product_arn, &a.finding_id).cmp(&(&b.product_arn, &b.finding_id)));
    changes
        .groups
        .sort_by(|a, b| group_write_key(a).cmp(group_write_key(b)));
}

pub(super) fn group_write_key(w: &GroupWrite) -> &GroupKey {
    match w {
        GroupWrite::InsertIfAbsent(r) | GroupWrite::Update { record: r, .. } => &r.group_key,
    }
}

/// The [`StoreError::Conflict`] for a job whose lease the caller no longer holds.
pub(super) fn lease_lost(id: i64) -> StoreError {
    StoreError::Conflict(format!("job:{id}"))
}

/// Applies the pending migrations on `conn`.
///
/// `Migrator::run` takes an `Acquire`, whose impls are "not general enough" for the `Send`
/// bound of an `async_trait` future (rust-lang/rust#64552); `run_direct` is what `run` calls
/// after acquiring, and what sqlx itself documents as the way around that error (it is
/// `#[doc(hidden)]`: revisit when upgrading sqlx).
/// Run in a transaction (SQLite), each migration runs in a savepoint.
pub(super) async fn run_migrations<C: sqlx::migrate::Migrate>(
    migrator: &sqlx::migrate::Migrator,
    conn: &mut C,
) -> Result<(), sqlx::migrate::MigrateError> {
    migrator.run_direct(None, conn, false).await
}

/// Commits on success, rolls back on error. The original error matters more than a failed
/// rollback (the pool then discards the connection).
pub(super) async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'_, DB>,
    result: Result<T>,
) -> Result<T> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub pacing shared by the replicas (`github_pacing`): a GCRA in integer microseconds.

pub(super) const PACING_ROW: &str = "INSERT INTO github_pacing (installation, tat_us)
     VALUES ($1, 0) ON CONFLICT (installation) DO NOTHING";

/// `$2` now, `$3` the period, `$4` burst × period (all µs). Takes a permit when the
/// installation is not paused and the next theoretical arrival time, less the burst's
/// tolerance, is not in the future.
pub(super) const PACING_TAKE: &str = "UPDATE github_pacing
     SET tat_us = (CASE WHEN tat_us > $2 THEN tat_us ELSE $2 END) + $3
     WHERE installation = $1
       AND (CASE WHEN tat_us > $2 THEN tat_us ELSE $2 END) + $3 - $4 <= $2
       AND (paused_until_us IS NULL OR paused_until_us <= $2)";

pub(super) const PACING_SELECT: &str =
    "SELECT tat_us, paused_until_us FROM github_pacing WHERE installation = $1";

/// A later pause wins.
pub(super) const PACING_PAUSE: &str = "INSERT INTO github_pacing (installation, tat_us, paused_until_us)
     VALUES ($1, 0, $2)
     ON CONFLICT (installation) DO UPDATE SET paused_until_us =
         CASE WHEN github_pacing.paused_until_us > $2 THEN github_pacing.paused_until_us ELSE $2 END";

pub(super) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
