//! `apply-effects`: performs a group's outbox, in order, one effect at a time, removing each
//! from the outbox once done. A comment carries a hidden marker with the effect's id, so a
//! retry after a lost response finds it instead of commenting twice. Several checklist
//! refreshes waiting together are one write: only the last is performed, the others are removed
//! (audited as `effect-refresh-body-coalesced`).
//!
//! An `Assign` GitHub refuses (not a collaborator) is not walked here: the refusal is an event
//! for the state machine (`AssigneeRefused`), decided by the same pure `lifecycle::step` as
//! every other event and committed with the run; its effects (the next person, the comment)
//! join the outbox after the ones waiting and are performed by the next run.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{JobError, JobOutput, Run};
use crate::app::App;
use crate::domain::lifecycle::{Action, CloseReason, Event, is_failing};
use crate::domain::{GroupKey, LeverWrite, Note, WorkflowStatus};
use crate::explain;
use crate::github::{GitHubError, IssueUpdate};
use crate::securityhub::{BatchOutcome, FindingRef, V2Ref, note_text};
use crate::store::{
    AuditEntry, ChangeSet, Effect, FindingRecord, GroupRecord, GroupWrite, Job, OutboxWrite,
};

fn marker(id: &str) -> String {
    format!("<!-- lever:effect={id} -->")
}

/// Whether a comment with this effect's marker already exists (a retry after a lost response).
async fn already_commented(
    app: &App,
    repo: &str,
    number: u64,
    id: &str,
) -> Result<bool, GitHubError> {
    let needle = marker(id);
    for page in 1..=10 {
        let comments = app.github.list_comments(repo, number, page).await?;
        let n = comments.len();
        if comments
            .iter()
            .any(|c| c.body.as_deref().is_some_and(|b| b.contains(&needle)))
        {
            return Ok(true);
        }
        if n < 100 {
            break;
        }
    }
    Ok(false)
}

