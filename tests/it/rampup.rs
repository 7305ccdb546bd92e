//! The ramp-up as the seed ran it, with an injected clock: an account in ramp-up until its
//! `enforce_from` date, with a minimum severity that widens on set dates.

use chrono::Duration;
use reqwest::StatusCode;

use crate::support::app::{TestApp, root};

const PAYMENTS: &str = "acme/payments";
const LEDGER: &str = "acme/ledger";

/// The demo configuration with payments-prod (111111111111) in ramp-up at CRITICAL until
/// Wednesday 2026-11-25, HIGH from Friday 2026-11-27; CRITICAL and HIGH must be acknowledged
/// within 4 h and fixed within 14 and 30 days. `extra` is appended (tables only).
pub fn ramp_up_config(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/demo/OWNERS"),
        dir.path().join("OWNERS"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(root().join("examples/demo/lever.toml")).unwrap();
    let toml = toml.replacen(
        "[accounts.111111111111]\nname = \"payments-prod\"\nenvironment = \"production\"\nmin_severity = \"HIGH\"\nmode = \"enforce\"\n",
        "[accounts.111111111111]\nname = \"payments-prod\"\nenvironment = \"production\"\n\
         mode = \"ramp-up\"\nenforce_from = \"2026-11-25\"\nmin_severity = \"CRITICAL\"\n\
         min_severity_from = { \"2026-11-27\" = \"HIGH\" }\n",
        1,
    );
    assert!(
        toml.contains("enforce_from"),
        "the demo's account table moved"
    );
    let toml = format!(
        "{toml}\n[escalation.acknowledge]\ncritical = \"4h\"\nhigh = \"4h\"\n\
         [sla.default]\ncritical = \"14d\"\nhigh = \"30d\"\n{extra}"
    );
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    dir
}

async fn ingest(t: &TestApp, file: &str) {
    let (status, body) = t
        .ingest_file(&root().join("examples/demo/findings").join(file))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The issue numbers in `repo` whose title contains `needle`.
fn issue_titled(t: &TestApp, repo: &str, needle: &str) -> Vec<u64> {
    t.gh.issues(repo)
        .into_iter()
        .filter(|i| i["title"].as_str().unwrap_or("").contains(needle))
        .map(|i| i["number"].as_u64().unwrap())
        .collect()
}

async fn promotion_and_backfill(t: TestApp) {
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    // Ramp-up at CRITICAL: the ledger's RDS.2 (CRITICAL) opens an informational issue; S3.1
    // and EC2.8 (HIGH) are below the threshold.
    ingest(&t, "03-payments-prod-ledger-rds.2.json").await;
    ingest(&t, "01-payments-prod-s3.1-three-standards.json").await;
    ingest(&t, "02-payments-prod-checkout-asg-ec2.8.json").await;
    t.settle().await;
    assert!(
        t.gh.issues(PAYMENTS).is_empty(),
        "HIGH is below the threshold"
    );
    let issues = t.gh.issues(LEDGER);
    assert_eq!(issues.len(), 1, "only the CRITICAL finding opens an issue");
    let n = issues[0]["number"].as_u64().unwrap();
    assert!(t.labels(LEDGER, n).contains(&"ramp-up".to_string()));
    let state = t.app.store.list_groups(None).await.unwrap();
    let rds = state.iter().find(|g| g.issue_number == Some(n)).unwrap();
    assert_eq!(rds.data.mode, "ramp-up");
    assert_eq!(rds.state().due, None, "informational: no fix deadline");
    assert_eq!(rds.state().ack_deadline, None);

    // The day before: nothing changes.
    t.clock.advance(Duration::hours(35)); // 2026-11-24T23:00Z
    t.settle().await;
    assert!(t.comments_by_bot(LEDGER, n).is_empty());

    // 2026-11-25T00:00Z: enforcement starts. The issue is promoted: owned by the ledger's
    // owner (carol), `ramp-up` removed, deadlines started, one comment saying why.
    t.clock.advance(Duration::hours(1));
    t.settle().await;
    assert_eq!(t.assignees(LEDGER, n), ["carol"]);
    assert!(!t.labels(LEDGER, n).contains(&"ramp-up".to_string()));
    let said = t.comments_by_bot(LEDGER, n);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(
        said[0].contains("Ramp-up is over for this account: from 2026-11-25")
            && said[0].contains("@carol owns it")
            && said[0].contains("within 4h")
            && said[0].contains("The fix is due by 2026-12-09"),
        "{}",
        said[0]
    );
    let rds = t.app.store.group(&rds.group_key).await.unwrap().unwrap();
    assert_eq!(rds.data.mode, "enforce");
    assert!(rds.state().ack_deadline.is_some() && rds.state().due.is_some());
    assert!(t.gh.issues(PAYMENTS).is_empty(), "still CRITICAL only");

    // Running the schedule again (a restart re-schedules it) promotes nothing twice.
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    t.settle().await;
    assert_eq!(t.comments_by_bot(LEDGER, n).len(), 1);

    // The deadlines are real: unacknowledged after 4 h, the issue escalates.
    t.clock.advance(Duration::hours(4));
    t.settle().await;
    assert!(
        t.comments_by_bot(LEDGER, n)
            .iter()
            .any(|c| c.contains("did not acknowledge")),
        "{:#?}",
        t.comments_by_bot(LEDGER, n)
    );

    // 2026-11-27T00:00Z: HIGH counts. The stored HIGH findings are backfilled: S3.1 and
    // EC2.8 (one issue for the Auto Scaling group) open enforced issues, without any new
    // event from Security Hub.
    t.clock.set(crate::support::app::t("2026-11-27T00:00:00Z"));
    t.settle().await;
    let s3 = issue_titled(&t, PAYMENTS, "S3");
    let ec2 = issue_titled(&t, PAYMENTS, "EC2");
    assert_eq!(
        (s3.len(), ec2.len()),
        (1, 1),
        "{:#?}",
        t.gh.issues(PAYMENTS)
    );
    assert_eq!(t.gh.issues(PAYMENTS).len(), 2);
    for n in [s3[0], ec2[0]] {
        assert!(!t.labels(PAYMENTS, n).contains(&"ramp-up".to_string()));
        assert_eq!(t.assignees(PAYMENTS, n), ["bob"]);
    }
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.action == "enforced").count(),
        1,
        "one promotion"
    );
    // Nothing more to come: no enforcement job left pending.
    let pending = t
        .app
        .store
        .jobs(Some(lever::store::JobState::Pending))
        .await
        .unwrap();
    assert!(!pending.iter().any(|j| j.job.kind() == "enforcement"));
    t.gh.assert_conformant();
}

