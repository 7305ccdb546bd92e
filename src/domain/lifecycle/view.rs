//! What Security Hub says about a group's findings: each finding's verdict (failing, fixed, or
//! not confirmed fixed) and the group's view by resource.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::{ComplianceStatus, Finding, RecordState, WorkflowStatus};

/// What Security Hub says about a group's findings (level, not edge: the whole picture).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsView {
    /// Resources with at least one finding that still reports the problem ([`Verdict::Failing`]).
    pub failing: BTreeSet<String>,
    /// Resources whose every finding is fixed ([`Verdict::Fixed`]).
    pub fixed: BTreeSet<String>,
    /// Resources no longer reported as failing but not confirmed fixed either (the control was
    /// disabled, the evaluation failed): resource → why, in words. Not a fix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unconfirmed: BTreeMap<String, String>,
    /// Failing findings whose workflow is NEW (Security Hub reset them, or they are new).
    pub unnotified: usize,
    /// Failing resources carrying an ignore tag that does not stop tracking in their account
    /// (`ignore_tags = "ramp-up"` outside ramp-up), with the tag as written (`key=reason`,
    /// untrusted): a tag that appears is reported on the issue. Filled in by the caller
    /// (`policy::reported_ignore_tags`), not by [`FindingsView::of`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignore_tagged: BTreeMap<String, String>,
    /// Resources Security Hub reports failing whose ignore tag (with a reason) their account
    /// honours (ramp-up, or `ignore_tags = "always"`), with the tag as written (`key=reason`,
    /// untrusted): taken off the checklist, and out of [`FindingsView::failing`]. Filled
    /// in by the caller (`policy::honoured_ignore_tags`), not by [`FindingsView::of`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignored: BTreeMap<String, String>,
}

impl FindingsView {
    /// Every resource is fixed: nothing fails and nothing is merely unconfirmed.
    pub fn all_resolved(&self) -> bool {
        self.failing.is_empty() && self.unconfirmed.is_empty()
    }

    /// This view with `ignored` (resource → `key=reason`) taken out of `failing` (a resource
    /// that is not failing is not ignored: nothing to take off).
    pub fn with_ignored(mut self, ignored: BTreeMap<String, String>) -> FindingsView {
        self.ignored = ignored
            .into_iter()
            .filter(|(r, _)| self.failing.contains(r))
            .collect();
        for r in self.ignored.keys() {
            self.failing.remove(r);
        }
        self
    }

    /// The view of a group's findings: a resource is failing when any finding naming it fails,
    /// else unconfirmed when any finding naming it is unconfirmed, else fixed.
    pub fn of(findings: &[Finding]) -> FindingsView {
        let mut failing = BTreeSet::new();
        let mut unconfirmed = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut unnotified = 0;
        for f in findings {
            let v = verdict(f);
            if v == Verdict::Failing && f.workflow == WorkflowStatus::New {
                unnotified += 1;
            }
            for r in &f.resources {
                seen.insert(r.id.clone());
                match &v {
                    Verdict::Failing => {
                        failing.insert(r.id.clone());
                    }
                    Verdict::Unconfirmed(why) => {
                        unconfirmed
                            .entry(r.id.clone())
                            .or_insert_with(|| why.clone());
                    }
                    Verdict::Fixed => {}
                }
            }
        }
        unconfirmed.retain(|r, _| !failing.contains(r));
        let fixed = seen
            .into_iter()
            .filter(|r| !failing.contains(r) && !unconfirmed.contains_key(r))
            .collect();
        FindingsView {
            failing,
            fixed,
            unconfirmed,
            unnotified,
            ignore_tagged: BTreeMap::new(),
            ignored: BTreeMap::new(),
        }
    }
}

/// What one finding says about its resources now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It still reports the problem: ACTIVE and not PASSED (FAILED, WARNING, NOT_AVAILABLE
    /// aside, or no compliance status at all: not a control).
    Failing,
    /// Fixed: PASSED; NOT_AVAILABLE and archived with nothing but "not applicable" reasons
    /// (Security Hub's answer when the resource was deleted); or archived by its product when it
    /// is not a control (no compliance status: the product's own verdict is all there is).
    Fixed,
    /// Not reported as failing any more, but not a fix either (why, in words): a control
    /// finding archived while still FAILED or WARNING (the control or its standard was disabled),
    /// or NOT_AVAILABLE because the evaluation failed or for no reason that says the resource is
    /// gone.
    Unconfirmed(String),
}

/// `Compliance.StatusReasons` codes that, with NOT_AVAILABLE on an archived finding, say the
/// resource is gone or out of the rule's scope (AWS Config returned NOT_APPLICABLE, or has no
/// evaluation left). Any other code (`CONFIG_ACCESS_DENIED`, `CONFIG_RULE_EVALUATION_ERROR`,
/// `INTERNAL_SERVICE_ERROR`, ... or one Lever does not know) is not evidence of a fix.
pub const GONE_REASONS: &[&str] = &["CONFIG_RETURNS_NOT_APPLICABLE", "CONFIG_EVALUATIONS_EMPTY"];

/// What `f` says about its resources: see [`Verdict`].
pub fn verdict(f: &Finding) -> Verdict {
    let archived = f.record_state == RecordState::Archived;
    match f.compliance {
        Some(ComplianceStatus::Passed) => Verdict::Fixed,
        None if archived => Verdict::Fixed,
        Some(ComplianceStatus::NotAvailable) => {
            let failures: Vec<&str> = f
                .compliance_reasons
                .iter()
                .map(String::as_str)
                .filter(|c| !GONE_REASONS.contains(c))
                .collect();
            if archived && failures.is_empty() {
                Verdict::Fixed
            } else if failures.is_empty() {
                Verdict::Unconfirmed(
                    "Security Hub could not evaluate it (NOT_AVAILABLE, finding still active)"
                        .to_string(),
                )
            } else {
                Verdict::Unconfirmed(format!(
                    "Security Hub could not evaluate it (NOT_AVAILABLE: {})",
                    failures.join(", ")
                ))
            }
        }
        Some(status) if archived => Verdict::Unconfirmed(format!(
            "Security Hub archived the finding while it was still {status}: the control or its \
             standard was disabled, or the finding was archived by hand"
        )),
        _ => Verdict::Failing,
    }
}

/// Whether a finding still reports the problem ([`Verdict::Failing`]).
pub fn is_failing(f: &Finding) -> bool {
    verdict(f) == Verdict::Failing
}
