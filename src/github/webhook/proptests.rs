//! The webhook parser on arbitrary bytes and arbitrary JSON, under every event name Lever
//! models and others: it never panics, every rejection says why, and an `issues` or
//! `issue_comment` body reads exactly as serde's derived, whole-payload reading of it
//! ([`reference`]: what the one-pass [`super::Members`] reading replaced).

use proptest::prelude::*;

use super::WebhookEvent;
use crate::proptest_support::json;

const KEYS: &[&str] = &[
    "action",
    "issue",
    "comment",
    "repository",
    "sender",
    "label",
    "labels",
    "name",
    "login",
    "number",
    "state_reason",
    "full_name",
    "body",
    "assignee",
    "changes",
    "new_issue",
    "new_repository",
    "html_url",
    "updated_at",
    "installation",
];
const ACTIONS: &[&str] = &[
    "opened",
    "edited",
    "labeled",
    "unlabeled",
    "closed",
    "reopened",
    "assigned",
    "unassigned",
    "deleted",
    "transferred",
    "created",
    "pinned",
];
const EVENTS: &[&str] = &["issues", "issue_comment", "ping", "installation", ""];

fn check(event: &str, body: &[u8]) {
    let parsed = WebhookEvent::parse(event, body);
    if let Err(e) = &parsed {
        assert!(!e.to_string().trim().is_empty(), "an empty reason");
    }
    if let Some(expected) = reference::parse(event, body) {
        match (&parsed, &expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{}", String::from_utf8_lossy(body)),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{event} {}: got {parsed:?}, the derived reading gives {expected:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

/// The derived reading of an `issues` / `issue_comment` body: the whole payload through serde
/// at once, the action an internally tagged enum flattened into the payload (serde buffers
/// every member for that), after a first pass for the payload's shape.
mod reference {
    use serde::Deserialize;
    use serde::de::IgnoredAny;

    use super::super::{
        CommentAction, IssuesAction, WebhookComment, WebhookEvent, WebhookIssue, WebhookRepository,
        WebhookUser,
    };

    #[derive(Deserialize)]
    struct Shape {
        #[serde(default)]
        issue: Option<IgnoredAny>,
        #[serde(default)]
        comment: Option<IgnoredAny>,
    }

    #[derive(Deserialize)]
    struct IssuesPayload {
        #[serde(flatten)]
        action: IssuesAction,
        issue: WebhookIssue,
        repository: WebhookRepository,
        sender: WebhookUser,
    }

    #[derive(Deserialize)]
    struct CommentPayload {
        action: CommentAction,
        issue: WebhookIssue,
        comment: WebhookComment,
        repository: WebhookRepository,
        sender: WebhookUser,
    }

    #[derive(Deserialize)]
    struct ActionOnly {
        #[serde(default)]
        action: Option<String>,
    }

    /// `None` for the other events; `Err(())` where the derived reading refuses the body.
    pub fn parse(event: &str, body: &[u8]) -> Option<Result<WebhookEvent, ()>> {
        if !matches!(event, "issues" | "issue_comment") {
            return None;
        }
        let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let read = |_| ();
        Some((|| {
            if !is_object {
                return Err(());
            }
            let shape: Shape = serde_json::from_slice(body).map_err(read)?;
            if event == "issues" && shape.issue.is_some() && shape.comment.is_some() {
                return Err(());
            }
            let other = || {
                let ActionOnly { action } = serde_json::from_slice(body).map_err(read)?;
                Ok(WebhookEvent::Other {
                    event: event.to_string(),
                    action,
                })
            };
            if event == "issues" {
                let p: IssuesPayload = serde_json::from_slice(body).map_err(read)?;
                if p.action == IssuesAction::Other {
                    return other();
                }
                return Ok(WebhookEvent::Issues {
                    action: p.action,
                    issue: p.issue,
                    repository: p.repository,
                    sender: p.sender,
                });
            }
            let p: CommentPayload = serde_json::from_slice(body).map_err(read)?;
            if p.action == CommentAction::Other {
                return other();
            }
            Ok(WebhookEvent::IssueComment {
                action: p.action,
                issue: p.issue,
                comment: p.comment,
                repository: p.repository,
                sender: p.sender,
            })
        })())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(
        event in proptest::sample::select(EVENTS),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check(event, &bytes);
    }

    #[test]
    fn arbitrary_json(
        event in prop_oneof![proptest::sample::select(EVENTS).prop_map(str::to_string), ".{0,10}"],
        action in proptest::sample::select(ACTIONS),
        mut body in json(KEYS),
    ) {
        // Half the time a real action, so the cases reach the per-action fields.
        if let Some(map) = body.as_object_mut()
            && !map.contains_key("action")
        {
            map.insert("action".into(), action.into());
        }
        check(&event, &serde_json::to_vec(&body).unwrap());
    }

    /// A well-formed body with some members replaced by arbitrary JSON or removed: the
    /// cases where one member decides between accepting and refusing.
    #[test]
    fn nearly_valid_bodies(
        event in proptest::sample::select(&["issues", "issue_comment"][..]),
        action in proptest::sample::select(ACTIONS),
        replaced in proptest::collection::vec(
            (proptest::sample::select(KEYS), proptest::option::of(json(KEYS))),
            0..3,
        ),
    ) {
        let mut body = serde_json::json!({
            "action": action,
            "issue": { "number": 7, "labels": [{ "name": "security-finding" }], "state_reason": null },
            "repository": { "full_name": "acme/payments" },
            "sender": { "login": "alice" },
            "label": { "name": "cto-approved" },
            "assignee": { "login": "bob" },
            "changes": { "new_issue": { "number": 9 }, "new_repository": { "full_name": "acme/web" } },
        });
        if event == "issue_comment" {
            body["comment"] = serde_json::json!({ "body": "hello" });
        }
        let map = body.as_object_mut().unwrap();
        for (key, value) in replaced {
            match value {
                Some(v) => map.insert(key.to_string(), v),
                None => map.remove(key),
            };
        }
        check(event, &serde_json::to_vec(&body).unwrap());
    }
}

/// GitHub's own example deliveries (the conformance corpus, or its copy under `tests/`) read
/// the same both ways.
#[test]
fn conformance_samples_read_as_the_derived_reading_does() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/webhooks");
    let copy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conformance/webhooks");
    let mut read = 0;
    for dir in [shared, copy] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let event = name.split('.').next().unwrap();
            if path.extension().is_some_and(|e| e == "json")
                && matches!(event, "issues" | "issue_comment")
            {
                let body = std::fs::read(&path).unwrap();
                check(event, &body);
                assert!(WebhookEvent::parse(event, &body).is_ok(), "{name}");
                read += 1;
            }
        }
    }
    assert!(
        read >= 20,
        "only {read} samples of issues / issue_comment found"
    );
}
