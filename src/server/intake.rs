//! What the two endpoints commit, in batches ([`GroupCommit`]): webhook deliveries through
//! [`Store::record_deliveries`], findings through [`pipeline::prepare_many`] and one
//! [`Store::apply`].

use std::sync::Arc;

use axum::body::Bytes;

use super::batch::{Commit, GroupCommit};
use crate::app::LiveConfig;
use crate::clock::Clock;
use crate::domain::Finding;
use crate::github::GitHub;
use crate::metrics::Metrics;
use crate::pipeline::{self, Arrival, Disposition, FindingOutcome};
use crate::store::{DeliveryOutcome, IssueRef, NewDelivery, Store, StoreError};
use crate::worker::pacing;

/// Most deliveries committed in one transaction.
pub const MAX_DELIVERIES_PER_BATCH: usize = 256;
/// Most EventBridge requests planned and committed in one transaction (each may carry up to
/// 100 findings).
pub const MAX_ARRIVALS_PER_BATCH: usize = 64;

/// The batching writers of one process: every request handler submits to these.
#[derive(Debug)]
pub struct Intake {
    pub webhooks: GroupCommit<Deliveries>,
    pub findings: GroupCommit<Findings>,
}

impl Intake {
    /// Starts both writers on the current tokio runtime.
    pub fn start(
        store: Arc<dyn Store>,
        config: LiveConfig,
        clock: Arc<dyn Clock>,
        github: Arc<GitHub>,
        metrics: Arc<Metrics>,
    ) -> Intake {
        Intake {
            webhooks: GroupCommit::start(
                Deliveries {
                    store: store.clone(),
                },
                MAX_DELIVERIES_PER_BATCH,
            ),
            findings: GroupCommit::start(
                Findings {
                    store,
                    config,
                    clock,
                    github,
                    metrics,
                },
                MAX_ARRIVALS_PER_BATCH,
            ),
        }
    }

    /// Refuses new requests (503) and commits what is waiting (graceful shutdown).
    pub async fn close(&self) {
        self.webhooks.close().await;
        self.findings.close().await;
    }
}

/// One verified webhook delivery, ready to record.
#[derive(Debug, Clone)]
pub struct DeliveryItem {
    /// `github:<X-GitHub-Delivery>`.
    pub id: String,
    /// `issues.labeled`, `ping`, ...
    pub event: String,
    /// The body as received.
    pub body: Bytes,
    pub body_sha256: [u8; 32],
    /// `(owner/repo, number)` when the delivery is a lifecycle event about an issue.
    pub issue: Option<(String, u64)>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// Records webhook deliveries.
#[derive(Debug)]
pub struct Deliveries {
    store: Arc<dyn Store>,
}

impl Commit for Deliveries {
    type Item = DeliveryItem;
    type Output = DeliveryOutcome;

    async fn commit(&self, items: &[DeliveryItem]) -> Result<Vec<DeliveryOutcome>, StoreError> {
        let deliveries: Vec<NewDelivery<'_>> = items
            .iter()
            .map(|d| NewDelivery {
                id: &d.id,
                event: &d.event,
                body: &d.body,
                body_sha256: &d.body_sha256,
                issue: d.issue.as_ref().map(|(repo, number)| IssueRef {
                    repo,
                    number: *number,
                }),
                received_at: d.received_at,
            })
            .collect();
        self.store.record_deliveries(&deliveries).await
    }
}

/// The findings of one EventBridge request.
#[derive(Debug, Clone)]
pub struct FindingsItem {
    pub findings: Vec<Finding>,
    /// `eventbridge:<event id>` or `ingest`.
    pub source: String,
}

/// What one EventBridge request's findings came to, once committed.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// One per finding, in order.
    pub outcomes: Vec<FindingOutcome>,
    /// The batch queued a job due now: the workers are woken. Not when its only jobs are due
    /// later (settling, or new issues waiting in GitHub's content queue, which wakes them at
    /// their turn).
    pub work_due: bool,
}

/// Plans and records findings: the requests of a batch are planned in arrival order, as if
/// each had been committed before the next (see [`pipeline::prepare_many`]), and committed in
/// one transaction.
#[derive(Debug)]
pub struct Findings {
    store: Arc<dyn Store>,
    /// The configuration in force when a batch is planned.
    config: LiveConfig,
    clock: Arc<dyn Clock>,
    /// Whose pacer holds GitHub's content queue (`worker::pacing::queue_openings`).
    github: Arc<GitHub>,
    /// Counts the committed findings (`lever_findings_received_total`, `_skipped_total`).
    metrics: Arc<Metrics>,
}

impl Commit for Findings {
    type Item = FindingsItem;
    type Output = Recorded;

    async fn commit(&self, items: &[FindingsItem]) -> Result<Vec<Recorded>, StoreError> {
        let now = self.clock.now();
        let arrivals: Vec<Arrival<'_>> = items
            .iter()
            .map(|i| Arrival {
                findings: &i.findings,
                source: &i.source,
            })
            .collect();
        let store = self.store.as_ref();
        let (changes, outcomes) =
            pipeline::prepare_many(store, &self.config.current(), &arrivals, now).await?;
        // During a flood, new issues join GitHub's content queue directly.
        let work_due =
            pacing::apply_with_openings(store, self.github.pacer(), changes, now).await?;
        for o in outcomes.iter().flatten() {
            let (disposition, skipped) = match o.action {
                Disposition::OpenIssue => ("open-issue", None),
                Disposition::Tracked => ("tracked", None),
                Disposition::Skipped => ("skipped", Some(o.verdict.reason)),
                Disposition::Repeat => ("repeat", None),
            };
            self.metrics.finding_received(disposition, skipped);
        }
        Ok(outcomes
            .into_iter()
            .map(|outcomes| Recorded { outcomes, work_due })
            .collect())
    }
}
