//! Policy: does a finding deserve an issue, and is an update news? Pure functions with reasons.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

use crate::config::{AccountPolicy, Config, IgnoreTags, Mode, PolicySettings};
use crate::domain::{
    ComplianceStatus, Finding, LeverWrite, RecordState, WorkflowStatus, string_codes,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Decision {
    /// A finding with no issue yet opens one.
    Ticket,
    /// A finding with no issue yet does not open one.
    Skip,
}

/// Stable reason codes, printed by `lever plan` and recorded in the audit trail (and the
/// `reason` label of `lever_findings_skipped_total`, every value listed up front).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display, EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum Reason {
    Ticket,
    AccountOff,
    Archived,
    Passed,
    NotAvailable,
    Suppressed,
    BelowThreshold,
    Ignored,
    /// An `[[exclusions.rules]]` entry matches; the detail gives its reason.
    Excluded,
    /// The built-in exclusion: a resource AWS Control Tower manages.
    ControlTower,
    /// A settle delay (`[settle]`) is running: the issue opens when it ends, if the finding
    /// still counts.
    Settling,
}

string_codes!(Decision, Reason);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: Reason,
    /// Human explanation, naming the values that decided.
    pub detail: String,
}

fn skip(reason: Reason, detail: String) -> Verdict {
    Verdict {
        decision: Decision::Skip,
        reason,
        detail,
    }
}

/// What the ignore tag on a finding's resources means in its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreTag {
    /// Not tagged.
    Absent,
    /// Tagged without a reason: never honoured.
    NoReason,
    /// Honoured: no issue opens (ramp-up, or `ignore_tags = "always"`).
    Honoured { reason: String },
    /// Not honoured outside ramp-up (`ignore_tags = "ramp-up"`): the finding is tracked like any
    /// other, and the tag is reported on its issue; only an approved exception stops tracking.
    Reported { reason: String },
    /// Not read at all (`ignore_tags = "never"`).
    Disregarded,
}

/// The reason `tags` give under `key`: `None` untagged, `Some("")` tagged with a blank value
/// (no reason), else the trimmed reason. Pure.
pub fn tag_reason(tags: &BTreeMap<String, String>, key: &str) -> Option<String> {
    tags.get(key).map(|v| v.trim().to_string())
}

/// What `policy.ignore_tag` on any of `f`'s resources means in `account`: the first resource
/// (in the finding's order) whose tag has a reason gives the reason; a tag with a blank value
/// on every tagged resource is [`IgnoreTag::NoReason`]. Pure.
pub fn ignore_tag(f: &Finding, account: &AccountPolicy, policy: &PolicySettings) -> IgnoreTag {
    let reasons: Vec<String> = f
        .resources
        .iter()
        .filter_map(|r| tag_reason(&r.tags, &policy.ignore_tag))
        .collect();
    if reasons.is_empty() {
        return IgnoreTag::Absent;
    }
    if account.ignore_tags == IgnoreTags::Never {
        return IgnoreTag::Disregarded;
    }
    let Some(reason) = reasons.into_iter().find(|r| !r.is_empty()) else {
        return IgnoreTag::NoReason;
    };
    match (account.ignore_tags, account.mode) {
        (IgnoreTags::Always, _) | (IgnoreTags::RampUp, Mode::RampUp) => {
            IgnoreTag::Honoured { reason }
        }
        _ => IgnoreTag::Reported { reason },
    }
}

