//! The `OWNERS` file, in the spirit of CODEOWNERS.
//!
//! ```text
//! # matchers (all must hold)               repository      assignees (first owns)
//! *                                        acme/security   @rotation:security
//! account:111111111111                     acme/payments   @rotation:payments
//! resource:arn:aws:s3:::acme-logs-*        acme/platform   @rotation:platform
//! account:111111111111 tag:team=ledger     acme/ledger     @carol @rotation:payments
//! ```
//!
//! The last matching line wins. `resource:` and `tag:` hold when any resource of the finding
//! matches. `resource:` and `control:` patterns may use `*` and `?` wildcards; `tag:KEY=VALUE`
//! compares exactly (`tag:KEY=*` matches any value, `tag:KEY` alone matches the key's presence).

use std::collections::BTreeMap;

use serde::Serialize;
use wildmatch::WildMatch;

use super::settings::{is_login, unknown_rotation};
use super::{ConfigError, RepoName};
use crate::domain::Finding;
use crate::domain::oncall::Rotation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Assignee {
    User(String),
    Rotation(String),
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignee::User(u) => write!(f, "@{u}"),
            Assignee::Rotation(r) => write!(f, "@rotation:{r}"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Matcher {
    Any,
    Account(String),
    Resource(String, WildMatch),
    Tag { key: String, value: Option<String> },
    Control(String, WildMatch),
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Any => f.write_str("*"),
            Matcher::Account(a) => write!(f, "account:{a}"),
            Matcher::Resource(p, _) => write!(f, "resource:{p}"),
            Matcher::Tag {
                key,
                value: Some(v),
            } => write!(f, "tag:{key}={v}"),
            Matcher::Tag { key, value: None } => write!(f, "tag:{key}"),
            Matcher::Control(c, _) => write!(f, "control:{c}"),
        }
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Matcher {
    pub fn matches(&self, f: &Finding) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Account(a) => f.account_id == *a,
            Matcher::Resource(_, w) => f.resources.iter().any(|r| w.matches(&r.id)),
            Matcher::Tag { key, value } => {
                f.resources.iter().any(|r| match (r.tags.get(key), value) {
                    (Some(_), None) => true,
                    (Some(v), Some(want)) => want == "*" || v == want,
                    (None, _) => false,
                })
            }
            Matcher::Control(_, w) => f.control_id().is_some_and(|c| w.matches(c)),
        }
    }
}

/// One line of OWNERS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerRule {
    pub line: usize,
    pub matchers: Vec<Matcher>,
    pub repo: RepoName,
    pub assignees: Vec<Assignee>,
}

