//! `GET /api/v1/check?target_env=ENV`: the shift-left check for the repository a GitHub
//! Actions workflow runs in (see [`crate::check`]).
//!
//! Anyone can call it, so the caller is identified only by its OIDC token (`Authorization:
//! Bearer`), verified against the configured issuer's keys ([`oidc::Verifier`]); the answer is
//! about the repository whose *id* the token carries, found among the repositories Lever routes
//! findings to (OWNERS and the fallback repository) and can reach through its installation. The
//! name in the token is never trusted: a name can be taken by another repository after a rename.
//!
//! 401: no token, or a token that does not verify (signature, unknown key, issuer, audience,
//! expiry). 403: a repository Lever does not route to or cannot reach. 400: an unknown target
//! environment. 503: the key set, GitHub or the store cannot be reached. Every error is
//! `{"error": "..."}`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error;
use crate::app::App;
use crate::check::oidc::{OidcError, Verifier};
use crate::check::{self, ApprovedException};
use crate::config::{Config, RepoName};
use crate::domain::Finding;

#[derive(Debug, Deserialize)]
pub(super) struct CheckQuery {
    target_env: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The verifier for the `[check]` settings in force (kept, with its keys, while they hold).
fn verifier(app: &App, config: &Config) -> Arc<Verifier> {
    let mut slot = app.caches.oidc.lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(v) if *v.settings() == config.settings.check => v.clone(),
        _ => {
            let v = Arc::new(Verifier::new(config.settings.check.clone()));
            *slot = Some(v.clone());
            v
        }
    }
}

/// The repositories Lever routes findings to: OWNERS lines and the fallback repository.
fn known_repos(config: &Config) -> Vec<RepoName> {
    let mut repos: Vec<RepoName> = config
        .owners
        .rules
        .iter()
        .map(|r| r.repo.clone())
        .chain([config.settings.github.fallback_repo.clone()])
        .collect();
    repos.sort_by_key(|r| r.to_string().to_ascii_lowercase());
    repos.dedup_by(|a, b| a.same_as(&b.to_string()));
    repos
}

/// Which known repository has `id` (as GitHub says now), `Ok(None)` when none does.
async fn repo_by_id(app: &App, config: &Config, id: u64) -> Result<Option<RepoName>, String> {
    let mut unreachable = None;
    for repo in known_repos(config) {
        match app.github.repo_info(&repo.to_string()).await {
            Ok(info) if info.id == id => return Ok(Some(repo)),
            Ok(_) => {}
            Err(e) if e.is_refusal() => {}
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "check: cannot look up a repository");
                unreachable = Some(e.to_string());
            }
        }
    }
    match unreachable {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Every finding snapshot Lever holds for `repo`'s groups and every ungrouped one (the
/// projection routes them again), and the exceptions in force in `repo`'s groups.
async fn load(
    app: &App,
    repo: &RepoName,
) -> Result<(Vec<Finding>, Vec<ApprovedException>), crate::store::StoreError> {
    let mut findings: Vec<Finding> = app
        .store
        .ungrouped_findings(None)
        .await?
        .into_iter()
        .map(|r| r.finding)
        .collect();
    let mut exceptions = Vec::new();
    for g in app.store.list_groups(None).await? {
        if !repo.same_as(&g.repo) {
            continue;
        }
        findings.extend(
            app.store
                .findings_in_group(&g.group_key)
                .await?
                .into_iter()
                .map(|r| r.finding),
        );
        if let (Some(e), Some(control)) = (g.state().exception, g.data.control_id.clone()) {
            exceptions.push(ApprovedException {
                control_id: control,
                repo: repo.clone(),
                environment: g.data.environment.clone(),
                approver: e.approver,
                expires_at: e.expires_at,
            });
        }
    }
    Ok((findings, exceptions))
}

pub(super) async fn check(
    State(app): State<App>,
    Query(q): Query<CheckQuery>,
    headers: HeaderMap,
) -> Response {
    let config = app.live_config.current();
    let Some(token) = bearer(&headers) else {
        return unauthorized(OidcError::Missing);
    };
    let identity = match verifier(&app, &config).verify(token).await {
        Ok(i) => i,
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "check: cannot verify OIDC tokens");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token issuer's keys cannot be fetched now; retry later",
            );
        }
        Err(e) => return unauthorized(e),
    };
    let Some(target_env) = q.target_env.filter(|e| !e.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "target_env is required");
    };
    let repo = match repo_by_id(&app, &config, identity.repository_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!(repository_id = identity.repository_id, repository = %identity.repository, "check: refused an unknown repository");
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "repository id {} is not a repository Lever routes findings to, or the App cannot reach it",
                    identity.repository_id
                ),
            );
        }
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitHub cannot be reached to identify the repository; retry later",
            );
        }
    };
    let (findings, exceptions) = match load(&app, &repo).await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "check: the store failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Lever's store is unavailable; retry later",
            );
        }
    };
    match check::project(
        &config,
        &findings,
        &exceptions,
        &repo,
        &target_env,
        app.clock.now(),
    ) {
        Ok(p) => (StatusCode::OK, axum::Json(p)).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn unauthorized(e: OidcError) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, e.to_string());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_table() {
        for (value, want) in [
            (Some("Bearer abc.def.ghi"), Some("abc.def.ghi")),
            (Some("bearer  abc "), Some("abc")),
            (Some("Basic abc"), None),
            (Some("Bearer "), None),
            (Some("abc"), None),
            (None, None),
        ] {
            let mut h = HeaderMap::new();
            if let Some(v) = value {
                h.insert(header::AUTHORIZATION, v.parse().unwrap());
            }
            assert_eq!(bearer(&h), want, "{value:?}");
        }
    }

    #[test]
    fn known_repos_are_the_owners_repositories_and_the_fallback_once_each() {
        let config = Config::from_texts(
            std::path::Path::new("."),
            Some((
                "lever.toml".into(),
                "[github]\nfallback_repo = \"acme/security\"\n".into(),
            )),
            Some((
                "OWNERS".into(),
                "* acme/security @sam\naccount:111111111111 acme/payments @a\naccount:222222222222 ACME/Payments @b\n"
                    .into(),
            )),
            vec![],
        )
        .unwrap();
        let repos: Vec<String> = known_repos(&config).iter().map(|r| r.to_string()).collect();
        assert_eq!(repos, ["acme/payments", "acme/security"]);
    }
}
