//! What keys a finding's problem: a Security Hub control (resolved to its consolidated id), a
//! GuardDuty finding type, an Inspector vulnerability, or a product's generator.
//!
//! Control findings arrive in two generations of ids. Before 2023 each standard reported its own
//! finding with its own id (`aws-foundational-security-best-practices/v/1.0.0/S3.1`,
//! `pci-dss/v/3.2.1/PCI.S3.6`, CIS rule `2.7`, …); since consolidation Security Hub reports one
//! finding per control (`security-control/S3.1`) and many per-standard findings also carry
//! `Compliance.SecurityControlId`. Everything resolves to the consolidated id so one control
//! failing under three standards is one problem. A per-standard id Lever cannot map becomes a
//! standard-qualified id (`cis-1.2.0/1.3`, `pci-dss-3.2.1/PCI.Foo.1`), never a guessed control.

use crate::controls::Catalog;
use crate::domain::{Control, Source};

use super::value::{Obj, obj, opt_str, product_field};

/// Security Hub's own product (`product/aws/securityhub`): control findings.
pub(crate) const SECURITY_HUB: &str = "aws/securityhub";
pub(crate) const GUARDDUTY: &str = "aws/guardduty";
pub(crate) const INSPECTOR: &str = "aws/inspector";

/// Standard short name for the consolidated (`security-control/…`) view.
pub const CONSOLIDATED: &str = "consolidated";

/// The problem a finding is about. `types` and `title` are the already-parsed fields.
pub(crate) fn source(
    finding: &Obj,
    product: &str,
    generator_id: Option<&str>,
    types: &[String],
    title: &str,
    catalog: &Catalog,
) -> Source {
    match product {
        SECURITY_HUB => match control(finding, generator_id, catalog) {
            Some(c) => Source::Control(c),
            None => product_source(product, generator_id, title),
        },
        GUARDDUTY => Source::GuardDuty {
            finding_type: guardduty_type(types).unwrap_or(title).to_string(),
        },
        INSPECTOR => Source::Inspector {
            vulnerability_id: inspector_id(finding, generator_id, title),
        },
        _ => product_source(product, generator_id, title),
    }
}

fn product_source(product: &str, generator_id: Option<&str>, title: &str) -> Source {
    Source::Product {
        product: product.to_string(),
        generator_id: generator_id.unwrap_or(title).to_string(),
    }
}

/// GuardDuty's finding type is the last segment of `Types[0]`: ASFF spells the type
/// `UnauthorizedAccess:EC2/SSHBruteForce` as `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce`.
/// Only the last segment is kept because the `namespace/category` prefix GuardDuty puts in front
/// has changed over the years for the same finding type (older findings say
/// `Unusual Behaviors/User/…`, newer ones `TTPs/Initial Access/…`); the type itself has not.
/// `None` (the caller then uses the title) when the finding has no type.
pub(crate) fn guardduty_type(types: &[String]) -> Option<&str> {
    let first = types.first()?;
    let last = first.rsplit('/').next().unwrap_or(first).trim();
    (!last.is_empty()).then_some(last)
}

/// Inspector v2: `Vulnerabilities[0].Id` (a CVE or GHSA id). Inspector Classic and Inspector
/// findings without a vulnerability (network reachability): the rules package (GeneratorId, else
/// `ProductFields.serviceAttributes/rulesPackageArn`) and the title, which for Classic names the
/// rule, port and instance and is stable across updates of the same finding.
pub(crate) fn inspector_id(finding: &Obj, generator_id: Option<&str>, title: &str) -> String {
    let vuln = finding
        .get("Vulnerabilities")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_object())
        .and_then(|v| opt_str(v, "Id"));
    if let Some(id) = vuln {
        return id.to_string();
    }
    let package = generator_id
        .or_else(|| product_field(finding, "serviceAttributes/rulesPackageArn"))
        .or_else(|| product_field(finding, "aws/inspector/RulesPackageName"));
    match package {
        Some(p) => format!("{p}/{title}"),
        None => title.to_string(),
    }
}

/// The family a standard belongs to, which decides how its control ids map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `security-control/<ID>`: already consolidated.
    Consolidated,
    /// Standards whose control ids *are* consolidated ids: FSBP, NIST 800-53, Control Tower.
    SameIds,
    Cis,
    Pci,
    /// Anything else: ids are kept qualified by the standard.
    Other,
}

/// A standard named in a GeneratorId or a `Standards*Arn`, with the control id it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StandardRef<'a> {
    family: Family,
    /// Short name (`fsbp`, `cis-1.2.0`, `pci-dss-3.2.1`, …).
    short: String,
    version: &'a str,
    /// The control id as the standard spells it (may be empty when only the standard is known).
    rule: &'a str,
}

