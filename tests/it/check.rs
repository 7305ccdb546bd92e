//! The shift-left check (issue 15): `GET /api/v1/check` with GitHub Actions OIDC tokens signed
//! by a test key served from a local JWKS endpoint, `lever check` against the API and against
//! findings files, and the composite action's script under a simulated Actions environment.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::app::{TestApp, demo_config_with, root};
use crate::support::bin::lever;

const KEY: &str = include_str!("../fixtures/check/oidc-signing-key.TEST-ONLY.pem");
const KEY_N: &str = include_str!("../fixtures/check/oidc-signing-key.n");
const OTHER_KEY: &str = include_str!("../fixtures/check/oidc-other-key.TEST-ONLY.pem");
const AUDIENCE: &str = "https://lever.example.com";
const REQUEST_TOKEN: &str = "actions-request-token";

/// The local issuer: its key set (fetches counted) and GitHub's token request endpoint.
#[derive(Clone)]
struct Issuer {
    base: String,
    jwks_fetches: Arc<AtomicUsize>,
    /// What the token request endpoint hands out.
    token: Arc<std::sync::Mutex<String>>,
}

async fn jwks(State(i): State<Issuer>) -> axum::Json<Value> {
    i.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "keys": [{ "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "key-1", "n": KEY_N.trim(), "e": "AQAB" }]
    }))
}

/// GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL`: the request token as bearer, the audience asked.
async fn token_request(
    State(i): State<Issuer>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, axum::Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !auth.eq_ignore_ascii_case(&format!("bearer {REQUEST_TOKEN}")) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "bad"})),
        );
    }
    if q.get("audience").map(String::as_str) != Some(AUDIENCE) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "wrong audience asked"})),
        );
    }
    let token = i.token.lock().unwrap().clone();
    (
        StatusCode::OK,
        axum::Json(json!({ "count": 1, "value": token })),
    )
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let i = Issuer {
        base,
        jwks_fetches: Arc::default(),
        token: Arc::default(),
    };
    let router = Router::new()
        .route("/.well-known/jwks", get(jwks))
        .route("/token", get(token_request))
        .with_state(i.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    i
}

