//! `POST /webhooks/github`: the [`VerifiedWebhook`] extractor (size cap, HMAC against every
//! configured secret, GitHub's headers, the typed [`WebhookEvent`]) and the handler that
//! records the delivery (in a batch, see [`super::batch`]), with its body and a `github-event`
//! job when it concerns an issue Lever tracks.
//!
//! Who can send this? Anyone on the internet can reach the URL; only a holder of a webhook
//! secret gets past the extractor. GitHub redelivers on any non-2xx answer and on timeouts
//! (10 s), so the handler only records; the worker reacts later, from the store.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::intake::DeliveryItem;
use super::{MAX_WEBHOOK_BYTES, error, read_body};
use crate::app::App;
use crate::github::WebhookEvent;
use crate::store::DeliveryOutcome;

/// A webhook delivery whose signature matched one of the configured secrets, with GitHub's
/// headers and its typed event.
#[derive(Debug)]
pub struct VerifiedWebhook {
    /// `X-GitHub-Delivery` (a GUID; the same for a redelivery).
    pub delivery: String,
    pub event: WebhookEvent,
    /// The verified body, as sent.
    pub body: Bytes,
    /// The large-body slot the body was read under, held until the request is answered.
    pub slot: super::BodySlot,
}

impl VerifiedWebhook {
    /// Checks, in this order: the body is at most [`MAX_WEBHOOK_BYTES`] (413, by Content-Length
    /// before reading anything, then while reading); `X-Hub-Signature-256` matches one of
    /// `secrets` (401); `X-GitHub-Delivery` and `X-GitHub-Event` are present (400); the body
    /// parses as that event (400).
    pub async fn verify(req: Request, secrets: &[SecretString]) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let (body, slot) = read_body(&parts, body, MAX_WEBHOOK_BYTES).await?;
        if !signature_ok(
            secrets,
            &body,
            header(&parts.headers, "x-hub-signature-256"),
        ) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "X-Hub-Signature-256 is missing or does not match",
            ));
        }
        let Some(delivery) =
            header(&parts.headers, "x-github-delivery").filter(|d| !d.is_empty() && d.len() <= 200)
        else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "missing X-GitHub-Delivery header",
            ));
        };
        let Some(event) =
            header(&parts.headers, "x-github-event").filter(|e| !e.is_empty() && e.len() <= 100)
        else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "missing X-GitHub-Event header",
            ));
        };
        let event = WebhookEvent::parse(event, &body)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        Ok(VerifiedWebhook {
            delivery: delivery.to_string(),
            event,
            body,
            slot,
        })
    }
}

impl FromRequest<App> for VerifiedWebhook {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Response> {
        Self::verify(req, &app.secrets.webhook_secrets).await
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Verifies `X-Hub-Signature-256` against every configured secret, in constant time.
pub fn signature_ok(secrets: &[SecretString], body: &[u8], header_value: Option<&str>) -> bool {
    let Some(sig) = header_value.and_then(|v| v.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// Records every verified delivery (so a redelivery is acknowledged, not re-applied), in a
/// batch with the deliveries arriving meanwhile; a lifecycle event about an issue Lever tracks
/// also keeps its body and becomes a `github-event` job (decided in the batch's transaction).
/// Answers only once the batch committed: 202 recorded, 200 duplicate, 503 when the batch
/// failed (nothing of it was recorded; GitHub's redelivery is accepted later).
pub(super) async fn receive(State(app): State<App>, hook: VerifiedWebhook) -> Response {
    let VerifiedWebhook {
        delivery,
        event,
        body,
        slot: _slot,
    } = hook;
    // The App lost or regained repositories: what that means is recorded (and its job
    // queued) before the delivery, so a crash in between is repaired by GitHub's redelivery;
    // a delivery already recorded is not applied again.
    if let WebhookEvent::Access { change, repos, .. } = &event {
        let id = format!("github:{delivery}");
        let known = match app.store.delivery(&id).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, delivery, "webhook not recorded");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "could not record the delivery; GitHub may redeliver it",
                );
            }
        };
        if !known {
            let changes = crate::worker::reroute::access_changed(*change, repos, &id, app.now());
            if let Err(e) = app.store.apply(changes, app.now()).await {
                tracing::warn!(error = %e, delivery, "webhook not recorded");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "could not record the delivery; GitHub may redeliver it",
                );
            }
            tracing::warn!(
                delivery,
                ?change,
                ?repos,
                "the App's access to repositories changed"
            );
            app.jobs_ready.notify_waiters();
        }
    }
    let issue = match (event.is_lifecycle(), event.repo(), event.issue_number()) {
        (true, Some(repo), Some(number)) => Some((repo.to_string(), number)),
        _ => None,
    };
    let item = DeliveryItem {
        id: format!("github:{delivery}"),
        event: event.name(),
        body_sha256: Sha256::digest(&body).into(),
        body,
        issue,
        received_at: app.now(),
    };
    let event_name = item.event.clone();
    match app.intake.webhooks.submit(item).await {
        Ok(outcome @ (DeliveryOutcome::Tracked | DeliveryOutcome::Untracked)) => {
            let tracked = outcome == DeliveryOutcome::Tracked;
            tracing::info!(delivery, event = %event_name, tracked, "webhook recorded");
            // A push to the configuration repository reloads the configuration (once per
            // delivery: a redelivery is a duplicate and does not get here).
            if let WebhookEvent::Push(push) = event
                && app.config_repo.is_some()
            {
                let app = app.clone();
                tokio::spawn(async move {
                    crate::config_repo::on_push(&app, &push).await;
                });
            }
            if tracked {
                app.jobs_ready.notify_waiters();
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "status": "recorded", "delivery": delivery })),
            )
                .into_response()
        }
        Ok(DeliveryOutcome::Duplicate) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "duplicate", "delivery": delivery })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, delivery, "webhook not recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record the delivery; GitHub may redeliver it",
            )
        }
    }
}

#[cfg(test)]
mod tests;
