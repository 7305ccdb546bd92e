//! The issue lifecycle: one pure state machine per issue group.
//!
//! `transition(state, event, ctx, now) -> Outcome { state, actions, log }`. Events are GitHub
//! webhooks (labels, close, reopen, assignment, comments, deletion, transfer), what Security
//! Hub says about the group's findings, and timers. Actions are effects for the worker
//! (comment, label, close, reopen, assign, update findings in Security Hub, re-render the
//! resource checklist) and timers to schedule. Nothing here performs I/O or reads a clock:
//! facts that need GitHub (is this person an approver? who really applied `cto-approved`?) are
//! resolved by the caller and arrive inside the event.
//!
//! Events caused by Lever itself (`Actor::Lever`: its bot's webhooks) only keep the state in
//! step with GitHub; they never count as human actions.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ComplianceStatus, Finding, RecordState, WorkflowStatus};

/// Labels of the workflow vocabulary.
pub mod labels {
    pub const SECURITY_FINDING: &str = "security-finding";
    pub const ACKNOWLEDGED: &str = "acknowledged";
    pub const IN_PROGRESS: &str = "in-progress";
    pub const EXCEPTION_REQUESTED: &str = "exception-requested";
    pub const CTO_APPROVED: &str = "cto-approved";
    pub const NEEDS_VERIFICATION: &str = "needs-verification";
    pub const OVERDUE: &str = "overdue";

    /// (name, colour, description) of every label Lever creates in a repository.
    pub const VOCABULARY: &[(&str, &str, &str)] = &[
        (
            SECURITY_FINDING,
            "b60205",
            "A Security Hub finding explained by Lever",
        ),
        (ACKNOWLEDGED, "0e8a16", "The assignee has seen it"),
        (IN_PROGRESS, "1d76db", "Someone is working on the fix"),
        (
            EXCEPTION_REQUESTED,
            "fbca04",
            "The team asks not to fix it; an approver decides",
        ),
        (
            CTO_APPROVED,
            "5319e7",
            "Exception approved (only counts when applied by an approver)",
        ),
        (
            NEEDS_VERIFICATION,
            "d93f0b",
            "Closed, but Security Hub still reports the problem",
        ),
        (OVERDUE, "b60205", "Past its fix deadline"),
    ];
}

/// Who caused a GitHub event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Actor {
    /// Lever's own bot: keeps the state in step, never counts as a human action.
    Lever,
    /// A person, and whether they are a configured approver (resolved by the caller).
    Person { login: String, approver: bool },
}

impl Actor {
    pub fn person(login: &str, approver: bool) -> Actor {
        Actor::Person {
            login: login.to_string(),
            approver,
        }
    }
    pub fn login(&self) -> Option<&str> {
        match self {
            Actor::Lever => None,
            Actor::Person { login, .. } => Some(login),
        }
    }
}

/// What Security Hub says about a group's findings (level, not edge: the whole picture).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsView {
    /// Resources with at least one ACTIVE, FAILED (or not passed) finding.
    pub failing: BTreeSet<String>,
    /// Resources whose every finding passed or was archived.
    pub fixed: BTreeSet<String>,
    /// Failing findings whose workflow is NEW (Security Hub reset them, or they are new).
    pub unnotified: usize,
}

impl FindingsView {
    pub fn all_resolved(&self) -> bool {
        self.failing.is_empty()
    }

    /// The view of a group's findings: a resource is fixed when every finding naming it
    /// passed (or is not available) or was archived; otherwise it is failing.
    pub fn of(findings: &[Finding]) -> FindingsView {
        let mut failing = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut unnotified = 0;
        for f in findings {
            let fails = is_failing(f);
            if fails && f.workflow == WorkflowStatus::New {
                unnotified += 1;
            }
            for r in &f.resources {
                seen.insert(r.id.clone());
                if fails {
                    failing.insert(r.id.clone());
                }
            }
        }
        let fixed = seen.difference(&failing).cloned().collect();
        FindingsView {
            failing,
            fixed,
            unnotified,
        }
    }
}

