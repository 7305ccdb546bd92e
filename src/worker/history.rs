//! Whose `cto-approved` a closed issue carries, and whether it belongs to the current request,
//! from the issue's events (webhooks can be missed, late or out of order).
//!
//! GitHub lists an issue's events oldest first and cannot sort them the other way, so Lever
//! asks for the first page only to learn the last page's number (`Link: rel="last"`), then reads
//! from the last page backwards until the answer is certain: the newest of a `cto-approved`
//! labeled or unlabeled event, a `reopened` event, or an `exception-requested` labeled event
//! decides. Pages are asked by number on relative routes (octocrab sends the installation token
//! only there). When the history cannot be read completely (an error that persists, more pages
//! than [`MAX_PAGES`]) the answer is [`LabelHistory::Unreadable`]: the close is not an approval.

use super::{JobError, Run, approvers};
use crate::app::App;
use crate::domain::lifecycle::{LabelAuthor, LabelHistory, labels};
use crate::github::{GitHubError, IssueEvent};

/// At most this many pages (100 events each) are read for one close: Lever's own cap.
pub const MAX_PAGES: u32 = 100;

/// A transient GitHub failure (5xx, rate limit, network) is retried with the job's backoff as
/// long as any job is (the attempt before [`super::MAX_ATTEMPTS`]: about a day); after that the
/// history counts as unreadable. (It was 3 attempts, a few minutes: the fault test, with 30 % of
/// GitHub calls failing, saw an approver's close become "not an approval".)
pub const ATTEMPTS: i32 = super::MAX_ATTEMPTS - 1;

/// The event that settles the question, the newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decisive {
    /// `cto-approved` applied by this login (empty when GitHub names nobody).
    Labeled(String),
    /// `cto-approved` removed.
    Removed,
    /// The issue was reopened (a new period: approvals before it do not count).
    Reopened,
    /// `exception-requested` applied (a new request: approvals before it do not count).
    Requested,
}

/// What one event says, if it settles the question (events are looked at newest first).
pub fn decisive(e: &IssueEvent) -> Option<Decisive> {
    let label_is = |name: &str| {
        e.label
            .as_ref()
            .is_some_and(|l| l.name.eq_ignore_ascii_case(name))
    };
    match e.event.as_str() {
        "labeled" if label_is(labels::CTO_APPROVED) => Some(Decisive::Labeled(
            e.actor
                .as_ref()
                .map(|a| a.login.clone())
                .unwrap_or_default(),
        )),
        "unlabeled" if label_is(labels::CTO_APPROVED) => Some(Decisive::Removed),
        "reopened" => Some(Decisive::Reopened),
        "labeled" if label_is(labels::EXCEPTION_REQUESTED) => Some(Decisive::Requested),
        _ => None,
    }
}

/// Why the history could not be read.
enum Unread {
    GitHub(GitHubError),
    Cap,
}

/// The newest decisive event of the issue's history (`None`: there is none at all).
async fn newest_decisive(app: &App, repo: &str, number: u64) -> Result<Option<Decisive>, Unread> {
    let first = app
        .github
        .issue_events(repo, number, 1)
        .await
        .map_err(Unread::GitHub)?;
    let last = first.last_page.unwrap_or(1).max(1);
    let mut first_page = Some(first.events);
    let mut read = 1;
    for page in (1..=last).rev() {
        let events = match page {
            1 => first_page.take().unwrap_or_default(),
            _ => {
                if read >= MAX_PAGES {
                    return Err(Unread::Cap);
                }
                read += 1;
                app.github
                    .issue_events(repo, number, page)
                    .await
                    .map_err(Unread::GitHub)?
                    .events
            }
        };
        if let Some(d) = events.iter().rev().find_map(decisive) {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// What the history of `repo#number` says about the `cto-approved` it carries at its close.
/// A transient failure is an error (the job retries) until [`ATTEMPTS`]; after that, or on a
/// failure that will not pass, the history is unreadable.
pub(super) async fn label_history(
    app: &App,
    run: &Run,
    repo: &str,
    number: u64,
    bot: &str,
) -> Result<LabelHistory, JobError> {
    let found = match newest_decisive(app, repo, number).await {
        Ok(found) => found,
        Err(Unread::GitHub(e))
            if (e.is_retryable() || matches!(e, GitHubError::Unauthorized(_)))
                && run.attempts < ATTEMPTS =>
        {
            return Err(e.into());
        }
        Err(Unread::GitHub(e)) => {
            tracing::warn!(repo, number, error = %e, "the issue's history could not be read");
            return Ok(LabelHistory::Unreadable {
                why: format!("GitHub answered: {e}"),
            });
        }
        Err(Unread::Cap) => {
            return Ok(LabelHistory::Unreadable {
                why: format!(
                    "it has more than {} events since the last approval",
                    MAX_PAGES * 100
                ),
            });
        }
    };
    let stale = |why: &str| LabelHistory::Stale {
        why: why.to_string(),
    };
    Ok(match found {
        Some(Decisive::Labeled(login)) if login.is_empty() || login.eq_ignore_ascii_case(bot) => {
            stale("the issue's events do not name a person who applied it")
        }
        Some(Decisive::Labeled(login)) => {
            let approver = approvers::is_approver(app, repo, &login).await?;
            LabelHistory::Current(LabelAuthor { login, approver })
        }
        Some(Decisive::Removed) => {
            stale("the issue's events say it was removed after it was last applied")
        }
        Some(Decisive::Reopened) => stale(
            "it was applied before the issue was last reopened, and an approval counts for one request only",
        ),
        Some(Decisive::Requested) => stale(
            "it was applied before the latest exception request, and an approval counts for one request only",
        ),
        None => stale("the issue's events do not say who applied it"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::{Label, User};

    fn event(kind: &str, label: Option<&str>, actor: &str) -> IssueEvent {
        IssueEvent {
            event: kind.into(),
            actor: Some(User {
                login: actor.into(),
                kind: None,
            }),
            label: label.map(|l| Label { name: l.into() }),
            assignee: None,
            created_at: None,
        }
    }

    #[test]
    fn which_events_settle_the_question() {
        #[rustfmt::skip]
        let cases = [
            (event("labeled", Some("cto-approved"), "cto-user"), Some(Decisive::Labeled("cto-user".into()))),
            (event("labeled", Some("CTO-Approved"), "cto-user"), Some(Decisive::Labeled("cto-user".into()))),
            (event("unlabeled", Some("cto-approved"), "bob"), Some(Decisive::Removed)),
            (event("reopened", None, "lever-test[bot]"), Some(Decisive::Reopened)),
            (event("labeled", Some("exception-requested"), "bob"), Some(Decisive::Requested)),
            (event("unlabeled", Some("exception-requested"), "bob"), None),
            (event("labeled", Some("in-progress"), "bob"), None),
            (event("closed", None, "bob"), None),
            (event("assigned", None, "bob"), None),
        ];
        for (e, want) in cases {
            assert_eq!(decisive(&e), want, "{e:?}");
        }
        let mut ghost = event("labeled", Some("cto-approved"), "x");
        ghost.actor = None;
        assert_eq!(decisive(&ghost), Some(Decisive::Labeled(String::new())));
    }
}
