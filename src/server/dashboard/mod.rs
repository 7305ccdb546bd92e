//! `GET /`: the dashboard, the report (`crate::report`) as a page, for the people
//! `[dashboard]` lets in (see `config::report`):
//!
//! - **off** (neither access configured): 404 `dashboard is off`;
//! - **`proxy_header`**: a trusted reverse proxy signed the person in and names them in the
//!   header; without it (or blank), 401. The proxy must strip the header from what clients
//!   send, and Lever must not be reachable around it;
//! - **GitHub sign-in** (`github_org`, optional `github_team`): without a valid session
//!   cookie, a redirect to `/auth/github/login`, which sends the browser to GitHub's authorize
//!   page with a random `state` kept in a signed, short-lived cookie. GitHub sends it back to
//!   `/auth/github/callback?code&state` (the App's callback URL): the state must match the
//!   cookie (else 400: a forged or replayed callback), the code is exchanged for a user token,
//!   `GET /user` says who it is, and membership of the organization (or the team, `active`)
//!   is checked with that token. A member gets a session cookie (HMAC-signed, `HttpOnly;
//!   Secure; SameSite=Lax`, 8 hours) and a redirect to `/`; anyone else gets 403. The user's
//!   token is not kept. After sign-in the browser always goes to `/`: there is no
//!   caller-chosen redirect.
//!
//! Every page answer carries a strict `Content-Security-Policy` (no script, no external
//! anything) and `Cache-Control: no-store`.

mod github;
pub mod page;
pub mod session;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::config::report::DashboardAccess;
use crate::config::{ProcessSettings, parse_duration};
use crate::report::Period;
use session::{Purpose, SESSION_COOKIE, SESSION_TTL, STATE_COOKIE, STATE_TTL, SessionKey};

/// The page's `Content-Security-Policy`.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The default period of the page.
pub const DEFAULT_PERIOD: Duration = Duration::days(30);

/// What GitHub sign-in needs from the process settings.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: SecretString,
    /// `GITHUB_WEB_URL` (no trailing slash).
    pub web_url: String,
    /// `GITHUB_API_URL` (no trailing slash).
    pub api_url: String,
}

/// The dashboard's keys, built once by the composition root.
#[derive(Debug, Clone, Default)]
pub struct DashboardKeys {
    /// Present when GitHub sign-in can work (client id and secret set).
    pub oauth: Option<OAuthClient>,
    /// Signs the session and state cookies.
    pub key: Option<SessionKey>,
}

impl DashboardKeys {
    /// From the environment: the OAuth client and the cookie key (`LEVER_SESSION_KEY`, else
    /// derived from the first webhook secret). With `[dashboard] github_org` set, a missing
    /// client id, secret or key is an error naming what to set.
    pub fn from_settings(
        settings: &ProcessSettings,
        access: &DashboardAccess,
    ) -> anyhow::Result<DashboardKeys> {
        let key = match &settings.session_key {
            Some(k) if !k.expose_secret().is_empty() => {
                if k.expose_secret().len() < 32 {
                    anyhow::bail!("LEVER_SESSION_KEY must be at least 32 characters");
                }
                Some(SessionKey::derive(k.expose_secret().as_bytes()))
            }
            _ => settings
                .webhook_secrets()
                .next()
                .map(|s| SessionKey::derive(s.expose_secret().as_bytes())),
        };
        let oauth = match (&settings.github_client_id, &settings.github_client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.expose_secret().is_empty() => {
                Some(OAuthClient {
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    web_url: settings.github_web_url.trim_end_matches('/').to_string(),
                    api_url: settings.github_api_url.trim_end_matches('/').to_string(),
                })
            }
            _ => None,
        };
        if let DashboardAccess::GitHub { .. } = access {
            if oauth.is_none() {
                anyhow::bail!(
                    "[dashboard] github_org needs GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the App's OAuth client credentials)"
                );
            }
            if key.is_none() {
                anyhow::bail!(
                    "[dashboard] github_org needs LEVER_SESSION_KEY or GITHUB_WEBHOOK_SECRET to sign session cookies"
                );
            }
        }
        Ok(DashboardKeys { oauth, key })
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut r = (status, body.to_string()).into_response();
    secure_headers(r.headers_mut());
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    secure_headers(r.headers_mut());
    r
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie(h, name))
}

