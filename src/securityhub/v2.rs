//! Security Hub v2 (OCSF): `GetFindingsV2` pages and `BatchUpdateFindingsV2`, through the same
//! pacers and retry policies as their CSPM twins (GetFindings, BatchUpdateFindings): the IAM
//! actions are the V1 ones, and Lever treats the two APIs of one account as one budget.
//!
//! A finding is identified to `BatchUpdateFindingsV2` by `cloud.account.uid`,
//! `finding_info.uid` and `metadata.product.uid` (the domain `Finding`'s `account_id`, `id` and
//! `product_arn` when it came as OCSF). The update sets `StatusId` (the OCSF finding status
//! that corresponds to Lever's workflow, [`status_id`]) and `Comment` (at most 512 characters,
//! the issue link). V2 has no `UpdatedBy`: Lever recognises its own echoes by the status and
//! comment it wrote, recorded when it wrote them (see `policy::classify`).

use aws_sdk_securityhub::types::{
    AllowedOperators, CompositeFilter, DateFilter, NumberFilter, OcsfDateField, OcsfDateFilter,
    OcsfFindingFilters, OcsfFindingIdentifier, OcsfNumberField, OcsfNumberFilter, OcsfStringField,
    OcsfStringFilter, StringFilter, StringFilterComparison,
};
use aws_smithy_types::{Document, Number};
use serde_json::Value;

use super::query::{FindingQuery, timestamp};
use super::read::{PAGE_SIZE, Page};
use super::{BatchOutcome, FindingRef, MAX_BATCH, SecurityHub, SecurityHubError, Unprocessed};
use crate::domain::{RecordState, Severity, WorkflowStatus};

/// At most this many composite filters per GetFindingsV2 request, and this many filters of one
/// type in each (`OcsfFindingFilters` documentation).
pub const MAX_COMPOSITE_FILTERS: usize = 10;
pub const MAX_FILTERS_PER_TYPE: usize = 20;

/// A finding as `BatchUpdateFindingsV2` identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V2Ref {
    /// `cloud.account.uid`
    pub account: String,
    /// `finding_info.uid`
    pub uid: String,
    /// `metadata.product.uid`
    pub product: String,
}

/// The OCSF finding `status_id` that corresponds to a Lever workflow status: NEW 1 (New),
/// NOTIFIED 2 (In Progress), SUPPRESSED 3 (Suppressed), RESOLVED 4 (Resolved). The model lists
/// 0–5 and 99 as accepted values; the names are OCSF's (`SHAPES-V2.md`).
pub fn status_id(w: WorkflowStatus) -> i32 {
    match w {
        WorkflowStatus::New => 1,
        WorkflowStatus::Notified => 2,
        WorkflowStatus::Suppressed => 3,
        WorkflowStatus::Resolved => 4,
    }
}

/// The OCSF `severity_id` of a severity (1 Informational … 5 Critical).
pub fn severity_id(s: Severity) -> i32 {
    match s {
        Severity::Informational => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// A GetFindingsV2 finding (a Smithy document: free-form JSON) as JSON.
pub fn document_to_json(d: &Document) -> Value {
    match d {
        Document::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), document_to_json(v)))
                .collect(),
        ),
        Document::Array(a) => Value::Array(a.iter().map(document_to_json).collect()),
        Document::Number(Number::PosInt(n)) => Value::from(*n),
        Document::Number(Number::NegInt(n)) => Value::from(*n),
        Document::Number(Number::Float(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Document::String(s) => Value::String(s.clone()),
        Document::Bool(b) => Value::Bool(*b),
        Document::Null => Value::Null,
    }
}

fn string_filter(field: OcsfStringField, value: &str) -> OcsfStringFilter {
    OcsfStringFilter::builder()
        .field_name(field)
        .filter(
            StringFilter::builder()
                .value(value)
                .comparison(StringFilterComparison::Equals)
                .build(),
        )
        .build()
}

fn number_filter(field: OcsfNumberField, filter: NumberFilter) -> OcsfNumberFilter {
    OcsfNumberFilter::builder()
        .field_name(field)
        .filter(filter)
        .build()
}

