//! Command line: `lever serve | healthcheck | plan | sync | audit | jobs | explain | oncall |
//! tags audit | report | config check | app manifest | setup`.
//!
//! Every command returns `Result<(), Failure>`; [`run`] prints the failure and turns it into
//! the exit code, for all commands in one place: 0 success, 1 the command ran and failed (or
//! found problems in its input), 2 usage, configuration or start-up errors, 3 (`lever check`)
//! the check could not be made (Lever or Security Hub unreachable, no token).

pub mod app_manifest;
mod audit;
mod check;
mod explain;
mod healthcheck;
mod jobs;
mod oncall;
mod plan;
mod report;
mod serve;
pub mod setup;
mod sync;
mod tags;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, ProcessSettings};

/// Exit code when a command ran and failed, or found problems in its input.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for usage, configuration and start-up errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a check could not be made: what it needs (Lever, Security Hub, a token) is
/// unreachable or refused it.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// Which kind of failure, and so which exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// [`EXIT_FAILED`]: the command ran and failed (the store, Security Hub), or found problems
    /// in its input (rejected findings, an invalid configuration for `config check`).
    Failed,
    /// [`EXIT_USAGE`]: bad arguments, configuration or settings; nothing was done.
    Usage,
    /// [`EXIT_UNAVAILABLE`]: the command could not get what it needs to answer (`lever check`).
    Unavailable,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Failed => EXIT_FAILED,
            Exit::Usage => EXIT_USAGE,
            Exit::Unavailable => EXIT_UNAVAILABLE,
        }
    }
}

/// Why a command did not succeed: the exit code, and what to print on standard error (as
/// `lever COMMAND: message`) unless the command already reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    pub message: Option<String>,
}

