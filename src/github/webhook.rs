//! GitHub webhook deliveries, typed at the edge.
//!
//! [`WebhookEvent::parse`] turns the `X-GitHub-Event` header and the body bytes into the events
//! Lever reacts to: `issues` ([`IssuesAction`], tagged by the payload's `action`) and
//! `issue_comment` ([`CommentAction`]), and the App losing or regaining repositories
//! ([`WebhookEvent::Access`]: `installation` deleted, suspend, unsuspend, created, and
//! `installation_repositories` removed, added). Every other event (`ping`, …) and every action
//! Lever does not model becomes [`WebhookEvent::Other`], which keeps the event and action names
//! and nothing else.
//!
//! Only the fields Lever reads are modelled; everything else is ignored, and fields GitHub may
//! omit or send as `null` default. A body that is not a JSON object, or an `issues` /
//! `issue_comment` payload that lacks what Lever needs, is an error that names the event and
//! the path of the offending field.
//!
//! Who can send this? Only someone holding a webhook secret (the server verifies the HMAC
//! before parsing); the fields are still untrusted text (a label name, a comment body).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Label;

/// The webhook events Lever handles (a [`WebhookEvent`] variant other than `Other`), as the
/// names the App subscribes to (`default_events` of the App manifest, see `lever app
/// manifest`). `installation*` events reach every App without a subscription and are not
/// listed (GitHub refuses them in a manifest); `ping` needs none either.
///
/// [`WebhookEvent::subscription`] maps every variant to one of these (a test checks both
/// directions); [`EVENT_PERMISSIONS`] names the permission each needs.
pub const HANDLED_EVENTS: &[&str] = &["issues", "issue_comment", "push"];

/// The events of [`HANDLED_EVENTS`] that only matter when the configuration lives in a
/// repository (`[source]`): `push` reloads it.
pub const CONFIG_SOURCE_EVENTS: &[&str] = &["push"];

/// The App permission that subscribing to each of [`HANDLED_EVENTS`] requires.
pub const EVENT_PERMISSIONS: &[(&str, &str)] = &[
    ("issues", "issues"),
    ("issue_comment", "issues"),
    ("push", "contents"),
];

/// A webhook delivery as Lever sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// `issues`, with an action Lever models (never [`IssuesAction::Other`]).
    Issues {
        action: IssuesAction,
        issue: WebhookIssue,
        repository: WebhookRepository,
        sender: WebhookUser,
    },
    /// `issue_comment`, with an action Lever models (never [`CommentAction::Other`]).
    IssueComment {
        action: CommentAction,
        issue: WebhookIssue,
        comment: WebhookComment,
        repository: WebhookRepository,
        sender: WebhookUser,
    },
    /// The App lost or regained access to `repos` (`owner/name`): `installation` deleted,
    /// suspend, unsuspend, created; `installation_repositories` removed, added. `event` and
    /// `action` are as GitHub sent them.
    Access {
        event: String,
        action: String,
        change: AccessChange,
        repos: Vec<String>,
    },
    /// `push`: commits (or a new branch or tag) reached a repository. Lever reads it for its
    /// configuration repository (`[source]`), to reload the configuration.
    Push(PushEvent),
    /// Anything else: `ping`, or an action Lever does not model. `action` is the payload's
    /// `action`, when it has one.
    Other {
        event: String,
        action: Option<String>,
    },
}

/// What an `installation` or `installation_repositories` delivery means for the repositories
/// it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessChange {
    /// The App was uninstalled, or the repositories removed from its installation.
    Uninstalled,
    /// The installation was suspended (temporarily: its calls are refused until unsuspended).
    Suspended,
    /// Unsuspended, installed again, or the repositories added back.
    Restored,
}

impl AccessChange {
    /// The change an event and action mean, if it is one.
    pub fn of(event: &str, action: &str) -> Option<AccessChange> {
        match (event, action) {
            ("installation", "deleted") | ("installation_repositories", "removed") => {
                Some(AccessChange::Uninstalled)
            }
            ("installation", "suspend") => Some(AccessChange::Suspended),
            ("installation", "unsuspend" | "created") | ("installation_repositories", "added") => {
                Some(AccessChange::Restored)
            }
            _ => None,
        }
    }
}

