//! The outer shapes findings arrive in: a single finding, an array, a GetFindings response and
//! a Security Hub EventBridge event. Each finding in them is ASFF or OCSF, told apart by
//! [`crate::ocsf::looks_like_ocsf`] and parsed by the parser of its format.

use serde_json::Value;

use crate::controls::Catalog;

use super::value::{Obj, cut, describe, type_name};
use super::{DocumentError, Intake, Shape, finding};

/// EventBridge `detail-type` of findings Security Hub imported (new or updated).
pub const DETAIL_TYPE_IMPORTED: &str = "Security Hub Findings - Imported";
/// EventBridge `detail-type` of findings sent to a custom action.
pub const DETAIL_TYPE_CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";

const EXPECTED: &str = "a finding object (ASFF, or OCSF with class_uid and metadata), an array \
    of findings, a GetFindings or GetFindingsV2 response ({\"Findings\": [...]}) or a Security \
    Hub EventBridge event (detail-type \"Security Hub Findings - Imported\", \"Security Hub \
    Findings - Custom Action\" or \"Findings Imported V2\")";

/// Top-level keys that only an ASFF finding has; one of them makes an object a finding.
const FINDING_KEYS: [&str; 8] = [
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "Title",
    "Severity",
    "Resources",
];

fn doc_error(message: impl Into<String>) -> DocumentError {
    DocumentError {
        message: message.into(),
    }
}

/// Bytes → JSON, with errors naming line and column.
pub(crate) fn parse_bytes(bytes: &[u8], catalog: &Catalog) -> Result<Intake, DocumentError> {
    // A UTF-8 byte-order mark is not JSON, but editors and some tools write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(doc_error(format!("empty document: expected {EXPECTED}")));
    }
    // Without the parts no parser reads (`lean`): a third of a finding's bytes.
    let value: Value = super::lean::from_slice(bytes).map_err(|e| {
        let full = e.to_string();
        // serde_json appends " at line L column C"; say it once, up front.
        let what = match full.rfind(" at line ") {
            Some(pos) => &full[..pos],
            None => full.as_str(),
        };
        doc_error(format!(
            "invalid JSON at line {}, column {}: {what}",
            e.line(),
            e.column()
        ))
    })?;
    parse_value(&value, catalog)
}

/// An already-parsed JSON document of any accepted shape.
pub(crate) fn parse_value(value: &Value, catalog: &Catalog) -> Result<Intake, DocumentError> {
    match value {
        Value::Array(items) => Ok(intake(Shape::Array, None, None, items, catalog)),
        Value::Object(map) => {
            if let Some(dt) = map.get("detail-type") {
                return event(map, dt, catalog);
            }
            if let Some(findings) = map.get("Findings") {
                return match findings {
                    Value::Array(items) => {
                        Ok(intake(Shape::GetFindings, None, None, items, catalog))
                    }
                    other => Err(doc_error(format!(
                        "GetFindings response: \"Findings\" must be an array of findings, found {}",
                        describe(other)
                    ))),
                };
            }
            if crate::ocsf::looks_like_ocsf(value)
                || FINDING_KEYS.iter().any(|k| map.contains_key(*k))
            {
                let entries = vec![parse_any(value, 0, catalog)];
                return Ok(Intake {
                    shape: Shape::Single,
                    event_id: None,
                    detail_type: None,
                    entries,
                });
            }
            Err(doc_error(format!(
                "unrecognised document: expected {EXPECTED}; found an object with keys {}",
                key_list(map)
            )))
        }
        other => Err(doc_error(format!(
            "unrecognised document: expected {EXPECTED}; found a JSON {}",
            type_name(other)
        ))),
    }
}

fn intake(
    shape: Shape,
    event_id: Option<String>,
    detail_type: Option<String>,
    items: &[Value],
    catalog: &Catalog,
) -> Intake {
    Intake {
        shape,
        event_id,
        detail_type,
        entries: items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_any(v, i, catalog))
            .collect(),
    }
}

/// One finding in whichever format it is: OCSF when it has `class_uid` and `metadata`, else
/// ASFF.
pub(crate) fn parse_any(
    v: &Value,
    index: usize,
    catalog: &Catalog,
) -> Result<crate::domain::Finding, super::FindingError> {
    if crate::ocsf::looks_like_ocsf(v) {
        crate::ocsf::parse_finding(v, index, catalog)
    } else {
        finding::parse(v, index, catalog)
    }
}

/// An EventBridge event carrying findings in `detail.findings`.
fn event(map: &Obj, detail_type: &Value, catalog: &Catalog) -> Result<Intake, DocumentError> {
    let Some(dt) = detail_type.as_str() else {
        return Err(doc_error(format!(
            "EventBridge event: \"detail-type\" must be a string, found {}",
            describe(detail_type)
        )));
    };
    if dt != DETAIL_TYPE_IMPORTED
        && dt != DETAIL_TYPE_CUSTOM_ACTION
        && dt != crate::ocsf::DETAIL_TYPE_IMPORTED_V2
    {
        return Err(doc_error(format!(
            "unsupported EventBridge detail-type {:?}: expected \"{DETAIL_TYPE_IMPORTED}\", \
             \"{DETAIL_TYPE_CUSTOM_ACTION}\" or \"{}\" (events that carry findings)",
            cut(dt, 80),
            crate::ocsf::DETAIL_TYPE_IMPORTED_V2
        )));
    }
    let findings = match map.get("detail") {
        Some(Value::Object(detail)) => match detail.get("findings") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(doc_error(format!(
                    "EventBridge event {dt:?}: detail.findings must be an array, found {}",
                    describe(other)
                )));
            }
            None => {
                return Err(doc_error(format!(
                    "EventBridge event {dt:?}: detail.findings is missing (detail has keys {})",
                    key_list(detail)
                )));
            }
        },
        Some(other) => {
            return Err(doc_error(format!(
                "EventBridge event {dt:?}: detail must be an object, found {}",
                describe(other)
            )));
        }
        None => {
            return Err(doc_error(format!(
                "EventBridge event {dt:?}: detail is missing"
            )));
        }
    };
    let event_id = map.get("id").and_then(Value::as_str).map(str::to_string);
    Ok(intake(
        Shape::EventBridge,
        event_id,
        Some(dt.to_string()),
        findings,
        catalog,
    ))
}

/// The first few keys of an object, for "what was found" in messages.
fn key_list(map: &Obj) -> String {
    const MAX: usize = 8;
    if map.is_empty() {
        return "(none: the object is empty)".into();
    }
    let mut keys: Vec<String> = map
        .keys()
        .take(MAX)
        .map(|k| format!("{:?}", cut(k, 40)))
        .collect();
    if map.len() > MAX {
        keys.push(format!("and {} more", map.len() - MAX));
    }
    keys.join(", ")
}
