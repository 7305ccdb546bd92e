//! Issue mutations shared by the REST handlers (actor = the caller, usually the App's bot) and
//! the `human_*` helpers (actor = a person). Each records issue events and returns the webhook
//! deliveries GitHub would send for it.

use serde_json::{Value, json};

use super::markdown;
use super::state::{Bases, CommentRec, EventRec, IssueRec, LabelRec, State};
use super::webhooks::delivery;
use super::{Place, Sighting, SightingKind, WebhookDelivery};

/// Default colour GitHub gives labels it creates implicitly.
pub(crate) const IMPLICIT_LABEL_COLOR: &str = "ededed";

fn record_event(
    st: &mut State,
    repo: &str,
    issue: u64,
    actor: &str,
    event: &str,
    fill: impl FnOnce(&mut EventRec),
) {
    let id = st.next_id();
    let now = st.now();
    let via_app = st.is_bot(actor);
    let mut e = EventRec {
        id,
        issue,
        actor: actor.to_string(),
        event: event.to_string(),
        label: None,
        assignee: None,
        state_reason: None,
        rename: None,
        created_at: now,
        via_app,
    };
    fill(&mut e);
    st.repo_mut(repo).unwrap().events.push(e);
}

/// What GitHub finds in a text it renders (see `markdown`): recorded for inspection.
fn read_text(st: &mut State, repo: &str, issue: u64, place: Place, actor: &str, text: &str) {
    let here = st.repo(repo).map(|r| r.full_name()).unwrap_or_default();
    let found = match place {
        Place::Title => markdown::scan_title(text, &here),
        _ => markdown::scan(text, &here),
    };
    let mut push = |kind: SightingKind, what: Vec<String>| {
        for w in what {
            st.sightings.push(Sighting {
                repo: here.clone(),
                issue,
                place,
                by: actor.to_string(),
                kind,
                what: w,
            });
        }
    };
    push(SightingKind::Mention, found.mentions);
    push(SightingKind::Reference, found.references);
    push(SightingKind::Link, found.links);
}

fn touch(st: &mut State, repo: &str, number: u64) {
    let now = st.now();
    if let Some(i) = st.repo_mut(repo).and_then(|r| r.issue_mut(number)) {
        i.updated_at = now;
    }
}

/// Ensure a label exists in the repo (GitHub creates unknown labels when they are applied).
/// Returns its canonical name.
pub(crate) fn ensure_label(st: &mut State, repo: &str, name: &str) -> String {
    if let Some(l) = st.repo(repo).and_then(|r| r.label(name)) {
        return l.name.clone();
    }
    let id = st.next_id();
    st.repo_mut(repo).unwrap().labels.push(LabelRec {
        id,
        name: name.to_string(),
        color: IMPLICIT_LABEL_COLOR.to_string(),
        description: None,
    });
    name.to_string()
}

fn issue_delivery(
    st: &State,
    b: &Bases,
    repo: &str,
    number: u64,
    action: &str,
    sender: &str,
    extra: Vec<(&str, Value)>,
) -> WebhookDelivery {
    let r = st.repo(repo).unwrap();
    let issue = st.issue_json(b, r, r.issue(number).unwrap());
    let mut fields = vec![("issue", issue)];
    fields.extend(extra);
    delivery(st, b, r, "issues", Some(action), sender, fields)
}