impl Failure {
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: Some(message.to_string()),
        }
    }
    pub fn failed(message: impl std::fmt::Display) -> Failure {
        Failure {
            exit: Exit::Failed,
            message: Some(message.to_string()),
        }
    }
    pub fn unavailable(message: impl std::fmt::Display) -> Failure {
        Failure {
            exit: Exit::Unavailable,
            message: Some(message.to_string()),
        }
    }
    /// The problems were already printed where they belong (e.g. the rejected findings of a
    /// plan); only the exit code is left to give.
    pub fn reported(exit: Exit) -> Failure {
        Failure {
            exit,
            message: None,
        }
    }
    /// A start-up error with its chain of causes.
    pub fn startup(e: anyhow::Error) -> Failure {
        Failure::usage(format!("{e:#}"))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "lever",
    version,
    about = "Turns AWS Security Hub findings into explanation issues owned by the engineer on call",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub settings: ProcessSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GitHub App: HTTP endpoints and workers.
    Serve {
        /// Configuration directory (lever.toml, OWNERS).
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// Address to listen on (0.0.0.0:8080 to accept connections from other machines).
        #[arg(
            long,
            env = "LEVER_LISTEN",
            default_value = "127.0.0.1:8080",
            value_name = "ADDR"
        )]
        listen: String,
    },
    /// Exit 0 when the `lever serve` on this machine answers GET /healthz with 200, else 1
    /// (for container health checks).
    Healthcheck {
        /// The address `lever serve` listens on; a wildcard (0.0.0.0, [::]) is asked on loopback.
        #[arg(
            long,
            env = "LEVER_LISTEN",
            default_value = "127.0.0.1:8080",
            value_name = "ADDR"
        )]
        listen: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Show what Lever would do with findings, without GitHub or Security Hub.
    Plan {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// A findings file, or a directory of .json files.
        #[arg(long, value_name = "PATH")]
        findings: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The instant to plan at (RFC 3339, or a date for 00:00 UTC), e.g. to pin who is on
        /// call, or to see an account after its ramp-up dates.
        #[arg(long, value_name = "RFC3339|DATE", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
    },
    /// Print the explanation issue Lever would open for a control, with a sample finding.
    ///
    /// `lever explain S3.1` for one control (any control of the catalog); `lever explain
    /// --all` for every control with a curated explanation.
    Explain {
        /// Control id, e.g. S3.1.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        control_id: Option<String>,
        /// Every control with a curated explanation, instead of one control.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "markdown")]
        format: explain::ExplainFormat,
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// Account the sample finding comes from.
        #[arg(long, default_value = "111111111111", value_name = "ID")]
        account: String,
        #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
    },
    /// Who is on call in each rotation and the next handoffs.
    Oncall {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// The instant to look at (RFC 3339); default: now.
        #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Only this rotation.
        #[arg(long, value_name = "NAME")]
        rotation: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Reconcile with Security Hub now: page GetFindings into the pipeline, then open the
    /// resulting issues. A first run backfills existing findings; later runs read what changed.
    Sync {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Only record the findings; leave the GitHub work to `lever serve`.
        #[arg(long)]
        record_only: bool,
    },
    /// Show the audit trail (from DATABASE_URL, default sqlite://lever.db).
    Audit {
        /// Only this issue, as owner/repo#N.
        #[arg(long, value_name = "OWNER/REPO#N", value_parser = audit::parse_issue)]
        issue: Option<String>,
        /// Only entries at or after this instant (RFC 3339) or this long ago (7d, 12h).
        #[arg(long, value_name = "WHEN", value_parser = audit::parse_since)]
        since: Option<DateTime<Utc>>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Where the posture stands and how it moved (from DATABASE_URL): open issues by team and
    /// severity now and at the start of the period, opened and closed, times to acknowledge and
    /// to fix, overdue issues, expiring exceptions, ramp-up, ignore tags, the burn-down.
    Report {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// The period's start: a duration before --now (30d, 12h) or an RFC 3339 instant.
        #[arg(long, default_value = "30d", value_name = "DURATION|RFC3339", value_parser = report::parse_since)]
        since: report::Since,
        #[arg(long, value_enum, default_value = "markdown")]
        format: report::ReportFormat,
        /// The period's end (RFC 3339, or a date for 00:00 UTC); default: now.
        #[arg(long, value_name = "RFC3339|DATE", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
    },
    /// The work queue (from DATABASE_URL): pending jobs in the order they run, or parked ones.
    Jobs {
        /// Only parked jobs: failed for good, kept with their last error.
        #[arg(long)]
        failed: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(subcommand)]
        command: Option<JobsCommand>,
    },
    /// The shift-left release gate: which open findings of a repository's resources in other
    /// environments would become issues under the target environment's policy. Exit 0 none
    /// would, 1 some would (--mode block), 2 usage or configuration error, 3 the check could
    /// not be made.
    Check(check::CheckArgs),
    /// The ignore tags on AWS resources (Resource Groups Tagging API).
    Tags {
        #[command(subcommand)]
        command: TagsCommand,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The GitHub App.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Create the GitHub App from its manifest: a local page posts it to GitHub
    /// (GITHUB_WEB_URL), and the App's id, key and secrets are written to a .env file (0600).
    Setup {
        /// Lever's public base URL; webhooks go to URL/webhooks/github.
        #[arg(long, value_name = "URL")]
        url: String,
        /// The App's name (unique on the GitHub host).
        #[arg(long, default_value = app_manifest::DEFAULT_APP_NAME, value_name = "NAME")]
        name: String,
        /// The App's homepage; default: --url.
        #[arg(long, value_name = "URL")]
        homepage: Option<String>,
        /// Create the App in this organization (default: the signed-in user's account).
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        /// Where to write the App's credentials (mode 0600).
        #[arg(long, default_value = ".env", value_name = "FILE")]
        env_file: PathBuf,
        /// Overwrite an existing file (its mode is kept, narrowed to 0600).
        #[arg(long)]
        force: bool,
        /// The local setup page's address (loopback only).
        #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
        listen: String,
        /// Configuration directory: with [source] in its lever.toml, the App also gets
        /// contents read, checks write and the push event.
        #[arg(long, value_name = "DIR")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Print the GitHub App manifest (JSON): the events and permissions Lever uses.
    Manifest {
        /// Lever's public base URL; webhooks go to URL/webhooks/github.
        #[arg(long, value_name = "URL")]
        url: String,
        /// The App's name (unique on the GitHub host).
        #[arg(long, default_value = app_manifest::DEFAULT_APP_NAME, value_name = "NAME")]
        name: String,
        /// The App's homepage; default: --url.
        #[arg(long, value_name = "URL")]
        homepage: Option<String>,
        /// Where GitHub sends the browser with the code once the App exists.
        #[arg(long, value_name = "URL")]
        redirect_url: Option<String>,
        /// Configuration directory: with [source] in its lever.toml, the App also gets
        /// contents read, checks write and the push event.
        #[arg(long, value_name = "DIR")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Re-queue parked jobs: due now, with fresh attempts (the parked rows stay for history).
    Retry {
        /// The parked job's id (see `lever jobs --failed`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every parked job.
        #[arg(long)]
        all: bool,
        /// Who asks, for the audit trail.
        #[arg(long, default_value = "operator", value_name = "LOGIN")]
        by: String,
    },
    /// The issues waiting to open, in the order they will, and when the last should open
    /// within the content budget of `[github]` (from the configuration).
    Backlog {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagsCommand {
    /// Every resource carrying the ignore tag (`[policy] ignore_tag`) in the configured
    /// accounts and regions, through the role assumed in each (`[tags]`), with what appeared,
    /// changed or disappeared since the previous audit (kept in DATABASE_URL).
    Audit {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration directory; every problem is printed as file:line: message.
    Check {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
    },
}

/// An RFC 3339 instant, or a date (`2027-01-04`: 00:00 UTC, when a ramp-up date starts).
fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(crate::config::rampup::day_start(d));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "{s:?} is not an RFC 3339 instant such as 2026-11-23T12:00:00Z, nor a date such as 2027-01-04 ({e})"
            )
        })
}

/// Prints a table: columns padded to their widest cell, two spaces apart, no trailing blanks.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            out.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().take(widths.len()).map(String::as_str).collect());
    }
}

