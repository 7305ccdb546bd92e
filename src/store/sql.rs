//! The one SQL implementation of [`Store`], generic over the [`Dialect`] it runs on.
//!
//! Statements shared by both dialects are in `common.rs`; what differs (timestamps, JSON, the
//! write gate, the lease, migrations, connecting) is behind [`Dialect`]. Writes that belong
//! together run in one write transaction ([`Dialect::begin_write`]), reads on a pooled
//! connection.

use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use sqlx::{AssertSqlSafe, Pool};

use super::common::{self, At, RowExt, audit_cols};
use super::dialect::{Args, Dialect, Lookup, Query, WriteTx};
use super::rows::{self, Rows};
use super::write::{self, Binder, SqlxConn, WriteConn};
use super::*;

/// A write statement none of whose rows is wanted ([`rows::write`]).
const NOTHING_RETURNED: Option<(&[&str], &At)> = None;

/// The store on database `D`: [`SqliteStore`] or [`PostgresStore`].
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    pool: Pool<D>,
    gate: D::Gate,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(super) fn new(pool: Pool<D>) -> Self {
        Self::with_gate(pool, D::Gate::default())
    }

    pub(super) fn with_gate(pool: Pool<D>, gate: D::Gate) -> Self {
        SqlStore { pool, gate }
    }

    /// How this store's writers take turns (the store's own tests).
    #[cfg(test)]
    pub(super) fn gate(&self) -> &D::Gate {
        &self.gate
    }

    /// The underlying pool, for operators' tools and tests (raw SQL).
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }

    async fn write_tx(&self) -> Result<D::Write<'_>> {
        D::begin_write(&self.pool, &self.gate).await
    }

    async fn fetch_optional(&self, q: Query<'_, D>) -> Result<Option<D::Row>> {
        let mut conn = self.pool.acquire().await?;
        Ok(D::fetch_optional(&mut *conn, q).await?)
    }

    async fn fetch_all(&self, q: Query<'_, D>) -> Result<Vec<D::Row>> {
        let mut conn = self.pool.acquire().await?;
        Ok(D::fetch_all(&mut *conn, q).await?)
    }
}

/// The columns an insert and an update of a group share, `$1` to `$7`.
fn bind_group<B: Binder>(q: B, r: &GroupRecord) -> Result<B> {
    Ok(q.arg(r.group_key.as_str())
        .arg(r.repo.as_str())
        .arg(common::issue_number_param(r.issue_number)?)
        .arg(r.issue_url.as_deref())
        .arg(r.status.as_str())
        .arg(r.assignee.as_deref())
        .json(&r.data))
}

/// The parameters of [`common::INSERT_GROUP_IF_ABSENT`] for `r`.
pub(super) fn bind_new_group<B: Binder>(q: B, r: &GroupRecord) -> Result<B> {
    Ok(bind_group(q, r)?
        .ts(r.created_at)
        .ts(r.updated_at)
        .arg(r.version))
}

/// The parameters of [`common::UPSERT_FINDING`] for `f`.
pub(super) fn bind_finding<B: Binder>(q: B, f: &FindingRecord) -> B {
    q.arg(f.product_arn.as_str())
        .arg(f.finding_id.as_str())
        .arg(f.stable_key.0.as_str())
        .arg(f.group_key.as_str())
        .arg(f.account_id.as_str())
        .arg(f.severity.as_str())
        .arg(f.compliance.map(|c| c.as_str()))
        .arg(f.record_state.as_str())
        .arg(f.workflow.as_str())
        .arg(f.updated_at.as_deref())
        .arg(f.fingerprint.as_str())
        .json(&FindingData {
            finding: &f.finding,
            lever_writes: f.lever_writes.clone(),
        })
        .ts(f.first_seen)
        .ts(f.last_seen)
}

/// The parameters of [`common::ENQUEUE_JOB`] and [`common::ENQUEUE_JOB_IF_ABSENT`] for `j`,
/// enqueued at `now`.
pub(super) fn bind_job<B: Binder>(q: B, j: &NewJob, now: DateTime<Utc>) -> B {
    q.arg(j.job.kind())
        .arg(j.job.subject())
        .ts(common::not_before(j.run_at))
        .ts(now)
}