/// Whether a finding still reports a problem (ACTIVE and not PASSED / NOT_AVAILABLE).
pub fn is_failing(f: &Finding) -> bool {
    f.record_state == RecordState::Active
        && !matches!(
            f.compliance,
            Some(ComplianceStatus::Passed) | Some(ComplianceStatus::NotAvailable)
        )
}

/// Who applied `cto-approved` according to the issue's events (checked by the caller when the
/// issue is closed, because webhooks can arrive out of order or be missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelAuthor {
    pub login: String,
    pub approver: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    Labeled {
        label: String,
        by: Actor,
    },
    Unlabeled {
        label: String,
        by: Actor,
    },
    /// `cto_approved_by`: who last applied `cto-approved`, when the closed issue carries it.
    Closed {
        by: Actor,
        state_reason: Option<String>,
        cto_approved_by: Option<LabelAuthor>,
    },
    Reopened {
        by: Actor,
    },
    Assigned {
        user: String,
        by: Actor,
    },
    Unassigned {
        user: String,
        by: Actor,
    },
    Deleted {
        by: Actor,
    },
    Transferred {
        repo: String,
        number: u64,
        by: Actor,
    },
    Commented {
        by: Actor,
        body: String,
    },
    /// The group's findings, as the store now holds them.
    Findings {
        view: FindingsView,
    },
    /// Security Hub no longer has any finding of the group (deleted after its retention).
    FindingsGone,
    /// The exception expiry timer fired.
    ExceptionTimer,
    /// The post-close check ran: Security Hub was asked whether the findings still fail.
    VerifyTimer {
        failing: bool,
    },
    /// The acknowledgement deadline timer fired.
    EscalationTimer,
    /// The fix-deadline (SLA) timer fired: a reminder before the due date, `overdue` after it.
    SlaTimer,
    /// A rotation handed off: the person on call for the issue's repository may have changed.
    Handoff,
}

impl Event {
    /// A short stable name for the audit trail (`issues.labeled`, `findings`, `timer.exception`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Labeled { .. } => "issues.labeled",
            Event::Unlabeled { .. } => "issues.unlabeled",
            Event::Closed { .. } => "issues.closed",
            Event::Reopened { .. } => "issues.reopened",
            Event::Assigned { .. } => "issues.assigned",
            Event::Unassigned { .. } => "issues.unassigned",
            Event::Deleted { .. } => "issues.deleted",
            Event::Transferred { .. } => "issues.transferred",
            Event::Commented { .. } => "issue_comment.created",
            Event::Findings { .. } => "findings",
            Event::FindingsGone => "findings.gone",
            Event::ExceptionTimer => "timer.exception-expiry",
            Event::VerifyTimer { .. } => "timer.verify",
            Event::EscalationTimer => "timer.escalation",
            Event::SlaTimer => "timer.sla",
            Event::Handoff => "rotation.handoff",
        }
    }

    pub fn actor(&self) -> Option<&Actor> {
        match self {
            Event::Labeled { by, .. }
            | Event::Unlabeled { by, .. }
            | Event::Closed { by, .. }
            | Event::Reopened { by }
            | Event::Assigned { by, .. }
            | Event::Unassigned { by, .. }
            | Event::Deleted { by }
            | Event::Transferred { by, .. }
            | Event::Commented { by, .. } => Some(by),
            _ => None,
        }
    }
}

/// Why a closed issue is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Closure {
    /// Security Hub reports every resource fixed.
    Fixed,
    /// An approved exception: the findings are suppressed until it expires.
    Exception,
    /// Closed by a person without approval while Security Hub still reported the problem:
    /// Lever checks again before deciding.
    Unverified,
}

/// An approved exception in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub approver: String,
    pub approved_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A close without approval, waiting for Security Hub to confirm the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub closed_by: String,
    pub closed_at: DateTime<Utc>,
    /// Lever already said Security Hub still reports the problem (it says so once).
    pub commented: bool,
    /// After this, a check that still finds the problem reopens the issue.
    pub grace_until: Option<DateTime<Utc>>,
}

