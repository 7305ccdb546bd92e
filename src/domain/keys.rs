//! Stable keys (one per problem) and group keys (one per GitHub issue).
//!
//! A stable key names *one problem*: the same control failing on the same resource in the same
//! account and region, however many standards report it. A group key names *one issue*: by
//! default the stable key itself, but resources of a short-lived family (an Auto Scaling group,
//! an EKS node group, an ECS service) fold into one group per family.
//!
//! Keys are readable strings of `|`-separated segments. Each segment is percent-encoded outside
//! a conservative safe set, so a key never contains whitespace, `|`, `<`, `>` or `--` runs and
//! can sit inside the hidden HTML-comment marker of an issue body.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Finding, Source};

/// One problem: (control, resource, account, region), or the product-specific equivalent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StableKey(pub String);

/// One GitHub issue: a stable key, or a family of short-lived resources sharing a problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupKey(pub String);

impl fmt::Display for StableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl GroupKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `s` could have been produced by this module (used to validate markers read
    /// back from issue bodies).
    pub fn is_well_formed(s: &str) -> bool {
        !s.is_empty() && s.len() <= 1024 && s.chars().all(|c| is_safe(c) || c == '|' || c == '%')
    }
}

/// Grouping settings (from `[grouping]` in `lever.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    /// Resource tags that name a family of short-lived resources. The first tag found on the
    /// primary resource wins.
    pub family_tags: Vec<String>,
    /// How per-vulnerability findings (Inspector) fold into issues.
    #[serde(default)]
    pub vulnerabilities: VulnerabilityGrouping,
}

/// How per-vulnerability findings (Inspector v2 and other scanners: one finding per CVE per
/// resource, with `Vulnerabilities[].VulnerablePackages`) fold into issues (`[grouping]
/// vulnerabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum VulnerabilityGrouping {
    /// One issue per vulnerable package and image or instance family, listing its CVEs (the
    /// default).
    #[default]
    Package,
    /// One issue per CVE per resource (or family), as for any other finding.
    Vulnerability,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            family_tags: vec![
                "aws:autoscaling:groupName".into(),
                "eks:nodegroup-name".into(),
                "aws:ecs:serviceName".into(),
            ],
            vulnerabilities: VulnerabilityGrouping::Package,
        }
    }
}

/// The package a per-vulnerability finding is grouped by: the first name (in order) of its
/// first vulnerability's packages; `None` without one (a control, Inspector Classic).
pub fn vulnerable_package(f: &Finding) -> Option<&str> {
    f.vulnerabilities
        .first()?
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !n.trim().is_empty())
        .min()
}

/// A package name as a key segment: its slug (readable) and 8 hex digits of its SHA-256 (the
/// exact name, so `a:b` and `a/b` stay apart). The name comes from the scanned image: nothing
/// of it but the slug reaches the key (and the marker).
fn package_segment(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    format!("{}~{hash}", slugify(name))
}

/// The family of a resource for package grouping: an ECR image's repository (every digest,
/// every tag of the image: `arn:aws:ecr:REGION:ACCOUNT:repository/NAME`), else the resource id.
fn image_family(resource_id: &str) -> &str {
    match resource_id.find(":repository/") {
        Some(i) if resource_id.starts_with("arn:") => {
            let rest = &resource_id[i + ":repository/".len()..];
            // The repository name may contain `/`; the digest starts at `/sha256:`.
            match rest.find("/sha256:") {
                Some(j) => &resource_id[..i + ":repository/".len() + j],
                None => resource_id,
            }
        }
        _ => resource_id,
    }
}

fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ':' | '/' | '.' | '_' | '-' | '*' | '@' | '+' | '=' | ',' | '$' | '#' | '~'
        )
}

/// Percent-encodes every character outside the safe set (and `-` when it would start a `--`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_dash = false;
    for c in s.chars() {
        let dash = c == '-';
        if is_safe(c) && !(dash && prev_dash) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        prev_dash = dash && out.ends_with('-');
    }
    out
}

/// Lower-case label-safe slug: `[a-z0-9._-]`, other runs become `-`.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| encode_segment(p))
        .collect::<Vec<_>>()
        .join("|")
}

/// The (kind, what) prefix of a finding's key, without account, region and resource.
fn problem(f: &Finding) -> (String, String) {
    match &f.source {
        Source::Control(c) => ("control".into(), c.id.clone()),
        Source::GuardDuty { finding_type } => ("guardduty".into(), finding_type.clone()),
        Source::Inspector { vulnerability_id } => ("inspector".into(), vulnerability_id.clone()),
        Source::Product {
            product,
            generator_id,
        } => (format!("product:{product}"), generator_id.clone()),
    }
}

impl StableKey {
    pub fn for_finding(f: &Finding) -> StableKey {
        let (kind, what) = problem(f);
        StableKey(join(&[
            &kind,
            &what,
            &f.account_id,
            &f.region,
            &f.primary_resource().id,
        ]))
    }
}

