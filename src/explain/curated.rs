//! Curated control explanations: one TOML file per control in `issue-templates/controls/`
//! (`<CONTROL_ID>.toml`, the format is documented in `issue-templates/README.md`), compiled
//! into the binary by `build.rs` and parsed and checked at start-up.
//!
//! The text is Lever's own, written for product developers, so the renderer writes it as
//! Markdown as it is (not escaped like a finding's text). What makes that safe is checked here,
//! for every file, at start-up and in the suite: prose holds no links, HTML, angle brackets,
//! `@` (mentions), `#` (issue references, headings), backslashes or code blocks; snippets hold no
//! three backticks (they could not end their code block); links are `https://` on
//! [`ALLOWED_LINK_HOSTS`]. A file that breaks a rule is an error naming the file and the field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::controls::Catalog;

include!(concat!(env!("OUT_DIR"), "/curated.rs"));

/// Hosts curated links may point at.
pub const ALLOWED_LINK_HOSTS: &[&str] = &[
    "docs.aws.amazon.com",
    "aws.amazon.com",
    "registry.terraform.io",
    "docs.github.com",
    "cheatsheetseries.owasp.org",
];

/// Controls AWS has retired: a curated file for one of them is refused (Security Hub no longer
/// reports them, so the text would never be shown). Add an id here only with AWS's retirement
/// notice at hand; none is listed yet because none of the catalog's sources marks a control as
/// retired.
pub const RETIRED_CONTROLS: &[&str] = &[];

/// One control's explanation. Field by field as in `issue-templates/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curated {
    /// The consolidated control id; equals the file name.
    pub id: String,
    /// What an attacker or an accident can do because of this (prose).
    pub why: String,
    /// When it matters less (prose).
    pub matters_less: String,
    pub fix: Fix,
    pub verify: Verify,
    pub exception: Exception,
    #[serde(default)]
    pub checkov: Checkov,
    /// Extra reading: `https://` on [`ALLOWED_LINK_HOSTS`].
    #[serde(default)]
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    pub summary: String,
    pub terraform: Option<String>,
    /// The same resources still failing the control (for checkov's fails-when-broken check).
    pub terraform_broken: Option<String>,
    /// YAML: what goes under `Resources:` (logical ids at column 0).
    pub cloudformation: Option<String>,
    pub cloudformation_broken: Option<String>,
    /// TypeScript CDK, where it is the common way.
    pub cdk: Option<String>,
    /// The AWS CLI for a one-off.
    pub cli: String,
    pub side_effects: String,
    /// Why there is no Terraform / CloudFormation fix.
    pub no_iac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub how: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub reasons: Vec<String>,
    pub evidence: Vec<String>,
}

/// checkov check ids that test this control (the fixed snippet passes, the broken one fails).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkov {
    #[serde(default)]
    pub terraform: Vec<String>,
    #[serde(default)]
    pub cloudformation: Vec<String>,
}

/// A rule a curated file breaks: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// A curated file that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{}: {}: {}", self.file, p.field, p.message)).collect::<Vec<_>>().join("\n"))]
pub struct CuratedError {
    /// The file as the user knows it (`issue-templates/controls/S3.1.toml` or the override path).
    pub file: String,
    pub problems: Vec<Problem>,
}

