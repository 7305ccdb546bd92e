//! Explanation issues: title, body and labels for an issue group, rendered with tera from
//! `issue-templates/` (compiled in, overridable from the configuration directory).

pub mod curated;
pub mod guardduty;
pub mod inert;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tera::{Context, Tera};

use crate::config::{AccountPolicy, Approver, IgnoreTags, Mode};
use crate::controls::Catalog;
use crate::domain::keys::slugify;
use crate::domain::lifecycle::{Verdict, verdict};
use crate::domain::{Finding, GroupKey, Source};
use curated::CuratedSet;

/// GitHub rejects issue bodies longer than 65,536 characters; Lever stays below this.
pub const MAX_BODY_CHARS: usize = 65_000;
/// Resources listed in the body before "and N more".
pub const MAX_LISTED_RESOURCES: usize = 200;
/// Start and end of the bot-owned resource checklist in the body.
pub const RESOURCES_START: &str = "<!-- lever:resources:start -->";
pub const RESOURCES_END: &str = "<!-- lever:resources:end -->";

/// The built-in templates, compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("title.txt", include_str!("../../issue-templates/title.txt")),
    ("issue.md", include_str!("../../issue-templates/issue.md")),
];

/// The hidden marker that ties an issue to its group.
pub fn marker(group: &GroupKey) -> String {
    format!("<!-- lever:group={} -->", group.as_str())
}

/// Reads the group key back from an issue body (the last marker wins).
pub fn parse_marker(body: &str) -> Option<GroupKey> {
    let start = body.rfind("<!-- lever:group=")? + "<!-- lever:group=".len();
    let rest = &body[start..];
    let end = rest.find(" -->")?;
    let key = &rest[..end];
    GroupKey::is_well_formed(key).then(|| GroupKey(key.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("rendering {template}: {message}")]
    Render { template: String, message: String },
}

/// What the renderer needs to know about an issue group.
#[derive(Debug, Clone)]
pub struct IssueInput<'a> {
    pub group_key: &'a GroupKey,
    /// Every finding of the group (at least one).
    pub findings: &'a [Finding],
    pub account: &'a AccountPolicy,
    /// The person who owns the issue now, if any.
    pub owner: Option<&'a str>,
    pub approvers: &'a [Approver],
    pub ignore_tag: &'a str,
    /// Lever's own remarks shown at the top (e.g. why the issue is in the fallback repository).
    pub notes: &'a [String],
    /// The fix deadline (SLA), shown in the body.
    pub due: Option<chrono::DateTime<chrono::Utc>>,
}

/// A rendered issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedIssue {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Renderer {
    tera: Tera,
    catalog: &'static Catalog,
    curated: CuratedSet,
}

