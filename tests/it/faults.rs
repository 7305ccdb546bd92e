//! Fault tests (issue 10, item 9): a realistic scenario driven through the real worker while the
//! fake GitHub answers 30 % of the calls with 500/502, timeouts, connection resets and
//! secondary-limit 403s, and the fake Security Hub throttles and leaves findings unprocessed;
//! then the faults stop and the worker runs to quiescence. After recovery: every group has
//! exactly one issue, every approved exception is written back, and every finding's workflow in
//! Security Hub is what Lever last decided.
//!
//! The random faults are seeded: the seed is printed, and `LEVER_FAULT_SEED=N` replays a run.
//! Time is the test's manual clock (moved to the next due job, never slept), except the
//! timeouts, which cost [`CLIENT_TIMEOUT`] of real time each.

use std::time::Duration;

use chrono::TimeDelta;
use lever::clock::Clock;
use lever::domain::WorkflowStatus;
use lever::store::JobState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::github::WebhookDelivery;
use crate::support::app::{TestApp, root};

/// Lever's GitHub read timeout in these tests: a call the fake stalls fails after this.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);
/// The share of calls that fail while the faults are on.
const PERCENT: u32 = 30;

/// The seed of this run: `LEVER_FAULT_SEED`, or a fresh one (printed either way).
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{var}={s:?}: not a u64"))
        })
        .unwrap_or_else(rand::random);
    eprintln!("{var}={seed} (set it to replay this run)");
    seed
}

/// A Security Hub control finding (EC2.8) of `account` on `instance`, in Auto Scaling group
/// `asg` (one issue per group), with more resource tags; `passed` makes it a later PASSED.
pub fn finding(
    account: &str,
    instance: &str,
    asg: &str,
    tags: &[(&str, &str)],
    passed: bool,
) -> Value {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(
            root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut f = doc["Findings"][0].clone();
    f["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:{account}:security-control/EC2.8/finding/{instance}"
    ));
    f["AwsAccountId"] = json!(account);
    f["Severity"] = json!({"Label": "CRITICAL", "Original": "CRITICAL"});
    f["Title"] = json!(format!("IMDSv2 on {instance}"));
    f["Resources"][0]["Id"] = json!(format!(
        "arn:aws:ec2:us-east-1:{account}:instance/{instance}"
    ));
    let mut t = serde_json::Map::new();
    t.insert("aws:autoscaling:groupName".into(), json!(asg));
    for (k, v) in tags {
        t.insert((*k).into(), json!(v));
    }
    f["Resources"][0]["Tags"] = Value::Object(t);
    f["UpdatedAt"] = json!("2026-11-22T10:00:00.000Z");
    if passed {
        f["Compliance"]["Status"] = json!("PASSED");
        f["UpdatedAt"] = json!("2026-11-23T12:30:00.000Z");
    }
    f
}

/// The scenario's groups: (account, Auto Scaling group, extra tags, repository they go to).
/// (account, Auto Scaling group, extra resource tags, repository).
type Group = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const GROUPS: &[Group] = &[
    ("111111111111", "asg-checkout", &[], "acme/payments"),
    ("111111111111", "asg-cart", &[], "acme/payments"),
    ("111111111111", "asg-search", &[], "acme/payments"),
    (
        "111111111111",
        "asg-ledger-api",
        &[("team", "ledger")],
        "acme/ledger",
    ),
    (
        "111111111111",
        "asg-ledger-batch",
        &[("team", "ledger")],
        "acme/ledger",
    ),
    ("999999999999", "asg-sandbox-a", &[], "acme/security"),
    ("999999999999", "asg-sandbox-b", &[], "acme/security"),
];
/// Findings (instances) per group.
const PER_GROUP: usize = 3;

fn group_findings(g: usize, passed: bool) -> Vec<Value> {
    let (account, asg, tags, _) = GROUPS[g];
    (0..PER_GROUP)
        .map(|i| finding(account, &format!("i-{asg}-{i}"), asg, tags, passed))
        .collect()
}

