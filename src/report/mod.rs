//! The report: where the security posture stands and how it moved over a period. One pure
//! [`compute`] (inputs and `now` as arguments) feeds `lever report`, the weekly digest and the
//! dashboard page, so they always show the same numbers; [`load`] reads its inputs from the
//! store.
//!
//! A *team* is the repository an issue lives in (OWNERS routes every finding to one), as in the
//! digest. An issue is *open* at an instant when its latest history row at or before that
//! instant is `open` or `acknowledged` (see `store::history`). Within the period
//! (`since`, `now`]:
//! - *opened*: a group entered an open state (a new issue, or a reopened one);
//! - *closed*: an open group left for `closed` or `suppressed` (an approved exception);
//! - *time to acknowledge*: from entering the open state to the first `acknowledged` row of that
//!   open spell, counted when the acknowledgement falls in the period;
//! - *time to fix*: from entering the open state to `closed` (not `suppressed`: an exception is
//!   not a fix), counted when the close falls in the period.
//!
//! Means and 90th percentiles (nearest rank) are in hours. The burn-down has one point per UTC
//! day from the day of `since` to the day of `now`: the issues open at the end of that day (at
//! `now` for today).

mod load;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::config::{AccountPolicy, Mode};
use crate::domain::Severity;
use crate::domain::tags::IgnoredResource;
use crate::store::{GroupRecord, GroupStatus, HistoryRow, HistoryState};

pub use load::load;
pub use render::{SEVERITIES, csv, markdown};

/// What [`compute`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `Store::group_history(since)`: rows ordered by group key, then `seq`.
    pub history: &'a [HistoryRow],
    /// The groups as they are now (deadlines, owners, exceptions).
    pub groups: &'a [GroupRecord],
    /// The tag audit's snapshot.
    pub ignore_tags: &'a [IgnoredResource],
    /// The configured accounts (`[accounts.ID]`).
    pub accounts: &'a [AccountPolicy],
}

/// The period and the knobs of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Exceptions expiring within this of `now` are listed (`[report] expiring`).
    pub expiring: Duration,
}

/// Issues by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BySeverity {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub informational: u32,
}

impl BySeverity {
    pub fn add(&mut self, s: Severity) {
        *self.slot(s) += 1;
    }

    fn slot(&mut self, s: Severity) -> &mut u32 {
        match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Informational => &mut self.informational,
        }
    }

    pub fn get(&self, s: Severity) -> u32 {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Informational => self.informational,
        }
    }

    pub fn total(&self) -> u32 {
        self.critical + self.high + self.medium + self.low + self.informational
    }
}

/// Mean and 90th percentile of durations, in hours (`None`: no sample).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timing {
    pub count: u32,
    pub mean_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

impl Timing {
    /// Pure: nearest-rank percentile, hours rounded to 0.01.
    pub fn of(samples: &[Duration]) -> Timing {
        if samples.is_empty() {
            return Timing::default();
        }
        let mut hours: Vec<f64> = samples
            .iter()
            .map(|d| d.num_seconds() as f64 / 3600.0)
            .collect();
        hours.sort_by(f64::total_cmp);
        let n = hours.len();
        let mean = hours.iter().sum::<f64>() / n as f64;
        let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
        let round = |h: f64| (h * 100.0).round() / 100.0;
        Timing {
            count: n as u32,
            mean_hours: Some(round(mean)),
            p90_hours: Some(round(hours[rank - 1])),
        }
    }
}

/// One team's line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TeamRow {
    /// `owner/repo`.
    pub team: String,
    pub open_now: BySeverity,
    pub open_at_start: BySeverity,
    pub opened: u32,
    pub closed: u32,
    /// Open now and past their fix deadline.
    pub overdue: u32,
    /// Open now and not acknowledged.
    pub not_acknowledged: u32,
    pub time_to_acknowledge: Timing,
    pub time_to_fix: Timing,
}

/// An open issue in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueLine {
    /// `owner/repo#N` (the repository alone while the issue is not created).
    pub issue: String,
    pub url: Option<String>,
    pub team: String,
    pub severity: Severity,
    pub owner: Option<String>,
    pub due: Option<DateTime<Utc>>,
    /// Escalation level: 0 the engineer on call, 1 the backup, 2 the security team.
    pub level: u8,
}

/// An exception about to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiringLine {
    pub issue: String,
    pub url: Option<String>,
    pub team: String,
    pub approver: String,
    pub expires_at: DateTime<Utc>,
}

/// Where an account stands on its ramp-up schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RampUpLine {
    pub account_id: String,
    pub name: Option<String>,
    pub environment: String,
    /// The mode and minimum severity now.
    pub mode: Mode,
    pub min_severity: Severity,
    /// The day the account leaves ramp-up, if scheduled.
    pub enforce_from: Option<NaiveDate>,
    /// The next scheduled change after `now`.
    pub next_change: Option<DateTime<Utc>>,
    /// Issues of the account open now.
    pub open_issues: u32,
    /// Resources of the account carrying the ignore tag (last tag audit).
    pub ignored_resources: u32,
}

