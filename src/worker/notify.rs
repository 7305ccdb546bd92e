//! `notify-findings`: tell Security Hub that the findings of a group are tracked, by setting
//! their workflow to NOTIFIED with a note linking the issue.

use serde_json::json;

use super::{JobError, JobOutput, Run};
use crate::app::App;
use crate::domain::{GroupKey, WorkflowStatus};
use crate::store::AuditEntry;

pub(super) async fn run(app: &App, run: &Run, key: &GroupKey) -> Result<JobOutput, JobError> {
    let Some(group) = app.store.group(key).await? else {
        return Ok(JobOutput::default());
    };
    let (Some(url), Some(number)) = (group.issue_url.clone(), group.issue_number) else {
        return Ok(JobOutput::default());
    };
    if !app.config.settings.securityhub.writeback {
        return Ok(JobOutput::default());
    }
    let owner = group
        .assignee
        .as_deref()
        .map(|o| format!(" Owner: {o}."))
        .unwrap_or_default();
    let mut changes = super::effects::update_findings(
        app,
        key,
        WorkflowStatus::Notified,
        &format!("Lever: tracked in {url}.{owner}"),
        None,
    )
    .await?;
    if !changes.findings.is_empty() {
        changes.audit.push(AuditEntry {
            seq: 0,
            at: app.now(),
            actor: "lever".into(),
            action: "findings-notified".into(),
            group_key: Some(key.clone()),
            issue: Some(format!("{}#{number}", group.repo)),
            source: Some(run.source()),
            detail: json!({ "workflow": "NOTIFIED", "processed": changes.findings.len() }),
        });
    }
    Ok(JobOutput::done(changes))
}
