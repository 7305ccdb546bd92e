//! The Resource Groups Tagging API (`tag:GetResources`), read through a role assumed in each
//! member account (`[tags] role_name`, shipped by infra/cloudformation/member-role-stackset.yaml).
//!
//! Pacing: every GetResources call, in every account and region, first waits for one shared
//! [`Pacer`] (`[tags] requests_per_second`, a `governor` limiter with a burst of one). AWS
//! throttles GetResources; a throttled call is retried by the SDK's standard retry mode
//! ([`MAX_ATTEMPTS`] attempts with exponential backoff), and what still fails is reported for
//! its scope (the audit carries that scope's resources over instead of calling them gone).
//!
//! Tags a finding does not carry are read by ARN ([`Tagging::tags_of`]) and cached in memory for
//! `[tags] cache_ttl` (default 15 minutes): a tag added meanwhile is seen at the latest after
//! that long.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::config::Region;
use aws_sdk_resourcegroupstagging::config::retry::RetryConfig;
use aws_sdk_resourcegroupstagging::error::ProvideErrorMetadata;
use aws_sdk_resourcegroupstagging::types::TagFilter;
use tokio::sync::OnceCell;

use super::Pacer;
use crate::domain::tags::Observed;

/// Attempts per GetResources call (the SDK's standard retry mode).
pub const MAX_ATTEMPTS: u32 = 5;
/// GetResources accepts at most 100 ARNs per `ResourceARNList`, and pages of at most 100.
pub const MAX_ARNS: usize = 100;
/// The session name Lever's assumed roles carry (visible in the member account's CloudTrail).
pub const SESSION_NAME: &str = "lever-tag-audit";

#[derive(Debug, Clone, thiserror::Error)]
pub enum TaggingError {
    /// Throttled (after the SDK's retries), unavailable or unreachable: try again later.
    #[error("the Tagging API is unavailable or throttling ({code}): {message}")]
    Retryable { code: String, message: String },
    /// Refused (the role cannot be assumed, tag:GetResources not allowed, invalid input).
    #[error("the Tagging API refused the request ({code}): {message}")]
    Rejected { code: String, message: String },
}

impl TaggingError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, TaggingError::Retryable { .. })
    }

    fn from_sdk<E>(e: aws_sdk_resourcegroupstagging::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_resourcegroupstagging::error::{DisplayErrorContext, SdkError};
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().unwrap_or("Unknown").to_string();
        let message = match &e {
            SdkError::ServiceError(s) => match s.err().message() {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => DisplayErrorContext(s.err()).to_string(),
            },
            other => DisplayErrorContext(other).to_string(),
        };
        let retryable = matches!(
            &e,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ) || matches!(status, Some(429) | Some(500..=599))
            || matches!(
                code.as_str(),
                "ThrottledException" | "ThrottlingException" | "InternalServiceException"
            );
        if retryable {
            TaggingError::Retryable { code, message }
        } else {
            TaggingError::Rejected { code, message }
        }
    }
}

/// Splits an ARN into (region, account); empty fields (S3 buckets, IAM) are `None`.
pub fn arn_scope(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, account) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    (
        region.filter(|s| !s.is_empty()),
        account.filter(|s| !s.is_empty()),
    )
}

type TagCache = HashMap<String, (BTreeMap<String, String>, Instant)>;

/// The Tagging API client: one SDK client per (role, region), credentials from an assumed role.
#[derive(Debug, Clone)]
pub struct Tagging {
    base: Arc<OnceCell<SdkConfig>>,
    pacer: Arc<Pacer>,
    clients: Arc<tokio::sync::Mutex<HashMap<(String, String), Client>>>,
    cache: Arc<Mutex<TagCache>>,
}

impl Tagging {
    /// Configured by the AWS SDK's own configuration chain (credentials of Lever's own role,
    /// `AWS_ENDPOINT_URL_*`), loaded on first use; at most `per_second` calls a second.
    pub fn from_sdk_defaults(per_second: u32) -> Tagging {
        Tagging::new(Arc::new(OnceCell::new()), per_second)
    }

    /// On `base` (tests point it at moto's endpoint), at most `per_second` calls a second.
    pub fn from_sdk_config(base: SdkConfig, per_second: u32) -> Tagging {
        Tagging::new(Arc::new(OnceCell::new_with(Some(base))), per_second)
    }