/// Create an issue. Labels are created when unknown; assignees must already be validated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_issue(
    st: &mut State,
    b: &Bases,
    repo: &str,
    actor: &str,
    title: &str,
    body: Option<String>,
    labels: &[String],
    assignees: &[String],
) -> (u64, Vec<WebhookDelivery>) {
    let id = st.next_id();
    let now = st.now();
    let via_app = st.is_bot(actor);
    let labels: Vec<String> = labels.iter().map(|l| ensure_label(st, repo, l)).collect();
    let mut uniq_labels: Vec<String> = vec![];
    for l in labels {
        if !uniq_labels.iter().any(|u| u.eq_ignore_ascii_case(&l)) {
            uniq_labels.push(l);
        }
    }
    let mut uniq_assignees: Vec<String> = vec![];
    for a in assignees {
        let login = st.account(a).map(|x| x.login.clone()).unwrap_or(a.clone());
        if !uniq_assignees
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&login))
        {
            uniq_assignees.push(login);
        }
    }
    let r = st.repo_mut(repo).unwrap();
    let number = r.issues.iter().map(|i| i.number).max().unwrap_or(0) + 1;
    r.issues.push(IssueRec {
        id,
        number,
        title: title.to_string(),
        body,
        user: actor.to_string(),
        labels: uniq_labels.clone(),
        assignees: uniq_assignees.clone(),
        state: "open".into(),
        state_reason: None,
        comments: 0,
        created_at: now,
        updated_at: now,
        closed_at: None,
        closed_by: None,
        via_app,
        gone: None,
        moved_to: None,
    });
    read_text(st, repo, number, Place::Title, actor, title);
    if let Some(text) = st.repo(repo).unwrap().issue(number).unwrap().body.clone() {
        read_text(st, repo, number, Place::Body, actor, &text);
    }
    let mut out = vec![issue_delivery(st, b, repo, number, "opened", actor, vec![])];
    for l in &uniq_labels {
        let color = st.repo(repo).unwrap().label(l).unwrap().color.clone();
        record_event(st, repo, number, actor, "labeled", |e| {
            e.label = Some((l.clone(), color))
        });
        out.push(label_delivery(st, b, repo, number, "labeled", actor, l));
    }
    for a in &uniq_assignees {
        record_event(st, repo, number, actor, "assigned", |e| {
            e.assignee = Some(a.clone())
        });
        out.push(assignee_delivery(st, b, repo, number, "assigned", actor, a));
    }
    (number, out)
}

fn label_delivery(
    st: &State,
    b: &Bases,
    repo: &str,
    number: u64,
    action: &str,
    actor: &str,
    name: &str,
) -> WebhookDelivery {
    let r = st.repo(repo).unwrap();
    let label = r
        .label(name)
        .map(|l| st.label_json(b, r, l))
        .unwrap_or(Value::Null);
    issue_delivery(st, b, repo, number, action, actor, vec![("label", label)])
}

fn assignee_delivery(
    st: &State,
    b: &Bases,
    repo: &str,
    number: u64,
    action: &str,
    actor: &str,
    login: &str,
) -> WebhookDelivery {
    let user = st.user_json(b, login);
    issue_delivery(st, b, repo, number, action, actor, vec![("assignee", user)])
}

/// Add labels (creating unknown ones); already-present labels are no-ops.
pub(crate) fn add_labels(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    names: &[String],
    actor: &str,
) -> Vec<WebhookDelivery> {
    let mut out = vec![];
    for n in names {
        let canonical = ensure_label(st, repo, n);
        let r = st.repo_mut(repo).unwrap();
        let issue = r.issue_mut(number).unwrap();
        if issue
            .labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&canonical))
        {
            continue;
        }
        issue.labels.push(canonical.clone());
        let color = r.label(&canonical).unwrap().color.clone();
        touch(st, repo, number);
        record_event(st, repo, number, actor, "labeled", |e| {
            e.label = Some((canonical.clone(), color))
        });
        out.push(label_delivery(
            st, b, repo, number, "labeled", actor, &canonical,
        ));
    }
    out
}

/// Remove one label. `None` when the issue does not carry it.
pub(crate) fn remove_label(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    name: &str,
    actor: &str,
) -> Option<Vec<WebhookDelivery>> {
    let r = st.repo_mut(repo).unwrap();
    let issue = r.issue_mut(number).unwrap();
    let pos = issue
        .labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case(name))?;
    let canonical = issue.labels.remove(pos);
    let color = r
        .label(&canonical)
        .map(|l| l.color.clone())
        .unwrap_or_default();
    touch(st, repo, number);
    record_event(st, repo, number, actor, "unlabeled", |e| {
        e.label = Some((canonical.clone(), color))
    });
    Some(vec![label_delivery(
        st,
        b,
        repo,
        number,
        "unlabeled",
        actor,
        &canonical,
    )])
}

