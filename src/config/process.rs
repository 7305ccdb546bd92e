//! Process settings: everything Lever reads from its environment, in one clap struct. Each
//! variable is also a global command-line option (`lever serve --help` lists them with the
//! variable's name); a value on the command line wins over the environment.
//!
//! This is the only place Lever reads its environment, but for `LEVER_LISTEN` (the address of
//! `lever serve --listen` and `lever healthcheck --listen`, options of those commands). The AWS
//! SDK reads its own settings (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_SECURITYHUB`) through
//! its configuration chain.
//!
//! Secrets (the App's private key, the webhook secrets, the ingest token) are
//! [`SecretString`]s: `Debug` prints `[REDACTED]`, `--help` never shows their values, and the
//! memory is zeroed when they are dropped. The database URL may carry a password: it is a
//! [`DatabaseUrl`], shown with the password masked. Every value is trimmed.

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// `DATABASE_URL` when unset: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://lever.db";
/// `GITHUB_API_URL` when unset.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// `GITHUB_WEB_URL` when unset.
pub const DEFAULT_GITHUB_WEB_URL: &str = "https://github.com";
/// `LEVER_WORKERS` when unset.
pub const DEFAULT_WORKERS: u8 = 2;
/// At most this many worker tasks per process.
pub const MAX_WORKERS: u8 = 64;
/// `HOSTNAME` when unset: the first part of every worker id.
pub const DEFAULT_HOSTNAME: &str = "lever";
/// `RUST_LOG` when unset (or not a valid filter).
pub const DEFAULT_LOG_FILTER: &str = "info";

/// `LEVER_SQLITE_SYNCHRONOUS`: what an SQLite commit (and so a 202) promises. Either value
/// survives the process being killed; see `docs/DESIGN.md`, "Durability".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// Flush the write-ahead log only at checkpoints: a power loss or an operating system
    /// crash may lose the last commits.
    Normal,
    /// Flush the write-ahead log to the disk at every commit: a commit survives a power loss.
    #[default]
    Full,
}

/// How logs are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The process's settings, from the environment or the command line.
#[derive(Clone, Args)]
#[command(next_help_heading = "Process settings (usually set in the environment)")]
pub struct ProcessSettings {
    /// The GitHub App's numeric id.
    #[arg(long, env = "GITHUB_APP_ID", global = true, value_name = "ID", value_parser = app_id)]
    pub github_app_id: Option<u64>,

