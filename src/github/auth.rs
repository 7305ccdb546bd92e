//! GitHub App authentication: the App's settings, its JWT, and installation tokens looked up
//! per repository and cached until shortly before they expire.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::SecretString;
use serde::Serialize;

use super::pacing::{Call, RateHeaders};
use super::{GitHub, GitHubError, Headed, Result, models, seg, split};

/// Where and how to reach GitHub (from `GITHUB_APP_ID`, `GITHUB_PRIVATE_KEY` or
/// `GITHUB_PRIVATE_KEY_PATH`, and `GITHUB_API_URL`: see `config::process`).
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    pub app_id: u64,
    /// PEM text; `Debug` shows `[REDACTED]`.
    pub private_key_pem: SecretString,
    pub api_url: String,
    /// How long a call may wait for GitHub's answer before it fails (and is retried like a
    /// 5xx): [`DEFAULT_READ_TIMEOUT`] unless a test puts a shorter one.
    pub read_timeout: StdDuration,
}

/// How long a call waits for GitHub's answer by default.
pub const DEFAULT_READ_TIMEOUT: StdDuration = StdDuration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
struct JwtClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

pub(super) struct CachedToken {
    pub(super) client: Octocrab,
    pub(super) expires_at: DateTime<Utc>,
}

/// Refresh an installation token this long before GitHub says it expires.
const TOKEN_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// How long repository → installation and repository visibility answers are kept.
pub(super) const LOOKUP_TTL: StdDuration = StdDuration::from_secs(600);

