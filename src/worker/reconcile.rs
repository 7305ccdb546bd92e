//! `reconcile`: what Lever believes about its issues is compared with GitHub, beyond the 3 days
//! GitHub keeps webhook deliveries (so beyond what `redeliver` can bring back). On start-up and
//! every `[sync] reconcile`, for each repository with tracked issues, Lever lists the issues
//! carrying its `security-finding` label updated since the last change it saw
//! (`GET /repos/{owner}/{repo}/issues?labels=security-finding&state=all&since=…`), with the
//! ETag of the previous answer in `If-None-Match`: while nothing changed, GitHub answers 304,
//! which costs nothing against the rate limit.
//!
//! Each difference between an issue and the group's state (open or closed, vocabulary labels,
//! assignee) becomes the event Lever missed, fed through the same pure `lifecycle::step` as a
//! webhook. Who caused it is read from the issue's events (newest first), as for a webhook's
//! sender: a difference no event explains is left alone (it may be one of Lever's own effects,
//! parked), an event by Lever's bot only keeps the state in step, and a `cto-approved` counts
//! only when its author is an approver, with the same checks as the webhook path (a close of an
//! issue carrying it reads the label's history).
//!
//! A group whose effects are still waiting is reconciled on a later run (the difference may be
//! Lever's own write in flight); the cursor stays before its issue's update.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobError, JobOutput, Run, approvers};
use crate::app::App;
use crate::domain::lifecycle::{Actor, Event, State, labels};
use crate::github::{Changed, Issue, IssueEvent};
use crate::store::{ChangeSet, GroupRecord, GroupWrite, Job, NewJob};

/// At most this many pages of 100 changed issues are read per repository and run; the rest
/// follow on the next run (the cursor moves only past what was read).
pub const MAX_PAGES: u32 = 10;

/// Where the last run stopped in a repository (key `reconcile:<owner/repo>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The latest issue update seen (GitHub's `since` is inclusive: that issue comes back, and
    /// the answer stays the same while nothing changes, so its ETag matches).
    pub since: Option<DateTime<Utc>>,
    /// The ETag of the answer for `since`.
    pub etag: Option<String>,
}

fn kv_key(repo: &str) -> String {
    format!("reconcile:{}", repo.to_ascii_lowercase())
}

/// One difference between an issue on GitHub and the group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    Reopened,
    Closed { state_reason: Option<String> },
    Labeled(String),
    Unlabeled(String),
    Assigned(String),
    Unassigned(String),
}

impl Difference {
    /// Whether an issue event (`labeled`, `closed`, ...) is the change this difference is.
    pub fn explained_by(&self, e: &IssueEvent) -> bool {
        let label_is = |name: &str| {
            e.label
                .as_ref()
                .is_some_and(|l| l.name.eq_ignore_ascii_case(name))
        };
        let assignee_is = |login: &str| {
            e.assignee
                .as_ref()
                .is_some_and(|a| a.login.eq_ignore_ascii_case(login))
        };
        match self {
            Difference::Reopened => e.event == "reopened",
            Difference::Closed { .. } => e.event == "closed",
            Difference::Labeled(l) => e.event == "labeled" && label_is(l),
            Difference::Unlabeled(l) => e.event == "unlabeled" && label_is(l),
            Difference::Assigned(u) => e.event == "assigned" && assignee_is(u),
            Difference::Unassigned(u) => e.event == "unassigned" && assignee_is(u),
        }
    }
}

fn is_vocabulary(label: &str) -> bool {
    labels::VOCABULARY
        .iter()
        .any(|(n, _, _)| n.eq_ignore_ascii_case(label))
}

