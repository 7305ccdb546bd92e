//! Repository contents and check runs of the fake GitHub: `GET /repos/{owner}/{repo}/contents/{path}`
//! (`ref`: a branch or a commit sha; default: the default branch, `main`) and
//! `POST /repos/{owner}/{repo}/check-runs` (recorded with the request body; read them with
//! [`FakeGitHub::check_runs`](super::FakeGitHub::check_runs)).
//!
//! Files change by commits ([`FakeGitHub::commit_files`](super::FakeGitHub::commit_files)):
//! each commit is a full snapshot of the repository's files with a sha of its own, and moves
//! its branch. Reading needs contents: read, which an installation token of the repository has.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Reply;
use super::api::Ctx;
use super::state::{State, ts};

/// The files of one repository: commits (sha → path → text) and branches (name → sha).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub commits: BTreeMap<String, BTreeMap<String, String>>,
    pub branches: BTreeMap<String, String>,
}

/// Commits `files` (path, text; `None` deletes) on `branch` of `repo`; returns the new sha.
pub(crate) fn commit(
    st: &mut State,
    repo: &str,
    branch: &str,
    files: &[(&str, Option<&str>)],
) -> String {
    let tree = st.trees.entry(repo.to_ascii_lowercase()).or_default();
    let mut snapshot = tree
        .branches
        .get(branch)
        .and_then(|sha| tree.commits.get(sha))
        .cloned()
        .unwrap_or_default();
    for (path, text) in files {
        match text {
            Some(t) => snapshot.insert(path.to_string(), t.to_string()),
            None => snapshot.remove(*path),
        };
    }
    let mut h = Sha256::new();
    h.update(repo.as_bytes());
    h.update(branch.as_bytes());
    h.update(tree.commits.len().to_le_bytes());
    for (p, t) in &snapshot {
        h.update(p.as_bytes());
        h.update(t.as_bytes());
    }
    let sha = hex::encode(&h.finalize()[..20]);
    tree.commits.insert(sha.clone(), snapshot);
    tree.branches.insert(branch.to_string(), sha.clone());
    sha
}

fn blob_sha(text: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", text.len()).as_bytes());
    h.update(text.as_bytes());
    hex::encode(&h.finalize()[..20])
}

/// `GET /repos/{owner}/{repo}/contents/{path}`.
pub(crate) fn get(ctx: &mut Ctx, key: &str, path: &[&str]) -> Result<Reply, Reply> {
    let path = path.join("/");
    let git_ref = ctx.q("ref").unwrap_or("main").to_string();
    let tree = ctx.st.trees.get(key).ok_or_else(Reply::not_found)?;
    let sha = tree
        .branches
        .get(&git_ref)
        .cloned()
        .unwrap_or(git_ref.clone());
    let files = tree.commits.get(&sha).ok_or_else(|| {
        Reply::error(
            404,
            &format!("No commit found for the ref {git_ref}"),
            super::api::DOC,
        )
    })?;
    let text = files.get(&path).ok_or_else(Reply::not_found)?;
    let full = ctx
        .st
        .repo(key)
        .map(|r| r.full_name())
        .unwrap_or(key.to_string());
    let api = format!("{}/repos/{full}/contents/{path}?ref={git_ref}", ctx.b.api);
    let html = format!("{}/{full}/blob/{git_ref}/{path}", ctx.b.web);
    let git = format!("{}/repos/{full}/git/blobs/{}", ctx.b.api, blob_sha(text));
    // GitHub wraps the base64 text at 60 characters.
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    Ok(Reply::json(
        200,
        json!({
            "type": "file",
            "encoding": "base64",
            "size": text.len(),
            "name": path.rsplit('/').next().unwrap_or(&path),
            "path": path,
            "content": wrapped.join("\n") + "\n",
            "sha": blob_sha(text),
            "url": api,
            "git_url": git,
            "html_url": html,
            "download_url": format!("https://raw.githubusercontent.com/{full}/{git_ref}/{path}"),
            "_links": {"self": api, "git": git, "html": html},
        }),
    ))
}

/// `POST /repos/{owner}/{repo}/check-runs`.
pub(crate) fn create_check_run(ctx: &mut Ctx, key: &str) -> Result<Reply, Reply> {
    let body = ctx.body.clone().unwrap_or(Value::Null);
    let (Some(name), Some(head_sha)) = (
        body.get("name").and_then(Value::as_str),
        body.get("head_sha").and_then(Value::as_str),
    ) else {
        return Err(Reply::error(
            422,
            "Invalid request: name and head_sha are required",
            super::api::DOC,
        ));
    };
    let known = ctx
        .st
        .trees
        .get(key)
        .is_some_and(|t| t.commits.contains_key(head_sha));
    if !known {
        return Err(Reply::error(
            422,
            "No commit found for SHA",
            super::api::DOC,
        ));
    }
    ctx.st.next_id += 1;
    let id = ctx.st.next_id;
    let now = ts(ctx.st.now());
    let full = ctx
        .st
        .repo(key)
        .map(|r| r.full_name())
        .unwrap_or(key.to_string());
    let url = format!("{}/repos/{full}/check-runs/{id}", ctx.b.api);
    let output = body.get("output").cloned().unwrap_or(json!({}));
    let annotations = output
        .get("annotations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let reply = json!({
        "id": id,
        "node_id": format!("CR_kwDO{id:08}"),
        "head_sha": head_sha,
        "name": name,
        "external_id": body.get("external_id").cloned().unwrap_or(json!("")),
        "url": url,
        "html_url": format!("{}/{full}/runs/{id}", ctx.b.web),
        "details_url": body.get("details_url").cloned().unwrap_or(json!(null)),
        "status": body.get("status").cloned().unwrap_or(json!("queued")),
        "conclusion": body.get("conclusion").cloned().unwrap_or(json!(null)),
        "started_at": now,
        "completed_at": if body.get("conclusion").is_some() { json!(now) } else { json!(null) },
        "output": {
            "title": output.get("title").cloned().unwrap_or(json!(null)),
            "summary": output.get("summary").cloned().unwrap_or(json!(null)),
            "text": output.get("text").cloned().unwrap_or(json!(null)),
            "annotations_count": annotations,
            "annotations_url": format!("{url}/annotations"),
        },
        "check_suite": {"id": id + 1},
        "app": ctx.st.app_json(ctx.b),
        "pull_requests": [],
    });
    ctx.st.check_runs.push((key.to_string(), body));
    Ok(Reply::json(201, reply))
}
