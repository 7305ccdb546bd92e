//! GitHub sign-in through the App (the OAuth web flow), as the dashboard uses it:
//! `GET /login/oauth/authorize` on the website, `POST /login/oauth/access_token` to exchange
//! the code, then API calls with the user's token (`GET /user`, organization and team
//! membership; those are in the OpenAPI description and checked against it like any call).
//!
//! On github.com the authorize page asks the signed-in person to authorize the App; the fake
//! takes that as given for the person [`FakeGitHub::sign_in_as`](super::FakeGitHub::sign_in_as)
//! names and redirects to the App's callback URL with `?code=…&state=…` (the state echoed
//! as given). Like GitHub, a `redirect_uri` must be the callback URL or below it. Codes are
//! single-use and the token endpoint answers errors with status 200 and an `error` field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::Reply;
use super::state::State;
use crate::fakes::openapi::{parse_query, percent_decode, percent_encode};

/// The OAuth side of the fake App.
#[derive(Debug, Default)]
pub(crate) struct OAuth {
    pub client_secret: String,
    /// The App's callback URL (where the authorize page sends the browser).
    pub callback: Option<String>,
    /// Who is signed in to the website (authorizes the App when asked).
    pub signed_in: Option<String>,
    /// code -> login (single use)
    pub codes: HashMap<String, String>,
    /// user access token -> login
    pub tokens: HashMap<String, String>,
    /// lower org -> lower logins of its members
    pub org_members: BTreeMap<String, BTreeSet<String>>,
    /// Codes handed out and exchanged, for tests.
    pub exchanged: Vec<String>,
}

fn form_or_json(body: &[u8], name: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.get(name).and_then(Value::as_str).map(str::to_string);
    }
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(&k.replace('+', " ")) == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

fn html(status: u16, text: &str) -> Reply {
    // The website answers HTML; the fake's replies are JSON documents, which is enough for a
    // browser that only follows the redirect.
    Reply::json(status, json!({ "page": text }))
}

/// The website's OAuth routes; `None` for any other request.
pub(crate) fn web(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Option<Reply> {
    match (method, path) {
        ("GET", "/login/oauth/authorize") => Some(authorize(st, query)),
        ("POST", "/login/oauth/access_token") => Some(exchange(st, body)),
        _ => None,
    }
}

fn authorize(st: &mut State, query: &str) -> Reply {
    let q = parse_query(query);
    let get = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(app) = &st.app else {
        return html(404, "no App");
    };
    if get("client_id").as_deref() != Some(app.client_id.as_str()) {
        return html(404, "unknown client_id");
    }
    let Some(callback) = st.oauth.callback.clone() else {
        return html(400, "the App has no callback URL");
    };
    let target = match get("redirect_uri") {
        Some(r)
            if r == callback || r.starts_with(&format!("{}/", callback.trim_end_matches('/'))) =>
        {
            r
        }
        Some(_) => {
            return html(
                400,
                "The redirect_uri is not associated with this application.",
            );
        }
        None => callback,
    };
    let Some(login) = st.oauth.signed_in.clone() else {
        return html(200, "Sign in to GitHub");
    };
    let code = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
    st.oauth.codes.insert(code.clone(), login);
    let mut location = format!("{target}?code={code}");
    if let Some(state) = get("state") {
        location.push_str(&format!("&state={}", percent_encode(&state)));
    }
    Reply::empty(302).header("location", location)
}

fn exchange(st: &mut State, body: &[u8]) -> Reply {
    let err = |e: &str, d: &str| {
        Reply::json(
            200,
            json!({"error": e, "error_description": d, "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}),
        )
    };
    let client_ok = st
        .app
        .as_ref()
        .is_some_and(|a| form_or_json(body, "client_id").as_deref() == Some(a.client_id.as_str()))
        && form_or_json(body, "client_secret").as_deref() == Some(st.oauth.client_secret.as_str())
        && !st.oauth.client_secret.is_empty();
    if !client_ok {
        return err(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let Some(login) = form_or_json(body, "code").and_then(|c| {
        let login = st.oauth.codes.remove(&c)?;
        st.oauth.exchanged.push(c);
        Some(login)
    }) else {
        return err(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    let token = format!("ghu_{}", uuid::Uuid::new_v4().simple());
    st.oauth.tokens.insert(token.clone(), login);
    Reply::json(
        200,
        json!({"access_token": token, "token_type": "bearer", "scope": ""}),
    )
}

/// `GET /user` for a user token: the authenticated user, shaped like GitHub's `public-user`.
pub(crate) fn user(st: &State, b: &super::state::Bases, login: &str) -> Reply {
    let mut v = st.user_json(b, login);
    let now = super::state::ts(st.now());
    if let Some(o) = v.as_object_mut() {
        for (k, val) in [
            ("name", Value::Null),
            ("company", Value::Null),
            ("blog", json!("")),
            ("location", Value::Null),
            ("email", Value::Null),
            ("hireable", Value::Null),
            ("bio", Value::Null),
            ("public_repos", json!(0)),
            ("public_gists", json!(0)),
            ("followers", json!(0)),
            ("following", json!(0)),
            ("created_at", json!(now)),
            ("updated_at", json!(now)),
        ] {
            o.entry(k).or_insert(val);
        }
    }
    Reply::json(200, v)
}

/// Whether `login` is a member of `org`.
pub(crate) fn is_member(st: &State, org: &str, login: &str) -> bool {
    st.oauth
        .org_members
        .get(&org.to_ascii_lowercase())
        .is_some_and(|m| m.contains(&login.to_ascii_lowercase()))
}
