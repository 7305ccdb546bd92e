//! The tag audit: which resources carry the ignore tag (`[policy] ignore_tag`), with their
//! reasons, owners and first-seen dates, and what appeared, changed or disappeared since the
//! previous audit. `lever tags audit` runs it once; `lever serve` runs it every `[tags]
//! audit_every` as the `tag-audit` job.
//!
//! The job's shape: load (the previous snapshot from the store) → read (GetResources in every
//! configured account × region, through the assumed member role, paced) → decide (the pure
//! [`crate::domain::tags::diff`], routing for owners) → perform (one comment per new or changed
//! ignore tag in the security repository's audit issue, mentioning the owning team's engineer
//! on call and asking why) → commit (the new snapshot, then the job's outcome).
//!
//! The audit issue carries the hidden marker [`ISSUE_MARKER`]; a retry whose earlier attempt
//! may have opened it adopts it. Each comment carries a marker of its resource and reason, and
//! a retry skips the comments an earlier attempt already wrote. The snapshot is recorded only
//! after the comments, so a failure never loses a question.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{JobError, JobOutput, Run};
use crate::app::App;
use crate::config::Config;
use crate::domain::tags::{IgnoredResource, Observed, TagChange, TagDiff, diff};
use crate::domain::{Finding, Resource, Source};
use crate::explain::inert;
use crate::github::IssueUpdate;
use crate::securityhub::Tagging;
use crate::store::{ChangeSet, Job, NewJob, Store};

/// What the audit cannot tell, said wherever it reports.
pub const WHO_NOTE: &str = "Who added a tag is not something the Resource Groups Tagging API knows; \
     AWS CloudTrail does (TagResource, CreateTags, PutBucketTagging, ... events in the member account).";
/// The hidden marker of the audit issue in the security repository.
pub const ISSUE_MARKER: &str = "<!-- lever:tag-audit -->";
/// The label of the audit issue.
pub const ISSUE_LABEL: &str = "lever-tag-audit";
/// Where the audit issue is, in the key/value table (`owner/repo#N`).
const ISSUE_KEY: &str = "tags.audit_issue";
/// Until when the scheduled audit has asked about tags (RFC 3339), in the key/value table: a
/// tag recorded meanwhile by `lever tags audit` is still asked about.
const ASKED_KEY: &str = "tags.asked_until";
/// Pages of recent issues and comments looked through on a retry.
const ADOPT_PAGES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Config(String),
    #[error("the store failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// One ignored resource, as the audit lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub arn: String,
    pub account_id: String,
    pub region: String,
    /// The tag's value as written (untrusted).
    pub reason: String,
    /// `false` for a blank value: the tag does not count and is flagged.
    pub has_reason: bool,
    pub first_seen: DateTime<Utc>,
    pub reason_since: DateTime<Utc>,
    /// The repository OWNERS routes the resource to.
    pub owner_repo: String,
    /// The owning team's engineer on call at the audit.
    pub on_call: Option<String>,
}

/// One change since the previous audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRow {
    /// `appeared`, `changed` or `disappeared`.
    pub change: &'static str,
    #[serde(flatten)]
    pub resource: AuditRow,
    /// The reason before, for `changed`.
    pub previous_reason: Option<String>,
}

/// A scope the audit could not read: its resources are carried over unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeError {
    pub account_id: String,
    pub region: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub tag_key: String,
    pub audited_at: DateTime<Utc>,
    pub previous_audit_at: Option<DateTime<Utc>>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub resources: Vec<AuditRow>,
    pub changes: Vec<ChangeRow>,
    pub without_reason: usize,
    pub unread: Vec<ScopeError>,
    pub note: &'static str,
}

