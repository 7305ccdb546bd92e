//! `TestApp`: Lever's real HTTP server on 127.0.0.1:0, real store (SQLite file or a fresh
//! PostgreSQL schema), real octocrab and AWS SDK clients pointed at the fakes, an injected
//! clock, and a worker driven on demand (`drain`), never by sleeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use lever::app::{App, Application, Deps};
use lever::clock::ManualClock;
use lever::config::process::DatabaseUrl;
use lever::config::{Config, ProcessSettings};
use lever::store::{PostgresStore, Store};
use lever::worker::{JobReport, Worker};

use super::pg;
use super::spy::{Probe, Spy};
use crate::fakes::github::{FakeGitHub, TEST_APP_ID, TEST_APP_PRIVATE_KEY_PEM, WebhookDelivery};
use crate::fakes::securityhub::FakeSecurityHub;

pub const WEBHOOK_SECRET: &str = "test-webhook-secret";
pub const INGEST_TOKEN: &str = "test-ingest-token";
pub const INSTALLATION: u64 = 7;
/// The demo's fixed instant: payments → bob, platform → erin, security → sam.
pub const NOW: &str = "2026-11-23T12:00:00Z";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The demo organisation on the fake GitHub: private repositories, each team's people as
/// collaborators, the security engineer everywhere.
pub fn demo_github(gh: &FakeGitHub) {
    gh.add_installation(INSTALLATION, "acme");
    for (repo, people) in [
        ("acme/payments", &["alice", "bob"][..]),
        ("acme/ledger", &["carol"][..]),
        ("acme/platform", &["dave", "erin"][..]),
        ("acme/security", &["cto-user"][..]),
    ] {
        gh.add_repo(repo, true, Some(INSTALLATION));
        for p in people {
            gh.add_collaborator(repo, p, "write");
        }
        gh.add_collaborator(repo, "sam", "maintain");
    }
}

enum Db {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(pg::Schema),
    /// A database the test made and keeps alive itself ([`Builder::database`]).
    Given,
}

pub struct TestApp {
    pub url: String,
    pub app: App,
    pub gh: FakeGitHub,
    pub sh: FakeSecurityHub,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub worker: Worker,
    pub database_url: String,
    /// The [`Spy`] in front of the store, when the builder asked for one.
    pub probe: Option<Arc<Probe>>,
    /// `http://127.0.0.1:PORT` of the metrics address (`LEVER_METRICS_ADDR`), when the
    /// builder asked for one ([`Builder::metrics_listener`]).
    pub metrics_url: Option<String>,
    _db: Db,
    server: tokio::task::JoinHandle<()>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
}

pub struct Builder {
    config_dir: PathBuf,
    /// `[github] content_per_minute` and `content_per_hour` in place of the configuration's.
    content_budget: (u32, u32),
    postgres: Option<String>,
    database: Option<String>,
    private_key: String,
    now: DateTime<Utc>,
    spy: bool,
    /// `[source] repo` (and `ref`): the configuration is committed there on the fake GitHub
    /// and read from it, as `lever serve` does with a bootstrap `lever.toml`.
    config_repo: Option<(String, Option<String>)>,
    github_timeout: Option<std::time::Duration>,
    /// The Tagging API client (moto's server, see `support::moto`).
    tagging: Option<lever::securityhub::Tagging>,
    /// `LEVER_METRICS_TOKEN`.
    metrics_token: Option<String>,
    /// Serve `/metrics` on a second listener too, as `LEVER_METRICS_ADDR` does.
    metrics_listener: bool,
}

