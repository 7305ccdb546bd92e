//! Authentication and the REST endpoints of the fake GitHub.

use serde_json::{Value, json};

use super::auth::{Auth, JWT_DECODE, mint_token};
use super::issues::{create_issue, create_label, list_issues, update_issue};
use super::search::search_issues;
use super::state::{Bases, State, ts};
use super::{Reply, ops};

pub(crate) const DOC: &str = "https://docs.github.com/rest";

/// Map `/repositories/{id}/rest` (used in GitHub's `Link` headers) to `/repos/{owner}/{repo}/rest`.
pub(crate) fn canonical_path(st: &State, path: &str) -> String {
    let Some(rest) = path.strip_prefix("/repositories/") else {
        return path.to_string();
    };
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    match st.repos.values().find(|r| r.id.to_string() == id) {
        Some(r) if tail.is_empty() => format!("/repos/{}", r.full_name()),
        Some(r) => format!("/repos/{}/{tail}", r.full_name()),
        None => path.to_string(),
    }
}

/// Paths the fake serves with PATCH (issue update, comment update).
pub(crate) fn is_patch_endpoint(path: &str) -> bool {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        s.as_slice(),
        ["repos", _, _, "issues", n] if n.parse::<u64>().is_ok()
    ) || matches!(
        s.as_slice(),
        ["repos", _, _, "issues", "comments", id] if id.parse::<u64>().is_ok()
    )
}

pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub b: &'a Bases,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub raw_body_empty: bool,
    pub auth: &'a Auth,
}