#[tokio::test]
async fn ramp_up_is_promoted_on_its_date_and_a_severity_step_backfills() {
    let dir = ramp_up_config("");
    promotion_and_backfill(TestApp::builder().config(dir.path()).start().await).await;
}

#[tokio::test]
async fn ramp_up_is_promoted_on_its_date_and_a_severity_step_backfills_on_postgres() {
    let Some(url) = crate::support::pg::or_skip(
        "ramp_up_is_promoted_on_its_date_and_a_severity_step_backfills_on_postgres",
    )
    .await
    else {
        return;
    };
    let dir = ramp_up_config("");
    promotion_and_backfill(
        TestApp::builder()
            .config(dir.path())
            .postgres(url)
            .start()
            .await,
    )
    .await;
}

fn plan(config: &std::path::Path, now: &str, format: &str) -> std::process::Output {
    crate::support::bin::lever(&[
        "plan",
        "--config",
        config.to_str().unwrap(),
        "--findings",
        "examples/demo/findings",
        "--format",
        format,
        "--now",
        now,
    ])
}

/// `lever plan` shows, for each date to come, what it will open or enforce; `--now DATE`
/// evaluates the accounts as they will be then.
#[test]
fn plan_shows_each_date_and_plans_at_a_date() {
    let dir = ramp_up_config("");
    let out = plan(dir.path(), "2026-11-23", "text");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "On 2026-11-25: 0 finding(s) start to open issues, 1 informational issue(s) become enforced"
        ) && text.contains(
            "On 2026-11-27: 7 finding(s) start to open issues, 0 informational issue(s) become enforced"
        ),
        "{text}"
    );
    let rds = text
        .lines()
        .find(|l| l.starts_with("enforced") && l.contains("RDS.2"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(rds.contains("acme/ledger"), "{rds}");

    // JSON: each row says its mode now and what is to come.
    let out = plan(dir.path(), "2026-11-23T12:00:00Z", "json");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rds = rows.iter().find(|r| r["control_id"] == "RDS.2").unwrap();
    assert_eq!(
        (rds["decision"].as_str(), rds["mode"].as_str()),
        (Some("ticket"), Some("ramp-up"))
    );
    assert_eq!(rds["upcoming"][0]["on"], "2026-11-25");
    assert_eq!(rds["upcoming"][0]["change"], "enforced");
    let s3 = rows.iter().find(|r| r["control_id"] == "S3.1").unwrap();
    assert_eq!(s3["reason"], "below-threshold");
    assert_eq!(s3["upcoming"][0]["on"], "2026-11-27");
    assert_eq!(s3["upcoming"][0]["change"], "opens");

    // Planned at the step's date: HIGH counts, in enforce mode, and nothing is left to come.
    let out = plan(dir.path(), "2026-11-27", "json");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let s3 = rows.iter().find(|r| r["control_id"] == "S3.1").unwrap();
    assert_eq!(
        (s3["decision"].as_str(), s3["mode"].as_str()),
        (Some("ticket"), Some("enforce"))
    );
    assert!(
        rows.iter()
            .all(|r| r["upcoming"].as_array().is_none_or(|u| u.is_empty()))
    );

    // A date that is not one is a usage error naming the flag's forms.
    let out = plan(dir.path(), "2026-02-30", "text");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nor a date such as 2027-01-04"));
}

// --- Settle delay -------------------------------------------------------------------------

/// The demo's EC2.8 findings (three instances of the checkout Auto Scaling group), with
/// `edit` applied to each.
fn ec2_8(edit: impl Fn(&mut serde_json::Value)) -> serde_json::Value {
    let path = root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for f in doc["Findings"].as_array_mut().unwrap() {
        edit(f);
    }
    doc
}

async fn post(t: &TestApp, doc: &serde_json::Value) {
    t.sh.seed(doc.clone());
    let (status, body) = t.post_event(doc).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

const SETTLE: &str = "[settle]\n\"AWS::EC2::Instance\" = \"15m\"\n";

async fn settle_that_resolves(t: TestApp) {
    post(&t, &ec2_8(|_| {})).await;
    t.settle().await;
    assert!(t.gh.issues(PAYMENTS).is_empty(), "settling: no issue yet");
    let settle = t
        .app
        .store
        .jobs(Some(lever::store::JobState::Pending))
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.job.kind() == "settle")
        .expect("a settle timer in the store");
    assert_eq!(
        settle.run_at,
        crate::support::app::t("2026-11-23T12:15:00Z")
    );

    // Ten minutes later the instances pass (they were replaced by compliant ones).
    t.clock.advance(Duration::minutes(10));
    post(
        &t,
        &ec2_8(|f| {
            f["Compliance"]["Status"] = "PASSED".into();
            f["UpdatedAt"] = "2026-11-23T12:10:00.000Z".into();
        }),
    )
    .await;
    t.settle().await;
    t.clock.advance(Duration::minutes(10));
    let ran = t.drain().await;
    assert!(
        ran.iter().any(|r| r.kind == "settle" && r.result == "done"),
        "{ran:#?}"
    );
    t.settle().await;
    assert!(
        t.gh.issues(PAYMENTS).is_empty(),
        "resolved while settling: nothing opens"
    );
    assert_eq!(t.github_writes(), 0);
    assert!(t.app.store.list_groups(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_settle_delay_that_resolves_opens_nothing() {
    let dir = crate::support::app::demo_config_with(SETTLE);
    settle_that_resolves(TestApp::builder().config(dir.path()).start().await).await;
}

#[tokio::test]
async fn a_settle_delay_that_resolves_opens_nothing_on_postgres() {
    let Some(url) =
        crate::support::pg::or_skip("a_settle_delay_that_resolves_opens_nothing_on_postgres").await
    else {
        return;
    };
    let dir = crate::support::app::demo_config_with(SETTLE);
    settle_that_resolves(
        TestApp::builder()
            .config(dir.path())
            .postgres(url)
            .start()
            .await,
    )
    .await;
}

async fn settle_across_a_restart(t: TestApp, dir: &std::path::Path) {
    post(&t, &ec2_8(|_| {})).await;
    t.settle().await;
    assert!(t.gh.issues(PAYMENTS).is_empty());
    // "Restart": a new process on the same database; the old one is gone.
    let restarted = crate::support::app::app_on(
        dir,
        t.replica_store().await,
        &t.gh,
        &t.sh,
        t.clock.clone(),
        crate::fakes::github::TEST_APP_PRIVATE_KEY_PEM,
    )
    .await;
    lever::worker::schedule_periodic(&restarted).await.unwrap();
    let worker = lever::worker::Worker::new(restarted, "after-restart");
    t.clock
        .advance(Duration::minutes(15) - Duration::seconds(1));
    worker.run_until_idle().await.unwrap();
    assert!(
        t.gh.issues(PAYMENTS).is_empty(),
        "not before the delay ends"
    );
    t.clock.advance(Duration::seconds(1));
    worker.run_until_idle().await.unwrap();
    worker.run_until_idle().await.unwrap();
    let issues = t.gh.issues(PAYMENTS);
    assert_eq!(
        issues.len(),
        1,
        "still failing after the delay: one issue for the group"
    );
    assert!(
        issues[0]["body"]
            .as_str()
            .unwrap()
            .matches("i-0a1b2c3d4e5f6000")
            .count()
            >= 3,
        "the three instances in one checklist"
    );
}

#[tokio::test]
async fn a_settle_delay_that_does_not_resolve_opens_after_it_across_a_restart() {
    let dir = crate::support::app::demo_config_with(SETTLE);
    let t = TestApp::builder().config(dir.path()).start().await;
    settle_across_a_restart(t, dir.path()).await;
}

#[tokio::test]
async fn a_settle_delay_that_does_not_resolve_opens_after_it_across_a_restart_on_postgres() {
    let Some(url) = crate::support::pg::or_skip(
        "a_settle_delay_that_does_not_resolve_opens_after_it_across_a_restart_on_postgres",
    )
    .await
    else {
        return;
    };
    let dir = crate::support::app::demo_config_with(SETTLE);
    let t = TestApp::builder()
        .config(dir.path())
        .postgres(url)
        .start()
        .await;
    settle_across_a_restart(t, dir.path()).await;
}

// --- Exclusions ---------------------------------------------------------------------------

const EXCLUSIONS: &str = r#"
[[exclusions.rules]]
accounts = ["111111111111"]
control = "EC2.8"
reason = "IMDSv2 rollout tracked in PLAT-12"

[[exclusions.rules]]
resource_type = "AwsRdsDbInstance"
reason = "RDS is reviewed by the DBA team"

[[exclusions.rules]]
arn = "arn:aws:ec2:*:*:security-group/sg-legacy*"
reason = "legacy VPC, decommissioned in Q1"

[[exclusions.rules]]
product = "GuardDuty"
reason = "GuardDuty goes to the SOC"
"#;

/// A findings directory: the demo's S3.1 (one account-level finding), EC2.8, RDS.2 and
/// GuardDuty files, plus S3.1 on a legacy security group, a Control Tower bucket and a Control
/// Tower role.
fn exclusion_findings() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("examples/demo/findings");
    for f in [
        "02-payments-prod-checkout-asg-ec2.8.json",
        "03-payments-prod-ledger-rds.2.json",
        "08-eventbridge-guardduty-unknown-account.json",
    ] {
        std::fs::copy(demo.join(f), dir.path().join(f)).unwrap();
    }
    let s3: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(demo.join("01-payments-prod-s3.1-three-standards.json")).unwrap(),
    )
    .unwrap();
    let base = s3[0].clone();
    let on = |suffix: &str, kind: &str, id: &str| {
        let mut f = base.clone();
        f["Id"] = format!("{}-{suffix}", base["Id"].as_str().unwrap()).into();
        f["Resources"] = serde_json::json!([{ "Type": kind, "Id": id, "Partition": "aws", "Region": "us-east-1" }]);
        f
    };
    let findings = serde_json::json!([
        base.clone(),
        on(
            "legacy",
            "AwsEc2SecurityGroup",
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-legacy01"
        ),
        on(
            "ct-bucket",
            "AwsS3Bucket",
            "arn:aws:s3:::aws-controltower-logs-111111111111-us-east-1"
        ),
        on(
            "ct-role",
            "AwsIamRole",
            "arn:aws:iam::111111111111:role/aws-controltower-AdministratorExecutionRole"
        ),
    ]);
    std::fs::write(dir.path().join("01-s3.json"), findings.to_string()).unwrap();
    dir
}

fn plan_rows(config: &std::path::Path, findings: &std::path::Path) -> Vec<serde_json::Value> {
    let out = crate::support::bin::lever(&[
        "plan",
        "--config",
        config.to_str().unwrap(),
        "--findings",
        findings.to_str().unwrap(),
        "--format",
        "json",
        "--now",
        crate::support::app::NOW,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `lever plan` names each exclusion with its reason code and reason: every matcher, the
/// built-in Control Tower exclusion, and its override.
#[test]
fn plan_shows_each_exclusion_and_its_reason() {
    let config = crate::support::app::demo_config_with(EXCLUSIONS);
    let findings = exclusion_findings();
    let rows = plan_rows(config.path(), findings.path());
    let reason = |pred: &dyn Fn(&serde_json::Value) -> bool| -> (String, String) {
        let r = rows
            .iter()
            .find(|r| pred(r))
            .unwrap_or_else(|| panic!("{rows:#?}"));
        (
            r["reason"].as_str().unwrap().into(),
            r["detail"].as_str().unwrap().into(),
        )
    };
    let by_id = |suffix: &'static str| {
        move |r: &serde_json::Value| r["finding_id"].as_str().unwrap().ends_with(suffix)
    };
    let cases: Vec<(&str, (String, String))> = vec![
        ("control", reason(&|r| r["control_id"] == "EC2.8")),
        ("resource type", reason(&|r| r["control_id"] == "RDS.2")),
        ("arn glob", reason(&by_id("-legacy"))),
        ("product", reason(&|r| r["account"] == "444444444444")),
        ("control tower bucket", reason(&by_id("-ct-bucket"))),
        ("control tower role", reason(&by_id("-ct-role"))),
        ("not excluded", reason(&by_id("-demo"))),
    ];
    let want = [
        ("excluded", "excluded: IMDSv2 rollout tracked in PLAT-12"),
        ("excluded", "excluded: RDS is reviewed by the DBA team"),
        ("excluded", "excluded: legacy VPC, decommissioned in Q1"),
        ("excluded", "excluded: GuardDuty goes to the SOC"),
        ("control-tower", "managed by Control Tower"),
        ("control-tower", "managed by Control Tower"),
        ("ticket", "severity HIGH meets the minimum HIGH"),
    ];
    for ((name, (got_reason, got_detail)), (want_reason, want_detail)) in cases.iter().zip(want) {
        assert_eq!(got_reason, want_reason, "{name}: {got_detail}");
        assert!(got_detail.starts_with(want_detail), "{name}: {got_detail}");
    }

    // The override: Control Tower's resources are tracked like any other.
    let config = crate::support::app::demo_config_with("[exclusions]\ncontrol_tower = false\n");
    let rows = plan_rows(config.path(), findings.path());
    for suffix in ["-ct-bucket", "-ct-role"] {
        let r = rows
            .iter()
            .find(|r| r["finding_id"].as_str().unwrap().ends_with(suffix))
            .unwrap();
        assert_eq!(r["reason"], "ticket", "{suffix}: {}", r["detail"]);
    }
}

async fn exclusions_open_nothing(t: TestApp, findings: &std::path::Path) {
    let mut files: Vec<_> = std::fs::read_dir(findings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let (status, body) = t.ingest_file(&f).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    t.settle().await;
    let mut opened: Vec<String> = [
        "acme/payments",
        "acme/ledger",
        "acme/security",
        "acme/platform",
    ]
    .iter()
    .flat_map(|r| t.gh.issues(r))
    .map(|i| i["title"].as_str().unwrap().to_string())
    .collect();
    opened.sort();
    assert_eq!(
        opened.len(),
        1,
        "only the account-level S3.1 opens: {opened:#?}"
    );
    assert!(opened[0].contains("S3"), "{opened:?}");
    let audit = t.app.store.audit(&Default::default()).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.action == "group-created").count(),
        1
    );
}

#[tokio::test]
async fn exclusions_open_no_issue() {
    let config = crate::support::app::demo_config_with(EXCLUSIONS);
    let findings = exclusion_findings();
    let t = TestApp::builder().config(config.path()).start().await;
    exclusions_open_nothing(t, findings.path()).await;
}

#[tokio::test]
async fn exclusions_open_no_issue_on_postgres() {
    let Some(url) = crate::support::pg::or_skip("exclusions_open_no_issue_on_postgres").await
    else {
        return;
    };
    let config = crate::support::app::demo_config_with(EXCLUSIONS);
    let findings = exclusion_findings();
    let t = TestApp::builder()
        .config(config.path())
        .postgres(url)
        .start()
        .await;
    exclusions_open_nothing(t, findings.path()).await;
}

// --- Inspector: one issue per package and image ---------------------------------------------

/// The conformance corpus's Inspector v2 finding (Log4Shell, CVE-2021-44228, in log4j-api and
/// log4j-core on an ECR image), and the same packages' two follow-up CVEs on the same image.
fn log4j_findings() -> serde_json::Value {
    let path = crate::fakes::openapi::conformance_dir().join(
        "asff/findings/c7n-placebo-test_ecr_image_filter_security_finding.securityhub.GetFindings_1.json",
    );
    let real: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = vec![real.clone()];
    for cve in ["CVE-2021-45046", "CVE-2021-45105"] {
        let mut f = real.clone();
        f["Id"] = format!("{}-{cve}", real["Id"].as_str().unwrap()).into();
        f["Vulnerabilities"][0]["Id"] = cve.into();
        f["Title"] = format!(
            "{cve} - org.apache.logging.log4j:log4j-api, org.apache.logging.log4j:log4j-core"
        )
        .into();
        out.push(f);
    }
    serde_json::Value::Array(out)
}

async fn inspector_issues(extra: &str) -> (TestApp, Vec<serde_json::Value>) {
    let dir = crate::support::app::demo_config_with(extra);
    let t = TestApp::builder().config(dir.path()).start().await;
    post(&t, &log4j_findings()).await;
    t.settle().await;
    let issues = t.gh.issues("acme/security");
    (t, issues)
}

#[tokio::test]
async fn several_cves_of_one_package_on_one_image_are_one_issue_with_a_checklist() {
    let (t, issues) = inspector_issues("").await;
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let body = issues[0]["body"].as_str().unwrap();
    let image = "arn:aws:ecr:us-east-1:644160558196:repository/sas-log4j-test/sha256:";
    for cve in ["CVE-2021-44228", "CVE-2021-45046", "CVE-2021-45105"] {
        let line = body
            .lines()
            .find(|l| l.contains(cve))
            .unwrap_or_else(|| panic!("{cve} not listed:\n{body}"));
        assert!(
            line.starts_with(&format!(
                "- [ ] `{cve}` in `org.apache.logging.log4j:log4j-api, org.apache.logging.log4j:log4j-core` on `{image}"
            )),
            "{line}"
        );
    }
    let groups = t.app.store.list_groups(None).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert!(
        groups[0]
            .group_key
            .0
            .starts_with("package|aws/inspector|org.apache.logging.log4j-log4j-api~"),
        "{}",
        groups[0].group_key
    );
    t.gh.assert_conformant();
}

#[tokio::test]
async fn per_vulnerability_grouping_is_configurable() {
    let (_t, issues) = inspector_issues("[grouping]\nvulnerabilities = \"vulnerability\"\n").await;
    assert_eq!(issues.len(), 3, "one issue per CVE, as before");
}

/// A ramp-up date added by a configuration change (a push to the configuration repository)
/// is scheduled at once, not at the next start.
#[tokio::test]
async fn a_date_added_by_a_configuration_push_is_scheduled() {
    const CONFIG_REPO: &str = "acme/security-config";
    let t = TestApp::builder()
        .config_repo(CONFIG_REPO, None)
        .start()
        .await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    let enforcement = |jobs: Vec<lever::store::JobRecord>| {
        jobs.into_iter()
            .find(|j| j.job.kind() == "enforcement")
            .map(|j| j.run_at)
    };
    let pending = || async {
        enforcement(
            t.app
                .store
                .jobs(Some(lever::store::JobState::Pending))
                .await
                .unwrap(),
        )
    };
    assert_eq!(pending().await, None, "the demo has no ramp-up dates");
    let dir = ramp_up_config("");
    let text = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let sha = t.gh.commit_files(
        CONFIG_REPO,
        "main",
        &[
            ("lever.toml", Some(&text("lever.toml"))),
            ("OWNERS", Some(&text("OWNERS"))),
        ],
    );
    let (status, _) = t
        .post_webhook(&crate::config_source::push(
            CONFIG_REPO,
            "refs/heads/main",
            &sha,
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for _ in 0..200 {
        if pending().await.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        pending().await,
        Some(crate::support::app::t("2026-11-25T00:00:00Z"))
    );
}

/// Accounts covered by `[defaults]` alone are listed nowhere: a schedule there backfills the
/// stored findings of every account.
#[tokio::test]
async fn a_defaults_schedule_backfills_accounts_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/demo/OWNERS"),
        dir.path().join("OWNERS"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(root().join("examples/demo/lever.toml")).unwrap();
    let toml = toml.replacen(
        "[defaults]\nenvironment = \"unknown\"\nmin_severity = \"CRITICAL\"\nmode = \"enforce\"\n",
        "[defaults]\nenvironment = \"unknown\"\nmin_severity = \"CRITICAL\"\n\
         min_severity_from = { \"2026-11-27\" = \"HIGH\" }\nmode = \"enforce\"\n",
        1,
    );
    assert!(
        toml.contains("min_severity_from"),
        "the demo's defaults moved"
    );
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    let t = TestApp::builder().config(dir.path()).start().await;
    lever::worker::schedule_periodic(&t.app).await.unwrap();
    // S3.1 (HIGH) of an account no [accounts] table lists.
    let path = root().join("examples/demo/findings/01-payments-prod-s3.1-three-standards.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for f in doc.as_array_mut().unwrap() {
        f["AwsAccountId"] = "555555555555".into();
        f["Id"] = f["Id"]
            .as_str()
            .unwrap()
            .replace("111111111111", "555555555555")
            .into();
        f["Resources"][0]["Id"] = "AWS::::Account:555555555555".into();
    }
    post(&t, &doc).await;
    t.settle().await;
    assert!(
        t.gh.issues("acme/security").is_empty(),
        "HIGH is below CRITICAL"
    );
    t.clock.set(crate::support::app::t("2026-11-27T00:00:00Z"));
    t.settle().await;
    let issues = t.gh.issues("acme/security");
    assert_eq!(
        issues.len(),
        1,
        "backfilled on the step's date: {issues:#?}"
    );
}
