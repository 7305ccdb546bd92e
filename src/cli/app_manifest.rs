//! `lever app manifest`: the GitHub App manifest that creates Lever's App (see `lever setup`
//! for the flow that posts it to GitHub).
//!
//! The manifest asks for exactly what Lever uses: the events of
//! [`HANDLED_EVENTS`](crate::github::webhook::HANDLED_EVENTS) and the permissions they and
//! Lever's API calls need. `installation*` events reach every App without a subscription
//! (GitHub refuses them in `default_events`), so they are not listed.
//!
//! GitHub's manifest parameters: <https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest#github-app-manifest-parameters>.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::Failure;
use crate::github::webhook::{CONFIG_SOURCE_EVENTS, EVENT_PERMISSIONS, HANDLED_EVENTS};

/// The path of the webhook endpoint on Lever's public base URL.
pub const WEBHOOK_PATH: &str = "/webhooks/github";

/// The App's default name.
pub const DEFAULT_APP_NAME: &str = "Lever";

/// The repository permissions Lever always needs, with why.
pub const PERMISSIONS: &[(&str, &str, &str)] = &[
    (
        "issues",
        "write",
        "open, label, assign, comment on and close issues; the issues and issue_comment events",
    ),
    (
        "metadata",
        "read",
        "repositories, collaborators' permissions (GitHub grants it to every App)",
    ),
    (
        "members",
        "read",
        "team membership of @org/team approvers (organization permission)",
    ),
];

/// The permissions Lever needs in addition when its configuration lives in a repository
/// (`[source]`).
pub const CONFIG_SOURCE_PERMISSIONS: &[(&str, &str, &str)] = &[
    (
        "contents",
        "read",
        "read lever.toml and OWNERS from the configuration repository; the push event",
    ),
    (
        "checks",
        "write",
        "refuse an invalid configuration with a check run on the pushed commit",
    ),
];

/// What the manifest is made of.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// The App's name on GitHub (unique on the host).
    pub name: String,
    /// Lever's public base URL (`https://lever.example.com`): webhooks go to
    /// `{url}/webhooks/github`.
    pub url: String,
    /// The App's homepage (`url` in the manifest); default: `url`.
    pub homepage: Option<String>,
    /// Where GitHub sends the browser with `?code=…&state=…` once the App exists
    /// (`lever setup`'s local callback).
    pub redirect_url: Option<String>,
    /// Whether the configuration lives in a repository (`[source]`): adds `push`, contents
    /// read and checks write.
    pub config_source: bool,
}

/// Checks a public base URL and drops its trailing slashes.
pub fn base_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("--url {url:?} must be an https:// URL (Lever's public address)"))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains(['?', '#']) {
        return Err(format!(
            "--url {url:?} must be a base URL such as https://lever.example.com"
        ));
    }
    Ok(url.to_string())
}

/// The events the App subscribes to.
pub fn events(config_source: bool) -> Vec<&'static str> {
    let mut events: Vec<&'static str> = HANDLED_EVENTS
        .iter()
        .copied()
        .filter(|e| config_source || !CONFIG_SOURCE_EVENTS.contains(e))
        .collect();
    events.sort_unstable();
    events
}

/// The permissions the App asks for (name → `read` / `write`).
pub fn permissions(config_source: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let extra = if config_source {
        CONFIG_SOURCE_PERMISSIONS
    } else {
        &[]
    };
    for (name, level, _) in PERMISSIONS.iter().chain(extra) {
        out.insert((*name).to_string(), json!(level));
    }
    // Every subscribed event's permission is granted (at least read).
    for event in events(config_source) {
        for (e, p) in EVENT_PERMISSIONS {
            if *e == event && !out.contains_key(*p) {
                out.insert((*p).to_string(), json!("read"));
            }
        }
    }
    out
}

/// The manifest, as GitHub's `POST /settings/apps/new` form takes it (`manifest=` JSON).
pub fn manifest(o: &ManifestOptions) -> Value {
    let mut m = json!({
        "name": o.name,
        "url": o.homepage.as_deref().unwrap_or(&o.url),
        "description": "Turns AWS Security Hub findings into GitHub issues owned by the engineer on call.",
        "hook_attributes": { "url": format!("{}{WEBHOOK_PATH}", o.url), "active": true },
        // GitHub sign-in to the dashboard (`[dashboard] github_org`) comes back here.
        "callback_urls": [format!("{}/auth/github/callback", o.url)],
        "public": false,
        "default_permissions": permissions(o.config_source),
        "default_events": events(o.config_source),
    });
    if let Some(r) = &o.redirect_url {
        m["redirect_url"] = json!(r);
    }
    m
}

