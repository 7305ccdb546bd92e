use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::*;
use crate::config::RepoName;
use crate::domain::GroupKey;
use crate::domain::lifecycle::{Ack, Exception, State};
use crate::routing::Route;
use crate::store::{GroupData, GroupRecord, GroupStatus, HistoryRow, HistoryState};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A history row of `key` in `repo`.
fn h(seq: i64, key: &str, repo: &str, sev: Severity, state: HistoryState, at: &str) -> HistoryRow {
    HistoryRow {
        seq,
        group_key: GroupKey(key.into()),
        repo: repo.into(),
        account_id: "111111111111".into(),
        environment: "production".into(),
        severity: sev,
        state,
        at: t(at),
    }
}

fn group(key: &str, repo: &str, number: u64, status: GroupStatus, state: State) -> GroupRecord {
    GroupRecord {
        group_key: GroupKey(key.into()),
        repo: repo.into(),
        issue_number: Some(number),
        issue_url: Some(format!("https://github.com/{repo}/issues/{number}")),
        status,
        assignee: state.assignee.clone(),
        data: GroupData {
            route: Route {
                repo: RepoName::parse(repo).unwrap(),
                rule_line: None,
                chain: vec![],
                warnings: vec![],
                assignees: vec![],
            },
            account_id: "111111111111".into(),
            environment: "production".into(),
            mode: "enforce".into(),
            severity: Severity::High,
            control_id: None,
            title: "t".into(),
            reason: String::new(),
            lifecycle: Some(state),
            recreated_from: None,
            last_event_at: None,
            reroute: None,
        },
        created_at: t("2026-11-01T00:00:00Z"),
        updated_at: t("2026-11-01T00:00:00Z"),
        version: 1,
    }
}

const SINCE: &str = "2026-11-01T00:00:00Z";
const NOW: &str = "2026-11-04T12:00:00Z";

fn period() -> Period {
    Period {
        since: t(SINCE),
        now: t(NOW),
        expiring: Duration::days(14),
    }
}

use HistoryState::*;
use Severity::*;

/// A month in miniature: A open before the period, acknowledged and fixed in it; B opened in it
/// and still open; C suppressed by an exception; D opened and closed before the period; E
/// reopened in the period; F pending only.
fn history() -> Vec<HistoryRow> {
    vec![
        h(1, "A", "acme/web", Critical, Open, "2026-10-30T00:00:00Z"),
        h(
            2,
            "A",
            "acme/web",
            Critical,
            Acknowledged,
            "2026-11-01T12:00:00Z",
        ),
        h(3, "A", "acme/web", Critical, Closed, "2026-11-03T00:00:00Z"),
        h(4, "B", "acme/web", High, Pending, "2026-11-02T00:00:00Z"),
        h(5, "B", "acme/web", High, Open, "2026-11-02T01:00:00Z"),
        h(6, "C", "acme/api", Medium, Open, "2026-11-01T06:00:00Z"),
        h(
            7,
            "C",
            "acme/api",
            Medium,
            Acknowledged,
            "2026-11-01T08:00:00Z",
        ),
        h(
            8,
            "C",
            "acme/api",
            Medium,
            Suppressed,
            "2026-11-02T06:00:00Z",
        ),
        h(9, "D", "acme/api", Low, Open, "2026-10-01T00:00:00Z"),
        h(10, "D", "acme/api", Low, Closed, "2026-10-02T00:00:00Z"),
        h(11, "D", "acme/api", Low, Open, "2026-11-04T00:00:00Z"),
        h(12, "F", "acme/api", Low, Pending, "2026-11-04T00:00:00Z"),
        // A row after `now` is not seen.
        h(13, "B", "acme/web", High, Closed, "2026-11-05T00:00:00Z"),
    ]
}

fn report() -> Report {
    let rows = history();
    compute(
        Inputs {
            history: &rows,
            groups: &[],
            ignore_tags: &[],
            accounts: &[],
        },
        period(),
    )
}

