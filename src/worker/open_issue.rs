//! `open-issue`: create the explanation issue of a group, exactly once.
//!
//! A first attempt just creates the issue (one call). A retry whose earlier attempt may have
//! succeeded (crash, timeout, lost response) first looks for the group's marker among the
//! issues the App created in the repository, and adopts the issue it finds.
//!
//! The issue is created with its owner. When GitHub refuses the owner (not a collaborator),
//! the state machine decides who is next (`AssigneeRefused`, the same decision as for any
//! refused assignment) and the issue is created with that person, its body saying why.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{JobError, JobOutput, Run};
use crate::app::App;
use crate::domain::lifecycle;
use crate::domain::{Finding, GroupKey};
use crate::explain::{IssueInput, RenderedIssue, parse_marker};
use crate::github::Issue;
use crate::routing::Route;
use crate::store::{AuditEntry, ChangeSet, GroupRecord, GroupStatus, GroupWrite, Job, NewJob};

/// Pages of the App's recent issues searched for a marker on a retry.
const ADOPT_PAGES: u32 = 3;

pub(super) async fn run(app: &App, run: &Run, key: &GroupKey) -> Result<JobOutput, JobError> {
    let key = key.clone();
    let Some(group) = app.store.group(&key).await? else {
        return Ok(JobOutput::default());
    };
    if group.issue_number.is_some() {
        return Ok(JobOutput::default());
    }
    let findings: Vec<Finding> = app
        .store
        .findings_in_group(&key)
        .await?
        .into_iter()
        .map(|r| r.finding)
        .collect();
    if findings.is_empty() {
        return Err(JobError::permanent(format!("group {key} has no findings")));
    }
    let now = app.now();
    // Tags the findings do not carry, from the Tagging API: a group whose every failing
    // resource carries an ignore tag its account honours opens nothing (the tag audit has it
    // look again when one of those tags changes).
    let findings = super::lifecycle::with_tags(app, findings).await;
    let view = super::lifecycle::findings_view(&app.config, &findings, now);
    if view.failing.is_empty() && view.unconfirmed.is_empty() && !view.ignored.is_empty() {
        tracing::info!(group = %key, "every resource carries an honoured ignore tag; no issue opens");
        let mut changes = ChangeSet::default();
        changes.audit.push(AuditEntry {
            seq: 0,
            at: now,
            actor: "lever".into(),
            action: "open-skipped-ignored".into(),
            group_key: Some(key.clone()),
            issue: None,
            source: Some(run.source()),
            detail: json!({ "ignored": view.ignored }),
        });
        return Ok(JobOutput::done(changes));
    }
    let mut route: Route = group.data.route.clone();
    let mut notes = route.warnings.clone();
    if !view.ignore_tagged.is_empty() {
        let tags: std::collections::BTreeSet<&str> =
            view.ignore_tagged.values().map(String::as_str).collect();
        notes.push(format!(
            "{} resource(s) carry an ignore tag ({}), which this account honours only during ramp-up: it does not \
             stop this issue. Fix the resources, or ask for an exception (see below).",
            view.ignore_tagged.len(),
            tags.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(previous) = group.data.recreated_from.as_deref() {
        notes.push(format!(
            "The previous issue for this problem ({previous}) was deleted, but Security Hub still reports it, so Lever \
             opened this one. To stop tracking a risk, ask for an exception instead."
        ));
    }

    // A repository that refuses Lever, or a public one: the issue opens in the fallback
    // repository, saying why (see `reroute::choose_repo`).
    let rerouted = super::reroute::choose_repo(app, &group, &mut route, &mut notes, now).await?;
    let repo = route.repo.to_string();
    let ensure_labels = app
        .store
        .kv_get(&format!("labels:{}", repo.to_ascii_lowercase()))
        .await?
        .is_none();

    let due = super::lifecycle::due_date(&app.config, &group, now);
    // The state the issue starts in: owned by the first of the chain, with the owner's
    // acknowledgement deadline and the fix deadline starting now.
    let mut planned = group.clone();
    planned.repo = repo.clone();
    planned.data.route = route.clone();
    let ctx = super::lifecycle::ctx(&app.config, &planned, now);
    let mut state = lifecycle::State::opened(route.chain.first().cloned(), view, &[]);
    state.ack_deadline = ctx.ack_deadline;
    state.due = due;
    let existing = if run.is_retry() {
        find_by_marker(app, &repo, &key).await?
    } else {
        made_before_this_process(app, &repo, &group).await?
    };
    if let Some(issue) = existing {
        tracing::info!(group = %key, issue = issue.number, "adopting the issue an earlier attempt (or a store restored from backup) did not record");
        let state = lifecycle::State {
            assignee: issue.assignees.first().map(|u| u.login.clone()),
            ..state
        };
        return Ok(JobOutput::done(record(
            app,
            &group,
            &route,
            &issue,
            state,
            "issue-adopted",
            ensure_labels,
            now,
            run,
        )));
    }

    // The noise cap: a new issue of a product that opened its quota within the hour waits.
    if let Some(held) = super::noise::admit(app, &planned, &repo, now).await? {
        return Ok(held);
    }

    // The account as it is now: an issue opened after `enforce_from` is enforced.
    let policy = app.config.account_at(&findings[0].account_id, now);
    let account = &policy;
    let render = |owner: Option<&str>, notes: &[String]| -> Result<RenderedIssue, JobError> {
        app.renderer
            .render(&IssueInput {
                group_key: &key,
                findings: &findings,
                account,
                owner,
                approvers: &app.config.settings.approvers,
                ignore_tag: &app.config.settings.policy.ignore_tag,
                notes,
                due,
            })
            .map_err(|e| JobError::permanent(e.to_string()))
    };

    // Why the owner is not the first of the chain (the state machine's comment, in the body).
    let mut refusal: Option<String> = None;
    let issue = loop {
        let owner = state.assignee.clone();
        let mut notes = notes.clone();
        notes.extend(refusal.clone());
        let rendered = render(owner.as_deref(), &notes)?;
        let created = app
            .github
            .create_issue(
                &repo,
                &rendered.title,
                &rendered.body,
                &rendered.labels,
                owner.as_slice(),
            )
            .await;
        let user = match (created, owner) {
            (Ok(issue), _) => break issue,
            (Err(e), Some(user)) if e.is_unassignable() => user,
            (Err(e), _) if e.is_refusal() && rerouted.is_some() => {
                let r = rerouted.as_ref().expect("checked");
                return Err(JobError::permanent(format!(
                    "{} refuses Lever ({}), and the fallback repository {repo} refused too: {e}",
                    r.repo, r.reason
                )));
            }
            (Err(e), _) => return Err(e.into()),
        };
        // GitHub refused the owner: the state machine names the next person (or nobody).
        // Every refusal joins the walk's refused list, so this ends within the chain's length.
        let out = lifecycle::transition(
            &state,
            &lifecycle::Event::AssigneeRefused { user: user.clone() },
            &ctx,
            now,
        );
        tracing::warn!(group = %key, refused = %user, next = ?out.state.assignee, "assignee refused by GitHub");
        // Its `Assign` is the next create's assignee, its comment the body's note.
        refusal = out
            .actions
            .iter()
            .rev()
            .find_map(|a| match a {
                lifecycle::Action::Comment { body } => Some(body.clone()),
                _ => None,
            })
            .or(refusal);
        state = out.state;
    };
    tracing::info!(group = %key, issue = issue.number, repo = %repo, owner = ?state.assignee, "issue opened");
    let mut changes = record(
        app,
        &group,
        &route,
        &issue,
        state,
        "issue-opened",
        ensure_labels,
        now,
        run,
    );
    if let Some(r) = rerouted {
        changes.audit.push(AuditEntry {
            seq: 0,
            at: now,
            actor: "lever".into(),
            action: "issue-rerouted".into(),
            group_key: Some(key.clone()),
            issue: Some(format!("{repo}#{}", issue.number)),
            source: Some(run.source()),
            detail: json!({ "from": r.repo, "to": repo, "reason": r.reason, "previous": r.previous }),
        });
    }
    Ok(JobOutput::done(changes))
}

/// The issue carrying the group's marker among the App's own recent issues in `repo`.
async fn find_by_marker(app: &App, repo: &str, key: &GroupKey) -> Result<Option<Issue>, JobError> {
    Ok(scan_markers(app, repo).await?.remove(key))
}

/// The issues the App's bot created in `repo` (its most recent [`ADOPT_PAGES`] pages), by the
/// group marker in their body. Issues a person wrote with a pasted marker are not trusted.
async fn scan_markers(app: &App, repo: &str) -> Result<HashMap<GroupKey, Issue>, JobError> {
    let bot = app.github.bot_login().await?;
    let mut found = HashMap::new();
    for page in 1..=ADOPT_PAGES {
        let issues = app
            .github
            .list_issues(repo, None, Some(&bot), page, 100)
            .await?;
        let n = issues.len();
        for issue in issues {
            let by_app = issue
                .user
                .as_ref()
                .is_some_and(|u| u.login.eq_ignore_ascii_case(&bot));
            if let Some(key) = issue.body.as_deref().and_then(parse_marker)
                && by_app
            {
                found.entry(key).or_insert(issue);
            }
        }
        if n < 100 {
            break;
        }
    }
    Ok(found)
}

/// Before this process creates its first issue in `repo`, the issues the App already made
/// there are read once (a few requests per repository per process): a store restored from an
/// older backup does not know the issues made since, and adopts them instead of opening
/// duplicates.
/// An issue found so is used once (taken from the cache), and never the deleted issue a group
/// is being recreated for.
async fn made_before_this_process(
    app: &App,
    repo: &str,
    group: &GroupRecord,
) -> Result<Option<Issue>, JobError> {
    let lower = repo.to_ascii_lowercase();
    let known = app.caches.markers.lock().await.contains_key(&lower);
    // The scan runs without holding the cache: other repositories' jobs do not wait for it
    // (two jobs of one repository may both scan; the first result is kept).
    let scanned = if known {
        None
    } else {
        Some(scan_markers(app, repo).await?)
    };
    let mut cache = app.caches.markers.lock().await;
    if let Some(scanned) = scanned {
        cache.entry(lower.clone()).or_insert(scanned);
    }
    let found = cache
        .get_mut(&lower)
        .and_then(|known| known.remove(&group.group_key));
    Ok(found.filter(|i| group.data.recreated_from.as_deref() != Some(i.html_url.as_str())))
}

/// What to commit for the created (or adopted) issue: the group with the issue and its
/// starting `state` (the labels and open/closed as GitHub returned them), its timers, the
/// jobs that follow, the audit entry.
#[allow(clippy::too_many_arguments)]
fn record(
    app: &App,
    group: &GroupRecord,
    route: &Route,
    issue: &Issue,
    mut state: lifecycle::State,
    action: &str,
    ensure_labels: bool,
    now: DateTime<Utc>,
    run: &Run,
) -> ChangeSet {
    let repo = route.repo.to_string();
    let mut data = group.data.clone();
    data.route = route.clone();
    let mut updated = group.clone();
    updated.repo = repo.clone();
    updated.issue_number = Some(issue.number);
    updated.issue_url = Some(issue.html_url.clone());
    updated.status = if issue.state == "closed" {
        GroupStatus::Closed
    } else {
        GroupStatus::Open
    };
    let owner = state.assignee.clone();
    updated.assignee = owner.clone();
    // The vocabulary labels the issue carries, and whether it is open, as GitHub says.
    let issue_labels: Vec<String> = issue.labels.iter().map(|l| l.name.clone()).collect();
    state.labels = lifecycle::State::opened(None, Default::default(), &issue_labels).labels;
    state.open = issue.state != "closed";
    data.lifecycle = Some(state.clone());
    data.recreated_from = None;
    data.reroute = None;
    // The mode the issue opens in (a group planned during ramp-up may open after
    // `enforce_from`): what the `enforcement` job reads to promote it, once.
    data.mode = app
        .config
        .account_at(&data.account_id, now)
        .mode
        .as_str()
        .to_string();
    updated.data = data;
    updated.updated_at = now;
    let mut changes = ChangeSet::default();
    changes.groups.push(GroupWrite::Update {
        record: updated,
        expected_version: group.version,
    });
    let timers = [
        (lifecycle::Timer::Escalation, state.ack_deadline),
        (
            lifecycle::Timer::Sla,
            state
                .due
                .map(|d| (d - app.config.settings.escalation.sla.reminder).max(now)),
        ),
    ];
    for (timer, at) in timers {
        if let Some(at) = at {
            changes
                .jobs
                .push(NewJob::new(Job::Timer(timer, group.group_key.clone()), at));
        }
    }
    if ensure_labels {
        changes
            .jobs
            .push(NewJob::new(Job::EnsureLabels(repo.clone()), now));
    }
    if app.config.settings.securityhub.writeback {
        changes.jobs.push(NewJob::new(
            Job::NotifyFindings(group.group_key.clone()),
            now,
        ));
    }
    changes.audit.push(AuditEntry {
        seq: 0,
        at: now,
        actor: "lever".into(),
        action: action.into(),
        group_key: Some(group.group_key.clone()),
        issue: Some(format!("{repo}#{}", issue.number)),
        source: Some(run.source()),
        detail: json!({
            "url": issue.html_url,
            "owner": owner,
            "chain": route.chain,
            "refused": state.refused,
        }),
    });
    changes
}