/// An audit read and decided, not yet recorded.
#[derive(Debug, Clone)]
pub struct Audit {
    pub diff: TagDiff,
    pub report: AuditReport,
    /// Every tag of each resource read (ARN → tags).
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// The accounts the audit reads: `[tags] accounts`, else every `[accounts.ID]`.
pub fn accounts(config: &Config) -> Vec<String> {
    let t = &config.settings.tags;
    if t.accounts.is_empty() {
        config.settings.accounts.keys().cloned().collect()
    } else {
        t.accounts.clone()
    }
}

/// A finding-shaped view of a resource, for routing by account, resource and tag (OWNERS
/// lines about controls match no resource of the audit).
fn routing_view(r: &IgnoredResource, tags: BTreeMap<String, String>) -> Finding {
    let mut f = crate::domain::sample::control_finding(
        "TagAudit",
        "ignore tag",
        crate::domain::Severity::Low,
    );
    f.account_id = r.account_id.clone();
    f.region = r.region.clone();
    f.resources = vec![Resource {
        id: r.arn.clone(),
        kind: None,
        region: Some(r.region.clone()),
        tags,
    }];
    f.source = Source::Product {
        product: "lever/tag-audit".into(),
        generator_id: "tag-audit".into(),
    };
    f
}

fn row(
    r: &IgnoredResource,
    tags: &BTreeMap<String, BTreeMap<String, String>>,
    config: &Config,
    now: DateTime<Utc>,
) -> AuditRow {
    let mut t = tags.get(&r.arn).cloned().unwrap_or_default();
    t.entry(config.settings.policy.ignore_tag.clone())
        .or_insert_with(|| r.reason.clone());
    let f = routing_view(r, t);
    let route = crate::routing::route(&f, config, now, &|_| None);
    AuditRow {
        arn: r.arn.clone(),
        account_id: r.account_id.clone(),
        region: r.region.clone(),
        reason: r.reason.clone(),
        has_reason: r.has_reason(),
        first_seen: r.first_seen,
        reason_since: r.reason_since,
        owner_repo: route.repo.to_string(),
        on_call: route.on_call(config, now),
    }
}

/// Reads every configured account × region and compares with the store's snapshot; nothing is
/// recorded (see [`record`]).
pub async fn observe(
    store: &dyn Store,
    config: &Config,
    tagging: &Tagging,
    now: DateTime<Utc>,
) -> Result<Audit, AuditError> {
    let settings = &config.settings.tags;
    let key = &config.settings.policy.ignore_tag;
    let accounts = accounts(config);
    if settings.regions.is_empty() {
        return Err(AuditError::Config(
            "lever.toml: [tags] regions is empty: name the regions the tag audit reads (e.g. regions = [\"eu-west-1\"])"
                .into(),
        ));
    }
    if accounts.is_empty() {
        return Err(AuditError::Config(
            "lever.toml: no account to audit: list them in [tags] accounts or as [accounts.ID]"
                .into(),
        ));
    }
    let (previous, previous_audit_at) = store.ignore_tags().await?;
    let mut observed: Vec<Observed> = Vec::new();
    let mut unread = Vec::new();
    for account in &accounts {
        let role = settings.role_arn(account);
        for region in &settings.regions {
            match tagging.ignore_tagged(&role, account, region, key).await {
                Ok(found) => observed.extend(found),
                Err(e) => {
                    tracing::warn!(%account, %region, error = %e, "tag audit: scope not read");
                    unread.push(ScopeError {
                        account_id: account.clone(),
                        region: region.clone(),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    let unread_set: BTreeSet<(String, String)> = unread
        .iter()
        .map(|s| (s.account_id.clone(), s.region.clone()))
        .collect();
    let d = diff(&previous, &observed, &unread_set, now);
    let tags: BTreeMap<String, BTreeMap<String, String>> = observed
        .iter()
        .map(|o| (o.arn.clone(), o.tags.clone()))
        .collect();
    let resources: Vec<AuditRow> = d
        .current
        .iter()
        .map(|r| row(r, &tags, config, now))
        .collect();
    let changes = d
        .changes
        .iter()
        .map(|c| ChangeRow {
            change: c.kind(),
            resource: row(c.resource(), &tags, config, now),
            previous_reason: match c {
                TagChange::Changed { before, .. } => Some(before.reason.clone()),
                _ => None,
            },
        })
        .collect();
    let report = AuditReport {
        tag_key: key.clone(),
        audited_at: now,
        previous_audit_at,
        accounts,
        regions: settings.regions.clone(),
        without_reason: resources.iter().filter(|r| !r.has_reason).count(),
        resources,
        changes,
        unread,
        note: WHO_NOTE,
    };
    Ok(Audit {
        diff: d,
        report,
        tags,
    })
}

/// Records the audit's snapshot (and when it ran) for the next audit to compare with.
pub async fn record(store: &dyn Store, audit: &Audit) -> Result<(), AuditError> {
    store
        .record_ignore_tags(&audit.diff.current, audit.report.audited_at)
        .await?;
    Ok(())
}

/// The hidden marker of the comment about `row`'s current reason.
pub fn comment_marker(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(row.arn.as_bytes());
    h.update([0]);
    h.update(row.reason.as_bytes());
    h.update([0]);
    h.update(row.reason_since.to_rfc3339().as_bytes());
    format!(
        "<!-- lever:tag-audit-comment={} -->",
        hex::encode(&h.finalize()[..12])
    )
}

/// The comment asking why a tag appeared or changed. Pure; the reason and ARN are inert.
pub fn render_comment(c: &ChangeRow, tag_key: &str) -> String {
    let r = &c.resource;
    let who = match &r.on_call {
        Some(login) if crate::config::is_login(login) => format!("@{login}"),
        _ => format!("the owners of {}", inert::prose(&r.owner_repo)),
    };
    let what = match (c.change, &c.previous_reason) {
        ("changed", Some(before)) => format!(
            "The ignore tag `{}` on `{}` changed its reason from {} to:",
            inert::code(tag_key),
            inert::code(&r.arn),
            quoted(before)
        ),
        ("changed", None) => format!(
            "The ignore tag `{}` on `{}` has a new reason:",
            inert::code(tag_key),
            inert::code(&r.arn)
        ),
        _ => format!(
            "A new ignore tag `{}` appeared on `{}`:",
            inert::code(tag_key),
            inert::code(&r.arn)
        ),
    };
    let reason = if r.has_reason {
        format!("> {}", inert::prose(&r.reason).replace('\n', "\n> "))
    } else {
        "> (no reason: a blank value does not count, and Lever keeps tracking the resource)"
            .to_string()
    };
    format!(
        "{who}, {what}\n\n{reason}\n\n\
         Account {}, region {}, owned by {} (OWNERS). First seen by Lever {}; this reason since {}.\n\n\
         Why was it added? Please answer here. {WHO_NOTE}\n\n{}\n",
        inert::prose(&r.account_id),
        inert::prose(&r.region),
        inert::prose(&r.owner_repo),
        r.first_seen.to_rfc3339(),
        r.reason_since.to_rfc3339(),
        comment_marker(r)
    )
}

fn quoted(s: &str) -> String {
    if s.trim().is_empty() {
        "(no reason)".into()
    } else {
        format!("\"{}\"", inert::prose(s))
    }
}

fn issue_body(tag_key: &str) -> String {
    format!(
        "Lever's tag audit posts a comment here for every new or changed ignore tag (`{}`) it finds \
         through the Resource Groups Tagging API, mentioning the owning team's engineer on call and \
         asking why. `lever tags audit` lists them all.\n\n{WHO_NOTE}\n\n{ISSUE_MARKER}\n",
        inert::code(tag_key)
    )
}

/// What the scheduled audit asks about: every ignored resource whose current reason Lever first
/// saw after `asked_until` (the previous scheduled run), so a tag a hand-run `lever tags audit`
/// recorded meanwhile is asked about too; without a previous run, only this audit's appeared
/// and changed tags (a first run does not ask about every tag that already existed). Pure.
pub fn to_ask(report: &AuditReport, asked_until: Option<DateTime<Utc>>) -> Vec<ChangeRow> {
    let Some(since) = asked_until else {
        return report
            .changes
            .iter()
            .filter(|c| c.change != "disappeared")
            .cloned()
            .collect();
    };
    report
        .resources
        .iter()
        .filter(|r| r.reason_since > since)
        .map(|r| {
            let diffed = report.changes.iter().find(|c| c.resource.arn == r.arn);
            ChangeRow {
                change: if r.first_seen == r.reason_since {
                    "appeared"
                } else {
                    "changed"
                },
                resource: r.clone(),
                previous_reason: diffed.and_then(|c| c.previous_reason.clone()),
            }
        })
        .collect()
}

/// `tag-audit`: reads, asks why in the audit issue, records, and schedules the next run.
pub(super) async fn run(app: &App, run: &Run) -> Result<JobOutput, JobError> {
    let now = app.now();
    let config = &app.config;
    let audit = observe(app.store.as_ref(), config, &app.tagging, now)
        .await
        .map_err(|e| match e {
            AuditError::Config(m) => JobError::permanent(m),
            AuditError::Store(s) => s.into(),
        })?;
    let asked_until = app
        .store
        .kv_get(ASKED_KEY)
        .await?
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc));
    let ask = to_ask(&audit.report, asked_until);
    let mut changes = ChangeSet::default();
    changes.kv.push((ASKED_KEY.to_string(), now.to_rfc3339()));
    if !ask.is_empty() {
        let (repo, number) = audit_issue(app, run).await?;
        changes
            .kv
            .push((ISSUE_KEY.to_string(), format!("{repo}#{number}")));
        let written = if run.is_retry() {
            written_markers(app, &repo, number).await?
        } else {
            BTreeSet::new()
        };
        for c in &ask {
            let body = render_comment(c, &audit.report.tag_key);
            if written.contains(&comment_marker(&c.resource)) {
                continue;
            }
            app.github.create_comment(&repo, number, &body).await?;
        }
    }
    // Open issues whose resources' ignore tags changed look again (their findings may not
    // carry tags: the Tagging API's answer, just read, is what they see).
    let changed: BTreeSet<&str> = audit
        .report
        .changes
        .iter()
        .map(|c| c.resource.arn.as_str())
        .collect();
    for arn in &changed {
        match audit.tags.get(*arn) {
            Some(tags) => app.tagging.remember(arn, tags.clone()),
            None => app.tagging.forget(arn),
        }
    }
    if !changed.is_empty() {
        let mut groups = app
            .store
            .list_groups(Some(crate::store::GroupStatus::Open))
            .await?;
        // Groups whose issue did not open because every resource was ignored.
        groups.extend(
            app.store
                .list_groups(Some(crate::store::GroupStatus::Pending))
                .await?,
        );
        for g in groups {
            let findings = app.store.findings_in_group(&g.group_key).await?;
            let touches = findings.iter().any(|f| {
                f.finding
                    .resources
                    .iter()
                    .any(|r| changed.contains(r.id.as_str()))
            });
            if touches {
                let job = if g.issue_number.is_some() {
                    Job::SyncGroup(g.group_key.clone())
                } else {
                    Job::OpenIssue(g.group_key.clone())
                };
                changes.jobs.push(NewJob::new(job, now));
            }
        }
    }
    tracing::info!(
        resources = audit.report.resources.len(),
        changes = audit.report.changes.len(),
        unread = audit.report.unread.len(),
        "tag audit done"
    );
    record(app.store.as_ref(), &audit)
        .await
        .map_err(|e| JobError::retry(e.to_string()))?;
    if let Some(every) = config.settings.tags.audit_every {
        changes.jobs.push(NewJob::new(Job::TagAudit, now + every));
    }
    Ok(JobOutput::done(changes))
}

/// The audit issue: recorded in the kv table, else (on a retry) found by its marker, else opened.
async fn audit_issue(app: &App, run: &Run) -> Result<(String, u64), JobError> {
    if let Some(v) = app.store.kv_get(ISSUE_KEY).await?
        && let Some((repo, n)) = v.rsplit_once('#')
        && let Ok(n) = n.parse::<u64>()
    {
        let issue = app.github.get_issue(repo, n).await?;
        if issue.state != "open" {
            app.github
                .update_issue(
                    repo,
                    n,
                    &IssueUpdate {
                        state: Some("open".into()),
                        ..IssueUpdate::default()
                    },
                )
                .await?;
        }
        return Ok((repo.to_string(), n));
    }
    let repo = app.config.settings.github.fallback_repo.to_string();
    if run.is_retry() {
        let bot = app.github.bot_login().await?;
        for page in 1..=ADOPT_PAGES {
            let issues = app
                .github
                .list_issues(&repo, None, Some(&bot), page, 100)
                .await?;
            let n = issues.len();
            if let Some(i) = issues
                .into_iter()
                .find(|i| i.body.as_deref().is_some_and(|b| b.contains(ISSUE_MARKER)))
            {
                tracing::info!(
                    issue = i.number,
                    "adopting the tag audit issue an earlier attempt opened"
                );
                return Ok((repo, i.number));
            }
            if n < 100 {
                break;
            }
        }
    }
    let issue = app
        .github
        .create_issue(
            &repo,
            "Lever tag audit: new ignore tags",
            &issue_body(&app.config.settings.policy.ignore_tag),
            &[ISSUE_LABEL.to_string()],
            &[],
        )
        .await?;
    Ok((repo, issue.number))
}

/// The comment markers already in the audit issue (its recent pages).
async fn written_markers(app: &App, repo: &str, number: u64) -> Result<BTreeSet<String>, JobError> {
    let mut out = BTreeSet::new();
    for page in 1..=ADOPT_PAGES {
        let comments = app.github.list_comments(repo, number, page).await?;
        let n = comments.len();
        for c in comments {
            if let Some(body) = c.body.as_deref()
                && let Some(start) = body.find("<!-- lever:tag-audit-comment=")
                && let Some(len) = body[start..].find("-->")
            {
                out.insert(body[start..start + len + 3].to_string());
            }
        }
        if n < 100 {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row(arn: &str, first: &str, since: &str) -> AuditRow {
        AuditRow {
            arn: arn.into(),
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
            reason: "why".into(),
            has_reason: true,
            first_seen: t(first),
            reason_since: t(since),
            owner_repo: "acme/payments".into(),
            on_call: Some("bob".into()),
        }
    }

    /// Day 1: a scheduled run; day 2: `lever tags audit` by hand records `b` (new) and `c`
    /// (changed); day 3: the scheduled run finds `d` new and `e` changed from "old".
    fn report() -> AuditReport {
        let d1 = "2026-11-01T00:00:00Z";
        let d2 = "2026-11-02T00:00:00Z";
        let d3 = "2026-11-03T00:00:00Z";
        let resources = vec![
            row("a", d1, d1),
            row("b", d2, d2),
            row("c", d1, d2),
            row("d", d3, d3),
            row("e", d1, d3),
        ];
        let change = |kind: &'static str, r: &AuditRow, before: Option<&str>| ChangeRow {
            change: kind,
            resource: r.clone(),
            previous_reason: before.map(str::to_string),
        };
        AuditReport {
            tag_key: "lever:ignore".into(),
            audited_at: t(d3),
            previous_audit_at: Some(t(d2)),
            accounts: vec![],
            regions: vec![],
            changes: vec![
                change("appeared", &resources[3], None),
                change("changed", &resources[4], Some("old")),
                change("disappeared", &row("z", d1, d1), None),
            ],
            resources,
            without_reason: 0,
            unread: vec![],
            note: WHO_NOTE,
        }
    }

    #[test]
    fn to_ask_table() {
        let r = report();
        type Case<'a> = (&'a str, Option<DateTime<Utc>>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "no scheduled run before: this audit's appeared and changed only",
                None,
                vec!["appeared d -", "changed e old"],
            ),
            (
                "after day 1's run: what the hand-run recorded too",
                Some(t("2026-11-01T00:00:00Z")),
                vec![
                    "appeared b -",
                    "changed c -",
                    "appeared d -",
                    "changed e old",
                ],
            ),
            (
                "after day 3's run: nothing",
                Some(t("2026-11-03T00:00:00Z")),
                vec![],
            ),
        ];
        let mut wrong = Vec::new();
        for (name, since, want) in cases {
            let got: Vec<String> = to_ask(&r, since)
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}",
                        c.change,
                        c.resource.arn,
                        c.previous_reason.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            if got != want {
                wrong.push(format!("{name}: {got:?}, expected {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_comment_asks_the_person_on_call_and_renders_the_reason_inert() {
        let mut r = row(
            "arn:aws:s3:::b",
            "2026-11-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
        );
        r.reason = "legacy @org/team <img src=x> #12 https://evil.example".into();
        let c = ChangeRow {
            change: "appeared",
            resource: r,
            previous_reason: None,
        };
        let body = render_comment(&c, "lever:ignore");
        assert!(body.starts_with("@bob, A new ignore tag"), "{body}");
        assert!(!body.contains("@org/team"), "{body}");
        assert!(!body.contains("<img"), "{body}");
        assert!(!body.contains(" #12"), "{body}");
        assert!(body.contains("CloudTrail"), "{body}");
        assert!(body.contains(&comment_marker(&c.resource)), "{body}");
        let blank = ChangeRow {
            resource: AuditRow {
                reason: "  ".into(),
                has_reason: false,
                ..c.resource.clone()
            },
            ..c
        };
        assert!(render_comment(&blank, "lever:ignore").contains("no reason"));
    }
}