#[test]
fn counts_by_team_and_severity_now_and_at_the_start() {
    let r = report();
    let web = r.teams.iter().find(|t| t.team == "acme/web").unwrap();
    let api = r.teams.iter().find(|t| t.team == "acme/api").unwrap();
    #[rustfmt::skip]
    let rows: Vec<(&str, u32, u32)> = vec![
        ("web open now (B high)", web.open_now.total(), 1),
        ("web high now", web.open_now.high, 1),
        ("web critical now (A fixed)", web.open_now.critical, 0),
        ("web open at start (A)", web.open_at_start.total(), 1),
        ("web critical at start", web.open_at_start.critical, 1),
        ("web opened (B)", web.opened, 1),
        ("web closed (A)", web.closed, 1),
        ("api open now (D reopened)", api.open_now.total(), 1),
        ("api low now", api.open_now.low, 1),
        ("api open at start (none: C opened after)", api.open_at_start.total(), 0),
        ("api opened (C, D again)", api.opened, 2),
        ("api closed (C suppressed)", api.closed, 1),
        ("total now", r.totals.open_now.total(), 2),
        ("total at start", r.totals.open_at_start.total(), 1),
        ("total opened", r.totals.opened, 3),
        ("total closed", r.totals.closed, 2),
        ("acknowledged now", r.totals.acknowledged_now, 0),
    ];
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(name, got, want)| format!("{name}: {got}, expected {want}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn times_to_acknowledge_and_fix() {
    let r = report();
    let web = r.teams.iter().find(|t| t.team == "acme/web").unwrap();
    let api = r.teams.iter().find(|t| t.team == "acme/api").unwrap();
    // A: opened 10-30 00:00, acknowledged 11-01 12:00 (60 h), fixed 11-03 00:00 (96 h).
    assert_eq!(web.time_to_acknowledge.mean_hours, Some(60.0));
    assert_eq!(web.time_to_fix.mean_hours, Some(96.0));
    // C: acknowledged after 2 h; suppressed, which is not a fix.
    assert_eq!(api.time_to_acknowledge.mean_hours, Some(2.0));
    assert_eq!(api.time_to_fix, Timing::default());
    assert_eq!(r.totals.time_to_acknowledge.count, 2);
    assert_eq!(r.totals.time_to_acknowledge.mean_hours, Some(31.0));
    assert_eq!(r.totals.time_to_acknowledge.p90_hours, Some(60.0));
}

#[test]
fn percentiles_are_nearest_rank() {
    let hours = |v: &[i64]| v.iter().map(|h| Duration::hours(*h)).collect::<Vec<_>>();
    #[rustfmt::skip]
    let rows: &[(&[i64], Option<f64>, Option<f64>)] = &[
        (&[], None, None),
        (&[5], Some(5.0), Some(5.0)),
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Some(5.5), Some(9.0)),
        (&[10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100], Some(14.09), Some(10.0)),
        (&[1, 3], Some(2.0), Some(3.0)),
    ];
    for (samples, mean, p90) in rows {
        let got = Timing::of(&hours(samples));
        assert_eq!(
            (got.mean_hours, got.p90_hours),
            (*mean, *p90),
            "{samples:?}"
        );
        assert_eq!(got.count as usize, samples.len());
    }
}

#[test]
fn the_burndown_has_one_point_per_day_at_its_end() {
    let r = report();
    let days: Vec<(NaiveDate, u32, u32)> = r
        .burndown
        .iter()
        .map(|p| (p.date, p.open.critical, p.open.total()))
        .collect();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(
        days,
        vec![
            // 11-01 end: A (critical, acknowledged), C (acknowledged).
            (d("2026-11-01"), 1, 2),
            // 11-02 end: A, B; C suppressed.
            (d("2026-11-02"), 1, 2),
            // 11-03 end: A fixed; B.
            (d("2026-11-03"), 0, 1),
            // 11-04 at now: B, D reopened (F is pending, not open).
            (d("2026-11-04"), 0, 2),
        ]
    );
}

