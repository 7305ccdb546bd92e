//! `[escalation]`, `[sla]` and `[digest]`: who must acknowledge an issue, by when, who takes
//! over when nobody does, when it must be fixed, and the weekly summary.
//!
//! ```toml
//! [escalation]
//! calendar = "eu-office"                  # for deadlines counted in working time
//! backup = ["@rotation:payments-backup"]  # level 1: takes over an unacknowledged issue
//! security = ["@rotation:security"]       # level 2 (default: github.fallback_assignees)
//! follow_handoffs = "unacknowledged"      # or "all" / "never"
//! [escalation.acknowledge]                # per severity; absent = no deadline
//! critical = "4h"
//! high = "8h working"                     # 8 h of the calendar's working time
//! [escalation.accounts.111111111111]      # per-account overrides
//! backup = ["@carol"]
//! acknowledge = { critical = "1h" }
//!
//! [sla]
//! reminder = "2d"                          # comment this long before the due date
//! [sla.default]                            # fix deadlines per severity...
//! critical = "14d"
//! [sla.production]                         # ...per environment (overrides the default)
//! critical = "7d"
//!
//! [digest]
//! every = "1w"                             # or "off"
//! start = "2026-11-02T09:00:00Z"           # the first digest; then every `every`
//! repo = "acme/security"                   # default: github.fallback_repo
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use toml::de::DeValue;

use super::settings::{is_login, unknown_rotation};
use super::spanned::{Diag, Table, as_table, type_name};
use super::{Assignee, RepoName, parse_duration};
use crate::domain::Severity;
use crate::domain::calendar::Calendar;
use crate::domain::oncall::Rotation;

/// A deadline: calendar time, or working time of a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub after: Duration,
    pub working_time: bool,
}

/// What happens to an open issue that is not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FollowHandoffs {
    /// Unacknowledged issues follow the new person on call (the default).
    Unacknowledged,
    /// Every open issue follows the new person on call.
    All,
    /// Issues stay with the person who got them.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationPolicy {
    pub acknowledge: BTreeMap<Severity, Deadline>,
    pub backup: Vec<Assignee>,
    /// `None`: the `[github] fallback_assignees`.
    pub security: Option<Vec<Assignee>>,
    pub calendar: Option<String>,
    pub follow_handoffs: FollowHandoffs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaSettings {
    pub reminder: Duration,
    /// Environment (`default` for all others) → severity → time to fix.
    pub fix: BTreeMap<String, BTreeMap<Severity, Duration>>,
}

