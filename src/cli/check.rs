//! `lever check`: the shift-left release gate. Loads the findings from one source, projects
//! them with [`crate::check::project`] (or asks Lever's API, which does the same), renders the
//! answer and gives the exit code: 0 nothing would become an issue, 1 something would (block
//! mode), 2 usage or configuration errors, 3 the check could not be made.
//!
//! Sources:
//! - `api` (the default): `GET LEVER_URL/api/v1/check?target_env=ENV` with the workflow's
//!   GitHub Actions OIDC token (`LEVER_OIDC_TOKEN`, else requested from
//!   `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN` for `--audience`).
//!   Lever answers about the repository the token names, with the exceptions it knows.
//! - `securityhub`: GetFindings (paced, as `lever sync`) with the AWS credentials of the
//!   environment, and `--config`; no exceptions are known there (they live in Lever's store).
//! - `file`: ASFF or OCSF findings files (`--findings`, as `lever plan`) and `--config`; no exceptions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use super::{Exit, Failure, load_config};
use crate::asff;
use crate::check::render::{self, Severity as Kind};
use crate::check::{self, Projection};
use crate::config::RepoName;
use crate::controls::Catalog;
use crate::domain::Finding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Report only: exit 0 whatever would be ticketed.
    Warn,
    /// Exit 1 when anything would be ticketed.
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    /// Workflow commands (annotations) on standard output, and a Markdown table appended to
    /// the file `$GITHUB_STEP_SUMMARY` names.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    Api,
    Securityhub,
    File,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The repository, owner/name (default: $GITHUB_REPOSITORY). With --source api, Lever
    /// answers about the repository the OIDC token's id names (a different name, e.g. after a
    /// rename, is only noted).
    #[arg(long, value_name = "OWNER/NAME", env = "GITHUB_REPOSITORY")]
    pub repo: Option<String>,
    /// The environment whose policy applies, e.g. production.
    #[arg(long, value_name = "ENV")]
    pub target_env: String,
    /// Configuration directory (lever.toml, OWNERS): for --source securityhub and file.
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "warn")]
    pub mode: Mode,
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    #[arg(long, value_enum, default_value = "api")]
    pub source: Source,
    /// Lever's base URL, for --source api.
    #[arg(long, value_name = "URL", env = "LEVER_URL")]
    pub lever_url: Option<String>,
    /// The OIDC token's audience (Lever's `[check] audience`).
    #[arg(long, value_name = "AUD", default_value = "lever")]
    pub audience: String,
    /// A findings file, or a directory of .json files, for --source file.
    #[arg(long, value_name = "PATH")]
    pub findings: Option<PathBuf>,
    /// The instant to check at (RFC 3339 or a date), for --source securityhub and file.
    #[arg(long, value_name = "RFC3339|DATE", value_parser = super::parse_instant)]
    pub now: Option<DateTime<Utc>>,
}

pub(super) fn run(args: CheckArgs) -> Result<(), Failure> {
    let projection = match args.source {
        Source::Api => from_api(&args)?,
        Source::File | Source::Securityhub => from_findings(&args)?,
    };
    if let Some(repo) = &args.repo
        && args.source == Source::Api
        && !RepoName::parse(&projection.repo).is_ok_and(|r| r.same_as(repo))
    {
        eprintln!(
            "lever check: note: Lever answered for {} (the repository the token names), not {repo}",
            projection.repo
        );
    }
    output(&projection, &args)?;
    if projection.would_ticket() && args.mode == Mode::Block {
        return Err(Failure::reported(Exit::Failed));
    }
    Ok(())
}

fn output(p: &Projection, args: &CheckArgs) -> Result<(), Failure> {
    let kind = match args.mode {
        Mode::Block => Kind::Error,
        Mode::Warn => Kind::Warning,
    };
    let mut stdout = std::io::stdout().lock();
    let text = match args.format {
        CheckFormat::Text => render::text(p),
        CheckFormat::Json => format!("{}\n", render::json(p)),
        CheckFormat::Github => {
            let summary = render::summary(p, kind);
            match std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
                Some(path) => append(Path::new(&path), &summary)?,
                None => {
                    let _ = writeln!(stdout, "{summary}");
                }
            }
            render::annotations(p, kind)
        }
    };
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::failed(format!("cannot write the output: {e}")))
}

fn append(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            Failure::failed(format!(
                "cannot append the summary to {} ($GITHUB_STEP_SUMMARY): {e}",
                path.display()
            ))
        })
}

fn repo_arg(args: &CheckArgs) -> Result<RepoName, Failure> {
    let repo = args
        .repo
        .as_deref()
        .ok_or_else(|| Failure::usage("--repo OWNER/NAME is required (or GITHUB_REPOSITORY)"))?;
    RepoName::parse(repo).map_err(|e| Failure::usage(format!("--repo: {e}")))
}

