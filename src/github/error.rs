//! GitHub API failures, classified for the worker.

use chrono::{DateTime, Utc};

/// A GitHub API failure, classified for the worker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub: not found ({0})")]
    NotFound(String),
    /// 422: the request was understood but refused (e.g. an assignee who cannot be assigned).
    #[error("GitHub refused the request: {message} {errors}")]
    Validation {
        message: String,
        errors: serde_json::Value,
    },
    #[error("GitHub: authentication failed ({0})")]
    Unauthorized(String),
    #[error("GitHub: forbidden ({0})")]
    Forbidden(String),
    #[error("GitHub rate limit reached; retry after {retry_at:?}")]
    RateLimited { retry_at: Option<DateTime<Utc>> },
    #[error("GitHub server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("GitHub unreachable: {0}")]
    Transport(String),
    #[error("GitHub: unexpected {status}: {message}")]
    Other { status: u16, message: String },
}

impl GitHubError {
    /// Worth trying again later (the same request may succeed).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GitHubError::RateLimited { .. }
                | GitHubError::Server { .. }
                | GitHubError::Transport(_)
        )
    }

    /// 422 on the `assignees` field: GitHub will not assign that person here.
    pub fn is_unassignable(&self) -> bool {
        match self {
            GitHubError::Validation { errors, message } => {
                errors.to_string().contains("assignee")
                    || message.to_lowercase().contains("assignee")
            }
            _ => false,
        }
    }

    pub(super) fn from_octocrab(e: octocrab::Error, what: &str) -> GitHubError {
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code.as_u16();
                let message = source.message.clone();
                let rate_limited = source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("x-ratelimit-remaining"))
                    .is_some_and(|v| v == "0");
                let retry_after = source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("retry-after"))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .map(|s| Utc::now() + chrono::Duration::seconds(s));
                match status {
                    404 => GitHubError::NotFound(format!("{what}: {message}")),
                    401 => GitHubError::Unauthorized(message),
                    422 => GitHubError::Validation {
                        message,
                        errors: serde_json::Value::Array(source.errors.clone().unwrap_or_default()),
                    },
                    429 => GitHubError::RateLimited {
                        retry_at: retry_after.or(source.rate_limit_reset_at()),
                    },
                    403 if rate_limited || retry_after.is_some() => GitHubError::RateLimited {
                        retry_at: retry_after.or(source.rate_limit_reset_at()),
                    },
                    403 => GitHubError::Forbidden(message),
                    500..=599 => GitHubError::Server { status, message },
                    _ => GitHubError::Other { status, message },
                }
            }
            other => GitHubError::Transport(format!("{what}: {other}")),
        }
    }
}