/// Who acknowledged the issue, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Everything Lever remembers about a group's issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct State {
    pub open: bool,
    pub closure: Option<Closure>,
    /// Vocabulary labels on the issue, as Lever last saw them.
    pub labels: BTreeSet<String>,
    pub assignee: Option<String>,
    /// `cto-approved` applied by an approver on the open issue (the exception starts at close).
    pub approved_by: Option<String>,
    /// The latest `Exception-Expires:` date an approver wrote.
    pub requested_expiry: Option<NaiveDate>,
    pub exception: Option<Exception>,
    pub verification: Option<Verification>,
    pub findings: FindingsView,
    /// The issue was deleted on GitHub.
    pub deleted: bool,
    /// Escalation level of the owner: 0 the engineer on call, 1 the backup, 2 the security team.
    pub level: u8,
    pub acknowledged: Option<Ack>,
    /// The owner must acknowledge before this, or the issue goes to the next level.
    pub ack_deadline: Option<DateTime<Utc>>,
    /// The fix deadline (SLA).
    pub due: Option<DateTime<Utc>>,
    pub reminded: bool,
    pub overdue: bool,
}

impl State {
    /// A freshly opened issue.
    pub fn opened(
        assignee: Option<String>,
        view: FindingsView,
        initial_labels: &[String],
    ) -> State {
        State {
            open: true,
            assignee,
            findings: view,
            labels: initial_labels
                .iter()
                .filter(|l| is_vocabulary(l))
                .cloned()
                .collect(),
            ..State::default()
        }
    }
}

fn is_vocabulary(label: &str) -> bool {
    labels::VOCABULARY
        .iter()
        .any(|(n, _, _)| n.eq_ignore_ascii_case(label))
}

/// Facts from configuration and the current instant that the transition needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    /// The issue's URL, for Security Hub notes.
    pub issue_url: String,
    /// Who approves exceptions, for comments (plain text: `cto-user, @acme/security-leads`).
    pub approvers: Vec<String>,
    /// Whether an approver may approve an exception on an issue assigned to themselves.
    pub allow_self_approval: bool,
    /// How long an exception lasts when no approver wrote `Exception-Expires:`.
    pub default_exception: Duration,
    /// First check after a close without approval.
    pub verify_after: Duration,
    /// How long a closed issue whose findings still fail waits before it reopens.
    pub verify_grace: Duration,
    /// The engineer on call now for the group's repository (who gets a reopened issue).
    pub on_call: Option<String>,
    /// Who would take over now at escalation level 1 (backup) and 2 (security team).
    pub backup: Option<String>,
    pub security: Option<String>,
    /// When an owner who got the issue now would have to acknowledge it by (`None`: no
    /// acknowledgement deadline for this issue, e.g. ramp-up accounts).
    pub ack_deadline: Option<DateTime<Utc>>,
    /// The deadline in words, for comments (`4h`, `8h of working time`).
    pub ack_within: String,
    /// Whether issues follow the new person on call at a handoff: unacknowledged ones, and
    /// acknowledged ones.
    pub follow_unacknowledged: bool,
    pub follow_acknowledged: bool,
    /// How long before the due date the reminder comes.
    pub sla_reminder: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timer {
    ExceptionExpiry,
    Verify,
    Escalation,
    Sla,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Completed,
    NotPlanned,
}

/// An effect for the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    Comment {
        body: String,
    },
    AddLabel {
        label: String,
    },
    RemoveLabel {
        label: String,
    },
    Close {
        reason: CloseReason,
    },
    Reopen,
    /// Make `user` the one assignee.
    Assign {
        user: String,
    },
    /// BatchUpdateFindings on every finding of the group that is still failing (and, for
    /// NOTIFIED after an exception, every suppressed one).
    UpdateFindings {
        workflow: WorkflowStatus,
        note: String,
    },
    /// Re-render the bot-owned resource checklist in the body.
    RefreshBody,
    Schedule {
        timer: Timer,
        at: DateTime<Utc>,
    },
    /// The issue is gone but the problem is not: open a new issue for the group.
    Recreate,
    /// The issue moved to another repository.
    Moved {
        repo: String,
        number: u64,
    },
}

