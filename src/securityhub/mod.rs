//! Security Hub client: BatchUpdateFindings (workflow + note, in batches of at most 100) and
//! GetFindings pages. The AWS SDK is configured the standard way (region, credentials and
//! `AWS_ENDPOINT_URL_SECURITYHUB` from the environment).
//!
//! Pacing and retries: each API has its own [`Pacer`], shared by clones of the client, and
//! Lever's own bounded [`RetryPolicy`] with the SDK's retries off, so that every attempt,
//! retries included, goes through the pacer: GetFindings (`read.rs`) at most
//! [`DEFAULT_GET_FINDINGS_PER_SECOND`] requests a second (a few quick retries),
//! BatchUpdateFindings at most [`DEFAULT_BATCH_UPDATES_PER_SECOND`] with at most [`MAX_BATCH`]
//! findings each (one attempt per job run by default). What still fails is retried later by
//! Lever's job queue, so nothing is lost while Security Hub is unavailable.
//!
//! Reading findings: [`FindingQuery`] → [`SecurityHub::pages`] / [`SecurityHub::get_findings_page`]
//! → [`Page`] of ASFF JSON ([`finding_to_asff`]) → [`crate::asff::parse_finding`], the same
//! parser pushed EventBridge events go through.

mod asff_json;
mod pace;
mod query;
mod read;
pub mod tagging;
mod v2;

use std::num::NonZeroU32;
use std::sync::Arc;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::error::ProvideErrorMetadata;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus as SdkWorkflow, WorkflowUpdate,
};
use serde::{Deserialize, Serialize};

use crate::domain::WorkflowStatus;

pub use asff_json::finding_to_asff;
pub use pace::{
    DEFAULT_BATCH_UPDATES_PER_SECOND, DEFAULT_GET_FINDINGS_PER_SECOND, ManualTimer, Pacer,
    RetryPolicy, Sleeper, TokioTimer,
};
pub use query::{FindingQuery, MAX_FILTER_VALUES, timestamp};
pub use read::{PAGE_SIZE, Page, Pager, PagerPosition, RUNTIME_THREAD_STACK};
pub use tagging::{Tagging, TaggingError};
pub use v2::{
    MAX_COMPOSITE_FILTERS, MAX_FILTERS_PER_TYPE, V2Ref, document_to_json, severity_id, status_id,
};

/// The per-call override that switches the SDK's own retries off: every attempt goes through
/// Lever's pacers and retry policy, so no retry can bypass a pacer or multiply the attempts.
fn without_sdk_retries() -> aws_sdk_securityhub::config::Builder {
    aws_sdk_securityhub::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// BatchUpdateFindings accepts at most 100 finding identifiers per request.
pub const MAX_BATCH: usize = 100;
/// `Note.Text` holds at most 512 characters.
pub const MAX_NOTE: usize = 512;

/// A finding as BatchUpdateFindings identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FindingRef {
    pub id: String,
    pub product_arn: String,
}

/// A finding Security Hub did not update, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unprocessed {
    pub finding: FindingRef,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub processed: Vec<FindingRef>,
    pub unprocessed: Vec<Unprocessed>,
}

impl BatchOutcome {
    /// Adds another call's outcome to this one.
    pub fn extend(&mut self, other: BatchOutcome) {
        self.processed.extend(other.processed);
        self.unprocessed.extend(other.unprocessed);
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SecurityHubError {
    /// Throttled, unavailable or unreachable: try again later.
    #[error("Security Hub is unavailable or throttling ({code}): {message}")]
    Retryable { code: String, message: String },
    /// The request was refused and will be refused again (permissions, invalid input).
    #[error("Security Hub refused the request ({code}): {message}")]
    Rejected { code: String, message: String },
}

impl SecurityHubError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecurityHubError::Retryable { .. })
    }

    fn from_sdk<E>(e: aws_sdk_securityhub::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_securityhub::error::{DisplayErrorContext, SdkError};
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().unwrap_or("Unknown").to_string();
        let message = match &e {
            // An error without a message (e.g. a response the SDK could not deserialize): the
            // whole chain of causes says what went wrong.
            SdkError::ServiceError(s) => match s.err().message() {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => DisplayErrorContext(s.err()).to_string(),
            },
            other => format!("{other:?}"),
        };
        let retryable = matches!(
            &e,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ) || matches!(status, Some(429) | Some(500..=599))
            || matches!(
                code.as_str(),
                "LimitExceededException"
                    | "TooManyRequestsException"
                    | "ThrottlingException"
                    | "InternalException"
            );
        if retryable {
            SecurityHubError::Retryable { code, message }
        } else {
            SecurityHubError::Rejected { code, message }
        }
    }
}