/// Posts the webhooks GitHub queued (Lever's own calls) and the deliveries given, forwards
/// Security Hub's Imported events, runs due jobs. Whether anything was delivered or ran.
async fn round(t: &TestApp, deliveries: Vec<WebhookDelivery>) -> bool {
    let ran = !t.drain().await.is_empty();
    let mut queue = deliveries;
    queue.extend(t.gh.drain_webhooks());
    let delivered = !queue.is_empty();
    for d in &queue {
        let (status, body) = t.post_webhook(d).await;
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status} {body}"
        );
    }
    let echoed = t.forward_securityhub_events().await > 0;
    let ran_after = !t.drain().await.is_empty();
    ran || delivered || echoed || ran_after
}

/// When [`run_until`] stops.
#[derive(Clone, Copy)]
enum Until {
    /// Every group has its issue.
    Opened,
    /// Nothing but periodic work is due before the horizon.
    Quiet,
}

/// Runs rounds, moving the clock to the next due job (not a periodic one, and not beyond
/// `horizon`), until `until` holds after a quiet round. Panics after `max` rounds.
async fn run_until(t: &TestApp, horizon: chrono::DateTime<chrono::Utc>, max: usize, until: Until) {
    for _ in 0..max {
        let busy = round(t, vec![]).await;
        let done = match until {
            Until::Opened => all_opened(t).await,
            Until::Quiet => quiet(t, horizon).await,
        };
        if !busy && done {
            return;
        }
        let next = (t
            .app
            .store
            .jobs(Some(JobState::Pending))
            .await
            .unwrap()
            .iter())
        .filter(|j| !j.job.is_periodic())
        .map(|j| j.run_at)
        .min();
        match next {
            Some(at) if at > t.clock.now() && at <= horizon => t.clock.set(at),
            Some(at) if at <= t.clock.now() => {}
            // Only periodic work (or work past the horizon) is left: a bit of time passes.
            _ => t.clock.advance(TimeDelta::minutes(1)),
        }
    }
    let pending: Vec<String> = (t
        .app
        .store
        .jobs(Some(JobState::Pending))
        .await
        .unwrap()
        .iter())
    .filter(|j| !j.job.is_periodic())
    .map(|j| {
        format!(
            "{} {} at {} ({} attempts): {:?}",
            j.job.kind(),
            j.job.subject(),
            j.run_at,
            j.attempts,
            j.last_error
        )
    })
    .collect();
    let groups: Vec<String> = (t.app.store.list_groups(None).await.unwrap().iter())
        .map(|g| format!("{} {:?} {}", g.group_key, g.issue_number, g.status))
        .collect();
    panic!(
        "not done after {max} rounds (now {}):\npending: {pending:#?}\ngroups: {groups:#?}",
        t.clock.now()
    );
}

/// Every group Lever knows has its issue.
async fn all_opened(t: &TestApp) -> bool {
    let groups = t.app.store.list_groups(None).await.unwrap();
    groups.len() == GROUPS.len() && groups.iter().all(|g| g.issue_number.is_some())
}

/// No job other than the periodic ones is pending before `horizon`.
async fn quiet(t: &TestApp, horizon: chrono::DateTime<chrono::Utc>) -> bool {
    (t.app
        .store
        .jobs(Some(JobState::Pending))
        .await
        .unwrap()
        .iter())
    .all(|j| j.job.is_periodic() || j.run_at > horizon)
        && t.gh.pending_webhooks().is_empty()
}

/// Whether the group key names the Auto Scaling group `asg`.
fn names(key: &lever::domain::GroupKey, asg: &str) -> bool {
    key.0.split(['|', ':', '=', '/']).any(|part| part == asg)
}

/// The issue of the group whose Auto Scaling group is `asg`: (repository, number).
async fn issue_of(t: &TestApp, asg: &str) -> (String, u64) {
    let g = (t.app.store.list_groups(None).await.unwrap().into_iter())
        .find(|g| names(&g.group_key, asg))
        .unwrap_or_else(|| panic!("no group for {asg}"));
    (g.repo.clone(), g.issue_number.expect("opened"))
}