impl OwnerRule {
    pub fn matches(&self, f: &Finding) -> bool {
        self.matchers.iter().all(|m| m.matches(f))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Owners {
    pub file: String,
    pub rules: Vec<OwnerRule>,
}

impl Owners {
    /// The last rule that matches, like CODEOWNERS.
    pub fn rule_for(&self, f: &Finding) -> Option<&OwnerRule> {
        self.rules.iter().rev().find(|r| r.matches(f))
    }

    pub(super) fn check_rotations(
        &self,
        file: &str,
        rotations: &BTreeMap<String, Rotation>,
    ) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for rule in &self.rules {
            for a in &rule.assignees {
                if let Assignee::Rotation(name) = a
                    && !rotations.contains_key(name)
                {
                    errors.push(ConfigError {
                        file: file.to_string(),
                        line: rule.line,
                        message: unknown_rotation(name, rotations),
                    });
                }
            }
        }
        errors
    }
}

/// Splits a line into whitespace-separated tokens; `\ ` keeps a space inside a token.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_whitespace()) {
            cur.push(chars.next().unwrap_or(' '));
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn matcher(tok: &str) -> Option<Result<Matcher, String>> {
    if tok == "*" {
        return Some(Ok(Matcher::Any));
    }
    let (kind, rest) = tok.split_once(':')?;
    Some(match kind {
        "account" => {
            if rest.len() == 12 && rest.chars().all(|c| c.is_ascii_digit()) {
                Ok(Matcher::Account(rest.to_string()))
            } else {
                Err(format!("{tok:?}: an account id is 12 digits"))
            }
        }
        "resource" if !rest.is_empty() => {
            Ok(Matcher::Resource(rest.to_string(), WildMatch::new(rest)))
        }
        "control" if !rest.is_empty() => {
            Ok(Matcher::Control(rest.to_string(), WildMatch::new(rest)))
        }
        "tag" if !rest.is_empty() => match rest.split_once('=') {
            Some(("", _)) => Err(format!("{tok:?}: the tag key is empty")),
            Some((k, v)) => Ok(Matcher::Tag {
                key: k.to_string(),
                value: Some(v.to_string()),
            }),
            None => Ok(Matcher::Tag {
                key: rest.to_string(),
                value: None,
            }),
        },
        "resource" | "control" | "tag" => Err(format!("{tok:?}: empty {kind} pattern")),
        _ => return None,
    })
}

pub(super) fn parse(file: &str, src: &str) -> Result<Owners, Vec<ConfigError>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let text = raw.split_once(" #").map(|(a, _)| a).unwrap_or(raw);
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut err = |message: String| {
            errors.push(ConfigError {
                file: file.to_string(),
                line,
                message,
            })
        };
        let toks = tokens(text);
        let mut matchers = Vec::new();
        let mut idx = 0;
        let mut bad = false;
        while idx < toks.len() {
            match matcher(&toks[idx]) {
                Some(Ok(m)) => matchers.push(m),
                Some(Err(e)) => {
                    err(e);
                    bad = true;
                }
                None => break,
            }
            idx += 1;
        }
        if matchers.is_empty() && !bad {
            err(format!(
                "line must start with a matcher (*, account:ID, resource:ARN-GLOB, tag:KEY=VALUE, control:ID), found {:?}",
                toks.first().cloned().unwrap_or_default()
            ));
            continue;
        }
        let Some(repo_tok) = toks.get(idx) else {
            err("missing the owning repository (owner/repo) after the matchers".into());
            continue;
        };
        let repo = match RepoName::parse(repo_tok) {
            Ok(r) => Some(r),
            Err(e) => {
                if repo_tok.contains(':') {
                    err(format!(
                        "unknown matcher {repo_tok:?} (expected *, account:, resource:, tag: or control:)"
                    ));
                } else {
                    err(e);
                }
                None
            }
        };
        let mut assignees = Vec::new();
        for tok in &toks[idx + 1..] {
            let Some(rest) = tok.strip_prefix('@') else {
                err(format!(
                    "{tok:?}: assignees start with @ (@user or @rotation:NAME)"
                ));
                continue;
            };
            if let Some(name) = rest.strip_prefix("rotation:") {
                if name.is_empty() {
                    err(format!("{tok:?} names no rotation"));
                } else {
                    assignees.push(Assignee::Rotation(name.to_string()));
                }
            } else if rest.contains('/') {
                err(format!(
                    "{tok:?}: teams cannot own an issue; name a user or @rotation:NAME"
                ));
            } else if is_login(rest) {
                assignees.push(Assignee::User(rest.to_string()));
            } else {
                err(format!("{tok:?} is not a valid GitHub login"));
            }
        }
        if toks.len() == idx + 1 {
            err("no assignee: name at least one @user or @rotation:NAME".into());
        }
        if let Some(repo) = repo
            && !bad
        {
            rules.push(OwnerRule {
                line,
                matchers,
                repo,
                assignees,
            });
        }
    }
    if errors.is_empty() {
        Ok(Owners {
            file: file.to_string(),
            rules,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_table() {
        let cases: [(&str, &[&str]); 4] = [
            ("* acme/security @sam", &["*", "acme/security", "@sam"]),
            ("  a\tb  ", &["a", "b"]),
            (
                "tag:team=big\\ team acme/x @a",
                &["tag:team=big team", "acme/x", "@a"],
            ),
            ("", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(tokens(line), want, "{line:?}");
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let src = "\
# comment
* acme/security @rotation:security
account:123 acme/payments @alice
nonsense acme/x @a
account:111111111111 acme/x
resource:arn:* not-a-repo @a
control:S3.1 acme/x alice
control:S3.1 acme/x @org/team
";
        let errs = parse("OWNERS", src).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{errs:#?}");
        let expected = [
            "12 digits",
            "must start with a matcher",
            "no assignee",
            "is not a repository",
            "start with @",
            "teams cannot own",
        ];
        for (err, words) in errs.iter().zip(expected) {
            assert!(
                err.message.contains(words),
                "line {}: {}",
                err.line,
                err.message
            );
        }
    }

    #[test]
    fn trailing_comments_and_blank_lines_are_ignored() {
        let o = parse("OWNERS", "\n* acme/security @sam # the default\n\n").unwrap();
        assert_eq!(o.rules.len(), 1);
        assert_eq!(o.rules[0].line, 2);
        assert_eq!(o.rules[0].assignees, vec![Assignee::User("sam".into())]);
    }
}
