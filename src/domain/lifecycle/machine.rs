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
    pub(super) fn reopen(&mut self) {
        if !self.s.open {
            self.s.open = true;
            self.act(Action::Reopen);
        }
        self.s.closure = None;
        self.s.verification = None;
    }
}
