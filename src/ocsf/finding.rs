//! One OCSF finding object → [`Finding`]. What maps to what:
//!
//! | `Finding` | OCSF |
//! |---|---|
//! | `id` | `finding_info.uid` (required) |
//! | `product_arn` | `metadata.product.uid` (required; a `productv2/…` ARN) |
//! | `product` | `company/product` of that ARN (`aws/securityhub`, `aws/guardduty`, `aws/inspector`) |
//! | `account_id` | `cloud.account.uid` (required) |
//! | `region` | `cloud.region`, else the first resource's region, else the product ARN's, else `global` |
//! | `title`, `description` | `finding_info.title` (required), `finding_info.desc` (else the title) |
//! | `severity` | `severity_id` 1–6, else the `severity` word, else `vendor_attributes.severity_id`/`severity` |
//! | `workflow`, `record_state` | `status_id` (1 New, 2 In Progress → NOTIFIED, 3 Suppressed, 4 Resolved, 5 Archived → RESOLVED and ARCHIVED), else `status` |
//! | `compliance` | `compliance.status_id` (1 Pass, 2 Warning, 3 Fail), else `compliance.status` |
//! | `compliance_reasons` | `compliance.assessments[].name` |
//! | times | `finding_info.{created,modified,first_seen,last_seen}_time_dt` (or the epoch-ms twin) |
//! | `remediation_*` | `remediation.desc`, the first `remediation.references[]` URL |
//! | `note` | `comment` |
//! | `vulnerabilities` | `vulnerabilities[].cve.uid`, `.affected_packages[]`, `.cve.cvss[]`, `.is_fix_available` |
//! | `source` | see [`source`] |

use std::collections::BTreeMap;

use serde_json::Value;

use crate::asff::FindingError;
use crate::asff::finding::{reject, string_list, string_problem, version_key};

use crate::asff::source::{GUARDDUTY, INSPECTOR, SECURITY_HUB, control_from_ids};
use crate::asff::value::{Obj, cut, describe, looks_like_region, obj, opt_str, opt_string};
use crate::asff::{WHOLE_FINDING, finding::region_of};
use crate::controls::Catalog;
use crate::domain::{
    ComplianceStatus, Finding, Note, RecordState, Severity, Source, Vulnerability,
    VulnerablePackage, WorkflowStatus,
};

use super::resource;

