//! Fault tests (issue 10, item 9).

use chrono::TimeDelta;
use lever::clock::Clock;
use lever::store::JobState;
use reqwest::StatusCode;

use crate::support::app::{TestApp, root};

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
