//! Signed cookies for GitHub sign-in: the session (who, until when) and the short-lived OAuth
//! `state` (against CSRF on the callback). Pure: the key and `now` are arguments.
//!
//! A cookie value is `base64url(payload JSON) "." hex(HMAC-SHA256(key, purpose "." payload))`.
//! The purpose (`session`, `state`) is part of what is signed, so one kind of cookie is never
//! accepted as the other. Anything that does not verify, does not decode or has expired is
//! refused, all the same way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lever_session";
/// The OAuth state cookie's name.
pub const STATE_COOKIE: &str = "lever_oauth_state";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::hours(8);
/// How long a sign-in may take between the redirect to GitHub and the callback.
pub const STATE_TTL: Duration = Duration::minutes(10);

/// What a cookie is for (signed with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    State,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Session => "session",
            Purpose::State => "state",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    /// The login (session) or the random state (state).
    v: String,
    /// Expiry, Unix seconds.
    e: i64,
}

/// The key that signs cookies (32 bytes).
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

impl SessionKey {
    /// The key derived from `secret` (`LEVER_SESSION_KEY`, or the webhook secret) under a
    /// label of its own, so the cookie key is never the secret itself.
    pub fn derive(secret: &[u8]) -> SessionKey {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"lever dashboard session key v1");
        SessionKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, purpose: Purpose, payload: &str) -> hmac::Hmac<Sha256> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(purpose.label().as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }

    /// A cookie value carrying `value` for `purpose` until `expires`.
    pub fn sign(&self, purpose: Purpose, value: &str, expires: DateTime<Utc>) -> String {
        let payload = Payload {
            v: value.to_string(),
            e: expires.timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("serializes"));
        let tag = hex::encode(self.mac(purpose, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The value of a cookie signed for `purpose` that has not expired at `now`; `None` for
    /// anything else (forged, tampered, another purpose, expired, malformed).
    pub fn verify(&self, purpose: Purpose, cookie: &str, now: DateTime<Utc>) -> Option<String> {
        let (payload, tag) = cookie.trim().split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        self.mac(purpose, payload).verify_slice(&tag).ok()?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let p: Payload = serde_json::from_slice(&bytes).ok()?;
        (p.e > now.timestamp()).then_some(p.v)
    }
}

/// The value of cookie `name` in a `Cookie` header (the first one of that name).
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then_some(v.trim())
    })
}

/// A `Set-Cookie` value: `HttpOnly; Secure; SameSite=Lax`, for `max_age` (zero: removed).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        max_age.num_seconds().max(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn what_verifies_and_what_does_not() {
        let key = SessionKey::derive(b"webhook-secret");
        let other = SessionKey::derive(b"another-secret");
        let now = t("2026-11-23T12:00:00Z");
        let good = key.sign(Purpose::Session, "alice", now + SESSION_TTL);
        let (payload, tag) = good.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"v":"mallory","e":9999999999}"#);
        let mut flipped = tag.to_string();
        flipped.replace_range(0..1, if tag.starts_with('0') { "1" } else { "0" });
        type Row<'a> = (
            &'a str,
            String,
            Purpose,
            DateTime<Utc>,
            &'a SessionKey,
            Option<&'a str>,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("valid", good.clone(), Purpose::Session, now, &key, Some("alice")),
            ("just before expiry", good.clone(), Purpose::Session, now + SESSION_TTL - Duration::seconds(1), &key, Some("alice")),
            ("expired", good.clone(), Purpose::Session, now + SESSION_TTL, &key, None),
            ("another key", good.clone(), Purpose::Session, now, &other, None),
            ("as a state cookie", good.clone(), Purpose::State, now, &key, None),
            ("payload swapped", format!("{forged_payload}.{tag}"), Purpose::Session, now, &key, None),
            ("tag flipped", format!("{payload}.{flipped}"), Purpose::Session, now, &key, None),
            ("no tag", payload.to_string(), Purpose::Session, now, &key, None),
            ("empty", String::new(), Purpose::Session, now, &key, None),
            ("tag not hex", format!("{payload}.zz"), Purpose::Session, now, &key, None),
        ];
        let wrong: Vec<String> = rows
            .into_iter()
            .filter_map(|(name, cookie, purpose, at, k, want)| {
                let got = k.verify(purpose, &cookie, at);
                (got.as_deref() != want).then(|| format!("{name}: {got:?}, expected {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = "a=1; lever_session=xyz; lever_session_old=no";
        assert_eq!(cookie(h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie("lever_session_old=no", SESSION_COOKIE), None);
        let set = set_cookie(SESSION_COOKIE, "v", "/", SESSION_TTL);
        assert_eq!(
            set,
            "lever_session=v; Path=/; Max-Age=28800; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn the_key_is_derived_not_the_secret() {
        let key = SessionKey::derive(b"s");
        assert_ne!(&key.0[..1], b"s");
        assert_eq!(format!("{key:?}"), "SessionKey([REDACTED])");
    }
}
