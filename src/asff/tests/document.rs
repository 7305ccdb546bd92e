//! Document shapes and document errors.

use serde_json::{Value, json};

use super::*;

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
