//! One finding: rejections with their field paths, the severity chain, lenient fields.

use serde_json::{Value, json};

use super::*;

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
fn compliance_status_reasons_table() {
    let cases: [(Value, &[&str]); 6] = [
        (
            json!([{"ReasonCode": "CONFIG_ACCESS_DENIED", "Description": "Unable to describe the supporting AWS Config Rule"}]),
            &["CONFIG_ACCESS_DENIED"],
        ),
        (
            json!([{"ReasonCode": " config_evaluations_empty "}, {"ReasonCode": "CONFIG_RETURNS_NOT_APPLICABLE"}]),
            &["CONFIG_EVALUATIONS_EMPTY", "CONFIG_RETURNS_NOT_APPLICABLE"],
        ),
        (
            json!([{"Description": "no code"}, {"ReasonCode": ""}, 7]),
            &[],
        ),
        (json!([]), &[]),
        (json!("CONFIG_ACCESS_DENIED"), &[]),
        (Value::Null, &[]),
    ];
    for (reasons, want) in cases {
        let v = with(base(), &["Compliance", "StatusReasons"], reasons.clone());
        assert_eq!(ok(&v).compliance_reasons, want, "{reasons}");
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