impl Renderer {
    /// The built-in templates and curated explanations, with files from `override_dir`
    /// replacing or adding to them (`controls/<ID>.toml` adds or replaces a control's curated
    /// explanation; a `controls/<ID>.md` template, when there is one, takes precedence).
    pub fn new(override_dir: Option<&Path>) -> Result<Renderer, TemplateError> {
        let catalog = Catalog::embedded();
        let mut templates: BTreeMap<String, String> = BUILTIN
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        let mut curated = CuratedSet::builtin(catalog).map_err(curated_error)?;
        if let Some(dir) = override_dir {
            for o in read_overrides(dir)? {
                if o.name.starts_with("controls/") && o.name.ends_with(".toml") {
                    curated
                        .add(&o.path.display().to_string(), &o.text, catalog)
                        .map_err(curated_error)?;
                } else {
                    templates.insert(o.name, o.text);
                }
            }
        }
        let mut tera = Tera::new();
        tera.autoescape_on([".md"]);
        tera.set_escape_fn(inert::escape_fn);
        tera.add_raw_templates(templates.iter()).map_err(|e| {
            let message = flatten_error(&e);
            // Name the file at fault: the first template the message mentions.
            let name = templates
                .keys()
                .find(|n| message.contains(&format!("'{n}'")) || message.contains(n.as_str()))
                .cloned()
                .unwrap_or_default();
            let file = override_dir
                .filter(|d| !name.is_empty() && d.join(&name).is_file())
                .map(|d| d.join(&name).display().to_string())
                .unwrap_or_else(|| format!("issue-templates/{name}"));
            TemplateError::Invalid { file, message }
        })?;
        tera.autoescape_on([".md"]);
        let r = Renderer {
            tera,
            catalog,
            curated,
        };
        // Fail at start-up, not on the first finding: render a sample through every template.
        let sample =
            crate::domain::sample::control_finding("S3.1", "Sample", crate::domain::Severity::High);
        let key = GroupKey("sample".into());
        let account = AccountPolicy {
            id: None,
            name: None,
            environment: "unknown".into(),
            min_severity: crate::domain::Severity::Critical,
            mode: Mode::Enforce,
            ignore_tags: Default::default(),
            schedule: Default::default(),
        };
        let ids: std::collections::BTreeSet<&str> = templates
            .keys()
            .filter_map(|n| n.strip_prefix("controls/")?.strip_suffix(".md"))
            .chain(r.curated.all().map(|c| c.id.as_str()))
            .collect();
        for id in ids {
            let mut f = sample.clone();
            f.source = Source::Control(crate::domain::Control {
                id: id.to_string(),
                reported_id: None,
                standard: "consolidated".into(),
            });
            let findings = [f];
            r.render(&IssueInput {
                group_key: &key,
                findings: &findings,
                account: &account,
                owner: None,
                approvers: &[],
                ignore_tag: "lever:ignore",
                notes: &[],
                due: None,
            })?;
        }
        Ok(r)
    }

    /// The curated explanations in use (built in, with the override directory's).
    pub fn curated(&self) -> &CuratedSet {
        &self.curated
    }

    /// Renders the issue for a group.
    pub fn render(&self, input: &IssueInput<'_>) -> Result<RenderedIssue, TemplateError> {
        let lead = lead_finding(input.findings);
        let resources = collect_resources(input.findings);
        let mut listed = resources.len().min(MAX_LISTED_RESOURCES);
        loop {
            let ctx = self.context(input, lead, &resources, listed);
            let body_template = self.body_template(lead);
            let body = self.render_one(&body_template, &ctx)?;
            let body = format!("{}\n\n{}\n", body.trim_end(), marker(input.group_key));
            if body.chars().count() <= MAX_BODY_CHARS || listed == 0 {
                let title = self.render_one("title.txt", &ctx)?;
                return Ok(RenderedIssue {
                    title: clean_title(&inert::plain(&title)),
                    body,
                    labels: labels(lead, input.account),
                });
            }
            listed /= 2;
        }
    }

    fn body_template(&self, lead: &Finding) -> String {
        if let Some(id) = lead.control_id() {
            let name = format!("controls/{id}.md");
            if self.tera.get_template_names().any(|n| n == name) {
                return name;
            }
        }
        "issue.md".to_string()
    }

    fn render_one(&self, template: &str, ctx: &Context) -> Result<String, TemplateError> {
        self.tera
            .render(template, ctx)
            .map_err(|e| TemplateError::Render {
                template: template.to_string(),
                message: flatten_error(&e),
            })
    }