/// Short name of a standard, as used in [`Control::standard`] and standard-qualified ids.
fn short_name(name: &str, version: &str) -> (Family, String) {
    match name {
        "aws-foundational-security-best-practices" if version == "1.0.0" => {
            (Family::SameIds, "fsbp".into())
        }
        "aws-foundational-security-best-practices" => (Family::SameIds, format!("fsbp-{version}")),
        "service-managed-aws-control-tower" if version == "1.0.0" => {
            (Family::SameIds, "control-tower".into())
        }
        "service-managed-aws-control-tower" => {
            (Family::SameIds, format!("control-tower-{version}"))
        }
        "nist-800-53" => (Family::SameIds, format!("nist-800-53-{version}")),
        "cis-aws-foundations-benchmark" => (Family::Cis, format!("cis-{version}")),
        "pci-dss" => (Family::Pci, format!("pci-dss-{version}")),
        other => (Family::Other, format!("{other}-{version}")),
    }
}

/// Parses a standard path: an optional `arn:<partition>:securityhub:<region>:<account>:` prefix,
/// an optional `ruleset/`, `standards/`, `subscription/` or `control/` kind, then
/// `<name>/v/<version>[/rule]/<id>`. With `need_rule`, the id must be present.
fn parse_standard(s: &str, need_rule: bool) -> Option<StandardRef<'_>> {
    let mut path = s.trim();
    if path.starts_with("arn:") {
        path = path.splitn(6, ':').nth(5)?;
    }
    for kind in ["ruleset/", "standards/", "subscription/", "control/"] {
        if let Some(rest) = path.strip_prefix(kind) {
            path = rest;
            break;
        }
    }
    let (name, rest) = path.split_once("/v/")?;
    if name.is_empty() || name.contains('/') || name.contains(':') {
        return None;
    }
    let (version, rule) = rest.split_once('/').unwrap_or((rest, ""));
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let rule = rule.strip_prefix("rule/").unwrap_or(rule);
    if rule.contains('/') || (need_rule && rule.trim().is_empty()) {
        return None;
    }
    let (family, short) = short_name(name, version);
    Some(StandardRef {
        family,
        short,
        version,
        rule: rule.trim(),
    })
}

/// The standard and id named by a control GeneratorId.
fn from_generator(generator_id: &str) -> Option<StandardRef<'_>> {
    if let Some(id) = generator_id.strip_prefix("security-control/") {
        let id = id.trim();
        return (!id.is_empty() && !id.contains('/')).then(|| StandardRef {
            family: Family::Consolidated,
            short: CONSOLIDATED.into(),
            version: "",
            rule: id,
        });
    }
    parse_standard(generator_id, true)
}

/// The standard and id named by `ProductFields` (`ControlId` or `RuleId`, with `StandardsArn`,
/// `StandardsGuideArn` or `StandardsControlArn` naming the standard), used when the GeneratorId
/// does not name a control.
fn from_product_fields(finding: &Obj) -> Option<StandardRef<'_>> {
    let id = product_field(finding, "ControlId").or_else(|| product_field(finding, "RuleId"));
    let standard = ["StandardsArn", "StandardsGuideArn", "StandardsControlArn"]
        .iter()
        .find_map(|k| product_field(finding, k).and_then(|s| parse_standard(s, false)))?;
    match id {
        Some(id) => Some(StandardRef {
            rule: id.trim(),
            ..standard
        }),
        None if !standard.rule.is_empty() => Some(standard),
        None => None,
    }
}

/// The consolidated control id a standard's control id maps to, when Lever knows it.
fn consolidated_id(std: &StandardRef<'_>, catalog: &Catalog) -> Option<String> {
    let rule = std.rule;
    match std.family {
        Family::Consolidated => Some(canonical(rule, catalog)),
        Family::SameIds => {
            // Control Tower spells its ids `CT.CloudTrail.2` in ProductFields.ControlId.
            let rule = rule.strip_prefix("CT.").unwrap_or(rule);
            Some(canonical(rule, catalog))
        }
        Family::Cis => match std.version {
            "1.2.0" => catalog.from_cis_1_2(rule).map(str::to_string),
            "1.4.0" => catalog.from_cis_1_4(rule).map(str::to_string),
            _ => None,
        },
        Family::Pci if std.version == "3.2.1" => catalog.from_pci(rule).map(str::to_string),
        Family::Pci | Family::Other => None,
    }
}

/// AWS's canonical spelling of a control id (`s3.1` → `S3.1`), or the id as given when the
/// catalog does not know it.
fn canonical(id: &str, catalog: &Catalog) -> String {
    match catalog.get(id) {
        Some(info) => info.id.clone(),
        None => id.to_string(),
    }
}

