//! GetFindings filtering, sorting and paging.
//!
//! Semantics follow the `StringFilter.Comparison` documentation in the model: `EQUALS`,
//! `PREFIX` and `CONTAINS` filters on one field are joined by OR; `NOT_EQUALS`,
//! `PREFIX_NOT_EQUALS` and `NOT_CONTAINS` by AND; `EQUALS` with a `NOT_EQUALS`/
//! `PREFIX_NOT_EQUALS`, or `CONTAINS` with anything else, on the same field is an error;
//! `CONTAINS_WORD` is only for the V2 APIs. Different fields are joined by AND. Values are case
//! sensitive. Several date, number or map filters on one field are joined by OR.
//! Default order (AWS does not document one): `UpdatedAt` descending, then insertion order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

type Findings = BTreeMap<(String, String), (u64, Value)>;

/// Filter name → path in the finding (`[]` iterates an array).
const STRING_FIELDS: &[(&str, &str)] = &[
    ("ProductArn", "ProductArn"),
    ("AwsAccountId", "AwsAccountId"),
    ("AwsAccountName", "AwsAccountName"),
    ("Id", "Id"),
    ("GeneratorId", "GeneratorId"),
    ("Region", "Region"),
    ("Type", "Types[]"),
    ("Title", "Title"),
    ("Description", "Description"),
    ("SourceUrl", "SourceUrl"),
    ("ProductName", "ProductName"),
    ("CompanyName", "CompanyName"),
    ("SeverityLabel", "Severity.Label"),
    ("RecommendationText", "Remediation.Recommendation.Text"),
    ("ComplianceStatus", "Compliance.Status"),
    (
        "ComplianceSecurityControlId",
        "Compliance.SecurityControlId",
    ),
    (
        "ComplianceAssociatedStandardsId",
        "Compliance.AssociatedStandards[].StandardsId",
    ),
    ("VerificationState", "VerificationState"),
    ("WorkflowState", "WorkflowState"),
    ("WorkflowStatus", "Workflow.Status"),
    ("RecordState", "RecordState"),
    ("RelatedFindingsProductArn", "RelatedFindings[].ProductArn"),
    ("RelatedFindingsId", "RelatedFindings[].Id"),
    ("NoteText", "Note.Text"),
    ("NoteUpdatedBy", "Note.UpdatedBy"),
    ("ResourceType", "Resources[].Type"),
    ("ResourceId", "Resources[].Id"),
    ("ResourcePartition", "Resources[].Partition"),
    ("ResourceRegion", "Resources[].Region"),
    (
        "FindingProviderFieldsSeverityLabel",
        "FindingProviderFields.Severity.Label",
    ),
    (
        "FindingProviderFieldsSeverityOriginal",
        "FindingProviderFields.Severity.Original",
    ),
    (
        "FindingProviderFieldsTypes",
        "FindingProviderFields.Types[]",
    ),
];

const DATE_FIELDS: &[(&str, &str)] = &[
    ("UpdatedAt", "UpdatedAt"),
    ("CreatedAt", "CreatedAt"),
    ("FirstObservedAt", "FirstObservedAt"),
    ("LastObservedAt", "LastObservedAt"),
    ("NoteUpdatedAt", "Note.UpdatedAt"),
];

const NUMBER_FIELDS: &[(&str, &str)] = &[
    ("SeverityNormalized", "Severity.Normalized"),
    ("SeverityProduct", "Severity.Product"),
    ("Confidence", "Confidence"),
    ("Criticality", "Criticality"),
    (
        "FindingProviderFieldsConfidence",
        "FindingProviderFields.Confidence",
    ),
    (
        "FindingProviderFieldsCriticality",
        "FindingProviderFields.Criticality",
    ),
];

const MAP_FIELDS: &[(&str, &str)] = &[
    ("ProductFields", "ProductFields"),
    ("UserDefinedFields", "UserDefinedFields"),
    ("ResourceTags", "Resources[].Tags"),
];

const BOOL_FIELDS: &[(&str, &str)] = &[("Sample", "Sample")];