fn chunks(values: &[String]) -> Vec<Vec<String>> {
    if values.is_empty() {
        vec![vec![]]
    } else {
        values
            .chunks(MAX_FILTERS_PER_TYPE)
            .map(<[String]>::to_vec)
            .collect()
    }
}

impl FindingQuery {
    /// The GetFindingsV2 filters of this query, one request per chunk of at most
    /// [`MAX_FILTERS_PER_TYPE`] accounts and ids, like [`FindingQuery::filters`]. Each
    /// condition is one composite filter (values of one condition OR-ed), the composite
    /// filters AND-ed:
    ///
    /// * workflow statuses → `status_id` equal to each [`status_id`]; record state ACTIVE alone
    ///   → `status_id` at most 4 (5 is Archived), ARCHIVED alone → `status_id` 5;
    /// * minimum severity → `severity_id` at least its [`severity_id`];
    /// * updated since / until → `finding_info.modified_time_dt` start / end (a V2 status
    ///   update keeps `modified_time`, so status-only changes are not selected by time: the
    ///   pushed events carry them);
    /// * accounts → `cloud.account.uid`; finding ids → `finding_info.uid`.
    pub fn filters_v2(&self) -> Vec<OcsfFindingFilters> {
        let (record_states, workflows, severities, since, until, accounts, ids) = self.parts();
        let mut base: Vec<CompositeFilter> = Vec::new();
        let or = |filters: Vec<OcsfNumberFilter>| {
            CompositeFilter::builder()
                .set_number_filters(Some(filters))
                .operator(AllowedOperators::Or)
                .build()
        };
        if !workflows.is_empty() {
            base.push(or(workflows
                .iter()
                .map(|w| {
                    number_filter(
                        OcsfNumberField::StatusId,
                        NumberFilter::builder().eq(status_id(*w) as f64).build(),
                    )
                })
                .collect()));
        }
        match record_states {
            [RecordState::Active] => base.push(or(vec![number_filter(
                OcsfNumberField::StatusId,
                NumberFilter::builder().lte(4.0).build(),
            )])),
            [RecordState::Archived] => base.push(or(vec![number_filter(
                OcsfNumberField::StatusId,
                NumberFilter::builder().eq(5.0).build(),
            )])),
            _ => {}
        }
        if let Some(min) = severities.first() {
            base.push(or(vec![number_filter(
                OcsfNumberField::SeverityId,
                NumberFilter::builder()
                    .gte(severity_id(*min) as f64)
                    .build(),
            )]));
        }
        if since.is_some() || until.is_some() {
            base.push(
                CompositeFilter::builder()
                    .date_filters(
                        OcsfDateFilter::builder()
                            .field_name(OcsfDateField::FindingInfoModifiedTimeDt)
                            .filter(
                                DateFilter::builder()
                                    .set_start(since.map(timestamp))
                                    .set_end(until.map(timestamp))
                                    .build(),
                            )
                            .build(),
                    )
                    .operator(AllowedOperators::And)
                    .build(),
            );
        }
        let strings = |field: OcsfStringField, values: &[String]| {
            CompositeFilter::builder()
                .set_string_filters(Some(
                    values
                        .iter()
                        .map(|v| string_filter(field.clone(), v))
                        .collect(),
                ))
                .operator(AllowedOperators::Or)
                .build()
        };
        let mut out = Vec::new();
        for accounts in chunks(accounts) {
            for ids in chunks(ids) {
                let mut composite = base.clone();
                if !accounts.is_empty() {
                    composite.push(strings(OcsfStringField::CloudAccountUid, &accounts));
                }
                if !ids.is_empty() {
                    composite.push(strings(OcsfStringField::FindingInfoUid, &ids));
                }
                let filters = if composite.is_empty() {
                    OcsfFindingFilters::builder().build()
                } else {
                    OcsfFindingFilters::builder()
                        .set_composite_filters(Some(composite))
                        .composite_operator(AllowedOperators::And)
                        .build()
                };
                out.push(filters);
            }
        }
        out
    }
}

