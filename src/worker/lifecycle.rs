//! Feeding the lifecycle state machine: GitHub deliveries, findings updates and timers become
//! events; the transition's new state, its timers and its effects are committed together, and
//! the effects run afterwards from that durable outbox (see `effects`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{JobError, JobOutput, Run, approvers};
use crate::app::App;
use crate::config::Config;
use crate::domain::lifecycle::{
    self, Action, Actor, Ctx, Event, FindingsView, State, Timer, labels,
};
use crate::domain::{Finding, GroupKey};
use crate::github::{CommentAction, IssuesAction, WebhookEvent, WebhookUser};
use crate::store::{
    AuditEntry, ChangeSet, DeliveryId, Effect, GroupRecord, GroupStatus, GroupWrite, Job, NewJob,
    OutboxWrite,
};

/// The person on call now for the group's stored route (the owner a reopened issue gets).
pub fn on_call(config: &Config, group: &GroupRecord, now: DateTime<Utc>) -> Option<String> {
    group.data.route.on_call(config, now)
}

/// The first person of an assignee list, resolved at `now`.
fn first_resolved(
    config: &Config,
    list: &[crate::config::Assignee],
    now: DateTime<Utc>,
) -> Option<String> {
    let mut out = Vec::new();
    crate::routing::resolve(config, list, now, &mut out);
    out.into_iter().next()
}

/// When an owner who gets the group's issue at `now` must acknowledge it by, and the rule in
/// words; `None` when the account is in ramp-up or the severity has no deadline.
pub fn ack_deadline(
    config: &Config,
    group: &GroupRecord,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, String) {
    let account_id = group.data.account_id.as_str();
    if config.account_at(account_id, now).mode != crate::config::Mode::Enforce {
        return (None, String::new());
    }
    let policy = config.settings.escalation.policy(account_id);
    let Some(rule) = policy.acknowledge.get(&group.data.severity) else {
        return (None, String::new());
    };
    let within = crate::config::format_duration(rule.after);
    let calendar = policy
        .calendar
        .as_ref()
        .and_then(|c| config.settings.calendars.get(c));
    match (rule.working_time, calendar) {
        (true, Some(cal)) => (
            Some(cal.add_working_time(now, rule.after)),
            format!("{within} of working time ({})", cal.name),
        ),
        _ => (Some(now + rule.after), within),
    }
}

/// The fix deadline (SLA) of a group opened at `now`; none in ramp-up accounts.
pub fn due_date(config: &Config, group: &GroupRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let account = config.account_at(&group.data.account_id, now);
    if account.mode != crate::config::Mode::Enforce {
        return None;
    }
    config
        .settings
        .escalation
        .sla
        .fix_within(&account.environment, group.data.severity)
        .map(|d| now + d)
}

