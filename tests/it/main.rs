//! The integration-test binary: the real server, real SQLite files and PostgreSQL, and the real
//! octocrab and AWS SDK clients against stateful fakes.

mod asff_conformance;
mod cli;
mod escalation;
mod fakes;
mod fakes_selftest;
mod intake;
mod lifecycle;
mod oncall;
mod serve;
mod store;
mod support;
mod sync_source;
mod upgrade;
