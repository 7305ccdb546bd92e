//! What `infra/` and the container promise, checked here (issue 11).
//!
//! * The EventBridge rule of `infra/cloudformation/eventbridge.json` drops only what Lever would
//!   skip for good. Its event pattern is read from the template itself (the one source; JSON so
//!   no CloudFormation-YAML parser is needed) with `MinimumSeverity` resolved through the
//!   template's own `Mappings`, and evaluated by a small EventBridge pattern matcher (below,
//!   with its own table test) over the demo findings, Lever's ASFF fixtures and every ASFF and
//!   OCSF file of `../shared/conformance`. Which events must pass is decided by Lever itself:
//!   `pipeline::plan`, once as a new finding (it opens an issue) and once as an update of a
//!   group Lever tracks (it queues work: a checklist sync, a re-notification). The tracked
//!   group is the finding as Lever could have ticketed it: active, FAILED (or without
//!   compliance), NOTIFIED, with the same severity when the update still fails (a control's
//!   severity does not change while it fails), or at least the minimum when the update is a
//!   fix (Security Hub lowers a passed control to INFORMATIONAL). Each single finding is also
//!   varied into the updates Security Hub may send about it later (archived, passed, not
//!   available, gone, workflow changes), and Lever judges those too.
//! * `lever healthcheck` (the image's `HEALTHCHECK`) answers 0 only while `lever serve`
//!   answers `/healthz`, found through `LEVER_LISTEN` as the container sets it (`0.0.0.0`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use lever::config::Config;
use lever::config::Mode;
use lever::controls::Catalog;
use lever::domain::{
    ComplianceStatus, Finding, GroupKey, RecordState, Severity, WorkflowStatus, lifecycle,
};
use lever::pipeline::{self, Disposition};
use lever::policy::{self, Decision};
use lever::store::{FindingRecord, GroupRecord, GroupStatus};

use crate::support::app::root;

// ---------------------------------------------------------------------------------------------
// A small EventBridge pattern matcher.
// ---------------------------------------------------------------------------------------------

/// Whether `event` matches the EventBridge `pattern`. Every field of the pattern must hold; a
/// `$or` holds when one of its patterns does. A leaf (an array of conditions) holds when one
/// condition matches one of the scalar values found at its path, arrays being flattened at
/// every level (EventBridge's semantics for arrays); `{"exists": false}` holds when there is
/// none. Operators the matcher does not know panic, so a pattern cannot outgrow the test.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    matches_at(object(pattern), event, &[])
}

fn object(v: &Value) -> &Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("a pattern must be a JSON object, found {v}"))
}

fn matches_at(pattern: &Map<String, Value>, event: &Value, path: &[&str]) -> bool {
    pattern.iter().all(|(key, rule)| {
        if key == "$or" {
            let options = rule.as_array().expect("$or takes an array of patterns");
            return options.iter().any(|p| matches_at(object(p), event, path));
        }
        let mut inner = path.to_vec();
        inner.push(key);
        match rule {
            Value::Object(nested) => matches_at(nested, event, &inner),
            Value::Array(conditions) => {
                let values = scalars_at(event, &inner);
                conditions.iter().any(|c| condition(c, &values))
            }
            other => panic!("pattern field {inner:?} must be an object or an array, found {other}"),
        }
    })
}

/// The scalar values at `path`, arrays flattened at every level.
fn scalars_at<'a>(event: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut current: Vec<&Value> = vec![event];
    for key in path {
        current = current
            .into_iter()
            .flat_map(flatten)
            .filter_map(|v| v.as_object()?.get(*key))
            .collect();
    }
    current
        .into_iter()
        .flat_map(flatten)
        .filter(|v| !v.is_object())
        .collect()
}

