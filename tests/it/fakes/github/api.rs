//! Authentication and the REST endpoints of the fake GitHub.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::state::{Bases, State, TokenRec, ts};
use super::{Reply, TokenKind, ops};

const DOC: &str = "https://docs.github.com/rest";
const JWT_DECODE: &str = "A JSON web token could not be decoded";
const JWT_EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const JWT_TOO_LONG: &str = "'Expiration time' claim ('exp') is too far in the future";
const JWT_IAT: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
const JWT_ISS: &str = "'Issuer' claim ('iss') must be an Integer";

/// What the `Authorization` header amounts to.
pub(crate) enum Auth {
    None,
    /// A JWT; `Err` carries the reply GitHub gives when it is used.
    Jwt {
        verified: bool,
        result: Result<(), (u16, &'static str)>,
    },
    Installation {
        installation: u64,
        usable: bool,
        repositories: Option<Vec<String>>,
    },
    Unknown,
}

impl Auth {
    pub fn kind(&self) -> TokenKind {
        match self {
            Auth::None => TokenKind::None,
            Auth::Jwt { verified: true, .. } => TokenKind::AppJwt,
            Auth::Jwt { .. } => TokenKind::BadJwt,
            Auth::Installation { installation, .. } => TokenKind::Installation {
                installation_id: *installation,
            },
            Auth::Unknown => TokenKind::Unknown,
        }
    }
}

pub(crate) fn authenticate(st: &State, header: Option<&str>) -> Auth {
    let Some(h) = header else { return Auth::None };
    let (scheme, cred) = h.trim().split_once(' ').unwrap_or(("", h));
    let cred = cred.trim();
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
        return Auth::Unknown;
    }
    if cred.split('.').count() == 3 && cred.starts_with("ey") {
        return check_jwt(st, cred);
    }
    match st.tokens.get(cred) {
        Some(t) => Auth::Installation {
            installation: t.installation,
            usable: !t.revoked && t.expires_at > st.now(),
            repositories: t.repositories.clone(),
        },
        None => Auth::Unknown,
    }
}

fn check_jwt(st: &State, token: &str) -> Auth {
    let bad = |verified, code, msg| Auth::Jwt {
        verified,
        result: Err((code, msg)),
    };
    let Some(app) = &st.app else {
        return bad(false, 401, JWT_DECODE);
    };
    match jsonwebtoken::decode_header(token) {
        Ok(h) if h.alg == jsonwebtoken::Algorithm::RS256 => {}
        _ => return bad(false, 401, JWT_DECODE),
    }
    let Ok(data) = jsonwebtoken::dangerous::insecure_decode::<Value>(token) else {
        return bad(false, 401, JWT_DECODE);
    };
    let claims = data.claims;
    let iss_matches = match claims.get("iss") {
        Some(Value::Number(n)) => n.as_u64() == Some(app.id),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() || s == &app.client_id => {
            s == &app.id.to_string() || s == &app.client_id
        }
        _ => return bad(false, 401, JWT_ISS),
    };
    if !iss_matches {
        return bad(false, 404, "Integration not found");
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    if jsonwebtoken::decode::<Value>(token, &app.key, &validation).is_err() {
        return bad(false, 401, JWT_DECODE);
    }
    // JWTs are signed with the client's (real) clock, so they are checked against it.
    let now = Utc::now().timestamp();
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return bad(true, 401, JWT_IAT);
    };
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return bad(true, 401, JWT_EXPIRED);
    };
    if iat > now + 60 {
        return bad(true, 401, JWT_IAT);
    }
    if exp <= now - 60 {
        return bad(true, 401, JWT_EXPIRED);
    }
    if exp - iat > 600 || exp > now + 660 {
        return bad(true, 401, JWT_TOO_LONG);
    }
    Auth::Jwt {
        verified: true,
        result: Ok(()),
    }
}

