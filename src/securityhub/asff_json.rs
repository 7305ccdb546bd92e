//! The SDK's `AwsSecurityFinding` back into ASFF's own JSON shape (PascalCase keys, enums as
//! their AWS strings, timestamps as the strings Security Hub returned), so that findings read
//! with GetFindings go through the one ASFF parser ([`crate::asff::parse_finding`]) like pushed
//! EventBridge events do.
//!
//! # What is converted
//! Everything the ASFF parser reads, and the rest of the finding's own scalar and small
//! structured fields:
//! `SchemaVersion`, `Id`, `ProductArn`, `ProductName`, `CompanyName`, `Region`, `GeneratorId`,
//! `AwsAccountId`, `AwsAccountName`, `Types`, `FirstObservedAt`, `LastObservedAt`,
//! `CreatedAt`, `UpdatedAt`, `ProcessedAt`, `Severity{Label, Normalized, Original, Product}`,
//! `Confidence`, `Criticality`, `Title`, `Description`, `Remediation.Recommendation{Text, Url}`,
//! `SourceUrl`, `ProductFields`, `UserDefinedFields`,
//! `Resources[{Type, Id, Partition, Region, ResourceRole, Tags, ApplicationName,
//! ApplicationArn}]`, `Compliance{Status, RelatedRequirements, StatusReasons, SecurityControlId,
//! AssociatedStandards, SecurityControlParameters}`, `VerificationState`, `WorkflowState`,
//! `Workflow{Status}`, `RecordState`, `RelatedFindings`, `Note{Text, UpdatedBy, UpdatedAt}`,
//! `Vulnerabilities[{Id, VulnerablePackages, Cvss (without Adjustments), RelatedVulnerabilities,
//! Vendor, ReferenceUrls, FixAvailable, EpssScore, ExploitAvailable, LastKnownExploitAt}]`,
//! `FindingProviderFields{Confidence, Criticality, RelatedFindings, Severity{Label, Original},
//! Types}`, `Sample`.
//!
//! # What is not (nothing Lever reads)
//! `Resources[].Details` (hundreds of resource-specific types), `Resources[].DataClassification`,
//! `Resources[].Owner`, `Resources[].Provider`, `Malware`, `Network`, `NetworkPath`, `Process`,
//! `Threats`, `ThreatIntelIndicators`, `PatchSummary`, `Action`, `GeneratorDetails`,
//! `Detection`, `Vulnerabilities[].Cvss[].Adjustments`, `Vulnerabilities[].CodeVulnerabilities`.
//! Fields that are not in the AWS model at all never reach Lever through the SDK either (it
//! drops unknown keys), e.g. `FindingProviderFields.Severity.Normalized` in some AWS doc samples.
//!
//! A field absent in the SDK value is absent in the JSON; a present but empty list or object
//! stays present and empty, as Security Hub sent it. One exception undoes the SDK's "client
//! error correction": when a response lacks a member the model requires, the SDK fills it with
//! a default (`""` for `SchemaVersion`, `Id`, `ProductArn`, `GeneratorId`, `AwsAccountId`,
//! `CreatedAt`, `UpdatedAt`, `Title`, `Description`; `[]` for `Resources`). Those required
//! members are non-empty in every finding Security Hub accepts, so an empty one is the SDK's
//! filling and is left out, and the parser sees (and reports) the member as missing, as it
//! would in the original JSON. Numbers are what the SDK holds:
//! `Severity.Product` is a double (`40` comes back as `40.0`), `Normalized` an integer.

use std::collections::HashMap;

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Compliance, Cvss, FindingProviderFields, Note, RelatedFinding, Resource,
    Severity, SoftwarePackage, Vulnerability, VulnerabilityVendor,
};
use serde_json::{Map, Number, Value};

