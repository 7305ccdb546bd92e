//! Lever: turns AWS Security Hub findings into explanation issues in the repository that owns
//! the resource, assigned to the engineer on call. See `../shared/ARCHITECTURE.md` for the
//! house plan this crate follows.

pub mod asff;
pub mod config;
pub mod controls;
pub mod domain;
pub mod explain;
pub mod policy;
pub mod routing;
pub mod store;
