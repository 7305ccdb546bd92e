//! Unit tests for the ASFF intake: document shapes, every rejection with its field path, the
//! lenient cases real files need, and how each product's findings are keyed.

use serde_json::{Value, json};

use super::finding::{product_of, region_of};
use super::*;
use crate::controls::Catalog;
use crate::domain::{
    ComplianceStatus, Control, RecordState, Severity, Source, StableKey, WorkflowStatus,
};

fn cat() -> &'static Catalog {
    Catalog::embedded()
}

/// A minimal valid FSBP control finding.
fn base() -> Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": "arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/0001",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/S3.8",
        "AwsAccountId": "111111111111",
        "Title": "S3.8 S3 Block Public Access setting should be enabled at the bucket-level",
        "Description": "This control checks whether S3 buckets have bucket-level public access blocks applied.",
        "Severity": {"Label": "HIGH"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::my-bucket", "Region": "us-east-1"}]
    })
}

/// `v` with the value at `path` (object keys, created as needed) set to `new`.
fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut v;
    for p in parents {
        cur = cur
            .as_object_mut()
            .expect("parent is an object")
            .entry(p.to_string())
            .or_insert_with(|| json!({}));
    }
    cur.as_object_mut()
        .expect("parent is an object")
        .insert(last.to_string(), new);
    v
}

/// `v` without the key at `path`.
fn without(mut v: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut v;
    for p in parents {
        cur = cur.get_mut(*p).expect("parent exists");
    }
    cur.as_object_mut().expect("object").remove(*last);
    v
}

fn ok(v: &Value) -> Finding {
    parse_finding(v, 0, cat()).unwrap_or_else(|e| panic!("expected a finding, got {e}"))
}

fn rejected(v: &Value) -> FindingError {
    match parse_finding(v, 0, cat()) {
        Ok(f) => panic!("expected a rejection, got {f:?}"),
        Err(e) => e,
    }
}

fn control(v: &Value) -> Control {
    match ok(v).source {
        Source::Control(c) => c,
        other => panic!("expected a control, got {other:?}"),
    }
}

fn doc(s: &str) -> Result<Intake, DocumentError> {
    parse_document(s.as_bytes(), cat())
}

fn doc_err(s: &str) -> String {
    match doc(s) {
        Ok(i) => panic!(
            "expected a DocumentError, got {:?} with {} entries",
            i.shape,
            i.entries.len()
        ),
        Err(e) => e.message,
    }
}

// ---------------------------------------------------------------------------------------------
// Document shapes

#[test]
fn single_finding_object() {
    let i = doc(&base().to_string()).unwrap();
    assert_eq!(i.shape, Shape::Single);
    assert_eq!(i.event_id, None);
    assert_eq!(i.detail_type, None);
    assert_eq!(i.entries.len(), 1);
    assert_eq!(i.findings().count(), 1);
}

#[test]
fn single_finding_object_that_is_rejected_is_still_a_single_entry() {
    let i = doc(&without(base(), &["Id"]).to_string()).unwrap();
    assert_eq!(i.shape, Shape::Single);
    let errs: Vec<_> = i.rejections().collect();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].index, errs[0].field.as_str()), (0, "Id"));
}

