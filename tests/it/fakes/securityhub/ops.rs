//! The three operations: GetFindings, BatchUpdateFindings, BatchImportFindings.

use serde_json::{Value, json};

use super::{Answer, State, emit_event, error, filters, iso, ok, upsert};
use crate::fakes::awsmodel;

pub(super) fn get_findings(st: &mut State, body: &Value) -> Answer {
    let empty = json!({});
    let filters = body.get("Filters").unwrap_or(&empty);
    let sort = body.get("SortCriteria").cloned().unwrap_or(json!([]));
    let max = body["MaxResults"].as_u64().unwrap_or(100) as usize;
    let query_key = format!("{filters}{sort}");
    let offset = match body["NextToken"].as_str() {
        None | Some("") => 0,
        Some(tok) => match filters::parse_token(tok, &query_key) {
            Some(o) => o,
            None => {
                return error(
                    400,
                    "InvalidInputException",
                    "Invalid parameter 'NextToken'. The NextToken is invalid",
                );
            }
        },
    };
    let now = st.now();
    let (matched, unsupported) = match filters::select(&st.findings, filters, &sort, now) {
        Ok(x) => x,
        Err(msg) => return error(400, "InvalidInputException", &msg),
    };
    for u in unsupported {
        if !st.unsupported.contains(&u) {
            st.unsupported.push(u);
        }
    }
    let total = matched.len();
    let page: Vec<Value> = matched
        .into_iter()
        .skip(offset)
        .take(max)
        .cloned()
        .collect();
    let mut out = json!({"Findings": page});
    if offset + max < total {
        out["NextToken"] = json!(filters::make_token(offset + max, &query_key));
    }
    ok(out)
}

const UNPROCESSED_MESSAGES: &[(&str, &str)] = &[
    (
        "ConcurrentUpdateError",
        "Concurrent finding updates detected",
    ),
    (
        "DuplicatedFindingIdentifier",
        "Finding Identifier is duplicated",
    ),
    ("FindingNotFound", "Finding Not Found"),
    ("FindingSizeExceeded", "Finding size exceeded 240 KB"),
    ("InternalFailure", "Internal service failure"),
    ("InvalidInput", "Invalid Input"),
];

fn unprocessed(ident: &Value, code: &str) -> Value {
    let message = UNPROCESSED_MESSAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, m)| *m)
        .unwrap_or("Internal service failure");
    json!({"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message})
}

pub(super) fn batch_update(st: &mut State, body: &Value) -> Answer {
    let now = iso(st.now());
    let mut processed = vec![];
    let mut failed = vec![];
    let idents = body["FindingIdentifiers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, ident) in idents.iter().enumerate() {
        let id = ident["Id"].as_str().unwrap_or_default().to_string();
        let key = (
            ident["ProductArn"].as_str().unwrap_or_default().to_string(),
            id.clone(),
        );
        if idents[..i].contains(ident) || idents[i + 1..].contains(ident) {
            failed.push(unprocessed(ident, "DuplicatedFindingIdentifier"));
            continue;
        }
        if let Some((code, times)) = st.forced_unprocessed.get_mut(&id) {
            let code = code.clone();
            *times -= 1;
            if *times == 0 {
                st.forced_unprocessed.remove(&id);
            }
            failed.push(unprocessed(ident, &code));
            continue;
        }
        if let Some(c) = st.chaos.as_mut()
            && c.hit()
        {
            let code = *c.pick(super::CHAOS_UNPROCESSED);
            failed.push(unprocessed(ident, code));
            continue;
        }
        let Some((_, f)) = st.findings.get_mut(&key) else {
            failed.push(unprocessed(ident, "FindingNotFound"));
            continue;
        };
        // The documented BatchUpdateFindings semantics: these fields change, UpdatedAt does not.
        if let Some(n) = body.get("Note") {
            f["Note"] = json!({"Text": n["Text"], "UpdatedBy": n["UpdatedBy"], "UpdatedAt": now});
        }
        if let Some(s) = body["Workflow"].get("Status") {
            f["Workflow"] = json!({"Status": s});
        }
        if let Some(sev) = body.get("Severity").and_then(Value::as_object) {
            for (k, v) in sev {
                f["Severity"][k] = v.clone();
            }
        }
        for field in [
            "VerificationState",
            "Confidence",
            "Criticality",
            "Types",
            "RelatedFindings",
        ] {
            if let Some(v) = body.get(field) {
                f[field] = v.clone();
            }
        }
        if let Some(u) = body.get("UserDefinedFields").and_then(Value::as_object) {
            for (k, v) in u {
                f["UserDefinedFields"][k] = v.clone();
            }
        }
        f["ProcessedAt"] = json!(now);
        let snapshot = f.clone();
        emit_event(st, &snapshot);
        processed.push(ident.clone());
    }
    ok(json!({"ProcessedFindings": processed, "UnprocessedFindings": failed}))
}

pub(super) fn batch_import(st: &mut State, body: &Value) -> Answer {
    let model = awsmodel::model();
    let mut failed = vec![];
    let mut success = 0;
    for f in body["Findings"].as_array().cloned().unwrap_or_default() {
        let mut problems = model
            .map(|m| m.validate_shape("AwsSecurityFinding", &f))
            .unwrap_or_default();
        let resources = f["Resources"].as_array().map(Vec::len).unwrap_or(0);
        if !(1..=32).contains(&resources) {
            problems.push("data.Resources should have 1..32 items (documented limit)".into());
        }
        if problems.is_empty() {
            upsert(st, f);
            success += 1;
        } else {
            failed.push(json!({
                "Id": f["Id"].as_str().filter(|s| !s.trim().is_empty()).unwrap_or("unknown"),
                "ErrorCode": "InvalidInput",
                "ErrorMessage": format!("Finding does not adhere to Amazon Finding Format. {}", problems.join(", ")),
            }));
        }
    }
    let mut out = json!({"FailedCount": failed.len(), "SuccessCount": success});
    if !failed.is_empty() {
        out["FailedFindings"] = Value::Array(failed);
    }
    ok(out)
}
