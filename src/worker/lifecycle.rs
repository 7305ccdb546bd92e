//! Feeding the lifecycle state machine: GitHub deliveries, findings updates and timers become
//! events; the transition's new state, its timers and its effects are committed together, and
//! the effects run afterwards from that durable outbox (see `effects`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{JobError, Outcome, approvers};
use crate::app::App;
use crate::domain::lifecycle::{
    self, Action, Actor, Ctx, Event, FindingsView, LabelAuthor, State, Timer, labels,
};
use crate::domain::{Finding, GroupKey, Severity};
use crate::github::{CommentAction, IssuesAction, WebhookEvent, WebhookUser};
use crate::pipeline::jobs;
use crate::routing;
use crate::store::{AuditEntry, ChangeSet, GroupRecord, GroupStatus, GroupWrite, Job, NewJob};

/// An effect waiting in a group's outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub id: String,
    pub action: Action,
    /// The event that caused it (`github:<delivery>`, `job:<id>`).
    pub source: String,
}

/// The lifecycle state stored with a group (a group opened before the state existed gets one
/// derived from its status).
pub fn state_of(group: &GroupRecord) -> State {
    serde_json::from_value(group.data["lifecycle"].clone()).unwrap_or_else(|_| State {
        open: group.status == GroupStatus::Open,
        assignee: group.assignee.clone(),
        ..State::default()
    })
}

pub fn outbox_of(group: &GroupRecord) -> Vec<Effect> {
    serde_json::from_value(group.data["outbox"].clone()).unwrap_or_default()
}

fn severity_of(group: &GroupRecord) -> Severity {
    serde_json::from_value(group.data["severity"].clone()).unwrap_or(Severity::High)
}

/// The person on call now for the group (the owner a reopened issue gets).
pub fn on_call(app: &App, findings: &[Finding], now: DateTime<Utc>) -> Option<String> {
    let lead = findings.first()?;
    routing::route(lead, &app.config, now, &|_| None)
        .owner()
        .map(str::to_string)
}

/// The first person of an assignee list, resolved at `now`.
fn first_resolved(
    app: &App,
    list: &[crate::config::Assignee],
    now: DateTime<Utc>,
) -> Option<String> {
    let mut out = Vec::new();
    crate::routing::resolve(&app.config, list, now, &mut out);
    out.into_iter().next()
}

/// When an owner who gets the group's issue at `now` must acknowledge it by, and the rule in
/// words; `None` when the account is in ramp-up or the severity has no deadline.
pub fn ack_deadline(
    app: &App,
    group: &GroupRecord,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, String) {
    let account_id = group.data["account_id"].as_str().unwrap_or_default();
    if app.config.account(account_id).mode != crate::config::Mode::Enforce {
        return (None, String::new());
    }
    let policy = app.config.settings.escalation.policy(account_id);
    let Some(rule) = policy.acknowledge.get(&severity_of(group)) else {
        return (None, String::new());
    };
    let within = crate::config::format_duration(rule.after);
    let calendar = policy
        .calendar
        .as_ref()
        .and_then(|c| app.config.settings.calendars.get(c));
    match (rule.working_time, calendar) {
        (true, Some(cal)) => (
            Some(cal.add_working_time(now, rule.after)),
            format!("{within} of working time ({})", cal.name),
        ),
        _ => (Some(now + rule.after), within),
    }
}

/// The fix deadline (SLA) of a group opened at `now`; none in ramp-up accounts.
pub fn due_date(app: &App, group: &GroupRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let account = app
        .config
        .account(group.data["account_id"].as_str().unwrap_or_default());
    if account.mode != crate::config::Mode::Enforce {
        return None;
    }
    app.config
        .settings
        .escalation
        .sla
        .fix_within(&account.environment, severity_of(group))
        .map(|d| now + d)
}

pub fn ctx(app: &App, group: &GroupRecord, findings: &[Finding], now: DateTime<Utc>) -> Ctx {
    let settings = &app.config.settings;
    let lc = &settings.lifecycle;
    let account_id = group.data["account_id"].as_str().unwrap_or_default();
    let policy = settings.escalation.policy(account_id);
    let (ack_deadline, ack_within) = ack_deadline(app, group, now);
    let security = policy
        .security
        .as_deref()
        .unwrap_or(&settings.github.fallback_assignees);
    Ctx {
        issue_url: group.issue_url.clone().unwrap_or_default(),
        approvers: settings
            .approvers
            .iter()
            .map(|a| match a {
                crate::config::Approver::User { login } => login.clone(),
                crate::config::Approver::Team { org, slug } => format!("@{org}/{slug}"),
            })
            .collect(),
        allow_self_approval: lc.exceptions.allow_self_approval,
        default_exception: lc.exceptions.expiry_for(severity_of(group)),
        verify_after: lc.verification.after,
        verify_grace: lc.verification.grace,
        on_call: on_call(app, findings, now),
        backup: first_resolved(app, &policy.backup, now),
        security: first_resolved(app, security, now),
        ack_deadline,
        ack_within,
        follow_unacknowledged: policy.follow_handoffs != crate::config::FollowHandoffs::Never,
        follow_acknowledged: policy.follow_handoffs == crate::config::FollowHandoffs::All,
        sla_reminder: settings.escalation.sla.reminder,
    }
}