#[test]
fn lists_come_from_the_groups_as_they_are() {
    let now = t(NOW);
    let overdue = State {
        open: true,
        assignee: Some("alice".into()),
        due: Some(now - Duration::days(1)),
        ..State::default()
    };
    let acked = State {
        open: true,
        acknowledged: Some(Ack {
            by: "bob".into(),
            at: now - Duration::hours(3),
        }),
        due: Some(now + Duration::days(3)),
        ..State::default()
    };
    let exception = |days: i64| State {
        exception: Some(Exception {
            approver: "cto".into(),
            approved_at: now - Duration::days(30),
            expires_at: now + Duration::days(days),
            covers: None,
        }),
        ..State::default()
    };
    let groups = vec![
        group("G1", "acme/web", 1, GroupStatus::Open, overdue),
        group("G2", "acme/web", 2, GroupStatus::Open, acked),
        group("G3", "acme/api", 3, GroupStatus::Closed, exception(10)),
        group("G4", "acme/api", 4, GroupStatus::Closed, exception(20)),
    ];
    let r = compute(
        Inputs {
            history: &[],
            groups: &groups,
            ignore_tags: &[],
            accounts: &[],
        },
        period(),
    );
    let issues = |v: &[IssueLine]| v.iter().map(|i| i.issue.clone()).collect::<Vec<_>>();
    assert_eq!(issues(&r.overdue), vec!["acme/web#1"]);
    assert_eq!(issues(&r.not_acknowledged), vec!["acme/web#1"]);
    assert_eq!(
        r.expiring
            .iter()
            .map(|e| e.issue.as_str())
            .collect::<Vec<_>>(),
        vec!["acme/api#3"],
        "only within 14 days"
    );
    let web = r.teams.iter().find(|t| t.team == "acme/web").unwrap();
    assert_eq!((web.overdue, web.not_acknowledged), (1, 1));
    assert_eq!((r.totals.overdue, r.totals.not_acknowledged), (1, 1));
}

#[test]
fn rampup_and_recent_ignore_tags() {
    use crate::config::rampup::RampSchedule;
    use crate::config::{IgnoreTags, Mode};
    use crate::domain::tags::IgnoredResource;
    let account = |id: &str, mode: Mode, schedule: RampSchedule| AccountPolicy {
        id: Some(id.into()),
        name: Some(format!("acct-{id}")),
        environment: "staging".into(),
        min_severity: Critical,
        mode,
        ignore_tags: IgnoreTags::RampUp,
        schedule,
    };
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let accounts = vec![
        account(
            "111111111111",
            Mode::RampUp,
            RampSchedule {
                enforce_from: Some(d("2026-12-01")),
                min_severity_from: [(d("2026-11-02"), High)].into(),
            },
        ),
        account("222222222222", Mode::Enforce, RampSchedule::default()),
    ];
    let tag = |arn: &str, account: &str, since: &str| IgnoredResource {
        arn: arn.into(),
        account_id: account.into(),
        region: "us-east-1".into(),
        reason: "decommissioning | <b>@team</b>".into(),
        first_seen: t(since),
        reason_since: t(since),
    };
    let tags = vec![
        tag("arn:old", "111111111111", "2026-10-01T00:00:00Z"),
        tag("arn:new", "111111111111", "2026-11-03T00:00:00Z"),
    ];
    let rows = history();
    let r = compute(
        Inputs {
            history: &rows,
            groups: &[],
            ignore_tags: &tags,
            accounts: &accounts,
        },
        period(),
    );
    assert_eq!(r.rampup.len(), 1, "only the account with a schedule");
    let a = &r.rampup[0];
    assert_eq!(a.mode, Mode::RampUp);
    assert_eq!(a.min_severity, High, "the step of 11-02 applies");
    assert_eq!(a.next_change, Some(t("2026-12-01T00:00:00Z")));
    assert_eq!(a.open_issues, 2);
    assert_eq!(a.ignored_resources, 2);
    assert_eq!(
        r.ignore_tags
            .iter()
            .map(|t| t.arn.as_str())
            .collect::<Vec<_>>(),
        vec!["arn:new"]
    );
    // Untrusted reasons stay inert in Markdown.
    let md = markdown(&r);
    assert!(md.contains("`decommissioning   <b>@team</b>`"), "{md}");
}

#[test]
fn markdown_and_csv_carry_the_numbers() {
    let r = report();
    let md = markdown(&r);
    assert!(
        md.contains("**2** open issue(s) now (1 at the start), 3 opened and 2 closed"),
        "{md}"
    );
    assert!(md.contains("| `acme/web` | 0 | 1 | 0 | 0 | 0 | 1 | 1 | 1 | 0 | 0 | 60.0 h / 60.0 h | 96.0 h / 96.0 h |"), "{md}");
    let csv = csv(&r);
    assert!(
        csv.contains("team,acme/web,0,1,0,0,0,1,1,1,0,0,60.00,60.00,96.00,96.00\n"),
        "{csv}"
    );
    assert!(csv.contains("burndown,2026-11-03,0,1,0,0,0\n"), "{csv}");
}

#[test]
fn csv_fields_cannot_become_formulas_or_break_rows() {
    let mut r = report();
    r.teams[0].team = "=HYPERLINK(\"x\",\"y\")".into();
    let csv = csv(&r);
    assert!(
        csv.contains("team,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",0"),
        "{csv}"
    );
}
