//! OCSF intake against the 15 real Security Hub (v2) findings of `../shared/conformance/ocsf`
//! (CSPM controls, Inspector, GuardDuty, one exposure example; see its MANIFEST.md).
//!
//! That data is under licences that do not allow copying it into this repository (Elastic
//! License 2.0 among them), so unlike the ASFF corpus there is no fallback copy in
//! `tests/fixtures/conformance`: this test reads `../shared/conformance/ocsf` beside the
//! worktree only. When it is absent the test prints a loud `SKIPPED` line and passes, unless
//! `LEVER_REQUIRE_CONFORMANCE=1` (CI), which makes absence a failure.
//!
//! Every file is listed below with its outcome: the stable key it must get, or the field it is
//! rejected for. A file added to the folder and missing from the table fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};

use lever::asff::{self, Shape};
use lever::controls::Catalog;
use lever::domain::{ComplianceStatus, Severity, StableKey, WorkflowStatus};
use lever::ocsf::DETAIL_TYPE_IMPORTED_V2;

/// What one file must give.
enum Outcome {
    /// Parsed: (stable key, severity, workflow, compliance).
    Parsed(
        &'static str,
        Severity,
        WorkflowStatus,
        Option<ComplianceStatus>,
    ),
    /// Rejected for this field.
    #[allow(dead_code)]
    Rejected(&'static str),
}

use ComplianceStatus::{Failed, Passed};
use Outcome::Parsed;
use Severity::{Critical, High, Informational, Low, Medium};
use WorkflowStatus::{New, Resolved, Suppressed};

/// Every file and its outcome. No real sample is rejected: each carries `finding_info.uid`,
/// `metadata.product.uid`, `cloud.account.uid`, a title, a severity and a resource `uid`.
const EXPECTED: &[(&str, Outcome)] = &[
    (
        "001-cruxstack-guardduty-runtime-newbinaryexecuted-create.json",
        Parsed(
            "guardduty|Execution:Runtime-NewBinaryExecuted|123456789012|us-east-1|arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
            Medium,
            New,
            None,
        ),
    ),
    (
        "002-cruxstack-cspm-cis120-config1-update.json",
        Parsed(
            "control|Config.1|123456789012|us-east-1|AWS::::Account:123456789012",
            Critical,
            New,
            Some(Failed),
        ),
    ),
    (
        "003-cruxstack-guardduty-runtime-containermountshostdirectory-close.json",
        // The container is the first resource; its id is not an ARN and none can be built. The
        // account is `cloud.account.uid` (the ARNs inside carry another, masked by the publisher).
        Parsed(
            "guardduty|PrivilegeEscalation:Runtime-ContainerMountsHostDirectory|123456789012|us-east-1|287ae865fc4257511514453a78a03743c5c63a40ab2a2a2f81579745b1febf41",
            Medium,
            New,
            None,
        ),
    ),
    (
        "004-elastic-cspm-sqs3-create-pass.json",
        Parsed(
            "control|SQS.3|123456789012|us-east-2|arn:aws:sqs:us-east-2:123456789012:securityhubfinding",
            Informational,
            Resolved,
            Some(Passed),
        ),
    ),
    (
        "005-elastic-cspm-sqs1-create-fail.json",
        Parsed(
            "control|SQS.1|123456789012|us-east-2|arn:aws:sqs:us-east-2:123456789012:securityhubfinding",
            Medium,
            New,
            Some(Failed),
        ),
    ),
    (
        "006-elastic-cspm-iam1-cis-fsbp-create-pass.json",
        Parsed(
            "control|IAM.1|123456789012|us-east-2|arn:aws:iam::123456789012:policy/service-role/Amazon_EventBridge_Invoke_Sqs_1412345678",
            Informational,
            Resolved,
            Some(Passed),
        ),
    ),
    (
        "007-elastic-cspm-kms1-create-pass.json",
        Parsed(
            "control|KMS.1|123456789012|us-east-2|arn:aws:iam::123456789012:policy/service-role/Amazon_EventBridge_Invoke_Sqs_1451083178",
            Informational,
            Resolved,
            Some(Passed),
        ),
    ),
    (
        "008-elastic-inspector-ec2-cve-2023-44487-update.json",
        Parsed(
            "inspector|CVE-2023-44487|123456789012|us-east-2|arn:aws:ec2:us-east-2:123456789012:instance/i-0abcdef012345678b",
            High,
            New,
            None,
        ),
    ),
    (
        "009-elastic-inspector-ec2-cve-2025-8194-update.json",
        Parsed(
            "inspector|CVE-2025-8194|123456789012|us-east-2|arn:aws:ec2:us-east-2:123456789012:instance/i-abcd1235cdef1234",
            High,
            New,
            None,
        ),
    ),
    (
        "010-elastic-inspector-ec2-cve-2021-47412-update.json",
        Parsed(
            "inspector|CVE-2021-47412|123456789012|us-east-2|arn:aws:ec2:us-east-2:123456789012:instance/i-abcd1235cdef1234",
            Medium,
            New,
            None,
        ),
    ),
    (
        "011-elastic-cspm-ssm1-update-fail.json",
        Parsed(
            "control|SSM.1|123456789012|us-east-2|arn:aws:ec2:us-east-2:123456789012:instance/i-abcd1235cdef1234",
            Medium,
            New,
            Some(Failed),
        ),
    ),
    (
        "012-elastic-cspm-redshift3-update-pass.json",
        Parsed(
            "control|Redshift.3|123456789012|us-east-2|AWS::::Account:123456789012",
            Informational,
            Resolved,
            Some(Passed),
        ),
    ),
    (
        "013-elastic-inspector-lambda-cve-2025-47906-create.json",
        Parsed(
            "inspector|CVE-2025-47906|123456789012|us-east-2|arn:aws:lambda:us-east-2:123456789012:function:cloudtrail-test-ab-LambdaFunction-jVHJUsdbdkj6",
            Medium,
            New,
            None,
        ),
    ),
    (
        "014-sumologic-event-findings-imported-v2-guardduty-cloudtrail-disabled.json",
        Parsed(
            "guardduty|Stealth:IAMUser-CloudTrailLoggingDisabled|869728294964|us-east-1|AWS::IAM::AccessKey:ASIA4U76YS3TEOA3O",
            Low,
            Suppressed,
            None,
        ),
    ),
    (
        "015-awsdocs-exposure-finding-lambda-sample.json",
        // Exposure findings are neither controls, GuardDuty nor Inspector: keyed by product and
        // title, like any other product's finding.
        Parsed(
            "product:aws/securityhub-risk|Publicly%20invocable%20Lambda%20function%20executed%20outside%20of%20VPC%20has%20vulnerability%20with%20known%20exploit%20that%20can%20be%20exploited%20from%20remote%20network|123456789012|us-east-1|arn:aws:lambda:us-east-1:123456789012:application-function",
            Critical,
            New,
            None,
        ),
    ),
];

pub(crate) fn ocsf_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/ocsf/findings");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("LEVER_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!(
            "LEVER_REQUIRE_CONFORMANCE=1 but {} is not present",
            dir.display()
        );
    }
    // Written to the stderr handle, not with eprintln!: libtest captures the macros' output of
    // passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: OCSF conformance data not present ({}); it may not be copied into the \
         repository, so there is no fallback",
        dir.display()
    );
    None
}

