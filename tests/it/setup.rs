//! `lever setup` and `lever app manifest` against the fake GitHub: the local page, GitHub's
//! form, the callback and the code exchange, over real HTTP.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use lever::cli::app_manifest::{ManifestOptions, manifest};
use lever::cli::setup::{SetupError, SetupOptions, run_flow};
use serde_json::Value;

use crate::fakes::github::{FakeGitHub, TEST_APP_PRIVATE_KEY_PEM, check_manifest};
use crate::fakes::openapi::{percent_decode, percent_encode};

fn options(fake: &FakeGitHub, env_file: PathBuf, config_source: bool) -> SetupOptions {
    SetupOptions {
        manifest: ManifestOptions {
            name: "Lever Acme".into(),
            url: "https://lever.example.com".into(),
            homepage: None,
            redirect_url: None,
            config_source,
        },
        org: Some("acme".into()),
        web_url: fake.url(),
        api_url: fake.url(),
        env_file,
        force: false,
    }
}

/// The value of `attr="…"` in `html`, unescaped.
fn attribute(html: &str, attr: &str) -> String {
    let start = html.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Loads the page as a browser would and submits its form to the fake GitHub's website:
/// returns the manifest posted, the state, and the callback URL GitHub redirects to.
async fn submit_form(page_url: &str) -> (Value, String, String) {
    let http = client();
    let page = http.get(page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let action = attribute(&html, "action");
    let manifest_json = attribute(&html, "value");
    let state = percent_decode(action.split_once("state=").unwrap().1);
    let posted = http
        .post(&action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("manifest={}", percent_encode(&manifest_json)))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 302, "{:?}", posted.text().await);
    let location = posted.headers()["location"].to_str().unwrap().to_string();
    (
        serde_json::from_str(&manifest_json).unwrap(),
        state,
        location,
    )
}

#[tokio::test]
async fn setup_creates_the_app_and_writes_a_0600_env_file_through_the_real_callback() {
    let fake = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flow = tokio::spawn(run_flow(listener, options(&fake, env_file.clone(), true)));

    let (posted, state, location) = submit_form(&format!("http://{addr}/")).await;
    assert_eq!(posted["redirect_url"], format!("http://{addr}/callback"));
    assert!(
        location.starts_with(&format!("http://{addr}/callback?code=")),
        "{location}"
    );
    assert!(location.ends_with(&format!("&state={state}")), "{location}");
    // The form went to the organization's settings, and carried Lever's manifest.
    let form = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.contains("/settings/apps/new"))
        .unwrap();
    assert_eq!(form.path, "/organizations/acme/settings/apps/new");
    assert_eq!(
        posted["default_events"],
        serde_json::json!(["issue_comment", "issues", "push"])
    );
    assert_eq!(
        posted["hook_attributes"]["url"],
        "https://lever.example.com/webhooks/github"
    );

    // A callback with another state is refused, and nothing is written.
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = client()
        .get(format!("http://{addr}/callback?code={code}&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(!env_file.exists());

    // GitHub's redirect, followed by the browser.
    let done = client().get(&location).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let created = flow.await.unwrap().unwrap();
    assert_eq!(Some(created.id), fake.app_id());
    assert!(done.text().await.unwrap().contains(&created.html_url));

    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
            .to_string()
    };
    assert_eq!(var("GITHUB_APP_ID"), created.id.to_string());
    assert_eq!(
        var("GITHUB_WEBHOOK_SECRET"),
        format!("fake-webhook-secret-{}", created.id)
    );
    assert_eq!(var("GITHUB_CLIENT_ID"), created.client_id);
    assert_eq!(var("GITHUB_CLIENT_SECRET"), created.client_secret);

    // The written key is the App's key, as Lever reads it: it authenticates as the new App.
    let settings = lever::config::ProcessSettings {
        github_private_key: Some(secrecy::SecretString::from(var("GITHUB_PRIVATE_KEY"))),
        ..Default::default()
    };
    let pem = settings.private_key_pem().unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&pem).trim(),
        TEST_APP_PRIVATE_KEY_PEM.trim()
    );
    let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(
        secrecy::ExposeSecret::expose_secret(&pem).as_bytes(),
    )
    .unwrap();
    let app_client = octocrab::Octocrab::builder()
        .base_uri(fake.url())
        .unwrap()
        .app(
            octocrab::models::AppId(var("GITHUB_APP_ID").parse().unwrap()),
            key,
        )
        .build()
        .unwrap();
    let me: Value = app_client.get("/app", None::<&()>).await.unwrap();
    assert_eq!(me["id"], created.id);

    // What GitHub received is Lever's manifest, and the exchange conforms to the description.
    assert_eq!(fake.created_manifests(), vec![posted.clone()]);
    let mut expected = options(&fake, env_file, true).manifest;
    expected.redirect_url = Some(format!("http://{addr}/callback"));
    assert_eq!(posted, manifest(&expected));
    assert_eq!(fake.count("POST", "/app-manifests/*/conversions"), 1);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_failed_conversion_is_a_clear_error_and_writes_nothing() {
    let fake = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flow = tokio::spawn(run_flow(listener, options(&fake, env_file.clone(), false)));
    let (_, state, _) = submit_form(&format!("http://{addr}/")).await;
    // A code GitHub never issued (or one already used, or expired): 404 on the exchange.
    let answer = client()
        .get(format!(
            "http://{addr}/callback?code=stale0code&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    let err = flow.await.unwrap().unwrap_err();
    assert!(matches!(err, SetupError::Conversion(_)), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("did not convert the manifest code") && shown.contains("404"),
        "{shown}"
    );
    assert!(!env_file.exists());
    assert_eq!(fake.count("POST", "/app-manifests/*/conversions"), 1);
    fake.assert_conformant();
}

#[tokio::test]
async fn an_existing_env_file_is_kept_without_force() {
    let fake = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "KEEP=1\n").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = run_flow(listener, options(&fake, env_file.clone(), false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), "KEEP=1\n");
}

/// The printed manifest's permissions are App permissions of GitHub's description, and GitHub's
/// form (the fake, with GitHub's rules) accepts it: every event has its permission, no
/// `installation*` event is listed.
#[test]
fn the_printed_manifest_is_one_github_accepts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lever.toml"),
        "[source]\nrepo = \"acme/security-config\"\n",
    )
    .unwrap();
    for config in [None, Some(dir.path())] {
        let mut args = vec!["app", "manifest", "--url", "https://lever.example.com/"];
        if let Some(c) = config {
            args.extend(["--config", c.to_str().unwrap()]);
        }
        let out = crate::support::bin::lever(&args);
        assert!(out.status.success(), "{out:?}");
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://lever.example.com/webhooks/github"
        );
        let push = m["default_events"]
            .as_array()
            .unwrap()
            .contains(&"push".into());
        assert_eq!(push, config.is_some());
        assert_eq!(
            m["default_permissions"].get("checks").is_some(),
            config.is_some()
        );
        assert_eq!(check_manifest(&m), Vec::<String>::new());
        if let Some(spec) =
            crate::fakes::require_conformance("the_printed_manifest_is_one_github_accepts")
                .and_then(|_| crate::fakes::openapi::spec())
        {
            let known = spec
                .schema_component("app-permissions")
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap();
            for name in m["default_permissions"].as_object().unwrap().keys() {
                assert!(known.contains_key(name), "{name} is not an App permission");
            }
            assert!(
                spec.validate_component("app-permissions", &m["default_permissions"])
                    .is_empty()
            );
        }
    }
}

/// The fake's form applies GitHub's rules, so the test above can fail.
#[test]
fn the_fake_form_refuses_what_github_refuses() {
    let ok = serde_json::json!({
        "name": "x", "url": "https://x", "hook_attributes": {"url": "https://x/h"},
        "default_permissions": {"issues": "write"}, "default_events": ["issues"],
    });
    assert!(check_manifest(&ok).is_empty());
    let mut installation = ok.clone();
    installation["default_events"] = serde_json::json!(["issues", "installation"]);
    assert_eq!(
        check_manifest(&installation),
        ["Default events unsupported: installation"]
    );
    let mut push = ok.clone();
    push["default_events"] = serde_json::json!(["push"]);
    assert_eq!(
        check_manifest(&push),
        ["Default events push requires the contents permission"]
    );
}