#[test]
fn array_of_findings_keeps_document_order() {
    let a = with(base(), &["Id"], json!("a"));
    let b = with(base(), &["Id"], json!("b"));
    let i = doc(&json!([a, b]).to_string()).unwrap();
    assert_eq!(i.shape, Shape::Array);
    let ids: Vec<_> = i.findings().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn empty_array_and_empty_get_findings_page_are_empty_intakes() {
    let i = doc("[]").unwrap();
    assert_eq!((i.shape, i.entries.len()), (Shape::Array, 0));
    let i = doc(r#"{"Findings": [], "NextToken": null}"#).unwrap();
    assert_eq!((i.shape, i.entries.len()), (Shape::GetFindings, 0));
}

#[test]
fn get_findings_response_with_next_token() {
    let body = json!({"Findings": [base(), base()], "NextToken": "eyJhIjoxfQ=="});
    let i = doc(&body.to_string()).unwrap();
    assert_eq!(i.shape, Shape::GetFindings);
    assert_eq!(i.findings().count(), 2);
    assert_eq!(i.event_id, None);
}

#[test]
fn get_findings_with_findings_not_an_array_is_a_document_error() {
    let msg = doc_err(r#"{"Findings": {"Id": "x"}}"#);
    assert!(msg.contains("\"Findings\" must be an array"), "{msg}");
    assert!(msg.contains("found object"), "{msg}");
}

fn event(detail_type: &str, findings: Value) -> Value {
    json!({
        "version": "0",
        "id": "1622bd23-7237-fdec-8fb0-a019cccfd3cb",
        "detail-type": detail_type,
        "source": "aws.securityhub",
        "account": "111111111111",
        "time": "2020-05-27T03:37:40Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"findings": findings}
    })
}

#[test]
fn eventbridge_imported_and_custom_action_events() {
    for dt in [DETAIL_TYPE_IMPORTED, DETAIL_TYPE_CUSTOM_ACTION] {
        let i = doc(&event(dt, json!([base(), base()])).to_string()).unwrap();
        assert_eq!(i.shape, Shape::EventBridge, "{dt}");
        assert_eq!(
            i.event_id.as_deref(),
            Some("1622bd23-7237-fdec-8fb0-a019cccfd3cb")
        );
        assert_eq!(i.detail_type.as_deref(), Some(dt));
        assert_eq!(i.findings().count(), 2, "{dt}");
    }
}

#[test]
fn eventbridge_event_of_another_detail_type_is_a_document_error() {
    let ev = json!({
        "id": "x", "detail-type": "Security Hub Insight Results", "source": "aws.securityhub",
        "detail": {"actionName": "a", "insightResults": [{"ApiCall": 1}]}
    });
    let msg = doc_err(&ev.to_string());
    assert!(
        msg.contains("unsupported EventBridge detail-type \"Security Hub Insight Results\""),
        "{msg}"
    );
    assert!(msg.contains(DETAIL_TYPE_IMPORTED), "{msg}");
    assert!(msg.contains(DETAIL_TYPE_CUSTOM_ACTION), "{msg}");
}

#[test]
fn malformed_eventbridge_events_are_document_errors() {
    let cases: [(Value, &str); 5] = [
        (
            json!({"detail-type": 7, "detail": {"findings": []}}),
            "\"detail-type\" must be a string, found number 7",
        ),
        (
            json!({"detail-type": DETAIL_TYPE_IMPORTED}),
            "detail is missing",
        ),
        (
            json!({"detail-type": DETAIL_TYPE_IMPORTED, "detail": "x"}),
            "detail must be an object, found string \"x\"",
        ),
        (
            json!({"detail-type": DETAIL_TYPE_IMPORTED, "detail": {"actionName": "a"}}),
            "detail.findings is missing (detail has keys \"actionName\")",
        ),
        (
            json!({"detail-type": DETAIL_TYPE_IMPORTED, "detail": {"findings": {}}}),
            "detail.findings must be an array, found object",
        ),
    ];
    for (ev, want) in cases {
        let msg = doc_err(&ev.to_string());
        assert!(msg.contains(want), "{ev}: {msg}");
    }
}

#[test]
fn invalid_json_names_line_and_column() {
    let msg = doc_err("{\n  \"Id\": \"x\",\n  oops\n}");
    assert!(
        msg.starts_with("invalid JSON at line 3, column 3: "),
        "{msg}"
    );
    assert!(msg.contains("key must be a string"), "{msg}");
    // The location is said once, not repeated by serde_json's own suffix.
    assert_eq!(msg.matches("line 3").count(), 1, "{msg}");

    let msg = doc_err("[{\"Id\": \"x\"}");
    assert!(
        msg.starts_with("invalid JSON at line 1, column 12: "),
        "{msg}"
    );
}

#[test]
fn empty_input_is_a_document_error() {
    for input in ["", "   ", "\n\t\r\n", "\u{feff}"] {
        let msg = doc_err(input);
        assert!(
            msg.starts_with("empty document: expected "),
            "{input:?}: {msg}"
        );
    }
}

#[test]
fn utf8_byte_order_mark_is_ignored() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(base().to_string().as_bytes());
    let i = parse_document(&bytes, cat()).unwrap();
    assert_eq!(i.findings().count(), 1);
}

#[test]
fn unrecognisable_shapes_are_document_errors_saying_what_was_found() {
    let cases = [
        (r#""just a string""#, "found a JSON string"),
        ("42", "found a JSON number"),
        ("null", "found a JSON null"),
        ("true", "found a JSON boolean"),
        (
            r#"{"foo": 1, "bar": 2}"#,
            "found an object with keys \"bar\", \"foo\"",
        ),
        (
            "{}",
            "found an object with keys (none: the object is empty)",
        ),
    ];
    for (input, want) in cases {
        let msg = doc_err(input);
        assert!(
            msg.starts_with("unrecognised document: expected a finding object"),
            "{msg}"
        );
        assert!(msg.contains(want), "{input}: {msg}");
    }
}

#[test]
fn parse_value_accepts_an_already_parsed_document() {
    let i = parse_value(&json!({"Findings": [base()]}), cat()).unwrap();
    assert_eq!(i.shape, Shape::GetFindings);
    assert_eq!(i.findings().count(), 1);
}

#[test]
fn one_bad_finding_never_drops_the_others() {
    let body = json!([
        base(),
        "not a finding",
        without(base(), &["Resources"]),
        with(base(), &["Id"], json!("last")),
    ]);
    let i = doc(&body.to_string()).unwrap();
    assert_eq!(i.entries.len(), 4);
    let got: Vec<_> = i
        .entries
        .iter()
        .map(|e| match e {
            Ok(f) => format!("ok {}", f.id.rsplit('/').next().unwrap()),
            Err(e) => format!("err {} {}", e.index, e.field),
        })
        .collect();
    assert_eq!(
        got,
        ["ok 0001", "err 1 (finding)", "err 2 Resources", "ok last"]
    );
}

// ---------------------------------------------------------------------------------------------
// Rejections, each with its field path

#[test]
fn finding_that_is_not_an_object_is_rejected_as_a_whole() {
    let cases = [
        (json!(42), "number 42"),
        (json!("x"), "string \"x\""),
        (json!([1]), "array of 1 element(s)"),
        (json!(null), "null"),
    ];
    for (v, found) in cases {
        let e = rejected(&v);
        assert_eq!(e.field, WHOLE_FINDING);
        assert_eq!(e.field, "(finding)");
        assert_eq!(
            e.message,
            format!("wrong type: a finding must be a JSON object, found {found}")
        );
    }
}

#[test]
fn required_string_fields_reject_missing_empty_and_wrong_types() {
    for key in ["Id", "ProductArn", "AwsAccountId", "Title"] {
        let cases: [(Option<Value>, &str); 7] = [
            (None, "missing (a non-empty string is required)"),
            (
                Some(json!("")),
                "empty: found string \"\", a non-empty string is required",
            ),
            (
                Some(json!("   ")),
                "empty: found string \"   \", a non-empty string is required",
            ),
            (
                Some(json!(111111111111u64)),
                "wrong type: expected a non-empty string, found number 111111111111",
            ),
            (
                Some(json!(null)),
                "wrong type: expected a non-empty string, found null",
            ),
            (
                Some(json!(["a"])),
                "wrong type: expected a non-empty string, found array of 1 element(s)",
            ),
            (
                Some(json!({"a": 1})),
                "wrong type: expected a non-empty string, found object",
            ),
        ];
        for (value, want) in cases {
            let v = match &value {
                None => without(base(), &[key]),
                Some(x) => with(base(), &[key], x.clone()),
            };
            let e = rejected(&v);
            assert_eq!(e.field, key, "{key} = {value:?}");
            assert_eq!(e.message, want, "{key} = {value:?}");
        }
    }
}

#[test]
fn rejection_carries_the_index_and_displays_it() {
    let e = parse_finding(&without(base(), &["Title"]), 7, cat()).unwrap_err();
    assert_eq!(e.index, 7);
    assert_eq!(
        e.to_string(),
        "finding[7]: Title: missing (a non-empty string is required)"
    );
}

#[test]
fn first_missing_required_field_is_the_one_reported() {
    let v = without(without(base(), &["Title"]), &["Id"]);
    assert_eq!(rejected(&v).field, "Id");
    let v = without(without(base(), &["Resources"]), &["Severity"]);
    assert_eq!(rejected(&v).field, "Severity");
}

#[test]
fn resources_rejections_name_the_exact_path() {
    let cases: [(Option<Value>, &str, &str); 9] = [
        (
            None,
            "Resources",
            "missing (at least one resource with an Id is required)",
        ),
        (
            Some(json!({"Id": "x"})),
            "Resources",
            "wrong type: expected an array, found object",
        ),
        (
            Some(json!(null)),
            "Resources",
            "wrong type: expected an array, found null",
        ),
        (
            Some(json!([])),
            "Resources",
            "empty array (at least one resource with an Id is required)",
        ),
        (
            Some(json!([{"Type": "AwsS3Bucket"}])),
            "Resources[0].Id",
            "missing (a non-empty string is required)",
        ),
        (
            Some(json!([{"Id": ""}])),
            "Resources[0].Id",
            "empty: found string \"\", a non-empty string is required",
        ),
        (
            Some(json!([{"Id": 5}])),
            "Resources[0].Id",
            "wrong type: expected a non-empty string, found number 5",
        ),
        (
            Some(json!(["arn:aws:s3:::b"])),
            "Resources[0]",
            "wrong type: expected an object, found string \"arn:aws:s3:::b\"",
        ),
        (
            Some(json!([{"Type": "A"}, {"Id": false}])),
            "Resources[0].Id",
            "missing (a non-empty string is required)",
        ),
    ];
    for (value, field, message) in cases {
        let v = match &value {
            None => without(base(), &["Resources"]),
            Some(x) => with(base(), &["Resources"], x.clone()),
        };
        let e = rejected(&v);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (field, message),
            "{value:?}"
        );
    }
}

#[test]
fn unusable_resources_are_skipped_when_another_has_an_id() {
    let v = with(
        base(),
        &["Resources"],
        json!([{"Id": ""}, 7, {"Id": "arn:aws:s3:::second", "Region": "eu-west-1"}]),
    );
    let f = ok(&without(v, &["Region"]));
    assert_eq!(f.resources.len(), 1);
    assert_eq!(f.primary_resource().id, "arn:aws:s3:::second");
    assert_eq!(
        f.region, "eu-west-1",
        "region comes from the first usable resource"
    );
}

#[test]
fn severity_rejections_say_what_was_tried() {
    let cases: [(Value, &str); 6] = [
        (
            without(base(), &["Severity"]),
            "missing: none of Severity.Label, Severity.Normalized, \
             FindingProviderFields.Severity.Label or ProductFields[\"aws/securityhub/SeverityLabel\"] is present",
        ),
        (
            with(base(), &["Severity"], json!({})),
            "missing: none of Severity.Label",
        ),
        (
            with(base(), &["Severity"], json!({"Label": "SEVERE"})),
            "no usable severity: Severity.Label \"SEVERE\" is not a severity label \
             (INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)",
        ),
        (
            with(base(), &["Severity"], json!("HIGH")),
            "no usable severity: Severity is string \"HIGH\" (expected an object)",
        ),
        (
            with(
                base(),
                &["Severity"],
                json!({"Normalized": 150, "Label": 3}),
            ),
            "no usable severity: Severity.Label is number 3 (expected a string); \
             Severity.Normalized is number 150 (expected a number from 0 to 100)",
        ),
        (
            with(
                with(base(), &["Severity"], json!({"Normalized": "high"})),
                &["FindingProviderFields", "Severity", "Label"],
                json!("URGENT"),
            ),
            "no usable severity: Severity.Normalized is string \"high\" (expected a number from 0 to 100); \
             FindingProviderFields.Severity.Label \"URGENT\" is not a severity label",
        ),
    ];
    for (v, want) in cases {
        let e = rejected(&v);
        assert_eq!(e.field, "Severity", "{}", v["Severity"]);
        assert!(
            e.message.starts_with(want),
            "{}\n got: {}",
            v["Severity"],
            e.message
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Severity fallbacks

#[test]
fn severity_fallback_chain() {
    let pf_label = ["ProductFields", "aws/securityhub/SeverityLabel"];
    let fpf_label = ["FindingProviderFields", "Severity", "Label"];
    let cases: [(Value, Severity); 16] = [
        (base(), Severity::High),
        (
            with(base(), &["Severity", "Label"], json!("low")),
            Severity::Low,
        ),
        (
            with(base(), &["Severity", "Label"], json!(" Critical ")),
            Severity::Critical,
        ),
        // Label wins over a disagreeing Normalized.
        (
            with(
                base(),
                &["Severity"],
                json!({"Label": "LOW", "Normalized": 95}),
            ),
            Severity::Low,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": 40})),
            Severity::Medium,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": "40"})),
            Severity::Medium,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": " 70 "})),
            Severity::High,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": 0})),
            Severity::Informational,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": 39.5})),
            Severity::Low,
        ),
        (
            with(base(), &["Severity"], json!({"Normalized": 100})),
            Severity::Critical,
        ),
        (
            with(
                base(),
                &["Severity"],
                json!({"Label": "", "Normalized": 90}),
            ),
            Severity::Critical,
        ),
        (
            with(
                base(),
                &["Severity"],
                json!({"Label": "SEVERE", "Normalized": 1}),
            ),
            Severity::Low,
        ),
        (
            with(
                without(base(), &["Severity"]),
                &fpf_label,
                json!("CRITICAL"),
            ),
            Severity::Critical,
        ),
        (
            with(without(base(), &["Severity"]), &pf_label, json!("LOW")),
            Severity::Low,
        ),
        // Severity.Product alone is the product's own scale: not used.
        (
            with(
                with(
                    base(),
                    &["Severity"],
                    json!({"Product": 8, "Normalized": 10}),
                ),
                &pf_label,
                json!("HIGH"),
            ),
            Severity::Low,
        ),
        (
            with(
                with(
                    with(base(), &["Severity"], json!({})),
                    &fpf_label,
                    json!("nope"),
                ),
                &pf_label,
                json!("MEDIUM"),
            ),
            Severity::Medium,
        ),
    ];
    for (i, (v, want)) in cases.iter().enumerate() {
        assert_eq!(ok(v).severity, *want, "case {i}: {}", v["Severity"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient fields

#[test]
fn description_falls_back_to_title() {
    let title = base()["Title"].as_str().unwrap().to_string();
    for v in [
        without(base(), &["Description"]),
        with(base(), &["Description"], json!("")),
        with(base(), &["Description"], json!("  \n")),
        with(base(), &["Description"], json!(12)),
    ] {
        assert_eq!(ok(&v).description, title);
    }
    assert!(ok(&base()).description.starts_with("This control checks"));
}

#[test]
fn unknown_and_lower_case_keys_are_ignored() {
    let v = with(
        base(),
        &["approximateArrivalTimestamp"],
        json!(1560354029.052),
    );
    let v = with(v, &["updatedAt"], json!("2019-06-12T15:34:50.346Z"));
    let v = with(v, &["Confidence"], json!(100));
    let v = with(v, &["SomethingNew"], json!({"deep": [1, 2, {"x": null}]}));
    let f = ok(&v);
    assert_eq!(f.updated_at, None, "only UpdatedAt counts, not updatedAt");
}

#[test]
fn blank_optional_fields_are_absent() {
    let v = base();
    let v = with(v, &["GeneratorId"], json!(""));
    let v = with(v, &["SourceUrl"], json!(""));
    let v = with(v, &["ProductName"], json!(" "));
    let v = with(v, &["CreatedAt"], json!(""));
    let v = with(
        v,
        &["Types"],
        json!(["", 3, "Software and Configuration Checks", null]),
    );
    let f = ok(&v);
    assert_eq!(f.generator_id, None);
    assert_eq!(f.source_url, None);
    assert_eq!(f.product_name, None);
    assert_eq!(f.created_at, None);
    assert_eq!(f.types, ["Software and Configuration Checks"]);
}

#[test]
fn region_fallbacks() {
    let no_region = without(base(), &["Region"]);
    let cases: [(Value, &str); 6] = [
        (with(base(), &["Region"], json!("eu-west-3")), "eu-west-3"),
        (no_region.clone(), "us-east-1"),
        (
            with(
                with(
                    no_region.clone(),
                    &["Resources"],
                    json!([{"Id": "r", "Region": ""}]),
                ),
                &["ProductArn"],
                json!("arn:aws:securityhub:ap-southeast-2::product/aws/securityhub"),
            ),
            "ap-southeast-2",
        ),
        (
            with(
                with(
                    with(base(), &["Region"], json!("")),
                    &["Resources"],
                    json!([{"Id": "r"}]),
                ),
                &["ProductArn"],
                json!("arn:aws::securityhub:us-east-1::product/aws/guardduty"),
            ),
            "us-east-1",
        ),
        (
            with(
                with(no_region.clone(), &["Resources"], json!([{"Id": "r"}])),
                &["ProductArn"],
                json!("arn:aws:securityhub:::product/aws/securityhub"),
            ),
            "global",
        ),
        (
            with(
                with(no_region, &["Resources"], json!([{"Id": "r"}])),
                &["ProductArn"],
                json!("arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/securityhub"),
            ),
            "us-gov-west-1",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(ok(&v).region, want, "{}", v["ProductArn"]);
    }
}

#[test]
fn region_of_product_arn_table() {
    let cases = [
        (
            "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            Some("us-east-1"),
        ),
        (
            "arn:aws::securityhub:us-east-1::product/aws/guardduty",
            Some("us-east-1"),
        ),
        ("arn:aws:securityhub:::product/aws/securityhub", None),
        // The product part never supplies a region, even when it looks like one.
        ("arn:aws:securityhub:::product/eu-west-1/x", None),
        (
            "arn:aws:securityhub:eu-central-1:123456789012:product/123456789012/default",
            Some("eu-central-1"),
        ),
        ("garbage", None),
    ];
    for (arn, want) in cases {
        assert_eq!(region_of(arn), want, "{arn}");
    }
}

#[test]
fn product_of_product_arn_table() {
    let cases = [
        (
            "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "aws/securityhub",
        ),
        (
            "arn:aws::securityhub:us-east-1::product/aws/guardduty",
            "aws/guardduty",
        ),
        (
            "arn:aws:securityhub:eu-west-1::product/prowler/prowler",
            "prowler/prowler",
        ),
        (
            "arn:aws:securityhub:us-east-1:644160558196:product/644160558196/default",
            "644160558196/default",
        ),
        (
            "arn:aws:securityhub:us-east-1::product/aws/securityhub/extra",
            "aws/securityhub",
        ),
        ("arn:aws:securityhub:us-east-1::product/solo", "solo"),
        ("not-an-arn", "not-an-arn"),
    ];
    for (arn, want) in cases {
        assert_eq!(product_of(arn), want, "{arn}");
    }
    let f = ok(&with(
        base(),
        &["ProductArn"],
        json!("arn:aws:securityhub:eu-west-1::product/prowler/prowler"),
    ));
    assert_eq!(f.product, "prowler/prowler");
}

#[test]
fn product_name_from_field_or_product_fields() {
    assert_eq!(ok(&base()).product_name, None);
    let v = with(
        base(),
        &["ProductFields", "aws/securityhub/ProductName"],
        json!("Security Hub"),
    );
    assert_eq!(ok(&v).product_name.as_deref(), Some("Security Hub"));
    let v = with(v, &["ProductName"], json!("Security Hub CSPM"));
    assert_eq!(ok(&v).product_name.as_deref(), Some("Security Hub CSPM"));
}

#[test]
fn compliance_status_table() {
    let cases = [
        (Some(json!("PASSED")), Some(ComplianceStatus::Passed)),
        (Some(json!("FAILED")), Some(ComplianceStatus::Failed)),
        (Some(json!("WARNING")), Some(ComplianceStatus::Warning)),
        (
            Some(json!("NOT_AVAILABLE")),
            Some(ComplianceStatus::NotAvailable),
        ),
        (Some(json!("failed")), Some(ComplianceStatus::Failed)),
        (Some(json!("BOGUS")), None),
        (Some(json!(1)), None),
        (None, None),
    ];
    for (status, want) in cases {
        let v = match &status {
            Some(s) => with(base(), &["Compliance", "Status"], s.clone()),
            None => base(),
        };
        assert_eq!(ok(&v).compliance, want, "{status:?}");
    }
}

#[test]
fn record_state_defaults_to_active() {
    let cases = [
        (Some("ARCHIVED"), RecordState::Archived),
        (Some("ACTIVE"), RecordState::Active),
        (Some("archived"), RecordState::Archived),
        (Some("DELETED"), RecordState::Active),
        (None, RecordState::Active),
    ];
    for (state, want) in cases {
        let v = match state {
            Some(s) => with(base(), &["RecordState"], json!(s)),
            None => base(),
        };
        assert_eq!(ok(&v).record_state, want, "{state:?}");
    }
}

#[test]
fn workflow_status_then_legacy_workflow_state_then_new() {
    let cases = [
        (Some("NOTIFIED"), None, WorkflowStatus::Notified),
        (Some("SUPPRESSED"), Some("NEW"), WorkflowStatus::Suppressed),
        (Some("resolved"), None, WorkflowStatus::Resolved),
        (Some("BOGUS"), Some("RESOLVED"), WorkflowStatus::Resolved),
        (None, Some("NEW"), WorkflowStatus::New),
        (None, Some("ASSIGNED"), WorkflowStatus::Notified),
        (None, Some("IN_PROGRESS"), WorkflowStatus::Notified),
        (None, Some("DEFERRED"), WorkflowStatus::Suppressed),
        (None, Some("RESOLVED"), WorkflowStatus::Resolved),
        (None, Some("WHATEVER"), WorkflowStatus::New),
        (None, None, WorkflowStatus::New),
    ];
    for (status, state, want) in cases {
        let mut v = base();
        if let Some(s) = status {
            v = with(v, &["Workflow", "Status"], json!(s));
        }
        if let Some(s) = state {
            v = with(v, &["WorkflowState"], json!(s));
        }
        assert_eq!(ok(&v).workflow, want, "{status:?} / {state:?}");
    }
}

#[test]
fn note_text_author_and_time() {
    let v = with(
        base(),
        &["Note"],
        json!({"Text": "Tracked in org/repo#12", "UpdatedBy": "lever", "UpdatedAt": "2024-01-02T03:04:05Z"}),
    );
    let n = ok(&v).note.expect("note");
    assert_eq!(n.text, "Tracked in org/repo#12");
    assert_eq!(n.updated_by, "lever");
    assert_eq!(n.updated_at.as_deref(), Some("2024-01-02T03:04:05Z"));

    let n = ok(&with(base(), &["Note"], json!({"Text": "t"})))
        .note
        .expect("note");
    assert_eq!((n.updated_by.as_str(), n.updated_at), ("", None));

    assert_eq!(
        ok(&with(base(), &["Note"], json!({"UpdatedBy": "x"}))).note,
        None
    );
    assert_eq!(ok(&with(base(), &["Note"], json!("text"))).note, None);
    assert_eq!(ok(&base()).note, None);
}

#[test]
fn remediation_text_and_url_with_product_fields_fallback() {
    let v = with(
        base(),
        &["Remediation", "Recommendation"],
        json!({"Text": "Fix it", "Url": "https://docs.aws.amazon.com/console/securityhub/S3.8/remediation"}),
    );
    let v = with(
        v,
        &["ProductFields", "RecommendationUrl"],
        json!("https://other"),
    );
    let f = ok(&v);
    assert_eq!(f.remediation_text.as_deref(), Some("Fix it"));
    assert_eq!(
        f.remediation_url.as_deref(),
        Some("https://docs.aws.amazon.com/console/securityhub/S3.8/remediation")
    );

    let v = with(
        base(),
        &["ProductFields", "RecommendationUrl"],
        json!("https://fallback"),
    );
    let f = ok(&v);
    assert_eq!(f.remediation_text, None);
    assert_eq!(f.remediation_url.as_deref(), Some("https://fallback"));

    let f = ok(&base());
    assert_eq!((f.remediation_text, f.remediation_url), (None, None));
}

#[test]
fn verbatim_fields_are_copied() {
    let v = base();
    let v = with(v, &["CreatedAt"], json!("2018-12-02T23:43:03.954804+00:00"));
    let v = with(v, &["UpdatedAt"], json!("2020-06-02T16:05:54.832Z"));
    let v = with(v, &["FirstObservedAt"], json!("2020-08-22T09:15:57Z"));
    let v = with(v, &["LastObservedAt"], json!("2020-09-30T11:56:49Z"));
    let v = with(v, &["SourceUrl"], json!("https://console.aws.amazon.com/x"));
    let v = with(v, &["Types"], json!(["A/B/C", "D"]));
    let f = ok(&v);
    assert_eq!(f.id, v["Id"].as_str().unwrap());
    assert_eq!(f.product_arn, v["ProductArn"].as_str().unwrap());
    assert_eq!(f.account_id, "111111111111");
    assert_eq!(f.generator_id.as_deref(), v["GeneratorId"].as_str());
    assert_eq!(
        f.created_at.as_deref(),
        Some("2018-12-02T23:43:03.954804+00:00")
    );
    assert_eq!(f.updated_at.as_deref(), Some("2020-06-02T16:05:54.832Z"));
    assert_eq!(f.first_observed_at.as_deref(), Some("2020-08-22T09:15:57Z"));
    assert_eq!(f.last_observed_at.as_deref(), Some("2020-09-30T11:56:49Z"));
    assert_eq!(
        f.source_url.as_deref(),
        Some("https://console.aws.amazon.com/x")
    );
    assert_eq!(f.types, ["A/B/C", "D"]);
}

#[test]
fn resources_keep_type_region_and_string_tags_in_order() {
    let v = with(
        base(),
        &["Resources"],
        json!([
            {
                "Type": "AwsEc2Instance", "Id": "arn:aws:ec2:eu-west-1:111111111111:instance/i-1",
                "Partition": "aws", "Region": "eu-west-1",
                "Tags": {"aws:autoscaling:groupName": "web", "Owner": "team-a", "Count": 3, "Nested": {"a": 1}, "Empty": ""},
                "Details": {"AwsEc2Instance": {"ImageId": "ami-1"}}
            },
            {"Id": "arn:aws:ec2:eu-west-1:111111111111:volume/vol-1", "Tags": ["not", "a", "map"]}
        ]),
    );
    let f = ok(&v);
    assert_eq!(f.resources.len(), 2);
    let r = &f.resources[0];
    assert_eq!(r.id, "arn:aws:ec2:eu-west-1:111111111111:instance/i-1");
    assert_eq!(r.kind.as_deref(), Some("AwsEc2Instance"));
    assert_eq!(r.region.as_deref(), Some("eu-west-1"));
    let tags: Vec<_> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        tags,
        ["Empty=", "Owner=team-a", "aws:autoscaling:groupName=web"]
    );
    let r = &f.resources[1];
    assert_eq!((r.kind.as_deref(), r.region.as_deref()), (None, None));
    assert!(r.tags.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Control resolution

fn ctrl_finding(generator: Option<&str>) -> Value {
    let v = without(base(), &["GeneratorId"]);
    match generator {
        Some(g) => with(v, &["GeneratorId"], json!(g)),
        None => v,
    }
}

#[test]
fn control_ids_from_generator_ids() {
    // (GeneratorId, id, standard, reported_id)
    let cases: [(&str, &str, &str, Option<&str>); 18] = [
        ("security-control/S3.1", "S3.1", "consolidated", None),
        ("security-control/s3.1", "S3.1", "consolidated", None),
        (
            "security-control/Future.99",
            "Future.99",
            "consolidated",
            None,
        ),
        (
            "aws-foundational-security-best-practices/v/1.0.0/S3.1",
            "S3.1",
            "fsbp",
            None,
        ),
        (
            "aws-foundational-security-best-practices/v/1.0.0/cloudtrail.2",
            "CloudTrail.2",
            "fsbp",
            None,
        ),
        (
            "nist-800-53/v/5.0.0/CloudTrail.2",
            "CloudTrail.2",
            "nist-800-53-5.0.0",
            None,
        ),
        (
            "service-managed-aws-control-tower/v/1.0.0/CloudTrail.2",
            "CloudTrail.2",
            "control-tower",
            None,
        ),
        (
            "service-managed-aws-control-tower/v/1.0.0/CT.CloudTrail.2",
            "CloudTrail.2",
            "control-tower",
            Some("CT.CloudTrail.2"),
        ),
        (
            "pci-dss/v/3.2.1/PCI.S3.6",
            "S3.1",
            "pci-dss-3.2.1",
            Some("PCI.S3.6"),
        ),
        (
            "pci-dss/v/3.2.1/PCI.CloudTrail.1",
            "CloudTrail.2",
            "pci-dss-3.2.1",
            Some("PCI.CloudTrail.1"),
        ),
        (
            "pci-dss/v/3.2.1/PCI.Foo.1",
            "pci-dss-3.2.1/PCI.Foo.1",
            "pci-dss-3.2.1",
            Some("PCI.Foo.1"),
        ),
        (
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.7",
            "CloudTrail.2",
            "cis-1.2.0",
            Some("2.7"),
        ),
        (
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/99.9",
            "cis-1.2.0/99.9",
            "cis-1.2.0",
            Some("99.9"),
        ),
        (
            "cis-aws-foundations-benchmark/v/1.4.0/3.7",
            "CloudTrail.2",
            "cis-1.4.0",
            Some("3.7"),
        ),
        (
            "cis-aws-foundations-benchmark/v/1.4.0/9.9",
            "cis-1.4.0/9.9",
            "cis-1.4.0",
            Some("9.9"),
        ),
        (
            "cis-aws-foundations-benchmark/v/3.0.0/3.5",
            "cis-3.0.0/3.5",
            "cis-3.0.0",
            Some("3.5"),
        ),
        (
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.7.0/rule/1.6",
            "cis-1.7.0/1.6",
            "cis-1.7.0",
            Some("1.6"),
        ),
        (
            "pci-dss/v/4.0.1/10.3.2",
            "pci-dss-4.0.1/10.3.2",
            "pci-dss-4.0.1",
            Some("10.3.2"),
        ),
    ];
    for (generator, id, standard, reported) in cases {
        let c = control(&ctrl_finding(Some(generator)));
        assert_eq!(
            (c.id.as_str(), c.standard.as_str(), c.reported_id.as_deref()),
            (id, standard, reported),
            "{generator}"
        );
    }
}

#[test]
fn unknown_standard_ids_stay_qualified_even_when_they_look_like_controls() {
    let c = control(&ctrl_finding(Some(
        "aws-resource-tagging-standard/v/1.0.0/EC2.44",
    )));
    assert_eq!(c.id, "aws-resource-tagging-standard-1.0.0/EC2.44");
    assert_eq!(c.standard, "aws-resource-tagging-standard-1.0.0");
}

#[test]
fn security_control_id_wins_and_keeps_the_reporting_standard() {
    let cases: [(&str, &str, &str, &str, Option<&str>); 4] = [
        (
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.7",
            "CloudTrail.2",
            "CloudTrail.2",
            "cis-1.2.0",
            Some("2.7"),
        ),
        (
            "cis-aws-foundations-benchmark/v/3.0.0/3.5",
            "CloudTrail.2",
            "CloudTrail.2",
            "cis-3.0.0",
            Some("3.5"),
        ),
        (
            "pci-dss/v/3.2.1/PCI.Foo.1",
            "S3.99",
            "S3.99",
            "pci-dss-3.2.1",
            Some("PCI.Foo.1"),
        ),
        (
            "security-control/CloudTrail.2",
            "cloudtrail.2",
            "CloudTrail.2",
            "consolidated",
            None,
        ),
    ];
    for (generator, sc_id, id, standard, reported) in cases {
        let v = with(
            ctrl_finding(Some(generator)),
            &["Compliance", "SecurityControlId"],
            json!(sc_id),
        );
        let c = control(&v);
        assert_eq!(
            (c.id.as_str(), c.standard.as_str(), c.reported_id.as_deref()),
            (id, standard, reported),
            "{generator} + {sc_id}"
        );
    }
    // With nothing else to go on, SecurityControlId alone makes a consolidated control.
    let v = with(
        ctrl_finding(Some("something-else")),
        &["Compliance", "SecurityControlId"],
        json!("IAM.6"),
    );
    assert_eq!(
        control(&v),
        Control {
            id: "IAM.6".into(),
            reported_id: None,
            standard: "consolidated".into()
        }
    );
}

#[test]
fn control_ids_from_product_fields_when_generator_id_is_missing_or_odd() {
    let pf = |fields: Value, generator: Option<&str>| {
        with(ctrl_finding(generator), &["ProductFields"], fields)
    };
    let cases: [(Value, &str, &str, Option<&str>); 6] = [
        (
            pf(
                json!({"RuleId": "1.3", "StandardsGuideArn": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"}),
                None,
            ),
            "IAM.8",
            "cis-1.2.0",
            Some("1.3"),
        ),
        (
            pf(
                json!({"ControlId": "PCI.S3.6", "StandardsArn": "arn:aws:securityhub:::standards/pci-dss/v/3.2.1"}),
                Some("odd"),
            ),
            "S3.1",
            "pci-dss-3.2.1",
            Some("PCI.S3.6"),
        ),
        (
            pf(
                json!({"ControlId": "S3.1", "StandardsArn": "arn:aws:securityhub:::standards/aws-foundational-security-best-practices/v/1.0.0"}),
                None,
            ),
            "S3.1",
            "fsbp",
            None,
        ),
        (
            pf(
                json!({"StandardsControlArn": "arn:aws:securityhub:us-east-1:111111111111:control/cis-aws-foundations-benchmark/v/1.2.0/2.7"}),
                None,
            ),
            "CloudTrail.2",
            "cis-1.2.0",
            Some("2.7"),
        ),
        // StandardsArn is believed over a StandardsControlArn naming another standard (as in the
        // AWS NIST doc sample, whose StandardsControlArn points at FSBP).
        (
            pf(
                json!({
                    "ControlId": "CloudTrail.2",
                    "StandardsArn": "arn:aws:securityhub:::standards/nist-800-53/v/5.0.0",
                    "StandardsControlArn": "arn:aws:securityhub:us-east-2:1:control/aws-foundational-security-best-practices/v/1.0.0/CloudTrail.2"
                }),
                None,
            ),
            "CloudTrail.2",
            "nist-800-53-5.0.0",
            None,
        ),
        (
            pf(
                json!({"ControlId": "3.5", "StandardsArn": "arn:aws:securityhub:::standards/cis-aws-foundations-benchmark/v/3.0.0"}),
                None,
            ),
            "cis-3.0.0/3.5",
            "cis-3.0.0",
            Some("3.5"),
        ),
    ];
    for (v, id, standard, reported) in cases {
        let c = control(&v);
        assert_eq!(
            (c.id.as_str(), c.standard.as_str(), c.reported_id.as_deref()),
            (id, standard, reported),
            "{}",
            v["ProductFields"]
        );
    }
}

#[test]
fn security_hub_finding_without_any_control_falls_back_to_product() {
    let f = ok(&ctrl_finding(Some("something-else")));
    assert_eq!(
        f.source,
        Source::Product {
            product: "aws/securityhub".into(),
            generator_id: "something-else".into()
        }
    );
    // A ControlId with no standard named anywhere is not guessed at.
    let v = with(
        ctrl_finding(None),
        &["ProductFields", "ControlId"],
        json!("S3.1"),
    );
    let f = ok(&v);
    assert_eq!(
        f.source,
        Source::Product {
            product: "aws/securityhub".into(),
            generator_id: f.title.clone()
        }
    );
}

#[test]
fn control_generator_ids_from_other_products_are_not_controls() {
    // As in the AWS BatchImportFindings doc sample: a custom product reusing a CIS GeneratorId.
    let g = "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.2";
    let v = with(
        ctrl_finding(Some(g)),
        &["ProductArn"],
        json!("arn:aws:securityhub:us-west-1:123456789012:product/123456789012/default"),
    );
    assert_eq!(
        ok(&v).source,
        Source::Product {
            product: "123456789012/default".into(),
            generator_id: g.into()
        }
    );
}

#[test]
fn one_control_under_three_standards_is_one_stable_key() {
    let mk = |generator: &str, id: &str| {
        with(
            with(base(), &["GeneratorId"], json!(generator)),
            &["Id"],
            json!(id),
        )
    };
    let findings = [
        mk("aws-foundational-security-best-practices/v/1.0.0/S3.1", "a"),
        mk("pci-dss/v/3.2.1/PCI.S3.6", "b"),
        mk("security-control/S3.1", "c"),
    ];
    let keys: Vec<StableKey> = findings
        .iter()
        .map(|v| StableKey::for_finding(&ok(v)))
        .collect();
    assert_eq!(
        keys[0].0,
        "control|S3.1|111111111111|us-east-1|arn:aws:s3:::my-bucket"
    );
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
}

// ---------------------------------------------------------------------------------------------
// GuardDuty, Inspector, other products

fn guardduty(types: Value) -> Value {
    let v = with(
        base(),
        &["ProductArn"],
        json!("arn:aws::securityhub:us-east-1::product/aws/guardduty"),
    );
    let v = with(
        v,
        &["GeneratorId"],
        json!("arn:aws:guardduty:us-east-1:111111111111:detector/d4b0"),
    );
    let v = with(
        v,
        &["Title"],
        json!("198.51.100.7 is performing SSH brute force attacks against i-0c10."),
    );
    with(v, &["Types"], types)
}

#[test]
fn guardduty_findings_are_keyed_by_finding_type() {
    let f = ok(&guardduty(json!([
        "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"
    ])));
    assert_eq!(
        f.source,
        Source::GuardDuty {
            finding_type: "UnauthorizedAccess:EC2-SSHBruteForce".into()
        }
    );
    // The namespace/category prefix does not change the key.
    let g = ok(&guardduty(json!([
        "Unusual Behaviors/VM/UnauthorizedAccess:EC2-SSHBruteForce"
    ])));
    assert_eq!(StableKey::for_finding(&f), StableKey::for_finding(&g));
    // No type at all: the title.
    let h = ok(&guardduty(json!([])));
    assert_eq!(
        h.source,
        Source::GuardDuty {
            finding_type: h.title.clone()
        }
    );
}

fn inspector() -> Value {
    let v = with(
        base(),
        &["ProductArn"],
        json!("arn:aws:securityhub:us-east-1::product/aws/inspector"),
    );
    with(
        v,
        &["Title"],
        json!(
            "On instance i-1, TCP port 22 which is associated with 'SSH' is reachable from the internet"
        ),
    )
}

#[test]
fn inspector_findings_are_keyed_by_vulnerability_or_rule() {
    let v = with(
        with(inspector(), &["GeneratorId"], json!("AWSInspector")),
        &["Vulnerabilities"],
        json!([{"Id": "CVE-2021-44228", "VulnerablePackages": []}, {"Id": "CVE-2021-45046"}]),
    );
    assert_eq!(
        ok(&v).source,
        Source::Inspector {
            vulnerability_id: "CVE-2021-44228".into()
        }
    );

    let classic = with(
        inspector(),
        &["GeneratorId"],
        json!("arn:aws:inspector:us-east-1:316112463485:rulespackage/0-PmNV0Tcd"),
    );
    let f = ok(&classic);
    assert_eq!(
        f.source,
        Source::Inspector {
            vulnerability_id: format!(
                "arn:aws:inspector:us-east-1:316112463485:rulespackage/0-PmNV0Tcd/{}",
                f.title
            )
        }
    );

    let v = with(
        without(inspector(), &["GeneratorId"]),
        &["ProductFields", "serviceAttributes/rulesPackageArn"],
        json!("arn:aws:inspector:us-east-1:111:rulespackage/0-X"),
    );
    let f = ok(&v);
    assert_eq!(
        f.source,
        Source::Inspector {
            vulnerability_id: format!(
                "arn:aws:inspector:us-east-1:111:rulespackage/0-X/{}",
                f.title
            )
        }
    );

    let f = ok(&without(inspector(), &["GeneratorId"]));
    assert_eq!(
        f.source,
        Source::Inspector {
            vulnerability_id: f.title.clone()
        }
    );
}

#[test]
fn other_products_are_keyed_by_generator_or_title() {
    let v = with(
        base(),
        &["ProductArn"],
        json!("arn:aws:securityhub:eu-west-1::product/prowler/prowler"),
    );
    let v = with(v, &["GeneratorId"], json!("prowler-check14"));
    assert_eq!(
        ok(&v).source,
        Source::Product {
            product: "prowler/prowler".into(),
            generator_id: "prowler-check14".into()
        }
    );
    let f = ok(&without(v, &["GeneratorId"]));
    assert_eq!(
        f.source,
        Source::Product {
            product: "prowler/prowler".into(),
            generator_id: f.title.clone()
        }
    );
}
