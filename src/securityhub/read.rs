//! Reading findings back from Security Hub: GetFindings pages, paced and retried, each finding
//! turned into ASFF JSON for [`crate::asff::parse_finding`].
//!
//! # Stack
//! In debug builds the SDK's deserializer for `AwsSecurityFinding` (hundreds of nested
//! `Resources[].Details` types) needs a deep stack: reading the 149 model-valid findings of
//! `../shared/conformance/asff` overflowed a tokio worker with 8 MiB and passed with 9 MiB
//! (measured with aws-sdk-securityhub 1.116); tokio's worker threads have 2 MiB by default. Run GetFindings on a runtime whose threads have more:
//! `lever serve` builds its runtime with [`RUNTIME_THREAD_STACK`] per worker thread, and GetFindings
//! should run in a spawned task there (the thread calling `block_on` keeps the main thread's
//! stack). Release builds need far less, but the same setting costs only address space.
//! A response the SDK cannot deserialize (a finding breaking the model, which Security Hub
//! validates on import and should never return) fails its whole page as a
//! [`SecurityHubError::Rejected`] naming the parse error.
//!
//! # Cursors
//! A page is a snapshot of a changing set: Security Hub pages by token over findings that may be
//! updated while Lever reads. A sync should therefore take its next `updated_since` cursor from
//! the time the run *started* (with some overlap), not from the newest `UpdatedAt` it saw;
//! repeats cost nothing downstream (an unchanged finding changes nothing).

use aws_sdk_securityhub::types::{AwsSecurityFindingFilters, OcsfFindingFilters};
use serde_json::Value;

use super::asff_json::finding_to_asff;
use super::query::FindingQuery;
use super::{SecurityHub, SecurityHubError};
use crate::config::SecurityHubApi;

/// GetFindings `MaxResults`: the model's maximum.
pub const PAGE_SIZE: i32 = 100;

/// Stack size for the threads of a runtime that runs SDK GetFindings (see the module doc):
/// 16 MiB, about 1.8 times what the conformance corpus needs in a debug build.
pub const RUNTIME_THREAD_STACK: usize = 16 * 1024 * 1024;

/// One GetFindings page: its findings as ASFF JSON, and the token of the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub findings: Vec<Value>,
    pub next_token: Option<String>,
}

impl SecurityHub {
    /// One GetFindings request of at most [`PAGE_SIZE`] findings, paced by the GetFindings
    /// [`super::Pacer`] and retried per the [`super::RetryPolicy`] (every attempt paced). The
    /// SDK's own retries are switched off for this call so that they cannot bypass the pacer or
    /// multiply the attempts. After the last attempt the error is returned as it was classified:
    /// [`SecurityHubError::Retryable`] for throttling and 5xx (try again later),
    /// [`SecurityHubError::Rejected`] otherwise (invalid input, access denied, a response the
    /// SDK cannot read).
    pub async fn get_findings_page(
        &self,
        filters: &AwsSecurityFindingFilters,
        next_token: Option<String>,
    ) -> Result<Page, SecurityHubError> {
        let out = self
            .reads
            .call("GetFindings", self.metrics.as_deref(), || {
                self.client
                    .get_findings()
                    .filters(filters.clone())
                    .set_next_token(next_token.clone())
                    .max_results(PAGE_SIZE)
                    .customize()
                    .config_override(super::without_sdk_retries())
                    .send()
            })
            .await?;
        Ok(Page {
            findings: out.findings().iter().map(finding_to_asff).collect(),
            next_token: out.next_token().filter(|t| !t.is_empty()).map(String::from),
        })
    }

    /// Every GetFindings (CSPM) page of `query`, in order, one request at a time.
    pub fn pages(&self, query: &FindingQuery) -> Pager<'_> {
        self.pages_from(query, PagerPosition::default())
    }

    /// The GetFindings (CSPM) pages of `query` from a position an earlier pager reached (a
    /// sync that reads one page per job run resumes here).
    pub fn pages_from(&self, query: &FindingQuery, at: PagerPosition) -> Pager<'_> {
        self.pages_in(query, SecurityHubApi::Cspm, at)
    }

    /// The pages of `query` through the APIs `api` enables: GetFindings (ASFF) first, then
    /// GetFindingsV2 (OCSF) with `api = "both"`, from position `at`. The findings of a page are
    /// in the format of the API that returned them; [`crate::asff::parse_any_finding`] reads
    /// both.
    pub fn pages_in(
        &self,
        query: &FindingQuery,
        api: SecurityHubApi,
        at: PagerPosition,
    ) -> Pager<'_> {
        let mut requests = Vec::new();
        if api.cspm() {
            requests.extend(
                query
                    .filters()
                    .into_iter()
                    .map(|f| Request::Cspm(Box::new(f))),
            );
        }
        if api.v2() {
            requests.extend(query.filters_v2().into_iter().map(Request::V2));
        }
        Pager {
            hub: self,
            filters: requests,
            current: at.filter,
            next_token: at.next_token,
            requests: 0,
        }
    }
}

/// One paged request of a [`Pager`]: its API and filters.
#[derive(Debug, Clone)]
enum Request {
    /// Boxed: the CSPM filters are large (clippy `large_enum_variant`).
    Cspm(Box<AwsSecurityFindingFilters>),
    V2(OcsfFindingFilters),
}

/// Pages through a [`FindingQuery`] (one filter set after another when the query was split,
/// the CSPM ones before the v2 ones).
/// Ends after the page without a `NextToken` of the last filter set.
#[derive(Debug)]
pub struct Pager<'a> {
    hub: &'a SecurityHub,
    filters: Vec<Request>,
    current: usize,
    next_token: Option<String>,
    requests: usize,
}

/// Where a [`Pager`] stands: which filter set, and the token of its next page.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PagerPosition {
    pub filter: usize,
    pub next_token: Option<String>,
}

impl Pager<'_> {
    /// Where the next page starts.
    pub fn position(&self) -> PagerPosition {
        PagerPosition {
            filter: self.current,
            next_token: self.next_token.clone(),
        }
    }

    /// Whether every page has been read.
    pub fn is_done(&self) -> bool {
        self.current >= self.filters.len()
    }

    /// The next page, or `None` when there are no more. An error leaves the pager where it was:
    /// calling again retries the same page.
    pub async fn next_page(&mut self) -> Result<Option<Page>, SecurityHubError> {
        let Some(filters) = self.filters.get(self.current) else {
            return Ok(None);
        };
        let page = match filters {
            Request::Cspm(f) => {
                self.hub
                    .get_findings_page(f, self.next_token.clone())
                    .await?
            }
            Request::V2(f) => {
                self.hub
                    .get_findings_v2_page(f, self.next_token.clone())
                    .await?
            }
        };
        self.requests += 1;
        self.next_token = page.next_token.clone();
        if self.next_token.is_none() {
            self.current += 1;
        }
        Ok(Some(page))
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> usize {
        self.requests
    }

    /// Every remaining finding, in page order.
    pub async fn collect_all(mut self) -> Result<Vec<Value>, SecurityHubError> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page().await? {
            out.extend(page.findings);
        }
        Ok(out)
    }
}