fn flatten(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

fn condition(c: &Value, values: &[&Value]) -> bool {
    match c {
        Value::Object(op) => {
            assert_eq!(op.len(), 1, "one operator per condition: {c}");
            let (name, arg) = op.iter().next().unwrap();
            match name.as_str() {
                "exists" => {
                    let present = !values.is_empty();
                    arg.as_bool().expect("exists takes a boolean") == present
                }
                "prefix" => {
                    let p = arg.as_str().expect("prefix takes a string");
                    values
                        .iter()
                        .any(|v| v.as_str().is_some_and(|s| s.starts_with(p)))
                }
                "suffix" => {
                    let p = arg.as_str().expect("suffix takes a string");
                    values
                        .iter()
                        .any(|v| v.as_str().is_some_and(|s| s.ends_with(p)))
                }
                "equals-ignore-case" => {
                    let p = arg.as_str().expect("equals-ignore-case takes a string");
                    values
                        .iter()
                        .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p)))
                }
                "anything-but" => values.iter().any(|v| !anything_but_excludes(arg, v)),
                "numeric" => values
                    .iter()
                    .any(|v| v.as_f64().is_some_and(|n| numeric(arg, n))),
                other => {
                    panic!("EventBridge operator {other:?} is not implemented by this matcher")
                }
            }
        }
        Value::Array(_) => panic!("nested arrays are not EventBridge conditions: {c}"),
        // An exact value: a string, number, boolean or null.
        exact => values.iter().any(|v| exact_eq(exact, v)),
    }
}

fn exact_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Whether `anything-but` with `arg` excludes `v`.
fn anything_but_excludes(arg: &Value, v: &Value) -> bool {
    match arg {
        Value::Array(list) => list.iter().any(|x| exact_eq(x, v)),
        Value::Object(op) => match op.iter().next() {
            Some((name, Value::String(p))) if name == "prefix" => {
                v.as_str().is_some_and(|s| s.starts_with(p.as_str()))
            }
            Some((name, Value::String(p))) if name == "suffix" => {
                v.as_str().is_some_and(|s| s.ends_with(p.as_str()))
            }
            _ => panic!("anything-but {arg} is not implemented by this matcher"),
        },
        scalar => exact_eq(scalar, v),
    }
}

fn numeric(arg: &Value, n: f64) -> bool {
    let parts = arg.as_array().expect("numeric takes an array");
    parts.chunks(2).all(|pair| {
        let (op, bound) = (
            pair[0].as_str().expect("numeric operator"),
            pair[1].as_f64().expect("numeric bound"),
        );
        match op {
            "=" => n == bound,
            "<" => n < bound,
            "<=" => n <= bound,
            ">" => n > bound,
            ">=" => n >= bound,
            other => panic!("numeric operator {other:?}"),
        }
    })
}

