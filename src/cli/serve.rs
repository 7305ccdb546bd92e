//! `lever serve`: the GitHub App.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use super::{EXIT_USAGE, load_config};
use crate::app::{App, Secrets};
use crate::clock::SystemClock;
use crate::controls::Catalog;
use crate::explain::Renderer;
use crate::github::{GitHub, GitHubConfig};
use crate::securityhub::SecurityHub;
use crate::worker::Worker;

/// `DATABASE_URL` when unset: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://lever.db";

/// Lever's runtime: SDK GetFindings needs a deep stack in debug builds
/// (see `securityhub::RUNTIME_THREAD_STACK`).
pub(super) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::securityhub::RUNTIME_THREAD_STACK)
        .build()
}

/// Everything `lever serve` and `lever sync` share, built from the environment.
pub(super) async fn build_app(
    config: crate::config::Config,
    secrets: Secrets,
) -> anyhow::Result<App> {
    let github = GitHub::new(GitHubConfig::from_env()?)?;
    let renderer = Renderer::new(config.templates_dir().as_deref()).context("issue templates")?;
    let db = database_url();
    let store = crate::store::open(&db)
        .await
        .with_context(|| format!("opening DATABASE_URL {}", redact(&db)))?;
    let securityhub = SecurityHub::from_env().await;
    Ok(App {
        store,
        config: Arc::new(config),
        renderer: Arc::new(renderer),
        catalog: Catalog::embedded(),
        github,
        securityhub,
        clock: Arc::new(SystemClock),
        secrets,
        jobs_ready: Arc::new(Notify::new()),
        caches: Arc::default(),
    })
}

/// `DATABASE_URL`, or the embedded default.
pub(super) fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
}

pub(super) fn run(config_dir: &Path, listen: &str) -> ExitCode {
    let config = match load_config(config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lever serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lever serve: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

async fn serve(config: crate::config::Config, listen: &str) -> anyhow::Result<()> {
    let secrets = Secrets::from_env()?;
    let workers: usize = match std::env::var("LEVER_WORKERS") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .with_context(|| format!("LEVER_WORKERS={v:?} must be 1..64"))?,
        Err(_) => 2,
    };
    let app = build_app(config, secrets).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    crate::worker::schedule_periodic(&app)
        .await
        .context("scheduling the periodic jobs")?;
    tracing::info!(database = app.store.backend(), %listen, workers, "lever serving");
    let (stop_tx, stop_rx) = watch::channel(false);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "lever".into());
    let mut handles = Vec::new();
    for i in 0..workers {
        let id = format!(
            "{host}-{}-{i}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        handles.push(tokio::spawn(
            Worker::new(app.clone(), id).run(stop_rx.clone()),
        ));
    }
    crate::server::serve(listener, app, shutdown_signal())
        .await
        .context("HTTP server")?;
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
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

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            super::redact("postgres://lever:s3cret@db:5432/lever"),
            "postgres://lever:***@db:5432/lever"
        );
        assert_eq!(
            super::redact("postgres://lever@db/lever"),
            "postgres://lever@db/lever"
        );
        assert_eq!(super::redact("sqlite://lever.db"), "sqlite://lever.db");
    }
}
