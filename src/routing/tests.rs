use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::config::Config;
use crate::domain::Severity;
use crate::domain::sample::control_finding;

fn demo() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"))
        .expect("demo config is valid")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn unknown(_: &RepoName) -> Option<bool> {
    None
}

type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a str,
    &'a [&'a str],
    Option<usize>,
);

#[test]
#[rustfmt::skip]
fn demo_owners_table() {
    let cfg = demo();
    // (case, account, resource id, tags, now, repo, chain, line)
    let cases: Vec<Case> = vec![
        ("unknown account → security", "999999999999", "arn:aws:s3:::x", &[], "2026-11-03T00:00:00Z", "acme/security", &["sam"], Some(3)),
        ("prod week 1 → alice", "111111111111", "arn:aws:s3:::x", &[], "2026-11-03T00:00:00Z", "acme/payments", &["alice", "sam"], Some(4)),
        ("prod week 2 → bob", "111111111111", "arn:aws:s3:::x", &[], "2026-11-10T00:00:00Z", "acme/payments", &["bob", "sam"], Some(4)),
        ("staging", "222222222222", "arn:aws:s3:::x", &[], "2026-11-03T00:00:00Z", "acme/payments", &["alice", "sam"], Some(5)),
        ("logs bucket in prod → platform", "111111111111", "arn:aws:s3:::acme-logs-prod", &[], "2026-11-10T00:00:00Z", "acme/platform", &["erin", "sam"], Some(6)),
        ("logs bucket elsewhere → platform", "999999999999", "arn:aws:s3:::acme-logs-x", &[], "2026-11-03T00:00:00Z", "acme/platform", &["dave", "sam"], Some(6)),
        ("ledger tag in prod → carol", "111111111111", "arn:aws:s3:::x", &[("team", "ledger")], "2026-11-03T00:00:00Z", "acme/ledger", &["carol", "sam"], Some(7)),
        ("ledger tag in staging: line 7 needs prod", "222222222222", "arn:aws:s3:::x", &[("team", "ledger")], "2026-11-03T00:00:00Z", "acme/payments", &["alice", "sam"], Some(5)),
        ("ledger logs bucket: last line wins", "111111111111", "arn:aws:s3:::acme-logs-1", &[("team", "ledger")], "2026-11-03T00:00:00Z", "acme/ledger", &["carol", "sam"], Some(7)),
        ("other tag value", "111111111111", "arn:aws:s3:::x", &[("team", "ledgers")], "2026-11-03T00:00:00Z", "acme/payments", &["alice", "sam"], Some(4)),
        ("before rotation start → first member", "111111111111", "arn:aws:s3:::x", &[], "2026-01-01T00:00:00Z", "acme/payments", &["alice", "sam"], Some(4)),
    ];
    for (name, account, resource, tags, now, repo, chain, line) in cases {
        let mut f = control_finding("S3.1", "t", Severity::Critical);
        f.account_id = account.into();
        f.resources[0].id = resource.into();
        for (k, v) in tags {
            f.resources[0].tags.insert(k.to_string(), v.to_string());
        }
        let r = route(&f, &cfg, t(now), &unknown);
        assert_eq!(r.repo.to_string(), repo, "{name}");
        assert_eq!(r.chain, chain.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{name}");
        assert_eq!(r.rule_line, line, "{name}");
        assert_eq!(r.owner(), chain.first().copied(), "{name}");
    }
}

#[test]
fn any_resource_matches_resource_and_tag_matchers() {
    let cfg = demo();
    let mut f = control_finding("S3.1", "t", Severity::Critical);
    f.account_id = "111111111111".into();
    let mut second = f.resources[0].clone();
    second.id = "arn:aws:s3:::acme-logs-2".into();
    f.resources.push(second);
    assert_eq!(
        route(&f, &cfg, t("2026-11-03T00:00:00Z"), &unknown)
            .repo
            .to_string(),
        "acme/platform"
    );
    f.resources[0].tags.insert("team".into(), "ledger".into());
    assert_eq!(
        route(&f, &cfg, t("2026-11-03T00:00:00Z"), &unknown)
            .repo
            .to_string(),
        "acme/ledger"
    );
}

#[test]
fn public_repository_goes_to_fallback_unless_allowed() {
    let mut cfg = demo();
    let mut f = control_finding("S3.1", "t", Severity::Critical);
    f.account_id = "111111111111".into();
    let public_payments = |r: &RepoName| Some(r.to_string() == "acme/payments");
    let r = route(&f, &cfg, t("2026-11-03T00:00:00Z"), &public_payments);
    assert_eq!(r.repo.to_string(), "acme/security");
    assert_eq!(r.chain, vec!["sam".to_string()]);
    assert_eq!(r.rule_line, Some(4));
    assert!(
        r.warnings[0].contains("public repository acme/payments"),
        "{:?}",
        r.warnings
    );

    cfg.settings.github.public_repos =
        crate::config::PublicRepos::Allow(vec![RepoName::parse("acme/payments").unwrap()]);
    let r = route(&f, &cfg, t("2026-11-03T00:00:00Z"), &public_payments);
    assert_eq!(r.repo.to_string(), "acme/payments");
    assert!(r.warnings.is_empty());
}

#[test]
fn no_matching_line_goes_to_fallback_with_warning() {
    let mut cfg = demo();
    cfg.owners.rules.retain(|r| r.line != 3); // drop the `*` line
    let f = control_finding("S3.1", "t", Severity::Critical);
    let mut f = f;
    f.account_id = "999999999999".into();
    let r = route(&f, &cfg, t("2026-11-03T00:00:00Z"), &unknown);
    assert_eq!(r.repo.to_string(), "acme/security");
    assert_eq!(r.rule_line, None);
    assert_eq!(r.chain, vec!["sam".to_string()]);
    assert!(r.warnings[0].contains("no OWNERS line matches"));
}
