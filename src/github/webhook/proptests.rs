//! The webhook parser on arbitrary bytes and arbitrary JSON, under every event name Lever
//! models and others: it never panics, and every rejection says why.

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
    if let Err(e) = WebhookEvent::parse(event, body) {
        assert!(!e.to_string().trim().is_empty(), "an empty reason");
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
}
