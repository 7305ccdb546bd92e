//! Table tests of the OCSF parser: field mappings, resource identities, rejections, and the
//! same problem giving the same key from ASFF and OCSF.

use serde_json::{Value, json};

use super::finding::{compliance_status, control_path, product_of, severity_from_word, status};
use super::resource::{asff_type, resource_id};
use crate::controls::Catalog;
use crate::domain::keys::Grouping;
use crate::domain::{
    ComplianceStatus, GroupKey, RecordState, Severity, Source, StableKey, WorkflowStatus,
};

fn catalog() -> &'static Catalog {
    Catalog::embedded()
}

/// A minimal CSPM (class 2003) finding; tests change one field at a time.
fn cspm() -> Value {
    json!({
        "class_uid": 2003,
        "metadata": {"product": {"uid": "arn:aws:securityhub:us-east-2::productv2/aws/securityhub", "name": "Security Hub"}, "uid": "abc"},
        "cloud": {"account": {"uid": "123456789012"}, "region": "us-east-2"},
        "compliance": {"control": "SQS.1", "status": "Fail", "status_id": 3},
        "finding_info": {
            "uid": "arn:aws:securityhub:us-east-2:123456789012:security-control/SQS.1/finding/7d",
            "title": "Amazon SQS queues should be encrypted at rest",
            "desc": "This control checks whether Amazon SQS queues are encrypted at rest.",
            "types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
            "modified_time_dt": "2025-09-19T09:17:27.903Z",
            "created_time": 1758273447903_i64
        },
        "resources": [{
            "uid": "https://sqs.us-east-2.amazonaws.com/123456789012/q",
            "uid_alt": "arn:aws:sqs:us-east-2:123456789012:q",
            "type": "AWS::SQS::Queue",
            "region": "us-east-2",
            "tags": [{"name": "team", "value": "payments"}]
        }],
        "severity": "Medium", "severity_id": 3,
        "status": "New", "status_id": 1,
        "remediation": {"desc": "See docs.", "references": ["https://docs.aws.amazon.com/console/securityhub/SQS.1/remediation"]}
    })
}

/// `doc` with the value at a `/`-separated JSON pointer replaced (or removed when `None`).
fn with(mut doc: Value, pointer: &str, v: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let p = doc.pointer_mut(parent).expect("parent exists");
    match (p, v) {
        (Value::Object(o), Some(v)) => {
            o.insert(key.to_string(), v);
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Array(a), Some(v)) => a[key.parse::<usize>().unwrap()] = v,
        _ => panic!("cannot edit {pointer}"),
    }
    doc
}

#[test]
fn cspm_finding_maps_every_field() {
    let f = super::parse_finding(&cspm(), 0, catalog()).expect("parses");
    assert_eq!(
        f.id,
        "arn:aws:securityhub:us-east-2:123456789012:security-control/SQS.1/finding/7d"
    );
    assert_eq!(
        f.product_arn,
        "arn:aws:securityhub:us-east-2::productv2/aws/securityhub"
    );
    assert_eq!(f.product, "aws/securityhub");
    assert_eq!(f.product_name.as_deref(), Some("Security Hub"));
    assert_eq!(f.account_id, "123456789012");
    assert_eq!(f.region, "us-east-2");
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.compliance, Some(ComplianceStatus::Failed));
    assert_eq!(f.workflow, WorkflowStatus::New);
    assert_eq!(f.record_state, RecordState::Active);
    assert_eq!(f.control_id(), Some("SQS.1"));
    assert_eq!(f.updated_at.as_deref(), Some("2025-09-19T09:17:27.903Z"));
    assert_eq!(f.created_at.as_deref(), Some("2025-09-19T09:17:27.903Z"));
    assert_eq!(
        f.description,
        "This control checks whether Amazon SQS queues are encrypted at rest."
    );
    assert_eq!(
        f.remediation_url.as_deref(),
        Some("https://docs.aws.amazon.com/console/securityhub/SQS.1/remediation")
    );
    let r = f.primary_resource();
    assert_eq!(r.id, "arn:aws:sqs:us-east-2:123456789012:q");
    assert_eq!(r.kind.as_deref(), Some("AwsSqsQueue"));
    assert_eq!(r.tags.get("team").map(String::as_str), Some("payments"));
}

