//! The running application: everything the server and the workers share, and the one place
//! it is put together ([`Application::build`]), for `lever serve`, `lever sync`, the
//! benchmark and the tests' `TestApp` alike.

use std::sync::Arc;

use anyhow::Context as _;
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock};
use crate::config::process::SqliteSynchronous;
use crate::config::{Config, ProcessSettings};
use crate::controls::Catalog;
use crate::explain::Renderer;
use crate::github::{ContentBudget, GitHub, GitHubConfig, Pacer};
use crate::metrics::Metrics;
use crate::securityhub::{SecurityHub, Tagging};
use crate::server::intake::Intake;
use crate::store::{OpenOptions, Store};

/// Shared secrets for the HTTP endpoints.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `GITHUB_WEBHOOK_SECRET`, split on commas (several during a rotation).
    pub webhook_secrets: Vec<SecretString>,
    /// `LEVER_INGEST_TOKEN`, split on commas: the bearer tokens EventBridge may send
    /// (several during a rotation).
    pub ingest_tokens: Vec<SecretString>,
    /// `LEVER_METRICS_TOKEN`, split on commas: the bearer tokens `GET /metrics` accepts on the
    /// main listener (none: `/metrics` is not served there).
    pub metrics_tokens: Vec<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "webhook_secrets",
                &format!("{} configured", self.webhook_secrets.len()),
            )
            .field(
                "ingest_tokens",
                &format!("{} configured", self.ingest_tokens.len()),
            )
            .field(
                "metrics_tokens",
                &format!("{} configured", self.metrics_tokens.len()),
            )
            .finish()
    }
}

impl Secrets {
    /// The secrets `settings` holds (blank ones left out).
    pub fn from_settings(settings: &ProcessSettings) -> Secrets {
        Secrets {
            webhook_secrets: settings.webhook_secrets().cloned().collect(),
            ingest_tokens: settings.ingest_tokens().cloned().collect(),
            metrics_tokens: settings.metrics_tokens().cloned().collect(),
        }
    }

    /// Both secrets are required to serve HTTP: says which one is missing.
    pub fn require_all(&self) -> anyhow::Result<()> {
        if self.webhook_secrets.is_empty() {
            anyhow::bail!(
                "GITHUB_WEBHOOK_SECRET is not set (the GitHub App's webhook secret; comma-separate several while rotating)"
            );
        }
        if self.ingest_tokens.is_empty() {
            anyhow::bail!(
                "LEVER_INGEST_TOKEN is not set (the bearer token EventBridge sends to POST /events/securityhub)"
            );
        }
        Ok(())
    }

    /// Whether ingest is configured (at least one token).
    pub fn ingest_configured(&self) -> bool {
        !self.ingest_tokens.is_empty()
    }
}

/// The configuration in force, replaced while the process runs when it comes from a
/// repository (`[source]`, see [`crate::config_repo`]): a job or an intake batch takes the
/// current one when it starts ([`App::refreshed`]) and keeps it to its end.
#[derive(Debug, Clone)]
pub struct LiveConfig(Arc<std::sync::RwLock<Arc<Config>>>);

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> LiveConfig {
        LiveConfig(Arc::new(std::sync::RwLock::new(config)))
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `config` in force; returns the one it replaces.
    pub fn replace(&self, config: Arc<Config>) -> Arc<Config> {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *slot, config)
    }
}

/// Everything a request handler or a job needs.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    /// The configuration this clone of the App works with (a job's snapshot; see
    /// [`App::refreshed`]).
    pub config: Arc<Config>,
    /// The configuration in force, shared by every clone.
    pub live_config: LiveConfig,
    /// The configuration repository followed, when the configuration comes from one.
    pub config_repo: Option<Arc<crate::config_repo::ConfigRepo>>,
    pub renderer: Arc<Renderer>,
    pub catalog: &'static Catalog,
    pub github: Arc<GitHub>,
    pub securityhub: SecurityHub,
    /// The Resource Groups Tagging API (the tag audit, tags a finding does not carry).
    pub tagging: Tagging,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<Secrets>,
    /// Wakes the workers when new jobs are recorded.
    pub jobs_ready: Arc<Notify>,
    /// Short-lived answers from GitHub (team memberships of approvers).
    pub caches: Arc<Caches>,
    /// The batching writers the HTTP handlers record through (group commit).
    pub intake: Arc<Intake>,
    /// GitHub sign-in to the dashboard and the key of its cookies.
    pub dashboard: Arc<crate::server::dashboard::DashboardKeys>,
    /// This App's counters and histograms (`GET /metrics`); its own registry, shared by every
    /// clone, the GitHub client, the Security Hub adapter and the intake.
    pub metrics: Arc<Metrics>,
}

