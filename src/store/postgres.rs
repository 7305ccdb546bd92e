//! Postgres backend of [`Store`](super::Store).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::*;

#[derive(Debug, Clone)]
pub struct PostgresStore {}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let _ = url;
        unimplemented!("postgres store")
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
    async fn migrate(&self) -> Result<()> {
        unimplemented!()
    }
    async fn ping(&self) -> Result<()> {
        unimplemented!()
    }
    async fn apply(&self, changes: ChangeSet, now: DateTime<Utc>) -> Result<()> {
        let _ = (changes, now);
        unimplemented!()
    }
    async fn record_delivery(&self, delivery: &Delivery, job: Option<NewJob>) -> Result<bool> {
        let _ = (delivery, job);
        unimplemented!()
    }
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let _ = id;
        unimplemented!()
    }
    async fn findings(&self, ids: &[(String, String)]) -> Result<Vec<FindingRecord>> {
        let _ = ids;
        unimplemented!()
    }
    async fn findings_in_group(&self, group: &GroupKey) -> Result<Vec<FindingRecord>> {
        let _ = group;
        unimplemented!()
    }
    async fn group(&self, key: &GroupKey) -> Result<Option<GroupRecord>> {
        let _ = key;
        unimplemented!()
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<GroupRecord>> {
        let _ = keys;
        unimplemented!()
    }
    async fn group_by_issue(&self, repo: &str, number: u64) -> Result<Option<GroupRecord>> {
        let _ = (repo, number);
        unimplemented!()
    }
    async fn list_groups(&self, status: Option<GroupStatus>) -> Result<Vec<GroupRecord>> {
        let _ = status;
        unimplemented!()
    }
    async fn lease_job(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<Job>> {
        let _ = (owner, now, lease_for);
        unimplemented!()
    }
    async fn jobs(&self, state: Option<JobState>) -> Result<Vec<Job>> {
        let _ = state;
        unimplemented!()
    }
    async fn next_job_at(&self) -> Result<Option<DateTime<Utc>>> {
        unimplemented!()
    }
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let _ = filter;
        unimplemented!()
    }
    async fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let _ = key;
        unimplemented!()
    }
}
