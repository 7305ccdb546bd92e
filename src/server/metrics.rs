//! `GET /metrics`: the Prometheus text exposition of [`crate::metrics::Metrics`], with the
//! queue gauges read from the store at scrape time.
//!
//! Off unless configured, because the numbers say things about the organisation (how many
//! findings, how many issues, how fast they close) and a scrape costs a database read:
//!
//! - `LEVER_METRICS_TOKEN` serves it on the main listener to a request carrying
//!   `Authorization: Bearer <token>` (compared in constant time; wrong or missing: 401);
//!   without a token it is 404 there, as if the route did not exist;
//! - `LEVER_METRICS_ADDR` serves it, without a token, on a listener of its own ([`serve`])
//!   that answers nothing else, behind the same edge limits as the main one.
//!
//! Who can send this? On the main listener anyone on the internet: they get 404 or 401 and
//! learn nothing. On the metrics address, whoever can reach it: keep it private.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{bearer_ok, edge, error};
use crate::app::App;
use crate::config::EdgeSettings;
use crate::metrics::Metrics;

/// `GET /metrics` on the main listener: only with a configured token, and only to its bearer.
pub(super) async fn protected(State(app): State<App>, headers: HeaderMap) -> Response {
    if app.secrets.metrics_tokens.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !bearer_ok(&headers, &app.secrets.metrics_tokens) {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    scrape(&app).await
}

/// `GET /metrics` on the metrics address: no token (the address is the protection).
async fn open(State(app): State<App>) -> Response {
    scrape(&app).await
}

/// Reads the queue from the store, then encodes every metric. A store that does not answer
/// fails the scrape (503): stale queue gauges would read as a healthy queue, and Prometheus
/// records a failed scrape as `up == 0`.
async fn scrape(app: &App) -> Response {
    let now = app.now();
    match app.store.queue_stats(now).await {
        Ok(stats) => {
            app.metrics.set_queue(&stats, now);
            app.metrics.set_store_writes(app.store.shared_commits());
        }
        Err(e) => {
            tracing::warn!(error = %e, database = app.store.backend(), "metrics: reading the queue failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database did not answer; retry later",
            );
        }
    }
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        app.metrics.encode(),
    )
        .into_response()
}

/// The router of the metrics address: `/metrics` and nothing else.
pub fn router(app: App) -> Router {
    Router::new().route("/metrics", get(open)).with_state(app)
}

/// Serves `GET /metrics` without a token on `listener` (`LEVER_METRICS_ADDR`) until
/// `shutdown` resolves, behind the same edge limits as the main listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    edge: &EdgeSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    edge::serve_router(listener, edge::layers(router(app), edge), edge, shutdown).await
}