/// Resources of `findings` (failing ones, any of their resources) whose ignore tag, with a
/// reason, is [`IgnoreTag::Reported`] in their account, with the tag as written (`key=reason`):
/// what an issue says about ignore tags that do not stop it. Pure.
pub fn reported_ignore_tags(
    findings: &[Finding],
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, String> {
    let tag = &config.settings.policy.ignore_tag;
    let mut out = BTreeMap::new();
    for f in findings
        .iter()
        .filter(|f| crate::domain::lifecycle::is_failing(f))
    {
        if !matches!(
            ignore_tag(
                f,
                &config.account_at(&f.account_id, now),
                &config.settings.policy
            ),
            IgnoreTag::Reported { .. }
        ) {
            continue;
        }
        for r in &f.resources {
            if let Some(reason) = tag_reason(&r.tags, tag).filter(|r| !r.is_empty()) {
                out.insert(r.id.clone(), format!("{tag}={reason}"));
            }
        }
    }
    out
}

/// Resources of `findings` taken off an issue by an ignore tag their account honours, with the
/// tag as written (`key=reason`, untrusted), by the rule [`decide`] applies to a new finding: a
/// failing finding whose ignore tag ([`ignore_tag`], any of its resources) is
/// [`IgnoreTag::Honoured`] ignores every resource it names (the tag's own resource first named
/// as such: `key=reason (on ARN)` for the others), unless another failing finding that is not
/// ignored names the resource too. Pure.
pub fn honoured_ignore_tags(
    findings: &[Finding],
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, String> {
    let tag = &config.settings.policy.ignore_tag;
    let mut ignored: BTreeMap<String, String> = BTreeMap::new();
    let mut kept = std::collections::BTreeSet::new();
    for f in findings
        .iter()
        .filter(|f| crate::domain::lifecycle::is_failing(f))
    {
        let account = config.account_at(&f.account_id, now);
        match ignore_tag(f, &account, &config.settings.policy) {
            IgnoreTag::Honoured { reason } => {
                let carrier = f
                    .resources
                    .iter()
                    .find(|r| tag_reason(&r.tags, tag).as_deref() == Some(reason.as_str()))
                    .map(|r| r.id.clone())
                    .unwrap_or_default();
                for r in &f.resources {
                    let text = if r.id == carrier {
                        format!("{tag}={reason}")
                    } else {
                        format!("{tag}={reason} (on {carrier})")
                    };
                    ignored.entry(r.id.clone()).or_insert(text);
                }
            }
            _ => kept.extend(f.resources.iter().map(|r| r.id.clone())),
        }
    }
    ignored.retain(|r, _| !kept.contains(r));
    ignored
}

/// Whether a finding with no issue yet opens one in `account`.
///
/// Checks, in order: account mode `off`; `RecordState` ARCHIVED; `Compliance.Status` PASSED or
/// NOT_AVAILABLE; workflow SUPPRESSED; severity below the account minimum; an ignore tag with a
/// reason on any resource of the finding, where the account honours it ([`ignore_tag`]). Otherwise:
/// ticket.
pub fn decide(f: &Finding, account: &AccountPolicy, policy: &PolicySettings) -> Verdict {
    let who = match &account.name {
        Some(n) => format!("account {} ({n})", f.account_id),
        None => format!("account {} (not configured, defaults apply)", f.account_id),
    };
    if account.mode == Mode::Off {
        return skip(Reason::AccountOff, format!("{who} has mode off"));
    }
    if f.record_state == RecordState::Archived {
        return skip(Reason::Archived, "record state is ARCHIVED".into());
    }
    match f.compliance {
        Some(ComplianceStatus::Passed) => {
            return skip(Reason::Passed, "compliance status is PASSED".into());
        }
        Some(ComplianceStatus::NotAvailable) => {
            return skip(
                Reason::NotAvailable,
                "compliance status is NOT_AVAILABLE".into(),
            );
        }
        _ => {}
    }
    if f.workflow == WorkflowStatus::Suppressed {
        return skip(Reason::Suppressed, "workflow status is SUPPRESSED".into());
    }
    if f.severity < account.min_severity {
        return skip(
            Reason::BelowThreshold,
            format!(
                "severity {} is below the minimum {} of {who}",
                f.severity, account.min_severity
            ),
        );
    }
    let tag = ignore_tag(f, account, policy);
    if let IgnoreTag::Honoured { reason } = &tag {
        return skip(
            Reason::Ignored,
            format!("resource is tagged {}={reason:?}", policy.ignore_tag),
        );
    }
    let mut detail = format!(
        "severity {} meets the minimum {} of {who}",
        f.severity, account.min_severity
    );
    if account.mode == Mode::RampUp {
        detail.push_str("; ramp-up: the issue is informational");
    }
    match tag {
        IgnoreTag::NoReason => detail.push_str(&format!(
            "; tag {} has no reason, so it is not honoured",
            policy.ignore_tag
        )),
        IgnoreTag::Reported { reason } => detail.push_str(&format!(
            "; tag {}={reason:?} is honoured only in ramp-up (ignore_tags = \"ramp-up\"): \
             an exception is the way not to fix it",
            policy.ignore_tag
        )),
        IgnoreTag::Disregarded => detail.push_str(&format!(
            "; tag {} is not read in this account (ignore_tags = \"never\")",
            policy.ignore_tag
        )),
        IgnoreTag::Absent | IgnoreTag::Honoured { .. } => {}
    }
    Verdict {
        decision: Decision::Ticket,
        reason: Reason::Ticket,
        detail,
    }
}

/// [`decide`] for the account as it is at `now` (its ramp-up dates applied), then the
/// exclusions (`[exclusions]`): a finding that would otherwise open an issue, or be skipped
/// for any reason but the account's mode `off`, is `excluded` or `control-tower` when an
/// exclusion matches. Pure.
pub fn decide_at(f: &Finding, config: &Config, now: chrono::DateTime<chrono::Utc>) -> Verdict {
    let verdict = decide(
        f,
        &config.account_at(&f.account_id, now),
        &config.settings.policy,
    );
    if verdict.reason == Reason::AccountOff {
        return verdict;
    }
    exclusions::excluded(f, &config.settings.exclusions).unwrap_or(verdict)
}

/// What an incoming finding is, compared with the last snapshot Lever stored for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Never seen before.
    New,
    /// `UpdatedAt`, severity, compliance, record state and resources unchanged: nothing to do.
    Repeat,
    /// Lever's own BatchUpdateFindings coming back: only the workflow and note changed, to a
    /// workflow and note Lever itself wrote (and recorded) for this finding.
    OwnEcho,
    /// Only `UpdatedAt` (or observation times) moved: store it, but it is not news for GitHub.
    Refreshed,
    /// Something that matters changed (severity, compliance, record state, resources, or the
    /// workflow or note changed by someone other than Lever).
    Changed,
    /// Older than the snapshot Lever holds (`UpdatedAt` before the recorded one): EventBridge
    /// delivered it late or out of order. It never changes state.
    Stale,
}

impl Change {
    /// Whether the change may lead to a GitHub call.
    pub fn is_news(self) -> bool {
        matches!(self, Change::New | Change::Changed)
    }
}

/// Hash of what makes an update news: severity, compliance, record state and resources
/// (ids and tags, order-insensitive).
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    h.update(f.severity.as_str());
    h.update([0]);
    h.update(f.compliance.map(|c| c.as_str()).unwrap_or("-"));
    h.update([0]);
    h.update(f.record_state.as_str());
    h.update([0]);
    let mut resources: Vec<String> = f
        .resources
        .iter()
        .map(|r| {
            let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}\u{1}{}", r.id, tags.join("\u{2}"))
        })
        .collect();
    resources.sort();
    for r in resources {
        h.update(r.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The previous snapshot, as far as [`classify`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub updated_at: Option<&'a str>,
    pub fingerprint: &'a str,
    pub workflow: WorkflowStatus,
    pub note_text: Option<&'a str>,
    /// What Lever itself wrote to this finding (BatchUpdateFindings), as recorded when it wrote.
    pub lever_writes: &'a [LeverWrite],
}

/// Whether `a` is an earlier ASFF timestamp than `b`; `None` when either cannot be read (then
/// the order is unknown and nothing is judged by it).
pub fn earlier(a: Option<&str>, b: Option<&str>) -> Option<bool> {
    let parse = |s: Option<&str>| {
        chrono::DateTime::parse_from_rfc3339(s?.trim())
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    Some(parse(a)? < parse(b)?)
}

/// Classifies an incoming finding against its previous snapshot. `updated_by` is Lever's own
/// `Note.UpdatedBy`.
///
/// In order: no snapshot is `New`; an `UpdatedAt` before the snapshot's is `Stale` (late or
/// reordered, never applied); a different fingerprint is `Changed`; a different workflow or note
/// is `OwnEcho` only when it is exactly what Lever wrote and recorded (`UpdatedBy`, workflow
/// and note text), `Changed` when anyone else wrote a note (a matching `UpdatedBy` proves
/// nothing), and judged by `UpdatedAt` alone without a note (an event from before Lever's note);
/// then `Repeat` or `Refreshed` by `UpdatedAt`.
pub fn classify(prev: Option<Previous<'_>>, f: &Finding, updated_by: &str) -> Change {
    let Some(prev) = prev else {
        return Change::New;
    };
    if earlier(f.updated_at.as_deref(), prev.updated_at) == Some(true) {
        return Change::Stale;
    }
    if fingerprint(f) != prev.fingerprint {
        return Change::Changed;
    }
    let workflow_or_note_changed =
        f.workflow != prev.workflow || f.note.as_ref().map(|n| n.text.as_str()) != prev.note_text;
    if workflow_or_note_changed {
        match &f.note {
            // Lever's own BatchUpdateFindings coming back: what it wrote, as it recorded it.
            // Security Hub v2 keeps no `UpdatedBy`: an OCSF finding is Lever's echo by the
            // status and comment Lever wrote and recorded alone.
            Some(n)
                if (n.updated_by == updated_by || f.is_ocsf())
                    && prev
                        .lever_writes
                        .iter()
                        .any(|w| w.workflow == f.workflow && w.note == n.text) =>
            {
                return Change::OwnEcho;
            }
            // Someone else changed the workflow or the note (console, another tool), whatever
            // `UpdatedBy` they wrote.
            Some(_) => return Change::Changed,
            // Security Hub v2 (OCSF): Lever always writes a comment with its status, so a
            // status changed without a comment is someone else's change, not a replay of
            // Lever's write. V2 status updates keep `modified_time`, so it cannot be told from
            // an older event by time either.
            None if f.is_ocsf() => return Change::Changed,
            // No note at all: an event older than the note Lever wrote (EventBridge redelivers
            // and reorders events). What matters is unchanged; judge by `UpdatedAt` alone.
            None => {}
        }
    }
    if f.updated_at.as_deref() == prev.updated_at {
        Change::Repeat
    } else {
        Change::Refreshed
    }
}

pub mod exclusions;
pub mod settle;

#[cfg(test)]
mod tests;
