//! Ownership: one owner at a time, acknowledgement, escalation, fix deadlines, handoffs, and
//! the walk along the escalation chain when GitHub refuses an assignee.

use super::*;

impl Machine<'_> {
    /// The issue starts a new ownership period with the engineer on call (after a reopen).
    pub(super) fn assign_on_call(&mut self) {
        if let Some(who) = self.ctx.on_call.clone() {
            self.new_owner(&who, 0);
        }
        self.schedule_sla();
    }

    /// `who` owns the issue from now, at escalation `level`: assigned alone, not yet
    /// acknowledged, with a fresh acknowledgement deadline (none at the last level).
    pub(super) fn new_owner(&mut self, who: &str, level: u8) {
        if !self
            .s
            .assignee
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(who))
        {
            self.s.assignee = Some(who.to_string());
            self.act(Action::Assign {
                user: who.to_string(),
            });
        }
        self.s.owners.insert(who.to_ascii_lowercase());
        self.s.level = level;
        self.s.acknowledged = None;
        self.s.ack_deadline = if level < 2 {
            self.ctx.ack_deadline
        } else {
            None
        };
        if let Some(at) = self.s.ack_deadline {
            self.act(Action::Schedule {
                timer: Timer::Escalation,
                at,
            });
        }
    }

    pub(super) fn schedule_sla(&mut self) {
        if let Some(due) = self.s.due
            && !self.s.overdue
        {
            let at = if self.s.reminded {
                due
            } else {
                due - self.ctx.sla_reminder
            };
            self.act(Action::Schedule {
                timer: Timer::Sla,
                at: at.max(self.now),
            });
        }
    }

    pub(super) fn acknowledge(&mut self, login: &str, how: &str) {
        if self.s.acknowledged.is_some() || !self.s.open {
            return;
        }
        self.s.acknowledged = Some(Ack {
            by: login.to_string(),
            at: self.now,
        });
        self.s.ack_deadline = None;
        self.log(how);
    }

    pub(super) fn on_escalation_timer(&mut self) {
        if !self.s.open || self.s.acknowledged.is_some() || self.s.exception.is_some() {
            return;
        }
        let Some(deadline) = self.s.ack_deadline else {
            return;
        };
        if self.now < deadline {
            // Fired early (the deadline moved later): wait for the real one.
            self.act(Action::Schedule {
                timer: Timer::Escalation,
                at: deadline,
            });
            return;
        }
        let previous = self.s.assignee.clone();
        for level in (self.s.level + 1)..=2 {
            let (candidate, role) = match level {
                1 => (self.ctx.backup.clone(), "the backup"),
                _ => (
                    self.ctx.security.clone(),
                    "the security team's engineer on call",
                ),
            };
            let Some(who) = candidate else {
                continue;
            };
            if previous
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&who))
            {
                continue;
            }
            self.new_owner(&who, level);
            let prev = previous
                .as_deref()
                .map(mention)
                .unwrap_or_else(|| "Nobody".to_string());
            self.comment(format!(
                "{prev} did not acknowledge this issue within {}. {} ({role}) owns it now: please add `{}` once you \
                 have seen it.",
                self.ctx.ack_within,
                mention(&who),
                labels::ACKNOWLEDGED
            ));
            self.log(if level == 1 {
                "escalated-to-backup"
            } else {
                "escalated-to-security"
            });
            return;
        }
        self.s.ack_deadline = None;
        self.log("escalation-exhausted");
    }

    pub(super) fn on_sla_timer(&mut self) {
        if !self.s.open || self.s.overdue {
            return;
        }
        let Some(due) = self.s.due else {
            return;
        };
        let owner = self.s.assignee.as_deref().map(mention);
        if self.now >= due {
            self.s.overdue = true;
            self.add_label(labels::OVERDUE);
            self.comment(format!(
                "This issue was due on **{}** and is now overdue. {}: please fix it, or ask for an exception (`{}`).",
                date(due),
                owner.unwrap_or_else(|| "Security team".to_string()),
                labels::EXCEPTION_REQUESTED
            ));
            self.log("overdue");
        } else if self.now >= due - self.ctx.sla_reminder {
            if !self.s.reminded {
                self.s.reminded = true;
                self.comment(format!(
                    "{}: this issue is due on **{}**.",
                    owner.unwrap_or_else(|| "Reminder".to_string()),
                    date(due)
                ));
                self.log("due-reminder");
            }
            self.act(Action::Schedule {
                timer: Timer::Sla,
                at: due,
            });
        } else {
            self.act(Action::Schedule {
                timer: Timer::Sla,
                at: due - self.ctx.sla_reminder,
            });
        }
    }

    pub(super) fn on_handoff(&mut self) {
        if !self.s.open || self.s.level != 0 {
            return;
        }
        let Some(next) = self.ctx.on_call.clone() else {
            return;
        };
        let acknowledged = self.s.acknowledged.clone();
        let follows = if acknowledged.is_some() {
            self.ctx.follow_acknowledged
        } else {
            self.ctx.follow_unacknowledged
        };
        if !follows
            || self
                .s
                .assignee
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&next))
        {
            return;
        }
        let previous = self.s.assignee.clone();
        if acknowledged.is_some() {
            // An acknowledged issue handed over stays acknowledged: no new deadline.
            self.s.assignee = Some(next.clone());
            self.s.owners.insert(next.to_ascii_lowercase());
            self.act(Action::Assign { user: next.clone() });
        } else {
            self.new_owner(&next, 0);
        }
        self.comment(format!(
            "Handoff: {} is now on call for this repository and owns this issue{}.",
            mention(&next),
            previous
                .map(|p| format!(" (it was {})", mention(&p)))
                .unwrap_or_default()
        ));
        self.log("handoff");
    }

    /// The account left ramp-up. An open issue without an exception is owed a fix now: it goes
    /// to the engineer on call (with the acknowledgement deadline; an issue acknowledged during
    /// ramp-up keeps its owner and acknowledgement), its fix deadline starts, the `ramp-up` label
    /// goes, and one comment says why. A closed issue changes nothing (a reopen brings the
    /// deadlines of the day). Promoting twice is the caller's to avoid (the group remembers its
    /// mode).
    pub(super) fn on_enforced(&mut self, due: Option<DateTime<Utc>>) {
        if !self.s.open || self.s.exception.is_some() {
            return;
        }
        if self.s.acknowledged.is_none() {
            match self.ctx.on_call.clone() {
                Some(next) => self.new_owner(&next, 0),
                None => {
                    self.s.ack_deadline = self.ctx.ack_deadline;
                    if let Some(at) = self.s.ack_deadline {
                        self.act(Action::Schedule {
                            timer: Timer::Escalation,
                            at,
                        });
                    }
                }
            }
        }
        self.s.due = due;
        self.s.reminded = false;
        self.s.overdue = false;
        self.schedule_sla();
        self.act(Action::RemoveLabel {
            label: "ramp-up".into(),
        });
        let owner = match &self.s.assignee {
            Some(a) => format!("{} owns it", mention(a)),
            None => "nobody could be assigned yet: the security team will find an owner".into(),
        };
        let mut text = format!(
            "Ramp-up is over for this account: from {} this issue is no longer informational, and {owner}.",
            date(self.now)
        );
        if let (Some(at), true) = (self.s.ack_deadline, self.s.acknowledged.is_none()) {
            text.push_str(&format!(
                " Please acknowledge it (label `acknowledged`) within {} (by {}).",
                self.ctx.ack_within,
                at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if let Some(d) = due {
            text.push_str(&format!(" The fix is due by {}.", date(d)));
        }
        text.push_str(
            " To keep the risk instead, ask for an exception (label `exception-requested`).",
        );
        self.comment(text);
        self.log("enforced");
    }

    /// Whether GitHub refused `login` in the current walk.
    fn was_refused(&self, login: &str) -> bool {
        self.s.refused.iter().any(|r| r.eq_ignore_ascii_case(login))
    }

    /// GitHub would not assign `user`. When `user` owns the issue, the next person of the
    /// escalation chain after them (the whole chain when they are not in it) whom GitHub has
    /// not refused in this walk owns it now, and the issue says so; when nobody is left, nobody
    /// owns it, said once. The level, the acknowledgement and the deadlines stay: the issue is
    /// where it was in its escalation, with someone GitHub accepts. A closed issue only forgets
    /// its refused owner (its next owner comes with the reopen). A refusal for someone who no
    /// longer owns the issue is stale and changes nothing.
    pub(super) fn on_assignee_refused(&mut self, user: &str) {
        if !self
            .s
            .assignee
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(user))
        {
            return;
        }
        if !self.was_refused(user) {
            self.s.refused.push(user.to_string());
        }
        self.s.assignee = None;
        if !self.s.open {
            self.log("assignee-refused");
            return;
        }
        let mut chain: Vec<(Option<&str>, &str)> =
            vec![(self.ctx.on_call.as_deref(), "the engineer on call")];
        chain.extend(
            self.ctx
                .other_owners
                .iter()
                .map(|o| (Some(o.as_str()), "an owner of this repository")),
        );
        chain.extend([
            (self.ctx.backup.as_deref(), "the backup"),
            (
                self.ctx.security.as_deref(),
                "the security team's engineer on call",
            ),
        ]);
        let position = chain
            .iter()
            .position(|(who, _)| who.is_some_and(|w| w.eq_ignore_ascii_case(user)));
        let refused = match position {
            Some(i) => format!("{user}, {}", chain[i].1),
            None => user.to_string(),
        };
        let next = chain[position.map_or(0, |i| i + 1)..]
            .iter()
            .filter_map(|(who, _)| *who)
            .find(|who| !self.was_refused(who))
            .map(str::to_string);
        match next {
            Some(next) => {
                self.s.assignee = Some(next.clone());
                self.s.owners.insert(next.to_ascii_lowercase());
                self.act(Action::Assign { user: next.clone() });
                self.comment(format!(
                    "GitHub would not assign {refused} (not a collaborator of this repository), so {}, the next \
                     person in the escalation chain, owns this issue.",
                    mention(&next)
                ));
                self.log("assignee-refused");
            }
            None => {
                self.comment(format!(
                    "GitHub would not assign anyone in the escalation chain ({}): nobody is assigned. Give them \
                     access to this repository, or assign an owner by hand.",
                    self.s.refused.join(", ")
                ));
                self.log("nobody-assignable");
            }
        }
    }
}

/// Whether two optional logins name the same person (GitHub logins ignore case).
pub(super) fn same_person(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}