impl GitHub {
    fn client(&self, token: String) -> Result<Octocrab> {
        Octocrab::builder()
            .base_uri(self.cfg.api_url.as_str())
            .map_err(|e| {
                GitHubError::Transport(format!("GITHUB_API_URL {:?}: {e}", self.cfg.api_url))
            })?
            .personal_token(token)
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(StdDuration::from_secs(10)))
            .set_read_timeout(Some(self.cfg.read_timeout))
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_string(),
            )
            .add_header(
                http::HeaderName::from_static("x-github-api-version"),
                "2022-11-28".to_string(),
            )
            .build()
            .map_err(|e| GitHubError::Transport(format!("building the HTTP client: {e}")))
    }

    /// An App JWT: RS256, issued 60 s in the past (clock drift), valid 9 minutes.
    pub fn app_jwt(&self) -> Result<String> {
        let now = Utc::now().timestamp();
        let claims = JwtClaims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: self.cfg.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key).map_err(|e| {
            GitHubError::Other {
                status: 0,
                message: format!("signing the App JWT: {e}"),
            }
        })
    }

    pub(super) fn app_client(&self) -> Result<Octocrab> {
        self.client(self.app_jwt()?)
    }

    /// The installation that covers `repo` (cached).
    pub async fn installation_id(&self, repo: &str) -> Result<u64> {
        let k = repo.to_ascii_lowercase();
        if let Some((id, at)) = self.installations.lock().await.get(&k)
            && at.elapsed() < LOOKUP_TTL
        {
            return Ok(*id);
        }
        let (o, r) = split(repo);
        let inst: models::Installation = self
            .app_client()?
            .get(
                format!("/repos/{}/{}/installation", seg(o), seg(r)),
                None::<&()>,
            )
            .await
            .map_err(|e| GitHubError::from_octocrab(e, &format!("installation for {repo}")))?;
        self.installations
            .lock()
            .await
            .insert(k, (inst.id, Instant::now()));
        Ok(inst.id)
    }

    /// Runs one call as the installation covering `repo`, through the installation's pacing:
    /// the [`super::Pacer`] admits it first (a refusal is [`GitHubError::Paced`] and nothing is
    /// sent), the answer's rate-limit headers are recorded, and a rate-limit answer (403/429)
    /// pauses the installation for every worker until `Retry-After` or the reset, returned as
    /// [`GitHubError::Paced`] too.
    ///
    /// GitHub answering 401 means it no longer accepts the cached token (revoked early, the App
    /// reinstalled, the installation moved): the token and the installation lookup are
    /// forgotten, so the next call mints a fresh token instead of failing until the old one
    /// would have expired.
    pub(super) async fn as_installation<T, F, Fut>(
        &self,
        repo: &str,
        call: Call,
        what: &str,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Octocrab) -> Fut,
        Fut: Future<Output = octocrab::Result<Headed<T>>>,
    {
        let result = self.as_installation_uncounted(repo, call, what, f).await;
        // The one place GitHub calls are counted: the call made (or not) and how it ended. A
        // rate-limit answer comes back as the pause it caused (`paced`), its wait counted.
        self.pacer.count(call, result.as_ref().map(|_| ()));
        result
    }

    async fn as_installation_uncounted<T, F, Fut>(
        &self,
        repo: &str,
        call: Call,
        what: &str,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Octocrab) -> Fut,
        Fut: Future<Output = octocrab::Result<Headed<T>>>,
    {
        let (owner, _) = split(repo);
        if let Some(paced) = self.pacer.blocked(owner) {
            return Err(GitHubError::Paced(paced));
        }
        let id = self.installation_id(repo).await?;
        self.pacer.learn_owner(owner, id);
        self.pacer
            .admit_shared(id, call)
            .await
            .map_err(GitHubError::Paced)?;
        let client = self.installation_client(id).await?;
        let e = match f(client).await {
            Ok(Headed { body, rate }) => {
                self.pacer.observe(id, rate);
                return Ok(body);
            }
            Err(e) => e,
        };
        if let octocrab::Error::GitHub { source, .. } = &e
            && let Some(headers) = &source.headers
        {
            self.pacer.observe(id, RateHeaders::from_headers(headers));
        }
        let err = GitHubError::from_octocrab(e, what);
        if let GitHubError::Unauthorized(message) = &err {
            tracing::warn!(repo, %message, "GitHub refused the installation token; forgetting it");
            self.forget(repo).await;
        }
        if let Some(until) = err.rate_limited_until(self.pacer.now()) {
            tracing::warn!(repo, error = %err, "GitHub answered with a rate limit");
            return Err(GitHubError::Paced(self.pacer.pause_shared(id, until).await));
        }
        Err(err)
    }

    /// A client authenticated as installation `id`.
    async fn installation_client(&self, id: u64) -> Result<Octocrab> {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&id)
            && Utc::now() + TOKEN_MARGIN < t.expires_at
        {
            return Ok(t.client.clone());
        }
        let tok: models::AccessToken = self
            .app_client()?
            .post(
                format!("/app/installations/{id}/access_tokens"),
                None::<&()>,
            )
            .await
            .map_err(|e| GitHubError::from_octocrab(e, &format!("token for installation {id}")))?;
        let client = self.client(tok.token)?;
        tokens.insert(
            id,
            CachedToken {
                client: client.clone(),
                expires_at: tok.expires_at,
            },
        );
        Ok(client)
    }

    /// Forgets cached credentials for `repo` (after a 401, or when an installation changes).
    pub async fn forget(&self, repo: &str) {
        if let Some((id, _)) = self
            .installations
            .lock()
            .await
            .remove(&repo.to_ascii_lowercase())
        {
            self.tokens.lock().await.remove(&id);
        }
    }

    /// The App's bot login (`<slug>[bot]`): the author of every issue and comment Lever makes.
    pub async fn bot_login(&self) -> Result<String> {
        if let Some(l) = self.bot_login.lock().await.clone() {
            return Ok(l);
        }
        let app: models::App = self
            .app_client()?
            .get("/app", None::<&()>)
            .await
            .map_err(|e| GitHubError::from_octocrab(e, "the App"))?;
        let login = format!("{}[bot]", app.slug);
        *self.bot_login.lock().await = Some(login.clone());
        Ok(login)
    }
}