    /// The GitHub App's private key, PEM text (literal `\n` sequences are accepted). Prefer
    /// the environment: a command line is visible to every user of the machine.
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY",
        global = true,
        hide_env_values = true,
        value_name = "PEM",
        value_parser = secret
    )]
    pub github_private_key: Option<SecretString>,

    /// A file holding the GitHub App's private key (used when GITHUB_PRIVATE_KEY is unset).
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY_PATH",
        global = true,
        value_name = "FILE",
        value_parser = path
    )]
    pub github_private_key_path: Option<PathBuf>,

    /// GitHub's REST API; GitHub Enterprise Server: `https://HOST/api/v3`.
    #[arg(
        long,
        env = "GITHUB_API_URL",
        global = true,
        value_name = "URL",
        default_value = DEFAULT_GITHUB_API_URL,
        value_parser = trimmed
    )]
    pub github_api_url: String,

    /// GitHub's web host, where `lever setup` creates the App; GitHub Enterprise Server:
    /// `https://HOST`.
    #[arg(
        long,
        env = "GITHUB_WEB_URL",
        global = true,
        value_name = "URL",
        default_value = DEFAULT_GITHUB_WEB_URL,
        value_parser = trimmed
    )]
    pub github_web_url: String,

    /// The App's webhook secret; several, comma-separated, while rotating it.
    #[arg(
        long = "github-webhook-secret",
        env = "GITHUB_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET[,SECRET]",
        value_delimiter = ',',
        value_parser = secret
    )]
    pub github_webhook_secrets: Vec<SecretString>,

    /// The bearer token EventBridge must send to `POST /events/securityhub`; several,
    /// comma-separated, while rotating it (any of them is accepted).
    #[arg(
        long = "ingest-token",
        env = "LEVER_INGEST_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN[,TOKEN]",
        value_delimiter = ',',
        value_parser = secret
    )]
    pub ingest_tokens: Vec<SecretString>,

    /// The App's OAuth client id, for GitHub sign-in to the dashboard (`[dashboard]
    /// github_org`).
    #[arg(long, env = "GITHUB_CLIENT_ID", global = true, value_name = "ID", value_parser = trimmed)]
    pub github_client_id: Option<String>,

    /// The App's OAuth client secret, for GitHub sign-in to the dashboard.
    #[arg(
        long,
        env = "GITHUB_CLIENT_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = secret
    )]
    pub github_client_secret: Option<SecretString>,

    /// The key that signs dashboard session cookies (at least 32 characters). Unset: derived
    /// from the first webhook secret (rotating that secret signs everyone out).
    #[arg(
        long,
        env = "LEVER_SESSION_KEY",
        global = true,
        hide_env_values = true,
        value_name = "KEY",
        value_parser = secret
    )]
    pub session_key: Option<SecretString>,

    /// The bearer token `GET /metrics` requires on the main listener; several, comma-separated,
    /// while rotating it. Without it (and without `LEVER_METRICS_ADDR`) `/metrics` is off (404).
    #[arg(
        long = "metrics-token",
        env = "LEVER_METRICS_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN[,TOKEN]",
        value_delimiter = ',',
        value_parser = secret
    )]
    pub metrics_tokens: Vec<SecretString>,

    /// A second address (`lever serve`) that serves only `GET /metrics`, without a token: keep
    /// it private (loopback, or an address only the Prometheus server can reach).
    #[arg(
        long = "metrics-addr",
        env = "LEVER_METRICS_ADDR",
        global = true,
        value_name = "HOST:PORT",
        value_parser = metrics_addr
    )]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// The database: `sqlite://FILE`, or `postgres://...` for several replicas.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = database_url
    )]
    pub database_url: DatabaseUrl,

    /// SQLite only: `full` (every commit is flushed to the disk: an acknowledged delivery
    /// survives a power loss) or `normal` (flushed at checkpoints: survives a crash of Lever,
    /// not necessarily of the machine).
    #[arg(
        long,
        env = "LEVER_SQLITE_SYNCHRONOUS",
        global = true,
        value_name = "full|normal",
        default_value = "full",
        value_parser = sqlite_synchronous
    )]
    pub sqlite_synchronous: SqliteSynchronous,

    /// Worker tasks per process (1 to 64).
    #[arg(
        long,
        env = "LEVER_WORKERS",
        global = true,
        value_name = "N",
        default_value_t = DEFAULT_WORKERS,
        value_parser = workers
    )]
    pub workers: u8,

    /// The first part of this process's worker ids (set by the container runtime).
    #[arg(
        long,
        env = "HOSTNAME",
        global = true,
        value_name = "NAME",
        default_value = DEFAULT_HOSTNAME,
        value_parser = trimmed
    )]
    pub hostname: String,

    /// Which logs to write (a tracing filter such as `info` or `lever=debug,warn`).
    #[arg(
        long,
        env = "RUST_LOG",
        global = true,
        value_name = "FILTER",
        default_value = DEFAULT_LOG_FILTER,
        value_parser = trimmed
    )]
    pub log_filter: String,

    /// Log format on standard error: `text` or `json`.
    #[arg(
        long,
        env = "LEVER_LOG_FORMAT",
        global = true,
        value_name = "FORMAT",
        default_value = "text",
        value_parser = log_format
    )]
    pub log_format: LogFormat,

    /// Limits at the HTTP edge (`lever serve`).
    #[command(flatten)]
    pub edge: super::EdgeSettings,
}

/// What an empty environment gives: every default, no App, no secrets. Tests and the
/// benchmark start from this and fill in what they need.
impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            github_app_id: None,
            github_private_key: None,
            github_private_key_path: None,
            github_api_url: DEFAULT_GITHUB_API_URL.to_string(),
            github_web_url: DEFAULT_GITHUB_WEB_URL.to_string(),
            github_webhook_secrets: Vec::new(),
            ingest_tokens: Vec::new(),
            github_client_id: None,
            github_client_secret: None,
            session_key: None,
            metrics_tokens: Vec::new(),
            metrics_addr: None,
            database_url: DatabaseUrl(DEFAULT_DATABASE_URL.to_string()),
            sqlite_synchronous: SqliteSynchronous::Full,
            workers: DEFAULT_WORKERS,
            hostname: DEFAULT_HOSTNAME.to_string(),
            log_filter: DEFAULT_LOG_FILTER.to_string(),
            log_format: LogFormat::Text,
            edge: super::EdgeSettings::default(),
        }
    }
}