/// The parameters of [`common::INSERT_AUDIT`] for `a`.
pub(super) fn bind_audit<B: Binder>(q: B, a: &AuditEntry) -> B {
    q.ts(a.at)
        .arg(a.actor.as_str())
        .arg(a.action.as_str())
        .arg(a.group_key.as_ref().map(GroupKey::as_str))
        .arg(a.issue.as_deref())
        .arg(a.source.as_deref())
        .json(&a.detail)
}

/// Enqueues `jobs` in order: a run of the same kind of enqueue (plain or if-absent) is
/// written together.
pub(super) async fn enqueue_all<W: WriteConn>(
    conn: &mut W,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> Result<()> {
    static ENQUEUE: LazyLock<Rows> = LazyLock::new(|| Rows::of(common::ENQUEUE_JOB));
    static ENQUEUE_IF_ABSENT: LazyLock<Rows> =
        LazyLock::new(|| Rows::of(common::ENQUEUE_JOB_IF_ABSENT));
    let mut rest = jobs;
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|j| j.if_absent == first.if_absent)
            .count();
        let (run, tail) = rest.split_at(n);
        rest = tail;
        let statement = if first.if_absent {
            &ENQUEUE_IF_ABSENT
        } else {
            &ENQUEUE
        };
        rows::write(
            conn,
            statement,
            run,
            |j| (j.job.kind(), j.job.subject()),
            |q, j| Ok(bind_job(q, j, now)),
            NOTHING_RETURNED,
        )
        .await?;
    }
    Ok(())
}

/// Inserts the groups not stored yet; each one inserted gets its first history row (a group
/// is never deleted, so a new group has no history to compare with).
async fn insert_groups<W: WriteConn>(
    conn: &mut W,
    groups: &[&GroupRecord],
    now: DateTime<Utc>,
) -> Result<()> {
    static INSERT_GROUPS: LazyLock<Rows> = LazyLock::new(|| {
        Rows::of(&format!(
            "{} RETURNING group_key",
            common::INSERT_GROUP_IF_ABSENT
        ))
    });
    let at = At::new("groups", "(inserted keys)");
    let returned = rows::write(
        conn,
        &INSERT_GROUPS,
        groups,
        |g| &g.group_key,
        |q, g| bind_new_group(q, g),
        Some((&["group_key"], &at)),
    )
    .await?;
    let inserted: HashSet<String> = returned.into_iter().flatten().collect();
    let created: Vec<&GroupRecord> = groups
        .iter()
        .copied()
        .filter(|g| inserted.contains(g.group_key.as_str()))
        .collect();
    super::history::record_new_in(conn, &created, now).await
}

/// How many times a change set is applied when PostgreSQL picks it as a deadlock victim.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// PostgreSQL's `deadlock_detected` (SQLSTATE 40P01).
fn is_deadlock(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(d)) if d.code().as_deref() == Some("40P01"))
}

