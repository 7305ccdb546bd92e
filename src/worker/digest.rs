//! `digest`: the periodic summary in the security repository: open issues by team (repository)
//! and severity, overdue and unacknowledged ones, exceptions expiring soon.

use chrono::{DateTime, Duration, Utc};

use super::{JobError, JobOutput};
use crate::app::App;
use crate::domain::Severity;
use crate::store::{ChangeSet, GroupRecord, GroupStatus, Job, JobRecord, JobState, NewJob};

/// Where the digest issue is (`owner/repo#N`), once created.
pub const ISSUE_KEY: &str = "digest.issue";
/// Exceptions expiring within this are listed.
pub const EXPIRING_WITHIN: Duration = Duration::days(14);

fn severity(g: &GroupRecord) -> Severity {
    g.data.severity
}

fn link(g: &GroupRecord) -> String {
    match g.issue_number {
        Some(n) => format!("{}#{n}", g.repo),
        None => g.repo.clone(),
    }
}

fn who(login: Option<&str>) -> String {
    login
        .map(|l| format!("`{}`", l.replace('`', "")))
        .unwrap_or_else(|| "nobody".to_string())
}

/// The digest's Markdown, from the groups as they are at `now`. Pure.
pub fn render(groups: &[GroupRecord], now: DateTime<Utc>) -> String {
    let open: Vec<&GroupRecord> = groups
        .iter()
        .filter(|g| g.status == GroupStatus::Open && g.issue_number.is_some())
        .collect();
    let mut repos: Vec<&str> = open.iter().map(|g| g.repo.as_str()).collect();
    repos.sort();
    repos.dedup();
    let states: Vec<_> = open.iter().map(|g| (*g, g.state())).collect();
    let acknowledged = states
        .iter()
        .filter(|(_, s)| s.acknowledged.is_some())
        .count();
    let overdue: Vec<_> = states
        .iter()
        .filter(|(_, s)| s.overdue || s.due.is_some_and(|d| d <= now))
        .collect();
    let mut out = format!(
        "## Lever digest, {}\n\n**{}** open issue(s): {} acknowledged, {} overdue.\n\n",
        now.format("%Y-%m-%d"),
        open.len(),
        acknowledged,
        overdue.len()
    );
    out.push_str("| team (repository) | critical | high | medium | low | informational | overdue | not acknowledged |\n|---|---|---|---|---|---|---|---|\n");
    for repo in &repos {
        let mine: Vec<_> = states.iter().filter(|(g, _)| g.repo == *repo).collect();
        let count = |sev: Severity| mine.iter().filter(|(g, _)| severity(g) == sev).count();
        out.push_str(&format!(
            "| {repo} | {} | {} | {} | {} | {} | {} | {} |\n",
            count(Severity::Critical),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low),
            count(Severity::Informational),
            mine.iter()
                .filter(|(_, s)| s.overdue || s.due.is_some_and(|d| d <= now))
                .count(),
            mine.iter()
                .filter(|(_, s)| s.acknowledged.is_none())
                .count(),
        ));
    }
    if repos.is_empty() {
        out.push_str("| (none) | 0 | 0 | 0 | 0 | 0 | 0 | 0 |\n");
    }
    out.push_str("\n### Overdue\n");
    if overdue.is_empty() {
        out.push_str("None.\n");
    }
    for (g, s) in &overdue {
        out.push_str(&format!(
            "- {} ({}, due {}, owner {})\n",
            link(g),
            severity(g),
            s.due
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            who(s.assignee.as_deref())
        ));
    }
    out.push_str("\n### Not acknowledged\n");
    let unack: Vec<_> = states
        .iter()
        .filter(|(_, s)| s.acknowledged.is_none())
        .collect();
    if unack.is_empty() {
        out.push_str("None.\n");
    }
    for (g, s) in unack {
        out.push_str(&format!(
            "- {} ({}, owner {}, escalation level {})\n",
            link(g),
            severity(g),
            who(s.assignee.as_deref()),
            s.level
        ));
    }
    out.push_str(&format!(
        "\n### Exceptions expiring in the next {} days\n",
        EXPIRING_WITHIN.num_days()
    ));
    let mut expiring: Vec<(&GroupRecord, DateTime<Utc>, String)> = groups
        .iter()
        .filter_map(|g| {
            let s = g.state();
            let ex = s.exception?;
            (ex.expires_at <= now + EXPIRING_WITHIN).then_some((g, ex.expires_at, ex.approver))
        })
        .collect();
    expiring.sort_by_key(|(_, at, _)| *at);
    if expiring.is_empty() {
        out.push_str("None.\n");
    }
    for (g, at, approver) in expiring {
        out.push_str(&format!(
            "- {} (approved by {}, expires {})\n",
            link(g),
            who(Some(&approver)),
            at.format("%Y-%m-%d")
        ));
    }
    out
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
    let groups = app.store.list_groups(None).await?;
    let parked = app.store.jobs(Some(JobState::Dead)).await?;
    let mut body = render(&groups, now);
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
