//! `lever report` on a seeded month of history, and the dashboard page showing the same
//! numbers for the same store and instant.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::app::{NOW, TestApp, demo_config_with, root, t};
use crate::support::history::{TEAMS, seed_month};

/// A seeded SQLite database (its directory and `DATABASE_URL`).
pub async fn seeded() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lever.db").display());
    let store = lever::store::open(&url).await.expect("store");
    seed_month(store.as_ref(), t(NOW)).await;
    (dir, url)
}

/// `lever report ARGS` against `database_url` with the configuration in `config`.
pub fn report(database_url: &str, config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .arg("report")
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run lever")
}

pub fn report_json(database_url: &str, config: &Path) -> Value {
    let out = report(
        database_url,
        config,
        &["--since", "30d", "--now", NOW, "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The open issues of a by-severity object of the report, summed.
pub fn total(by_severity: &Value) -> u64 {
    ["critical", "high", "medium", "low", "informational"]
        .iter()
        .map(|s| by_severity[s].as_u64().unwrap())
        .sum()
}

/// The summary cards the page shows (`data-metric` name), with the number `lever report
/// --format json` gives for each.
pub fn expected_cards(report: &Value) -> [(&'static str, u64); 7] {
    let totals = &report["totals"];
    [
        ("open-now", total(&totals["open_now"])),
        (
            "critical-now",
            totals["open_now"]["critical"].as_u64().unwrap(),
        ),
        ("open-at-start", total(&totals["open_at_start"])),
        ("opened", totals["opened"].as_u64().unwrap()),
        ("closed", totals["closed"].as_u64().unwrap()),
        ("overdue", totals["overdue"].as_u64().unwrap()),
        (
            "not-acknowledged",
            totals["not_acknowledged"].as_u64().unwrap(),
        ),
    ]
}

#[tokio::test]
async fn lever_report_reads_the_history_in_every_format() {
    let (_db, url) = seeded().await;
    let config = demo_config_with("[report]\nexpiring = \"7d\"\n");
    let json = report_json(&url, config.path());

    // Checked against the store itself, not against the report's own arithmetic.
    let store = lever::store::open(&url).await.unwrap();
    let groups = store.list_groups(None).await.unwrap();
    let open: Vec<_> = groups
        .iter()
        .filter(|g| g.status == lever::store::GroupStatus::Open)
        .collect();
    assert_eq!(total(&json["totals"]["open_now"]), open.len() as u64);
    assert!(!open.is_empty());
    for team in TEAMS {
        let row = json["teams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["team"] == team)
            .unwrap_or_else(|| panic!("{team} in {json}"));
        let mine = open.iter().filter(|g| g.repo == team).count() as u64;
        assert_eq!(total(&row["open_now"]), mine, "{team}");
    }
    let burndown = json["burndown"].as_array().unwrap();
    assert_eq!(
        burndown.len(),
        31,
        "one point per day of the 30-day period and today"
    );
    assert_eq!(
        total(&burndown.last().unwrap()["open"]),
        open.len() as u64,
        "the last point is now"
    );
    assert_eq!(json["expiring_days"], 7, "[report] expiring");
    let expiring: Vec<&str> = json["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["issue"].as_str().unwrap())
        .collect();
    assert_eq!(
        expiring,
        vec!["acme/web#8"],
        "the suppressed group's exception"
    );
    let tags: Vec<&str> = json["ignore_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["arn"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        vec!["arn:aws:s3:::test-fixtures"],
        "only the tag set in the period"
    );
    assert!(
        json["totals"]["time_to_acknowledge"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        json["totals"]["time_to_fix"]["mean_hours"]
            .as_f64()
            .unwrap()
            >= 24.0
    );

    let md = report(&url, config.path(), &["--now", NOW]);
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.starts_with("# Lever report, 2026-10-24 to 2026-11-23"),
        "{md}"
    );
    assert!(
        md.contains("`test data <only>`"),
        "untrusted text inert: {md}"
    );
    let csv = report(&url, config.path(), &["--now", NOW, "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("section,team,critical,"), "{csv}");
    assert_eq!(csv.matches("\nburndown,").count(), 31);

    for bad in ["yesterday", "-3d", "0d"] {
        let out = report(&url, config.path(), &[&format!("--since={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--since"), "{bad}: {err}");
    }
    let out = report(
        &url,
        config.path(),
        &["--since", "2026-12-01T00:00:00Z", "--now", NOW],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

/// The number in `data-metric="NAME"` on the page.
pub fn metric(html: &str, name: &str) -> String {
    let needle = format!("data-metric=\"{name}\">");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} on the page"))
        + needle.len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn the_page_and_the_report_agree() {
    let (_db, url) = seeded().await;
    let config = demo_config_with("[dashboard]\nproxy_header = \"X-Forwarded-User\"\n");
    let json = report_json(&url, config.path());
    let app = TestApp::builder()
        .config(config.path())
        .database(&url)
        .start()
        .await;
    let r = app
        .http
        .get(format!("{}/", app.url))
        .header("x-forwarded-user", "dana")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for (name, want) in expected_cards(&json) {
        assert_eq!(metric(&html, name), want.to_string(), "{name}");
    }
    for team in json["teams"].as_array().unwrap() {
        let name = team["team"].as_str().unwrap();
        let row_start = html
            .find(&format!("<tr data-team=\"{name}\">"))
            .unwrap_or_else(|| panic!("{name} row"));
        let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
        for sev in ["critical", "high", "medium", "low", "informational"] {
            assert!(
                row.contains(&format!(
                    "data-field=\"{sev}\">{}<",
                    team["open_now"][sev].as_u64().unwrap()
                )),
                "{name} {sev}: {row}"
            );
        }
    }
    for p in json["burndown"].as_array().unwrap() {
        let day = p["date"].as_str().unwrap();
        let start = html.find(&format!("<tr data-day=\"{day}\">")).unwrap();
        let row = &html[start..start + html[start..].find("</tr>").unwrap()];
        assert!(
            row.contains(&format!(
                "data-field=\"critical\">{}<",
                p["open"]["critical"]
            )),
            "{day}: {row}"
        );
    }
}
