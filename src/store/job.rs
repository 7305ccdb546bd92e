//! The typed job queue: what a job is for ([`Job`]), as it is stored (two text columns, `kind`
//! and `subject`), with no free-form payload. A job names the record it works on; everything
//! else it needs is loaded from the store when it runs, so a job never carries stale data.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::GroupKey;
use crate::domain::lifecycle::Timer;

/// A recorded inbound delivery's id: `github:<X-GitHub-Delivery>` or `eventbridge:<event id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub String);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One unit of work for the workers. At most one *pending* job exists per value (see
/// [`NewJob`](super::NewJob)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Job {
    /// Create the GitHub issue of a group.
    OpenIssue(GroupKey),
    /// Tell Security Hub the findings of a group are tracked (NOTIFIED).
    NotifyFindings(GroupKey),
    /// React to one GitHub webhook delivery about a tracked issue.
    GithubEvent(DeliveryId),
    /// Perform a group's pending effects (its outbox), in order.
    ApplyEffects(GroupKey),
    /// Bring a group's issue in line with its findings.
    SyncGroup(GroupKey),
    /// A lifecycle timer of a group fires (exception expiry, verification, acknowledgement
    /// deadline, fix deadline). Timers are never cancelled: the state decides whether it still
    /// matters when it fires.
    Timer(Timer, GroupKey),
    /// A rotation handoff: fans out one [`Job::Handoff`] per open group, then schedules the
    /// next handoff.
    Handoffs,
    /// One group's issue follows the new person on call (as the escalation policy says).
    Handoff(GroupKey),
    /// The periodic summary in the security repository.
    Digest,
    /// Create the label vocabulary in a repository (`owner/repo`).
    EnsureLabels(String),
    /// Reconcile with Security Hub: one page of GetFindings per run.
    Sync,
    /// Ask GitHub for the App's recent webhook deliveries that failed and have them sent again.
    Redeliver,
    /// Delete finished jobs and old deliveries past `[retention]` (daily).
    Prune,
    /// Create, update or close the noise cap's summary issue of a product (a repository,
    /// lowercase) in the security repository.
    NoiseSummary(String),
    /// Reconcile the tracked issues with GitHub (state, labels, assignees): the differences
    /// are the webhooks Lever missed, beyond the 3 days GitHub keeps deliveries.
    Reconcile,
    /// The App lost or regained access to a repository (`owner/repo`: uninstalled, suspended,
    /// unsuspended, added back): its groups' issues and waiting effects follow (see
    /// `worker::reroute`).
    RepoAccess(String),
    /// A date of the accounts' ramp-up schedules came (`enforce_from`, `min_severity_from`):
    /// fans out one [`Job::Promote`] per open ramp-up issue of an account now enforced, opens
    /// the groups of stored findings that now count (backfill), then schedules the next date.
    Enforcement,
    /// One informational (ramp-up) issue becomes enforced: owner, deadlines, one comment.
    Promote(GroupKey),
    /// A group's settle delay is over (`[settle]`): its findings are planned again, and the
    /// issue opens only if they still count.
    Settle(GroupKey),
    /// The tag audit (`[tags] audit_every`): new ignore tags are asked about in the security
    /// repository's audit issue.
    TagAudit,
    /// A kind this version does not know: written by a newer replica during a rolling upgrade.
    /// Never leased by this version (see [`Store::lease_job`](super::Store::lease_job)); listed
    /// for operators as it is.
    Unknown { kind: String, subject: String },
}

const OPEN_ISSUE: &str = "open-issue";
const NOTIFY_FINDINGS: &str = "notify-findings";
const GITHUB_EVENT: &str = "github-event";
const APPLY_EFFECTS: &str = "apply-effects";
const SYNC_GROUP: &str = "sync-group";
const TIMER_EXCEPTION: &str = "timer-exception-expiry";
const TIMER_VERIFY: &str = "timer-verify";
const TIMER_ESCALATION: &str = "timer-escalation";
const TIMER_SLA: &str = "timer-sla";
const HANDOFFS: &str = "handoffs";
const HANDOFF: &str = "handoff";
const DIGEST: &str = "digest";
const ENSURE_LABELS: &str = "ensure-labels";
const SYNC: &str = "sync";
const REDELIVER: &str = "redeliver";
const PRUNE: &str = "prune";
const NOISE_SUMMARY: &str = "noise-summary";
const RECONCILE: &str = "reconcile";
const REPO_ACCESS: &str = "repo-access";
const ENFORCEMENT: &str = "enforcement";
const PROMOTE: &str = "promote";
const SETTLE: &str = "settle";
const TAG_AUDIT: &str = "tag-audit";

