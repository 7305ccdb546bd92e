//! The tag audit (issue 12, item 3) against moto's Tagging API: Lever's real SDK client assumes
//! the member role and pages GetResources in two regions; tags added, changed and removed
//! between two audits are reported; a tag without a reason is flagged; in `lever serve` the
//! `tag-audit` job asks why in the security repository's audit issue, mentioning the owning
//! team's engineer on call, and a run with nothing new asks nothing.

use chrono::Duration;

use lever::store::{ChangeSet, Job, NewJob};
use lever::worker::tag_audit::{self, WHO_NOTE};

use crate::support::app::{TestApp, demo_config_with};
use crate::support::moto::{ACCOUNT, Moto};

const KEY: &str = "lever:ignore";

/// The demo configuration reading moto's account in two regions; OWNERS gives moto's account
/// to the payments team (bob is on call at the demo's instant).
fn config() -> tempfile::TempDir {
    let dir = demo_config_with(&format!(
        "[tags]\nregions = [\"eu-west-1\", \"us-east-1\"]\naccounts = [\"{ACCOUNT}\"]\n"
    ));
    let owners = dir.path().join("OWNERS");
    let mut text = std::fs::read_to_string(&owners).unwrap();
    text.push_str(&format!(
        "account:{ACCOUNT}                    acme/payments   @rotation:payments\n"
    ));
    std::fs::write(owners, text).unwrap();
    dir
}

