//! What Security Hub says: fixed resources, regressions, verification after a close.

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
            || before.fixed != self.s.findings.fixed;
        if self.s.deleted {
            return;
        }
        if self.s.findings.all_resolved() {
            match (self.s.open, self.s.closure) {
                (true, _) => {
                    self.act(Action::RefreshBody);
                    self.s.open = false;
                    self.s.closure = Some(Closure::Fixed);
                    self.s.approved_by = None;
                    self.act(Action::Close {
                        reason: CloseReason::Completed,
                    });
                    let fixed = if now_fixed.is_empty() {
                        &self.s.findings.fixed
                    } else {
                        &now_fixed
                    }
                    .clone();
                    self.comment(format!(
                        "Security Hub now reports every resource fixed ({}). Closing as completed. Thank you!",
                        list(&fixed, 20)
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
                    self.comment(
                        "Security Hub now reports every resource fixed, so the exception is no longer needed. \
                         If the problem comes back, this issue reopens."
                            .to_string(),
                    );
                    self.log("fixed-under-exception");
                }
                _ => {
                    if changed {
                        self.act(Action::RefreshBody);
                    }
                }
            }
            return;
        }
        // Something fails.
        match (self.s.open, self.s.closure) {
            (true, _) => {
                if changed {
                    self.act(Action::RefreshBody);
                    if !now_failing.is_empty() && !before.failing.is_empty() {
                        self.comment(format!(
                            "Security Hub reports more affected resources: {}.",
                            list(&now_failing, 20)
                        ));
                        self.log("resources-added");
                    } else if !now_fixed.is_empty() {
                        self.log("resources-fixed");
                    }
                }
                if self.s.findings.unnotified > 0 {
                    let note = format!("Lever: tracked in {}", self.ctx.issue_url);
                    self.act(Action::UpdateFindings {
                        workflow: WorkflowStatus::Notified,
                        note,
                    });
                }
            }
            (false, Some(Closure::Fixed)) | (false, None) => {
                // A regression: the same problem, the same issue.
                self.reopen();
                self.act(Action::RefreshBody);
                let note = format!("Lever: failing again, tracked in {}", self.ctx.issue_url);
                self.act(Action::UpdateFindings {
                    workflow: WorkflowStatus::Notified,
                    note,
                });
                self.assign_on_call();
                let owner = self.owner_mention();
                self.comment(format!(
                    "Security Hub reports the problem again on {}. Reopening this issue. {owner}",
                    list(&self.s.findings.failing, 20)
                ));
                self.log("regression-reopened");
            }
            (false, Some(Closure::Exception)) => {
                if self.s.findings.unnotified > 0 || !now_failing.is_empty() {
                    // Newly reported resources of an excepted group are covered by the exception.
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
            self.comment(format!(
                "Security Hub still reports this problem on {}. If the fix is deployed, it may take a while for Security \
                 Hub to re-evaluate; Lever checks again and reopens this issue if it still fails after {}. To accept \
                 the risk instead, ask for an exception (`{}`).",
                list(&self.s.findings.failing, 20),
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
                self.assign_on_call();
                let owner = self.owner_mention();
                self.comment(format!(
                    "Security Hub still reports the problem after the grace period, so Lever reopens this issue. {owner}"
                ));
                self.log("verification-reopened");
            }
        }
    }
}
