//! `lever.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strum::{Display, EnumString, IntoStaticStr};
use toml::de::{DeTable, DeValue};

use super::spanned::{Diag, Table, as_table, type_name};
use super::{Assignee, ConfigError, RepoName, oncall};
use crate::domain::calendar::Calendar;
use crate::domain::keys::{Grouping, VulnerabilityGrouping};
use crate::domain::oncall::Rotation;
use crate::domain::{Severity, string_codes};

/// What Lever does in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Mode {
    /// Nothing: prototype accounts.
    Off,
    /// Issues are informational; teams tag what they want ignored.
    RampUp,
    /// Issues are owed a fix.
    Enforce,
}

string_codes!(Mode);

/// When a resource's ignore tag (`policy.ignore_tag` with a reason) stops Lever from opening an
/// issue in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
#[derive(IntoStaticStr, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum IgnoreTags {
    /// Only while the account is in ramp-up mode; elsewhere a tag on a ticketed resource is
    /// reported on the issue, and only an approved exception stops tracking (the default).
    #[default]
    RampUp,
    /// In every mode (anyone who can tag a resource can keep it from being tracked).
    Always,
    /// Never: tags are not read at all.
    Never,
}

string_codes!(IgnoreTags);

/// Policy for one AWS account (or the defaults for accounts not listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountPolicy {
    /// The 12-digit account id; `None` for the defaults.
    pub id: Option<String>,
    pub name: Option<String>,
    pub environment: String,
    pub min_severity: Severity,
    pub mode: Mode,
    /// When the ignore tag is honoured in this account.
    pub ignore_tags: IgnoreTags,
    /// When the mode and the minimum severity change (`enforce_from`, `min_severity_from`):
    /// see [`AccountPolicy::at`].
    pub schedule: super::rampup::RampSchedule,
}

/// Who may approve an exception (`cto-approved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Approver {
    User { login: String },
    Team { org: String, slug: String },
}

/// Whether owner rules may point at public repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublicRepos {
    /// Never: such rules are routed to the fallback repository (the default).
    Deny,
    /// Always (finding details become public: think twice).
    AllowAll,
    /// Only these repositories.
    Allow(Vec<RepoName>),
}