impl Ctx<'_> {
    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn require_jwt(&self) -> Result<(), Reply> {
        match self.auth {
            Auth::Jwt { result: Ok(()), .. } => Ok(()),
            Auth::Jwt {
                result: Err((code, msg)),
                ..
            } => Err(Reply::error(*code, msg, DOC)),
            Auth::None => Err(Reply::error(
                401,
                "You must authenticate with a JSON web token (JWT) to access this endpoint.",
                DOC,
            )),
            _ => Err(Reply::error(401, JWT_DECODE, DOC)),
        }
    }

    /// Check access to a repo. Returns the repo key and the acting login (`None` = anonymous).
    fn repo_access(
        &self,
        owner: &str,
        repo: &str,
        write: bool,
    ) -> Result<(String, Option<String>), Reply> {
        let key = format!("{owner}/{repo}").to_ascii_lowercase();
        let found = self.st.repos.get(&key);
        match self.auth {
            Auth::Unknown => Err(Reply::error(401, "Bad credentials", DOC)),
            // Lever only signs people in with user tokens; it never reads repositories with them.
            Auth::User { .. } => Err(Reply::error(
                403,
                "Resource not accessible by user-to-server token",
                DOC,
            )),
            Auth::Installation { usable: false, .. } => {
                Err(Reply::error(401, "Bad credentials", DOC))
            }
            Auth::Jwt { result: Err(_), .. } => Err(Reply::error(401, "Bad credentials", DOC)),
            Auth::Jwt { result: Ok(()), .. } => Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOC,
            )),
            Auth::None => match found {
                Some(r) if !r.private && !write => Ok((key, None)),
                Some(r) if !r.private => Err(Reply::error(401, "Requires authentication", DOC)),
                _ => Err(Reply::not_found()),
            },
            Auth::Installation { installation, .. }
                if self
                    .st
                    .installations
                    .get(installation)
                    .is_some_and(|i| i.suspended.is_some()) =>
            {
                Err(Reply::error(403, super::access::SUSPENDED, DOC))
            }
            Auth::Installation {
                installation,
                repositories,
                ..
            } => match found {
                Some(r)
                    if r.installation == Some(*installation)
                        && repositories.as_ref().is_none_or(|rs| rs.contains(&key)) =>
                {
                    if write && r.archived {
                        return Err(Reply::error(403, super::access::ARCHIVED, DOC));
                    }
                    Ok((
                        key,
                        Some(
                            self.st
                                .app
                                .as_ref()
                                .map(|a| a.bot_login())
                                .unwrap_or_default(),
                        ),
                    ))
                }
                Some(r) if !r.private && !write => Ok((key, None)),
                _ => Err(Reply::not_found()),
            },
        }
    }
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// Labels from an add/set-labels body: `{"labels": [..]}`, `[..]`, or `{"labels":[{"name":..}]}`.
fn label_names(body: &Option<Value>) -> Vec<String> {
    match body {
        Some(Value::Object(o)) => o.get("labels").map(strings).unwrap_or_default(),
        Some(v @ Value::Array(_)) => strings(v),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

pub(crate) fn validation_failed(errors: Value, doc: &str) -> Reply {
    Reply::json(
        422,
        json!({"message": "Validation Failed", "errors": errors, "documentation_url": doc, "status": "422"}),
    )
}

/// Paginate `items` like GitHub: `per_page` (default 30, max 100), `page` (default 1), and a
/// `Link` header with absolute `/repositories/{id}/…` URLs.
pub(crate) fn paginate(ctx: &Ctx, items: Vec<Value>, link_base: Option<String>) -> Reply {
    let per_page = ctx
        .q("per_page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = ctx
        .q("page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut reply = Reply::json(200, Value::Array(page_items));
    if let Some(base) = link_base {
        let link_for = |p: usize| {
            let mut pairs: Vec<(String, String)> = ctx.query.clone();
            if let Some(x) = pairs.iter_mut().find(|(k, _)| k == "page") {
                x.1 = p.to_string();
            } else {
                pairs.push(("page".into(), p.to_string()));
            }
            let qs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        super::super::openapi::percent_encode(k),
                        super::super::openapi::percent_encode(v)
                    )
                })
                .collect();
            format!("<{base}?{}>", qs.join("&"))
        };
        let mut parts = vec![];
        if page > 1 {
            parts.push(format!("{}; rel=\"prev\"", link_for(page - 1)));
        }
        if page < last {
            parts.push(format!("{}; rel=\"next\"", link_for(page + 1)));
            parts.push(format!("{}; rel=\"last\"", link_for(last)));
        }
        if page > 1 {
            parts.push(format!("{}; rel=\"first\"", link_for(1)));
        }
        if !parts.is_empty() {
            reply = reply.header("link", parts.join(", "));
        }
    }
    reply
}

pub(crate) fn route(ctx: &mut Ctx) -> Reply {
    let segs: Vec<String> = ctx
        .path
        .trim_start_matches('/')
        .split('/')
        .map(super::super::openapi::percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = ctx.method.to_string();
    let result = match (m.as_str(), s.as_slice()) {
        ("GET", ["rate_limit"]) => Ok(rate_limit(ctx)),
        ("GET", ["app"]) => ctx
            .require_jwt()
            .map(|_| Reply::json(200, ctx.st.app_json(ctx.b))),
        ("GET", ["app", "installations"]) => ctx.require_jwt().map(|_| {
            let items: Vec<Value> = ctx
                .st
                .installations
                .values()
                .map(|i| ctx.st.installation_json(ctx.b, i))
                .collect();
            paginate(ctx, items, None)
        }),
        ("GET", ["app", "installations", id]) => ctx.require_jwt().and_then(|_| {
            let inst = id
                .parse::<u64>()
                .ok()
                .and_then(|id| ctx.st.installations.get(&id));
            inst.map(|i| Reply::json(200, ctx.st.installation_json(ctx.b, i)))
                .ok_or_else(Reply::not_found)
        }),
        ("GET", ["app", "hook", "deliveries"]) => {
            ctx.require_jwt().map(|_| super::hooks::list(ctx))
        }
        ("POST", ["app", "hook", "deliveries", id, "attempts"]) => {
            let id = id.to_string();
            ctx.require_jwt()
                .map(|_| ())
                .map(|_| super::hooks::redeliver(ctx, &id))
        }
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            ctx.require_jwt().and_then(|_| create_token(ctx, id))
        }
        ("GET", ["repos", owner, repo, "installation"]) => ctx.require_jwt().and_then(|_| {
            let r = ctx
                .st
                .repo(&format!("{owner}/{repo}"))
                .ok_or_else(Reply::not_found)?;
            let inst = r
                .installation
                .and_then(|i| ctx.st.installations.get(&i))
                .ok_or_else(Reply::not_found)?;
            Ok(Reply::json(200, ctx.st.installation_json(ctx.b, inst)))
        }),
        ("POST", ["app-manifests", code, "conversions"]) => {
            let code = code.to_string();
            super::manifests::convert(ctx, &code)
        }
        ("GET", ["search", "issues"]) => search_issues(ctx),
        ("GET", ["user"]) => match ctx.auth {
            Auth::User { login } => Ok(super::oauth::user(ctx.st, ctx.b, login)),
            Auth::None => Err(Reply::error(401, "Requires authentication", DOC)),
            _ => Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOC,
            )),
        },
        ("GET", ["orgs", org, "members", user]) => org_membership(ctx, org, user),
        // Where GitHub sends a non-member asking about membership: the fake treats every
        // membership as private, so nobody is a public member.
        ("GET", ["orgs", _org, "public_members", _user]) => Err(Reply::not_found()),
        ("GET", ["orgs", org, "teams", team, "memberships", user]) => {
            team_membership(ctx, org, team, user)
        }
        (_, ["repos", owner, repo, rest @ ..]) => repo_endpoint(ctx, &m, owner, repo, rest),
        _ => Err(Reply::not_found()),
    };
    result.unwrap_or_else(|e| e)
}