/// What happened to an issue (`issues` event), with the fields each action carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum IssuesAction {
    Opened,
    Edited,
    Labeled {
        label: Label,
    },
    Unlabeled {
        label: Label,
    },
    Closed,
    Reopened,
    /// `assignee` is `null` in GitHub's schema when the user no longer exists.
    Assigned {
        #[serde(default)]
        assignee: Option<WebhookUser>,
    },
    Unassigned {
        #[serde(default)]
        assignee: Option<WebhookUser>,
    },
    Deleted,
    Transferred {
        changes: TransferChanges,
    },
    /// An action Lever does not model (`pinned`, `milestoned`, one GitHub adds tomorrow, …).
    #[serde(other)]
    Other,
}

/// What happened to a comment (`issue_comment` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentAction {
    Created,
    Edited,
    Deleted,
    #[serde(other)]
    Other,
}

/// The members of a `push` delivery Lever reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushEvent {
    /// The full ref pushed: `refs/heads/main`, `refs/tags/v1`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit the ref points to now (all zeros when the ref was deleted).
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
    pub repository: PushRepository,
}

/// The repository of a `push` delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushRepository {
    /// `owner/name`.
    pub full_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_branch: String,
}

impl PushEvent {
    /// The branch pushed (`main` for `refs/heads/main`); `None` for a tag.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }
}

/// The issue of an `issues` or `issue_comment` delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookIssue {
    pub number: u64,
    /// `completed`, `not_planned`, `duplicate`, `reopened`; absent in older deliveries.
    #[serde(default)]
    pub state_reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// When the issue last changed, as of this delivery: orders deliveries about one issue
    /// (a delivery older than the last one applied changes nothing).
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl WebhookIssue {
    /// Whether the issue carries the label `name` (GitHub compares label names without case).
    pub fn has_label(&self, name: &str) -> bool {
        self.labels
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookComment {
    #[serde(default, deserialize_with = "null_as_default")]
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookRepository {
    /// `owner/name`.
    pub full_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookUser {
    pub login: String,
}

/// `changes` of `issues.transferred`: where the issue went.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransferChanges {
    pub new_issue: TransferredIssue,
    pub new_repository: WebhookRepository,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransferredIssue {
    pub number: u64,
    #[serde(default)]
    pub html_url: String,
}

/// A webhook body Lever cannot read.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{event} webhook body is not JSON: {source}")]
    NotJson {
        event: String,
        source: serde_json::Error,
    },
    #[error("{event} webhook body must be a JSON object")]
    NotObject { event: String },
    /// The body is another event's payload (`X-GitHub-Event` is not signed, the body is).
    #[error("X-GitHub-Event is {event} but the body is {found}")]
    Mismatch { event: String, found: &'static str },
    /// The payload is JSON but not what GitHub sends for this event: `path` is the field
    /// (`.` for the payload itself), `message` what serde found there.
    #[error("{event} webhook payload is malformed at `{path}`: {message}")]
    Payload {
        event: String,
        path: String,
        message: String,
    },
}

impl IssuesAction {
    /// The `action` GitHub sent (`labeled`); `other` for an action Lever does not model.
    pub fn name(&self) -> &'static str {
        match self {
            IssuesAction::Opened => "opened",
            IssuesAction::Edited => "edited",
            IssuesAction::Labeled { .. } => "labeled",
            IssuesAction::Unlabeled { .. } => "unlabeled",
            IssuesAction::Closed => "closed",
            IssuesAction::Reopened => "reopened",
            IssuesAction::Assigned { .. } => "assigned",
            IssuesAction::Unassigned { .. } => "unassigned",
            IssuesAction::Deleted => "deleted",
            IssuesAction::Transferred { .. } => "transferred",
            IssuesAction::Other => "other",
        }
    }
}

impl CommentAction {
    /// The `action` GitHub sent (`created`); `other` for an action Lever does not model.
    pub fn name(self) -> &'static str {
        match self {
            CommentAction::Created => "created",
            CommentAction::Edited => "edited",
            CommentAction::Deleted => "deleted",
            CommentAction::Other => "other",
        }
    }
}

/// The top-level members of an `issues` or `issue_comment` delivery Lever reads, each kept as
/// its raw JSON text (borrowed, not copied) until the action says what it must hold: the body
/// is read once, and nothing Lever does not read is built (no `Value`, no buffered map). A
/// member sent as `null` is kept as the text `null`.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(default, borrow, deserialize_with = "raw")]
    action: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    issue: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    comment: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    repository: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    sender: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    label: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    assignee: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    changes: Option<&'a RawValue>,
}

/// A present member, `null` included, as its raw text.
fn raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Members<'a> {
    /// Whether the body is an `issue_comment` payload (it has `issue` and `comment`, not
    /// `null`; as [`Shape`] reads it).
    fn is_comment_payload(&self) -> bool {
        let present = |m: Option<&RawValue>| m.is_some_and(|m| m.get() != "null");
        present(self.issue) && present(self.comment)
    }

    /// The required member `name` of `event`, read as `T`.
    fn required<T: Deserialize<'a>>(
        event: &str,
        name: &str,
        member: Option<&'a RawValue>,
    ) -> Result<T, WebhookError> {
        let Some(member) = member else {
            return Err(WebhookError::Payload {
                event: event.to_string(),
                path: ".".to_string(),
                message: format!("missing field `{name}`"),
            });
        };
        read_member(event, name, member)
    }

    /// The member `name` of `event` where GitHub may leave it out or send `null`.
    fn optional<T: Deserialize<'a>>(
        event: &str,
        name: &str,
        member: Option<&'a RawValue>,
    ) -> Result<Option<T>, WebhookError> {
        member.map_or(Ok(None), |m| read_member(event, name, m))
    }
}

