use std::path::Path;

use chrono::TimeZone;

use super::*;
use crate::domain::sample::control_finding;
use crate::domain::{ComplianceStatus, WorkflowStatus};

const PROD: &str = "111111111111";
const STAGING: &str = "222222222222";
const DEV: &str = "333333333333";

fn config(prod_extra: &str) -> Config {
    let prod_mode = if prod_extra.starts_with("mode") {
        ""
    } else {
        "mode = \"enforce\""
    };
    let toml = format!(
        r#"
[github]
fallback_repo = "acme/security"
fallback_assignees = ["@sam"]

[accounts.{PROD}]
name = "payments-prod"
environment = "production"
min_severity = "HIGH"
{prod_mode}
{prod_extra}

[accounts.{STAGING}]
name = "payments-staging"
environment = "staging"
min_severity = "CRITICAL"
mode = "enforce"

[accounts.{DEV}]
name = "payments-dev"
environment = "development"
min_severity = "INFORMATIONAL"
mode = "off"
"#
    );
    let owners = format!(
        "*  acme/security  @sam\n\
         account:{PROD}  acme/payments  @alice\n\
         account:{STAGING}  acme/payments  @alice\n\
         account:{DEV}  acme/payments  @alice\n\
         account:{STAGING} tag:team=ledger  acme/ledger  @carol\n"
    );
    Config::from_texts(
        Path::new("."),
        Some(("lever.toml".into(), toml)),
        Some(("OWNERS".into(), owners)),
        vec![],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn finding(control: &str, account: &str, severity: Severity, resource: &str) -> Finding {
    let mut f = control_finding(control, &format!("{control} sample"), severity);
    f.account_id = account.into();
    f.id = format!("{account}/{control}/{resource}");
    f.resources[0].id = format!("arn:aws:s3:::{resource}");
    f
}

fn payments() -> RepoName {
    RepoName::parse("acme/payments").unwrap()
}

fn exception(control: &str, env: &str, repo: &str, expires_days: i64) -> ApprovedException {
    ApprovedException {
        control_id: control.into(),
        repo: RepoName::parse(repo).unwrap(),
        environment: env.into(),
        approver: "cto-user".into(),
        expires_at: now() + chrono::Duration::days(expires_days),
    }
}

type Case = (
    &'static str,
    &'static str,
    fn() -> Vec<Finding>,
    fn() -> Vec<ApprovedException>,
    // control ids that would become issues
    &'static [&'static str],
);

#[test]
#[rustfmt::skip]
fn projection_table() {
    let none: fn() -> Vec<ApprovedException> = Vec::new;
    let cases: Vec<Case> = vec![
        ("a staging finding at HIGH blocks a production release whose minimum is HIGH", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")], none, &["EC2.19"]),
        ("below production's minimum: nothing", "",
         || vec![finding("S3.5", STAGING, Severity::Medium, "b")], none, &[]),
        ("a finding staging itself skips (below its CRITICAL) still counts for production", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1"), finding("IAM.6", STAGING, Severity::Critical, "acct")],
         none, &["IAM.6", "EC2.19"]),
        ("an account whose mode is off (development) still shows its findings", "",
         || vec![finding("S3.1", DEV, Severity::High, "dev-bucket")], none, &["S3.1"]),
        ("an approved production exception for the same control and repository covers it", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")],
         || vec![exception("EC2.19", "production", "acme/payments", 30)], &[]),
        ("an exception of another repository does not", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")],
         || vec![exception("EC2.19", "production", "acme/ledger", 30)], &["EC2.19"]),
        ("an exception of another control does not", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")],
         || vec![exception("EC2.18", "production", "acme/payments", 30)], &["EC2.19"]),
        ("an exception approved in staging does not", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")],
         || vec![exception("EC2.19", "staging", "acme/payments", 30)], &["EC2.19"]),
        ("an expired exception does not", "",
         || vec![finding("EC2.19", STAGING, Severity::High, "sg-1")],
         || vec![exception("EC2.19", "production", "acme/payments", -1)], &["EC2.19"]),
        ("a lever:ignore resource, where production honours the tag, does not", "ignore_tags = \"always\"",
         || { let mut f = finding("EC2.19", STAGING, Severity::High, "sg-1"); f.resources[0].tags.insert("lever:ignore".into(), "load test rig".into()); vec![f] },
         none, &[]),
        ("a lever:ignore resource where production honours it only in ramp-up: still an issue", "",
         || { let mut f = finding("EC2.19", STAGING, Severity::High, "sg-1"); f.resources[0].tags.insert("lever:ignore".into(), "load test rig".into()); vec![f] },
         none, &["EC2.19"]),
        ("another repository's resources are excluded", "",
         || { let mut f = finding("EC2.19", STAGING, Severity::High, "sg-1"); f.resources[0].tags.insert("team".into(), "ledger".into()); vec![f] },
         none, &[]),
        ("findings in the target environment's own accounts are excluded", "",
         || vec![finding("EC2.19", PROD, Severity::Critical, "sg-1")], none, &[]),
        ("unrouted accounts go to the fallback repository, not this one", "",
         || vec![finding("EC2.19", "444444444444", Severity::Critical, "sg-1")], none, &[]),
        ("passed, archived and suppressed findings are not open problems", "",
         || {
             let mut a = finding("S3.1", STAGING, Severity::Critical, "a");
             a.compliance = Some(ComplianceStatus::Passed);
             let mut b = finding("S3.2", STAGING, Severity::Critical, "b");
             b.record_state = crate::domain::RecordState::Archived;
             let mut c = finding("S3.3", STAGING, Severity::Critical, "c");
             c.workflow = WorkflowStatus::Suppressed;
             vec![a, b, c]
         }, none, &[]),
        ("production off: nothing would open", "mode = \"off\"",
         || vec![finding("IAM.6", STAGING, Severity::Critical, "acct")], none, &[]),
    ];
    let mut failures = Vec::new();
    for (name, prod_extra, findings, exceptions, want) in cases {
        let cfg = config(prod_extra);
        let p = project(&cfg, &findings(), &exceptions(), &payments(), "production", now()).unwrap();
        let got: Vec<&str> = p.issues.iter().map(|i| i.control_id.as_deref().unwrap_or("-")).collect();
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn counts_covered_and_considered() {
    let cfg = config("");
    let findings = vec![
        finding("EC2.19", STAGING, Severity::High, "sg-1"),
        finding("IAM.6", STAGING, Severity::Critical, "acct"),
        finding("S3.5", STAGING, Severity::Low, "b"),
        finding("S3.1", PROD, Severity::Critical, "p"),
    ];
    let ex = [exception("IAM.6", "production", "acme/payments", 10)];
    let p = project(&cfg, &findings, &ex, &payments(), "production", now()).unwrap();
    assert_eq!(p.considered, 3);
    assert_eq!(p.covered, 1);
    assert_eq!(p.target_accounts, vec![PROD.to_string()]);
    assert_eq!(p.min_severity, Severity::High);
    assert!(p.would_ticket());
    let issue = &p.issues[0];
    assert_eq!(issue.control_id.as_deref(), Some("EC2.19"));
    assert_eq!(issue.findings[0].environment, "staging");
    assert!(
        issue.findings[0].detail.contains("minimum HIGH"),
        "{}",
        issue.findings[0].detail
    );
    assert!(!issue.informational);
    assert!(
        issue
            .link
            .as_deref()
            .is_some_and(|l| l.starts_with("https://docs.aws.amazon.com/")),
        "{:?}",
        issue.link
    );
}

#[test]
fn groups_like_lever_and_orders_most_severe_first() {
    let cfg = config("");
    // Two standards reporting the same control on the same resource: one issue.
    let a = finding("EC2.19", STAGING, Severity::High, "sg-1");
    let mut b = a.clone();
    b.id = "other-standard".into();
    let c = finding("IAM.6", STAGING, Severity::Critical, "acct");
    let p = project(&cfg, &[a, b, c], &[], &payments(), "production", now()).unwrap();
    assert_eq!(p.issues.len(), 2);
    assert_eq!(p.issues[0].control_id.as_deref(), Some("IAM.6"));
    assert_eq!(p.issues[1].findings.len(), 2);
}

#[test]
fn ramp_up_target_is_informational() {
    let cfg = config("mode = \"ramp-up\"");
    let p = project(
        &cfg,
        &[finding("EC2.19", STAGING, Severity::High, "sg-1")],
        &[],
        &payments(),
        "production",
        now(),
    )
    .unwrap();
    assert!(p.issues[0].informational);
}

#[test]
fn unknown_environment_names_the_known_ones() {
    let cfg = config("");
    let e = project(&cfg, &[], &[], &payments(), "prod", now()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("\"prod\""), "{text}");
    assert!(text.contains("production, staging"), "{text}");
}
