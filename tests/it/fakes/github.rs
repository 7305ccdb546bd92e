//! A stateful fake of the GitHub REST API for a GitHub App, served by axum on 127.0.0.1:0.
//! See `fakes/mod.rs` for an example; every public method is documented below.

mod api;
mod auth;
mod contents;
mod issues;
mod manifests;
pub mod markdown;
mod oauth;
mod ops;
mod search;
mod server;

use server::Reply;
mod access;
mod hooks;
mod state;
mod webhooks;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::fakes::openapi;
pub use manifests::check_manifest;
use state::{AccountKind, AppRec, Bases, InstallationRec, RepoRec, State, TeamMember};
pub use webhooks::{WebhookDelivery, sign};

/// App id of the committed test App (`tests/fixtures/github-app-test-key.TEST-ONLY.pem`).
pub const TEST_APP_ID: u64 = 424242;
/// Slug of the test App; its bot user is `lever-test[bot]`.
pub const TEST_APP_SLUG: &str = "lever-test";
/// The test App's RSA private key (PKCS#1 PEM). A throwaway key made for these tests only.
pub const TEST_APP_PRIVATE_KEY_PEM: &str =
    include_str!("../../fixtures/github-app-test-key.TEST-ONLY.pem");
/// The test App's RSA public key (SPKI PEM).
pub const TEST_APP_PUBLIC_KEY_PEM: &str =
    include_str!("../../fixtures/github-app-test-key.TEST-ONLY.pub.pem");
/// A second throwaway RSA private key, NOT registered with the fake: JWTs signed with it must
/// be rejected.
pub const OTHER_TEST_PRIVATE_KEY_PEM: &str =
    include_str!("../../fixtures/github-app-other-test-key.TEST-ONLY.pem");

/// How a request authenticated itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// No `Authorization` header.
    None,
    /// A JWT that verified against the App key (it may still be expired or too long-lived).
    AppJwt,
    /// A JWT that did not verify.
    BadJwt,
    /// A known installation token (valid or not at the time of the request).
    Installation { installation_id: u64 },
    /// A user access token from GitHub sign-in (the OAuth web flow).
    User { login: String },
    /// A token the fake never issued.
    Unknown,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub seq: usize,
    pub method: String,
    /// Path as sent (percent-encoded), without the query.
    pub path: String,
    pub query: String,
    /// The body parsed as JSON (`None` when empty or not JSON).
    pub body: Option<Value>,
    pub token: TokenKind,
    /// Status the fake answered with.
    pub status: u16,
    /// OpenAPI operationId, when the request matched an operation.
    pub operation_id: Option<String>,
}

/// A conformance problem: a request the app sent that GitHub's description does not allow
/// (`violations()`), or a response of the fake that does not match it (`response_violations()`).
#[derive(Debug, Clone)]
pub struct Violation {
    pub request: String,
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.request, self.problem)
    }
}