fn rate_limit(ctx: &Ctx) -> Reply {
    let used = match ctx.auth {
        Auth::Installation { installation, .. } => {
            ctx.st.rate_used.get(installation).copied().unwrap_or(0)
        }
        _ => 0,
    };
    let reset = (ctx.st.now().timestamp() / 3600 + 1) * 3600;
    let core =
        json!({"limit": 5000, "used": used, "remaining": 5000 - used.min(5000), "reset": reset});
    let search =
        json!({"limit": 30, "used": 0, "remaining": 30, "reset": ctx.st.now().timestamp() + 60});
    let graphql = json!({"limit": 5000, "used": 0, "remaining": 5000, "reset": reset});
    Reply::json(
        200,
        json!({"resources": {"core": core, "search": search, "graphql": graphql}, "rate": core}),
    )
}

fn create_token(ctx: &mut Ctx, id: &str) -> Result<Reply, Reply> {
    let doc =
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
    let inst_id = id.parse::<u64>().map_err(|_| Reply::not_found())?;
    if !ctx.st.installations.contains_key(&inst_id) {
        return Err(Reply::error(404, "Not Found", doc));
    }
    if ctx.st.installations[&inst_id].suspended.is_some() {
        return Err(Reply::error(403, super::access::SUSPENDED, doc));
    }
    let covered: Vec<String> = ctx
        .st
        .repos
        .iter()
        .filter(|(_, r)| r.installation == Some(inst_id))
        .map(|(k, _)| k.clone())
        .collect();
    let mut scope: Option<Vec<String>> = None;
    if let Some(body) = &ctx.body {
        let names = body.get("repositories").map(strings).unwrap_or_default();
        let ids: Vec<u64> = body
            .get("repository_ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if !names.is_empty() || !ids.is_empty() {
            let mut keys = vec![];
            for n in names {
                let key = covered
                    .iter()
                    .find(|k| k.split('/').nth(1) == Some(n.to_ascii_lowercase().as_str()));
                match key {
                    Some(k) => keys.push(k.clone()),
                    None => {
                        return Err(validation_failed(
                            json!([{"resource": "Repository", "field": "repositories", "code": "invalid", "value": n}]),
                            doc,
                        ));
                    }
                }
            }
            for i in ids {
                match ctx
                    .st
                    .repos
                    .iter()
                    .find(|(k, r)| r.id == i && covered.contains(k))
                {
                    Some((k, _)) => keys.push(k.clone()),
                    None => {
                        return Err(validation_failed(
                            json!([{"resource": "Repository", "field": "repository_ids", "code": "invalid", "value": i}]),
                            doc,
                        ));
                    }
                }
            }
            scope = Some(keys);
        }
    }
    let token = mint_token(ctx.st, inst_id, scope.clone());
    let expires = ctx.st.tokens[&token].expires_at;
    let mut body = json!({
        "token": token,
        "expires_at": ts(expires),
        "permissions": super::state::app_permissions(),
        "repository_selection": if scope.is_some() { "selected" } else { "all" },
    });
    if let Some(keys) = scope {
        let repos: Vec<Value> = keys
            .iter()
            .filter_map(|k| ctx.st.repos.get(k))
            .map(|r| ctx.st.repo_json(ctx.b, r))
            .collect();
        body["repositories"] = Value::Array(repos);
    }
    Ok(Reply::json(201, body))
}

