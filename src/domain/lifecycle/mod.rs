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
//!
//! A refused assignee (GitHub will not assign a user who is not a collaborator) is an event
//! too, `AssigneeRefused`, and the one place the escalation chain (on call, backup, security)
//! is walked: the next person after the refused one who was not refused in this walk owns the
//! issue, and the issue says so; when nobody is left, nobody is assigned, said once. The walk
//! remembers whom GitHub refused (`State::refused`) until the owner changes for another reason
//! (a handoff, an escalation, a reopen, a person's assignment), so it never loops and never
//! retries someone, and the next change of owner starts a fresh walk. A refusal for someone who
//! no longer owns the issue (a later decision gave it to another person) changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::WorkflowStatus;

pub mod labels;
mod view;

pub use view::{FindingsView, GONE_REASONS, Verdict, is_failing, verdict};

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

/// Who applied `cto-approved` according to the issue's events (checked by the caller when the
/// issue is closed, because webhooks can arrive out of order or be missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelAuthor {
    pub login: String,
    pub approver: bool,
}

/// What the issue's events say about the `cto-approved` label a closed issue carries, read by
/// the caller from the newest event backwards until the answer is certain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LabelHistory {
    /// Its latest application, by `author`, came after the issue's latest (re)open and its
    /// latest exception request, and it was not removed since.
    Current(LabelAuthor),
    /// Its latest application belongs to an earlier request (`why`, a sentence, such as
    /// "it was applied before the issue was last reopened"), or it was removed since.
    Stale { why: String },
    /// The history could not be read completely (an error, Lever's cap): `why`.
    Unreadable { why: String },
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
    /// `cto_approved`: what the issue's events say about `cto-approved`, when a person closed
    /// an issue that carries it (`None` otherwise).
    Closed {
        by: Actor,
        state_reason: Option<String>,
        cto_approved: Option<LabelHistory>,
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
    /// GitHub would not assign `user` (not a collaborator of the repository): reported by the
    /// worker when it performs an `Assign`, or when it opens the issue.
    AssigneeRefused {
        user: String,
    },
    /// The account left ramp-up (its `enforce_from` date came): the informational issue is
    /// owed a fix from now on. `due` is the fix deadline counted from now (`None`: the
    /// severity has none); the acknowledgement deadline is the context's.
    Enforced {
        due: Option<DateTime<Utc>>,
    },
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
            Event::AssigneeRefused { .. } => "github.assignee-refused",
            Event::Enforced { .. } => "account.enforced",
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
    /// The resources it covers: those failing when it was approved. A resource that fails
    /// later is not covered. `None` for an exception recorded before Lever recorded this: it
    /// covers the resources the group had when it was last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<BTreeSet<String>>,
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
    /// Everyone who owned the issue (was assigned) since it was last (re)opened, lower case:
    /// none of them may approve its exception (unless `exceptions.allow_self_approval`).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub owners: BTreeSet<String>,
    /// `cto-approved` applied by an approver on the open issue in this period (the exception
    /// starts at close).
    pub approved_by: Option<String>,
    /// The latest `Exception-Expires:` date each approver wrote in this period (since the issue
    /// was last (re)opened), by lower-case login: only the approving approver's own counts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub expiry_requests: BTreeMap<String, NaiveDate>,
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
    /// Whom GitHub refused to assign while the current owner was being found, in order: the
    /// refusal walk never tries them again. Forgotten when the owner changes for another reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
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
            owners: assignee.iter().map(|a| a.to_ascii_lowercase()).collect(),
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
    /// How long an exception lasts when its approver wrote no `Exception-Expires:`.
    pub default_exception: Duration,
    /// The longest an exception may last from its approval (`exceptions.max_expiry`).
    pub max_exception: Duration,
    /// First check after a close without approval.
    pub verify_after: Duration,
    /// How long a closed issue whose findings still fail waits before it reopens.
    pub verify_grace: Duration,
    /// The engineer on call now for the group's repository (who gets a reopened issue).
    /// `on_call`, `other_owners`, `backup`, `security`, in this order, are the chain walked
    /// when GitHub refuses an assignee.
    pub on_call: Option<String>,
    /// The route's other owners now, after the person on call: the rest of its OWNERS line,
    /// then the fallback assignees.
    pub other_owners: Vec<String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// NOTIFIED after an exception, every suppressed one); with `resources`, only on findings
    /// whose every resource is in it (an exception suppresses only what it covers).
    UpdateFindings {
        workflow: WorkflowStatus,
        note: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resources: Option<BTreeSet<String>>,
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

mod exceptions;
mod findings;
mod machine;
mod ownership;

use machine::Machine;

/// Untrusted text in a code span: nothing inside one is markup, a mention or a reference;
/// backticks (which would end it) become `'` and line breaks (a blank line would end the
/// paragraph, and the span with it) become spaces.
fn code_span(s: &str) -> String {
    let inner: String = s
        .chars()
        .take(1024)
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{inner}`")
}

/// Resource ids (untrusted) for a comment, each in a [`code_span`].
fn list(items: &BTreeSet<String>, max: usize) -> String {
    let mut v: Vec<String> = items.iter().take(max).map(|r| code_span(r)).collect();
    if items.len() > max {
        v.push(format!("and {} more", items.len() - max));
    }
    v.join(", ")
}

pub(super) fn mention(login: &str) -> String {
    format!("@{login}")
}

pub(super) fn approvers_text(ctx: &Ctx) -> String {
    if ctx.approvers.is_empty() {
        "the security team (no approvers are configured)".to_string()
    } else {
        ctx.approvers.join(", ")
    }
}

pub(super) fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Reads the latest `Exception-Expires: YYYY-MM-DD` line of a comment. Quoted lines (`>`) are
/// someone else's words and do not count.
pub fn requested_expiry(body: &str) -> Option<Result<NaiveDate, String>> {
    body.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('>') {
                return None;
            }
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
            by, cto_approved, ..
        } => m.on_closed(by, cto_approved.as_ref()),
        Event::Reopened { by } => m.on_reopened(by),
        Event::Assigned { user, by } => {
            m.s.assignee = Some(user.clone());
            m.s.owners.insert(user.to_ascii_lowercase());
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
                m.notify(note);
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
        Event::FindingsGone => m.on_findings_gone(),
        Event::ExceptionTimer => m.on_exception_timer(),
        Event::VerifyTimer { failing } => m.on_verify(*failing),
        Event::EscalationTimer => m.on_escalation_timer(),
        Event::SlaTimer => m.on_sla_timer(),
        Event::Handoff => m.on_handoff(),
        Event::AssigneeRefused { user } => m.on_assignee_refused(user),
        Event::Enforced { due } => m.on_enforced(*due),
    }
    if !matches!(event, Event::AssigneeRefused { .. })
        && !ownership::same_person(&state.assignee, &m.s.assignee)
    {
        // The owner changed for another reason: the next refusal starts a fresh walk.
        m.s.refused.clear();
    }
    Outcome {
        state: m.s,
        actions: m.actions,
        log: m.log,
    }
}
#[cfg(test)]
mod tests;
