//! Pure domain types: no I/O, no clocks. Everything else in Lever talks in these terms.

pub mod calendar;
mod codes;
pub mod keys;
pub mod lifecycle;
pub mod nul;
pub mod oncall;
pub mod sample;
pub mod tags;

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

pub(crate) use codes::string_codes;
pub use keys::{GroupKey, StableKey};

/// Security Hub severity label, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Lower-case form used in labels (`severity:high`).
    pub fn slug(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ASFF `Severity.Normalized` (0-100) mapped to a label, as Security Hub documents it:
    /// 0 INFORMATIONAL, 1-39 LOW, 40-69 MEDIUM, 70-89 HIGH, 90-100 CRITICAL.
    pub fn from_normalized(n: f64) -> Option<Severity> {
        if !(0.0..=100.0).contains(&n) || n.is_nan() {
            return None;
        }
        Some(if n < 1.0 {
            Severity::Informational
        } else if n < 40.0 {
            Severity::Low
        } else if n < 70.0 {
            Severity::Medium
        } else if n < 90.0 {
            Severity::High
        } else {
            Severity::Critical
        })
    }
}

string_codes!(Severity, ComplianceStatus, RecordState, WorkflowStatus);

/// The label as ASFF spells it (`"HIGH"`), in any case, surrounding whitespace ignored.
impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown severity {s:?} (expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)"
                )
            })
    }
}

/// ASFF `Compliance.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceStatus {
    Passed,
    Warning,
    Failed,
    NotAvailable,
}

/// ASFF `RecordState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordState {
    #[default]
    Active,
    Archived,
}

/// ASFF `Workflow.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowStatus {
    #[default]
    New,
    Notified,
    Resolved,
    Suppressed,
}

/// One entry of ASFF `Resources[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Where a finding comes from, as far as keying and labelling are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A Security Hub control (any standard, or consolidated).
    Control(Control),
    /// Amazon GuardDuty: keyed by finding type.
    GuardDuty { finding_type: String },
    /// Amazon Inspector (v2 or Classic): keyed by vulnerability id (or rule when there is none).
    Inspector { vulnerability_id: String },
    /// Any other product (AWS integrations and third parties): keyed by generator.
    Product {
        product: String,
        generator_id: String,
    },
}

/// A Security Hub control, resolved to the consolidated id where Lever knows the mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Consolidated control id (`S3.1`), or a standard-qualified id when unmapped
    /// (`cis-1.2.0/1.3`).
    pub id: String,
    /// The id as the standard reports it (`PCI.S3.6`, `2.1`, `S3.1`), if different sources disagree.
    pub reported_id: Option<String>,
    /// Short standard name (`fsbp`, `cis-1.2.0`, `cis-1.4.0`, `pci-dss-3.2.1`, `nist-800-53-5.0.0`,
    /// `control-tower`, `consolidated`).
    pub standard: String,
}

/// ASFF `Note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    pub updated_by: String,
    pub updated_at: Option<String>,
}

/// One BatchUpdateFindings Lever made to a finding: the workflow and note text it wrote, and
/// when (Lever's clock). Security Hub echoes the update back as an Imported event with the same
/// `UpdatedAt`; the echo is recognised by matching what Lever wrote, never by `Note.UpdatedBy`
/// alone, which any caller of BatchUpdateFindings can set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeverWrite {
    pub workflow: WorkflowStatus,
    pub note: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl LeverWrite {
    /// How many of its latest writes Lever remembers per finding (an echo arrives within
    /// minutes; a finding sees a handful of writes in its life).
    pub const KEEP: usize = 8;

    /// `writes` with `write` appended, keeping the latest [`LeverWrite::KEEP`].
    pub fn remember(writes: &mut Vec<LeverWrite>, write: LeverWrite) {
        writes.retain(|w| w.workflow != write.workflow || w.note != write.note);
        writes.push(write);
        let excess = writes.len().saturating_sub(Self::KEEP);
        writes.drain(..excess);
    }
}

