//! Burst drain (`cargo bench --bench burst`), numbers recorded in docs/PERFORMANCE.md.
//!
//! 2,000 new groups over 50 repositories, drained by two workers side by side through the real
//! store, worker, pacing and octocrab client against the fake GitHub enforcing both secondary
//! limits (80 content-creating requests a minute, 500 an hour, per installation), with Lever's
//! content budget at its defaults (80/min, 500/h). Time is scaled by a manual clock, as in
//! `tests/it/pacing.rs`: the fake enforces its windows in the clock's time, Lever paces in it,
//! and the bench moves it to the next due job instead of sleeping, so hours of GitHub time run
//! in seconds. Reports: issues created as a share of what min(80/min, 500/h) allows, breaches
//! (must be 0), and the order (CRITICAL production first).
//!
//! Bounded: at most `BURST_HOURS` (default 8) hours of clock time, and 20 minutes of wall time.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use lever::clock::Clock;
use lever::store::ChangeSet;
use lever::worker::Worker;
use serde_json::{Value, json};

#[path = "../tests/it/fakes/mod.rs"]
#[allow(unused_imports)]
mod fakes;
#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use fakes::github::{SecondaryLimits, TokenKind};
use support::app::{INSTALLATION, TestApp, demo_config_with, root};
use support::targets::{self, Goal};

const GROUPS: usize = 2_000;
const REPOS: usize = 50;
const PER_MINUTE: u32 = 80;
const PER_HOUR: u32 = 500;

/// Priority classes in the order they must open.
const CLASSES: [&str; 3] = ["critical-prod", "critical-staging", "high-prod"];

fn repo(i: usize) -> String {
    format!("acme/svc{i:02}")
}

/// Finding `n` of class `class` in repository `r` (routed by its `team` tag), shaped like the
/// demo's EC2.8 finding.
fn finding(template: &Value, class: usize, n: usize, r: usize) -> Value {
    let (account, severity) = match CLASSES[class] {
        "critical-prod" => ("111111111111", "CRITICAL"),
        "critical-staging" => ("222222222222", "CRITICAL"),
        _ => ("111111111111", "HIGH"),
    };
    let instance = format!("i-{}-{n:05}", CLASSES[class]);
    let mut f = template.clone();
    f["Id"] = json!(format!(
        "arn:aws:securityhub:us-east-1:{account}:security-control/EC2.8/finding/{instance}"
    ));
    f["AwsAccountId"] = json!(account);
    f["Severity"] = json!({"Label": severity, "Original": severity});
    f["Title"] = json!(format!("IMDSv2 on {instance}"));
    f["Resources"][0]["Id"] = json!(format!(
        "arn:aws:ec2:us-east-1:{account}:instance/{instance}"
    ));
    f["Resources"][0]["Tags"] = json!({"team": format!("svc{r:02}")});
    f
}

/// What min(per minute, per hour) allows in the first `elapsed` of a burst starting at once.
fn allowed(elapsed: TimeDelta) -> usize {
    let minutes = (elapsed.num_seconds() as f64 / 60.0).ceil() as usize;
    let hours = (elapsed.num_seconds() as f64 / 3600.0).ceil() as usize;
    // Each started hour allows PER_HOUR, reached at PER_MINUTE a minute from the hour's start.
    let full_hours = hours.saturating_sub(1);
    let last_hour_minutes = minutes.saturating_sub(full_hours * 60);
    full_hours * PER_HOUR as usize
        + (last_hour_minutes * PER_MINUTE as usize).min(PER_HOUR as usize)
}