/// The members that tell an `issue_comment` payload sent under another event's name.
#[derive(Deserialize)]
struct Shape {
    #[serde(default)]
    issue: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    comment: Option<serde::de::IgnoredAny>,
}

/// The repositories an `installation` / `installation_repositories` delivery names.
#[derive(Deserialize)]
struct AccessPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    repositories: Vec<WebhookRepository>,
    #[serde(default, deserialize_with = "null_as_default")]
    repositories_removed: Vec<WebhookRepository>,
    #[serde(default, deserialize_with = "null_as_default")]
    repositories_added: Vec<WebhookRepository>,
}

/// The `action` of any delivery (`ping` has none).
#[derive(Deserialize)]
struct ActionOnly {
    #[serde(default)]
    action: Option<String>,
}

impl WebhookEvent {
    /// Parses a delivery from its `X-GitHub-Event` header and body bytes.
    ///
    /// The header is not covered by the signature, so the body's shape must agree with it:
    /// an `issue_comment` payload (it has `issue` and `comment`) is refused under any other
    /// name, so a captured `issue_comment.deleted` body cannot be replayed as `issues.deleted`.
    pub fn parse(event: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        if let "issues" | "issue_comment" = event {
            return Self::parse_issue_event(event, body);
        }
        let shape: Shape = read(event, body)?;
        if shape.issue.is_some() && shape.comment.is_some() {
            return Err(mismatch(event));
        }
        match event {
            "installation" | "installation_repositories" => {
                let ActionOnly { action } = read(event, body)?;
                let Some((action, change)) =
                    action.and_then(|a| AccessChange::of(event, &a).map(|c| (a, c)))
                else {
                    return other(event, body);
                };
                let p: AccessPayload = read(event, body)?;
                let repos = match (event, change) {
                    ("installation_repositories", AccessChange::Uninstalled) => {
                        p.repositories_removed
                    }
                    ("installation_repositories", _) => p.repositories_added,
                    _ => p.repositories,
                };
                Ok(WebhookEvent::Access {
                    event: event.to_string(),
                    action,
                    change,
                    repos: repos.into_iter().map(|r| r.full_name).collect(),
                })
            }
            "push" => Ok(WebhookEvent::Push(read(event, body)?)),
            _ => other(event, body),
        }
    }