/// A Security Hub finding, as much of ASFF as Lever uses. Built by [`crate::asff`] from ASFF and
/// by [`crate::ocsf`] from OCSF (Security Hub v2); the field docs name the ASFF source, the OCSF
/// mapping is in `src/ocsf/finding.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// ASFF `Id` (volatile, per product/standard).
    pub id: String,
    pub product_arn: String,
    /// `company/product` from the product ARN (`aws/securityhub`, `prowler/prowler`).
    pub product: String,
    pub product_name: Option<String>,
    pub generator_id: Option<String>,
    pub account_id: String,
    /// Region of the finding (`Region`, else the first resource's, else the product ARN's).
    pub region: String,
    pub title: String,
    /// `Description`, or the title when the finding has none.
    pub description: String,
    pub severity: Severity,
    pub types: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub first_observed_at: Option<String>,
    pub last_observed_at: Option<String>,
    pub compliance: Option<ComplianceStatus>,
    /// `Compliance.StatusReasons[].ReasonCode`: why Security Hub gave that compliance status
    /// (`CONFIG_ACCESS_DENIED`, `CONFIG_RETURNS_NOT_APPLICABLE`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_reasons: Vec<String>,
    pub record_state: RecordState,
    pub workflow: WorkflowStatus,
    pub remediation_text: Option<String>,
    pub remediation_url: Option<String>,
    pub source_url: Option<String>,
    pub resources: Vec<Resource>,
    pub note: Option<Note>,
    pub source: Source,
    /// `Vulnerabilities[]` (Inspector and other vulnerability scanners): the packages to
    /// upgrade and the CVSS score, shown in the issue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// One entry of ASFF `Vulnerabilities[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// A CVE or GHSA id.
    pub id: String,
    pub packages: Vec<VulnerablePackage>,
    /// The highest-version CVSS base score (`9.8`) with its version (`3.1`), if any.
    pub cvss_score: Option<String>,
    pub cvss_version: Option<String>,
    /// `YES`, `NO` or `PARTIAL`: whether a fixed version exists.
    pub fix_available: Option<String>,
}

/// `Vulnerabilities[].VulnerablePackages[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerablePackage {
    pub name: String,
    /// `Version`, with `-Release` when there is one.
    pub installed_version: Option<String>,
    pub fixed_in_version: Option<String>,
    pub package_manager: Option<String>,
}

/// Whether a product ARN is Security Hub v2's (`…::productv2/aws/guardduty`): the finding came
/// as OCSF ([`crate::ocsf`]), and only the V2 API (`BatchUpdateFindingsV2`, `GetFindingsV2`)
/// knows it. Such findings are never written back nor looked up through the ASFF API (which
/// would not find them and so take them for gone); `[securityhub] api = "v2"` or `"both"`
/// sends them through the V2 API (`crate::securityhub::v2`).
pub fn is_v2_product_arn(product_arn: &str) -> bool {
    product_arn.contains(":productv2/")
}

impl Finding {
    /// Whether this finding came from Security Hub v2 as OCSF (see [`is_v2_product_arn`]).
    pub fn is_ocsf(&self) -> bool {
        is_v2_product_arn(&self.product_arn)
    }

    /// The control id, for control findings.
    pub fn control_id(&self) -> Option<&str> {
        match &self.source {
            Source::Control(c) => Some(&c.id),
            _ => None,
        }
    }

    /// The primary resource (ASFF requires at least one; the parser enforces it).
    pub fn primary_resource(&self) -> &Resource {
        &self.resources[0]
    }

    /// Short product name used in `source:<product>` labels (`guardduty`, `prowler`).
    pub fn product_slug(&self) -> String {
        let last = self.product.rsplit('/').next().unwrap_or(&self.product);
        let name = if last == "default" {
            // `product/<account>/default`: custom integrations; their product name, when it
            // says more than "Default", is more useful.
            self.product_name
                .as_deref()
                .filter(|n| !n.eq_ignore_ascii_case("default"))
                .unwrap_or("custom")
        } else {
            last
        };
        keys::slugify(name)
    }
}
