//! Validation of JSON bodies against the botocore model of Security Hub
//! (`../shared/conformance/securityhub-model/service-2.json`, botocore 1.44.5).
//!
//! Checks, per shape type: `structure` (JSON object, `required` members present and non-null,
//! no unknown members, members bound to a header/URI/query location are skipped), `list`
//! (array, `min`/`max` items), `map` (object, key and value shapes, `min`/`max` entries),
//! `string` (`min`/`max` length in characters, `pattern` as an unanchored ECMA regex, `enum`),
//! `integer`/`long` (integral number, `min`/`max`), `double`/`float` (number), `boolean`,
//! `timestamp` (epoch seconds or an ISO-8601 string), `blob` (base64 string).
//!
//! Limits that AWS documents and enforces but the model does not encode are checked separately
//! ([`DOCUMENTED_LIMITS`]), and their messages say so.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// Limits stated in the model's documentation text or the Security Hub API reference, not in
/// machine-readable constraints: (operation, member path, rule, source).
pub const DOCUMENTED_LIMITS: &[(&str, &str, &str, &str)] = &[
    (
        "BatchUpdateFindings",
        "FindingIdentifiers",
        "at most 100 items",
        "BatchUpdateFindingsRequest.FindingIdentifiers doc: \"up to 100 findings at a time\"",
    ),
    (
        "BatchUpdateFindings",
        "Note.Text",
        "at most 512 characters",
        "Note.Text doc: \"Length Constraints: Minimum of 1. Maximum of 512.\"",
    ),
    (
        "BatchUpdateFindings",
        "Note.UpdatedBy",
        "at most 512 characters",
        "ASFF syntax reference: Note.UpdatedBy maximum length 512",
    ),
    (
        "GetFindings",
        "Filters",
        "at most 10 attributes, at most 20 values each",
        "GetFindingsRequest.Filters doc: \"up to 10 finding attributes ... up to 20 filter values\"",
    ),
    (
        "BatchUpdateFindingsV2",
        "Comment",
        "at most 512 characters",
        "BatchUpdateFindingsV2Request.Comment doc: \"Minimum character length 1. Maximum character length 512.\"",
    ),
    (
        "GetFindingsV2",
        "Filters.CompositeFilters",
        "at most 10 composite filters, at most 20 filters of each type in each",
        "OcsfFindingFilters doc (SHAPES-V2.md): up to 10 composite filters, up to 20 filters per type in each",
    ),
    (
        "BatchImportFindings",
        "Findings[].Resources",
        "1..32 items",
        "AwsSecurityFinding.Resources doc: \"Minimum number of 1 item. Maximum number of 32 items.\"",
    ),
];

/// The Security Hub model.
pub struct AwsModel {
    shapes: Map<String, Value>,
    operations: Map<String, Value>,
    patterns: Mutex<HashMap<String, jsonschema::Validator>>,
}