/// How long a team-membership answer is trusted.
pub const MEMBERSHIP_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// In-memory caches shared by a process's handlers and workers.
#[derive(Debug, Default)]
pub struct Caches {
    /// The OIDC verifier of `GET /api/v1/check` and its key cache, built for the `[check]`
    /// settings in force (a configuration change builds a new one).
    pub oidc: std::sync::Mutex<Option<Arc<crate::check::oidc::Verifier>>>,
    /// `org/team/login` (lower case) → (active member, when asked).
    pub memberships:
        tokio::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
    /// When the GitHub backlog was last logged (`worker::pacing::report_backlog`).
    pub backlog_logged_at: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// Per repository (lower case): the issues the App had made there when this process first
    /// opened one, by group marker (`worker::open_issue`).
    pub markers: tokio::sync::Mutex<
        std::collections::HashMap<
            String,
            std::collections::HashMap<crate::domain::GroupKey, crate::github::Issue>,
        >,
    >,
}

impl App {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// This App with the configuration in force now (what a job starts with).
    pub fn refreshed(&self) -> App {
        let mut app = self.clone();
        app.config = self.live_config.current();
        app
    }

    /// Follows `repo`: a push to its configuration branch reloads the configuration.
    pub fn with_config_repo(mut self, repo: crate::config_repo::ConfigRepo) -> App {
        self.config_repo = Some(Arc::new(repo));
        self
    }
}

/// What callers put in place of what the process settings describe: the tests' manual clock,
/// a store they opened themselves (a PostgreSQL schema of their own, a second replica's pool),
/// a Security Hub client pointed at the fake. Everything left out is built from the settings.
#[derive(Default)]
pub struct Deps {
    /// Default: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Default: open `DATABASE_URL` (and run the migrations).
    pub store: Option<Arc<dyn Store>>,
    /// Default: the AWS SDK's configuration chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL_SECURITYHUB`).
    pub securityhub: Option<aws_sdk_securityhub::Client>,
    /// Default: the AWS SDK's configuration chain, loaded on first use, paced at `[tags]
    /// requests_per_second`.
    pub tagging: Option<Tagging>,
    /// Default: [`crate::github::DEFAULT_READ_TIMEOUT`] (the fault tests shorten it so a
    /// GitHub that does not answer fails in milliseconds).
    pub github_timeout: Option<std::time::Duration>,
}

impl Deps {
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Deps {
        self.clock = Some(clock);
        self
    }
    pub fn store(mut self, store: Arc<dyn Store>) -> Deps {
        self.store = Some(store);
        self
    }
    pub fn securityhub(mut self, client: aws_sdk_securityhub::Client) -> Deps {
        self.securityhub = Some(client);
        self
    }
    pub fn tagging(mut self, tagging: Tagging) -> Deps {
        self.tagging = Some(tagging);
        self
    }
    pub fn github_timeout(mut self, timeout: std::time::Duration) -> Deps {
        self.github_timeout = Some(timeout);
        self
    }
}

/// The composition root.
#[derive(Debug)]
pub struct Application;