/// Why a request is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    Off,
    NoProxyUser,
    SignIn,
}

impl Denied {
    fn answer(self) -> Response {
        match self {
            Denied::Off => text(StatusCode::NOT_FOUND, "dashboard is off\n"),
            Denied::NoProxyUser => text(
                StatusCode::UNAUTHORIZED,
                "not signed in: the reverse proxy did not name you\n",
            ),
            Denied::SignIn => redirect("/auth/github/login", &[]),
        }
    }
}

/// Who the request is from (and whether they signed in here, so may sign out), or why not.
fn viewer(app: &App, headers: &HeaderMap) -> Result<(String, bool), Denied> {
    match &app.config.settings.dashboard.access {
        DashboardAccess::Off => Err(Denied::Off),
        DashboardAccess::ProxyHeader { header } => headers
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(|w| (w.to_string(), false))
            .ok_or(Denied::NoProxyUser),
        DashboardAccess::GitHub { .. } => app
            .dashboard
            .key
            .as_ref()
            .and_then(|k| {
                k.verify(
                    Purpose::Session,
                    cookie_value(headers, SESSION_COOKIE)?,
                    app.now(),
                )
            })
            .map(|w| (w, true))
            .ok_or(Denied::SignIn),
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    since: Option<String>,
}

/// `GET /`.
pub async fn page(
    State(app): State<App>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let app = app.refreshed();
    let (who, signed_in_here) = match viewer(&app, &headers) {
        Ok(v) => v,
        Err(denied) => return denied.answer(),
    };
    let period = match q.since.as_deref().map(parse_duration) {
        None => DEFAULT_PERIOD,
        Some(Ok(d)) if d > Duration::zero() && d <= Duration::days(3660) => d,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "since: expected a duration such as 30d\n",
            );
        }
    };
    let now = app.now();
    let report = match crate::report::load(
        app.store.as_ref(),
        &app.config,
        Period {
            since: now - period,
            now,
            expiring: app.config.settings.report.expiring,
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: the store could not be read");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store could not be read; try again\n",
            );
        }
    };
    let html = page::render(&report, &who, signed_in_here);
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    secure_headers(r.headers_mut());
    r
}

fn github_mode(app: &App) -> Option<(&OAuthClient, &SessionKey, &str, Option<&str>)> {
    match &app.config.settings.dashboard.access {
        DashboardAccess::GitHub { org, team } => Some((
            app.dashboard.oauth.as_ref()?,
            app.dashboard.key.as_ref()?,
            org.as_str(),
            team.as_deref(),
        )),
        _ => None,
    }
}

