//! The real `lever` binary: `plan`, `config check`, `explain`, their outputs and exit codes.

use std::path::Path;
use std::process::Output;

use crate::support::app::root;
use crate::support::bin::lever;

use serde_json::Value;

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

const NOW: &str = "2026-11-23T12:00:00Z";

/// (file prefix, control, account, severity, decision, reason, repo, owner)
type PlanRow = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
#[rustfmt::skip]
fn demo_plan_json_is_exactly_the_demo_story() {
    let out = lever(&["plan", "--config", "examples/demo", "--findings", "examples/demo/findings", "--format", "json", "--now", NOW]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let rows = json_lines(&out);
    // (file prefix, control, account, severity, decision, reason, repo, owner)
    let want: &[PlanRow] = &[
        ("01-", Some("S3.1"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("01-", Some("S3.1"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("01-", Some("S3.1"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("02-", Some("EC2.8"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("02-", Some("EC2.8"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("02-", Some("EC2.8"), "111111111111", "HIGH", "ticket", "ticket", "acme/payments", "bob"),
        ("03-", Some("RDS.2"), "111111111111", "CRITICAL", "ticket", "ticket", "acme/ledger", "carol"),
        ("04-", Some("S3.5"), "111111111111", "HIGH", "ticket", "ticket", "acme/platform", "erin"),
        ("05-", Some("CloudTrail.2"), "111111111111", "MEDIUM", "skip", "below-threshold", "acme/payments", "bob"),
        ("05-", Some("EC2.19"), "111111111111", "CRITICAL", "skip", "passed", "acme/payments", "bob"),
        ("05-", Some("Lambda.1"), "111111111111", "CRITICAL", "skip", "archived", "acme/payments", "bob"),
        ("05-", Some("IAM.1"), "111111111111", "HIGH", "skip", "suppressed", "acme/payments", "bob"),
        ("06-", Some("EC2.19"), "222222222222", "HIGH", "skip", "below-threshold", "acme/payments", "bob"),
        ("06-", Some("IAM.6"), "222222222222", "CRITICAL", "ticket", "ticket", "acme/payments", "bob"),
        ("07-", Some("EC2.19"), "333333333333", "CRITICAL", "skip", "account-off", "acme/security", "sam"),
        ("08-", None, "444444444444", "CRITICAL", "ticket", "ticket", "acme/security", "sam"),
    ];
    assert_eq!(rows.len(), want.len(), "{rows:#?}");
    for (row, (file, control, account, severity, decision, reason, repo, owner)) in rows.iter().zip(want) {
        let name = Path::new(row["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with(file), "{name} vs {file}");
        assert_eq!(row["control_id"].as_str(), *control, "{name}");
        assert_eq!(row["account"], *account, "{name}");
        assert_eq!(row["severity"], *severity, "{name}");
        assert_eq!(row["decision"], *decision, "{name}");
        assert_eq!(row["reason"], *reason, "{name}");
        assert_eq!(row["repo"], *repo, "{name}");
        assert_eq!(row["assignees"][0], *owner, "{name}");
        for field in ["finding_id", "stable_key", "detail", "group_key", "title"] {
            assert!(row[field].as_str().is_some_and(|s| !s.is_empty()), "{name}: {field}");
        }
        assert!(row.get("error").is_none(), "only rejections carry error");
    }
    // Three standards, one problem; three ASG instances, one issue.
    let keys = |prefix: &str, field: &str| -> std::collections::BTreeSet<String> {
        rows.iter().filter(|r| r["file"].as_str().unwrap().contains(prefix)).map(|r| r[field].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(keys("/01-", "stable_key").len(), 1);
    assert_eq!(keys("/02-", "stable_key").len(), 3, "three instances are three problems");
    assert_eq!(keys("/02-", "group_key").len(), 1, "... in one Auto Scaling group: one issue");
    assert!(keys("/02-", "group_key").iter().next().unwrap().contains("family:aws:autoscaling:groupName=checkout-web"));
    let tickets: std::collections::BTreeSet<&str> = rows.iter().filter(|r| r["decision"] == "ticket").map(|r| r["group_key"].as_str().unwrap()).collect();
    assert_eq!(tickets.len(), 6, "six issues");
    // Details name the deciding values.
    assert_eq!(rows[8]["detail"], "severity MEDIUM is below the minimum HIGH of account 111111111111 (payments-prod)");
    assert_eq!(rows[14]["detail"], "account 333333333333 (prototype) has mode off");
}

#[test]
fn demo_plan_text_is_a_readable_table() {
    let out = lever(&[
        "plan",
        "--config",
        "examples/demo",
        "--findings",
        "examples/demo/findings",
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    for col in [
        "DECISION", "REASON", "SEVERITY", "ACCOUNT", "CONTROL", "REPO", "OWNER", "TITLE",
    ] {
        assert!(first.contains(col), "{first}");
    }
    assert!(
        text.contains("16 finding(s): 10 ticket (6 issue(s)), 6 skip; 0 rejected"),
        "{text}"
    );
    assert!(text.contains("@carol"));
}

#[test]
fn plan_reports_every_rejection_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/asff/mixed-good-and-bad.json"),
        dir.path().join("a-mixed.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b-broken.json"), "{ not json").unwrap();
    std::fs::write(dir.path().join("c-ignored.txt"), "not a .json file").unwrap();
    let out = lever(&[
        "plan",
        "--config",
        "examples/demo",
        "--findings",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
        "--now",
        NOW,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out);
    let rejected: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    let accepted = rows.len() - rejected.len();
    assert_eq!(accepted, 2, "the good findings are still planned");
    assert_eq!(rejected.len(), 6, "{rejected:#?}");
    for r in &rejected {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["error", "file", "index"],
            "rejections are exactly {{file, index, error}}"
        );
    }
    let broken = rejected
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("b-broken.json"))
        .unwrap();
    assert!(
        broken["index"].is_null(),
        "a whole unreadable file has index null"
    );
    assert!(
        broken["error"].as_str().unwrap().contains("line 1"),
        "{broken}"
    );
    let mixed: Vec<i64> = rejected
        .iter()
        .filter_map(|r| r["index"].as_i64())
        .collect();
    assert_eq!(mixed.len(), 5);
    assert!(
        rejected
            .iter()
            .any(|r| r["error"].as_str().unwrap().contains("Resources[0].Id")),
        "{rejected:#?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r["file"].as_str().unwrap_or("").ends_with(".txt"))
    );
}

#[test]
fn plan_usage_and_config_errors_exit_2() {
    let out = lever(&[
        "plan",
        "--config",
        "examples/demo",
        "--findings",
        "/no/such/path",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or directory"));
    let out = lever(&[
        "plan",
        "--config",
        "/no/such/dir",
        "--findings",
        "examples/demo/findings",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configuration directory not found"));
    let out = lever(&[
        "plan",
        "--config",
        "examples/demo",
        "--findings",
        "examples/demo/findings",
        "--now",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let out = lever(&["plan", "--findings", "examples/demo/findings"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --config is a usage error"
    );
}

#[test]
fn config_check_exit_codes_and_located_errors() {
    let ok = lever(&["config", "check", "--config", "examples/demo"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("valid (3 accounts, 5 OWNERS rules, 3 rotations)")
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lever.toml"),
        "[github]\nfallback_repo = \"acme/security\"\n\n[defaults]\nmode = \"sometimes\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("OWNERS"),
        "* acme/security @rotation:nope\nbogus acme/x @a\n",
    )
    .unwrap();
    let bad = lever(&["config", "check", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let lines: Vec<String> = String::from_utf8_lossy(&bad.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let toml = dir.path().join("lever.toml").display().to_string();
    let owners = dir.path().join("OWNERS").display().to_string();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{toml}:5: ")) && l.contains("unknown mode")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{owners}:2: "))),
        "{lines:#?}"
    );

    let usage = lever(&["config", "check"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn explain_prints_the_issue_for_a_control() {
    let out = lever(&["explain", "S3.1", "--config", "examples/demo", "--now", NOW]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Repository: acme/payments",
        "Assignee:   @bob",
        "Labels:     security-finding, severity:",
        "## How to fix",
        "## If it should not be fixed",
        "<!-- lever:group=control|S3.1|111111111111|us-east-1|",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
    let unknown = lever(&["explain", "Nope.99", "--config", "examples/demo"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown control"));
}

/// The curated control ids: the stems of `issue-templates/controls/*.toml`.
fn curated_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root().join("issue-templates/controls"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn explain_all_renders_every_curated_control_as_markdown_and_json() {
    let ids = curated_ids();
    assert!(!ids.is_empty());
    let md = lever(&[
        "explain",
        "--all",
        "--config",
        "examples/demo",
        "--now",
        NOW,
    ]);
    assert_eq!(
        md.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    let text = String::from_utf8_lossy(&md.stdout);
    assert_eq!(
        text.matches("\nTitle:      ").count() + usize::from(text.starts_with("Title:")),
        ids.len(),
        "{text}"
    );
    for id in &ids {
        assert!(
            text.contains(&format!("Title:      {id}: ")),
            "{id} missing"
        );
    }

    let js = lever(&[
        "explain",
        "--all",
        "--format",
        "json",
        "--config",
        "examples/demo",
        "--now",
        NOW,
    ]);
    assert_eq!(js.status.code(), Some(0));
    let all: Vec<Value> = serde_json::from_slice(&js.stdout).expect("a JSON array");
    let got: Vec<&str> = all
        .iter()
        .map(|e| e["control"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    for e in &all {
        let id = e["control"]["id"].as_str().unwrap();
        assert_eq!(e["curated"]["id"], id);
        let why = e["curated"]["why"].as_str().unwrap().trim();
        let body = e["issue"]["body"].as_str().unwrap();
        assert!(body.contains(why), "{id}: the body does not show why");
        assert!(e["issue"]["title"].as_str().unwrap().starts_with(id));
    }

    // Any control of the catalog, curated or not; JSON for one control is one object.
    let one = lever(&[
        "explain",
        "Macie.1",
        "--format",
        "json",
        "--config",
        "examples/demo",
        "--now",
        NOW,
    ]);
    assert_eq!(one.status.code(), Some(0));
    let one: Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one["control"]["id"], "Macie.1");
    assert!(one["curated"].is_null());
    assert!(
        one["issue"]["body"]
            .as_str()
            .unwrap()
            .contains("## How to verify")
    );

    let both = lever(&["explain", "S3.1", "--all", "--config", "examples/demo"]);
    assert_eq!(both.status.code(), Some(2));
    let neither = lever(&["explain", "--config", "examples/demo"]);
    assert_eq!(neither.status.code(), Some(2));
}

/// The README's rendered S3.8 issue is what `lever explain S3.8` prints today.
#[test]
fn readme_shows_the_issue_lever_explain_renders() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split_once("### What a developer sees")
        .expect("README section \"What a developer sees\"")
        .1;
    let shown = section
        .split_once("````markdown\n")
        .and_then(|(_, rest)| rest.split_once("\n````"))
        .expect("a ````markdown block")
        .0;
    let out = lever(&[
        "explain",
        "S3.8",
        "--config",
        "examples/demo",
        "--now",
        "2026-11-23T12:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let body = text.split_once("\n\n").unwrap().1.trim_end();
    assert_eq!(
        shown, body,
        "README.md's rendered S3.8 issue is out of date: paste the body printed by `lever explain S3.8 --config examples/demo --now 2026-11-23T12:00:00Z`"
    );
}

/// `lever plan` over every file of the conformance corpus finishes, reporting each rejected
/// file with its reason (none of the real files is rejected today).
#[test]
fn plan_over_the_whole_conformance_corpus() {
    let dir = crate::fakes::openapi::conformance_dir().join("asff/findings");
    if !dir.is_dir() {
        assert!(
            std::env::var("LEVER_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
            "{} missing",
            dir.display()
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: ../shared/conformance not present ({})",
            dir.display()
        );
        return;
    }
    let out = lever(&[
        "plan",
        "--config",
        "examples/demo",
        "--findings",
        dir.to_str().unwrap(),
        "--format",
        "json",
        "--now",
        NOW,
    ]);
    let rows = json_lines(&out);
    let rejected = rows.iter().filter(|r| r.get("error").is_some()).count();
    assert_eq!(out.status.code(), Some(if rejected == 0 { 0 } else { 1 }));
    assert_eq!(rows.len() - rejected, 167, "every real finding is planned");
    assert_eq!(rejected, 0);
    for r in &rows {
        assert!(
            matches!(r["decision"].as_str(), Some("ticket" | "skip")),
            "{r}"
        );
    }
}

/// `lever` with `args` in the repository root, with only `env` (and PATH) in its environment.
fn lever_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run lever")
}

/// Every variable of the README's environment table (a contract) is an option of
/// `lever serve`, read from that variable; `--help` never shows a secret's value.
#[test]
fn serve_help_lists_the_documented_environment_without_secret_values() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme
        .split("### Environment (for `lever serve`)")
        .nth(1)
        .expect("the README documents the environment")
        .split("\n## ")
        .next()
        .unwrap();
    let documented: Vec<&str> = table
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('=').next().unwrap())
        .filter(|v| {
            v.len() > 3
                && v.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && !v.starts_with("AWS_")
        })
        .collect();
    assert!(documented.len() >= 10, "{documented:?}");
    let out = lever_with_env(
        &["serve", "--help"],
        &[
            ("GITHUB_PRIVATE_KEY", "private-key-secret-value"),
            ("GITHUB_WEBHOOK_SECRET", "webhook-secret-value,other"),
            ("LEVER_INGEST_TOKEN", "ingest-secret-value"),
            ("LEVER_METRICS_TOKEN", "metrics-secret-value"),
            ("DATABASE_URL", "postgres://lever:db-secret-value@db/lever"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for var in &documented {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing:\n{help}"
        );
    }
    assert!(!help.contains("secret-value"), "{help}");
}

/// Commands that need the GitHub App or the database fail with the usage code (2), naming the
/// setting to fix.
#[test]
fn missing_or_bad_process_settings_exit_2() {
    let out = lever_with_env(&["sync", "--config", "examples/demo"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lever sync: GITHUB_APP_ID is not set"),
        "{err}"
    );

    let out = lever_with_env(
        &["sync", "--config", "examples/demo"],
        &[
            ("GITHUB_APP_ID", "1"),
            ("GITHUB_PRIVATE_KEY_PATH", "/no/such/key.pem"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GITHUB_PRIVATE_KEY_PATH=/no/such/key.pem"),
        "{err}"
    );

    let out = lever_with_env(
        &["serve", "--config", "examples/demo"],
        &[("LEVER_WORKERS", "0")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LEVER_WORKERS must be 1..64"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("no/such/dir/lever.db").display()
    );
    let out = lever_with_env(&["audit"], &[("DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lever audit: opening DATABASE_URL"), "{err}");
}
