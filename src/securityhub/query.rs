//! The GetFindings query of a sync: which findings to read back from Security Hub.
//!
//! Everything becomes an `AwsSecurityFindingFilters` within AWS's documented limits (at most 10
//! filter attributes per request, at most 20 values per attribute): a sync query uses at most 5
//! attributes (`RecordState`, `WorkflowStatus`, `SeverityLabel`, `UpdatedAt`, `AwsAccountId`),
//! and an account list longer than 20 is split into several queries, each paged on its own.
//! Values of one attribute are `EQUALS` filters, which Security Hub joins with OR; attributes
//! are joined with AND.

use aws_sdk_securityhub::types::{
    AwsSecurityFindingFilters, DateFilter, StringFilter, StringFilterComparison,
};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{RecordState, Severity, WorkflowStatus};

/// At most this many values per filter attribute (GetFindings documentation).
pub const MAX_FILTER_VALUES: usize = 20;

/// Which findings a GetFindings read asks for. Build with [`FindingQuery::sync`] (the
/// reconciliation defaults) or [`FindingQuery::everything`], then narrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingQuery {
    record_states: Vec<RecordState>,
    workflow_statuses: Vec<WorkflowStatus>,
    min_severity: Option<Severity>,
    updated_since: Option<DateTime<Utc>>,
    updated_until: Option<DateTime<Utc>>,
    account_ids: Vec<String>,
    finding_ids: Vec<String>,
}

impl FindingQuery {
    /// What `lever sync` reads: `RecordState` ACTIVE, `Workflow.Status` NEW or NOTIFIED, any
    /// severity, any time, any account.
    pub fn sync() -> FindingQuery {
        FindingQuery {
            record_states: vec![RecordState::Active],
            workflow_statuses: vec![WorkflowStatus::New, WorkflowStatus::Notified],
            ..FindingQuery::everything()
        }
    }

    /// No filter at all: every finding Security Hub holds (ARCHIVED and resolved ones too).
    pub fn everything() -> FindingQuery {
        FindingQuery {
            record_states: vec![],
            workflow_statuses: vec![],
            min_severity: None,
            updated_since: None,
            updated_until: None,
            account_ids: vec![],
            finding_ids: vec![],
        }
    }

    /// Only these record states (empty: any).
    pub fn record_states(mut self, states: impl IntoIterator<Item = RecordState>) -> Self {
        self.record_states = dedup(states);
        self
    }

    /// Only these workflow statuses (empty: any).
    pub fn workflow_statuses(mut self, statuses: impl IntoIterator<Item = WorkflowStatus>) -> Self {
        self.workflow_statuses = dedup(statuses);
        self
    }

    /// Only findings whose `Severity.Label` is `min` or more severe (one `EQUALS` per label).
    pub fn min_severity(mut self, min: Severity) -> Self {
        self.min_severity = Some(min);
        self
    }

    /// Only findings updated at or after `since` (`UpdatedAt` `Start`, inclusive).
    pub fn updated_since(mut self, since: DateTime<Utc>) -> Self {
        self.updated_since = Some(since);
        self
    }

    /// Only findings updated at or before `until` (`UpdatedAt` `End`, inclusive).
    pub fn updated_until(mut self, until: DateTime<Utc>) -> Self {
        self.updated_until = Some(until);
        self
    }

    /// Only these accounts (empty: any). More than [`MAX_FILTER_VALUES`] accounts become
    /// several queries (see [`FindingQuery::filters`]).
    pub fn account_ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.account_ids = dedup(ids.into_iter().map(Into::into));
        self
    }

    /// Only these finding `Id`s (empty: any). More than [`MAX_FILTER_VALUES`] ids become
    /// several queries, like accounts.
    pub fn finding_ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.finding_ids = dedup(ids.into_iter().map(Into::into));
        self
    }

    /// The query's conditions, for [`FindingQuery::filters_v2`] (record states, workflow
    /// statuses, severities least severe first, updated since, until, accounts, finding ids).
    #[allow(clippy::type_complexity)]
    pub(super) fn parts(
        &self,
    ) -> (
        &[RecordState],
        &[WorkflowStatus],
        Vec<Severity>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        &[String],
        &[String],
    ) {
        (
            &self.record_states,
            &self.workflow_statuses,
            self.severities(),
            self.updated_since,
            self.updated_until,
            &self.account_ids,
            &self.finding_ids,
        )
    }

    /// The severity labels asked for, least severe first (empty: no severity filter).
    pub fn severities(&self) -> Vec<Severity> {
        match self.min_severity {
            Some(min) => Severity::ALL.into_iter().filter(|s| *s >= min).collect(),
            None => vec![],
        }
    }

    /// The GetFindings filters: one set per chunk of at most [`MAX_FILTER_VALUES`] accounts
    /// and ids (exactly one set when none is named). Each set is paged separately; together they
    /// cover the query.
    pub fn filters(&self) -> Vec<AwsSecurityFindingFilters> {
        let mut base = AwsSecurityFindingFilters::builder();
        for s in &self.record_states {
            base = base.record_state(equals(s.as_str()));
        }
        for w in &self.workflow_statuses {
            base = base.workflow_status(equals(w.as_str()));
        }
        for s in self.severities() {
            base = base.severity_label(equals(s.as_str()));
        }
        if self.updated_since.is_some() || self.updated_until.is_some() {
            base = base.updated_at(
                DateFilter::builder()
                    .set_start(self.updated_since.map(timestamp))
                    .set_end(self.updated_until.map(timestamp))
                    .build(),
            );
        }
        let chunks = |values: &[String]| -> Vec<Vec<String>> {
            if values.is_empty() {
                vec![vec![]]
            } else {
                values
                    .chunks(MAX_FILTER_VALUES)
                    .map(<[String]>::to_vec)
                    .collect()
            }
        };
        let mut out = Vec::new();
        for accounts in chunks(&self.account_ids) {
            for ids in chunks(&self.finding_ids) {
                let b = accounts
                    .iter()
                    .fold(base.clone(), |b, a| b.aws_account_id(equals(a)));
                out.push(ids.iter().fold(b, |b, id| b.id(equals(id))).build());
            }
        }
        out
    }
}

