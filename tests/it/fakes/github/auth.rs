//! Authentication like GitHub's: App JWTs (RS256, checked against the real clock) and
//! installation tokens (checked against the fake's clock).

use chrono::{TimeDelta, Utc};
use serde_json::Value;

use super::TokenKind;
use super::state::{State, TokenRec};

pub(crate) const JWT_DECODE: &str = "A JSON web token could not be decoded";
const JWT_EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const JWT_TOO_LONG: &str = "'Expiration time' claim ('exp') is too far in the future";
const JWT_IAT: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
const JWT_ISS: &str = "'Issuer' claim ('iss') must be an Integer";

/// What the `Authorization` header amounts to.
pub(crate) enum Auth {
    None,
    /// A JWT; `Err` carries the reply GitHub gives when it is used.
    Jwt {
        verified: bool,
        result: Result<(), (u16, &'static str)>,
    },
    Installation {
        installation: u64,
        usable: bool,
        repositories: Option<Vec<String>>,
    },
    /// A user access token from GitHub sign-in.
    User {
        login: String,
    },
    Unknown,
}

impl Auth {
    pub fn kind(&self) -> TokenKind {
        match self {
            Auth::None => TokenKind::None,
            Auth::Jwt { verified: true, .. } => TokenKind::AppJwt,
            Auth::Jwt { .. } => TokenKind::BadJwt,
            Auth::Installation { installation, .. } => TokenKind::Installation {
                installation_id: *installation,
            },
            Auth::User { login } => TokenKind::User {
                login: login.clone(),
            },
            Auth::Unknown => TokenKind::Unknown,
        }
    }
}

pub(crate) fn authenticate(st: &State, header: Option<&str>) -> Auth {
    let Some(h) = header else { return Auth::None };
    let (scheme, cred) = h.trim().split_once(' ').unwrap_or(("", h));
    let cred = cred.trim();
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
        return Auth::Unknown;
    }
    if cred.split('.').count() == 3 && cred.starts_with("ey") {
        return check_jwt(st, cred);
    }
    if let Some(login) = st.oauth.tokens.get(cred) {
        return Auth::User {
            login: login.clone(),
        };
    }
    match st.tokens.get(cred) {
        Some(t) => Auth::Installation {
            installation: t.installation,
            usable: !t.revoked && t.expires_at > st.now(),
            repositories: t.repositories.clone(),
        },
        None => Auth::Unknown,
    }
}

fn check_jwt(st: &State, token: &str) -> Auth {
    let bad = |verified, code, msg| Auth::Jwt {
        verified,
        result: Err((code, msg)),
    };
    let Some(app) = &st.app else {
        return bad(false, 401, JWT_DECODE);
    };
    match jsonwebtoken::decode_header(token) {
        Ok(h) if h.alg == jsonwebtoken::Algorithm::RS256 => {}
        _ => return bad(false, 401, JWT_DECODE),
    }
    let Ok(data) = jsonwebtoken::dangerous::insecure_decode::<Value>(token) else {
        return bad(false, 401, JWT_DECODE);
    };
    let claims = data.claims;
    let iss_matches = match claims.get("iss") {
        Some(Value::Number(n)) => n.as_u64() == Some(app.id),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() || s == &app.client_id => {
            s == &app.id.to_string() || s == &app.client_id
        }
        _ => return bad(false, 401, JWT_ISS),
    };
    if !iss_matches {
        return bad(false, 404, "Integration not found");
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    if jsonwebtoken::decode::<Value>(token, &app.key, &validation).is_err() {
        return bad(false, 401, JWT_DECODE);
    }
    // JWTs are signed with the client's (real) clock, so they are checked against it.
    let now = Utc::now().timestamp();
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return bad(true, 401, JWT_IAT);
    };
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return bad(true, 401, JWT_EXPIRED);
    };
    if iat > now + 60 {
        return bad(true, 401, JWT_IAT);
    }
    if exp <= now - 60 {
        return bad(true, 401, JWT_EXPIRED);
    }
    if exp - iat > 600 || exp > now + 660 {
        return bad(true, 401, JWT_TOO_LONG);
    }
    Auth::Jwt {
        verified: true,
        result: Ok(()),
    }
}

/// Issue an installation token valid for one hour of the fake's clock.
pub(crate) fn mint_token(
    st: &mut State,
    installation: u64,
    repositories: Option<Vec<String>>,
) -> String {
    let token = format!(
        "ghs_{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..4]
    );
    let expires_at = st.now() + TimeDelta::hours(1);
    st.tokens.insert(
        token.clone(),
        TokenRec {
            installation,
            expires_at,
            repositories,
            revoked: false,
        },
    );
    token
}