/// Writes `changes` inside the caller's write transaction (the same statements through sqlx
/// or on SQLite's writer thread, `store::write`).
pub(super) async fn apply_in<W: WriteConn>(
    conn: &mut W,
    changes: &mut ChangeSet,
    now: DateTime<Utc>,
) -> Result<()> {
    common::sorted_for_locking(changes);
    static UPSERT_FINDINGS: LazyLock<Rows> = LazyLock::new(|| Rows::of(common::UPSERT_FINDING));
    rows::write(
        conn,
        &UPSERT_FINDINGS,
        &changes.findings,
        |f| (&f.product_arn, &f.finding_id),
        |q, f| Ok(bind_finding(q, f)),
        NOTHING_RETURNED,
    )
    .await?;
    // Groups in order (an insert before an update of the same group); a run of inserts is
    // written together, and the groups it created get their first history row.
    let mut rest = &changes.groups[..];
    while let Some(first) = rest.first() {
        match first {
            GroupWrite::InsertIfAbsent(_) => {
                let records: Vec<&GroupRecord> = rest
                    .iter()
                    .map_while(|g| match g {
                        GroupWrite::InsertIfAbsent(r) => Some(r),
                        GroupWrite::Update { .. } => None,
                    })
                    .collect();
                rest = &rest[records.len()..];
                insert_groups(conn, &records, now).await?;
            }
            GroupWrite::Update {
                record: r,
                expected_version,
            } => {
                rest = &rest[1..];
                let q = bind_group(conn.stmt(common::UPDATE_GROUP), r)?
                    .ts(r.updated_at)
                    .arg(*expected_version);
                if !write::execute_one(conn, q).await? {
                    return Err(StoreError::Conflict(r.group_key.0.clone()));
                }
                super::history::record_in(conn, r, now).await?;
            }
        }
    }
    // Outcomes before enqueues: a change set that finishes job (k, s) and enqueues a new
    // (k, s) gets a new pending job rather than a no-op against the one being finished.
    for o in &changes.job_outcomes {
        let (id, q) = match o {
            JobOutcome::Done { id, lease_owner } => (
                *id,
                conn.stmt(common::JOB_DONE)
                    .arg(*id)
                    .arg(lease_owner.as_str())
                    .ts(now),
            ),
            JobOutcome::Retry {
                id,
                lease_owner,
                retry_at,
                error,
            } => (
                *id,
                conn.stmt(common::JOB_RETRY)
                    .arg(*id)
                    .arg(lease_owner.as_str())
                    .ts(common::not_before(*retry_at))
                    .arg(error.as_str())
                    .ts(now),
            ),
            JobOutcome::Postpone {
                id,
                lease_owner,
                run_at,
                reason,
            } => (
                *id,
                conn.stmt(common::JOB_POSTPONE)
                    .arg(*id)
                    .arg(lease_owner.as_str())
                    .ts(common::not_before(*run_at))
                    .arg(reason.as_str())
                    .ts(now),
            ),
            JobOutcome::Dead {
                id,
                lease_owner,
                error,
            } => (
                *id,
                conn.stmt(common::JOB_DEAD)
                    .arg(*id)
                    .arg(lease_owner.as_str())
                    .arg(error.as_str())
                    .ts(now),
            ),
            JobOutcome::Requeued { id } => (*id, conn.stmt(common::JOB_REQUEUED).arg(*id).ts(now)),
        };
        if !write::execute_one(conn, q).await? {
            return Err(common::lease_lost(id));
        }
    }
    enqueue_all(conn, &changes.jobs, now).await?;
    for w in &changes.outbox {
        let q = match w {
            OutboxWrite::Add(e) => conn
                .stmt(common::INSERT_EFFECT)
                .arg(e.id.as_str())
                .arg(e.group_key.as_str())
                .json(&e.action)
                .arg(e.source.as_str())
                .ts(now),
            OutboxWrite::Remove(id) => conn.stmt(common::DELETE_EFFECT).arg(id.as_str()),
            OutboxWrite::Clear(key) => conn.stmt(common::CLEAR_OUTBOX).arg(key.as_str()),
            OutboxWrite::Park { id, error } => conn
                .stmt(common::PARK_EFFECT)
                .arg(id.as_str())
                .arg(error.as_str()),
            OutboxWrite::Unpark(id) => conn.stmt(common::UNPARK_EFFECT).arg(id.as_str()),
        };
        conn.execute(q).await?;
    }
    static INSERT_AUDIT: LazyLock<Rows> = LazyLock::new(|| Rows::of(common::INSERT_AUDIT));
    rows::write(
        conn,
        &INSERT_AUDIT,
        &changes.audit,
        // Rows of their own: no key repeats.
        std::ptr::from_ref,
        |q, a| Ok(bind_audit(q, a)),
        NOTHING_RETURNED,
    )
    .await?;
    for (key, value) in &changes.kv {
        let q = conn
            .stmt(common::UPSERT_KV)
            .arg(key.as_str())
            .arg(value.as_str())
            .ts(now);
        conn.execute(q).await?;
    }
    Ok(())
}

/// [`Store::apply`] for a non-empty change set in a write transaction of the store's own kind
/// ([`Dialect::begin_write`]): the path of every dialect without a faster one
/// ([`Dialect::apply`]).
pub(super) async fn apply_tx<D: Dialect>(
    pool: &Pool<D>,
    gate: &D::Gate,
    mut changes: ChangeSet,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut attempt = 1;
    loop {
        let mut tx = D::begin_write(pool, gate).await?;
        let result = apply_in(&mut SqlxConn::<D>(&mut *tx), &mut changes, now).await;
        let result = tx.finish(result).await;
        if !again_after_deadlock(&result, &mut attempt).await {
            return result;
        }
    }
}

