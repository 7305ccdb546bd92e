//! Shared test support: PostgreSQL availability (loud skips), and the `TestApp` harness that
//! runs the real server on a loopback port against the fake GitHub and Security Hub.

pub mod app;
pub mod bin;
pub mod history;
pub mod moto;
pub mod pg;
pub mod spy;
pub mod targets;