impl fmt::Debug for ProcessSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessSettings")
            .field("github_app_id", &self.github_app_id)
            .field("github_private_key", &self.github_private_key)
            .field("github_private_key_path", &self.github_private_key_path)
            .field("github_api_url", &self.github_api_url)
            .field("github_web_url", &self.github_web_url)
            .field(
                "github_webhook_secrets",
                &format_args!("{} configured", self.webhook_secrets().count()),
            )
            .field(
                "ingest_tokens",
                &format_args!("{} configured", self.ingest_tokens().count()),
            )
            .field("github_client_id", &self.github_client_id)
            .field("github_client_secret", &self.github_client_secret)
            .field("session_key", &self.session_key)
            .field(
                "metrics_tokens",
                &format_args!("{} configured", self.metrics_tokens().count()),
            )
            .field("metrics_addr", &self.metrics_addr)
            .field("database_url", &self.database_url)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("workers", &self.workers)
            .field("hostname", &self.hostname)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("edge", &self.edge)
            .finish()
    }
}

impl ProcessSettings {
    /// The webhook secrets that are set (blanks between commas are ignored).
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.github_webhook_secrets
            .iter()
            .filter(|s| !s.expose_secret().is_empty())
    }

    /// The ingest tokens that are set (blanks between commas are ignored).
    pub fn ingest_tokens(&self) -> impl Iterator<Item = &SecretString> {
        self.ingest_tokens
            .iter()
            .filter(|t| !t.expose_secret().is_empty())
    }

    /// The `/metrics` tokens that are set (blanks between commas are ignored).
    pub fn metrics_tokens(&self) -> impl Iterator<Item = &SecretString> {
        self.metrics_tokens
            .iter()
            .filter(|t| !t.expose_secret().is_empty())
    }

    /// The GitHub App's id, or what to set.
    pub fn app_id(&self) -> Result<u64, String> {
        self.github_app_id
            .ok_or_else(|| "GITHUB_APP_ID is not set (the GitHub App's numeric id)".to_string())
    }

    /// The App's private key: `GITHUB_PRIVATE_KEY` when set (keys pasted with literal `\n`
    /// sequences, as some secret stores keep them, are unfolded), else the file at
    /// `GITHUB_PRIVATE_KEY_PATH`.
    pub fn private_key_pem(&self) -> Result<SecretString, String> {
        if let Some(pem) = &self.github_private_key {
            let pem = pem.expose_secret();
            if !pem.is_empty() {
                return Ok(if pem.contains('\n') {
                    SecretString::from(pem)
                } else {
                    SecretString::from(pem.replace("\\n", "\n"))
                });
            }
        }
        match &self.github_private_key_path {
            Some(path) => std::fs::read_to_string(path)
                .map(SecretString::from)
                .map_err(|e| {
                    format!(
                        "GITHUB_PRIVATE_KEY_PATH={}: cannot read the key: {e}",
                        path.display()
                    )
                }),
            None => Err("set GITHUB_PRIVATE_KEY (the App's PEM private key) or GITHUB_PRIVATE_KEY_PATH (a file holding it)".to_string()),
        }
    }
}

/// A database URL. `Debug` and `Display` mask its password; [`DatabaseUrl::expose`] gives
/// the URL to connect with.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into().trim().to_string())
    }

    /// The URL with its password, to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its password, for messages: the userinfo's password and the value of
    /// every query parameter whose name holds `password` (`?password=`, `sslpassword=`) are
    /// masked. When in doubt (an `@` that is not percent-encoded), more is masked, never less.
    pub fn redacted(&self) -> String {
        let url = mask_password_params(&self.0);
        let url = &url;
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let creds = &url[scheme + 3..at];
                match creds.split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                    None => url.to_string(),
                }
            }
            _ => url.to_string(),
        }
    }
}

