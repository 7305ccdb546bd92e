//! Security Hub v2 (OCSF): the findings store and the two operations Lever calls,
//! GetFindingsV2 (`POST /findingsv2`) and BatchUpdateFindingsV2
//! (`PATCH /findingsv2/batchupdatev2`), as `../shared/conformance/ocsf/SHAPES-V2.md` describes
//! them from the official model.
//!
//! - Findings are keyed by their identifier triple (`cloud.account.uid`, `finding_info.uid`,
//!   `metadata.product.uid`). A re-import keeps the fields BatchUpdateFindingsV2 owns
//!   (`status_id`/`status`, `comment`, a changed `severity_id`) once set, and applies Security
//!   Hub's own status changes for control findings (a control that passes again is Resolved
//!   unless Suppressed; a Resolved one that fails again is New).
//! - Filters: `CompositeFilters` (AND/OR, default AND) of String, Number, Date, Boolean and Map
//!   leaves on dotted OCSF paths (arrays on the path are searched: `resources.uid` matches any
//!   resource), one level of `NestedCompositeFilters`. A leaf the fake cannot evaluate (an
//!   `IpFilters` leaf) is recorded in `unsupported()` and matches nothing.
//! - BatchUpdateFindingsV2 validates `StatusId`/`SeverityId` against the values the model's
//!   documentation allows, answers `ResourceNotFoundException` for unknown findings in
//!   `UnprocessedFindings`, and never changes `finding_info.modified_time(_dt)` or `time(_dt)`.
//! - Every import and update emits a `Findings Imported V2` EventBridge event.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Answer, REGION, State, error, filters, ok};

/// The identifier triple of a V2 finding.
pub(super) type V2Key = (String, String, String);

/// Whether a seeded document is an OCSF finding (the detection Lever itself uses).
pub(super) fn is_ocsf(f: &Value) -> bool {
    f.get("class_uid").is_some() && f.get("metadata").is_some_and(Value::is_object)
}

pub(super) fn key_of(f: &Value) -> V2Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&f["cloud"]["account"]["uid"]),
        s(&f["finding_info"]["uid"]),
        s(&f["metadata"]["product"]["uid"]),
    )
}

fn key_of_ident(ident: &Value) -> V2Key {
    let s = |k: &str| ident[k].as_str().unwrap_or_default().to_string();
    (
        s("CloudAccountUid"),
        s("FindingInfoUid"),
        s("MetadataProductUid"),
    )
}

/// OCSF `status` label of a `status_id` (OCSF finding.json; the model lists only the numbers).
fn status_label(id: i64) -> &'static str {
    match id {
        1 => "New",
        2 => "In Progress",
        3 => "Suppressed",
        4 => "Resolved",
        5 => "Archived",
        99 => "Other",
        _ => "Unknown",
    }
}

fn severity_label(id: i64) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}

/// Insert or replace a V2 finding as Security Hub's import would.
pub(super) fn upsert(st: &mut State, mut f: Value) {
    let key = key_of(&f);
    if let Some((_, old)) = st.v2.get(&key) {
        if let Some(c) = old.get("comment") {
            f["comment"] = c.clone();
        }
        let old_status = old["status_id"].as_i64().unwrap_or(1);
        let mut status = old_status;
        let compliance = |v: &Value| v["compliance"]["status_id"].as_i64();
        let (was, now) = (compliance(old), compliance(&f));
        if was.is_some() && was != now {
            if now == Some(1) && matches!(status, 1 | 2) {
                status = 4;
            } else if was == Some(1) && status == 4 {
                status = 1;
            }
        }
        // A record the producer archives (status 5) stays archived.
        if f["status_id"].as_i64() == Some(5) {
            status = 5;
        }
        f["status_id"] = json!(status);
        f["status"] = json!(status_label(status));
    }
    if f.get("status_id").is_none() {
        f["status_id"] = json!(1);
        f["status"] = json!("New");
    }
    let seq = match st.v2.get(&key) {
        Some((s, _)) => *s,
        None => {
            st.next_seq += 1;
            st.next_seq
        }
    };
    emit_event(st, &f);
    st.v2.insert(key, (seq, f));
}