/// An ignore tag seen (or its reason changed) in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagLine {
    pub arn: String,
    pub account_id: String,
    /// As written on the resource: untrusted text.
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// One burn-down point: open issues by severity at the end of `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BurnPoint {
    pub date: NaiveDate,
    pub open: BySeverity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub open_now: BySeverity,
    pub open_at_start: BySeverity,
    pub opened: u32,
    pub closed: u32,
    pub acknowledged_now: u32,
    pub overdue: u32,
    pub not_acknowledged: u32,
    pub time_to_acknowledge: Timing,
    pub time_to_fix: Timing,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub expiring_days: i64,
    pub totals: Totals,
    /// By team name.
    pub teams: Vec<TeamRow>,
    /// By due date.
    pub overdue: Vec<IssueLine>,
    /// By issue.
    pub not_acknowledged: Vec<IssueLine>,
    /// By expiry.
    pub expiring: Vec<ExpiringLine>,
    /// By account id.
    pub rampup: Vec<RampUpLine>,
    /// Newest first.
    pub ignore_tags: Vec<TagLine>,
    pub burndown: Vec<BurnPoint>,
}

/// The state of one group's rows at `t` (its latest row at or before `t`).
fn at_instant(rows: &[&HistoryRow], t: DateTime<Utc>) -> Option<HistoryRow> {
    rows.iter().rev().find(|r| r.at <= t).map(|r| (*r).clone())
}

fn link(g: &GroupRecord) -> String {
    match g.issue_number {
        Some(n) => format!("{}#{n}", g.repo),
        None => g.repo.clone(),
    }
}

fn issue_line(g: &GroupRecord) -> IssueLine {
    let s = g.state();
    IssueLine {
        issue: link(g),
        url: g.issue_url.clone(),
        team: g.repo.clone(),
        severity: g.data.severity,
        owner: s.assignee.clone(),
        due: s.due,
        level: s.level,
    }
}

/// Whether an open group is past its fix deadline at `now`.
pub fn is_overdue(g: &GroupRecord, now: DateTime<Utc>) -> bool {
    let s = g.state();
    s.overdue || s.due.is_some_and(|d| d <= now)
}