    fn new(base: Arc<OnceCell<SdkConfig>>, per_second: u32) -> Tagging {
        Tagging {
            base,
            pacer: Arc::new(Pacer::per_second(
                NonZeroU32::new(per_second.max(1)).expect("at least one"),
            )),
            clients: Arc::default(),
            cache: Arc::default(),
        }
    }

    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest()))
            .await
    }

    /// The client for `region` with the credentials of `role_arn`, assumed as needed (the SDK
    /// refreshes them before they expire).
    async fn client(&self, role_arn: &str, region: &str) -> Client {
        let key = (role_arn.to_string(), region.to_string());
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let base = self.base().await.clone();
        let provider = AssumeRoleProvider::builder(role_arn)
            .session_name(SESSION_NAME)
            .region(Region::new(region.to_string()))
            .configure(&base)
            .build()
            .await;
        let conf = aws_sdk_resourcegroupstagging::config::Builder::from(&base)
            .region(Region::new(region.to_string()))
            .credentials_provider(provider)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(500)),
            )
            .build();
        let client = Client::from_conf(conf);
        clients.insert(key, client.clone());
        client
    }

    /// Every resource of `account` in `region` carrying tag `key` (any value), paged, each
    /// page paced.
    pub async fn ignore_tagged(
        &self,
        role_arn: &str,
        account: &str,
        region: &str,
        key: &str,
    ) -> Result<Vec<Observed>, TaggingError> {
        let client = self.client(role_arn, region).await;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.until_ready().await;
            let page = client
                .get_resources()
                .tag_filters(TagFilter::builder().key(key).build())
                .resources_per_page(MAX_ARNS as i32)
                .set_pagination_token(token.clone())
                .send()
                .await
                .map_err(TaggingError::from_sdk)?;
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                let tags: BTreeMap<String, String> = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                let Some(value) = tags.get(key).cloned() else {
                    continue;
                };
                let (arn_region, arn_account) = arn_scope(arn);
                out.push(Observed {
                    arn: arn.to_string(),
                    account_id: arn_account.unwrap_or(account).to_string(),
                    region: arn_region.unwrap_or(region).to_string(),
                    value,
                    tags,
                });
            }
            token = page
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Puts what the tag audit just read in the cache (a resource's whole tag set), so tags read
    /// by ARN do not wait for `cache_ttl` to see a change the audit saw.
    pub fn remember(&self, arn: &str, tags: BTreeMap<String, String>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(arn.to_string(), (tags, Instant::now()));
    }

    /// Forgets what the cache holds for `arn` (its tag went away).
    pub fn forget(&self, arn: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(arn);
    }

    /// The tags of `arns` (all in `region` of the account `role_arn` is in), from the cache
    /// when read less than `ttl` ago, else from GetResources by ARN (at most [`MAX_ARNS`] a
    /// call). A resource the Tagging API does not list (no tags, or gone) has no tags.
    pub async fn tags_of(
        &self,
        role_arn: &str,
        region: &str,
        arns: &[String],
        ttl: Duration,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, TaggingError> {
        let now = Instant::now();
        let mut out = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for arn in arns {
                match cache.get(arn) {
                    Some((tags, at)) if now.duration_since(*at) < ttl => {
                        out.insert(arn.clone(), tags.clone());
                    }
                    _ => missing.push(arn.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let client = self.client(role_arn, region).await;
        for chunk in missing.chunks(MAX_ARNS) {
            self.pacer.until_ready().await;
            let page = client
                .get_resources()
                .set_resource_arn_list(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(TaggingError::from_sdk)?;
            let mut found: BTreeMap<String, BTreeMap<String, String>> =
                chunk.iter().map(|a| (a.clone(), BTreeMap::new())).collect();
            for m in page.resource_tag_mapping_list() {
                if let Some(arn) = m.resource_arn() {
                    found.insert(
                        arn.to_string(),
                        m.tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect(),
                    );
                }
            }
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (arn, tags) in found {
                cache.insert(arn.clone(), (tags.clone(), now));
                out.insert(arn, tags);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_scope_table() {
        let rows = [
            (
                "arn:aws:ec2:eu-west-1:111111111111:security-group/sg-1",
                (Some("eu-west-1"), Some("111111111111")),
            ),
            ("arn:aws:s3:::bucket", (None, None)),
            (
                "arn:aws:iam::111111111111:role/r",
                (None, Some("111111111111")),
            ),
            ("not-an-arn", (None, None)),
        ];
        for (arn, want) in rows {
            assert_eq!(arn_scope(arn), want, "{arn}");
        }
    }
}