/// An issue-level call that found no issue (deleted, or moved and not yet followed): the
/// effect cannot apply any more and is dropped.
fn unless_gone<T>(r: Result<T, GitHubError>) -> Result<(), JobError> {
    match r {
        Ok(_) => Ok(()),
        Err(GitHubError::NotFound(what)) => {
            tracing::warn!(%what, "dropping an effect: the issue is gone");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes `user` the issue's one assignee; `false` when GitHub will not assign them.
async fn assign_one(app: &App, repo: &str, number: u64, user: &str) -> Result<bool, JobError> {
    let update = IssueUpdate {
        assignees: Some(vec![user.to_string()]),
        ..Default::default()
    };
    match app.github.update_issue(repo, number, &update).await {
        Ok(issue) => Ok(issue
            .assignees
            .iter()
            .any(|a| a.login.eq_ignore_ascii_case(user))),
        Err(e) if e.is_unassignable() => Ok(false),
        Err(GitHubError::NotFound(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// What performing one effect came to.
enum Performed {
    /// Done, with the store changes it implies (findings' new workflow).
    Done(ChangeSet),
    /// GitHub would not assign this user: an event for the state machine, not a failure.
    Refused(String),
    /// Not performed: a later effect does the same (a checklist refresh).
    Coalesced,
}

/// Performs one effect.
async fn perform(
    app: &App,
    group: &GroupRecord,
    effect: &Effect,
    retry: bool,
) -> Result<Performed, JobError> {
    let mut changes = ChangeSet::default();
    let Some(number) = group.issue_number else {
        return Ok(Performed::Done(changes));
    };
    let repo = group.repo.as_str();
    match &effect.action {
        Action::Comment { body } => {
            if !(retry && already_commented(app, repo, number, &effect.id).await?) {
                unless_gone(
                    app.github
                        .create_comment(repo, number, &format!("{body}\n\n{}", marker(&effect.id)))
                        .await,
                )?;
            }
        }
        Action::AddLabel { label } => {
            unless_gone(
                app.github
                    .add_labels(repo, number, std::slice::from_ref(label))
                    .await,
            )?;
        }
        Action::RemoveLabel { label } => {
            // On a retry the first attempt may have removed it with its answer lost (found by
            // the crash test: a refused `cto-approved` removed twice): remove it only if GitHub
            // still shows it.
            let present = !retry
                || match app.github.get_issue(repo, number).await {
                    Ok(issue) => issue.has_label(label),
                    Err(GitHubError::NotFound(_)) => false,
                    Err(e) => return Err(e.into()),
                };
            if present {
                unless_gone(app.github.remove_label(repo, number, label).await)?
            }
        }
        Action::Close { reason } => {
            let state_reason = match reason {
                CloseReason::Completed => "completed",
                CloseReason::NotPlanned => "not_planned",
            };
            let update = IssueUpdate {
                state: Some("closed".into()),
                state_reason: Some(state_reason.into()),
                ..Default::default()
            };
            unless_gone(app.github.update_issue(repo, number, &update).await)?;
        }
        Action::Reopen => {
            let update = IssueUpdate {
                state: Some("open".into()),
                ..Default::default()
            };
            unless_gone(app.github.update_issue(repo, number, &update).await)?;
        }
        Action::Assign { user } => {
            if !assign_one(app, repo, number, user).await? {
                return Ok(Performed::Refused(user.clone()));
            }
        }
        Action::UpdateFindings {
            workflow,
            note,
            resources,
        } => {
            if app.config.settings.securityhub.writeback {
                changes =
                    update_findings(app, &group.group_key, *workflow, note, resources.as_ref())
                        .await?;
            }
        }
        Action::RefreshBody => {
            let findings = super::lifecycle::group_findings(app, &group.group_key).await?;
            let issue = match app.github.get_issue(repo, number).await {
                Ok(issue) => issue,
                Err(e) => {
                    return unless_gone(Err::<(), _>(e)).map(|()| Performed::Done(changes));
                }
            };
            let body = issue.body.unwrap_or_default();
            if let Some(new_body) = explain::replace_checklist(
                &body,
                &explain::resource_checklist_ignoring(
                    &findings,
                    &crate::policy::honoured_ignore_tags(&findings, &app.config, app.now()),
                ),
            ) && new_body != body
            {
                let update = IssueUpdate {
                    body: Some(new_body),
                    ..Default::default()
                };
                unless_gone(app.github.update_issue(repo, number, &update).await)?;
            }
        }
        // Store-only actions never reach the outbox.
        Action::Schedule { .. } | Action::Recreate | Action::Moved { .. } => {}
    }
    Ok(Performed::Done(changes))
}

/// Writes `workflow` and the note back for the group's findings that still report the problem
/// and are not already in `workflow` (or suppressed with another note); with `resources`, only
/// those whose every resource is in it (an exception suppresses what it covers, never a
/// resource that joined the group later). Each finding goes back through the API of the format
/// it came in, when `[securityhub] api` enables it: BatchUpdateFindings (ASFF: workflow, note,
/// `UpdatedBy`) or BatchUpdateFindingsV2 (OCSF: `StatusId`, `Comment`). The store records what
/// Security Hub now holds, and what Lever wrote, by which its echo is recognised.
pub(super) async fn update_findings(
    app: &App,
    key: &GroupKey,
    workflow: WorkflowStatus,
    note: &str,
    resources: Option<&BTreeSet<String>>,
) -> Result<ChangeSet, JobError> {
    let updated_by = app.config.settings.securityhub.updated_by.clone();
    let api = app.config.settings.securityhub.api;
    let text = note_text(note);
    let targets: Vec<FindingRecord> = app
        .store
        .findings_in_group(key)
        .await?
        .into_iter()
        // Findings still reporting the problem, not in `workflow` yet (or suppressed with
        // another note: the note says when the exception expires); a finding someone marked
        // RESOLVED is left alone when Lever only notifies.
        .filter(|r| {
            let note_differs =
                r.finding.note.as_ref().map(|n| n.text.as_str()) != Some(text.as_str());
            api.knows(&r.product_arn)
                && is_failing(&r.finding)
                && (r.workflow != workflow
                    || (workflow == WorkflowStatus::Suppressed && note_differs))
                && !(workflow == WorkflowStatus::Notified && r.workflow == WorkflowStatus::Resolved)
                && resources
                    .is_none_or(|within| r.finding.resources.iter().all(|x| within.contains(&x.id)))
        })
        .collect();
    let mut changes = ChangeSet::default();
    if targets.is_empty() {
        return Ok(changes);
    }
    let (v2, cspm): (Vec<&FindingRecord>, Vec<&FindingRecord>) = targets
        .iter()
        .partition(|r| crate::ocsf::is_v2_product(&r.product_arn));
    let mut outcome = BatchOutcome::default();
    // The CSPM findings first, then the V2 ones; what the first API processed is kept when the
    // second fails.
    let written: Result<(), crate::securityhub::SecurityHubError> = async {
        if !cspm.is_empty() {
            let refs: Vec<FindingRef> = cspm
                .iter()
                .map(|r| FindingRef {
                    id: r.finding_id.clone(),
                    product_arn: r.product_arn.clone(),
                })
                .collect();
            outcome.extend(
                app.securityhub
                    .update_workflow(&refs, workflow, &text, &updated_by)
                    .await?,
            );
        }
        if !v2.is_empty() {
            let refs: Vec<V2Ref> = v2
                .iter()
                .map(|r| V2Ref {
                    account: r.finding.account_id.clone(),
                    uid: r.finding_id.clone(),
                    product: r.product_arn.clone(),
                })
                .collect();
            outcome.extend(
                app.securityhub
                    .update_status_v2(&refs, workflow, &text)
                    .await?,
            );
        }
        Ok(())
    }
    .await;
    let failed: Option<JobError> = written.err().map(JobError::from);
    for mut r in targets {
        if outcome
            .processed
            .iter()
            .any(|p| p.id == r.finding_id && p.product_arn == r.product_arn)
        {
            let ocsf = crate::ocsf::is_v2_product(&r.product_arn);
            r.workflow = workflow;
            r.finding.workflow = workflow;
            r.finding.note = Some(Note {
                text: text.clone(),
                // V2 has no `UpdatedBy`: the comment is all Security Hub keeps.
                updated_by: if ocsf {
                    String::new()
                } else {
                    updated_by.clone()
                },
                updated_at: None,
            });
            // What Lever wrote, recorded as it writes: its echo is recognised by this.
            LeverWrite::remember(
                &mut r.lever_writes,
                LeverWrite {
                    workflow,
                    note: text.clone(),
                    at: app.now(),
                },
            );
            changes.findings.push(r);
        }
    }
    if let Some(mut e) = failed {
        // What one API processed before the other failed is recorded with the retry.
        e.partial = Some(Box::new(changes));
        return Err(e);
    }
    if let Some(first) = outcome.unprocessed.first() {
        // Record the progress, then fail so the job retries the rest with backoff.
        return Err(JobError {
            message: format!(
                "Security Hub did not process {} finding(s), e.g. {}: {} {}",
                outcome.unprocessed.len(),
                first.finding.id,
                first.code,
                first.message
            ),
            retryable: true,
            retry_at: None,
            retry_in: None,
            partial: Some(Box::new(changes)),
            paced: None,
        });
    }
    Ok(changes)
}

/// `apply-effects`: load the group's outbox, perform its effects in order, and commit once:
/// every effect performed is removed (with its audit entry and the store changes it implies).
/// An effect that fails stops the run; what was done before it is committed with the retry.
///
/// An `Assign` GitHub refuses is removed too, and the state machine decides what follows
/// (`AssigneeRefused`, on the group as this run's earlier refusals left it): the new state, its
/// audit entry and its effects are part of the run's one change set. The effects still waiting
/// after the refused one are performed as decided: they were decided before the refusal was
/// known (a handoff or escalation comment naming the refused person stays true as history),
/// and the refusal's own effects come after them, so the issue reads in order: the decision,
/// then "GitHub would not assign …, so @… owns this issue". An `Assign` decided later for
/// someone else is not undone: the state machine, which already knows that later owner, finds
/// the refusal stale.
pub(super) async fn run(app: &App, run: &Run, key: &GroupKey) -> Result<JobOutput, JobError> {
    let Some(group) = app.store.group(key).await? else {
        return Ok(JobOutput::default());
    };
    let outbox = app.store.outbox(key).await?;
    let mut changes = ChangeSet::default();
    // The group as the refusals of this run left it (written once, with the run's changes).
    let mut decided: Option<GroupRecord> = None;
    // Checklist refreshes coalesce: a refresh renders the findings as they are when it runs,
    // so only the last one waiting is performed (one write, however many updates arrived
    // while the job waited, e.g. for the content budget); the earlier ones are removed.
    let last_refresh = outbox
        .iter()
        .rposition(|e| matches!(e.action, Action::RefreshBody));
    // A repository that refuses Lever (the App uninstalled or suspended there, or not
    // installed): its GitHub effects are parked with the reason, not attempted (nor dropped as
    // if the issue were gone); the Security Hub writes still run.
    let refusal = match group.issue_number {
        Some(_)
            if outbox
                .iter()
                .any(|e| super::reroute::is_github_effect(&e.action)) =>
        {
            super::reroute::refused_for_effects(app, &group.repo).await?
        }
        _ => None,
    };
    for (i, effect) in outbox.iter().enumerate() {
        if let Some(reason) = refusal
            .as_ref()
            .filter(|_| super::reroute::is_github_effect(&effect.action))
        {
            tracing::error!(reason, effect = %effect.id, "effect parked: the repository refuses Lever");
            park(&mut changes, app.now(), &group, effect, run.id, reason);
            continue;
        }
        // What the state machine decided about a refusal, committed after the effect's entry.
        let mut decision = None;
        let coalesced = matches!(effect.action, Action::RefreshBody) && Some(i) != last_refresh;
        let performed = if coalesced {
            Ok(Performed::Coalesced)
        } else {
            perform(app, &group, effect, run.is_retry()).await
        };
        let outcome = match performed {
            Ok(Performed::Coalesced) => "-coalesced",
            Ok(Performed::Done(done)) => {
                changes.merge(done);
                ""
            }
            Ok(Performed::Refused(user)) => {
                tracing::warn!(%user, repo = %group.repo, issue = ?group.issue_number, "assignee refused by GitHub");
                let current = decided.clone().unwrap_or_else(|| group.clone());
                let mut step = super::lifecycle::step(
                    &app.config,
                    &current,
                    &Event::AssigneeRefused { user },
                    &run.source(),
                    app.now(),
                );
                for write in std::mem::take(&mut step.groups) {
                    // A stale refusal changes no state: no write (and no conflict) for it.
                    if let GroupWrite::Update { record, .. } = write
                        && record.data.lifecycle != current.data.lifecycle
                    {
                        decided = Some(record);
                    }
                }
                decision = Some(step);
                "-refused"
            }
            // This effect can never be performed as it is (the repository was archived or
            // renamed, GitHub refuses for good): it is parked on its own, with its reason, and
            // the effects after it still run (a "back to NOTIFIED" after a failed reopen).
            Err(e) if !e.retryable && e.paced.is_none() => {
                tracing::error!(error = %e, effect = %effect.id, "effect parked (see `lever jobs --failed`)");
                park(&mut changes, app.now(), &group, effect, run.id, &e.message);
                continue;
            }
            Err(mut e) => {
                if let Some(partial) = e.partial.take() {
                    changes.merge(*partial);
                }
                // The retry of this run performs the refusals' effects: no second job for
                // them, which would also cut the retry's backoff short.
                changes
                    .jobs
                    .retain(|j| j.job != Job::ApplyEffects(key.clone()));
                finish(&mut changes, &group, decided);
                e.partial = Some(Box::new(changes));
                return Err(e);
            }
        };
        changes.outbox.push(OutboxWrite::Remove(effect.id.clone()));
        changes.audit.push(AuditEntry {
            seq: 0,
            at: app.now(),
            actor: "lever".into(),
            action: format!("effect-{}{outcome}", action_name(&effect.action)),
            group_key: Some(key.clone()),
            issue: group.issue_number.map(|n| format!("{}#{n}", group.repo)),
            source: Some(effect.source.clone()),
            detail: json!({ "effect": effect.action, "job": run.id }),
        });
        if let Some(decision) = decision {
            changes.merge(decision);
        }
    }
    finish(&mut changes, &group, decided);
    Ok(JobOutput::done(changes))
}

/// The run's one write of the group, when a refusal changed it (compare-and-swap against the
/// version this run loaded).
fn finish(changes: &mut ChangeSet, group: &GroupRecord, decided: Option<GroupRecord>) {
    if let Some(record) = decided {
        changes.groups.push(GroupWrite::Update {
            record,
            expected_version: group.version,
        });
    }
}

/// Parks `effect` with its reason: out of the group's outbox (the effects after it still run),
/// listed by `lever jobs --failed`, and audited.
fn park(
    changes: &mut ChangeSet,
    now: DateTime<Utc>,
    group: &GroupRecord,
    effect: &Effect,
    job: i64,
    error: &str,
) {
    changes.outbox.push(OutboxWrite::Park {
        id: effect.id.clone(),
        error: error.to_string(),
    });
    changes.audit.push(AuditEntry {
        seq: 0,
        at: now,
        actor: "lever".into(),
        action: format!("effect-{}-parked", action_name(&effect.action)),
        group_key: Some(group.group_key.clone()),
        issue: group.issue_number.map(|n| format!("{}#{n}", group.repo)),
        source: Some(effect.source.clone()),
        detail: json!({ "effect": effect.action, "job": job, "error": error }),
    });
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Comment { .. } => "comment",
        Action::AddLabel { .. } => "label",
        Action::RemoveLabel { .. } => "unlabel",
        Action::Close { .. } => "close",
        Action::Reopen => "reopen",
        Action::Assign { .. } => "assign",
        Action::UpdateFindings { .. } => "update-findings",
        Action::RefreshBody => "refresh-body",
        Action::Schedule { .. } => "schedule",
        Action::Recreate => "recreate",
        Action::Moved { .. } => "moved",
    }
}
