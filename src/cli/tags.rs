//! `lever tags audit`: every resource carrying the ignore tag, with its reason, account,
//! region, owner repository and first-seen date, and what appeared, changed or disappeared
//! since the previous audit (kept in the store at DATABASE_URL).

use std::path::Path;

use super::{Failure, Format, load_config, print_table, runtime};
use crate::config::ProcessSettings;
use crate::securityhub::Tagging;
use crate::worker::tag_audit::{self, AuditError, AuditReport};

pub(super) fn audit(
    settings: &ProcessSettings,
    config_dir: &Path,
    format: Format,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    runtime()?.block_on(async move {
        let store = crate::app::open_store(settings)
            .await
            .map_err(Failure::startup)?;
        let tagging = Tagging::from_sdk_defaults(config.settings.tags.requests_per_second);
        let now = chrono::Utc::now();
        let audit = tag_audit::observe(store.as_ref(), &config, &tagging, now)
            .await
            .map_err(|e| match e {
                AuditError::Config(m) => Failure::usage(m),
                AuditError::Store(_) => Failure::failed(e),
            })?;
        tag_audit::record(store.as_ref(), &audit)
            .await
            .map_err(Failure::failed)?;
        let report = &audit.report;
        match format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(report).map_err(Failure::failed)?
            ),
            Format::Text => print_text(report),
        }
        if !report.unread.is_empty() {
            return Err(Failure::failed(format!(
                "{} account/region scope(s) could not be read (their resources were kept as the previous audit saw them)",
                report.unread.len()
            )));
        }
        Ok(())
    })
}

/// Untrusted text for a terminal: quoted, control characters escaped.
fn shown(s: &str) -> String {
    format!("{s:?}")
}

fn print_text(r: &AuditReport) {
    let previous = r
        .previous_audit_at
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "never (first audit)".into());
    println!(
        "tag audit of {} at {} ({} account(s) x {} region(s)); previous audit: {previous}",
        r.tag_key,
        r.audited_at.to_rfc3339(),
        r.accounts.len(),
        r.regions.len()
    );
    println!();
    println!("{} ignored resource(s):", r.resources.len());
    let rows: Vec<Vec<String>> = r
        .resources
        .iter()
        .map(|x| {
            vec![
                x.account_id.clone(),
                x.region.clone(),
                x.arn.clone(),
                if x.has_reason {
                    shown(&x.reason)
                } else {
                    "NO REASON (not honoured)".into()
                },
                x.owner_repo.clone(),
                x.first_seen.to_rfc3339(),
            ]
        })
        .collect();
    print_table(
        &[
            "ACCOUNT",
            "REGION",
            "RESOURCE",
            "REASON",
            "OWNER",
            "FIRST SEEN",
        ],
        &rows,
    );
    println!();
    println!("{} change(s) since the previous audit:", r.changes.len());
    for c in &r.changes {
        let x = &c.resource;
        let reason = if x.has_reason {
            shown(&x.reason)
        } else {
            "NO REASON".into()
        };
        match &c.previous_reason {
            Some(before) => println!(
                "  {:<11} {} {} -> {} (owner {}, first seen {})",
                c.change,
                x.arn,
                shown(before),
                reason,
                x.owner_repo,
                x.first_seen.to_rfc3339()
            ),
            None => println!(
                "  {:<11} {} {} (owner {}, first seen {})",
                c.change,
                x.arn,
                reason,
                x.owner_repo,
                x.first_seen.to_rfc3339()
            ),
        }
    }
    if r.without_reason > 0 {
        println!();
        println!(
            "{} tag(s) without a reason: a blank value does not count; Lever keeps tracking those resources.",
            r.without_reason
        );
    }
    for s in &r.unread {
        println!();
        println!(
            "NOT READ: account {} region {}: {}",
            s.account_id, s.region, s.error
        );
    }
    println!();
    println!("{}", r.note);
}
