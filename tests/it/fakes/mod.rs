//! Local, stateful, faithful fakes of GitHub and AWS Security Hub (documentation: see below).

#![allow(dead_code)]

pub mod awsmodel;
pub mod github;
pub mod openapi;
pub mod securityhub;

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
    // Written to the real stderr, not through `eprintln!`, so that libtest's output capture
    // does not hide it.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: {} is absent",
        dir.display()
    );
    None
}

/// Stack size for [`run_with_big_stack`]: 32 MiB.
pub const BIG_STACK: usize = 32 * 1024 * 1024;

/// Run an async test body on a fresh current-thread tokio runtime, on a thread with a
/// [`BIG_STACK`]-byte stack; panics propagate.
///
/// Why: in debug builds, aws-sdk-securityhub's deserializer for `AwsSecurityFinding` (hundreds
/// of nested `Resources[].Details` types) needs between 8 and 12 MiB of stack for ordinary real
/// findings; libtest and tokio threads get 2 MiB, so `#[tokio::test]` aborts with a stack
/// overflow. Anything that runs GetFindings through the SDK in a debug build needs this (or
/// `RUST_MIN_STACK`, or a runtime with `thread_stack_size`).
pub fn run_with_big_stack<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let handle = std::thread::Builder::new()
        .name("big-stack-test".into())
        .stack_size(BIG_STACK)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(body())
        })
        .expect("spawn big-stack thread");
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}
