//! GitHub API failures, classified for the worker.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::pacing::{DEFAULT_PAUSE, Paced};

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
    /// 429, or 403 with `Retry-After` or `x-ratelimit-remaining: 0`: GitHub refused the call
    /// for a rate limit (see [`GitHubError::rate_limited_until`]).
    #[error("GitHub rate limit reached (retry after {retry_after:?}, reset at {reset_at:?})")]
    RateLimited {
        /// `Retry-After`.
        retry_after: Option<Duration>,
        /// `x-ratelimit-reset`.
        reset_at: Option<DateTime<Utc>>,
    },
    /// Lever did not make the call: the installation is paused or out of budget
    /// ([`super::Pacer::admit`]). Nothing reached GitHub.
    #[error("GitHub call not made: {0}")]
    Paced(Paced),
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
                | GitHubError::Paced(_)
                | GitHubError::Server { .. }
                | GitHubError::Transport(_)
        )
    }

    /// The repository refuses Lever for good, whatever the request: the App is not installed
    /// on it (uninstalled, or the repository renamed or transferred to an owner without the
    /// App: 404 "Not Found"), the App may not write there (403 "Resource not accessible by
    /// integration"), the repository is archived (403 "Repository was archived so is
    /// read-only.") or its issues are gone or disabled (410). Rate limits are not refusals.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            GitHubError::NotFound(_)
                | GitHubError::Forbidden(_)
                | GitHubError::Other { status: 410, .. }
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

    /// When a rate-limited call may be made again, seen at `now`: after `Retry-After`, else
    /// at the reset, else a minute later (GitHub's advice); `None` for other errors.
    pub fn rate_limited_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            GitHubError::RateLimited {
                retry_after,
                reset_at,
            } => Some(
                retry_after
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| now + d)
                    .or(*reset_at)
                    .unwrap_or(now + DEFAULT_PAUSE),
            ),
            GitHubError::Paced(p) => Some(p.until),
            _ => None,
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
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let reset_at = source
                    .rate_limit_reset
                    .and_then(|s| i64::try_from(s).ok())
                    .and_then(|s| DateTime::from_timestamp(s, 0));
                match status {
                    404 => GitHubError::NotFound(format!("{what}: {message}")),
                    401 => GitHubError::Unauthorized(message),
                    422 => GitHubError::Validation {
                        message,
                        errors: serde_json::Value::Array(source.errors.clone().unwrap_or_default()),
                    },
                    429 => GitHubError::RateLimited {
                        retry_after,
                        reset_at,
                    },
                    403 if rate_limited || retry_after.is_some() => GitHubError::RateLimited {
                        retry_after,
                        reset_at,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::pacing::Gate;

    #[test]
    fn when_a_rate_limited_call_may_be_made_again() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let reset = now + chrono::Duration::minutes(30);
        let limited = |retry_after: Option<u64>, reset_at| GitHubError::RateLimited {
            retry_after: retry_after.map(Duration::from_secs),
            reset_at,
        };
        let rows = [
            (
                "Retry-After wins",
                limited(Some(90), Some(reset)),
                Some(now + chrono::Duration::seconds(90)),
            ),
            ("else the reset", limited(None, Some(reset)), Some(reset)),
            (
                "else a minute",
                limited(None, None),
                Some(now + DEFAULT_PAUSE),
            ),
            (
                "a paced call: its own instant",
                GitHubError::Paced(Paced {
                    installation: 7,
                    until: reset,
                    gate: Gate::Content,
                }),
                Some(reset),
            ),
            (
                "anything else",
                GitHubError::Server {
                    status: 502,
                    message: String::new(),
                },
                None,
            ),
        ];
        for (name, e, want) in rows {
            assert_eq!(e.rate_limited_until(now), want, "{name}");
        }
    }
}