impl Curated {
    /// Parses one file. `file` names it in errors; its stem must equal `id`.
    pub fn parse(file: &str, text: &str) -> Result<Curated, CuratedError> {
        let fail = |field: String, message: String| CuratedError {
            file: file.to_string(),
            problems: vec![Problem { field, message }],
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            fail(
                "(file)".into(),
                format!("not valid TOML{}: {}", at_line(text, &e), e.message()),
            )
        })?;
        let curated: Curated = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." { "(file)".into() } else { path };
            fail(
                field,
                format!("{}{}", inner.message(), at_line(text, &inner)),
            )
        })?;
        let stem = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".toml"))
            .unwrap_or(file);
        if curated.id != stem {
            return Err(fail(
                "id".into(),
                format!("{:?} does not match the file name {stem:?}", curated.id),
            ));
        }
        Ok(curated)
    }

    /// Every rule of the format this explanation breaks (empty when it is fine). `catalog` is
    /// the control catalog its id must be in.
    pub fn problems(&self, catalog: &Catalog) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |field: &str, message: String| {
            out.push(Problem {
                field: field.to_string(),
                message,
            })
        };
        match catalog.get(&self.id) {
            None => bad(
                "id",
                format!("{:?} is not a control in src/controls/catalog.tsv", self.id),
            ),
            Some(c) if c.id != self.id => bad(
                "id",
                format!("{:?} is spelled {:?} in the catalog", self.id, c.id),
            ),
            Some(_) => {}
        }
        if RETIRED_CONTROLS.contains(&self.id.as_str()) {
            bad("id", format!("{:?} is a retired control", self.id));
        }
        for (field, text) in self.prose() {
            if text.trim().is_empty() {
                bad(&field, "required and must not be empty".into());
            }
            for m in prose_problems(text) {
                bad(&field, m.into());
            }
        }
        if self.exception.reasons.is_empty() {
            bad("exception.reasons", "needs at least one reason".into());
        }
        if self.exception.evidence.is_empty() {
            bad(
                "exception.evidence",
                "needs at least one piece of evidence".into(),
            );
        }
        for (field, text) in self.snippets() {
            if text.trim().is_empty() {
                bad(field, "must not be empty when present".into());
            }
            if text.contains("```") {
                bad(field, "may not hold three backticks".into());
            }
        }
        if let Some(n) = &self.fix.no_iac {
            if n.trim().is_empty() {
                bad("fix.no_iac", "must not be empty when present".into());
            }
            for m in prose_problems(n) {
                bad("fix.no_iac", m.into());
            }
        }
        if self.fix.terraform.is_none()
            && self.fix.cloudformation.is_none()
            && self.fix.no_iac.is_none()
        {
            bad(
                "fix",
                "needs terraform or cloudformation, or no_iac saying why not".into(),
            );
        }
        for (framework, checks, fixed, broken) in [
            (
                "terraform",
                &self.checkov.terraform,
                &self.fix.terraform,
                &self.fix.terraform_broken,
            ),
            (
                "cloudformation",
                &self.checkov.cloudformation,
                &self.fix.cloudformation,
                &self.fix.cloudformation_broken,
            ),
        ] {
            for check in checks {
                if !check.starts_with("CKV") || check.contains(char::is_whitespace) {
                    bad(
                        &format!("checkov.{framework}"),
                        format!("{check:?} is not a checkov check id"),
                    );
                }
            }
            if !checks.is_empty() && (fixed.is_none() || broken.is_none()) {
                bad(
                    &format!("checkov.{framework}"),
                    format!("needs fix.{framework} and fix.{framework}_broken to test against"),
                );
            }
        }
        for link in &self.links {
            if let Err(m) = allowed_link(link) {
                bad("links", format!("{link:?}: {m}"));
            }
        }
        out
    }

    /// Every prose field (`field path`, text), including each exception reason and evidence.
    pub fn prose(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = vec![
            ("why".into(), &self.why),
            ("matters_less".into(), &self.matters_less),
            ("fix.summary".into(), &self.fix.summary),
            ("fix.side_effects".into(), &self.fix.side_effects),
            ("verify.how".into(), &self.verify.how),
        ];
        for (i, r) in self.exception.reasons.iter().enumerate() {
            v.push((format!("exception.reasons[{i}]"), r));
        }
        for (i, e) in self.exception.evidence.iter().enumerate() {
            v.push((format!("exception.evidence[{i}]"), e));
        }
        v
    }

    /// Every snippet that is present (`field path`, text): shown in code blocks.
    pub fn snippets(&self) -> Vec<(&'static str, &str)> {
        let f = &self.fix;
        [
            ("fix.terraform", f.terraform.as_deref()),
            ("fix.terraform_broken", f.terraform_broken.as_deref()),
            ("fix.cloudformation", f.cloudformation.as_deref()),
            (
                "fix.cloudformation_broken",
                f.cloudformation_broken.as_deref(),
            ),
            ("fix.cdk", f.cdk.as_deref()),
            ("fix.cli", Some(f.cli.as_str())),
            ("verify.command", Some(self.verify.command.as_str())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    /// The Terraform snippets that are present (`field path`, HCL).
    pub fn terraform_snippets(&self) -> Vec<(&'static str, &str)> {
        self.snippets()
            .into_iter()
            .filter(|(k, _)| k.starts_with("fix.terraform"))
            .collect()
    }
}

/// A curated explanation as the issue template shows it: prose trimmed (list items on one
/// line), snippets trimmed with `<account-id>` and `<region>` replaced by the finding's (as
/// [`inert::shell_word`](super::inert::shell_word), safe in a code block), CloudFormation
/// under `Resources:`. Absent optional parts are empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CuratedView {
    pub why: String,
    pub matters_less: String,
    pub summary: String,
    pub terraform: String,
    pub terraform_broken: String,
    pub cloudformation: String,
    pub cloudformation_broken: String,
    pub cdk: String,
    pub cli: String,
    pub side_effects: String,
    pub no_iac: String,
    pub how: String,
    pub command: String,
    pub reasons: Vec<String>,
    pub evidence: Vec<String>,
    pub links: Vec<LinkView>,
}

/// A link of [`Curated::links`]: its text (host and path) and its destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub text: String,
    pub url: String,
}

