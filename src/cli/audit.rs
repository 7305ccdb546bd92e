//! `lever audit`: the audit trail (who did what, when, from which event, before → after).

use chrono::{DateTime, Utc};

use super::{Failure, Format, runtime};
use crate::app::open_store;
use crate::config::{ProcessSettings, parse_duration};
use crate::store::AuditFilter;

/// `--since`: an RFC 3339 instant, or a duration back from now (`7d`, `12h`).
pub(super) fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    parse_duration(s)
        .map(|d| Utc::now() - d)
        .map_err(|_| format!("{s:?} is neither an RFC 3339 instant nor a duration such as 7d"))
}

/// `--issue owner/repo#N`.
pub(super) fn parse_issue(s: &str) -> Result<String, String> {
    let (repo, n) = s
        .rsplit_once('#')
        .ok_or_else(|| format!("{s:?} is not owner/repo#NUMBER"))?;
    crate::config::RepoName::parse(repo)?;
    n.parse::<u64>()
        .map_err(|_| format!("{s:?}: {n:?} is not an issue number"))?;
    Ok(s.to_string())
}

pub(super) fn run(
    settings: &ProcessSettings,
    issue: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<u32>,
    format: Format,
) -> Result<(), Failure> {
    runtime()?.block_on(async move {
        let store = open_store(settings).await.map_err(Failure::startup)?;
        let filter = AuditFilter {
            issue,
            group_key: None,
            since,
            limit,
        };
        let entries = store.audit(&filter).await.map_err(Failure::failed)?;
        match format {
            Format::Json => {
                for e in &entries {
                    println!("{}", serde_json::to_string(e).unwrap_or_default());
                }
            }
            Format::Text => {
                println!(
                    "{:<6} {:<20} {:<16} {:<28} {:<24} SOURCE",
                    "SEQ", "AT (UTC)", "ACTOR", "ACTION", "ISSUE"
                );
                for e in &entries {
                    let event = e
                        .detail
                        .get("event")
                        .and_then(|v| v.as_str())
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default();
                    println!(
                        "{:<6} {:<20} {:<16} {:<28} {:<24} {}{event}",
                        e.seq,
                        e.at.format("%Y-%m-%d %H:%M:%S"),
                        e.actor,
                        e.action,
                        e.issue.as_deref().unwrap_or("-"),
                        e.source.as_deref().unwrap_or("-"),
                    );
                }
                println!(
                    "{} entr{}",
                    entries.len(),
                    if entries.len() == 1 { "y" } else { "ies" }
                );
            }
        }
        Ok(())
    })
}
