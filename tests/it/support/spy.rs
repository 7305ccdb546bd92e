//! `Spy`: a [`Store`] in front of the real one that counts the intake's transactions
//! (`record_deliveries`, `apply`), can hold them (to let requests pile up behind a commit,
//! without sleeping) and can fail them (a database outage).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Semaphore;

use lever::domain::GroupKey;
use lever::store::{
    AuditEntry, AuditFilter, ChangeSet, Delivery, DeliveryOutcome, Effect, FindingRecord,
    GroupRecord, GroupStatus, JobRecord, JobState, NewDelivery, Result, Store, StoreError,
};

/// What a [`Spy`] saw and what it is told to do; shared with the test.
#[derive(Debug)]
pub struct Probe {
    /// The size of every `record_deliveries` batch, in order.
    pub delivery_batches: Mutex<Vec<usize>>,
    /// The findings of every `apply`, in order.
    pub applied_findings: Mutex<Vec<usize>>,
    holding: AtomicBool,
    /// A permit per write that entered while holding.
    entered: Semaphore,
    release: Semaphore,
    /// Writes still to fail.
    failing: AtomicUsize,
    /// `ping` fails with this error text (a database that went away).
    pub ping_error: Mutex<Option<String>>,
}

impl Probe {
    /// From now on every write waits for [`release`](Self::release).
    pub fn hold(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Waits until a held write has entered the store.
    pub async fn entered(&self) {
        self.entered.acquire().await.unwrap().forget();
    }

    /// Lets every held (and future) write through.
    pub fn release(&self) {
        self.holding.store(false, Ordering::SeqCst);
        self.release.add_permits(1_000);
    }

    /// The next `n` writes to enter the store fail as a lost database would (a write held
    /// already is not one of them).
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    async fn write(&self) -> Result<()> {
        let fail = (self.failing)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.holding.load(Ordering::SeqCst) {
            self.entered.add_permits(1);
            self.release.acquire().await.unwrap().forget();
        }
        if fail {
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Spy {
    inner: Arc<dyn Store>,
    pub probe: Arc<Probe>,
}

impl Spy {
    pub fn new(inner: Arc<dyn Store>) -> Spy {
        Spy {
            inner,
            probe: Arc::new(Probe {
                delivery_batches: Mutex::default(),
                applied_findings: Mutex::default(),
                holding: AtomicBool::new(false),
                entered: Semaphore::new(0),
                release: Semaphore::new(0),
                failing: AtomicUsize::new(0),
                ping_error: Mutex::default(),
            }),
        }
    }
}

#[async_trait]
impl Store for Spy {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }
    async fn ping(&self) -> Result<()> {
        if let Some(text) = self.probe.ping_error.lock().unwrap().clone() {
            return Err(StoreError::Database(sqlx::Error::Protocol(text)));
        }
        self.inner.ping().await
    }
    fn shared_commits(&self) -> Option<lever::store::CombineStats> {
        self.inner.shared_commits()
    }
    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        let findings = changes.findings.len();
        self.probe.write().await?;
        self.probe.applied_findings.lock().unwrap().push(findings);
        self.inner.apply(changes, now).await
    }
    async fn record_deliveries(
        &self,
        deliveries: &[NewDelivery<'_>],
    ) -> Result<Vec<DeliveryOutcome>> {
        self.probe.write().await?;
        self.probe
            .delivery_batches
            .lock()
            .unwrap()
            .push(deliveries.len());
        self.inner.record_deliveries(deliveries).await
    }
    async fn lease_job_id(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        self.probe.write().await?;
        self.inner.lease_job_id(id, owner, now, lease_for).await
    }
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.inner.delivery(id).await
    }
    async fn findings(&self, ids: &[(String, String)]) -> Result<Vec<FindingRecord>> {
        self.inner.findings(ids).await
    }
    async fn findings_in_group(&self, group: &GroupKey) -> Result<Vec<FindingRecord>> {
        self.inner.findings_in_group(group).await
    }
    async fn ungrouped_findings(&self, account_id: Option<&str>) -> Result<Vec<FindingRecord>> {
        self.inner.ungrouped_findings(account_id).await
    }
    async fn group(&self, key: &GroupKey) -> Result<Option<GroupRecord>> {
        self.inner.group(key).await
    }
    async fn outbox(&self, group: &GroupKey) -> Result<Vec<Effect>> {
        self.inner.outbox(group).await
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<GroupRecord>> {
        self.inner.groups(keys).await
    }
    async fn pending_job_ids(&self, jobs: &[lever::store::Job]) -> Result<Vec<Option<i64>>> {
        self.inner.pending_job_ids(jobs).await
    }
    async fn group_by_issue(&self, repo: &str, number: u64) -> Result<Option<GroupRecord>> {
        self.inner.group_by_issue(repo, number).await
    }
    async fn list_groups(&self, status: Option<GroupStatus>) -> Result<Vec<GroupRecord>> {
        self.inner.list_groups(status).await
    }
    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobRecord>> {
        self.inner.lease_job(owner, now, lease_for).await
    }
    async fn parked_effects(&self) -> Result<Vec<(lever::store::Effect, String)>> {
        self.inner.parked_effects().await
    }
    async fn renew_lease(
        &self,
        id: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.inner.renew_lease(id, owner, until, now).await
    }
    async fn prune(
        &self,
        jobs_before: DateTime<Utc>,
        deliveries_before: DateTime<Utc>,
    ) -> Result<lever::store::Pruned> {
        self.inner.prune(jobs_before, deliveries_before).await
    }
    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<JobRecord>> {
        self.inner.jobs(state).await
    }
    async fn next_job_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.inner.next_job_at().await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<lever::store::QueueStats>> {
        self.inner.queue_stats(now).await
    }
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.inner.audit(filter).await
    }
    async fn take_issue_slot(
        &self,
        product: &str,
        group: &GroupKey,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<lever::store::IssueSlot> {
        self.inner
            .take_issue_slot(product, group, limit, window, now)
            .await
    }
    async fn noise_ledger(
        &self,
        product: &str,
        since: DateTime<Utc>,
    ) -> Result<lever::store::NoiseLedger> {
        self.inner.noise_ledger(product, since).await
    }
    async fn noise_held(&self) -> Result<Vec<lever::store::NoiseEntry>> {
        self.inner.noise_held().await
    }
    async fn ignore_tags(
        &self,
    ) -> Result<(
        Vec<lever::domain::tags::IgnoredResource>,
        Option<DateTime<Utc>>,
    )> {
        self.inner.ignore_tags().await
    }
    async fn record_ignore_tags(
        &self,
        resources: &[lever::domain::tags::IgnoredResource],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.inner.record_ignore_tags(resources, now).await
    }
    async fn group_history(&self, since: DateTime<Utc>) -> Result<Vec<lever::store::HistoryRow>> {
        self.inner.group_history(since).await
    }
    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        self.inner.kv_get(key).await
    }
    async fn take_github_permit(
        &self,
        installation: u64,
        now: DateTime<Utc>,
        period: std::time::Duration,
        burst: u32,
    ) -> Result<Option<lever::store::NotBefore>> {
        self.inner
            .take_github_permit(installation, now, period, burst)
            .await
    }
    async fn pause_github(&self, installation: u64, until: DateTime<Utc>) -> Result<()> {
        self.inner.pause_github(installation, until).await
    }
    async fn github_paused_until(&self, installation: u64) -> Result<Option<DateTime<Utc>>> {
        self.inner.github_paused_until(installation).await
    }
}
