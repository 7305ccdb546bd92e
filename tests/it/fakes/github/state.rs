//! Records held by the fake GitHub and their JSON renderings (shaped like GitHub's REST
//! responses and webhook payloads).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Fault, RecordedRequest, Violation, WebhookDelivery};
use crate::fakes::openapi::percent_encode;

/// Where links in rendered objects point.
#[derive(Debug, Clone)]
pub(crate) struct Bases {
    /// The fake's own URL, standing in for `https://api.github.com`.
    pub api: String,
    /// The web host used for `html_url`s.
    pub web: String,
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountKind {
    User,
    Bot,
    Organization,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "User",
            AccountKind::Bot => "Bot",
            AccountKind::Organization => "Organization",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: u64,
    pub login: String,
    pub kind: AccountKind,
}

#[derive(Clone)]
pub(crate) struct AppRec {
    pub id: u64,
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub owner_login: String,
    pub key: jsonwebtoken::DecodingKey,
    pub created_at: DateTime<Utc>,
}

impl AppRec {
    pub fn bot_login(&self) -> String {
        format!("{}[bot]", self.slug)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct InstallationRec {
    pub id: u64,
    pub account_login: String,
    pub created_at: DateTime<Utc>,
    /// Suspended by this login at this instant: tokens and calls answer 403.
    pub suspended: Option<(String, DateTime<Utc>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct LabelRec {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct IssueRec {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub user: String,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub comments: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub via_app: bool,
    /// Deleted or transferred away: GET answers 410 / 301-like 404.
    pub gone: Option<&'static str>,
    /// API URL of the issue this one was transferred to.
    pub moved_to: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CommentRec {
    pub id: u64,
    pub issue: u64,
    pub user: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub via_app: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct EventRec {
    pub id: u64,
    pub issue: u64,
    pub actor: String,
    pub event: String,
    pub label: Option<(String, String)>,
    pub assignee: Option<String>,
    pub state_reason: Option<String>,
    pub rename: Option<(String, String)>,
    pub created_at: DateTime<Utc>,
    pub via_app: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RepoRec {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub installation: Option<u64>,
    /// Archived: read-only, every write answers 403.
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub labels: Vec<LabelRec>,
    /// lower-case login -> role name (admin, maintain, write, triage, read)
    pub collaborators: BTreeMap<String, String>,
    pub issues: Vec<IssueRec>,
    pub comments: Vec<CommentRec>,
    pub events: Vec<EventRec>,
}

impl RepoRec {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    pub fn label(&self, name: &str) -> Option<&LabelRec> {
        self.labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }
    pub fn issue(&self, number: u64) -> Option<&IssueRec> {
        self.issues.iter().find(|i| i.number == number)
    }
    pub fn issue_mut(&mut self, number: u64) -> Option<&mut IssueRec> {
        self.issues.iter_mut().find(|i| i.number == number)
    }
    pub fn is_assignable(&self, login: &str) -> bool {
        self.collaborators.contains_key(&login.to_ascii_lowercase())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TeamMember {
    pub role: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenRec {
    pub installation: u64,
    pub expires_at: DateTime<Utc>,
    /// Repositories (lower-case full names) the token is limited to; `None` = all.
    pub repositories: Option<Vec<String>>,
    pub revoked: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub clock_offset: chrono::TimeDelta,
    /// when set, the fake's clock stands still at this instant (plus `clock_offset`)
    pub frozen_at: Option<DateTime<Utc>>,
    pub app: Option<AppRec>,
    /// lower-case login -> account
    pub accounts: BTreeMap<String, Account>,
    pub installations: BTreeMap<u64, InstallationRec>,
    /// lower-case full name -> repo
    pub repos: BTreeMap<String, RepoRec>,
    /// (lower org, lower team slug) -> lower login -> member
    pub teams: BTreeMap<(String, String), BTreeMap<String, TeamMember>>,
    pub tokens: HashMap<String, TokenRec>,
    pub next_id: u64,
    pub faults: Vec<Fault>,
    pub log: Vec<RecordedRequest>,
    pub violations: Vec<Violation>,
    pub response_violations: Vec<Violation>,
    pub outbox: Vec<WebhookDelivery>,
    /// requests counted against the core rate limit, per installation
    pub rate_used: HashMap<u64, u64>,
    /// search requests per installation (fake clock), for the 30/minute search limit
    pub search_calls: HashMap<u64, Vec<DateTime<Utc>>>,
    /// when set, search only sees issues with an id up to this one (index lag)
    pub search_index_cutoff: Option<u64>,
    /// the App's webhook delivery attempts (what `GET /app/hook/deliveries` lists)
    pub hook_log: Vec<super::hooks::HookAttempt>,
    /// attempt ids Lever asked to redeliver
    pub redelivery_requests: Vec<u64>,
    /// mentions, references and links GitHub found in titles, bodies and comments
    pub sightings: Vec<super::Sighting>,
    /// when set, the secondary limits on content-creating requests are enforced
    pub limits: Option<super::Enforcer>,
    /// manifests posted through the website's form, by the code that exchanges them
    pub pending_manifests: BTreeMap<String, super::manifests::PendingManifest>,
    /// manifests whose code was exchanged (the Apps created), oldest first
    pub created_manifests: Vec<Value>,
    /// lower-case repository full name -> its files (commits and branches)
    pub trees: BTreeMap<String, super::contents::Tree>,
    /// check runs created: (lower-case repository, request body), oldest first
    pub check_runs: Vec<(String, Value)>,
    /// when set, random faults on a share of the requests
    pub chaos: Option<super::Chaos>,
    /// GitHub sign-in through the App (the dashboard)
    pub oauth: super::oauth::OAuth,
}

impl State {
    pub fn now(&self) -> DateTime<Utc> {
        let t = self.frozen_at.unwrap_or_else(Utc::now) + self.clock_offset;
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn account(&self, login: &str) -> Option<&Account> {
        self.accounts.get(&login.to_ascii_lowercase())
    }

    /// The account for `login`, created as a `User` when unknown.
    pub fn ensure_account(&mut self, login: &str, kind: AccountKind) -> Account {
        let key = login.to_ascii_lowercase();
        if let Some(a) = self.accounts.get(&key) {
            return a.clone();
        }
        let id = 1000 + self.next_id();
        let a = Account {
            id,
            login: login.to_string(),
            kind,
        };
        self.accounts.insert(key, a.clone());
        a
    }

    pub fn repo(&self, full_name: &str) -> Option<&RepoRec> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    pub fn repo_mut(&mut self, full_name: &str) -> Option<&mut RepoRec> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    pub fn is_bot(&self, login: &str) -> bool {
        self.account(login)
            .is_some_and(|a| a.kind == AccountKind::Bot)
    }

    // ---- renderings -------------------------------------------------------------------

    pub fn user_json(&self, b: &Bases, login: &str) -> Value {
        let acct = self.account(login).cloned().unwrap_or(Account {
            id: 0,
            login: login.to_string(),
            kind: AccountKind::User,
        });
        let enc = percent_encode(&acct.login);
        let api = format!("{}/users/{enc}", b.api);
        let html = match (acct.kind, &self.app) {
            (AccountKind::Bot, Some(app)) if app.bot_login().eq_ignore_ascii_case(login) => {
                format!("{}/apps/{}", b.web, app.slug)
            }
            _ => format!("{}/{}", b.web, acct.login),
        };
        let prefix = match acct.kind {
            AccountKind::User => "U_kgDO",
            AccountKind::Bot => "BOT_kgDO",
            AccountKind::Organization => "O_kgDO",
        };
        json!({
            "login": acct.login,
            "id": acct.id,
            "node_id": format!("{prefix}{:08}", acct.id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", acct.id),
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": acct.kind.as_str(),
            "user_view_type": "public",
            "site_admin": false,
        })
    }

    pub fn org_json(&self, b: &Bases, login: &str) -> Value {
        let acct = self.account(login).cloned().unwrap_or(Account {
            id: 0,
            login: login.to_string(),
            kind: AccountKind::Organization,
        });
        let api = format!("{}/orgs/{}", b.api, acct.login);
        json!({
            "login": acct.login,
            "id": acct.id,
            "node_id": format!("O_kgDO{:08}", acct.id),
            "url": api,
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events"),
            "hooks_url": format!("{api}/hooks"),
            "issues_url": format!("{api}/issues"),
            "members_url": format!("{api}/members{{/member}}"),
            "public_members_url": format!("{api}/public_members{{/member}}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", acct.id),
            "description": null,
        })
    }

    pub fn app_json(&self, b: &Bases) -> Value {
        let Some(app) = &self.app else {
            return Value::Null;
        };
        json!({
            "id": app.id,
            "slug": app.slug,
            "node_id": format!("A_kwDO{:08}", app.id),
            "client_id": app.client_id,
            "owner": self.user_json(b, &app.owner_login),
            "name": app.name,
            "description": "Lever test app (fake GitHub)",
            "external_url": "https://example.invalid/lever",
            "html_url": format!("{}/apps/{}", b.web, app.slug),
            "created_at": ts(app.created_at),
            "updated_at": ts(app.created_at),
            "permissions": app_permissions(),
            "events": ["issue_comment", "issues"],
            "installations_count": self.installations.len(),
        })
    }

    pub fn installation_json(&self, b: &Bases, inst: &InstallationRec) -> Value {
        let app = self.app.as_ref();
        let acct = self.account(&inst.account_login).cloned();
        let target_type = acct
            .as_ref()
            .map(|a| a.kind)
            .unwrap_or(AccountKind::Organization);
        let settings = if target_type == AccountKind::Organization {
            format!(
                "{}/organizations/{}/settings/installations/{}",
                b.web, inst.account_login, inst.id
            )
        } else {
            format!("{}/settings/installations/{}", b.web, inst.id)
        };
        json!({
            "id": inst.id,
            "account": self.user_json(b, &inst.account_login),
            "repository_selection": "selected",
            "access_tokens_url": format!("{}/app/installations/{}/access_tokens", b.api, inst.id),
            "repositories_url": format!("{}/installation/repositories", b.api),
            "html_url": settings,
            "app_id": app.map(|a| a.id).unwrap_or(0),
            "app_slug": app.map(|a| a.slug.clone()).unwrap_or_default(),
            "client_id": app.map(|a| a.client_id.clone()).unwrap_or_default(),
            "target_id": acct.map(|a| a.id).unwrap_or(0),
            "target_type": target_type.as_str(),
            "permissions": app_permissions(),
            "events": ["issue_comment", "issues"],
            "created_at": ts(inst.created_at),
            "updated_at": ts(inst.created_at),
            "single_file_name": null,
            "has_multiple_single_files": false,
            "single_file_paths": [],
            "suspended_by": inst.suspended.as_ref().map(|(by, _)| self.user_json(b, by)),
            "suspended_at": inst.suspended.as_ref().map(|(_, at)| ts(*at)),
        })
    }

    pub fn simple_installation_json(&self, inst: u64) -> Value {
        json!({"id": inst, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{inst}")})
    }

    pub fn repo_json(&self, b: &Bases, repo: &RepoRec) -> Value {
        let full = repo.full_name();
        let api = format!("{}/repos/{full}", b.api);
        let html = format!("{}/{full}", b.web);
        let owner_is_org = self
            .account(&repo.owner)
            .is_some_and(|a| a.kind == AccountKind::Organization);
        let open = repo
            .issues
            .iter()
            .filter(|i| i.state == "open" && i.gone.is_none())
            .count();
        let mut v = json!({
            "id": repo.id,
            "node_id": format!("R_kgDO{:08}", repo.id),
            "name": repo.name,
            "full_name": full,
            "owner": self.user_json(b, &repo.owner),
            "private": repo.private,
            "html_url": html,
            "description": null,
            "fork": false,
            "url": api,
            "git_url": format!("git://github.com/{full}.git"),
            "ssh_url": format!("git@github.com:{full}.git"),
            "clone_url": format!("{html}.git"),
            "mirror_url": null,
            "svn_url": html,
            "homepage": null,
            "language": null,
        });
        let more = json!({
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": "main",
            "open_issues_count": open,
            "is_template": false,
            "topics": [],
            "has_issues": true,
            "has_projects": true,
            "has_wiki": true,
            "has_pages": false,
            "has_downloads": true,
            "has_discussions": false,
            "archived": repo.archived,
            "disabled": false,
            "visibility": if repo.private { "private" } else { "public" },
            "pushed_at": ts(repo.created_at),
            "created_at": ts(repo.created_at),
            "updated_at": ts(repo.created_at),
            "allow_forking": true,
            "web_commit_signoff_required": false,
            "license": null,
            "forks": 0,
            "open_issues": open,
            "watchers": 0,
            "network_count": 0,
            "subscribers_count": 0,
        });
        if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), more) {
            dst.extend(src);
        }
        const URLS: &[(&str, &str)] = &[
            ("archive_url", "/{archive_format}{/ref}"),
            ("assignees_url", "/assignees{/user}"),
            ("blobs_url", "/git/blobs{/sha}"),
            ("branches_url", "/branches{/branch}"),
            ("collaborators_url", "/collaborators{/collaborator}"),
            ("comments_url", "/comments{/number}"),
            ("commits_url", "/commits{/sha}"),
            ("compare_url", "/compare/{base}...{head}"),
            ("contents_url", "/contents/{+path}"),
            ("contributors_url", "/contributors"),
            ("deployments_url", "/deployments"),
            ("downloads_url", "/downloads"),
            ("events_url", "/events"),
            ("forks_url", "/forks"),
            ("git_commits_url", "/git/commits{/sha}"),
            ("git_refs_url", "/git/refs{/sha}"),
            ("git_tags_url", "/git/tags{/sha}"),
            ("hooks_url", "/hooks"),
            ("issue_comment_url", "/issues/comments{/number}"),
            ("issue_events_url", "/issues/events{/number}"),
            ("issues_url", "/issues{/number}"),
            ("keys_url", "/keys{/key_id}"),
            ("labels_url", "/labels{/name}"),
            ("languages_url", "/languages"),
            ("merges_url", "/merges"),
            ("milestones_url", "/milestones{/number}"),
            (
                "notifications_url",
                "/notifications{?since,all,participating}",
            ),
            ("pulls_url", "/pulls{/number}"),
            ("releases_url", "/releases{/id}"),
            ("stargazers_url", "/stargazers"),
            ("statuses_url", "/statuses/{sha}"),
            ("subscribers_url", "/subscribers"),
            ("subscription_url", "/subscription"),
            ("tags_url", "/tags"),
            ("teams_url", "/teams"),
            ("trees_url", "/git/trees{/sha}"),
        ];
        for (field, suffix) in URLS {
            v[*field] = Value::String(format!("{api}{suffix}"));
        }
        if owner_is_org {
            v["organization"] = self.user_json(b, &repo.owner);
        }
        v
    }

    /// A repository as webhook payloads carry it (no `organization` member).
    pub fn repo_webhook_json(&self, b: &Bases, repo: &RepoRec) -> Value {
        let mut v = self.repo_json(b, repo);
        if let Some(o) = v.as_object_mut() {
            o.remove("organization");
        }
        v
    }

    pub fn label_json(&self, b: &Bases, repo: &RepoRec, l: &LabelRec) -> Value {
        json!({
            "id": l.id,
            "node_id": format!("LA_kwDO{:08}", l.id),
            "url": format!("{}/repos/{}/labels/{}", b.api, repo.full_name(), percent_encode(&l.name)),
            "name": l.name,
            "color": l.color,
            "default": false,
            "description": l.description,
        })
    }

    fn author_association(&self, repo: &RepoRec, login: &str) -> &'static str {
        if login.eq_ignore_ascii_case(&repo.owner) {
            "OWNER"
        } else if repo.is_assignable(login) {
            "COLLABORATOR"
        } else {
            "NONE"
        }
    }

    fn reactions(url: String) -> Value {
        json!({"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
               "confused": 0, "heart": 0, "rocket": 0, "eyes": 0})
    }

    pub fn issue_json(&self, b: &Bases, repo: &RepoRec, i: &IssueRec) -> Value {
        let api = format!("{}/repos/{}/issues/{}", b.api, repo.full_name(), i.number);
        let labels: Vec<Value> = i
            .labels
            .iter()
            .filter_map(|n| repo.label(n))
            .map(|l| self.label_json(b, repo, l))
            .collect();
        let assignees: Vec<Value> = i.assignees.iter().map(|a| self.user_json(b, a)).collect();
        json!({
            "id": i.id,
            "node_id": format!("I_kwDO{:08}", i.id),
            "url": api,
            "repository_url": format!("{}/repos/{}", b.api, repo.full_name()),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": format!("{}/{}/issues/{}", b.web, repo.full_name(), i.number),
            "number": i.number,
            "state": i.state,
            "state_reason": i.state_reason,
            "title": i.title,
            "body": i.body,
            "user": self.user_json(b, &i.user),
            "labels": labels,
            "assignee": assignees.first().cloned().unwrap_or(Value::Null),
            "assignees": assignees,
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": i.comments,
            "closed_at": i.closed_at.map(ts),
            "created_at": ts(i.created_at),
            "updated_at": ts(i.updated_at),
            "closed_by": i.closed_by.as_ref().map(|c| self.user_json(b, c)),
            "author_association": self.author_association(repo, &i.user),
            "type": null,
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "timeline_url": format!("{api}/timeline"),
            "performed_via_github_app": if i.via_app { self.app_json(b) } else { Value::Null },
            "reactions": Self::reactions(format!("{api}/reactions")),
        })
    }

    pub fn comment_json(&self, b: &Bases, repo: &RepoRec, c: &CommentRec) -> Value {
        let api = format!(
            "{}/repos/{}/issues/comments/{}",
            b.api,
            repo.full_name(),
            c.id
        );
        json!({
            "id": c.id,
            "node_id": format!("IC_kwDO{:08}", c.id),
            "url": api,
            "html_url": format!("{}/{}/issues/{}#issuecomment-{}", b.web, repo.full_name(), c.issue, c.id),
            "body": c.body,
            "user": self.user_json(b, &c.user),
            "created_at": ts(c.created_at),
            "updated_at": ts(c.updated_at),
            "issue_url": format!("{}/repos/{}/issues/{}", b.api, repo.full_name(), c.issue),
            "author_association": self.author_association(repo, &c.user),
            "performed_via_github_app": if c.via_app { self.app_json(b) } else { Value::Null },
            "reactions": Self::reactions(format!("{api}/reactions")),
        })
    }

    pub fn event_json(&self, b: &Bases, repo: &RepoRec, e: &EventRec) -> Value {
        let mut v = json!({
            "id": e.id,
            "node_id": format!("IE_kwDO{:08}", e.id),
            "url": format!("{}/repos/{}/issues/events/{}", b.api, repo.full_name(), e.id),
            "actor": self.user_json(b, &e.actor),
            "event": e.event,
            "commit_id": null,
            "commit_url": null,
            "created_at": ts(e.created_at),
            "performed_via_github_app": if e.via_app { self.app_json(b) } else { Value::Null },
        });
        if let Some((name, color)) = &e.label {
            v["label"] = json!({"name": name, "color": color});
        }
        if let Some(a) = &e.assignee {
            v["assignee"] = self.user_json(b, a);
            v["assigner"] = self.user_json(b, &e.actor);
        }
        if e.event == "closed" || e.event == "reopened" {
            v["state_reason"] = json!(e.state_reason);
        }
        if let Some((from, to)) = &e.rename {
            v["rename"] = json!({"from": from, "to": to});
        }
        v
    }
}

pub(crate) fn app_permissions() -> Value {
    json!({"issues": "write", "metadata": "read", "members": "read"})
}
