//! `GET /search/issues`.

use chrono::TimeDelta;
use serde_json::{Value, json};

use super::Reply;
use super::api::{Ctx, DOC, paginate, validation_failed};
use super::auth::Auth;

/// `GET /search/issues`: a subset of GitHub's issue search syntax (see `FakeGitHub` docs).
pub(crate) fn search_issues(ctx: &mut Ctx) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/search/search#search-issues-and-pull-requests";
    let installation = match ctx.auth {
        Auth::Installation {
            installation,
            usable: true,
            ..
        } => Some(*installation),
        Auth::None => None,
        Auth::Jwt { result: Ok(()), .. } => {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOC,
            ));
        }
        _ => return Err(Reply::error(401, "Bad credentials", DOC)),
    };
    let now = ctx.st.now();
    if let Some(inst) = installation {
        let calls = ctx.st.search_calls.entry(inst).or_default();
        calls.retain(|t| *t > now - TimeDelta::minutes(1));
        if calls.len() >= 30 {
            let reset = calls[0] + TimeDelta::minutes(1);
            return Err(Reply::error(
                403,
                "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            .header("x-ratelimit-limit", "30")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", "30")
            .header("x-ratelimit-reset", reset.timestamp().to_string())
            .header("x-ratelimit-resource", "search"));
        }
        calls.push(now);
    }
    let q = ctx.q("q").unwrap_or_default().to_string();
    if q.trim().is_empty() {
        return Err(validation_failed(
            json!([{"resource": "Search", "field": "q", "code": "missing"}]),
            doc,
        ));
    }
    let query = SearchQuery::parse(&q);
    let cutoff = ctx.st.search_index_cutoff;
    let mut hits: Vec<(String, u64)> = vec![];
    for (key, r) in &ctx.st.repos {
        let visible = match installation {
            Some(i) => r.installation == Some(i) || !r.private,
            None => !r.private,
        };
        if !visible || (!query.repos.is_empty() && !query.repos.contains(key)) {
            continue;
        }
        for i in &r.issues {
            if i.gone.is_none() && cutoff.is_none_or(|c| i.id <= c) && query.matches(i) {
                hits.push((key.clone(), i.number));
            }
        }
    }
    let sort = ctx.q("sort").unwrap_or("");
    let get = |(k, n): &(String, u64)| ctx.st.repos[k].issue(*n).unwrap();
    hits.sort_by(|a, b| {
        let (x, y) = (get(a), get(b));
        match sort {
            "updated" => x.updated_at.cmp(&y.updated_at),
            "comments" => x.comments.cmp(&y.comments),
            _ => x.created_at.cmp(&y.created_at),
        }
        .then(x.id.cmp(&y.id))
    });
    if ctx.q("order").unwrap_or("desc") == "desc" {
        hits.reverse();
    }
    let total = hits.len();
    hits.truncate(1000);
    let items: Vec<Value> = hits
        .iter()
        .map(|h| {
            let r = &ctx.st.repos[&h.0];
            let mut v = ctx.st.issue_json(ctx.b, r, get(h));
            v["score"] = json!(1.0);
            v
        })
        .collect();
    let page = paginate(ctx, items, Some(format!("{}/search/issues", ctx.b.api)));
    let body = json!({
        "total_count": total,
        "incomplete_results": false,
        "search_type": "lexical",
        "items": page.body.unwrap_or(json!([])),
    });
    let mut reply = Reply::json(200, body);
    reply.headers = page.headers;
    Ok(reply)
}

/// Parsed search query: qualifiers the fake understands, plus free-text terms.
struct SearchQuery {
    repos: Vec<String>,
    state: Option<String>,
    pull_requests: bool,
    labels: Vec<String>,
    not_labels: Vec<String>,
    author: Option<String>,
    assignee: Option<String>,
    in_title: bool,
    in_body: bool,
    terms: Vec<String>,
}

impl SearchQuery {
    fn tokens(q: &str) -> Vec<String> {
        let mut out = vec![];
        let mut cur = String::new();
        let mut quoted = false;
        for c in q.chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn parse(q: &str) -> SearchQuery {
        let mut s = SearchQuery {
            repos: vec![],
            state: None,
            pull_requests: false,
            labels: vec![],
            not_labels: vec![],
            author: None,
            assignee: None,
            in_title: false,
            in_body: false,
            terms: vec![],
        };
        for t in Self::tokens(q) {
            let lower = t.to_ascii_lowercase();
            match lower.split_once(':') {
                Some(("repo", v)) => s.repos.push(v.to_string()),
                Some(("is" | "type", "issue")) => {}
                Some(("is" | "type", "pr" | "pull-request")) => s.pull_requests = true,
                Some(("is" | "state", v @ ("open" | "closed"))) => s.state = Some(v.to_string()),
                Some(("label", _)) => s.labels.push(t[6..].to_string()),
                Some(("-label", _)) => s.not_labels.push(t[7..].to_string()),
                Some(("author", _)) => s.author = Some(t[7..].to_string()),
                Some(("assignee", _)) => s.assignee = Some(t[9..].to_string()),
                Some(("in", v)) => {
                    for part in v.split(',') {
                        s.in_title |= part == "title";
                        s.in_body |= part == "body";
                    }
                }
                _ => s.terms.push(lower),
            }
        }
        if !s.in_title && !s.in_body {
            s.in_title = true;
            s.in_body = true;
        }
        s
    }

    fn matches(&self, i: &super::state::IssueRec) -> bool {
        let text = format!(
            "{} {}",
            if self.in_title { i.title.as_str() } else { "" },
            if self.in_body {
                i.body.as_deref().unwrap_or("")
            } else {
                ""
            }
        )
        .to_lowercase();
        !self.pull_requests
            && self.state.as_ref().is_none_or(|s| &i.state == s)
            && self
                .labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
            && !self
                .not_labels
                .iter()
                .any(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
            && self
                .author
                .as_ref()
                .is_none_or(|a| i.user.eq_ignore_ascii_case(a))
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)))
            && self.terms.iter().all(|t| text.contains(t.as_str()))
    }
}
