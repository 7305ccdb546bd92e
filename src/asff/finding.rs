//! One ASFF finding object → [`Finding`]. Lenient on everything Lever can do without; a
//! rejection names the field path and what is wrong with it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::controls::Catalog;
use crate::domain::{
    ComplianceStatus, Finding, Note, RecordState, Resource, Severity, Vulnerability,
    VulnerablePackage, WorkflowStatus,
};

use super::FindingError;
use super::source;
use super::value::{
    Obj, cut, describe, looks_like_region, obj, opt_str, opt_string, product_field,
};

/// Field path used when the finding itself is not a JSON object.
pub const WHOLE_FINDING: &str = "(finding)";

pub(crate) fn reject(
    index: usize,
    field: impl Into<String>,
    message: impl Into<String>,
) -> FindingError {
    FindingError {
        index,
        field: field.into(),
        message: message.into(),
    }
}

/// What is wrong with a value that should be a non-blank string, or `None` when nothing is.
pub(crate) fn string_problem(v: Option<&Value>) -> Option<String> {
    match v {
        None => Some("missing (a non-empty string is required)".into()),
        Some(Value::String(s)) if s.trim().is_empty() => Some(format!(
            "empty: found {}, a non-empty string is required",
            describe(v?)
        )),
        Some(Value::String(_)) => None,
        Some(other) => Some(format!(
            "wrong type: expected a non-empty string, found {}",
            describe(other)
        )),
    }
}

/// A required, non-blank string field at the top level of the finding.
fn required<'a>(f: &'a Obj, key: &str, index: usize) -> Result<&'a str, FindingError> {
    let v = f.get(key);
    match string_problem(v) {
        Some(problem) => Err(reject(index, key, problem)),
        None => Ok(v.and_then(Value::as_str).expect("checked to be a string")),
    }
}

pub(crate) fn parse(
    value: &Value,
    index: usize,
    catalog: &Catalog,
) -> Result<Finding, FindingError> {
    let Some(f) = value.as_object() else {
        return Err(reject(
            index,
            WHOLE_FINDING,
            format!(
                "wrong type: a finding must be a JSON object, found {}",
                describe(value)
            ),
        ));
    };

    let id = required(f, "Id", index)?;
    let product_arn = required(f, "ProductArn", index)?;
    let account_id = required(f, "AwsAccountId", index)?;
    let title = required(f, "Title", index)?;
    let severity = severity(f, index)?;
    let resources = resources(f, index)?;

    let product = product_of(product_arn).to_string();
    let generator_id = opt_str(f, "GeneratorId");
    let types = string_list(f.get("Types"));
    let region = opt_str(f, "Region")
        .or(resources[0].region.as_deref())
        .or_else(|| region_of(product_arn))
        .unwrap_or("global")
        .to_string();
    let source = source::source(f, &product, generator_id, &types, title, catalog);
    let (remediation_text, remediation_url) = remediation(f);

    Ok(Finding {
        id: id.to_string(),
        product_arn: product_arn.to_string(),
        product_name: opt_string(f, "ProductName")
            .or_else(|| product_field(f, "aws/securityhub/ProductName").map(str::to_string)),
        generator_id: generator_id.map(str::to_string),
        account_id: account_id.to_string(),
        region,
        title: title.to_string(),
        description: opt_str(f, "Description").unwrap_or(title).to_string(),
        severity,
        types,
        created_at: opt_string(f, "CreatedAt"),
        updated_at: opt_string(f, "UpdatedAt"),
        first_observed_at: opt_string(f, "FirstObservedAt"),
        last_observed_at: opt_string(f, "LastObservedAt"),
        compliance: obj(f, "Compliance")
            .and_then(|c| opt_str(c, "Status"))
            .and_then(|s| ComplianceStatus::parse(&s.trim().to_ascii_uppercase())),
        compliance_reasons: status_reasons(f),
        record_state: opt_str(f, "RecordState")
            .and_then(|s| RecordState::parse(&s.trim().to_ascii_uppercase()))
            .unwrap_or_default(),
        workflow: workflow(f),
        remediation_text,
        remediation_url,
        source_url: opt_string(f, "SourceUrl"),
        resources,
        note: note(f),
        product,
        source,
        vulnerabilities: vulnerabilities(f),
    })
}