fn main() {
    let hours: i64 = std::env::var("BURST_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The demo configuration, without Security Hub write-back (this is about GitHub), and
        // one OWNERS line per repository in both accounts.
        let dir = demo_config_with("");
        let toml_path = dir.path().join("lever.toml");
        let toml = std::fs::read_to_string(&toml_path).unwrap();
        std::fs::write(
            &toml_path,
            toml.replacen("[securityhub]\n", "[securityhub]\nwriteback = false\n", 1),
        )
        .unwrap();
        let mut owners = std::fs::read_to_string(dir.path().join("OWNERS")).unwrap();
        for r in 0..REPOS {
            for account in ["111111111111", "222222222222"] {
                owners.push_str(&format!(
                    "account:{account} tag:team=svc{r:02}  {}  @rotation:payments\n",
                    repo(r)
                ));
            }
        }
        std::fs::write(dir.path().join("OWNERS"), owners).unwrap();

        let t = TestApp::builder()
            .config(dir.path())
            .content_budget(PER_MINUTE, PER_HOUR)
            .start()
            .await;
        let mut kv = std::collections::BTreeMap::new();
        for r in 0..REPOS {
            t.gh.add_repo(&repo(r), true, Some(INSTALLATION));
            for p in ["alice", "bob", "sam"] {
                t.gh.add_collaborator(&repo(r), p, "write");
            }
            // The label vocabulary exists (a one-time set-up per repository, not the burst).
            kv.insert(format!("labels:{}", repo(r)), "1".to_string());
        }
        t.app
            .store
            .apply(
                ChangeSet {
                    kv: kv.into_iter().collect(),
                    ..ChangeSet::default()
                },
                t.app.now(),
            )
            .await
            .unwrap();
        let clock = t.clock.clone();
        t.gh.enforce_secondary_limits(SecondaryLimits::new(PER_MINUTE, PER_HOUR), move || {
            clock.now()
        });

        // 2,000 groups: 200 CRITICAL production, 200 CRITICAL staging, 1,600 HIGH production,
        // posted least urgent first (so the order is Lever's, not the arrival's), 100 an event.
        let doc: Value = serde_json::from_slice(
            &std::fs::read(
                root().join("examples/demo/findings/02-payments-prod-checkout-asg-ec2.8.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let template = doc["Findings"][0].clone();
        let mut burst = Vec::with_capacity(GROUPS);
        for n in 0..GROUPS {
            let class = match n {
                n if n < 1_600 => 2,
                n if n < 1_800 => 1,
                _ => 0,
            };
            burst.push(finding(&template, class, n, n % REPOS));
        }
        let wall = Instant::now();
        let start_at = t.clock.now();
        for chunk in burst.chunks(100) {
            let (status, body) = t.post_event(&Value::Array(chunk.to_vec())).await;
            assert_eq!(status.as_u16(), 202, "{body}");
        }
        let intake = wall.elapsed();

        // Two workers side by side; the clock moves to the next due job when both are idle.
        let second = Worker::new(t.app.clone(), "bench-worker-2");
        let workers = [t.worker.clone(), second];
        let until = start_at + TimeDelta::hours(hours);
        let deadline = Instant::now() + Duration::from_secs(20 * 60);
        let mut rounds = 0usize;
        loop {
            rounds += 1;
            let runs = futures::future::join_all(
                workers
                    .iter()
                    .cycle()
                    .skip(rounds % 2)
                    .take(2)
                    .map(|w| w.run_until_idle()),
            )
            .await;
            for r in runs {
                r.expect("store reachable");
            }
            if rounds.is_multiple_of(500) {
                eprintln!(
                    "burst: round {rounds}, clock +{}m, {:.1?} wall, {} content writes accepted",
                    (t.clock.now() - start_at).num_minutes(),
                    wall.elapsed(),
                    t.gh.content_requests(INSTALLATION).len()
                );
            }
            if Instant::now() > deadline {
                println!("burst: STOPPED at the 20-minute wall-time bound");
                break;
            }
            match t.worker.next_due().await.unwrap() {
                Some(next) if next <= until => {
                    if next > t.clock.now() {
                        t.clock.set(next);
                    }
                }
                _ => break,
            }
        }
        let wall = wall.elapsed();

        // The issue creations, in the order the fake answered them, and the times of every
        // content-creating request it accepted (issue creations only, unless Lever wrote
        // something else: the counts below say so).
        let classes: Vec<usize> = t
            .gh
            .requests()
            .iter()
            .filter(|r| {
                r.method == "POST"
                    && r.path.ends_with("/issues")
                    && r.status == 201
                    && matches!(r.token, TokenKind::Installation { .. })
            })
            .filter_map(|r| {
                let body = r.body.as_ref()?["body"].as_str()?.to_string();
                CLASSES.iter().position(|c| body.contains(&format!("i-{c}-")))
            })
            .collect();
        let breaches = t.gh.breaches();
        let accepted = t.gh.content_requests(INSTALLATION);
        let created = classes.len();
        let last = accepted.last().map(|at| *at - start_at).unwrap_or_default();
        // The earliest the last of the accepted writes could have gone under both limits.
        let ideal = (0..)
            .map(TimeDelta::minutes)
            .find(|d| allowed(*d + TimeDelta::seconds(1)) >= accepted.len())
            .unwrap();
        let first_hour = accepted
            .iter()
            .filter(|at| **at < start_at + TimeDelta::hours(1))
            .count();
        let first_minute = accepted
            .iter()
            .filter(|at| **at < start_at + TimeDelta::minutes(1))
            .count();
        // Order: an issue opened while one of a more urgent class still waited.
        let mut out_of_order = 0;
        for (i, class) in classes.iter().enumerate() {
            if classes[i + 1..].iter().any(|c| c < class) {
                out_of_order += 1;
            }
        }
        let per_class: Vec<String> = (0..CLASSES.len())
            .map(|c| {
                let positions: Vec<usize> = classes
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| **k == c)
                    .map(|(i, _)| i + 1)
                    .collect();
                format!(
                    "{}: {} (#{}–#{})",
                    CLASSES[c],
                    positions.len(),
                    positions.first().copied().unwrap_or(0),
                    positions.last().copied().unwrap_or(0)
                )
            })
            .collect();
        println!(
            "burst: {GROUPS} new groups over {REPOS} repositories, two workers, limits {PER_MINUTE}/min and {PER_HOUR}/h (fake GitHub enforcing both), budget {PER_MINUTE}/min {PER_HOUR}/h"
        );
        println!("burst: intake of the 2,000 findings (20 events of 100): {intake:.2?} wall");
        println!(
            "burst: issues created: {created} of {GROUPS}; content-creating requests accepted: {}; breaches: {}",
            accepted.len(),
            breaches.len()
        );
        println!(
            "burst: first minute: {first_minute} (limit {PER_MINUTE}); first hour: {first_hour} (limit {PER_HOUR}) = {:.1} % of the limit",
            first_hour as f64 * 100.0 / PER_HOUR as f64
        );
        println!(
            "burst: last write accepted {}h{:02}m after the burst; the limits allow {} writes by {}h{:02}m at the earliest: {:.1} % of the limit over the whole drain",
            last.num_hours(),
            last.num_minutes() % 60,
            accepted.len(),
            ideal.num_hours(),
            ideal.num_minutes() % 60,
            if last <= ideal {
                100.0
            } else {
                accepted.len() as f64 * 100.0 / allowed(last + TimeDelta::seconds(1)) as f64
            }
        );
        // The same drain against the binding limit as a rate (500 an hour): what the content
        // budget can use over hours, whatever the windows allow at the start of each.
        let hours = last.num_milliseconds() as f64 / 3_600_000.0;
        let sustained = accepted.len() as f64 * 100.0 / hours / PER_HOUR as f64;
        println!(
            "burst: sustained: {} writes in {}h{:02}m = {:.0} an hour = {:.1} % of the {PER_HOUR}/h limit",
            accepted.len(),
            last.num_hours(),
            last.num_minutes() % 60,
            accepted.len() as f64 / hours,
            sustained
        );
        println!(
            "burst: order: {}; opened before a more urgent waiting one: {out_of_order}",
            per_class.join(", ")
        );
        println!("burst: wall time {wall:.2?} for the drain ({rounds} rounds, clock time {}h{:02}m)",
            (t.clock.now() - start_at).num_hours(),
            (t.clock.now() - start_at).num_minutes() % 60
        );
        for b in breaches.iter().take(5) {
            println!("burst: BREACH {b:?}");
        }
        targets::report("burst drain: share of the 500/h secondary limit used (sustained)", sustained, Goal::AtLeast(95.0), " %");
        targets::report("burst drain: secondary-limit breaches", breaches.len() as f64, Goal::AtMost(0.0), "");
    });
}
