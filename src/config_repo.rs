//! Configuration from a repository (`[source]` in the local bootstrap `lever.toml`, see
//! [`crate::config::source`]): `lever.toml` and `OWNERS` are read through the App (contents
//! API), validated with the same validator as `lever config check`, and reloaded when a `push`
//! reaches the followed branch, without a restart.
//!
//! A reload reads the files at the pushed commit. When they are valid they replace the
//! configuration in force ([`crate::app::LiveConfig`]; the next job and the next intake batch
//! use them) and a successful check run is posted on the commit. When they are not, the
//! configuration in force stays, the errors are logged, and a failed check run lists every
//! error as `file:line: message` (with an annotation on each line) on the pushed commit.
//!
//! What a reload does not change: the issue templates (`[templates]`, read at start) and the
//! pacing budget (`[github] content_per_minute`, `content_per_hour`): they take effect at the
//! next restart. Reloads are serialized; a reload whose reading fails (GitHub unreachable) is
//! logged and waits for the next push or restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::config::source::SourceSettings;
use crate::config::{Config, ConfigError, OWNERS_FILE, SETTINGS_FILE};
use crate::github::webhook::PushEvent;
use crate::github::{GitHub, GitHubError};

/// The name of Lever's check run on the configuration repository's commits.
pub const CHECK_NAME: &str = "lever configuration";

/// GitHub takes at most this many annotations per request.
const MAX_ANNOTATIONS: usize = 50;

/// The configuration repository a running Lever follows.
#[derive(Debug)]
pub struct ConfigRepo {
    pub source: SourceSettings,
    /// The local directory holding the bootstrap `lever.toml` (`templates.dir` resolves there).
    pub bootstrap_dir: PathBuf,
    reloading: tokio::sync::Mutex<()>,
}

/// Why the configuration could not be read from the repository.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{} configuration error(s)", .0.len())]
    Invalid(Vec<ConfigError>),
    #[error("reading the configuration from GitHub: {0}")]
    GitHub(#[from] GitHubError),
}