/// Whether the configuration directory's `lever.toml` names a configuration repository.
pub fn config_source_in(dir: &Path) -> Result<bool, Failure> {
    crate::config::source::read_bootstrap(dir)
        .map(|s| s.is_some())
        .map_err(|errors| {
            for e in &errors {
                eprintln!("{e}");
            }
            Failure::usage(format!("{} error(s) in {}", errors.len(), dir.display()))
        })
}

pub(super) fn run(
    url: &str,
    name: &str,
    homepage: Option<&str>,
    redirect_url: Option<&str>,
    config: Option<&Path>,
) -> Result<(), Failure> {
    let url = base_url(url).map_err(Failure::usage)?;
    let config_source = match config {
        Some(dir) => config_source_in(dir)?,
        None => false,
    };
    let m = manifest(&ManifestOptions {
        name: name.to_string(),
        url,
        homepage: homepage.map(str::to_string),
        redirect_url: redirect_url.map(str::to_string),
        config_source,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&m).expect("a manifest serializes")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented manifest parameters (and `hook_attributes`' members).
    const MANIFEST_PARAMETERS: &[&str] = &[
        "name",
        "url",
        "hook_attributes",
        "redirect_url",
        "callback_urls",
        "setup_url",
        "description",
        "public",
        "default_events",
        "default_permissions",
        "request_oauth_on_install",
        "setup_on_update",
    ];

    fn options(config_source: bool) -> ManifestOptions {
        ManifestOptions {
            name: "Lever".into(),
            url: base_url("https://lever.example.com/").unwrap(),
            homepage: None,
            redirect_url: Some("http://127.0.0.1:3000/callback".into()),
            config_source,
        }
    }

    #[test]
    fn the_manifest_uses_only_documented_parameters() {
        for config_source in [false, true] {
            let m = manifest(&options(config_source));
            for key in m.as_object().unwrap().keys() {
                assert!(MANIFEST_PARAMETERS.contains(&key.as_str()), "{key}");
            }
            let hook = m["hook_attributes"].as_object().unwrap();
            assert!(hook.keys().all(|k| k == "url" || k == "active"), "{hook:?}");
            assert_eq!(
                m["hook_attributes"]["url"],
                "https://lever.example.com/webhooks/github"
            );
            assert_eq!(m["public"], false);
            assert_eq!(m["redirect_url"], "http://127.0.0.1:3000/callback");
            for (_, level) in m["default_permissions"].as_object().unwrap() {
                assert!(level == "read" || level == "write", "{level}");
            }
        }
    }

    #[test]
    fn events_and_permissions_are_exactly_what_lever_uses() {
        let plain = manifest(&options(false));
        assert_eq!(plain["default_events"], json!(["issue_comment", "issues"]));
        assert_eq!(
            plain["default_permissions"],
            json!({"issues": "write", "metadata": "read", "members": "read"})
        );
        let source = manifest(&options(true));
        assert_eq!(
            source["default_events"],
            json!(["issue_comment", "issues", "push"])
        );
        assert_eq!(
            source["default_permissions"],
            json!({"issues": "write", "metadata": "read", "members": "read",
                   "contents": "read", "checks": "write"})
        );
        // Every handled event is subscribed (with a configuration repository), none else.
        let mut handled: Vec<&str> = HANDLED_EVENTS.to_vec();
        handled.sort_unstable();
        assert_eq!(events(true), handled);
        // Every event has its permission.
        for m in [&plain, &source] {
            for e in m["default_events"].as_array().unwrap() {
                let (_, p) = EVENT_PERMISSIONS
                    .iter()
                    .find(|(name, _)| e == name)
                    .unwrap_or_else(|| panic!("{e} has no permission"));
                assert!(m["default_permissions"].get(*p).is_some(), "{e} needs {p}");
            }
            assert!(
                !m["default_events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().starts_with("installation")),
            );
        }
    }

    #[test]
    fn base_urls_must_be_http_addresses() {
        assert_eq!(
            base_url(" https://lever.example.com// ").unwrap(),
            "https://lever.example.com"
        );
        for bad in [
            "lever.example.com",
            "https://",
            "https://a b",
            "https://x/?q=1",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
