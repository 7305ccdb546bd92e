//! `lever serve`: the GitHub App.

use std::path::Path;

use std::sync::Arc;

use tokio::sync::watch;

use super::{Failure, load_config, runtime};
use crate::app::{Application, Deps, Secrets};
use crate::clock::SystemClock;
use crate::config::{
    Config, DEFAULT_CONTENT_PER_HOUR, DEFAULT_CONTENT_PER_MINUTE, ProcessSettings,
};
use crate::config_repo::{ConfigRepo, LoadError};
use crate::github::{ContentBudget, GitHub, GitHubConfig, Pacer};
use crate::worker::Worker;

pub(super) fn run(
    settings: &ProcessSettings,
    config_dir: &Path,
    listen: &str,
) -> Result<(), Failure> {
    let source = crate::config::source::read_bootstrap(config_dir).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        Failure::usage(format!("{} configuration error(s)", errors.len()))
    })?;
    let config = match &source {
        Some(_) => None,
        None => Some(load_config(config_dir)?),
    };
    Secrets::from_settings(settings)
        .require_all()
        .map_err(Failure::startup)?;
    runtime()?.block_on(async move {
        let (config, repo) = match (config, source) {
            (Some(config), _) => (config, None),
            (None, Some(source)) => {
                let repo = ConfigRepo::new(source, config_dir);
                (from_repository(settings, &repo).await?, Some(repo))
            }
            (None, None) => unreachable!("a configuration or a source"),
        };
        serve(settings, config, repo, listen).await
    })
}

/// The configuration read from the repository `[source]` names, through the App, before the
/// application exists (its pacing budget is the configuration's: the default budget is used
/// for these two reads).
async fn from_repository(settings: &ProcessSettings, repo: &ConfigRepo) -> Result<Config, Failure> {
    let budget = ContentBudget::new(DEFAULT_CONTENT_PER_MINUTE, DEFAULT_CONTENT_PER_HOUR)
        .ok_or_else(|| Failure::usage("the default content budget is invalid"))?;
    let github = GitHub::new(
        GitHubConfig {
            app_id: settings.app_id().map_err(Failure::usage)?,
            private_key_pem: settings.private_key_pem().map_err(Failure::usage)?,
            api_url: settings.github_api_url.clone(),
            read_timeout: crate::github::DEFAULT_READ_TIMEOUT,
        },
        Pacer::new(budget, Arc::new(SystemClock)),
    )
    .map_err(Failure::startup)?;
    match repo.load(&github, None).await {
        Ok(config) => {
            tracing::info!(repo = %repo.source.repo, "configuration read from the repository");
            Ok(config)
        }
        Err(LoadError::Invalid(errors)) => {
            for e in &errors {
                eprintln!("{}: {e}", repo.source.repo);
            }
            Err(Failure::usage(format!(
                "{} configuration error(s) in {}",
                errors.len(),
                repo.source.repo
            )))
        }
        Err(e) => Err(Failure::usage(format!("{}: {e}", repo.source.repo))),
    }
}

async fn serve(
    settings: &ProcessSettings,
    config: Config,
    repo: Option<ConfigRepo>,
    listen: &str,
) -> Result<(), Failure> {
    let mut app = Application::build(settings, config, Deps::default())
        .await
        .map_err(Failure::startup)?;
    if let Some(repo) = repo {
        app = app.with_config_repo(repo);
    }
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
    let metrics_server = match settings.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Failure::usage(format!("cannot listen on LEVER_METRICS_ADDR {addr}: {e}"))
            })?;
            tracing::info!(%addr, "serving GET /metrics (no token) on LEVER_METRICS_ADDR");
            let mut stopped = stop_rx.clone();
            let (app, edge) = (app.clone(), settings.edge.clone());
            Some(tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                crate::server::metrics::serve(listener, app, &edge, stop).await
            }))
        }
        None => None,
    };
    if !app.secrets.metrics_tokens.is_empty() {
        tracing::info!("serving GET /metrics to the bearer of LEVER_METRICS_TOKEN");
    }
    let served =
        crate::server::edge::serve(listener, app.clone(), &settings.edge, shutdown_signal()).await;
    // Every request has been answered; commit whatever is still waiting in a batch.
    app.intake.close().await;
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    if let Some(h) = metrics_server
        && let Ok(Err(e)) = h.await
    {
        tracing::warn!(error = %e, "the metrics listener failed");
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
