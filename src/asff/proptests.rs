//! The ASFF parser on arbitrary bytes and arbitrary JSON: it never panics, and every
//! rejection (of the document or of one finding) says why.

use proptest::prelude::*;

use crate::controls::Catalog;
use crate::proptest_support::json;

const KEYS: &[&str] = &[
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "Types",
    "CreatedAt",
    "UpdatedAt",
    "Severity",
    "Label",
    "Normalized",
    "Title",
    "Description",
    "Resources",
    "Type",
    "Region",
    "Tags",
    "Compliance",
    "Status",
    "SecurityControlId",
    "StatusReasons",
    "Workflow",
    "RecordState",
    "ProductFields",
    "Findings",
    "detail",
    "findings",
    "detail-type",
    "source",
    "id",
    "Details",
    "Partition",
    "Remediation",
    "Recommendation",
    "Url",
    "Text",
    "Note",
    "ControlId",
    "RuleId",
    "StandardsArn",
    "StandardsControlArn",
    "RecommendationUrl",
    "aws/securityhub/SeverityLabel",
    "aws/securityhub/ProductName",
    "class_uid",
    "metadata",
];

fn check(bytes: &[u8]) {
    match super::parse_document(bytes, Catalog::embedded()) {
        Err(e) => assert!(!e.to_string().trim().is_empty(), "an empty reason"),
        Ok(intake) => {
            for e in intake.rejections() {
                assert!(!e.to_string().trim().is_empty(), "an empty reason");
            }
        }
    }
}

/// The lean read of the bytes (`super::lean`) parses to what the whole JSON value parses to.
fn alike(doc: &serde_json::Value) {
    let bytes = serde_json::to_vec(doc).unwrap();
    let lean = super::parse_document(&bytes, Catalog::embedded());
    let whole = super::parse_value(doc, Catalog::embedded());
    assert_eq!(format!("{lean:?}"), format!("{whole:?}"), "{doc}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_json(doc in json(KEYS)) {
        check(&serde_json::to_vec(&doc).unwrap());
        alike(&doc);
    }

    #[test]
    fn arbitrary_findings_in_every_envelope(finding in json(KEYS)) {
        let envelopes = [
            finding.clone(),
            serde_json::json!([finding.clone()]),
            serde_json::json!({"Findings": [finding.clone()]}),
            serde_json::json!({
                "id": "e", "source": "aws.securityhub",
                "detail-type": "Security Hub Findings - Imported",
                "detail": {"findings": [finding]},
            }),
        ];
        for doc in envelopes {
            check(&serde_json::to_vec(&doc).unwrap());
            alike(&doc);
        }
    }
}