fn epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token as GitHub mints it, changed by `tweak`; signed by `key` with `kid`.
fn token_with(
    issuer: &Issuer,
    key: &str,
    kid: &str,
    repository_id: u64,
    repository: &str,
    tweak: impl FnOnce(&mut Value),
) -> String {
    let mut claims = json!({
        "iss": issuer.base,
        "aud": AUDIENCE,
        "sub": format!("repo:{repository}:ref:refs/heads/main"),
        "repository": repository,
        "repository_id": repository_id.to_string(),
        "repository_owner": "acme",
        "iat": epoch() - 10,
        "nbf": epoch() - 10,
        "exp": epoch() + 300,
    });
    tweak(&mut claims);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

struct Setup {
    app: TestApp,
    issuer: Issuer,
    _config: tempfile::TempDir,
}

impl Setup {
    fn token(&self, repo: &str) -> String {
        let id = self.app.gh.repo_id(repo).expect("repo on the fake");
        token_with(&self.issuer, KEY, "key-1", id, repo, |_| {})
    }

    async fn get(&self, query: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .app
            .http
            .get(format!("{}/api/v1/check{query}", self.app.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Lever on the demo configuration with `[check]` pointing at the local issuer, the demo
/// findings ingested, and a repository the App is installed on that no OWNERS line names.
async fn setup() -> Setup {
    let issuer = issuer().await;
    let config = demo_config_with(&format!(
        "[check]\nissuer = \"{}\"\njwks_url = \"{}/.well-known/jwks\"\naudience = \"{AUDIENCE}\"\n",
        issuer.base, issuer.base
    ));
    let app = TestApp::builder().config(config.path()).start().await;
    app.gh.add_repo(
        "acme/website",
        true,
        Some(crate::support::app::INSTALLATION),
    );
    app.ingest_demo().await;
    Setup {
        app,
        issuer,
        _config: config,
    }
}

fn controls(answer: &Value) -> Vec<String> {
    answer["issues"]
        .as_array()
        .unwrap_or_else(|| panic!("no issues in {answer}"))
        .iter()
        .map(|i| i["control_id"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[tokio::test]
async fn api_answers_what_production_would_ticket_for_the_token_repository() {
    let s = setup().await;
    let token = s.token("acme/payments");
    let (status, body) = s.get("?target_env=production", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["repo"], "acme/payments");
    assert_eq!(body["target_environment"], "production");
    assert_eq!(controls(&body), ["IAM.6", "EC2.19"]);
    for issue in body["issues"].as_array().unwrap() {
        for f in issue["findings"].as_array().unwrap() {
            assert_eq!(f["environment"], "staging", "{f}");
        }
    }
    // Another target: the staging policy (CRITICAL) against production's findings.
    let (status, body) = s.get("?target_env=staging", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for f in body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["findings"].as_array().unwrap())
    {
        assert_eq!(f["environment"], "production", "{f}");
        assert_eq!(f["severity"], "CRITICAL", "{f}");
    }
    // The key set was fetched once for both requests (cached).
    assert_eq!(s.issuer.jwks_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn api_refuses_tokens_that_do_not_verify_and_repositories_it_does_not_serve() {
    let s = setup().await;
    let payments = s.app.gh.repo_id("acme/payments").unwrap();
    let website = s.app.gh.repo_id("acme/website").unwrap();
    let i = &s.issuer;
    type Tweak = fn(&mut Value);
    let cases: Vec<(&str, Option<String>, StatusCode)> = vec![
        ("no token", None, StatusCode::UNAUTHORIZED),
        (
            "not a JWT",
            Some("garbage".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong audience",
            Some(token_with(
                i,
                KEY,
                "key-1",
                payments,
                "acme/payments",
                (|c| c["aud"] = json!("sts.amazonaws.com")) as Tweak,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong issuer",
            Some(token_with(
                i,
                KEY,
                "key-1",
                payments,
                "acme/payments",
                (|c| c["iss"] = json!("https://token.actions.githubusercontent.com")) as Tweak,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired",
            Some(token_with(
                i,
                KEY,
                "key-1",
                payments,
                "acme/payments",
                (|c| c["exp"] = json!(epoch() - 120)) as Tweak,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not yet valid",
            Some(token_with(
                i,
                KEY,
                "key-1",
                payments,
                "acme/payments",
                (|c| c["nbf"] = json!(epoch() + 600)) as Tweak,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no repository_id",
            Some(token_with(
                i,
                KEY,
                "key-1",
                payments,
                "acme/payments",
                (|c| {
                    c.as_object_mut().unwrap().remove("repository_id");
                }) as Tweak,
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "signed by another key under the known kid",
            Some(token_with(
                i,
                OTHER_KEY,
                "key-1",
                payments,
                "acme/payments",
                |_| {},
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown kid",
            Some(token_with(
                i,
                OTHER_KEY,
                "key-2",
                payments,
                "acme/payments",
                |_| {},
            )),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a repository no OWNERS line routes to",
            Some(token_with(i, KEY, "key-1", website, "acme/website", |_| {})),
            StatusCode::FORBIDDEN,
        ),
        (
            "a repository id GitHub does not know",
            Some(token_with(i, KEY, "key-1", 424242, "acme/payments", |_| {})),
            StatusCode::FORBIDDEN,
        ),
        (
            // The name is reused by another repository (website's id): the id decides.
            "the payments name on another repository's id",
            Some(token_with(
                i,
                KEY,
                "key-1",
                website,
                "acme/payments",
                |_| {},
            )),
            StatusCode::FORBIDDEN,
        ),
    ];
    let mut failures = Vec::new();
    for (name, token, want) in cases {
        let (status, body) = s.get("?target_env=production", token.as_deref()).await;
        if status != want || !body["error"].is_string() || body.get("issues").is_some() {
            failures.push(format!(
                "{name}: {status} {body}, want {want} with an error"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let good = s.token("acme/payments");
    let (status, body) = s.get("?target_env=prod", Some(&good)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("production"),
        "{body}"
    );
    let (status, _) = s.get("", Some(&good)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // One fetch, plus one for the first unknown kid; unknown kids do not fetch again within a
    // minute (anyone can send one).
    assert_eq!(s.issuer.jwks_fetches.load(Ordering::SeqCst), 2);
    let (status, _) = s
        .get(
            "?target_env=production",
            Some(&token_with(
                i,
                OTHER_KEY,
                "key-3",
                payments,
                "acme/payments",
                |_| {},
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.issuer.jwks_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn api_follows_the_repository_id_across_a_rename() {
    let s = setup().await;
    let id = s.app.gh.repo_id("acme/payments").unwrap();
    // The workflow runs in the renamed repository: same id, new name in the token.
    let token = token_with(&s.issuer, KEY, "key-1", id, "acme/payments-service", |c| {
        c["repository_id"] = json!(id)
    });
    let (status, body) = s.get("?target_env=production", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["repo"], "acme/payments");
    assert_eq!(controls(&body), ["IAM.6", "EC2.19"]);
}

#[tokio::test]
async fn api_is_unavailable_when_the_key_set_is() {
    let config = demo_config_with(
        "[check]\nissuer = \"http://127.0.0.1:9\"\njwks_url = \"http://127.0.0.1:9/keys\"\n",
    );
    let app = TestApp::builder().config(config.path()).start().await;
    let res = app
        .http
        .get(format!("{}/api/v1/check?target_env=production", app.url))
        .bearer_auth("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Runs `cmd` with the variables `clear` removed, then `env` set; its exit code and output.
async fn run_with(
    mut cmd: tokio::process::Command,
    clear: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    for v in clear {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `lever check ARGS` as a child process with `env` (the Actions variables cleared first).
async fn lever_check(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lever"));
    cmd.arg("check").args(args).current_dir(root());
    let clear = [
        "LEVER_OIDC_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_REPOSITORY",
        "LEVER_URL",
    ];
    run_with(cmd, &clear, env).await
}

#[tokio::test]
async fn cli_against_the_api_exit_codes() {
    let s = setup().await;
    let token = s.token("acme/payments");
    let url = s.app.url.clone();
    let base = [
        "--source",
        "api",
        "--lever-url",
        url.as_str(),
        "--target-env",
        "production",
        "--audience",
        AUDIENCE,
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    let block = with(&["--mode", "block"]);
    let (code, out, err) = lever_check(&args(&block), &[("LEVER_OIDC_TOKEN", &token)]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("IAM.6") && out.contains("EC2.19"), "{out}");

    let warn = with(&["--mode", "warn", "--format", "json"]);
    let (code, out, err) = lever_check(&args(&warn), &[("LEVER_OIDC_TOKEN", &token)]).await;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(controls(&v), ["IAM.6", "EC2.19"]);

    // The token from GitHub's token request (the audience asked is --audience).
    *s.issuer.token.lock().unwrap() = token.clone();
    let request_url = format!("{}/token?api-version=2.0", s.issuer.base);
    let (code, out, err) = lever_check(
        &args(&block),
        &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &request_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");

    // A staging target with nothing to ticket for payments' production findings below
    // CRITICAL... is still answered; unknown environments are usage errors.
    let unknown = vec![
        "--source".to_string(),
        "api".into(),
        "--lever-url".into(),
        url.clone(),
        "--target-env".into(),
        "prod".into(),
        "--audience".into(),
        AUDIENCE.into(),
    ];
    let (code, _, err) = lever_check(&args(&unknown), &[("LEVER_OIDC_TOKEN", &token)]).await;
    assert_eq!(code, 2, "{err}");

    // Could not check: no token, a refused token, Lever unreachable.
    let (code, _, err) = lever_check(&args(&block), &[]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no OIDC token"), "{err}");
    let (code, _, err) = lever_check(&args(&block), &[("LEVER_OIDC_TOKEN", "garbage")]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = lever_check(
        &[
            "--source",
            "api",
            "--lever-url",
            "http://127.0.0.1:9",
            "--target-env",
            "production",
        ],
        &[("LEVER_OIDC_TOKEN", &token)],
    )
    .await;
    assert_eq!(code, 3, "{err}");
}

fn demo_file_args<'a>(target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "check",
        "--repo",
        "acme/payments",
        "--target-env",
        target,
        "--source",
        "file",
        "--config",
        "examples/demo",
        "--findings",
        "examples/demo/findings",
        "--now",
        "2026-11-23T12:00:00Z",
    ];
    v.extend_from_slice(extra);
    v
}

/// The README's demo: exactly staging's IAM.6 and EC2.19 would be ticketed in production.
#[test]
fn demo_shows_the_staging_problems_production_would_ticket() {
    let out = lever(&demo_file_args("production", &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(stdout.trim_end()),
        "the README's expected output differs from:\n{stdout}"
    );
    let out = lever(&demo_file_args("production", &["--format", "json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(controls(&v), ["IAM.6", "EC2.19"]);
    let accounts: Vec<&str> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["findings"].as_array().unwrap())
        .map(|f| f["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["222222222222", "222222222222"]);
    assert_eq!(
        lever(&demo_file_args("production", &["--mode", "block"]))
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn cli_file_source_usage_errors_exit_2() {
    let bad_env = lever(&demo_file_args("prod", &[]));
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("unknown target environment"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
    let findings = dir.path().display().to_string();
    let mut args = demo_file_args("production", &[]);
    let pos = args
        .iter()
        .position(|a| *a == "examples/demo/findings")
        .unwrap();
    args[pos] = &findings;
    let out = lever(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
    let out = lever(&["check", "--target-env", "production", "--source", "file"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lever(&[
        "check",
        "--repo",
        "acme/payments",
        "--target-env",
        "production",
        "--mode",
        "stop",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn github_format_writes_annotations_and_the_summary_file() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(demo_file_args(
            "production",
            &["--format", "github", "--mode", "block"],
        ))
        .current_dir(root())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("::error title=CRITICAL IAM.6 would become a production issue::"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("::error title=HIGH EC2.19 would become a production issue::"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### Lever: what production would ticket for acme/payments"),
        "{md}"
    );
    assert!(
        md.contains("| CRITICAL | IAM.6 |") && md.contains("| HIGH | EC2.19 |"),
        "{md}"
    );
}

/// A findings file whose finding names a control outside the catalog (so its own title is
/// the explanation's title) with an injection attempt in that title.
fn write_evil_findings(dir: &Path) -> String {
    let src =
        std::fs::read_to_string(root().join("examples/demo/findings/06-payments-staging.json"))
            .unwrap();
    let mut doc: Value = serde_json::from_str(&src).unwrap();
    let findings = doc
        .as_array_mut()
        .expect("the demo file is an array of findings");
    findings[0]["Title"] = json!("x\n::set-output name=pwned::1, 100%");
    findings[0]["Compliance"]["SecurityControlId"] = json!("ZZ.99");
    findings[0]["GeneratorId"] = json!("security-control/ZZ.99");
    let path = dir.join("evil.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn untrusted_titles_stay_inside_their_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let evil = write_evil_findings(dir.path());
    let mut args = demo_file_args("production", &["--format", "github"]);
    let pos = args
        .iter()
        .position(|a| *a == "examples/demo/findings")
        .unwrap();
    args[pos] = &evil;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(&args)
        .current_dir(root())
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines.iter().all(|l| l.starts_with("::warning title=")),
        "{stdout}"
    );
    assert!(
        stdout.contains("x%0A::set-output name=pwned::1, 100%25"),
        "{stdout}"
    );
}

/// `bash action/check.sh` as the composite action runs it, with the built `lever` first on
/// PATH and the Actions variables in `env` (the others cleared).
async fn action(env: &[(&str, &str)]) -> (i32, String, String) {
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lever"), bin_dir.path().join("lever")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(root().join("action/check.sh")).env("PATH", path);
    let clear = [
        "LEVER_OIDC_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "GITHUB_STEP_SUMMARY",
        "LEVER_VERSION",
        "GITHUB_ACTION_REF",
        "LEVER_URL",
        "MODE",
        "ON_ERROR",
    ];
    run_with(cmd, &clear, env).await
}

#[tokio::test]
async fn the_action_script_under_a_simulated_actions_environment() {
    let s = setup().await;
    *s.issuer.token.lock().unwrap() = s.token("acme/payments");
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    let summary_s = summary.display().to_string();
    let request_url = format!("{}/token?api-version=2.0", s.issuer.base);
    let url = s.app.url.clone();
    let env = |mode: &'static str, on_error: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("LEVER_URL", url.clone()),
            ("TARGET_ENV", "production".into()),
            ("MODE", mode.into()),
            ("ON_ERROR", on_error.into()),
            ("AUDIENCE", AUDIENCE.into()),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.clone()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.into()),
            ("GITHUB_STEP_SUMMARY", summary_s.clone()),
        ]
    };
    fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
    fn without(v: &[(&'static str, String)], key: &str) -> Vec<(&'static str, String)> {
        v.iter().filter(|(k, _)| *k != key).cloned().collect()
    }

    // Warn: annotations as warnings, the table in the summary, success.
    let (code, out, err) = action(&refs(&env("warn", "fail"))).await;
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("::warning title="))
        .collect();
    assert_eq!(warnings.len(), 2, "{out}");
    assert!(
        warnings[0].contains("IAM.6") && warnings[1].contains("EC2.19"),
        "{out}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| CRITICAL | IAM.6 |"), "{md}");

    // Block: errors, and the step fails.
    let (code, out, err) = action(&refs(&env("block", "fail"))).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("::error title="))
            .count(),
        2,
        "{out}"
    );

    // A pull request from a fork: no token request URL. Warn: a notice, success, Lever not asked.
    std::fs::remove_file(&summary).unwrap();
    let fork = without(&env("warn", "fail"), "ACTIONS_ID_TOKEN_REQUEST_URL");
    let (code, out, err) = action(&refs(&fork)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("::notice title=Lever check::no OIDC token"),
        "{out}"
    );
    assert!(!summary.exists());
    // In block mode it is a check that could not be made: on-error decides.
    let fork_block = without(&env("block", "fail"), "ACTIONS_ID_TOKEN_REQUEST_URL");
    let (code, out, _) = action(&refs(&fork_block)).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("::error title=Lever check::"), "{out}");
    let fork_block_warn = without(&env("block", "warn"), "ACTIONS_ID_TOKEN_REQUEST_URL");
    let (code, out, _) = action(&refs(&fork_block_warn)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("::warning title=Lever check::"), "{out}");

    // Lever unreachable: exit 3 mapped by on-error.
    let mut down = env("block", "fail");
    down[0].1 = "http://127.0.0.1:9".into();
    let (code, out, _) = action(&refs(&down)).await;
    assert_eq!(code, 3, "{out}");
    down[3].1 = "warn".into();
    let (code, out, _) = action(&refs(&down)).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("::warning title=Lever check::the check could not be made"),
        "{out}"
    );

    // Bad inputs.
    let (code, out, _) = action(&refs(&env("stop", "fail"))).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("::error title=Lever check::mode must be warn or block"),
        "{out}"
    );
}

/// An exception approved on production's IAM.6 issue in acme/payments covers staging's IAM.6
/// in the answer; EC2.19 (no exception) still counts.
#[tokio::test]
async fn an_exception_approved_in_production_covers_the_same_control() {
    let s = setup().await;
    s.app.settle().await;
    let staging =
        std::fs::read_to_string(root().join("examples/demo/findings/06-payments-staging.json"))
            .unwrap();
    let all: Value =
        serde_json::from_str(&staging.replace("222222222222", "111111111111")).unwrap();
    let iam6: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["Compliance"]["SecurityControlId"] == "IAM.6")
        .cloned()
        .collect();
    assert_eq!(iam6.len(), 1);
    let doc = Value::Array(iam6);
    s.app.sh.seed(doc.clone());
    let (status, body) = s.app.post_event(&doc).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    s.app.settle().await;
    let issue = s
        .app
        .gh
        .issues("acme/payments")
        .into_iter()
        .find(|i| {
            i["title"].as_str().unwrap_or_default().contains("IAM.6")
                && i["body"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("111111111111")
        })
        .expect("production's IAM.6 issue");
    let n = issue["number"].as_u64().unwrap();
    let token = s.token("acme/payments");

    // Before the approval: both staging problems count.
    let (_, body) = s.get("?target_env=production", Some(&token)).await;
    assert_eq!(controls(&body), ["IAM.6", "EC2.19"], "{body}");

    s.app
        .deliver(vec![s.app.gh.human_add_label(
            "acme/payments",
            n,
            "cto-approved",
            "cto-user",
        )])
        .await;
    s.app
        .deliver(vec![s.app.gh.human_close(
            "acme/payments",
            n,
            "not_planned",
            "bob",
        )])
        .await;
    s.app.settle().await;
    let (status, body) = s.get("?target_env=production", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(controls(&body), ["EC2.19"], "{body}");
    assert_eq!(body["covered"], 1, "{body}");
}

/// `--source securityhub`: GetFindings against the fake Security Hub (seeded with the demo
/// findings), with the AWS credentials of the environment; unreachable is exit 3.
#[tokio::test]
async fn cli_against_security_hub() {
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/demo/findings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        sh.seed(serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap());
    }
    let aws = |endpoint: String| {
        vec![
            ("AWS_ENDPOINT_URL_SECURITYHUB", endpoint),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    };
    let args = [
        "--source",
        "securityhub",
        "--repo",
        "acme/payments",
        "--target-env",
        "production",
        "--config",
        "examples/demo",
        "--format",
        "json",
        "--mode",
        "block",
        "--now",
        "2026-11-23T12:00:00Z",
    ];
    let env = aws(sh.url());
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, err) = lever_check(&args, &refs).await;
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(controls(&v), ["IAM.6", "EC2.19"]);

    let env = aws("http://127.0.0.1:9".into());
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, err) = lever_check(&args, &refs).await;
    assert_eq!(code, 3, "{out}{err}");
}

/// `--source securityhub` with `[securityhub] api = "v2"`: the same answer from the OCSF demo
/// through GetFindingsV2 (issue 14).
#[tokio::test]
async fn cli_against_security_hub_v2() {
    let sh = crate::fakes::securityhub::FakeSecurityHub::start().await;
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/demo/findings-ocsf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        sh.seed(serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap());
    }
    let dir = crate::support::app::demo_config_with("");
    let path = dir.path().join("lever.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        toml.replacen("[securityhub]\n", "[securityhub]\napi = \"v2\"\n", 1),
    )
    .unwrap();
    let url = sh.url();
    let env = [
        ("AWS_ENDPOINT_URL_SECURITYHUB", url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let args = [
        "--source",
        "securityhub",
        "--repo",
        "acme/payments",
        "--target-env",
        "production",
        "--config",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
        "--mode",
        "block",
        "--now",
        "2026-11-23T12:00:00Z",
    ];
    let (code, out, err) = lever_check(&args, &env).await;
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(controls(&v), ["IAM.6", "EC2.19"]);
    assert_eq!(sh.count("GetFindings"), 0);
    assert!(sh.count("GetFindingsV2") >= 1);
    sh.assert_conformant();
}

/// The action's download path: with a release tag, `action/check.sh` fetches
/// `lever-TAG-ARCH-unknown-linux-musl.tar.gz` and its `.sha256` from
/// `GITHUB_SERVER_URL/REPO/releases/download/TAG/` (the names `release.yml` publishes), checks
/// the digest and runs the `lever` inside; a digest that does not match is refused (exit 3).
/// The served "binary" is a stand-in script that records its arguments.
#[tokio::test]
async fn the_action_downloads_the_release_it_names_and_checks_its_digest() {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("SKIPPED: no release is built for {other}\n"),
            );
            return;
        }
    };
    let tag = "v9.9.9";
    let name = format!("lever-{tag}-{arch}-unknown-linux-musl");
    let work = tempfile::tempdir().unwrap();
    let args_file = work.path().join("args.txt");
    std::fs::create_dir(work.path().join(&name)).unwrap();
    let script = work.path().join(&name).join("lever");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho '::notice::downloaded lever ran'\n",
            args_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(format!("{name}.tar.gz"))
        .arg(&name)
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let sum = std::process::Command::new("sha256sum")
        .arg(format!("{name}.tar.gz"))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(sum.status.success());
    let good_sum = sum.stdout.clone();
    let tarball = std::fs::read(work.path().join(format!("{name}.tar.gz"))).unwrap();

    // A release server: GET /acme/lever/releases/download/TAG/FILE.
    let digest = std::sync::Arc::new(std::sync::Mutex::new(good_sum.clone()));
    let (tb, dg, prefix) = (
        tarball.clone(),
        digest.clone(),
        format!("/acme/lever/releases/download/{tag}/{name}"),
    );
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (tb, dg, prefix) = (tb.clone(), dg.clone(), prefix.clone());
        async move {
            use axum::response::IntoResponse;
            let path = uri.path().to_string();
            if path == format!("{prefix}.tar.gz") {
                tb.into_response()
            } else if path == format!("{prefix}.tar.gz.sha256") {
                dg.lock().unwrap().clone().into_response()
            } else {
                (axum::http::StatusCode::NOT_FOUND, "not found").into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let runner_temp = tempfile::tempdir().unwrap();
    let runner_temp_s = runner_temp.path().display().to_string();
    let env = [
        ("LEVER_URL", "https://lever.example.com"),
        ("TARGET_ENV", "production"),
        ("MODE", "block"),
        ("ON_ERROR", "fail"),
        ("LEVER_OIDC_TOKEN", "a-token"),
        ("LEVER_VERSION", tag),
        ("LEVER_RELEASES", "acme/lever"),
        ("GITHUB_SERVER_URL", server.as_str()),
        ("RUNNER_TEMP", runner_temp_s.as_str()),
    ];
    let (code, out, err) = action(&env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("::notice::downloaded lever ran"), "{out}{err}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        &args[..7],
        [
            "check",
            "--source",
            "api",
            "--lever-url",
            "https://lever.example.com",
            "--target-env",
            "production"
        ],
        "{args:?}"
    );

    // A tampered tarball (the digest no longer matches): refused, not run.
    std::fs::remove_file(&args_file).unwrap();
    std::fs::remove_dir_all(runner_temp.path().join("lever-action")).ok();
    *digest.lock().unwrap() = format!("{}  {name}.tar.gz\n", "0".repeat(64)).into_bytes();
    let (code, out, err) = action(&env).await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("::error title=Lever check::cannot find or download lever"),
        "{out}"
    );
    assert!(!args_file.exists(), "the tampered binary did not run");
}