/// Resolves a Security Hub control finding. Order: `Compliance.SecurityControlId`, then the
/// GeneratorId, then `ProductFields`. The standard and the reported id come from the GeneratorId
/// (or `ProductFields`) even when `SecurityControlId` decides the id.
pub(crate) fn control(
    finding: &Obj,
    generator_id: Option<&str>,
    catalog: &Catalog,
) -> Option<Control> {
    let security_control_id =
        obj(finding, "Compliance").and_then(|c| opt_str(c, "SecurityControlId"));
    let standard = generator_id
        .and_then(from_generator)
        .or_else(|| from_product_fields(finding));

    let Some(std) = standard else {
        // No standard named anywhere: only the consolidated id is known.
        return security_control_id.map(|id| Control {
            id: canonical(id.trim(), catalog),
            reported_id: None,
            standard: CONSOLIDATED.into(),
        });
    };

    let id = match security_control_id {
        Some(id) => canonical(id.trim(), catalog),
        None => {
            consolidated_id(&std, catalog).unwrap_or_else(|| format!("{}/{}", std.short, std.rule))
        }
    };
    // How the standard itself spells the control: ProductFields.ControlId when it names the same
    // control (Control Tower says `CT.CloudTrail.2` where its GeneratorId says `CloudTrail.2`).
    let reported = product_field(finding, "ControlId")
        .map(str::trim)
        .filter(|c| {
            *c == std.rule
                || c.strip_suffix(std.rule)
                    .is_some_and(|prefix| prefix.ends_with('.'))
        })
        .unwrap_or(std.rule);
    Some(Control {
        // A difference of case only (`s3.1` for `S3.1`) is a spelling, not another id.
        reported_id: (!reported.eq_ignore_ascii_case(&id)).then(|| reported.to_string()),
        id,
        standard: std.short,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, need_rule, expected (short name, version, rule)).
    type Case = (
        &'static str,
        bool,
        Option<(&'static str, &'static str, &'static str)>,
    );

    #[test]
    fn parse_standard_table() {
        let cases: [Case; 14] = [
            (
                "aws-foundational-security-best-practices/v/1.0.0/S3.1",
                true,
                Some(("fsbp", "1.0.0", "S3.1")),
            ),
            (
                "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.3",
                true,
                Some(("cis-1.2.0", "1.2.0", "1.3")),
            ),
            (
                "arn:aws-us-gov:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.7",
                true,
                Some(("cis-1.2.0", "1.2.0", "2.7")),
            ),
            (
                "cis-aws-foundations-benchmark/v/1.4.0/3.7",
                true,
                Some(("cis-1.4.0", "1.4.0", "3.7")),
            ),
            (
                "cis-aws-foundations-benchmark/v/3.0.0/3.5",
                true,
                Some(("cis-3.0.0", "3.0.0", "3.5")),
            ),
            (
                "pci-dss/v/3.2.1/PCI.S3.6",
                true,
                Some(("pci-dss-3.2.1", "3.2.1", "PCI.S3.6")),
            ),
            (
                "nist-800-53/v/5.0.0/CloudTrail.2",
                true,
                Some(("nist-800-53-5.0.0", "5.0.0", "CloudTrail.2")),
            ),
            (
                "service-managed-aws-control-tower/v/1.0.0/CloudTrail.2",
                true,
                Some(("control-tower", "1.0.0", "CloudTrail.2")),
            ),
            (
                "aws-resource-tagging-standard/v/1.0.0/EC2.44",
                true,
                Some(("aws-resource-tagging-standard-1.0.0", "1.0.0", "EC2.44")),
            ),
            (
                "arn:aws:securityhub:::standards/pci-dss/v/3.2.1",
                false,
                Some(("pci-dss-3.2.1", "3.2.1", "")),
            ),
            (
                "arn:aws:securityhub:us-east-1:111111111111:control/cis-aws-foundations-benchmark/v/1.2.0/1.3",
                false,
                Some(("cis-1.2.0", "1.2.0", "1.3")),
            ),
            (
                "arn:aws:securityhub:::standards/pci-dss/v/3.2.1",
                true,
                None,
            ),
            ("arn:aws:guardduty:us-east-1:1:detector/abc", true, None),
            ("pci-dss/v/latest/PCI.S3.6", true, None),
        ];
        for (input, need_rule, want) in cases {
            let got = parse_standard(input, need_rule).map(|s| (s.short, s.version, s.rule));
            let want = want.map(|(a, b, c)| (a.to_string(), b, c));
            assert_eq!(got, want, "parse_standard({input:?}, {need_rule})");
        }
    }

    #[test]
    fn guardduty_type_is_last_segment_of_first_type() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            guardduty_type(&t(&[
                "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"
            ])),
            Some("UnauthorizedAccess:EC2-SSHBruteForce")
        );
        assert_eq!(
            guardduty_type(&t(&["Recon:EC2-PortProbeUnprotectedPort"])),
            Some("Recon:EC2-PortProbeUnprotectedPort")
        );
        assert_eq!(guardduty_type(&t(&["TTPs/"])), None);
        assert_eq!(guardduty_type(&[]), None);
    }
}