pub fn timer_kind(t: Timer) -> &'static str {
    match t {
        Timer::ExceptionExpiry => jobs::TIMER_EXCEPTION,
        Timer::Verify => jobs::TIMER_VERIFY,
        Timer::Escalation => jobs::TIMER_ESCALATION,
        Timer::Sla => jobs::TIMER_SLA,
    }
}

fn summary(s: &State) -> Value {
    json!({
        "open": s.open,
        "closure": s.closure,
        "exception": s.exception,
        "assignee": s.assignee,
        "labels": s.labels,
        "failing": s.findings.failing.len(),
    })
}

/// Runs one event through the state machine and returns what to commit: the group with its
/// new state and outbox, timers, store-only consequences (recreate, move), the audit entry,
/// and the job that performs the effects.
pub fn step(
    app: &App,
    group: &GroupRecord,
    findings: &[Finding],
    event: &Event,
    source: &str,
    now: DateTime<Utc>,
) -> ChangeSet {
    let before = state_of(group);
    let c = ctx(app, group, findings, now);
    let out = lifecycle::transition(&before, event, &c, now);
    let mut changes = ChangeSet::default();
    let mut updated = group.clone();
    let mut outbox = outbox_of(group);
    let mut state = out.state.clone();
    for action in &out.actions {
        match action {
            Action::Schedule { timer, at } => changes.jobs.push(NewJob {
                kind: timer_kind(*timer).into(),
                subject: group.group_key.0.clone(),
                payload: json!({}),
                run_at: *at,
            }),
            Action::Recreate => {
                updated.data["recreated_from"] = json!(group.issue_url);
                updated.issue_number = None;
                updated.issue_url = None;
                updated.status = GroupStatus::Pending;
                state = State::default();
                outbox.clear();
                changes.jobs.push(NewJob {
                    kind: jobs::OPEN_ISSUE.into(),
                    subject: group.group_key.0.clone(),
                    payload: json!({}),
                    run_at: now,
                });
            }
            Action::Moved { repo, number } => {
                let host = group
                    .issue_url
                    .as_deref()
                    .and_then(|u| u.find("://").map(|i| (i, u)))
                    .and_then(|(i, u)| u[i + 3..].find('/').map(|j| u[..i + 3 + j].to_string()))
                    .unwrap_or_else(|| "https://github.com".to_string());
                updated.repo = repo.clone();
                updated.issue_number = Some(*number);
                updated.issue_url = Some(format!("{host}/{repo}/issues/{number}"));
            }
            other => outbox.push(Effect {
                id: uuid::Uuid::new_v4().simple().to_string(),
                action: other.clone(),
                source: source.to_string(),
            }),
        }
    }
    if updated.issue_number.is_some() {
        updated.status = if state.open {
            GroupStatus::Open
        } else {
            GroupStatus::Closed
        };
        updated.assignee = state.assignee.clone();
    }
    updated.data["lifecycle"] = json!(state);
    updated.data["outbox"] = json!(outbox);
    updated.updated_at = now;
    let has_effects = !outbox.is_empty();
    changes.groups.push(GroupWrite::Update {
        record: updated.clone(),
        expected_version: group.version,
    });
    if has_effects {
        changes.jobs.push(NewJob {
            kind: jobs::APPLY_EFFECTS.into(),
            subject: group.group_key.0.clone(),
            payload: json!({}),
            run_at: now,
        });
    }
    let actor = match event.actor() {
        Some(Actor::Person { login, .. }) => login.clone(),
        Some(Actor::Lever) => "lever".to_string(),
        None => match event {
            Event::Findings { .. } | Event::FindingsGone => "securityhub".to_string(),
            _ => "timer".to_string(),
        },
    };
    if !(out.log.is_empty() && out.actions.is_empty() && before == out.state) {
        changes.audit.push(AuditEntry {
            seq: 0,
            at: now,
            actor,
            action: if out.log.is_empty() {
                "observed".to_string()
            } else {
                out.log.join(",")
            },
            group_key: Some(group.group_key.clone()),
            issue: group.issue_number.map(|n| format!("{}#{n}", group.repo)),
            source: Some(source.to_string()),
            detail: json!({
                "event": event.name(),
                "before": summary(&before),
                "after": summary(&out.state),
                "actions": out.actions,
            }),
        });
    }
    changes
}