/// The result of one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: State,
    pub actions: Vec<Action>,
    /// What happened, in a few stable words, for the audit trail (`exception-approved`).
    /// Empty when the event changed nothing that matters.
    pub log: Vec<String>,
}

fn list(items: &BTreeSet<String>, max: usize) -> String {
    let mut v: Vec<String> = items
        .iter()
        .take(max)
        .map(|r| format!("`{}`", r.replace('`', "'")))
        .collect();
    if items.len() > max {
        v.push(format!("and {} more", items.len() - max));
    }
    v.join(", ")
}

fn mention(login: &str) -> String {
    format!("@{login}")
}

fn approvers_text(ctx: &Ctx) -> String {
    if ctx.approvers.is_empty() {
        "the security team (no approvers are configured)".to_string()
    } else {
        ctx.approvers.join(", ")
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Reads the latest `Exception-Expires: YYYY-MM-DD` line of a comment.
pub fn requested_expiry(body: &str) -> Option<Result<NaiveDate, String>> {
    body.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches('>').trim();
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("exception-expires")
                .then(|| v.trim().to_string())
        })
        .next_back()
        .map(|v| {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| {
                format!(
                    "`Exception-Expires: {}` is not a date like 2027-03-31",
                    v.replace('`', "'")
                )
            })
        })
}

struct Machine<'a> {
    s: State,
    actions: Vec<Action>,
    log: Vec<String>,
    ctx: &'a Ctx,
    now: DateTime<Utc>,
}

