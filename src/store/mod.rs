//! Durable state: findings, issue groups, jobs, deliveries, audit trail.
//!
//! One [`Store`] trait, one SQL implementation ([`SqlStore`]) over two dialects: SQLite
//! (embedded default, one replica) and PostgreSQL (several replicas sharing one database).
//! Every method takes `now` from the caller: the store never reads a clock, so tests can drive
//! time.
//!
//! Writes that belong together go through [`Store::apply`] as one [`ChangeSet`], committed in
//! one transaction: a finding update, the group it creates, the job that will open the issue,
//! the audit entry and the completion of the job that produced them either all happen or none.
//!
//! Times are stored with microsecond precision on both backends (finer parts are truncated):
//! TIMESTAMPTZ on PostgreSQL, INTEGER microseconds since the Unix epoch on SQLite.

mod combine;
pub use combine::CombineStats;
mod common;
mod dialect;
mod history;
mod job;
mod noise;
mod postgres;
mod postgres_lean;
mod rows;
mod sql;
mod sqlite;
mod sqlite_reader;
mod sqlite_writer;
mod tags;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

use crate::domain::lifecycle::{Action, State};
use crate::domain::tags::IgnoredResource;
use crate::domain::{
    ComplianceStatus, Finding, GroupKey, LeverWrite, RecordState, Severity, StableKey,
    WorkflowStatus, string_codes,
};
use crate::routing::Route;

pub use history::{HistoryRow, HistoryState};
pub use job::{DeliveryId, Job, KNOWN_KINDS};
pub use postgres::PostgresStore;
pub use sql::SqlStore;
pub use sqlite::{SqliteStore, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A group was changed by someone else since it was read (optimistic concurrency): holds
    /// the group key. Also returned, as `job:<id>`, when a [`JobOutcome`] names a job whose
    /// lease the caller no longer holds.
    #[error("conflict: {0} was modified concurrently")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The write transaction this write shared with others (`store::combine`) did not commit;
    /// nothing of the write was kept. Holds why.
    #[error("the shared write transaction did not commit: {0}")]
    SharedCommit(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// SQLite's writer (`store::sqlite_writer`) could not run a batch: nothing of it
    /// was written. Holds why.
    #[error("the SQLite writer failed: {0}")]
    SqliteWriter(String),
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Latest snapshot of one ASFF finding (keyed by `ProductArn` + `Id`, as Security Hub keys it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub product_arn: String,
    pub finding_id: String,
    pub stable_key: StableKey,
    pub group_key: GroupKey,
    pub account_id: String,
    pub severity: Severity,
    pub compliance: Option<ComplianceStatus>,
    pub record_state: RecordState,
    pub workflow: WorkflowStatus,
    /// ASFF `UpdatedAt`, verbatim.
    pub updated_at: Option<String>,
    /// Hash of what makes an update news (severity, compliance, record state, resources).
    pub fingerprint: String,
    pub finding: Finding,
    /// What Lever wrote to the finding with BatchUpdateFindings (its latest writes, oldest
    /// first), recorded when it wrote: how its own echoes are recognised. Stored with the
    /// finding in the `data` JSON (no column of its own).
    #[serde(default)]
    pub lever_writes: Vec<LeverWrite>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// The `data` column of a finding: the ASFF finding as Lever parsed it, plus what Lever wrote
/// to it (absent in rows written before Lever recorded its writes).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FindingData<F> {
    #[serde(flatten)]
    pub finding: F,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lever_writes: Vec<LeverWrite>,
}

/// Where an issue group stands. The lifecycle state machine owns the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum GroupStatus {
    /// Decided to open an issue; the worker has not created it yet.
    Pending,
    /// The issue exists and is open.
    Open,
    /// The issue is closed.
    Closed,
}

string_codes!(GroupStatus, JobState);

/// One issue group: the unit that owns a GitHub issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub group_key: GroupKey,
    /// `owner/repo` the issue lives (or will live) in.
    pub repo: String,
    pub issue_number: Option<u64>,
    pub issue_url: Option<String>,
    pub status: GroupStatus,
    /// The one person who owns the issue now.
    pub assignee: Option<String>,
    /// Everything else the domain keeps about the group, typed; stored as one JSON document
    /// (a blob that does not decode is [`StoreError::Corrupt`], like any bad column).
    pub data: GroupData,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every update; [`GroupWrite::Update`] checks it.
    pub version: i64,
}