/// Issue an installation token valid for one hour of the fake's clock.
pub(crate) fn mint_token(
    st: &mut State,
    installation: u64,
    repositories: Option<Vec<String>>,
) -> String {
    let token = format!(
        "ghs_{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..4]
    );
    let expires_at = st.now() + TimeDelta::hours(1);
    st.tokens.insert(
        token.clone(),
        TokenRec {
            installation,
            expires_at,
            repositories,
            revoked: false,
        },
    );
    token
}

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
    fn q(&self, name: &str) -> Option<&str> {
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
            Auth::Installation {
                installation,
                repositories,
                ..
            } => match found {
                Some(r)
                    if r.installation == Some(*installation)
                        && repositories.as_ref().is_none_or(|rs| rs.contains(&key)) =>
                {
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

fn strings(v: &Value) -> Vec<String> {
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

fn validation_failed(errors: Value, doc: &str) -> Reply {
    Reply::json(
        422,
        json!({"message": "Validation Failed", "errors": errors, "documentation_url": doc, "status": "422"}),
    )
}

/// Paginate `items` like GitHub: `per_page` (default 30, max 100), `page` (default 1), and a
/// `Link` header with absolute `/repositories/{id}/…` URLs.
fn paginate(ctx: &Ctx, items: Vec<Value>, link_base: Option<String>) -> Reply {
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
        ("GET", ["search", "issues"]) => search_issues(ctx),
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

fn team_membership(ctx: &Ctx, org: &str, team: &str, user: &str) -> Result<Reply, Reply> {
    match ctx.auth {
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

fn issue_reply(ctx: &Ctx, key: &str, number: u64, status: u16) -> Reply {
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
            let now = ctx.st.now();
            let r = ctx.st.repo_mut(&key).unwrap();
            let c = r
                .comments
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(Reply::not_found)?;
            if let Some(body) = body {
                c.body = body;
                c.updated_at = now;
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

fn list_issues(ctx: &Ctx, key: &str) -> Reply {
    let r = ctx.st.repo(key).unwrap();
    let state = ctx.q("state").unwrap_or("open");
    let labels: Vec<String> = ctx
        .q("labels")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let creator = ctx.q("creator");
    let assignee = ctx.q("assignee");
    let since = ctx
        .q("since")
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let mut issues: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.gone.is_none())
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| {
            labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
        })
        .filter(|i| creator.is_none_or(|c| i.user.eq_ignore_ascii_case(c)))
        .filter(|i| match assignee {
            None => true,
            Some("none") => i.assignees.is_empty(),
            Some("*") => !i.assignees.is_empty(),
            Some(a) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
        })
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .collect();
    let sort = ctx.q("sort").unwrap_or("created");
    issues.sort_by(|a, b| {
        let primary = match sort {
            "updated" => a.updated_at.cmp(&b.updated_at),
            "comments" => a.comments.cmp(&b.comments),
            _ => a.created_at.cmp(&b.created_at),
        };
        primary.then(a.number.cmp(&b.number))
    });
    if ctx.q("direction").unwrap_or("desc") == "desc" {
        issues.reverse();
    }
    let items: Vec<Value> = issues
        .iter()
        .map(|i| ctx.st.issue_json(ctx.b, r, i))
        .collect();
    let base = format!("{}/repositories/{}/issues", ctx.b.api, r.id);
    paginate(ctx, items, Some(base))
}

fn invalid_assignees(ctx: &Ctx, key: &str, wanted: &[String]) -> Vec<String> {
    let r = ctx.st.repo(key).unwrap();
    wanted
        .iter()
        .filter(|a| !r.is_assignable(a))
        .cloned()
        .collect()
}

fn assignee_errors(bad: &[String]) -> Value {
    Value::Array(
        bad.iter()
            .map(|a| json!({"value": a, "resource": "Issue", "field": "assignees", "code": "invalid"}))
            .collect(),
    )
}

fn create_issue(ctx: &mut Ctx, key: &str, actor: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/issues#create-an-issue";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let title = match body.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(validation_failed(
                json!([{"resource": "Issue", "code": "missing_field", "field": "title"}]),
                doc,
            ));
        }
    };
    let text = body.get("body").and_then(Value::as_str).map(str::to_string);
    let labels = body.get("labels").map(strings).unwrap_or_default();
    let mut assignees = body.get("assignees").map(strings).unwrap_or_default();
    if let Some(a) = body.get("assignee").and_then(Value::as_str) {
        assignees.insert(0, a.to_string());
    }
    let bad = invalid_assignees(ctx, key, &assignees);
    if !bad.is_empty() {
        return Err(validation_failed(assignee_errors(&bad), doc));
    }
    let b = ctx.b.clone();
    let (number, d) = ops::create_issue(ctx.st, &b, key, actor, &title, text, &labels, &assignees);
    ctx.st.outbox.extend(d);
    let url = format!(
        "{}/repos/{}/issues/{number}",
        b.api,
        ctx.st.repo(key).unwrap().full_name()
    );
    Ok(issue_reply(ctx, key, number, 201).header("location", url))
}

fn update_issue(ctx: &mut Ctx, key: &str, n: u64, actor: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/issues#update-an-issue";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let b = ctx.b.clone();
    let new_assignees = match (body.get("assignees"), body.get("assignee")) {
        (Some(v), _) => Some(strings(v)),
        (None, Some(Value::String(a))) => Some(vec![a.clone()]),
        (None, Some(Value::Null)) => Some(vec![]),
        _ => None,
    };
    if let Some(want) = &new_assignees {
        let bad = invalid_assignees(ctx, key, want);
        if !bad.is_empty() {
            return Err(validation_failed(assignee_errors(&bad), doc));
        }
    }
    let state = body.get("state").and_then(Value::as_str);
    let reason = body.get("state_reason").and_then(Value::as_str);
    if let Some(s) = state
        && s != "open"
        && s != "closed"
    {
        return Err(validation_failed(
            json!([{"resource": "Issue", "code": "invalid", "field": "state", "value": s}]),
            doc,
        ));
    }
    let mut out = vec![];
    let title = match body.get("title") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let text = match body.get("body") {
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    out.extend(ops::edit(ctx.st, &b, key, n, title.as_deref(), text, actor));
    if let Some(v) = body.get("labels") {
        out.extend(ops::set_labels(ctx.st, &b, key, n, &strings(v), actor));
    }
    if let Some(want) = new_assignees {
        let current = ctx
            .st
            .repo(key)
            .unwrap()
            .issue(n)
            .unwrap()
            .assignees
            .clone();
        let gone: Vec<String> = current
            .iter()
            .filter(|c| !want.iter().any(|w| w.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        out.extend(ops::remove_assignees(ctx.st, &b, key, n, &gone, actor));
        out.extend(ops::add_assignees(ctx.st, &b, key, n, &want, actor));
    }
    match (state, reason) {
        (Some("closed"), r) => {
            let r = match r {
                Some("not_planned") => "not_planned",
                Some("duplicate") => "duplicate",
                _ => "completed",
            };
            out.extend(ops::close(ctx.st, &b, key, n, r, actor));
        }
        (Some("open"), _) => out.extend(ops::reopen(ctx.st, &b, key, n, actor)),
        (None, Some(r)) if r != "reopened" => {
            // Changing only the reason of a closed issue.
            let closed = ctx.st.repo(key).unwrap().issue(n).unwrap().state == "closed";
            if closed {
                out.extend(ops::close(ctx.st, &b, key, n, r, actor));
            }
        }
        _ => {}
    }
    ctx.st.outbox.extend(out);
    Ok(issue_reply(ctx, key, n, 200))
}

fn create_label(ctx: &mut Ctx, key: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/labels#create-a-label";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "missing_field", "field": "name"}]),
            doc,
        ));
    };
    let color = body
        .get("color")
        .and_then(Value::as_str)
        .unwrap_or(ops::IMPLICIT_LABEL_COLOR)
        .trim_start_matches('#')
        .to_ascii_lowercase();
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "invalid", "field": "color"}]),
            doc,
        ));
    }
    if ctx.st.repo(key).unwrap().label(name).is_some() {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "already_exists", "field": "name"}]),
            doc,
        ));
    }
    let id = ctx.st.next_id();
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let r = ctx.st.repo_mut(key).unwrap();
    r.labels.push(super::state::LabelRec {
        id,
        name: name.to_string(),
        color,
        description,
    });
    let r = ctx.st.repo(key).unwrap();
    let l = r.labels.last().unwrap();
    Ok(Reply::json(201, ctx.st.label_json(ctx.b, r, l)))
}