/// What differs between `issue` (as GitHub lists it) and `state` (what Lever believes), in the
/// order the events are fed: a reopen first, then labels (removals first, `cto-approved` last),
/// then the assignee, then a close (so an approval precedes the close that starts the
/// exception). Pure.
pub fn differences(state: &State, issue: &Issue) -> Vec<Difference> {
    let mut out = Vec::new();
    let open = issue.state != "closed";
    if open && !state.open {
        out.push(Difference::Reopened);
    }
    let have: Vec<String> = issue
        .labels
        .iter()
        .map(|l| l.name.to_ascii_lowercase())
        .filter(|l| is_vocabulary(l))
        .collect();
    let believed: Vec<String> = state
        .labels
        .iter()
        .map(|l| l.to_ascii_lowercase())
        .collect();
    for l in believed.iter().filter(|l| !have.contains(l)) {
        out.push(Difference::Unlabeled(l.clone()));
    }
    let mut added: Vec<&String> = have.iter().filter(|l| !believed.contains(l)).collect();
    added.sort_by_key(|l| (l.as_str() == labels::CTO_APPROVED, l.as_str()));
    out.extend(added.into_iter().map(|l| Difference::Labeled(l.clone())));
    let assignees = issue.assignee_logins();
    let holds = |login: &str| assignees.iter().any(|a| a.eq_ignore_ascii_case(login));
    if let Some(a) = state.assignee.as_deref()
        && !holds(a)
    {
        out.push(Difference::Unassigned(a.to_string()));
    }
    if let Some(first) = assignees.first()
        && !state.assignee.as_deref().is_some_and(holds)
    {
        out.push(Difference::Assigned(first.clone()));
    }
    if !open && state.open {
        out.push(Difference::Closed {
            state_reason: issue.state_reason.clone(),
        });
    }
    out
}

/// The newest events of an issue (its last page, and the page before when the last is short),
/// newest first.
async fn newest_events(app: &App, repo: &str, number: u64) -> Result<Vec<IssueEvent>, JobError> {
    let first = app.github.issue_events(repo, number, 1).await?;
    let last = first.last_page.unwrap_or(1).max(1);
    let mut events = if last == 1 {
        first.events
    } else {
        let mut before = if last > 2 {
            app.github
                .issue_events(repo, number, last - 1)
                .await?
                .events
        } else {
            first.events
        };
        before.extend(app.github.issue_events(repo, number, last).await?.events);
        before
    };
    events.reverse();
    Ok(events)
}

/// The events Lever missed about `issue`, with who caused each (from the issue's events).
async fn missed_events(
    app: &App,
    run: &Run,
    repo: &str,
    issue: &Issue,
    diffs: Vec<Difference>,
    bot: &str,
) -> Result<Vec<Event>, JobError> {
    let timeline = newest_events(app, repo, issue.number).await?;
    let mut out = Vec::new();
    for diff in diffs {
        let Some(login) = timeline.iter().find(|e| diff.explained_by(e)).map(|e| {
            e.actor
                .as_ref()
                .map(|a| a.login.clone())
                .unwrap_or_default()
        }) else {
            tracing::info!(
                repo,
                issue = issue.number,
                ?diff,
                "a difference no issue event explains: left alone"
            );
            continue;
        };
        let is_bot = login.eq_ignore_ascii_case(bot);
        let person = |approver: bool| {
            if is_bot {
                Actor::Lever
            } else {
                Actor::Person {
                    login: login.clone(),
                    approver,
                }
            }
        };
        out.push(match diff {
            Difference::Reopened => Event::Reopened { by: person(false) },
            Difference::Closed { state_reason } => {
                let cto_approved = if !is_bot && issue.has_label(labels::CTO_APPROVED) {
                    Some(super::history::label_history(app, run, repo, issue.number, bot).await?)
                } else {
                    None
                };
                Event::Closed {
                    by: person(false),
                    state_reason,
                    cto_approved,
                }
            }
            Difference::Labeled(label) => {
                let approver = !is_bot
                    && label.eq_ignore_ascii_case(labels::CTO_APPROVED)
                    && approvers::is_approver(app, repo, &login).await?;
                Event::Labeled {
                    label,
                    by: person(approver),
                }
            }
            Difference::Unlabeled(label) => Event::Unlabeled {
                label,
                by: person(false),
            },
            Difference::Assigned(user) => Event::Assigned {
                user,
                by: person(false),
            },
            Difference::Unassigned(user) => Event::Unassigned {
                user,
                by: person(false),
            },
        });
    }
    Ok(out)
}

