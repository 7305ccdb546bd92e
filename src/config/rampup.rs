//! The ramp-up schedule of an account: when it leaves ramp-up (`enforce_from`) and how its
//! minimum severity widens over time (`min_severity_from`).
//!
//! ```toml
//! [accounts.111111111111]
//! mode = "ramp-up"
//! enforce_from = "2027-01-04"                 # ramp-up until then, enforce from that day on
//! min_severity = "CRITICAL"
//! min_severity_from = { "2027-02-01" = "HIGH", "2027-04-01" = "MEDIUM" }
//! ```
//!
//! A date starts at 00:00 UTC. Steps only widen (each step's severity is below the one before
//! it, starting from `min_severity`). `enforce_from` needs `mode = "ramp-up"`. An account that
//! sets neither `mode` nor `min_severity` inherits the schedule of `[defaults]` for it:
//! `enforce_from` goes with `mode`, `min_severity_from` with `min_severity`.
//!
//! What an account is at an instant is [`AccountPolicy::at`], a pure function.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use toml::de::DeValue;

use super::spanned::{Diag, Table, type_name};
use super::{AccountPolicy, Mode};
use crate::domain::Severity;

/// When an account's mode and minimum severity change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RampSchedule {
    /// From this day (00:00 UTC) a `ramp-up` account is in `enforce` mode.
    pub enforce_from: Option<NaiveDate>,
    /// From each day (00:00 UTC) on, the account's minimum severity (widening only).
    pub min_severity_from: BTreeMap<NaiveDate, Severity>,
}

/// The instant a schedule's date starts: 00:00 UTC.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

impl RampSchedule {
    pub fn is_empty(&self) -> bool {
        self.enforce_from.is_none() && self.min_severity_from.is_empty()
    }

