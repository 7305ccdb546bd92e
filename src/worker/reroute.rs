//! When a repository refuses Lever: the App is not installed on it (never was, uninstalled, the
//! repository renamed or transferred to an owner without the App), the App may not write there,
//! the repository is archived, the App is suspended, or an issue was transferred to a
//! repository without the App.
//!
//! The defined behaviour, everywhere:
//! - **A new issue** (`open-issue`) whose repository refuses opens in the fallback repository
//!   (`[github] fallback_repo`) with the fallback assignees; its body says which repository
//!   refused and what GitHub answered (and links the issue Lever can no longer reach, if any);
//!   the reason is a warning on the group's route and an `issue-rerouted` audit entry. When the
//!   fallback repository refuses too, the job is parked with both reasons
//!   (`lever jobs --failed`).
//! - **The App uninstalled** from a repository (`installation.deleted`,
//!   `installation_repositories.removed`), or **an issue transferred** to a repository without
//!   the App: every open issue of the repository Lever tracked is replaced by one in the
//!   fallback repository (the same as a new issue, its body linking the old one), so its later
//!   effects and its escalation go on there; the effects waiting for the old issue are dropped
//!   (the `issue-unreachable` audit row names them: retried, they would land on the new issue). Closed issues stay closed; an effect
//!   decided for one later (a reopen when an exception expires) is parked with the reason.
//! - **The App suspended** (`installation.suspend`): the effects of the repository's issues are
//!   parked with "App suspended on owner/repo" (the issues stay where they are; new issues open
//!   in the fallback repository). **Unsuspended**, or the repository added back
//!   (`installation.unsuspend`, `installation.created`, `installation_repositories.added`):
//!   the effects parked for that reason return to their outboxes and run.
//!
//! What the App's webhooks said is kept per repository (key `access:<owner/repo>`), so every
//! replica and every later job knows it without asking GitHub.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{JobError, JobOutput, Run};
use crate::app::App;
use crate::config::Config;
use crate::domain::lifecycle::Action;
use crate::github::AccessChange;
use crate::routing::Route;
use crate::store::{
    AuditEntry, ChangeSet, Effect, GroupRecord, GroupStatus, GroupWrite, Job, NewJob, OutboxWrite,
    Reroute, StoreError,
};

/// What the App's latest webhook said about a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub change: AccessChange,
    /// In words, for notes and parked effects: `App uninstalled from acme/web`.
    pub reason: String,
    pub at: DateTime<Utc>,
}

fn kv_key(repo: &str) -> String {
    format!("access:{}", repo.to_ascii_lowercase())
}

/// The reason an access change gives, in words.
pub fn reason(change: AccessChange, repo: &str) -> String {
    match change {
        AccessChange::Uninstalled => format!("App uninstalled from {repo}"),
        AccessChange::Suspended => format!("App suspended on {repo}"),
        AccessChange::Restored => format!("App installed on {repo}"),
    }
}

/// What an `installation` / `installation_repositories` delivery changes: the access recorded
/// for each repository, one `repo-access` job per repository, and an audit entry. Pure: the
/// webhook endpoint commits it before it records the delivery (a redelivery applies it again,
/// to the same result).
pub fn access_changed(
    change: AccessChange,
    repos: &[String],
    source: &str,
    now: DateTime<Utc>,
) -> ChangeSet {
    let mut changes = ChangeSet::default();
    for repo in repos {
        let access = Access {
            change,
            reason: reason(change, repo),
            at: now,
        };
        changes.kv.push((
            kv_key(repo),
            serde_json::to_string(&access).expect("serializable"),
        ));
        changes
            .jobs
            .push(NewJob::new(Job::RepoAccess(repo.clone()), now));
        changes.audit.push(AuditEntry {
            seq: 0,
            at: now,
            actor: "github".into(),
            action: format!("repo-access-{}", kebab(change)),
            group_key: None,
            issue: None,
            source: Some(source.to_string()),
            detail: json!({ "repo": repo, "reason": access.reason }),
        });
    }
    changes
}

fn kebab(change: AccessChange) -> &'static str {
    match change {
        AccessChange::Uninstalled => "uninstalled",
        AccessChange::Suspended => "suspended",
        AccessChange::Restored => "restored",
    }
}

/// The App's recorded access to `repo`, when its latest webhook took it away.
pub async fn lost(app: &App, repo: &str) -> Result<Option<Access>, StoreError> {
    let Some(text) = app.store.kv_get(&kv_key(repo)).await? else {
        return Ok(None);
    };
    let access: Access = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("kv {}: {e}", kv_key(repo))))?;
    Ok((access.change != AccessChange::Restored).then_some(access))
}

