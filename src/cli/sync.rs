//! `lever sync`: reconcile with Security Hub now (a first deployment's backfill, or repairing
//! missed events), then open the resulting issues.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::serve::{build_app, runtime};
use super::{EXIT_USAGE, Format, load_config};
use crate::app::Secrets;
use crate::worker::{Worker, sync};

pub(super) fn run(config_dir: &Path, format: Format, record_only: bool) -> ExitCode {
    let config = match load_config(config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lever sync: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let app = match build_app(config, Secrets::default()).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("lever sync: {e:#}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        // GetFindings runs in a task of the runtime, on a worker thread with the deep stack.
        let task_app = app.clone();
        let report = match tokio::spawn(async move { sync::run(&task_app).await }).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                eprintln!("lever sync: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("lever sync: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut jobs = Vec::new();
        if !record_only {
            let worker = Worker::new(app.clone(), format!("lever-sync-{}", std::process::id()));
            match tokio::spawn(async move { worker.run_until_idle().await }).await {
                Ok(Ok(r)) => jobs = r,
                Ok(Err(e)) => {
                    eprintln!("lever sync: the store failed while working: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("lever sync: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let done = jobs.iter().filter(|j| j.result == "done").count();
        let retry = jobs.iter().filter(|j| j.result != "done").count();
        match format {
            Format::Json => println!("{}", json!({ "sync": report, "jobs_done": done, "jobs_to_retry": retry })),
            Format::Text => {
                println!(
                    "sync ({}): {} page(s), {} finding(s), {} rejected, {} repeat(s), {} issue(s) to open",
                    report.query, report.pages, report.findings, report.rejected, report.repeats, report.issues_to_open
                );
                if !record_only {
                    println!("work: {done} job(s) done, {retry} to retry later (run `lever serve` or `lever sync` again)");
                }
            }
        }
        ExitCode::SUCCESS
    })
}