pub(super) fn emit_event(st: &mut State, f: &Value) {
    let account = st.home_account.clone().unwrap_or_else(|| {
        f["cloud"]["account"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let region = f["cloud"]["region"].as_str().unwrap_or(REGION).to_string();
    let time = st.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let resource = f["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    st.events.push(json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Findings Imported V2",
        "source": "aws.securityhub",
        "account": account,
        "time": time,
        "region": region,
        "resources": [resource],
        "detail": {"findings": [f]},
    }));
}

// ---- GetFindingsV2 ----------------------------------------------------------------------------

/// The values at a dotted OCSF path; arrays along the way are searched.
fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for seg in path.split('.') {
        let mut next = vec![];
        for x in cur {
            let x = match x {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            };
            for y in x {
                if let Some(z) = y.get(seg) {
                    next.push(z);
                }
            }
        }
        cur = next;
    }
    cur.into_iter()
        .flat_map(|x| match x {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .filter(|x| !x.is_null())
        .collect()
}

fn string_leaf(f: &Value, leaf: &Value) -> Result<bool, String> {
    let field = leaf["FieldName"].as_str().unwrap_or_default();
    let want = leaf["Filter"]["Value"].as_str().unwrap_or_default();
    let cmp = leaf["Filter"]["Comparison"].as_str().unwrap_or("EQUALS");
    let have: Vec<String> = values_at(f, field)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let any = |p: &dyn Fn(&str) -> bool| have.iter().any(|h| p(h));
    Ok(match cmp {
        "EQUALS" => any(&|h| h == want),
        "PREFIX" => any(&|h| h.starts_with(want)),
        "CONTAINS" => any(&|h| h.contains(want)),
        "CONTAINS_WORD" => any(&|h| h.split(|c: char| !c.is_alphanumeric()).any(|w| w == want)),
        "NOT_EQUALS" => !any(&|h| h == want),
        "PREFIX_NOT_EQUALS" => !any(&|h| h.starts_with(want)),
        "NOT_CONTAINS" => !any(&|h| h.contains(want)),
        other => return Err(format!("StringFilter Comparison {other} is not valid")),
    })
}

fn number_leaf(f: &Value, leaf: &Value) -> bool {
    let field = leaf["FieldName"].as_str().unwrap_or_default();
    let flt = &leaf["Filter"];
    values_at(f, field)
        .into_iter()
        .filter_map(Value::as_f64)
        .any(|n| {
            flt["Gte"].as_f64().is_none_or(|x| n >= x)
                && flt["Lte"].as_f64().is_none_or(|x| n <= x)
                && flt["Gt"].as_f64().is_none_or(|x| n > x)
                && flt["Lt"].as_f64().is_none_or(|x| n < x)
                && flt["Eq"].as_f64().is_none_or(|x| n == x)
        })
}

fn date_of(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

fn date_leaf(f: &Value, leaf: &Value, now: DateTime<Utc>) -> Result<bool, String> {
    let field = leaf["FieldName"].as_str().unwrap_or_default();
    let flt = &leaf["Filter"];
    let bound = |k: &str| -> Result<Option<DateTime<Utc>>, String> {
        match flt.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => date_of(v)
                .map(Some)
                .ok_or_else(|| format!("DateFilter {k} {v} is not a date")),
        }
    };
    let (start, end) = (bound("Start")?, bound("End")?);
    let range = flt.get("DateRange").filter(|r| !r.is_null());
    Ok(values_at(f, field)
        .into_iter()
        .filter_map(date_of)
        .any(|d| {
            start.is_none_or(|s| d >= s)
                && end.is_none_or(|e| d <= e)
                && range.is_none_or(|r| {
                    let days = Duration::days(r["Value"].as_i64().unwrap_or(0));
                    match r["Comparison"].as_str() {
                        Some("OLDER_THAN") => d < now - days,
                        _ => d >= now - days,
                    }
                })
        }))
}

fn boolean_leaf(f: &Value, leaf: &Value) -> bool {
    let field = leaf["FieldName"].as_str().unwrap_or_default();
    let want = leaf["Filter"]["Value"].as_bool();
    values_at(f, field).into_iter().any(|v| v.as_bool() == want)
}

/// `resources.tags` and the other map fields: OCSF keeps them as `[{name, value}]`.
fn map_leaf(f: &Value, leaf: &Value) -> bool {
    let field = leaf["FieldName"].as_str().unwrap_or_default();
    let (key, want) = (
        leaf["Filter"]["Key"].as_str().unwrap_or_default(),
        leaf["Filter"]["Value"].as_str().unwrap_or_default(),
    );
    let have: Vec<&str> = values_at(f, field)
        .into_iter()
        .filter(|t| t["name"].as_str().or(t["key"].as_str()) == Some(key))
        .filter_map(|t| t["value"].as_str())
        .collect();
    match leaf["Filter"]["Comparison"].as_str().unwrap_or("EQUALS") {
        "NOT_EQUALS" => !have.contains(&want),
        "CONTAINS" => have.iter().any(|h| h.contains(want)),
        "NOT_CONTAINS" => !have.iter().any(|h| h.contains(want)),
        _ => have.contains(&want),
    }
}

fn composite(
    f: &Value,
    c: &Value,
    now: DateTime<Utc>,
    unsupported: &mut Vec<String>,
) -> Result<bool, String> {
    let mut results = vec![];
    let leaves = |k: &str| c[k].as_array().cloned().unwrap_or_default();
    for l in leaves("StringFilters") {
        results.push(string_leaf(f, &l)?);
    }
    for l in leaves("NumberFilters") {
        results.push(number_leaf(f, &l));
    }
    for l in leaves("DateFilters") {
        results.push(date_leaf(f, &l, now)?);
    }
    for l in leaves("BooleanFilters") {
        results.push(boolean_leaf(f, &l));
    }
    for l in leaves("MapFilters") {
        results.push(map_leaf(f, &l));
    }
    for l in leaves("IpFilters") {
        let u = format!("IpFilters on {}", l["FieldName"].as_str().unwrap_or("?"));
        if !unsupported.contains(&u) {
            unsupported.push(u);
        }
        results.push(false);
    }
    for n in leaves("NestedCompositeFilters") {
        results.push(composite(f, &n, now, unsupported)?);
    }
    Ok(match c["Operator"].as_str() {
        Some("OR") => results.iter().any(|r| *r),
        _ => results.iter().all(|r| *r),
    })
}

/// Whether a finding matches `Filters` (an `OcsfFindingFilters`).
fn matches(
    f: &Value,
    filters: &Value,
    now: DateTime<Utc>,
    unsupported: &mut Vec<String>,
) -> Result<bool, String> {
    let composites: &[Value] = filters["CompositeFilters"]
        .as_array()
        .map_or(&[], |c| c.as_slice());
    let mut results = vec![];
    for c in composites {
        results.push(composite(f, c, now, unsupported)?);
    }
    Ok(match filters["CompositeOperator"].as_str() {
        Some("OR") => results.is_empty() || results.iter().any(|r| *r),
        _ => results.iter().all(|r| *r),
    })
}

pub(super) fn get_findings(st: &mut State, body: &Value) -> Answer {
    let empty = json!({});
    let filters = body.get("Filters").unwrap_or(&empty);
    if body.get("SortCriteria").is_some_and(|s| !s.is_null()) {
        st.note_unsupported("GetFindingsV2 SortCriteria (default order only)");
    }
    let max = body["MaxResults"].as_u64().unwrap_or(100) as usize;
    let query_key = format!("v2{filters}");
    let offset = match body["NextToken"].as_str() {
        None | Some("") => 0,
        Some(tok) => match filters::parse_token(tok, &query_key) {
            Some(o) => o,
            None => return error(400, "ValidationException", "The NextToken is invalid"),
        },
    };
    let now = st.now();
    let mut unsupported = vec![];
    let mut matched: Vec<(u64, &Value)> = vec![];
    for (seq, f) in st.v2.values() {
        match matches(f, filters, now, &mut unsupported) {
            Ok(true) => matched.push((*seq, f)),
            Ok(false) => {}
            Err(msg) => return error(400, "ValidationException", &msg),
        }
    }
    matched.sort_by_key(|(seq, _)| *seq);
    let total = matched.len();
    let page: Vec<Value> = matched
        .into_iter()
        .skip(offset)
        .take(max)
        .map(|(_, f)| f.clone())
        .collect();
    for u in unsupported {
        st.note_unsupported(&u);
    }
    let mut out = json!({"Findings": page});
    if offset + max < total {
        out["NextToken"] = json!(filters::make_token(offset + max, &query_key));
    }
    ok(out)
}

// ---- BatchUpdateFindingsV2 --------------------------------------------------------------------

/// Allowed numbers, from the model's member documentation (SHAPES-V2.md).
const STATUS_IDS: &[i64] = &[0, 1, 2, 3, 4, 5, 99];
const SEVERITY_IDS: &[i64] = &[0, 1, 2, 3, 4, 5, 6, 99];

pub(super) fn batch_update(st: &mut State, body: &Value) -> Answer {
    let idents = body["FindingIdentifiers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let uids = body["MetadataUids"].as_array().cloned().unwrap_or_default();
    if !idents.is_empty() && !uids.is_empty() {
        return error(
            400,
            "ValidationException",
            "Specify either FindingIdentifiers or MetadataUids, not both",
        );
    }
    if idents.is_empty() && uids.is_empty() {
        return error(
            400,
            "ValidationException",
            "FindingIdentifiers or MetadataUids is required",
        );
    }
    let status = body["StatusId"].as_i64();
    let severity = body["SeverityId"].as_i64();
    if let Some(s) = status.filter(|s| !STATUS_IDS.contains(s)) {
        return error(
            400,
            "ValidationException",
            &format!("StatusId {s} is not one of {STATUS_IDS:?}"),
        );
    }
    if let Some(s) = severity.filter(|s| !SEVERITY_IDS.contains(s)) {
        return error(
            400,
            "ValidationException",
            &format!("SeverityId {s} is not one of {SEVERITY_IDS:?}"),
        );
    }
    if status.is_none() && severity.is_none() && body.get("Comment").is_none() {
        return error(
            400,
            "ValidationException",
            "At least one of Comment, SeverityId or StatusId is required",
        );
    }
    let comment = body["Comment"].as_str().map(str::to_string);
    let targets: Vec<(Value, Option<V2Key>)> = if idents.is_empty() {
        uids.iter()
            .map(|u| {
                let key = st
                    .v2
                    .iter()
                    .find(|(_, (_, f))| f["metadata"]["uid"] == *u)
                    .map(|(k, _)| k.clone());
                (json!({"MetadataUid": u}), key)
            })
            .collect()
    } else {
        idents
            .iter()
            .map(|i| {
                let key = key_of_ident(i);
                let known = st.v2.contains_key(&key).then_some(key);
                (json!({"FindingIdentifier": i}), known)
            })
            .collect()
    };
    let mut processed = vec![];
    let mut failed = vec![];
    for (which, key) in targets {
        let forced = which["FindingIdentifier"]["FindingInfoUid"]
            .as_str()
            .and_then(|id| {
                st.forced_unprocessed
                    .get_mut(id)
                    .map(|e| (id.to_string(), e))
            });
        if let Some((id, (code, times))) = forced {
            let code = code.clone();
            *times -= 1;
            if *times == 0 {
                st.forced_unprocessed.remove(&id);
            }
            let mut entry = which.clone();
            entry["ErrorCode"] = json!(code);
            entry["ErrorMessage"] = json!("Injected by the test");
            failed.push(entry);
            continue;
        }
        let Some(key) = key else {
            let mut entry = which.clone();
            entry["ErrorCode"] = json!("ResourceNotFoundException");
            entry["ErrorMessage"] = json!("Finding not found");
            failed.push(entry);
            continue;
        };
        let (_, f) = st.v2.get_mut(&key).expect("the key was looked up");
        if let Some(s) = status {
            f["status_id"] = json!(s);
            f["status"] = json!(status_label(s));
        }
        if let Some(s) = severity {
            f["severity_id"] = json!(s);
            f["severity"] = json!(severity_label(s));
        }
        if let Some(c) = &comment {
            f["comment"] = json!(c);
        }
        let snapshot = f.clone();
        let mut entry = json!({
            "FindingIdentifier": {
                "CloudAccountUid": key.0, "FindingInfoUid": key.1, "MetadataProductUid": key.2,
            },
        });
        if let Some(uid) = snapshot["metadata"]["uid"].as_str() {
            entry["MetadataUid"] = json!(uid);
        }
        emit_event(st, &snapshot);
        processed.push(entry);
    }
    ok(json!({"ProcessedFindings": processed, "UnprocessedFindings": failed}))
}