impl SlaSettings {
    /// How long a finding of `severity` in `environment` may take to fix.
    pub fn fix_within(&self, environment: &str, severity: Severity) -> Option<Duration> {
        self.fix
            .get(environment)
            .and_then(|m| m.get(&severity))
            .or_else(|| self.fix.get("default").and_then(|m| m.get(&severity)))
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSettings {
    pub every: Option<Duration>,
    pub start: DateTime<Utc>,
    /// `None`: the `[github] fallback_repo`.
    pub repo: Option<RepoName>,
}

impl DigestSettings {
    /// The first digest instant strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let every = self.every?;
        if now < self.start {
            return Some(self.start);
        }
        let n = (now - self.start).num_seconds() / every.num_seconds().max(1) + 1;
        Some(self.start + Duration::seconds(every.num_seconds() * n))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationSettings {
    pub default: EscalationPolicy,
    /// Per-account policies (the default with the account's overrides applied).
    pub accounts: BTreeMap<String, EscalationPolicy>,
    pub sla: SlaSettings,
    pub digest: DigestSettings,
}

impl EscalationSettings {
    pub fn policy(&self, account: &str) -> &EscalationPolicy {
        self.accounts.get(account).unwrap_or(&self.default)
    }
}

impl Default for EscalationSettings {
    fn default() -> Self {
        let d = |days| Duration::days(days);
        EscalationSettings {
            default: EscalationPolicy {
                acknowledge: [
                    (
                        Severity::Critical,
                        Deadline {
                            after: Duration::hours(4),
                            working_time: false,
                        },
                    ),
                    (
                        Severity::High,
                        Deadline {
                            after: Duration::hours(24),
                            working_time: false,
                        },
                    ),
                ]
                .into_iter()
                .collect(),
                backup: Vec::new(),
                security: None,
                calendar: None,
                follow_handoffs: FollowHandoffs::Unacknowledged,
            },
            accounts: BTreeMap::new(),
            sla: SlaSettings {
                reminder: d(2),
                fix: [(
                    "default".to_string(),
                    [
                        (Severity::Critical, d(7)),
                        (Severity::High, d(30)),
                        (Severity::Medium, d(90)),
                        (Severity::Low, d(180)),
                    ]
                    .into_iter()
                    .collect(),
                )]
                .into_iter()
                .collect(),
            },
            digest: DigestSettings {
                every: Some(Duration::weeks(1)),
                // A Monday morning; the first digest is the next Monday 09:00 UTC after start-up.
                start: DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
                repo: None,
            },
        }
    }
}

fn deadline(d: &mut Diag, path: &str, v: &super::spanned::Value) -> Option<Deadline> {
    let DeValue::String(s) = v.get_ref() else {
        d.error(
            v.span(),
            format!(
                "{path} must be a duration such as \"4h\" or \"8h working\", found {}",
                type_name(v.get_ref())
            ),
        );
        return None;
    };
    let mut words = s.split_whitespace();
    let amount = words.next().unwrap_or("");
    let working_time = match words.next() {
        None => false,
        Some("working") if words.next().is_none() => true,
        Some(_) => {
            d.error(
                v.span(),
                format!("{path}: {s:?} is not a duration such as \"4h\" or \"8h working\""),
            );
            return None;
        }
    };
    positive_duration(d, path, v, amount).map(|after| Deadline {
        after,
        working_time,
    })
}

/// `text` as a duration longer than zero; otherwise an error at `v`, named by `path`.
fn positive_duration(
    d: &mut Diag,
    path: &str,
    v: &super::spanned::Value,
    text: &str,
) -> Option<Duration> {
    match parse_duration(text) {
        Ok(x) if x > Duration::zero() => Some(x),
        Ok(_) => {
            d.error(v.span(), format!("{path} must be longer than zero"));
            None
        }
        Err(e) => {
            d.error(v.span(), format!("{path}: {e}"));
            None
        }
    }
}

fn severity_map<T>(
    d: &mut Diag,
    path: &str,
    v: &super::spanned::Value,
    mut item: impl FnMut(&mut Diag, &str, &super::spanned::Value) -> Option<T>,
) -> BTreeMap<Severity, T> {
    let mut out = BTreeMap::new();
    if let Some(mut t) = as_table(d, path.to_string(), v) {
        for (k, val) in t.entries() {
            let name = k.get_ref().to_string();
            match name.parse::<Severity>() {
                Ok(sev) => {
                    if let Some(x) = item(d, &format!("{path}.{name}"), val) {
                        out.insert(sev, x);
                    }
                }
                Err(e) => d.error(k.span(), format!("{path}: {e}")),
            }
        }
        t.finish(d);
    }
    out
}

fn assignees(
    d: &mut Diag,
    t: &mut Table,
    key: &str,
    rotations: &BTreeMap<String, Rotation>,
) -> Option<Vec<Assignee>> {
    let list = t.string_list(d, key)?;
    let mut out = Vec::new();
    for s in list {
        let raw = s.get_ref();
        let parsed: Result<Assignee, String> = match raw.strip_prefix('@') {
            Some(r) => match r.strip_prefix("rotation:") {
                Some(name) if rotations.contains_key(name) => {
                    Ok(Assignee::Rotation(name.to_string()))
                }
                Some(name) => Err(unknown_rotation(name, rotations)),
                None if is_login(r) => Ok(Assignee::User(r.to_string())),
                None => Err(format!("{raw:?} is not a valid GitHub login")),
            },
            None => Err(format!(
                "{raw:?} must start with @ (@user or @rotation:NAME)"
            )),
        };
        match parsed {
            Ok(a) => out.push(a),
            Err(e) => d.error(s.span(), format!("{}.{key}: {e}", t.path)),
        }
    }
    Some(out)
}

fn policy(
    d: &mut Diag,
    t: &mut Table,
    base: &EscalationPolicy,
    rotations: &BTreeMap<String, Rotation>,
    calendars: &BTreeMap<String, Calendar>,
) -> EscalationPolicy {
    let mut p = base.clone();
    if let Some(v) = t.get("acknowledge") {
        let path = format!("{}.acknowledge", t.path);
        let overrides = severity_map(d, &path, v, deadline);
        if t.path == "escalation" {
            p.acknowledge = overrides;
        } else {
            p.acknowledge.extend(overrides);
        }
    }
    if let Some(b) = assignees(d, t, "backup", rotations) {
        p.backup = b;
    }
    if let Some(s) = assignees(d, t, "security", rotations) {
        p.security = Some(s);
    }
    if let Some(c) = t.string(d, "calendar") {
        if calendars.contains_key(c.get_ref()) {
            p.calendar = Some(c.into_inner());
        } else {
            let known: Vec<&str> = calendars.keys().map(String::as_str).collect();
            d.error(
                c.span(),
                format!(
                    "{}.calendar: unknown calendar {:?} (defined: {})",
                    t.path,
                    c.get_ref(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }
    if let Some(f) = t.string(d, "follow_handoffs") {
        p.follow_handoffs = match f.get_ref().as_str() {
            "unacknowledged" => FollowHandoffs::Unacknowledged,
            "all" => FollowHandoffs::All,
            "never" => FollowHandoffs::Never,
            other => {
                d.error(
                    f.span(),
                    format!(
                        "{}.follow_handoffs: {other:?} is not unacknowledged, all or never",
                        t.path
                    ),
                );
                p.follow_handoffs
            }
        };
    }
    if p.acknowledge.values().any(|dl| dl.working_time) && p.calendar.is_none() {
        d.error(
            t.span.clone(),
            format!(
                "{}: a deadline counts working time, so a calendar is needed (calendar = \"NAME\")",
                t.path
            ),
        );
    }
    p
}

pub(super) fn parse(
    d: &mut Diag,
    root: &mut Table,
    rotations: &BTreeMap<String, Rotation>,
    calendars: &BTreeMap<String, Calendar>,
) -> EscalationSettings {
    let mut out = EscalationSettings::default();
    if let Some(mut t) = root.table(d, "escalation") {
        let default = policy(d, &mut t, &out.default, rotations, calendars);
        if let Some(mut accounts) = t.table(d, "accounts") {
            for (k, v) in accounts.entries() {
                let id = k.get_ref().to_string();
                if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                    d.error(
                        k.span(),
                        format!("escalation.accounts: account id {id:?} must be 12 digits"),
                    );
                }
                if let Some(mut at) = as_table(d, format!("escalation.accounts.{id}"), v) {
                    let p = policy(d, &mut at, &default, rotations, calendars);
                    at.finish(d);
                    out.accounts.insert(id, p);
                }
            }
            accounts.finish(d);
        }
        out.default = default;
        t.finish(d);
    }
    if let Some(mut t) = root.table(d, "sla") {
        if let Some(s) = t.string(d, "reminder") {
            match parse_duration(s.get_ref()) {
                Ok(r) => out.sla.reminder = r,
                Err(e) => d.error(s.span(), format!("sla.reminder: {e}")),
            }
        }
        for (k, v) in t.entries() {
            let env = k.get_ref().to_string();
            if env == "reminder" {
                continue;
            }
            let fix = severity_map(d, &format!("sla.{env}"), v, |d, path, v| {
                match v.get_ref() {
                    DeValue::String(s) => positive_duration(d, path, v, s),
                    other => {
                        d.error(
                            v.span(),
                            format!(
                                "{path} must be a duration such as \"30d\", found {}",
                                type_name(other)
                            ),
                        );
                        None
                    }
                }
            });
            out.sla.fix.insert(env, fix);
        }
        t.finish(d);
    }
    if let Some(mut t) = root.table(d, "digest") {
        if let Some(s) = t.string(d, "every") {
            match s.get_ref().trim() {
                "off" | "never" => out.digest.every = None,
                text => match parse_duration(text) {
                    Ok(v) if v >= Duration::hours(1) => out.digest.every = Some(v),
                    Ok(_) => d.error(s.span(), "digest.every must be at least 1h (or \"off\")"),
                    Err(e) => d.error(s.span(), format!("digest.every: {e}")),
                },
            }
        }
        if let Some(s) = t.string_or_datetime(d, "start") {
            match DateTime::parse_from_rfc3339(s.get_ref()) {
                Ok(v) => out.digest.start = v.with_timezone(&Utc),
                Err(e) => d.error(
                    s.span(),
                    format!(
                        "digest.start: {:?} is not an RFC 3339 instant ({e})",
                        s.get_ref()
                    ),
                ),
            }
        }
        if let Some(s) = t.string(d, "repo") {
            match RepoName::parse(s.get_ref()) {
                Ok(r) => out.digest.repo = Some(r),
                Err(e) => d.error(s.span(), format!("digest.repo: {e}")),
            }
        }
        t.finish(d);
    }
    out
}
