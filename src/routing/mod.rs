//! Routing: which repository owns a finding and who, at this instant, owns the issue.
//! Pure: time and repository visibility are inputs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Assignee, Config, RepoName};
use crate::domain::Finding;

/// Where a finding's issue goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub repo: RepoName,
    /// The OWNERS line that decided, `None` when no line matched (fallback repository).
    pub rule_line: Option<usize>,
    /// The people to try, in order, resolved at the routing instant (logins without `@`): the
    /// first owns the issue; the others are fallbacks when GitHub refuses an assignee. The
    /// fallback assignees of `[github]` close the chain.
    pub chain: Vec<String>,
    /// Why the route is not the plain OWNERS result (public repository, no matching line).
    pub warnings: Vec<String>,
    /// Who owns issues on this route, as configured (users and rotations), before the
    /// fallback assignees: resolved again whenever the issue needs the person on call now
    /// (a reopened issue, a handoff), so a rerouted group keeps its own rotation.
    #[serde(default)]
    pub assignees: Vec<Assignee>,
}

impl Route {
    /// The person who owns the issue now.
    pub fn owner(&self) -> Option<&str> {
        self.chain.first().map(String::as_str)
    }

    /// The person on call for this route at `now`: its assignees resolved, then the fallback
    /// assignees. A route stored before it recorded its assignees uses its OWNERS line.
    pub fn on_call(&self, config: &Config, now: DateTime<Utc>) -> Option<String> {
        self.owners_now(config, now).into_iter().next()
    }

    /// Everyone who owns issues on this route at `now`, in order: its assignees resolved (the
    /// person on call first), then the fallback assignees.
    pub fn owners_now(&self, config: &Config, now: DateTime<Utc>) -> Vec<String> {
        let mut chain = Vec::new();
        if self.assignees.is_empty()
            && let Some(rule) = self.rule_line.and_then(|line| {
                config
                    .owners
                    .rules
                    .iter()
                    .find(|r| r.line == line && r.repo == self.repo)
            })
        {
            resolve(config, &rule.assignees, now, &mut chain);
        }
        resolve(config, &self.assignees, now, &mut chain);
        resolve(
            config,
            &config.settings.github.fallback_assignees,
            now,
            &mut chain,
        );
        chain
    }
}

/// What Lever knows about a repository's visibility: `Some(true)` public, `Some(false)`
/// private/internal, `None` unknown (e.g. `lever plan`, which does not ask GitHub).
pub type Visibility<'a> = &'a dyn Fn(&RepoName) -> Option<bool>;

/// Appends the logins `assignees` name at `now` (a rotation gives who is on call), skipping
/// people already in `out`.
pub fn resolve(config: &Config, assignees: &[Assignee], now: DateTime<Utc>, out: &mut Vec<String>) {
    for a in assignees {
        let login = match a {
            Assignee::User(u) => Some(u.as_str()),
            Assignee::Rotation(r) => config.settings.rotations.get(r).map(|rot| rot.on_call(now)),
        };
        if let Some(login) = login
            && !out.iter().any(|x| x.eq_ignore_ascii_case(login))
        {
            out.push(login.to_string());
        }
    }
}

/// Routes a finding: the last matching OWNERS line, its assignees resolved at `now`, then the
/// fallback assignees. A public repository (per `visibility`) not explicitly allowed is
/// replaced by the fallback repository, with a warning.
pub fn route(
    f: &Finding,
    config: &Config,
    now: DateTime<Utc>,
    visibility: Visibility<'_>,
) -> Route {
    let gh = &config.settings.github;
    let mut warnings = Vec::new();
    let mut chain = Vec::new();
    let mut assignees = Vec::new();
    let (repo, rule_line) = match config.owners.rule_for(f) {
        Some(rule)
            if visibility(&rule.repo) == Some(true)
                && !gh.public_repos.allows(&rule.repo.to_string()) =>
        {
            warnings.push(format!(
                "OWNERS line {} points at public repository {}; routed to {} so finding details stay private \
                 (set github.allow_public_repos to allow it)",
                rule.line, rule.repo, gh.fallback_repo
            ));
            (gh.fallback_repo.clone(), Some(rule.line))
        }
        Some(rule) => {
            resolve(config, &rule.assignees, now, &mut chain);
            assignees = rule.assignees.clone();
            (rule.repo.clone(), Some(rule.line))
        }
        None => {
            warnings.push(format!(
                "no OWNERS line matches; routed to the fallback repository {}",
                gh.fallback_repo
            ));
            (gh.fallback_repo.clone(), None)
        }
    };
    resolve(config, &gh.fallback_assignees, now, &mut chain);
    Route {
        repo,
        rule_line,
        chain,
        warnings,
        assignees,
    }
}

#[cfg(test)]
mod tests;
