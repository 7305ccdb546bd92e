//! `lever plan`: parse → policy → route for every finding in a file or directory, printed as
//! a table or as JSON Lines. Reads no state and calls nothing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Exit, Failure, Format, load_config};
use crate::asff;
use crate::config::Config;
use crate::controls::Catalog;
use crate::domain::{GroupKey, StableKey};
use crate::policy;
use crate::routing;

/// One line of the plan.
enum Row {
    Finding(Value),
    Rejected {
        file: String,
        index: Option<usize>,
        error: String,
    },
}

pub(super) fn files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_dir() {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| format!("{}: cannot read directory: {e}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
            let p = entry.path();
            if p.is_file()
                && p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("json"))
            {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    } else if path.is_file() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(format!("{}: no such file or directory", path.display()))
    }
}

/// Plans every finding of `paths`; pure apart from reading the files.
fn plan_rows(paths: &[PathBuf], config: &Config, now: DateTime<Utc>) -> Vec<Row> {
    let catalog = Catalog::embedded();
    let unknown = |_: &crate::config::RepoName| None;
    let mut rows = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                rows.push(Row::Rejected {
                    file,
                    index: None,
                    error: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let intake = match asff::parse_document(&bytes, catalog) {
            Ok(i) => i,
            Err(e) => {
                rows.push(Row::Rejected {
                    file,
                    index: None,
                    error: e.to_string(),
                });
                continue;
            }
        };
        for (index, entry) in intake.entries.iter().enumerate() {
            match entry {
                Err(e) => rows.push(Row::Rejected {
                    file: file.clone(),
                    index: Some(e.index),
                    error: e.to_string(),
                }),
                Ok(f) => {
                    let account = config.account_at(&f.account_id, now);
                    // Every finding is new to a plan: one with a settle delay waits it out.
                    let (verdict, _) = policy::settle::apply(
                        policy::decide_at(f, config, now),
                        f,
                        &config.settings.settle,
                        now,
                        now,
                    );
                    let upcoming = upcoming(f, config, now, &verdict, account.mode);
                    let route = routing::route(f, config, now, &unknown);
                    rows.push(Row::Finding(json!({
                        "finding_id": f.id,
                        "stable_key": StableKey::for_finding(f),
                        "control_id": f.control_id(),
                        "account": f.account_id,
                        "severity": f.severity.as_str(),
                        "decision": verdict.decision.as_str(),
                        "reason": verdict.reason.as_str(),
                        "detail": verdict.detail,
                        "repo": route.repo.to_string(),
                        "assignees": route.chain,
                        "group_key": GroupKey::for_finding(f, &config.settings.grouping),
                        "title": f.title,
                        "file": file,
                        "index": index,
                        "environment": account.environment,
                        "mode": account.mode.as_str(),
                        "warnings": route.warnings,
                        "upcoming": upcoming,
                    })));
                }
            }
        }
    }
    rows
}

/// What the account's ramp-up dates after `now` change for `f`: one entry per date on which
/// it starts to open an issue (`opens`) or its informational issue becomes enforced
/// (`enforced`). Pure.
fn upcoming(
    f: &crate::domain::Finding,
    config: &Config,
    now: DateTime<Utc>,
    verdict: &policy::Verdict,
    mode: crate::config::Mode,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = (verdict.decision, mode);
    for at in config.account(&f.account_id).changes_after(now) {
        let account = config.account_at(&f.account_id, at);
        let v = policy::decide_at(f, config, at);
        let after = (v.decision, account.mode);
        let change = match (before, after) {
            ((policy::Decision::Skip, _), (policy::Decision::Ticket, _)) => Some("opens"),
            (
                (policy::Decision::Ticket, crate::config::Mode::RampUp),
                (policy::Decision::Ticket, crate::config::Mode::Enforce),
            ) => Some("enforced"),
            _ => None,
        };
        if let Some(change) = change {
            out.push(json!({
                "on": at.format("%Y-%m-%d").to_string(),
                "change": change,
                "mode": account.mode.as_str(),
                "detail": v.detail,
            }));
        }
        before = after;
    }
    out
}

/// The upcoming section of the text plan: per date, the findings that start to open an issue
/// or whose informational issue becomes enforced.
fn print_upcoming(findings: &[&Value]) {
    let mut by_date: std::collections::BTreeMap<String, Vec<Vec<String>>> = Default::default();
    for v in findings {
        for u in v["upcoming"].as_array().into_iter().flatten() {
            let s = |x: &Value| x.as_str().unwrap_or("-").to_string();
            by_date.entry(s(&u["on"])).or_default().push(vec![
                s(&u["change"]),
                s(&v["severity"]),
                s(&v["account"]),
                s(&v["control_id"]),
                s(&v["repo"]),
                cut(&s(&v["title"]), 60),
            ]);
        }
    }
    if by_date.is_empty() {
        return;
    }
    println!();
    println!("Upcoming (the accounts' ramp-up dates):");
    for (date, mut rows) in by_date {
        rows.sort();
        let opens = rows.iter().filter(|r| r[0] == "opens").count();
        println!();
        println!(
            "On {date}: {opens} finding(s) start to open issues, {} informational issue(s) become enforced",
            rows.len() - opens
        );
        super::print_table(
            &["CHANGE", "SEVERITY", "ACCOUNT", "CONTROL", "REPO", "TITLE"],
            &rows,
        );
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn print_text(rows: &[Row]) {
    let findings: Vec<&Value> = rows
        .iter()
        .filter_map(|r| {
            if let Row::Finding(v) = r {
                Some(v)
            } else {
                None
            }
        })
        .collect();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let header = [
        "DECISION", "REASON", "SEVERITY", "ACCOUNT", "CONTROL", "REPO", "OWNER", "TITLE",
    ];
    let table: Vec<[String; 8]> = findings
        .iter()
        .map(|v| {
            let owner = v["assignees"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(|o| format!("@{o}"));
            let control = v["control_id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| "-".into());
            [
                s(v, "decision"),
                s(v, "reason"),
                s(v, "severity"),
                s(v, "account"),
                control,
                if s(v, "decision") == "ticket" {
                    s(v, "repo")
                } else {
                    "-".into()
                },
                if s(v, "decision") == "ticket" {
                    owner.unwrap_or_else(|| "-".into())
                } else {
                    "-".into()
                },
                cut(&s(v, "title"), 60),
            ]
        })
        .collect();
    let lines: Vec<Vec<String>> = table.into_iter().map(Vec::from).collect();
    super::print_table(&header, &lines);
    let tickets = findings
        .iter()
        .filter(|v| v["decision"] == "ticket")
        .count();
    let mut groups: Vec<&str> = findings
        .iter()
        .filter(|v| v["decision"] == "ticket")
        .filter_map(|v| v["group_key"].as_str())
        .collect();
    groups.sort();
    groups.dedup();
    let rejected: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r, Row::Rejected { .. }))
        .collect();
    println!();
    println!(
        "{} finding(s): {} ticket ({} issue(s)), {} skip; {} rejected",
        findings.len(),
        tickets,
        groups.len(),
        findings.len() - tickets,
        rejected.len()
    );
    for r in rejected {
        if let Row::Rejected { file, index, error } = r {
            match index {
                Some(i) => println!("REJECTED {file}[{i}]: {error}"),
                None => println!("REJECTED {file}: {error}"),
            }
        }
    }
    print_upcoming(&findings);
}

pub(super) fn run(
    config_dir: &Path,
    findings: &Path,
    format: Format,
    now: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    let paths = files(findings).map_err(Failure::usage)?;
    let rows = plan_rows(&paths, &config, now.unwrap_or_else(Utc::now));
    match format {
        Format::Json => {
            for row in &rows {
                let v = match row {
                    Row::Finding(v) => v.clone(),
                    Row::Rejected { file, index, error } => {
                        json!({ "file": file, "index": index, "error": error })
                    }
                };
                println!("{v}");
            }
        }
        Format::Text => print_text(&rows),
    }
    let rejected = rows.iter().any(|r| matches!(r, Row::Rejected { .. }));
    if rejected {
        // Every rejection is in the output above.
        Err(Failure::reported(Exit::Failed))
    } else {
        Ok(())
    }
}