#[test]
fn ocsf_conformance_every_file_parses_or_is_rejected_with_a_reason() {
    let Some(dir) = ocsf_dir() else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        files, listed,
        "every file of the folder is listed, in order"
    );

    let mut mismatches = Vec::new();
    for (name, outcome) in EXPECTED {
        let bytes = std::fs::read(dir.join(name)).expect("readable");
        let intake = asff::parse_document(&bytes, Catalog::embedded())
            .unwrap_or_else(|e| panic!("{name}: document error: {e}"));
        assert_eq!(intake.entries.len(), 1, "{name}: one finding per file");
        if intake.shape == Shape::EventBridge {
            assert_eq!(
                intake.detail_type.as_deref(),
                Some(DETAIL_TYPE_IMPORTED_V2),
                "{name}"
            );
            assert!(intake.event_id.is_some(), "{name}: event id kept");
        }
        match (&intake.entries[0], outcome) {
            (Ok(f), Parsed(key, sev, wf, compliance)) => {
                let got = StableKey::for_finding(f).0;
                let key_ok = got == *key;
                if !key_ok || f.severity != *sev || f.workflow != *wf || f.compliance != *compliance
                {
                    mismatches.push(format!(
                        "{name}: got ({got}, {:?}, {:?}, {:?}), want ({key}, {sev:?}, {wf:?}, {compliance:?})",
                        f.severity, f.workflow, f.compliance
                    ));
                }
                assert!(!f.title.is_empty() && !f.product_arn.is_empty(), "{name}");
                let _ = writeln!(std::io::stderr(), "{name}: parsed: {got}");
            }
            (Err(e), Outcome::Rejected(field)) => {
                if e.field != *field || e.message.is_empty() {
                    mismatches.push(format!("{name}: rejected for {e}, want field {field}"));
                }
                let _ = writeln!(std::io::stderr(), "{name}: rejected: {e}");
            }
            (Ok(f), Outcome::Rejected(field)) => mismatches.push(format!(
                "{name}: parsed ({}), want a rejection for {field}",
                StableKey::for_finding(f)
            )),
            (Err(e), Parsed(..)) => mismatches.push(format!("{name}: rejected: {e}")),
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Inspector's details reach the issue: the CVE, packages and a CVSS score.
#[test]
fn ocsf_conformance_inspector_vulnerabilities_are_kept() {
    let Some(dir) = ocsf_dir() else {
        return;
    };
    let bytes = std::fs::read(dir.join("013-elastic-inspector-lambda-cve-2025-47906-create.json"))
        .expect("readable");
    let intake = asff::parse_document(&bytes, Catalog::embedded()).expect("parses");
    let f = intake.findings().next().expect("one finding");
    let v = &f.vulnerabilities[0];
    assert_eq!(v.id, "CVE-2025-47906");
    assert!(!v.packages.is_empty(), "{v:?}");
    assert!(v.cvss_score.is_some(), "{v:?}");
}
