//! The shift-left check (`lever check`, `GET /api/v1/check`): which open findings of one
//! repository's resources, seen in the accounts of *other* environments (staging,
//! development), would become issues under a target environment's policy (production).
//!
//! [`project`] is pure: the configuration, the findings, the approved exceptions and the
//! instant are its inputs. It reuses Lever's own decisions: routing ([`routing::route`]) picks
//! the repository, [`policy::decide_under`] applies the target environment's minimum severity,
//! mode, ignore tags and exclusions, [`GroupKey::for_finding`] groups. The adapters (the API in
//! `server::check`, the command in `cli::check`) only load the inputs and render the answer
//! ([`render`]).
//!
//! Rules, in order, for each finding:
//! - in an account of the target environment itself: not considered (it is already tracked
//!   there, or not);
//! - routed by OWNERS to another repository: not considered;
//! - the target environment's policy skips it (any account of that environment would): no;
//! - an approved exception in force in the target environment for the same control and the
//!   same repository covers it: no (counted as `covered`);
//! - else it would become an issue, grouped as Lever groups.

pub mod oidc;
pub mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{AccountPolicy, Config, Mode, RepoName};
use crate::controls::Catalog;
use crate::domain::{Finding, GroupKey, Severity};
use crate::explain;
use crate::policy::{self, Decision};
use crate::routing;

/// An exception approved in the target environment, in force: it covers the same control on
/// the same repository's resources in every environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedException {
    pub control_id: String,
    pub repo: RepoName,
    /// The environment of the account where it was approved.
    pub environment: String,
    pub approver: String,
    pub expires_at: DateTime<Utc>,
}

/// One finding that would be ticketed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectedFinding {
    pub finding_id: String,
    pub account_id: String,
    /// The environment of the account it was seen in.
    pub environment: String,
    pub region: String,
    pub severity: Severity,
    /// The finding's own title (untrusted text).
    pub title: String,
    pub resources: Vec<String>,
    /// Why the target environment's policy tickets it.
    pub detail: String,
}

/// One issue the target environment would get: a group of findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectedIssue {
    pub group_key: GroupKey,
    pub control_id: Option<String>,
    /// The most severe finding's severity.
    pub severity: Severity,
    /// The explanation's title (the control's, else the lead finding's own).
    pub title: String,
    /// The explanation's remediation link (AWS only), if any.
    pub link: Option<String>,
    /// The target environment's mode is ramp-up: the issue would be informational.
    pub informational: bool,
    pub findings: Vec<ProjectedFinding>,
}

/// The answer: what would become issues in the target environment for one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub repo: String,
    pub target_environment: String,
    /// The target environment's accounts, and the minimum severity that applies there.
    pub target_accounts: Vec<String>,
    pub min_severity: Severity,
    /// Findings of the repository's resources outside the target environment considered.
    pub considered: usize,
    /// Findings an approved exception in the target environment covers.
    pub covered: usize,
    /// Most severe first, then by group key.
    pub issues: Vec<ProjectedIssue>,
}

impl Projection {
    /// Whether anything would become an issue.
    pub fn would_ticket(&self) -> bool {
        !self.issues.is_empty()
    }
}

/// Why no projection could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(
        "unknown target environment {env:?}: no account of the configuration is in it (environments: {known})"
    )]
    UnknownEnvironment { env: String, known: String },
}

/// The policies of the target environment at `now`: every configured account of it, or the
/// defaults when the defaults name it and no account does.
fn target_policies(
    config: &Config,
    target_env: &str,
    now: DateTime<Utc>,
) -> Result<Vec<AccountPolicy>, CheckError> {
    let accounts: Vec<AccountPolicy> = config
        .settings
        .accounts
        .values()
        .map(|a| a.at(now))
        .filter(|a| a.environment == target_env)
        .collect();
    if !accounts.is_empty() {
        return Ok(accounts);
    }
    let defaults = config.settings.defaults.at(now);
    if defaults.environment == target_env {
        return Ok(vec![defaults]);
    }
    let mut known: Vec<String> = config
        .settings
        .accounts
        .values()
        .map(|a| a.environment.clone())
        .chain([config.settings.defaults.environment.clone()])
        .collect();
    known.sort();
    known.dedup();
    Err(CheckError::UnknownEnvironment {
        env: target_env.to_string(),
        known: known.join(", "),
    })
}

/// What would become issues in `target_env` for `repo`'s resources. Pure.
pub fn project(
    config: &Config,
    findings: &[Finding],
    exceptions: &[ApprovedException],
    repo: &RepoName,
    target_env: &str,
    now: DateTime<Utc>,
) -> Result<Projection, CheckError> {
    let targets = target_policies(config, target_env, now)?;
    let catalog = Catalog::embedded();
    let unknown = |_: &RepoName| None;
    let mut considered = 0;
    let mut covered = 0;
    let mut groups: BTreeMap<GroupKey, Vec<(&Finding, String, bool)>> = BTreeMap::new();
    for f in findings {
        let own = config.account_at(&f.account_id, now);
        if own.environment == target_env {
            continue;
        }
        if !routing::route(f, config, now, &unknown)
            .repo
            .same_as(&repo.to_string())
        {
            continue;
        }
        considered += 1;
        // Ticketed when any account of the target environment would ticket it; the first
        // ticketing account's verdict explains.
        let Some((verdict, informational)) = targets.iter().find_map(|t| {
            let v = policy::decide_under(f, t, config);
            (v.decision == Decision::Ticket).then_some((v, t.mode == Mode::RampUp))
        }) else {
            continue;
        };
        let excepted = f.control_id().is_some_and(|id| {
            exceptions.iter().any(|e| {
                e.environment == target_env
                    && e.expires_at > now
                    && e.control_id.eq_ignore_ascii_case(id)
                    && e.repo.same_as(&repo.to_string())
            })
        });
        if excepted {
            covered += 1;
            continue;
        }
        groups
            .entry(GroupKey::for_finding(f, &config.settings.grouping))
            .or_default()
            .push((f, verdict.detail, informational));
    }
    let mut issues: Vec<ProjectedIssue> = groups
        .into_iter()
        .map(|(group_key, members)| {
            let fs: Vec<Finding> = members.iter().map(|(f, _, _)| (*f).clone()).collect();
            let lead = explain::lead_finding(&fs);
            ProjectedIssue {
                control_id: lead.control_id().map(str::to_string),
                severity: lead.severity,
                title: explain::explanation_title(lead, catalog),
                link: explain::remediation_link(lead, catalog),
                informational: members.iter().all(|(_, _, i)| *i),
                findings: members
                    .iter()
                    .map(|(f, detail, _)| ProjectedFinding {
                        finding_id: f.id.clone(),
                        account_id: f.account_id.clone(),
                        environment: config.account_at(&f.account_id, now).environment,
                        region: f.region.clone(),
                        severity: f.severity,
                        title: f.title.clone(),
                        resources: f.resources.iter().map(|r| r.id.clone()).collect(),
                        detail: detail.clone(),
                    })
                    .collect(),
                group_key,
            }
        })
        .collect();
    issues.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.group_key.cmp(&b.group_key))
    });
    Ok(Projection {
        repo: repo.to_string(),
        target_environment: target_env.to_string(),
        target_accounts: targets.iter().filter_map(|t| t.id.clone()).collect(),
        min_severity: targets
            .iter()
            .map(|t| t.min_severity)
            .min()
            .unwrap_or(Severity::Critical),
        considered,
        covered,
        issues,
    })
}

#[cfg(test)]
mod tests;
