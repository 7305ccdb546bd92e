//! From parsed findings to durable intent: for each finding, classify it against what Lever
//! stored before, decide, route, and write the finding, its issue group and the job that will
//! open the issue, all in one transaction. No GitHub or Security Hub call happens here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::domain::{Finding, GroupKey, StableKey, WorkflowStatus};
use crate::policy::{self, Change, Decision, Previous, Verdict};
use crate::routing::{self, Route};
use crate::store::{
    AuditEntry, ChangeSet, FindingRecord, GroupData, GroupRecord, GroupStatus, GroupWrite, Job,
    NewJob, Store, StoreError,
};

/// What happened to one incoming finding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// A new group: the worker will open its issue.
    OpenIssue,
    /// The finding belongs to a group that already has (or is getting) an issue; the update is
    /// recorded for the issue's lifecycle.
    Tracked,
    /// Recorded; policy says no issue.
    Skipped,
    /// Nothing new: no write at all.
    Repeat,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingOutcome {
    pub finding_id: String,
    pub product_arn: String,
    pub stable_key: StableKey,
    pub group_key: GroupKey,
    pub change: Change,
    pub verdict: Verdict,
    pub action: Disposition,
    /// The route, when the finding opens an issue.
    pub route: Option<Route>,
}

/// The group record for a new issue group.
pub fn new_group(
    key: &GroupKey,
    f: &Finding,
    route: &Route,
    verdict: &Verdict,
    config: &Config,
    now: DateTime<Utc>,
) -> GroupRecord {
    let account = config.account_at(&f.account_id, now);
    GroupRecord {
        group_key: key.clone(),
        repo: route.repo.to_string(),
        issue_number: None,
        issue_url: None,
        status: GroupStatus::Pending,
        assignee: route.owner().map(str::to_string),
        data: GroupData {
            route: route.clone(),
            account_id: f.account_id.clone(),
            environment: account.environment.clone(),
            mode: account.mode.as_str().to_string(),
            severity: f.severity,
            control_id: f.control_id().map(str::to_string),
            title: f.title.clone(),
            reason: verdict.detail.clone(),
            lifecycle: None,
            recreated_from: None,
            last_event_at: None,
            reroute: None,
        },
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

/// Plans the writes for a batch of findings. Pure: `previous` and `groups` are what the store
/// holds for these findings and their groups.
pub fn plan(
    findings: &[Finding],
    previous: &HashMap<(String, String), FindingRecord>,
    groups: &HashMap<GroupKey, GroupRecord>,
    config: &Config,
    now: DateTime<Utc>,
    source: &str,
) -> (ChangeSet, Vec<FindingOutcome>) {
    let mut changes = ChangeSet::default();
    let mut outcomes = Vec::with_capacity(findings.len());
    let mut opened: HashSet<GroupKey> = HashSet::new();
    let updated_by = &config.settings.securityhub.updated_by;
    let unknown_visibility = |_: &crate::config::RepoName| None;
    for f in findings {
        let stable_key = StableKey::for_finding(f);
        let prev = previous.get(&(f.product_arn.clone(), f.id.clone()));
        // A finding stays in the group it joined while that group exists (grouping may have
        // changed since: a `[grouping]` edit, an upgrade that folds findings differently), so
        // its issue keeps tracking it.
        let group_key = match prev {
            Some(p) if groups.contains_key(&p.group_key) || opened.contains(&p.group_key) => {
                p.group_key.clone()
            }
            _ => GroupKey::for_finding(f, &config.settings.grouping),
        };
        let change = policy::classify(
            prev.map(|p| Previous {
                updated_at: p.updated_at.as_deref(),
                fingerprint: &p.fingerprint,
                workflow: p.workflow,
                note_text: p.finding.note.as_ref().map(|n| n.text.as_str()),
                lever_writes: &p.lever_writes,
            }),
            f,
            updated_by,
        );
        let mut verdict = policy::decide_at(f, config, now);
        let group_exists = groups.contains_key(&group_key) || opened.contains(&group_key);
        // A finding that would open an issue waits out its settle delay first: the `settle`
        // job plans it again when the delay ends.
        if !group_exists && change != Change::Stale {
            let first_seen = prev.map(|p| p.first_seen).unwrap_or(now);
            let (settled, until) =
                policy::settle::apply(verdict, f, &config.settings.settle, first_seen, now);
            verdict = settled;
            if let Some(until) = until {
                changes
                    .jobs
                    .push(NewJob::new(Job::Settle(group_key.clone()), until));
            }
        }
        let mut route = None;
        let action = if change == Change::Stale {
            // Older than what Lever holds: it says nothing about now.
            Disposition::Repeat
        } else if !group_exists && verdict.decision == Decision::Ticket {
            // Also when the finding itself is a repeat: it was skipped before (no group), and
            // the policy now says ticket (e.g. the account minimum was widened).
            let r = routing::route(f, config, now, &unknown_visibility);
            changes.groups.push(GroupWrite::InsertIfAbsent(new_group(
                &group_key, f, &r, &verdict, config, now,
            )));
            changes
                .jobs
                .push(NewJob::new(Job::OpenIssue(group_key.clone()), now));
            changes.audit.push(AuditEntry {
                seq: 0,
                at: now,
                actor: "securityhub".into(),
                action: "group-created".into(),
                group_key: Some(group_key.clone()),
                issue: None,
                source: Some(source.to_string()),
                detail: json!({
                    "finding_id": f.id,
                    "stable_key": stable_key,
                    "reason": verdict.reason,
                    "detail": verdict.detail,
                    "repo": r.repo,
                    "owner": r.owner(),
                }),
            });
            opened.insert(group_key.clone());
            route = Some(r);
            Disposition::OpenIssue
        } else if change == Change::Repeat {
            Disposition::Repeat
        } else if group_exists {
            let has_issue = groups
                .get(&group_key)
                .is_some_and(|g| g.issue_number.is_some());
            if has_issue && change.is_news() {
                changes
                    .jobs
                    .push(NewJob::new(Job::SyncGroup(group_key.clone()), now));
            }
            // Writebacks converge: a failing finding of an open, tracked issue still NEW in
            // Security Hub (Lever's NOTIFIED never went through, or was reset) is notified
            // again, unless that is already queued.
            let open_tracked = groups.get(&group_key).is_some_and(|g| {
                let state = g.state();
                g.issue_number.is_some() && state.open && state.exception.is_none()
            });
            if open_tracked
                && change != Change::Stale
                && f.workflow == WorkflowStatus::New
                && crate::domain::lifecycle::is_failing(f)
                && config.settings.securityhub.writeback
            {
                changes.jobs.push(NewJob::if_absent(
                    Job::NotifyFindings(group_key.clone()),
                    now,
                ));
            }
            // A group still waiting for its issue (its opening may have been parked after
            // failing for good): a later finding re-queues the opening, unless it is already
            // queued (then its backoff holds).
            let waiting = groups
                .get(&group_key)
                .is_some_and(|g| g.issue_number.is_none() && g.status == GroupStatus::Pending);
            if waiting && change != Change::OwnEcho && verdict.decision == Decision::Ticket {
                changes
                    .jobs
                    .push(NewJob::if_absent(Job::OpenIssue(group_key.clone()), now));
            }
            Disposition::Tracked
        } else {
            Disposition::Skipped
        };
        // What Lever already holds is at least as new as a repeat, a stale event, or an echo
        // of its own write with the same `UpdatedAt` (the record holds that write, or a later
        // one the echo must not undo).
        let keep = match change {
            Change::Repeat | Change::Stale => true,
            Change::OwnEcho => prev.is_some_and(|p| p.updated_at == f.updated_at),
            _ => false,
        };
        if !keep {
            changes.findings.push(FindingRecord {
                product_arn: f.product_arn.clone(),
                finding_id: f.id.clone(),
                stable_key: stable_key.clone(),
                group_key: group_key.clone(),
                account_id: f.account_id.clone(),
                severity: f.severity,
                compliance: f.compliance,
                record_state: f.record_state,
                workflow: f.workflow,
                updated_at: f.updated_at.clone(),
                fingerprint: policy::fingerprint(f),
                finding: f.clone(),
                lever_writes: prev.map(|p| p.lever_writes.clone()).unwrap_or_default(),
                first_seen: prev.map(|p| p.first_seen).unwrap_or(now),
                last_seen: now,
            });
        }
        outcomes.push(FindingOutcome {
            finding_id: f.id.clone(),
            product_arn: f.product_arn.clone(),
            stable_key,
            group_key,
            change,
            verdict,
            action,
            route,
        });
    }
    (changes, outcomes)
}

/// Loads what the store knows about `findings`, plans, and commits the plan atomically.
pub async fn ingest(
    store: &dyn Store,
    config: &Config,
    findings: &[Finding],
    now: DateTime<Utc>,
    source: &str,
) -> Result<Vec<FindingOutcome>, StoreError> {
    let (changes, outcomes) = prepare(store, config, findings, now, source).await?;
    if !changes.is_empty() {
        store.apply(changes, now).await?;
    }
    Ok(outcomes)
}

/// Loads what the store knows about `findings` and plans, without committing: for jobs that
/// commit the plan together with their own decision.
pub async fn prepare(
    store: &dyn Store,
    config: &Config,
    findings: &[Finding],
    now: DateTime<Utc>,
    source: &str,
) -> Result<(ChangeSet, Vec<FindingOutcome>), StoreError> {
    let (changes, mut outcomes) =
        prepare_many(store, config, &[Arrival { findings, source }], now).await?;
    Ok((changes, outcomes.pop().unwrap_or_default()))
}

/// Findings that arrived together (one request, one event), with where they came from.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub findings: &'a [Finding],
    /// The audit source: `eventbridge:<event id>`, `ingest`, `sync`.
    pub source: &'a str,
}

/// Plans several arrivals for one commit: one load for all their findings, then each planned
/// in order as if the ones before it had been committed already (a finding two arrivals carry
/// is new in the first and a repeat in the second; a group the first creates exists for the
/// second). One list of outcomes per arrival.
pub async fn prepare_many(
    store: &dyn Store,
    config: &Config,
    arrivals: &[Arrival<'_>],
    now: DateTime<Utc>,
) -> Result<(ChangeSet, Vec<Vec<FindingOutcome>>), StoreError> {
    let findings: Vec<&Finding> = arrivals.iter().flat_map(|a| a.findings).collect();
    if findings.is_empty() {
        return Ok((ChangeSet::default(), vec![Vec::new(); arrivals.len()]));
    }
    let mut ids: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.product_arn.clone(), f.id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    let mut previous: HashMap<(String, String), FindingRecord> = store
        .findings(&ids)
        .await?
        .into_iter()
        .map(|r| ((r.product_arn.clone(), r.finding_id.clone()), r))
        .collect();
    // The groups the findings would join now, and the groups they joined before.
    let mut keys: Vec<GroupKey> = findings
        .iter()
        .map(|f| GroupKey::for_finding(f, &config.settings.grouping))
        .chain(previous.values().map(|p| p.group_key.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut groups: HashMap<GroupKey, GroupRecord> = store
        .groups(&keys)
        .await?
        .into_iter()
        .map(|g| (g.group_key.clone(), g))
        .collect();
    let mut changes = ChangeSet::default();
    let mut outcomes = Vec::with_capacity(arrivals.len());
    for a in arrivals {
        let (planned, outcome) = plan(a.findings, &previous, &groups, config, now, a.source);
        remember(&planned, &mut previous, &mut groups);
        changes.merge(planned);
        outcomes.push(outcome);
    }
    Ok((changes, outcomes))
}

/// What the next plan of the same commit must see: the findings and the new groups `planned`
/// writes.
fn remember(
    planned: &ChangeSet,
    previous: &mut HashMap<(String, String), FindingRecord>,
    groups: &mut HashMap<GroupKey, GroupRecord>,
) {
    for f in &planned.findings {
        previous.insert((f.product_arn.clone(), f.finding_id.clone()), f.clone());
    }
    for g in &planned.groups {
        if let GroupWrite::InsertIfAbsent(r) = g {
            groups
                .entry(r.group_key.clone())
                .or_insert_with(|| r.clone());
        }
    }
}

#[cfg(test)]
mod tests;