impl Builder {
    /// `LEVER_METRICS_TOKEN=token`: `/metrics` on the main listener to its bearer.
    pub fn metrics_token(mut self, token: &str) -> Self {
        self.metrics_token = Some(token.to_string());
        self
    }
    /// A second listener on 127.0.0.1:0 serving only `/metrics`, without a token, through
    /// `lever::server::metrics::serve` as `lever serve` does for `LEVER_METRICS_ADDR`.
    pub fn metrics_listener(mut self) -> Self {
        self.metrics_listener = true;
        self
    }
    /// Read tags through `tagging` (e.g. pointed at moto's server).
    pub fn tagging(mut self, tagging: lever::securityhub::Tagging) -> Self {
        self.tagging = Some(tagging);
        self
    }
    /// Read the configuration from `repo` (on branch `git_ref`, default `main`): the
    /// configuration directory's `lever.toml` and `OWNERS` are committed there first.
    pub fn config_repo(mut self, repo: &str, git_ref: Option<&str>) -> Self {
        self.config_repo = Some((repo.to_string(), git_ref.map(str::to_string)));
        self
    }
    /// Put a [`Spy`] in front of the store (see [`TestApp::probe`]).
    pub fn spy(mut self) -> Self {
        self.spy = true;
        self
    }
    pub fn config(mut self, dir: &Path) -> Self {
        self.config_dir = dir.to_path_buf();
        self
    }
    /// Use a fresh schema in this PostgreSQL database instead of an SQLite file.
    pub fn postgres(mut self, url: String) -> Self {
        self.postgres = Some(url);
        self
    }
    /// Run on an existing database instead of a fresh one: a `DATABASE_URL` (`sqlite://PATH`,
    /// or `postgres://...` with the schema in `options`, see [`pg::Schema::database_url`]),
    /// opened as `lever serve` opens it (`lever::store::open`: pending migrations run). The
    /// caller keeps the database alive for the life of the `TestApp`.
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_string());
        self
    }
    /// Lever's content budget per installation (per minute, per hour). Default: practically
    /// unlimited ([`GENEROUS_BUDGET`]), so tests about something else are not paced.
    pub fn content_budget(mut self, per_minute: u32, per_hour: u32) -> Self {
        self.content_budget = (per_minute, per_hour);
        self
    }
    /// How long Lever's GitHub calls wait for an answer (default: production's 30 s).
    pub fn github_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.github_timeout = Some(timeout);
        self
    }
    pub fn private_key(mut self, pem: &str) -> Self {
        self.private_key = pem.to_string();
        self
    }
    pub async fn start(self) -> TestApp {
        let gh = FakeGitHub::start_with_test_app().await;
        demo_github(&gh);
        let sh = FakeSecurityHub::start().await;
        let mut settings = settings_for(&gh, &self.private_key);
        if let Some(token) = &self.metrics_token {
            settings.metrics_tokens = vec![SecretString::from(token.as_str())];
        }
        let clock = Arc::new(ManualClock::new(self.now));
        let mut deps = Deps::default()
            .clock(clock.clone())
            .securityhub(sh.client());
        if let Some(timeout) = self.github_timeout {
            deps = deps.github_timeout(timeout);
        }
        if let Some(tagging) = self.tagging {
            deps = deps.tagging(tagging);
        }
        let (db, database_url) = match self.postgres {
            // A database the test made: opened by the composition root from DATABASE_URL,
            // as `lever serve` opens it (pending migrations run).
            _ if self.database.is_some() => {
                let url = self.database.unwrap();
                settings.database_url = DatabaseUrl::new(&url);
                (Db::Given, url)
            }
            // SQLite: the composition root opens DATABASE_URL, as `lever serve` does.
            None => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("lever.db").display());
                settings.database_url = DatabaseUrl::new(&url);
                (Db::Sqlite(dir), url)
            }
            // PostgreSQL: a fresh schema of this test's own, opened here.
            Some(url) => {
                let schema = pg::Schema::create(&url).await;
                let store = PostgresStore::connect_with_schema(&url, &schema.name)
                    .await
                    .expect("postgres store");
                store.migrate().await.expect("migrate");
                deps = deps.store(Arc::new(store));
                (Db::Postgres(schema), url)
            }
        };
        let mut probe = None;
        if self.spy {
            let store = match deps.store.take() {
                Some(store) => store,
                None => lever::store::open(&database_url).await.expect("store"),
            };
            let spy = Spy::new(store);
            probe = Some(spy.probe.clone());
            deps = deps.store(Arc::new(spy));
        }
        let config = with_budget(
            Config::load(&self.config_dir).expect("test config is valid"),
            self.content_budget,
        );
        let mut app = Application::build(&settings, config, deps)
            .await
            .expect("the test app builds");
        if let Some((repo, git_ref)) = &self.config_repo {
            gh.add_repo(repo, true, Some(INSTALLATION));
            let text = |f: &str| std::fs::read_to_string(self.config_dir.join(f)).unwrap();
            let (toml, owners) = (text("lever.toml"), text("OWNERS"));
            gh.commit_files(
                repo,
                git_ref.as_deref().unwrap_or("main"),
                &[("lever.toml", Some(&toml)), ("OWNERS", Some(&owners))],
            );
            let source = lever::config::source::SourceSettings {
                repo: lever::config::RepoName::parse(repo).unwrap(),
                git_ref: git_ref.clone(),
                path: String::new(),
            };
            let followed = lever::config_repo::ConfigRepo::new(source, &self.config_dir);
            let config = followed
                .load(&app.github, None)
                .await
                .expect("the committed configuration is valid");
            let config = Arc::new(with_budget(config, self.content_budget));
            app.live_config.replace(config.clone());
            app.config = config;
            app = app.with_config_repo(followed);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        gh.set_oauth(OAUTH_CLIENT_SECRET, &format!("{url}/auth/github/callback"));
        let served = app.clone();
        let server = tokio::spawn(async move {
            lever::server::serve(listener, served, std::future::pending())
                .await
                .unwrap();
        });
        let (metrics_url, metrics_server) = if self.metrics_listener {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let served = app.clone();
            let handle = tokio::spawn(async move {
                lever::server::metrics::serve(
                    listener,
                    served,
                    &lever::config::EdgeSettings::default(),
                    std::future::pending(),
                )
                .await
                .unwrap();
            });
            (Some(url), Some(handle))
        } else {
            (None, None)
        };
        let worker = Worker::new(app.clone(), "test-worker-1");
        TestApp {
            url,
            app,
            gh,
            sh,
            clock,
            http: reqwest::Client::new(),
            worker,
            database_url,
            probe,
            metrics_url,
            _db: db,
            server,
            metrics_server,
        }
    }
}

