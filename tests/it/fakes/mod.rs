//! Local, stateful, faithful fakes of GitHub and AWS Security Hub (documentation: see below).

#![allow(dead_code)]

pub mod github;
pub mod openapi;

/// The shared conformance data, or `None` after printing a `SKIPPED:` line to stderr.
/// With `LEVER_REQUIRE_CONFORMANCE=1` a missing directory fails the test instead.
pub fn require_conformance(test: &str) -> Option<std::path::PathBuf> {
    let dir = openapi::conformance_dir();
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("LEVER_REQUIRE_CONFORMANCE").as_deref() == Ok("1") {
        panic!(
            "{test}: {} is absent and LEVER_REQUIRE_CONFORMANCE=1",
            dir.display()
        );
    }
    eprintln!("SKIPPED: {test}: {} is absent", dir.display());
    None
}
