//! `lever explain CONTROL_ID | --all [--format markdown|json]`: the issue Lever would open for
//! a sample finding of a control (any control of the catalog), or of every control with a
//! curated explanation.

use std::path::Path;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde::Serialize;

use super::{Failure, load_config};
use crate::config::Config;
use crate::controls::{Catalog, ControlInfo};
use crate::domain::{GroupKey, Severity, sample};
use crate::explain::curated::Curated;
use crate::explain::{IssueInput, RenderedIssue, Renderer};
use crate::routing;

/// Output of `lever explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// What `lever` prints for a person: routing, labels, title, then the issue body.
    Markdown,
    /// One JSON object per control (an array with `--all`): the control, its curated
    /// explanation (null when there is none) and the rendered issue.
    Json,
}

/// Which controls to explain.
pub enum Which<'a> {
    One(&'a str),
    AllCurated,
}

/// One control, explained.
#[derive(Debug, Serialize)]
struct Explained<'a> {
    control: ControlJson<'a>,
    curated: Option<&'a Curated>,
    repository: String,
    assignee: Option<String>,
    issue: RenderedIssue,
}

#[derive(Debug, Serialize)]
struct ControlJson<'a> {
    id: &'a str,
    title: &'a str,
    severity: Option<&'static str>,
    category: Option<&'a str>,
    schedule_type: Option<&'a str>,
    remediation_url: Option<&'a str>,
}

pub(super) fn run(
    which: Which<'_>,
    format: ExplainFormat,
    config_dir: &Path,
    account: &str,
    now: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    let catalog = Catalog::embedded();
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::usage(format!(
            "--account {account:?} must be a 12-digit AWS account id"
        )));
    }
    let renderer = Renderer::new(config.templates_dir().as_deref()).map_err(Failure::usage)?;
    let controls: Vec<&ControlInfo> = match which {
        Which::One(id) => match catalog.get(id) {
            Some(c) => vec![c],
            None => {
                return Err(Failure::usage(format!(
                    "unknown control {id:?} (Lever knows {} Security Hub controls, e.g. S3.1, IAM.6, EC2.19; `lever explain --all` shows the {} with a curated explanation)",
                    catalog.len(),
                    renderer.curated().len()
                )));
            }
        },
        Which::AllCurated => renderer
            .curated()
            .all()
            .map(|c| {
                catalog.get(&c.id).ok_or_else(|| {
                    Failure::usage(format!("curated {} is not in the catalog", c.id))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let now = now.unwrap_or_else(Utc::now);
    let explained = controls
        .into_iter()
        .map(|c| explain(c, &config, &renderer, account, now))
        .collect::<Result<Vec<_>, _>>()?;
    match (format, which) {
        (ExplainFormat::Json, Which::One(_)) => println!(
            "{}",
            serde_json::to_string_pretty(&explained[0]).map_err(Failure::failed)?
        ),
        (ExplainFormat::Json, Which::AllCurated) => println!(
            "{}",
            serde_json::to_string_pretty(&explained).map_err(Failure::failed)?
        ),
        (ExplainFormat::Markdown, _) => {
            for (i, e) in explained.iter().enumerate() {
                if i > 0 {
                    println!("\n---\n");
                }
                println!("Repository: {}", e.repository);
                println!(
                    "Assignee:   {}",
                    e.assignee
                        .as_deref()
                        .map(|o| format!("@{o}"))
                        .unwrap_or_else(|| "(none)".into())
                );
                println!("Labels:     {}", e.issue.labels.join(", "));
                println!("Title:      {}", e.issue.title);
                println!();
                print!("{}", e.issue.body);
            }
        }
    }
    Ok(())
}

/// The issue for a sample finding of `control` in `account`, routed as `config` says.
fn explain<'a>(
    control: &'a ControlInfo,
    config: &Config,
    renderer: &'a Renderer,
    account: &str,
    now: DateTime<Utc>,
) -> Result<Explained<'a>, Failure> {
    let mut f = sample::control_finding(
        &control.id,
        &control.title,
        control.severity.unwrap_or(Severity::High),
    );
    f.account_id = account.to_string();
    for r in &mut f.resources {
        r.id = r.id.replace("111111111111", account);
    }
    let route = routing::route(&f, config, now, &|_| None);
    let key = GroupKey::for_finding(&f, &config.settings.grouping);
    let policy = &config.account_at(account, now);
    let due = (policy.mode == crate::config::Mode::Enforce)
        .then(|| {
            config
                .settings
                .escalation
                .sla
                .fix_within(&policy.environment, f.severity)
                .map(|d| now + d)
        })
        .flatten();
    let findings = [f];
    let issue = renderer
        .render(&IssueInput {
            group_key: &key,
            findings: &findings,
            account: policy,
            owner: route.owner(),
            approvers: &config.settings.approvers,
            ignore_tag: &config.settings.policy.ignore_tag,
            notes: &route.warnings,
            due,
        })
        .map_err(Failure::usage)?;
    Ok(Explained {
        control: ControlJson {
            id: &control.id,
            title: &control.title,
            severity: control.severity.map(|s| s.as_str()),
            category: control.category.as_deref(),
            schedule_type: control.schedule_type.as_deref(),
            remediation_url: control.remediation_url.as_deref(),
        },
        curated: renderer.curated().get(&control.id),
        repository: route.repo.to_string(),
        assignee: route.owner().map(str::to_string),
        issue,
    })
}
