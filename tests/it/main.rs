//! The integration-test binary: the real server, real SQLite files and PostgreSQL, and the real
//! octocrab and AWS SDK clients against stateful fakes.

mod asff_conformance;
mod cli;
mod config_source;
mod crash;
mod dashboard;
mod dashboard_browser;
mod deploy;
mod edge;
mod escalation;
mod fakes;
mod fakes_selftest;
mod faults;
mod inert;
mod intake;
mod jobs;
mod lifecycle;
mod metrics;
mod noise;
mod ocsf_conformance;
mod ocsf_intake;
mod ocsf_v2;
mod oncall;
mod pacing;
mod rampup;
mod reconcile;
mod report;
mod reroute;
mod serve;
mod setup;
mod store;
mod support;
mod sync_source;
mod tags;
mod trust;
mod upgrade;