/// What Lever keeps about a group beyond its columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupData {
    /// Where the issue goes and who owns it, decided when the group was made (and updated when
    /// the issue was rerouted, e.g. away from a public repository).
    pub route: Route,
    pub account_id: String,
    /// The account's environment and mode when the group was made (informational).
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub mode: String,
    pub severity: Severity,
    #[serde(default)]
    pub control_id: Option<String>,
    #[serde(default)]
    pub title: String,
    /// Why the policy ticketed it.
    #[serde(default)]
    pub reason: String,
    /// The lifecycle state once the issue exists; `None` while it is pending.
    #[serde(default)]
    pub lifecycle: Option<State>,
    /// The URL of a deleted issue this group's next issue replaces.
    #[serde(default)]
    pub recreated_from: Option<String>,
    /// The issue's `updated_at` in the latest webhook applied to it: a delivery about the
    /// issue that is older changes nothing (late or replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    /// Why the group's next issue opens in the fallback repository: the App can no longer
    /// reach the repository its issue lived in (see `worker::reroute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reroute: Option<Reroute>,
}

/// The repository of a group's issue refuses Lever (the App uninstalled or suspended there, the
/// issue transferred to a repository without the App): the next issue opens in the fallback
/// repository, its body saying why and linking the issue Lever can no longer reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reroute {
    /// The repository (`owner/repo`) that refuses Lever.
    pub repo: String,
    /// The issue Lever can no longer reach (its URL), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Why, in words (what GitHub answered, or what its webhook said).
    pub reason: String,
}

impl GroupRecord {
    /// The lifecycle state (a group opened before the state existed gets one derived from its
    /// status).
    pub fn state(&self) -> State {
        self.data.lifecycle.clone().unwrap_or_else(|| State {
            open: self.status == GroupStatus::Open,
            assignee: self.assignee.clone(),
            ..State::default()
        })
    }
}

/// One effect waiting in a group's outbox: a row of its own, performed by a
/// [`Job::ApplyEffects`] and removed once done, so one effect's success or failure never
/// rewrites the group or the other effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// Unique; a comment carries it in a hidden marker so a retry never posts twice.
    pub id: String,
    pub group_key: GroupKey,
    pub action: Action,
    /// The event that caused it (`github:<delivery>`, `job:<id>`).
    pub source: String,
}

/// How a change set writes the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxWrite {
    /// Append an effect (performed after the ones already waiting for its group).
    Add(Effect),
    /// An effect was performed (or can never apply): remove it by id.
    Remove(String),
    /// Drop every waiting effect of a group (its issue is being recreated).
    Clear(GroupKey),
    /// An effect that cannot be performed: kept aside with the reason (listed by
    /// `lever jobs --failed`), out of the group's outbox, so the effects after it still run.
    Park { id: String, error: String },
    /// A parked effect handed back to its group's outbox (in its old place).
    Unpark(String),
}

/// How a change set writes a group.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupWrite {
    /// Insert if no group with this key exists (stored with `record.version` as given);
    /// otherwise leave the existing one untouched.
    InsertIfAbsent(GroupRecord),
    /// Replace the group if its stored version still equals `expected_version` (then the stored
    /// version becomes `expected_version + 1`); otherwise the whole change set fails with
    /// [`StoreError::Conflict`]. The stored `created_at` is kept; `record.version` is ignored.
    Update {
        record: GroupRecord,
        expected_version: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum JobState {
    Pending,
    Done,
    /// Gave up after too many attempts; kept for operators.
    Dead,
}

/// A job to enqueue. At most one *pending* job exists per (kind, subject): enqueueing a
/// duplicate is a no-op (the earlier `run_at` is kept). Precisely: the pending job keeps its
/// id, attempts and lease; only when the duplicate's `run_at` is earlier does the
/// pending job's `run_at` move to it (never later). A job that is leased (running) is still
/// pending, so a duplicate enqueued while it runs merges into it *and asks for a re-run*:
/// when the running job finishes `Done`, it stays pending (attempts reset, due at once)
/// instead of becoming `done`, so news that arrived during the run is never dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewJob {
    pub job: Job,
    pub run_at: DateTime<Utc>,
    /// Only when no pending job of this (kind, subject) exists; a pending one is left exactly
    /// as it is (its backoff holds, no re-run is asked).
    pub if_absent: bool,
}