/// Replace the label set.
pub(crate) fn set_labels(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    names: &[String],
    actor: &str,
) -> Vec<WebhookDelivery> {
    let current = st.repo(repo).unwrap().issue(number).unwrap().labels.clone();
    let mut out = vec![];
    for l in &current {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(l)) {
            out.extend(remove_label(st, b, repo, number, l, actor).unwrap_or_default());
        }
    }
    out.extend(add_labels(st, b, repo, number, names, actor));
    out
}

/// Add assignees (callers filter out non-assignable users).
pub(crate) fn add_assignees(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    logins: &[String],
    actor: &str,
) -> Vec<WebhookDelivery> {
    let mut out = vec![];
    for a in logins {
        let login = st.account(a).map(|x| x.login.clone()).unwrap_or(a.clone());
        let issue = st.repo_mut(repo).unwrap().issue_mut(number).unwrap();
        if issue
            .assignees
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&login))
            || issue.assignees.len() >= 10
        {
            continue;
        }
        issue.assignees.push(login.clone());
        touch(st, repo, number);
        record_event(st, repo, number, actor, "assigned", |e| {
            e.assignee = Some(login.clone())
        });
        out.push(assignee_delivery(
            st, b, repo, number, "assigned", actor, &login,
        ));
    }
    out
}

/// Remove assignees (absent ones are ignored).
pub(crate) fn remove_assignees(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    logins: &[String],
    actor: &str,
) -> Vec<WebhookDelivery> {
    let mut out = vec![];
    for a in logins {
        let issue = st.repo_mut(repo).unwrap().issue_mut(number).unwrap();
        let Some(pos) = issue
            .assignees
            .iter()
            .position(|x| x.eq_ignore_ascii_case(a))
        else {
            continue;
        };
        let login = issue.assignees.remove(pos);
        touch(st, repo, number);
        record_event(st, repo, number, actor, "unassigned", |e| {
            e.assignee = Some(login.clone())
        });
        out.push(assignee_delivery(
            st,
            b,
            repo,
            number,
            "unassigned",
            actor,
            &login,
        ));
    }
    out
}

/// Close (no-op when closed). `reason`: `completed`, `not_planned`, `duplicate`.
pub(crate) fn close(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    reason: &str,
    actor: &str,
) -> Vec<WebhookDelivery> {
    let now = st.now();
    let issue = st.repo_mut(repo).unwrap().issue_mut(number).unwrap();
    if issue.state == "closed" {
        if issue.state_reason.as_deref() != Some(reason) {
            issue.state_reason = Some(reason.to_string());
            issue.updated_at = now;
        }
        return vec![];
    }
    issue.state = "closed".into();
    issue.state_reason = Some(reason.to_string());
    issue.closed_at = Some(now);
    issue.closed_by = Some(actor.to_string());
    issue.updated_at = now;
    record_event(st, repo, number, actor, "closed", |e| {
        e.state_reason = Some(reason.to_string())
    });
    vec![issue_delivery(st, b, repo, number, "closed", actor, vec![])]
}

/// Reopen (no-op when open).
pub(crate) fn reopen(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    actor: &str,
) -> Vec<WebhookDelivery> {
    let now = st.now();
    let issue = st.repo_mut(repo).unwrap().issue_mut(number).unwrap();
    if issue.state == "open" {
        return vec![];
    }
    issue.state = "open".into();
    issue.state_reason = Some("reopened".into());
    issue.closed_at = None;
    issue.closed_by = None;
    issue.updated_at = now;
    record_event(st, repo, number, actor, "reopened", |e| {
        e.state_reason = Some("reopened".into())
    });
    vec![issue_delivery(
        st,
        b,
        repo,
        number,
        "reopened",
        actor,
        vec![],
    )]
}