/// A timestamp as Security Hub's filters take it: RFC 3339, UTC, milliseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn equals(value: &str) -> StringFilter {
    StringFilter::builder()
        .value(value)
        .comparison(StringFilterComparison::Equals)
        .build()
}

fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn values(filters: &[StringFilter]) -> Vec<&str> {
        filters
            .iter()
            .inspect(|f| assert_eq!(f.comparison(), Some(&StringFilterComparison::Equals)))
            .map(|f| f.value().unwrap())
            .collect()
    }

    #[test]
    fn sync_defaults() {
        let f = FindingQuery::sync().filters();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(values(f.record_state()), ["ACTIVE"]);
        assert_eq!(values(f.workflow_status()), ["NEW", "NOTIFIED"]);
        assert!(f.severity_label().is_empty());
        assert!(f.updated_at().is_empty());
        assert!(f.aws_account_id().is_empty());
    }

    #[test]
    fn everything_has_no_filter() {
        assert_eq!(
            FindingQuery::everything().filters(),
            vec![AwsSecurityFindingFilters::builder().build()]
        );
    }

    #[test]
    fn severity_at_or_above_the_minimum() {
        let cases = [
            (
                Severity::Informational,
                vec!["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"],
            ),
            (Severity::Medium, vec!["MEDIUM", "HIGH", "CRITICAL"]),
            (Severity::Critical, vec!["CRITICAL"]),
        ];
        for (min, want) in cases {
            let f = FindingQuery::sync().min_severity(min).filters();
            assert_eq!(values(f[0].severity_label()), want, "{min}");
        }
    }

    #[test]
    fn updated_since_and_until() {
        let since = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2024, 5, 2, 0, 0, 0).unwrap();
        let f = FindingQuery::sync().updated_since(since).filters();
        let d = &f[0].updated_at()[0];
        assert_eq!(d.start(), Some("2024-05-01T12:00:00.000Z"));
        assert_eq!(d.end(), None);
        let f = FindingQuery::sync()
            .updated_since(since)
            .updated_until(until)
            .filters();
        let d = &f[0].updated_at()[0];
        assert_eq!(d.end(), Some("2024-05-02T00:00:00.000Z"));
        assert_eq!(f[0].updated_at().len(), 1);
    }

    #[test]
    fn many_accounts_split_into_queries_of_twenty() {
        let ids: Vec<String> = (0..45).map(|i| format!("{:012}", i)).collect();
        let q = FindingQuery::sync()
            .min_severity(Severity::High)
            .account_ids(ids.iter().chain(ids.iter()).cloned());
        let f = q.filters();
        assert_eq!(
            f.iter()
                .map(|f| f.aws_account_id().len())
                .collect::<Vec<_>>(),
            [20, 20, 5]
        );
        let all: Vec<&str> = f.iter().flat_map(|f| values(f.aws_account_id())).collect();
        assert_eq!(all, ids.iter().map(String::as_str).collect::<Vec<_>>());
        for f in &f {
            // Every query carries the other filters.
            assert_eq!(values(f.severity_label()), ["HIGH", "CRITICAL"]);
            assert_eq!(values(f.record_state()), ["ACTIVE"]);
        }
    }

    #[test]
    fn configurable_and_deduplicated_lists() {
        let f = FindingQuery::sync()
            .workflow_statuses([
                WorkflowStatus::New,
                WorkflowStatus::New,
                WorkflowStatus::Suppressed,
            ])
            .record_states([])
            .filters();
        assert_eq!(values(f[0].workflow_status()), ["NEW", "SUPPRESSED"]);
        assert!(f[0].record_state().is_empty());
    }
}
