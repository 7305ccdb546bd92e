//! `lever report`: the report (`crate::report`) from DATABASE_URL, as Markdown, JSON or CSV.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use clap::ValueEnum;

use super::{Failure, load_config, runtime};
use crate::app::open_store;
use crate::config::{ProcessSettings, parse_duration};
use crate::report::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
    Csv,
}

/// `--since`: a duration back from `--now` (`30d`, `12h`) or an RFC 3339 instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Ago(Duration),
    At(DateTime<Utc>),
}

impl Since {
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::Ago(d) => now - d,
            Since::At(t) => t,
        }
    }
}

pub(super) fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Since::At(t.with_timezone(&Utc)));
    }
    match parse_duration(s) {
        Ok(d) if d > Duration::zero() => Ok(Since::Ago(d)),
        Ok(_) => Err(format!("{s:?} must be longer than zero")),
        Err(_) => Err(format!(
            "{s:?} is neither a duration such as 30d nor an RFC 3339 instant"
        )),
    }
}

pub(super) fn run(
    settings: &ProcessSettings,
    config: &Path,
    since: Since,
    format: ReportFormat,
    now: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let config = load_config(config)?;
    let now = now.unwrap_or_else(Utc::now);
    let since = since.resolve(now);
    if since >= now {
        return Err(Failure::usage(format!(
            "--since: {} is not before --now {}",
            since.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    let period = Period {
        since,
        now,
        expiring: config.settings.report.expiring,
    };
    runtime()?.block_on(async move {
        let store = open_store(settings).await.map_err(Failure::startup)?;
        let report = crate::report::load(store.as_ref(), &config, period)
            .await
            .map_err(Failure::failed)?;
        match format {
            ReportFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(Failure::failed)?
            ),
            ReportFormat::Markdown => print!("{}", crate::report::markdown(&report)),
            ReportFormat::Csv => print!("{}", crate::report::csv(&report)),
        }
        Ok(())
    })
}
