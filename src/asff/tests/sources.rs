//! What keys a finding: controls under every standard, GuardDuty, Inspector, other products.

use serde_json::{Value, json};

use super::*;

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
