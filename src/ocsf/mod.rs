//! OCSF intake: findings of the newer AWS Security Hub (the one that emits OCSF: EventBridge
//! `Findings Imported V2`, API `GetFindingsV2`), parsed into the same domain [`Finding`] the
//! ASFF parser produces, so one problem gets one stable key whichever format reports it.
//!
//! Format detection is per finding: an object with `class_uid` and `metadata` is OCSF,
//! anything else is ASFF. The outer shapes (a single finding, an array, `{"Findings": [...]}` as
//! GetFindingsV2 returns it, an EventBridge event whose `detail.findings` carries the findings)
//! are read by [`crate::asff::parse_document`], which hands each OCSF finding to
//! [`parse_finding`]; an EventBridge event of detail-type [`DETAIL_TYPE_IMPORTED_V2`] is
//! accepted there beside the ASFF ones.
//!
//! Lenient like the ASFF parser: a finding is rejected, with the OCSF field path and its
//! position, only when it lacks what Lever needs: `finding_info.uid`, `metadata.product.uid`,
//! `cloud.account.uid` (the three together identify a finding to BatchUpdateFindingsV2),
//! `finding_info.title`, a usable severity and at least one resource with a `uid`.
//!
//! What maps to what is in [`finding`]; resource identities (OCSF `uid` is often not an ARN)
//! in [`resource`].

use crate::asff::FindingError;
use crate::controls::Catalog;
use crate::domain::Finding;

mod finding;
mod resource;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// EventBridge `detail-type` of findings the OCSF Security Hub imported (new or updated).
pub const DETAIL_TYPE_IMPORTED_V2: &str = "Findings Imported V2";

pub use crate::domain::is_v2_product_arn as is_v2_product;

/// Whether a JSON value is an OCSF finding: an object with `class_uid` and `metadata`.
pub fn looks_like_ocsf(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.contains_key("class_uid") && o.contains_key("metadata"))
}

/// Parses one OCSF finding object; `index` is its position in its document, used in errors.
///
/// A NUL character anywhere in the finding becomes U+FFFD, as for ASFF, so every store keeps
/// the same finding.
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
