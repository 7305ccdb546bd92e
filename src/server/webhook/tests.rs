use axum::body::Body;

use super::*;
use crate::github::IssuesAction;
use serde_json::Value;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn signature_table() {
    let body = br#"{"action":"opened"}"#;
    let secrets = vec![SecretString::from("old"), SecretString::from("new")];
    let cases = [
        (Some(sign("new", body)), true),
        (Some(sign("old", body)), true),
        (Some(sign("other", body)), false),
        (Some(sign("new", b"tampered")), false),
        (Some("sha256=zz".to_string()), false),
        (Some("sha1=abc".to_string()), false),
        (Some(String::new()), false),
        (None, false),
    ];
    for (i, (header, want)) in cases.iter().enumerate() {
        assert_eq!(
            signature_ok(&secrets, body, header.as_deref()),
            *want,
            "case {i}: {header:?}"
        );
    }
    assert!(
        !signature_ok(&[], body, Some(&sign("new", body))),
        "no secret configured: nothing verifies"
    );
}

const LABELED: &[u8] = br#"{"action":"labeled","label":{"name":"acknowledged"},"issue":{"number":4},"repository":{"full_name":"acme/payments"},"sender":{"login":"bob"}}"#;

/// The rotating secrets the tests' server holds: the new one first, the old one still valid.
fn secrets() -> Vec<SecretString> {
    vec!["new-secret".into(), "old-secret".into()]
}

fn request(headers: &[(&str, &str)], body: impl Into<Body>) -> Request {
    let mut b = Request::builder().method("POST").uri("/webhooks/github");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

/// A delivery as GitHub sends it, signed with `secret`.
fn signed(event: &str, body: &[u8], secret: &str) -> Request {
    request(
        &[
            ("x-github-event", event),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-hub-signature-256", &sign(secret, body)),
        ],
        body.to_vec(),
    )
}

/// The status and `error` message of a rejection.
async fn rejected(r: Result<VerifiedWebhook, Response>) -> (StatusCode, String) {
    let r = r.expect_err("the request should be rejected");
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_delivery_signed_with_any_configured_secret_is_verified_and_typed() {
    for secret in ["new-secret", "old-secret"] {
        let hook = VerifiedWebhook::verify(signed("issues", LABELED, secret), &secrets())
            .await
            .unwrap_or_else(|_| panic!("signed with {secret}"));
        assert_eq!(hook.delivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(hook.body.as_ref(), LABELED);
        assert_eq!(hook.event.name(), "issues.labeled");
        assert!(hook.event.is_lifecycle());
        let WebhookEvent::Issues { action, .. } = &hook.event else {
            panic!("{:?}", hook.event);
        };
        assert!(matches!(action, IssuesAction::Labeled { label } if label.name == "acknowledged"));
    }
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_401() {
    let (status, message) =
        rejected(VerifiedWebhook::verify(signed("issues", LABELED, "retired"), &secrets()).await)
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("X-Hub-Signature-256"), "{message}");
    let unsigned = request(
        &[("x-github-event", "issues"), ("x-github-delivery", "d")],
        LABELED.to_vec(),
    );
    let (status, _) = rejected(VerifiedWebhook::verify(unsigned, &secrets()).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) =
        rejected(VerifiedWebhook::verify(signed("issues", LABELED, "new-secret"), &[]).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no secret configured");
}

#[tokio::test]
async fn missing_github_headers_are_400() {
    let sig = sign("new-secret", LABELED);
    for (headers, missing) in [
        (
            vec![("x-github-delivery", "d-1"), ("x-hub-signature-256", &sig)],
            "X-GitHub-Event",
        ),
        (
            vec![
                ("x-github-event", " "),
                ("x-github-delivery", "d-1"),
                ("x-hub-signature-256", &sig),
            ],
            "X-GitHub-Event",
        ),
        (
            vec![("x-github-event", "issues"), ("x-hub-signature-256", &sig)],
            "X-GitHub-Delivery",
        ),
    ] {
        let req = request(&headers, LABELED.to_vec());
        let (status, message) = rejected(VerifiedWebhook::verify(req, &secrets()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(message, format!("missing {missing} header"));
    }
}

#[tokio::test]
async fn an_oversize_body_is_413_before_verification() {
    // Declared too large: refused before reading a byte (and before checking the signature).
    let req = request(
        &[
            ("x-github-event", "issues"),
            ("x-github-delivery", "d-1"),
            ("content-length", &(MAX_WEBHOOK_BYTES + 1).to_string()),
        ],
        Body::empty(),
    );
    let (status, _) = rejected(VerifiedWebhook::verify(req, &secrets()).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Undeclared, correctly signed: refused while reading.
    let huge = vec![b' '; MAX_WEBHOOK_BYTES + 1];
    let (status, _) =
        rejected(VerifiedWebhook::verify(signed("issues", &huge, "new-secret"), &secrets()).await)
            .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_payloads_are_400_and_unknown_actions_are_other() {
    for (event, body, expect) in [
        ("issues", &b"not json"[..], "not JSON"),
        ("ping", b"[]", "must be a JSON object"),
        (
            "issues",
            br#"{"action":"labeled","issue":{"number":4},"repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#,
            "missing field `label`",
        ),
    ] {
        let (status, message) =
            rejected(VerifiedWebhook::verify(signed(event, body, "new-secret"), &secrets()).await)
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert!(message.contains(expect), "{message}");
    }
    let typed = br#"{"action":"typed","issue":{"number":4},"repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#;
    let hook = VerifiedWebhook::verify(signed("issues", typed, "old-secret"), &secrets())
        .await
        .unwrap();
    assert_eq!(
        hook.event,
        WebhookEvent::Other {
            event: "issues".into(),
            action: Some("typed".into())
        }
    );
    assert_eq!(hook.event.name(), "issues.typed");
}