/// `GET /orgs/{org}/members/{username}`: with a member's user token, 204 or 404; with a
/// non-member's, GitHub's 302 to the public membership (which the fake does not serve).
fn org_membership(ctx: &Ctx, org: &str, user: &str) -> Result<Reply, Reply> {
    match ctx.auth {
        Auth::User { login } if super::oauth::is_member(ctx.st, org, login) => {
            if super::oauth::is_member(ctx.st, org, user) {
                Ok(Reply::empty(204))
            } else {
                Err(Reply::empty(404))
            }
        }
        Auth::User { .. } => Ok(Reply::empty(302).header(
            "location",
            format!("{}/orgs/{org}/public_members/{user}", ctx.b.api),
        )),
        Auth::None | Auth::Unknown => Err(Reply::error(401, "Requires authentication", DOC)),
        _ => Err(Reply::error(
            403,
            "Resource not accessible by integration",
            DOC,
        )),
    }
}

fn team_membership(ctx: &Ctx, org: &str, team: &str, user: &str) -> Result<Reply, Reply> {
    match ctx.auth {
        // A user token sees the teams of the organizations it is a member of.
        Auth::User { login } if super::oauth::is_member(ctx.st, org, login) => {}
        Auth::User { .. } => return Err(Reply::not_found()),
        Auth::Installation {
            usable: true,
            installation,
            ..
        } => {
            let inst = ctx.st.installations.get(installation);
            if !inst.is_some_and(|i| i.account_login.eq_ignore_ascii_case(org)) {
                return Err(Reply::error(
                    403,
                    "Resource not accessible by integration",
                    DOC,
                ));
            }
        }
        Auth::Jwt { result: Ok(()), .. } => {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOC,
            ));
        }
        _ => return Err(Reply::error(401, "Bad credentials", DOC)),
    }
    let members = ctx
        .st
        .teams
        .get(&(org.to_ascii_lowercase(), team.to_ascii_lowercase()))
        .ok_or_else(Reply::not_found)?;
    let m = members
        .get(&user.to_ascii_lowercase())
        .ok_or_else(Reply::not_found)?;
    let login = ctx
        .st
        .account(user)
        .map(|a| a.login.clone())
        .unwrap_or(user.to_string());
    Ok(Reply::json(
        200,
        json!({
            "url": format!("{}/organizations/{}/team/{}/memberships/{login}", ctx.b.api,
                ctx.st.account(org).map(|a| a.id).unwrap_or(0), team),
            "role": m.role,
            "state": m.state,
        }),
    ))
}

fn issue_number(s: &str) -> Result<u64, Reply> {
    s.parse::<u64>().map_err(|_| Reply::not_found())
}

/// Look up a live issue; deleted → 410, transferred → 301.
fn live_issue(ctx: &Ctx, key: &str, number: u64) -> Result<(), Reply> {
    let r = ctx.st.repo(key).ok_or_else(Reply::not_found)?;
    match r.issue(number) {
        None => Err(Reply::not_found()),
        Some(i) => match i.gone {
            None => Ok(()),
            Some("deleted") => Err(Reply::error(410, "This issue was deleted", DOC)),
            Some(_) => {
                let to = i.moved_to.clone().unwrap_or_default();
                Err(Reply::json(
                    301,
                    json!({"message": "Moved Permanently", "url": to, "documentation_url": DOC}),
                )
                .header("location", to))
            }
        },
    }
}

pub(super) fn issue_reply(ctx: &Ctx, key: &str, number: u64, status: u16) -> Reply {
    let r = ctx.st.repo(key).unwrap();
    Reply::json(
        status,
        ctx.st.issue_json(ctx.b, r, r.issue(number).unwrap()),
    )
}

fn labels_reply(ctx: &Ctx, key: &str, number: u64) -> Reply {
    let r = ctx.st.repo(key).unwrap();
    let i = r.issue(number).unwrap();
    let labels: Vec<Value> = i
        .labels
        .iter()
        .filter_map(|n| r.label(n))
        .map(|l| ctx.st.label_json(ctx.b, r, l))
        .collect();
    Reply::json(200, Value::Array(labels))
}

