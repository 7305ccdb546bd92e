//! Configuration from a repository (`[source]`): read through the App, reloaded on a `push` to
//! the followed branch without a restart, an invalid change refused with a check run listing
//! every error while the last good configuration stays in force.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::fakes::github::{TEST_APP_ID, WebhookDelivery};
use crate::support::app::{TestApp, root};

const CONFIG_REPO: &str = "acme/security-config";

/// The real `push` example (npm @octokit/webhooks-examples 7.6.1, see tests/fixtures/README.md)
/// made to describe a push of `sha` to `git_ref` of `repo`.
pub(crate) fn push(repo: &str, git_ref: &str, sha: &str) -> WebhookDelivery {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/github-webhook-push.json")).unwrap();
    let mut payload: Value = serde_json::from_str(&text).unwrap();
    let (owner, name) = repo.split_once('/').unwrap();
    payload["ref"] = git_ref.into();
    payload["after"] = sha.into();
    payload["head_commit"]["id"] = sha.into();
    payload["repository"]["full_name"] = repo.into();
    payload["repository"]["name"] = name.into();
    payload["repository"]["owner"]["login"] = owner.into();
    payload["repository"]["owner"]["name"] = owner.into();
    payload["repository"]["default_branch"] = "main".into();
    payload["repository"]["master_branch"] = "main".into();
    // The example predates this member, which the description (23.0.2) requires.
    payload["repository"]["has_discussions"] = false.into();
    WebhookDelivery {
        id: uuid::Uuid::new_v4().to_string(),
        event: "push".into(),
        action: None,
        payload,
        app_id: TEST_APP_ID,
    }
}

fn demo(file: &str) -> String {
    std::fs::read_to_string(root().join("examples/demo").join(file)).unwrap()
}

/// Waits (real time, the reload runs in a task of its own) until `done` holds.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_valid_push_is_in_force_for_the_next_finding_an_invalid_one_is_refused_with_every_error()
{
    let t = TestApp::builder()
        .config_repo(CONFIG_REPO, None)
        .start()
        .await;
    let first = t.app.live_config.current();
    assert_eq!(first.owners.rules.len(), 5, "read from the repository");

    // An invalid change: two errors in lever.toml, one in OWNERS.
    let bad_toml = demo("lever.toml").replace("[github]\n", "[github]\nno_such_key = 1\n")
        + "\n[source]\nrepo = \"acme/elsewhere\"\n";
    let bad_owners = demo("OWNERS") + "account:111111111111   not-a-repo   @dave\n";
    let bad = t.gh.commit_files(
        CONFIG_REPO,
        "main",
        &[
            ("lever.toml", Some(&bad_toml)),
            ("OWNERS", Some(&bad_owners)),
        ],
    );
    let (status, _) = t
        .post_webhook(&push(CONFIG_REPO, "refs/heads/main", &bad))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for("the refusal", || !t.gh.check_runs(CONFIG_REPO).is_empty()).await;
    let runs = t.gh.check_runs(CONFIG_REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["head_sha"], bad.as_str());
    assert_eq!(runs[0]["conclusion"], "failure");
    let summary = runs[0]["output"]["summary"].as_str().unwrap();
    let toml_lines = bad_toml.lines().collect::<Vec<_>>();
    let line_of = |needle: &str| toml_lines.iter().position(|l| l.contains(needle)).unwrap() + 1;
    for expected in [
        format!(
            "lever.toml:{}: unknown key \"no_such_key\" in [github]",
            line_of("no_such_key")
        ),
        format!(
            "lever.toml:{}: [source] is read only from the local lever.toml",
            line_of("[source]")
        ),
        format!("OWNERS:{}:", bad_owners.lines().count()),
    ] {
        assert!(summary.contains(&expected), "{expected} not in {summary}");
    }
    assert_eq!(
        runs[0]["output"]["annotations"].as_array().unwrap().len(),
        3,
        "{summary}"
    );
    // The last good configuration stays in force.
    assert!(Arc::ptr_eq(&t.app.live_config.current(), &first));

    // A valid change: a new last OWNERS rule sends account 111111111111 to acme/platform.
    let owners = demo("OWNERS") + "account:111111111111   acme/platform   @dave\n";
    let toml = demo("lever.toml");
    let good = t.gh.commit_files(
        CONFIG_REPO,
        "main",
        &[("lever.toml", Some(&toml)), ("OWNERS", Some(&owners))],
    );
    let (status, _) = t
        .post_webhook(&push(CONFIG_REPO, "refs/heads/main", &good))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for("the reload", || {
        t.app.live_config.current().owners.rules.len() == 6
    })
    .await;
    let runs = t.gh.check_runs(CONFIG_REPO);
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[1]["head_sha"].as_str(), runs[1]["conclusion"].as_str()),
        (Some(good.as_str()), Some("success"))
    );

    // The next finding follows the new route (without the reload it goes to acme/ledger).
    t.ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    t.drain().await;
    assert!(
        t.gh.issue("acme/platform", 1).is_some(),
        "the new OWNERS rule routed the finding"
    );
    assert!(t.gh.issue("acme/ledger", 1).is_none());
    t.gh.assert_conformant();
}