/// Cuts a note to what Security Hub accepts (at most 512 characters, never empty).
pub fn note_text(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= MAX_NOTE {
        return if t.is_empty() {
            "Updated by Lever".into()
        } else {
            t.to_string()
        };
    }
    let mut out: String = t.chars().take(MAX_NOTE - 1).collect();
    out.push('…');
    out
}

fn sdk_workflow(w: WorkflowStatus) -> SdkWorkflow {
    match w {
        WorkflowStatus::New => SdkWorkflow::New,
        WorkflowStatus::Notified => SdkWorkflow::Notified,
        WorkflowStatus::Resolved => SdkWorkflow::Resolved,
        WorkflowStatus::Suppressed => SdkWorkflow::Suppressed,
    }
}

#[derive(Debug, Clone)]
pub struct SecurityHub {
    client: Client,
    /// GetFindings; shared by clones: the rate is one per account, not per clone.
    reads: Arc<Lane>,
    /// BatchUpdateFindings; shared by clones likewise.
    writes: Arc<Lane>,
    /// Where every attempt is counted (`GET /metrics`), when set.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// How one API is paced and retried.
#[derive(Debug)]
struct Lane {
    pacer: Pacer,
    retry: RetryPolicy,
}

impl Lane {
    fn per_second(n: u32, retry: RetryPolicy) -> Arc<Lane> {
        Arc::new(Lane {
            pacer: Pacer::per_second(NonZeroU32::new(n).expect("non-zero")),
            retry,
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy's attempts are spent;
    /// every attempt waits for the pacer first, every backoff sleeps on the pacer's timer.
    async fn call<T, E, F, Fut>(
        &self,
        what: &'static str,
        metrics: Option<&crate::metrics::Metrics>,
        mut attempt: F,
    ) -> Result<T, SecurityHubError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, aws_sdk_securityhub::error::SdkError<E>>>,
    {
        let mut n = 1;
        loop {
            self.pacer.until_ready().await;
            let result = attempt().await.map_err(SecurityHubError::from_sdk);
            // The one place Security Hub calls are counted: every attempt, by outcome.
            if let Some(m) = metrics {
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(e) if e.is_retryable() => "retryable",
                    Err(_) => "rejected",
                };
                m.securityhub_call(what, outcome);
            }
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && n < self.retry.max_attempts => {
                    let wait = self.retry.backoff(n, rand::random::<f64>());
                    tracing::warn!(attempt = n, ?wait, error = %e, "{what} failed; retrying");
                    self.pacer.timer().sleep(wait).await;
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl SecurityHub {
    /// Configured by the AWS SDK's own configuration chain (region, credentials,
    /// `AWS_ENDPOINT_URL_SECURITYHUB` from the environment, profiles, instance metadata).
    pub async fn from_sdk_defaults() -> SecurityHub {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        SecurityHub::from_client(Client::new(&conf))
    }

    /// GetFindings paced at [`DEFAULT_GET_FINDINGS_PER_SECOND`] of real time and retried per
    /// [`RetryPolicy::default`] (a sync page is worth a few quick retries); BatchUpdateFindings
    /// paced at [`DEFAULT_BATCH_UPDATES_PER_SECOND`] and tried once per job run
    /// ([`RetryPolicy::none`]): the job that asked retries later with backoff, after recording
    /// what was processed.
    pub fn from_client(client: Client) -> SecurityHub {
        SecurityHub {
            client,
            reads: Lane::per_second(DEFAULT_GET_FINDINGS_PER_SECOND, RetryPolicy::default()),
            writes: Lane::per_second(DEFAULT_BATCH_UPDATES_PER_SECOND, RetryPolicy::none()),
            metrics: None,
        }
    }

    /// Counts every attempt (`lever_securityhub_calls_total`) in `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> SecurityHub {
        SecurityHub {
            metrics: Some(metrics),
            ..self
        }
    }

    /// Replaces how GetFindings is paced and retried (e.g. a faster rate or a
    /// [`ManualTimer`] in tests). Clones made before this call keep the old settings.
    pub fn with_reads(self, pacer: Pacer, retry: RetryPolicy) -> SecurityHub {
        SecurityHub {
            reads: Arc::new(Lane { pacer, retry }),
            ..self
        }
    }

    /// Replaces how BatchUpdateFindings is paced and retried, like [`SecurityHub::with_reads`].
    pub fn with_writes(self, pacer: Pacer, retry: RetryPolicy) -> SecurityHub {
        SecurityHub {
            writes: Arc::new(Lane { pacer, retry }),
            ..self
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sets the workflow status and note of `findings`, in batches of at most [`MAX_BATCH`],
    /// each request paced (at most [`DEFAULT_BATCH_UPDATES_PER_SECOND`] a second by default)
    /// and retried per the write [`RetryPolicy`] (the SDK's own retries are off, so none
    /// bypasses the pacer; the update is idempotent). Findings Security Hub did not process
    /// come back in `unprocessed`; an error means a batch was not sent at all (earlier batches
    /// may have been).
    pub async fn update_workflow(
        &self,
        findings: &[FindingRef],
        status: WorkflowStatus,
        note: &str,
        updated_by: &str,
    ) -> Result<BatchOutcome, SecurityHubError> {
        let mut outcome = BatchOutcome::default();
        let note = NoteUpdate::builder()
            .text(note_text(note))
            .updated_by(updated_by)
            .build();
        for chunk in findings.chunks(MAX_BATCH) {
            let ids: Vec<AwsSecurityFindingIdentifier> = chunk
                .iter()
                .map(|f| {
                    AwsSecurityFindingIdentifier::builder()
                        .id(&f.id)
                        .product_arn(&f.product_arn)
                        .build()
                })
                .collect();
            let out = self
                .writes
                .call("BatchUpdateFindings", self.metrics.as_deref(), || {
                    self.client
                        .batch_update_findings()
                        .set_finding_identifiers(Some(ids.clone()))
                        .note(note.clone())
                        .workflow(
                            WorkflowUpdate::builder()
                                .status(sdk_workflow(status))
                                .build(),
                        )
                        .customize()
                        .config_override(without_sdk_retries())
                        .send()
                })
                .await?;
            for p in out.processed_findings() {
                outcome.processed.push(FindingRef {
                    id: p.id().unwrap_or_default().to_string(),
                    product_arn: p.product_arn().unwrap_or_default().to_string(),
                });
            }
            for u in out.unprocessed_findings() {
                let f = u.finding_identifier();
                outcome.unprocessed.push(Unprocessed {
                    finding: FindingRef {
                        id: f.and_then(|f| f.id()).unwrap_or_default().to_string(),
                        product_arn: f
                            .and_then(|f| f.product_arn())
                            .unwrap_or_default()
                            .to_string(),
                    },
                    code: u.error_code().unwrap_or("Unknown").to_string(),
                    message: u.error_message().unwrap_or("").to_string(),
                });
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_fit_security_hub() {
        assert_eq!(note_text("  "), "Updated by Lever");
        assert_eq!(note_text("short"), "short");
        let long = "é".repeat(600);
        let cut = note_text(&long);
        assert_eq!(cut.chars().count(), MAX_NOTE);
        assert!(cut.ends_with('…'));
    }
}
