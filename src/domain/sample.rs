//! A representative finding, for `lever explain` and for tests of pure code.

use std::collections::BTreeMap;

use super::{
    ComplianceStatus, Control, Finding, RecordState, Resource, Severity, Source, WorkflowStatus,
};

/// A FAILED, ACTIVE, NEW control finding for `control_id` on one S3-bucket-like resource in
/// account 111111111111 / us-east-1.
pub fn control_finding(control_id: &str, title: &str, severity: Severity) -> Finding {
    let service = control_id
        .split('.')
        .next()
        .unwrap_or("Service")
        .to_ascii_lowercase();
    Finding {
        id: format!(
            "arn:aws:securityhub:us-east-1:111111111111:security-control/{control_id}/finding/00000000-0000-4000-8000-000000000000"
        ),
        product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
        product: "aws/securityhub".into(),
        product_name: Some("Security Hub".into()),
        generator_id: Some(format!("security-control/{control_id}")),
        account_id: "111111111111".into(),
        region: "us-east-1".into(),
        title: title.into(),
        description: format!("Sample finding for {control_id}: {title}."),
        severity,
        types: vec!["Software and Configuration Checks/Industry and Regulatory Standards".into()],
        created_at: Some("2026-11-01T09:00:00.000Z".into()),
        updated_at: Some("2026-11-20T09:00:00.000Z".into()),
        first_observed_at: Some("2026-11-01T09:00:00.000Z".into()),
        last_observed_at: Some("2026-11-20T09:00:00.000Z".into()),
        compliance: Some(ComplianceStatus::Failed),
        compliance_reasons: vec![],
        record_state: RecordState::Active,
        workflow: WorkflowStatus::New,
        remediation_text: Some(
            "For information on how to correct this issue, consult the AWS Security Hub controls documentation."
                .into(),
        ),
        remediation_url: Some(format!(
            "https://docs.aws.amazon.com/console/securityhub/{control_id}/remediation"
        )),
        source_url: None,
        resources: vec![Resource {
            id: format!("arn:aws:{service}:us-east-1:111111111111:example/sample-resource"),
            kind: Some("Other".into()),
            region: Some("us-east-1".into()),
            tags: BTreeMap::new(),
        }],
        note: None,
        source: Source::Control(Control {
            id: control_id.into(),
            reported_id: None,
            standard: "consolidated".into(),
        }),
        vulnerabilities: Vec::new(),
    }
}
