//! Security Hub client: BatchUpdateFindings (workflow + note, in batches of at most 100) and
//! GetFindings pages. The AWS SDK is configured the standard way (region, credentials and
//! `AWS_ENDPOINT_URL_SECURITYHUB` from the environment).
//!
//! Retries: BatchUpdateFindings relies on the SDK's standard retry mode (throttling,
//! `LimitExceededException` / HTTP 429, and 5xx, with backoff), and Lever's job queue retries
//! whatever is still failing later, so nothing is lost while Security Hub is unavailable.
//! GetFindings (`read.rs`) uses Lever's own bounded [`RetryPolicy`] instead, with the SDK's
//! retries off for that call, so that every attempt goes through the GetFindings [`Pacer`]
//! (at most [`DEFAULT_GET_FINDINGS_PER_SECOND`] requests a second by default).
//!
//! Reading findings: [`FindingQuery`] → [`SecurityHub::pages`] / [`SecurityHub::get_findings_page`]
//! → [`Page`] of ASFF JSON ([`finding_to_asff`]) → [`crate::asff::parse_finding`], the same
//! parser pushed EventBridge events go through.

mod asff_json;
mod pace;
mod query;
mod read;

use std::num::NonZeroU32;
use std::sync::Arc;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::error::ProvideErrorMetadata;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus as SdkWorkflow, WorkflowUpdate,
};
use serde::{Deserialize, Serialize};

use crate::domain::WorkflowStatus;

pub use asff_json::finding_to_asff;
pub use pace::{
    DEFAULT_GET_FINDINGS_PER_SECOND, ManualTimer, Pacer, RetryPolicy, Sleeper, TokioTimer,
};
pub use query::{FindingQuery, MAX_FILTER_VALUES, timestamp};
pub use read::{PAGE_SIZE, Page, Pager, PagerPosition, RUNTIME_THREAD_STACK};

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
    /// Shared by clones: the GetFindings rate is one per account, not per clone.
    reads: Arc<Reads>,
}

/// How GetFindings is paced and retried.
#[derive(Debug)]
struct Reads {
    pacer: Pacer,
    retry: RetryPolicy,
}

impl Default for Reads {
    fn default() -> Self {
        Reads {
            pacer: Pacer::per_second(
                NonZeroU32::new(DEFAULT_GET_FINDINGS_PER_SECOND).expect("non-zero"),
            ),
            retry: RetryPolicy::default(),
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

    /// GetFindings paced at [`DEFAULT_GET_FINDINGS_PER_SECOND`] of real time, retried per
    /// [`RetryPolicy::default`].
    pub fn from_client(client: Client) -> SecurityHub {
        SecurityHub {
            client,
            reads: Arc::new(Reads::default()),
        }
    }

    /// Replaces how GetFindings is paced and retried (e.g. a faster rate or a
    /// [`ManualTimer`] in tests). Clones made before this call keep the old settings.
    pub fn with_reads(self, pacer: Pacer, retry: RetryPolicy) -> SecurityHub {
        SecurityHub {
            client: self.client,
            reads: Arc::new(Reads { pacer, retry }),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sets the workflow status and note of `findings`, in batches of at most 100. Findings
    /// Security Hub did not process come back in `unprocessed`; an error means a batch was not
    /// sent at all (earlier batches may have been).
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
                .client
                .batch_update_findings()
                .set_finding_identifiers(Some(ids))
                .note(note.clone())
                .workflow(
                    WorkflowUpdate::builder()
                        .status(sdk_workflow(status))
                        .build(),
                )
                .send()
                .await
                .map_err(SecurityHubError::from_sdk)?;
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
