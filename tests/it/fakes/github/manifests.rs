//! The GitHub App manifest flow of the fake GitHub: the website's form
//! (`POST /settings/apps/new`, `POST /organizations/{org}/settings/apps/new`, with `state` in
//! the query and `manifest=` JSON in a form body) and the API's code exchange
//! (`POST /app-manifests/{code}/conversions`).
//!
//! On github.com the form shows the App and the user clicks "Create GitHub App"; the fake
//! takes that click as given and answers the form with GitHub's redirect to the manifest's
//! `redirect_url` with `?code=…&state=…`. The code is single-use. The conversion registers the
//! App (as [`FakeGitHub::set_app`](super::FakeGitHub::set_app) does) with the committed test
//! key pair, and returns its private key as GitHub returns the new App's key.
//!
//! Like GitHub, the form refuses a manifest without `name`, `url` or `hook_attributes.url`, an
//! `installation*` event in `default_events`, and an event whose permission is not granted.

use serde_json::{Value, json};

use super::api::{Ctx, DOC};
use super::state::{AccountKind, AppRec, Bases, State};
use super::{Reply, TEST_APP_PRIVATE_KEY_PEM, TEST_APP_PUBLIC_KEY_PEM};
use crate::fakes::openapi::percent_decode;

/// A manifest submitted through the form, waiting for its code to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct PendingManifest {
    pub manifest: Value,
    /// The organization that owns the App (`None`: the user's account).
    pub org: Option<String>,
}

/// The permission each event needs (GitHub's documentation, for the events Lever may ask
/// for and a few more).
const EVENT_PERMISSIONS: &[(&str, &str)] = &[
    ("issues", "issues"),
    ("issue_comment", "issues"),
    ("push", "contents"),
    ("check_run", "checks"),
    ("check_suite", "checks"),
    ("pull_request", "pull_requests"),
    ("status", "statuses"),
    ("member", "members"),
    ("membership", "members"),
    ("organization", "members"),
    ("team", "members"),
];

fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(&k.replace('+', " ")) == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

/// Checks a manifest as GitHub's form does; the problems, if any.
pub fn check_manifest(m: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["name", "url"] {
        if m.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
            problems.push(format!("{key} is required"));
        }
    }
    if m.pointer("/hook_attributes/url")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        problems.push("hook_attributes.url is required".into());
    }
    let perms = m.get("default_permissions").cloned().unwrap_or(json!({}));
    for (name, level) in perms.as_object().into_iter().flatten() {
        if !matches!(level.as_str(), Some("read" | "write")) {
            problems.push(format!("default_permissions.{name} must be read or write"));
        }
    }
    for e in m
        .get("default_events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let e = e.as_str().unwrap_or("");
        if e.starts_with("installation") {
            problems.push(format!("Default events unsupported: {e}"));
            continue;
        }
        match EVENT_PERMISSIONS.iter().find(|(name, _)| *name == e) {
            Some((_, p)) if perms.get(*p).is_some() => {}
            Some((_, p)) => {
                problems.push(format!("Default events {e} requires the {p} permission"))
            }
            None => problems.push(format!("Default events unsupported: {e}")),
        }
    }
    problems
}

/// The website's manifest form, or `None` for any other request.
pub(crate) fn web(
    st: &mut State,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Option<Reply> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let org = match (method, segs.as_slice()) {
        ("POST", ["settings", "apps", "new"]) => None,
        ("POST", ["organizations", org, "settings", "apps", "new"]) => Some(org.to_string()),
        _ => return None,
    };
    let state = crate::fakes::openapi::parse_query(query)
        .into_iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v);
    let Some(manifest) =
        form_value(body, "manifest").and_then(|m| serde_json::from_str::<Value>(&m).ok())
    else {
        return Some(Reply::error(
            422,
            "Invalid GitHub App configuration: no manifest",
            DOC,
        ));
    };
    let problems = check_manifest(&manifest);
    if !problems.is_empty() {
        return Some(Reply::error(
            422,
            &format!("Invalid GitHub App configuration: {}", problems.join("; ")),
            DOC,
        ));
    }
    let Some(redirect) = manifest
        .get("redirect_url")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Some(Reply::error(
            422,
            "Invalid GitHub App configuration: redirect_url is required for this flow",
            DOC,
        ));
    };
    st.next_id += 1;
    let code = format!("fakecode{}{:x}", st.next_id, st.now().timestamp());
    st.pending_manifests
        .insert(code.clone(), PendingManifest { manifest, org });
    let mut location = format!("{redirect}?code={code}");
    if let Some(s) = state {
        location.push_str(&format!(
            "&state={}",
            crate::fakes::openapi::percent_encode(&s)
        ));
    }
    Some(Reply::empty(302).header("location", location))
}

/// `POST /app-manifests/{code}/conversions`.
pub(crate) fn convert(ctx: &mut Ctx, code: &str) -> Result<Reply, Reply> {
    let Some(pending) = ctx.st.pending_manifests.remove(code) else {
        return Err(Reply::not_found());
    };
    let m = &pending.manifest;
    let name = m["name"].as_str().unwrap_or("app").to_string();
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    ctx.st.next_id += 1;
    let id = ctx.st.next_id;
    let owner_login = pending
        .org
        .clone()
        .unwrap_or_else(|| "lever-setup-user".to_string());
    let kind = if pending.org.is_some() {
        AccountKind::Organization
    } else {
        AccountKind::User
    };
    ctx.st.ensure_account(&owner_login, kind);
    ctx.st
        .ensure_account(&format!("{slug}[bot]"), AccountKind::Bot);
    let now = ctx.st.now();
    ctx.st.app = Some(AppRec {
        id,
        slug: slug.clone(),
        name,
        client_id: format!("Iv23li{id:014}"),
        owner_login,
        key: jsonwebtoken::DecodingKey::from_rsa_pem(TEST_APP_PUBLIC_KEY_PEM.as_bytes())
            .expect("test key"),
        created_at: now,
    });
    let b: &Bases = ctx.b;
    let mut app = ctx.st.app_json(b);
    app["permissions"] = m.get("default_permissions").cloned().unwrap_or(json!({}));
    app["events"] = m.get("default_events").cloned().unwrap_or(json!([]));
    app["external_url"] = m["url"].clone();
    app["client_secret"] = json!(format!("fake-client-secret-{id}"));
    app["webhook_secret"] = json!(format!("fake-webhook-secret-{id}"));
    app["pem"] = json!(TEST_APP_PRIVATE_KEY_PEM);
    ctx.st.created_manifests.push(pending.manifest);
    Ok(Reply::json(201, app))
}