/// `url` with the value of every `…password…=` parameter replaced by `***`.
fn mask_password_params(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let params: Vec<String> = url[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{}?{}", &url[..q], params.join("&"))
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

// ---- value parsers (clap names the option in its message; these name the variable) -------

fn trimmed(s: &str) -> Result<String, String> {
    Ok(s.trim().to_string())
}

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.trim()))
}

fn metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let s = s.trim();
    s.parse().map_err(|_| {
        format!(
            "LEVER_METRICS_ADDR={s:?} is not an IP address and port such as 127.0.0.1:9090 \
             (the address that serves only /metrics)"
        )
    })
}

fn path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s.trim()))
}

fn database_url(s: &str) -> Result<DatabaseUrl, String> {
    Ok(DatabaseUrl::new(s))
}

/// Unlike the other numbers, a blank `GITHUB_APP_ID=` is an error: there is no default App.
fn app_id(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| "GITHUB_APP_ID is the GitHub App's numeric id, e.g. 123456".to_string())
}

/// A blank `LEVER_WORKERS=` is the default.
fn workers(s: &str) -> Result<u8, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(DEFAULT_WORKERS);
    }
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_WORKERS).contains(n))
        .ok_or_else(|| format!("LEVER_WORKERS must be 1..{MAX_WORKERS}"))
}

/// `full` or `normal`, in any case; a blank `LEVER_SQLITE_SYNCHRONOUS=` is the default (full).
fn sqlite_synchronous(s: &str) -> Result<SqliteSynchronous, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "full" => Ok(SqliteSynchronous::Full),
        "normal" => Ok(SqliteSynchronous::Normal),
        _ => Err("LEVER_SQLITE_SYNCHRONOUS is full or normal".to_string()),
    }
}