    fn context(
        &self,
        input: &IssueInput<'_>,
        lead: &Finding,
        resources: &[ResourceLine],
        listed: usize,
    ) -> Context {
        let control = lead.control_id().and_then(|id| self.catalog.get(id));
        let mut ctx = Context::new();
        let title = explanation_title(lead, self.catalog);
        ctx.insert("title", &title);
        ctx.insert("control_id", &lead.control_id().unwrap_or(""));
        // Lever's own, checked text (see `curated`): the template writes it with `| safe`.
        let curated = lead
            .control_id()
            .and_then(|id| self.curated.get(id))
            .map(|c| c.view(&lead.account_id, &lead.region));
        ctx.insert("curated", &curated);
        // Lever's own text for the GuardDuty finding type's family (see `guardduty`).
        let family = match &lead.source {
            Source::GuardDuty { finding_type } => guardduty::family(finding_type),
            _ => None,
        };
        ctx.insert("guardduty", &family);
        ctx.insert_value(
            "vulnerabilities_section",
            tera::Value::safe_string(&vulnerabilities_section(&lead.vulnerabilities)),
        );
        let reported: Vec<String> = input
            .findings
            .iter()
            .filter_map(|f| match &f.source {
                Source::Control(c) => c
                    .reported_id
                    .clone()
                    .map(|r| format!("{r} ({})", c.standard)),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        ctx.insert("reported_ids", &reported.join(", "));
        ctx.insert("severity", lead.severity.as_str());
        ctx.insert("account_id", &lead.account_id);
        ctx.insert("account_id_code", &inert::shell_word(&lead.account_id));
        let account_label = input
            .account
            .name
            .clone()
            .unwrap_or_else(|| format!("account {}", lead.account_id));
        ctx.insert("account_label", &account_label);
        ctx.insert("environment", &input.account.environment);
        ctx.insert("region", &lead.region);
        ctx.insert("region_code", &inert::shell_word(&lead.region));
        ctx.insert("finding_id_code", &inert::shell_word(&lead.id));
        let product_label = lead
            .product_name
            .clone()
            .unwrap_or_else(|| lead.product.clone());
        ctx.insert("product_label", &product_label);
        ctx.insert("description", &lead.description);
        ctx.insert(
            "category",
            &control.and_then(|c| c.category.clone()).unwrap_or_default(),
        );
        ctx.insert(
            "schedule_type",
            &control
                .and_then(|c| c.schedule_type.clone())
                .unwrap_or_default(),
        );
        let remediation_text = lead.remediation_text.clone().unwrap_or_default();
        ctx.insert("remediation_text", &remediation_text);
        // Links only to AWS (the finding's own guidance when it is on AWS, else the catalog's);
        // any other URL a finding carries is untrusted and shown as text (a code span). URLs
        // are validated here and inserted as safe strings: a link destination must stay as is.
        let own_remediation = lead.remediation_url.as_deref().map(str::trim);
        let remediation_url = remediation_link(lead, self.catalog);
        ctx.insert_value(
            "remediation_url",
            tera::Value::safe_string(remediation_url.as_deref().unwrap_or_default()),
        );
        ctx.insert(
            "remediation_url_text",
            own_remediation
                .filter(|u| inert::safe_url(u).is_some() && inert::aws_link(u).is_none())
                .unwrap_or_default(),
        );
        let link_text = match (&remediation_url, lead.control_id()) {
            (Some(_), Some(id)) => format!("AWS remediation for {id}"),
            (Some(_), None) => "remediation guidance".to_string(),
            _ => String::new(),
        };
        ctx.insert("remediation_link_text", &link_text);
        let doc_url = control
            .and_then(|c| c.doc_url.as_deref())
            .and_then(inert::aws_link);
        ctx.insert_value(
            "doc_url",
            tera::Value::safe_string(doc_url.as_deref().unwrap_or_default()),
        );
        let source = lead.source_url.as_deref().map(str::trim);
        ctx.insert_value(
            "source_url",
            tera::Value::safe_string(
                source
                    .and_then(inert::aws_link)
                    .as_deref()
                    .unwrap_or_default(),
            ),
        );
        ctx.insert(
            "source_url_text",
            source
                .filter(|u| inert::safe_url(u).is_some() && inert::aws_link(u).is_none())
                .unwrap_or_default(),
        );
        ctx.insert(
            "first_observed_at",
            &earliest(input.findings, |f| {
                f.first_observed_at.as_deref().or(f.created_at.as_deref())
            }),
        );
        ctx.insert(
            "updated_at",
            &latest(input.findings, |f| f.updated_at.as_deref()),
        );
        ctx.insert("finding_count", &input.findings.len());
        ctx.insert("resource_count", &resources.len());
        ctx.insert("ramp_up", &(input.account.mode == Mode::RampUp));
        ctx.insert("ignore_tag", input.ignore_tag);
        // Whether tagging the resource would keep issues like this one from opening here.
        ctx.insert(
            "ignore_tag_honoured",
            &match input.account.ignore_tags {
                IgnoreTags::Always => true,
                IgnoreTags::RampUp => input.account.mode == Mode::RampUp,
                IgnoreTags::Never => false,
            },
        );
        ctx.insert("owner", &input.owner.unwrap_or(""));
        ctx.insert(
            "due",
            &input
                .due
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        );
        let owner_line = match input.owner {
            Some(o) if crate::config::is_login(o) => format!(
                "Owner: @{o}, on call for this repository. You own this issue until it is closed; add the label `acknowledged` once you have seen it."
            ),
            _ => "Nobody could be assigned yet: the security team will find an owner.".to_string(),
        };
        let mut owner_block = owner_line;
        for note in input.notes {
            owner_block.push_str(&format!(
                "\n\n> [!IMPORTANT]\n> {}",
                inert::prose(note).replace('\n', "\n> ")
            ));
        }
        ctx.insert("owner_line", &owner_block);
        // Plain text: the template's escaping breaks `@` (a zero-width space follows it), so
        // approvers are named without being pinged on every issue.
        let approvers: Vec<String> = input
            .approvers
            .iter()
            .map(|a| match a {
                Approver::User { login } => login.clone(),
                Approver::Team { org, slug } => format!("@{org}/{slug}"),
            })
            .collect();
        let approvers_text = if approvers.is_empty() {
            "the security team; no approvers are configured yet".to_string()
        } else {
            approvers.join(", ")
        };
        ctx.insert("approvers_text", &approvers_text);
        ctx.insert("resources_section", &resources_section(resources, listed));
        ctx
    }
}

fn flatten_error(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// A curated file that breaks the format, as a start-up error naming the file and fields.
fn curated_error(e: curated::CuratedError) -> TemplateError {
    TemplateError::Invalid {
        file: e.file.clone(),
        message: e
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A file of the override directory: its name relative to it (`controls/S3.1.toml`).
struct OverrideFile {
    name: String,
    path: std::path::PathBuf,
    text: String,
}

fn read_overrides(dir: &Path) -> Result<Vec<OverrideFile>, TemplateError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&path).map_err(|e| TemplateError::Invalid {
            file: path.display().to_string(),
            message: format!("cannot read template directory: {e}"),
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if p.is_dir() {
                stack.push((p, format!("{name}/")));
            } else if name.ends_with(".md")
                || name.ends_with(".txt")
                || (name.starts_with("controls/") && name.ends_with(".toml"))
            {
                let text = std::fs::read_to_string(&p).map_err(|e| TemplateError::Invalid {
                    file: p.display().to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                out.push(OverrideFile {
                    name,
                    path: p,
                    text,
                });
            }
        }
    }
    Ok(out)
}

/// The explanation's title for a group led by `lead`: the control's title from the catalog,
/// else the finding's own (untrusted) title.
pub fn explanation_title(lead: &Finding, catalog: &Catalog) -> String {
    lead.control_id()
        .and_then(|id| catalog.get(id))
        .map(|c| c.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| lead.title.clone())
}

/// The remediation link of a group led by `lead`, only ever to AWS: the finding's own guidance
/// when it is on AWS, else the catalog's.
pub fn remediation_link(lead: &Finding, catalog: &Catalog) -> Option<String> {
    let control = lead.control_id().and_then(|id| catalog.get(id));
    lead.remediation_url
        .as_deref()
        .map(str::trim)
        .and_then(inert::aws_link)
        .or_else(|| {
            control
                .and_then(|c| c.remediation_url.as_deref())
                .and_then(inert::aws_link)
        })
}

/// The most severe finding (first on ties) speaks for the group.
pub fn lead_finding(findings: &[Finding]) -> &Finding {
    let mut lead = &findings[0];
    for f in findings {
        if f.severity > lead.severity {
            lead = f;
        }
    }
    lead
}

#[derive(Debug, Clone)]
struct ResourceLine {
    id: String,
    kind: Option<String>,
    region: Option<String>,
    fixed: bool,
    /// For a per-vulnerability finding grouped by package: the vulnerability (CVE) and the
    /// vulnerable packages; the line is one CVE on one resource.
    vulnerability: Option<(String, Vec<String>)>,
    /// An honoured ignore tag as written (`key=reason`, untrusted): taken off the checklist.
    ignored: Option<String>,
}

/// Every resource of the group, once, in first-seen order; a resource is ticked only when
/// every finding naming it is fixed (as [`verdict`] decides: a disabled control or a failed
/// evaluation is not a fix).
fn collect_resources(findings: &[Finding]) -> Vec<ResourceLine> {
    let mut out: Vec<ResourceLine> = Vec::new();
    for f in findings {
        let fixed = verdict(f) == Verdict::Fixed;
        // Findings with vulnerable packages are listed by vulnerability: the issue is the
        // package's (see `GroupKey::for_finding`).
        let vulnerability = f
            .vulnerabilities
            .first()
            .filter(|v| !v.packages.is_empty())
            .map(|v| {
                let mut names: Vec<String> = v.packages.iter().map(|p| p.name.clone()).collect();
                names.sort();
                names.dedup();
                (v.id.clone(), names)
            });
        for r in &f.resources {
            let same = |x: &&mut ResourceLine| {
                x.id == r.id
                    && x.vulnerability.as_ref().map(|v| &v.0)
                        == vulnerability.as_ref().map(|v| &v.0)
            };
            match out.iter_mut().find(same) {
                Some(line) => line.fixed &= fixed,
                None => out.push(ResourceLine {
                    id: r.id.clone(),
                    kind: r.kind.clone(),
                    region: r.region.clone(),
                    fixed,
                    vulnerability: vulnerability.clone(),
                    ignored: None,
                }),
            }
        }
    }
    out
}

/// The bot-owned resource checklist of a group's findings, between its hidden markers.
pub fn resource_checklist(findings: &[Finding]) -> String {
    resource_checklist_ignoring(findings, &std::collections::BTreeMap::new())
}

/// [`resource_checklist`] with the resources of `ignored` (resource → `key=reason`, the ignore
/// tags the account honours) ticked and struck through with their tag (rendered inert): they
/// are taken off the list of what to fix.
pub fn resource_checklist_ignoring(
    findings: &[Finding],
    ignored: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut resources = collect_resources(findings);
    for r in &mut resources {
        r.ignored = ignored.get(&r.id).cloned();
    }
    resources_section(&resources, resources.len().min(MAX_LISTED_RESOURCES))
}

/// `body` with its bot-owned resource checklist replaced by `section`, keeping everything a
/// person wrote elsewhere; `None` when the body has no (complete) checklist markers.
pub fn replace_checklist(body: &str, section: &str) -> Option<String> {
    let start = body.find(RESOURCES_START)?;
    let end = body[start..].find(RESOURCES_END)? + start + RESOURCES_END.len();
    Some(format!("{}{}{}", &body[..start], section, &body[end..]))
}

/// Most vulnerable packages listed before "and N more".
const MAX_LISTED_PACKAGES: usize = 50;

/// The vulnerabilities of a finding (Inspector and other scanners) as a table of packages to
/// upgrade, every value from the finding in an escaped code span; empty when there are none.
fn vulnerabilities_section(vulnerabilities: &[crate::domain::Vulnerability]) -> String {
    let cell = |s: &str| format!("`{}`", inert::code(s).replace('|', "\\|"));
    let mut rows = Vec::new();
    for v in vulnerabilities {
        let cvss = match (&v.cvss_score, &v.cvss_version) {
            (Some(s), Some(ver)) => format!("{} (CVSS {})", cell(s), cell(ver)),
            (Some(s), None) => cell(s),
            _ => "not given".to_string(),
        };
        let id = if v.id.is_empty() {
            "not given".to_string()
        } else {
            cell(&v.id)
        };
        let no_fix = v.fix_available.as_deref() == Some("NO");
        if v.packages.is_empty() {
            rows.push(format!("| {id} | {cvss} | not given | | |"));
        }
        for p in &v.packages {
            let fixed = match &p.fixed_in_version {
                Some(f) => cell(f),
                None if no_fix => "no fix yet".to_string(),
                None => "not given".to_string(),
            };
            let name = match &p.package_manager {
                Some(m) => format!("{} ({})", cell(&p.name), cell(m)),
                None => cell(&p.name),
            };
            let installed = p.installed_version.as_deref().map(cell).unwrap_or_default();
            rows.push(format!(
                "| {id} | {cvss} | {name} | {installed} | {fixed} |"
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let more = rows.len().saturating_sub(MAX_LISTED_PACKAGES);
    rows.truncate(MAX_LISTED_PACKAGES);
    let mut s = String::from(
        "**Vulnerable packages:** upgrade each to its fixed version or later, then rebuild and redeploy what uses it (image, function or instance).\n\n| Vulnerability | Score | Package | Installed | Fixed in |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    if more > 0 {
        s.push_str(&format!("\nand {more} more.\n"));
    }
    s
}

/// The bot-owned checklist of resources, between hidden markers.
fn resources_section(resources: &[ResourceLine], listed: usize) -> String {
    use std::fmt::Write as _;
    // Written into one string (this runs for every issue rendered); `write!` to a `String`
    // cannot fail.
    let mut s = String::with_capacity(RESOURCES_START.len() + RESOURCES_END.len() + 128 * listed);
    s.push_str(RESOURCES_START);
    s.push('\n');
    for r in resources.iter().take(listed) {
        let checked = if r.fixed { "x" } else { " " };
        let ignored = r.ignored.as_ref().filter(|_| !r.fixed);
        s.push_str(match ignored {
            Some(_) => "- [x] ~~",
            None => "- [",
        });
        if ignored.is_none() {
            s.push_str(checked);
            s.push_str("] ");
        }
        match &r.vulnerability {
            Some((id, packages)) => {
                let _ = write!(
                    s,
                    "`{}` in `{}` on `{}`",
                    inert::code(id),
                    inert::code(&packages.join(", ")),
                    inert::code(&r.id)
                );
            }
            None => {
                let _ = write!(s, "`{}`", inert::code(&r.id));
            }
        }
        if ignored.is_some() {
            s.push_str("~~");
        }
        match (&r.kind, &r.region) {
            (Some(k), Some(reg)) => {
                let _ = write!(s, " ({}, {})", inert::prose(k), inert::prose(reg));
            }
            (Some(one), None) | (None, Some(one)) => {
                let _ = write!(s, " ({})", inert::prose(one));
            }
            (None, None) => {}
        }
        match ignored {
            Some(tag) => {
                let _ = writeln!(s, ": ignored, tagged `{}`", inert::code(tag));
            }
            None => s.push('\n'),
        }
    }
    if resources.len() > listed {
        let _ = writeln!(s, "- and {} more", resources.len() - listed);
    }
    s.push_str(RESOURCES_END);
    s
}

fn earliest<'a>(findings: &'a [Finding], f: impl Fn(&'a Finding) -> Option<&'a str>) -> String {
    findings
        .iter()
        .filter_map(f)
        .min()
        .unwrap_or("unknown")
        .to_string()
}

fn latest<'a>(findings: &'a [Finding], f: impl Fn(&'a Finding) -> Option<&'a str>) -> String {
    findings
        .iter()
        .filter_map(f)
        .max()
        .unwrap_or("unknown")
        .to_string()
}

fn clean_title(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(250).collect();
    if one_line.chars().count() > 250 {
        out.push('…');
    }
    out
}

/// Labels of an issue: lower case, at most 50 characters.
pub fn labels(lead: &Finding, account: &AccountPolicy) -> Vec<String> {
    let mut out = vec![
        "security-finding".to_string(),
        format!("severity:{}", lead.severity.slug()),
        format!("env:{}", slugify(&account.environment)),
    ];
    match lead.control_id() {
        Some(id) => out.push(format!("control:{}", id.to_ascii_lowercase())),
        None => out.push(format!("source:{}", lead.product_slug())),
    }
    if account.mode == Mode::RampUp {
        out.push("ramp-up".to_string());
    }
    out.into_iter().map(|l| label(&l)).collect()
}

/// A label as GitHub will accept it from Lever: lower case, no whitespace, at most 50 chars.
pub fn label(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' {
                '-'
            } else {
                c
            }
        })
        .take(50)
        .collect()
}

#[cfg(test)]
mod tests;
