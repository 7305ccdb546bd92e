//! `[tags]`: where the tag audit reads ignore tags, and how Lever reads tags a finding does not
//! carry.
//!
//! ```toml
//! [tags]
//! regions = ["eu-west-1", "us-east-1"]  # the regions the audit reads (required for the audit)
//! role_name = "LeverTagAuditReadOnly"   # the role assumed in each account (member-role-stackset.yaml)
//! partition = "aws"                     # aws, aws-us-gov or aws-cn: the role ARN's partition
//! accounts = ["111111111111"]           # default: every [accounts.ID] of lever.toml
//! audit_every = "1d"                    # lever serve runs the audit this often; "off" (default): never
//! requests_per_second = 5               # GetResources pace, all accounts and regions together
//! cache_ttl = "15m"                     # how long tags read for a finding's resources are trusted
//! ```
//!
//! The ignore tag's key itself stays `[policy] ignore_tag`.

use chrono::Duration;
use serde::Serialize;

use super::duration::parse_duration;
use super::spanned::{Diag, Table};

/// The member role's default name (infra/cloudformation/member-role-stackset.yaml).
pub const DEFAULT_ROLE_NAME: &str = "LeverTagAuditReadOnly";
/// GetResources calls per second by default. AWS does not publish the Tagging API's rate;
/// it throttles GetResources at a few calls a second per account and region, so Lever keeps
/// to 5 a second for all accounts together and lets the SDK retry a throttled call.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
/// How long tags read from the Tagging API for a finding's resources are trusted.
pub const DEFAULT_CACHE_TTL: Duration = Duration::minutes(15);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagSettings {
    pub regions: Vec<String>,
    pub role_name: String,
    pub partition: String,
    /// Empty: every account of `[accounts]`.
    pub accounts: Vec<String>,
    /// `None`: `lever serve` does not schedule the audit.
    #[serde(skip)]
    pub audit_every: Option<Duration>,
    pub requests_per_second: u32,
    #[serde(skip)]
    pub cache_ttl: Duration,
}

impl Default for TagSettings {
    fn default() -> Self {
        TagSettings {
            regions: Vec::new(),
            role_name: DEFAULT_ROLE_NAME.into(),
            partition: "aws".into(),
            accounts: Vec::new(),
            audit_every: None,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }
}

impl TagSettings {
    /// The role assumed in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        )
    }
}

fn is_region(s: &str) -> bool {
    // eu-west-1, us-gov-west-1, cn-north-1, ap-southeast-2
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn duration(d: &mut Diag, t: &mut Table, key: &str, off_allowed: bool) -> Option<Option<Duration>> {
    let s = t.string(d, key)?;
    let text = s.get_ref().trim();
    if off_allowed && (text == "off" || text == "never") {
        return Some(None);
    }
    match parse_duration(text) {
        Ok(v) if v >= Duration::minutes(1) => Some(Some(v)),
        Ok(_) => {
            d.error(s.span(), format!("tags.{key} must be at least 1m"));
            None
        }
        Err(e) => {
            d.error(s.span(), format!("tags.{key}: {e}"));
            None
        }
    }
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> TagSettings {
    let mut out = TagSettings::default();
    let Some(mut t) = root.table(d, "tags") else {
        return out;
    };
    if let Some(list) = t.string_list(d, "regions") {
        for r in list {
            if is_region(r.get_ref()) {
                out.regions.push(r.into_inner());
            } else {
                d.error(
                    r.span(),
                    format!(
                        "tags.regions: {:?} is not an AWS region (e.g. eu-west-1)",
                        r.get_ref()
                    ),
                );
            }
        }
    }
    if let Some(s) = t.string(d, "role_name") {
        let ok = !s.get_ref().is_empty()
            && s.get_ref().len() <= 64
            && s.get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if ok {
            out.role_name = s.into_inner();
        } else {
            d.error(
                s.span(),
                format!(
                    "tags.role_name: {:?} is not an IAM role name (1-64 of letters, digits and +=,.@_-)",
                    s.get_ref()
                ),
            );
        }
    }
    if let Some(s) = t.string(d, "partition") {
        match s.get_ref().as_str() {
            "aws" | "aws-us-gov" | "aws-cn" => out.partition = s.into_inner(),
            other => d.error(
                s.span(),
                format!("tags.partition: unknown partition {other:?} (expected aws, aws-us-gov or aws-cn)"),
            ),
        }
    }
    if let Some(list) = t.string_list(d, "accounts") {
        for a in list {
            let id = a.get_ref();
            if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
                out.accounts.push(a.into_inner());
            } else {
                d.error(
                    a.span(),
                    format!("tags.accounts: account id {id:?} must be 12 digits"),
                );
            }
        }
    }
    let every_span = t.get("audit_every").map(|v| v.span());
    if let Some(v) = duration(d, &mut t, "audit_every", true) {
        out.audit_every = v;
    }
    if let Some(span) = every_span
        && out.audit_every.is_some()
        && out.regions.is_empty()
    {
        d.error(
            span,
            "tags.audit_every: the tag audit needs tags.regions (the regions it reads, e.g. regions = [\"eu-west-1\"])",
        );
    }
    if let Some(Some(v)) = duration(d, &mut t, "cache_ttl", false) {
        out.cache_ttl = v;
    }
    if let Some(n) = t.integer(d, "requests_per_second", 1, 100) {
        out.requests_per_second = n.into_inner() as u32;
    }
    t.finish(d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_table() {
        let rows = [
            ("eu-west-1", true),
            ("us-gov-west-1", true),
            ("cn-north-1", true),
            ("eu-west", false),
            ("EU-WEST-1", false),
            ("eu--1", false),
            ("", false),
        ];
        let wrong: Vec<String> = rows
            .iter()
            .filter(|(r, want)| is_region(r) != *want)
            .map(|(r, want)| format!("{r:?}: expected {want}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn role_arn_names_partition_account_and_role() {
        let s = TagSettings {
            partition: "aws-us-gov".into(),
            ..TagSettings::default()
        };
        assert_eq!(
            s.role_arn("111111111111"),
            "arn:aws-us-gov:iam::111111111111:role/LeverTagAuditReadOnly"
        );
    }
}
