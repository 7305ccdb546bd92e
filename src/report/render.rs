//! The report as Markdown (`lever report`, the digest's numbers) and CSV. Text that comes
//! from outside (tag reasons, logins) is made inert: no mentions, links, HTML or table breaks.

use std::fmt::Write;

use super::{BySeverity, Report, Timing};
use crate::domain::Severity;

/// Severities from the most severe down (the order every table uses).
pub const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

/// Untrusted text inside a Markdown table cell, as inline code: backticks, pipes and line
/// breaks removed, so it can neither mention, link nor break the table.
pub fn inert(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '`' | '|' | '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", clean.trim())
}

fn hours(t: &Timing) -> String {
    match (t.mean_hours, t.p90_hours) {
        (Some(m), Some(p)) => format!("{m:.1} h / {p:.1} h"),
        _ => "–".to_string(),
    }
}

fn counts(b: &BySeverity) -> String {
    SEVERITIES
        .iter()
        .map(|s| b.get(*s).to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The report as Markdown. Pure.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let _ = writeln!(
        out,
        "# Lever report, {} to {}\n\n**{}** open issue(s) now ({} at the start), {} opened and {} closed in the period; {} overdue, {} not acknowledged.\n",
        day(r.since),
        day(r.now),
        r.totals.open_now.total(),
        r.totals.open_at_start.total(),
        r.totals.opened,
        r.totals.closed,
        r.totals.overdue,
        r.totals.not_acknowledged,
    );
    out.push_str("## Open issues by team and severity\n\n| team | critical | high | medium | low | informational | open at start | opened | closed | overdue | not acknowledged | time to acknowledge (mean / p90) | time to fix (mean / p90) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for t in &r.teams {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            inert(&t.team),
            counts(&t.open_now),
            t.open_at_start.total(),
            t.opened,
            t.closed,
            t.overdue,
            t.not_acknowledged,
            hours(&t.time_to_acknowledge),
            hours(&t.time_to_fix),
        );
    }
    let _ = writeln!(
        out,
        "| **all** | {} | {} | {} | {} | {} | {} | {} | {} |",
        counts(&r.totals.open_now),
        r.totals.open_at_start.total(),
        r.totals.opened,
        r.totals.closed,
        r.totals.overdue,
        r.totals.not_acknowledged,
        hours(&r.totals.time_to_acknowledge),
        hours(&r.totals.time_to_fix),
    );
    out.push_str("\n## Overdue\n\n");
    if r.overdue.is_empty() {
        out.push_str("None.\n");
    }
    for i in &r.overdue {
        let _ = writeln!(
            out,
            "- {} ({}, due {}, owner {})",
            inert(&i.issue),
            i.severity,
            i.due.map(day).unwrap_or_default(),
            i.owner
                .as_deref()
                .map(inert)
                .unwrap_or_else(|| "nobody".into())
        );
    }
    let _ = write!(
        out,
        "\n## Exceptions expiring in the next {} days\n\n",
        r.expiring_days
    );
    if r.expiring.is_empty() {
        out.push_str("None.\n");
    }
    for e in &r.expiring {
        let _ = writeln!(
            out,
            "- {} (approved by {}, expires {})",
            inert(&e.issue),
            inert(&e.approver),
            day(e.expires_at)
        );
    }
    out.push_str("\n## Ramp-up\n\n");
    if r.rampup.is_empty() {
        out.push_str("No account is ramping up.\n");
    } else {
        out.push_str("| account | environment | mode | minimum severity | enforced from | next change | open issues | ignore-tagged resources |\n|---|---|---|---|---|---|---|---|\n");
    }
    for a in &r.rampup {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            inert(&a.account_id),
            inert(&a.environment),
            a.mode,
            a.min_severity,
            a.enforce_from.map(|d| d.to_string()).unwrap_or("–".into()),
            a.next_change.map(day).unwrap_or("–".into()),
            a.open_issues,
            a.ignored_resources
        );
    }
    out.push_str("\n## Ignore tags set or changed in the period\n\n");
    if r.ignore_tags.is_empty() {
        out.push_str("None.\n");
    }
    for t in &r.ignore_tags {
        let _ = writeln!(
            out,
            "- {} in {}: {} (since {})",
            inert(&t.arn),
            inert(&t.account_id),
            inert(&t.reason),
            day(t.since)
        );
    }
    out.push_str("\n## Burn-down (open issues at the end of each day)\n\n| day | critical | high | medium | low | informational |\n|---|---|---|---|---|---|\n");
    for p in &r.burndown {
        let _ = writeln!(out, "| {} | {} |", p.date, counts(&p.open));
    }
    out
}

/// A CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-` or
/// `@` is prefixed with `'` so a spreadsheet never reads it as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_default()
}

/// The report's team table and burn-down as CSV (two sections, one header each, `section` in
/// the first column). Pure.
pub fn csv(r: &Report) -> String {
    let mut out = String::from(
        "section,team,critical,high,medium,low,informational,open_at_start,opened,closed,overdue,not_acknowledged,tta_mean_hours,tta_p90_hours,ttf_mean_hours,ttf_p90_hours\n",
    );
    let mut line = |team: &str,
                    open: &BySeverity,
                    start: u32,
                    opened: u32,
                    closed: u32,
                    overdue: u32,
                    unack: u32,
                    tta: &Timing,
                    ttf: &Timing| {
        let _ = writeln!(
            out,
            "team,{},{},{},{},{},{},{start},{opened},{closed},{overdue},{unack},{},{},{},{}",
            field(team),
            open.critical,
            open.high,
            open.medium,
            open.low,
            open.informational,
            opt(tta.mean_hours),
            opt(tta.p90_hours),
            opt(ttf.mean_hours),
            opt(ttf.p90_hours)
        );
    };
    for t in &r.teams {
        line(
            &t.team,
            &t.open_now,
            t.open_at_start.total(),
            t.opened,
            t.closed,
            t.overdue,
            t.not_acknowledged,
            &t.time_to_acknowledge,
            &t.time_to_fix,
        );
    }
    let tot = &r.totals;
    line(
        "(all)",
        &tot.open_now,
        tot.open_at_start.total(),
        tot.opened,
        tot.closed,
        tot.overdue,
        tot.not_acknowledged,
        &tot.time_to_acknowledge,
        &tot.time_to_fix,
    );
    out.push_str("\nsection,day,critical,high,medium,low,informational\n");
    for p in &r.burndown {
        let _ = writeln!(
            out,
            "burndown,{},{},{},{},{},{}",
            p.date, p.open.critical, p.open.high, p.open.medium, p.open.low, p.open.informational
        );
    }
    out
}