/// `GET /search/issues`: a subset of GitHub's issue search syntax (see `FakeGitHub` docs).
fn search_issues(ctx: &mut Ctx) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/search/search#search-issues-and-pull-requests";
    let installation = match ctx.auth {
        Auth::Installation {
            installation,
            usable: true,
            ..
        } => Some(*installation),
        Auth::None => None,
        Auth::Jwt { result: Ok(()), .. } => {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOC,
            ));
        }
        _ => return Err(Reply::error(401, "Bad credentials", DOC)),
    };
    let now = ctx.st.now();
    if let Some(inst) = installation {
        let calls = ctx.st.search_calls.entry(inst).or_default();
        calls.retain(|t| *t > now - TimeDelta::minutes(1));
        if calls.len() >= 30 {
            let reset = calls[0] + TimeDelta::minutes(1);
            return Err(Reply::error(
                403,
                "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            .header("x-ratelimit-limit", "30")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", "30")
            .header("x-ratelimit-reset", reset.timestamp().to_string())
            .header("x-ratelimit-resource", "search"));
        }
        calls.push(now);
    }
    let q = ctx.q("q").unwrap_or_default().to_string();
    if q.trim().is_empty() {
        return Err(validation_failed(
            json!([{"resource": "Search", "field": "q", "code": "missing"}]),
            doc,
        ));
    }
    let query = SearchQuery::parse(&q);
    let cutoff = ctx.st.search_index_cutoff;
    let mut hits: Vec<(String, u64)> = vec![];
    for (key, r) in &ctx.st.repos {
        let visible = match installation {
            Some(i) => r.installation == Some(i) || !r.private,
            None => !r.private,
        };
        if !visible || (!query.repos.is_empty() && !query.repos.contains(key)) {
            continue;
        }
        for i in &r.issues {
            if i.gone.is_none() && cutoff.is_none_or(|c| i.id <= c) && query.matches(i) {
                hits.push((key.clone(), i.number));
            }
        }
    }
    let sort = ctx.q("sort").unwrap_or("");
    let get = |(k, n): &(String, u64)| ctx.st.repos[k].issue(*n).unwrap();
    hits.sort_by(|a, b| {
        let (x, y) = (get(a), get(b));
        match sort {
            "updated" => x.updated_at.cmp(&y.updated_at),
            "comments" => x.comments.cmp(&y.comments),
            _ => x.created_at.cmp(&y.created_at),
        }
        .then(x.id.cmp(&y.id))
    });
    if ctx.q("order").unwrap_or("desc") == "desc" {
        hits.reverse();
    }
    let total = hits.len();
    hits.truncate(1000);
    let items: Vec<Value> = hits
        .iter()
        .map(|h| {
            let r = &ctx.st.repos[&h.0];
            let mut v = ctx.st.issue_json(ctx.b, r, get(h));
            v["score"] = json!(1.0);
            v
        })
        .collect();
    let page = paginate(ctx, items, Some(format!("{}/search/issues", ctx.b.api)));
    let body = json!({
        "total_count": total,
        "incomplete_results": false,
        "search_type": "lexical",
        "items": page.body.unwrap_or(json!([])),
    });
    let mut reply = Reply::json(200, body);
    reply.headers = page.headers;
    Ok(reply)
}