/// Whether a change set's write that ended with `result` is applied again: when PostgreSQL
/// chose it as a deadlock victim (another process's change set, another replica's intake
/// batch, enqueued some of the same jobs in another order; nothing was written), at most
/// [`DEADLOCK_ATTEMPTS`] times in all, each after a random pause so that the two do not meet
/// again. (Jobs are enqueued in the order given: ties among due jobs run in that order.)
pub(super) async fn again_after_deadlock<T>(result: &Result<T>, attempt: &mut u32) -> bool {
    match result {
        Err(e) if *attempt < DEADLOCK_ATTEMPTS && is_deadlock(e) => {
            tracing::info!(
                attempt = *attempt,
                "store: deadlock victim; applying the change set again"
            );
            let pause = rand::random_range(10..=50 * u64::from(*attempt));
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            *attempt += 1;
            true
        }
        _ => false,
    }
}

/// The statement recording deliveries, padded ([`rows::write_padded`]); it returns the ids of
/// the deliveries not seen before. SQLite's writer binds the same text.
pub(super) static INSERT_DELIVERIES: LazyLock<Rows> =
    LazyLock::new(|| Rows::of_idempotent(INSERT_DELIVERY));

/// [`INSERT_DELIVERIES`] for one row (PostgreSQL's one-statement batch derives its own from it).
pub(super) const INSERT_DELIVERY: &str = "INSERT INTO deliveries (id, event, body_sha256, body, received_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id";

/// Binds one delivery's row of [`INSERT_DELIVERY`]: the body is kept only when `tracked`.
pub(super) fn bind_delivery<'q, D: Dialect>(
    q: Query<'q, D>,
    d: NewDelivery<'q>,
    tracked: bool,
) -> Query<'q, D> {
    q.arg(d.id)
        .arg(d.event)
        .arg(&d.body_sha256[..])
        .arg(tracked.then_some(d.body))
        .ts(d.received_at)
}

/// A [`Lookup`] through the pool ([`Dialect::lookup`] of every dialect without a faster way).
pub(super) async fn lookup_pooled<D: Dialect, L: Lookup, K: Serialize + Sync>(
    pool: &Pool<D>,
    keys: &[K],
) -> Result<Vec<L::Out>> {
    let mut conn = pool.acquire().await?;
    let rows = D::fetch_all(&mut *conn, sqlx::query(L::sql::<D>()).json(keys)).await?;
    rows.iter().map(|row| L::decode(row, keys.len())).collect()
}

/// The findings whose (`ProductArn`, `Id`) is asked, ordered by that pair.
pub(super) struct FindingsById;

impl Lookup for FindingsById {
    type Out = FindingRecord;
    fn sql<D: Dialect>() -> &'static str {
        D::SELECT_FINDINGS_BY_ID
    }
    fn decode(row: &impl RowExt, _asked: usize) -> Result<FindingRecord> {
        common::finding_from_row(row)
    }
}

/// The groups whose key is asked, ordered by key.
pub(super) struct GroupsByKey;

impl Lookup for GroupsByKey {
    type Out = GroupRecord;
    fn sql<D: Dialect>() -> &'static str {
        D::SELECT_GROUPS_BY_KEY
    }
    fn decode(row: &impl RowExt, _asked: usize) -> Result<GroupRecord> {
        common::group_from_row(row)
    }
}

/// For each (kind, subject) asked with a pending job, its index among those asked and the
/// job's id.
pub(super) struct PendingJobIds;

impl Lookup for PendingJobIds {
    type Out = (usize, i64);
    fn sql<D: Dialect>() -> &'static str {
        D::SELECT_PENDING_JOB_IDS
    }
    fn decode(row: &impl RowExt, asked: usize) -> Result<(usize, i64)> {
        let at = At::new("jobs", "(pending ids)");
        Ok((common::asked_index(row, &at, asked)?, row.int(&at, "id")?))
    }
}