pub(super) async fn group_findings(app: &App, key: &GroupKey) -> Result<Vec<Finding>, JobError> {
    Ok(app
        .store
        .findings_in_group(key)
        .await?
        .into_iter()
        .map(|r| r.finding)
        .collect())
}

/// Runs the event `make` builds from the group's findings, for a group that has an issue.
async fn on_group(
    app: &App,
    job: &Job,
    make: impl FnOnce(&[Finding]) -> Event,
) -> Result<Outcome, JobError> {
    let key = GroupKey(job.subject.clone());
    let Some(group) = app.store.group(&key).await? else {
        return Ok(Outcome::default());
    };
    if group.issue_number.is_none() {
        return Ok(Outcome::default());
    }
    let findings = group_findings(app, &key).await?;
    let event = make(&findings);
    Ok(Outcome::done(step(
        app,
        &group,
        &findings,
        &event,
        &format!("job:{}", job.id),
        app.now(),
    )))
}

/// `sync-group`: the findings changed; tell the state machine.
pub(super) async fn sync_group(app: &App, job: &Job) -> Result<Outcome, JobError> {
    on_group(app, job, |findings| Event::Findings {
        view: FindingsView::of(findings),
    })
    .await
}

/// A timer that only needs the state machine: exception expiry, escalation, SLA.
pub(super) async fn timer(app: &App, job: &Job, event: Event) -> Result<Outcome, JobError> {
    on_group(app, job, |_| event).await
}