impl SecurityHub {
    /// One GetFindingsV2 request of at most [`PAGE_SIZE`] findings, paced and retried like
    /// GetFindings (the same lane: one read budget per account). Findings come back as OCSF
    /// JSON, for [`crate::asff::parse_any_finding`].
    pub async fn get_findings_v2_page(
        &self,
        filters: &OcsfFindingFilters,
        next_token: Option<String>,
    ) -> Result<Page, SecurityHubError> {
        let out = self
            .reads
            .call("GetFindingsV2", self.metrics.as_deref(), || {
                self.client
                    .get_findings_v2()
                    .filters(filters.clone())
                    .set_next_token(next_token.clone())
                    .max_results(PAGE_SIZE)
                    .customize()
                    .config_override(super::without_sdk_retries())
                    .send()
            })
            .await?;
        Ok(Page {
            findings: out.findings().iter().map(document_to_json).collect(),
            next_token: out.next_token().filter(|t| !t.is_empty()).map(String::from),
        })
    }

    /// Sets the status and comment of Security Hub v2 findings, in batches of at most
    /// [`MAX_BATCH`] identifiers, each request paced and retried like BatchUpdateFindings.
    /// The outcome names findings by `finding_info.uid` and `metadata.product.uid` (as
    /// [`FindingRef`] `id` and `product_arn`, which is how the domain `Finding` of an OCSF
    /// finding holds them).
    pub async fn update_status_v2(
        &self,
        findings: &[V2Ref],
        status: WorkflowStatus,
        comment: &str,
    ) -> Result<BatchOutcome, SecurityHubError> {
        let mut outcome = BatchOutcome::default();
        let comment = super::note_text(comment);
        let as_ref = |i: Option<&OcsfFindingIdentifier>| FindingRef {
            id: i
                .and_then(|i| i.finding_info_uid())
                .unwrap_or_default()
                .to_string(),
            product_arn: i
                .and_then(|i| i.metadata_product_uid())
                .unwrap_or_default()
                .to_string(),
        };
        for chunk in findings.chunks(MAX_BATCH) {
            let ids: Vec<OcsfFindingIdentifier> = chunk
                .iter()
                .map(|f| {
                    OcsfFindingIdentifier::builder()
                        .cloud_account_uid(&f.account)
                        .finding_info_uid(&f.uid)
                        .metadata_product_uid(&f.product)
                        .build()
                })
                .collect();
            let out = self
                .writes
                .call("BatchUpdateFindingsV2", self.metrics.as_deref(), || {
                    self.client
                        .batch_update_findings_v2()
                        .set_finding_identifiers(Some(ids.clone()))
                        .comment(comment.clone())
                        .status_id(status_id(status))
                        .customize()
                        .config_override(super::without_sdk_retries())
                        .send()
                })
                .await?;
            for p in out.processed_findings() {
                outcome.processed.push(as_ref(p.finding_identifier()));
            }
            for u in out.unprocessed_findings() {
                outcome.unprocessed.push(Unprocessed {
                    finding: as_ref(u.finding_identifier()),
                    code: u
                        .error_code()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_else(|| "Unknown".into()),
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
    use chrono::TimeZone;

    fn number(f: &OcsfNumberFilter) -> (String, Option<f64>, Option<f64>, Option<f64>) {
        let n = f.filter().unwrap();
        (
            f.field_name().unwrap().as_str().to_string(),
            n.eq(),
            n.gte(),
            n.lte(),
        )
    }

    fn strings(c: &CompositeFilter) -> (String, Vec<String>) {
        let field = c.string_filters()[0]
            .field_name()
            .unwrap()
            .as_str()
            .to_string();
        let values = c
            .string_filters()
            .iter()
            .inspect(|s| {
                assert_eq!(
                    s.filter().unwrap().comparison(),
                    Some(&StringFilterComparison::Equals)
                )
            })
            .map(|s| s.filter().unwrap().value().unwrap().to_string())
            .collect();
        (field, values)
    }

    #[test]
    fn workflow_and_record_state_map_to_status_ids() {
        let table: &[(WorkflowStatus, i32)] = &[
            (WorkflowStatus::New, 1),
            (WorkflowStatus::Notified, 2),
            (WorkflowStatus::Suppressed, 3),
            (WorkflowStatus::Resolved, 4),
        ];
        for (w, id) in table {
            assert_eq!(status_id(*w), *id, "{w:?}");
        }
        let f = FindingQuery::sync().filters_v2();
        assert_eq!(f.len(), 1);
        let c = f[0].composite_filters();
        assert_eq!(f[0].composite_operator(), Some(&AllowedOperators::And));
        // NEW or NOTIFIED, and not archived.
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].operator(), Some(&AllowedOperators::Or));
        let got: Vec<_> = c[0].number_filters().iter().map(number).collect();
        assert_eq!(
            got,
            [
                ("status_id".into(), Some(1.0), None, None),
                ("status_id".into(), Some(2.0), None, None)
            ]
        );
        assert_eq!(
            number(&c[1].number_filters()[0]),
            ("status_id".into(), None, None, Some(4.0))
        );
    }

    #[test]
    fn everything_has_no_filter_and_severity_is_a_lower_bound() {
        assert_eq!(
            FindingQuery::everything().filters_v2(),
            vec![OcsfFindingFilters::builder().build()]
        );
        let table = [
            (Severity::Informational, 1.0),
            (Severity::Low, 2.0),
            (Severity::Medium, 3.0),
            (Severity::High, 4.0),
            (Severity::Critical, 5.0),
        ];
        for (min, id) in table {
            let f = FindingQuery::everything().min_severity(min).filters_v2();
            let c = f[0].composite_filters();
            assert_eq!(
                number(&c[0].number_filters()[0]),
                ("severity_id".into(), None, Some(id), None),
                "{min}"
            );
        }
    }

    #[test]
    fn updated_since_is_the_modified_time() {
        let since = chrono::Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
        let f = FindingQuery::everything().updated_since(since).filters_v2();
        let d = &f[0].composite_filters()[0].date_filters()[0];
        assert_eq!(
            d.field_name(),
            Some(&OcsfDateField::FindingInfoModifiedTimeDt)
        );
        assert_eq!(
            d.filter().unwrap().start(),
            Some("2026-11-20T08:00:00.000Z")
        );
        assert_eq!(d.filter().unwrap().end(), None);
    }

    #[test]
    fn accounts_and_ids_split_into_requests_of_twenty_with_every_other_condition() {
        let accounts: Vec<String> = (0..25).map(|i| format!("{i:012}")).collect();
        let ids: Vec<String> = (0..3).map(|i| format!("arn:finding/{i}")).collect();
        let f = FindingQuery::sync()
            .min_severity(Severity::High)
            .account_ids(accounts.clone())
            .finding_ids(ids.clone())
            .filters_v2();
        assert_eq!(f.len(), 2);
        let mut seen = Vec::new();
        for req in &f {
            let c = req.composite_filters();
            assert!(c.len() <= MAX_COMPOSITE_FILTERS);
            // status (NEW/NOTIFIED), not archived, severity, accounts, ids.
            assert_eq!(c.len(), 5);
            let (field, values) = strings(&c[3]);
            assert_eq!(field, "cloud.account.uid");
            assert!(values.len() <= MAX_FILTERS_PER_TYPE);
            seen.extend(values);
            assert_eq!(strings(&c[4]), ("finding_info.uid".into(), ids.clone()));
        }
        assert_eq!(seen, accounts);
    }

    #[test]
    fn documents_become_the_same_json() {
        let json = serde_json::json!({
            "a": [1, -2, 2.5, "x", true, null, {"b": {}}],
            "severity_id": 5,
        });
        fn to_doc(v: &Value) -> Document {
            match v {
                Value::Object(m) => {
                    Document::Object(m.iter().map(|(k, v)| (k.clone(), to_doc(v))).collect())
                }
                Value::Array(a) => Document::Array(a.iter().map(to_doc).collect()),
                Value::Number(n) if n.is_u64() => {
                    Document::Number(Number::PosInt(n.as_u64().unwrap()))
                }
                Value::Number(n) if n.is_i64() => {
                    Document::Number(Number::NegInt(n.as_i64().unwrap()))
                }
                Value::Number(n) => Document::Number(Number::Float(n.as_f64().unwrap())),
                Value::String(s) => Document::String(s.clone()),
                Value::Bool(b) => Document::Bool(*b),
                Value::Null => Document::Null,
            }
        }
        assert_eq!(document_to_json(&to_doc(&json)), json);
    }
}