/// A JSON object under construction that only receives present values.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(&mut self, key: &str, v: Option<Value>) -> &mut Self {
        if let Some(v) = v {
            self.0.insert(key.to_string(), v);
        }
        self
    }
    fn str(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        self.put(key, v.map(|s| Value::String(s.to_string())))
    }
    fn int(&mut self, key: &str, v: Option<i32>) -> &mut Self {
        self.put(key, v.map(Value::from))
    }
    fn num(&mut self, key: &str, v: Option<f64>) -> &mut Self {
        self.put(key, v.and_then(Number::from_f64).map(Value::Number))
    }
    fn strs(&mut self, key: &str, v: Option<&Vec<String>>) -> &mut Self {
        self.put(key, v.map(|l| strings(l)))
    }
    fn map(&mut self, key: &str, v: Option<&HashMap<String, String>>) -> &mut Self {
        self.put(
            key,
            v.map(|m| {
                Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                )
            }),
        )
    }
    fn list<T>(&mut self, key: &str, v: Option<&Vec<T>>, each: impl Fn(&T) -> Value) -> &mut Self {
        self.put(key, v.map(|l| Value::Array(l.iter().map(each).collect())))
    }
    fn done(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.0))
    }
}

fn strings(l: &[String]) -> Value {
    Value::Array(l.iter().map(|s| Value::String(s.clone())).collect())
}

/// One SDK finding as ASFF JSON, ready for [`crate::asff::parse_finding`].
pub fn finding_to_asff(f: &AwsSecurityFinding) -> Value {
    let mut o = Obj::default();
    o.str("SchemaVersion", required(&f.schema_version))
        .str("Id", required(&f.id))
        .str("ProductArn", required(&f.product_arn))
        .str("ProductName", f.product_name.as_deref())
        .str("CompanyName", f.company_name.as_deref())
        .str("Region", f.region.as_deref())
        .str("GeneratorId", required(&f.generator_id))
        .str("AwsAccountId", required(&f.aws_account_id))
        .str("AwsAccountName", f.aws_account_name.as_deref())
        .strs("Types", f.types.as_ref())
        .str("FirstObservedAt", f.first_observed_at.as_deref())
        .str("LastObservedAt", f.last_observed_at.as_deref())
        .str("CreatedAt", required(&f.created_at))
        .str("UpdatedAt", required(&f.updated_at))
        .str("ProcessedAt", f.processed_at.as_deref())
        .put("Severity", f.severity.as_ref().map(severity))
        .int("Confidence", f.confidence)
        .int("Criticality", f.criticality)
        .str("Title", required(&f.title))
        .str("Description", required(&f.description))
        .put(
            "Remediation",
            f.remediation.as_ref().map(|r| {
                Obj::default()
                    .put(
                        "Recommendation",
                        r.recommendation.as_ref().map(|rec| {
                            Obj::default()
                                .str("Text", rec.text.as_deref())
                                .str("Url", rec.url.as_deref())
                                .done()
                        }),
                    )
                    .done()
            }),
        )
        .str("SourceUrl", f.source_url.as_deref())
        .map("ProductFields", f.product_fields.as_ref())
        .map("UserDefinedFields", f.user_defined_fields.as_ref())
        .list(
            "Resources",
            f.resources.as_ref().filter(|r| !r.is_empty()),
            resource,
        )
        .put("Compliance", f.compliance.as_ref().map(compliance))
        .str(
            "VerificationState",
            f.verification_state.as_ref().map(|v| v.as_str()),
        )
        .str(
            "WorkflowState",
            f.workflow_state.as_ref().map(|v| v.as_str()),
        )
        .put(
            "Workflow",
            f.workflow.as_ref().map(|w| {
                Obj::default()
                    .str("Status", w.status.as_ref().map(|s| s.as_str()))
                    .done()
            }),
        )
        .str("RecordState", f.record_state.as_ref().map(|v| v.as_str()))
        .list(
            "RelatedFindings",
            f.related_findings.as_ref(),
            related_finding,
        )
        .put("Note", f.note.as_ref().map(note))
        .list("Vulnerabilities", f.vulnerabilities.as_ref(), vulnerability)
        .put(
            "FindingProviderFields",
            f.finding_provider_fields
                .as_ref()
                .map(finding_provider_fields),
        )
        .put("Sample", f.sample.map(Value::Bool));
    o.done()
}