/// `handoffs`: at a rotation handoff, open issues follow the new person on call (as the
/// escalation policy says); then the next handoff is scheduled.
pub(super) async fn handoffs(app: &App, job: &Job) -> Result<Outcome, JobError> {
    let now = app.now();
    let source = format!("job:{}", job.id);
    for group in app.store.list_groups(Some(GroupStatus::Open)).await? {
        let state = state_of(&group);
        if state.level != 0 || group.issue_number.is_none() {
            continue;
        }
        let findings = group_findings(app, &group.group_key).await?;
        let changes = step(app, &group, &findings, &Event::Handoff, &source, now);
        if changes.audit.is_empty() {
            continue;
        }
        match app.store.apply(changes, now).await {
            Ok(()) | Err(crate::store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut changes = ChangeSet::default();
    if let Some(next) = next_handoff(app, now) {
        changes.jobs.push(NewJob {
            kind: jobs::HANDOFFS.into(),
            subject: job.subject.clone(),
            payload: json!({}),
            run_at: next,
        });
    }
    app.jobs_ready.notify_waiters();
    Ok(Outcome::done(changes))
}

/// The next instant, strictly after `now`, when any rotation hands off.
pub fn next_handoff(app: &App, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    app.config
        .settings
        .rotations
        .values()
        .filter_map(|r| r.next_handoffs(now, 1).into_iter().next())
        .map(|h| h.at)
        .min()
}

/// `timer-verify`: ask Security Hub whether the group's findings still fail.
pub(super) async fn verify_timer(app: &App, job: &Job) -> Result<Outcome, JobError> {
    let key = GroupKey(job.subject.clone());
    let Some(group) = app.store.group(&key).await? else {
        return Ok(Outcome::default());
    };
    let records = app.store.findings_in_group(&key).await?;
    if records.is_empty() {
        return Ok(Outcome::default());
    }
    let refs: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.product_arn.clone(), r.finding_id.clone()))
        .collect();
    let fresh = super::sync::fetch_by_id(app, &refs).await?;
    let now = app.now();
    let source = format!("job:{}", job.id);
    if fresh.is_empty() {
        let findings: Vec<Finding> = records.into_iter().map(|r| r.finding).collect();
        return Ok(Outcome::done(step(
            app,
            &group,
            &findings,
            &Event::FindingsGone,
            &source,
            now,
        )));
    }
    // Record what Security Hub says (this may also schedule a sync of the group), then decide
    // on the store's picture.
    crate::pipeline::ingest(app.store.as_ref(), &app.config, &fresh, now, &source).await?;
    let group = app.store.group(&key).await?.unwrap_or(group);
    let findings = group_findings(app, &key).await?;
    let failing = !FindingsView::of(&findings).all_resolved();
    Ok(Outcome::done(step(
        app,
        &group,
        &findings,
        &Event::VerifyTimer { failing },
        &source,
        now,
    )))
}

/// Who last applied `cto-approved`, from the issue's events (webhooks can be missed or late).
async fn label_author(
    app: &App,
    repo: &str,
    number: u64,
    bot: &str,
) -> Result<Option<LabelAuthor>, JobError> {
    let mut last = None;
    for page in 1..=10 {
        let events = app.github.issue_events(repo, number, page).await?;
        let n = events.len();
        for e in events {
            let is_cto = e
                .label
                .as_ref()
                .is_some_and(|l| l.name.eq_ignore_ascii_case(labels::CTO_APPROVED));
            match e.event.as_str() {
                "labeled" if is_cto => last = e.actor.map(|a| a.login),
                "unlabeled" if is_cto => last = None,
                _ => {}
            }
        }
        if n < 100 {
            break;
        }
    }
    let Some(login) = last.filter(|l| !l.eq_ignore_ascii_case(bot)) else {
        return Ok(None);
    };
    let approver = approvers::is_approver(app, repo, &login).await?;
    Ok(Some(LabelAuthor { login, approver }))
}

/// `github-event`: one webhook delivery about a tracked issue.
pub(super) async fn github_event(app: &App, job: &Job) -> Result<Outcome, JobError> {
    let Some(delivery) = app.store.delivery(&job.subject).await? else {
        return Ok(Outcome::default());
    };
    let hook = WebhookEvent::from_stored(&delivery.event, &delivery.payload)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let (Some(repo), Some(number)) = (hook.repo(), hook.issue_number()) else {
        return Ok(Outcome::default());
    };
    let Some(group) = app.store.group_by_issue(repo, number).await? else {
        return Ok(Outcome::default());
    };
    let bot = app.github.bot_login().await?;
    let sender = hook.sender().unwrap_or("");
    let is_bot = sender.eq_ignore_ascii_case(&bot);
    // Whether the sender is an approver matters only for approvals and expiry comments.
    let needs_approver = match &hook {
        WebhookEvent::Issues {
            action: IssuesAction::Labeled { label },
            ..
        } => label.name.eq_ignore_ascii_case(labels::CTO_APPROVED),
        WebhookEvent::IssueComment {
            action: CommentAction::Created,
            comment,
            ..
        } => comment
            .body
            .to_ascii_lowercase()
            .contains("exception-expires"),
        _ => false,
    };
    let by = if is_bot {
        Actor::Lever
    } else {
        let approver = needs_approver && approvers::is_approver(app, repo, sender).await?;
        Actor::Person {
            login: sender.to_string(),
            approver,
        }
    };
    let login = |u: &Option<WebhookUser>| u.as_ref().map(|u| u.login.clone()).unwrap_or_default();
    let event = match &hook {
        WebhookEvent::Issues { action, issue, .. } => match action {
            IssuesAction::Labeled { label } => Event::Labeled {
                label: label.name.clone(),
                by,
            },
            IssuesAction::Unlabeled { label } => Event::Unlabeled {
                label: label.name.clone(),
                by,
            },
            IssuesAction::Closed => {
                let cto_approved_by = if !is_bot && issue.has_label(labels::CTO_APPROVED) {
                    label_author(app, repo, number, &bot).await?
                } else {
                    None
                };
                Event::Closed {
                    by,
                    state_reason: issue.state_reason.clone(),
                    cto_approved_by,
                }
            }
            IssuesAction::Reopened => Event::Reopened { by },
            IssuesAction::Assigned { assignee } => Event::Assigned {
                user: login(assignee),
                by,
            },
            IssuesAction::Unassigned { assignee } => Event::Unassigned {
                user: login(assignee),
                by,
            },
            IssuesAction::Deleted => Event::Deleted { by },
            IssuesAction::Transferred { changes } => Event::Transferred {
                repo: changes.new_repository.full_name.clone(),
                number: changes.new_issue.number,
                by,
            },
            IssuesAction::Opened | IssuesAction::Edited | IssuesAction::Other => {
                return Ok(Outcome::default());
            }
        },
        WebhookEvent::IssueComment {
            action: CommentAction::Created,
            comment,
            ..
        } => Event::Commented {
            by,
            body: comment.body.clone(),
        },
        _ => return Ok(Outcome::default()),
    };
    let findings = group_findings(app, &group.group_key).await?;
    Ok(Outcome::done(step(
        app,
        &group,
        &findings,
        &event,
        &delivery.id,
        app.now(),
    )))
}
