//! GitHub sign-in's calls: the code exchanged for a user token on the website
//! (`POST {GITHUB_WEB_URL}/login/oauth/access_token`), then, with that token, `GET /user` and
//! the membership of the organization (`GET /orgs/{org}/members/{username}`: 204) or of the
//! team (`GET /orgs/{org}/teams/{team}/memberships/{username}`: `state` `active`).

use http::StatusCode;
use octocrab::Octocrab;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::OAuthClient;

/// Whether the person may see the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Member(String),
    NotMember(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// GitHub refused the code or the client (bad, expired or reused code; wrong secret).
    #[error("{0}")]
    Refused(String),
    /// GitHub could not be asked, or answered something unexpected.
    #[error("{0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> SignInError {
    SignInError::Unavailable(e.to_string())
}

fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct UserAnswer {
    login: String,
}

#[derive(Deserialize)]
struct TeamMembership {
    state: String,
}

/// The whole check after the callback. The user's token is used here and dropped.
pub async fn sign_in(
    oauth: &OAuthClient,
    code: &str,
    org: &str,
    team: Option<&str>,
) -> Result<Outcome, SignInError> {
    let web = Octocrab::builder()
        .base_uri(oauth.web_url.as_str())
        .map_err(unavailable)?
        .add_header(http::header::ACCEPT, "application/json".to_string())
        .build()
        .map_err(unavailable)?;
    let res = web
        ._post(
            "/login/oauth/access_token",
            Some(&serde_json::json!({
                "client_id": oauth.client_id,
                "client_secret": oauth.client_secret.expose_secret(),
                "code": code,
            })),
        )
        .await
        .map_err(unavailable)?;
    let status = res.status();
    let text = web.body_to_string(res).await.map_err(unavailable)?;
    if !status.is_success() {
        return Err(unavailable(format!("the token endpoint answered {status}")));
    }
    let answer: TokenAnswer = serde_json::from_str(&text)
        .map_err(|e| unavailable(format!("the token endpoint answered: {e}")))?;
    let token = match (answer.access_token, answer.error) {
        (Some(t), None) if !t.is_empty() => t,
        (_, Some(e)) => return Err(SignInError::Refused(e)),
        _ => return Err(unavailable("the token endpoint gave no token")),
    };
    let api = Octocrab::builder()
        .base_uri(oauth.api_url.as_str())
        .map_err(unavailable)?
        .user_access_token(token)
        .build()
        .map_err(unavailable)?;
    let res = api._get("/user").await.map_err(unavailable)?;
    if !res.status().is_success() {
        return Err(unavailable(format!("GET /user answered {}", res.status())));
    }
    let user: UserAnswer =
        serde_json::from_str(&api.body_to_string(res).await.map_err(unavailable)?)
            .map_err(|e| unavailable(format!("GET /user: {e}")))?;
    let login = user.login;
    let member = match team {
        None => {
            let res = api
                ._get(format!("/orgs/{}/members/{}", seg(org), seg(&login)))
                .await
                .map_err(unavailable)?;
            res.status() == StatusCode::NO_CONTENT
        }
        Some(team) => {
            let res = api
                ._get(format!(
                    "/orgs/{}/teams/{}/memberships/{}",
                    seg(org),
                    seg(team),
                    seg(&login)
                ))
                .await
                .map_err(unavailable)?;
            if res.status() == StatusCode::OK {
                let m: TeamMembership =
                    serde_json::from_str(&api.body_to_string(res).await.map_err(unavailable)?)
                        .map_err(|e| unavailable(format!("team membership: {e}")))?;
                m.state == "active"
            } else {
                false
            }
        }
    };
    Ok(if member {
        Outcome::Member(login)
    } else {
        Outcome::NotMember(login)
    })
}