#[test]
fn rejections_name_the_field_and_position() {
    // (pointer to change, new value or removal, expected field, words the message must contain)
    type Case = (&'static str, Option<Value>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        ("/finding_info/uid", None, "finding_info.uid", "missing"),
        (
            "/finding_info/uid",
            Some(json!("  ")),
            "finding_info.uid",
            "empty",
        ),
        (
            "/finding_info/title",
            Some(json!(7)),
            "finding_info.title",
            "wrong type",
        ),
        (
            "/metadata/product",
            None,
            "metadata.product.uid",
            "metadata.product is absent",
        ),
        (
            "/cloud",
            Some(json!("aws")),
            "cloud.account.uid",
            "cloud must be an object",
        ),
        ("/resources", Some(json!([])), "resources", "empty array"),
        ("/resources", None, "resources", "missing"),
        (
            "/resources/0",
            Some(json!("x")),
            "resources[0]",
            "expected an object",
        ),
        ("/resources/0/uid", None, "resources[0].uid", "missing"),
        (
            "/severity_id",
            Some(json!(99)),
            "severity_id",
            "severity_id is number 99",
        ),
    ];
    for (pointer, v, field, words) in cases {
        let mut doc = with(cspm(), pointer, v);
        if pointer == "/severity_id" {
            doc = with(doc, "/severity", Some(json!("Other")));
        }
        let e = super::parse_finding(&doc, 4, catalog())
            .expect_err(&format!("{pointer} should be rejected"));
        assert_eq!(e.index, 4, "{pointer}");
        assert_eq!(e.field, field, "{pointer}: {e}");
        assert!(e.message.contains(words), "{pointer}: {e}");
    }
    let e = super::parse_finding(&json!([1]), 2, catalog()).unwrap_err();
    assert_eq!(e.field, crate::asff::WHOLE_FINDING);
    assert_eq!(e.index, 2);
}

#[test]
fn severity_table() {
    // (severity_id, severity word, expected)
    let cases = [
        (json!(1), json!("Informational"), Severity::Informational),
        (json!(2), json!(null), Severity::Low),
        (json!(4), json!("High"), Severity::High),
        (json!(5), json!("Critical"), Severity::Critical),
        (json!(6), json!("Fatal"), Severity::Critical),
        (json!(0), json!("MEDIUM"), Severity::Medium),
        (json!(99), json!("Important"), Severity::High),
        (json!(null), json!("low"), Severity::Low),
    ];
    for (id, word, want) in cases {
        let doc = with(
            with(cspm(), "/severity_id", Some(id.clone())),
            "/severity",
            Some(word.clone()),
        );
        let f = super::parse_finding(&doc, 0, catalog()).unwrap();
        assert_eq!(f.severity, want, "severity_id {id}, severity {word}");
    }
    // Only vendor_attributes left.
    let doc = with(with(cspm(), "/severity_id", None), "/severity", None);
    let doc = with(doc, "/vendor_attributes", Some(json!({"severity_id": 4})));
    assert_eq!(
        super::parse_finding(&doc, 0, catalog()).unwrap().severity,
        Severity::High
    );
    for w in ["Unknown", "Other", ""] {
        assert_eq!(severity_from_word(w), None, "{w:?}");
    }
}

#[test]
fn status_table() {
    let cases = [
        (
            json!({"status_id": 1}),
            WorkflowStatus::New,
            RecordState::Active,
        ),
        (
            json!({"status_id": 2}),
            WorkflowStatus::Notified,
            RecordState::Active,
        ),
        (
            json!({"status_id": 3, "status": "Suppressed"}),
            WorkflowStatus::Suppressed,
            RecordState::Active,
        ),
        (
            json!({"status_id": 4, "status": "Resolved"}),
            WorkflowStatus::Resolved,
            RecordState::Active,
        ),
        (
            json!({"status_id": 5}),
            WorkflowStatus::Resolved,
            RecordState::Archived,
        ),
        (
            json!({"status": "Resolved"}),
            WorkflowStatus::Resolved,
            RecordState::Active,
        ),
        (
            json!({"status": "In Progress"}),
            WorkflowStatus::Notified,
            RecordState::Active,
        ),
        (
            json!({"status_id": 99}),
            WorkflowStatus::New,
            RecordState::Active,
        ),
        (json!({}), WorkflowStatus::New, RecordState::Active),
    ];
    for (doc, wf, rs) in cases {
        assert_eq!(status(doc.as_object().unwrap()), (wf, rs), "{doc}");
    }
    let compliance = [
        (
            json!({"status_id": 1, "status": "Pass"}),
            Some(ComplianceStatus::Passed),
        ),
        (json!({"status_id": 3}), Some(ComplianceStatus::Failed)),
        (
            json!({"status": "Warning"}),
            Some(ComplianceStatus::Warning),
        ),
        (
            json!({"status": "NOT_AVAILABLE"}),
            Some(ComplianceStatus::NotAvailable),
        ),
        (json!({"status": "maybe"}), None),
    ];
    for (doc, want) in compliance {
        assert_eq!(compliance_status(doc.as_object().unwrap()), want, "{doc}");
    }
}

