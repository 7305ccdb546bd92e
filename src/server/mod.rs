//! HTTP: EventBridge ingest, GitHub webhooks, health. Handlers only verify, parse and record;
//! side effects happen later in the workers, from durable state. Records are written in
//! batches ([`batch`], [`intake`]): many requests, one transaction, and every answer only
//! after its batch committed.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::app::App;

pub mod batch;
mod ingest;
pub mod intake;
mod webhook;
pub use webhook::{VerifiedWebhook, signature_ok};

/// Largest EventBridge request accepted (EventBridge events are at most 256 KiB; a
/// GetFindings page of 100 findings can be larger).
pub const MAX_INGEST_BYTES: usize = 6 * 1024 * 1024;
/// GitHub caps webhook payloads at 25 MB.
pub const MAX_WEBHOOK_BYTES: usize = 25 * 1024 * 1024;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/events/securityhub", post(ingest::receive))
        .route("/webhooks/github", post(webhook::receive))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "listening");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Reads the body, refusing more than `limit` bytes (413), by Content-Length first.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Response> {
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
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn bearer_ok(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes()))
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

async fn readyz(State(app): State<App>) -> Response {
    match app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "ready", "database": app.store.backend() })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unreachable: {e}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_table() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "t0ken"));
        for (value, want) in [
            ("Bearer t0ken", true),
            ("bearer t0ken", true),
            ("Bearer wrong", false),
            ("t0ken", false),
            ("Basic t0ken", false),
            ("Bearer t0ken2", false),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_ok(&h, "t0ken"), want, "{value}");
        }
    }
}
