//! A month of issue-group history, written through the store as Lever writes it (one change
//! set per event, at the event's instant): for the report, the dashboard and the browser test.
//!
//! 28 groups over three teams and every severity: opened one every ~25 hours (four before the
//! period), most acknowledged within hours, two thirds fixed within days, one suppressed by an
//! exception that expires in five days, the rest open with a fix deadline a week after they
//! opened (so the older ones are overdue), and one still pending. Deterministic.

use chrono::{DateTime, Duration, Utc};

use lever::config::RepoName;
use lever::domain::lifecycle::{Ack, Closure, Exception, State};
use lever::domain::tags::IgnoredResource;
use lever::domain::{GroupKey, Severity};
use lever::routing::Route;
use lever::store::{ChangeSet, GroupData, GroupRecord, GroupStatus, GroupWrite, Store};

pub const TEAMS: [&str; 3] = ["acme/payments", "acme/web", "acme/platform"];
const SEVERITIES: [Severity; 8] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
    Severity::High,
    Severity::Critical,
    Severity::Medium,
];

fn record(i: usize, at: DateTime<Utc>) -> GroupRecord {
    let repo = TEAMS[i % 3];
    GroupRecord {
        group_key: GroupKey(format!("G{i:02}")),
        repo: repo.to_string(),
        issue_number: Some(i as u64 + 1),
        issue_url: Some(format!("https://github.com/{repo}/issues/{}", i + 1)),
        status: GroupStatus::Open,
        assignee: Some(format!("dev{}", i % 4)),
        data: GroupData {
            route: Route {
                repo: RepoName::parse(repo).unwrap(),
                rule_line: Some(1),
                chain: vec![format!("dev{}", i % 4)],
                warnings: vec![],
                assignees: vec![],
            },
            account_id: "111111111111".into(),
            environment: "production".into(),
            mode: "enforce".into(),
            severity: SEVERITIES[i % 8],
            control_id: Some("S3.1".into()),
            title: format!("Finding {i}"),
            reason: "seeded".into(),
            lifecycle: Some(State {
                open: true,
                assignee: Some(format!("dev{}", i % 4)),
                due: Some(at + Duration::days(7)),
                ..State::default()
            }),
            recreated_from: None,
            last_event_at: None,
            reroute: None,
        },
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

async fn write(store: &dyn Store, w: GroupWrite, at: DateTime<Utc>) {
    store
        .apply(
            ChangeSet {
                groups: vec![w],
                ..Default::default()
            },
            at,
        )
        .await
        .expect("seed write");
}

/// Seeds `store` with the month before `now`; events after `now` are not written.
pub async fn seed_month(store: &dyn Store, now: DateTime<Utc>) {
    let start = now - Duration::days(34);
    let mut events: Vec<(DateTime<Utc>, usize, &'static str)> = Vec::new();
    for i in 0..28 {
        let opened = start + Duration::hours(25 * i as i64);
        events.push((opened, i, "open"));
        if i % 4 != 3 {
            events.push((opened + Duration::hours(2 + 3 * (i as i64 % 5)), i, "ack"));
        }
        if i == 7 {
            events.push((opened + Duration::days(2), i, "suppress"));
        } else if i % 3 != 2 || i < 8 {
            events.push((opened + Duration::days(1 + i as i64 % 6), i, "fix"));
        }
    }
    events.sort();
    let mut groups: Vec<Option<GroupRecord>> = vec![None; 28];
    for (at, i, what) in events {
        if at > now {
            continue;
        }
        match what {
            "open" => {
                let g = record(i, at);
                write(store, GroupWrite::InsertIfAbsent(g.clone()), at).await;
                groups[i] = Some(g);
            }
            _ => {
                let mut g = groups[i].clone().expect("opened first");
                let l = g.data.lifecycle.as_mut().unwrap();
                match what {
                    "ack" => {
                        l.acknowledged = Some(Ack {
                            by: g.assignee.clone().unwrap(),
                            at,
                        })
                    }
                    "fix" => {
                        l.open = false;
                        l.closure = Some(Closure::Fixed);
                        g.status = GroupStatus::Closed;
                    }
                    _ => {
                        l.open = false;
                        l.closure = Some(Closure::Exception);
                        l.exception = Some(Exception {
                            approver: "cto".into(),
                            approved_at: at,
                            expires_at: now + Duration::days(5),
                            covers: None,
                        });
                        g.status = GroupStatus::Closed;
                    }
                }
                g.updated_at = at;
                let expected = g.version;
                write(
                    store,
                    GroupWrite::Update {
                        record: g.clone(),
                        expected_version: expected,
                    },
                    at,
                )
                .await;
                g.version += 1;
                groups[i] = Some(g);
            }
        }
    }
    // One group still waiting for its issue.
    let mut pending = record(99, now - Duration::hours(1));
    pending.status = GroupStatus::Pending;
    pending.issue_number = None;
    pending.issue_url = None;
    pending.data.lifecycle = None;
    write(
        store,
        GroupWrite::InsertIfAbsent(pending),
        now - Duration::hours(1),
    )
    .await;
    // The tag audit saw two ignore tags, one set within the period.
    let tag = |arn: &str, days_ago: i64, reason: &str| IgnoredResource {
        arn: arn.into(),
        account_id: "111111111111".into(),
        region: "us-east-1".into(),
        reason: reason.into(),
        first_seen: now - Duration::days(days_ago),
        reason_since: now - Duration::days(days_ago),
    };
    store
        .record_ignore_tags(
            &[
                tag("arn:aws:s3:::legacy-logs", 60, "decommissioned in Q1"),
                tag("arn:aws:s3:::test-fixtures", 3, "test data <only>"),
            ],
            now - Duration::days(1),
        )
        .await
        .expect("seed tags");
}