impl Machine<'_> {
    fn act(&mut self, a: Action) {
        self.actions.push(a);
    }
    fn comment(&mut self, body: String) {
        self.act(Action::Comment { body });
    }
    fn log(&mut self, what: &str) {
        self.log.push(what.to_string());
    }
    fn add_label(&mut self, label: &str) {
        if self.s.labels.insert(label.to_string()) {
            self.act(Action::AddLabel {
                label: label.to_string(),
            });
        }
    }
    fn remove_label(&mut self, label: &str) {
        if self.s.labels.remove(label) {
            self.act(Action::RemoveLabel {
                label: label.to_string(),
            });
        }
    }
    fn reopen(&mut self) {
        if !self.s.open {
            self.s.open = true;
            self.act(Action::Reopen);
        }
        self.s.closure = None;
        self.s.verification = None;
    }
    /// The issue starts a new ownership period with the engineer on call (after a reopen).
    fn assign_on_call(&mut self) {
        if let Some(who) = self.ctx.on_call.clone() {
            self.new_owner(&who, 0);
        }
        self.schedule_sla();
    }

    /// `who` owns the issue from now, at escalation `level`: assigned alone, not yet
    /// acknowledged, with a fresh acknowledgement deadline (none at the last level).
    fn new_owner(&mut self, who: &str, level: u8) {
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

    fn schedule_sla(&mut self) {
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

    fn acknowledge(&mut self, login: &str, how: &str) {
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

    fn on_escalation_timer(&mut self) {
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

    fn on_sla_timer(&mut self) {
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

    fn on_handoff(&mut self) {
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
    fn owner_mention(&self) -> String {
        match &self.ctx.on_call {
            Some(who) => format!("{} (on call) owns it again.", mention(who)),
            None => "Nobody is on call for this repository: the security team will find an owner."
                .to_string(),
        }
    }

    /// Suppresses the group's failing findings in Security Hub, with a short note: approver,
    /// expiry, issue URL (the reason stays in the issue).
    fn suppress(&mut self, approver: &str, expires_at: DateTime<Utc>) {
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
    fn start_exception(&mut self, approver: &str) {
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
    fn end_exception(&mut self, why: &str) {
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

    fn reject_approval(&mut self, why: &str) {
        self.remove_label(labels::CTO_APPROVED);
        self.comment(format!(
            "Lever removed `{}`: {why} Exceptions are approved by {}. Nothing was suppressed.",
            labels::CTO_APPROVED,
            approvers_text(self.ctx)
        ));
        self.log("approval-rejected");
    }

    /// Whether `login` may approve this issue's exception; the reason when not.
    fn approval_refusal(&self, login: &str, approver: bool) -> Option<String> {
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

    fn on_labeled(&mut self, label: &str, by: &Actor) {
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

    fn on_unlabeled(&mut self, label: &str, by: &Actor) {
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

    fn on_closed(&mut self, by: &Actor, cto_approved_by: Option<&LabelAuthor>) {
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

    fn on_reopened(&mut self, by: &Actor) {
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

    fn on_commented(&mut self, by: &Actor, body: &str) {
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

    fn on_findings(&mut self, view: FindingsView) {
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

    fn on_verify(&mut self, failing: bool) {
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

    fn on_exception_timer(&mut self) {
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

/// The state machine.
pub fn transition(state: &State, event: &Event, ctx: &Ctx, now: DateTime<Utc>) -> Outcome {
    let mut m = Machine {
        s: state.clone(),
        actions: Vec::new(),
        log: Vec::new(),
        ctx,
        now,
    };
    if state.deleted {
        // The issue is gone: late deliveries and timers for it change nothing (a recreated
        // issue starts from a fresh state).
        return Outcome {
            state: m.s,
            actions: m.actions,
            log: m.log,
        };
    }
    match event {
        Event::Labeled { label, by } => m.on_labeled(label, by),
        Event::Unlabeled { label, by } => m.on_unlabeled(label, by),
        Event::Closed {
            by,
            cto_approved_by,
            ..
        } => m.on_closed(by, cto_approved_by.as_ref()),
        Event::Reopened { by } => m.on_reopened(by),
        Event::Assigned { user, by } => {
            m.s.assignee = Some(user.clone());
            if by.login().is_some_and(|l| l.eq_ignore_ascii_case(user)) {
                m.acknowledge(user, "acknowledged-by-self-assignment");
            }
        }
        Event::Unassigned { user, .. } => {
            if m.s
                .assignee
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(user))
            {
                m.s.assignee = None;
            }
        }
        Event::Deleted { .. } => {
            m.s.deleted = true;
            m.s.open = false;
            if m.s.exception.take().is_some() {
                let note = format!("Exception ended (issue deleted): {}", ctx.issue_url);
                m.act(Action::UpdateFindings {
                    workflow: WorkflowStatus::Notified,
                    note,
                });
            }
            if !m.s.findings.all_resolved() {
                m.act(Action::Recreate);
                m.log("issue-deleted-recreate");
            } else {
                m.log("issue-deleted");
            }
        }
        Event::Transferred { repo, number, .. } => {
            m.act(Action::Moved {
                repo: repo.clone(),
                number: *number,
            });
            m.log("issue-transferred");
        }
        Event::Commented { by, body } => m.on_commented(by, body),
        Event::Findings { view } => m.on_findings(view.clone()),
        Event::FindingsGone => {
            m.s.approved_by = None;
            if !m.s.open {
                m.s.closure = Some(Closure::Fixed);
                m.s.verification = None;
            }
            if m.s.open {
                m.s.open = false;
                m.s.closure = Some(Closure::Fixed);
                m.act(Action::Close {
                    reason: CloseReason::Completed,
                });
                m.comment(
                    "Security Hub no longer has any finding of this group (the resources are gone, or the findings \
                     were deleted after their retention). Closing as completed."
                        .to_string(),
                );
                m.log("closed-findings-gone");
            }
            m.s.exception = None;
        }
        Event::ExceptionTimer => m.on_exception_timer(),
        Event::VerifyTimer { failing } => m.on_verify(*failing),
        Event::EscalationTimer => m.on_escalation_timer(),
        Event::SlaTimer => m.on_sla_timer(),
        Event::Handoff => m.on_handoff(),
    }
    Outcome {
        state: m.s,
        actions: m.actions,
        log: m.log,
    }
}

#[cfg(test)]
mod tests;