impl ConfigRepo {
    pub fn new(source: SourceSettings, bootstrap_dir: &Path) -> ConfigRepo {
        ConfigRepo {
            source,
            bootstrap_dir: bootstrap_dir.to_path_buf(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether a push changes the configuration: to the repository, on the followed branch
    /// (the default branch when `ref` is not set), not a deletion.
    pub fn follows(&self, push: &PushEvent) -> bool {
        let branch = match push.branch() {
            Some(b) => b,
            None => return false,
        };
        let followed = self
            .source
            .git_ref
            .as_deref()
            .unwrap_or(&push.repository.default_branch);
        self.source.repo.same_as(&push.repository.full_name)
            && !push.deleted
            && !followed.is_empty()
            && branch == followed
    }

    /// Reads and validates `lever.toml` and `OWNERS` at `git_ref` (a commit; `None`: the
    /// followed branch).
    pub async fn load(&self, github: &GitHub, git_ref: Option<&str>) -> Result<Config, LoadError> {
        let repo = self.source.repo.to_string();
        let at = git_ref.or(self.source.git_ref.as_deref());
        let mut errors = Vec::new();
        let mut read = async |name: &str| -> Result<Option<(String, String)>, GitHubError> {
            let path = self.source.file(name);
            Ok(match github.file_text(&repo, &path, at).await? {
                Some(text) => Some((path, text)),
                None => {
                    errors.push(ConfigError {
                        file: path,
                        line: 0,
                        message: format!(
                            "not found in {repo} at {}",
                            at.unwrap_or("the default branch")
                        ),
                    });
                    None
                }
            })
        };
        let settings = read(SETTINGS_FILE).await?;
        let owners = read(OWNERS_FILE).await?;
        Config::from_texts(&self.bootstrap_dir, settings, owners, errors)
            .map_err(|e| LoadError::Invalid(e.0))
    }
}

/// The check run for a pushed commit: success, or a failure listing every error.
pub fn check_run(head_sha: &str, errors: &[ConfigError]) -> Value {
    if errors.is_empty() {
        return json!({
            "name": CHECK_NAME,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "success",
            "output": {
                "title": "Valid: Lever uses this configuration",
                "summary": "lever.toml and OWNERS are valid; the configuration is in force.",
            },
        });
    }
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let annotations: Vec<Value> = errors
        .iter()
        .take(MAX_ANNOTATIONS)
        .map(|e| {
            let line = e.line.max(1);
            json!({
                "path": e.file,
                "start_line": line,
                "end_line": line,
                "annotation_level": "failure",
                "message": e.message,
            })
        })
        .collect();
    json!({
        "name": CHECK_NAME,
        "head_sha": head_sha,
        "status": "completed",
        "conclusion": "failure",
        "output": {
            "title": format!("{} configuration error(s): the previous configuration stays in force", errors.len()),
            "summary": format!(
                "Lever refused this configuration and keeps the last valid one.\n\n```\n{}\n```\n",
                listed.join("\n")
            ),
            "annotations": annotations,
        },
    })
}

/// Reloads the configuration after `push`, when it is one Lever follows (see the module
/// documentation). Returns whether the configuration in force changed.
pub async fn on_push(app: &App, push: &PushEvent) -> bool {
    let Some(repo) = app.config_repo.as_ref() else {
        return false;
    };
    if !repo.follows(push) {
        tracing::debug!(repo = %push.repository.full_name, git_ref = %push.git_ref, "push not to the configuration branch: ignored");
        return false;
    }
    let _one_at_a_time = repo.reloading.lock().await;
    let full = repo.source.repo.to_string();
    let sha = push.after.as_str();
    let (changed, errors) = match repo.load(&app.github, Some(sha)).await {
        Ok(config) => {
            let config = Arc::new(config);
            app.live_config.replace(config.clone());
            tracing::info!(repo = %full, commit = sha, "configuration reloaded");
            // A ramp-up date the change added is scheduled now, not at the next start.
            if let Err(e) =
                crate::worker::rampup::schedule(app.store.as_ref(), &config, app.now()).await
            {
                tracing::warn!(error = %e, "could not schedule the ramp-up dates of the new configuration; they are scheduled at the next start");
            }
            (true, Vec::new())
        }
        Err(LoadError::Invalid(errors)) => {
            for e in &errors {
                tracing::warn!(repo = %full, commit = sha, error = %e, "configuration refused");
            }
            tracing::warn!(
                repo = %full, commit = sha, errors = errors.len(),
                "the pushed configuration is invalid; the last valid configuration stays in force"
            );
            (false, errors)
        }
        Err(LoadError::GitHub(e)) => {
            tracing::error!(repo = %full, commit = sha, error = %e, "could not read the pushed configuration; the configuration in force stays");
            return false;
        }
    };
    if let Err(e) = app
        .github
        .create_check_run(&full, &check_run(sha, &errors))
        .await
    {
        tracing::warn!(repo = %full, commit = sha, error = %e, "could not post the configuration check run");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(repo: &str, git_ref: &str, default_branch: &str) -> PushEvent {
        serde_json::from_value(json!({
            "ref": git_ref, "after": "abc", "deleted": false,
            "repository": {"full_name": repo, "default_branch": default_branch},
        }))
        .unwrap()
    }

    #[test]
    fn only_pushes_to_the_followed_branch_count() {
        let source = |git_ref: Option<&str>| {
            ConfigRepo::new(
                SourceSettings {
                    repo: crate::config::RepoName::parse("acme/security-config").unwrap(),
                    git_ref: git_ref.map(str::to_string),
                    path: String::new(),
                },
                Path::new("."),
            )
        };
        let default = source(None);
        let prod = source(Some("prod"));
        for (repo, push, want_default, want_prod) in [
            ("acme/security-config", "refs/heads/main", true, false),
            ("ACME/Security-Config", "refs/heads/main", true, false),
            ("acme/security-config", "refs/heads/prod", false, true),
            ("acme/security-config", "refs/heads/feature", false, false),
            ("acme/security-config", "refs/tags/main", false, false),
            ("acme/other", "refs/heads/main", false, false),
        ] {
            let p = super::tests::push(repo, push, "main");
            assert_eq!(default.follows(&p), want_default, "{repo} {push}");
            assert_eq!(prod.follows(&p), want_prod, "{repo} {push}");
        }
        let mut deleted = push("acme/security-config", "refs/heads/main", "main");
        deleted.deleted = true;
        assert!(!default.follows(&deleted));
    }

    #[test]
    fn a_refusal_lists_every_error_with_its_line() {
        let errors = vec![
            ConfigError {
                file: "lever.toml".into(),
                line: 3,
                message: "unknown key \"x\"".into(),
            },
            ConfigError {
                file: "OWNERS".into(),
                line: 0,
                message: "not found".into(),
            },
        ];
        let run = check_run("abc", &errors);
        assert_eq!(run["conclusion"], "failure");
        assert_eq!(run["head_sha"], "abc");
        let summary = run["output"]["summary"].as_str().unwrap();
        assert!(
            summary.contains("lever.toml:3: unknown key \"x\"\nOWNERS: not found"),
            "{summary}"
        );
        assert_eq!(run["output"]["annotations"][0]["start_line"], 3);
        assert_eq!(run["output"]["annotations"][1]["start_line"], 1);
        assert_eq!(check_run("abc", &[])["conclusion"], "success");
    }
}