/// `GET /auth/github/login`: to GitHub's authorize page, with a fresh state.
pub async fn login(State(app): State<App>) -> Response {
    let app = app.refreshed();
    let Some((oauth, key, _, _)) = github_mode(&app) else {
        return text(StatusCode::NOT_FOUND, "GitHub sign-in is off\n");
    };
    let state = hex::encode(rand::random::<[u8; 32]>());
    let cookie = key.sign(Purpose::State, &state, app.now() + STATE_TTL);
    let to = format!(
        "{}/login/oauth/authorize?client_id={}&state={state}&allow_signup=false",
        oauth.web_url,
        url::form_urlencoded::byte_serialize(oauth.client_id.as_bytes()).collect::<String>()
    );
    redirect(
        &to,
        &[session::set_cookie(
            STATE_COOKIE,
            &cookie,
            "/auth/github",
            STATE_TTL,
        )],
    )
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /auth/github/callback?code&state`.
pub async fn callback(
    State(app): State<App>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let app = app.refreshed();
    let Some((oauth, key, org, team)) = github_mode(&app) else {
        return text(StatusCode::NOT_FOUND, "GitHub sign-in is off\n");
    };
    let clear_state = session::set_cookie(STATE_COOKIE, "", "/auth/github", Duration::zero());
    let expected =
        cookie_value(&headers, STATE_COOKIE).and_then(|c| key.verify(Purpose::State, c, app.now()));
    let state_ok = match (&expected, &q.state) {
        (Some(e), Some(s)) => bool::from(e.as_bytes().ct_eq(s.as_bytes())),
        _ => false,
    };
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 256)
    else {
        return text(StatusCode::BAD_REQUEST, "sign-in failed: no code\n");
    };
    if !state_ok {
        let mut r = text(
            StatusCode::BAD_REQUEST,
            "sign-in failed: the state does not match this browser's sign-in (start again from /)\n",
        );
        if let Ok(v) = HeaderValue::from_str(&clear_state) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return r;
    }
    let login = match github::sign_in(oauth, code, org, team).await {
        Ok(github::Outcome::Member(login)) => login,
        Ok(github::Outcome::NotMember(login)) => {
            tracing::info!(login, org, team, "dashboard: sign-in refused, not a member");
            let mut r = text(
                StatusCode::FORBIDDEN,
                "you are signed in to GitHub, but not a member of the organization or team that may see this dashboard\n",
            );
            if let Ok(v) = HeaderValue::from_str(&clear_state) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            return r;
        }
        Err(github::SignInError::Refused(why)) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("sign-in failed: GitHub refused the code ({why}); start again from /\n"),
            );
        }
        Err(github::SignInError::Unavailable(why)) => {
            tracing::warn!(error = %why, "dashboard: GitHub sign-in failed");
            return text(
                StatusCode::BAD_GATEWAY,
                "sign-in failed: GitHub could not be reached; try again\n",
            );
        }
    };
    tracing::info!(login, "dashboard: signed in");
    let session = key.sign(Purpose::Session, &login, app.now() + SESSION_TTL);
    redirect(
        "/",
        &[
            session::set_cookie(SESSION_COOKIE, &session, "/", SESSION_TTL),
            clear_state,
        ],
    )
}

/// `GET|POST /auth/logout`: the session cookie removed.
pub async fn logout() -> Response {
    let mut r = text(StatusCode::OK, "Signed out.\n");
    let clear = session::set_cookie(SESSION_COOKIE, "", "/", Duration::zero());
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> DashboardAccess {
        DashboardAccess::GitHub {
            org: "acme".into(),
            team: None,
        }
    }

    #[test]
    fn keys_say_what_github_sign_in_is_missing() {
        let base = ProcessSettings {
            github_webhook_secrets: vec![SecretString::from("hook")],
            ..ProcessSettings::default()
        };
        let err = |s: &ProcessSettings, a: &DashboardAccess| {
            DashboardKeys::from_settings(s, a)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&base, &github()).contains("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET"));
        let with_client = ProcessSettings {
            github_client_id: Some("Iv1.abc".into()),
            github_client_secret: Some(SecretString::from("s")),
            ..base.clone()
        };
        let keys = DashboardKeys::from_settings(&with_client, &github()).unwrap();
        assert!(
            keys.oauth.is_some() && keys.key.is_some(),
            "key derived from the webhook secret"
        );
        let no_secret = ProcessSettings {
            github_webhook_secrets: vec![],
            ..with_client.clone()
        };
        assert!(err(&no_secret, &github()).contains("LEVER_SESSION_KEY"));
        let short = ProcessSettings {
            session_key: Some(SecretString::from("too-short")),
            ..with_client.clone()
        };
        assert!(err(&short, &github()).contains("at least 32 characters"));
        // Without GitHub sign-in configured nothing is required.
        assert!(
            DashboardKeys::from_settings(&ProcessSettings::default(), &DashboardAccess::Off)
                .is_ok()
        );
    }
}