/// Parsed search query: qualifiers the fake understands, plus free-text terms.
struct SearchQuery {
    repos: Vec<String>,
    state: Option<String>,
    pull_requests: bool,
    labels: Vec<String>,
    not_labels: Vec<String>,
    author: Option<String>,
    assignee: Option<String>,
    in_title: bool,
    in_body: bool,
    terms: Vec<String>,
}

impl SearchQuery {
    fn tokens(q: &str) -> Vec<String> {
        let mut out = vec![];
        let mut cur = String::new();
        let mut quoted = false;
        for c in q.chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn parse(q: &str) -> SearchQuery {
        let mut s = SearchQuery {
            repos: vec![],
            state: None,
            pull_requests: false,
            labels: vec![],
            not_labels: vec![],
            author: None,
            assignee: None,
            in_title: false,
            in_body: false,
            terms: vec![],
        };
        for t in Self::tokens(q) {
            let lower = t.to_ascii_lowercase();
            match lower.split_once(':') {
                Some(("repo", v)) => s.repos.push(v.to_string()),
                Some(("is" | "type", "issue")) => {}
                Some(("is" | "type", "pr" | "pull-request")) => s.pull_requests = true,
                Some(("is" | "state", v @ ("open" | "closed"))) => s.state = Some(v.to_string()),
                Some(("label", _)) => s.labels.push(t[6..].to_string()),
                Some(("-label", _)) => s.not_labels.push(t[7..].to_string()),
                Some(("author", _)) => s.author = Some(t[7..].to_string()),
                Some(("assignee", _)) => s.assignee = Some(t[9..].to_string()),
                Some(("in", v)) => {
                    for part in v.split(',') {
                        s.in_title |= part == "title";
                        s.in_body |= part == "body";
                    }
                }
                _ => s.terms.push(lower),
            }
        }
        if !s.in_title && !s.in_body {
            s.in_title = true;
            s.in_body = true;
        }
        s
    }

    fn matches(&self, i: &super::state::IssueRec) -> bool {
        let text = format!(
            "{} {}",
            if self.in_title { i.title.as_str() } else { "" },
            if self.in_body {
                i.body.as_deref().unwrap_or("")
            } else {
                ""
            }
        )
        .to_lowercase();
        !self.pull_requests
            && self.state.as_ref().is_none_or(|s| &i.state == s)
            && self
                .labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
            && !self
                .not_labels
                .iter()
                .any(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
            && self
                .author
                .as_ref()
                .is_none_or(|a| i.user.eq_ignore_ascii_case(a))
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)))
            && self.terms.iter().all(|t| text.contains(t.as_str()))
    }
}
