//! The HTTP front of the fake GitHub: request log, OpenAPI validation, faults, auth,
//! routing, response validation and GitHub's common headers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    ChaosKind, FaultKind, RecordedRequest, Shared, Violation, api, auth, glob, method_matches,
};
use crate::fakes::openapi;

/// A response under construction.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: vec![],
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: vec![],
        }
    }
    /// A GitHub-style error body.
    pub fn error(status: u16, message: &str, doc: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "documentation_url": doc, "status": status.to_string()}),
        )
    }
    pub fn not_found() -> Reply {
        Reply::error(404, "Not Found", "https://docs.github.com/rest")
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

pub(super) async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();

    // A slow GitHub: the request waits before anything happens (the state is not held meanwhile).
    let delay = {
        let mut st = shared.state.lock().unwrap();
        let found = st
            .faults
            .iter_mut()
            .find(|f| {
                f.remaining > 0
                    && matches!(f.kind, FaultKind::Delay { .. })
                    && method_matches(&f.method, &method)
                    && glob(&f.path_pattern, &path)
            })
            .map(|f| {
                f.remaining -= 1;
                f.kind.clone()
            });
        st.faults.retain(|f| f.remaining > 0);
        // Random faults apply to requests no injected fault is about.
        let injected = st.faults.iter().any(|f| {
            f.remaining > 0 && method_matches(&f.method, &method) && glob(&f.path_pattern, &path)
        });
        let chaos = match st.chaos.as_mut() {
            Some(c) if found.is_none() && !injected => c.roll().map(|k| (k, c.stall)),
            _ => None,
        };
        (found, chaos)
    };
    let (delay, chaos) = delay;
    if let Some(FaultKind::Delay { millis }) = delay {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
    if let Some((ChaosKind::Timeout, stall)) = chaos {
        tokio::time::sleep(stall).await;
    }
    let chaos = chaos.map(|(k, _)| k);

    let mut st = shared.state.lock().unwrap();
    let bases = shared.bases.clone();
    let seq = st.log.len();

    // `/repositories/{id}/…` is the alias GitHub uses in `Link` headers.
    let canonical_path = api::canonical_path(&st, &path);
    let label = format!("#{seq} {method} {path}");

    // GitHub's website, not its API: the App manifest form (`lever setup`).
    if let Some(reply) = super::manifests::web(&mut st, &method, &path, &query, &body) {
        let token = auth::authenticate(&st, authorization.as_deref()).kind();
        st.log.push(RecordedRequest {
            seq,
            method,
            path,
            query,
            body: None,
            token,
            status: reply.status,
            operation_id: None,
        });
        drop(st);
        return respond(seq, reply);
    }

    // GitHub's website: sign-in through the App (the dashboard).
    if let Some(reply) = super::oauth::web(&mut st, &method, &path, &query, &body) {
        st.log.push(RecordedRequest {
            seq,
            method,
            path,
            query,
            body: None,
            token: super::TokenKind::None,
            status: reply.status,
            operation_id: None,
        });
        drop(st);
        return respond(seq, reply);
    }

    // GitHub still accepts POST on its PATCH endpoints (a legacy alias from API v3); the
    // description documents only PATCH, so such a request is served as PATCH but recorded.
    let method = if method == "POST" && api::is_patch_endpoint(&canonical_path) {
        st.violations.push(Violation {
            request: label.clone(),
            problem: "POST on a PATCH endpoint: GitHub accepts it as a legacy alias, the OpenAPI \
                      description documents only PATCH"
                .to_string(),
        });
        "PATCH".to_string()
    } else {
        method
    };

    let spec = openapi::spec();
    let op = spec.and_then(|s| s.find_operation(&method, &canonical_path).map(|(op, _)| op));
    if let Some(spec) = spec {
        for problem in spec.validate_request(&method, &canonical_path, &query, &body) {
            st.violations.push(Violation {
                request: label.clone(),
                problem,
            });
        }
    }

    let auth = auth::authenticate(&st, authorization.as_deref());
    let token_kind = auth.kind();
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();

    // Faults first (they do not depend on auth, like a failing front end).
    let fault = st
        .faults
        .iter_mut()
        .find(|f| {
            f.remaining > 0
                && !matches!(f.kind, FaultKind::Delay { .. })
                && method_matches(&f.method, &method)
                && glob(&f.path_pattern, &path)
        })
        .map(|f| {
            f.remaining -= 1;
            f.kind.clone()
        });
    st.faults.retain(|f| f.remaining > 0);
    let fault = fault.or(match chaos {
        Some(ChaosKind::ServerError) => Some(FaultKind::Status(500)),
        Some(ChaosKind::BadGateway) => Some(FaultKind::Status(502)),
        Some(ChaosKind::SecondaryLimit) => Some(FaultKind::SecondaryRateLimit {
            status: 403,
            retry_after_secs: 60,
        }),
        _ => None,
    });
    if chaos == Some(ChaosKind::Reset) {
        st.log.push(RecordedRequest {
            seq,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: json_body,
            token: token_kind,
            status: 0,
            operation_id: op.map(|o| o.operation_id.clone()),
        });
        drop(st);
        reset_connection();
    }

    // The secondary limits, when enforced: a content-creating request over them is refused
    // before it does anything (faults answer first, like a failing front end).
    let breach = match (&fault, &auth) {
        (None, auth::Auth::Installation { installation, .. })
            if matches!(method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE") =>
        {
            let installation = *installation;
            st.limits
                .as_mut()
                .and_then(|e| e.admit(installation, &method, &path).err())
        }
        _ => None,
    };
    let fault = fault.or(
        breach.map(|retry_after_secs| FaultKind::SecondaryRateLimit {
            status: 403,
            retry_after_secs,
        }),
    );

    let now = st.now();
    let reply = match &fault {
        Some(FaultKind::Status(code)) => fault_reply(*code),
        Some(FaultKind::PrimaryRateLimit { status }) => {
            let reset = now.timestamp() + 3600;
            Reply::error(
                *status,
                "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", "5000")
            .header("x-ratelimit-reset", reset.to_string())
            .header("x-ratelimit-resource", "core")
        }
        Some(FaultKind::SecondaryRateLimit {
            status,
            retry_after_secs,
        }) => Reply::error(
            *status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
            "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
        .header("retry-after", retry_after_secs.to_string()),
        Some(FaultKind::AfterEffect(_)) | Some(FaultKind::Delay { .. }) | None => {
            let mut ctx = api::Ctx {
                st: &mut st,
                b: &bases,
                method: &method,
                path: &canonical_path,
                query: openapi::parse_query(&query),
                body: json_body.clone(),
                raw_body_empty: body.iter().all(u8::is_ascii_whitespace),
                auth: &auth,
            };
            let reply = api::route(&mut ctx);
            if let (Some(spec), Some(op)) = (spec, op) {
                let bytes = reply
                    .body
                    .as_ref()
                    .map(|b| serde_json::to_vec(b).unwrap())
                    .unwrap_or_default();
                for problem in spec.validate_response(op, reply.status, &bytes) {
                    st.response_violations.push(Violation {
                        request: label.clone(),
                        problem,
                    });
                }
            }
            match &fault {
                Some(FaultKind::AfterEffect(code)) => fault_reply(*code),
                _ => reply,
            }
        }
    };

    if chaos == Some(ChaosKind::ResetAfterEffect) {
        st.log.push(RecordedRequest {
            seq,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: json_body,
            token: token_kind,
            status: 0,
            operation_id: op.map(|o| o.operation_id.clone()),
        });
        drop(st);
        reset_connection();
    }

    let mut reply = reply;
    // Conditional requests, as GitHub answers every GET: a 200 carries an `ETag` (a digest of
    // its body); the same request with that ETag in `If-None-Match` gets 304 with no body
    // while the answer is unchanged, and a 304 does not count against the rate limit
    // (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
    // The 200 it stands for was validated above.
    let mut not_modified = false;
    if method == "GET"
        && reply.status == 200
        && let Some(b) = &reply.body
    {
        use sha2::Digest;
        let etag = format!(
            "W/\"{}\"",
            hex::encode(sha2::Sha256::digest(serde_json::to_vec(b).unwrap()))
        );
        let matches = if_none_match
            .as_deref()
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if matches {
            not_modified = true;
            reply = Reply::empty(304);
        }
        reply = reply.header("etag", etag);
    }
    // Rate-limit bookkeeping headers like GitHub's, for installation tokens.
    if let auth::Auth::Installation { installation, .. } = &auth {
        let used = {
            let u = st.rate_used.entry(*installation).or_insert(0);
            if !not_modified {
                *u += 1;
            }
            *u
        };
        if !reply
            .headers
            .iter()
            .any(|(k, _)| k == "x-ratelimit-remaining")
        {
            let reset = (now.timestamp() / 3600 + 1) * 3600;
            reply
                .headers
                .push(("x-ratelimit-limit".into(), "5000".into()));
            reply.headers.push((
                "x-ratelimit-remaining".into(),
                5000u64.saturating_sub(used).to_string(),
            ));
            reply
                .headers
                .push(("x-ratelimit-used".into(), used.to_string()));
            reply
                .headers
                .push(("x-ratelimit-reset".into(), reset.to_string()));
            reply
                .headers
                .push(("x-ratelimit-resource".into(), "core".into()));
        }
    }

    st.log.push(RecordedRequest {
        seq,
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: json_body,
        token: token_kind,
        status: reply.status,
        operation_id: op.map(|o| o.operation_id.clone()),
    });
    drop(st);
    respond(seq, reply)
}

fn respond(seq: usize, reply: Reply) -> Response {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("x-github-api-version-selected", "2022-11-28")
        .header("x-github-media-type", "github.v3; format=json")
        .header("x-github-request-id", format!("FAKE:{seq:08X}"));
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    match reply.body {
        Some(b) => builder
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(serde_json::to_vec(&b).unwrap()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

fn fault_reply(code: u16) -> Reply {
    let message = match code {
        500 => "Server Error",
        502 => "Server Error",
        503 => "Service Unavailable",
        504 => {
            "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists."
        }
        _ => "Injected fault",
    };
    Reply::error(code, message, "https://docs.github.com/rest")
}

/// Closes the connection without an answer: the handler unwinds, so the server drops the
/// connection (`resume_unwind` skips the panic hook: nothing is printed). No lock is held.
fn reset_connection() -> ! {
    std::panic::resume_unwind(Box::new("injected connection reset"))
}