/// `change arn reason` lines of an audit's changes.
fn changes(r: &tag_audit::AuditReport) -> Vec<String> {
    let mut out: Vec<String> = r
        .changes
        .iter()
        .map(|c| format!("{} {} {:?}", c.change, c.resource.arn, c.resource.reason))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn tag_audit_against_moto_reports_what_changed_and_asks_why() {
    let Some(moto) = Moto::start("tag_audit_against_moto_reports_what_changed_and_asks_why").await
    else {
        return;
    };
    let dir = config();
    let t = TestApp::builder()
        .config(dir.path())
        .tagging(moto.tagging().await)
        .start()
        .await;
    let legacy = moto.security_group("eu-west-1", "legacy").await;
    let blank = moto.security_group("us-east-1", "blank").await;
    let temporary = moto.security_group("eu-west-1", "temporary").await;
    let untagged = moto.security_group("eu-west-1", "untagged").await;
    moto.tag(
        "eu-west-1",
        &legacy.id,
        KEY,
        "legacy; @everyone <b>see #1</b>",
    )
    .await;
    moto.tag("us-east-1", &blank.id, KEY, "   ").await;
    moto.tag("eu-west-1", &temporary.id, KEY, "load test").await;
    moto.tag("eu-west-1", &untagged.id, "team", "payments")
        .await;

    // The first audit: everything appeared; the blank reason is flagged.
    let first_at = t.app.now();
    let first = tag_audit::observe(
        t.app.store.as_ref(),
        &t.app.config,
        &t.app.tagging,
        first_at,
    )
    .await
    .expect("the audit reads moto");
    assert!(first.report.unread.is_empty(), "{:?}", first.report.unread);
    assert_eq!(first.report.previous_audit_at, None);
    assert_eq!(changes(&first.report), {
        let mut want = vec![
            format!(
                "appeared {} \"legacy; @everyone <b>see #1</b>\"",
                legacy.arn
            ),
            format!("appeared {} \"   \"", blank.arn),
            format!("appeared {} \"load test\"", temporary.arn),
        ];
        want.sort();
        want
    });
    assert_eq!(first.report.without_reason, 1);
    let flagged: Vec<&str> = first
        .report
        .resources
        .iter()
        .filter(|r| !r.has_reason)
        .map(|r| r.arn.as_str())
        .collect();
    assert_eq!(flagged, vec![blank.arn.as_str()]);
    for r in &first.report.resources {
        assert_eq!(r.owner_repo, "acme/payments", "{}", r.arn);
        assert_eq!(r.account_id, ACCOUNT);
        assert_eq!(r.first_seen, first_at);
    }
    let regions: Vec<(&str, &str)> = first
        .report
        .resources
        .iter()
        .map(|r| (r.arn.as_str(), r.region.as_str()))
        .collect();
    assert!(
        regions.contains(&(blank.arn.as_str(), "us-east-1")),
        "{regions:?}"
    );
    assert_eq!(first.report.note, WHO_NOTE);
    tag_audit::record(t.app.store.as_ref(), &first)
        .await
        .unwrap();

    // Between the audits: one reason changes, one tag is removed, one appears.
    t.clock.advance(Duration::days(1));
    moto.tag("eu-west-1", &legacy.id, KEY, "decommissioned in January")
        .await;
    moto.untag("eu-west-1", &temporary.id, KEY).await;
    moto.tag("eu-west-1", &untagged.id, KEY, "shared with ledger")
        .await;
    let second_at = t.app.now();
    let second = tag_audit::observe(
        t.app.store.as_ref(),
        &t.app.config,
        &t.app.tagging,
        second_at,
    )
    .await
    .unwrap();
    assert_eq!(second.report.previous_audit_at, Some(first_at));
    assert_eq!(changes(&second.report), {
        let mut want = vec![
            format!("changed {} \"decommissioned in January\"", legacy.arn),
            format!("disappeared {} \"load test\"", temporary.arn),
            format!("appeared {} \"shared with ledger\"", untagged.arn),
        ];
        want.sort();
        want
    });
    let changed = second
        .report
        .changes
        .iter()
        .find(|c| c.change == "changed")
        .unwrap();
    assert_eq!(
        changed.previous_reason.as_deref(),
        Some("legacy; @everyone <b>see #1</b>")
    );
    assert_eq!(changed.resource.first_seen, first_at, "first seen is kept");
    assert_eq!(changed.resource.reason_since, second_at);
    // Not recorded: `lever serve`'s job audits the same difference next.

    // The `tag-audit` job: one comment per new or changed tag in acme/security's audit issue,
    // mentioning the payments engineer on call; the removal asks nothing.
    t.app
        .store
        .apply(
            ChangeSet {
                jobs: vec![NewJob::new(Job::TagAudit, second_at)],
                ..ChangeSet::default()
            },
            second_at,
        )
        .await
        .unwrap();
    let ran = t.drain().await;
    assert!(
        ran.iter()
            .any(|r| r.kind == "tag-audit" && r.result == "done"),
        "{ran:?}"
    );
    let issues = t.gh.issues("acme/security");
    let audit_issues: Vec<_> = issues
        .iter()
        .filter(|i| {
            i["body"]
                .as_str()
                .is_some_and(|b| b.contains(tag_audit::ISSUE_MARKER))
        })
        .collect();
    assert_eq!(audit_issues.len(), 1, "{issues:#?}");
    let number = audit_issues[0]["number"].as_u64().unwrap();
    let comments = t.comments_by_bot("acme/security", number);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    for c in &comments {
        assert!(c.starts_with("@bob, "), "{c}");
        assert!(c.contains("Why was it added?"), "{c}");
        assert!(c.contains("CloudTrail"), "{c}");
    }
    let on_changed = comments
        .iter()
        .find(|c| c.contains("decommissioned in January"))
        .expect("a comment about the changed reason");
    // The previous reason is quoted inert: no mention, no HTML, no issue reference.
    assert!(!on_changed.contains("@everyone"), "{on_changed}");
    assert!(!on_changed.contains("<b>"), "{on_changed}");
    assert!(!on_changed.contains("#1"), "{on_changed}");
    assert!(
        comments.iter().any(|c| c.contains("shared with ledger")),
        "{comments:#?}"
    );

    // Nothing new: the next run writes nothing.
    t.clock.advance(Duration::hours(1));
    let again_at = t.app.now();
    t.app
        .store
        .apply(
            ChangeSet {
                jobs: vec![NewJob::new(Job::TagAudit, again_at)],
                ..ChangeSet::default()
            },
            again_at,
        )
        .await
        .unwrap();
    let writes = t.github_writes();
    t.drain().await;
    assert_eq!(
        t.github_writes(),
        writes,
        "a run with nothing new writes nothing"
    );
    let (snapshot, at) = t.app.store.ignore_tags().await.unwrap();
    assert_eq!(at, Some(again_at));
    assert_eq!(snapshot.len(), 3, "{snapshot:#?}");
}

/// An EC2.8 finding of ramp-up account 444444444444 on instance `i` of Auto Scaling group
/// checkout-web (the group's instances fold into one issue), with the ignore tag `tag` on the
/// instance, updated at `at`.
fn ramp_up_finding(i: &str, tag: Option<&str>, at: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            crate::support::app::root()
                .join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut f = doc["Findings"][0].clone();
    f["AwsAccountId"] = "444444444444".into();
    f["Id"] =
        format!("arn:aws:securityhub:us-east-1:444444444444:security-control/EC2.8/finding/{i}")
            .into();
    f["Resources"][0]["Id"] = format!("arn:aws:ec2:us-east-1:444444444444:instance/{i}").into();
    if let Some(reason) = tag {
        f["Resources"][0]["Tags"][KEY] = reason.into();
    }
    f["UpdatedAt"] = at.into();
    f
}

/// Point 2: in a ramp-up account an ignore tag (with a reason) added to a resource of an open
/// issue takes it off the checklist with a comment, and closes the issue when it was the last
/// one; a blank value takes nothing off.
#[tokio::test]
async fn an_ignore_tag_added_after_the_issue_opened_takes_the_resource_off_and_closes_it_last() {
    let dir = demo_config_with(
        "[accounts.444444444444]\nname = \"checkout-rampup\"\nenvironment = \"production\"\nmin_severity = \"LOW\"\nmode = \"ramp-up\"\n",
    );
    let t = TestApp::builder().config(dir.path()).start().await;
    let before = "2026-11-23T10:00:00.000Z";
    let post = |body: Vec<serde_json::Value>| {
        let t = &t;
        async move {
            // Security Hub holds what it sends (Lever writes NOTIFIED back).
            for f in &body {
                t.sh.seed(f.clone());
            }
            let (status, resp) = t.post_event(&serde_json::Value::Array(body)).await;
            assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{resp}");
            t.settle().await;
        }
    };
    post(vec![
        ramp_up_finding("i-1", None, before),
        ramp_up_finding("i-2", None, before),
    ])
    .await;
    let issues = t.gh.issues("acme/security");
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let n = issues[0]["number"].as_u64().unwrap();
    let arn = |i: &str| format!("arn:aws:ec2:us-east-1:444444444444:instance/{i}");
    let body = || {
        t.gh.issue("acme/security", n).unwrap()["body"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        body().contains(&format!("- [ ] `{}`", arn("i-1"))),
        "{}",
        body()
    );

    // A blank reason: nothing is taken off.
    post(vec![ramp_up_finding(
        "i-1",
        Some("  "),
        "2026-11-23T10:30:00.000Z",
    )])
    .await;
    assert!(
        body().contains(&format!("- [ ] `{}`", arn("i-1"))),
        "{}",
        body()
    );
    assert_eq!(t.gh.issue("acme/security", n).unwrap()["state"], "open");

    // i-1 tagged with a reason: off the checklist, a comment, still open for i-2.
    post(vec![ramp_up_finding(
        "i-1",
        Some("canary @mallory #1"),
        "2026-11-23T11:00:00.000Z",
    )])
    .await;
    let b = body();
    assert!(b.contains(&format!("- [x] ~~`{}`~~", arn("i-1"))), "{b}");
    assert!(b.contains(&format!("- [ ] `{}`", arn("i-2"))), "{b}");
    let said = t.comments_by_bot("acme/security", n);
    let about = said
        .iter()
        .find(|c| c.contains("taken off"))
        .expect("a comment about the tag");
    assert!(about.contains(&arn("i-1")), "{about}");
    // The reason is inert: inside a code span, where GitHub neither mentions nor references.
    assert!(
        about.contains("i-1`: `lever:ignore=canary @mallory #1`"),
        "{about}"
    );
    assert_eq!(t.gh.issue("acme/security", n).unwrap()["state"], "open");

    // i-2 tagged as well: nothing left, the issue closes.
    post(vec![ramp_up_finding(
        "i-2",
        Some("canary"),
        "2026-11-23T11:30:00.000Z",
    )])
    .await;
    assert_eq!(t.gh.issue("acme/security", n).unwrap()["state"], "closed");
    let said = t.comments_by_bot("acme/security", n);
    assert!(
        said.iter().any(|c| c.contains("Nothing is left to fix")),
        "{said:#?}"
    );
}

/// Point 2 against moto: a finding that carries no tags opens its issue in a ramp-up account;
/// the ignore tag is then added to the resource in AWS. The tag audit sees it, asks why, and
/// has the issue look again: the tags read through the Tagging API take the resource off, and
/// as it was the issue's last one, the issue closes.
#[tokio::test]
async fn an_ignore_tag_added_in_aws_after_the_issue_opened_closes_it_through_the_tagging_api() {
    let Some(moto) = Moto::start(
        "an_ignore_tag_added_in_aws_after_the_issue_opened_closes_it_through_the_tagging_api",
    )
    .await
    else {
        return;
    };
    let dir = demo_config_with(&format!(
        "[tags]\nregions = [\"eu-west-1\"]\naccounts = [\"{ACCOUNT}\"]\n\n\
         [accounts.{ACCOUNT}]\nname = \"sandbox\"\nenvironment = \"staging\"\nmin_severity = \"LOW\"\nmode = \"ramp-up\"\n"
    ));
    let t = TestApp::builder()
        .config(dir.path())
        .tagging(moto.tagging().await)
        .start()
        .await;
    let sg = moto.security_group("eu-west-1", "web").await;
    let mut f = ramp_up_finding("i-1", None, "2026-11-23T10:00:00.000Z");
    f["AwsAccountId"] = ACCOUNT.into();
    f["Region"] = "eu-west-1".into();
    f["Id"] =
        format!("arn:aws:securityhub:eu-west-1:{ACCOUNT}:security-control/EC2.18/finding/1").into();
    f["Resources"][0] = serde_json::json!({
        "Type": "AwsEc2SecurityGroup",
        "Id": sg.arn,
        "Partition": "aws",
        "Region": "eu-west-1"
    });
    t.sh.seed(f.clone());
    let (status, resp) = t.post_event(&serde_json::Value::Array(vec![f])).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{resp}");
    t.settle().await;
    let issues = t.gh.issues("acme/security");
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let n = issues[0]["number"].as_u64().unwrap();
    assert_eq!(issues[0]["state"], "open");

    moto.tag("eu-west-1", &sg.id, KEY, "sandbox, torn down nightly")
        .await;
    let now = t.app.now();
    t.app
        .store
        .apply(
            ChangeSet {
                jobs: vec![NewJob::new(Job::TagAudit, now)],
                ..ChangeSet::default()
            },
            now,
        )
        .await
        .unwrap();
    t.settle().await;

    let issue = t.gh.issue("acme/security", n).unwrap();
    assert_eq!(issue["state"], "closed", "{issue:#}");
    let body = issue["body"].as_str().unwrap();
    assert!(body.contains(&format!("- [x] ~~`{}`~~", sg.arn)), "{body}");
    let said = t.comments_by_bot("acme/security", n);
    assert!(
        said.iter().any(|c| c.contains("Nothing is left to fix")
            && c.contains("lever:ignore=sandbox, torn down nightly")),
        "{said:#?}"
    );
    // The audit issue asked why.
    let audit_issue =
        t.gh.issues("acme/security")
            .into_iter()
            .find(|i| {
                i["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(tag_audit::ISSUE_MARKER))
            })
            .expect("the audit issue");
    let asked = t.comments_by_bot("acme/security", audit_issue["number"].as_u64().unwrap());
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(asked[0].contains(&sg.arn), "{}", asked[0]);
}

/// `lever tags audit`, the binary, configured the standard AWS way (environment) against moto:
/// JSON lists the tag with its owner and first-seen date; a second run reports the change and
/// prints the CloudTrail note; a configuration without regions is a usage error naming the key.
#[tokio::test]
async fn the_lever_tags_audit_command_reads_moto_and_keeps_the_previous_audit() {
    let Some(moto) =
        Moto::start("the_lever_tags_audit_command_reads_moto_and_keeps_the_previous_audit").await
    else {
        return;
    };
    let dir = config();
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", work.path().join("lever.db").display());
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE"),
        ("AWS_SECRET_ACCESS_KEY", "fake-secret-access-key"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", work.path().to_str().unwrap()),
    ];
    let run = |format: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
            .args([
                "tags",
                "audit",
                "--config",
                dir.path().to_str().unwrap(),
                "--format",
                format,
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .output()
            .expect("run lever")
    };
    let sg = moto.security_group("us-east-1", "db").await;
    moto.tag("us-east-1", &sg.id, KEY, "migrating to RDS").await;

    let out = run("json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["resources"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    let r = &report["resources"][0];
    assert_eq!(r["arn"], sg.arn.as_str());
    assert_eq!(r["reason"], "migrating to RDS");
    assert_eq!(r["owner_repo"], "acme/payments");
    assert_eq!(r["region"], "us-east-1");
    assert!(r["first_seen"].is_string());
    assert_eq!(report["changes"][0]["change"], "appeared");
    assert!(report["previous_audit_at"].is_null());

    moto.tag("us-east-1", &sg.id, KEY, "").await;
    let out = run("text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("previous audit: 20"), "{text}");
    assert!(text.contains("NO REASON"), "{text}");
    assert!(text.contains(&format!("changed     {}", sg.arn)), "{text}");
    assert!(text.contains("CloudTrail"), "{text}");

    let bare = demo_config_with("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(["tags", "audit", "--config", bare.path().to_str().unwrap()])
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[tags] regions is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A finding without tags on a resource already tagged in AWS (ramp-up): no issue opens; once
/// the tag is removed, the tag audit sees it go and the issue opens.
#[tokio::test]
async fn a_resource_already_tagged_in_aws_opens_no_issue_until_its_tag_goes() {
    let Some(moto) =
        Moto::start("a_resource_already_tagged_in_aws_opens_no_issue_until_its_tag_goes").await
    else {
        return;
    };
    let dir = demo_config_with(&format!(
        "[tags]\nregions = [\"eu-west-1\"]\naccounts = [\"{ACCOUNT}\"]\n\n\
         [accounts.{ACCOUNT}]\nname = \"sandbox\"\nenvironment = \"staging\"\nmin_severity = \"LOW\"\nmode = \"ramp-up\"\n"
    ));
    let t = TestApp::builder()
        .config(dir.path())
        .tagging(moto.tagging().await)
        .start()
        .await;
    let sg = moto.security_group("eu-west-1", "scratch").await;
    moto.tag("eu-west-1", &sg.id, KEY, "scratch space").await;
    let mut f = ramp_up_finding("i-1", None, "2026-11-23T10:00:00.000Z");
    f["AwsAccountId"] = ACCOUNT.into();
    f["Region"] = "eu-west-1".into();
    f["Id"] =
        format!("arn:aws:securityhub:eu-west-1:{ACCOUNT}:security-control/EC2.18/finding/2").into();
    f["Resources"][0] = serde_json::json!({
        "Type": "AwsEc2SecurityGroup", "Id": sg.arn, "Partition": "aws", "Region": "eu-west-1"
    });
    t.sh.seed(f.clone());
    let (status, resp) = t.post_event(&serde_json::Value::Array(vec![f])).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{resp}");
    t.settle().await;
    let finding_issues = |t: &TestApp| {
        t.gh.issues("acme/security")
            .into_iter()
            .filter(|i| {
                !i["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(tag_audit::ISSUE_MARKER))
            })
            .count()
    };
    assert_eq!(
        finding_issues(&t),
        0,
        "the tag read through the Tagging API kept it closed"
    );

    let audit_job = |t: &TestApp| {
        let now = t.app.now();
        let store = t.app.store.clone();
        async move {
            store
                .apply(
                    ChangeSet {
                        jobs: vec![NewJob::new(Job::TagAudit, now)],
                        ..ChangeSet::default()
                    },
                    now,
                )
                .await
                .unwrap();
        }
    };
    audit_job(&t).await;
    t.settle().await;
    assert_eq!(finding_issues(&t), 0);

    moto.untag("eu-west-1", &sg.id, KEY).await;
    t.clock.advance(Duration::hours(1));
    audit_job(&t).await;
    t.settle().await;
    assert_eq!(finding_issues(&t), 1, "the tag went, the issue opens");
}
