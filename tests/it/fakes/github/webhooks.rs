//! Webhook deliveries: payloads shaped like GitHub's (templates: `conformance/webhooks/*.json`,
//! schemas: `x-webhooks` of the OpenAPI description), signatures, and the `human_*` helpers.

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};

use super::FakeGitHub;
use super::ops;
use super::state::{AccountKind, Bases, RepoRec, State};

/// One webhook delivery as GitHub would POST it to the App's webhook URL.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// `X-GitHub-Delivery` (a GUID).
    pub id: String,
    /// `X-GitHub-Event`, e.g. `issues`, `issue_comment`.
    pub event: String,
    /// `action` of the payload, e.g. `labeled`.
    pub action: Option<String>,
    /// The JSON body.
    pub payload: Value,
    /// App id, sent as `X-GitHub-Hook-Installation-Target-ID`.
    pub app_id: u64,
}

impl WebhookDelivery {
    /// The exact bytes GitHub would send (compact JSON).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.payload).expect("payload serializes")
    }

    /// Name of the `x-webhooks` definition for this delivery, e.g. `issues-labeled`,
    /// `issue-comment-created`.
    pub fn schema_name(&self) -> String {
        let event = self.event.replace('_', "-");
        match &self.action {
            Some(a) => format!("{event}-{a}"),
            None => event,
        }
    }

    /// `sender.login` of the payload.
    pub fn sender(&self) -> &str {
        self.payload["sender"]["login"].as_str().unwrap_or_default()
    }

    /// The headers GitHub sends with this delivery, signed with `secret`.
    pub fn headers(&self, secret: &str) -> Vec<(&'static str, String)> {
        let body = self.body();
        vec![
            ("content-type", "application/json".to_string()),
            ("user-agent", "GitHub-Hookshot/fake".to_string()),
            ("x-github-event", self.event.clone()),
            ("x-github-delivery", self.id.clone()),
            ("x-github-hook-id", "1".to_string()),
            (
                "x-github-hook-installation-target-type",
                "integration".to_string(),
            ),
            (
                "x-github-hook-installation-target-id",
                self.app_id.to_string(),
            ),
            ("x-hub-signature-256", sign(secret, &body)),
        ]
    }

    /// POST this delivery to `url` like GitHub would.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
        secret: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = client.post(url).body(self.body());
        for (k, v) in self.headers(secret) {
            req = req.header(k, v);
        }
        req.send().await
    }
}

/// `X-Hub-Signature-256` value for `body`: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Build a delivery for an event about `repo`: `fields` (e.g. `issue`, `label`) plus `action`,
/// `repository`, `organization` (org-owned repos), `sender` and `installation`.
pub(crate) fn delivery(
    st: &State,
    b: &Bases,
    repo: &RepoRec,
    event: &str,
    action: Option<&str>,
    sender: &str,
    fields: Vec<(&str, Value)>,
) -> WebhookDelivery {
    let mut p = Map::new();
    if let Some(a) = action {
        p.insert("action".into(), Value::String(a.to_string()));
    }
    for (k, v) in fields {
        p.insert(k.to_string(), v);
    }
    p.insert("repository".into(), st.repo_webhook_json(b, repo));
    if st
        .account(&repo.owner)
        .is_some_and(|a| a.kind == AccountKind::Organization)
    {
        p.insert("organization".into(), st.org_json(b, &repo.owner));
    }
    p.insert("sender".into(), st.user_json(b, sender));
    if let Some(inst) = repo.installation {
        p.insert("installation".into(), st.simple_installation_json(inst));
    }
    WebhookDelivery {
        id: uuid::Uuid::new_v4().to_string(),
        event: event.to_string(),
        action: action.map(str::to_string),
        payload: Value::Object(p),
        app_id: st.app.as_ref().map(|a| a.id).unwrap_or(0),
    }
}

fn one(what: &str, mut d: Vec<WebhookDelivery>) -> WebhookDelivery {
    assert!(
        d.len() == 1,
        "{what}: expected one webhook delivery, the change produced {} (GitHub sends none for a no-op)",
        d.len()
    );
    d.remove(0)
}

/// Acting as a person (or any login): each helper changes the fake's state exactly as the
/// GitHub UI would, records the issue event with that actor, and returns the delivery GitHub
/// would send. These deliveries are NOT queued in the outbox: deliver them yourself.
/// Helpers panic when the change would be a no-op (GitHub would send nothing).
impl FakeGitHub {
    fn human<R>(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        f: impl FnOnce(&mut State, &Bases, &str) -> R,
    ) -> R {
        let mut st = self.shared.state.lock().unwrap();
        st.ensure_account(login, AccountKind::User);
        let key = st
            .repo(repo)
            .map(|r| r.full_name().to_ascii_lowercase())
            .unwrap_or_else(|| panic!("unknown repo {repo}"));
        assert!(
            st.repo(&key)
                .unwrap()
                .issue(number)
                .is_some_and(|i| i.gone.is_none()),
            "no live issue {repo}#{number}"
        );
        let b = self.shared.bases.clone();
        f(&mut st, &b, &key)
    }

