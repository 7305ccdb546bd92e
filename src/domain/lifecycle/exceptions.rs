//! Exceptions: approvals (only by approvers), expiry, and the GitHub events that drive them.

use chrono::{DateTime, Utc};

use super::*;

impl Machine<'_> {
    pub(super) fn owner_mention(&self) -> String {
        match &self.ctx.on_call {
            Some(who) => format!("{} (on call) owns it again.", mention(who)),
            None => "Nobody is on call for this repository: the security team will find an owner."
                .to_string(),
        }
    }

    /// Suppresses the group's failing findings in Security Hub, with a short note: approver,
    /// expiry, issue URL (the reason stays in the issue).
    pub(super) fn suppress(&mut self, approver: &str, expires_at: DateTime<Utc>) {
        let note = format!(
            "Exception approved by {approver}, expires {}: {}",
            date(expires_at),
            self.ctx.issue_url
        );
        self.act(Action::UpdateFindings {
            workflow: WorkflowStatus::Suppressed,
            note,
        });
    }

    /// Starts an exception approved by `approver`: findings suppressed until the expiry.
    pub(super) fn start_exception(&mut self, approver: &str) {
        let expires_at = match self.s.requested_expiry {
            Some(d) => d
                .and_hms_opt(23, 59, 59)
                .map(|t| t.and_utc())
                .unwrap_or(self.now + self.ctx.default_exception),
            None => self.now + self.ctx.default_exception,
        };
        let expires_at = if expires_at <= self.now {
            self.now + self.ctx.default_exception
        } else {
            expires_at
        };
        self.s.exception = Some(Exception {
            approver: approver.to_string(),
            approved_at: self.now,
            expires_at,
        });
        self.s.closure = Some(Closure::Exception);
        self.s.verification = None;
        self.s.approved_by = None;
        self.remove_label(labels::NEEDS_VERIFICATION);
        self.suppress(approver, expires_at);
        self.act(Action::Schedule {
            timer: Timer::ExceptionExpiry,
            at: expires_at,
        });
        self.comment(format!(
            "Exception approved by {} until **{}**. Lever suppressed the findings in Security Hub with a note \
             linking this issue. When the exception expires, the findings are reported again and this issue \
             reopens. To change the date, an approver comments `Exception-Expires: YYYY-MM-DD`.",
            mention(approver),
            date(expires_at)
        ));
        self.log("exception-approved");
    }

    /// Ends an exception (expired, label removed, reopened): findings reported again, issue
    /// open and owned by the engineer on call.
    pub(super) fn end_exception(&mut self, why: &str) {
        let Some(ex) = self.s.exception.take() else {
            return;
        };
        self.reopen();
        self.remove_label(labels::CTO_APPROVED);
        self.s.approved_by = None;
        let note = format!(
            "Exception ended ({why}); tracked again in {}",
            self.ctx.issue_url
        );
        self.act(Action::UpdateFindings {
            workflow: WorkflowStatus::Notified,
            note,
        });
        self.assign_on_call();
        let owner = self.owner_mention();
        self.comment(format!(
            "The exception approved by {} ended: {why}. Security Hub reports the findings again. {owner}",
            ex.approver
        ));
        self.log("exception-ended");
    }

    pub(super) fn reject_approval(&mut self, why: &str) {
        self.remove_label(labels::CTO_APPROVED);
        self.comment(format!(
            "Lever removed `{}`: {why} Exceptions are approved by {}. Nothing was suppressed.",
            labels::CTO_APPROVED,
            approvers_text(self.ctx)
        ));
        self.log("approval-rejected");
    }

    /// Whether `login` may approve this issue's exception; the reason when not.
    pub(super) fn approval_refusal(&self, login: &str, approver: bool) -> Option<String> {
        if !approver {
            return Some(format!("{login} is not an approver."));
        }
        if !self.ctx.allow_self_approval
            && self
                .s
                .assignee
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(login))
        {
            return Some(format!(
                "{login} is assigned to this issue and may not approve their own exception."
            ));
        }
        None
    }

    pub(super) fn on_labeled(&mut self, label: &str, by: &Actor) {
        let label = label.to_ascii_lowercase();
        if !is_vocabulary(&label) {
            return;
        }
        let newly = self.s.labels.insert(label.clone());
        let Actor::Person { login, approver } = by else {
            return;
        };
        match label.as_str() {
            labels::ACKNOWLEDGED => self.acknowledge(login, "acknowledged"),
            labels::CTO_APPROVED => {
                if self.s.exception.is_some() {
                    // Already approved and in force (GitHub sends no second `labeled` for a
                    // label the issue carries; a late or replayed delivery changes nothing).
                    return;
                }
                if let Some(why) = self.approval_refusal(login, *approver) {
                    self.reject_approval(&why);
                    return;
                }
                if !self.s.open && self.s.closure != Some(Closure::Unverified) {
                    // Closed as fixed: there is nothing left to except.
                    return;
                }
                if self.s.open {
                    self.s.approved_by = Some(login.clone());
                    self.comment(format!(
                        "Approved by {}. Closing this issue now starts the exception: Lever suppresses the findings in \
                         Security Hub until {}.",
                        mention(login),
                        match self.s.requested_expiry {
                            Some(d) => d.to_string(),
                            None => date(self.now + self.ctx.default_exception),
                        }
                    ));
                    self.log("approval-recorded");
                } else {
                    self.start_exception(&login.clone());
                }
            }
            labels::EXCEPTION_REQUESTED if newly && self.s.open => {
                let who: Vec<String> = self
                    .ctx
                    .approvers
                    .iter()
                    .map(|a| format!("@{}", a.trim_start_matches('@')))
                    .collect();
                let who = if who.is_empty() {
                    "the security team".to_string()
                } else {
                    who.join(", ")
                };
                self.comment(format!(
                    "{} asks for an exception. {who}: please review. Approve by applying `{}` (only approvers count), \
                     then close the issue; optionally set the end with a comment `Exception-Expires: YYYY-MM-DD`.",
                    mention(login),
                    labels::CTO_APPROVED
                ));
                self.log("exception-requested");
            }
            _ => {}
        }
    }

    pub(super) fn on_unlabeled(&mut self, label: &str, by: &Actor) {
        let label = label.to_ascii_lowercase();
        self.s.labels.remove(&label);
        let Actor::Person { login, .. } = by else {
            return;
        };
        if label == labels::CTO_APPROVED {
            self.s.approved_by = None;
            if self.s.exception.is_some() {
                self.end_exception(&format!("{login} removed `{}`", labels::CTO_APPROVED));
            }
        }
    }

    pub(super) fn on_closed(&mut self, by: &Actor, cto_approved_by: Option<&LabelAuthor>) {
        let was_open = self.s.open;
        self.s.open = false;
        // An approval only counts when the closed issue still carries the label.
        self.s.approved_by = None;
        if cto_approved_by.is_some() {
            self.s.labels.insert(labels::CTO_APPROVED.to_string());
        }
        let Actor::Person { login, .. } = by else {
            // Lever's own close: the state already says why.
            return;
        };
        if !was_open && self.s.closure.is_some() {
            return;
        }
        if let Some(author) = cto_approved_by {
            match self.approval_refusal(&author.login, author.approver) {
                None => {
                    self.start_exception(&author.login.clone());
                    return;
                }
                Some(why) => self.reject_approval(&why),
            }
        }
        if self.s.findings.all_resolved() {
            self.s.closure = Some(Closure::Fixed);
            self.log("closed-fixed");
            return;
        }
        self.s.closure = Some(Closure::Unverified);
        self.s.verification = Some(Verification {
            closed_by: login.clone(),
            closed_at: self.now,
            commented: false,
            grace_until: None,
        });
        self.act(Action::Schedule {
            timer: Timer::Verify,
            at: self.now + self.ctx.verify_after,
        });
        self.log("closed-unverified");
    }

    pub(super) fn on_reopened(&mut self, by: &Actor) {
        let was_closed = !self.s.open;
        self.s.open = true;
        let Actor::Person { login, .. } = by else {
            return;
        };
        if self.s.exception.is_some() {
            self.end_exception(&format!("{login} reopened the issue"));
            return;
        }
        if was_closed {
            self.s.closure = None;
            self.s.verification = None;
            self.remove_label(labels::NEEDS_VERIFICATION);
            self.log("reopened");
        }
    }

    pub(super) fn on_commented(&mut self, by: &Actor, body: &str) {
        let Actor::Person { login, approver } = by else {
            return;
        };
        if self
            .s
            .assignee
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(login))
        {
            self.acknowledge(login, "acknowledged-by-comment");
        }
        let Some(requested) = requested_expiry(body) else {
            return;
        };
        if !approver {
            self.comment(format!(
                "Only approvers ({}) can set when an exception expires; {login}'s `Exception-Expires` is ignored.",
                approvers_text(self.ctx)
            ));
            return;
        }
        let d = match requested {
            Ok(d) => d,
            Err(e) => {
                self.comment(format!("{e}: the exception's expiry is unchanged."));
                return;
            }
        };
        let Some(expires_at) = d.and_hms_opt(23, 59, 59).map(|t| t.and_utc()) else {
            return;
        };
        if expires_at <= self.now {
            self.comment(format!(
                "`Exception-Expires: {d}` is in the past: the expiry is unchanged."
            ));
            return;
        }
        self.s.requested_expiry = Some(d);
        self.log("exception-expiry-set");
        if let Some(ex) = self.s.exception.as_mut() {
            ex.expires_at = expires_at;
            let approver = ex.approver.clone();
            self.suppress(&approver, expires_at);
            self.act(Action::Schedule {
                timer: Timer::ExceptionExpiry,
                at: expires_at,
            });
            self.comment(format!(
                "The exception now expires on **{d}** (set by {login})."
            ));
        }
    }

    pub(super) fn on_exception_timer(&mut self) {
        let Some(ex) = self.s.exception.clone() else {
            return;
        };
        if self.now < ex.expires_at {
            // Fired early (the expiry moved later): wait for the real expiry.
            self.act(Action::Schedule {
                timer: Timer::ExceptionExpiry,
                at: ex.expires_at,
            });
            return;
        }
        self.end_exception(&format!("it expired on {}", date(ex.expires_at)));
    }
}