#[tokio::test]
async fn pushes_elsewhere_and_unsigned_pushes_change_nothing() {
    let t = TestApp::builder()
        .config_repo(CONFIG_REPO, None)
        .start()
        .await;
    let first = t.app.live_config.current();
    let owners = demo("OWNERS") + "account:111111111111   acme/platform   @dave\n";
    let on_branch =
        t.gh.commit_files(CONFIG_REPO, "feature", &[("OWNERS", Some(&owners))]);
    t.gh.add_repo(
        "acme/other-config",
        true,
        Some(crate::support::app::INSTALLATION),
    );
    let other =
        t.gh.commit_files("acme/other-config", "main", &[("OWNERS", Some(&owners))]);
    let reads_before = t.gh.count("GET", "/repos/*/contents/*");
    for d in [
        push(CONFIG_REPO, "refs/heads/feature", &on_branch),
        push(CONFIG_REPO, "refs/tags/v1", &on_branch),
        push("acme/other-config", "refs/heads/main", &other),
    ] {
        let (status, _) = t.post_webhook(&d).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    // A push to the followed branch, but not signed with the App's secret: refused.
    let good =
        t.gh.commit_files(CONFIG_REPO, "main", &[("OWNERS", Some(&owners))]);
    let (status, _) = t
        .post_webhook_signed(
            &push(CONFIG_REPO, "refs/heads/main", &good),
            "not-the-secret",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.gh.count("GET", "/repos/*/contents/*"), reads_before);
    assert!(t.gh.check_runs(CONFIG_REPO).is_empty());
    assert!(Arc::ptr_eq(&t.app.live_config.current(), &first));
}

/// The real push example is a `push` delivery as GitHub's description has it.
#[test]
fn the_push_fixture_is_a_push_webhook() {
    let Some(spec) = crate::fakes::require_conformance("the_push_fixture_is_a_push_webhook")
        .and_then(|_| crate::fakes::openapi::spec())
    else {
        return;
    };
    let d = push(
        CONFIG_REPO,
        "refs/heads/main",
        "0123456789abcdef0123456789abcdef01234567",
    );
    assert_eq!(
        spec.validate_webhook("push", &d.payload),
        Vec::<String>::new()
    );
}

/// `lever serve --config DIR` with a bootstrap `lever.toml`: the configuration comes from the
/// repository through the App; an invalid one stops the start with every error located.
#[tokio::test]
async fn serve_reads_its_configuration_from_the_repository_named_by_the_bootstrap_file() {
    use crate::fakes::github::FakeGitHub;
    use crate::fakes::securityhub::FakeSecurityHub;
    use crate::support::bin::Served;
    let gh = FakeGitHub::start_with_test_app().await;
    crate::support::app::demo_github(&gh);
    gh.add_repo(CONFIG_REPO, true, Some(crate::support::app::INSTALLATION));
    let sh = FakeSecurityHub::start().await;
    let work = tempfile::tempdir().unwrap();
    let bootstrap = tempfile::tempdir().unwrap();
    std::fs::write(
        bootstrap.path().join("lever.toml"),
        format!("[source]\nrepo = \"{CONFIG_REPO}\"\nref = \"prod\"\npath = \"lever\"\n"),
    )
    .unwrap();

    // Invalid on the followed branch: the start fails, naming the repository's files.
    let bad_toml = demo("lever.toml").replace("[github]\n", "[github]\nno_such_key = 1\n");
    gh.commit_files(
        CONFIG_REPO,
        "prod",
        &[
            ("lever/lever.toml", Some(&bad_toml)),
            ("lever/OWNERS", Some(&demo("OWNERS"))),
        ],
    );
    let served = Served::spawn(&gh, &sh, work.path(), None, &[], bootstrap.path(), true);
    let out = served.child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = bad_toml
        .lines()
        .position(|l| l.contains("no_such_key"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "{CONFIG_REPO}: lever/lever.toml:{line}: unknown key \"no_such_key\" in [github]"
        )),
        "{stderr}"
    );

    // Valid: it serves, and read the files at the followed branch.
    gh.commit_files(
        CONFIG_REPO,
        "prod",
        &[("lever/lever.toml", Some(&demo("lever.toml")))],
    );
    let served = Served::spawn(&gh, &sh, work.path(), None, &[], bootstrap.path(), false);
    served.until_ready().await;
    let reads: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/contents/"))
        .collect();
    assert!(reads.iter().all(|r| r.query == "ref=prod"), "{reads:?}");
    assert_eq!(reads.len(), 4);
    served.kill9().await;
    gh.assert_conformant();
}