/// The content budget tests run with unless they ask for another: far above anything a test
/// writes, so the pacing never postpones a job there (the pacing tests set their own).
pub const GENEROUS_BUDGET: (u32, u32) = (1_000_000, 60_000_000);

/// `config` with `[github] content_per_minute` and `content_per_hour` replaced.
pub fn with_budget(mut config: Config, (per_minute, per_hour): (u32, u32)) -> Config {
    config.settings.github.content_per_minute = per_minute;
    config.settings.github.content_per_hour = per_hour;
    config
}

/// The App's OAuth client secret in tests (GitHub sign-in to the dashboard).
pub const OAUTH_CLIENT_SECRET: &str = "oauth-client-secret-for-tests";

/// The process settings `lever serve` would read from an environment pointing at the fakes.
pub fn settings_for(gh: &FakeGitHub, private_key: &str) -> ProcessSettings {
    ProcessSettings {
        github_app_id: Some(TEST_APP_ID),
        github_private_key: Some(SecretString::from(private_key)),
        github_api_url: gh.url(),
        github_web_url: gh.url(),
        github_client_id: Some(gh.client_id()),
        github_client_secret: Some(SecretString::from(OAUTH_CLIENT_SECRET)),
        github_webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
        ingest_tokens: vec![SecretString::from(INGEST_TOKEN)],
        ..ProcessSettings::default()
    }
}

/// Another process's `App` on `store` (a second replica, a restart), wired to the fakes, built
/// by the same composition root as `lever serve`: only the clock, the store and the Security
/// Hub client are put in its place.
pub async fn app_on(
    config_dir: &Path,
    store: Arc<dyn Store>,
    gh: &FakeGitHub,
    sh: &FakeSecurityHub,
    clock: Arc<ManualClock>,
    private_key: &str,
) -> App {
    app_on_with_budget(
        config_dir,
        store,
        gh,
        sh,
        clock,
        private_key,
        GENEROUS_BUDGET,
    )
    .await
}