fn repo_endpoint(
    ctx: &mut Ctx,
    m: &str,
    owner: &str,
    repo: &str,
    rest: &[&str],
) -> Result<Reply, Reply> {
    let write = m != "GET";
    let (key, actor) = ctx.repo_access(owner, repo, write)?;
    let actor_login = actor.clone().unwrap_or_default();
    let b = ctx.b.clone();
    match (m, rest) {
        ("GET", []) => {
            let r = ctx.st.repo(&key).unwrap();
            Ok(Reply::json(200, ctx.st.repo_json(&b, r)))
        }
        ("GET", ["contents", path @ ..]) if !path.is_empty() => {
            super::contents::get(ctx, &key, path)
        }
        ("POST", ["check-runs"]) => super::contents::create_check_run(ctx, &key),
        ("GET", ["issues"]) => Ok(list_issues(ctx, &key)),
        ("POST", ["issues"]) => create_issue(ctx, &key, &actor_login),
        ("GET", ["issues", "comments", id]) => {
            let id = issue_number(id)?;
            let r = ctx.st.repo(&key).unwrap();
            let c = r
                .comments
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(Reply::not_found)?;
            Ok(Reply::json(200, ctx.st.comment_json(&b, r, c)))
        }
        ("PATCH", ["issues", "comments", id]) => {
            let id = issue_number(id)?;
            let body = ctx
                .body
                .as_ref()
                .and_then(|v| v.get("body"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let exists = ctx
                .st
                .repo(&key)
                .unwrap()
                .comments
                .iter()
                .any(|c| c.id == id);
            if !exists {
                return Err(Reply::not_found());
            }
            if let Some(body) = body {
                let d = ops::edit_comment(ctx.st, &b, &key, id, &body, &actor_login);
                ctx.st.outbox.extend(d);
            }
            let r = ctx.st.repo(&key).unwrap();
            let c = r.comments.iter().find(|c| c.id == id).unwrap();
            Ok(Reply::json(200, ctx.st.comment_json(&b, r, c)))
        }
        ("GET", ["issues", n]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            Ok(issue_reply(ctx, &key, n, 200))
        }
        ("PATCH", ["issues", n]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            update_issue(ctx, &key, n, &actor_login)
        }
        ("GET", ["issues", n, "labels"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            Ok(labels_reply(ctx, &key, n))
        }
        ("POST", ["issues", n, "labels"]) | ("PUT", ["issues", n, "labels"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let names = label_names(&ctx.body);
            let d = if m == "POST" {
                ops::add_labels(ctx.st, &b, &key, n, &names, &actor_login)
            } else {
                ops::set_labels(ctx.st, &b, &key, n, &names, &actor_login)
            };
            ctx.st.outbox.extend(d);
            Ok(labels_reply(ctx, &key, n))
        }
        ("DELETE", ["issues", n, "labels"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let d = ops::set_labels(ctx.st, &b, &key, n, &[], &actor_login);
            ctx.st.outbox.extend(d);
            Ok(Reply::empty(204))
        }
        ("DELETE", ["issues", n, "labels", name]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            match ops::remove_label(ctx.st, &b, &key, n, name, &actor_login) {
                Some(d) => {
                    ctx.st.outbox.extend(d);
                    Ok(labels_reply(ctx, &key, n))
                }
                None => Err(Reply::error(
                    404,
                    "Label does not exist",
                    "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue",
                )),
            }
        }
        ("POST", ["issues", n, "assignees"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let wanted = ctx
                .body
                .as_ref()
                .and_then(|v| v.get("assignees"))
                .map(strings)
                .unwrap_or_default();
            let r = ctx.st.repo(&key).unwrap();
            let ok: Vec<String> = wanted.into_iter().filter(|a| r.is_assignable(a)).collect();
            let d = ops::add_assignees(ctx.st, &b, &key, n, &ok, &actor_login);
            ctx.st.outbox.extend(d);
            Ok(issue_reply(ctx, &key, n, 201))
        }
        ("DELETE", ["issues", n, "assignees"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let gone = ctx
                .body
                .as_ref()
                .and_then(|v| v.get("assignees"))
                .map(strings)
                .unwrap_or_default();
            let d = ops::remove_assignees(ctx.st, &b, &key, n, &gone, &actor_login);
            ctx.st.outbox.extend(d);
            Ok(issue_reply(ctx, &key, n, 200))
        }
        ("GET", ["issues", n, "assignees", user]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let r = ctx.st.repo(&key).unwrap();
            Ok(if r.is_assignable(user) {
                Reply::empty(204)
            } else {
                Reply::not_found()
            })
        }
        ("GET", ["assignees", user]) => {
            let r = ctx.st.repo(&key).unwrap();
            Ok(if r.is_assignable(user) {
                Reply::empty(204)
            } else {
                Reply::not_found()
            })
        }
        ("GET", ["issues", n, "comments"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let since = ctx
                .q("since")
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
            let r = ctx.st.repo(&key).unwrap();
            let items: Vec<Value> = r
                .comments
                .iter()
                .filter(|c| c.issue == n && since.is_none_or(|s| c.updated_at >= s))
                .map(|c| ctx.st.comment_json(&b, r, c))
                .collect();
            let base = format!("{}/repositories/{}/issues/{n}/comments", b.api, r.id);
            Ok(paginate(ctx, items, Some(base)))
        }
        ("POST", ["issues", n, "comments"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let Some(body) = ctx
                .body
                .as_ref()
                .and_then(|v| v.get("body"))
                .and_then(Value::as_str)
            else {
                return Err(validation_failed(
                    json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
                    "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
                ));
            };
            let body = body.to_string();
            let (id, d) = ops::comment(ctx.st, &b, &key, n, &body, &actor_login);
            ctx.st.outbox.extend(d);
            let r = ctx.st.repo(&key).unwrap();
            let c = r.comments.iter().find(|c| c.id == id).unwrap();
            let url = format!("{}/repos/{}/issues/comments/{id}", b.api, r.full_name());
            Ok(Reply::json(201, ctx.st.comment_json(&b, r, c)).header("location", url))
        }
        ("GET", ["issues", n, "events"]) => {
            let n = issue_number(n)?;
            live_issue(ctx, &key, n)?;
            let r = ctx.st.repo(&key).unwrap();
            let items: Vec<Value> = r
                .events
                .iter()
                .filter(|e| e.issue == n)
                .map(|e| ctx.st.event_json(&b, r, e))
                .collect();
            let base = format!("{}/repositories/{}/issues/{n}/events", b.api, r.id);
            Ok(paginate(ctx, items, Some(base)))
        }
        ("GET", ["labels"]) => {
            let r = ctx.st.repo(&key).unwrap();
            let items: Vec<Value> = r
                .labels
                .iter()
                .map(|l| ctx.st.label_json(&b, r, l))
                .collect();
            let base = format!("{}/repositories/{}/labels", b.api, r.id);
            Ok(paginate(ctx, items, Some(base)))
        }
        ("POST", ["labels"]) => create_label(ctx, &key),
        ("GET", ["labels", name]) => {
            let r = ctx.st.repo(&key).unwrap();
            let l = r.label(name).ok_or_else(|| {
                Reply::error(
                    404,
                    "Not Found",
                    "https://docs.github.com/rest/issues/labels#get-a-label",
                )
            })?;
            Ok(Reply::json(200, ctx.st.label_json(&b, r, l)))
        }
        ("GET", ["collaborators", user, "permission"]) => {
            let acct = ctx.st.account(user).cloned().ok_or_else(Reply::not_found)?;
            let r = ctx.st.repo(&key).unwrap();
            let role = r
                .collaborators
                .get(&acct.login.to_ascii_lowercase())
                .cloned()
                .unwrap_or_else(|| {
                    if r.private {
                        "none".into()
                    } else {
                        "read".into()
                    }
                });
            let permission = match role.as_str() {
                "admin" => "admin",
                "maintain" | "write" => "write",
                "triage" | "read" => "read",
                _ => "none",
            };
            let mut user_json = ctx.st.user_json(&b, &acct.login);
            user_json["role_name"] = json!(role);
            user_json["permissions"] = json!({
                "admin": permission == "admin",
                "maintain": role == "maintain" || permission == "admin",
                "push": permission == "admin" || permission == "write",
                "triage": permission != "none",
                "pull": permission != "none",
            });
            Ok(Reply::json(
                200,
                json!({"permission": permission, "role_name": role, "user": user_json}),
            ))
        }
        _ => Err(Reply::not_found()),
    }
}