impl GroupKey {
    /// The issue group a finding belongs to.
    pub fn for_finding(f: &Finding, grouping: &Grouping) -> GroupKey {
        let primary = f.primary_resource();
        let family = grouping.family_tags.iter().find_map(|t| {
            primary
                .tags
                .get(t)
                .filter(|v| !v.is_empty())
                .map(|v| (t, v))
        });
        // Per-vulnerability products: one issue per product, vulnerable package and image or
        // instance family.
        if let Some(package) = vulnerable_package(f)
            && grouping.vulnerabilities == VulnerabilityGrouping::Package
        {
            let fam = match family {
                Some((tag, value)) => format!("family:{tag}={value}"),
                None => image_family(&primary.id).to_string(),
            };
            return GroupKey(join(&[
                "package",
                &f.product,
                &package_segment(package),
                &f.account_id,
                &f.region,
                &fam,
            ]));
        }
        match family {
            Some((tag, value)) => {
                let (kind, what) = problem(f);
                let fam = format!("family:{tag}={value}");
                GroupKey(join(&[&kind, &what, &f.account_id, &f.region, &fam]))
            }
            None => GroupKey(StableKey::for_finding(f).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_segment_table() {
        let cases = [
            ("arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket"),
            ("a b", "a%20b"),
            ("x|y", "x%7Cy"),
            ("<!--x-->", "%3C%21-%2Dx-%2D%3E"),
            ("é", "%C3%A9"),
            ("a--b", "a-%2Db"),
            ("", ""),
        ];
        for (input, want) in cases {
            let got = encode_segment(input);
            assert_eq!(got, want, "encode_segment({input:?})");
            assert!(!got.contains("--"), "{got} must not contain --");
        }
    }

    #[test]
    fn slugify_table() {
        let cases = [
            ("GuardDuty", "guardduty"),
            ("Security Hub", "security-hub"),
            ("aquasecurity", "aquasecurity"),
            ("  !! ", "unknown"),
            ("Cloud Custodian v0.8", "cloud-custodian-v0.8"),
        ];
        for (input, want) in cases {
            assert_eq!(slugify(input), want, "slugify({input:?})");
        }
    }

    #[test]
    fn image_family_table() {
        let cases = [
            (
                "arn:aws:ecr:us-east-1:644160558196:repository/jenkins/sha256:85942973eaeb",
                "arn:aws:ecr:us-east-1:644160558196:repository/jenkins",
            ),
            (
                "arn:aws:ecr:us-east-1:1:repository/team/app/sha256:abc",
                "arn:aws:ecr:us-east-1:1:repository/team/app",
            ),
            (
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
            ),
            (
                "arn:aws:ecr:us-east-1:1:repository/app",
                "arn:aws:ecr:us-east-1:1:repository/app",
            ),
        ];
        for (id, want) in cases {
            assert_eq!(image_family(id), want, "{id}");
        }
    }

    /// Several CVEs of one package on one image (any digest) → one group; another package,
    /// another image, or `vulnerabilities = "vulnerability"` → another.
    #[test]
    fn inspector_findings_group_by_package_and_image() {
        use crate::domain::Severity;
        use crate::domain::sample::control_finding;
        let finding = |cve: &str, packages: &[&str], resource: &str| {
            let mut f = control_finding("X", "t", Severity::High);
            f.product = "aws/inspector".into();
            f.source = Source::Inspector {
                vulnerability_id: cve.into(),
            };
            f.vulnerabilities = vec![crate::domain::Vulnerability {
                id: cve.into(),
                packages: packages
                    .iter()
                    .map(|p| crate::domain::VulnerablePackage {
                        name: p.to_string(),
                        installed_version: None,
                        fixed_in_version: None,
                        package_manager: None,
                    })
                    .collect(),
                cvss_score: None,
                cvss_version: None,
                fix_available: None,
            }];
            f.resources[0].id = resource.into();
            f.resources[0].tags.clear();
            f
        };
        let image = "arn:aws:ecr:us-east-1:111111111111:repository/jenkins/sha256:aaa";
        let rebuilt = "arn:aws:ecr:us-east-1:111111111111:repository/jenkins/sha256:bbb";
        let other = "arn:aws:ecr:us-east-1:111111111111:repository/checkout/sha256:aaa";
        let g = Grouping::default();
        let key = |f: &Finding| GroupKey::for_finding(f, &g);
        let a = key(&finding(
            "CVE-2021-44228",
            &["log4j-core", "log4j-api"],
            image,
        ));
        assert_eq!(
            a,
            key(&finding(
                "CVE-2021-45046",
                &["log4j-api", "log4j-core"],
                image
            ))
        );
        assert_eq!(a, key(&finding("CVE-2021-45105", &["log4j-api"], rebuilt)));
        assert!(a.0.starts_with("package|aws/inspector|log4j-api~"), "{a}");
        assert!(GroupKey::is_well_formed(&a.0));
        assert_ne!(a, key(&finding("CVE-2020-28196", &["krb5"], image)));
        assert_ne!(a, key(&finding("CVE-2021-44228", &["log4j-api"], other)));
        // A package name is untrusted (it comes from the scanned image): only its slug and a
        // hash reach the key.
        let hostile = key(&finding("CVE-1", &["evil`|`<img> acme/x#1"], image));
        assert!(
            !hostile.0.contains("acme/x#1") && !hostile.0.contains('<'),
            "{hostile}"
        );
        assert_ne!(
            hostile,
            key(&finding("CVE-1", &["evil'|'<img> acme/x#1"], image))
        );
        // Without packages (Inspector Classic): by stable key, as before.
        let classic = finding("rules/x", &[], image);
        assert_eq!(key(&classic).0, StableKey::for_finding(&classic).0);
        let per_cve = Grouping {
            vulnerabilities: VulnerabilityGrouping::Vulnerability,
            ..Grouping::default()
        };
        let f = finding("CVE-2021-44228", &["log4j-api"], image);
        assert_eq!(
            GroupKey::for_finding(&f, &per_cve).0,
            StableKey::for_finding(&f).0
        );
    }

    #[test]
    fn well_formed_accepts_encoded_keys() {
        let k = join(&[
            "control",
            "S3.1",
            "111111111111",
            "us-east-1",
            "arn:aws:s3:::a b",
        ]);
        assert!(GroupKey::is_well_formed(&k), "{k}");
        assert!(!GroupKey::is_well_formed("a b"));
        assert!(!GroupKey::is_well_formed("x-->y<"));
        assert!(!GroupKey::is_well_formed(""));
    }
}
