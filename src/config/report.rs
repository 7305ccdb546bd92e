//! `[report]` and `[dashboard]`: what `lever report`, the weekly digest and the dashboard page
//! show, and who may see the page.
//!
//! ```toml
//! [report]
//! expiring = "14d"                  # exceptions expiring within this are listed (default 14d)
//!
//! [dashboard]                       # GET / on `lever serve`; off unless one access is set
//! proxy_header = "X-Forwarded-User" # (a) a trusted reverse proxy signs people in and sets it
//! github_org = "acme"               # (b) GitHub sign-in: members of this organisation ...
//! github_team = "security"          #     ... and of this team in it (optional)
//! ```
//!
//! With `proxy_header`, whoever can reach Lever directly can set the header: the proxy must
//! strip it from what clients send and Lever must not be reachable around the proxy. GitHub
//! sign-in also needs `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` (the App's OAuth
//! credentials) in the environment. Setting both accesses is an error: one page, one door.

use chrono::Duration;
use serde::Serialize;

use super::duration::parse_duration;
use super::settings::is_login;
use super::spanned::{Diag, Table};

/// The default of `[report] expiring`.
pub const DEFAULT_EXPIRING: Duration = Duration::days(14);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSettings {
    /// Exceptions expiring within this are listed (`expiring`).
    #[serde(skip)]
    pub expiring: Duration,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            expiring: DEFAULT_EXPIRING,
        }
    }
}

/// Who may see the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DashboardAccess {
    /// Neither configured: `GET /` answers 404.
    #[default]
    Off,
    /// A trusted reverse proxy names the person in this header.
    ProxyHeader { header: String },
    /// GitHub sign-in through the App: members of `org` (and of `team` in it, when set).
    GitHub { org: String, team: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DashboardSettings {
    pub access: DashboardAccess,
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> (ReportSettings, DashboardSettings) {
    let mut report = ReportSettings::default();
    if let Some(mut t) = root.table(d, "report") {
        if let Some(s) = t.string(d, "expiring") {
            match parse_duration(s.get_ref().trim()) {
                Ok(v) if v >= Duration::zero() => report.expiring = v,
                Ok(_) => d.error(s.span(), "report.expiring must not be negative"),
                Err(e) => d.error(s.span(), format!("report.expiring: {e}")),
            }
        }
        t.finish(d);
    }
    let mut dashboard = DashboardSettings::default();
    if let Some(mut t) = root.table(d, "dashboard") {
        let span = t.span.clone();
        let header = t.string(d, "proxy_header");
        let org = t.string(d, "github_org");
        let team = t.string(d, "github_team");
        if let Some(h) = &header
            && !is_header_name(h.get_ref())
        {
            d.error(
                h.span(),
                format!(
                    "dashboard.proxy_header: {:?} is not an HTTP header name",
                    h.get_ref()
                ),
            );
        }
        if let Some(o) = &org
            && !is_login(o.get_ref())
        {
            d.error(
                o.span(),
                format!(
                    "dashboard.github_org: {:?} is not a GitHub organisation name",
                    o.get_ref()
                ),
            );
        }
        if let Some(s) = &team
            && !is_slug(s.get_ref())
        {
            d.error(
                s.span(),
                format!(
                    "dashboard.github_team: {:?} is not a team slug",
                    s.get_ref()
                ),
            );
        }
        dashboard.access = match (header, org, team) {
            (Some(h), None, None) => DashboardAccess::ProxyHeader {
                header: h.into_inner(),
            },
            (None, Some(o), team) => DashboardAccess::GitHub {
                org: o.into_inner(),
                team: team.map(|t| t.into_inner()),
            },
            (None, None, Some(s)) => {
                d.error(s.span(), "dashboard.github_team needs github_org");
                DashboardAccess::Off
            }
            (Some(h), _, _) => {
                d.error(
                    h.span(),
                    "dashboard: set proxy_header or github_org, not both (one way in)",
                );
                DashboardAccess::Off
            }
            (None, None, None) => {
                d.error(
                    span,
                    "[dashboard] needs proxy_header = \"X-Forwarded-User\" or github_org = \"ORG\"",
                );
                DashboardAccess::Off
            }
        };
        t.finish(d);
    }
    (report, dashboard)
}
