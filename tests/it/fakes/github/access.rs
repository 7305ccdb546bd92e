//! The App losing or regaining repositories, and archived repositories, as GitHub does it.
//!
//! - Removed from a repository (`installation_repositories.removed`): the repository answers
//!   the installation as any repository it cannot see: 404 "Not Found" (reads and creates), and
//!   `GET /repos/{owner}/{repo}/installation` answers 404 to the App.
//! - Suspended (`installation.suspend`): a token cannot be created and calls with an existing
//!   one answer 403 "This installation has been suspended" until `installation.unsuspend`.
//! - Archived: the repository is read-only; every write answers 403 "Repository was archived so
//!   is read-only." (reads keep working, `archived: true`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::FakeGitHub;
use super::state::{AccountKind, Bases, State};
use super::webhooks::WebhookDelivery;

/// GitHub's answer to any write in an archived repository.
pub(crate) const ARCHIVED: &str = "Repository was archived so is read-only.";
/// GitHub's answer to a suspended installation.
pub(crate) const SUSPENDED: &str = "This installation has been suspended";

fn repo_entry(st: &State, key: &str) -> Value {
    let r = st.repo(key).expect("unknown repo");
    json!({
        "id": r.id,
        "node_id": format!("R_fake{}", r.id),
        "name": r.name,
        "full_name": r.full_name(),
        "private": r.private,
    })
}

fn installation_delivery(
    st: &State,
    b: &Bases,
    event: &str,
    action: &str,
    installation: u64,
    sender: &str,
    fields: Vec<(&str, Value)>,
) -> WebhookDelivery {
    let inst = st
        .installations
        .get(&installation)
        .expect("unknown installation");
    let mut p = serde_json::Map::new();
    p.insert("action".into(), json!(action));
    p.insert("installation".into(), st.installation_json(b, inst));
    for (k, v) in fields {
        p.insert(k.to_string(), v);
    }
    if st
        .account(&inst.account_login)
        .is_some_and(|a| a.kind == AccountKind::Organization)
    {
        p.insert("organization".into(), st.org_json(b, &inst.account_login));
    }
    p.insert("sender".into(), st.user_json(b, sender));
    WebhookDelivery {
        id: uuid::Uuid::new_v4().to_string(),
        event: event.to_string(),
        action: Some(action.to_string()),
        payload: Value::Object(p),
        app_id: st.app.as_ref().map(|a| a.id).unwrap_or(0),
    }
}

fn covered(st: &State, installation: u64) -> Vec<Value> {
    st.repos
        .iter()
        .filter(|(_, r)| r.installation == Some(installation))
        .map(|(k, _)| repo_entry(st, k))
        .collect()
}

/// Changing who can reach what (deliveries are returned, not queued: deliver them yourself).
impl FakeGitHub {
    /// `login` removes `repo` from the App's installation. Returns the
    /// `installation_repositories.removed` delivery.
    pub fn remove_repo_from_installation(&self, repo: &str, login: &str) -> WebhookDelivery {
        let b = self.shared.bases.clone();
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        let key = repo.to_ascii_lowercase();
        let installation = st
            .repo(&key)
            .and_then(|r| r.installation)
            .expect("the App is installed on the repository");
        let removed = repo_entry(&st, &key);
        st.repo_mut(&key).unwrap().installation = None;
        installation_delivery(
            &st,
            &b,
            "installation_repositories",
            "removed",
            installation,
            login,
            vec![
                ("repository_selection", json!("selected")),
                ("repositories_added", json!([])),
                ("repositories_removed", json!([removed])),
                ("requester", Value::Null),
            ],
        )
    }

    /// `login` suspends the installation. Returns the `installation.suspend` delivery.
    pub fn suspend_installation(&self, installation: u64, login: &str) -> WebhookDelivery {
        self.set_suspended(installation, login, true)
    }

    /// `login` lifts the suspension. Returns the `installation.unsuspend` delivery.
    pub fn unsuspend_installation(&self, installation: u64, login: &str) -> WebhookDelivery {
        self.set_suspended(installation, login, false)
    }

    fn set_suspended(&self, installation: u64, login: &str, on: bool) -> WebhookDelivery {
        let b = self.shared.bases.clone();
        let mut st = self.st();
        st.ensure_account(login, AccountKind::User);
        let now: DateTime<Utc> = st.now();
        let inst = st
            .installations
            .get_mut(&installation)
            .expect("unknown installation");
        assert_eq!(inst.suspended.is_some(), !on, "already in that state");
        inst.suspended = on.then(|| (login.to_string(), now));
        let repositories = covered(&st, installation);
        installation_delivery(
            &st,
            &b,
            "installation",
            if on { "suspend" } else { "unsuspend" },
            installation,
            login,
            vec![("repositories", Value::Array(repositories))],
        )
    }

    /// The repository is archived (read-only). GitHub sends the App no webhook for it.
    pub fn archive_repo(&self, repo: &str) {
        self.st().repo_mut(repo).expect("unknown repo").archived = true;
    }
}