/// A member the model requires: empty means the SDK filled it in (see the module doc).
fn required(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn severity(s: &Severity) -> Value {
    Obj::default()
        .str("Label", s.label.as_ref().map(|l| l.as_str()))
        .int("Normalized", s.normalized)
        .str("Original", s.original.as_deref())
        .num("Product", s.product)
        .done()
}

fn resource(r: &Resource) -> Value {
    Obj::default()
        .str("Type", r.r#type.as_deref())
        .str("Id", r.id.as_deref())
        .str("Partition", r.partition.as_ref().map(|p| p.as_str()))
        .str("Region", r.region.as_deref())
        .str("ResourceRole", r.resource_role.as_deref())
        .map("Tags", r.tags.as_ref())
        .str("ApplicationName", r.application_name.as_deref())
        .str("ApplicationArn", r.application_arn.as_deref())
        .done()
}

fn compliance(c: &Compliance) -> Value {
    Obj::default()
        .str("Status", c.status.as_ref().map(|s| s.as_str()))
        .strs("RelatedRequirements", c.related_requirements.as_ref())
        .list("StatusReasons", c.status_reasons.as_ref(), |r| {
            Obj::default()
                .str("ReasonCode", r.reason_code.as_deref())
                .str("Description", r.description.as_deref())
                .done()
        })
        .str("SecurityControlId", c.security_control_id.as_deref())
        .list(
            "AssociatedStandards",
            c.associated_standards.as_ref(),
            |s| {
                Obj::default()
                    .str("StandardsId", s.standards_id.as_deref())
                    .done()
            },
        )
        .list(
            "SecurityControlParameters",
            c.security_control_parameters.as_ref(),
            |p| {
                Obj::default()
                    .str("Name", p.name.as_deref())
                    .strs("Value", p.value.as_ref())
                    .done()
            },
        )
        .done()
}

fn related_finding(r: &RelatedFinding) -> Value {
    Obj::default()
        .str("ProductArn", r.product_arn.as_deref())
        .str("Id", r.id.as_deref())
        .done()
}

fn note(n: &Note) -> Value {
    Obj::default()
        .str("Text", n.text.as_deref())
        .str("UpdatedBy", n.updated_by.as_deref())
        .str("UpdatedAt", n.updated_at.as_deref())
        .done()
}

fn vulnerability(v: &Vulnerability) -> Value {
    Obj::default()
        .str("Id", v.id.as_deref())
        .list(
            "VulnerablePackages",
            v.vulnerable_packages.as_ref(),
            software_package,
        )
        .list("Cvss", v.cvss.as_ref(), cvss)
        .strs("RelatedVulnerabilities", v.related_vulnerabilities.as_ref())
        .put("Vendor", v.vendor.as_ref().map(vendor))
        .strs("ReferenceUrls", v.reference_urls.as_ref())
        .str("FixAvailable", v.fix_available.as_ref().map(|x| x.as_str()))
        .num("EpssScore", v.epss_score)
        .str(
            "ExploitAvailable",
            v.exploit_available.as_ref().map(|x| x.as_str()),
        )
        .str("LastKnownExploitAt", v.last_known_exploit_at.as_deref())
        .done()
}

fn software_package(p: &SoftwarePackage) -> Value {
    Obj::default()
        .str("Name", p.name.as_deref())
        .str("Version", p.version.as_deref())
        .str("Epoch", p.epoch.as_deref())
        .str("Release", p.release.as_deref())
        .str("Architecture", p.architecture.as_deref())
        .str("PackageManager", p.package_manager.as_deref())
        .str("FilePath", p.file_path.as_deref())
        .str("FixedInVersion", p.fixed_in_version.as_deref())
        .str("Remediation", p.remediation.as_deref())
        .str("SourceLayerHash", p.source_layer_hash.as_deref())
        .str("SourceLayerArn", p.source_layer_arn.as_deref())
        .done()
}

fn cvss(c: &Cvss) -> Value {
    Obj::default()
        .str("Version", c.version.as_deref())
        .num("BaseScore", c.base_score)
        .str("BaseVector", c.base_vector.as_deref())
        .str("Source", c.source.as_deref())
        .done()
}

fn vendor(v: &VulnerabilityVendor) -> Value {
    Obj::default()
        .str("Name", v.name.as_deref())
        .str("Url", v.url.as_deref())
        .str("VendorSeverity", v.vendor_severity.as_deref())
        .str("VendorCreatedAt", v.vendor_created_at.as_deref())
        .str("VendorUpdatedAt", v.vendor_updated_at.as_deref())
        .done()
}

fn finding_provider_fields(p: &FindingProviderFields) -> Value {
    Obj::default()
        .int("Confidence", p.confidence)
        .int("Criticality", p.criticality)
        .list(
            "RelatedFindings",
            p.related_findings.as_ref(),
            related_finding,
        )
        .put(
            "Severity",
            p.severity.as_ref().map(|s| {
                Obj::default()
                    .str("Label", s.label.as_ref().map(|l| l.as_str()))
                    .str("Original", s.original.as_deref())
                    .done()
            }),
        )
        .strs("Types", p.types.as_ref())
        .done()
}

#[cfg(test)]
// `WorkflowState` is deprecated in favour of `Workflow.Status`, but Security Hub still returns
// it and the ASFF parser falls back to it, so the conversion keeps it.
#[allow(deprecated)]
mod tests {
    use super::*;
    use aws_sdk_securityhub::types::{
        AssociatedStandard, ComplianceStatus, Partition, Recommendation, RecordState, Remediation,
        SeverityLabel, Workflow, WorkflowState, WorkflowStatus,
    };
    use serde_json::json;

    #[test]
    fn every_field_the_parser_reads_is_converted() {
        let f = AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id("arn:aws:securityhub:us-east-1:111111111111:security-control/S3.1/finding/x")
            .product_arn("arn:aws:securityhub:us-east-1::product/aws/securityhub")
            .product_name("Security Hub")
            .company_name("AWS")
            .region("us-east-1")
            .generator_id("security-control/S3.1")
            .aws_account_id("111111111111")
            .types("Software and Configuration Checks")
            .first_observed_at("2024-01-01T00:00:00.000Z")
            .last_observed_at("2024-01-02T00:00:00.000Z")
            .created_at("2024-01-01T00:00:00.000Z")
            .updated_at("2024-01-02T00:00:00.000Z")
            .severity(
                Severity::builder()
                    .label(SeverityLabel::Medium)
                    .normalized(40)
                    .original("MEDIUM")
                    .product(40.0)
                    .build(),
            )
            .title("S3 general purpose buckets should block public access")
            .description("desc")
            .remediation(
                Remediation::builder()
                    .recommendation(
                        Recommendation::builder()
                            .text("Fix it")
                            .url("https://docs.aws.amazon.com/x")
                            .build(),
                    )
                    .build(),
            )
            .source_url("https://example.com/s")
            .product_fields("ControlId", "S3.1")
            .resources(
                Resource::builder()
                    .r#type("AwsS3Bucket")
                    .id("arn:aws:s3:::b")
                    .partition(Partition::Aws)
                    .region("us-east-1")
                    .tags("team", "payments")
                    .build(),
            )
            .compliance(
                Compliance::builder()
                    .status(ComplianceStatus::Failed)
                    .related_requirements("NIST.800-53.r5 AC-3")
                    .security_control_id("S3.1")
                    .associated_standards(
                        AssociatedStandard::builder()
                            .standards_id(
                                "standards/aws-foundational-security-best-practices/v/1.0.0",
                            )
                            .build(),
                    )
                    .build(),
            )
            .workflow_state(WorkflowState::New)
            .workflow(Workflow::builder().status(WorkflowStatus::Notified).build())
            .record_state(RecordState::Active)
            .note(
                Note::builder()
                    .text("see issue")
                    .updated_by("lever")
                    .updated_at("2024-01-03T00:00:00.000Z")
                    .build(),
            )
            .vulnerabilities(Vulnerability::builder().id("CVE-2024-0001").build())
            .finding_provider_fields(
                FindingProviderFields::builder()
                    .severity(
                        aws_sdk_securityhub::types::FindingProviderSeverity::builder()
                            .label(SeverityLabel::Medium)
                            .original("MEDIUM")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let v = finding_to_asff(&f);
        assert_eq!(
            v,
            json!({
                "SchemaVersion": "2018-10-08",
                "Id": "arn:aws:securityhub:us-east-1:111111111111:security-control/S3.1/finding/x",
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
                "ProductName": "Security Hub",
                "CompanyName": "AWS",
                "Region": "us-east-1",
                "GeneratorId": "security-control/S3.1",
                "AwsAccountId": "111111111111",
                "Types": ["Software and Configuration Checks"],
                "FirstObservedAt": "2024-01-01T00:00:00.000Z",
                "LastObservedAt": "2024-01-02T00:00:00.000Z",
                "CreatedAt": "2024-01-01T00:00:00.000Z",
                "UpdatedAt": "2024-01-02T00:00:00.000Z",
                "Severity": {"Label": "MEDIUM", "Normalized": 40, "Original": "MEDIUM", "Product": 40.0},
                "Title": "S3 general purpose buckets should block public access",
                "Description": "desc",
                "Remediation": {"Recommendation": {"Text": "Fix it", "Url": "https://docs.aws.amazon.com/x"}},
                "SourceUrl": "https://example.com/s",
                "ProductFields": {"ControlId": "S3.1"},
                "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b", "Partition": "aws",
                               "Region": "us-east-1", "Tags": {"team": "payments"}}],
                "Compliance": {"Status": "FAILED", "RelatedRequirements": ["NIST.800-53.r5 AC-3"],
                               "SecurityControlId": "S3.1",
                               "AssociatedStandards": [{"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}]},
                "WorkflowState": "NEW",
                "Workflow": {"Status": "NOTIFIED"},
                "RecordState": "ACTIVE",
                "Note": {"Text": "see issue", "UpdatedBy": "lever", "UpdatedAt": "2024-01-03T00:00:00.000Z"},
                "Vulnerabilities": [{"Id": "CVE-2024-0001"}],
                "FindingProviderFields": {"Severity": {"Label": "MEDIUM", "Original": "MEDIUM"}},
            })
        );
    }

    #[test]
    fn absent_stays_absent_and_empty_stays_empty() {
        let f = AwsSecurityFinding::builder()
            .id("x")
            .set_types(Some(vec![]))
            .remediation(Remediation::builder().build())
            .build();
        assert_eq!(
            finding_to_asff(&f),
            json!({"Id": "x", "Types": [], "Remediation": {}})
        );
    }

    #[test]
    fn the_sdks_defaults_for_missing_required_members_are_left_out() {
        // What the SDK builds from `{"Id": "x", "Title": "t"}` (a response missing required
        // members): empty strings and an empty resource list.
        let f = AwsSecurityFinding::builder()
            .schema_version("")
            .id("x")
            .product_arn("")
            .generator_id("")
            .aws_account_id("")
            .created_at("")
            .updated_at("")
            .title("t")
            .description("")
            .set_resources(Some(vec![]))
            .build();
        assert_eq!(finding_to_asff(&f), json!({"Id": "x", "Title": "t"}));
    }

    #[test]
    fn unknown_enum_values_keep_their_spelling() {
        let f = AwsSecurityFinding::builder()
            .record_state(RecordState::from("active"))
            .workflow(
                Workflow::builder()
                    .status(WorkflowStatus::from("SOMETHING_NEW"))
                    .build(),
            )
            .build();
        assert_eq!(
            finding_to_asff(&f),
            json!({"RecordState": "active", "Workflow": {"Status": "SOMETHING_NEW"}})
        );
    }
}