/// The process-wide model, or `None` when the conformance data is absent.
pub fn model() -> Option<&'static AwsModel> {
    static MODEL: OnceLock<Option<AwsModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            // The whole model when the shared copy has it; the committed fixtures hold only
            // the operations the fake serves, with their shapes (`ops-subset.json`).
            let dir = crate::fakes::openapi::conformance_dir().join("securityhub-model");
            let path = ["service-2.json", "ops-subset.json"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())?;
            let text = std::fs::read_to_string(&path).ok()?;
            let doc: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some(AwsModel {
                shapes: doc["shapes"].as_object().cloned().unwrap_or_default(),
                operations: doc["operations"].as_object().cloned().unwrap_or_default(),
                patterns: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
}

impl AwsModel {
    /// The operation object (`http`, `input`, `output`, `errors`).
    pub fn operation(&self, name: &str) -> Option<&Value> {
        self.operations.get(name)
    }

    /// The raw shape object.
    pub fn shape(&self, name: &str) -> Option<&Value> {
        self.shapes.get(name)
    }

    /// Find the operation for an HTTP method and path (query ignored).
    pub fn operation_for(&self, method: &str, path: &str) -> Option<String> {
        self.operations
            .iter()
            .find(|(_, op)| {
                op["http"]["method"].as_str() == Some(method)
                    && op["http"]["requestUri"]
                        .as_str()
                        .map(|u| u.split('?').next().unwrap_or(u))
                        == Some(path)
            })
            .map(|(name, _)| name.clone())
    }

    /// Validate an operation's request body. Problems are AJV-style, like Security Hub's
    /// own `InvalidInputException` messages (`data.Note.Text should …`).
    pub fn validate_input(&self, operation: &str, body: &Value) -> Vec<String> {
        let Some(shape) = self
            .operations
            .get(operation)
            .and_then(|o| o["input"]["shape"].as_str())
        else {
            return vec![format!("unknown operation {operation}")];
        };
        let mut out = vec![];
        self.check(shape, body, "data", true, &mut out);
        out
    }

    /// Validate an operation's response body.
    pub fn validate_output(&self, operation: &str, body: &Value) -> Vec<String> {
        let Some(shape) = self
            .operations
            .get(operation)
            .and_then(|o| o["output"]["shape"].as_str())
        else {
            return vec![format!("unknown operation {operation}")];
        };
        let mut out = vec![];
        self.check(shape, body, "data", true, &mut out);
        out
    }

    /// Validate a value against a named shape (e.g. `AwsSecurityFinding`).
    pub fn validate_shape(&self, shape: &str, value: &Value) -> Vec<String> {
        let mut out = vec![];
        self.check(shape, value, "data", false, &mut out);
        out
    }

    fn pattern_matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = self.patterns.lock().unwrap();
        let v = cache.entry(pattern.to_string()).or_insert_with(|| {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&json!({"type": "string", "pattern": pattern}))
                .unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
        });
        v.is_valid(&Value::String(s.to_string()))
    }

    fn check(&self, shape_name: &str, v: &Value, at: &str, top: bool, out: &mut Vec<String>) {
        let Some(shape) = self.shapes.get(shape_name) else {
            out.push(format!("{at}: unknown shape {shape_name}"));
            return;
        };
        let min = shape.get("min").and_then(Value::as_f64);
        let max = shape.get("max").and_then(Value::as_f64);
        match shape["type"].as_str().unwrap_or("") {
            // A document shape (`OcsfFinding`): free-form JSON, nothing in the model types it.
            "structure" if shape["document"].as_bool() == Some(true) => {}
            "structure" => {
                let Some(obj) = v.as_object() else {
                    out.push(format!("{at} should be object"));
                    return;
                };
                let members = shape["members"].as_object().cloned().unwrap_or_default();
                let in_body = |m: &Value| !top || m.get("location").is_none();
                for r in shape["required"].as_array().into_iter().flatten() {
                    let r = r.as_str().unwrap_or_default();
                    if members.get(r).is_some_and(in_body) && obj.get(r).is_none_or(Value::is_null)
                    {
                        out.push(format!("{at} should have required property '{r}'"));
                    }
                }
                for (k, val) in obj {
                    match members.get(k) {
                        Some(m) if in_body(m) => {
                            if !val.is_null() {
                                let s = m["shape"].as_str().unwrap_or_default();
                                self.check(s, val, &format!("{at}.{k}"), false, out);
                            }
                        }
                        _ => out.push(format!("{at} should NOT have additional property '{k}'")),
                    }
                }
            }
            "list" => {
                let Some(arr) = v.as_array() else {
                    out.push(format!("{at} should be array"));
                    return;
                };
                if min.is_some_and(|m| (arr.len() as f64) < m) {
                    out.push(format!(
                        "{at} should NOT have fewer than {} items",
                        min.unwrap()
                    ));
                }
                if max.is_some_and(|m| (arr.len() as f64) > m) {
                    out.push(format!(
                        "{at} should NOT have more than {} items",
                        max.unwrap()
                    ));
                }
                let member = shape["member"]["shape"].as_str().unwrap_or_default();
                for (i, x) in arr.iter().enumerate() {
                    self.check(member, x, &format!("{at}[{i}]"), false, out);
                }
            }
            "map" => {
                let Some(obj) = v.as_object() else {
                    out.push(format!("{at} should be object"));
                    return;
                };
                if min.is_some_and(|m| (obj.len() as f64) < m) {
                    out.push(format!(
                        "{at} should NOT have fewer than {} properties",
                        min.unwrap()
                    ));
                }
                if max.is_some_and(|m| (obj.len() as f64) > m) {
                    out.push(format!(
                        "{at} should NOT have more than {} properties",
                        max.unwrap()
                    ));
                }
                let ks = shape["key"]["shape"].as_str().unwrap_or_default();
                let vs = shape["value"]["shape"].as_str().unwrap_or_default();
                for (k, x) in obj {
                    self.check(
                        ks,
                        &Value::String(k.clone()),
                        &format!("{at}['{k}'] (key)"),
                        false,
                        out,
                    );
                    self.check(vs, x, &format!("{at}['{k}']"), false, out);
                }
            }
            "string" => {
                let Some(s) = v.as_str() else {
                    out.push(format!("{at} should be string"));
                    return;
                };
                let len = s.chars().count() as f64;
                if min.is_some_and(|m| len < m) {
                    out.push(format!(
                        "{at} should NOT be shorter than {} characters",
                        min.unwrap()
                    ));
                }
                if max.is_some_and(|m| len > m) {
                    out.push(format!(
                        "{at} should NOT be longer than {} characters",
                        max.unwrap()
                    ));
                }
                if let Some(p) = shape["pattern"].as_str()
                    && !self.pattern_matches(p, s)
                {
                    out.push(format!("{at} should match pattern \"{p}\""));
                }
                if let Some(e) = shape["enum"].as_array()
                    && !e.iter().any(|x| x.as_str() == Some(s))
                {
                    out.push(format!(
                        "{at} should be equal to one of the allowed values {e:?}"
                    ));
                }
            }
            "integer" | "long" => {
                let Some(n) = v
                    .as_i64()
                    .map(|n| n as f64)
                    .or_else(|| v.as_u64().map(|n| n as f64))
                else {
                    out.push(format!("{at} should be integer"));
                    return;
                };
                if min.is_some_and(|m| n < m) {
                    out.push(format!("{at} should be >= {}", min.unwrap()));
                }
                if max.is_some_and(|m| n > m) {
                    out.push(format!("{at} should be <= {}", max.unwrap()));
                }
            }
            "double" | "float" => {
                if !v.is_number() {
                    out.push(format!("{at} should be number"));
                }
            }
            "boolean" => {
                if !v.is_boolean() {
                    out.push(format!("{at} should be boolean"));
                }
            }
            "timestamp" => {
                let ok = v.is_number()
                    || v.as_str()
                        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
                if !ok {
                    out.push(format!("{at} should be a timestamp"));
                }
            }
            "blob" => {
                if !v.is_string() {
                    out.push(format!("{at} should be a base64 string"));
                }
            }
            other => out.push(format!("{at}: unsupported shape type {other}")),
        }
    }
}

