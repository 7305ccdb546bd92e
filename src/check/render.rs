//! How `lever check` shows a [`Projection`]: a text table, JSON, or GitHub Actions workflow
//! commands (annotations) plus a Markdown job summary. Pure: strings in, strings out.
//!
//! Finding titles and resource ids are untrusted (anyone who can name a resource or run a
//! product integration sets them). In workflow commands `%`, CR and LF are escaped in the
//! message, and additionally `:` and `,` in properties (the title), so such text can never end
//! the command and start another (GitHub's `toolkit/core` escaping). In the summary, table
//! cells go through [`inert::prose`]: no `|` ends a cell, no HTML, no mention.

use super::{ProjectedIssue, Projection};
use crate::explain::inert;

/// GitHub shows at most this many annotations of each kind per step; the rest are listed only
/// in the summary.
pub const MAX_ANNOTATIONS: usize = 10;

/// Whether the check blocks (annotations are errors) or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn resources(issue: &ProjectedIssue) -> Vec<&str> {
    let mut out: Vec<&str> = issue
        .findings
        .iter()
        .flat_map(|f| f.resources.iter().map(String::as_str))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn environments(issue: &ProjectedIssue) -> String {
    let mut envs: Vec<&str> = issue
        .findings
        .iter()
        .map(|f| f.environment.as_str())
        .collect();
    envs.sort();
    envs.dedup();
    envs.join(", ")
}

fn control(issue: &ProjectedIssue) -> &str {
    issue.control_id.as_deref().unwrap_or("-")
}

/// One line per issue plus a closing sentence, for a terminal.
pub fn text(p: &Projection) -> String {
    let mut out = String::new();
    if p.issues.is_empty() {
        out.push_str(&format!(
            "Nothing would become an issue in {} for {} ({} finding(s) of its resources in other environments considered, {} covered by exceptions).\n",
            p.target_environment, p.repo, p.considered, p.covered
        ));
        return out;
    }
    out.push_str(&format!(
        "{} issue(s) would be opened in {} (minimum {}) for {}:\n",
        p.issues.len(),
        p.target_environment,
        p.min_severity,
        p.repo
    ));
    for i in &p.issues {
        out.push_str(&format!(
            "  {:<8}  {:<8}  {} (in {}{})\n",
            i.severity.as_str(),
            control(i),
            i.title.replace(['\r', '\n'], " "),
            environments(i),
            if i.informational {
                ", informational"
            } else {
                ""
            }
        ));
        for r in resources(i) {
            out.push_str(&format!(
                "                      {}\n",
                r.replace(['\r', '\n'], " ")
            ));
        }
        if let Some(link) = &i.link {
            out.push_str(&format!("                      {link}\n"));
        }
    }
    out.push_str(&format!(
        "{} finding(s) considered, {} covered by exceptions.\n",
        p.considered, p.covered
    ));
    out
}

/// The projection as one JSON document.
pub fn json(p: &Projection) -> String {
    serde_json::to_string_pretty(p).expect("a projection serializes")
}

