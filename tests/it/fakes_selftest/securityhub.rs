//! Fake Security Hub driven by the real aws-sdk-securityhub client.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_sdk_securityhub::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsError;
use aws_sdk_securityhub::operation::get_findings::GetFindingsError;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, DateFilter,
    DateRange, DateRangeUnit, NoteUpdate, Resource, StringFilter, StringFilterComparison,
    WorkflowStatus, WorkflowUpdate,
};
use serde_json::{Value, json};

use crate::fakes::awsmodel;
use crate::fakes::securityhub::FakeSecurityHub;
use crate::fakes::{require_conformance, run_with_big_stack};

fn sf(value: &str, cmp: StringFilterComparison) -> StringFilter {
    StringFilter::builder().value(value).comparison(cmp).build()
}

fn eq(value: &str) -> StringFilter {
    sf(value, StringFilterComparison::Equals)
}

/// All real findings from `conformance/asff/findings` that satisfy the model (the others are
/// realistic but AWS would never return them from GetFindings).
fn valid_conformance_findings(dir: &std::path::Path) -> Vec<Value> {
    let model = awsmodel::model().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("asff/findings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let findings = match &v {
            Value::Object(o) if o.contains_key("detail") => v["detail"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            Value::Object(o) if o.contains_key("Findings") => {
                v["Findings"].as_array().cloned().unwrap_or_default()
            }
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for finding in findings {
            if model
                .validate_shape("AwsSecurityFinding", &finding)
                .is_empty()
            {
                out.push(finding);
            }
        }
    }
    out
}

fn synthetic(id: &str, account: &str, severity: &str, compliance: &str, updated: &str) -> Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "GeneratorId": format!("security-control/{}", id.split('/').next_back().unwrap_or("S3.1")),
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2024-01-01T00:00:00.000Z",
        "UpdatedAt": updated,
        "Severity": {"Label": severity, "Original": severity},
        "Title": format!("finding {id}"),
        "Description": "synthetic test finding",
        "Compliance": {"Status": compliance, "SecurityControlId": "S3.1"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": format!("arn:aws:s3:::bucket-{account}"), "Region": "us-east-1"}],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    })
}

fn ident(f: &Value) -> AwsSecurityFindingIdentifier {
    AwsSecurityFindingIdentifier::builder()
        .id(f["Id"].as_str().unwrap())
        .product_arn(f["ProductArn"].as_str().unwrap())
        .build()
}

#[test]
fn model_validator_agrees_with_the_shared_validation_report() {
    let Some(dir) = require_conformance("model_validator_agrees_with_the_shared_validation_report")
    else {
        return;
    };
    let model = awsmodel::model().unwrap();
    let mut pass = 0;
    let mut failing = BTreeSet::new();
    for e in std::fs::read_dir(dir.join("asff/findings")).unwrap() {
        let p = e.unwrap().path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let findings = if v.get("detail").is_some() {
            v["detail"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        } else {
            vec![v]
        };
        if findings
            .iter()
            .all(|f| model.validate_shape("AwsSecurityFinding", f).is_empty())
        {
            pass += 1;
        } else {
            failing.insert(p.file_stem().unwrap().to_string_lossy().to_string());
        }
    }
    // conformance/asff/MANIFEST.md: "151/165 files pass strict".
    assert_eq!(pass, 151, "files failing here: {failing:#?}");
}

#[test]
fn get_findings_filters_and_paging_with_the_sdk() {
    run_with_big_stack(get_findings_filters_and_paging_with_the_sdk_body);
}

async fn get_findings_filters_and_paging_with_the_sdk_body() {
    let Some(dir) = require_conformance("get_findings_filters_and_paging_with_the_sdk") else {
        return;
    };
    let fake = FakeSecurityHub::start().await;
    let real = valid_conformance_findings(&dir);
    assert!(real.len() > 100, "{}", real.len());
    fake.seed(Value::Array(real.clone()));
    let stored = fake.findings();
    let client = fake.client();

    // Page through everything with MaxResults 7 and the SDK paginator: same order as stored.
    let all: Vec<AwsSecurityFinding> = client
        .get_findings()
        .max_results(7)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    let ids: Vec<String> = all.iter().map(|f| f.id().unwrap().to_string()).collect();
    let expected: Vec<String> = stored
        .iter()
        .map(|f| f["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(fake.count("GetFindings"), stored.len().div_ceil(7));

    // A combination of filters, checked against a direct computation over the stored findings.
    let filters = AwsSecurityFindingFilters::builder()
        .record_state(eq("ACTIVE"))
        .workflow_status(eq("NEW"))
        .severity_label(eq("HIGH"))
        .severity_label(eq("CRITICAL"))
        .compliance_status(eq("FAILED"))
        .aws_account_id(eq("111111111111"))
        .generator_id(sf(
            "aws-foundational-security-best-practices",
            StringFilterComparison::Prefix,
        ))
        .product_arn(sf(
            "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            StringFilterComparison::NotEquals,
        ))
        .build();
    let got: Vec<String> = client
        .get_findings()
        .filters(filters)
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .map(|f| f.id().unwrap().to_string())
        .collect();
    let want: Vec<String> = stored
        .iter()
        .filter(|f| {
            f["RecordState"] == "ACTIVE"
                && f["Workflow"]["Status"] == "NEW"
                && (f["Severity"]["Label"] == "HIGH" || f["Severity"]["Label"] == "CRITICAL")
                && f["Compliance"]["Status"] == "FAILED"
                && f["AwsAccountId"] == "111111111111"
                && f["GeneratorId"]
                    .as_str()
                    .unwrap()
                    .starts_with("aws-foundational-security-best-practices")
        })
        .map(|f| f["Id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    // Id EQUALS, and UpdatedAt Start/End.
    let one = &stored[5];
    let r = client
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .id(eq(one["Id"].as_str().unwrap()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.findings().len(), 1);
    let r = client
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .updated_at(
                    DateFilter::builder()
                        .start("2021-01-01T00:00:00Z")
                        .end("2021-12-31T23:59:59Z")
                        .build(),
                )
                .build(),
        )
        .max_results(100)
        .send()
        .await
        .unwrap();
    let want = stored
        .iter()
        .filter(|f| {
            let d = chrono::DateTime::parse_from_rfc3339(f["UpdatedAt"].as_str().unwrap()).unwrap();
            d.format("%Y").to_string() == "2021"
        })
        .count();
    assert_eq!(r.findings().len(), want.min(100));
    fake.assert_conformant();
}

#[test]
fn date_range_sorting_and_invalid_filter_combinations() {
    run_with_big_stack(date_range_sorting_and_invalid_filter_combinations_body);
}

async fn date_range_sorting_and_invalid_filter_combinations_body() {
    let Some(_) = require_conformance("date_range_sorting_and_invalid_filter_combinations") else {
        return;
    };
    let fake = FakeSecurityHub::start().await;
    let now = chrono::Utc::now();
    let recent =
        (now - chrono::TimeDelta::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let old =
        (now - chrono::TimeDelta::days(40)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    fake.seed(json!([
        synthetic("f/S3.1", "111111111111", "HIGH", "FAILED", &recent),
        synthetic("f/S3.2", "222222222222", "LOW", "PASSED", &old),
        synthetic("f/S3.3", "111111111111", "CRITICAL", "FAILED", &old),
    ]));
    let client = fake.client();
    let within = |days| {
        AwsSecurityFindingFilters::builder()
            .updated_at(
                DateFilter::builder()
                    .date_range(
                        DateRange::builder()
                            .value(days)
                            .unit(DateRangeUnit::Days)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let r = client
        .get_findings()
        .filters(within(7))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.findings()
            .iter()
            .map(|f| f.id().unwrap())
            .collect::<Vec<_>>(),
        ["f/S3.1"]
    );
    let r = client
        .get_findings()
        .filters(within(60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.findings().len(), 3);

    // Sorting by Title descending.
    let r = client
        .get_findings()
        .sort_criteria(
            aws_sdk_securityhub::types::SortCriterion::builder()
                .field("Title")
                .sort_order(aws_sdk_securityhub::types::SortOrder::Descending)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.findings()
            .iter()
            .map(|f| f.id().unwrap())
            .collect::<Vec<_>>(),
        ["f/S3.3", "f/S3.2", "f/S3.1"]
    );

    // EQUALS together with NOT_EQUALS on one field is rejected, as AWS documents.
    let err = client
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .aws_account_id(eq("111111111111"))
                .aws_account_id(sf("222222222222", StringFilterComparison::NotEquals))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(GetFindingsError::InvalidInputException(_))
    ));

    // A filter the fake does not implement is reported, not silently ignored.
    client
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .malware_name(eq("x"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fake.unsupported().len(), 1, "{:?}", fake.unsupported());
}

#[test]
fn batch_update_processed_unprocessed_and_events() {
    run_with_big_stack(batch_update_processed_unprocessed_and_events_body);
}

async fn batch_update_processed_unprocessed_and_events_body() {
    let Some(dir) = require_conformance("batch_update_processed_unprocessed_and_events") else {
        return;
    };
    let fake = FakeSecurityHub::start().await;
    let a = synthetic(
        "f/S3.1",
        "111111111111",
        "HIGH",
        "FAILED",
        "2024-02-01T00:00:00.000Z",
    );
    let b = synthetic(
        "f/S3.2",
        "111111111111",
        "HIGH",
        "FAILED",
        "2024-02-02T00:00:00.000Z",
    );
    fake.seed(json!([a.clone(), b.clone()]));
    assert_eq!(fake.drain_events().len(), 2, "imports emit Imported events");
    let client = fake.client();
    let missing = json!({"Id": "nope", "ProductArn": a["ProductArn"]});

    let out = client
        .batch_update_findings()
        .finding_identifiers(ident(&a))
        .finding_identifiers(ident(&b))
        .finding_identifiers(ident(&missing))
        .note(
            NoteUpdate::builder()
                .text("Tracked in https://github.com/acme/payments/issues/1")
                .updated_by("lever")
                .build(),
        )
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Notified)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.processed_findings().len(), 2);
    let un = out.unprocessed_findings();
    assert_eq!(un.len(), 1);
    assert_eq!(un[0].error_code(), Some("FindingNotFound"));
    assert_eq!(un[0].error_message(), Some("Finding Not Found"));

    let stored = fake.finding("f/S3.1").unwrap();
    assert_eq!(stored["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(stored["Note"]["UpdatedBy"], "lever");
    assert!(stored["Note"]["UpdatedAt"].is_string());
    // BatchUpdateFindings does not change UpdatedAt (documented in the model).
    assert_eq!(stored["UpdatedAt"], a["UpdatedAt"]);

    // Each updated finding is echoed as an Imported event, shaped like the real envelope.
    let events = fake.drain_events();
    assert_eq!(events.len(), 2);
    let real: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("asff/findings/asr-layer-test-CIS-1.3.json")).unwrap(),
    )
    .unwrap();
    for key in real.as_object().unwrap().keys() {
        assert!(events[0].get(key).is_some(), "event lacks `{key}`");
    }
    assert_eq!(events[0]["detail-type"], "Security Hub Findings - Imported");
    assert_eq!(events[0]["source"], "aws.securityhub");
    assert_eq!(
        events[0]["detail"]["findings"][0]["Workflow"]["Status"],
        "NOTIFIED"
    );
    assert_eq!(
        events[0]["resources"][0],
        format!("{}/{}", a["ProductArn"].as_str().unwrap(), "f/S3.1")
    );
    let model = awsmodel::model().unwrap();
    assert!(
        model
            .validate_shape("AwsSecurityFinding", &events[0]["detail"]["findings"][0])
            .is_empty()
    );

    // Forced unprocessed, and duplicated identifiers.
    fake.force_unprocessed("f/S3.2", "ConcurrentUpdateError", 1);
    let out = client
        .batch_update_findings()
        .finding_identifiers(ident(&a))
        .finding_identifiers(ident(&a))
        .finding_identifiers(ident(&b))
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Suppressed)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let codes: Vec<&str> = out
        .unprocessed_findings()
        .iter()
        .filter_map(|u| u.error_code())
        .collect();
    assert_eq!(
        codes,
        [
            "DuplicatedFindingIdentifier",
            "DuplicatedFindingIdentifier",
            "ConcurrentUpdateError"
        ]
    );
    assert_eq!(
        fake.finding("f/S3.2").unwrap()["Workflow"]["Status"],
        "NOTIFIED"
    );
    fake.assert_conformant();
}

#[test]
fn throttling_and_unavailability_surface_as_typed_errors() {
    run_with_big_stack(throttling_and_unavailability_surface_as_typed_errors_body);
}

async fn throttling_and_unavailability_surface_as_typed_errors_body() {
    let fake = FakeSecurityHub::start().await;
    fake.seed(synthetic(
        "f/S3.1",
        "111111111111",
        "HIGH",
        "FAILED",
        "2024-02-01T00:00:00.000Z",
    ));
    let client = fake.client();

    fake.throttle_next("GetFindings", 1);
    let err = client.get_findings().send().await.unwrap_err();
    match err.as_service_error() {
        Some(GetFindingsError::LimitExceededException(e)) => {
            assert_eq!(e.message(), Some("Rate exceeded"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 429);

    fake.throttle_next("BatchUpdateFindings", 1);
    let err = client
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id("f/S3.1")
                .product_arn("arn:aws:securityhub:us-east-1::product/aws/securityhub")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(BatchUpdateFindingsError::LimitExceededException(_))
    ));

    fake.unavailable_next("*", 1);
    let err = client.get_findings().send().await.unwrap_err();
    match &err {
        SdkError::ServiceError(se) => {
            assert_eq!(se.raw().status().as_u16(), 503);
            assert_eq!(se.err().code(), Some("ServiceUnavailableException"));
        }
        other => panic!("{other:?}"),
    }

    // With the SDK's standard retries (tiny backoff), throttling is retried transparently.
    let retrying = aws_sdk_securityhub::Client::from_conf(
        fake.config_builder()
            .retry_config(
                aws_sdk_securityhub::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
                    .with_max_backoff(std::time::Duration::from_millis(5)),
            )
            .build(),
    );
    let before = fake.count("GetFindings");
    fake.throttle_next("GetFindings", 2);
    let r = retrying
        .get_findings()
        .send()
        .await
        .expect("third attempt succeeds");
    assert_eq!(r.findings().len(), 1);
    assert_eq!(fake.count("GetFindings") - before, 3);
    fake.assert_conformant();
}

#[test]
fn invalid_requests_are_rejected_and_recorded() {
    run_with_big_stack(invalid_requests_are_rejected_and_recorded_body);
}

async fn invalid_requests_are_rejected_and_recorded_body() {
    let Some(_) = require_conformance("invalid_requests_are_rejected_and_recorded") else {
        return;
    };
    let fake = FakeSecurityHub::start().await;
    let f = synthetic(
        "f/S3.1",
        "111111111111",
        "HIGH",
        "FAILED",
        "2024-02-01T00:00:00.000Z",
    );
    fake.seed(f.clone());
    let client = fake.client();

    // Note.Text: the model has only the NonEmptyString pattern; AWS documents max 512.
    let err = client
        .batch_update_findings()
        .finding_identifiers(ident(&f))
        .note(
            NoteUpdate::builder()
                .text("x".repeat(513))
                .updated_by("lever")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    match err.as_service_error() {
        Some(BatchUpdateFindingsError::InvalidInputException(e)) => {
            assert!(e.message().unwrap().contains("Note.Text"), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    // 101 identifiers: the model has no list max; AWS documents 100.
    let mut req = client.batch_update_findings();
    for i in 0..101 {
        req = req.finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(format!("f/{i}"))
                .product_arn("arn:aws:securityhub:us-east-1::product/aws/securityhub")
                .build(),
        );
    }
    let err = req
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Resolved)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(BatchUpdateFindingsError::InvalidInputException(_))
    ));
    // Model constraints the SDK does not check client-side: MaxResults range, required
    // Note.UpdatedBy, enum values.
    let err = client
        .get_findings()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(GetFindingsError::InvalidInputException(_))
    ));
    let err = client
        .batch_update_findings()
        .finding_identifiers(ident(&f))
        .note(NoteUpdate::builder().text("no author").build())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(BatchUpdateFindingsError::InvalidInputException(_))
    ));
    let err = client
        .batch_update_findings()
        .finding_identifiers(ident(&f))
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::from("DONE"))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.as_service_error(),
        Some(BatchUpdateFindingsError::InvalidInputException(_))
    ));

    let v = fake.violations();
    let texts: Vec<String> = v.iter().map(|x| x.problem.clone()).collect();
    assert_eq!(v.len(), 5, "{texts:#?}");
    assert!(
        texts[0].contains("Note.Text") && texts[0].contains("documented limit"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("more than 100 items") && texts[1].contains("documented limit"),
        "{}",
        texts[1]
    );
    assert!(
        texts[2].contains("MaxResults should be <= 100"),
        "{}",
        texts[2]
    );
    assert!(
        texts[3].contains("required property 'UpdatedBy'"),
        "{}",
        texts[3]
    );
    assert!(texts[4].contains("Workflow.Status"), "{}", texts[4]);
    // Nothing was changed by the rejected calls.
    assert_eq!(fake.finding("f/S3.1").unwrap()["Workflow"]["Status"], "NEW");

    // An unsigned request is refused and recorded.
    let r = reqwest::Client::new()
        .post(format!("{}/findings", fake.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(fake.violations().len(), 6);
    assert!(fake.response_violations().is_empty());
}

#[test]
fn batch_import_through_the_sdk_accepts_valid_and_reports_invalid_findings() {
    run_with_big_stack(
        batch_import_through_the_sdk_accepts_valid_and_reports_invalid_findings_body,
    );
}

async fn batch_import_through_the_sdk_accepts_valid_and_reports_invalid_findings_body() {
    let Some(_) = require_conformance("batch_import_through_the_sdk") else {
        return;
    };
    let fake = FakeSecurityHub::start().await;
    let client = fake.client();
    let base = || {
        AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .product_arn("arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default")
            .generator_id("lever-test")
            .aws_account_id("111111111111")
            .created_at("2024-03-01T00:00:00Z")
            .updated_at("2024-03-01T00:00:00Z")
            .title("imported")
            .description("imported through the SDK")
    };
    let good = base()
        .id("imp-1")
        .resources(
            Resource::builder()
                .r#type("AwsS3Bucket")
                .id("arn:aws:s3:::b")
                .build(),
        )
        .build();
    let mut too_many = base().id("imp-2");
    for i in 0..33 {
        too_many = too_many.resources(
            Resource::builder()
                .r#type("Other")
                .id(format!("r{i}"))
                .build(),
        );
    }
    let out = client
        .batch_import_findings()
        .findings(good)
        .findings(too_many.build())
        .send()
        .await
        .unwrap();
    assert_eq!(out.success_count(), Some(1));
    assert_eq!(out.failed_count(), Some(1));
    assert_eq!(out.failed_findings()[0].id(), Some("imp-2"));
    assert_eq!(out.failed_findings()[0].error_code(), Some("InvalidInput"));
    let stored = fake.finding("imp-1").unwrap();
    assert_eq!(stored["Workflow"]["Status"], "NEW");
    assert_eq!(stored["RecordState"], "ACTIVE");
    let got = client.get_findings().send().await.unwrap();
    assert_eq!(got.findings().len(), 1);
    fake.assert_conformant();
}

#[test]
fn sdk_built_from_aws_config_reaches_the_fake() {
    run_with_big_stack(sdk_built_from_aws_config_reaches_the_fake_body);
}

/// The way an application usually builds its client: `aws_config` with an endpoint override
/// (the programmatic twin of `AWS_ENDPOINT_URL_SECURITYHUB`).
async fn sdk_built_from_aws_config_reaches_the_fake_body() {
    let fake = FakeSecurityHub::start().await;
    fake.seed(synthetic(
        "f/S3.1",
        "111111111111",
        "HIGH",
        "FAILED",
        "2024-02-01T00:00:00.000Z",
    ));
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_securityhub::config::Credentials::new(
            "AKIAFAKE", "secret", None, None, "test",
        ))
        .endpoint_url(fake.url())
        .load()
        .await;
    let client = aws_sdk_securityhub::Client::new(&sdk_config);
    let r = client.get_findings().send().await.unwrap();
    assert_eq!(r.findings().len(), 1);
    assert!(fake.requests()[0].signed);
    fake.assert_conformant();
}
