//! ASFF intake: Security Hub findings in every shape they arrive in.
//!
//! Accepted documents: a single finding object, a JSON array of findings, a GetFindings
//! response (`{"Findings": [...]}`) and an EventBridge event (`detail-type` "Security Hub
//! Findings - Imported" or "Security Hub Findings - Custom Action", findings in
//! `detail.findings`). Parsing is lenient on unknown fields and on what Lever can do without;
//! a finding is rejected, with a reason naming the field and its position, only when it lacks
//! what Lever needs: `Id`, `ProductArn`, `AwsAccountId`, a severity, a title and at least one
//! resource `Id`. One bad finding never drops the others.

use std::fmt;

use crate::controls::Catalog;
use crate::domain::Finding;

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
pub fn parse_document(bytes: &[u8], catalog: &Catalog) -> Result<Intake, DocumentError> {
    let _ = (bytes, catalog);
    unimplemented!("asff::parse_document")
}

/// Parses one ASFF finding object; `index` is its position, used in errors.
pub fn parse_finding(
    value: &serde_json::Value,
    index: usize,
    catalog: &Catalog,
) -> Result<Finding, FindingError> {
    let _ = (value, index, catalog);
    unimplemented!("asff::parse_finding")
}