    /// Every instant at which the schedule changes something, in order.
    pub fn dates(&self) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = self
            .enforce_from
            .iter()
            .chain(self.min_severity_from.keys())
            .map(|d| day_start(*d))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl AccountPolicy {
    /// The account as it is at `now`: its mode (`enforce` from `enforce_from` on, for a
    /// `ramp-up` account) and its minimum severity (the latest step on or before `now`). Pure.
    pub fn at(&self, now: DateTime<Utc>) -> AccountPolicy {
        let mut out = self.clone();
        if self.mode == Mode::RampUp
            && let Some(d) = self.schedule.enforce_from
            && day_start(d) <= now
        {
            out.mode = Mode::Enforce;
        }
        if let Some((_, sev)) = self
            .schedule
            .min_severity_from
            .iter()
            .rev()
            .find(|(d, _)| day_start(**d) <= now)
        {
            out.min_severity = *sev;
        }
        out
    }

    /// The instants strictly after `now` at which this account changes. Pure.
    pub fn changes_after(&self, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.schedule
            .dates()
            .into_iter()
            .filter(|t| *t > now)
            .collect()
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Reads `enforce_from` and `min_severity_from` of an account table (or `[defaults]`).
/// `inherited` is the schedule of `[defaults]`, used for the parts the account does not set
/// (see the module doc); `sets_mode` and `sets_min` say whether the table sets them.
pub(super) fn parse(
    d: &mut Diag,
    t: &mut Table,
    mode: Mode,
    min_severity: Severity,
    inherited: Option<(&RampSchedule, bool, bool)>,
) -> RampSchedule {
    let mut out = RampSchedule::default();
    if let Some((defaults, sets_mode, sets_min)) = inherited {
        if !sets_mode {
            out.enforce_from = defaults.enforce_from;
        }
        if !sets_min {
            out.min_severity_from = defaults.min_severity_from.clone();
        }
    }
    if let Some(s) = t.string_or_datetime(d, "enforce_from") {
        match parse_date(s.get_ref()) {
            Some(date) if mode == Mode::RampUp => out.enforce_from = Some(date),
            Some(_) => d.error(
                s.span(),
                format!(
                    "{}.enforce_from needs mode = \"ramp-up\" (the mode is {mode})",
                    t.path
                ),
            ),
            None => d.error(
                s.span(),
                format!(
                    "{}.enforce_from: {:?} is not a date such as 2027-01-04",
                    t.path,
                    s.get_ref()
                ),
            ),
        }
    }
    if let Some(v) = t.get("min_severity_from") {
        out.min_severity_from.clear();
        let key = format!("{}.min_severity_from", t.path);
        match v.get_ref() {
            DeValue::Table(steps) => {
                let mut read: Vec<(NaiveDate, Severity, std::ops::Range<usize>)> = Vec::new();
                for (k, sv) in steps.iter() {
                    let date = parse_date(k.get_ref());
                    if date.is_none() {
                        d.error(
                            k.span(),
                            format!(
                                "{key}: {:?} is not a date such as 2027-02-01",
                                k.get_ref().as_ref()
                            ),
                        );
                    }
                    let sev = match sv.get_ref() {
                        DeValue::String(s) => match s.parse::<Severity>() {
                            Ok(sev) => Some(sev),
                            Err(e) => {
                                d.error(sv.span(), format!("{key}.{}: {e}", k.get_ref().as_ref()));
                                None
                            }
                        },
                        other => {
                            d.error(
                                sv.span(),
                                format!(
                                    "{key}.{} must be a severity such as \"HIGH\", found {}",
                                    k.get_ref().as_ref(),
                                    type_name(other)
                                ),
                            );
                            None
                        }
                    };
                    if let (Some(date), Some(sev)) = (date, sev) {
                        read.push((date, sev, k.span()));
                    }
                }
                read.sort_by_key(|(date, _, _)| *date);
                let mut prev = (None, min_severity);
                for (date, sev, span) in read {
                    if sev >= prev.1 {
                        let since = match prev.0 {
                            Some(p) => format!("the step of {p}"),
                            None => "min_severity".to_string(),
                        };
                        d.error(
                            span,
                            format!(
                                "{key}: steps only widen, but {sev} from {date} is not below {} ({since})",
                                prev.1
                            ),
                        );
                    }
                    out.min_severity_from.insert(date, sev);
                    prev = (Some(date), sev);
                }
            }
            other => d.error(
                v.span(),
                format!(
                    "{key} must be a table of dates to severities such as {{ \"2027-02-01\" = \"HIGH\" }}, found {}",
                    type_name(other)
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn account(mode: Mode) -> AccountPolicy {
        AccountPolicy {
            id: Some("111111111111".into()),
            name: None,
            environment: "production".into(),
            min_severity: Severity::Critical,
            mode,
            ignore_tags: Default::default(),
            schedule: RampSchedule {
                enforce_from: Some(date("2027-01-04")),
                min_severity_from: [
                    (date("2027-02-01"), Severity::High),
                    (date("2027-04-01"), Severity::Medium),
                ]
                .into_iter()
                .collect(),
            },
        }
    }

    /// (mode as configured, instant) → (effective mode, effective minimum).
    #[test]
    #[rustfmt::skip]
    fn effective_policy_table() {
        let cases = [
            (Mode::RampUp, "2026-12-31T12:00:00Z", Mode::RampUp, Severity::Critical),
            (Mode::RampUp, "2027-01-03T23:59:59Z", Mode::RampUp, Severity::Critical),
            (Mode::RampUp, "2027-01-04T00:00:00Z", Mode::Enforce, Severity::Critical),
            (Mode::RampUp, "2027-01-31T23:59:59Z", Mode::Enforce, Severity::Critical),
            (Mode::RampUp, "2027-02-01T00:00:00Z", Mode::Enforce, Severity::High),
            (Mode::RampUp, "2027-03-15T08:00:00Z", Mode::Enforce, Severity::High),
            (Mode::RampUp, "2027-04-01T00:00:00Z", Mode::Enforce, Severity::Medium),
            (Mode::RampUp, "2030-01-01T00:00:00Z", Mode::Enforce, Severity::Medium),
            // An account switched off stays off; the threshold still follows its steps.
            (Mode::Off, "2027-02-02T00:00:00Z", Mode::Off, Severity::High),
            (Mode::Enforce, "2026-12-01T00:00:00Z", Mode::Enforce, Severity::Critical),
        ];
        for (mode, now, want_mode, want_min) in cases {
            let a = account(mode).at(at(now));
            assert_eq!((a.mode, a.min_severity), (want_mode, want_min), "{mode} at {now}");
        }
    }

    #[test]
    fn changes_after_lists_future_dates_only() {
        let a = account(Mode::RampUp);
        assert_eq!(
            a.changes_after(at("2027-01-04T00:00:00Z")),
            vec![at("2027-02-01T00:00:00Z"), at("2027-04-01T00:00:00Z")]
        );
        assert_eq!(a.changes_after(at("2026-01-01T00:00:00Z")).len(), 3);
        assert!(a.changes_after(at("2027-04-01T00:00:00Z")).is_empty());
    }
}
