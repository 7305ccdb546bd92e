//! `digest`: the periodic summary in the security repository: open issues by team (repository)
//! and severity, overdue and unacknowledged ones, exceptions expiring soon.

use chrono::Duration;

use super::{JobError, JobOutput};
use crate::app::App;
use crate::domain::Severity;
use crate::report::{IssueLine, Period, Report};
use crate::store::{ChangeSet, Job, JobRecord, JobState, NewJob};

/// Where the digest issue is (`owner/repo#N`), once created.
pub const ISSUE_KEY: &str = "digest.issue";

fn who(login: Option<&str>) -> String {
    login
        .map(|l| format!("`{}`", l.replace('`', "")))
        .unwrap_or_else(|| "nobody".to_string())
}

fn line(i: &IssueLine) -> &str {
    &i.issue
}

/// The digest's Markdown from the report (`crate::report::compute`, the numbers `lever report`
/// and the dashboard show). Pure.
pub fn render(r: &Report) -> String {
    let now = r.now;
    let mut out = format!(
        "## Lever digest, {}\n\n**{}** open issue(s): {} acknowledged, {} overdue.\n\n",
        now.format("%Y-%m-%d"),
        r.totals.open_now.total(),
        r.totals.acknowledged_now,
        r.totals.overdue
    );
    out.push_str(&format!(
        "Since {}: {} opened, {} closed; time to acknowledge {}, to fix {} (mean).\n\n",
        r.since.format("%Y-%m-%d"),
        r.totals.opened,
        r.totals.closed,
        mean(r.totals.time_to_acknowledge.mean_hours),
        mean(r.totals.time_to_fix.mean_hours),
    ));
    out.push_str("| team (repository) | critical | high | medium | low | informational | overdue | not acknowledged |\n|---|---|---|---|---|---|---|---|\n");
    let teams: Vec<_> = r
        .teams
        .iter()
        .filter(|t| t.open_now.total() > 0 || t.overdue > 0 || t.not_acknowledged > 0)
        .collect();
    for t in &teams {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            t.team,
            t.open_now.get(Severity::Critical),
            t.open_now.get(Severity::High),
            t.open_now.get(Severity::Medium),
            t.open_now.get(Severity::Low),
            t.open_now.get(Severity::Informational),
            t.overdue,
            t.not_acknowledged,
        ));
    }
    if teams.is_empty() {
        out.push_str("| (none) | 0 | 0 | 0 | 0 | 0 | 0 | 0 |\n");
    }
    out.push_str("\n### Overdue\n");
    if r.overdue.is_empty() {
        out.push_str("None.\n");
    }
    for i in &r.overdue {
        out.push_str(&format!(
            "- {} ({}, due {}, owner {})\n",
            line(i),
            i.severity,
            i.due
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            who(i.owner.as_deref())
        ));
    }
    out.push_str("\n### Not acknowledged\n");
    if r.not_acknowledged.is_empty() {
        out.push_str("None.\n");
    }
    for i in &r.not_acknowledged {
        out.push_str(&format!(
            "- {} ({}, owner {}, escalation level {})\n",
            line(i),
            i.severity,
            who(i.owner.as_deref()),
            i.level
        ));
    }
    out.push_str(&format!(
        "\n### Exceptions expiring in the next {} days\n",
        r.expiring_days
    ));
    if r.expiring.is_empty() {
        out.push_str("None.\n");
    }
    for e in &r.expiring {
        out.push_str(&format!(
            "- {} (approved by {}, expires {})\n",
            e.issue,
            who(Some(&e.approver)),
            e.expires_at.format("%Y-%m-%d")
        ));
    }
    out
}

fn mean(h: Option<f64>) -> String {
    h.map(|h| format!("{h:.1} h")).unwrap_or_else(|| "–".into())
}

/// Work that failed for good and waits for an operator, so it is never forgotten. Pure.
pub fn parked_section(parked: &[JobRecord]) -> String {
    if parked.is_empty() {
        return String::new();
    }
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for j in parked {
        *kinds.entry(j.job.kind()).or_default() += 1;
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} `{k}`")).collect();
    format!(
        "\n### Parked work\n\n**{}** job(s) failed for good and wait for an operator: {}. \
         See them with `lever jobs --failed` and re-queue them with `lever jobs retry`.\n",
        parked.len(),
        list.join(", ")
    )
}