impl NewJob {
    pub fn new(job: Job, run_at: DateTime<Utc>) -> NewJob {
        NewJob {
            job,
            run_at,
            if_absent: false,
        }
    }

    /// See [`NewJob::if_absent`](NewJob#structfield.if_absent).
    pub fn if_absent(job: Job, run_at: DateTime<Utc>) -> NewJob {
        NewJob {
            job,
            run_at,
            if_absent: true,
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub job: Job,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What happens to a leased job, as part of a change set. Only the current lease holder may
/// finish a job: if the lease was lost (expired and taken over), the whole change set fails
/// with [`StoreError::Conflict`].
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done {
        id: i64,
        lease_owner: String,
    },
    /// Release the lease and run again at `retry_at` (attempts were counted at lease time).
    Retry {
        id: i64,
        lease_owner: String,
        retry_at: DateTime<Utc>,
        error: String,
    },
    /// Not run now for a reason outside the job (GitHub's limits, see `github::pacing`):
    /// release the lease and run at `run_at`, and give back the attempt the lease counted, so
    /// waiting for a budget never brings a job closer to being given up. `reason` is kept as
    /// the last error.
    Postpone {
        id: i64,
        lease_owner: String,
        run_at: DateTime<Utc>,
        reason: String,
    },
    /// Give up: state becomes `dead` (the job is *parked*: listed by `lever jobs --failed`),
    /// the error is kept.
    Dead {
        id: i64,
        lease_owner: String,
        error: String,
    },
    /// An operator (`lever jobs retry`) or new evidence hands a parked job back: the parked
    /// row is kept for history (state `done`, error prefixed `retried: `) and the same change
    /// set enqueues the job anew. Fails with [`StoreError::Conflict`] unless the job is parked.
    Requeued {
        id: i64,
    },
}

/// One line of the append-only audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store; ignored on insert.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// Who caused it: a GitHub login, `lever` for the app itself, `securityhub` for findings.
    pub actor: String,
    /// What happened, a stable kebab-case code (`issue-opened`, `finding-updated`).
    pub action: String,
    /// The group key it concerns.
    pub group_key: Option<GroupKey>,
    /// `owner/repo#N` once the group has an issue.
    pub issue: Option<String>,
    /// The event it came from (`github:<delivery id>`, `eventbridge:<event id>`, `job:<id>`).
    pub source: Option<String>,
    pub detail: serde_json::Value,
}

/// A recorded inbound delivery (GitHub webhook or EventBridge event), as [`Store::delivery`]
/// reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `github:<X-GitHub-Delivery>` or `eventbridge:<event id>`.
    pub id: String,
    /// `X-GitHub-Event` with the payload's action (`issues.labeled`), or the EventBridge
    /// `detail-type`.
    pub event: String,
    /// SHA-256 of the body as received; `None` for deliveries recorded before migration 0003.
    pub body_sha256: Option<[u8; 32]>,
    /// The body as received, kept only for a delivery about an issue Lever tracks (its
    /// `github-event` job reads it). A delivery recorded before migration 0003 with a pending
    /// or dead `github-event` job keeps its stored JSON payload here, as UTF-8 JSON text.
    pub body: Option<Vec<u8>>,
    pub received_at: DateTime<Utc>,
}

/// A verified delivery to record (see [`Store::record_deliveries`]), borrowed from the request
/// that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDelivery<'a> {
    /// `github:<X-GitHub-Delivery>`.
    pub id: &'a str,
    /// `issues.labeled`, `ping`, ... (see [`Delivery::event`]).
    pub event: &'a str,
    /// The body as received: stored only when the delivery is tracked.
    pub body: &'a [u8],
    /// SHA-256 of `body`: always stored.
    pub body_sha256: &'a [u8; 32],
    /// The issue a lifecycle event is about; `None` for any other delivery (never tracked).
    pub issue: Option<IssueRef<'a>>,
    pub received_at: DateTime<Utc>,
}

/// An issue: `owner/repo` (compared case-insensitively) and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueRef<'a> {
    pub repo: &'a str,
    pub number: u64,
}

/// What [`Store::record_deliveries`] made of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum DeliveryOutcome {
    /// Recorded with its body and a `github-event` job: a group owns its issue.
    Tracked,
    /// Recorded without its body (id, event, digest, time: enough to deduplicate).
    Untracked,
    /// A delivery with this id, or with this body (its SHA-256), was recorded before (or
    /// earlier in the same batch): nothing changed.
    Duplicate,
}

