//! Exclusions: which findings never open an issue, and why. Pure.

use wildmatch::WildMatch;

use super::{Reason, Verdict, skip};
use crate::config::exclusions::{CONTROL_TOWER, ExclusionRule, Exclusions};
use crate::domain::Finding;

/// Whether `rule` matches `f`: every matcher it gives holds (case-insensitive names; the ARN
/// glob is exact).
pub fn matches(rule: &ExclusionRule, f: &Finding) -> bool {
    let primary = f.primary_resource();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    (rule.accounts.is_empty() || rule.accounts.contains(&f.account_id))
        && rule.product.as_deref().is_none_or(|p| {
            eq(p, &f.product)
                || f.product_name.as_deref().is_some_and(|n| eq(p, n))
                || eq(p, &f.product_slug())
        })
        && rule
            .control
            .as_deref()
            .is_none_or(|c| f.control_id().is_some_and(|id| eq(c, id)))
        && rule
            .resource_type
            .as_deref()
            .is_none_or(|t| primary.kind.as_deref().is_some_and(|k| eq(t, k)))
        && rule
            .arn
            .as_deref()
            .is_none_or(|g| WildMatch::new(g).matches(&primary.id))
}

/// Whether AWS Control Tower manages `f`'s primary resource (see [`CONTROL_TOWER`]).
pub fn control_tower_managed(f: &Finding) -> bool {
    let id = &f.primary_resource().id;
    CONTROL_TOWER.iter().any(|g| WildMatch::new(g).matches(id))
}

/// The verdict of the first exclusion that matches `f`: the configured rules first (in order),
/// then the built-in Control Tower exclusion when it is on. `None`: not excluded.
pub fn excluded(f: &Finding, exclusions: &Exclusions) -> Option<Verdict> {
    if let Some(rule) = exclusions.rules.iter().find(|r| matches(r, f)) {
        return Some(skip(Reason::Excluded, format!("excluded: {}", rule.reason)));
    }
    if exclusions.control_tower && control_tower_managed(f) {
        return Some(skip(
            Reason::ControlTower,
            format!(
                "managed by Control Tower ({}); [exclusions] control_tower = false tracks it",
                f.primary_resource().id
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use crate::domain::sample::control_finding;

    fn finding(resource: &str, kind: &str) -> Finding {
        let mut f = control_finding("EC2.19", "t", Severity::Critical);
        f.resources[0].id = resource.into();
        f.resources[0].kind = Some(kind.into());
        f
    }

    fn rule(set: fn(&mut ExclusionRule)) -> ExclusionRule {
        let mut r = ExclusionRule {
            reason: "legacy".into(),
            ..Default::default()
        };
        set(&mut r);
        r
    }

    const SG: &str = "arn:aws:ec2:us-east-1:111111111111:security-group/sg-legacy01";

    /// Each matcher, alone and together; the account filter.
    #[test]
    #[rustfmt::skip]
    fn matcher_table() {
        let f = finding(SG, "AwsEc2SecurityGroup");
        let account = f.account_id.clone();
        let cases: Vec<(&str, ExclusionRule, bool)> = vec![
            ("control", rule(|r| r.control = Some("EC2.19".into())), true),
            ("control, any case", rule(|r| r.control = Some("ec2.19".into())), true),
            ("other control", rule(|r| r.control = Some("EC2.18".into())), false),
            ("product company/product", rule(|r| r.product = Some("aws/securityhub".into())), true),
            ("product slug", rule(|r| r.product = Some("securityhub".into())), true),
            ("other product", rule(|r| r.product = Some("aws/inspector".into())), false),
            ("resource type", rule(|r| r.resource_type = Some("AwsEc2SecurityGroup".into())), true),
            ("other resource type", rule(|r| r.resource_type = Some("AwsS3Bucket".into())), false),
            ("arn glob", rule(|r| r.arn = Some("arn:aws:ec2:*:*:security-group/sg-legacy*".into())), true),
            ("arn glob, ?", rule(|r| r.arn = Some("arn:aws:ec2:us-east-1:111111111111:security-group/sg-legacy0?".into())), true),
            ("arn glob elsewhere", rule(|r| r.arn = Some("arn:aws:ec2:*:*:security-group/sg-prod*".into())), false),
            ("all matchers hold", rule(|r| { r.control = Some("EC2.19".into()); r.arn = Some("*sg-legacy*".into()) }), true),
            ("one of two fails", rule(|r| { r.control = Some("EC2.19".into()); r.arn = Some("*sg-prod*".into()) }), false),
            ("other account only", rule(|r| { r.accounts = vec!["999999999999".into()]; r.control = Some("EC2.19".into()) }), false),
        ];
        for (name, r, want) in cases {
            assert_eq!(matches(&r, &f), want, "{name}");
        }
        let mine = rule(|r| r.control = Some("EC2.19".into()));
        let mine = ExclusionRule { accounts: vec![account], ..mine };
        assert!(matches(&mine, &f), "its own account");
    }

    #[test]
    #[rustfmt::skip]
    fn control_tower_table() {
        let cases = [
            ("arn:aws:cloudformation:us-east-1:111111111111:stack/StackSet-AWSControlTowerBP-BASELINE-CONFIG-abc/0f1e", true),
            ("arn:aws:iam::111111111111:role/aws-controltower-AdministratorExecutionRole", true),
            ("arn:aws:iam::111111111111:role/AWSControlTowerExecution", true),
            ("arn:aws:iam::111111111111:role/service-role/AWSControlTowerAdmin", true),
            ("arn:aws:s3:::aws-controltower-logs-111111111111-us-east-1", true),
            ("arn:aws-us-gov:s3:::aws-controltower-s3-access-logs-111111111111", true),
            ("arn:aws:s3:::acme-controltower-notes", false),
            ("arn:aws:iam::111111111111:role/payments-deployer", false),
            ("arn:aws:cloudformation:us-east-1:111111111111:stack/StackSet-payments-baseline/0f1e", false),
        ];
        for (id, want) in cases {
            assert_eq!(control_tower_managed(&finding(id, "AwsIamRole")), want, "{id}");
        }
    }

    #[test]
    fn rules_come_first_then_control_tower_which_can_be_turned_off() {
        let ct = finding(
            "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
            "AwsIamRole",
        );
        let mut ex = Exclusions::default();
        let v = excluded(&ct, &ex).unwrap();
        assert_eq!(v.reason, Reason::ControlTower);
        assert!(
            v.detail.starts_with("managed by Control Tower"),
            "{}",
            v.detail
        );
        ex.rules
            .push(rule(|r| r.resource_type = Some("AwsIamRole".into())));
        let v = excluded(&ct, &ex).unwrap();
        assert_eq!(
            (v.reason, v.detail.as_str()),
            (Reason::Excluded, "excluded: legacy")
        );
        let off = Exclusions {
            control_tower: false,
            rules: vec![],
        };
        assert_eq!(
            excluded(&ct, &off),
            None,
            "the override: tracked like any resource"
        );
    }
}
