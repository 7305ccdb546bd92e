//! GitHub App client: JWT → installation token (cached per installation until shortly before
//! it expires), and the issue, label, assignee and comment calls Lever makes. A thin layer over
//! octocrab; every call uses a relative route, so `GITHUB_API_URL` can point at GitHub
//! Enterprise Server or a local fake.
//!
//! octocrab's own retry is turned off: a retried `POST /issues` after a lost response would
//! create a second issue. Retries happen at the job level, where the issue marker makes them
//! safe.
//!
//! Every call made as an installation goes through one gate ([`GitHub::as_installation`]): the
//! installation's [`Pacer`] admits it first (shared pause, primary budget, content budget for
//! writes; see [`pacing`]), and its answer's rate-limit headers are recorded after. A
//! rate-limit answer pauses the installation for every worker of the process.

mod auth;
pub mod deliveries;
mod error;
mod models;
pub mod pacing;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::EncodingKey;
use octocrab::{FromResponse, Octocrab};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use deliveries::HookDelivery;
pub use models::{Comment, Issue, IssueEvent, Label, User};
pub use webhook::{
    AccessChange, CommentAction, IssuesAction, WebhookError, WebhookEvent, WebhookUser,
};

use auth::{CachedToken, LOOKUP_TTL};
pub use auth::{DEFAULT_READ_TIMEOUT, GitHubConfig};
pub use error::GitHubError;
use pacing::RateHeaders;
pub use pacing::{Call, ContentBudget, Gate, Paced, Pacer, Priority, SharedPacing};

pub type Result<T, E = GitHubError> = std::result::Result<T, E>;

/// Fields of `PATCH /repos/{owner}/{repo}/issues/{n}`; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssueUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `open` or `closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `completed`, `not_planned` or `reopened`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignees: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// One page of an issue's events, and the last page's number when GitHub says (see
/// [`GitHub::issue_events`]).
#[derive(Debug, Clone, Default)]
pub struct EventsPage {
    pub events: Vec<IssueEvent>,
    pub last_page: Option<u32>,
}

/// What Lever needs to know about a repository before it opens an issue there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoInfo {
    /// The repository's id: it stays when the repository is renamed or transferred.
    pub id: u64,
    pub public: bool,
    /// Archived repositories are read-only: every write answers 403.
    pub archived: bool,
}

/// The answer to a conditional list of issues (see [`GitHub::issues_changed`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Changed {
    /// 304: nothing changed since the request that returned this ETag (free: GitHub does not
    /// count a 304 against the rate limit).
    NotModified,
    /// The issues updated since the cursor, the response's ETag, and whether more pages follow.
    Issues {
        issues: Vec<Issue>,
        etag: Option<String>,
        more: bool,
    },
}

/// The GitHub App, as Lever uses it.
pub struct GitHub {
    cfg: GitHubConfig,
    key: EncodingKey,
    installations: Mutex<HashMap<String, (u64, Instant)>>,
    tokens: Mutex<HashMap<u64, CachedToken>>,
    visibility: Mutex<HashMap<String, (RepoInfo, Instant)>>,
    bot_login: Mutex<Option<String>>,
    pacer: Pacer,
}

/// A response body with the primary-budget headers it came with.
struct Headed<T> {
    body: T,
    rate: RateHeaders,
}

impl<T: FromResponse + Send> FromResponse for Headed<T> {
    async fn from_response<B>(response: http::Response<B>) -> octocrab::Result<Self>
    where
        B: http_body::Body<Data = bytes::Bytes, Error = octocrab::Error> + Send,
    {
        let rate = RateHeaders::from_headers(response.headers());
        let body = T::from_response(response).await?;
        Ok(Headed { body, rate })
    }
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("cfg", &self.cfg).finish()
    }
}

fn split(repo: &str) -> (&str, &str) {
    repo.split_once('/').unwrap_or((repo, ""))
}

