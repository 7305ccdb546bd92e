//! Verifies GitHub Actions OIDC tokens (RS256 JWTs) for `GET /api/v1/check`: the signature
//! against the issuer's JSON Web Key Set (fetched from `[check] jwks_url`, cached for
//! `keys_ttl`, fetched again at once for an unknown `kid`, at most once a minute), then `iss`,
//! `aud`, `exp` and `nbf`. What the caller may ask about comes only from the verified
//! `repository_id` claim: names are reused after a rename or a transfer, ids are not.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::check::CheckSettings;

/// The least time between two fetches of the key set caused by unknown `kid`s (anyone can send
/// a token with a made-up `kid`: it must not make Lever hammer the issuer).
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

/// What a verified token says about the workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The repository's id: what the answer is about.
    pub repository_id: u64,
    /// The repository's name when the token was minted (informational only).
    pub repository: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's algorithm must be RS256")]
    Algorithm,
    #[error("the token's key {0:?} is not in the issuer's key set")]
    UnknownKey(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has no valid repository_id claim")]
    NoRepository,
    /// The key set could not be fetched: the check cannot be made now (503).
    #[error("the issuer's key set is unavailable: {0}")]
    KeysUnavailable(String),
}

impl OidcError {
    /// Whether the fault is Lever's side (503), not the token's (401).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, OidcError::KeysUnavailable(_))
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    repository_id: Option<serde_json::Value>,
    #[serde(default)]
    repository: Option<String>,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Option<(JwkSet, Instant)>,
    /// When an unknown `kid` last caused a fetch.
    last_refetch: Option<Instant>,
}

/// Verifies tokens; one per process (the key cache is shared).
#[derive(Debug)]
pub struct Verifier {
    settings: CheckSettings,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl Verifier {
    pub fn new(settings: CheckSettings) -> Verifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default TLS builds");
        Verifier {
            settings,
            http,
            cache: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &CheckSettings {
        &self.settings
    }

    async fn fetch(&self) -> Result<JwkSet, OidcError> {
        let unavailable = |e: String| OidcError::KeysUnavailable(e);
        let resp = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.settings.jwks_url)))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!(
                "{} answered {}",
                self.settings.jwks_url,
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.settings.jwks_url)))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            unavailable(format!(
                "{} is not a JSON Web Key Set: {e}",
                self.settings.jwks_url
            ))
        })
    }

    /// The decoding key for `kid`: from the cache while fresh, else fetched (an unknown `kid`
    /// fetches again unless the last fetch was under a minute ago).
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        let ttl = self
            .settings
            .keys_ttl
            .to_std()
            .unwrap_or(Duration::from_secs(3600));
        let mut cache = self.cache.lock().await;
        let fresh = cache
            .keys
            .as_ref()
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(k, _)| k.clone());
        let find = |set: &JwkSet| set.find(kid).cloned();
        let jwk = match fresh.as_ref().and_then(find) {
            Some(j) => j,
            None => {
                // Fresh keys without this kid: fetch again (the issuer may have rotated), but
                // at most once a minute for unknown kids.
                if fresh.is_some() {
                    if cache
                        .last_refetch
                        .is_some_and(|at| at.elapsed() < REFETCH_AT_MOST_EVERY)
                    {
                        return Err(OidcError::UnknownKey(kid.to_string()));
                    }
                    cache.last_refetch = Some(Instant::now());
                }
                let set = self.fetch().await?;
                let found = find(&set);
                cache.keys = Some((set, Instant::now()));
                found.ok_or_else(|| OidcError::UnknownKey(kid.to_string()))?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::KeysUnavailable(e.to_string()))
    }

    /// Verifies `token` and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(OidcError::Missing);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::Algorithm);
        }
        let kid = header
            .kid
            .ok_or_else(|| OidcError::Malformed("no kid in the header".into()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.audience]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECONDS;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        let repository_id = match data.claims.repository_id {
            Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        }
        .ok_or(OidcError::NoRepository)?;
        Ok(Identity {
            repository_id,
            repository: data.claims.repository.unwrap_or_default(),
        })
    }
}