/// [`Store::record_deliveries`] in a write transaction of the store's own kind: the path of
/// every dialect without a faster one ([`Dialect::record_deliveries`]).
pub(super) async fn record_deliveries_tx<D: Dialect>(
    pool: &Pool<D>,
    gate: &D::Gate,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<DeliveryOutcome>> {
    let mut tx = D::begin_write(pool, gate).await?;
    let result = record_deliveries_in::<D>(&mut *tx, deliveries).await;
    tx.finish(result).await
}

/// [`Store::record_deliveries`] inside its transaction: one query decides which deliveries are
/// tracked, then one padded insert per 64 deliveries (and a job per tracked one).
async fn record_deliveries_in<D: Dialect>(
    conn: &mut D::Connection,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<DeliveryOutcome>> {
    let tracked = tracked_issues::<D>(conn, deliveries).await?;
    let firsts = first_occurrences(deliveries);
    write_deliveries::<D>(conn, deliveries, &firsts, &tracked).await
}

/// The deliveries' padded inserts and the jobs of the new tracked ones, given the first
/// occurrences ([`first_occurrences`]) and which are tracked.
pub(super) async fn write_deliveries<D: Dialect>(
    conn: &mut D::Connection,
    deliveries: &[NewDelivery<'_>],
    firsts: &[usize],
    tracked: &[bool],
) -> Result<Vec<DeliveryOutcome>> {
    let at = At::new("deliveries", "(recorded ids)");
    let inserted: HashSet<String> =
        rows::write_padded::<D, _>(conn, &INSERT_DELIVERIES, firsts, |q, &i| {
            Ok(bind_delivery(q, deliveries[i], tracked[i]))
        })
        .await?
        .iter()
        .map(|row| row.text(&at, "id"))
        .collect::<Result<_>>()?;
    let (outcomes, jobs) = delivery_outcomes(deliveries, firsts, tracked, inserted);
    for (job, now) in &jobs {
        enqueue_all(&mut SqlxConn::<D>(conn), std::slice::from_ref(job), *now).await?;
    }
    Ok(outcomes)
}

/// The deliveries of a batch offered to the table, by index: a delivery repeated within the
/// batch (its id, or its body under another id) is a duplicate of its first occurrence, which
/// alone is offered.
pub(super) fn first_occurrences(deliveries: &[NewDelivery<'_>]) -> Vec<usize> {
    let mut ids = HashSet::with_capacity(deliveries.len());
    let mut bodies = HashSet::with_capacity(deliveries.len());
    (0..deliveries.len())
        .filter(|&i| {
            let d = &deliveries[i];
            ids.insert(d.id) & bodies.insert(d.body_sha256)
        })
        .collect()
}

/// Each delivery's outcome, from the first occurrences offered, which deliveries are tracked
/// and the ids the insert returned (the deliveries not seen before); and the `github-event`
/// job of each new tracked delivery, with the time it is enqueued at (its receipt), in order.
pub(super) fn delivery_outcomes(
    deliveries: &[NewDelivery<'_>],
    firsts: &[usize],
    tracked: &[bool],
    mut inserted: HashSet<String>,
) -> (Vec<DeliveryOutcome>, Vec<(NewJob, DateTime<Utc>)>) {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    let mut jobs = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        if firsts.binary_search(&i).is_err() || !inserted.remove(d.id) {
            outcomes.push(DeliveryOutcome::Duplicate);
        } else if tracked[i] {
            let job = Job::GithubEvent(DeliveryId(d.id.to_string()));
            jobs.push((NewJob::new(job, d.received_at), d.received_at));
            outcomes.push(DeliveryOutcome::Tracked);
        } else {
            outcomes.push(DeliveryOutcome::Untracked);
        }
    }
    (outcomes, jobs)
}

/// The lifecycle deliveries of a batch that name an issue, as (index in `deliveries`, (repo,
/// number)): what [`Dialect::SELECT_TRACKED_ISSUES`] is asked about (a number beyond i64 is no
/// issue Lever owns).
pub(super) fn asked_issues<'a>(deliveries: &[NewDelivery<'a>]) -> Vec<(usize, (&'a str, i64))> {
    (deliveries.iter().enumerate())
        .filter_map(|(i, d)| {
            let issue = d.issue?;
            Some((i, (issue.repo, i64::try_from(issue.number).ok()?)))
        })
        .collect()
}

/// Which of `deliveries` concern an issue a group owns, with one query for all of them.
pub(super) async fn tracked_issues<D: Dialect>(
    conn: &mut D::Connection,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<bool>> {
    let mut tracked = vec![false; deliveries.len()];
    let asked = asked_issues(deliveries);
    if asked.is_empty() {
        return Ok(tracked);
    }
    let pairs: Vec<(&str, i64)> = asked.iter().map(|(_, pair)| *pair).collect();
    let rows = D::fetch_all(conn, sqlx::query(D::SELECT_TRACKED_ISSUES).json(&pairs)).await?;
    let at = At::new("groups", "(tracked issues)");
    for row in &rows {
        tracked[asked[common::asked_index(row, &at, asked.len())?].0] = true;
    }
    Ok(tracked)
}

/// The audit query for `filter`: only the conditions it sets, so the indexes serve it.
fn audit_query<D: Dialect>(filter: &AuditFilter) -> Query<'static, D> {
    let mut sql = String::from(concat!("SELECT ", audit_cols!(), " FROM audit WHERE 1 = 1"));
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if filter.issue.is_some() {
        sql += &format!(" AND lower(issue) = lower(${})", next());
    }
    if filter.group_key.is_some() {
        sql += &format!(" AND group_key = ${}", next());
    }
    if filter.since.is_some() {
        sql += &format!(" AND at >= ${}", next());
    }
    sql += " ORDER BY seq";
    if filter.limit.is_some() {
        sql += &format!(" LIMIT ${}", next());
    }
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(issue) = &filter.issue {
        q = q.arg(issue.as_str());
    }
    if let Some(key) = &filter.group_key {
        q = q.arg(key.as_str());
    }
    if let Some(since) = filter.since {
        q = q.ts(since);
    }
    if let Some(limit) = filter.limit {
        q = q.arg(i64::from(limit));
    }
    q
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        D::migrate(&self.pool, &self.gate).await
    }

    async fn ping(&self) -> Result<()> {
        self.fetch_optional(sqlx::query("SELECT 1")).await?;
        Ok(())
    }

    fn shared_commits(&self) -> Option<CombineStats> {
        D::shared_commits(&self.gate)
    }

    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        D::apply(&self.pool, &self.gate, changes, now).await
    }

    async fn apply_then_pending_ids(
        &self,
        changes: ChangeSet,
        now: DateTime<Utc>,
        jobs: &[Job],
    ) -> Result<Result<Vec<Option<i64>>>> {
        if !changes.is_empty()
            && let Some(ids) =
                D::apply_telling_ids(&self.pool, &self.gate, changes, now, jobs).await?
        {
            return Ok(Ok(ids));
        }
        Ok(self.pending_job_ids(jobs).await)
    }

    async fn record_deliveries(
        &self,
        deliveries: &[NewDelivery<'_>],
    ) -> Result<Vec<DeliveryOutcome>> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        D::record_deliveries(&self.pool, &self.gate, deliveries).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let row = self
            .fetch_optional(sqlx::query(common::SELECT_DELIVERY).arg(id))
            .await?;
        row.as_ref().map(common::delivery_from_row).transpose()
    }

    async fn findings(&self, ids: &[(String, String)]) -> Result<Vec<FindingRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        D::lookup::<FindingsById, _>(&self.pool, &self.gate, ids).await
    }

    async fn findings_in_group(&self, group: &GroupKey) -> Result<Vec<FindingRecord>> {
        let q = sqlx::query(common::SELECT_FINDINGS_IN_GROUP).arg(group.as_str());
        let rows = self.fetch_all(q).await?;
        common::decode_all(&rows, common::finding_from_row)
    }

    async fn ungrouped_findings(&self, account_id: Option<&str>) -> Result<Vec<FindingRecord>> {
        let q = match account_id {
            Some(id) => sqlx::query(common::SELECT_UNGROUPED_FINDINGS).arg(id),
            None => sqlx::query(common::SELECT_ALL_UNGROUPED_FINDINGS),
        };
        let rows = self.fetch_all(q).await?;
        common::decode_all(&rows, common::finding_from_row)
    }

    async fn group(&self, key: &GroupKey) -> Result<Option<GroupRecord>> {
        let q = sqlx::query(common::SELECT_GROUP).arg(key.as_str());
        let row = self.fetch_optional(q).await?;
        row.as_ref().map(common::group_from_row).transpose()
    }

    async fn outbox(&self, group: &GroupKey) -> Result<Vec<Effect>> {
        let q = sqlx::query(common::SELECT_OUTBOX).arg(group.as_str());
        let rows = self.fetch_all(q).await?;
        common::decode_all(&rows, common::effect_from_row)
    }

    async fn parked_effects(&self) -> Result<Vec<(Effect, String)>> {
        let rows = self
            .fetch_all(sqlx::query(common::SELECT_PARKED_EFFECTS))
            .await?;
        common::decode_all(&rows, |row| {
            let effect = common::effect_from_row(row)?;
            let at = common::At::new("outbox", format!("{:?}", effect.id));
            let error = row.text(&at, "parked_error")?;
            Ok((effect, error))
        })
    }

    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<GroupRecord>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        D::lookup::<GroupsByKey, _>(&self.pool, &self.gate, keys).await
    }

    async fn pending_job_ids(&self, jobs: &[Job]) -> Result<Vec<Option<i64>>> {
        let mut ids = vec![None; jobs.len()];
        if jobs.is_empty() {
            return Ok(ids);
        }
        let pairs: Vec<(&str, &str)> = jobs.iter().map(|j| (j.kind(), j.subject())).collect();
        for (k, id) in D::lookup::<PendingJobIds, _>(&self.pool, &self.gate, &pairs).await? {
            ids[k] = Some(id);
        }
        Ok(ids)
    }

    async fn group_by_issue(&self, repo: &str, number: u64) -> Result<Option<GroupRecord>> {
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        let q = sqlx::query(common::SELECT_GROUP_BY_ISSUE)
            .arg(repo)
            .arg(number);
        let row = self.fetch_optional(q).await?;
        row.as_ref().map(common::group_from_row).transpose()
    }

    async fn list_groups(&self, status: Option<GroupStatus>) -> Result<Vec<GroupRecord>> {
        let q = sqlx::query(common::SELECT_GROUPS_BY_STATUS).arg(status.map(GroupStatus::as_str));
        let rows = self.fetch_all(q).await?;
        common::decode_all(&rows, common::group_from_row)
    }

    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        let q = sqlx::query(D::lease_job_sql())
            .arg(owner)
            .ts(common::lease_end(now, lease_for))
            .ts(now);
        D::lease(&self.pool, &self.gate, q).await
    }

    async fn lease_job_id(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(common::lease_job_id_sql);
        let q = sqlx::query(SQL.as_str())
            .arg(owner)
            .ts(common::lease_end(now, lease_for))
            .ts(now)
            .arg(id);
        D::lease(&self.pool, &self.gate, q).await
    }

    async fn renew_lease(
        &self,
        id: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let mut conn = SqlxConn::<D>(&mut *tx);
        let q = conn
            .stmt(common::RENEW_LEASE)
            .arg(id)
            .arg(owner)
            .ts(until)
            .ts(now);
        let result = write::execute_one(&mut conn, q).await;
        tx.finish(result).await
    }

    async fn prune(
        &self,
        jobs_before: DateTime<Utc>,
        deliveries_before: DateTime<Utc>,
    ) -> Result<Pruned> {
        let mut tx = self.write_tx().await?;
        let result = async {
            let jobs =
                D::execute(&mut *tx, sqlx::query(common::PRUNE_JOBS).ts(jobs_before)).await?;
            let deliveries = D::execute(
                &mut *tx,
                sqlx::query(common::PRUNE_DELIVERIES).ts(deliveries_before),
            )
            .await?;
            Ok(Pruned {
                jobs: D::rows_affected(&jobs),
                deliveries: D::rows_affected(&deliveries),
            })
        }
        .await;
        tx.finish(result).await
    }

    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRecord>> {
        let q = sqlx::query(common::SELECT_JOBS_BY_STATE).arg(state.map(JobState::as_str));
        let rows = self.fetch_all(q).await?;
        common::decode_all(&rows, common::job_from_row)
    }

    async fn next_job_at(&self) -> Result<Option<DateTime<Utc>>> {
        let row = self
            .fetch_optional(sqlx::query(D::next_job_at_sql()))
            .await?;
        let at = At::new("jobs", "(next run)");
        Ok(row.map(|r| r.opt_ts(&at, "next_at")).transpose()?.flatten())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>> {
        let rows = self
            .fetch_all(sqlx::query(common::QUEUE_STATS).ts(now))
            .await?;
        common::decode_all(&rows, common::queue_stats_from_row)
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = self.fetch_all(audit_query::<D>(filter)).await?;
        common::decode_all(&rows, common::audit_from_row)
    }

    async fn take_issue_slot(
        &self,
        product: &str,
        group: &GroupKey,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<IssueSlot> {
        let mut tx = self.write_tx().await?;
        let result =
            super::noise::take_slot_in::<D>(&mut *tx, product, group, limit, window, now).await;
        tx.finish(result).await
    }

    async fn noise_ledger(&self, product: &str, since: DateTime<Utc>) -> Result<NoiseLedger> {
        let opened = self
            .fetch_all(super::noise::opened_query::<D>(product, since))
            .await?;
        let held = self
            .fetch_all(super::noise::held_query::<D>(product))
            .await?;
        Ok(NoiseLedger {
            opened: common::decode_all(&opened, super::noise::entry_from_row::<D>)?,
            held: common::decode_all(&held, super::noise::entry_from_row::<D>)?,
        })
    }

    async fn noise_held(&self) -> Result<Vec<NoiseEntry>> {
        let rows = self.fetch_all(super::noise::all_held_query::<D>()).await?;
        common::decode_all(&rows, super::noise::entry_from_row::<D>)
    }

    async fn ignore_tags(&self) -> Result<(Vec<IgnoredResource>, Option<DateTime<Utc>>)> {
        let rows = self.fetch_all(super::tags::select_query::<D>()).await?;
        let resources = common::decode_all(&rows, super::tags::from_row::<D>)?;
        let at = match self.kv_get(super::tags::AUDITED_AT).await? {
            Some(v) => Some(
                DateTime::parse_from_rfc3339(&v)
                    .map_err(|e| {
                        At::new("kv", format!("{:?}", super::tags::AUDITED_AT))
                            .corrupt("value", format!("not an RFC 3339 instant: {e}"))
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        Ok((resources, at))
    }

    async fn group_history(&self, since: DateTime<Utc>) -> Result<Vec<HistoryRow>> {
        let rows = self
            .fetch_all(super::history::since_query::<D>(since))
            .await?;
        common::decode_all(&rows, super::history::from_row::<D>)
    }

    async fn record_ignore_tags(
        &self,
        resources: &[IgnoredResource],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let result = super::tags::record_in::<D>(&mut *tx, resources, now).await;
        tx.finish(result).await
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let row = self
            .fetch_optional(sqlx::query(common::SELECT_KV).arg(key))
            .await?;
        row.map(|r| r.text(&At::new("kv", format!("{key:?}")), "value"))
            .transpose()
    }

    async fn take_github_permit(
        &self,
        installation: u64,
        now: DateTime<Utc>,
        period: std::time::Duration,
        burst: u32,
    ) -> Result<Option<NotBefore>> {
        let id = i64::try_from(installation).unwrap_or(i64::MAX);
        let now_us = common::micros(now);
        let period_us = i64::try_from(period.as_micros())
            .unwrap_or(i64::MAX / 4)
            .max(1);
        let tolerance_us = period_us.saturating_mul(i64::from(burst.max(1)));
        let mut tx = self.write_tx().await?;
        let result = async {
            D::execute(&mut *tx, sqlx::query(common::PACING_ROW).arg(id)).await?;
            let mut conn = SqlxConn::<D>(&mut *tx);
            let q = conn
                .stmt(common::PACING_TAKE)
                .arg(id)
                .arg(now_us)
                .arg(period_us)
                .arg(tolerance_us);
            if write::execute_one(&mut conn, q).await? {
                return Ok(None);
            }
            let row = D::fetch_optional(&mut *tx, sqlx::query(common::PACING_SELECT).arg(id))
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "github_pacing: no row for installation {installation}"
                    ))
                })?;
            let at = At::new("github_pacing", installation.to_string());
            let tat = row.int(&at, "tat_us")?;
            let paused = row.opt_int(&at, "paused_until_us")?.filter(|p| *p > now_us);
            let next = tat.max(now_us) + period_us - tolerance_us;
            Ok(Some(match paused {
                Some(p) => NotBefore {
                    at: common::from_micros(p.max(next)),
                    paused: true,
                },
                None => NotBefore {
                    at: common::from_micros(next),
                    paused: false,
                },
            }))
        }
        .await;
        tx.finish(result).await
    }

    async fn pause_github(&self, installation: u64, until: DateTime<Utc>) -> Result<()> {
        let id = i64::try_from(installation).unwrap_or(i64::MAX);
        let mut tx = self.write_tx().await?;
        let q = sqlx::query(common::PACING_PAUSE)
            .arg(id)
            .arg(common::micros(until));
        let result = D::execute(&mut *tx, q)
            .await
            .map(|_| ())
            .map_err(Into::into);
        tx.finish(result).await
    }

    async fn github_paused_until(&self, installation: u64) -> Result<Option<DateTime<Utc>>> {
        let id = i64::try_from(installation).unwrap_or(i64::MAX);
        let row = self
            .fetch_optional(sqlx::query(common::PACING_SELECT).arg(id))
            .await?;
        let at = At::new("github_pacing", installation.to_string());
        Ok(row
            .map(|r| r.opt_int(&at, "paused_until_us"))
            .transpose()?
            .flatten()
            .map(common::from_micros))
    }
}
