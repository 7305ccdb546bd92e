//! `lever serve`: the GitHub App.

use std::path::Path;

use tokio::sync::watch;

use super::{Failure, load_config, runtime};
use crate::app::{Application, Deps, Secrets};
use crate::config::{Config, ProcessSettings};
use crate::worker::Worker;

pub(super) fn run(
    settings: &ProcessSettings,
    config_dir: &Path,
    listen: &str,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    Secrets::from_settings(settings)
        .require_all()
        .map_err(Failure::startup)?;
    runtime()?.block_on(serve(settings, config, listen))
}

async fn serve(settings: &ProcessSettings, config: Config, listen: &str) -> Result<(), Failure> {
    let app = Application::build(settings, config, Deps::default())
        .await
        .map_err(Failure::startup)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {listen}: {e}")))?;
    crate::worker::schedule_periodic(&app)
        .await
        .map_err(|e| Failure::usage(format!("scheduling the periodic jobs: {e}")))?;
    let workers = settings.workers;
    tracing::info!(database = app.store.backend(), %listen, workers, "lever serving");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::new();
    for i in 0..workers {
        let id = format!(
            "{}-{}-{i}-{}",
            settings.hostname,
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        handles.push(tokio::spawn(
            Worker::new(app.clone(), id).run(stop_rx.clone()),
        ));
    }
    let served =
        crate::server::edge::serve(listener, app.clone(), &settings.edge, shutdown_signal()).await;
    // Every request has been answered; commit whatever is still waiting in a batch.
    app.intake.close().await;
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    served.map_err(|e| Failure::failed(format!("HTTP server: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