/// Every kind this version runs: the lease query takes only these, so a replica of an older
/// version leaves the kinds it does not know to the others instead of failing them.
pub const KNOWN_KINDS: &[&str] = &[
    OPEN_ISSUE,
    NOTIFY_FINDINGS,
    GITHUB_EVENT,
    APPLY_EFFECTS,
    SYNC_GROUP,
    TIMER_EXCEPTION,
    TIMER_VERIFY,
    TIMER_ESCALATION,
    TIMER_SLA,
    HANDOFFS,
    HANDOFF,
    DIGEST,
    ENSURE_LABELS,
    SYNC,
    REDELIVER,
    PRUNE,
    NOISE_SUMMARY,
    RECONCILE,
    REPO_ACCESS,
    ENFORCEMENT,
    PROMOTE,
    SETTLE,
    TAG_AUDIT,
];

fn timer_kind(t: Timer) -> &'static str {
    match t {
        Timer::ExceptionExpiry => TIMER_EXCEPTION,
        Timer::Verify => TIMER_VERIFY,
        Timer::Escalation => TIMER_ESCALATION,
        Timer::Sla => TIMER_SLA,
    }
}

impl Job {
    /// The `kind` column.
    pub fn kind(&self) -> &str {
        match self {
            Job::OpenIssue(_) => OPEN_ISSUE,
            Job::NotifyFindings(_) => NOTIFY_FINDINGS,
            Job::GithubEvent(_) => GITHUB_EVENT,
            Job::ApplyEffects(_) => APPLY_EFFECTS,
            Job::SyncGroup(_) => SYNC_GROUP,
            Job::Timer(t, _) => timer_kind(*t),
            Job::Handoffs => HANDOFFS,
            Job::Handoff(_) => HANDOFF,
            Job::Digest => DIGEST,
            Job::EnsureLabels(_) => ENSURE_LABELS,
            Job::Sync => SYNC,
            Job::Redeliver => REDELIVER,
            Job::Prune => PRUNE,
            Job::NoiseSummary(_) => NOISE_SUMMARY,
            Job::Reconcile => RECONCILE,
            Job::RepoAccess(_) => REPO_ACCESS,
            Job::Enforcement => ENFORCEMENT,
            Job::Promote(_) => PROMOTE,
            Job::Settle(_) => SETTLE,
            Job::TagAudit => TAG_AUDIT,
            Job::Unknown { kind, .. } => kind,
        }
    }

    /// The `subject` column: the record the job works on (a group key, a delivery id, a
    /// repository), or a fixed word for the singletons.
    pub fn subject(&self) -> &str {
        if let Some(g) = self.group() {
            return &g.0;
        }
        match self {
            Job::GithubEvent(d) => &d.0,
            Job::EnsureLabels(repo) => repo,
            Job::Handoffs => "rotations",
            Job::Digest => "digest",
            Job::Sync => "securityhub",
            Job::Redeliver => "github",
            Job::Prune => "store",
            Job::NoiseSummary(product) => product,
            Job::Reconcile => "issues",
            Job::RepoAccess(repo) => repo,
            Job::Enforcement => "accounts",
            Job::TagAudit => "tags",
            Job::Unknown { subject, .. } => subject,
            Job::OpenIssue(_)
            | Job::NotifyFindings(_)
            | Job::ApplyEffects(_)
            | Job::SyncGroup(_)
            | Job::Timer(..)
            | Job::Handoff(_)
            | Job::Promote(_)
            | Job::Settle(_) => unreachable!("group jobs answered above"),
        }
    }