/// Checks of [`DOCUMENTED_LIMITS`] for one request. Messages end with the limit's source.
pub fn check_documented_limits(operation: &str, body: &Value) -> Vec<String> {
    let mut out = vec![];
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    let src = |path: &str| {
        DOCUMENTED_LIMITS
            .iter()
            .find(|(op, p, _, _)| *op == operation && *p == path)
            .map(|(_, _, _, s)| *s)
            .unwrap_or("")
    };
    match operation {
        "BatchUpdateFindings" => {
            let n = body["FindingIdentifiers"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            if n > 100 {
                out.push(format!(
                    "data.FindingIdentifiers should NOT have more than 100 items (documented limit, not in the model: {})",
                    src("FindingIdentifiers")
                ));
            }
            for field in ["Text", "UpdatedBy"] {
                if chars(&body["Note"][field]) > 512 {
                    out.push(format!(
                        "data.Note.{field} should NOT be longer than 512 characters (documented limit, not in the model: {})",
                        src(&format!("Note.{field}"))
                    ));
                }
            }
        }
        "GetFindings" => {
            if let Some(f) = body["Filters"].as_object() {
                if f.len() > 10 {
                    out.push(format!(
                        "data.Filters should NOT have more than 10 attributes (documented limit, not in the model: {})",
                        src("Filters")
                    ));
                }
                for (k, v) in f {
                    if v.as_array().is_some_and(|a| a.len() > 20) {
                        out.push(format!(
                            "data.Filters.{k} should NOT have more than 20 items (documented limit, not in the model: {})",
                            src("Filters")
                        ));
                    }
                }
            }
        }
        "BatchUpdateFindingsV2" if chars(&body["Comment"]) > 512 => {
            out.push(format!(
                "data.Comment should NOT be longer than 512 characters (documented limit, not in the model: {})",
                src("Comment")
            ));
        }
        "GetFindingsV2" => {
            let composites = body["Filters"]["CompositeFilters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if composites.len() > 10 {
                out.push(format!(
                    "data.Filters.CompositeFilters should NOT have more than 10 items (documented limit, not in the model: {})",
                    src("Filters.CompositeFilters")
                ));
            }
            for (i, c) in composites.iter().enumerate() {
                for (k, v) in c.as_object().into_iter().flatten() {
                    if v.as_array().is_some_and(|a| a.len() > 20) {
                        out.push(format!(
                            "data.Filters.CompositeFilters[{i}].{k} should NOT have more than 20 items (documented limit, not in the model: {})",
                            src("Filters.CompositeFilters")
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    out
}
