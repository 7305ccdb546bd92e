//! The configuration directory: `lever.toml` (accounts, GitHub, rotations, approvers, ...) and
//! `OWNERS` (which repository and which people own which findings).
//!
//! Loading validates everything and reports *every* problem as `file:line: message`.
//!
//! The process's own settings (environment variables) are [`process::ProcessSettings`].

pub mod check;
mod duration;
pub mod edge;
mod escalation;
pub mod exclusions;
mod lifecycle;
pub mod noise;
mod oncall;
mod owners;
pub mod process;
#[cfg(test)]
mod proptests;
pub mod rampup;
pub mod report;
mod settings;
pub mod settle;
pub mod source;
mod spanned;
pub mod tags;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use duration::{format_duration, parse_duration};
pub use edge::EdgeSettings;
pub use escalation::{
    Deadline, DigestSettings, EscalationPolicy, EscalationSettings, FollowHandoffs, SlaSettings,
};
pub use lifecycle::{ExceptionSettings, LifecycleSettings, SyncSettings, VerificationSettings};
pub use noise::NoiseSettings;
pub use owners::{Assignee, Matcher, OwnerRule, Owners};
pub use process::ProcessSettings;
pub use settings::{
    AccountPolicy, Approver, DEFAULT_CONTENT_PER_HOUR, DEFAULT_CONTENT_PER_MINUTE, GitHubSettings,
    IgnoreTags, Mode, PolicySettings, PublicRepos, SecurityHubApi, SecurityHubSettings, Settings,
};
pub(crate) use settings::{is_login, unknown_rotation};
pub use tags::TagSettings;

/// One configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Every problem found in a configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A GitHub repository name, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub fn parse(s: &str) -> Result<RepoName, String> {
        let (owner, name) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a repository (expected owner/repo)"))?;
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !owner.starts_with('-');
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name != "."
            && name != "..";
        if !owner_ok || !name_ok {
            return Err(format!(
                "{s:?} is not a valid GitHub repository name (expected owner/repo)"
            ));
        }
        Ok(RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// Case-insensitive comparison, as GitHub compares names.
    pub fn same_as(&self, other: &str) -> bool {
        self.to_string().eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RepoName::parse(&s)
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.to_string()
    }
}

/// A loaded, validated configuration directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub settings: Settings,
    pub owners: Owners,
}

pub const SETTINGS_FILE: &str = "lever.toml";
pub const OWNERS_FILE: &str = "OWNERS";

impl Config {
    /// Loads and validates `DIR/lever.toml` and `DIR/OWNERS`.
    pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
        if !dir.is_dir() {
            return Err(ConfigErrors(vec![ConfigError {
                file: dir.display().to_string(),
                line: 0,
                message: "configuration directory not found".into(),
            }]));
        }
        let read = |name: &str| -> Result<(String, String), ConfigError> {
            let path = dir.join(name);
            let shown = path.display().to_string();
            std::fs::read_to_string(&path)
                .map(|text| (shown.clone(), text))
                .map_err(|e| ConfigError {
                    file: shown,
                    line: 0,
                    message: format!("cannot read: {e}"),
                })
        };
        let mut errors = Vec::new();
        let settings_src = read(SETTINGS_FILE).map_err(|e| errors.push(e)).ok();
        let owners_src = read(OWNERS_FILE).map_err(|e| errors.push(e)).ok();
        Config::from_texts(dir, settings_src, owners_src, errors)
    }

    /// Validates the texts of `lever.toml` and `OWNERS` (each as `(file name shown in
    /// errors, text)`; `None` when it could not be read, with the reason in `errors`), e.g.
    /// read from a configuration repository. `dir` is where `templates.dir` resolves.
    pub fn from_texts(
        dir: &Path,
        settings_src: Option<(String, String)>,
        owners_src: Option<(String, String)>,
        mut errors: Vec<ConfigError>,
    ) -> Result<Config, ConfigErrors> {
        let settings =
            settings_src
                .as_ref()
                .and_then(|(file, text)| match settings::parse(file, text, dir) {
                    Ok(s) => Some(s),
                    Err(mut e) => {
                        errors.append(&mut e);
                        None
                    }
                });
        let owners = owners_src
            .as_ref()
            .and_then(|(file, text)| match owners::parse(file, text) {
                Ok(o) => Some(o),
                Err(mut e) => {
                    errors.append(&mut e);
                    None
                }
            });
        if let (Some(s), Some(o), Some((file, _))) = (&settings, &owners, &owners_src) {
            errors.extend(o.check_rotations(file, &s.rotations));
        }
        match (settings, owners) {
            (Some(settings), Some(owners)) if errors.is_empty() => Ok(Config {
                dir: dir.to_path_buf(),
                settings,
                owners,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The policy for an account: its own entry, else the defaults.
    pub fn account(&self, account_id: &str) -> &AccountPolicy {
        self.settings
            .accounts
            .get(account_id)
            .unwrap_or(&self.settings.defaults)
    }

    /// The policy for an account as it is at `now` (its ramp-up schedule applied).
    pub fn account_at(
        &self,
        account_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AccountPolicy {
        self.account(account_id).at(now)
    }

    /// The issue-template override directory, if the configuration has one.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.settings.templates_dir.clone()
    }
}