/// Loads a configuration directory, or prints every error and fails with the usage code.
pub(crate) fn load_config(dir: &std::path::Path) -> Result<Config, Failure> {
    Config::load(dir).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        Failure::usage(format!(
            "{} configuration error(s) in {}",
            errors.0.len(),
            dir.display()
        ))
    })
}

/// `lever config check` on a configuration directory.
fn check_config(config: &std::path::Path) -> Result<(), Failure> {
    match Config::load(config) {
        Ok(cfg) => {
            println!(
                "{}: valid ({} accounts, {} OWNERS rules, {} rotations)",
                config.display(),
                cfg.settings.accounts.len(),
                cfg.owners.rules.len(),
                cfg.settings.rotations.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            Err(Failure::failed(format!(
                "{} configuration error(s)",
                errors.0.len()
            )))
        }
    }
}

/// Lever's runtime: SDK GetFindings needs a deep stack in debug builds
/// (see `securityhub::RUNTIME_THREAD_STACK`).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::securityhub::RUNTIME_THREAD_STACK)
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve { .. } => "serve",
            Command::Healthcheck { .. } => "healthcheck",
            Command::Plan { .. } => "plan",
            Command::Explain { .. } => "explain",
            Command::Oncall { .. } => "oncall",
            Command::Sync { .. } => "sync",
            Command::Audit { .. } => "audit",
            Command::Report { .. } => "report",
            Command::Jobs { command: None, .. } => "jobs",
            Command::Jobs {
                command: Some(JobsCommand::Retry { .. }),
                ..
            } => "jobs retry",
            Command::Jobs {
                command: Some(JobsCommand::Backlog { .. }),
                ..
            } => "jobs backlog",
            Command::Config {
                command: ConfigCommand::Check { .. },
            } => "config check",
            Command::Tags {
                command: TagsCommand::Audit { .. },
            } => "tags audit",
            Command::App {
                command: AppCommand::Manifest { .. },
            } => "app manifest",
            Command::Setup { .. } => "setup",
            Command::Check(_) => "check",
        }
    }
}