#[test]
fn resource_id_table() {
    // (uid, type, region, expected id)
    let cases = [
        (
            "i-0abc",
            Some("AWS::EC2::Instance"),
            Some("us-east-2"),
            "arn:aws:ec2:us-east-2:111122223333:instance/i-0abc",
        ),
        (
            "fn-a",
            Some("AWS::Lambda::Function"),
            Some("us-east-2"),
            "arn:aws:lambda:us-east-2:111122223333:function:fn-a",
        ),
        (
            "https://sqs.eu-west-1.amazonaws.com/444455556666/q1",
            Some("AWS::SQS::Queue"),
            Some("us-east-2"),
            "arn:aws:sqs:eu-west-1:444455556666:q1",
        ),
        (
            "not-a-url",
            Some("AWS::SQS::Queue"),
            Some("us-east-2"),
            "not-a-url",
        ),
        (
            "bucket-a",
            Some("AWS::S3::Bucket"),
            None,
            "arn:aws:s3:::bucket-a",
        ),
        (
            "111122223333",
            Some("AWS::::Account"),
            Some("us-east-2"),
            "AWS::::Account:111122223333",
        ),
        (
            "ASIA4U76",
            Some("AWS::IAM::AccessKey"),
            None,
            "AWS::IAM::AccessKey:ASIA4U76",
        ),
        (
            "AJKSDBVKJJ",
            Some("AWS::IAM::Policy"),
            Some("us-east-2"),
            "AJKSDBVKJJ",
        ),
        ("i-0abc", Some("AWS::EC2::Instance"), None, "i-0abc"),
        (
            "arn:aws:lambda:us-east-1:1:function:x",
            Some("AwsLambdaFunction"),
            None,
            "arn:aws:lambda:us-east-1:1:function:x",
        ),
        (
            "287ae865",
            Some("AWS::Container::Container"),
            Some("us-east-1"),
            "287ae865",
        ),
        ("x", None, Some("us-east-1"), "x"),
    ];
    for (uid, kind, region, want) in cases {
        assert_eq!(
            resource_id(uid, kind, "aws", region, "111122223333"),
            want,
            "{uid} {kind:?}"
        );
    }
    // uid_alt wins when it is an ARN; the owner account is used to build.
    let doc = with(
        cspm(),
        "/resources/0",
        Some(json!({
            "uid": "i-1", "type": "AWS::EC2::Instance", "region": "global",
            "owner": {"account": {"uid": "999988887777"}}, "cloud_partition": "aws-us-gov"
        })),
    );
    let f = super::parse_finding(&doc, 0, catalog()).unwrap();
    assert_eq!(
        f.primary_resource().id,
        "arn:aws-us-gov:ec2:us-east-2:999988887777:instance/i-1"
    );
    assert_eq!(f.primary_resource().region.as_deref(), Some("global"));
}

