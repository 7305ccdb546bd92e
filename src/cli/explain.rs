//! `lever explain CONTROL_ID`: the issue Lever would open for a sample finding of a control.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Failure, load_config};
use crate::controls::Catalog;
use crate::domain::{GroupKey, Severity, sample};
use crate::explain::{IssueInput, Renderer};
use crate::routing;

pub(super) fn run(
    control_id: &str,
    config_dir: &Path,
    account: &str,
    now: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    let catalog = Catalog::embedded();
    let Some(control) = catalog.get(control_id) else {
        return Err(Failure::usage(format!(
            "unknown control {control_id:?} (Lever knows {} Security Hub controls, e.g. S3.1, IAM.6, EC2.19)",
            catalog.len()
        )));
    };
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::usage(format!(
            "--account {account:?} must be a 12-digit AWS account id"
        )));
    }
    let renderer = Renderer::new(config.templates_dir().as_deref()).map_err(Failure::usage)?;
    let mut f = sample::control_finding(
        &control.id,
        &control.title,
        control.severity.unwrap_or(Severity::High),
    );
    f.account_id = account.to_string();
    for r in &mut f.resources {
        r.id = r.id.replace("111111111111", account);
    }
    let now = now.unwrap_or_else(Utc::now);
    let route = routing::route(&f, &config, now, &|_| None);
    let key = GroupKey::for_finding(&f, &config.settings.grouping);
    let findings = [f];
    let policy = config.account_at(account, now);
    let issue = match renderer.render(&IssueInput {
        group_key: &key,
        findings: &findings,
        account: &policy,
        owner: route.owner(),
        approvers: &config.settings.approvers,
        ignore_tag: &config.settings.policy.ignore_tag,
        notes: &route.warnings,
        due: (policy.mode == crate::config::Mode::Enforce)
            .then(|| {
                let environment = &policy.environment;
                config
                    .settings
                    .escalation
                    .sla
                    .fix_within(environment, findings[0].severity)
                    .map(|d| now + d)
            })
            .flatten(),
    }) {
        Ok(i) => i,
        Err(e) => return Err(Failure::usage(e)),
    };
    println!("Repository: {}", route.repo);
    println!(
        "Assignee:   {}",
        route
            .owner()
            .map(|o| format!("@{o}"))
            .unwrap_or_else(|| "(none)".into())
    );
    println!("Labels:     {}", issue.labels.join(", "));
    println!("Title:      {}", issue.title);
    println!();
    print!("{}", issue.body);
    Ok(())
}