/// Why `repo` refuses a GitHub effect now, without calling GitHub when the App's webhooks
/// said so: the recorded loss, or the App not installed there (the installation lookup, cached
/// and made by any call anyway, answers 404).
pub async fn refused_for_effects(app: &App, repo: &str) -> Result<Option<String>, JobError> {
    if let Some(access) = lost(app, repo).await? {
        return Ok(Some(access.reason));
    }
    if !app.github.has_app(repo).await? {
        return Ok(Some(format!(
            "App not installed on {repo} (GitHub answers 404 for its installation)"
        )));
    }
    Ok(None)
}

/// Whether a new issue can open in a repository.
pub(super) enum Probe {
    /// The repository takes the issue; whether it is public.
    Usable { public: bool },
    /// The repository refuses, in words (what GitHub answered).
    Refused(String),
}

/// Whether a new issue can open in `repo`: the App's webhooks are believed first; otherwise the
/// repository is looked up (one cached read, which also tells whether it is public or archived).
pub(super) async fn probe(app: &App, repo: &str) -> Result<Probe, JobError> {
    if let Some(access) = lost(app, repo).await? {
        return Ok(Probe::Refused(access.reason));
    }
    match app.github.repo_info(repo).await {
        Ok(info) if info.archived => Ok(Probe::Refused(format!(
            "{repo} is archived, so it is read-only"
        ))),
        Ok(info) => Ok(Probe::Usable {
            public: info.public,
        }),
        Err(e) if e.is_refusal() => Ok(Probe::Refused(format!(
            "{repo} refuses Lever (GitHub answered: {e})"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Where a new issue of `group` opens: `route`'s repository, unless it refuses Lever (the
/// group's recorded [`Reroute`], the App's webhooks, or GitHub's answer to the repository
/// look-up) or is public without `github.allow_public_repos`: then the fallback repository,
/// with the reason added to `notes` and to the route's warnings. Returns why it refused.
pub(super) async fn choose_repo(
    app: &App,
    group: &GroupRecord,
    route: &mut Route,
    notes: &mut Vec<String>,
    now: DateTime<Utc>,
) -> Result<Option<Reroute>, JobError> {
    let gh = &app.config.settings.github;
    let repo = route.repo.to_string();
    let fallback = gh.fallback_repo.to_string();
    if route.repo.same_as(&fallback) {
        return Ok(None);
    }
    let refused = match group.data.reroute.clone() {
        Some(r) => r,
        None => match probe(app, &repo).await? {
            Probe::Refused(reason) => Reroute {
                repo: repo.clone(),
                previous: None,
                reason,
            },
            Probe::Usable { public } => {
                if public && !gh.public_repos.allows(&repo) {
                    let warning = format!(
                        "The owning repository {repo} is public, so this issue was opened in {fallback} to keep finding \
                         details private (set github.allow_public_repos to allow it)."
                    );
                    tracing::warn!(group = %group.group_key, %repo, "owner repository is public; using the fallback repository");
                    to_fallback(&app.config, route, &warning, now);
                    notes.push(warning);
                }
                return Ok(None);
            }
        },
    };
    let warning = note(&fallback, &refused);
    tracing::warn!(group = %group.group_key, repo = %refused.repo, reason = %refused.reason, "owner repository refuses Lever; using the fallback repository");
    to_fallback(&app.config, route, &warning, now);
    notes.push(warning);
    Ok(Some(refused))
}

/// The note an issue opened in the fallback repository carries.
pub fn note(fallback: &str, reroute: &Reroute) -> String {
    let previous = reroute
        .previous
        .as_deref()
        .map(|url| format!(" Lever can no longer reach the earlier issue for this problem: {url}."))
        .unwrap_or_default();
    format!(
        "This issue was opened in {fallback} because the owning repository {} refuses Lever: {}.{previous}",
        reroute.repo, reroute.reason
    )
}

/// `route` sent to the fallback repository with its assignees, with `warning` recorded on it.
/// Pure.
pub fn to_fallback(config: &Config, route: &mut Route, warning: &str, now: DateTime<Utc>) {
    let gh = &config.settings.github;
    route.repo = gh.fallback_repo.clone();
    route.chain.clear();
    route.assignees = gh.fallback_assignees.clone();
    crate::routing::resolve(config, &gh.fallback_assignees, now, &mut route.chain);
    route.warnings.push(warning.to_string());
}

/// Whether the effect calls GitHub (the Security Hub writeback does not, and still runs).
pub fn is_github_effect(action: &Action) -> bool {
    !matches!(
        action,
        Action::UpdateFindings { .. }
            | Action::Schedule { .. }
            | Action::Recreate
            | Action::Moved { .. }
    )
}

/// The group's issue is out of Lever's reach (`reroute` says why): its next issue opens in the
/// fallback repository, linking this one, and the GitHub effects waiting for the old issue are
/// dropped, the audit naming them (kinds, in order). Not parked: an effect handed back by
/// `lever jobs retry` applies to the group's issue of the moment, which will be the new one,
/// and a close, reopen or comment meant for the old issue must not land there; the new issue
/// starts from the group's state. Security Hub writes stay. Store-only; `record` is the group as
/// it will be written (its compare-and-swap version is the caller's). Pure.
pub fn detach(
    record: &mut GroupRecord,
    outbox: &[Effect],
    reroute: Reroute,
    source: &str,
    now: DateTime<Utc>,
) -> ChangeSet {
    let mut changes = ChangeSet::default();
    let mut dropped = Vec::new();
    for e in outbox.iter().filter(|e| is_github_effect(&e.action)) {
        changes.outbox.push(OutboxWrite::Remove(e.id.clone()));
        dropped.push(
            serde_json::to_value(&e.action)
                .ok()
                .and_then(|v| v["kind"].as_str().map(str::to_string))
                .unwrap_or_default(),
        );
    }
    changes.audit.push(AuditEntry {
        seq: 0,
        at: now,
        actor: "lever".into(),
        action: "issue-unreachable".into(),
        group_key: Some(record.group_key.clone()),
        issue: record.issue_number.map(|n| format!("{}#{n}", record.repo)),
        source: Some(source.to_string()),
        detail: json!({
            "repo": reroute.repo,
            "reason": reroute.reason,
            "previous": reroute.previous,
            "dropped_effects": dropped,
        }),
    });
    record.issue_number = None;
    record.issue_url = None;
    record.status = GroupStatus::Pending;
    record.data.lifecycle = None;
    record.data.reroute = Some(reroute);
    record.updated_at = now;
    changes
        .jobs
        .push(NewJob::new(Job::OpenIssue(record.group_key.clone()), now));
    changes
}

/// `repo-access`: the App lost or regained `repo` (as its webhook said, recorded with
/// [`access_changed`]). Lost: the effects waiting for the repository's issues are parked with
/// the reason, and when the App was uninstalled, each open issue is replaced by one in the
/// fallback repository ([`detach`]). Regained: the effects parked for that reason run again.
pub(super) async fn run(app: &App, run: &Run, repo: &str) -> Result<JobOutput, JobError> {
    // The installation lookup and the token of this repository may be stale now.
    app.github.forget(repo).await;
    let now = app.now();
    let source = run.source();
    let groups: Vec<GroupRecord> = app
        .store
        .list_groups(None)
        .await?
        .into_iter()
        .filter(|g| g.repo.eq_ignore_ascii_case(repo) && g.issue_number.is_some())
        .collect();
    let mut changes = ChangeSet::default();
    match lost(app, repo).await? {
        Some(access) => {
            for group in groups {
                let outbox = app.store.outbox(&group.group_key).await?;
                if access.change == AccessChange::Uninstalled && group.status == GroupStatus::Open {
                    let mut record = group.clone();
                    let reroute = Reroute {
                        repo: repo.to_string(),
                        previous: group.issue_url.clone(),
                        reason: access.reason.clone(),
                    };
                    changes.merge(detach(&mut record, &outbox, reroute, &source, now));
                    changes.groups.push(GroupWrite::Update {
                        record,
                        expected_version: group.version,
                    });
                } else {
                    for e in outbox.iter().filter(|e| is_github_effect(&e.action)) {
                        changes.outbox.push(OutboxWrite::Park {
                            id: e.id.clone(),
                            error: access.reason.clone(),
                        });
                    }
                }
            }
            tracing::warn!(repo, reason = %access.reason, "the App lost a repository");
        }
        None => {
            let keys: std::collections::HashSet<_> =
                groups.iter().map(|g| g.group_key.clone()).collect();
            let lost_reasons = [
                reason(AccessChange::Uninstalled, repo),
                reason(AccessChange::Suspended, repo),
            ];
            for (effect, error) in app.store.parked_effects().await? {
                if keys.contains(&effect.group_key) && lost_reasons.contains(&error) {
                    changes.outbox.push(OutboxWrite::Unpark(effect.id.clone()));
                    changes
                        .jobs
                        .push(NewJob::new(Job::ApplyEffects(effect.group_key), now));
                }
            }
            tracing::info!(
                repo,
                requeued = changes.outbox.len(),
                "the App regained a repository"
            );
        }
    }
    Ok(JobOutput::done(changes))
}
