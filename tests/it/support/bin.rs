//! Running the real `lever` binary from the repository root.

use std::process::{Command, Output};

/// `lever ARGS…` in the repository root; its output.
pub fn lever(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(args)
        .current_dir(super::app::root())
        .output()
        .expect("run lever")
}
