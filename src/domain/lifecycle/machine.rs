//! The state machine's working state and its small building blocks.

use chrono::{DateTime, Utc};

use super::*;

pub(super) struct Machine<'a> {
    pub(super) s: State,
    pub(super) actions: Vec<Action>,
    pub(super) log: Vec<String>,
    pub(super) ctx: &'a Ctx,
    pub(super) now: DateTime<Utc>,
}

impl Machine<'_> {
    pub(super) fn act(&mut self, a: Action) {
        self.actions.push(a);
    }
    pub(super) fn comment(&mut self, body: String) {
        self.act(Action::Comment { body });
    }
    pub(super) fn log(&mut self, what: &str) {
        self.log.push(what.to_string());
    }
    pub(super) fn add_label(&mut self, label: &str) {
        if self.s.labels.insert(label.to_string()) {
            self.act(Action::AddLabel {
                label: label.to_string(),
            });
        }
    }
    pub(super) fn remove_label(&mut self, label: &str) {
        if self.s.labels.remove(label) {
            self.act(Action::RemoveLabel {
                label: label.to_string(),
            });
        }
    }
    /// Reports every failing finding of the group again (NOTIFIED, with `note`).
    pub(super) fn notify(&mut self, note: String) {
        self.act(Action::UpdateFindings {
            workflow: WorkflowStatus::Notified,
            note,
            resources: None,
        });
    }
    /// Opens the issue (when closed) and starts a new period: what was approved, requested or
    /// owned before no longer counts. The owner at the start of the period is one of its owners.
    pub(super) fn reopen(&mut self) {
        if !self.s.open {
            self.s.open = true;
            self.act(Action::Reopen);
        }
        self.s.closure = None;
        self.s.verification = None;
        self.new_period();
    }
    /// A new period of the issue (it was (re)opened): approvals, `Exception-Expires:` requests
    /// and owners of the previous period stop counting.
    pub(super) fn new_period(&mut self) {
        self.s.approved_by = None;
        self.s.expiry_requests.clear();
        self.s.owners = self
            .s
            .assignee
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
    }
    /// The issue leaves the approval and exception path (fixed, regressed, reopened, expired):
    /// the approval stops counting and Lever removes `cto-approved`. Returns the one line that
    /// says so, when the label was on the issue.
    pub(super) fn withdraw_approval(&mut self, why: &str) -> Option<String> {
        self.s.approved_by = None;
        if !self.s.labels.contains(labels::CTO_APPROVED) {
            return None;
        }
        self.remove_label(labels::CTO_APPROVED);
        Some(format!(
            "Lever removed `{}`: {why}. An approval counts for one request only: a new exception needs a new \
             approval.",
            labels::CTO_APPROVED
        ))
    }
    /// `body`, followed by the line from [`Machine::withdraw_approval`] when there is one.
    pub(super) fn with_line(body: String, line: Option<String>) -> String {
        match line {
            Some(l) => format!("{body}\n\n{l}"),
            None => body,
        }
    }
}