fn lookup(table: &[(&str, &'static str)], name: &str) -> Option<&'static str> {
    table.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// All values at `path` (`a.b[].c`).
fn values<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for part in path.split('.') {
        let (name, iter) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        let mut next = vec![];
        for c in cur {
            if let Some(x) = c.get(name) {
                if iter {
                    next.extend(x.as_array().into_iter().flatten());
                } else if !x.is_null() {
                    next.push(x);
                }
            }
        }
        cur = next;
    }
    cur
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn invalid(field: &str, why: &str) -> String {
    format!("Invalid parameter 'Filters.{field}'. {why}")
}

fn string_matches(field: &str, found: &[&Value], filters: &[Value]) -> Result<bool, String> {
    let mut positive = vec![];
    let mut negative = vec![];
    for f in filters {
        let (Some(value), Some(cmp)) = (f["Value"].as_str(), f["Comparison"].as_str()) else {
            return Err(invalid(
                field,
                "data should have required properties 'Value' and 'Comparison'",
            ));
        };
        match cmp {
            "EQUALS" | "PREFIX" | "CONTAINS" => positive.push((cmp, value)),
            "NOT_EQUALS" | "PREFIX_NOT_EQUALS" | "NOT_CONTAINS" => negative.push((cmp, value)),
            "CONTAINS_WORD" => {
                return Err(invalid(
                    field,
                    "CONTAINS_WORD is supported only by the V2 APIs",
                ));
            }
            other => return Err(invalid(field, &format!("unknown comparison {other}"))),
        }
    }
    let has = |c: &str| filters.iter().any(|f| f["Comparison"] == c);
    if has("EQUALS") && (has("NOT_EQUALS") || has("PREFIX_NOT_EQUALS")) {
        return Err(invalid(
            field,
            "EQUALS cannot be combined with NOT_EQUALS or PREFIX_NOT_EQUALS on the same field",
        ));
    }
    if has("CONTAINS") && filters.iter().any(|f| f["Comparison"] != "CONTAINS") {
        return Err(invalid(
            field,
            "CONTAINS filters can only be used with other CONTAINS filters",
        ));
    }
    if has("NOT_CONTAINS") && filters.iter().any(|f| f["Comparison"] != "NOT_CONTAINS") {
        return Err(invalid(
            field,
            "NOT_CONTAINS filters can only be used with other NOT_CONTAINS filters",
        ));
    }
    let strs: Vec<&str> = found.iter().filter_map(|v| v.as_str()).collect();
    let test = |cmp: &str, want: &str, s: &str| match cmp {
        "EQUALS" | "NOT_EQUALS" => s == want,
        "PREFIX" | "PREFIX_NOT_EQUALS" => s.starts_with(want),
        _ => s.contains(want),
    };
    let pos_ok = positive.is_empty()
        || positive
            .iter()
            .any(|(c, w)| strs.iter().any(|s| test(c, w, s)));
    let neg_ok = negative
        .iter()
        .all(|(c, w)| !strs.iter().any(|s| test(c, w, s)));
    Ok(pos_ok && neg_ok)
}

fn date_matches(
    field: &str,
    found: &[&Value],
    filters: &[Value],
    now: DateTime<Utc>,
) -> Result<bool, String> {
    let dates: Vec<DateTime<Utc>> = found
        .iter()
        .filter_map(|v| v.as_str())
        .filter_map(parse_date)
        .collect();
    let mut any = false;
    for f in filters {
        let ok = if let Some(range) = f.get("DateRange") {
            let days = range["Value"]
                .as_i64()
                .ok_or_else(|| invalid(field, "DateRange.Value is required"))?;
            if range["Unit"].as_str().is_some_and(|u| u != "DAYS") {
                return Err(invalid(field, "DateRange.Unit must be DAYS"));
            }
            let edge = now - TimeDelta::days(days);
            match range["Comparison"].as_str().unwrap_or("WITHIN") {
                "OLDER_THAN" => dates.iter().any(|d| *d < edge),
                _ => dates.iter().any(|d| *d >= edge),
            }
        } else {
            let bound = |k: &str| -> Result<Option<DateTime<Utc>>, String> {
                match f[k].as_str() {
                    None => Ok(None),
                    Some(s) => parse_date(s).map(Some).ok_or_else(|| {
                        invalid(field, &format!("{k} is not a valid timestamp: {s}"))
                    }),
                }
            };
            let (start, end) = (bound("Start")?, bound("End")?);
            if start.is_none() && end.is_none() {
                return Err(invalid(field, "a DateFilter needs Start/End or DateRange"));
            }
            dates
                .iter()
                .any(|d| start.is_none_or(|s| *d >= s) && end.is_none_or(|e| *d <= e))
        };
        any |= ok;
    }
    Ok(any)
}

fn number_matches(found: &[&Value], filters: &[Value]) -> bool {
    let nums: Vec<f64> = found.iter().filter_map(|v| v.as_f64()).collect();
    filters.iter().any(|f| {
        nums.iter().any(|n| {
            f["Gte"].as_f64().is_none_or(|x| *n >= x)
                && f["Lte"].as_f64().is_none_or(|x| *n <= x)
                && f["Gt"].as_f64().is_none_or(|x| *n > x)
                && f["Lt"].as_f64().is_none_or(|x| *n < x)
                && f["Eq"].as_f64().is_none_or(|x| *n == x)
        })
    })
}

fn map_matches(found: &[&Value], filters: &[Value]) -> bool {
    let test = |f: &Value, m: &Value| {
        let (k, want) = (
            f["Key"].as_str().unwrap_or_default(),
            f["Value"].as_str().unwrap_or_default(),
        );
        let got = m.get(k).and_then(Value::as_str);
        match f["Comparison"].as_str().unwrap_or("EQUALS") {
            "EQUALS" => got == Some(want),
            "CONTAINS" => got.is_some_and(|g| g.contains(want)),
            "NOT_EQUALS" => got != Some(want),
            _ => !got.is_some_and(|g| g.contains(want)),
        }
    };
    let negative = |f: &&Value| {
        matches!(
            f["Comparison"].as_str(),
            Some("NOT_EQUALS" | "NOT_CONTAINS")
        )
    };
    let (neg, pos): (Vec<&Value>, Vec<&Value>) = filters.iter().partition(negative);
    let pos_ok = pos.is_empty() || pos.iter().any(|f| found.iter().any(|m| test(f, m)));
    let neg_ok = neg.iter().all(|f| found.iter().all(|m| test(f, m)));
    pos_ok && neg_ok
}

/// The findings matching `filters`, sorted, plus the names of filters the fake ignored.
/// References, not copies: a page clones only its own findings (a 100,000-finding backfill
/// reads a thousand pages).
pub(super) fn select<'a>(
    findings: &'a Findings,
    filters: &Value,
    sort: &Value,
    now: DateTime<Utc>,
) -> Result<(Vec<&'a Value>, Vec<String>), String> {
    let mut unsupported = vec![];
    let mut selected: Vec<(u64, &'a Value)> = vec![];
    let empty = serde_json::Map::new();
    let filters = filters.as_object().unwrap_or(&empty);
    for name in filters.keys() {
        let known = [
            STRING_FIELDS,
            DATE_FIELDS,
            NUMBER_FIELDS,
            MAP_FIELDS,
            BOOL_FIELDS,
        ]
        .iter()
        .any(|t| lookup(t, name).is_some());
        if !known {
            unsupported.push(format!(
                "GetFindings filter `{name}` is not implemented by the fake"
            ));
        }
    }
    'finding: for (seq, f) in findings.values() {
        for (name, list) in filters {
            let list: &[Value] = list.as_array().map_or(&[], |l| l.as_slice());
            if list.is_empty() {
                continue;
            }
            let ok = if let Some(p) = lookup(STRING_FIELDS, name) {
                string_matches(name, &values(f, p), list)?
            } else if let Some(p) = lookup(DATE_FIELDS, name) {
                date_matches(name, &values(f, p), list, now)?
            } else if let Some(p) = lookup(NUMBER_FIELDS, name) {
                number_matches(&values(f, p), list)
            } else if let Some(p) = lookup(MAP_FIELDS, name) {
                map_matches(&values(f, p), list)
            } else if let Some(p) = lookup(BOOL_FIELDS, name) {
                let got = values(f, p)
                    .first()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                list.iter().any(|x| x["Value"].as_bool() == Some(got))
            } else {
                true
            };
            if !ok {
                continue 'finding;
            }
        }
        selected.push((*seq, f));
    }
    let mut sorted = default_order(selected);
    if let Some(criteria) = sort.as_array().filter(|a| !a.is_empty()) {
        let keys: Vec<(String, bool)> = criteria
            .iter()
            .map(|c| {
                (
                    c["Field"].as_str().unwrap_or_default().to_string(),
                    c["SortOrder"].as_str() == Some("desc"),
                )
            })
            .collect();
        sorted.sort_by(|a, b| {
            for (field, desc) in &keys {
                let ord = compare_field(a, b, field);
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    Ok((sorted, unsupported))
}

fn compare_field(a: &Value, b: &Value, field: &str) -> Ordering {
    let path = [STRING_FIELDS, DATE_FIELDS, NUMBER_FIELDS]
        .iter()
        .find_map(|t| lookup(t, field))
        .unwrap_or(field);
    let (x, y) = (
        values(a, path).first().copied(),
        values(b, path).first().copied(),
    );
    match (x, y) {
        (Some(Value::Number(m)), Some(Value::Number(n))) => m
            .as_f64()
            .partial_cmp(&n.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(m)), Some(Value::String(n))) => match (parse_date(m), parse_date(n)) {
            (Some(d), Some(e)) => d.cmp(&e),
            _ => m.cmp(n),
        },
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// `UpdatedAt` descending, then insertion order (each date parsed once, not per comparison).
pub(super) fn default_order(mut v: Vec<(u64, &Value)>) -> Vec<&Value> {
    v.sort_by_cached_key(|(seq, f)| {
        let updated = f["UpdatedAt"].as_str().and_then(parse_date);
        (std::cmp::Reverse(updated), *seq)
    });
    v.into_iter().map(|(_, f)| f).collect()
}

fn query_hash(query: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    query.hash(&mut h);
    h.finish()
}

pub(super) fn make_token(offset: usize, query: &str) -> String {
    format!("fake-next-{offset}-{:016x}", query_hash(query))
}

/// The offset in a token made for the same filters and sort, else `None`.
pub(super) fn parse_token(token: &str, query: &str) -> Option<usize> {
    let rest = token.strip_prefix("fake-next-")?;
    let (offset, hash) = rest.split_once('-')?;
    (hash == format!("{:016x}", query_hash(query))).then_some(())?;
    offset.parse().ok()
}