impl PublicRepos {
    pub fn allows(&self, repo: &str) -> bool {
        match self {
            PublicRepos::Deny => false,
            PublicRepos::AllowAll => true,
            PublicRepos::Allow(list) => list.iter().any(|r| r.same_as(repo)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitHubSettings {
    /// Where findings go when no OWNERS rule matches or the owner's repository is public: the
    /// security team's repository.
    pub fallback_repo: RepoName,
    /// Who owns issues in the fallback repository (first resolved entry owns).
    pub fallback_assignees: Vec<Assignee>,
    pub public_repos: PublicRepos,
    /// Content-creating requests (issues, comments, labels, edits) Lever allows itself per
    /// installation and minute (`content_per_minute`, default 80, GitHub's secondary limit).
    pub content_per_minute: u32,
    /// The same per hour (`content_per_hour`, default 500).
    pub content_per_hour: u32,
}

/// GitHub's secondary limits on content-creating requests, Lever's default budget.
pub const DEFAULT_CONTENT_PER_MINUTE: u32 = 80;
pub const DEFAULT_CONTENT_PER_HOUR: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityHubSettings {
    /// `Note.UpdatedBy` on Lever's BatchUpdateFindings calls; also how Lever recognises its own
    /// updates when they come back as Imported events.
    pub updated_by: String,
    /// Whether Lever writes workflow status and notes back to Security Hub.
    pub writeback: bool,
    /// How long a refused write (NOTIFIED, SUPPRESSED: throttling, a missing IAM permission)
    /// keeps being retried with backoff before its job is parked (`retry_writes_for`).
    #[serde(skip)]
    pub retry_writes_for: chrono::Duration,
    /// Which Security Hub API Lever reads and writes (`api`): CSPM (ASFF, GetFindings and
    /// BatchUpdateFindings), v2 (OCSF, GetFindingsV2 and BatchUpdateFindingsV2) or both.
    pub api: SecurityHubApi,
}

/// `[securityhub] api`: which Security Hub Lever reads (`lever sync`, the fix check) and writes
/// statuses back to. Intake accepts both formats whatever this says; a finding's status goes
/// back only through the API of the format it came in, and only when that API is enabled here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityHubApi {
    /// Security Hub CSPM (ASFF): GetFindings, BatchUpdateFindings. The default.
    #[default]
    Cspm,
    /// Security Hub (OCSF): GetFindingsV2, BatchUpdateFindingsV2.
    V2,
    /// Both: each finding keeps the identifiers of the format it came in.
    Both,
}

impl SecurityHubApi {
    pub fn parse(s: &str) -> Option<SecurityHubApi> {
        match s {
            "cspm" => Some(SecurityHubApi::Cspm),
            "v2" => Some(SecurityHubApi::V2),
            "both" => Some(SecurityHubApi::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecurityHubApi::Cspm => "cspm",
            SecurityHubApi::V2 => "v2",
            SecurityHubApi::Both => "both",
        }
    }

    /// Whether the CSPM (ASFF) API is read and written.
    pub fn cspm(self) -> bool {
        matches!(self, SecurityHubApi::Cspm | SecurityHubApi::Both)
    }

    /// Whether the v2 (OCSF) API is read and written.
    pub fn v2(self) -> bool {
        matches!(self, SecurityHubApi::V2 | SecurityHubApi::Both)
    }

    /// Whether the API that knows a finding of this product ARN is enabled.
    pub fn knows(self, product_arn: &str) -> bool {
        if crate::domain::is_v2_product_arn(product_arn) {
            self.v2()
        } else {
            self.cspm()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySettings {
    /// Resource tag whose value (the reason) asks Lever to ignore a resource.
    pub ignore_tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub github: GitHubSettings,
    pub securityhub: SecurityHubSettings,
    pub defaults: AccountPolicy,
    pub accounts: BTreeMap<String, AccountPolicy>,
    pub approvers: Vec<Approver>,
    pub rotations: BTreeMap<String, Rotation>,
    /// Working-time calendars by name (`[calendars.NAME]`), for rotation layers and deadlines.
    pub calendars: BTreeMap<String, Calendar>,
    pub grouping: Grouping,
    pub policy: PolicySettings,
    /// Issue-template overrides (`[templates] dir`, relative to the configuration directory).
    pub templates_dir: Option<PathBuf>,
    /// Exceptions, verification after a close, reconciliation with Security Hub.
    pub lifecycle: super::lifecycle::LifecycleSettings,
    /// Acknowledgement deadlines, backups, fix deadlines (SLA), the digest.
    pub escalation: super::escalation::EscalationSettings,
    /// The noise cap (`[noise]`).
    pub noise: super::noise::NoiseSettings,
    /// Findings that never open an issue (`[exclusions]`).
    pub exclusions: super::exclusions::Exclusions,
    /// Settle delays (`[settle]`).
    pub settle: super::settle::SettleSettings,
    /// The tag audit and tag reads (`[tags]`).
    pub tags: super::tags::TagSettings,
    /// How `GET /api/v1/check` verifies Actions OIDC tokens (`[check]`).
    pub check: super::check::CheckSettings,
    /// `lever report`, the digest and the dashboard (`[report]`).
    pub report: super::report::ReportSettings,
    /// Who may see the dashboard (`[dashboard]`).
    pub dashboard: super::report::DashboardSettings,
}

pub(crate) fn is_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn parse_assignee(s: &str) -> Result<Assignee, String> {
    let Some(rest) = s.strip_prefix('@') else {
        return Err(format!(
            "assignee {s:?} must start with @ (@user or @rotation:NAME)"
        ));
    };
    if let Some(name) = rest.strip_prefix("rotation:") {
        if name.is_empty() {
            return Err(format!("assignee {s:?} names no rotation"));
        }
        return Ok(Assignee::Rotation(name.to_string()));
    }
    if is_login(rest) {
        Ok(Assignee::User(rest.to_string()))
    } else {
        Err(format!("assignee {s:?} is not a valid GitHub login"))
    }
}

pub(super) fn parse(file: &str, src: &str, dir: &Path) -> Result<Settings, Vec<ConfigError>> {
    let mut d = Diag::new(file, src);
    let (doc, syntax) = DeTable::parse_recoverable(src);
    for e in syntax {
        let start = e.span().map(|s| s.start).unwrap_or(0);
        let msg = e.message().trim().to_string();
        d.error(start..start, format!("TOML syntax error: {msg}"));
    }
    if !d.errors.is_empty() {
        return Err(d.errors);
    }
    let doc_span = doc.span();
    let doc = doc.into_inner();
    let mut root = Table::new("", doc_span.clone(), &doc);

    // [accounts.ID] and [defaults]
    let defaults = root
        .table(&mut d, "defaults")
        .map(|mut t| {
            let p = account_policy(&mut d, &mut t, None);
            t.finish(&mut d);
            p
        })
        .unwrap_or(AccountPolicy {
            id: None,
            name: None,
            environment: "unknown".into(),
            min_severity: Severity::Critical,
            mode: Mode::Enforce,
            ignore_tags: IgnoreTags::RampUp,
            schedule: Default::default(),
        });
    let mut accounts = BTreeMap::new();
    if let Some(mut t) = root.table(&mut d, "accounts") {
        for (k, v) in t.entries() {
            let id = k.get_ref().to_string();
            if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                d.error(k.span(), format!("account id {id:?} must be 12 digits"));
            }
            if let Some(mut at) = as_table(&mut d, format!("accounts.{id}"), v) {
                let mut p = account_policy(&mut d, &mut at, Some(&defaults));
                p.id = Some(id.clone());
                at.finish(&mut d);
                accounts.insert(id, p);
            }
        }
        t.finish(&mut d);
    }

    // [github]
    let mut github = None;
    match root.table(&mut d, "github") {
        Some(mut t) => {
            let fallback = t.string(&mut d, "fallback_repo");
            let fallback_repo = match &fallback {
                Some(s) => match RepoName::parse(s.get_ref()) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        d.error(s.span(), format!("github.fallback_repo: {e}"));
                        None
                    }
                },
                None => {
                    d.error(
                        t.span.clone(),
                        "[github] needs fallback_repo = \"owner/repo\" (the security team's repository)",
                    );
                    None
                }
            };
            let mut fallback_assignees = Vec::new();
            for s in t
                .string_list(&mut d, "fallback_assignees")
                .unwrap_or_default()
            {
                match parse_assignee(s.get_ref()) {
                    Ok(a) => fallback_assignees.push((s.span(), a)),
                    Err(e) => d.error(s.span(), format!("github.fallback_assignees: {e}")),
                }
            }
            let public_repos = match t.get("allow_public_repos") {
                None => PublicRepos::Deny,
                Some(v) => match v.get_ref() {
                    DeValue::Boolean(true) => PublicRepos::AllowAll,
                    DeValue::Boolean(false) => PublicRepos::Deny,
                    DeValue::Array(items) => {
                        let mut list = Vec::new();
                        for item in items {
                            match item.get_ref() {
                                DeValue::String(s) => match RepoName::parse(s) {
                                    Ok(r) => list.push(r),
                                    Err(e) => d.error(item.span(), format!("github.allow_public_repos: {e}")),
                                },
                                other => d.error(
                                    item.span(),
                                    format!("github.allow_public_repos entries must be strings, found {}", type_name(other)),
                                ),
                            }
                        }
                        PublicRepos::Allow(list)
                    }
                    other => {
                        d.error(
                            v.span(),
                            format!(
                                "github.allow_public_repos must be true, false or a list of repositories, found {}",
                                type_name(other)
                            ),
                        );
                        PublicRepos::Deny
                    }
                },
            };
            // Above GitHub's limits is allowed (GitHub Enterprise Server may be configured
            // otherwise), but the upper bound keeps the arithmetic sane.
            let content_per_minute = t
                .integer(&mut d, "content_per_minute", 1, 1_000_000)
                .map_or(DEFAULT_CONTENT_PER_MINUTE, |n| n.into_inner() as u32);
            let content_per_hour = t
                .integer(&mut d, "content_per_hour", 1, 60_000_000)
                .map_or(DEFAULT_CONTENT_PER_HOUR, |n| n.into_inner() as u32);
            t.finish(&mut d);
            if let Some(fallback_repo) = fallback_repo {
                github = Some((
                    fallback_repo,
                    fallback_assignees,
                    public_repos,
                    (content_per_minute, content_per_hour),
                ));
            }
        }
        None => d.error(
            0..0,
            "missing [github] table (it needs at least fallback_repo = \"owner/repo\")",
        ),
    }

    // [securityhub]
    let mut securityhub = SecurityHubSettings {
        updated_by: "lever".into(),
        writeback: true,
        retry_writes_for: chrono::Duration::days(7),
        api: SecurityHubApi::default(),
    };
    if let Some(mut t) = root.table(&mut d, "securityhub") {
        if let Some(s) = t.string(&mut d, "updated_by") {
            if s.get_ref().trim().is_empty() || s.get_ref().len() > 128 {
                d.error(
                    s.span(),
                    "securityhub.updated_by must be 1 to 128 characters",
                );
            } else {
                securityhub.updated_by = s.into_inner();
            }
        }
        if let Some(b) = t.boolean(&mut d, "writeback") {
            securityhub.writeback = b.into_inner();
        }
        if let Some(s) = t.string(&mut d, "api") {
            match SecurityHubApi::parse(s.get_ref()) {
                Some(api) => securityhub.api = api,
                None => d.error(
                    s.span(),
                    format!(
                        "securityhub.api must be \"cspm\", \"v2\" or \"both\", not {:?}",
                        s.get_ref()
                    ),
                ),
            }
        }
        if let Some(s) = t.string(&mut d, "retry_writes_for") {
            match super::parse_duration(s.get_ref()) {
                Ok(v) if v > chrono::Duration::zero() => securityhub.retry_writes_for = v,
                Ok(_) => d.error(
                    s.span(),
                    "securityhub.retry_writes_for must be longer than zero",
                ),
                Err(e) => d.error(s.span(), format!("securityhub.retry_writes_for: {e}")),
            }
        }
        t.finish(&mut d);
    }

    // approvers = ["user", "@org/team"]
    let mut approvers = Vec::new();
    for s in root.string_list(&mut d, "approvers").unwrap_or_default() {
        let raw = s.get_ref().trim();
        let raw = raw
            .strip_prefix('@')
            .map(|r| (true, r))
            .unwrap_or((false, raw));
        match raw {
            (_, r) if r.contains('/') => {
                let (org, slug) = r.split_once('/').unwrap_or_default();
                if is_login(org) && !slug.is_empty() && !slug.contains('/') {
                    approvers.push(Approver::Team {
                        org: org.to_string(),
                        slug: slug.to_string(),
                    });
                } else {
                    d.error(
                        s.span(),
                        format!("approver {:?} is not a team (@org/team-slug)", s.get_ref()),
                    );
                }
            }
            (_, r) if is_login(r) => approvers.push(Approver::User {
                login: r.to_string(),
            }),
            _ => d.error(
                s.span(),
                format!(
                    "approver {:?} is neither a GitHub login nor @org/team",
                    s.get_ref()
                ),
            ),
        }
    }

    // [calendars.NAME] and [rotations.NAME] (layers may name calendars)
    let calendars = oncall::calendars(&mut d, &mut root);
    let (rotations, invalid_rotations) = oncall::rotations(&mut d, &mut root, &calendars);

    // [grouping]
    let mut grouping = Grouping::default();
    if let Some(mut t) = root.table(&mut d, "grouping") {
        if let Some(tags) = t.string_list(&mut d, "family_tags") {
            grouping.family_tags = tags.into_iter().map(|s| s.into_inner()).collect();
        }
        if let Some(s) = t.string(&mut d, "vulnerabilities") {
            match s.get_ref().as_str() {
                "package" => grouping.vulnerabilities = VulnerabilityGrouping::Package,
                "vulnerability" => grouping.vulnerabilities = VulnerabilityGrouping::Vulnerability,
                other => d.error(
                    s.span(),
                    format!(
                        "grouping.vulnerabilities: unknown value {other:?} (expected package or vulnerability)"
                    ),
                ),
            }
        }
        t.finish(&mut d);
    }

    // [policy]
    let mut policy = PolicySettings {
        ignore_tag: "lever:ignore".into(),
    };
    if let Some(mut t) = root.table(&mut d, "policy") {
        if let Some(s) = t.string(&mut d, "ignore_tag") {
            if s.get_ref().trim().is_empty() {
                d.error(s.span(), "policy.ignore_tag must not be empty");
            } else {
                policy.ignore_tag = s.into_inner();
            }
        }
        t.finish(&mut d);
    }

    let lifecycle = super::lifecycle::parse(&mut d, &mut root);
    let escalation = super::escalation::parse(&mut d, &mut root, &rotations, &calendars);
    let noise = super::noise::parse(&mut d, &mut root);
    let exclusions = super::exclusions::parse(&mut d, &mut root);
    let settle = super::settle::parse(&mut d, &mut root);
    let tags = super::tags::parse(&mut d, &mut root);
    let check = super::check::parse(&mut d, &mut root);
    let (report, dashboard) = super::report::parse(&mut d, &mut root);

    // [templates]
    let mut templates_dir = None;
    if let Some(mut t) = root.table(&mut d, "templates") {
        if let Some(s) = t.string(&mut d, "dir") {
            let path = dir.join(s.get_ref());
            if !path.is_dir() {
                d.error(
                    s.span(),
                    format!("templates.dir: {} is not a directory", path.display()),
                );
            } else {
                templates_dir = Some(path);
            }
        }
        t.finish(&mut d);
    }

    // [source] names a configuration repository; only a local bootstrap file may (see
    // `config::source`), a repository's own lever.toml cannot move the configuration.
    if let Some(v) = root.get("source") {
        d.error(
            v.span(),
            "[source] is read only from the local lever.toml given to --config, where it stands \
             alone; a configuration repository cannot name another source",
        );
    }

    root.finish(&mut d);

    let Some((
        fallback_repo,
        fallback_assignees,
        public_repos,
        (content_per_minute, content_per_hour),
    )) = github
    else {
        return Err(d.errors);
    };
    let mut checked_fallback = Vec::new();
    for (span, a) in fallback_assignees {
        if let Assignee::Rotation(name) = &a
            && !rotations.contains_key(name)
            && !invalid_rotations.contains(name)
        {
            d.error(
                span,
                format!(
                    "github.fallback_assignees: {}",
                    unknown_rotation(name, &rotations)
                ),
            );
        }
        checked_fallback.push(a);
    }
    if !d.errors.is_empty() {
        return Err(d.errors);
    }
    Ok(Settings {
        github: GitHubSettings {
            fallback_repo,
            fallback_assignees: checked_fallback,
            public_repos,
            content_per_minute,
            content_per_hour,
        },
        securityhub,
        defaults,
        accounts,
        approvers,
        rotations,
        calendars,
        grouping,
        policy,
        templates_dir,
        lifecycle,
        escalation,
        noise,
        exclusions,
        settle,
        tags,
        check,
        report,
        dashboard,
    })
}

pub(crate) fn unknown_rotation(name: &str, rotations: &BTreeMap<String, Rotation>) -> String {
    let known: Vec<&str> = rotations.keys().map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown rotation {name:?} (lever.toml defines no [rotations])")
    } else {
        format!(
            "unknown rotation {name:?} (lever.toml defines: {})",
            known.join(", ")
        )
    }
}

fn account_policy(d: &mut Diag, t: &mut Table, defaults: Option<&AccountPolicy>) -> AccountPolicy {
    let name = t.string(d, "name").map(|s| s.into_inner());
    let environment = t
        .string(d, "environment")
        .map(|s| s.into_inner())
        .or_else(|| defaults.map(|p| p.environment.clone()))
        .unwrap_or_else(|| "unknown".into());
    let min_text = t.string(d, "min_severity");
    let sets_min = min_text.is_some();
    let min_severity = match min_text {
        Some(s) => match s.get_ref().parse::<Severity>() {
            Ok(sev) => sev,
            Err(e) => {
                d.error(s.span(), format!("{}.min_severity: {e}", t.path));
                Severity::Critical
            }
        },
        None => defaults
            .map(|p| p.min_severity)
            .unwrap_or(Severity::Critical),
    };
    let mode_text = t.string(d, "mode");
    let sets_mode = mode_text.is_some();
    let mode = match mode_text {
        Some(s) => match Mode::parse(s.get_ref()) {
            Some(m) => m,
            None => {
                d.error(
                    s.span(),
                    format!(
                        "{}.mode: unknown mode {:?} (expected off, ramp-up or enforce)",
                        t.path,
                        s.get_ref()
                    ),
                );
                Mode::Enforce
            }
        },
        None => defaults.map(|p| p.mode).unwrap_or(Mode::Enforce),
    };
    let ignore_tags = match t.string(d, "ignore_tags") {
        Some(s) => match IgnoreTags::parse(s.get_ref()) {
            Some(v) => v,
            None => {
                d.error(
                    s.span(),
                    format!(
                        "{}.ignore_tags: unknown value {:?} (expected ramp-up, always or never)",
                        t.path,
                        s.get_ref()
                    ),
                );
                IgnoreTags::RampUp
            }
        },
        None => defaults.map(|p| p.ignore_tags).unwrap_or_default(),
    };
    let schedule = super::rampup::parse(
        d,
        t,
        mode,
        min_severity,
        defaults.map(|p| (&p.schedule, sets_mode, sets_min)),
    );
    AccountPolicy {
        id: None,
        name,
        environment,
        min_severity,
        mode,
        ignore_tags,
        schedule,
    }
}