/// `company/product` from the `product/…` part of a product ARN
/// (`arn:aws:securityhub:us-east-1::product/aws/guardduty` → `aws/guardduty`). An ARN without
/// a `product/` part is returned whole: odd, but still the product's identity.
pub(crate) fn product_of(product_arn: &str) -> &str {
    let Some(pos) = product_arn.find(":product/") else {
        return product_arn.trim();
    };
    let rest = &product_arn[pos + ":product/".len()..];
    let mut slashes = rest.match_indices('/').map(|(i, _)| i);
    let _company_end = slashes.next();
    match slashes.next() {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// The region named in an ARN. Looks at every `:`-separated segment before the resource, since
/// real ARNs are sometimes malformed (`arn:aws::securityhub:us-east-1::product/aws/guardduty`).
pub(crate) fn region_of(arn: &str) -> Option<&str> {
    let head = match arn.find("product/") {
        Some(pos) => &arn[..pos],
        None => arn,
    };
    head.split(':').find(|s| looks_like_region(s))
}

/// The severity, from the first usable of: `Severity.Label`, `Severity.Normalized` (number or
/// numeric string, 0-100), `FindingProviderFields.Severity.Label`,
/// `ProductFields["aws/securityhub/SeverityLabel"]`.
fn severity(f: &Obj, index: usize) -> Result<Severity, FindingError> {
    let mut problems: Vec<String> = Vec::new();
    let sev = match f.get("Severity") {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => None,
        Some(other) => {
            problems.push(format!(
                "Severity is {} (expected an object)",
                describe(other)
            ));
            None
        }
    };
    if let Some(sev) = sev {
        if let Some(s) = label(sev.get("Label"), "Severity.Label", &mut problems) {
            return Ok(s);
        }
        if let Some(s) = normalized(sev.get("Normalized"), &mut problems) {
            return Ok(s);
        }
    }
    let provider = obj(f, "FindingProviderFields")
        .and_then(|p| obj(p, "Severity"))
        .and_then(|s| s.get("Label"));
    if let Some(s) = label(
        provider,
        "FindingProviderFields.Severity.Label",
        &mut problems,
    ) {
        return Ok(s);
    }
    // (In `lean::PRODUCT_FIELDS_READ`, as every `ProductFields` entry read.)
    let pf = obj(f, "ProductFields").and_then(|p| p.get("aws/securityhub/SeverityLabel"));
    if let Some(s) = label(
        pf,
        "ProductFields[\"aws/securityhub/SeverityLabel\"]",
        &mut problems,
    ) {
        return Ok(s);
    }
    let message = if problems.is_empty() {
        "missing: none of Severity.Label, Severity.Normalized, \
         FindingProviderFields.Severity.Label or ProductFields[\"aws/securityhub/SeverityLabel\"] is present"
            .to_string()
    } else {
        format!("no usable severity: {}", problems.join("; "))
    };
    Err(reject(index, "Severity", message))
}

/// A severity label at `path`; an unusable one is recorded in `problems`.
fn label(v: Option<&Value>, path: &str, problems: &mut Vec<String>) -> Option<Severity> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.parse::<Severity>() {
            Ok(sev) => Some(sev),
            Err(_) => {
                problems.push(format!(
                    "{path} {:?} is not a severity label (INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)",
                    cut(s, 40)
                ));
                None
            }
        },
        Some(other) => {
            problems.push(format!("{path} is {} (expected a string)", describe(other)));
            None
        }
    }
}