/// Runs a command; the one place where failures become messages and exit codes.
pub fn run(cli: Cli) -> ExitCode {
    let name = cli.command.name();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = &failure.message {
                eprintln!("lever {name}: {message}");
            }
            ExitCode::from(failure.exit.code())
        }
    }
}

fn execute(cli: Cli) -> Result<(), Failure> {
    let settings = &cli.settings;
    match cli.command {
        Command::Plan {
            config,
            findings,
            format,
            now,
        } => plan::run(&config, &findings, format, now),
        Command::Explain {
            control_id,
            all,
            format,
            config,
            account,
            now,
        } => {
            let which = match (&control_id, all) {
                (Some(id), _) => explain::Which::One(id),
                (None, _) => explain::Which::AllCurated,
            };
            explain::run(which, format, &config, &account, now)
        }
        Command::Oncall {
            config,
            now,
            rotation,
            format,
        } => oncall::run(&config, now, rotation.as_deref(), format),
        Command::Tags {
            command: TagsCommand::Audit { config, format },
        } => tags::audit(settings, &config, format),
        Command::Check(args) => check::run(args),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => match crate::config::source::read_bootstrap(&config) {
            Ok(Some(source)) => {
                println!(
                    "{}: valid bootstrap: the configuration is read from {}{}{} (check a checkout of it with `lever config check --config DIR`)",
                    config.display(),
                    source.repo,
                    source
                        .git_ref
                        .map(|r| format!(" at {r}"))
                        .unwrap_or_default(),
                    if source.path.is_empty() {
                        String::new()
                    } else {
                        format!(", folder {}", source.path)
                    },
                );
                Ok(())
            }
            Err(errors) => {
                for e in &errors {
                    println!("{e}");
                }
                Err(Failure::failed(format!(
                    "{} configuration error(s)",
                    errors.len()
                )))
            }
            Ok(None) => check_config(&config),
        },
        Command::Serve { config, listen } => serve::run(settings, &config, &listen),
        Command::Healthcheck { listen, timeout } => {
            healthcheck::run(&listen, std::time::Duration::from_secs(timeout))
        }
        Command::Sync {
            config,
            format,
            record_only,
        } => sync::run(settings, &config, format, record_only),
        Command::Audit {
            issue,
            since,
            limit,
            format,
        } => audit::run(settings, issue, since, limit, format),
        Command::Report {
            config,
            since,
            format,
            now,
        } => report::run(settings, &config, since, format, now),
        Command::Jobs {
            failed,
            format,
            command: None,
        } => jobs::list(settings, failed, format),
        Command::Jobs {
            command: Some(JobsCommand::Retry { id, all: _, by }),
            ..
        } => jobs::retry(settings, id, &by),
        Command::Jobs {
            command: Some(JobsCommand::Backlog { config, format }),
            ..
        } => jobs::backlog(settings, &config, format),
        Command::App {
            command:
                AppCommand::Manifest {
                    url,
                    name,
                    homepage,
                    redirect_url,
                    config,
                },
        } => app_manifest::run(
            &url,
            &name,
            homepage.as_deref(),
            redirect_url.as_deref(),
            config.as_deref(),
        ),
        Command::Setup {
            url,
            name,
            homepage,
            org,
            env_file,
            force,
            listen,
            config,
        } => setup::run(
            settings,
            &url,
            &name,
            homepage.as_deref(),
            org.as_deref(),
            &env_file,
            force,
            &listen,
            config.as_deref(),
        ),
    }
}
