//! The dashboard (`GET /`) and who may see it: off, behind a trusted proxy header, or through
//! GitHub sign-in against the fake GitHub (authorize, code exchange, `GET /user`, organization
//! and team membership, all checked against GitHub's OpenAPI description).

use chrono::Duration;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::support::app::{TestApp, demo_config_with};

/// A client that does not follow redirects nor keep cookies: every step is checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(extra: &str) -> (TestApp, tempfile::TempDir) {
    let dir = demo_config_with(extra);
    let app = TestApp::builder().config(dir.path()).start().await;
    (app, dir)
}

fn location(h: &HeaderMap) -> String {
    h.get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The `name=value` of a `Set-Cookie` named `name`, and the whole header.
fn set_cookie(h: &HeaderMap, name: &str) -> Option<(String, String)> {
    h.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().unwrap();
        let pair = v.split(';').next()?.trim();
        pair.starts_with(&format!("{name}="))
            .then(|| (pair.to_string(), v.to_string()))
    })
}

/// `GET path` with a `Cookie` header.
async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{}{path}", app.url));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

/// Lever's sign-in up to GitHub's redirect back: the state cookie and the callback URL the
/// fake GitHub sends the browser to (the person `login` being signed in to GitHub).
async fn to_callback(app: &TestApp, login: &str) -> (String, String) {
    let r = get(app, "/auth/github/login", None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let (state_cookie, whole) = set_cookie(r.headers(), "lever_oauth_state").expect("state cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/auth/github"] {
        assert!(whole.contains(attr), "{whole}");
    }
    let authorize = location(r.headers());
    assert!(
        authorize.starts_with(&format!(
            "{}/login/oauth/authorize?client_id=",
            app.gh.url()
        )),
        "{authorize}"
    );
    app.gh.sign_in_as(login);
    let r = client().get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "GitHub's authorize page");
    let callback = location(r.headers());
    assert!(
        callback.starts_with(&format!("{}/auth/github/callback?code=", app.url)),
        "{callback}"
    );
    (state_cookie, callback)
}

async fn signed_in(app: &TestApp, login: &str) -> String {
    let (state, callback) = to_callback(app, login).await;
    let r = client()
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{}", r.text().await.unwrap());
    assert_eq!(location(r.headers()), "/");
    let (session, whole) = set_cookie(r.headers(), "lever_session").expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age=28800"] {
        assert!(whole.contains(attr), "{whole}");
    }
    session
}