/// Change title and/or body; one `edited` delivery with `changes`.
pub(crate) fn edit(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    title: Option<&str>,
    body: Option<Option<String>>,
    actor: &str,
) -> Vec<WebhookDelivery> {
    let now = st.now();
    let issue = st.repo_mut(repo).unwrap().issue_mut(number).unwrap();
    let mut changes = serde_json::Map::new();
    let mut renamed = None;
    if let Some(t) = title
        && t != issue.title
    {
        changes.insert("title".into(), json!({"from": issue.title}));
        renamed = Some((issue.title.clone(), t.to_string()));
        issue.title = t.to_string();
    }
    if let Some(bd) = body
        && bd != issue.body
    {
        changes.insert(
            "body".into(),
            json!({"from": issue.body.clone().unwrap_or_default()}),
        );
        issue.body = bd;
    }
    if changes.is_empty() {
        return vec![];
    }
    issue.updated_at = now;
    let (new_title, new_body) = (issue.title.clone(), issue.body.clone());
    if changes.contains_key("title") {
        read_text(st, repo, number, Place::Title, actor, &new_title);
    }
    if changes.contains_key("body") {
        read_text(
            st,
            repo,
            number,
            Place::Body,
            actor,
            &new_body.unwrap_or_default(),
        );
    }
    if let Some(rename) = renamed {
        record_event(st, repo, number, actor, "renamed", |e| {
            e.rename = Some(rename)
        });
    }
    vec![issue_delivery(
        st,
        b,
        repo,
        number,
        "edited",
        actor,
        vec![("changes", Value::Object(changes))],
    )]
}

/// Add a comment. Returns the comment id and the `issue_comment.created` delivery.
pub(crate) fn comment(
    st: &mut State,
    b: &Bases,
    repo: &str,
    number: u64,
    body: &str,
    actor: &str,
) -> (u64, Vec<WebhookDelivery>) {
    let id = st.next_id();
    let now = st.now();
    let via_app = st.is_bot(actor);
    let r = st.repo_mut(repo).unwrap();
    r.comments.push(CommentRec {
        id,
        issue: number,
        user: actor.to_string(),
        body: body.to_string(),
        created_at: now,
        updated_at: now,
        via_app,
    });
    let issue = r.issue_mut(number).unwrap();
    issue.comments += 1;
    issue.updated_at = now;
    read_text(st, repo, number, Place::Comment(id), actor, body);
    let r = st.repo(repo).unwrap();
    let issue = st.issue_json(b, r, r.issue(number).unwrap());
    let c = st.comment_json(b, r, r.comments.last().unwrap());
    let d = delivery(
        st,
        b,
        r,
        "issue_comment",
        Some("created"),
        actor,
        vec![("issue", issue), ("comment", c)],
    );
    (id, vec![d])
}

/// Change a comment's body; one `issue_comment.edited` delivery with `changes.body.from`
/// (none when the body is unchanged).
pub(crate) fn edit_comment(
    st: &mut State,
    b: &Bases,
    repo: &str,
    comment_id: u64,
    body: &str,
    actor: &str,
) -> Vec<WebhookDelivery> {
    let now = st.now();
    let r = st.repo_mut(repo).unwrap();
    let c = r.comments.iter_mut().find(|c| c.id == comment_id).unwrap();
    if c.body == body {
        return vec![];
    }
    let from = std::mem::replace(&mut c.body, body.to_string());
    c.updated_at = now;
    let number = c.issue;
    read_text(st, repo, number, Place::Comment(comment_id), actor, body);
    let r = st.repo(repo).unwrap();
    let issue = st.issue_json(b, r, r.issue(number).unwrap());
    let comment = st.comment_json(
        b,
        r,
        r.comments.iter().find(|c| c.id == comment_id).unwrap(),
    );
    vec![delivery(
        st,
        b,
        r,
        "issue_comment",
        Some("edited"),
        actor,
        vec![
            ("issue", issue),
            ("comment", comment),
            ("changes", json!({"body": {"from": from}})),
        ],
    )]
}