pub(super) async fn run(app: &App) -> Result<JobOutput, JobError> {
    let now = app.now();
    let settings = &app.config.settings;
    let repo = settings
        .escalation
        .digest
        .repo
        .as_ref()
        .unwrap_or(&settings.github.fallback_repo)
        .to_string();
    let since = now
        - settings
            .escalation
            .digest
            .every
            .unwrap_or(Duration::days(7));
    let report = crate::report::load(
        app.store.as_ref(),
        &app.config,
        Period {
            since,
            now,
            expiring: settings.report.expiring,
        },
    )
    .await?;
    let parked = app.store.jobs(Some(JobState::Dead)).await?;
    let mut body = render(&report);
    body.push_str(&parked_section(&parked));
    let mut changes = ChangeSet::default();
    let existing = app.store.kv_get(ISSUE_KEY).await?.and_then(|v| {
        let (r, n) = v.rsplit_once('#')?;
        Some((r.to_string(), n.parse::<u64>().ok()?))
    });
    match existing {
        Some((r, n)) if r.eq_ignore_ascii_case(&repo) => {
            app.github.create_comment(&r, n, &body).await?;
        }
        _ => {
            let intro = "Lever posts a summary of open security issues here on a schedule (`[digest]` in lever.toml).\n\n";
            let issue = app
                .github
                .create_issue(
                    &repo,
                    "Lever digest: open security issues",
                    &format!("{intro}{body}"),
                    &["lever-digest".to_string()],
                    &[],
                )
                .await?;
            changes
                .kv
                .push((ISSUE_KEY.to_string(), format!("{repo}#{}", issue.number)));
        }
    }
    if let Some(next) = settings.escalation.digest.next_after(now) {
        changes.jobs.push(NewJob::new(Job::Digest, next));
    }
    Ok(JobOutput::done(changes))
}

#[cfg(test)]
mod parked_tests {
    use super::*;
    use crate::domain::GroupKey;

    fn parked(id: i64, job: Job) -> JobRecord {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        JobRecord {
            id,
            job,
            state: JobState::Dead,
            run_at: at,
            attempts: 36,
            lease_owner: None,
            lease_expires: None,
            last_error: Some("GitHub: forbidden".into()),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_digest_names_parked_work_by_kind() {
        assert_eq!(parked_section(&[]), "");
        let g = || GroupKey("G".into());
        let text = parked_section(&[
            parked(1, Job::OpenIssue(g())),
            parked(2, Job::NotifyFindings(g())),
            parked(3, Job::OpenIssue(GroupKey("H".into()))),
        ]);
        assert!(text.contains("**3** job(s) failed for good"), "{text}");
        assert!(
            text.contains("1 `notify-findings`, 2 `open-issue`"),
            "{text}"
        );
        assert!(text.contains("lever jobs --failed"), "{text}");
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;
    use crate::report::{BySeverity, Inputs, TeamRow, compute};

    #[test]
    fn the_digest_shows_the_reports_numbers() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut r = compute(
            Inputs {
                history: &[],
                groups: &[],
                ignore_tags: &[],
                accounts: &[],
            },
            Period {
                since: now - Duration::days(7),
                now,
                expiring: Duration::days(21),
            },
        );
        let empty = render(&r);
        assert!(
            empty.contains("**0** open issue(s): 0 acknowledged, 0 overdue."),
            "{empty}"
        );
        assert!(
            empty.contains("| (none) | 0 | 0 | 0 | 0 | 0 | 0 | 0 |"),
            "{empty}"
        );
        assert!(
            empty.contains("### Exceptions expiring in the next 21 days"),
            "{empty}"
        );
        r.totals.open_now = BySeverity {
            critical: 2,
            high: 1,
            ..BySeverity::default()
        };
        r.totals.opened = 4;
        r.totals.closed = 5;
        r.teams = vec![
            TeamRow {
                team: "acme/web".into(),
                open_now: r.totals.open_now,
                overdue: 1,
                not_acknowledged: 2,
                ..TeamRow::default()
            },
            TeamRow {
                team: "acme/quiet".into(),
                closed: 5,
                ..TeamRow::default()
            },
        ];
        let text = render(&r);
        assert!(text.contains("**3** open issue(s)"), "{text}");
        assert!(
            text.contains("Since 2026-11-16: 4 opened, 5 closed"),
            "{text}"
        );
        assert!(
            text.contains("| acme/web | 2 | 1 | 0 | 0 | 0 | 1 | 2 |"),
            "{text}"
        );
        assert!(
            !text.contains("acme/quiet"),
            "a team with nothing open is left out: {text}"
        );
    }
}
