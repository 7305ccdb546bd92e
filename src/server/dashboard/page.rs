//! The dashboard page: the report (`crate::report`) as one HTML document with inline CSS and
//! server-rendered SVG charts. Pure: [`render`] takes the report and the viewer.
//!
//! Everything that comes from the store or a request is escaped ([`esc`]); the page has no
//! script, loads nothing from elsewhere (the `Content-Security-Policy` the handler sends
//! forbids it), and every chart has a `<title>`, an `aria-labelledby` description and a data
//! table beside it as its text alternative. Colours keep at least 4.5:1 against the white
//! background, and the burn-down's lines differ by dash pattern as well as by colour. Numbers
//! carry `data-*` attributes so the browser test reads exactly what is shown.

use std::fmt::Write;

use crate::domain::Severity;
use crate::report::{BySeverity, Report, SEVERITIES, Timing};

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The colour and dash pattern of a severity's line (contrast ≥ 4.5:1 on white).
fn style(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Critical => ("#b91c1c", ""),
        Severity::High => ("#c2410c", "8 4"),
        Severity::Medium => ("#854d0e", "2 3"),
        Severity::Low => ("#1d4ed8", "10 3 2 3"),
        Severity::Informational => ("#4b5563", "1 5"),
    }
}

const CSS: &str = "
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111827;background:#fff}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline;justify-content:space-between;padding:1rem 1.25rem;border-bottom:1px solid #d1d5db}
h1{font-size:1.35rem;margin:0}
h2{font-size:1.1rem;margin:1.75rem 0 .5rem}
main{max-width:72rem;margin:0 auto;padding:0 1.25rem 2rem}
.muted{color:#4b5563}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;margin:1rem 0;padding:0}
.cards div{border:1px solid #d1d5db;border-radius:.5rem;padding:.6rem .8rem}
.cards dt{font-size:.85rem;color:#374151}
.cards dd{margin:0;font-size:1.6rem;font-weight:700}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26rem),1fr));gap:1rem}
figure{margin:0;border:1px solid #d1d5db;border-radius:.5rem;padding:.75rem}
figcaption{font-weight:600;margin-bottom:.25rem}
svg{width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;padding:0;margin:.5rem 0 0;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f3f4f6}
details{margin-top:.5rem}
ul.plain{padding-left:1.2rem}
code{font-size:.9em;overflow-wrap:anywhere}
form{display:inline}
button{font:inherit;border:1px solid #374151;background:#fff;color:#111827;border-radius:.35rem;padding:.2rem .6rem;cursor:pointer}
@media (max-width:40rem){.cards dd{font-size:1.3rem}th,td{padding:.3rem}}
";

fn hours(t: &Timing) -> String {
    match (t.mean_hours, t.p90_hours) {
        (Some(m), Some(p)) => format!("{m:.1} h / {p:.1} h"),
        _ => "–".into(),
    }
}

fn card(out: &mut String, metric: &str, label: &str, value: u32) {
    let _ = write!(
        out,
        "<div><dt>{}</dt><dd data-metric=\"{metric}\">{value}</dd></div>",
        esc(label)
    );
}

/// The burn-down chart: one line per severity over the report's days.
fn burndown_svg(r: &Report) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 260.0, 40.0, 30.0, 12.0, 12.0);
    let n = r.burndown.len().max(1);
    let max = r
        .burndown
        .iter()
        .flat_map(|p| SEVERITIES.iter().map(|s| p.open.get(*s)))
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: u32| top + (h - top - bottom) * (1.0 - f64::from(v) / f64::from(max));
    let mut out = String::new();
    let first = r
        .burndown
        .first()
        .map(|p| p.date.to_string())
        .unwrap_or_default();
    let last = r
        .burndown
        .last()
        .map(|p| p.date.to_string())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"bd-title bd-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"bd-title\">Burn-down: open issues per severity, {first} to {last}</title>\
         <desc id=\"bd-desc\">One line per severity, one point per day; the table below lists the same numbers.</desc>"
    );
    for tick in [0, max / 2, max] {
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#374151\">{tick}</text>",
            w - right,
            left - 6.0,
            y(tick) + 4.0,
            y = y(tick)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{}\" font-size=\"11\" fill=\"#374151\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#374151\">{}</text>",
        h - 8.0,
        esc(&first),
        w - right,
        h - 8.0,
        esc(&last)
    );
    for s in SEVERITIES {
        let (color, dash) = style(s);
        let points: Vec<String> = r
            .burndown
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.open.get(s))))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\" stroke-dasharray=\"{dash}\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            s.slug()
        );
    }
    out.push_str("</svg>");
    out
}