#[test]
fn the_matcher_follows_eventbridge_semantics() {
    let event = json!({
        "source": "aws.securityhub",
        "detail": {
            "findings": [
                {"RecordState": "ACTIVE", "Severity": {"Label": "LOW", "Normalized": 1}},
                {"RecordState": "ARCHIVED", "Severity": {"Label": "HIGH", "Normalized": 70}}
            ],
            "flag": null
        }
    });
    let table: &[(Value, bool)] = &[
        (json!({"source": ["aws.securityhub"]}), true),
        (json!({"source": ["aws.guardduty"]}), false),
        (json!({"source": [{"prefix": "aws."}]}), true),
        (json!({"source": [{"suffix": "hub"}]}), true),
        (
            json!({"source": [{"equals-ignore-case": "AWS.SECURITYHUB"}]}),
            true,
        ),
        // Arrays: one element is enough.
        (
            json!({"detail": {"findings": {"RecordState": ["ARCHIVED"]}}}),
            true,
        ),
        (
            json!({"detail": {"findings": {"RecordState": [{"anything-but": "ACTIVE"}]}}}),
            true,
        ),
        (
            json!({"detail": {"findings": {"RecordState": [{"anything-but": ["ACTIVE", "ARCHIVED"]}]}}}),
            false,
        ),
        (
            json!({"detail": {"findings": {"RecordState": [{"anything-but": {"prefix": "A"}}]}}}),
            false,
        ),
        // exists: a missing field does not exist; anything-but needs a value.
        (
            json!({"detail": {"findings": {"Compliance": {"Status": [{"exists": false}]}}}}),
            true,
        ),
        (
            json!({"detail": {"findings": {"Compliance": {"Status": [{"exists": true}]}}}}),
            false,
        ),
        (
            json!({"detail": {"findings": {"Compliance": {"Status": [{"anything-but": "FAILED"}]}}}}),
            false,
        ),
        (
            json!({"detail": {"findings": {"Severity": {"Label": [{"exists": true}]}}}}),
            true,
        ),
        // An object is not a leaf.
        (
            json!({"detail": {"findings": {"Severity": [{"exists": true}]}}}),
            false,
        ),
        (json!({"detail": {"flag": [null]}}), true),
        (
            json!({"detail": {"findings": {"Severity": {"Normalized": [{"numeric": [">", 10, "<=", 70]}]}}}}),
            true,
        ),
        (
            json!({"detail": {"findings": {"Severity": {"Normalized": [{"numeric": [">", 70]}]}}}}),
            false,
        ),
        (
            json!({"detail": {"findings": {"Severity": {"Normalized": [1.0]}}}}),
            true,
        ),
        // Every field must hold; $or needs one of its patterns.
        (
            json!({"source": ["aws.securityhub"], "detail": {"flag": ["x"]}}),
            false,
        ),
        (
            json!({"source": ["aws.securityhub"], "$or": [{"detail": {"flag": ["x"]}}, {"detail": {"findings": {"RecordState": ["ARCHIVED"]}}}]}),
            true,
        ),
        (
            json!({"$or": [{"detail": {"flag": ["x"]}}, {"source": ["other"]}]}),
            false,
        ),
    ];
    let wrong: Vec<String> = table
        .iter()
        .filter(|(p, want)| matches(p, &event) != *want)
        .map(|(p, want)| format!("{p} should {}match", if *want { "" } else { "not " }))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---------------------------------------------------------------------------------------------
// The patterns, from the template.
// ---------------------------------------------------------------------------------------------

fn template() -> Value {
    let path = root().join("infra/cloudformation/eventbridge.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The event pattern of rule `rule` with `MinimumSeverity = minimum`: the only intrinsic
/// function allowed in it is `Fn::FindInMap` on the template's `Mappings` by `Ref
/// MinimumSeverity`, resolved here as CloudFormation would.
fn pattern(template: &Value, rule: &str, minimum: Severity) -> Value {
    let raw = &template["Resources"][rule]["Properties"]["EventPattern"];
    assert!(raw.is_object(), "{rule} has no EventPattern object");
    resolve(raw, &template["Mappings"], minimum)
}

fn resolve(v: &Value, mappings: &Value, minimum: Severity) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(args) = map.get("Fn::FindInMap") {
                let args = args.as_array().expect("Fn::FindInMap takes an array");
                assert_eq!(
                    args[1],
                    json!({"Ref": "MinimumSeverity"}),
                    "the pattern may look up only by MinimumSeverity"
                );
                let found = &mappings[args[0].as_str().unwrap()][minimum.as_str()]
                    [args[2].as_str().unwrap()];
                assert!(!found.is_null(), "no mapping for {minimum}: {v}");
                return found.clone();
            }
            if let Some(k) = map.keys().find(|k| k.starts_with("Fn::") || *k == "Ref") {
                panic!("intrinsic {k} in an event pattern is not supported by this test: {v}");
            }
            Value::Object(
                map.iter()
                    .map(|(k, x)| (k.clone(), resolve(x, mappings, minimum)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|x| resolve(x, mappings, minimum))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_severity_mapping_lists_exactly_the_severities_at_or_above_the_minimum() {
    let t = template();
    for minimum in Severity::ALL {
        let labels = &t["Mappings"]["SeverityAtOrAbove"][minimum.as_str()]["Labels"];
        let want: Vec<&str> = Severity::ALL
            .iter()
            .filter(|s| **s >= minimum)
            .map(|s| s.as_str())
            .collect();
        assert_eq!(labels, &json!(want), "MinimumSeverity {minimum}");
    }
}

// ---------------------------------------------------------------------------------------------
// The events: every finding Lever may see, as EventBridge would send it.
// ---------------------------------------------------------------------------------------------

const IMPORTED: &str = "Security Hub Findings - Imported";

/// One finding as its own Imported event (what Security Hub sends for each import).
fn imported(finding: &Value) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": IMPORTED,
        "source": "aws.securityhub",
        "account": finding.get("AwsAccountId").cloned().unwrap_or(json!("123456789012")),
        "time": "2026-11-23T12:00:00Z",
        "region": finding.get("Region").cloned().unwrap_or(json!("us-east-1")),
        "resources": [finding.get("ProductArn").cloned().unwrap_or(Value::Null)],
        "detail": {"findings": [finding]}
    })
}

/// The events a document stands for: an EventBridge event as it is, and each of its findings
/// as an Imported event of its own (a Custom Action event's findings are imported too); a
/// finding, an array or a GetFindings page as one Imported event per finding.
fn events_of(doc: &Value) -> Vec<Value> {
    let findings: Vec<&Value> = match doc {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) if map.contains_key("detail-type") => {
            let mut out = vec![doc.clone()];
            if let Some(Value::Array(items)) = doc["detail"].get("findings")
                && (map["detail-type"] != IMPORTED || items.len() > 1)
            {
                out.extend(items.iter().map(imported));
            }
            return out;
        }
        Value::Object(map) => match map.get("Findings") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![doc],
        },
        _ => vec![],
    };
    findings.into_iter().map(imported).collect()
}