/// A required non-blank string at `path` (dot-separated object keys).
fn required<'a>(f: &'a Obj, path: &str, index: usize) -> Result<&'a str, FindingError> {
    let mut parts = path.split('.').peekable();
    let mut cur = f;
    let mut walked = String::new();
    while let Some(key) = parts.next() {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        let v = cur.get(key);
        if parts.peek().is_none() {
            return match string_problem(v) {
                Some(problem) => Err(reject(index, path, problem)),
                None => Ok(v.and_then(Value::as_str).expect("checked to be a string")),
            };
        }
        cur = match v {
            Some(Value::Object(o)) => o,
            None => {
                return Err(reject(
                    index,
                    path,
                    format!(
                        "missing: {walked} is absent (a non-empty string is required at {path})"
                    ),
                ));
            }
            Some(other) => {
                return Err(reject(
                    index,
                    path,
                    format!(
                        "wrong type: {walked} must be an object, found {}",
                        describe(other)
                    ),
                ));
            }
        };
    }
    unreachable!("a path has at least one key")
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
    let id = required(f, "finding_info.uid", index)?;
    let product_arn = required(f, "metadata.product.uid", index)?;
    let account_id = required(f, "cloud.account.uid", index)?;
    let title = required(f, "finding_info.title", index)?;
    let severity = severity(f, index)?;
    let info = obj(f, "finding_info").expect("checked by required()");
    let cloud_region = obj(f, "cloud")
        .and_then(|c| opt_str(c, "region"))
        .filter(|r| looks_like_region(r));
    let resources = resource::resources(f, index, account_id, cloud_region)?;
    let region = cloud_region
        .or(resources
            .iter()
            .find_map(|r| r.region.as_deref().filter(|r| looks_like_region(r))))
        .or_else(|| region_of(product_arn))
        .unwrap_or("global")
        .to_string();
    let product = product_of(product_arn).to_string();
    let types = string_list(info.get("types"));
    let analytic = obj(info, "analytic");
    let generator_id = analytic
        .and_then(|a| opt_str(a, "name").or_else(|| opt_str(a, "uid")))
        .map(str::to_string);
    let vulnerabilities = vulnerabilities(f);
    let source = source(f, id, &product, &types, title, &vulnerabilities, catalog);
    let (workflow, record_state) = status(f);
    let remediation = obj(f, "remediation");
    let compliance = obj(f, "compliance");
    Ok(Finding {
        id: id.to_string(),
        product_arn: product_arn.to_string(),
        product,
        product_name: obj(f, "metadata")
            .and_then(|m| obj(m, "product"))
            .and_then(|p| opt_string(p, "name")),
        generator_id,
        account_id: account_id.to_string(),
        region,
        title: title.to_string(),
        description: opt_str(info, "desc").unwrap_or(title).to_string(),
        severity,
        types,
        created_at: time(info, "created_time"),
        updated_at: time(info, "modified_time").or_else(|| time(f, "time")),
        first_observed_at: time(info, "first_seen_time"),
        last_observed_at: time(info, "last_seen_time"),
        compliance: compliance.and_then(compliance_status),
        compliance_reasons: compliance
            .and_then(|c| c.get("assessments"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_object().and_then(|a| opt_str(a, "name")))
            .map(|n| n.trim().to_ascii_uppercase())
            .collect(),
        record_state,
        workflow,
        remediation_text: remediation.and_then(|r| opt_string(r, "desc")),
        remediation_url: remediation
            .and_then(|r| r.get("references"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|u| u.starts_with("https://") || u.starts_with("http://"))
            .map(str::to_string),
        source_url: opt_string(info, "src_url"),
        resources,
        note: opt_string(f, "comment").map(|text| Note {
            text,
            updated_by: String::new(),
            updated_at: None,
        }),
        source,
        vulnerabilities,
    })
}

/// `company/product` of a Security Hub v2 product ARN
/// (`arn:aws:securityhub:us-east-1::productv2/aws/guardduty` → `aws/guardduty`), the same
/// product name the ASFF product ARN (`…::product/aws/guardduty`) gives. Anything else falls back
/// to the ASFF rule.
pub(crate) fn product_of(product_arn: &str) -> &str {
    let Some(pos) = product_arn.find(":productv2/") else {
        return crate::asff::finding::product_of(product_arn);
    };
    let rest = &product_arn[pos + ":productv2/".len()..];
    match rest.match_indices('/').nth(1) {
        Some((end, _)) => &rest[..end],
        None => rest,
    }
}

/// The problem a finding is about, keyed as the ASFF parser keys the same problem.
///
/// - Security Hub controls: `compliance.control` (the consolidated id), resolved together with
///   the control path inside `finding_info.uid` (`security-control/SQS.1/finding/…` or the
///   per-standard `subscription/cis-aws-foundations-benchmark/v/1.2.0/2.5/finding/…`), so a
///   finding without `compliance.control` still maps through the catalog.
/// - GuardDuty: the finding type, the first `finding_info.types[]` entry that has the
///   `Purpose:Resource/Name` shape, spelled as ASFF spells it (`/` → `-`:
///   `Execution:Runtime-NewBinaryExecuted`); else the title.
/// - Inspector: `vulnerabilities[0].cve.uid`; else the title.
/// - Any other product (exposure findings, partners): the title. Not the analytic: in the
///   samples it is a detector id or a version (`Exposure`, `0.0.1`) shared by unrelated
///   findings, which would fold different risks on one resource into one issue.
fn source(
    f: &Obj,
    id: &str,
    product: &str,
    types: &[String],
    title: &str,
    vulnerabilities: &[Vulnerability],
    catalog: &Catalog,
) -> Source {
    let other = || Source::Product {
        product: product.to_string(),
        generator_id: title.to_string(),
    };
    match product {
        SECURITY_HUB => {
            let sci = obj(f, "compliance").and_then(|c| opt_str(c, "control"));
            match control_from_ids(sci, control_path(id), catalog) {
                Some(c) => Source::Control(c),
                None => other(),
            }
        }
        GUARDDUTY => Source::GuardDuty {
            finding_type: types
                .iter()
                .map(|t| t.trim())
                .find(|t| t.contains(':') && !t.contains(' '))
                .map(|t| t.replace('/', "-"))
                .unwrap_or_else(|| title.to_string()),
        },
        INSPECTOR => Source::Inspector {
            vulnerability_id: vulnerabilities
                .first()
                .map(|v| v.id.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| title.to_string()),
        },
        _ => other(),
    }
}

/// The control path of a Security Hub finding id: the resource part of the ARN up to
/// `/finding/` (`arn:aws:securityhub:us-east-2:1:security-control/SQS.1/finding/x` →
/// `security-control/SQS.1`).
pub(crate) fn control_path(finding_uid: &str) -> Option<&str> {
    let body = if finding_uid.starts_with("arn:") {
        finding_uid.splitn(6, ':').nth(5)?
    } else {
        finding_uid
    };
    let path = body.split("/finding/").next()?;
    (!path.is_empty() && path != body).then_some(path)
}

/// OCSF severity: `severity_id` 1 Informational … 5 Critical, 6 Fatal (→ CRITICAL); 0 Unknown and
/// 99 Other fall through to the `severity` word (any case; also `Fatal`, `Important`,
/// `Moderate`), then to the same pair under `vendor_attributes`.
fn severity(f: &Obj, index: usize) -> Result<Severity, FindingError> {
    let mut problems = Vec::new();
    let vendor = obj(f, "vendor_attributes");
    let candidates = [
        ("severity_id", f.get("severity_id"), true),
        ("severity", f.get("severity"), false),
        (
            "vendor_attributes.severity_id",
            vendor.and_then(|v| v.get("severity_id")),
            true,
        ),
        (
            "vendor_attributes.severity",
            vendor.and_then(|v| v.get("severity")),
            false,
        ),
    ];
    for (path, v, numeric) in candidates {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            continue;
        };
        let got = if numeric {
            v.as_i64().and_then(severity_from_id)
        } else {
            v.as_str().and_then(severity_from_word)
        };
        match got {
            Some(s) => return Ok(s),
            None => problems.push(format!("{path} is {}", describe(v))),
        }
    }
    let message = if problems.is_empty() {
        "missing: none of severity_id, severity, vendor_attributes.severity_id or \
         vendor_attributes.severity is present"
            .to_string()
    } else {
        format!(
            "no usable severity: {} (expected severity_id 1-6 or a word such as Medium)",
            problems.join("; ")
        )
    };
    Err(reject(index, "severity_id", message))
}