/// [`app_on`] with `[github] content_per_minute` and `content_per_hour` set to `budget`.
pub async fn app_on_with_budget(
    config_dir: &Path,
    store: Arc<dyn Store>,
    gh: &FakeGitHub,
    sh: &FakeSecurityHub,
    clock: Arc<ManualClock>,
    private_key: &str,
    budget: (u32, u32),
) -> App {
    let config = with_budget(
        Config::load(config_dir).expect("test config is valid"),
        budget,
    );
    let deps = Deps::default()
        .clock(clock)
        .store(store)
        .securityhub(sh.client());
    Application::build(&settings_for(gh, private_key), config, deps)
        .await
        .expect("the test app builds")
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            config_dir: root().join("examples/demo"),
            content_budget: GENEROUS_BUDGET,
            postgres: None,
            database: None,
            private_key: TEST_APP_PRIVATE_KEY_PEM.to_string(),
            now: t(NOW),
            spy: false,
            config_repo: None,
            github_timeout: None,
            tagging: None,
            metrics_token: None,
            metrics_listener: false,
        }
    }

    /// The demo configuration on SQLite.
    pub async fn start() -> TestApp {
        Self::builder().start().await
    }

    /// `POST /events/securityhub` with the ingest token.
    pub async fn post_event(&self, body: &Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/events/securityhub", self.url))
            .bearer_auth(INGEST_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Seeds the fake Security Hub with a demo findings file and posts it to Lever.
    pub async fn ingest_file(&self, path: &Path) -> (StatusCode, Value) {
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        self.sh.seed(doc.clone());
        self.post_event(&doc).await
    }

    /// Every demo findings file, in order.
    pub async fn ingest_demo(&self) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples/demo/findings"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let (status, body) = self.ingest_file(&f).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{}: {body}", f.display());
        }
    }

    /// `POST /webhooks/github` with GitHub's headers, signed with `secret`.
    pub async fn post_webhook_signed(
        &self,
        d: &WebhookDelivery,
        secret: &str,
    ) -> (StatusCode, Value) {
        let res = d
            .send(&self.http, &format!("{}/webhooks/github", self.url), secret)
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_webhook(&self, d: &WebhookDelivery) -> (StatusCode, Value) {
        self.post_webhook_signed(d, WEBHOOK_SECRET).await
    }

    /// Forwards Security Hub's Imported events (Lever's own updates echoed) to Lever.
    pub async fn forward_securityhub_events(&self) -> usize {
        let events = self.sh.drain_events();
        for e in &events {
            let (status, body) = self.post_event(e).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        events.len()
    }

    /// Runs every due job to completion.
    pub async fn drain(&self) -> Vec<JobReport> {
        self.worker.run_until_idle().await.expect("store reachable")
    }

    /// GitHub requests that changed something (everything but GETs).
    pub fn github_writes(&self) -> usize {
        self.gh
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    }

    /// Another connection pool on the same database: what a second replica would open.
    pub async fn replica_store(&self) -> Arc<dyn Store> {
        match &self._db {
            Db::Sqlite(_) | Db::Given => lever::store::open(&self.database_url)
                .await
                .expect("replica"),
            Db::Postgres(schema) => Arc::new(
                PostgresStore::connect_with_schema(&schema.url, &schema.name)
                    .await
                    .expect("postgres replica"),
            ),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(m) = &self.metrics_server {
            m.abort();
        }
    }
}

/// The demo configuration with `extra` TOML appended (tables only), in a temporary directory.
pub fn demo_config_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["lever.toml", "OWNERS"] {
        std::fs::copy(root().join("examples/demo").join(f), dir.path().join(f)).unwrap();
    }
    let mut toml = std::fs::read_to_string(dir.path().join("lever.toml")).unwrap();
    toml.push('\n');
    toml.push_str(extra);
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    dir
}

/// The demo configuration with `[github] content_per_minute` and `content_per_hour` set (for
/// the `lever` binary, which reads them from `lever.toml`), in a temporary directory.
pub fn demo_config_with_budget((per_minute, per_hour): (u32, u32)) -> tempfile::TempDir {
    let dir = demo_config_with("");
    let path = dir.path().join("lever.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let toml = toml.replacen(
        "[github]\n",
        &format!("[github]\ncontent_per_minute = {per_minute}\ncontent_per_hour = {per_hour}\n"),
        1,
    );
    std::fs::write(&path, toml).unwrap();
    dir
}

/// Driving the lifecycle: webhooks, echoes, and what the fakes now hold.
impl TestApp {
    /// Delivers webhooks, as GitHub would, and runs the work they cause, until quiet: a person's
    /// deliveries, then the deliveries of Lever's own API calls (which must change nothing).
    pub async fn deliver(&self, deliveries: Vec<WebhookDelivery>) {
        let mut queue = deliveries;
        for _ in 0..20 {
            for d in &queue {
                let (status, body) = self.post_webhook(d).await;
                self.gh.log_delivery(d, status.as_u16());
                assert!(
                    status == StatusCode::ACCEPTED || status == StatusCode::OK,
                    "{status} {body}"
                );
            }
            self.drain().await;
            queue = self.gh.drain_webhooks();
            if queue.is_empty() {
                return;
            }
        }
        panic!("webhooks keep coming: Lever is fighting itself");
    }

    /// Runs due work, delivers Lever's own webhooks and Security Hub echoes, until quiet;
    /// asserts that the echoes caused no GitHub call.
    pub async fn settle(&self) {
        self.drain().await;
        self.deliver(Vec::new()).await;
        // Lever's Security Hub writes come back as Imported events: never news.
        let before = self.gh.requests().len();
        self.forward_securityhub_events().await;
        self.drain().await;
        assert_eq!(
            self.gh.requests().len(),
            before,
            "Lever's own Security Hub echo caused GitHub calls"
        );
    }

    /// Bodies of the comments Lever's bot wrote on an issue.
    pub fn comments_by_bot(&self, repo: &str, n: u64) -> Vec<String> {
        let bot = self.gh.bot_login();
        self.gh
            .comments(repo, n)
            .iter()
            .filter(|c| c["user"]["login"] == bot)
            .map(|c| c["body"].as_str().unwrap().to_string())
            .collect()
    }

    /// Label names of an issue.
    pub fn labels(&self, repo: &str, n: u64) -> Vec<String> {
        self.gh.issue(repo, n).unwrap()["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `Workflow.Status` of every finding in the fake Security Hub.
    pub fn workflow(&self) -> Vec<String> {
        self.sh
            .findings()
            .iter()
            .map(|f| {
                f["Workflow"]["Status"]
                    .as_str()
                    .unwrap_or("NEW")
                    .to_string()
            })
            .collect()
    }

    /// Logins assigned to an issue.
    pub fn assignees(&self, repo: &str, n: u64) -> Vec<String> {
        self.gh.issue(repo, n).unwrap()["assignees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap().to_string())
            .collect()
    }
}
