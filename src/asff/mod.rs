//! ASFF intake: Security Hub findings in every shape they arrive in.
//!
//! Accepted documents: a single finding object, a JSON array of findings, a GetFindings
//! response (`{"Findings": [...]}`) and an EventBridge event (`detail-type` "Security Hub
//! Findings - Imported" or "Security Hub Findings - Custom Action", findings in
//! `detail.findings`). Parsing is lenient on unknown fields and on what Lever can do without;
//! a finding is rejected, with a reason naming the field and its position, only when it lacks
//! what Lever needs: `Id`, `ProductArn`, `AwsAccountId`, a severity, a title and at least one
//! resource `Id`. One bad finding never drops the others.
//!
//! The same outer shapes may carry OCSF findings (Security Hub v2): an object with `class_uid`
//! and `metadata` is handed to [`crate::ocsf::parse_finding`], and an EventBridge event of
//! detail-type `Findings Imported V2` is accepted too, so every caller of [`parse_document`]
//! (intake, `lever plan`) reads both formats.

use std::fmt;

use crate::controls::Catalog;
use crate::domain::Finding;

mod document;
pub(crate) mod finding;
mod lean;
pub(crate) mod source;
pub(crate) mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use document::{DETAIL_TYPE_CUSTOM_ACTION, DETAIL_TYPE_IMPORTED};
pub use finding::WHOLE_FINDING;
pub use source::CONSOLIDATED;

/// The outer shape a document had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Single,
    Array,
    GetFindings,
    EventBridge,
}

/// A parsed document: every finding in it, each parsed or rejected on its own.
#[derive(Debug, Clone)]
pub struct Intake {
    pub shape: Shape,
    /// EventBridge `id`, when the document is an event.
    pub event_id: Option<String>,
    /// EventBridge `detail-type`, when the document is an event.
    pub detail_type: Option<String>,
    /// One entry per finding, in document order.
    pub entries: Vec<Result<Finding, FindingError>>,
}

impl Intake {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.entries.iter().filter_map(|e| e.as_ref().ok())
    }
    pub fn rejections(&self) -> impl Iterator<Item = &FindingError> {
        self.entries.iter().filter_map(|e| e.as_ref().err())
    }
}

/// Why one finding was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingError {
    /// Position of the finding in its document (0-based).
    pub index: usize,
    /// The ASFF field at fault, as a path (`Resources[0].Id`, `Severity`).
    pub field: String,
    pub message: String,
}

impl fmt::Display for FindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "finding[{}]: {}: {}",
            self.index, self.field, self.message
        )
    }
}

impl std::error::Error for FindingError {}

/// Why a whole document was unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DocumentError {}

/// Parses a document of any accepted shape.
///
/// Empty input, invalid JSON (the error names line and column), an EventBridge event of another
/// detail-type (e.g. "Security Hub Insight Results") and any other shape are a
/// [`DocumentError`]; everything else is an [`Intake`] whose entries are parsed one by one.
pub fn parse_document(bytes: &[u8], catalog: &Catalog) -> Result<Intake, DocumentError> {
    document::parse_bytes(bytes, catalog)
}

/// [`parse_document`] for a document already parsed as JSON (a request body extractor, a
/// GetFindings page turned into JSON).
pub fn parse_value(value: &serde_json::Value, catalog: &Catalog) -> Result<Intake, DocumentError> {
    document::parse_value(value, catalog)
}

/// One finding object in whichever format it is: OCSF (Security Hub v2, an object with
/// `class_uid` and `metadata`, see [`crate::ocsf`]) or ASFF, as documents are read. GetFindings
/// and GetFindingsV2 pages go through this, like pushed events.
pub fn parse_any_finding(
    value: &serde_json::Value,
    index: usize,
    catalog: &Catalog,
) -> Result<Finding, FindingError> {
    document::parse_any(value, index, catalog)
}

/// Parses one ASFF finding object; `index` is its position, used in errors.
///
/// Rejected only when Lever cannot work with it: `Id`, `ProductArn`, `AwsAccountId` or `Title`
/// missing, blank or not a string; no usable severity (field `Severity`); no resource with a
/// non-empty `Id` (field `Resources`, `Resources[i]` or `Resources[i].Id`); not an object at all
/// (field [`WHOLE_FINDING`]). See the module's submodules for the fallbacks of every field.
///
/// A NUL character anywhere in the finding (legal in JSON, refused by PostgreSQL in text and
/// JSONB) becomes U+FFFD, so every store keeps the same finding.
pub fn parse_finding(
    value: &serde_json::Value,
    index: usize,
    catalog: &Catalog,
) -> Result<Finding, FindingError> {
    if crate::domain::nul::has_nul(value) {
        return finding::parse(&crate::domain::nul::without_nul(value), index, catalog);
    }
    finding::parse(value, index, catalog)
}