/// `--source file` and `--source securityhub`: the projection made here.
fn from_findings(args: &CheckArgs) -> Result<Projection, Failure> {
    let repo = repo_arg(args)?;
    let dir = args.config.as_deref().ok_or_else(|| {
        Failure::usage("--config DIR is required with --source file and --source securityhub")
    })?;
    let config = load_config(dir)?;
    let catalog = Catalog::embedded();
    let findings = match args.source {
        Source::File => {
            let path = args
                .findings
                .as_deref()
                .ok_or_else(|| Failure::usage("--findings PATH is required with --source file"))?;
            read_files(path, catalog)?
        }
        _ => read_securityhub(catalog, config.settings.securityhub.api)?,
    };
    let now = args.now.unwrap_or_else(Utc::now);
    check::project(&config, &findings, &[], &repo, &args.target_env, now).map_err(Failure::usage)
}

/// Every finding of the files; a file or finding Lever cannot read is a usage error (exit 2),
/// each printed as `FILE[INDEX]: message`.
fn read_files(path: &Path, catalog: &Catalog) -> Result<Vec<Finding>, Failure> {
    let paths = super::plan::files(path).map_err(Failure::usage)?;
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let file = p.display().to_string();
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        match asff::parse_document(&bytes, catalog) {
            Ok(intake) => {
                for entry in intake.entries {
                    match entry {
                        Ok(f) => findings.push(f),
                        Err(e) => errors.push(format!("{file}[{}]: {e}", e.index)),
                    }
                }
            }
            Err(e) => errors.push(format!("{file}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(findings)
    } else {
        for e in &errors {
            eprintln!("{e}");
        }
        Err(Failure::usage(format!(
            "{} finding file problem(s)",
            errors.len()
        )))
    }
}

/// The open findings (ACTIVE, NEW or NOTIFIED) from Security Hub, through the paced reader, from
/// the API(s) `[securityhub] api` names (GetFindings, GetFindingsV2 or both).
fn read_securityhub(
    catalog: &'static Catalog,
    api: crate::config::SecurityHubApi,
) -> Result<Vec<Finding>, Failure> {
    super::runtime()?.block_on(async move {
        tokio::spawn(async move {
            let hub = crate::securityhub::SecurityHub::from_sdk_defaults().await;
            let query = crate::securityhub::FindingQuery::sync();
            let values = hub
                .pages_in(&query, api, crate::securityhub::PagerPosition::default())
                .collect_all()
                .await
                .map_err(|e| Failure::unavailable(format!("Security Hub read failed: {e}")))?;
            let mut out = Vec::new();
            for v in &values {
                if let Ok(intake) = asff::parse_value(v, catalog) {
                    out.extend(intake.entries.into_iter().flatten());
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Failure::failed(format!("the Security Hub read stopped: {e}")))?
    })
}

/// The OIDC token: `LEVER_OIDC_TOKEN`, else GitHub's token request. `None` when neither is
/// there (a fork's pull request gets no token).
async fn oidc_token(client: &reqwest::Client, audience: &str) -> Result<String, Failure> {
    if let Ok(t) = std::env::var("LEVER_OIDC_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let (Ok(url), Ok(bearer)) = (
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"),
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Err(Failure::unavailable(
            "no OIDC token: ACTIONS_ID_TOKEN_REQUEST_URL is not set (the workflow needs \
             `permissions: id-token: write`; pull requests from forks get no token) and \
             LEVER_OIDC_TOKEN is empty",
        ));
    };
    let mut request = url::Url::parse(&url).map_err(|e| {
        Failure::unavailable(format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"))
    })?;
    request.query_pairs_mut().append_pair("audience", audience);
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        value: String,
    }
    let resp = client
        .get(request)
        .bearer_auth(bearer)
        .send()
        .await
        .map_err(|e| Failure::unavailable(format!("cannot request the OIDC token: {e}")))?;
    if !resp.status().is_success() {
        return Err(Failure::unavailable(format!(
            "the OIDC token request answered {}",
            resp.status()
        )));
    }
    let answer: TokenAnswer = resp
        .json()
        .await
        .map_err(|e| Failure::unavailable(format!("the OIDC token answer is unreadable: {e}")))?;
    Ok(answer.value)
}

/// `--source api`: Lever's answer, as it gave it.
fn from_api(args: &CheckArgs) -> Result<Projection, Failure> {
    let base = args
        .lever_url
        .as_deref()
        .ok_or_else(|| Failure::usage("--lever-url URL is required with --source api"))?;
    let mut url = url::Url::parse(base)
        .map_err(|e| Failure::usage(format!("--lever-url {base:?} is not a URL: {e}")))?;
    url.set_path(&format!(
        "{}/api/v1/check",
        url.path().trim_end_matches('/')
    ));
    url.query_pairs_mut()
        .append_pair("target_env", &args.target_env);
    let audience = args.audience.clone();
    super::runtime()?.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::failed(format!("cannot build the HTTP client: {e}")))?;
        let token = oidc_token(&client, &audience).await?;
        let resp = client
            .get(url.clone())
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Failure::unavailable(format!("cannot reach Lever at {url}: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let reason = || {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.chars().take(200).collect())
        };
        match status.as_u16() {
            200 => serde_json::from_str(&body).map_err(|e| {
                Failure::unavailable(format!("Lever's answer is not a check result: {e}"))
            }),
            400 => Err(Failure::usage(format!(
                "Lever refused the check: {}",
                reason()
            ))),
            _ => Err(Failure::unavailable(format!(
                "Lever answered {status}: {}",
                reason()
            ))),
        }
    })
}
