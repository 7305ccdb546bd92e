//! Lever: turns AWS Security Hub findings into explanation issues in the repository that owns
//! the resource, assigned to the engineer on call. See `../shared/ARCHITECTURE.md` for the
//! house plan this crate follows.

pub mod app;
pub mod asff;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_repo;
pub mod controls;
pub mod domain;
pub mod explain;
pub mod github;
pub mod metrics;
pub mod ocsf;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod routing;
pub mod securityhub;
pub mod server;
pub mod store;
pub mod worker;

#[cfg(test)]
mod proptest_support;