    /// A person opens an issue. Returns its number and the `issues.opened` delivery.
    pub fn human_open_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        login: &str,
    ) -> (u64, WebhookDelivery) {
        let mut st = self.shared.state.lock().unwrap();
        st.ensure_account(login, AccountKind::User);
        let key = repo.to_ascii_lowercase();
        assert!(st.repo(&key).is_some(), "unknown repo {repo}");
        let b = self.shared.bases.clone();
        let (n, d) = ops::create_issue(
            &mut st,
            &b,
            &key,
            login,
            title,
            Some(body.to_string()),
            &[],
            &[],
        );
        (n, one("human_open_issue", d))
    }

    /// A person adds a label (`issues.labeled`); unknown labels are created, as GitHub does.
    pub fn human_add_label(
        &self,
        repo: &str,
        number: u64,
        label: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_add_label",
                ops::add_labels(st, b, key, number, &[label.to_string()], login),
            )
        })
    }

    /// A person removes a label (`issues.unlabeled`).
    pub fn human_remove_label(
        &self,
        repo: &str,
        number: u64,
        label: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_remove_label",
                ops::remove_label(st, b, key, number, label, login).unwrap_or_default(),
            )
        })
    }

    /// A person closes the issue with `state_reason` `completed`, `not_planned` or `duplicate`
    /// (`issues.closed`).
    pub fn human_close(
        &self,
        repo: &str,
        number: u64,
        state_reason: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_close",
                ops::close(st, b, key, number, state_reason, login),
            )
        })
    }

    /// A person reopens the issue (`issues.reopened`).
    pub fn human_reopen(&self, repo: &str, number: u64, login: &str) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one("human_reopen", ops::reopen(st, b, key, number, login))
        })
    }

    /// A person assigns `assignee` (`issues.assigned`). Panics when `assignee` is not assignable
    /// (the UI would not offer them).
    pub fn human_assign(
        &self,
        repo: &str,
        number: u64,
        assignee: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            assert!(
                st.repo(key).unwrap().is_assignable(assignee),
                "{assignee} is not assignable in {repo}"
            );
            one(
                "human_assign",
                ops::add_assignees(st, b, key, number, &[assignee.to_string()], login),
            )
        })
    }

    /// A person unassigns `assignee` (`issues.unassigned`).
    pub fn human_unassign(
        &self,
        repo: &str,
        number: u64,
        assignee: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_unassign",
                ops::remove_assignees(st, b, key, number, &[assignee.to_string()], login),
            )
        })
    }

    /// A person comments (`issue_comment.created`).
    pub fn human_comment(
        &self,
        repo: &str,
        number: u64,
        body: &str,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_comment",
                ops::comment(st, b, key, number, body, login).1,
            )
        })
    }

    /// A person edits a comment (`issue_comment.edited` with `changes.body.from`).
    pub fn human_edit_comment(
        &self,
        repo: &str,
        comment_id: u64,
        body: &str,
        login: &str,
    ) -> WebhookDelivery {
        let number = {
            let st = self.shared.state.lock().unwrap();
            st.repo(repo)
                .and_then(|r| r.comments.iter().find(|c| c.id == comment_id))
                .map(|c| c.issue)
                .unwrap_or_else(|| panic!("no comment {comment_id} in {repo}"))
        };
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_edit_comment",
                ops::edit_comment(st, b, key, comment_id, body, login),
            )
        })
    }

    /// A person edits the title and/or body (`issues.edited` with `changes`).
    pub fn human_edit(
        &self,
        repo: &str,
        number: u64,
        title: Option<&str>,
        body: Option<&str>,
        login: &str,
    ) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            one(
                "human_edit",
                ops::edit(
                    st,
                    b,
                    key,
                    number,
                    title,
                    body.map(|s| Some(s.to_string())),
                    login,
                ),
            )
        })
    }

    /// A person deletes the issue (`issues.deleted`); the REST API answers 410 afterwards.
    pub fn human_delete_issue(&self, repo: &str, number: u64, login: &str) -> WebhookDelivery {
        self.human(repo, number, login, |st, b, key| {
            let r = st.repo(key).unwrap();
            let issue = st.issue_json(b, r, r.issue(number).unwrap());
            let d = delivery(
                st,
                b,
                r,
                "issues",
                Some("deleted"),
                login,
                vec![("issue", issue)],
            );
            st.repo_mut(key).unwrap().issue_mut(number).unwrap().gone = Some("deleted");
            d
        })
    }

    /// A person transfers the issue to `to_repo` (same owner or not). Returns the new number
    /// and the `issues.transferred` delivery (sent for the old repository).
    pub fn human_transfer_issue(
        &self,
        repo: &str,
        number: u64,
        to_repo: &str,
        login: &str,
    ) -> (u64, WebhookDelivery) {
        self.human(repo, number, login, |st, b, key| {
            let to_key = to_repo.to_ascii_lowercase();
            assert!(st.repo(&to_key).is_some(), "unknown repo {to_repo}");
            let old = st.repo(key).unwrap().issue(number).unwrap().clone();
            let old_json = {
                let r = st.repo(key).unwrap();
                st.issue_json(b, r, &old)
            };
            let labels = old.labels.clone();
            let assignees: Vec<String> = old
                .assignees
                .iter()
                .filter(|a| st.repo(&to_key).unwrap().is_assignable(a))
                .cloned()
                .collect();
            let (new_number, _) = ops::create_issue(
                st,
                b,
                &to_key,
                &old.user,
                &old.title,
                old.body.clone(),
                &labels,
                &assignees,
            );
            let to = st.repo(&to_key).unwrap();
            let new_issue = st.issue_json(b, to, to.issue(new_number).unwrap());
            let new_repo = st.repo_webhook_json(b, to);
            let moved_to = format!("{}/repos/{}/issues/{new_number}", b.api, to.full_name());
            let old_issue = st.repo_mut(key).unwrap().issue_mut(number).unwrap();
            old_issue.gone = Some("transferred");
            old_issue.moved_to = Some(moved_to);
            let r = st.repo(key).unwrap();
            let mut changes = Map::new();
            changes.insert("new_issue".into(), new_issue);
            changes.insert("new_repository".into(), new_repo);
            let d = delivery(
                st,
                b,
                r,
                "issues",
                Some("transferred"),
                login,
                vec![("issue", old_json), ("changes", Value::Object(changes))],
            );
            (new_number, d)
        })
    }
}