/// The updates Security Hub may send later about `finding`: archived, passed (at
/// INFORMATIONAL, as Security Hub lowers a passed control), not available (active, and archived
/// because the resource is gone), and the workflow set by someone else.
fn variants(finding: &Value) -> Vec<(&'static str, Value)> {
    let set = |f: &mut Value, path: &[&str], v: Value| {
        let mut at = f;
        for k in &path[..path.len() - 1] {
            if !at[*k].is_object() {
                at[*k] = json!({});
            }
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
    };
    let mut out = Vec::new();
    if !finding.is_object() {
        return out;
    }
    let mut archived = finding.clone();
    set(&mut archived, &["RecordState"], json!("ARCHIVED"));
    out.push(("archived", archived));
    for workflow in ["NOTIFIED", "SUPPRESSED", "RESOLVED", "NEW"] {
        let mut w = finding.clone();
        set(&mut w, &["Workflow", "Status"], json!(workflow));
        out.push(("workflow", w));
    }
    if finding.get("Compliance").is_some() {
        let mut passed = finding.clone();
        set(&mut passed, &["Compliance", "Status"], json!("PASSED"));
        set(&mut passed, &["Severity", "Label"], json!("INFORMATIONAL"));
        out.push(("passed", passed));
        let mut unavailable = finding.clone();
        set(
            &mut unavailable,
            &["Compliance", "Status"],
            json!("NOT_AVAILABLE"),
        );
        out.push(("not-available", unavailable.clone()));
        set(&mut unavailable, &["RecordState"], json!("ARCHIVED"));
        set(
            &mut unavailable,
            &["Compliance", "StatusReasons"],
            json!([{"ReasonCode": "CONFIG_EVALUATIONS_EMPTY"}]),
        );
        out.push(("gone", unavailable));
        let mut failing = finding.clone();
        set(&mut failing, &["Compliance", "Status"], json!("FAILED"));
        set(&mut failing, &["RecordState"], json!("ACTIVE"));
        out.push(("failing", failing));
    }
    out
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `../shared/conformance/SUB`, or a loud skip (a failure with `LEVER_REQUIRE_CONFORMANCE=1`).
fn conformance(sub: &str) -> Option<PathBuf> {
    let dir = root()
        .join("../shared/conformance")
        .join(sub)
        .join("findings");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("LEVER_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!(
            "LEVER_REQUIRE_CONFORMANCE=1 but {} is not present",
            dir.display()
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {} not present; only the demo and fixture events are checked",
        dir.display()
    );
    None
}

/// (where it came from, event) for every ASFF input.
fn asff_events() -> Vec<(String, Value)> {
    let mut dirs = vec![
        root().join("examples/demo/findings"),
        root().join("tests/fixtures/asff"),
    ];
    dirs.extend(conformance("asff"));
    let mut out = Vec::new();
    for dir in dirs {
        for file in json_files(&dir) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            for (i, e) in events_of(&read_json(&file)).into_iter().enumerate() {
                if e["detail-type"] == IMPORTED
                    && let Some([finding]) = e["detail"]["findings"].as_array().map(Vec::as_slice)
                {
                    for (what, v) in variants(finding) {
                        out.push((format!("{name}#{i} {what}"), imported(&v)));
                    }
                }
                out.push((format!("{name}#{i}"), e));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Lever's own decision.
// ---------------------------------------------------------------------------------------------

fn now() -> DateTime<Utc> {
    crate::support::app::NOW.parse().unwrap()
}

/// The demo configuration with every account that is not off at `minimum` or above, and the
/// defaults at `minimum`: its lowest minimum, as `lever sync` computes it, is `minimum`.
fn config_at(minimum: Severity) -> Config {
    let mut config = Config::load(&root().join("examples/demo")).expect("demo config");
    let s = &mut config.settings;
    s.defaults.min_severity = minimum;
    for a in s.accounts.values_mut() {
        a.min_severity = a.min_severity.max(minimum);
    }
    let lowest = std::iter::once(&s.defaults)
        .chain(s.accounts.values())
        .filter(|a| a.mode != Mode::Off)
        .map(|a| a.min_severity)
        .min();
    assert_eq!(lowest, Some(minimum));
    config
}

/// Whether Lever would act on `f`: it opens an issue for it as a new finding, or queues work
/// for it as an update of a group it tracks.
fn lever_acts_on(f: &Finding, config: &Config, minimum: Severity) -> Result<(), String> {
    let (changes, outcomes) = pipeline::plan(
        std::slice::from_ref(f),
        &HashMap::new(),
        &HashMap::new(),
        config,
        now(),
        "deploy-test",
    );
    if matches!(outcomes[0].action, Disposition::OpenIssue) {
        return Ok(());
    }
    assert!(changes.jobs.is_empty(), "no group, no issue: no work");

    // The finding as Lever could have ticketed it.
    let mut before = f.clone();
    before.record_state = RecordState::Active;
    before.compliance = f.compliance.map(|_| ComplianceStatus::Failed);
    before.compliance_reasons.clear();
    before.workflow = WorkflowStatus::Notified;
    before.note = None;
    before.updated_at = Some("2000-01-01T00:00:00Z".into());
    if !lifecycle::is_failing(f) {
        before.severity = f.severity.max(minimum);
    }
    let verdict = policy::decide(
        &before,
        config.account(&before.account_id),
        &config.settings.policy,
    );
    if verdict.decision != Decision::Ticket {
        return Err(format!("no group: {}", verdict.detail));
    }
    let key = GroupKey::for_finding(&before, &config.settings.grouping);
    let route = lever::routing::route(&before, config, now(), &|_| None);
    let mut group: GroupRecord =
        pipeline::new_group(&key, &before, &route, &verdict, config, now());
    group.issue_number = Some(1);
    group.issue_url = Some(format!("https://github.com/{}/issues/1", group.repo));
    group.status = GroupStatus::Open;
    let record = FindingRecord {
        product_arn: before.product_arn.clone(),
        finding_id: before.id.clone(),
        stable_key: lever::domain::StableKey::for_finding(&before),
        group_key: key.clone(),
        account_id: before.account_id.clone(),
        severity: before.severity,
        compliance: before.compliance,
        record_state: before.record_state,
        workflow: before.workflow,
        updated_at: before.updated_at.clone(),
        fingerprint: policy::fingerprint(&before),
        finding: before.clone(),
        lever_writes: Vec::new(),
        first_seen: now(),
        last_seen: now(),
    };
    let previous = HashMap::from([((before.product_arn.clone(), before.id.clone()), record)]);
    let groups = HashMap::from([(key, group)]);
    let (changes, outcomes) = pipeline::plan(
        std::slice::from_ref(f),
        &previous,
        &groups,
        config,
        now(),
        "deploy-test",
    );
    if changes.jobs.is_empty() {
        Err(format!(
            "tracked: {:?} ({:?}), no work",
            outcomes[0].action, outcomes[0].change
        ))
    } else {
        Ok(())
    }
}

/// Why Lever needs `event`, if it does: the first of its findings Lever acts on.
fn needed(event: &Value, config: &Config, minimum: Severity) -> Option<String> {
    let intake = lever::asff::parse_value(event, Catalog::embedded()).ok()?;
    intake.findings().find_map(|f| {
        lever_acts_on(f, config, minimum).ok().map(|()| {
            format!(
                "{} {} {:?}/{:?}/{:?} {}",
                f.account_id, f.severity, f.compliance, f.record_state, f.workflow, f.title
            )
        })
    })
}

#[test]
fn the_rule_forwards_every_event_lever_acts_on_and_drops_only_what_it_skips_for_good() {
    let t = template();
    let events = asff_events();
    assert!(events.len() >= 20, "only {} events", events.len());
    let mut dropped_somewhere = 0;
    let mut report = Vec::new();
    for minimum in Severity::ALL {
        let rule = pattern(&t, "FindingsRule", minimum);
        let config = config_at(minimum);
        let mut needed_count = 0;
        for (name, event) in &events {
            let why = needed(event, &config, minimum);
            needed_count += usize::from(why.is_some());
            let forwarded = matches(&rule, event);
            if !forwarded {
                dropped_somewhere += 1;
            }
            if let (Some(why), false) = (&why, forwarded) {
                report.push(format!(
                    "MinimumSeverity={minimum}: {name} dropped, but Lever acts on it: {why}"
                ));
            }
        }
        // Lever acts on some of them at every minimum: the check is not vacuous.
        assert!(
            needed_count > 0,
            "MinimumSeverity={minimum}: Lever acts on nothing?"
        );
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    // And the rule does filter: active FAILED findings below the minimum stay in AWS.
    assert!(
        dropped_somewhere > 0,
        "the rule drops nothing at any minimum"
    );
}

#[test]
fn the_rule_drops_an_active_failed_new_finding_below_the_minimum_and_nothing_else_about_it() {
    // One control finding, varied one field at a time: only the active, FAILED, NEW, LOW one
    // is dropped at MinimumSeverity HIGH; a fix (PASSED at INFORMATIONAL, ARCHIVED,
    // NOT_AVAILABLE), a workflow change and a HIGH one pass, and so does a Custom Action event.
    let t = template();
    let rule = pattern(&t, "FindingsRule", Severity::High);
    let base = json!({
        "SchemaVersion": "2018-10-08",
        "Id": "arn:aws:securityhub:eu-west-1:111111111111:security-control/S3.5/finding/1",
        "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/securityhub",
        "GeneratorId": "security-control/S3.5",
        "AwsAccountId": "111111111111",
        "Title": "S3 general purpose buckets should require requests to use SSL",
        "Severity": {"Label": "LOW"},
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.5"},
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-data"}]
    });
    let with = |path: &[&str], v: Value| {
        let mut f = base.clone();
        let mut at = &mut f;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        imported(&f)
    };
    let mut custom = imported(&base);
    custom["detail-type"] = json!("Security Hub Findings - Custom Action");
    let mut no_compliance = base.clone();
    no_compliance.as_object_mut().unwrap().remove("Compliance");
    let cases = [
        ("active FAILED NEW LOW", imported(&base), false),
        ("HIGH", with(&["Severity", "Label"], json!("HIGH")), true),
        (
            "PASSED INFORMATIONAL",
            {
                let mut e = with(&["Compliance", "Status"], json!("PASSED"));
                e["detail"]["findings"][0]["Severity"]["Label"] = json!("INFORMATIONAL");
                e
            },
            true,
        ),
        ("ARCHIVED", with(&["RecordState"], json!("ARCHIVED")), true),
        (
            "NOT_AVAILABLE",
            with(&["Compliance", "Status"], json!("NOT_AVAILABLE")),
            true,
        ),
        (
            "WARNING",
            with(&["Compliance", "Status"], json!("WARNING")),
            true,
        ),
        (
            "SUPPRESSED",
            with(&["Workflow", "Status"], json!("SUPPRESSED")),
            true,
        ),
        (
            "NOTIFIED",
            with(&["Workflow", "Status"], json!("NOTIFIED")),
            true,
        ),
        (
            "no compliance (another product)",
            imported(&no_compliance),
            true,
        ),
        ("custom action", custom, true),
    ];
    for (what, event, forwarded) in cases {
        assert_eq!(matches(&rule, &event), forwarded, "{what}");
    }
    // An event of another source or detail-type is not Lever's.
    let mut other = imported(&base);
    other["detail-type"] = json!("Findings Imported V2");
    assert!(!matches(&rule, &other));
}

fn v2_event(finding: &Value) -> Value {
    json!({
        "version": "0", "id": "0", "detail-type": "Findings Imported V2",
        "source": "aws.securityhub", "account": "123456789012",
        "time": "2026-11-23T12:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"findings": [finding]}
    })
}

/// The updates Security Hub v2 may send later about an OCSF finding: each status, and for a
/// control the pass (at Informational, as Security Hub lowers it) and the failure again.
fn v2_variants(finding: &Value) -> Vec<Value> {
    let mut out = vec![];
    for (id, word) in [
        (1, "New"),
        (2, "In Progress"),
        (3, "Suppressed"),
        (4, "Resolved"),
        (5, "Archived"),
    ] {
        let mut f = finding.clone();
        f["status_id"] = json!(id);
        f["status"] = json!(word);
        out.push(f);
    }
    if finding["compliance"].is_object() {
        let mut passed = finding.clone();
        passed["compliance"]["status_id"] = json!(1);
        passed["compliance"]["status"] = json!("Pass");
        passed["severity_id"] = json!(1);
        passed["severity"] = json!("Informational");
        out.push(passed);
        let mut failing = finding.clone();
        failing["compliance"]["status_id"] = json!(3);
        failing["compliance"]["status"] = json!("Fail");
        failing["status_id"] = json!(1);
        failing["status"] = json!("New");
        out.push(failing);
    }
    out
}

/// Every `Findings Imported V2` event the tests know: the conformance samples (when present)
/// and the OCSF demo, each finding also with its later updates.
fn v2_events() -> Vec<(String, Value)> {
    let mut docs: Vec<(String, Value)> = vec![];
    let mut dirs = vec![root().join("examples/demo/findings-ocsf")];
    dirs.extend(conformance("ocsf"));
    for dir in dirs {
        for file in json_files(&dir) {
            docs.push((file.display().to_string(), read_json(&file)));
        }
    }
    let mut out = vec![];
    for (name, doc) in docs {
        let findings: Vec<Value> = match &doc {
            Value::Array(a) => a.clone(),
            Value::Object(m) if m.contains_key("detail-type") => {
                out.push((name.clone(), doc.clone()));
                doc["detail"]["findings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            }
            Value::Object(m) if m.contains_key("Findings") => {
                doc["Findings"].as_array().cloned().unwrap_or_default()
            }
            _ => vec![doc.clone()],
        };
        for (i, f) in findings.iter().enumerate() {
            out.push((format!("{name}[{i}]"), v2_event(f)));
            for (j, v) in v2_variants(f).iter().enumerate() {
                out.push((format!("{name}[{i}] variant {j}"), v2_event(v)));
            }
        }
    }
    out
}

#[test]
fn findings_v2_go_only_to_their_own_rule_which_forwards_every_event_lever_acts_on() {
    // The V2 rule (parameter ForwardFindingsV2, off by default: turn it on with Security Hub
    // v2) filters like the main rule, on the OCSF fields: it forwards every V2 event Lever
    // acts on at every MinimumSeverity and drops only active failed New findings below it.
    // The main rule forwards no V2 event.
    let t = template();
    assert_eq!(t["Parameters"]["ForwardFindingsV2"]["Default"], "false");
    assert_eq!(t["Resources"]["FindingsV2Rule"]["Condition"], "ForwardV2");
    let events = v2_events();
    assert!(events.len() >= 50, "only {} V2 events", events.len());
    let mut report = vec![];
    let mut dropped = 0;
    for minimum in Severity::ALL {
        let main = pattern(&t, "FindingsRule", minimum);
        let v2 = pattern(&t, "FindingsV2Rule", minimum);
        let config = config_at(minimum);
        let mut needed_count = 0;
        for (name, event) in &events {
            assert!(
                !matches(&main, event),
                "{name}: the main rule forwards no V2 event"
            );
            let intake = lever::asff::parse_value(event, Catalog::embedded())
                .unwrap_or_else(|e| panic!("{name}: Lever reads V2 events: {e}"));
            assert_eq!(intake.rejections().count(), 0, "{name}: accepted");
            let why = needed(event, &config, minimum);
            needed_count += usize::from(why.is_some());
            let forwarded = matches(&v2, event);
            dropped += usize::from(!forwarded);
            if let (Some(why), false) = (&why, forwarded) {
                report.push(format!(
                    "MinimumSeverity={minimum}: {name} dropped, but Lever acts on it: {why}"
                ));
            }
        }
        assert!(
            needed_count > 0,
            "MinimumSeverity={minimum}: Lever acts on nothing?"
        );
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(dropped > 0, "the V2 rule drops nothing at any minimum");

    // One control finding varied one field at a time, at MinimumSeverity HIGH.
    let v2 = pattern(&t, "FindingsV2Rule", Severity::High);
    let base = read_json(&root().join("tests/fixtures/ocsf/rds-2-ledger-twin.json"));
    let with = |path: &[&str], v: Value| {
        let mut f = base.clone();
        f["severity_id"] = json!(2);
        f["severity"] = json!("Low");
        let mut at = &mut f;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        v2_event(&f)
    };
    let cases = [
        (
            "active Fail New Low",
            with(&["status"], json!("New")),
            false,
        ),
        ("High", with(&["severity_id"], json!(4)), true),
        ("Fatal", with(&["severity_id"], json!(6)), true),
        (
            "Unknown severity id",
            with(&["severity_id"], json!(0)),
            true,
        ),
        ("Pass", with(&["compliance", "status_id"], json!(1)), true),
        ("In Progress", with(&["status_id"], json!(2)), true),
        ("Suppressed", with(&["status_id"], json!(3)), true),
        ("Resolved", with(&["status_id"], json!(4)), true),
        ("Archived", with(&["status_id"], json!(5)), true),
    ];
    for (what, event, forwarded) in cases {
        assert_eq!(matches(&v2, &event), forwarded, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// `lever healthcheck` against the real `lever serve`.
// ---------------------------------------------------------------------------------------------

fn healthcheck(listen: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["healthcheck", "--timeout", "2"])
        .env_clear()
        .env("LEVER_LISTEN", listen)
        .output()
        .expect("run lever healthcheck")
}

#[tokio::test]
async fn healthcheck_succeeds_only_while_serve_answers_healthz_on_the_listen_address() {
    use crate::support::app::{INGEST_TOKEN, WEBHOOK_SECRET, demo_github};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // As in the container: every interface, from the environment.
    let listen = format!("0.0.0.0:{port}");
    let before = healthcheck(&listen);
    assert_eq!(
        before.status.code(),
        Some(1),
        "nothing listens yet: {before:?}"
    );

    let gh = crate::fakes::github::FakeGitHub::start_with_test_app().await;
    demo_github(&gh);
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["serve", "--config"])
        .arg(root().join("examples/demo"))
        .current_dir(work.path())
        .env_clear()
        .env("LEVER_LISTEN", &listen)
        .env("LEVER_LOG_FORMAT", "json")
        .env(
            "GITHUB_APP_ID",
            crate::fakes::github::TEST_APP_ID.to_string(),
        )
        .env(
            "GITHUB_PRIVATE_KEY_PATH",
            root().join("tests/fixtures/github-app-test-key.TEST-ONLY.pem"),
        )
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("LEVER_INGEST_TOKEN", INGEST_TOKEN)
        .env("AWS_ENDPOINT_URL_SECURITYHUB", sh.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lever serve");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let healthy = loop {
        let out = tokio::task::spawn_blocking({
            let listen = listen.clone();
            move || healthcheck(&listen)
        })
        .await
        .unwrap();
        if out.status.success() {
            break out;
        }
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "never healthy: {out:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let said = String::from_utf8_lossy(&healthy.stdout);
    assert!(
        said.contains(&format!("http://127.0.0.1:{port}/healthz")) && said.contains("200"),
        "{said}"
    );

    // JSON logs: the start-up line is one JSON object.
    serve.start_kill().unwrap();
    let output = serve.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    let first = logs.lines().next().expect("a log line");
    let line: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{first}: {e}"));
    assert!(
        line["fields"].is_object() && line["level"].is_string(),
        "{line}"
    );

    let after = healthcheck(&listen);
    assert_eq!(after.status.code(), Some(1), "serve is gone: {after:?}");
    assert!(String::from_utf8_lossy(&after.stderr).contains("lever healthcheck:"));
}