async fn faults_then_recovery(t: TestApp, seed: u64) {
    let start = t.clock.now();
    let horizon = start + TimeDelta::days(2);
    t.gh.chaos(seed, PERCENT, CLIENT_TIMEOUT);
    t.sh.chaos(seed.wrapping_add(1), PERCENT);

    // Findings of every group, in a few events, as EventBridge sends them.
    for g in 0..GROUPS.len() {
        let fs = group_findings(g, false);
        t.sh.seed(Value::Array(fs.clone()));
        let (status, body) = t.post_event(&Value::Array(fs)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    t.sh.drain_events();
    run_until(&t, horizon, 400, Until::Opened).await;

    // People act on the issues while the faults go on: a label, a close, and an exception
    // asked for and approved by the CTO; one group's resources are fixed.
    let (checkout_repo, checkout) = issue_of(&t, "asg-checkout").await;
    let (cart_repo, cart) = issue_of(&t, "asg-cart").await;
    let (ledger_repo, ledger) = issue_of(&t, "asg-ledger-api").await;
    round(
        &t,
        vec![
            t.gh.human_add_label(&checkout_repo, checkout, "acknowledged", "bob"),
            t.gh.human_close(&cart_repo, cart, "completed", "alice"),
            t.gh.human_add_label(&ledger_repo, ledger, "exception-requested", "carol"),
        ],
    )
    .await;
    round(
        &t,
        vec![t.gh.human_add_label(&ledger_repo, ledger, "cto-approved", "cto-user")],
    )
    .await;
    round(
        &t,
        vec![t.gh.human_close(&ledger_repo, ledger, "not_planned", "carol")],
    )
    .await;
    // Security Hub resolves the fixed group's findings itself; its Imported events tell Lever.
    t.sh.drain_events();
    t.sh.seed(Value::Array(group_findings(2, true)));
    assert_eq!(t.forward_securityhub_events().await, PER_GROUP);
    for _ in 0..30 {
        round(&t, vec![]).await;
        t.clock.advance(TimeDelta::minutes(2));
    }

    // Recovery: the faults stop; the worker runs to quiescence.
    let hits = t.gh.calm();
    t.sh.calm();
    eprintln!("GitHub faults: {hits:?}");
    assert_eq!(hits.len(), 6, "every kind of fault happened: {hits:?}");
    run_until(&t, horizon, 400, Until::Quiet).await;

    // Every group has exactly one issue: the one it records, carrying its marker.
    let groups = t.app.store.list_groups(None).await.unwrap();
    assert_eq!(groups.len(), GROUPS.len());
    let mut all_issues = 0;
    for repo in [
        "acme/payments",
        "acme/ledger",
        "acme/platform",
        "acme/security",
    ] {
        all_issues += t.gh.issues(repo).len();
    }
    assert_eq!(all_issues, GROUPS.len(), "one issue per group, no more");
    for g in &groups {
        let (_, _, _, repo) = *GROUPS
            .iter()
            .find(|(_, asg, _, _)| names(&g.group_key, asg))
            .unwrap();
        assert_eq!(g.repo, repo, "{}", g.group_key.0);
        let with_marker: Vec<u64> = (t.gh.issues(repo).iter())
            .filter(|i| {
                i["body"]
                    .as_str()
                    .and_then(lever::explain::parse_marker)
                    .as_ref()
                    == Some(&g.group_key)
            })
            .map(|i| i["number"].as_u64().unwrap())
            .collect();
        assert_eq!(with_marker, [g.issue_number.unwrap()], "{}", g.group_key.0);
    }

    // The approved exception is written back: SUPPRESSED, with its note.
    let ledger_group = t
        .app
        .store
        .group_by_issue(&ledger_repo, ledger)
        .await
        .unwrap()
        .unwrap();
    let ledger_findings = t
        .app
        .store
        .findings_in_group(&ledger_group.group_key)
        .await
        .unwrap();
    assert_eq!(ledger_findings.len(), PER_GROUP);
    for f in &ledger_findings {
        let in_sh = t.sh.finding(&f.finding_id).unwrap();
        assert_eq!(
            in_sh["Workflow"]["Status"], "SUPPRESSED",
            "{}",
            f.finding_id
        );
        let note = in_sh["Note"]["Text"].as_str().unwrap_or_default();
        assert!(
            note.starts_with("Exception approved by cto-user"),
            "{}: {note:?}",
            f.finding_id
        );
    }

    // Every finding's workflow in Security Hub is what Lever last decided.
    let mut decided = std::collections::BTreeMap::new();
    for g in &groups {
        for f in t.app.store.findings_in_group(&g.group_key).await.unwrap() {
            let last = f.lever_writes.last().map(|w| w.workflow);
            decided.insert(f.finding_id.clone(), (f.workflow, last));
        }
    }
    assert_eq!(decided.len(), GROUPS.len() * PER_GROUP);
    let mut wrong = vec![];
    for (id, (stored, last_written)) in &decided {
        let in_sh = t.sh.finding(id).unwrap();
        let in_sh = in_sh["Workflow"]["Status"]
            .as_str()
            .unwrap_or("NEW")
            .to_string();
        let stored = stored.to_string();
        let last_written = last_written.map(|w| w.to_string());
        // Lever writes NOTIFIED and SUPPRESSED; Security Hub itself resolves what passes.
        let lever_decides = in_sh != "RESOLVED";
        if in_sh != stored || (lever_decides && last_written.as_deref() != Some(in_sh.as_str())) {
            wrong.push(format!(
                "{id}: Security Hub {in_sh}, stored {stored}, last written {last_written:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "seed {seed}:\n{}", wrong.join("\n"));
    // The fixed group's findings are RESOLVED, the others NOTIFIED or SUPPRESSED.
    for f in group_findings(2, true) {
        let id = f["Id"].as_str().unwrap();
        assert_eq!(
            decided[id].0,
            WorkflowStatus::Resolved,
            "{id}: the fixed group's finding"
        );
    }
    t.gh.assert_conformant();
    t.sh.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_github_and_security_hub_faults_everything_converges_sqlite() {
    let seed = seed("LEVER_FAULT_SEED");
    let t = TestApp::builder()
        .github_timeout(CLIENT_TIMEOUT)
        .start()
        .await;
    faults_then_recovery(t, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_github_and_security_hub_faults_everything_converges_postgres() {
    let Some(url) = crate::support::pg::or_skip(
        "after_github_and_security_hub_faults_everything_converges_postgres",
    )
    .await
    else {
        return;
    };
    let seed = seed("LEVER_FAULT_SEED");
    let t = TestApp::builder()
        .github_timeout(CLIENT_TIMEOUT)
        .postgres(url)
        .start()
        .await;
    faults_then_recovery(t, seed).await;
}

/// Found by the fault test: an App call (installation lookup, installation token) refused
/// with a secondary limit and `Retry-After: 60` is retried 60 s later on Lever's clock, not on
/// the wall clock (with the tests' manual clock, the retry was days away).
#[tokio::test]
async fn an_app_call_refused_with_retry_after_is_retried_on_levers_clock() {
    use crate::fakes::github::FaultKind;
    let t = TestApp::start().await;
    let limited = FaultKind::SecondaryRateLimit {
        status: 403,
        retry_after_secs: 60,
    };
    t.gh.inject("GET", "/repos/*/*/installation", limited.clone(), 1);
    t.gh.inject("POST", "/app/installations/*/access_tokens", limited, 1);
    let (status, _) = t
        .ingest_file(&root().join("examples/demo/findings/03-payments-prod-ledger-rds.2.json"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Each of the two refusals postpones the job by the minute GitHub asked for.
    for _ in 0..2 {
        let reports = t.drain().await;
        let open = (t
            .app
            .store
            .jobs(Some(JobState::Pending))
            .await
            .unwrap()
            .into_iter())
        .find(|j| j.job.kind() == "open-issue")
        .unwrap_or_else(|| panic!("the open-issue job waits: {reports:?}"));
        let wait = open.run_at - t.clock.now();
        assert!(
            wait > TimeDelta::seconds(55) && wait <= TimeDelta::seconds(62),
            "retried in {wait} (at {}, now {})",
            open.run_at,
            t.clock.now()
        );
        t.clock.set(open.run_at);
    }
    t.drain().await;
    assert_eq!(t.gh.issues("acme/ledger").len(), 1);
}