/// The workflow commands: one annotation per issue, at most [`MAX_ANNOTATIONS`], then a
/// notice naming how many more are in the summary.
pub fn annotations(p: &Projection, kind: Severity) -> String {
    let cmd = match kind {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = String::new();
    for i in p.issues.iter().take(MAX_ANNOTATIONS) {
        let title = format!(
            "{} {} would become a {} issue",
            i.severity.as_str(),
            control(i),
            p.target_environment
        );
        let mut message = format!(
            "{} (seen in {}): {}",
            i.title,
            environments(i),
            resources(i).join(", ")
        );
        if let Some(link) = &i.link {
            message.push_str(&format!("\n{link}"));
        }
        out.push_str(&format!(
            "::{cmd} title={}::{}\n",
            escape_property(&title),
            escape_data(&message)
        ));
    }
    if p.issues.len() > MAX_ANNOTATIONS {
        out.push_str(&format!(
            "::notice title={}::{}\n",
            escape_property("Lever check"),
            escape_data(&format!(
                "{} more issue(s) are listed only in the job summary",
                p.issues.len() - MAX_ANNOTATIONS
            ))
        ));
    }
    out
}

fn cell(s: &str) -> String {
    inert::prose(s).replace('\n', " ")
}

/// The Markdown job summary: every issue in a table.
pub fn summary(p: &Projection, kind: Severity) -> String {
    let mut out = format!(
        "### Lever: what {} would ticket for {}\n\n",
        cell(&p.target_environment),
        cell(&p.repo)
    );
    if p.issues.is_empty() {
        out.push_str(&format!(
            "Nothing would become an issue ({} finding(s) considered, {} covered by exceptions).\n",
            p.considered, p.covered
        ));
        return out;
    }
    out.push_str(&format!(
        "{} issue(s) would be opened (minimum {}){}.\n\n",
        p.issues.len(),
        p.min_severity,
        match kind {
            Severity::Error => ": the release is blocked",
            Severity::Warning => "",
        }
    ));
    out.push_str("| Severity | Control | Problem | Seen in | Resources |\n");
    out.push_str("|---|---|---|---|---|\n");
    for i in &p.issues {
        let title = match &i.link {
            Some(link) => format!("[{}]({link})", cell(&i.title)),
            None => cell(&i.title),
        };
        let res: Vec<String> = resources(i).iter().map(|r| inert::code(r)).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i.severity.as_str(),
            cell(control(i)),
            title,
            cell(&environments(i)),
            res.iter()
                .map(|r| format!("`{}`", r.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join("<br>")
        ));
    }
    out.push_str(&format!(
        "\n{} finding(s) considered, {} covered by exceptions.\n",
        p.considered, p.covered
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ProjectedFinding;
    use crate::domain::{GroupKey, Severity as Sev};

    fn issue(n: usize, title: &str, resource: &str) -> ProjectedIssue {
        ProjectedIssue {
            group_key: GroupKey(format!("k{n:02}")),
            control_id: Some(format!("EC2.{n}")),
            severity: Sev::High,
            title: title.into(),
            link: Some("https://docs.aws.amazon.com/securityhub/x".into()),
            informational: false,
            findings: vec![ProjectedFinding {
                finding_id: format!("f{n}"),
                account_id: "222222222222".into(),
                environment: "staging".into(),
                region: "us-east-1".into(),
                severity: Sev::High,
                title: title.into(),
                resources: vec![resource.into()],
                detail: "d".into(),
            }],
        }
    }

    fn projection(issues: Vec<ProjectedIssue>) -> Projection {
        Projection {
            repo: "acme/payments".into(),
            target_environment: "production".into(),
            target_accounts: vec!["111111111111".into()],
            min_severity: Sev::High,
            considered: issues.len(),
            covered: 0,
            issues,
        }
    }

    #[test]
    fn escaping_table() {
        for (input, data, property) in [
            ("plain", "plain", "plain"),
            ("50%", "50%25", "50%25"),
            ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
            ("x::error::y", "x::error::y", "x%3A%3Aerror%3A%3Ay"),
            ("a,b", "a,b", "a%2Cb"),
            ("%0A", "%250A", "%250A"),
        ] {
            assert_eq!(escape_data(input), data, "{input:?}");
            assert_eq!(escape_property(input), property, "{input:?}");
        }
    }

    #[test]
    fn a_title_cannot_inject_a_workflow_command() {
        let evil = "bucket\n::add-mask::x\r\n::set-env name=A::b, 100%";
        let p = projection(vec![issue(1, evil, "arn:aws:s3:::b\n::stop-commands::t")]);
        let out = annotations(&p, Severity::Error);
        // Exactly one command, on one line, whatever the untrusted text says.
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("::error title=HIGH EC2.1 would become a production issue::"));
        assert!(
            out.contains("bucket%0A::add-mask::x%0D%0A::set-env name=A::b, 100%25"),
            "{out}"
        );
        assert!(out.contains("b%0A::stop-commands::t"), "{out}");
    }

    #[test]
    fn warn_mode_writes_warnings() {
        let p = projection(vec![issue(1, "t", "r")]);
        let out = annotations(&p, Severity::Warning);
        assert!(out.starts_with("::warning title="), "{out}");
        assert!(!out.contains("::error"), "{out}");
    }

    #[test]
    fn at_most_ten_annotations_the_rest_in_the_summary() {
        let issues: Vec<ProjectedIssue> = (1..=13)
            .map(|n| issue(n, &format!("problem {n}"), &format!("arn:r{n}")))
            .collect();
        let p = projection(issues);
        let out = annotations(&p, Severity::Error);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("::error ")).count(),
            10
        );
        assert!(
            out.lines()
                .last()
                .unwrap()
                .starts_with("::notice title=Lever check::3 more issue(s)"),
            "{out}"
        );
        let md = summary(&p, Severity::Error);
        for n in 1..=13 {
            assert!(
                md.contains(&format!("| EC2.{n} |")),
                "EC2.{n} missing:\n{md}"
            );
        }
        assert!(md.contains("the release is blocked"));
    }

    #[test]
    fn summary_cells_are_inert() {
        let p = projection(vec![issue(
            1,
            "a | b <img src=x onerror=alert(1)> @team",
            "arn:aws:s3:::x|y",
        )]);
        let md = summary(&p, Severity::Warning);
        let row = md.lines().find(|l| l.starts_with("| HIGH")).unwrap();
        // Five cells: no untrusted `|` ends one.
        assert_eq!(row.matches(" | ").count() + 2, 6, "{row}");
        assert!(!row.contains("<img"), "{row}");
        assert!(row.contains("&lt;img"), "{row}");
        assert!(!row.contains("@team"), "{row}");
        assert!(row.contains("x\\|y"), "{row}");
    }

    #[test]
    fn text_and_empty() {
        let empty = projection(vec![]);
        assert!(text(&empty).starts_with("Nothing would become an issue in production"));
        assert!(summary(&empty, Severity::Error).contains("Nothing would become an issue"));
        assert_eq!(annotations(&empty, Severity::Error), "");
        let p = projection(vec![issue(1, "t", "arn:r")]);
        let t = text(&p);
        assert!(t.contains("HIGH"), "{t}");
        assert!(t.contains("arn:r"), "{t}");
        let back: Projection = serde_json::from_str(&json(&p)).unwrap();
        assert_eq!(back, p);
    }
}
