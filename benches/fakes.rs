//! The test suite's fake GitHub as a standalone server for the benchmark scripts
//! (`tools/bench/intake.sh`): the demo's installation and repositories, the test App's key,
//! GitHub's secondary limits enforced in real time (80 content-creating requests a minute,
//! 500 an hour). Prints `fake-github: <url>` and serves until killed. So that a benchmark of
//! intake measures Lever with its workers doing what they do in production during a flood
//! (opening issues within GitHub's limits, postponing the rest) rather than retrying against
//! an unreachable GitHub.

use std::io::Write;

#[path = "../tests/it/fakes/mod.rs"]
#[allow(unused_imports)]
mod fakes;
#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use fakes::github::{FakeGitHub, SecondaryLimits};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let gh = FakeGitHub::start_with_test_app().await;
        support::app::demo_github(&gh);
        gh.enforce_secondary_limits(SecondaryLimits::github(), chrono::Utc::now);
        println!("fake-github-app-id: {}", fakes::github::TEST_APP_ID);
        println!("fake-github: {}", gh.url());
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
}