/// One horizontal bar per team: issues open now.
fn teams_svg(r: &Report) -> String {
    let teams: Vec<_> = r.teams.iter().filter(|t| t.open_now.total() > 0).collect();
    let row = 28.0;
    let (w, label_w) = (640.0, 200.0);
    let h = (row * teams.len().max(1) as f64) + 16.0;
    let max = teams
        .iter()
        .map(|t| t.open_now.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"tm-title tm-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"tm-title\">Open issues per team now</title>\
         <desc id=\"tm-desc\">One bar per team (repository); the table below lists the same numbers.</desc>"
    );
    if teams.is_empty() {
        out.push_str(
            "<text x=\"8\" y=\"20\" font-size=\"13\" fill=\"#374151\">No open issues.</text>",
        );
    }
    for (i, t) in teams.iter().enumerate() {
        let y = 8.0 + row * i as f64;
        let bw = (w - label_w - 48.0) * f64::from(t.open_now.total()) / f64::from(max);
        let name = esc(&t.team);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"end\" fill=\"#111827\">{name}</text>\
             <rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#1d4ed8\"><title>{name}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"#111827\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            row - 8.0,
            t.open_now.total(),
            label_w + bw + 6.0,
            y + 15.0,
            t.open_now.total()
        );
    }
    out.push_str("</svg>");
    out
}

fn severity_cells(out: &mut String, b: &BySeverity) {
    for s in SEVERITIES {
        let _ = write!(out, "<td data-field=\"{}\">{}</td>", s.slug(), b.get(s));
    }
}

