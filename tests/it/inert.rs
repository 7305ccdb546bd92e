//! Untrusted finding text on GitHub: what GitHub would find in what Lever wrote (the fake reads
//! bodies and comments as GitHub renders them: escapes and character references undone, code
//! skipped). Nothing a finding says may ping anyone, reference any issue or become a link.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::github::{Sighting, markdown};
use crate::support::app::TestApp;

const PAYMENTS: &str = "acme/payments";

/// A third-party finding (its own title and text are used) in payments-prod, written by
/// someone who wants attention: mentions, references and links, spelled every way GitHub reads.
fn hostile_finding() -> Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": "evil-finding-1",
        "ProductArn": "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default",
        "ProductName": "Evil @acme/security-team scanner",
        "CompanyName": "Evil",
        "Region": "us-east-1",
        "GeneratorId": "evil-generator",
        "AwsAccountId": "111111111111",
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-11-20T08:15:00.000Z",
        "UpdatedAt": "2026-11-20T08:15:00.000Z",
        "Severity": {"Label": "CRITICAL"},
        "Title": "Exposed bucket @acme/security-team see acme/ledger#1 GH-2 #3",
        "Description": "Contact @acme/security-team or &#64;alice or \\@carol or @\\carol2 (&commat;dave). \
            Cross-reference acme/ledger#1, acme/ledger&#35;1, #1, GH-1 and \
            https://github.com/acme/ledger/issues/1 or www.github.com/acme/ledger/issues/1. \
            Links: https://evil.example/pixel.gif, https&#58;//evil.example/x, [click](https://evil.example). \
            Email security@acme.example. <!-- lever:group=forged -->",
        "Remediation": {"Recommendation": {
            "Text": "Ask @acme/security-leads; see acme/security#1.",
            "Url": "https://github.com/acme/ledger/issues/1"
        }},
        "SourceUrl": "https://evil.example/track?u=@mallory",
        "Resources": [{
            "Type": "AwsS3Bucket @eve",
            "Id": "arn:aws:s3:::evil\n\n@mallory acme/ledger#1 `x` https://github.com/acme/ledger/issues/2",
            "Region": "us-east-1"
        }],
        "Compliance": {"Status": "FAILED"},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE"
    })
}

fn by_bot(t: &TestApp, v: Vec<Sighting>) -> BTreeSet<String> {
    let bot = t.gh.bot_login();
    v.into_iter()
        .filter(|s| s.by == bot)
        .map(|s| s.what)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Only Lever's own mentions (the owner), no reference, and links only to AWS.
fn assert_inert(t: &TestApp, owners: &[&str]) {
    assert_eq!(
        by_bot(t, t.gh.mentions()),
        set(owners),
        "only the people Lever means to ping"
    );
    assert_eq!(
        by_bot(t, t.gh.references()),
        set(&[]),
        "no issue reference from finding text"
    );
    for url in by_bot(t, t.gh.links()) {
        assert!(
            url.starts_with("https://docs.aws.amazon.com/"),
            "a finding's URL became a link: {url}"
        );
    }
}

#[tokio::test]
async fn hostile_finding_text_pings_nobody_and_references_nothing() {
    let t = TestApp::start().await;
    let mut f = hostile_finding();
    t.sh.seed(f.clone());
    let (status, body) = t.post_event(&f).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.settle().await;
    let issues = t.gh.issues(PAYMENTS);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let issue_body = issues[0]["body"].as_str().unwrap();
    // Lever's own mention of the owner works.
    assert!(issue_body.contains("Owner: @bob"), "{issue_body}");
    // The text stays readable: the words are there.
    assert!(issue_body.contains("security-team"), "{issue_body}");
    assert!(
        issue_body.contains("evil.example/pixel.gif"),
        "{issue_body}"
    );
    assert_eq!(
        markdown::scan(issue_body, PAYMENTS).mentions,
        ["bob"],
        "{issue_body}"
    );
    assert_inert(&t, &["bob"]);

    // Fixed, then failing again: the comments list the (hostile) resource ids.
    f["Compliance"]["Status"] = "PASSED".into();
    f["UpdatedAt"] = "2026-11-23T13:00:00.000Z".into();
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    assert_eq!(t.gh.issue(PAYMENTS, 1).unwrap()["state"], "closed");
    f["Compliance"]["Status"] = "FAILED".into();
    f["UpdatedAt"] = "2026-11-25T09:00:00.000Z".into();
    f["Workflow"]["Status"] = "NEW".into();
    t.sh.seed(f.clone());
    t.post_event(&f).await;
    t.settle().await;
    assert_eq!(t.gh.issue(PAYMENTS, 1).unwrap()["state"], "open");
    let comments = t.comments_by_bot(PAYMENTS, 1);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("reports the problem again")),
        "{comments:#?}"
    );
    assert_inert(&t, &["bob"]);
    t.gh.assert_conformant();
}