#[test]
fn type_and_tags_table() {
    let types = [
        ("AWS::EC2::Instance", "AwsEc2Instance"),
        ("AWS::::Account", "AwsAccount"),
        ("AWS::IAM::AccessKey", "AwsIamAccessKey"),
        ("AWS::SQS::Queue", "AwsSqsQueue"),
        ("AWS::Lambda::Function", "AwsLambdaFunction"),
        ("AwsLambdaFunction", "AwsLambdaFunction"),
        ("AWS::RDS::DBInstance", "AwsRdsDbInstance"),
        ("AWS::DynamoDB::Table", "AwsDynamoDbTable"),
        ("AWS::S3::Bucket", "AwsS3Bucket"),
        ("AWS::KMS::Key", "AwsKmsKey"),
        ("AWS::ECS::TaskDefinition", "AwsEcsTaskDefinition"),
    ];
    for (input, want) in types {
        assert_eq!(asff_type(input), want, "{input}");
    }
    let tag_cases = [
        (json!([{"name": "a", "value": "1"}]), vec![("a", "1")]),
        (
            json!([{"key": "b", "value": "2"}, {"name": "c"}, "x"]),
            vec![("b", "2")],
        ),
        (json!({"d": "4", "e": 5}), vec![("d", "4")]),
        (json!("nope"), vec![]),
    ];
    for (v, want) in tag_cases {
        let got = super::finding::tags(Some(&v));
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want, "{v}");
    }
}

#[test]
fn product_and_control_path_table() {
    let products = [
        (
            "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
            "aws/guardduty",
        ),
        (
            "arn:aws:securityhub:us-east-1::productv2/aws/securityhub-risk",
            "aws/securityhub-risk",
        ),
        (
            "arn:aws:securityhub:us-east-1::product/aws/inspector",
            "aws/inspector",
        ),
    ];
    for (arn, want) in products {
        assert_eq!(product_of(arn), want, "{arn}");
    }
    let paths = [
        (
            "arn:aws:securityhub:us-east-2:1:security-control/SQS.1/finding/7d",
            Some("security-control/SQS.1"),
        ),
        (
            "arn:aws:securityhub:us-east-1:1:subscription/cis-aws-foundations-benchmark/v/1.2.0/2.5/finding/aa",
            Some("subscription/cis-aws-foundations-benchmark/v/1.2.0/2.5"),
        ),
        ("arn:aws:inspector2:us-east-2:1:finding/71", None),
        ("no-finding-part", None),
    ];
    for (uid, want) in paths {
        assert_eq!(control_path(uid), want, "{uid}");
    }
}