/// What an injected fault does.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status and a GitHub-style error body; no effect happens.
    Status(u16),
    /// Perform the request's effect (create the issue, add the label…), then answer with this
    /// status instead of the real response: a crash or timeout after GitHub acted.
    AfterEffect(u16),
    /// Primary rate limit: this status (GitHub sends 403 or 429) with
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset`.
    PrimaryRateLimit { status: u16 },
    /// Secondary rate limit: this status (403 or 429) with `retry-after: <secs>`.
    SecondaryRateLimit { status: u16, retry_after_secs: u64 },
    /// A slow GitHub: wait this long, then serve the request normally.
    Delay { millis: u64 },
}

/// What a random fault of [`FakeGitHub::chaos`] does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChaosKind {
    /// 500, no effect.
    ServerError,
    /// 502, no effect.
    BadGateway,
    /// Served only after the client's timeout has passed (GitHub may still act).
    Timeout,
    /// The connection is closed without an answer, before anything happens.
    Reset,
    /// The request's effect happens, then the connection is closed without an answer.
    ResetAfterEffect,
    /// Secondary rate limit: 403 with `Retry-After: 60`, no effect.
    SecondaryLimit,
}

impl ChaosKind {
    const ALL: [ChaosKind; 6] = [
        ChaosKind::ServerError,
        ChaosKind::BadGateway,
        ChaosKind::Timeout,
        ChaosKind::Reset,
        ChaosKind::ResetAfterEffect,
        ChaosKind::SecondaryLimit,
    ];
}

/// Seeded random faults on a share of the requests (see [`FakeGitHub::chaos`]).
pub(crate) struct Chaos {
    rng: rand::rngs::StdRng,
    percent: u32,
    /// The kind of the first fault.
    first: usize,
    /// How long a [`ChaosKind::Timeout`] request waits before it is served.
    pub(crate) stall: std::time::Duration,
    pub(crate) hits: std::collections::BTreeMap<ChaosKind, usize>,
}

impl Chaos {
    /// Whether this request gets a fault, and which.
    pub(crate) fn roll(&mut self) -> Option<ChaosKind> {
        use rand::Rng;
        if self.rng.random_range(0..100) >= self.percent {
            return None;
        }
        // The kinds take turns (from a seeded start), so that any six faults show them all.
        let turn = self.hits.values().sum::<usize>();
        let kind = ChaosKind::ALL[(self.first + turn) % ChaosKind::ALL.len()];
        *self.hits.entry(kind).or_default() += 1;
        Some(kind)
    }
}

/// An injected fault, matched on method and path pattern (see [`FakeGitHub::inject`]).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_pattern: String,
    pub kind: FaultKind,
    pub remaining: u32,
}

/// An installation token the fake issued (see [`FakeGitHub::tokens_issued`]).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub installation_id: u64,
    pub expires_at: DateTime<Utc>,
}

/// Where GitHub read a text (see [`FakeGitHub::mentions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Title,
    Body,
    /// A comment, by id.
    Comment(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingKind {
    Mention,
    Reference,
    Link,
}

/// A mention, issue reference or link GitHub found in a title, body or comment, after
/// rendering the Markdown as GitHub does (`markdown::scan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// `owner/repo` of the issue the text belongs to.
    pub repo: String,
    pub issue: u64,
    pub place: Place,
    /// Who wrote the text (the App's bot for Lever's own writes).
    pub by: String,
    pub kind: SightingKind,
    /// `login` or `org/team` (mentions, no `@`), `owner/repo#N` (references), the URL (links).
    pub what: String,
}

/// GitHub's secondary limits on content-creating requests (`POST`, `PATCH`, `PUT`, `DELETE`
/// with an installation token), per installation: at most `per_minute` in any window of
/// `minute` and `per_hour` in any window of `hour`. Time-scaled runs shrink the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub minute: TimeDelta,
    pub hour: TimeDelta,
}

impl SecondaryLimits {
    /// GitHub's documented limits: 80 a minute, 500 an hour.
    pub fn github() -> SecondaryLimits {
        SecondaryLimits::new(80, 500)
    }
    /// These counts over real-length windows.
    pub fn new(per_minute: u32, per_hour: u32) -> SecondaryLimits {
        SecondaryLimits {
            per_minute,
            per_hour,
            minute: TimeDelta::minutes(1),
            hour: TimeDelta::hours(1),
        }
    }
}

/// A content-creating request the fake refused for the secondary limits (403, `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub installation: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    /// Requests of the installation already in the window that was full (minute or hour).
    pub window: &'static str,
}

/// The time the limits are enforced in: the test's clock.
pub type LimitsClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub(crate) struct Enforcer {
    limits: SecondaryLimits,
    clock: LimitsClock,
    /// Accepted content-creating requests per installation (newest last).
    accepted: std::collections::HashMap<u64, Vec<DateTime<Utc>>>,
    breaches: Vec<Breach>,
}

impl Enforcer {
    /// Admits one content-creating request at the enforcer's now, or says how many seconds
    /// to wait (`Retry-After`) and records the breach.
    pub(crate) fn admit(&mut self, installation: u64, method: &str, path: &str) -> Result<(), u64> {
        let now = (self.clock)();
        let l = self.limits;
        let times = self.accepted.entry(installation).or_default();
        let in_window = |len: TimeDelta| -> Vec<DateTime<Utc>> {
            times.iter().copied().filter(|t| *t > now - len).collect()
        };
        let (minute, hour) = (in_window(l.minute), in_window(l.hour));
        let full = [
            (minute, l.per_minute, l.minute, "minute"),
            (hour, l.per_hour, l.hour, "hour"),
        ]
        .into_iter()
        .filter(|(w, n, _, _)| w.len() >= *n as usize)
        .collect::<Vec<_>>();
        if full.is_empty() {
            times.push(now);
            return Ok(());
        }
        // Wait until enough of the window's oldest requests have left it.
        let wait = full
            .iter()
            .map(|(w, n, len, _)| w[w.len() - *n as usize] + *len - now)
            .max()
            .unwrap_or_default();
        self.breaches.push(Breach {
            installation,
            at: now,
            method: method.to_string(),
            path: path.to_string(),
            window: full[0].3,
        });
        Err(u64::try_from(wait.num_seconds().max(0)).unwrap_or(0) + 1)
    }
}

