//! `POST /events/securityhub`: EventBridge's "Findings - Imported" events (or a GetFindings
//! page), with a bearer token. Parsed here; planned and committed in a batch with the other
//! requests arriving meanwhile (see [`super::intake::Findings`]); answered after the commit.
//!
//! Who can send this? Anyone holding the ingest token. EventBridge retries a failed request
//! (any 5xx), so an answer of 503 loses nothing.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::intake::{FindingsItem, Recorded};
use super::{MAX_INGEST_BYTES, bearer_ok, error, read_body};
use crate::app::App;
use crate::asff;
use crate::pipeline::Disposition;

pub(super) async fn receive(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if !app.secrets.ingest_configured() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest is not configured (LEVER_INGEST_TOKEN)",
        );
    }
    if !bearer_ok(&parts.headers, &app.secrets.ingest_tokens) {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let (bytes, _slot) = match read_body(&parts, body, MAX_INGEST_BYTES).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let intake = match asff::parse_document(&bytes, app.catalog) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let rejected: Vec<Value> = intake
        .rejections()
        .map(|e| json!({ "index": e.index, "field": e.field, "error": e.to_string() }))
        .collect();
    for e in intake.rejections() {
        tracing::warn!(error = %e, event = ?intake.event_id, "rejected finding");
    }
    let findings: Vec<_> = intake.findings().cloned().collect();
    if findings.is_empty() {
        if rejected.is_empty() {
            return (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "accepted": 0, "rejected": [] })),
            )
                .into_response();
        }
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "no finding in the request could be accepted", "rejected": rejected })),
        )
            .into_response();
    }
    let source = match &intake.event_id {
        Some(id) => format!("eventbridge:{id}"),
        None => "ingest".to_string(),
    };
    let accepted = findings.len();
    let item = FindingsItem {
        findings,
        source: source.clone(),
    };
    match app.intake.findings.submit(item).await {
        Ok(Recorded { outcomes, work_due }) => {
            let count = |pred: fn(&Disposition) -> bool| {
                outcomes.iter().filter(|o| pred(&o.action)).count()
            };
            let opened = count(|a| matches!(a, Disposition::OpenIssue));
            if work_due {
                app.jobs_ready.notify_waiters();
            }
            tracing::info!(accepted, opened, rejected = rejected.len(), %source, "findings recorded");
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "accepted": accepted,
                    "rejected": rejected,
                    "issues_to_open": opened,
                    "repeats": count(|a| matches!(a, Disposition::Repeat)),
                })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, %source, "findings not recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record the findings; retry later",
            )
        }
    }
}