impl Curated {
    /// The explanation for a finding of `account_id` in `region`.
    pub fn view(&self, account_id: &str, region: &str) -> CuratedView {
        // One pass and one allocation per field where it can: this runs for every issue
        // rendered (`curated_tests::the_view_is_what_the_plain_implementation_makes` holds it to
        // the plain implementation).
        let account = super::inert::shell_word(account_id);
        let region = super::inert::shell_word(region);
        let snippet = |s: &str| {
            let mut s = std::borrow::Cow::Borrowed(s.trim_matches('\n').trim_end());
            if !account.is_empty() && s.contains("<account-id>") {
                s = s.replace("<account-id>", &account).into();
            }
            if !region.is_empty() && s.contains("<region>") {
                s = s.replace("<region>", &region).into();
            }
            s.into_owned()
        };
        let opt = |s: &Option<String>| s.as_deref().map(snippet).unwrap_or_default();
        let cfn = |s: &Option<String>| {
            s.as_deref()
                .map(|y| {
                    let body = snippet(y);
                    let mut out = String::with_capacity(body.len() + body.len() / 8 + 16);
                    out.push_str("Resources:\n");
                    for (i, l) in body.lines().enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        if !l.trim().is_empty() {
                            out.push_str("  ");
                            out.push_str(l);
                        }
                    }
                    out
                })
                .unwrap_or_default()
        };
        let line = |s: &String| {
            let mut out = String::with_capacity(s.len());
            for word in s.split_whitespace() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
            }
            out
        };
        CuratedView {
            why: self.why.trim().to_string(),
            matters_less: self.matters_less.trim().to_string(),
            summary: self.fix.summary.trim().to_string(),
            terraform: opt(&self.fix.terraform),
            terraform_broken: opt(&self.fix.terraform_broken),
            cloudformation: cfn(&self.fix.cloudformation),
            cloudformation_broken: cfn(&self.fix.cloudformation_broken),
            cdk: opt(&self.fix.cdk),
            cli: snippet(&self.fix.cli),
            side_effects: self.fix.side_effects.trim().to_string(),
            no_iac: self
                .fix
                .no_iac
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_string(),
            how: self.verify.how.trim().to_string(),
            command: snippet(&self.verify.command),
            reasons: self.exception.reasons.iter().map(line).collect(),
            evidence: self.exception.evidence.iter().map(line).collect(),
            links: self
                .links
                .iter()
                .map(|u| LinkView {
                    text: u
                        .trim_start_matches("https://")
                        .trim_end_matches('/')
                        .to_string(),
                    url: u.clone(),
                })
                .collect(),
        }
    }
}

/// What is wrong with a piece of prose, if anything (the rules of the module doc).
pub fn prose_problems(text: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if text.contains("http://") || text.contains("https://") || text.contains("](") {
        out.push("prose may not hold links");
    }
    if text.contains(['<', '>']) {
        out.push("prose may not hold HTML or angle brackets");
    }
    if text.contains('@') {
        out.push("prose may not hold '@' (GitHub mentions)");
    }
    if text.contains('#') {
        out.push("prose may not hold '#' (GitHub issue references, headings)");
    }
    if text.contains('\\') {
        out.push("prose may not hold backslashes");
    }
    if text.contains("```") {
        out.push("prose may not hold code blocks");
    }
    out
}

/// `Ok` when `link` is an `https://` URL on one of [`ALLOWED_LINK_HOSTS`], safe to write as a
/// Markdown link destination.
pub fn allowed_link(link: &str) -> Result<(), String> {
    let hosts = ALLOWED_LINK_HOSTS.join(", ");
    let Some(safe) = super::inert::safe_url(link).filter(|s| s == link) else {
        return Err(format!(
            "not a plain https:// URL (no spaces, quotes, brackets or parentheses); allowed hosts: {hosts}"
        ));
    };
    let url = url::Url::parse(&safe).map_err(|e| format!("not a well-formed URL: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    if url.scheme() != "https"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
        || !ALLOWED_LINK_HOSTS.contains(&host)
    {
        return Err(format!("https:// on an allowed host only ({hosts})"));
    }
    Ok(())
}

fn at_line(text: &str, e: &toml::de::Error) -> String {
    e.span()
        .map(|s| {
            format!(
                " (line {})",
                text[..s.start.min(text.len())].lines().count().max(1)
            )
        })
        .unwrap_or_default()
}

/// Every curated explanation Lever knows, by control id.
#[derive(Debug, Clone, Default)]
pub struct CuratedSet {
    by_id: BTreeMap<String, Curated>,
}

impl CuratedSet {
    /// The built-in explanations (compiled in), each parsed and checked.
    pub fn builtin(catalog: &Catalog) -> Result<CuratedSet, CuratedError> {
        let mut set = CuratedSet::default();
        for (name, text) in BUILTIN_CURATED {
            set.add(&format!("issue-templates/controls/{name}"), text, catalog)?;
        }
        Ok(set)
    }

    /// Parses and checks one file and adds it, replacing the control's explanation if there
    /// was one.
    pub fn add(&mut self, file: &str, text: &str, catalog: &Catalog) -> Result<(), CuratedError> {
        let c = Curated::parse(file, text)?;
        let problems = c.problems(catalog);
        if !problems.is_empty() {
            return Err(CuratedError {
                file: file.to_string(),
                problems,
            });
        }
        self.by_id.insert(c.id.clone(), c);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Curated> {
        self.by_id.get(id)
    }

    /// Every explanation, sorted by control id.
    pub fn all(&self) -> impl Iterator<Item = &Curated> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
#[path = "curated_tests.rs"]
mod tests;