impl Application {
    /// Builds the [`App`] from the process settings, the loaded configuration directory and
    /// whatever `deps` replaces: the GitHub App client (its id and key are checked here), the
    /// issue templates, the store, the Security Hub client, the clock, the endpoint secrets,
    /// the workers' wake-up signal and the caches. Every error names the setting to fix.
    pub async fn build(
        settings: &ProcessSettings,
        config: Config,
        deps: Deps,
    ) -> anyhow::Result<App> {
        let clock: Arc<dyn Clock> = deps.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let gh = &config.settings.github;
        let budget = ContentBudget::new(gh.content_per_minute, gh.content_per_hour)
            .context("[github] content budget")?;
        let app_id = settings.app_id().map_err(anyhow::Error::msg)?;
        let private_key_pem = settings.private_key_pem().map_err(anyhow::Error::msg)?;
        let renderer =
            Renderer::new(config.templates_dir().as_deref()).context("issue templates")?;
        let store = match deps.store {
            Some(store) => store,
            None => open_store(settings).await?,
        };
        // Replicas on one PostgreSQL database share GitHub's pause and content budget through
        // it. SQLite is one process (never two writers), whose own pacer is exact and keeps the
        // virtual queue's priority order without a round trip per call.
        let metrics = Arc::new(Metrics::new());
        let mut pacer = Pacer::new(budget, clock.clone()).with_metrics(metrics.clone());
        if store.backend() == "postgres" {
            pacer = pacer.with_shared(Arc::new(StorePacing(store.clone())));
        }
        let github = GitHub::new(
            GitHubConfig {
                app_id,
                private_key_pem,
                api_url: settings.github_api_url.clone(),
                read_timeout: deps
                    .github_timeout
                    .unwrap_or(crate::github::DEFAULT_READ_TIMEOUT),
            },
            pacer,
        )?;
        let securityhub = match deps.securityhub {
            Some(client) => SecurityHub::from_client(client),
            None => SecurityHub::from_sdk_defaults().await,
        }
        .with_metrics(metrics.clone());
        let tagging = deps.tagging.unwrap_or_else(|| {
            Tagging::from_sdk_defaults(config.settings.tags.requests_per_second)
        });
        let dashboard = crate::server::dashboard::DashboardKeys::from_settings(
            settings,
            &config.settings.dashboard.access,
        )?;
        let config = Arc::new(config);
        let live_config = LiveConfig::new(config.clone());
        let intake = Intake::start(
            store.clone(),
            live_config.clone(),
            clock.clone(),
            github.clone(),
            metrics.clone(),
        );
        Ok(App {
            store,
            config,
            live_config,
            config_repo: None,
            renderer: Arc::new(renderer),
            catalog: Catalog::embedded(),
            github,
            securityhub,
            tagging,
            clock,
            secrets: Arc::new(Secrets::from_settings(settings)),
            jobs_ready: Arc::new(Notify::new()),
            caches: Arc::default(),
            intake: Arc::new(intake),
            dashboard: Arc::new(dashboard),
            metrics,
        })
    }
}

/// Opens `DATABASE_URL` (migrating it) as the settings say (`LEVER_SQLITE_SYNCHRONOUS`); the
/// error shows the URL without its password.
pub async fn open_store(settings: &ProcessSettings) -> anyhow::Result<Arc<dyn Store>> {
    let url = &settings.database_url;
    let options = OpenOptions {
        sqlite_synchronous: match settings.sqlite_synchronous {
            SqliteSynchronous::Normal => crate::store::SqliteSynchronous::Normal,
            SqliteSynchronous::Full => crate::store::SqliteSynchronous::Full,
        },
    };
    crate::store::open_with(url.expose(), options)
        .await
        .with_context(|| format!("opening DATABASE_URL {url}"))
}

/// [`SharedPacing`](crate::github::SharedPacing) over the store: every replica on the database
/// takes GitHub permits from, and records pauses in, the same rows.
struct StorePacing(Arc<dyn Store>);

#[async_trait::async_trait]
impl crate::github::SharedPacing for StorePacing {
    async fn take_permit(
        &self,
        installation: u64,
        now: chrono::DateTime<chrono::Utc>,
        period: std::time::Duration,
        burst: u32,
    ) -> Result<Option<(chrono::DateTime<chrono::Utc>, bool)>, String> {
        self.0
            .take_github_permit(installation, now, period, burst)
            .await
            .map(|n| n.map(|n| (n.at, n.paused)))
            .map_err(|e| e.to_string())
    }

    async fn pause(
        &self,
        installation: u64,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), String> {
        self.0
            .pause_github(installation, until)
            .await
            .map_err(|e| e.to_string())
    }

    async fn paused_until(
        &self,
        installation: u64,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        self.0
            .github_paused_until(installation)
            .await
            .map_err(|e| e.to_string())
    }
}
