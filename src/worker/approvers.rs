//! Who counts as an approver of `cto-approved`: the configured users, and active members of
//! the configured `@org/team`s (asked of GitHub, cached briefly).

use std::time::Instant;

use crate::app::{App, MEMBERSHIP_TTL};
use crate::config::Approver;
use crate::github::GitHubError;

/// Whether `login` is an approver; team memberships are asked with the installation token of
/// `repo` (the App needs the organization "Members: read" permission).
pub async fn is_approver(app: &App, repo: &str, login: &str) -> Result<bool, GitHubError> {
    for a in &app.config.settings.approvers {
        match a {
            Approver::User { login: u } if u.eq_ignore_ascii_case(login) => return Ok(true),
            Approver::User { .. } => {}
            Approver::Team { org, slug } => {
                let key = format!("{org}/{slug}/{login}").to_ascii_lowercase();
                if let Some((member, at)) = app.caches.memberships.lock().await.get(&key)
                    && at.elapsed() < MEMBERSHIP_TTL
                {
                    if *member {
                        return Ok(true);
                    }
                    continue;
                }
                let member = app
                    .github
                    .is_active_team_member(repo, org, slug, login)
                    .await?;
                app.caches
                    .memberships
                    .lock()
                    .await
                    .insert(key, (member, Instant::now()));
                if member {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}