/// Feeds `events` to the group in order through `lifecycle::step`, as one write of the group.
fn apply(
    app: &App,
    group: &GroupRecord,
    events: &[Event],
    updated_at: Option<DateTime<Utc>>,
    source: &str,
    now: DateTime<Utc>,
) -> ChangeSet {
    let mut current = group.clone();
    let mut changes = ChangeSet::default();
    for event in events {
        let mut step = super::lifecycle::step(&app.config, &current, event, source, now);
        for write in std::mem::take(&mut step.groups) {
            if let GroupWrite::Update { record, .. } = write {
                current = record;
            }
        }
        changes.merge(step);
    }
    current.data.last_event_at = current.data.last_event_at.max(updated_at);
    changes.groups.push(GroupWrite::Update {
        record: current,
        expected_version: group.version,
    });
    changes
}

/// One run: every repository with tracked issues, then the next run is scheduled.
pub async fn run(app: &App, run: &Run) -> Result<JobOutput, JobError> {
    let now = app.now();
    // Webhooks accepted but not applied yet: what GitHub shows already includes them, so
    // reconciling now would apply the same change a second time (the crash test saw a
    // non-approver's `cto-approved` refused twice). Wait until they are applied.
    if app
        .store
        .jobs(Some(crate::store::JobState::Pending))
        .await?
        .iter()
        .any(|j| j.job.kind() == "github-event")
    {
        return Ok(JobOutput {
            postpone: Some(super::Postponed {
                run_at: now + chrono::Duration::minutes(1),
                reason: "webhooks accepted but not applied yet".into(),
            }),
            ..JobOutput::default()
        });
    }
    let source = run.source();
    let mut by_repo: BTreeMap<String, Vec<GroupRecord>> = BTreeMap::new();
    for g in app.store.list_groups(None).await? {
        if g.issue_number.is_some() && !g.state().deleted {
            by_repo
                .entry(g.repo.to_ascii_lowercase())
                .or_default()
                .push(g);
        }
    }
    let mut changes = ChangeSet::default();
    let mut bot: Option<String> = None;
    for (repo, groups) in by_repo {
        let key = kv_key(&repo);
        let cursor: Cursor = match app.store.kv_get(&key).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => Cursor::default(),
        };
        let mut newest = cursor.since;
        // The earliest update of an issue left for a later run (its group's effects wait).
        let mut held: Option<DateTime<Utc>> = None;
        let mut etag = None;
        let mut read_all = true;
        let mut page = 1;
        loop {
            let asked = app
                .github
                .issues_changed(
                    &repo,
                    labels::SECURITY_FINDING,
                    cursor.since,
                    cursor.etag.as_deref().filter(|_| page == 1),
                    page,
                )
                .await;
            let (issues, page_etag, more) = match asked {
                Ok(Changed::NotModified) => {
                    etag = cursor.etag.clone();
                    break;
                }
                Ok(Changed::Issues { issues, etag, more }) => (issues, etag, more),
                // The repository refuses Lever: its effects are parked on their own (see
                // `reroute`); nothing to compare with.
                Err(e) if e.is_refusal() => {
                    tracing::warn!(%repo, error = %e, "cannot reconcile the issues of a repository that refuses Lever");
                    read_all = false;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            if page == 1 && !more {
                etag = page_etag;
            }
            for issue in issues {
                let Some(group) = groups.iter().find(|g| g.issue_number == Some(issue.number))
                else {
                    newest = newest.max(issue.updated_at);
                    continue;
                };
                let diffs = differences(&group.state(), &issue);
                if diffs.is_empty() {
                    newest = newest.max(issue.updated_at);
                    continue;
                }
                if !app.store.outbox(&group.group_key).await?.is_empty() {
                    held = match (held, issue.updated_at) {
                        (Some(h), Some(u)) => Some(h.min(u)),
                        (h, u) => h.or(u),
                    };
                    continue;
                }
                let bot = match &bot {
                    Some(b) => b.clone(),
                    None => {
                        let b = app.github.bot_login().await?;
                        bot = Some(b.clone());
                        b
                    }
                };
                let events = missed_events(app, run, &repo, &issue, diffs, &bot).await?;
                if !events.is_empty() {
                    tracing::warn!(%repo, issue = issue.number, events = events.len(), "reconcile: applying changes Lever missed");
                    changes.merge(apply(app, group, &events, issue.updated_at, &source, now));
                }
                newest = newest.max(issue.updated_at);
            }
            if !more || page >= MAX_PAGES {
                read_all &= !more;
                break;
            }
            page += 1;
        }
        // An ETag is kept only for a complete first page: a 304 then means nothing changed.
        let next = match held {
            Some(h) => Cursor {
                since: Some(h),
                etag: None,
            },
            None => Cursor {
                since: newest,
                etag: etag.filter(|_| read_all),
            },
        };
        if next != cursor {
            changes
                .kv
                .push((key, serde_json::to_string(&next).expect("serializable")));
        }
    }
    if let Some(every) = app.config.settings.lifecycle.sync.reconcile {
        changes.jobs.push(NewJob::new(Job::Reconcile, now + every));
    }
    Ok(JobOutput::done(changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::{Label, User};

    fn issue(state: &str, labels: &[&str], assignees: &[&str]) -> Issue {
        Issue {
            number: 1,
            title: "t".into(),
            body: None,
            state: state.into(),
            state_reason: (state == "closed").then(|| "completed".to_string()),
            html_url: String::new(),
            user: None,
            labels: labels
                .iter()
                .map(|l| Label {
                    name: l.to_string(),
                })
                .collect(),
            assignees: assignees
                .iter()
                .map(|a| User {
                    login: a.to_string(),
                    kind: None,
                })
                .collect(),
            created_at: None,
            updated_at: None,
        }
    }

    fn state(open: bool, labels: &[&str], assignee: Option<&str>) -> State {
        State {
            open,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            assignee: assignee.map(str::to_string),
            ..State::default()
        }
    }

    #[test]
    fn each_difference_in_the_order_it_is_fed() {
        use Difference::*;
        #[rustfmt::skip]
        let rows: Vec<(&str, State, Issue, Vec<Difference>)> = vec![
            ("same", state(true, &["security-finding", "acknowledged"], Some("bob")), issue("open", &["security-finding", "acknowledged", "severity:high"], &["bob"]), vec![]),
            ("label removed", state(true, &["security-finding", "acknowledged"], Some("bob")), issue("open", &["security-finding"], &["bob"]), vec![Unlabeled("acknowledged".into())]),
            ("non-vocabulary labels do not count", state(true, &[], Some("bob")), issue("open", &["wontfix"], &["bob"]), vec![]),
            ("approval last among labels, before the close", state(true, &[], Some("bob")), issue("closed", &["cto-approved", "acknowledged"], &["bob"]),
                vec![Labeled("acknowledged".into()), Labeled("cto-approved".into()), Closed { state_reason: Some("completed".into()) }]),
            ("reopened first", state(false, &["cto-approved"], Some("bob")), issue("open", &[], &["bob"]), vec![Reopened, Unlabeled("cto-approved".into())]),
            ("reassigned", state(true, &[], Some("bob")), issue("open", &[], &["alice"]), vec![Unassigned("bob".into()), Assigned("alice".into())]),
            ("unassigned", state(true, &[], Some("bob")), issue("open", &[], &[]), vec![Unassigned("bob".into())]),
            ("assignee case", state(true, &[], Some("Bob")), issue("open", &[], &["bob", "carol"]), vec![]),
        ];
        let mut wrong = Vec::new();
        for (name, s, i, want) in rows {
            let got = differences(&s, &i);
            if got != want {
                wrong.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