/// Writes committed together in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    pub findings: Vec<FindingRecord>,
    pub groups: Vec<GroupWrite>,
    pub jobs: Vec<NewJob>,
    pub job_outcomes: Vec<JobOutcome>,
    pub outbox: Vec<OutboxWrite>,
    pub audit: Vec<AuditEntry>,
    /// Key/value settings such as the sync cursor.
    pub kv: Vec<(String, String)>,
}

impl ChangeSet {
    /// Appends `other`'s writes after this set's own (same commit, same order rules).
    pub fn merge(&mut self, other: ChangeSet) {
        self.findings.extend(other.findings);
        self.groups.extend(other.groups);
        self.jobs.extend(other.jobs);
        self.job_outcomes.extend(other.job_outcomes);
        self.outbox.extend(other.outbox);
        self.audit.extend(other.audit);
        self.kv.extend(other.kv);
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.groups.is_empty()
            && self.jobs.is_empty()
            && self.job_outcomes.is_empty()
            && self.outbox.is_empty()
            && self.audit.is_empty()
            && self.kv.is_empty()
    }
}

/// The job queue of one kind, as [`Store::queue_stats`] counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// The job kind as stored (possibly one this version does not know).
    pub kind: String,
    /// Pending jobs (due or not, leased or not).
    pub pending: u64,
    /// Pending jobs whose `run_at` has come (`run_at <= now`), leased or not.
    pub due: u64,
    /// Parked jobs (state `dead`).
    pub parked: u64,
    /// The earliest `run_at` of a due job.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub jobs: u64,
    pub deliveries: u64,
}

