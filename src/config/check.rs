//! `[check]`: how `GET /api/v1/check` verifies the GitHub Actions OIDC tokens of the
//! workflows asking.
//!
//! ```toml
//! [check]
//! issuer = "https://token.actions.githubusercontent.com"        # the default
//! jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"  # default: issuer + /.well-known/jwks
//! audience = "lever"                                           # the default
//! keys_ttl = "1h"                                              # how long fetched keys are trusted
//! ```
//!
//! GitHub Enterprise Server issues its tokens from `https://HOST/_services/token`. The audience
//! is what the workflow asks for (`lever check` asks for `lever` unless told otherwise): a
//! token minted for another service is refused.

use chrono::Duration;
use serde::Serialize;

use super::spanned::{Diag, Table};

pub const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const DEFAULT_AUDIENCE: &str = "lever";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckSettings {
    /// The `iss` a token must carry.
    pub issuer: String,
    /// Where the issuer's signing keys are (a JSON Web Key Set).
    pub jwks_url: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// How long fetched keys are used before they are fetched again (an unknown `kid` fetches
    /// them at once, at most once a minute).
    #[serde(skip)]
    pub keys_ttl: Duration,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            issuer: DEFAULT_ISSUER.into(),
            jwks_url: jwks_for(DEFAULT_ISSUER),
            audience: DEFAULT_AUDIENCE.into(),
            keys_ttl: Duration::hours(1),
        }
    }
}

fn jwks_for(issuer: &str) -> String {
    format!("{}/.well-known/jwks", issuer.trim_end_matches('/'))
}

/// An `https://` URL, or `http://` on loopback (tests, a local key set).
fn url_ok(s: &str) -> bool {
    match url::Url::parse(s) {
        Ok(u) => match u.scheme() {
            "https" => u.host_str().is_some(),
            "http" => matches!(
                u.host_str(),
                Some("127.0.0.1") | Some("localhost") | Some("[::1]")
            ),
            _ => false,
        },
        Err(_) => false,
    }
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> CheckSettings {
    let mut out = CheckSettings::default();
    let Some(mut t) = root.table(d, "check") else {
        return out;
    };
    let mut jwks_given = false;
    if let Some(s) = t.string(d, "issuer") {
        if url_ok(s.get_ref()) {
            out.issuer = s.get_ref().trim_end_matches('/').to_string();
        } else {
            d.error(
                s.span(),
                format!(
                    "check.issuer {:?} must be an https:// URL (http:// only on loopback)",
                    s.get_ref()
                ),
            );
        }
    }
    if let Some(s) = t.string(d, "jwks_url") {
        jwks_given = true;
        if url_ok(s.get_ref()) {
            out.jwks_url = s.into_inner();
        } else {
            d.error(
                s.span(),
                format!(
                    "check.jwks_url {:?} must be an https:// URL (http:// only on loopback)",
                    s.get_ref()
                ),
            );
        }
    }
    if !jwks_given {
        out.jwks_url = jwks_for(&out.issuer);
    }
    if let Some(s) = t.string(d, "audience") {
        if s.get_ref().trim().is_empty() {
            d.error(s.span(), "check.audience must not be empty");
        } else {
            out.audience = s.into_inner();
        }
    }
    if let Some(s) = t.string(d, "keys_ttl") {
        match super::parse_duration(s.get_ref()) {
            Ok(v) if v >= Duration::minutes(1) && v <= Duration::days(1) => out.keys_ttl = v,
            Ok(_) => d.error(s.span(), "check.keys_ttl must be between 1m and 1d"),
            Err(e) => d.error(s.span(), format!("check.keys_ttl: {e}")),
        }
    }
    t.finish(d);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(extra: &str) -> Result<CheckSettings, String> {
        let toml = format!("[github]\nfallback_repo = \"acme/security\"\n{extra}");
        super::super::settings::parse("lever.toml", &toml, Path::new("."))
            .map(|s| s.check)
            .map_err(|e| {
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }

    #[test]
    fn defaults() {
        let c = load("").unwrap();
        assert_eq!(c, CheckSettings::default());
        assert_eq!(
            c.jwks_url,
            "https://token.actions.githubusercontent.com/.well-known/jwks"
        );
    }

    #[test]
    fn jwks_follows_the_issuer_unless_given() {
        let c = load("[check]\nissuer = \"https://ghes.example.com/_services/token/\"\n").unwrap();
        assert_eq!(c.issuer, "https://ghes.example.com/_services/token");
        assert_eq!(
            c.jwks_url,
            "https://ghes.example.com/_services/token/.well-known/jwks"
        );
        let c = load(
            "[check]\nissuer = \"http://127.0.0.1:9\"\njwks_url = \"http://127.0.0.1:9/keys\"\naudience = \"https://lever.example.com\"\nkeys_ttl = \"10m\"\n",
        )
        .unwrap();
        assert_eq!(c.jwks_url, "http://127.0.0.1:9/keys");
        assert_eq!(c.audience, "https://lever.example.com");
        assert_eq!(c.keys_ttl, Duration::minutes(10));
    }

    #[test]
    fn errors_name_the_line() {
        for (extra, want) in [
            (
                "[check]\nissuer = \"http://evil.example.com\"\n",
                "lever.toml:4: check.issuer",
            ),
            (
                "[check]\njwks_url = \"ftp://x\"\n",
                "lever.toml:4: check.jwks_url",
            ),
            (
                "[check]\naudience = \" \"\n",
                "lever.toml:4: check.audience must not be empty",
            ),
            (
                "[check]\nkeys_ttl = \"5s\"\n",
                "lever.toml:4: check.keys_ttl must be between",
            ),
            ("[check]\naudiences = \"x\"\n", "lever.toml:4"),
        ] {
            let e = load(extra).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
    }
}