struct Shared {
    state: Mutex<State>,
    bases: Bases,
}

/// Handle to a running fake GitHub. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct FakeGitHub {
    shared: Arc<Shared>,
}

impl FakeGitHub {
    /// Bind 127.0.0.1:0 and serve on the current tokio runtime. No App is registered yet:
    /// call [`FakeGitHub::set_app`] or use [`FakeGitHub::start_with_test_app`].
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake GitHub");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 100,
                ..State::default()
            }),
            bases: Bases {
                api: format!("http://{addr}"),
                web: "https://github.com".to_string(),
            },
        });
        let router = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        FakeGitHub { shared }
    }

    /// Start and register the test App ([`TEST_APP_ID`], slug [`TEST_APP_SLUG`], committed key).
    pub async fn start_with_test_app() -> FakeGitHub {
        let fake = Self::start().await;
        fake.set_app(TEST_APP_ID, TEST_APP_SLUG, TEST_APP_PUBLIC_KEY_PEM);
        fake
    }

    /// A real octocrab client authenticated as the test App (JWT signed with
    /// [`TEST_APP_PRIVATE_KEY_PEM`]), pointed at this fake, with octocrab's retries turned off
    /// so that injected faults are seen exactly once. Use `.installation(id)` on it for an
    /// installation client.
    pub fn app_client(&self) -> octocrab::Octocrab {
        let key =
            octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(TEST_APP_PRIVATE_KEY_PEM.as_bytes())
                .expect("test key");
        octocrab::Octocrab::builder()
            .base_uri(self.url())
            .expect("base uri")
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .app(octocrab::models::AppId(TEST_APP_ID), key)
            .build()
            .expect("octocrab")
    }

    /// Base URL (`http://127.0.0.1:<port>`, no trailing slash): give it to
    /// `Octocrab::builder().base_uri(..)`.
    pub fn url(&self) -> String {
        self.shared.bases.api.clone()
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    // ---- setup ----------------------------------------------------------------------------

    /// Register the App: its id, slug (bot login `<slug>[bot]`) and RSA public key (PEM, SPKI
    /// or PKCS#1). Replaces any App registered before.
    pub fn set_app(&self, app_id: u64, slug: &str, public_key_pem: &str) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .expect("App public key must be an RSA PEM");
        let mut st = self.st();
        let owner = st.ensure_account("lever-app-owner", AccountKind::Organization);
        let now = st.now();
        st.app = Some(AppRec {
            id: app_id,
            slug: slug.to_string(),
            name: format!("{slug} (fake)"),
            client_id: format!("Iv23li{app_id:014}"),
            owner_login: owner.login,
            key,
            created_at: now,
        });
        let bot = format!("{slug}[bot]");
        st.ensure_account(&bot, AccountKind::Bot);
    }

    /// Commits `files` (path, text; `None` deletes the file) on `branch` of `repo` and moves
    /// the branch; returns the commit's sha.
    pub fn commit_files(&self, repo: &str, branch: &str, files: &[(&str, Option<&str>)]) -> String {
        contents::commit(&mut self.st(), repo, branch, files)
    }

    /// The check runs created on `repo`, as requested (oldest first).
    pub fn check_runs(&self, repo: &str) -> Vec<Value> {
        let key = repo.to_ascii_lowercase();
        self.st()
            .check_runs
            .iter()
            .filter(|(r, _)| *r == key)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The manifests of the Apps created through the manifest flow, oldest first.
    pub fn created_manifests(&self) -> Vec<Value> {
        self.st().created_manifests.clone()
    }

    /// The App's id, once one is registered.
    pub fn app_id(&self) -> Option<u64> {
        self.st().app.as_ref().map(|a| a.id)
    }

    /// The App's bot login, `<slug>[bot]`.
    pub fn bot_login(&self) -> String {
        self.st()
            .app
            .as_ref()
            .map(AppRec::bot_login)
            .unwrap_or_default()
    }

    /// Create a user account (no-op when it exists). Returns its id.
    pub fn add_user(&self, login: &str) -> u64 {
        self.st().ensure_account(login, AccountKind::User).id
    }

    /// Create an organization account (no-op when it exists). Returns its id.
    pub fn add_org(&self, login: &str) -> u64 {
        self.st()
            .ensure_account(login, AccountKind::Organization)
            .id
    }

    /// Install the App on `account_login` (an org is created when the account is unknown).
    pub fn add_installation(&self, installation_id: u64, account_login: &str) {
        let mut st = self.st();
        if st.account(account_login).is_none() {
            st.ensure_account(account_login, AccountKind::Organization);
        }
        let now = st.now();
        st.installations.insert(
            installation_id,
            InstallationRec {
                id: installation_id,
                account_login: account_login.to_string(),
                created_at: now,
                suspended: None,
            },
        );
    }

    /// Create repository `owner/name`, covered by `installation_id` when given.
    pub fn add_repo(&self, full_name: &str, private: bool, installation_id: Option<u64>) -> u64 {
        let (owner, name) = full_name.split_once('/').expect("owner/name");
        let mut st = self.st();
        if st.account(owner).is_none() {
            st.ensure_account(owner, AccountKind::Organization);
        }
        let id = 500_000 + st.next_id();
        let now = st.now();
        let owner = st
            .account(owner)
            .map(|a| a.login.clone())
            .unwrap_or_default();
        st.repos.insert(
            full_name.to_ascii_lowercase(),
            RepoRec {
                id,
                owner,
                name: name.to_string(),
                private,
                installation: installation_id,
                archived: false,
                created_at: now,
                labels: vec![],
                collaborators: Default::default(),
                issues: vec![],
                comments: vec![],
                events: vec![],
            },
        );
        id
    }

    /// Make `login` a collaborator of `repo` with a role (`admin`, `maintain`, `write`,
    /// `triage`, `read`). Collaborators are assignable; other users are not.
    /// The id of a repository added with [`FakeGitHub::add_repo`].
    pub fn repo_id(&self, full_name: &str) -> Option<u64> {
        self.st().repo(full_name).map(|r| r.id)
    }

    pub fn add_collaborator(&self, repo: &str, login: &str, role: &str) {
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        let r = st.repo_mut(repo).expect("unknown repo");
        r.collaborators
            .insert(login.to_ascii_lowercase(), role.to_string());
    }

    /// Remove a collaborator (the user stops being assignable).
    pub fn remove_collaborator(&self, repo: &str, login: &str) {
        let mut st = self.st();
        if let Some(r) = st.repo_mut(repo) {
            r.collaborators.remove(&login.to_ascii_lowercase());
        }
    }

    /// Add `login` to team `org/team_slug` with `state` `active` or `pending` (role `member`).
    pub fn add_team_member(&self, org: &str, team_slug: &str, login: &str, state: &str) {
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        if st.account(org).is_none() {
            st.ensure_account(org, AccountKind::Organization);
        }
        st.teams
            .entry((org.to_ascii_lowercase(), team_slug.to_ascii_lowercase()))
            .or_default()
            .insert(
                login.to_ascii_lowercase(),
                TeamMember {
                    role: "member".into(),
                    state: state.into(),
                },
            );
    }

    /// GitHub sign-in through the App: the App's OAuth client secret and callback URL.
    pub fn set_oauth(&self, client_secret: &str, callback: &str) {
        let mut st = self.st();
        st.oauth.client_secret = client_secret.to_string();
        st.oauth.callback = Some(callback.to_string());
    }

    /// The App's OAuth client id (`GITHUB_CLIENT_ID`).
    pub fn client_id(&self) -> String {
        self.st()
            .app
            .as_ref()
            .map(|a| a.client_id.clone())
            .expect("no App")
    }

    /// `login` is signed in to the website: the authorize page redirects back at once.
    pub fn sign_in_as(&self, login: &str) {
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        st.oauth.signed_in = Some(login.to_string());
    }

    /// Make `login` a member of organization `org`.
    pub fn add_org_member(&self, org: &str, login: &str) {
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        if st.account(org).is_none() {
            st.ensure_account(org, AccountKind::Organization);
        }
        st.oauth
            .org_members
            .entry(org.to_ascii_lowercase())
            .or_default()
            .insert(login.to_ascii_lowercase());
    }

    /// Create an empty team (so that non-members get 404 while the team exists).
    pub fn add_team(&self, org: &str, team_slug: &str) {
        self.st()
            .teams
            .entry((org.to_ascii_lowercase(), team_slug.to_ascii_lowercase()))
            .or_default();
    }

    /// Remove `login` from a team.
    pub fn remove_team_member(&self, org: &str, team_slug: &str, login: &str) {
        if let Some(t) = self
            .st()
            .teams
            .get_mut(&(org.to_ascii_lowercase(), team_slug.to_ascii_lowercase()))
        {
            t.remove(&login.to_ascii_lowercase());
        }
    }

    /// Create a repository label (no webhook). Returns false when it already exists.
    pub fn add_label(
        &self,
        repo: &str,
        name: &str,
        color: &str,
        description: Option<&str>,
    ) -> bool {
        let mut st = self.st();
        let id = st.next_id();
        let r = st.repo_mut(repo).expect("unknown repo");
        if r.label(name).is_some() {
            return false;
        }
        r.labels.push(state::LabelRec {
            id,
            name: name.to_string(),
            color: color.to_string(),
            description: description.map(str::to_string),
        });
        true
    }

    // ---- clock and tokens -------------------------------------------------------------------

    /// The fake's clock (real time shifted by [`FakeGitHub::advance_clock`]). It stamps
    /// created/updated times and decides installation-token expiry. JWTs are checked against
    /// the real clock, because the client signs them with the real clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.st().now()
    }

    /// Move the fake's clock forward (e.g. `TimeDelta::minutes(61)` expires every token).
    pub fn advance_clock(&self, by: TimeDelta) {
        self.st().clock_offset += by;
    }

    /// Stop the fake's clock at its current reading; only [`FakeGitHub::advance_clock`] moves
    /// it from now on (makes time windows such as the search limit deterministic).
    pub fn freeze_clock(&self) {
        let mut st = self.st();
        let now = st.now();
        st.frozen_at = Some(now - st.clock_offset);
    }

    /// Revoke every installation token issued so far (they answer 401 from now on).
    pub fn revoke_tokens(&self) {
        for t in self.st().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Installation tokens issued so far, oldest first.
    pub fn tokens_issued(&self) -> Vec<IssuedToken> {
        let st = self.st();
        let mut v: Vec<IssuedToken> = st
            .tokens
            .iter()
            .map(|(k, t)| IssuedToken {
                token: k.clone(),
                installation_id: t.installation,
                expires_at: t.expires_at,
            })
            .collect();
        v.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.token.cmp(&b.token)));
        v
    }

    /// Mint an installation token directly (as if the App had asked), e.g. for reqwest tests.
    pub fn mint_installation_token(&self, installation_id: u64) -> String {
        let mut st = self.st();
        auth::mint_token(&mut st, installation_id, None)
    }

    /// Model the search index lag: from now on `GET /search/issues` only sees issues that
    /// existed at the last [`FakeGitHub::refresh_search_index`] (or at this call).
    pub fn lag_search_index(&self) {
        let mut st = self.st();
        st.search_index_cutoff = Some(st.next_id);
    }

    /// Let search see every issue created so far (the lag stays on if it was on).
    pub fn refresh_search_index(&self) {
        let mut st = self.st();
        if st.search_index_cutoff.is_some() {
            st.search_index_cutoff = Some(st.next_id);
        }
    }

    // ---- faults -------------------------------------------------------------------------------

    /// Inject a fault for the next `times` requests matching `method` (`"*"` for any) and
    /// `path_pattern` (`*` matches within one path segment, `**` across segments; the query
    /// is not matched), e.g. `inject("POST", "/repos/*/*/issues", FaultKind::AfterEffect(502), 1)`.
    /// Faults are checked in the order injected.
    pub fn inject(&self, method: &str, path_pattern: &str, kind: FaultKind, times: u32) {
        self.st().faults.push(Fault {
            method: method.to_ascii_uppercase(),
            path_pattern: path_pattern.to_string(),
            kind,
            remaining: times,
        });
    }

    /// Serve the next `times` matching requests only after `millis` milliseconds.
    pub fn delay_next(&self, method: &str, path_pattern: &str, millis: u64, times: u32) {
        self.inject(method, path_pattern, FaultKind::Delay { millis }, times);
    }

    /// Answer the next `times` matching requests with `status` (no effect).
    pub fn fail_next(&self, method: &str, path_pattern: &str, status: u16, times: u32) {
        self.inject(method, path_pattern, FaultKind::Status(status), times);
    }

    /// Perform the next `times` matching requests, then answer 502 (GitHub acted, the client
    /// saw an error).
    pub fn fail_after_effect(&self, method: &str, path_pattern: &str, times: u32) {
        self.inject(method, path_pattern, FaultKind::AfterEffect(502), times);
    }

    /// Answer the next `times` matching requests with a primary rate limit (403, remaining 0).
    pub fn rate_limit_next(&self, method: &str, path_pattern: &str, times: u32) {
        self.inject(
            method,
            path_pattern,
            FaultKind::PrimaryRateLimit { status: 403 },
            times,
        );
    }

    /// Enforce GitHub's secondary limits on content-creating requests from now on, in the
    /// time `clock` tells (the test's manual clock): a request over either limit is answered
    /// 403 with `Retry-After` and no effect, and recorded as a [`Breach`]. Requests sent before
    /// this call are not counted.
    pub fn enforce_secondary_limits(
        &self,
        limits: SecondaryLimits,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) {
        self.st().limits = Some(Enforcer {
            limits,
            clock: Arc::new(clock),
            accepted: Default::default(),
            breaches: vec![],
        });
    }

    /// Content-creating requests refused for the secondary limits so far.
    pub fn breaches(&self) -> Vec<Breach> {
        self.st()
            .limits
            .as_ref()
            .map(|e| e.breaches.clone())
            .unwrap_or_default()
    }

    /// The times of the content-creating requests accepted under the limits, per installation
    /// (since [`FakeGitHub::enforce_secondary_limits`]).
    pub fn content_requests(&self, installation: u64) -> Vec<DateTime<Utc>> {
        self.st()
            .limits
            .as_ref()
            .and_then(|e| e.accepted.get(&installation).cloned())
            .unwrap_or_default()
    }

    /// From now on, `percent` % of all requests (chosen by a random generator seeded with
    /// `seed`, so a run replays) get a fault, the [`ChaosKind`]s taking turns: 500, 502, an answer
    /// only after `client_timeout` (plus a margin), a connection closed without an answer
    /// (before or after the effect), or a secondary-limit 403 with `Retry-After`. Faults
    /// injected with [`FakeGitHub::inject`] still come first. Until [`FakeGitHub::calm`].
    pub fn chaos(&self, seed: u64, percent: u32, client_timeout: std::time::Duration) {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let first = rand::Rng::random_range(&mut rng, 0..ChaosKind::ALL.len());
        self.st().chaos = Some(Chaos {
            rng,
            percent,
            first,
            stall: client_timeout + std::time::Duration::from_millis(200),
            hits: Default::default(),
        });
    }

    /// Stops [`FakeGitHub::chaos`]; returns how many faults of each kind it caused.
    pub fn calm(&self) -> std::collections::BTreeMap<ChaosKind, usize> {
        self.st().chaos.take().map(|c| c.hits).unwrap_or_default()
    }

    /// Remove all pending faults.
    pub fn clear_faults(&self) {
        self.st().faults.clear();
    }

    // ---- observation --------------------------------------------------------------------------

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.st().log.clone()
    }

    /// Number of requests matching `method` (`"*"` = any) and `path_pattern` (as in `inject`).
    pub fn count(&self, method: &str, path_pattern: &str) -> usize {
        self.st()
            .log
            .iter()
            .filter(|r| method_matches(method, &r.method) && glob(path_pattern, &r.path))
            .count()
    }

    /// Requests the app sent that do not conform to GitHub's OpenAPI description.
    pub fn violations(&self) -> Vec<Violation> {
        self.st().violations.clone()
    }

    /// Responses of the fake that do not conform (a bug in the fake).
    pub fn response_violations(&self) -> Vec<Violation> {
        self.st().response_violations.clone()
    }

    /// Panic with a readable list when there is any request or response violation.
    /// Without `../shared/conformance` nothing is validated: this prints a `SKIPPED:` line
    /// (or fails under `LEVER_REQUIRE_CONFORMANCE=1`).
    pub fn assert_conformant(&self) {
        if openapi::spec().is_none() {
            crate::fakes::require_conformance("FakeGitHub::assert_conformant (OpenAPI validation)");
            return;
        }
        let st = self.st();
        let all: Vec<String> = st
            .violations
            .iter()
            .map(|v| format!("request  {v}"))
            .chain(
                st.response_violations
                    .iter()
                    .map(|v| format!("response {v}")),
            )
            .collect();
        assert!(all.is_empty(), "OpenAPI violations:\n{}", all.join("\n"));
    }

    /// An issue as the REST API would return it (`None` when absent).
    pub fn issue(&self, repo: &str, number: u64) -> Option<Value> {
        let st = self.st();
        let r = st.repo(repo)?;
        let i = r.issue(number)?;
        Some(st.issue_json(&self.shared.bases, r, i))
    }

    /// All issues of a repository (REST shape), oldest first.
    pub fn issues(&self, repo: &str) -> Vec<Value> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        r.issues
            .iter()
            .filter(|i| i.gone.is_none())
            .map(|i| st.issue_json(&self.shared.bases, r, i))
            .collect()
    }

    /// Comments of an issue (REST shape), oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        r.comments
            .iter()
            .filter(|c| c.issue == number)
            .map(|c| st.comment_json(&self.shared.bases, r, c))
            .collect()
    }

    /// Issue events (REST shape), oldest first.
    pub fn events(&self, repo: &str, number: u64) -> Vec<Value> {
        let st = self.st();
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        r.events
            .iter()
            .filter(|e| e.issue == number)
            .map(|e| st.event_json(&self.shared.bases, r, e))
            .collect()
    }

    /// Every `@mention` GitHub found (and would notify) in what was written so far: issue
    /// bodies and comments as rendered (escapes and character references undone, code
    /// skipped), oldest first. Edits are read again, as GitHub does.
    pub fn mentions(&self) -> Vec<Sighting> {
        self.sightings(SightingKind::Mention)
    }

    /// Every issue reference GitHub found (`#N`, `owner/repo#N`, `GH-N`, links to issues and
    /// pull requests): each writes a cross-reference into the referenced issue's timeline.
    pub fn references(&self) -> Vec<Sighting> {
        self.sightings(SightingKind::Reference)
    }

    /// Every URL that renders as a link (inline links, images, autolinks).
    pub fn links(&self) -> Vec<Sighting> {
        self.sightings(SightingKind::Link)
    }

    fn sightings(&self, kind: SightingKind) -> Vec<Sighting> {
        self.st()
            .sightings
            .iter()
            .filter(|s| s.kind == kind)
            .cloned()
            .collect()
    }

    /// Label names of a repository.
    pub fn repo_labels(&self, repo: &str) -> Vec<String> {
        let st = self.st();
        st.repo(repo)
            .map(|r| r.labels.iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Take the webhook deliveries caused by API calls (sender = whoever called, normally the
    /// App's bot), oldest first. Deliveries made by the `human_*` helpers are returned by
    /// those helpers and are not queued here.
    pub fn drain_webhooks(&self) -> Vec<WebhookDelivery> {
        std::mem::take(&mut self.st().outbox)
    }

    /// Records an attempt to deliver `d` to the App's endpoint, as GitHub's delivery log does:
    /// `status` is what the endpoint answered (0: could not connect). A later attempt of the
    /// same event is a redelivery.
    pub fn log_delivery(&self, d: &WebhookDelivery, status: u16) {
        let mut st = self.st();
        let id = st.next_id();
        let delivered_at = st.now();
        let redelivery = st.hook_log.iter().any(|a| a.delivery.id == d.id);
        st.hook_log.push(hooks::HookAttempt {
            id,
            delivery: d.clone(),
            delivered_at,
            redelivery,
            status_code: status,
        });
    }

    /// The attempt ids Lever asked GitHub to redeliver, in order.
    pub fn redelivery_requests(&self) -> Vec<u64> {
        self.st().redelivery_requests.clone()
    }

    /// Deliveries queued and not drained yet (a copy).
    pub fn pending_webhooks(&self) -> Vec<WebhookDelivery> {
        self.st().outbox.clone()
    }
}

fn method_matches(pattern: &str, method: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(method)
}

/// `*` matches within one path segment, `**` across segments.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=t.len()).any(|i| go(&p[2..], &t[i..])),
            Some(b'*') => {
                let mut i = 0;
                loop {
                    if go(&p[1..], &t[i..]) {
                        return true;
                    }
                    if i == t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}
