//! `lever sync`: reconcile with Security Hub now (a first deployment's backfill, or repairing
//! missed events), then open the resulting issues.

use std::path::Path;

use serde_json::json;

use super::{Failure, Format, load_config, runtime};
use crate::app::{Application, Deps};
use crate::config::ProcessSettings;
use crate::worker::{Worker, pacing, sync};

pub(super) fn run(
    settings: &ProcessSettings,
    config_dir: &Path,
    format: Format,
    record_only: bool,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    runtime()?.block_on(async move {
        let app = Application::build(settings, config, Deps::default())
            .await
            .map_err(Failure::startup)?;
        // GetFindings runs in a task of the runtime, on a worker thread with the deep stack.
        let task_app = app.clone();
        let report = tokio::spawn(async move { sync::run(&task_app).await })
            .await
            .map_err(Failure::failed)?
            .map_err(Failure::failed)?;
        let mut jobs = Vec::new();
        if !record_only {
            let worker = Worker::new(app.clone(), format!("lever-sync-{}", std::process::id()));
            jobs = tokio::spawn(async move { worker.run_until_idle().await })
                .await
                .map_err(Failure::failed)?
                .map_err(|e| Failure::failed(format!("the store failed while working: {e}")))?;
        }
        let count = |result: &str| jobs.iter().filter(|j| j.result == result).count();
        let (done, retrying, postponed, parked) =
            (count("done"), count("retry"), count("postponed"), count("dead"));
        // Security Hub refused a write (a NOTIFIED / SUPPRESSED update that did not go through):
        // the run did not converge, whatever else it did.
        let refused = jobs
            .iter()
            .filter(|j| j.kind == "notify-findings" && j.result != "done" && j.result != "postponed")
            .count();
        // What waits for GitHub's limits (or for a worker, after --record-only).
        let backlog = pacing::backlog(app.store.as_ref(), &app.github.pacer().budget(), app.now())
            .await
            .map_err(|e| Failure::failed(format!("reading the backlog: {e}")))?;
        match format {
            Format::Json => println!(
                "{}",
                json!({
                    "sync": report,
                    "jobs_done": done,
                    "jobs_to_retry": retrying + postponed,
                    "jobs_retrying": retrying,
                    "jobs_postponed": postponed,
                    "jobs_parked": parked,
                    "securityhub_writes_refused": refused,
                    "backlog": backlog
                })
            ),
            Format::Text => {
                println!(
                    "sync ({}): {} page(s), {} finding(s), {} rejected, {} repeat(s), {} issue(s) to open",
                    report.query, report.pages, report.findings, report.rejected, report.repeats, report.issues_to_open
                );
                if !record_only {
                    println!(
                        "work: {done} job(s) done, {retrying} retrying later, {postponed} postponed for GitHub's limits, \
                         {parked} parked (see `lever jobs --failed`); run `lever serve` or `lever sync` again"
                    );
                }
                println!("backlog: {}", backlog.summary());
            }
        }
        if refused > 0 || parked > 0 {
            return Err(Failure::failed(format!(
                "{refused} Security Hub write(s) refused and {parked} job(s) parked: the run did not converge \
                 (see `lever jobs --failed` and the log)"
            )));
        }
        Ok(())
    })
}
