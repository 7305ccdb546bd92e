//! `[exclusions]`: findings that never open an issue, each with its reason.
//!
//! ```toml
//! [exclusions]
//! control_tower = true                 # the default: resources AWS Control Tower manages
//!
//! [[exclusions.rules]]
//! accounts = ["111111111111"]          # optional: every account when absent
//! product = "aws/inspector"            # optional matchers; every one given must match:
//! control = "EC2.19"                   #   company/product, product name or slug; control id;
//! resource_type = "AwsEc2SecurityGroup" #  primary resource type; primary resource id (a
//! arn = "arn:aws:ec2:*:*:security-group/sg-legacy*"  # glob: * and ?)
//! reason = "legacy VPC, decommissioned in Q1"        # required, shown by `lever plan`
//! ```
//!
//! The built-in Control Tower exclusion matches the stacks `StackSet-AWSControlTowerBP-*`,
//! the roles `aws-controltower-*` and `AWSControlTower*` (any path) and the buckets
//! `aws-controltower-*`: automation manages them, not tickets. `control_tower = false` turns
//! it off.

use serde::Serialize;

use super::spanned::{Diag, Table};

/// The primary-resource globs of the built-in Control Tower exclusion.
pub const CONTROL_TOWER: &[&str] = &[
    "arn:*:cloudformation:*:*:stack/StackSet-AWSControlTowerBP-*",
    "arn:*:iam::*:role/aws-controltower-*",
    "arn:*:iam::*:role/AWSControlTower*",
    "arn:*:iam::*:role/*/AWSControlTower*",
    "arn:*:s3:::aws-controltower-*",
];

/// One `[[exclusions.rules]]` entry. Every matcher given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExclusionRule {
    /// Empty: every account.
    pub accounts: Vec<String>,
    pub product: Option<String>,
    pub control: Option<String>,
    pub resource_type: Option<String>,
    /// A glob over the primary resource's id (`*`, `?`).
    pub arn: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusions {
    /// The built-in Control Tower exclusion (default on).
    pub control_tower: bool,
    pub rules: Vec<ExclusionRule>,
}

impl Default for Exclusions {
    fn default() -> Self {
        Exclusions {
            control_tower: true,
            rules: Vec::new(),
        }
    }
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> Exclusions {
    let mut out = Exclusions::default();
    let Some(mut t) = root.table(d, "exclusions") else {
        return out;
    };
    if let Some(b) = t.boolean(d, "control_tower") {
        out.control_tower = b.into_inner();
    }
    for mut r in t.tables(d, "rules").unwrap_or_default() {
        let path = r.path.clone();
        let mut rule = ExclusionRule::default();
        for a in r.string_list(d, "accounts").unwrap_or_default() {
            let id = a.get_ref();
            if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                d.error(
                    a.span(),
                    format!("{path}.accounts: {id:?} must be 12 digits"),
                );
            } else {
                rule.accounts.push(id.clone());
            }
        }
        let text = |r: &mut Table, d: &mut Diag, key: &str| {
            r.string(d, key).and_then(|s| {
                if s.get_ref().trim().is_empty() {
                    d.error(s.span(), format!("{path}.{key} must not be empty"));
                    None
                } else {
                    Some(s.into_inner())
                }
            })
        };
        rule.product = text(&mut r, d, "product");
        rule.control = text(&mut r, d, "control");
        rule.resource_type = text(&mut r, d, "resource_type");
        rule.arn = text(&mut r, d, "arn");
        match text(&mut r, d, "reason") {
            Some(reason) => rule.reason = reason,
            None if r.get("reason").is_none() => d.error(
                r.span.clone(),
                format!("{path} needs a reason = \"...\" (shown wherever the exclusion applies)"),
            ),
            None => {}
        }
        let matchers = [&rule.product, &rule.control, &rule.resource_type, &rule.arn];
        if matchers.iter().all(|m| m.is_none()) {
            d.error(
                r.span.clone(),
                format!(
                    "{path} needs at least one of product, control, resource_type or arn (an exclusion of everything is mode = \"off\")"
                ),
            );
        }
        r.finish(d);
        out.rules.push(rule);
    }
    t.finish(d);
    out
}
