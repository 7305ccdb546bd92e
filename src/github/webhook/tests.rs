use serde_json::{Value, json};

use super::*;

/// A minimal `issues` body with `action` and the members of `extra`.
fn issues(action: &str, extra: Value) -> Vec<u8> {
    let mut p = json!({
        "action": action,
        "issue": { "number": 7, "labels": [{ "name": "security-finding" }] },
        "repository": { "full_name": "acme/payments" },
        "sender": { "login": "alice" },
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    serde_json::to_vec(&p).unwrap()
}

#[test]
fn every_modelled_issues_action_parses_with_its_fields() {
    let cases = [
        (
            issues("labeled", json!({ "label": { "name": "cto-approved" } })),
            IssuesAction::Labeled {
                label: Label {
                    name: "cto-approved".into(),
                },
            },
        ),
        (
            issues("unlabeled", json!({ "label": { "name": "x" } })),
            IssuesAction::Unlabeled {
                label: Label { name: "x".into() },
            },
        ),
        (issues("closed", json!({})), IssuesAction::Closed),
        (issues("reopened", json!({})), IssuesAction::Reopened),
        (
            issues("assigned", json!({ "assignee": { "login": "bob" } })),
            IssuesAction::Assigned {
                assignee: Some(WebhookUser {
                    login: "bob".into(),
                }),
            },
        ),
        (
            issues("unassigned", json!({ "assignee": null })),
            IssuesAction::Unassigned { assignee: None },
        ),
        (issues("deleted", json!({})), IssuesAction::Deleted),
        (
            issues(
                "transferred",
                json!({ "changes": {
                    "new_issue": { "number": 3, "html_url": "https://github.com/acme/platform/issues/3" },
                    "new_repository": { "full_name": "acme/platform" },
                } }),
            ),
            IssuesAction::Transferred {
                changes: TransferChanges {
                    new_issue: TransferredIssue {
                        number: 3,
                        html_url: "https://github.com/acme/platform/issues/3".into(),
                    },
                    new_repository: WebhookRepository {
                        full_name: "acme/platform".into(),
                    },
                },
            },
        ),
        (
            issues("edited", json!({ "changes": {} })),
            IssuesAction::Edited,
        ),
        (issues("opened", json!({})), IssuesAction::Opened),
    ];
    for (body, want) in cases {
        let got = WebhookEvent::parse("issues", &body).unwrap();
        let name = format!("issues.{}", want.name());
        let lifecycle = !matches!(want, IssuesAction::Opened | IssuesAction::Edited);
        let WebhookEvent::Issues {
            action,
            issue,
            repository,
            sender,
        } = &got
        else {
            panic!("{name}: {got:?}");
        };
        assert_eq!(action, &want, "{name}");
        assert_eq!(issue.number, 7, "{name}");
        assert!(issue.has_label("Security-Finding"), "{name}");
        assert_eq!(repository.full_name, "acme/payments", "{name}");
        assert_eq!(sender.login, "alice", "{name}");
        assert_eq!(got.name(), name);
        assert_eq!(got.is_lifecycle(), lifecycle, "{name}");
        assert_eq!(got.repo(), Some("acme/payments"));
        assert_eq!(got.issue_number(), Some(7));
        assert_eq!(got.sender(), Some("alice"));
    }
}

#[test]
fn an_unknown_action_is_other_and_keeps_its_name() {
    let action: IssuesAction =
        serde_json::from_value(json!({ "action": "typed", "type": { "name": "Bug" } })).unwrap();
    assert_eq!(action, IssuesAction::Other);

    for (event, body) in [
        ("issues", issues("typed", json!({}))),
        ("issues", issues("milestoned", json!({ "milestone": {} }))),
        (
            "issue_comment",
            issues("pinned", json!({ "comment": { "body": "x" } })),
        ),
    ] {
        let got = WebhookEvent::parse(event, &body).unwrap();
        let action = serde_json::from_slice::<Value>(&body).unwrap()["action"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            got,
            WebhookEvent::Other {
                event: event.into(),
                action: Some(action.clone()),
            }
        );
        assert_eq!(got.name(), format!("{event}.{action}"));
        assert!(!got.is_lifecycle());
    }
}

#[test]
fn comments() {
    let body = issues(
        "created",
        json!({ "comment": { "id": 1, "body": "exception-expires: 2030-01-01" } }),
    );
    let got = WebhookEvent::parse("issue_comment", &body).unwrap();
    assert_eq!(got.name(), "issue_comment.created");
    assert!(got.is_lifecycle());
    let WebhookEvent::IssueComment {
        action, comment, ..
    } = &got
    else {
        panic!("{got:?}");
    };
    assert_eq!(*action, CommentAction::Created);
    assert_eq!(comment.body, "exception-expires: 2030-01-01");

    let edited = issues("edited", json!({ "comment": { "body": null } }));
    let got = WebhookEvent::parse("issue_comment", &edited).unwrap();
    assert_eq!(got.name(), "issue_comment.edited");
    assert!(!got.is_lifecycle(), "only new comments matter");
}

#[test]
fn other_events_keep_event_and_action() {
    let got = WebhookEvent::parse("ping", br#"{"zen":"Keep it simple.","hook_id":1}"#).unwrap();
    assert_eq!(
        got,
        WebhookEvent::Other {
            event: "ping".into(),
            action: None
        }
    );
    assert_eq!(got.name(), "ping");
    assert_eq!(
        (got.repo(), got.issue_number(), got.sender()),
        (None, None, None)
    );
    // Installation timestamps are integers in real deliveries: nothing of them is modelled.
    let got = WebhookEvent::parse(
        "installation",
        br#"{"action":"created","installation":{"id":1,"created_at":1501449845}}"#,
    )
    .unwrap();
    assert_eq!(got.name(), "installation.created");
    assert!(!got.is_lifecycle());
}

#[test]
fn errors_name_the_event_and_the_field() {
    let not_json = WebhookEvent::parse("issues", b"not json").unwrap_err();
    assert!(matches!(not_json, WebhookError::NotJson { .. }));
    assert!(not_json.to_string().contains("not JSON"), "{not_json}");
    let trailing = WebhookEvent::parse("ping", br#"{"zen":1} x"#).unwrap_err();
    assert!(
        matches!(trailing, WebhookError::NotJson { .. }),
        "{trailing}"
    );
    for body in [&b"[]"[..], b"[1]", b"\"issue\"", b"42", b"null"] {
        for event in ["issues", "ping"] {
            let e = WebhookEvent::parse(event, body).unwrap_err();
            assert!(
                matches!(e, WebhookError::NotObject { .. }),
                "{event} {}: {e}",
                String::from_utf8_lossy(body)
            );
        }
    }

    let no_label = WebhookEvent::parse("issues", &issues("labeled", json!({}))).unwrap_err();
    let msg = no_label.to_string();
    assert!(
        msg.starts_with("issues webhook payload is malformed"),
        "{msg}"
    );
    assert!(msg.contains("missing field `label`"), "{msg}");

    let bad_number = WebhookEvent::parse(
        "issues",
        &issues("closed", json!({ "issue": { "number": "seven" } })),
    )
    .unwrap_err();
    let WebhookError::Payload { path, message, .. } = &bad_number else {
        panic!("{bad_number}");
    };
    assert_eq!(path, "issue.number", "{bad_number}");
    assert!(message.contains("invalid type"), "{message}");

    let no_changes = WebhookEvent::parse("issues", &issues("transferred", json!({}))).unwrap_err();
    assert!(no_changes.to_string().contains("changes"), "{no_changes}");
    let no_repo = WebhookEvent::parse(
        "issue_comment",
        br#"{"action":"created","issue":{"number":1},"comment":{"body":""},"sender":{"login":"a"}}"#,
    )
    .unwrap_err();
    assert!(no_repo.to_string().contains("repository"), "{no_repo}");
}

#[test]
fn stored_deliveries_parse_by_their_recorded_name() {
    let body = issues("labeled", json!({ "label": { "name": "bug" } }));
    let got = WebhookEvent::from_stored("issues.labeled", &body).unwrap();
    assert_eq!(got, WebhookEvent::parse("issues", &body).unwrap());
    // What a version before migration 0003 stored: the payload as JSON, re-serialized.
    let value: Value = serde_json::from_slice(&body).unwrap();
    let old = WebhookEvent::from_stored("issues.labeled", value.to_string().as_bytes()).unwrap();
    assert_eq!(old, got);
    let ping = WebhookEvent::from_stored("ping", br#"{ "zen": "z" }"#).unwrap();
    assert_eq!(ping.name(), "ping");
}

#[test]
fn the_app_losing_or_regaining_repositories_is_typed() {
    let repos = json!([{ "full_name": "acme/ledger" }, { "full_name": "acme/web" }]);
    let both = vec!["acme/ledger".to_string(), "acme/web".to_string()];
    let body = |v: Value| serde_json::to_vec(&v).unwrap();
    #[rustfmt::skip]
    let cases = [
        ("installation", body(json!({"action": "deleted", "repositories": repos})), Some((AccessChange::Uninstalled, both.clone()))),
        ("installation", body(json!({"action": "suspend", "repositories": repos})), Some((AccessChange::Suspended, both.clone()))),
        ("installation", body(json!({"action": "unsuspend", "repositories": repos})), Some((AccessChange::Restored, both.clone()))),
        ("installation", body(json!({"action": "created", "repositories": repos})), Some((AccessChange::Restored, both.clone()))),
        ("installation_repositories", body(json!({"action": "removed", "repositories_removed": repos, "repositories_added": []})), Some((AccessChange::Uninstalled, both.clone()))),
        ("installation_repositories", body(json!({"action": "added", "repositories_added": repos, "repositories_removed": []})), Some((AccessChange::Restored, both.clone()))),
        // Repositories GitHub leaves out (or sends as null) are none.
        ("installation", body(json!({"action": "suspend", "repositories": null})), Some((AccessChange::Suspended, vec![]))),
        // Actions that change no access stay `Other`.
        ("installation", body(json!({"action": "new_permissions_accepted"})), None),
    ];
    for (event, body, want) in cases {
        let got = WebhookEvent::parse(event, &body).unwrap();
        let typed = match &got {
            WebhookEvent::Access { change, repos, .. } => Some((*change, repos.clone())),
            _ => None,
        };
        assert_eq!(typed, want, "{event} {}", String::from_utf8_lossy(&body));
        assert!(!got.is_lifecycle());
        assert_eq!(got.repo(), None);
        let action = serde_json::from_slice::<Value>(&body).unwrap()["action"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(got.name(), format!("{event}.{action}"));
    }
    // A repository without its name is an error that names the field.
    let e = WebhookEvent::parse(
        "installation_repositories",
        &body(json!({"action": "removed", "repositories_removed": [{"id": 1}]})),
    )
    .unwrap_err();
    assert!(e.to_string().contains("repositories_removed[0]"), "{e}");
}

/// `HANDLED_EVENTS` is exactly the set of events some [`WebhookEvent`] variant other than
/// `Other` comes from: each listed event parses to a variant whose subscription is that event,
/// and events Lever ignores (`installation*`, `ping`, ones it never asked for) parse to `Other`.
#[test]
fn handled_events_are_the_variants_the_parser_produces() {
    let comment = {
        let mut p: Value = serde_json::from_slice(&issues("opened", json!({}))).unwrap();
        p["action"] = json!("created");
        p["comment"] = json!({ "body": "hello" });
        serde_json::to_vec(&p).unwrap()
    };
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("issues", issues("labeled", json!({ "label": { "name": "x" } }))),
        ("issue_comment", comment),
        (
            "push",
            br#"{"ref":"refs/heads/main","after":"0123","repository":{"full_name":"acme/c","default_branch":"main"}}"#.to_vec(),
        ),
        ("installation", br#"{"action":"created","installation":{"id":1}}"#.to_vec()),
        (
            "installation_repositories",
            br#"{"action":"added","installation":{"id":1}}"#.to_vec(),
        ),
        ("ping", br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec()),
        ("pull_request", br#"{"action":"opened","number":1}"#.to_vec()),
    ];
    let mut produced = std::collections::BTreeSet::new();
    for (event, body) in &samples {
        let parsed = WebhookEvent::parse(event, body).unwrap();
        if let Some(sub) = parsed.subscription() {
            assert_eq!(sub, *event, "{event} parsed as {parsed:?}");
            produced.insert(sub);
        } else {
            assert!(
                !HANDLED_EVENTS.contains(event),
                "{event} is handled but parsed as Other"
            );
        }
    }
    let listed: std::collections::BTreeSet<&str> = HANDLED_EVENTS.iter().copied().collect();
    assert_eq!(produced, listed);
    assert!(!HANDLED_EVENTS.iter().any(|e| e.starts_with("installation")));
    for event in HANDLED_EVENTS {
        assert!(
            EVENT_PERMISSIONS.iter().any(|(e, _)| e == event),
            "{event} has no permission in EVENT_PERMISSIONS"
        );
    }
}