    /// Decodes the two stored columns; a kind this version does not know becomes
    /// [`Job::Unknown`] (never an error: a newer replica may have written it).
    pub fn from_parts(kind: &str, subject: &str) -> Job {
        let group = || GroupKey(subject.to_string());
        match kind {
            OPEN_ISSUE => Job::OpenIssue(group()),
            NOTIFY_FINDINGS => Job::NotifyFindings(group()),
            GITHUB_EVENT => Job::GithubEvent(DeliveryId(subject.to_string())),
            APPLY_EFFECTS => Job::ApplyEffects(group()),
            SYNC_GROUP => Job::SyncGroup(group()),
            TIMER_EXCEPTION => Job::Timer(Timer::ExceptionExpiry, group()),
            TIMER_VERIFY => Job::Timer(Timer::Verify, group()),
            TIMER_ESCALATION => Job::Timer(Timer::Escalation, group()),
            TIMER_SLA => Job::Timer(Timer::Sla, group()),
            HANDOFFS => Job::Handoffs,
            HANDOFF => Job::Handoff(group()),
            DIGEST => Job::Digest,
            ENSURE_LABELS => Job::EnsureLabels(subject.to_string()),
            SYNC => Job::Sync,
            REDELIVER => Job::Redeliver,
            PRUNE => Job::Prune,
            NOISE_SUMMARY => Job::NoiseSummary(subject.to_string()),
            RECONCILE => Job::Reconcile,
            REPO_ACCESS => Job::RepoAccess(subject.to_string()),
            ENFORCEMENT => Job::Enforcement,
            PROMOTE => Job::Promote(group()),
            SETTLE => Job::Settle(group()),
            TAG_AUDIT => Job::TagAudit,
            _ => Job::Unknown {
                kind: kind.to_string(),
                subject: subject.to_string(),
            },
        }
    }

    /// Jobs that schedule their own next run (`sync`, `handoffs`, `digest`, `redeliver`,
    /// `reconcile`, `prune`, `enforcement`, `tag-audit`).
    pub fn is_periodic(&self) -> bool {
        matches!(
            self,
            Job::Sync
                | Job::Handoffs
                | Job::Digest
                | Job::Redeliver
                | Job::Reconcile
                | Job::Enforcement
                | Job::TagAudit
        )
    }

    /// The group the job works on, when it works on one (for audit entries).
    pub fn group(&self) -> Option<&GroupKey> {
        match self {
            Job::OpenIssue(g)
            | Job::NotifyFindings(g)
            | Job::ApplyEffects(g)
            | Job::SyncGroup(g)
            | Job::Timer(_, g)
            | Job::Handoff(g)
            | Job::Promote(g)
            | Job::Settle(g) => Some(g),
            _ => None,
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.subject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_kind_round_trips_and_unknown_kinds_are_kept() {
        let g = GroupKey("S3.1|arn:aws:s3:::b|111122223333|eu-west-1".into());
        let jobs = [
            Job::OpenIssue(g.clone()),
            Job::NotifyFindings(g.clone()),
            Job::GithubEvent(DeliveryId("github:abc".into())),
            Job::ApplyEffects(g.clone()),
            Job::SyncGroup(g.clone()),
            Job::Timer(Timer::ExceptionExpiry, g.clone()),
            Job::Timer(Timer::Verify, g.clone()),
            Job::Timer(Timer::Escalation, g.clone()),
            Job::Timer(Timer::Sla, g.clone()),
            Job::Handoffs,
            Job::Handoff(g.clone()),
            Job::Digest,
            Job::EnsureLabels("acme/web".into()),
            Job::Sync,
            Job::Redeliver,
            Job::Prune,
            Job::NoiseSummary("acme/web".into()),
            Job::Reconcile,
            Job::RepoAccess("acme/web".into()),
            Job::Enforcement,
            Job::Promote(g.clone()),
            Job::Settle(g.clone()),
            Job::TagAudit,
        ];
        assert_eq!(
            jobs.len(),
            KNOWN_KINDS.len(),
            "a kind without a round-trip row"
        );
        for job in jobs {
            assert!(KNOWN_KINDS.contains(&job.kind()), "{job}");
            assert_eq!(Job::from_parts(job.kind(), job.subject()), job);
        }
        let future = Job::from_parts("reconcile-issues", "acme/web");
        assert_eq!(
            future,
            Job::Unknown {
                kind: "reconcile-issues".into(),
                subject: "acme/web".into()
            }
        );
        assert_eq!(
            (future.kind(), future.subject()),
            ("reconcile-issues", "acme/web")
        );
        assert!(!KNOWN_KINDS.contains(&future.kind()));
    }
}
