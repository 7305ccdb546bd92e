//! HTTP: EventBridge ingest, GitHub webhooks, health, the shift-left check (`/api/v1/check`), the dashboard ([`dashboard`]). Handlers only verify, parse and record;
//! side effects happen later in the workers, from durable state. Records are written in
//! batches ([`batch`], [`intake`]): many requests, one transaction, and every answer only
//! after its batch committed.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;

use std::sync::Arc;

use crate::app::App;
use crate::config::EdgeSettings;
use crate::metrics::Metrics;

pub mod batch;
mod check;
pub mod dashboard;
pub mod edge;
mod ingest;
pub mod intake;
pub mod metrics;
mod webhook;
pub use webhook::{VerifiedWebhook, signature_ok};

/// Largest EventBridge request accepted (EventBridge events are at most 256 KiB; a
/// GetFindings page of 100 findings can be larger).
pub const MAX_INGEST_BYTES: usize = 6 * 1024 * 1024;
/// GitHub caps webhook payloads at 25 MB.
pub const MAX_WEBHOOK_BYTES: usize = 25 * 1024 * 1024;

pub fn router(app: App) -> Router {
    let measured = |endpoint: &'static str| {
        // Only the metrics: the state is cloned for every request, and a whole `App` is a
        // score of reference counts to take and give back.
        axum::middleware::from_fn_with_state(
            (app.metrics.clone(), endpoint),
            |State((metrics, endpoint)): State<(Arc<Metrics>, &'static str)>,
             req: axum::extract::Request,
             next: axum::middleware::Next| async move {
                let started = std::time::Instant::now();
                let response = next.run(req).await;
                metrics.http_request(endpoint, response.status().as_u16(), started.elapsed());
                response
            },
        )
    };
    Router::new()
        .route(
            "/events/securityhub",
            post(ingest::receive).layer(measured("intake")),
        )
        .route(
            "/webhooks/github",
            post(webhook::receive).layer(measured("webhook")),
        )
        .route("/api/v1/check", get(check::check))
        .route("/", get(dashboard::page))
        .route("/auth/github/login", get(dashboard::login))
        .route("/auth/github/callback", get(dashboard::callback))
        .route(
            "/auth/logout",
            get(dashboard::logout).post(dashboard::logout),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::protected))
        .with_state(app)
}

/// Serves until `shutdown` resolves, with the default limits at the edge (see [`edge`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    edge::serve(listener, app, &EdgeSettings::default(), shutdown).await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// A body read under a large-body slot, held until the request is answered.
pub type BodySlot = Option<tokio::sync::OwnedSemaphorePermit>;

/// Reads the body, refusing more than `limit` bytes (413), by Content-Length first. A body
/// larger than [`edge::SMALL_BODY_BYTES`], or of unknown length, needs one of the edge's
/// large-body slots (503 with `Retry-After` when none is free); keep the slot until the
/// request is answered, as the body is parsed.
async fn read_body(
    parts: &axum::http::request::Parts,
    body: Body,
    limit: usize,
) -> Result<(Bytes, BodySlot), Response> {
    let headers = &parts.headers;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let small = declared.is_some_and(|n| n <= edge::SMALL_BODY_BYTES);
    let slot = match parts.extensions.get::<edge::LargeBodies>() {
        Some(edge::LargeBodies(slots)) if !small => match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                tracing::warn!("large body refused: LEVER_MAX_LARGE_BODIES are being read");
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many large requests at once; retry later",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return Err(r);
            }
        },
        _ => None,
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    Ok((bytes, slot))
}

/// Whether `Authorization: Bearer <token>` carries one of `expected` (compared in constant
/// time, every one of them tried so the time does not say which matched).
fn bearer_ok(headers: &HeaderMap, expected: &[SecretString]) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    let token = token.trim().as_bytes();
    let matched = expected.iter().fold(subtle::Choice::from(0), |any, t| {
        any | token.ct_eq(t.expose_secret().as_bytes())
    });
    scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && bool::from(matched)
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// Ready or not ready, nothing more: anyone can ask, so the reason (database error text,
/// which may name hosts and users) goes to the log only.
async fn readyz(State(app): State<App>) -> Response {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, database = app.store.backend(), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "not ready" })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_table() {
        let mut h = HeaderMap::new();
        let one = [SecretString::from("t0ken")];
        assert!(!bearer_ok(&h, &one));
        for (value, want) in [
            ("Bearer t0ken", true),
            ("bearer t0ken", true),
            ("Bearer wrong", false),
            ("t0ken", false),
            ("Basic t0ken", false),
            ("Bearer t0ken2", false),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_ok(&h, &one), want, "{value}");
        }
    }

    #[test]
    fn bearer_accepts_any_configured_token() {
        let two = [SecretString::from("old"), SecretString::from("new")];
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("Bearer old", true),
            ("Bearer new", true),
            ("Bearer  new ", true),
            ("Bearer oldnew", false),
            ("Bearer ", false),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_ok(&h, &two), want, "{value}");
        }
        assert!(!bearer_ok(&h, &[]));
    }
}
