//! Issue list/create/update and label creation (the handlers with the most GitHub rules).

use serde_json::{Value, json};

use super::Reply;
use super::api::{Ctx, issue_reply, paginate, strings, validation_failed};
use super::ops;

pub(super) fn list_issues(ctx: &Ctx, key: &str) -> Reply {
    let r = ctx.st.repo(key).unwrap();
    let state = ctx.q("state").unwrap_or("open");
    let labels: Vec<String> = ctx
        .q("labels")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let creator = ctx.q("creator");
    let assignee = ctx.q("assignee");
    let since = ctx
        .q("since")
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let mut issues: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.gone.is_none())
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| {
            labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
        })
        .filter(|i| creator.is_none_or(|c| i.user.eq_ignore_ascii_case(c)))
        .filter(|i| match assignee {
            None => true,
            Some("none") => i.assignees.is_empty(),
            Some("*") => !i.assignees.is_empty(),
            Some(a) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
        })
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .collect();
    let sort = ctx.q("sort").unwrap_or("created");
    issues.sort_by(|a, b| {
        let primary = match sort {
            "updated" => a.updated_at.cmp(&b.updated_at),
            "comments" => a.comments.cmp(&b.comments),
            _ => a.created_at.cmp(&b.created_at),
        };
        primary.then(a.number.cmp(&b.number))
    });
    if ctx.q("direction").unwrap_or("desc") == "desc" {
        issues.reverse();
    }
    let items: Vec<Value> = issues
        .iter()
        .map(|i| ctx.st.issue_json(ctx.b, r, i))
        .collect();
    let base = format!("{}/repositories/{}/issues", ctx.b.api, r.id);
    paginate(ctx, items, Some(base))
}

fn invalid_assignees(ctx: &Ctx, key: &str, wanted: &[String]) -> Vec<String> {
    let r = ctx.st.repo(key).unwrap();
    wanted
        .iter()
        .filter(|a| !r.is_assignable(a))
        .cloned()
        .collect()
}

fn assignee_errors(bad: &[String]) -> Value {
    Value::Array(
        bad.iter()
            .map(|a| json!({"value": a, "resource": "Issue", "field": "assignees", "code": "invalid"}))
            .collect(),
    )
}

pub(super) fn create_issue(ctx: &mut Ctx, key: &str, actor: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/issues#create-an-issue";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let title = match body.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(validation_failed(
                json!([{"resource": "Issue", "code": "missing_field", "field": "title"}]),
                doc,
            ));
        }
    };
    let text = body.get("body").and_then(Value::as_str).map(str::to_string);
    let labels = body.get("labels").map(strings).unwrap_or_default();
    let mut assignees = body.get("assignees").map(strings).unwrap_or_default();
    if let Some(a) = body.get("assignee").and_then(Value::as_str) {
        assignees.insert(0, a.to_string());
    }
    let bad = invalid_assignees(ctx, key, &assignees);
    if !bad.is_empty() {
        return Err(validation_failed(assignee_errors(&bad), doc));
    }
    let b = ctx.b.clone();
    let (number, d) = ops::create_issue(ctx.st, &b, key, actor, &title, text, &labels, &assignees);
    ctx.st.outbox.extend(d);
    let url = format!(
        "{}/repos/{}/issues/{number}",
        b.api,
        ctx.st.repo(key).unwrap().full_name()
    );
    Ok(issue_reply(ctx, key, number, 201).header("location", url))
}

pub(super) fn update_issue(ctx: &mut Ctx, key: &str, n: u64, actor: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/issues#update-an-issue";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let b = ctx.b.clone();
    let new_assignees = match (body.get("assignees"), body.get("assignee")) {
        (Some(v), _) => Some(strings(v)),
        (None, Some(Value::String(a))) => Some(vec![a.clone()]),
        (None, Some(Value::Null)) => Some(vec![]),
        _ => None,
    };
    if let Some(want) = &new_assignees {
        let bad = invalid_assignees(ctx, key, want);
        if !bad.is_empty() {
            return Err(validation_failed(assignee_errors(&bad), doc));
        }
    }
    let state = body.get("state").and_then(Value::as_str);
    let reason = body.get("state_reason").and_then(Value::as_str);
    if let Some(s) = state
        && s != "open"
        && s != "closed"
    {
        return Err(validation_failed(
            json!([{"resource": "Issue", "code": "invalid", "field": "state", "value": s}]),
            doc,
        ));
    }
    let mut out = vec![];
    let title = match body.get("title") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let text = match body.get("body") {
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    out.extend(ops::edit(ctx.st, &b, key, n, title.as_deref(), text, actor));
    if let Some(v) = body.get("labels") {
        out.extend(ops::set_labels(ctx.st, &b, key, n, &strings(v), actor));
    }
    if let Some(want) = new_assignees {
        let current = ctx
            .st
            .repo(key)
            .unwrap()
            .issue(n)
            .unwrap()
            .assignees
            .clone();
        let gone: Vec<String> = current
            .iter()
            .filter(|c| !want.iter().any(|w| w.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        out.extend(ops::remove_assignees(ctx.st, &b, key, n, &gone, actor));
        out.extend(ops::add_assignees(ctx.st, &b, key, n, &want, actor));
    }
    match (state, reason) {
        (Some("closed"), r) => {
            let r = match r {
                Some("not_planned") => "not_planned",
                Some("duplicate") => "duplicate",
                _ => "completed",
            };
            out.extend(ops::close(ctx.st, &b, key, n, r, actor));
        }
        (Some("open"), _) => out.extend(ops::reopen(ctx.st, &b, key, n, actor)),
        (None, Some(r)) if r != "reopened" => {
            // Changing only the reason of a closed issue.
            let closed = ctx.st.repo(key).unwrap().issue(n).unwrap().state == "closed";
            if closed {
                out.extend(ops::close(ctx.st, &b, key, n, r, actor));
            }
        }
        _ => {}
    }
    ctx.st.outbox.extend(out);
    Ok(issue_reply(ctx, key, n, 200))
}

pub(super) fn create_label(ctx: &mut Ctx, key: &str) -> Result<Reply, Reply> {
    let doc = "https://docs.github.com/rest/issues/labels#create-a-label";
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "missing_field", "field": "name"}]),
            doc,
        ));
    };
    let color = body
        .get("color")
        .and_then(Value::as_str)
        .unwrap_or(ops::IMPLICIT_LABEL_COLOR)
        .trim_start_matches('#')
        .to_ascii_lowercase();
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "invalid", "field": "color"}]),
            doc,
        ));
    }
    if ctx.st.repo(key).unwrap().label(name).is_some() {
        return Err(validation_failed(
            json!([{"resource": "Label", "code": "already_exists", "field": "name"}]),
            doc,
        ));
    }
    let id = ctx.st.next_id();
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let r = ctx.st.repo_mut(key).unwrap();
    r.labels.push(super::state::LabelRec {
        id,
        name: name.to_string(),
        color,
        description,
    });
    let r = ctx.st.repo(key).unwrap();
    let l = r.labels.last().unwrap();
    Ok(Reply::json(201, ctx.st.label_json(ctx.b, r, l)))
}