/// The same problem reported by ASFF and by OCSF gets the same stable key and group key.
#[test]
fn same_problem_same_key_across_formats() {
    let grouping = Grouping::default();
    // (name, ASFF finding, OCSF finding)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "consolidated control, ARN in uid_alt",
            json!({
                "Id": "arn:aws:securityhub:us-east-2:123456789012:security-control/SQS.1/finding/7d",
                "ProductArn": "arn:aws:securityhub:us-east-2::product/aws/securityhub",
                "GeneratorId": "security-control/SQS.1", "AwsAccountId": "123456789012",
                "Region": "us-east-2", "Title": "t", "Severity": {"Label": "MEDIUM"},
                "Compliance": {"Status": "FAILED", "SecurityControlId": "SQS.1"},
                "Resources": [{"Id": "arn:aws:sqs:us-east-2:123456789012:q", "Type": "AwsSqsQueue"}]
            }),
            cspm(),
        ),
        (
            "per-standard CIS id (no compliance.control), account resource",
            json!({
                "Id": "x", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                "GeneratorId": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.5",
                "AwsAccountId": "123456789012", "Region": "us-east-1", "Title": "t",
                "Severity": {"Label": "CRITICAL"},
                "Resources": [{"Id": "AWS::::Account:123456789012", "Type": "AwsAccount"}]
            }),
            json!({
                "class_uid": 2003,
                "metadata": {"product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"}},
                "cloud": {"account": {"uid": "123456789012"}, "region": "us-east-1"},
                "finding_info": {"title": "t", "uid": "arn:aws:securityhub:us-east-1:123456789012:subscription/cis-aws-foundations-benchmark/v/1.2.0/2.5/finding/aa"},
                "resources": [{"uid": "123456789012", "type": "AWS::::Account"}],
                "severity_id": 5
            }),
        ),
        (
            "GuardDuty finding type, EC2 instance id",
            json!({
                "Id": "g", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
                "AwsAccountId": "123456789012", "Region": "us-east-1", "Title": "t",
                "Types": ["TTPs/Execution/Execution:Runtime-NewBinaryExecuted"],
                "Severity": {"Label": "MEDIUM"},
                "Resources": [{"Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-0123", "Type": "AwsEc2Instance"}]
            }),
            json!({
                "class_uid": 2004,
                "metadata": {"product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
                "cloud": {"account": {"uid": "123456789012"}, "region": "us-east-1"},
                "finding_info": {"title": "t", "uid": "g2", "types": ["Threats", "Execution:Runtime/NewBinaryExecuted"]},
                "resources": [{"uid": "i-0123", "type": "AWS::EC2::Instance", "region": "us-east-1"}],
                "severity_id": 3
            }),
        ),
        (
            "Inspector CVE, Lambda function",
            json!({
                "Id": "i", "ProductArn": "arn:aws:securityhub:us-east-2::product/aws/inspector",
                "AwsAccountId": "123456789012", "Region": "us-east-2", "Title": "CVE-2025-47906 - go",
                "Severity": {"Label": "MEDIUM"}, "Vulnerabilities": [{"Id": "CVE-2025-47906"}],
                "Resources": [{"Id": "arn:aws:lambda:us-east-2:123456789012:function:fn", "Type": "AwsLambdaFunction"}]
            }),
            json!({
                "class_uid": 2002,
                "metadata": {"product": {"uid": "arn:aws:securityhub:us-east-2::productv2/aws/inspector"}},
                "cloud": {"account": {"uid": "123456789012"}, "region": "us-east-2"},
                "finding_info": {"title": "CVE-2025-47906 - go", "uid": "arn:aws:inspector2:us-east-2:123456789012:finding/2"},
                "vulnerabilities": [{"cve": {"uid": "CVE-2025-47906"}, "severity": "Important"}],
                "resources": [{"uid": "fn", "type": "AWS::Lambda::Function", "region": "us-east-2"}],
                "severity_id": 3
            }),
        ),
    ];
    for (name, asff, ocsf) in cases {
        let a = crate::asff::parse_finding(&asff, 0, catalog())
            .unwrap_or_else(|e| panic!("{name}: ASFF: {e}"));
        let o = super::parse_finding(&ocsf, 0, catalog())
            .unwrap_or_else(|e| panic!("{name}: OCSF: {e}"));
        assert_eq!(
            StableKey::for_finding(&o),
            StableKey::for_finding(&a),
            "{name}"
        );
        assert_eq!(
            GroupKey::for_finding(&o, &grouping),
            GroupKey::for_finding(&a, &grouping),
            "{name}"
        );
        assert_eq!(
            std::mem::discriminant(&o.source),
            std::mem::discriminant(&a.source),
            "{name}: {:?} vs {:?}",
            o.source,
            a.source
        );
    }
    // And a different resource is a different problem.
    let other = with(
        cspm(),
        "/resources/0/uid_alt",
        Some(json!("arn:aws:sqs:us-east-2:123456789012:other")),
    );
    let a = super::parse_finding(&cspm(), 0, catalog()).unwrap();
    let b = super::parse_finding(&other, 0, catalog()).unwrap();
    assert_ne!(StableKey::for_finding(&a), StableKey::for_finding(&b));
    assert!(matches!(a.source, Source::Control(_)));
}

#[test]
fn documents_of_every_shape_dispatch_by_format() {
    let event = json!({
        "version": "0", "id": "ev-1", "detail-type": "Findings Imported V2",
        "source": "aws.securityhub", "detail": {"findings": [cspm()]}
    });
    let i = crate::asff::parse_value(&event, catalog()).expect("V2 event");
    assert_eq!(i.event_id.as_deref(), Some("ev-1"));
    assert_eq!(i.findings().count(), 1);
    let single = crate::asff::parse_value(&cspm(), catalog()).expect("bare OCSF finding");
    assert_eq!(
        single.findings().next().unwrap().control_id(),
        Some("SQS.1")
    );
    let page = json!({"Findings": [cspm(), with(cspm(), "/finding_info/uid", None)]});
    let i = crate::asff::parse_value(&page, catalog()).expect("GetFindingsV2 page");
    assert_eq!(i.findings().count(), 1);
    let e = i.rejections().next().unwrap();
    assert_eq!((e.index, e.field.as_str()), (1, "finding_info.uid"));
    let other = json!({"detail-type": "Findings Imported V3", "detail": {"findings": []}});
    let e = crate::asff::parse_value(&other, catalog()).unwrap_err();
    assert!(e.message.contains("Findings Imported V2"), "{e}");
}