    /// An `issues` or `issue_comment` delivery, from one pass over the body ([`Members`]):
    /// the payload's shape first (an `issue_comment` payload under `issues` is refused), then
    /// the members the action needs.
    fn parse_issue_event(event: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        let m: Members<'_> = read(event, body)?;
        if event == "issues" && m.is_comment_payload() {
            return Err(mismatch(event));
        }
        let issue: WebhookIssue = Members::required(event, "issue", m.issue)?;
        let repository: WebhookRepository = Members::required(event, "repository", m.repository)?;
        let sender: WebhookUser = Members::required(event, "sender", m.sender)?;
        if event == "issue_comment" {
            let action: CommentAction = Members::required(event, "action", m.action)?;
            let comment: WebhookComment = Members::required(event, "comment", m.comment)?;
            if action == CommentAction::Other {
                return Ok(WebhookEvent::Other {
                    event: event.to_string(),
                    action: Some(Members::required(event, "action", m.action)?),
                });
            }
            return Ok(WebhookEvent::IssueComment {
                action,
                issue,
                comment,
                repository,
                sender,
            });
        }
        let name: String = Members::required(event, "action", m.action)?;
        let action = match name.as_str() {
            "opened" => IssuesAction::Opened,
            "edited" => IssuesAction::Edited,
            "labeled" => IssuesAction::Labeled {
                label: Members::required(event, "label", m.label)?,
            },
            "unlabeled" => IssuesAction::Unlabeled {
                label: Members::required(event, "label", m.label)?,
            },
            "closed" => IssuesAction::Closed,
            "reopened" => IssuesAction::Reopened,
            "assigned" => IssuesAction::Assigned {
                assignee: Members::optional(event, "assignee", m.assignee)?,
            },
            "unassigned" => IssuesAction::Unassigned {
                assignee: Members::optional(event, "assignee", m.assignee)?,
            },
            "deleted" => IssuesAction::Deleted,
            "transferred" => IssuesAction::Transferred {
                changes: Members::required(event, "changes", m.changes)?,
            },
            _ => {
                return Ok(WebhookEvent::Other {
                    event: event.to_string(),
                    action: Some(name),
                });
            }
        };
        Ok(WebhookEvent::Issues {
            action,
            issue,
            repository,
            sender,
        })
    }

    /// Parses a recorded delivery: `name` as [`WebhookEvent::name`] gave it (`issues.labeled`),
    /// `body` as stored (the bytes GitHub sent, or the JSON an older version stored).
    pub fn from_stored(name: &str, body: &[u8]) -> Result<Self, WebhookError> {
        let event = name.split_once('.').map_or(name, |(e, _)| e);
        Self::parse(event, body)
    }

    /// `event.action` (`issues.labeled`, `issue_comment.created`), or just `event` when the
    /// payload has no action (`ping`): the name deliveries are recorded under.
    pub fn name(&self) -> String {
        match self {
            WebhookEvent::Issues { action, .. } => format!("issues.{}", action.name()),
            WebhookEvent::IssueComment { action, .. } => {
                format!("issue_comment.{}", action.name())
            }
            WebhookEvent::Push(_) => "push".to_string(),
            WebhookEvent::Access { event, action, .. }
            | WebhookEvent::Other {
                event,
                action: Some(action),
            } => format!("{event}.{action}"),
            WebhookEvent::Other {
                event,
                action: None,
            } => event.clone(),
        }
    }

