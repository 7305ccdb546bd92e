//! The running application: everything the server and the workers share.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::controls::Catalog;
use crate::explain::Renderer;
use crate::github::GitHub;
use crate::securityhub::SecurityHub;
use crate::store::Store;

/// Shared secrets for the HTTP endpoints.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `GITHUB_WEBHOOK_SECRET`, split on commas (several during a rotation).
    pub webhook_secrets: Vec<String>,
    /// `LEVER_INGEST_TOKEN`: the bearer token EventBridge sends.
    pub ingest_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "webhook_secrets",
                &format!("{} configured", self.webhook_secrets.len()),
            )
            .field("ingest_token", &self.ingest_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Secrets {
    /// Reads `GITHUB_WEBHOOK_SECRET` and `LEVER_INGEST_TOKEN`; both are required to serve.
    pub fn from_env() -> anyhow::Result<Secrets> {
        let webhook_secrets: Vec<String> = std::env::var("GITHUB_WEBHOOK_SECRET")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if webhook_secrets.is_empty() {
            anyhow::bail!(
                "GITHUB_WEBHOOK_SECRET is not set (the GitHub App's webhook secret; comma-separate several while rotating)"
            );
        }
        let ingest_token = std::env::var("LEVER_INGEST_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        if ingest_token.is_none() {
            anyhow::bail!(
                "LEVER_INGEST_TOKEN is not set (the bearer token EventBridge sends to POST /events/securityhub)"
            );
        }
        Ok(Secrets {
            webhook_secrets,
            ingest_token,
        })
    }
}

/// Everything a request handler or a job needs.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub renderer: Arc<Renderer>,
    pub catalog: &'static Catalog,
    pub github: Arc<GitHub>,
    pub securityhub: SecurityHub,
    pub clock: Arc<dyn Clock>,
    pub secrets: Secrets,
    /// Wakes the workers when new jobs are recorded.
    pub jobs_ready: Arc<Notify>,
    /// Short-lived answers from GitHub (team memberships of approvers).
    pub caches: Arc<Caches>,
}

/// How long a team-membership answer is trusted.
pub const MEMBERSHIP_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// In-memory caches shared by a process's handlers and workers.
#[derive(Debug, Default)]
pub struct Caches {
    /// `org/team/login` (lower case) → (active member, when asked).
    pub memberships:
        tokio::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>,
}

impl App {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