/// The page. Pure.
pub fn render(r: &Report, viewer: &str, sign_out: bool) -> String {
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>Lever: security posture</title><style>{CSS}</style></head><body>\
         <header><h1>Lever: security posture</h1><p class=\"muted\" style=\"margin:0\">\
         <span data-metric=\"since\">{}</span> to <span data-metric=\"now\">{}</span> · signed in as <strong>{}</strong>",
        esc(&day(r.since)),
        esc(&day(r.now)),
        esc(viewer)
    );
    if sign_out {
        out.push_str(
            " · <form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>",
        );
    }
    out.push_str("</p></header><main>");

    out.push_str("<h2 id=\"summary\">Summary</h2><dl class=\"cards\">");
    let t = &r.totals;
    card(&mut out, "open-now", "Open now", t.open_now.total());
    card(
        &mut out,
        "critical-now",
        "Critical open",
        t.open_now.critical,
    );
    card(
        &mut out,
        "open-at-start",
        "Open at start",
        t.open_at_start.total(),
    );
    card(&mut out, "opened", "Opened", t.opened);
    card(&mut out, "closed", "Closed", t.closed);
    card(&mut out, "overdue", "Overdue", t.overdue);
    card(
        &mut out,
        "not-acknowledged",
        "Not acknowledged",
        t.not_acknowledged,
    );
    out.push_str("</dl>");
    let _ = write!(
        out,
        "<p>Time to acknowledge (mean / p90): <strong data-metric=\"tta\">{}</strong>. Time to fix: <strong data-metric=\"ttf\">{}</strong>.</p>",
        hours(&t.time_to_acknowledge),
        hours(&t.time_to_fix)
    );

    out.push_str("<div class=\"charts\"><figure><figcaption>Burn-down by severity</figcaption>");
    out.push_str(&burndown_svg(r));
    out.push_str("<ul class=\"legend\" aria-hidden=\"true\">");
    for s in SEVERITIES {
        let (color, dash) = style(s);
        let _ = write!(
            out,
            "<li><svg width=\"28\" height=\"10\" style=\"display:inline;width:28px;vertical-align:middle\"><line x1=\"0\" y1=\"5\" x2=\"28\" y2=\"5\" stroke=\"{color}\" stroke-width=\"2.5\" stroke-dasharray=\"{dash}\"/></svg> {}</li>",
            s.slug()
        );
    }
    out.push_str("</ul><details><summary>Burn-down data</summary><div class=\"scroll\"><table id=\"burndown\"><thead><tr><th scope=\"col\">day</th>");
    for s in SEVERITIES {
        let _ = write!(out, "<th scope=\"col\">{}</th>", s.slug());
    }
    out.push_str("</tr></thead><tbody>");
    for p in &r.burndown {
        let _ = write!(out, "<tr data-day=\"{}\"><td>{}</td>", p.date, p.date);
        severity_cells(&mut out, &p.open);
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></details></figure>");
    out.push_str("<figure><figcaption>Open issues per team</figcaption>");
    out.push_str(&teams_svg(r));
    out.push_str("</figure></div>");

    out.push_str("<h2 id=\"teams\">By team and severity</h2><div class=\"scroll\"><table id=\"teams-table\"><thead><tr><th scope=\"col\">team</th>");
    for s in SEVERITIES {
        let _ = write!(out, "<th scope=\"col\">{}</th>", s.slug());
    }
    out.push_str("<th scope=\"col\">open at start</th><th scope=\"col\">opened</th><th scope=\"col\">closed</th><th scope=\"col\">overdue</th><th scope=\"col\">not acknowledged</th><th scope=\"col\">time to acknowledge (mean / p90)</th><th scope=\"col\">time to fix (mean / p90)</th></tr></thead><tbody>");
    for tr in &r.teams {
        let _ = write!(
            out,
            "<tr data-team=\"{}\"><th scope=\"row\">{}</th>",
            esc(&tr.team),
            esc(&tr.team)
        );
        severity_cells(&mut out, &tr.open_now);
        let _ = write!(
            out,
            "<td data-field=\"open_at_start\">{}</td><td data-field=\"opened\">{}</td><td data-field=\"closed\">{}</td><td data-field=\"overdue\">{}</td><td data-field=\"not_acknowledged\">{}</td><td>{}</td><td>{}</td></tr>",
            tr.open_at_start.total(),
            tr.opened,
            tr.closed,
            tr.overdue,
            tr.not_acknowledged,
            hours(&tr.time_to_acknowledge),
            hours(&tr.time_to_fix)
        );
    }
    out.push_str("</tbody></table></div>");

    let link = |issue: &str, url: &Option<String>| match url {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            format!(
                "<a href=\"{}\" rel=\"noreferrer\">{}</a>",
                esc(u),
                esc(issue)
            )
        }
        _ => esc(issue),
    };
    out.push_str("<h2 id=\"overdue\">Overdue</h2>");
    if r.overdue.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<ul class=\"plain\">");
        for i in &r.overdue {
            let _ = write!(
                out,
                "<li>{} ({}, due {}, owner {})</li>",
                link(&i.issue, &i.url),
                i.severity.slug(),
                esc(&i.due.map(day).unwrap_or_default()),
                esc(i.owner.as_deref().unwrap_or("nobody"))
            );
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<h2 id=\"expiring\">Exceptions expiring in the next {} days</h2>",
        r.expiring_days
    );
    if r.expiring.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<ul class=\"plain\">");
        for e in &r.expiring {
            let _ = write!(
                out,
                "<li>{} (approved by {}, expires {})</li>",
                link(&e.issue, &e.url),
                esc(&e.approver),
                esc(&day(e.expires_at))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2 id=\"rampup\">Ramp-up</h2>");
    if r.rampup.is_empty() {
        out.push_str("<p>No account is ramping up.</p>");
    } else {
        out.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">account</th><th scope=\"col\">environment</th><th scope=\"col\">mode</th><th scope=\"col\">minimum severity</th><th scope=\"col\">enforced from</th><th scope=\"col\">open issues</th><th scope=\"col\">ignore-tagged resources</th></tr></thead><tbody>");
        for a in &r.rampup {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.account_id),
                a.name
                    .as_deref()
                    .map(|n| format!(" ({})", esc(n)))
                    .unwrap_or_default(),
                esc(&a.environment),
                a.mode,
                a.min_severity.slug(),
                a.enforce_from.map(|d| d.to_string()).unwrap_or("–".into()),
                a.open_issues,
                a.ignored_resources
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("<h2 id=\"tags\">Ignore tags set or changed in the period</h2>");
    if r.ignore_tags.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<ul class=\"plain\">");
        for tg in &r.ignore_tags {
            let _ = write!(
                out,
                "<li><code>{}</code> in {}: <q>{}</q> (since {})</li>",
                esc(&tg.arn),
                esc(&tg.account_id),
                esc(&tg.reason),
                esc(&day(tg.since))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<p class=\"muted\">The same numbers as <code>lever report</code>.</p></main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Inputs, Period, compute};
    use chrono::{DateTime, Duration, Utc};

    fn report() -> Report {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = compute(
            Inputs {
                history: &[],
                groups: &[],
                ignore_tags: &[],
                accounts: &[],
            },
            Period {
                since: now - Duration::days(3),
                now,
                expiring: Duration::days(14),
            },
        );
        r.teams.push(crate::report::TeamRow {
            team: "acme/<script>alert(1)</script>".into(),
            open_now: BySeverity {
                critical: 2,
                ..BySeverity::default()
            },
            ..Default::default()
        });
        r.ignore_tags.push(crate::report::TagLine {
            arn: "arn:\"><img src=x>".into(),
            account_id: "111111111111".into(),
            reason: "<b>ok</b> & 'quoted'".into(),
            since: now,
        });
        r
    }

    #[test]
    fn everything_from_the_store_is_escaped() {
        let html = render(&report(), "<viewer>", true);
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(!html.contains("<img src=x>"));
        assert!(!html.contains("<viewer>"));
        assert!(html.contains("acme/&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;ok&lt;/b&gt; &amp; &#39;quoted&#39;"));
        assert!(!html.contains("<script"), "no script at all");
    }

    #[test]
    fn charts_have_text_alternatives() {
        let html = render(&report(), "alice", false);
        for needle in [
            "aria-labelledby=\"bd-title bd-desc\"",
            "<title id=\"bd-title\">",
            "aria-labelledby=\"tm-title tm-desc\"",
            "<table id=\"burndown\">",
            "<table id=\"teams-table\">",
            "<tr data-day=\"2026-11-20\">",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        assert_eq!(
            html.matches("<polyline").count(),
            5,
            "one line per severity"
        );
        assert!(!html.contains("/auth/logout"), "no sign-out behind a proxy");
    }

    #[test]
    fn escaping_table() {
        for (input, want) in [
            ("plain", "plain"),
            ("a<b>&\"'", "a&lt;b&gt;&amp;&quot;&#39;"),
            ("bell\u{7}", "bell "),
        ] {
            assert_eq!(esc(input), want);
        }
    }
}
