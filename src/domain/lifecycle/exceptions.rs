//! Exceptions: approvals (only by approvers, only for the current request), expiry, and the
//! GitHub events that drive them.
//!
//! An approval belongs to one request: it counts only when an approver applied `cto-approved`
//! after the issue was last (re)opened and after the latest exception request, and did not
//! remove it since. Whenever the issue leaves the approval and exception path (fixed, regressed,
//! reopened, expired) Lever removes the label, saying so in one line. An exception covers the
//! resources that were failing when it started; its expiry is its approver's own latest
//! `Exception-Expires:` of the period (never beyond `exceptions.max_expiry`), else the default.

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

    /// The resources the exception in force covers (`None` when there is none). An exception
    /// recorded before Lever recorded coverage covers what the group had when last seen.
    pub(super) fn covered(&self, last_seen: &FindingsView) -> Option<BTreeSet<String>> {
        let ex = self.s.exception.as_ref()?;
        Some(
            ex.covers
                .clone()
                .unwrap_or_else(|| last_seen.failing.union(&last_seen.fixed).cloned().collect()),
        )
    }

    /// Suppresses the findings the exception covers in Security Hub, with a short note:
    /// approver, expiry, issue URL (the reason stays in the issue).
    pub(super) fn suppress(&mut self, approver: &str, expires_at: DateTime<Utc>) {
        let last_seen = self.s.findings.clone();
        let resources = self.covered(&last_seen);
        let note = format!(
            "Exception approved by {approver}, expires {}: {}",
            date(expires_at),
            self.ctx.issue_url
        );
        self.act(Action::UpdateFindings {
            workflow: WorkflowStatus::Suppressed,
            note,
            resources,
        });
    }

    /// When an exception approved by `approver` now would expire: their own latest
    /// `Exception-Expires:` of this period (if still ahead), else the default length; never
    /// later than `exceptions.max_expiry` from `approved_at`. The second value says whether the
    /// maximum cut it short.
    pub(super) fn expiry_for(
        &self,
        approver: &str,
        approved_at: DateTime<Utc>,
    ) -> (DateTime<Utc>, bool) {
        let requested = self
            .s
            .expiry_requests
            .get(&approver.to_ascii_lowercase())
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map(|t| t.and_utc())
            .filter(|at| *at > self.now);
        let want = requested.unwrap_or(self.now + self.ctx.default_exception);
        cap(want, approved_at + self.ctx.max_exception)
    }

    /// Starts an exception approved by `approver`: the findings failing now are suppressed
    /// until the expiry. It covers the resources that are not fixed now (failing, or not
    /// confirmed fixed), and no other.
    pub(super) fn start_exception(&mut self, approver: &str) {
        let (expires_at, capped) = self.expiry_for(approver, self.now);
        let mut covers = self.s.findings.failing.clone();
        covers.extend(self.s.findings.unconfirmed.keys().cloned());
        self.s.exception = Some(Exception {
            approver: approver.to_string(),
            approved_at: self.now,
            expires_at,
            covers: Some(covers.clone()),
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
        let covered = if covers.is_empty() {
            String::new()
        } else {
            format!(
                " It covers {}; a resource that joins this group later is not covered.",
                list(&covers, 20)
            )
        };
        self.comment(format!(
            "Exception approved by {} until **{}**{}. Lever suppressed the findings in Security Hub with a note \
             linking this issue.{covered} When the exception expires, the findings are reported again and this \
             issue reopens. To change the date, the approver comments `Exception-Expires: YYYY-MM-DD`.",
            mention(approver),
            date(expires_at),
            if capped { max_note(self.ctx) } else { String::new() },
        ));
        self.log("exception-approved");
    }

    /// Ends an exception (expired, label removed, reopened, a resource it does not cover):
    /// findings reported again, issue open and owned by the engineer on call.
    pub(super) fn end_exception(&mut self, why: &str) {
        let Some(ex) = self.s.exception.take() else {
            return;
        };
        self.reopen();
        let line = self.withdraw_approval("the exception ended");
        let note = format!(
            "Exception ended ({why}); tracked again in {}",
            self.ctx.issue_url
        );
        self.notify(note);
        self.assign_on_call();
        let owner = self.owner_mention();
        self.comment(Self::with_line(
            format!(
                "The exception approved by {} ended: {why}. Security Hub reports the findings again. {owner}",
                ex.approver
            ),
            line,
        ));
        self.log("exception-ended");
    }

    pub(super) fn reject_approval(&mut self, why: &str) {
        self.s.approved_by = None;
        self.remove_label(labels::CTO_APPROVED);
        self.comment(format!(
            "Lever removed `{}`: {why} Exceptions are approved by {}. Nothing was suppressed.",
            labels::CTO_APPROVED,
            approvers_text(self.ctx)
        ));
        self.log("approval-rejected");
    }

    /// Whether `login` may approve this issue's exception; the reason when not. Nobody who
    /// owned the issue in this period may (unless `exceptions.allow_self_approval`): unassigning
    /// oneself first changes nothing.
    pub(super) fn approval_refusal(&self, login: &str, approver: bool) -> Option<String> {
        if !approver {
            return Some(format!("{login} is not an approver."));
        }
        if self.ctx.allow_self_approval {
            return None;
        }
        if self
            .s
            .assignee
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(login))
        {
            return Some(format!(
                "{login} is assigned to this issue and may not approve their own exception."
            ));
        }
        if self.s.owners.contains(&login.to_ascii_lowercase()) {
            return Some(format!(
                "{login} owned this issue since it was last opened and may not approve their own exception."
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
                    // Closed as fixed: there is nothing to except, and an approval kept for
                    // later would outlive its request.
                    let line = self.withdraw_approval(
                        "this issue is closed as fixed, so there is nothing to except (if the problem comes back, \
                         the issue reopens and can be approved then)",
                    );
                    if let Some(line) = line {
                        self.comment(line);
                    }
                    self.log("approval-not-needed");
                    return;
                }
                if self.s.open {
                    self.s.approved_by = Some(login.clone());
                    let (until, capped) = self.expiry_for(login, self.now);
                    self.comment(format!(
                        "Approved by {}. Closing this issue now starts the exception: Lever suppresses the findings in \
                         Security Hub until {}{}.",
                        mention(login),
                        date(until),
                        if capped { max_note(self.ctx) } else { String::new() },
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
                // A new request needs a new approval.
                let line = self.withdraw_approval("it was applied before this exception request");
                self.comment(Self::with_line(
                    format!(
                        "{} asks for an exception. {who}: please review. Approve by applying `{}` (only approvers \
                         count), then close the issue; optionally set the end with a comment \
                         `Exception-Expires: YYYY-MM-DD`.",
                        mention(login),
                        labels::CTO_APPROVED
                    ),
                    line,
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

    pub(super) fn on_closed(&mut self, by: &Actor, cto_approved: Option<&LabelHistory>) {
        let was_open = self.s.open;
        self.s.open = false;
        // An approval only counts when the closed issue still carries the label, and the
        // issue's events (not the webhooks Lever happened to see) say whose it is.
        self.s.approved_by = None;
        if cto_approved.is_some() {
            self.s.labels.insert(labels::CTO_APPROVED.to_string());
        }
        let Actor::Person { login, .. } = by else {
            // Lever's own close: the state already says why.
            return;
        };
        if !was_open && self.s.closure.is_some() {
            return;
        }
        match cto_approved {
            Some(LabelHistory::Current(author)) => {
                match self.approval_refusal(&author.login, author.approver) {
                    None => {
                        self.start_exception(&author.login.clone());
                        return;
                    }
                    Some(why) => self.reject_approval(&why),
                }
            }
            Some(LabelHistory::Stale { why }) => self.reject_approval(&format!("{why}.")),
            Some(LabelHistory::Unreadable { why }) => {
                self.comment(format!(
                    "Lever could not read this issue's whole history ({why}), so it cannot confirm who applied `{}`: \
                     this close is not an approval, and Security Hub keeps reporting the findings. To approve, an \
                     approver removes `{}` and applies it again.",
                    labels::CTO_APPROVED,
                    labels::CTO_APPROVED
                ));
                self.log("approval-unconfirmed");
            }
            None => {}
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
            // Lever's own reopen: the decision that caused it started the new period.
            return;
        };
        if self.s.exception.is_some() {
            self.end_exception(&format!("{login} reopened the issue"));
            return;
        }
        if was_closed {
            self.s.closure = None;
            self.s.verification = None;
            self.new_period();
            self.remove_label(labels::NEEDS_VERIFICATION);
            if let Some(line) = self.withdraw_approval("the issue was reopened") {
                self.comment(line);
            }
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
        let Some(requested_at) = d.and_hms_opt(23, 59, 59).map(|t| t.and_utc()) else {
            return;
        };
        if requested_at <= self.now {
            self.comment(format!(
                "`Exception-Expires: {d}` is in the past: the expiry is unchanged."
            ));
            return;
        }
        if let Some(ex) = &self.s.exception
            && !ex.approver.eq_ignore_ascii_case(login)
        {
            self.comment(format!(
                "Only {}, who approved this exception, can change when it expires; {login}'s `Exception-Expires` \
                 is ignored.",
                ex.approver
            ));
            return;
        }
        self.s.expiry_requests.insert(login.to_ascii_lowercase(), d);
        self.log("exception-expiry-set");
        let Some(ex) = self.s.exception.clone() else {
            return;
        };
        let (expires_at, capped) = cap(requested_at, ex.approved_at + self.ctx.max_exception);
        if let Some(e) = self.s.exception.as_mut() {
            e.expires_at = expires_at;
        }
        self.suppress(&ex.approver, expires_at);
        self.act(Action::Schedule {
            timer: Timer::ExceptionExpiry,
            at: expires_at,
        });
        self.comment(format!(
            "The exception now expires on **{}** (set by {login}{}).",
            date(expires_at),
            if capped {
                max_note(self.ctx)
            } else {
                String::new()
            },
        ));
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

/// `want`, or `limit` when `want` is later; and whether it was cut.
fn cap(want: DateTime<Utc>, limit: DateTime<Utc>) -> (DateTime<Utc>, bool) {
    if want > limit {
        (limit, true)
    } else {
        (want, false)
    }
}

/// Said when `exceptions.max_expiry` cut an expiry short.
fn max_note(ctx: &Ctx) -> String {
    format!(
        ", the longest `exceptions.max_expiry` allows ({} days from the approval)",
        ctx.max_exception.num_days()
    )
}
