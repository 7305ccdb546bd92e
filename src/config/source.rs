//! `[source]`: the configuration lives in a GitHub repository.
//!
//! The local configuration directory (`--config DIR`) then holds a bootstrap `lever.toml`
//! with only a `[source]` table:
//!
//! ```toml
//! [source]
//! repo = "acme/security-config"   # read through the App (contents: read)
//! ref = "main"                     # optional: the branch; default: the repository's default branch
//! path = "lever"                   # optional: the folder holding lever.toml and OWNERS; default: the root
//! ```
//!
//! `lever.toml` and `OWNERS` are read from that repository and validated like a local
//! directory; a `push` to the branch reloads them (see `crate::app::reload`). A `[source]`
//! table inside the repository's own `lever.toml` is an error: the repository cannot move
//! itself.

use std::path::Path;

use toml::de::DeTable;

use super::spanned::{Diag, Table};
use super::{ConfigError, RepoName, SETTINGS_FILE};

/// Where the configuration is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub repo: RepoName,
    /// The branch to follow; `None`: the repository's default branch.
    pub git_ref: Option<String>,
    /// The folder of the repository holding `lever.toml` and `OWNERS` (no leading or
    /// trailing `/`); empty for the root.
    pub path: String,
}

impl SourceSettings {
    /// The repository path of a configuration file (`lever/OWNERS`).
    pub fn file(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.path)
        }
    }
}

/// Reads `DIR/lever.toml` and returns its `[source]`, if it has one. A bootstrap file with a
/// `[source]` must hold nothing else (everything else lives in the repository).
pub fn read_bootstrap(dir: &Path) -> Result<Option<SourceSettings>, Vec<ConfigError>> {
    let path = dir.join(SETTINGS_FILE);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // Config::load reports a missing file with its other checks.
        Err(_) => return Ok(None),
    };
    parse_bootstrap(&file, &text)
}

/// [`read_bootstrap`] on text: `Ok(None)` when there is no `[source]` (or the file is not
/// valid TOML: the full validation reports that).
pub fn parse_bootstrap(file: &str, text: &str) -> Result<Option<SourceSettings>, Vec<ConfigError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Ok(None);
    }
    let span = doc.span();
    let doc = doc.into_inner();
    if !doc.iter().any(|(k, _)| k.get_ref().as_ref() == "source") {
        return Ok(None);
    }
    let mut d = Diag::new(file, text);
    let mut root = Table::new("", span, &doc);
    let source = root.table(&mut d, "source").and_then(|mut t| {
        let s = parse_table(&mut d, &mut t);
        t.finish(&mut d);
        s
    });
    for (k, _) in doc.iter() {
        if k.get_ref().as_ref() != "source" {
            d.error(
                k.span(),
                format!(
                    "{:?}: with [source], the configuration lives in the repository; this file holds only [source]",
                    k.get_ref().as_ref()
                ),
            );
        }
    }
    if d.errors.is_empty() {
        Ok(source)
    } else {
        Err(d.errors)
    }
}

fn parse_table(d: &mut Diag, t: &mut Table) -> Option<SourceSettings> {
    let repo = match t.string(d, "repo") {
        Some(s) => match RepoName::parse(s.get_ref()) {
            Ok(r) => Some(r),
            Err(e) => {
                d.error(s.span(), format!("source.repo: {e}"));
                None
            }
        },
        None => {
            d.error(
                t.span.clone(),
                "[source] needs repo = \"owner/repo\" (the configuration repository)",
            );
            None
        }
    };
    let git_ref = t.string(d, "ref").and_then(|s| {
        let r = s.get_ref().trim();
        let r = r.strip_prefix("refs/heads/").unwrap_or(r);
        if r.is_empty() || r.contains(char::is_whitespace) || r.contains("..") {
            d.error(
                s.span(),
                format!("source.ref {:?} is not a branch name", s.get_ref()),
            );
            None
        } else {
            Some(r.to_string())
        }
    });
    let path = match t.string(d, "path") {
        Some(s) => {
            let p = s.get_ref().trim().trim_matches('/').to_string();
            if p.split('/').any(|seg| seg == ".." || seg == ".") || p.contains('\\') {
                d.error(
                    s.span(),
                    format!(
                        "source.path {:?} must be a folder of the repository",
                        s.get_ref()
                    ),
                );
            }
            p
        }
        None => String::new(),
    };
    Some(SourceSettings {
        repo: repo?,
        git_ref,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_file_names_the_repository() {
        let got = parse_bootstrap(
            "lever.toml",
            "[source]\nrepo = \"acme/security-config\"\nref = \"refs/heads/prod\"\npath = \"/lever/\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.repo.to_string(), "acme/security-config");
        assert_eq!(got.git_ref.as_deref(), Some("prod"));
        assert_eq!(got.file("OWNERS"), "lever/OWNERS");
        let root = parse_bootstrap("lever.toml", "[source]\nrepo = \"a/b\"\n")
            .unwrap()
            .unwrap();
        assert_eq!((root.file("OWNERS"), root.git_ref), ("OWNERS".into(), None));
    }

    #[test]
    fn without_source_the_directory_is_the_configuration() {
        assert_eq!(
            parse_bootstrap("lever.toml", "[github]\nfallback_repo = \"a/b\"\n").unwrap(),
            None
        );
    }

    #[test]
    fn every_bootstrap_error_is_located() {
        let errors = parse_bootstrap(
            "lever.toml",
            "[github]\nfallback_repo = \"a/b\"\n\n[source]\nrepo = \"nope\"\npath = \"../x\"\nbranch = \"main\"\n",
        )
        .unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("lever.toml:5: source.repo:")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("lever.toml:6: source.path")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("lever.toml:7: unknown key \"branch\" in [source]")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("lever.toml:1: \"github\": with [source]")),
            "{shown:?}"
        );
    }
}