/// The report for `period` from `inputs`. Pure.
pub fn compute(inputs: Inputs<'_>, period: Period) -> Report {
    let Period {
        since,
        now,
        expiring,
    } = period;
    let mut by_group: BTreeMap<&str, Vec<&HistoryRow>> = BTreeMap::new();
    for r in inputs.history {
        by_group.entry(r.group_key.as_str()).or_default().push(r);
    }
    for rows in by_group.values_mut() {
        rows.sort_by_key(|r| (r.at, r.seq));
    }
    let mut teams: BTreeMap<String, TeamRow> = BTreeMap::new();
    fn row<'m>(teams: &'m mut BTreeMap<String, TeamRow>, name: &str) -> &'m mut TeamRow {
        teams.entry(name.to_string()).or_insert_with(|| TeamRow {
            team: name.to_string(),
            ..TeamRow::default()
        })
    }
    let mut tta: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut ttf: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut totals = Totals {
        open_now: BySeverity::default(),
        open_at_start: BySeverity::default(),
        opened: 0,
        closed: 0,
        acknowledged_now: 0,
        overdue: 0,
        not_acknowledged: 0,
        time_to_acknowledge: Timing::default(),
        time_to_fix: Timing::default(),
    };
    let mut open_by_account: BTreeMap<String, u32> = BTreeMap::new();
    for rows in by_group.values() {
        if let Some(r) = at_instant(rows, now).filter(|r| r.state.is_open()) {
            row(&mut teams, &r.repo).open_now.add(r.severity);
            totals.open_now.add(r.severity);
            if r.state == HistoryState::Acknowledged {
                totals.acknowledged_now += 1;
            }
            *open_by_account.entry(r.account_id.clone()).or_default() += 1;
        }
        if let Some(r) = at_instant(rows, since).filter(|r| r.state.is_open()) {
            row(&mut teams, &r.repo).open_at_start.add(r.severity);
            totals.open_at_start.add(r.severity);
        }
        // Walk the transitions.
        let mut opened_at: Option<DateTime<Utc>> = None;
        let mut acked = false;
        let mut was_open = false;
        for r in rows.iter().filter(|r| r.at <= now) {
            let in_period = r.at > since;
            let open = r.state.is_open();
            if open && !was_open {
                opened_at = Some(r.at);
                acked = false;
                if in_period {
                    row(&mut teams, &r.repo).opened += 1;
                    totals.opened += 1;
                }
            }
            if r.state == HistoryState::Acknowledged && !acked {
                acked = true;
                if let (Some(o), true) = (opened_at, in_period) {
                    tta.entry(r.repo.clone()).or_default().push(r.at - o);
                }
            }
            if !open && was_open {
                if in_period {
                    row(&mut teams, &r.repo).closed += 1;
                    totals.closed += 1;
                    if r.state == HistoryState::Closed
                        && let Some(o) = opened_at
                    {
                        ttf.entry(r.repo.clone()).or_default().push(r.at - o);
                    }
                }
                opened_at = None;
            }
            was_open = open;
        }
    }
    let all_tta: Vec<Duration> = tta.values().flatten().copied().collect();
    let all_ttf: Vec<Duration> = ttf.values().flatten().copied().collect();
    totals.time_to_acknowledge = Timing::of(&all_tta);
    totals.time_to_fix = Timing::of(&all_ttf);
    for (name, samples) in &tta {
        row(&mut teams, name).time_to_acknowledge = Timing::of(samples);
    }
    for (name, samples) in &ttf {
        row(&mut teams, name).time_to_fix = Timing::of(samples);
    }

    // Lists from the groups as they are now.
    let mut open_groups: Vec<&GroupRecord> = inputs
        .groups
        .iter()
        .filter(|g| g.status == GroupStatus::Open && g.issue_number.is_some())
        .collect();
    open_groups.sort_by_key(|g| link(g));
    let mut overdue: Vec<IssueLine> = Vec::new();
    let mut not_acknowledged: Vec<IssueLine> = Vec::new();
    for g in &open_groups {
        if is_overdue(g, now) {
            row(&mut teams, &g.repo).overdue += 1;
            overdue.push(issue_line(g));
        }
        if g.state().acknowledged.is_none() {
            row(&mut teams, &g.repo).not_acknowledged += 1;
            not_acknowledged.push(issue_line(g));
        }
    }
    overdue.sort_by(|a, b| (a.due, &a.issue).cmp(&(b.due, &b.issue)));
    totals.overdue = overdue.len() as u32;
    totals.not_acknowledged = not_acknowledged.len() as u32;

    let mut expiring_lines: Vec<ExpiringLine> = inputs
        .groups
        .iter()
        .filter_map(|g| {
            let ex = g.state().exception?;
            (ex.expires_at <= now + expiring).then(|| ExpiringLine {
                issue: link(g),
                url: g.issue_url.clone(),
                team: g.repo.clone(),
                approver: ex.approver,
                expires_at: ex.expires_at,
            })
        })
        .collect();
    expiring_lines.sort_by(|a, b| (a.expires_at, &a.issue).cmp(&(b.expires_at, &b.issue)));

    let mut rampup: Vec<RampUpLine> = inputs
        .accounts
        .iter()
        .filter(|a| a.mode == Mode::RampUp || !a.schedule.is_empty())
        .filter_map(|a| {
            let id = a.id.clone()?;
            let current = a.at(now);
            Some(RampUpLine {
                open_issues: open_by_account.get(&id).copied().unwrap_or(0),
                ignored_resources: inputs
                    .ignore_tags
                    .iter()
                    .filter(|t| t.account_id == id)
                    .count() as u32,
                name: a.name.clone(),
                environment: a.environment.clone(),
                mode: current.mode,
                min_severity: current.min_severity,
                enforce_from: a.schedule.enforce_from,
                next_change: a.changes_after(now).first().copied(),
                account_id: id,
            })
        })
        .collect();
    rampup.sort_by(|a, b| a.account_id.cmp(&b.account_id));

    let mut ignore_tags: Vec<TagLine> = inputs
        .ignore_tags
        .iter()
        .filter(|t| t.reason_since > since && t.reason_since <= now)
        .map(|t| TagLine {
            arn: t.arn.clone(),
            account_id: t.account_id.clone(),
            reason: t.reason.clone(),
            since: t.reason_since,
        })
        .collect();
    ignore_tags.sort_by(|a, b| (b.since, &a.arn).cmp(&(a.since, &b.arn)));

    let burndown = burndown(&by_group, since, now);
    Report {
        since,
        now,
        expiring_days: expiring.num_days(),
        totals,
        teams: teams.into_values().collect(),
        overdue,
        not_acknowledged,
        expiring: expiring_lines,
        rampup,
        ignore_tags,
        burndown,
    }
}

/// Open issues by severity at the end of every UTC day from `since`'s to `now`'s.
fn burndown(
    by_group: &BTreeMap<&str, Vec<&HistoryRow>>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<BurnPoint> {
    let mut out = Vec::new();
    let mut day = since.date_naive();
    let last = now.date_naive();
    while day <= last {
        let end = (day + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            - Duration::microseconds(1);
        let t = end.min(now);
        let mut open = BySeverity::default();
        for rows in by_group.values() {
            if let Some(r) = at_instant(rows, t).filter(|r| r.state.is_open()) {
                open.add(r.severity);
            }
        }
        out.push(BurnPoint { date: day, open });
        day = day + chrono::Days::new(1);
    }
    out
}