/// The facts the state machine needs about a group at `now`. Pure.
pub fn ctx(config: &Config, group: &GroupRecord, now: DateTime<Utc>) -> Ctx {
    let settings = &config.settings;
    let lc = &settings.lifecycle;
    let policy = settings.escalation.policy(&group.data.account_id);
    let (ack_deadline, ack_within) = ack_deadline(config, group, now);
    let owners = group.data.route.owners_now(config, now);
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
        default_exception: lc.exceptions.expiry_for(group.data.severity),
        max_exception: lc.exceptions.max_expiry,
        verify_after: lc.verification.after,
        verify_grace: lc.verification.grace,
        on_call: owners.first().cloned(),
        other_owners: owners.iter().skip(1).cloned().collect(),
        backup: first_resolved(config, &policy.backup, now),
        security: first_resolved(config, security, now),
        ack_deadline,
        ack_within,
        follow_unacknowledged: policy.follow_handoffs != crate::config::FollowHandoffs::Never,
        follow_acknowledged: policy.follow_handoffs == crate::config::FollowHandoffs::All,
        sla_reminder: settings.escalation.sla.reminder,
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
/// new state, its new effects (outbox rows), timers, store-only consequences (recreate, move),
/// the audit entry, and the job that performs the effects. Pure: the decide step of every
/// lifecycle job.
pub fn step(
    config: &Config,
    group: &GroupRecord,
    event: &Event,
    source: &str,
    now: DateTime<Utc>,
) -> ChangeSet {
    let before = group.state();
    let c = ctx(config, group, now);
    let out = lifecycle::transition(&before, event, &c, now);
    let mut changes = ChangeSet::default();
    let mut updated = group.clone();
    let mut state = out.state.clone();
    let mut has_effects = false;
    for action in &out.actions {
        match action {
            Action::Schedule { timer, at } => changes.jobs.push(NewJob::new(
                Job::Timer(*timer, group.group_key.clone()),
                *at,
            )),
            Action::Recreate => {
                updated.data.recreated_from = group.issue_url.clone();
                updated.issue_number = None;
                updated.issue_url = None;
                updated.status = GroupStatus::Pending;
                state = State::default();
                changes.outbox.retain(|w| !matches!(w, OutboxWrite::Add(_)));
                changes
                    .outbox
                    .push(OutboxWrite::Clear(group.group_key.clone()));
                has_effects = false;
                changes
                    .jobs
                    .push(NewJob::new(Job::OpenIssue(group.group_key.clone()), now));
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
            other => {
                has_effects = true;
                changes.outbox.push(OutboxWrite::Add(Effect {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    group_key: group.group_key.clone(),
                    action: other.clone(),
                    source: source.to_string(),
                }));
            }
        }
    }
    if updated.issue_number.is_some() {
        updated.status = if state.open {
            GroupStatus::Open
        } else {
            GroupStatus::Closed
        };
        updated.assignee = state.assignee.clone();
        updated.data.lifecycle = Some(state);
    } else {
        updated.data.lifecycle = None;
    }
    updated.updated_at = now;
    changes.groups.push(GroupWrite::Update {
        record: updated,
        expected_version: group.version,
    });
    if has_effects {
        changes
            .jobs
            .push(NewJob::new(Job::ApplyEffects(group.group_key.clone()), now));
    }
    let actor = match event.actor() {
        Some(Actor::Person { login, .. }) => login.clone(),
        Some(Actor::Lever) => "lever".to_string(),
        None => match event {
            Event::Findings { .. } | Event::FindingsGone => "securityhub".to_string(),
            Event::AssigneeRefused { .. } => "github".to_string(),
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

/// What Security Hub says about a group's findings, with the ignore tags the account does not
/// honour (reported on the issue when they appear). Pure.
/// Resources whose ignore tag the account honours are taken out of the failing ones
/// (`FindingsView::ignored`). The accounts as they are at `now` (an account past its
/// `enforce_from` no longer honours ignore tags by its ramp-up).
pub fn findings_view(config: &Config, findings: &[Finding], now: DateTime<Utc>) -> FindingsView {
    FindingsView {
        ignore_tagged: crate::policy::reported_ignore_tags(findings, config, now),
        ..FindingsView::of(findings)
    }
    .with_ignored(crate::policy::honoured_ignore_tags(findings, config, now))
}

/// A group's findings, their resources' tags completed from the Tagging API where the finding
/// carries none ([`with_tags`]).
pub(super) async fn group_findings(app: &App, key: &GroupKey) -> Result<Vec<Finding>, JobError> {
    let findings = app
        .store
        .findings_in_group(key)
        .await?
        .into_iter()
        .map(|r| r.finding)
        .collect();
    Ok(with_tags(app, findings).await)
}

/// Resources that carry no tags in their finding (ASFF `Resources[].Tags` absent or empty) get
/// them from the Tagging API (cached for `[tags] cache_ttl`), through the account's member
/// role, when the tag audit reads the finding's region (`[tags] regions`) and the account reads
/// ignore tags at all. A lookup that fails leaves the resources untagged (logged): the issue
/// stays as it is until the next look.
pub(super) async fn with_tags(app: &App, mut findings: Vec<Finding>) -> Vec<Finding> {
    let settings = &app.config.settings.tags;
    if settings.regions.is_empty() {
        return findings;
    }
    let ttl = settings.cache_ttl.to_std().unwrap_or_default();
    let mut wanted: std::collections::BTreeMap<(String, String), Vec<String>> =
        std::collections::BTreeMap::new();
    for f in &findings {
        if app.config.account(&f.account_id).ignore_tags == crate::config::IgnoreTags::Never {
            continue;
        }
        for r in f.resources.iter().filter(|r| r.tags.is_empty()) {
            let region = r.region.clone().unwrap_or_else(|| f.region.clone());
            if settings.regions.contains(&region) {
                wanted
                    .entry((f.account_id.clone(), region))
                    .or_default()
                    .push(r.id.clone());
            }
        }
    }
    let mut found = std::collections::BTreeMap::new();
    for ((account, region), arns) in wanted {
        match app
            .tagging
            .tags_of(&settings.role_arn(&account), &region, &arns, ttl)
            .await
        {
            Ok(tags) => found.extend(tags),
            Err(e) => {
                tracing::warn!(%account, %region, error = %e, "reading resource tags failed; the finding's own tags stand")
            }
        }
    }
    for f in &mut findings {
        for r in f.resources.iter_mut().filter(|r| r.tags.is_empty()) {
            if let Some(tags) = found.get(&r.id) {
                r.tags = tags.clone();
            }
        }
    }
    findings
}

/// Loads a group that has an issue; `None` when there is nothing to do.
async fn load_tracked(app: &App, key: &GroupKey) -> Result<Option<GroupRecord>, JobError> {
    Ok(app
        .store
        .group(key)
        .await?
        .filter(|g| g.issue_number.is_some()))
}

/// What a group job tells the state machine.
#[derive(Debug, Clone, Copy)]
pub(super) enum GroupNews {
    /// `sync-group`: the findings changed.
    FindingsChanged,
    /// A timer that only needs the state machine: exception expiry, escalation, SLA (the
    /// verification timer asks Security Hub first: [`verify_timer`]).
    Timer(Timer),
    /// `handoff`: the issue follows the new person on call, unless it was escalated.
    Handoff,
}

/// The lifecycle jobs about a group that has an issue: load it, build the event, decide.
pub(super) async fn group_news(
    app: &App,
    run: &Run,
    key: &GroupKey,
    news: GroupNews,
) -> Result<JobOutput, JobError> {
    let Some(group) = load_tracked(app, key).await? else {
        return Ok(JobOutput::default());
    };
    let event = match news {
        GroupNews::FindingsChanged => Event::Findings {
            view: findings_view(&app.config, &group_findings(app, key).await?, app.now()),
        },
        GroupNews::Timer(Timer::Verify) => return verify_timer(app, run, key).await,
        GroupNews::Timer(Timer::ExceptionExpiry) => Event::ExceptionTimer,
        GroupNews::Timer(Timer::Escalation) => Event::EscalationTimer,
        GroupNews::Timer(Timer::Sla) => Event::SlaTimer,
        GroupNews::Handoff if group.state().level != 0 => return Ok(JobOutput::default()),
        GroupNews::Handoff => Event::Handoff,
    };
    Ok(JobOutput::done(step(
        &app.config,
        &group,
        &event,
        &run.source(),
        app.now(),
    )))
}

/// `handoffs`: at a rotation handoff, one `handoff` job per open issue at the first
/// escalation level (each commits on its own, so one conflict never redoes the others); then
/// the next handoff is scheduled.
pub(super) async fn handoffs(app: &App) -> Result<JobOutput, JobError> {
    let now = app.now();
    let groups = app.store.list_groups(Some(GroupStatus::Open)).await?;
    let mut changes = ChangeSet::default();
    for group in groups {
        if group.issue_number.is_some() && group.state().level == 0 {
            changes
                .jobs
                .push(NewJob::new(Job::Handoff(group.group_key), now));
        }
    }
    if let Some(next) = next_handoff(&app.config, now) {
        changes.jobs.push(NewJob::new(Job::Handoffs, next));
    }
    Ok(JobOutput::done(changes))
}

/// The next instant, strictly after `now`, when any rotation hands off.
pub fn next_handoff(config: &Config, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    config
        .settings
        .rotations
        .values()
        .filter_map(|r| r.next_handoffs(now, 1).into_iter().next())
        .map(|h| h.at)
        .min()
}

/// `timer-verify`: ask Security Hub whether the group's findings still fail. What Security Hub
/// says is recorded and judged in one commit.
pub(super) async fn verify_timer(
    app: &App,
    run: &Run,
    key: &GroupKey,
) -> Result<JobOutput, JobError> {
    let Some(group) = app.store.group(key).await? else {
        return Ok(JobOutput::default());
    };
    let records = app.store.findings_in_group(key).await?;
    if records.is_empty() {
        return Ok(JobOutput::default());
    }
    let refs: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.product_arn.clone(), r.finding_id.clone()))
        .collect();
    // Each finding is looked up through the API of the format it came in (GetFindings for
    // ASFF, GetFindingsV2 for OCSF) when `[securityhub] api` enables it; a finding whose API is
    // not enabled is judged on the state its last event recorded, and its absence never means
    // it is gone.
    let api = app.config.settings.securityhub.api;
    let (known, unknown): (Vec<_>, Vec<_>) = refs.into_iter().partition(|(arn, _)| api.knows(arn));
    let fresh = if known.is_empty() {
        Vec::new()
    } else {
        super::sync::fetch_by_id(app, &known).await?
    };
    let now = app.now();
    let source = run.source();
    if fresh.is_empty() && unknown.is_empty() {
        return Ok(JobOutput::done(step(
            &app.config,
            &group,
            &Event::FindingsGone,
            &source,
            now,
        )));
    }
    // Record what Security Hub says and decide on that picture, in one change set.
    let (mut changes, _) =
        crate::pipeline::prepare(app.store.as_ref(), &app.config, &fresh, now, &source).await?;
    let mut findings: Vec<Finding> = records.into_iter().map(|r| r.finding).collect();
    for f in &fresh {
        match findings
            .iter_mut()
            .find(|x| x.product_arn == f.product_arn && x.id == f.id)
        {
            Some(x) => *x = f.clone(),
            None => findings.push(f.clone()),
        }
    }
    let failing = !FindingsView::of(&findings).all_resolved();
    let decided = step(
        &app.config,
        &group,
        &Event::VerifyTimer { failing },
        &source,
        now,
    );
    changes.merge(decided);
    Ok(JobOutput::done(changes))
}

/// `github-event`: one webhook delivery about a tracked issue.
pub(super) async fn github_event(
    app: &App,
    run: &Run,
    id: &DeliveryId,
) -> Result<JobOutput, JobError> {
    let Some(delivery) = app.store.delivery(&id.0).await? else {
        return Ok(JobOutput::default());
    };
    let Some(body) = delivery.body.as_deref() else {
        return Err(JobError::permanent(format!(
            "delivery {} was recorded without its body (its issue was not tracked)",
            delivery.id
        )));
    };
    let hook = WebhookEvent::from_stored(&delivery.event, body)
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let (Some(repo), Some(number)) = (hook.repo(), hook.issue_number()) else {
        return Ok(JobOutput::default());
    };
    let Some(group) = app.store.group_by_issue(repo, number).await? else {
        return Ok(JobOutput::default());
    };
    // GitHub does not promise delivery order, and a job can be retried after later deliveries
    // were applied: a delivery older than the last one applied to the issue counts only if
    // GitHub still shows its change now (a close undone by a later reopen is not applied; a
    // close whose job was retrying while Lever's own comment was applied is: found by the
    // fault test, where such a close was dropped and the approved exception never started).
    let event_at = hook.issue().and_then(|i| i.updated_at);
    if let (Some(at), Some(last)) = (event_at, group.data.last_event_at)
        && at < last
    {
        let holds = match stale_check(&hook) {
            StaleCheck::Apply => true,
            StaleCheck::Ignore => false,
            StaleCheck::AskGitHub => still_holds(&hook, &app.github.get_issue(repo, number).await?),
        };
        if !holds {
            tracing::info!(
                delivery = %delivery.id, %at, %last,
                "webhook older than the last one applied to its issue, and GitHub no longer shows its change: ignored"
            );
            return Ok(JobOutput::default());
        }
        tracing::info!(
            delivery = %delivery.id, %at, %last,
            "webhook older than the last one applied to its issue, but GitHub still shows its change: applied"
        );
    }
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
                let cto_approved = if !is_bot && issue.has_label(labels::CTO_APPROVED) {
                    Some(super::history::label_history(app, run, repo, number, &bot).await?)
                } else {
                    None
                };
                Event::Closed {
                    by,
                    state_reason: issue.state_reason.clone(),
                    cto_approved,
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
                return Ok(JobOutput::default());
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
        _ => return Ok(JobOutput::default()),
    };
    let mut changes = step(&app.config, &group, &event, &delivery.id, app.now());
    // Transferred to a repository without the App: Lever could not follow it there (no
    // webhooks, every call refused), so the group falls back like a refused repository.
    if let Event::Transferred { repo: to, .. } = &event
        && !app.github.has_app(to).await?
    {
        let outbox = app.store.outbox(&group.group_key).await?;
        let previous = match &hook {
            WebhookEvent::Issues {
                action: IssuesAction::Transferred { changes },
                ..
            } if !changes.new_issue.html_url.is_empty() => Some(changes.new_issue.html_url.clone()),
            _ => None,
        };
        let reroute = crate::store::Reroute {
            repo: to.clone(),
            previous,
            reason: format!("the issue was transferred to {to}, where the App is not installed"),
        };
        let mut detached = ChangeSet::default();
        for write in &mut changes.groups {
            if let GroupWrite::Update { record, .. } = write
                && record.group_key == group.group_key
            {
                detached = super::reroute::detach(
                    record,
                    &outbox,
                    reroute.clone(),
                    &delivery.id,
                    app.now(),
                );
            }
        }
        changes.merge(detached);
    }
    if let Some(at) = event_at {
        let mut written = false;
        for write in &mut changes.groups {
            if let GroupWrite::Update { record, .. } = write
                && record.group_key == group.group_key
            {
                record.data.last_event_at = record.data.last_event_at.max(Some(at));
                written = true;
            }
        }
        // A person's delivery that changed nothing (a reopen of an issue Lever still thinks
        // open) is still the newest thing GitHub says about the issue: a close older than it,
        // arriving later, must be checked against GitHub. Lever's own echoes, the bulk of the
        // deliveries, cost no write.
        if !written && !is_bot && group.data.last_event_at.is_none_or(|last| at > last) {
            let mut record = group.clone();
            record.data.last_event_at = Some(at);
            changes.groups.push(GroupWrite::Update {
                record,
                expected_version: group.version,
            });
        }
    }
    Ok(JobOutput::done(changes))
}

/// What to do with a delivery older than the last one applied to its issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaleCheck {
    /// It cannot be undone (deleted, transferred): apply it.
    Apply,
    /// Not a state change GitHub can confirm (a comment, an edit): ignore it.
    Ignore,
    /// Apply it only if the issue GitHub shows now still carries its change.
    AskGitHub,
}

fn stale_check(hook: &WebhookEvent) -> StaleCheck {
    match hook {
        WebhookEvent::Issues { action, .. } => match action {
            IssuesAction::Labeled { .. }
            | IssuesAction::Unlabeled { .. }
            | IssuesAction::Closed
            | IssuesAction::Reopened
            | IssuesAction::Assigned { .. }
            | IssuesAction::Unassigned { .. } => StaleCheck::AskGitHub,
            IssuesAction::Deleted | IssuesAction::Transferred { .. } => StaleCheck::Apply,
            IssuesAction::Opened | IssuesAction::Edited | IssuesAction::Other => StaleCheck::Ignore,
        },
        _ => StaleCheck::Ignore,
    }
}

/// Whether `now` (the issue as GitHub shows it now) still carries the change of `hook`.
fn still_holds(hook: &WebhookEvent, now: &crate::github::Issue) -> bool {
    let assigned = |u: &Option<WebhookUser>| {
        u.as_ref().is_some_and(|u| {
            now.assignees
                .iter()
                .any(|a| a.login.eq_ignore_ascii_case(&u.login))
        })
    };
    match hook {
        WebhookEvent::Issues { action, .. } => match action {
            IssuesAction::Labeled { label } => now.has_label(&label.name),
            IssuesAction::Unlabeled { label } => !now.has_label(&label.name),
            IssuesAction::Closed => now.state == "closed",
            IssuesAction::Reopened => now.state == "open",
            IssuesAction::Assigned { assignee } => assigned(assignee),
            IssuesAction::Unassigned { assignee } => !assigned(assignee),
            IssuesAction::Deleted | IssuesAction::Transferred { .. } => true,
            IssuesAction::Opened | IssuesAction::Edited | IssuesAction::Other => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;
    use serde_json::json;

    fn hook(action: Value) -> WebhookEvent {
        let mut body = json!({
            "issue": {"number": 1, "title": "t", "state": "open", "html_url": "https://github.com/a/b/issues/1",
                      "labels": [], "assignees": [], "updated_at": "2026-11-23T12:00:00Z"},
            "repository": {"full_name": "a/b"},
            "sender": {"login": "carol"}
        });
        for (k, v) in action.as_object().unwrap() {
            body[k] = v.clone();
        }
        WebhookEvent::from_stored("issues", body.to_string().as_bytes()).unwrap()
    }

    fn issue(state: &str, labels: &[&str], assignees: &[&str]) -> crate::github::Issue {
        serde_json::from_value(json!({
            "number": 1, "title": "t", "state": state, "html_url": "https://github.com/a/b/issues/1",
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "assignees": assignees.iter().map(|a| json!({"login": a})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn a_stale_delivery_counts_only_while_github_still_shows_its_change() {
        let label = |name: &str| json!({"name": name});
        let user = |login: &str| json!({"login": login});
        #[rustfmt::skip]
        let table: Vec<(Value, crate::github::Issue, bool)> = vec![
            (json!({"action": "closed"}), issue("closed", &[], &[]), true),
            (json!({"action": "closed"}), issue("open", &[], &[]), false),
            (json!({"action": "reopened"}), issue("open", &[], &[]), true),
            (json!({"action": "reopened"}), issue("closed", &[], &[]), false),
            (json!({"action": "labeled", "label": label("cto-approved")}), issue("open", &["CTO-approved"], &[]), true),
            (json!({"action": "labeled", "label": label("cto-approved")}), issue("open", &["acknowledged"], &[]), false),
            (json!({"action": "unlabeled", "label": label("acknowledged")}), issue("open", &[], &[]), true),
            (json!({"action": "unlabeled", "label": label("acknowledged")}), issue("open", &["acknowledged"], &[]), false),
            (json!({"action": "assigned", "assignee": user("sam")}), issue("open", &[], &["Sam"]), true),
            (json!({"action": "assigned", "assignee": user("sam")}), issue("open", &[], &["bob"]), false),
            (json!({"action": "unassigned", "assignee": user("sam")}), issue("open", &[], &["bob"]), true),
            (json!({"action": "unassigned", "assignee": user("sam")}), issue("open", &[], &["sam"]), false),
        ];
        for (action, now, want) in table {
            let h = hook(action.clone());
            assert_eq!(stale_check(&h), StaleCheck::AskGitHub, "{action}");
            assert_eq!(still_holds(&h, &now), want, "{action} with {now:?}");
        }
        assert_eq!(
            stale_check(&hook(json!({"action": "deleted"}))),
            StaleCheck::Apply
        );
        assert_eq!(
            stale_check(&hook(json!({"action": "edited"}))),
            StaleCheck::Ignore
        );
    }
}