    /// The subscription (an entry of [`HANDLED_EVENTS`]) that brings this delivery; `None` for
    /// [`WebhookEvent::Other`]. Exhaustive on purpose: a new variant must name its event.
    pub fn subscription(&self) -> Option<&'static str> {
        match self {
            WebhookEvent::Issues { .. } => Some("issues"),
            WebhookEvent::IssueComment { .. } => Some("issue_comment"),
            WebhookEvent::Push(_) => Some("push"),
            // `installation*` reach every App without a subscription.
            WebhookEvent::Access { .. } | WebhookEvent::Other { .. } => None,
        }
    }

    /// Whether the issue lifecycle reacts to this delivery (when the issue is one Lever
    /// tracks): label changes, close, reopen, assignment, deletion, transfer, new comments.
    pub fn is_lifecycle(&self) -> bool {
        match self {
            WebhookEvent::Issues { action, .. } => matches!(
                action,
                IssuesAction::Labeled { .. }
                    | IssuesAction::Unlabeled { .. }
                    | IssuesAction::Closed
                    | IssuesAction::Reopened
                    | IssuesAction::Assigned { .. }
                    | IssuesAction::Unassigned { .. }
                    | IssuesAction::Deleted
                    | IssuesAction::Transferred { .. }
            ),
            WebhookEvent::IssueComment { action, .. } => *action == CommentAction::Created,
            WebhookEvent::Access { .. } | WebhookEvent::Push(_) | WebhookEvent::Other { .. } => {
                false
            }
        }
    }

    /// The repository (`owner/name`) of an issue or comment delivery.
    pub fn repo(&self) -> Option<&str> {
        match self {
            WebhookEvent::Issues { repository, .. }
            | WebhookEvent::IssueComment { repository, .. } => Some(&repository.full_name),
            WebhookEvent::Push(push) => Some(&push.repository.full_name),
            WebhookEvent::Access { .. } | WebhookEvent::Other { .. } => None,
        }
    }

    /// The issue an issue or comment delivery is about.
    pub fn issue(&self) -> Option<&WebhookIssue> {
        match self {
            WebhookEvent::Issues { issue, .. } | WebhookEvent::IssueComment { issue, .. } => {
                Some(issue)
            }
            WebhookEvent::Access { .. } | WebhookEvent::Push(_) | WebhookEvent::Other { .. } => {
                None
            }
        }
    }

    /// The number of the issue a delivery is about.
    pub fn issue_number(&self) -> Option<u64> {
        self.issue().map(|i| i.number)
    }

    /// Who caused an issue or comment delivery.
    pub fn sender(&self) -> Option<&str> {
        match self {
            WebhookEvent::Issues { sender, .. } | WebhookEvent::IssueComment { sender, .. } => {
                Some(&sender.login)
            }
            WebhookEvent::Access { .. } | WebhookEvent::Push(_) | WebhookEvent::Other { .. } => {
                None
            }
        }
    }
}

fn other(event: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let ActionOnly { action } = read(event, body)?;
    Ok(WebhookEvent::Other {
        event: event.to_string(),
        action,
    })
}

/// Deserializes `body` as `T`, which must come from a JSON object.
fn read<'a, T: Deserialize<'a>>(event: &str, body: &'a [u8]) -> Result<T, WebhookError> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // The common case, without tracking the path; a body that fails is read again to say where.
    if is_object && let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        // Trailing characters after the value make the body not JSON.
        Ok(v) => de.end().map(|()| v).map_err(|e| (".".to_string(), e)),
        Err(e) => Err((e.path().to_string(), e.into_inner())),
    };
    let (path, source) = match parsed {
        Ok(v) if is_object => return Ok(v),
        Ok(_) => {
            return Err(WebhookError::NotObject {
                event: event.to_string(),
            });
        }
        Err(e) => e,
    };
    let event = event.to_string();
    Err(match source.classify() {
        serde_json::error::Category::Data if !is_object => WebhookError::NotObject { event },
        serde_json::error::Category::Data => WebhookError::Payload {
            event,
            path,
            message: source.to_string(),
        },
        _ => WebhookError::NotJson { event, source },
    })
}

/// Deserializes the member `name` of a payload (its raw text) as `T`; an error's path starts
/// at the member (`issue.number`).
fn read_member<'a, T: Deserialize<'a>>(
    event: &str,
    name: &str,
    member: &'a RawValue,
) -> Result<T, WebhookError> {
    let text = member.get();
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => return Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." {
                name.to_string()
            } else {
                format!("{name}.{path}")
            };
            (path, e.into_inner().to_string())
        }
    };
    Err(WebhookError::Payload {
        event: event.to_string(),
        path,
        message,
    })
}

/// The error for a body of `issue_comment` sent under another event's name.
fn mismatch(event: &str) -> WebhookError {
    WebhookError::Mismatch {
        event: event.to_string(),
        found: "an issue_comment payload (it has `issue` and `comment`)",
    }
}

/// `null` (which GitHub sends for some absent values) reads as the default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