pub(crate) fn severity_from_id(id: i64) -> Option<Severity> {
    Some(match id {
        1 => Severity::Informational,
        2 => Severity::Low,
        3 => Severity::Medium,
        4 => Severity::High,
        5 | 6 => Severity::Critical,
        _ => return None,
    })
}

/// A severity word in any of the vocabularies seen in OCSF findings (`Medium`, `MEDIUM`,
/// `Important`, `Fatal`). `Unknown` and `Other` are not severities.
pub(crate) fn severity_from_word(s: &str) -> Option<Severity> {
    let s = s.trim();
    if let Ok(sev) = s.parse::<Severity>() {
        return Some(sev);
    }
    match s.to_ascii_lowercase().as_str() {
        "info" => Some(Severity::Informational),
        "moderate" => Some(Severity::Medium),
        "important" => Some(Severity::High),
        "fatal" => Some(Severity::Critical),
        _ => None,
    }
}

/// `status_id` (else `status`) → (workflow, record state). Absent or unknown: NEW and ACTIVE.
pub(crate) fn status(f: &Obj) -> (WorkflowStatus, RecordState) {
    let id = f.get("status_id").and_then(Value::as_i64).or_else(|| {
        let word = opt_str(f, "status")?.trim().to_ascii_lowercase();
        Some(match word.as_str() {
            "new" => 1,
            "in progress" | "in_progress" => 2,
            "suppressed" => 3,
            "resolved" => 4,
            "archived" => 5,
            _ => return None,
        })
    });
    match id {
        Some(2) => (WorkflowStatus::Notified, RecordState::Active),
        Some(3) => (WorkflowStatus::Suppressed, RecordState::Active),
        Some(4) => (WorkflowStatus::Resolved, RecordState::Active),
        Some(5) => (WorkflowStatus::Resolved, RecordState::Archived),
        _ => (WorkflowStatus::New, RecordState::Active),
    }
}

