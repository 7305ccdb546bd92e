//! Local, stateful, faithful fakes of GitHub and AWS Security Hub, for integration tests that
//! drive the REAL octocrab and aws-sdk-securityhub clients (GitHub and AWS are unreachable here).
//!
//! ```rust,ignore
//! use crate::fakes::github::FakeGitHub;
//! use crate::fakes::securityhub::FakeSecurityHub;
//!
//! // GitHub: the test App (id 424242, slug `lever-test`, committed throwaway key) installed on
//! // org `acme` as installation 7, with one private repo and an assignable person.
//! let gh = FakeGitHub::start_with_test_app().await;
//! gh.add_installation(7, "acme");
//! gh.add_repo("acme/payments", true, Some(7));
//! gh.add_collaborator("acme/payments", "alice", "write");    // assignable
//! gh.add_team_member("acme", "security", "alice", "active");
//! // Point Lever at gh.url() with App id fakes::github::TEST_APP_ID and private key
//! // fakes::github::TEST_APP_PRIVATE_KEY_PEM (or use gh.app_client() for a ready octocrab).
//!
//! // Security Hub: point the SDK at sh.url() (config `endpoint_url`, or env
//! // AWS_ENDPOINT_URL_SECURITYHUB), region us-east-1, any static credentials.
//! let sh = FakeSecurityHub::start().await;
//! sh.seed_file(&conformance.join("asff/findings/asr-layer-test-CIS-1.3.json"));
//!
//! // ... run Lever ...
//!
//! // What GitHub would now send to Lever's webhook URL (Lever's own changes, sender = bot):
//! for d in gh.drain_webhooks() { d.send(&http, &lever_webhook_url, SECRET).await?; }
//! // A person acts in the UI; the helper returns the delivery (it is not queued):
//! let d = gh.human_add_label("acme/payments", 1, "cto-approved", "alice");
//! // Lever's Security Hub writes, echoed back as EventBridge "Findings - Imported" events:
//! for e in sh.drain_events() { /* POST e to /events/securityhub */ }
//!
//! gh.assert_conformant();   // requests valid per GitHub's OpenAPI, responses too
//! sh.assert_conformant();   // requests valid per the botocore model + documented limits
//! ```
//!
//! # API in brief
//! - [`github::FakeGitHub`]: `start`, `start_with_test_app`, `url`, `app_client`; setup
//!   `set_app`, `add_user`, `add_org`, `add_installation`, `add_repo`, `add_collaborator`,
//!   `remove_collaborator`, `add_team`, `add_team_member`, `remove_team_member`, `add_label`;
//!   clock and tokens `now`, `advance_clock`, `freeze_clock`, `revoke_tokens`, `tokens_issued`,
//!   `mint_installation_token`; search `lag_search_index`, `refresh_search_index`; faults
//!   `inject`, `fail_next`, `fail_after_effect`, `rate_limit_next`, `clear_faults`; limits
//!   `enforce_secondary_limits` ([`github::SecondaryLimits`], in the test's time), `breaches`,
//!   `content_requests`; inspection
//!   `requests`, `count`, `violations`, `response_violations`, `assert_conformant`, `issue`,
//!   `issues`, `comments`, `events`, `repo_labels`; what GitHub would find in the texts written
//!   (rendered as GitHub renders them, see `github/markdown.rs`) `mentions`, `references`,
//!   `links`; webhooks `drain_webhooks`,
//!   `pending_webhooks`, `human_open_issue`, `human_add_label`, `human_remove_label`,
//!   `human_close`, `human_reopen`, `human_assign`, `human_unassign`, `human_comment`,
//!   `human_edit_comment`,
//!   `human_edit`, `human_delete_issue`, `human_transfer_issue`. [`github::WebhookDelivery`]
//!   (`body`, `headers`, `send`, `schema_name`, `sender`) and [`github::sign`].
//! - [`securityhub::FakeSecurityHub`]: `start`, `url`, `client`, `config_builder`; `seed`,
//!   `seed_file`, `finding`, `findings`, `set_home_account`, `advance_clock`, `drain_events`;
//!   faults `fail_next`, `throttle_next`, `unavailable_next`, `force_unprocessed`; inspection
//!   `requests`, `count`, `violations`, `response_violations`, `unsupported`,
//!   `assert_conformant`.
//! - [`openapi`] and [`awsmodel`]: the validators, usable on their own.
//! - [`require_conformance`] (skip loudly without `../shared/conformance`) and
//!   [`run_with_big_stack`] (needed for SDK GetFindings in debug builds, see there).
//!
//! # Known limits of faithfulness
//! GitHub: no pull requests, milestones, reactions, locking, issue types or projects; label
//! colours of implicitly created labels are `ededed`; assignable = repository collaborator
//! (any role); `author_association` is OWNER/COLLABORATOR/NONE only; an App JWT on a repository
//! endpoint gets 403 "Resource not accessible by integration" and a request without
//! authentication gets 404 (private repo) or 401 "Requires authentication" (write) — GitHub's
//! exact answers there are assumptions; `PATCH` with a non-assignable assignee answers 422 like
//! create (assumption); search understands `repo:`, `is:`/`state:`, `type:`, `label:`,
//! `-label:`, `author:`, `assignee:`, `in:` and free-text substrings (GitHub tokenizes words and
//! may not index everything, e.g. HTML comments; unknown); team membership needs an
//! installation on that org; webhooks are delivered only when the test sends them; one webhook
//! per label/assignee like GitHub; mentions and references are found by a model of GitHub's
//! rendering (`github/markdown.rs`: conservative, e.g. it also reads link text and raw HTML
//! blocks, and assumes `#N` in titles is a reference). The secondary limits, when enforced, count every `POST`,
//! `PATCH`, `PUT` and `DELETE` made with an installation token per installation in sliding
//! windows (GitHub documents "content-generating requests" without listing them; counting
//! every write is the cautious reading), and a breach answers 403 with `Retry-After` only
//! (GitHub may also answer 429, and may block an App that keeps breaching: not modelled).
//! Security Hub: the filters listed in `securityhub/filters.rs` (others are reported by
//! `unsupported()`); default order `UpdatedAt` desc then insertion (AWS documents none);
//! NextToken is tied to the query; BatchUpdateFindings changes Workflow/Note/Severity/… but not
//! `UpdatedAt` (as the model documents); one Imported event per changed finding (AWS may batch);
//! no eventual consistency, no cross-region aggregation, no SecurityHub-set fields beyond
//! Workflow, RecordState, WorkflowState and ProcessedAt.

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