/// `text` or `json`, in any case; a blank `LEVER_LOG_FORMAT=` is text.
fn log_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("LEVER_LOG_FORMAT is text or json".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        settings: ProcessSettings,
    }

    fn parse(args: &[&str]) -> Result<ProcessSettings, clap::Error> {
        Cli::try_parse_from(std::iter::once("lever").chain(args.iter().copied()))
            .map(|c| c.settings)
    }

    #[test]
    fn webhook_secrets_are_split_on_commas_and_trimmed() {
        let s = parse(&["--github-webhook-secret", " old , ,new "]).unwrap();
        let secrets: Vec<&str> = s.webhook_secrets().map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["old", "new"]);
    }

    #[test]
    fn blank_secrets_count_as_unset() {
        let s = parse(&["--ingest-token", "  ", "--github-webhook-secret", " , "]).unwrap();
        assert_eq!(s.ingest_tokens().count(), 0);
        assert_eq!(s.webhook_secrets().count(), 0);
        let s = parse(&["--ingest-token", " tok\n"]).unwrap();
        let tokens: Vec<&str> = s.ingest_tokens().map(|t| t.expose_secret()).collect();
        assert_eq!(tokens, ["tok"]);
    }

    #[test]
    fn ingest_tokens_are_split_on_commas_and_trimmed() {
        let s = parse(&["--ingest-token", " old\n, ,new "]).unwrap();
        let tokens: Vec<&str> = s.ingest_tokens().map(|t| t.expose_secret()).collect();
        assert_eq!(tokens, ["old", "new"]);
    }

    #[test]
    fn metrics_settings_parse_and_a_bad_address_names_the_variable() {
        let s = parse(&[
            "--metrics-token",
            " a, ,b ",
            "--metrics-addr",
            " 127.0.0.1:9090 ",
        ])
        .unwrap();
        let tokens: Vec<&str> = s.metrics_tokens().map(|t| t.expose_secret()).collect();
        assert_eq!(tokens, ["a", "b"]);
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9090".parse().unwrap()));
        let e = parse(&["--metrics-addr", "localhost"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("LEVER_METRICS_ADDR=\"localhost\""), "{e}");
        assert!(e.contains("127.0.0.1:9090"), "{e}");
        let s = parse(&[]).unwrap();
        assert_eq!((s.metrics_tokens().count(), s.metrics_addr), (0, None));
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let s = parse(&[
            "--github-private-key",
            "PRIVATE-KEY-TEXT",
            "--github-webhook-secret",
            "hook-secret-1,hook-secret-2",
            "--ingest-token",
            "ingest-token-value",
            "--metrics-token",
            "metrics-token-value",
            "--database-url",
            "postgres://lever:db-password@db:5432/lever",
        ])
        .unwrap();
        let shown = format!("{s:?}");
        for secret in [
            "PRIVATE-KEY-TEXT",
            "hook-secret",
            "ingest-token-value",
            "metrics-token-value",
            "db-password",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("2 configured"), "{shown}");
        assert!(
            shown.contains("postgres://lever:***@db:5432/lever"),
            "{shown}"
        );
    }

    #[test]
    fn workers_are_1_to_64() {
        assert_eq!(parse(&["--workers", " 8 "]).unwrap().workers, 8);
        assert_eq!(parse(&["--workers", ""]).unwrap().workers, DEFAULT_WORKERS);
        for bad in ["0", "65", "two"] {
            let e = parse(&["--workers", bad]).unwrap_err().to_string();
            assert!(e.contains("LEVER_WORKERS must be 1..64"), "{e}");
        }
    }

    #[test]
    fn app_ids_are_numbers() {
        assert_eq!(
            parse(&["--github-app-id", " 42 "]).unwrap().github_app_id,
            Some(42)
        );
        let e = parse(&["--github-app-id", "lever"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GITHUB_APP_ID"), "{e}");
    }

    #[test]
    fn a_pasted_key_with_literal_newlines_is_unfolded() {
        let s = ProcessSettings {
            github_private_key: Some(SecretString::from("-----BEGIN-----\\nAAAA\\n-----END-----")),
            ..ProcessSettings::default()
        };
        assert_eq!(
            s.private_key_pem().unwrap().expose_secret(),
            "-----BEGIN-----\nAAAA\n-----END-----"
        );
        let e = ProcessSettings::default().private_key_pem().unwrap_err();
        assert!(e.contains("GITHUB_PRIVATE_KEY_PATH"), "{e}");
    }

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!(
            parse(&["--log-format", "JSON"]).unwrap().log_format,
            LogFormat::Json
        );
        assert_eq!(
            parse(&["--log-format", " "]).unwrap().log_format,
            LogFormat::Text
        );
        let e = parse(&["--log-format", "pretty"]).unwrap_err().to_string();
        assert!(e.contains("LEVER_LOG_FORMAT is text or json"), "{e}");
    }

    #[test]
    fn sqlite_synchronous_is_full_or_normal() {
        assert_eq!(
            parse(&[]).unwrap().sqlite_synchronous,
            SqliteSynchronous::Full
        );
        assert_eq!(
            parse(&["--sqlite-synchronous", " NORMAL "])
                .unwrap()
                .sqlite_synchronous,
            SqliteSynchronous::Normal
        );
        let e = parse(&["--sqlite-synchronous", "off"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LEVER_SQLITE_SYNCHRONOUS is full or normal"),
            "{e}"
        );
    }

    #[test]
    fn database_urls_are_shown_without_their_password() {
        let url = DatabaseUrl::new("postgres://lever:s3cret@db:5432/lever");
        assert_eq!(url.to_string(), "postgres://lever:***@db:5432/lever");
        assert_eq!(url.expose(), "postgres://lever:s3cret@db:5432/lever");
        assert_eq!(
            DatabaseUrl::new("postgres://lever@db/lever").to_string(),
            "postgres://lever@db/lever"
        );
        assert_eq!(
            DatabaseUrl::new("sqlite://lever.db").to_string(),
            "sqlite://lever.db"
        );
        for (url, shown) in [
            (
                "postgres://db/lever?user=lever&password=s3cret&sslmode=require",
                "postgres://db/lever?user=lever&password=***&sslmode=require",
            ),
            (
                "postgres://lever:s3cret@db/lever?sslpassword=k3y",
                "postgres://lever:***@db/lever?sslpassword=***",
            ),
            (
                "postgres://lever:a@b?c@db/lever",
                "postgres://lever:***@db/lever",
            ),
            ("postgres://lever:p@ss@db/l?x=@", "postgres://lever:***@"),
        ] {
            let redacted = DatabaseUrl::new(url).to_string();
            assert!(
                !redacted.contains("s3cret") && !redacted.contains("k3y"),
                "{redacted}"
            );
            assert!(redacted.starts_with(shown), "{url}: {redacted}");
        }
    }
}
