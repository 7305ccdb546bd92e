//! The connection loop: what reaches the router, how many at once and for how long
//! (issue 9, item 8). Anyone on the internet can open a connection, so before any
//! authentication:
//!
//! - at most `max_connections` connections are open; one more is answered
//!   `503 Service Unavailable` and closed;
//! - a connection must send a request's headers within `header_timeout` (idle keep-alive
//!   connections too) and they must fit in [`MAX_HEADER_BYTES`]; otherwise it is closed
//!   (`408` when a request had begun, `431` when the headers are too large);
//! - a request must be read and answered within `request_timeout`: `408` otherwise, so a
//!   slow body cannot hold its buffers forever;
//! - at most `max_large_bodies` bodies larger than [`SMALL_BODY_BYTES`] (or of unknown
//!   length) are read at once (see [`super::read_body`]); one more is `503` with
//!   `Retry-After`.
//!
//! Only HTTP/1.1 is served: GitHub and EventBridge send HTTP/1.1, and one request at a time
//! per connection is what makes the bound a product of two numbers.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::config::EdgeSettings;

/// A request's headers (and the connection's read buffer) fit in this many bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Bodies up to this size are read without a large-body slot.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// The slots of bodies larger than [`SMALL_BODY_BYTES`] being read (and handled) at once.
#[derive(Debug, Clone)]
pub struct LargeBodies(pub Arc<Semaphore>);

/// The router with the edge's layers: the large-body slots and the request deadline.
pub fn router(app: App, edge: &EdgeSettings) -> Router {
    layers(super::router(app), edge)
}

/// `router` behind the edge's layers: the large-body slots and the request deadline (the main
/// listener's and the metrics address's alike).
pub fn layers(router: Router, edge: &EdgeSettings) -> Router {
    router
        .layer(axum::Extension(LargeBodies(Arc::new(Semaphore::new(
            edge.max_large_bodies as usize,
        )))))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            edge.request_timeout(),
        ))
}

/// Accepts connections on `listener` until `shutdown` resolves, then lets the open ones
/// finish their current request (in-flight answers are not lost).
pub async fn serve(
    listener: TcpListener,
    app: App,
    edge: &EdgeSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(app, edge), edge, shutdown).await
}

/// The connection loop of [`serve`] around any `router` (already behind [`layers`]): the
/// connection limit, the header deadline and the graceful shutdown.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    edge: &EdgeSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout())
        .max_buf_size(MAX_HEADER_BYTES);
    let connections = Arc::new(Semaphore::new(edge.max_connections as usize));
    let graceful = GracefulShutdown::new();
    tracing::info!(addr = ?listener.local_addr().ok(), ?edge, "listening");
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: LEVER_MAX_CONNECTIONS reached");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One connection too many: a short 503, then close.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 32\r\n\r\n{\"error\":\"too many connections\"}";
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