/// `compliance.status_id` (1 Pass, 2 Warning, 3 Fail), else the `status` word.
pub(crate) fn compliance_status(c: &Obj) -> Option<ComplianceStatus> {
    match c.get("status_id").and_then(Value::as_i64) {
        Some(1) => return Some(ComplianceStatus::Passed),
        Some(2) => return Some(ComplianceStatus::Warning),
        Some(3) => return Some(ComplianceStatus::Failed),
        _ => {}
    }
    let word = opt_str(c, "status")?
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '_'], "");
    match word.as_str() {
        "pass" | "passed" => Some(ComplianceStatus::Passed),
        "warning" => Some(ComplianceStatus::Warning),
        "fail" | "failed" => Some(ComplianceStatus::Failed),
        "notavailable" => Some(ComplianceStatus::NotAvailable),
        _ => None,
    }
}

/// `<key>_dt` when present, else `<key>` (epoch milliseconds) as RFC 3339.
fn time(o: &Obj, key: &str) -> Option<String> {
    if let Some(s) = opt_string(o, &format!("{key}_dt")) {
        return Some(s);
    }
    let ms = o.get(key)?.as_i64()?;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// `vulnerabilities[]`, leniently and bounded as for ASFF: at most 20 vulnerabilities of at
/// most 50 packages, strings cut to 200 characters.
fn vulnerabilities(f: &Obj) -> Vec<Vulnerability> {
    let text = |o: &Obj, key: &str| opt_str(o, key).map(|s| cut(s.trim(), 200));
    let Some(list) = f.get("vulnerabilities").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_object)
        .take(20)
        .map(|v| {
            let cve = obj(v, "cve");
            let packages = v
                .get("affected_packages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .filter_map(|p| {
                    let installed = text(p, "version").map(|ver| match text(p, "release") {
                        Some(rel) => format!("{ver}-{rel}"),
                        None => ver,
                    });
                    Some(VulnerablePackage {
                        name: text(p, "name")?,
                        installed_version: installed,
                        fixed_in_version: text(p, "fixed_in_version"),
                        package_manager: text(p, "package_manager"),
                    })
                })
                .take(50)
                .collect();
            let cvss = cve
                .and_then(|c| c.get("cvss"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .filter_map(|c| {
                    let score = c.get("base_score")?.as_f64()?;
                    Some((text(c, "version").unwrap_or_default(), score))
                })
                .fold(None::<(String, f64)>, |best, (ver, score)| match best {
                    Some((bv, bs)) if version_key(&bv) >= version_key(&ver) => Some((bv, bs)),
                    _ => Some((ver, score)),
                });
            let fix = match v.get("is_fix_available") {
                Some(Value::Bool(true)) => Some("YES".to_string()),
                Some(Value::Bool(false)) => Some("NO".to_string()),
                _ => None,
            };
            Vulnerability {
                id: cve
                    .and_then(|c| text(c, "uid"))
                    .or_else(|| text(v, "uid"))
                    .unwrap_or_default(),
                packages,
                cvss_score: cvss.as_ref().map(|(_, s)| format!("{s}")),
                cvss_version: cvss.map(|(v, _)| v).filter(|v| !v.is_empty()),
                fix_available: fix,
            }
        })
        .collect()
}

/// Tags of an OCSF resource: `[{name, value}]` (OCSF), `[{key, value}]` (some `data` blocks) or
/// an object of strings; entries without a name or a string value are skipped.
pub(crate) fn tags(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|t| {
                let name = opt_str(t, "name").or_else(|| opt_str(t, "key"))?;
                let value = t.get("value")?.as_str()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        Some(Value::Object(o)) => o
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}