#[tokio::test]
async fn without_access_configured_the_dashboard_is_off() {
    let app = TestApp::start().await;
    let r = get(&app, "/", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), "dashboard is off\n");
    let r = get(&app, "/auth/github/login", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn behind_a_proxy_the_header_names_the_viewer() {
    let (app, _dir) = start("[dashboard]\nproxy_header = \"X-Forwarded-User\"\n").await;
    let r = get(&app, "/", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client()
        .get(format!("{}/", app.url))
        .header("x-forwarded-user", "   ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a blank header is nobody"
    );
    let r = client()
        .get(format!("{}/", app.url))
        .header("x-forwarded-user", "<b>carol</b>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("signed in as <strong>&lt;b&gt;carol&lt;/b&gt;</strong>"));
    assert!(!html.contains("<script"));
    let r = client()
        .get(format!("{}/?since=forever", app.url))
        .header("x-forwarded-user", "carol")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a bad period is named");
    assert!(r.text().await.unwrap().contains("since"));
    // GitHub sign-in is not a second way in.
    let r = get(&app, "/auth/github/login", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn github_sign_in_lets_members_of_the_org_in() {
    let (app, _dir) = start("[dashboard]\ngithub_org = \"acme\"\n").await;
    app.gh.add_org_member("acme", "alice");
    // No session: to the sign-in.
    let r = get(&app, "/", None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(r.headers()), "/auth/github/login");

    let session = signed_in(&app, "alice").await;
    let r = get(&app, "/", Some(&session)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("signed in as <strong>alice</strong>"),
        "{html}"
    );
    assert!(html.contains("action=\"/auth/logout\""));

    // A tampered cookie, another's name under alice's signature, and an expired one: back to
    // the sign-in.
    let value = session.split_once('=').unwrap().1;
    let (payload, tag) = value.split_once('.').unwrap();
    let forged = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"v":"mallory","e":9999999999}"#)
    };
    for bad in [
        format!("lever_session={forged}.{tag}"),
        format!("lever_session={payload}.{}", "0".repeat(tag.len())),
        format!("lever_session={payload}"),
        "lever_session=".to_string(),
    ] {
        let r = get(&app, "/", Some(&bad)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{bad}");
        assert_eq!(location(r.headers()), "/auth/github/login");
    }
    app.clock.advance(Duration::hours(8));
    let r = get(&app, "/", Some(&session)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "expired after 8 hours");

    // Signing out removes the cookie.
    let r = client()
        .post(format!("{}/auth/logout", app.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let (cleared, whole) = set_cookie(r.headers(), "lever_session").unwrap();
    assert_eq!(cleared, "lever_session=");
    assert!(whole.contains("Max-Age=0"), "{whole}");

    // Lever used the user's token only for who and membership, and conformed.
    let user_calls: Vec<String> = app
        .gh
        .requests()
        .into_iter()
        .filter(|r| matches!(r.token, crate::fakes::github::TokenKind::User { .. }))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        user_calls,
        vec!["GET /user", "GET /orgs/acme/members/alice"]
    );
    app.gh.assert_conformant();
}

#[tokio::test]
async fn the_callback_refuses_forged_state_reused_codes_and_non_members() {
    let (app, _dir) = start("[dashboard]\ngithub_org = \"acme\"\n").await;
    app.gh.add_org_member("acme", "alice");
    // CSRF: a callback the browser did not start (no state cookie), or with another state.
    let (state, callback) = to_callback(&app, "alice").await;
    let r = client().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no state cookie");
    let (other_state, _) = to_callback(&app, "alice").await;
    let r = client()
        .get(&callback)
        .header("cookie", &other_state)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "another sign-in's state"
    );
    let forged_state = format!("{}&state=forged", callback.split("&state=").next().unwrap());
    let r = client()
        .get(&forged_state)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a state that is not the cookie's"
    );
    assert!(set_cookie(r.headers(), "lever_session").is_none());

    // No open redirect: whatever the callback carries, a member goes to `/`.
    let r = client()
        .get(format!(
            "{callback}&next=https://evil.example/&redirect_uri=https://evil.example/"
        ))
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(r.headers()), "/");
    // A code works once.
    let r = client()
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the code was used");
    assert!(set_cookie(r.headers(), "lever_session").is_none());

    // Not a member: 403, no session.
    let (state, callback) = to_callback(&app, "bob").await;
    let r = client()
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(r.headers(), "lever_session").is_none());
    // An expired state cookie (sign-in left open for more than 10 minutes).
    let (state, callback) = to_callback(&app, "alice").await;
    app.clock.advance(Duration::minutes(11));
    let r = client()
        .get(&callback)
        .header("cookie", &state)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the state expired");
    app.gh.assert_conformant();
}

#[tokio::test]
async fn with_a_team_only_its_active_members_get_in() {
    let (app, _dir) =
        start("[dashboard]\ngithub_org = \"acme\"\ngithub_team = \"security\"\n").await;
    for login in ["alice", "bob", "carol"] {
        app.gh.add_org_member("acme", login);
    }
    app.gh
        .add_team_member("acme", "security", "alice", "active");
    app.gh.add_team_member("acme", "security", "bob", "pending");
    let session = signed_in(&app, "alice").await;
    assert_eq!(
        get(&app, "/", Some(&session)).await.status(),
        StatusCode::OK
    );
    for (login, why) in [("bob", "pending"), ("carol", "not in the team")] {
        let (state, callback) = to_callback(&app, login).await;
        let r = client()
            .get(&callback)
            .header("cookie", &state)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{login}: {why}");
    }
    app.gh.assert_conformant();
}