/// Filter for [`Store::audit`]; entries come back in ascending `seq`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// `owner/repo#N`, compared case-insensitively.
    pub issue: Option<String>,
    pub group_key: Option<GroupKey>,
    /// Only entries with `at >= since`.
    pub since: Option<DateTime<Utc>>,
    /// At most this many entries: the first ones in `seq` order.
    pub limit: Option<u32>,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Creates missing tables; safe to run on every start and from several replicas at once.
    async fn migrate(&self) -> Result<()>;

    /// Cheap round trip to the database.
    async fn ping(&self) -> Result<()>;

    /// How this process's writes shared commits on SQLite (`store::combine`), for
    /// `/metrics`; `None` where every write commits on its own (PostgreSQL).
    fn shared_commits(&self) -> Option<CombineStats> {
        None
    }

    /// Commits everything in `changes` atomically (see [`GroupWrite`] and [`JobOutcome`] for
    /// the conflict rules). Order within the transaction: findings (upserted), groups, job
    /// outcomes, new jobs, outbox writes (in order), audit entries, kv. Outcomes come before new jobs, so finishing job
    /// (kind, subject) and enqueueing a follow-up with the same (kind, subject) in one change
    /// set leaves a new pending job. New jobs get `created_at = updated_at = now`.
    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()>;

    /// [`apply`](Store::apply), then the ids of the pending jobs of `jobs` as
    /// [`pending_job_ids`](Store::pending_job_ids) answers right after the commit: the outer
    /// result is the write's, the inner one the ids' (a write that committed is not undone by
    /// a failed read). A store may answer from the write itself, saving the read (PostgreSQL's
    /// one-statement intake: the ids its enqueues return).
    async fn apply_then_pending_ids(
        &self,
        changes: ChangeSet,
        now: DateTime<Utc>,
        jobs: &[Job],
    ) -> Result<Result<Vec<Option<i64>>>> {
        self.apply(changes, now).await?;
        Ok(self.pending_job_ids(jobs).await)
    }

    /// Records a batch of verified deliveries in one transaction, in order, and says what
    /// became of each (one [`DeliveryOutcome`] per delivery, same order). Whether a delivery is
    /// tracked (a group owns its [`NewDelivery::issue`]) is decided inside that transaction,
    /// with one query for the whole batch, so a group another replica committed just before
    /// counts. A tracked delivery keeps its body and gets a `github-event` job due at its
    /// `received_at`; an untracked one keeps only its id, event, digest and time. A delivery
    /// whose id or body digest was recorded before, or earlier in the same batch, is a
    /// [`DeliveryOutcome::Duplicate`] and changes nothing (the first one wins): a signed body
    /// replayed under a fresh `X-GitHub-Delivery` is a duplicate. All or nothing:
    /// on error none of the batch is recorded.
    async fn record_deliveries(
        &self,
        deliveries: &[NewDelivery<'_>],
    ) -> Result<Vec<DeliveryOutcome>>;

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>>;

    /// Snapshots of the given (`ProductArn`, `Id`) pairs that exist.
    async fn findings(&self, ids: &[(String, String)]) -> Result<Vec<FindingRecord>>;

    async fn findings_in_group(&self, group: &GroupKey) -> Result<Vec<FindingRecord>>;

    /// The snapshots of `account_id` (`None`: of every account) whose group does not exist
    /// (findings policy skipped, or that are still settling), ordered by (`ProductArn`, `Id`):
    /// what a widened policy may now open (the ramp-up backfill).
    async fn ungrouped_findings(&self, account_id: Option<&str>) -> Result<Vec<FindingRecord>>;

    async fn group(&self, key: &GroupKey) -> Result<Option<GroupRecord>>;

    /// The effects waiting in a group's outbox, oldest first (parked ones aside).
    async fn outbox(&self, group: &GroupKey) -> Result<Vec<Effect>>;

    /// Parked effects with the reason they could not be performed, oldest first.
    async fn parked_effects(&self) -> Result<Vec<(Effect, String)>>;

    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<GroupRecord>>;

    /// The id of each job's pending row (at most one per kind and subject), in the order of
    /// `jobs`; `None` where none is pending.
    async fn pending_job_ids(&self, jobs: &[Job]) -> Result<Vec<Option<i64>>>;

    /// The group that owns issue `number` in `repo` (`owner/repo`, compared case-insensitively).
    async fn group_by_issue(&self, repo: &str, number: u64) -> Result<Option<GroupRecord>>;

    /// All groups, optionally only those with the given status, ordered by key.
    async fn list_groups(&self, status: Option<GroupStatus>) -> Result<Vec<GroupRecord>>;

    /// Leases the next due pending job (`run_at <= now`, no live lease) for `lease_for`,
    /// counting one attempt. Two callers never lease the same job at the same time; a job
    /// whose lease expired (its runner died) is leased again. Earliest `run_at` first, then
    /// lowest id. A lease ends at `lease_expires = now + lease_for`: from that instant on
    /// (`lease_expires <= now`) the job can be leased again. Only kinds in [`KNOWN_KINDS`] are
    /// leased: during a rolling upgrade an older replica leaves the kinds it does not know to
    /// the newer ones (it never fails them).
    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>>;

    /// [`Store::lease_job`] for job `id`, due or not: `None` when it is not pending, or under a
    /// live lease. For GitHub's content queue (`github::pacing`): the job whose turn came is
    /// leased by the process that woke it, rather than at its fallback time.
    async fn lease_job_id(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>>;

    /// Extends the lease of a running job to `until` while `owner` still holds it; `false`
    /// when another worker took it over (or it finished).
    async fn renew_lease(
        &self,
        id: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Deletes finished (`done`) jobs last updated before `jobs_before` and deliveries received
    /// before `deliveries_before` that no pending or parked job needs; the audit trail is
    /// never pruned.
    async fn prune(
        &self,
        jobs_before: DateTime<Utc>,
        deliveries_before: DateTime<Utc>,
    ) -> Result<Pruned>;

    /// Jobs in the given state (all states when `None`), oldest first. For operators and tests.
    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRecord>>;

    /// The earliest `run_at` of a pending job of a known kind, so a worker can sleep until then. For a pending
    /// job under a live lease this is the lease's end when that is later (the job cannot be
    /// leased before), so an idle worker does not spin on a job another worker is running.
    async fn next_job_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// The queue per job kind at `now` (kinds with neither a pending nor a parked job are left
    /// out), ordered by kind: what `/metrics` shows as the queue's depth and age. One read.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>>;

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;

    async fn kv_get(&self, key: &str) -> Result<Option<String>>;

    /// GitHub pacing shared by every replica on this database (`github::pacing`): takes one
    /// permit of `installation`'s content budget, a GCRA with `period` and `burst`, unless the
    /// installation is paused at `now`. `None` when the permit is taken; otherwise the earliest
    /// time one could be (the pause's end, or the next permit).
    async fn take_github_permit(
        &self,
        installation: u64,
        now: DateTime<Utc>,
        period: std::time::Duration,
        burst: u32,
    ) -> Result<Option<NotBefore>>;

    /// Pauses every replica's calls for `installation` until `until` (a later pause wins).
    async fn pause_github(&self, installation: u64, until: DateTime<Utc>) -> Result<()>;

    /// Until when `installation` is paused, as any replica recorded it (possibly in the past).
    async fn github_paused_until(&self, installation: u64) -> Result<Option<DateTime<Utc>>>;

    /// The noise cap: asks for a slot to open a new issue of `group` for `product` (the
    /// repository it opens in, lowercase) at `now`, when at most `limit` new issues of a
    /// product may open per `window`. In one transaction, serialized per product across
    /// processes: rows of issues opened before `now - window` are forgotten; a group that took
    /// a slot within the window keeps it (a retry is not counted twice); otherwise, with fewer
    /// than `limit` issues opened within the window, the group takes a slot
    /// ([`IssueSlot::Granted`], counted from `now`); else it is recorded as held (since its
    /// first refusal) and [`IssueSlot::Held`] lists when the issues in the window opened.
    async fn take_issue_slot(
        &self,
        product: &str,
        group: &GroupKey,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<IssueSlot>;

    /// What the noise cap knows of `product`: the issues opened since `since` and the groups
    /// held back (those the cap ever refused and that have not taken a slot since).
    async fn noise_ledger(&self, product: &str, since: DateTime<Utc>) -> Result<NoiseLedger>;

    /// Every group held back by the noise cap, of every product (for `lever jobs backlog`).
    async fn noise_held(&self) -> Result<Vec<NoiseEntry>>;

    /// The tag audit's snapshot as the last [`Store::record_ignore_tags`] left it (ordered by
    /// ARN), and when that audit ran (`None`: no audit yet).
    async fn ignore_tags(&self) -> Result<(Vec<IgnoredResource>, Option<DateTime<Utc>>)>;

    /// The group history a period starting at `since` needs (see `store::history`): every row
    /// of every group that has a row at or after `since` or is not closed now, ordered by
    /// group key then `seq` (the order the changes committed). A group absent from the answer
    /// was closed (or suppressed) for the whole period.
    async fn group_history(&self, since: DateTime<Utc>) -> Result<Vec<HistoryRow>>;

    /// Replaces the tag audit's snapshot with `resources` and records `now` as when the audit
    /// ran, in one transaction (a failed write leaves the previous snapshot whole).
    async fn record_ignore_tags(
        &self,
        resources: &[IgnoredResource],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Why and until when a shared GitHub permit was refused ([`Store::take_github_permit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBefore {
    pub at: DateTime<Utc>,
    /// The installation is paused after a rate-limit answer (else the budget is spent).
    pub paused: bool,
}

/// The noise cap's answer to [`Store::take_issue_slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueSlot {
    /// Open the issue now: it counts against the product's cap for the window.
    Granted,
    /// Not now: the product opened its `limit` within the window; these are when (ascending).
    Held { opened: Vec<DateTime<Utc>> },
}

/// One group in the noise cap's ledger: when its issue opened, or since when it is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoiseEntry {
    pub product: String,
    pub group_key: GroupKey,
    pub at: DateTime<Utc>,
}

/// [`Store::noise_ledger`]: a product's recent openings and its held-back groups, both by
/// ascending time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoiseLedger {
    pub opened: Vec<NoiseEntry>,
    pub held: Vec<NoiseEntry>,
}

/// How [`open_with`] opens a database, beyond its URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// SQLite's `synchronous` setting (see [`SqliteSynchronous`]). PostgreSQL ignores it: there
    /// the server's `synchronous_commit` decides.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// Opens the store named by a `DATABASE_URL`: `sqlite://PATH` (created if missing) or
/// `postgres://...` / `postgresql://...`, with the default [`OpenOptions`]. Runs the
/// migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, OpenOptions::default()).await
}

/// [`open`] with `options`.
pub async fn open_with(url: &str, options: OpenOptions) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect_with_options(url, options.sqlite_synchronous).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresStore::connect(url).await?)
    } else {
        return Err(StoreError::InvalidUrl {
            url: url.to_string(),
            reason: "expected sqlite://PATH or postgres://...".into(),
        });
    };
    store.migrate().await?;
    Ok(store)
}