/// `Severity.Normalized` as a label: a number, or a string holding one (`"40"` in a real AWS
/// doc sample).
fn normalized(v: Option<&Value>, problems: &mut Vec<String>) -> Option<Severity> {
    let n = match v? {
        Value::Null => return None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let sev = n.and_then(Severity::from_normalized);
    if sev.is_none() {
        problems.push(format!(
            "Severity.Normalized is {} (expected a number from 0 to 100)",
            describe(v?)
        ));
    }
    sev
}

/// Every resource with a usable `Id`. At least one is required; when none is usable the error
/// names the first problem (`Resources`, `Resources[0]`, `Resources[0].Id`).
fn resources(f: &Obj, index: usize) -> Result<Vec<Resource>, FindingError> {
    let list = match f.get("Resources") {
        Some(Value::Array(a)) => a,
        None => {
            return Err(reject(
                index,
                "Resources",
                "missing (at least one resource with an Id is required)",
            ));
        }
        Some(other) => {
            return Err(reject(
                index,
                "Resources",
                format!("wrong type: expected an array, found {}", describe(other)),
            ));
        }
    };
    if list.is_empty() {
        return Err(reject(
            index,
            "Resources",
            "empty array (at least one resource with an Id is required)",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    let mut first_problem: Option<FindingError> = None;
    for (i, r) in list.iter().enumerate() {
        let Some(r) = r.as_object() else {
            first_problem.get_or_insert_with(|| {
                reject(
                    index,
                    format!("Resources[{i}]"),
                    format!("wrong type: expected an object, found {}", describe(r)),
                )
            });
            continue;
        };
        if let Some(problem) = string_problem(r.get("Id")) {
            first_problem
                .get_or_insert_with(|| reject(index, format!("Resources[{i}].Id"), problem));
            continue;
        }
        out.push(resource(r));
    }
    match first_problem {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

fn resource(r: &Obj) -> Resource {
    let tags = match r.get("Tags") {
        Some(Value::Object(t)) => t
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    };
    Resource {
        id: r
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        kind: opt_string(r, "Type"),
        region: opt_string(r, "Region"),
        tags,
    }
}

/// The non-blank strings of an array; anything else is skipped.
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `Workflow.Status`, else the deprecated `WorkflowState`, else NEW.
///
/// `WorkflowState` values map as Security Hub maps them onto `Workflow.Status`: ASSIGNED and
/// IN_PROGRESS mean someone was told (NOTIFIED), DEFERRED means SUPPRESSED.
fn workflow(f: &Obj) -> WorkflowStatus {
    let status = obj(f, "Workflow")
        .and_then(|w| opt_str(w, "Status"))
        .and_then(|s| WorkflowStatus::parse(&s.trim().to_ascii_uppercase()));
    if let Some(s) = status {
        return s;
    }
    match opt_str(f, "WorkflowState")
        .map(|s| s.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("NEW") => WorkflowStatus::New,
        Some("ASSIGNED" | "IN_PROGRESS") => WorkflowStatus::Notified,
        Some("DEFERRED") => WorkflowStatus::Suppressed,
        Some("RESOLVED") => WorkflowStatus::Resolved,
        _ => WorkflowStatus::New,
    }
}

/// `Remediation.Recommendation.{Text,Url}`; the URL falls back to
/// `ProductFields.RecommendationUrl`.
fn remediation(f: &Obj) -> (Option<String>, Option<String>) {
    let rec = obj(f, "Remediation").and_then(|r| obj(r, "Recommendation"));
    let text = rec.and_then(|r| opt_string(r, "Text"));
    let url = rec
        .and_then(|r| opt_str(r, "Url"))
        .or_else(|| product_field(f, "RecommendationUrl"))
        .map(str::to_string);
    (text, url)
}

/// `Compliance.StatusReasons[].ReasonCode`, trimmed and upper-cased; entries without a usable
/// code are skipped.
fn status_reasons(f: &Obj) -> Vec<String> {
    match obj(f, "Compliance").and_then(|c| c.get("StatusReasons")) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|r| r.as_object().and_then(|r| opt_str(r, "ReasonCode")))
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// `Note`, when it has text.
fn note(f: &Obj) -> Option<Note> {
    let n = obj(f, "Note")?;
    Some(Note {
        text: opt_string(n, "Text")?,
        updated_by: opt_string(n, "UpdatedBy").unwrap_or_default(),
        updated_at: opt_string(n, "UpdatedAt"),
    })
}

/// `Vulnerabilities[]`, leniently: entries that are not objects are skipped, at most 20
/// vulnerabilities of at most 50 packages each are kept, strings are cut to 200 characters.
fn vulnerabilities(f: &Obj) -> Vec<Vulnerability> {
    let text = |o: &Obj, key: &str| opt_str(o, key).map(|s| cut(s.trim(), 200));
    let Some(list) = f.get("Vulnerabilities").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_object)
        .take(20)
        .map(|v| {
            let packages = v
                .get("VulnerablePackages")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(Value::as_object)
                        .filter_map(|p| {
                            let installed =
                                text(p, "Version").map(|ver| match text(p, "Release") {
                                    Some(rel) => format!("{ver}-{rel}"),
                                    None => ver,
                                });
                            Some(VulnerablePackage {
                                name: text(p, "Name")?,
                                installed_version: installed,
                                fixed_in_version: text(p, "FixedInVersion"),
                                package_manager: text(p, "PackageManager"),
                            })
                        })
                        .take(50)
                        .collect()
                })
                .unwrap_or_default();
            // The score of the newest CVSS version given (3.1 over 3.0 over 2.0), first on ties.
            let cvss = v
                .get("Cvss")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .filter_map(|c| {
                    let score = c.get("BaseScore")?.as_f64()?;
                    let version = text(c, "Version").unwrap_or_default();
                    Some((version, score))
                })
                .fold(None::<(String, f64)>, |best, (ver, score)| match best {
                    Some((bv, bs)) if version_key(&bv) >= version_key(&ver) => Some((bv, bs)),
                    _ => Some((ver, score)),
                });
            Vulnerability {
                id: text(v, "Id").unwrap_or_default(),
                packages,
                cvss_score: cvss.as_ref().map(|(_, s)| format!("{s}")),
                cvss_version: cvss.map(|(v, _)| v).filter(|v| !v.is_empty()),
                fix_available: text(v, "FixAvailable"),
            }
        })
        .collect()
}

/// `3.1` → `[3, 1]`, for comparing CVSS versions.
pub(crate) fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}