/// Percent-encodes one path segment (label names may contain `:`, spaces, `/`).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl GitHub {
    /// The App, its calls paced by `pacer`.
    pub fn new(cfg: GitHubConfig, pacer: Pacer) -> anyhow::Result<Arc<GitHub>> {
        let key = EncodingKey::from_rsa_pem(cfg.private_key_pem.expose_secret().as_bytes())
            .map_err(|e| {
                anyhow::anyhow!("the GitHub App private key is not a valid RSA PEM key: {e}")
            })?;
        Ok(Arc::new(GitHub {
            cfg,
            key,
            installations: Mutex::default(),
            tokens: Mutex::default(),
            visibility: Mutex::default(),
            bot_login: Mutex::default(),
            pacer,
        }))
    }

    /// The per-installation pacing of this process's calls.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// `GET route` as the installation covering `repo`.
    async fn read<T, P>(
        &self,
        repo: &str,
        route: String,
        params: Option<&P>,
        what: &str,
    ) -> Result<T>
    where
        T: DeserializeOwned + Send,
        P: Serialize + ?Sized + Sync,
    {
        self.as_installation(repo, Call::Read, what, |c: Octocrab| async move {
            c.get::<Headed<T>, _, _>(route, params).await
        })
        .await
    }

    /// A write (`POST`, `PATCH`, `DELETE`) as the installation covering `repo`: takes a permit
    /// of its content budget.
    async fn write<T, B>(
        &self,
        repo: &str,
        method: http::Method,
        route: String,
        body: Option<&B>,
        what: &str,
    ) -> Result<T>
    where
        T: DeserializeOwned + Send,
        B: Serialize + ?Sized + Sync,
    {
        self.as_installation(repo, Call::Write, what, |c: Octocrab| async move {
            match method {
                http::Method::POST => c.post::<_, Headed<T>>(route, body).await,
                http::Method::PATCH => c.patch::<Headed<T>, _, _>(route, body).await,
                _ => c.delete::<Headed<T>, _, _>(route, body).await,
            }
        })
        .await
    }

    /// The text of the file at `path` in `repo` at `git_ref` (a branch or a commit; `None`:
    /// the default branch), read as the installation covering `repo` (contents: read).
    /// `Ok(None)` when there is no such file.
    pub async fn file_text(
        &self,
        repo: &str,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct FileContent {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            encoding: Option<String>,
            #[serde(default)]
            content: Option<String>,
        }
        let (o, r) = split(repo);
        let route = format!(
            "/repos/{}/{}/contents/{}",
            seg(o),
            seg(r),
            path.split('/').map(seg).collect::<Vec<_>>().join("/")
        );
        let params = git_ref.map(|r| [("ref", r)]);
        let what = format!("{repo}:{path}");
        let file: FileContent = match self.read(repo, route, params.as_ref(), &what).await {
            Ok(f) => f,
            Err(GitHubError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if file.kind != "file" || file.encoding.as_deref() != Some("base64") {
            return Err(GitHubError::Other {
                status: 200,
                message: format!(
                    "{what} is a {} (encoding {:?}), not a file Lever can read",
                    file.kind, file.encoding
                ),
            });
        }
        use base64::Engine;
        let packed: String = file
            .content
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| GitHubError::Other {
                status: 200,
                message: format!("{what}: content is not base64: {e}"),
            })?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| GitHubError::Other {
                status: 200,
                message: format!("{what} is not UTF-8 text"),
            })
    }

    /// Creates a check run on a commit of `repo` (checks: write); `body` as GitHub's
    /// `POST /repos/{owner}/{repo}/check-runs` takes it.
    pub async fn create_check_run(&self, repo: &str, body: &serde_json::Value) -> Result<u64> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let (o, r) = split(repo);
        let created: Created = self
            .write(
                repo,
                http::Method::POST,
                format!("/repos/{}/{}/check-runs", seg(o), seg(r)),
                Some(body),
                &format!("check run on {repo}"),
            )
            .await?;
        Ok(created.id)
    }

    /// Whether `repo` is public (cached for a few minutes).
    pub async fn is_public(&self, repo: &str) -> Result<bool> {
        Ok(self.repo_info(repo).await?.public)
    }

    /// Whether `repo` is public and whether it is archived (cached for a few minutes). A
    /// repository the App cannot reach answers [`GitHubError::is_refusal`].
    pub async fn repo_info(&self, repo: &str) -> Result<RepoInfo> {
        let k = repo.to_ascii_lowercase();
        if let Some((info, at)) = self.visibility.lock().await.get(&k)
            && at.elapsed() < LOOKUP_TTL
        {
            return Ok(*info);
        }
        let (o, r) = split(repo);
        let found: models::Repository = self
            .read(
                repo,
                format!("/repos/{}/{}", seg(o), seg(r)),
                None::<&()>,
                repo,
            )
            .await?;
        let info = RepoInfo {
            id: found.id,
            public: !found.private && found.visibility.as_deref().unwrap_or("public") == "public",
            archived: found.archived,
        };
        self.visibility
            .lock()
            .await
            .insert(k, (info, Instant::now()));
        Ok(info)
    }

    /// Whether the App is installed on `repo` (`false` when GitHub answers 404 for its
    /// installation).
    pub async fn has_app(&self, repo: &str) -> Result<bool> {
        match self.installation_id(repo).await {
            Ok(_) => Ok(true),
            Err(GitHubError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page (1-based, 100 per page) of the repository's issues carrying `label`, in any
    /// state, updated at or after `since` (all of them without it), oldest update first. With
    /// `etag` (the one the same request returned before) GitHub answers 304 when nothing
    /// changed, which does not count against the rate limit.
    pub async fn issues_changed(
        &self,
        repo: &str,
        label: &str,
        since: Option<chrono::DateTime<chrono::Utc>>,
        etag: Option<&str>,
        page: u32,
    ) -> Result<Changed> {
        let (o, r) = split(repo);
        let mut route = format!(
            "/repos/{}/{}/issues?labels={}&state=all&sort=updated&direction=asc&per_page=100&page={page}",
            seg(o),
            seg(r),
            seg(label)
        );
        if let Some(since) = since {
            route.push_str("&since=");
            route.push_str(&seg(
                &since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        let mut headers = http::HeaderMap::new();
        if let Some(v) = etag.and_then(|e| http::HeaderValue::from_str(e).ok()) {
            headers.insert(http::header::IF_NONE_MATCH, v);
        }
        let what = format!("issues changed in {repo}");
        // (the body as text, its ETag, whether a next page exists); `None` for 304
        type Raw = Option<(String, Option<String>, bool)>;
        let raw: Raw = self
            .as_installation(repo, Call::Read, &what, |c: Octocrab| async move {
                let res = c._get_with_headers(route.as_str(), Some(headers)).await?;
                let rate = RateHeaders::from_headers(res.headers());
                if res.status() == http::StatusCode::NOT_MODIFIED {
                    return Ok(Headed { body: None, rate });
                }
                let res = octocrab::map_github_error(res).await?;
                let header = |name: http::HeaderName| {
                    res.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let etag = header(http::header::ETAG);
                let more = header(http::header::LINK).is_some_and(|l| l.contains("rel=\"next\""));
                let text = c.body_to_string(res).await?;
                Ok(Headed {
                    body: Some((text, etag, more)),
                    rate,
                })
            })
            .await?;
        let Some((text, etag, more)) = raw else {
            return Ok(Changed::NotModified);
        };
        let issues: Vec<Issue> = serde_json::from_str(&text).map_err(|e| GitHubError::Other {
            status: 200,
            message: format!("{what}: unexpected answer: {e}"),
        })?;
        Ok(Changed::Issues { issues, etag, more })
    }

    pub async fn create_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        labels: &[String],
        assignees: &[String],
    ) -> Result<Issue> {
        #[derive(Serialize)]
        struct Create<'a> {
            title: &'a str,
            body: &'a str,
            labels: &'a [String],
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            assignees: &'a [String],
        }
        let (o, r) = split(repo);
        self.write(
            repo,
            http::Method::POST,
            format!("/repos/{}/{}/issues", seg(o), seg(r)),
            Some(&Create {
                title,
                body,
                labels,
                assignees,
            }),
            &format!("create issue in {repo}"),
        )
        .await
    }

    /// One page (1-based) of the repository's issues (carrying `label` when given), newest
    /// first, in any state, created by `creator` when given.
    pub async fn list_issues(
        &self,
        repo: &str,
        label: Option<&str>,
        creator: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<Issue>> {
        #[derive(Serialize)]
        struct Query<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            labels: Option<&'a str>,
            state: &'static str,
            sort: &'static str,
            direction: &'static str,
            per_page: u32,
            page: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            creator: Option<&'a str>,
        }
        let (o, r) = split(repo);
        let q = Query {
            labels: label,
            state: "all",
            sort: "created",
            direction: "desc",
            per_page,
            page,
            creator,
        };
        self.read(
            repo,
            format!("/repos/{}/{}/issues", seg(o), seg(r)),
            Some(&q),
            &format!("list issues in {repo}"),
        )
        .await
    }

    pub async fn get_issue(&self, repo: &str, number: u64) -> Result<Issue> {
        let (o, r) = split(repo);
        self.read(
            repo,
            format!("/repos/{}/{}/issues/{number}", seg(o), seg(r)),
            None::<&()>,
            &format!("{repo}#{number}"),
        )
        .await
    }

    pub async fn update_issue(
        &self,
        repo: &str,
        number: u64,
        update: &IssueUpdate,
    ) -> Result<Issue> {
        let (o, r) = split(repo);
        self.write(
            repo,
            http::Method::PATCH,
            format!("/repos/{}/{}/issues/{number}", seg(o), seg(r)),
            Some(update),
            &format!("update {repo}#{number}"),
        )
        .await
    }

    pub async fn add_labels(
        &self,
        repo: &str,
        number: u64,
        labels: &[String],
    ) -> Result<Vec<Label>> {
        #[derive(Serialize)]
        struct Body<'a> {
            labels: &'a [String],
        }
        let (o, r) = split(repo);
        self.write(
            repo,
            http::Method::POST,
            format!("/repos/{}/{}/issues/{number}/labels", seg(o), seg(r)),
            Some(&Body { labels }),
            &format!("label {repo}#{number}"),
        )
        .await
    }

    /// Removes a label; a label that is not on the issue is not an error.
    pub async fn remove_label(&self, repo: &str, number: u64, label: &str) -> Result<()> {
        let (o, r) = split(repo);
        let res = self
            .write::<Vec<Label>, ()>(
                repo,
                http::Method::DELETE,
                format!(
                    "/repos/{}/{}/issues/{number}/labels/{}",
                    seg(o),
                    seg(r),
                    seg(label)
                ),
                None,
                &format!("unlabel {repo}#{number}"),
            )
            .await;
        match res {
            Ok(_) | Err(GitHubError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn create_comment(&self, repo: &str, number: u64, body: &str) -> Result<Comment> {
        #[derive(Serialize)]
        struct Body<'a> {
            body: &'a str,
        }
        let (o, r) = split(repo);
        self.write(
            repo,
            http::Method::POST,
            format!("/repos/{}/{}/issues/{number}/comments", seg(o), seg(r)),
            Some(&Body { body }),
            &format!("comment on {repo}#{number}"),
        )
        .await
    }

    /// One page (1-based, 100 per page) of an issue sub-resource (`comments`, `events`),
    /// oldest first. Pages are asked by number: GitHub's absolute `Link` URLs would leave the
    /// token behind on GitHub Enterprise Server.
    async fn issue_page<T: DeserializeOwned + Send>(
        &self,
        repo: &str,
        number: u64,
        what: &str,
        page: u32,
    ) -> Result<Vec<T>> {
        let (o, r) = split(repo);
        let page = page.to_string();
        self.read(
            repo,
            format!("/repos/{}/{}/issues/{number}/{what}", seg(o), seg(r)),
            Some(&[("per_page", "100"), ("page", page.as_str())]),
            &format!("{what} of {repo}#{number}"),
        )
        .await
    }

    /// One page (1-based) of an issue's comments, oldest first.
    pub async fn list_comments(&self, repo: &str, number: u64, page: u32) -> Result<Vec<Comment>> {
        self.issue_page(repo, number, "comments", page).await
    }

    /// One page (1-based, 100 per page) of an issue's events (labeled, closed, ...), oldest
    /// first, with the number of the last page when GitHub's `Link` header names one
    /// (`rel="last"`; GitHub leaves it out on the last page itself and when there is one page).
    /// Only the page number is read from the link: the page itself is asked by number, on a
    /// relative route, like every call.
    pub async fn issue_events(&self, repo: &str, number: u64, page: u32) -> Result<EventsPage> {
        let (o, r) = split(repo);
        let route = format!("/repos/{}/{}/issues/{number}/events", seg(o), seg(r));
        let page = page.to_string();
        let what = format!("events of {repo}#{number}");
        let page: octocrab::Page<IssueEvent> = self
            .as_installation(repo, Call::Read, &what, |c: Octocrab| async move {
                c.get::<Headed<octocrab::Page<IssueEvent>>, _, _>(
                    route,
                    Some(&[("per_page", "100"), ("page", page.as_str())]),
                )
                .await
            })
            .await?;
        Ok(EventsPage {
            last_page: page.number_of_pages(),
            events: page.items,
        })
    }

    /// Whether `user` is an active member of `org/team`, asked with the token of the
    /// installation covering `repo` (the App needs the organization "members: read" permission).
    pub async fn is_active_team_member(
        &self,
        repo: &str,
        org: &str,
        team: &str,
        user: &str,
    ) -> Result<bool> {
        let res = self
            .read::<models::TeamMembership, ()>(
                repo,
                format!(
                    "/orgs/{}/teams/{}/memberships/{}",
                    seg(org),
                    seg(team),
                    seg(user)
                ),
                None,
                &format!("membership of {user} in {org}/{team}"),
            )
            .await;
        match res {
            Ok(m) => Ok(m.state == "active"),
            Err(GitHubError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names of the repository's labels (every page of 100).
    pub async fn label_names(&self, repo: &str) -> Result<Vec<String>> {
        let (o, r) = split(repo);
        let mut names = Vec::new();
        for page in 1.. {
            let page_str = page.to_string();
            let labels: Vec<Label> = self
                .read(
                    repo,
                    format!("/repos/{}/{}/labels", seg(o), seg(r)),
                    Some(&[("per_page", "100"), ("page", page_str.as_str())]),
                    &format!("labels of {repo}"),
                )
                .await?;
            let n = labels.len();
            names.extend(labels.into_iter().map(|l| l.name));
            if n < 100 {
                break;
            }
        }
        Ok(names)
    }

    /// Creates a label if the repository does not have it yet (422 `already_exists` is fine).
    pub async fn ensure_label(
        &self,
        repo: &str,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            color: &'a str,
            description: &'a str,
        }
        let (o, r) = split(repo);
        let res = self
            .write::<Label, _>(
                repo,
                http::Method::POST,
                format!("/repos/{}/{}/labels", seg(o), seg(r)),
                Some(&Body {
                    name,
                    color,
                    description,
                }),
                &format!("label {name} in {repo}"),
            )
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(GitHubError::Validation { errors, .. })
                if errors.to_string().contains("already_exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("severity:high"), "severity%3Ahigh");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("acme-payments_1.x"), "acme-payments_1.x");
    }
}
