//! What Security Hub says: fixed resources, regressions, fixes Security Hub does not confirm,
//! resources an exception does not cover, verification after a close.

use super::*;

impl Machine<'_> {
    /// What Security Hub now says, then any ignore tag that appeared on a failing resource and
    /// does not stop tracking here: reported on the issue (and in the audit), so the team knows
    /// the tag changes nothing and an exception is the way (unless the issue is gone, or an
    /// exception already covers it).
    pub(super) fn on_findings(&mut self, view: FindingsView) {
        let tagged: BTreeMap<String, String> = view
            .ignore_tagged
            .iter()
            .filter(|(r, t)| self.s.findings.ignore_tagged.get(*r) != Some(*t))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect();
        let newly_ignored: BTreeMap<String, String> = view
            .ignored
            .iter()
            .filter(|(r, _)| !self.s.findings.ignored.contains_key(*r))
            .map(|(r, t)| (r.clone(), t.clone()))
            .collect();
        if !newly_ignored.is_empty()
            && self.s.open
            && !self.s.deleted
            && self.s.closure != Some(Closure::Exception)
        {
            self.on_ignored(view, &newly_ignored);
            return;
        }
        self.on_findings_view(view);
        if tagged.is_empty() || self.s.deleted || self.s.closure == Some(Closure::Exception) {
            return;
        }
        let lines: Vec<String> = tagged
            .iter()
            .take(20)
            .map(|(r, t)| format!("- {} is tagged {}", code_span(r), code_span(t)))
            .collect();
        let more = if tagged.len() > 20 {
            format!("\n- and {} more", tagged.len() - 20)
        } else {
            String::new()
        };
        self.comment(format!(
            "New ignore tags on resources of this issue:\n{}{more}\n\nIn this account ignore tags are honoured only \
             during ramp-up, so they do not close or suppress anything: fix the resources, or ask for an exception \
             (`{}`) and an approver decides.",
            lines.join("\n"),
            labels::EXCEPTION_REQUESTED
        ));
        self.log("ignore-tag-reported");
    }

    /// Ignore tags the account honours appeared on resources of an open issue: those resources
    /// are taken off the checklist (the body is refreshed), one comment names the tags; when
    /// nothing is left to fix, the issue closes as completed (a resource that fails again once
    /// its tag is gone reopens it, like any regression).
    fn on_ignored(&mut self, view: FindingsView, newly: &BTreeMap<String, String>) {
        let lines: Vec<String> = newly
            .iter()
            .take(20)
            .map(|(r, t)| format!("- {}: {}", code_span(r), code_span(t)))
            .collect();
        let more = if newly.len() > 20 {
            format!("\n- and {} more", newly.len() - 20)
        } else {
            String::new()
        };
        self.s.findings = view;
        self.act(Action::RefreshBody);
        let head = format!(
            "Ignore tags with a reason, which this account honours during ramp-up, were added to resources of this \
             issue; they are taken off its checklist:\n{}{more}",
            lines.join("\n")
        );
        if self.s.findings.all_resolved() {
            self.s.open = false;
            self.s.closure = Some(Closure::Fixed);
            let line = self.withdraw_approval("nothing is left to fix");
            self.act(Action::Close {
                reason: CloseReason::Completed,
            });
            self.comment(Self::with_line(
                format!(
                    "{head}\n\nNothing is left to fix: every resource is fixed or carries an honoured ignore tag. \
                     Closing as completed; if a tag is removed and the problem is still there, this issue reopens."
                ),
                line,
            ));
            self.log("closed-ignored");
        } else {
            self.comment(head);
            self.log("resources-ignored");
        }
    }

    fn on_findings_view(&mut self, view: FindingsView) {
        let before = std::mem::replace(&mut self.s.findings, view);
        let now_fixed: BTreeSet<String> = before
            .failing
            .difference(&self.s.findings.failing)
            .cloned()
            .collect();
        let now_failing: BTreeSet<String> = self
            .s
            .findings
            .failing
            .difference(&before.failing)
            .cloned()
            .collect();
        let changed = !now_fixed.is_empty()
            || !now_failing.is_empty()
            || before.fixed != self.s.findings.fixed
            || before.unconfirmed != self.s.findings.unconfirmed;
        if self.s.deleted {
            return;
        }
        if self.s.findings.all_resolved() {
            self.all_resolved(&now_fixed, changed);
        } else if self.s.findings.failing.is_empty() {
            self.only_unconfirmed(&before, changed);
        } else {
            self.something_fails(&before, &now_failing, &now_fixed, changed);
        }
    }

    /// Every resource is fixed.
    fn all_resolved(&mut self, now_fixed: &BTreeSet<String>, changed: bool) {
        match (self.s.open, self.s.closure) {
            (true, _) => {
                self.act(Action::RefreshBody);
                self.s.open = false;
                self.s.closure = Some(Closure::Fixed);
                let line = self.withdraw_approval("the findings are fixed");
                self.act(Action::Close {
                    reason: CloseReason::Completed,
                });
                let fixed = if now_fixed.is_empty() {
                    &self.s.findings.fixed
                } else {
                    now_fixed
                }
                .clone();
                self.comment(Self::with_line(
                    format!(
                        "Security Hub now reports every resource fixed ({}). Closing as completed. Thank you!",
                        list(&fixed, 20)
                    ),
                    line,
                ));
                self.log("closed-fixed");
            }
            (false, Some(Closure::Unverified)) => {
                self.s.closure = Some(Closure::Fixed);
                self.s.verification = None;
                self.remove_label(labels::NEEDS_VERIFICATION);
                self.act(Action::RefreshBody);
                self.log("fix-verified");
            }
            (false, Some(Closure::Exception)) => {
                self.s.exception = None;
                self.s.closure = Some(Closure::Fixed);
                self.act(Action::RefreshBody);
                let line = self.withdraw_approval("the findings are fixed");
                self.comment(Self::with_line(
                    "Security Hub now reports every resource fixed, so the exception is no longer needed. \
                     If the problem comes back, this issue reopens."
                        .to_string(),
                    line,
                ));
                self.log("fixed-under-exception");
            }
            _ => {
                if changed {
                    self.act(Action::RefreshBody);
                }
            }
        }
    }

    /// Nothing fails any more, but some resources are not confirmed fixed (the control was
    /// disabled, the evaluation failed): not a fix. An open issue stays open, says why once per
    /// change, and leaves the decision to the security team; a closed one stays as it is.
    fn only_unconfirmed(&mut self, before: &FindingsView, changed: bool) {
        if changed {
            self.act(Action::RefreshBody);
        }
        let news = !before.failing.is_empty()
            || before
                .unconfirmed
                .keys()
                .ne(self.s.findings.unconfirmed.keys());
        if !self.s.open || !news {
            return;
        }
        let mut by_reason: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (resource, why) in &self.s.findings.unconfirmed {
            by_reason
                .entry(why.as_str())
                .or_default()
                .insert(resource.clone());
        }
        let reasons: Vec<String> = by_reason
            .iter()
            .map(|(why, resources)| format!("{}: {why}", list(resources, 10)))
            .collect();
        let security = match &self.ctx.security {
            Some(who) => format!("{} (security team)", mention(who)),
            None => "The security team".to_string(),
        };
        self.comment(format!(
            "Security Hub no longer reports this problem as failing, but that is not a fix: {}. Lever keeps this \
             issue open. {security}: please decide, either confirm the fix (and close the issue) or approve an \
             exception (`{}`).",
            reasons.join("; "),
            labels::CTO_APPROVED
        ));
        self.log("fix-unconfirmed");
    }

    /// Some resource still fails.
    fn something_fails(
        &mut self,
        before: &FindingsView,
        now_failing: &BTreeSet<String>,
        now_fixed: &BTreeSet<String>,
        changed: bool,
    ) {
        match (self.s.open, self.s.closure) {
            (true, _) => {
                if changed {
                    self.act(Action::RefreshBody);
                    if !now_failing.is_empty() {
                        // An approval covers what the approver saw: a new resource needs a new one.
                        let line = if self.s.approved_by.is_some() {
                            self.withdraw_approval(&format!(
                                "{} started failing after the approval",
                                list(now_failing, 20)
                            ))
                        } else {
                            None
                        };
                        let what = if before.failing.is_empty() {
                            "Security Hub reports the problem on"
                        } else {
                            "Security Hub reports more affected resources:"
                        };
                        self.comment(Self::with_line(
                            format!("{what} {}.", list(now_failing, 20)),
                            line,
                        ));
                        self.log("resources-added");
                    } else if !now_fixed.is_empty() {
                        self.log("resources-fixed");
                    }
                }
                if self.s.findings.unnotified > 0 {
                    let note = format!("Lever: tracked in {}", self.ctx.issue_url);
                    self.notify(note);
                }
            }
            (false, Some(Closure::Fixed)) | (false, None) => {
                // A regression: the same problem, the same issue.
                self.reopen();
                let line = self.withdraw_approval("the problem came back and the issue reopened");
                self.act(Action::RefreshBody);
                let note = format!("Lever: failing again, tracked in {}", self.ctx.issue_url);
                self.notify(note);
                self.assign_on_call();
                let owner = self.owner_mention();
                self.comment(Self::with_line(
                    format!(
                        "Security Hub reports the problem again on {}. Reopening this issue. {owner}",
                        list(&self.s.findings.failing, 20)
                    ),
                    line,
                ));
                self.log("regression-reopened");
            }
            (false, Some(Closure::Exception)) => {
                let covered = self.covered(before).unwrap_or_default();
                let uncovered: BTreeSet<String> = self
                    .s
                    .findings
                    .failing
                    .difference(&covered)
                    .cloned()
                    .collect();
                if !uncovered.is_empty() {
                    // Nobody approved these: the exception does not stretch to them.
                    self.log("resource-not-covered");
                    self.act(Action::RefreshBody);
                    self.end_exception(&format!(
                        "{} failing in this group {} not covered by it (it was approved for {}); an approver can \
                         approve again for the whole group",
                        list(&uncovered, 20),
                        if uncovered.len() == 1 { "is" } else { "are" },
                        if covered.is_empty() {
                            "no failing resource".to_string()
                        } else {
                            list(&covered, 20)
                        }
                    ));
                    return;
                }
                if self.s.findings.unnotified > 0 || !now_failing.is_empty() {
                    // A covered resource failing again (Security Hub reset it to NEW).
                    if let Some(ex) = self.s.exception.clone() {
                        self.suppress(&ex.approver, ex.expires_at);
                    }
                }
                if changed {
                    self.act(Action::RefreshBody);
                }
            }
            (false, Some(Closure::Unverified)) => {
                if changed {
                    self.act(Action::RefreshBody);
                }
            }
        }
    }

    /// Security Hub no longer has any finding of the group (deleted after its retention).
    pub(super) fn on_findings_gone(&mut self) {
        let line = self.withdraw_approval("Security Hub no longer has any finding of this group");
        if !self.s.open {
            self.s.closure = Some(Closure::Fixed);
            self.s.verification = None;
            if let Some(line) = line {
                self.comment(line);
            }
        } else {
            self.s.open = false;
            self.s.closure = Some(Closure::Fixed);
            self.act(Action::Close {
                reason: CloseReason::Completed,
            });
            self.comment(Self::with_line(
                "Security Hub no longer has any finding of this group (the resources are gone, or the findings \
                 were deleted after their retention). Closing as completed."
                    .to_string(),
                line,
            ));
            self.log("closed-findings-gone");
        }
        self.s.exception = None;
    }

    pub(super) fn on_verify(&mut self, failing: bool) {
        if self.s.open || self.s.closure != Some(Closure::Unverified) {
            return;
        }
        let Some(v) = self.s.verification.clone() else {
            return;
        };
        if !failing {
            self.s.closure = Some(Closure::Fixed);
            self.s.verification = None;
            self.remove_label(labels::NEEDS_VERIFICATION);
            self.log("fix-verified");
            return;
        }
        if !v.commented {
            let grace_until = self.now + self.ctx.verify_grace;
            self.s.verification = Some(Verification {
                commented: true,
                grace_until: Some(grace_until),
                ..v
            });
            self.add_label(labels::NEEDS_VERIFICATION);
            self.act(Action::Schedule {
                timer: Timer::Verify,
                at: grace_until,
            });
            let unconfirmed: BTreeSet<String> =
                self.s.findings.unconfirmed.keys().cloned().collect();
            let what = if self.s.findings.failing.is_empty() && !unconfirmed.is_empty() {
                format!(
                    "does not confirm the fix on {} (not evaluated, or the control is disabled)",
                    list(&unconfirmed, 20)
                )
            } else {
                format!(
                    "still reports this problem on {}",
                    list(&self.s.findings.failing, 20)
                )
            };
            self.comment(format!(
                "Security Hub {what}. If the fix is deployed, it may take a while for Security Hub to re-evaluate; \
                 Lever checks again and reopens this issue if it still fails after {}. To accept the risk instead, \
                 ask for an exception (`{}`).",
                date(grace_until),
                labels::EXCEPTION_REQUESTED
            ));
            self.log("verification-failed");
            return;
        }
        match v.grace_until {
            Some(until) if self.now < until => {
                self.act(Action::Schedule {
                    timer: Timer::Verify,
                    at: until,
                });
            }
            _ => {
                self.reopen();
                self.remove_label(labels::NEEDS_VERIFICATION);
                let line = self.withdraw_approval("the issue reopened");
                self.assign_on_call();
                let owner = self.owner_mention();
                self.comment(Self::with_line(
                    format!(
                        "Security Hub still reports the problem after the grace period, so Lever reopens this issue. \
                         {owner}"
                    ),
                    line,
                ));
                self.log("verification-reopened");
            }
        }
    }
}
