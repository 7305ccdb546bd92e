//! `notify-findings`: tell Security Hub that the findings of a group are tracked, by setting
//! their workflow to NOTIFIED with a note linking the issue.

use serde_json::json;

use super::{JobError, Outcome};
use crate::app::App;
use crate::domain::{GroupKey, Note, RecordState, WorkflowStatus};
use crate::securityhub::{FindingRef, note_text};
use crate::store::{AuditEntry, ChangeSet, Job};

pub(super) async fn run(app: &App, job: &Job) -> Result<Outcome, JobError> {
    let key = GroupKey(job.subject.clone());
    let Some(group) = app.store.group(&key).await? else {
        return Ok(Outcome::default());
    };
    let (Some(url), Some(number)) = (group.issue_url.clone(), group.issue_number) else {
        return Ok(Outcome::default());
    };
    let updated_by = app.config.settings.securityhub.updated_by.clone();
    let records: Vec<_> = app
        .store
        .findings_in_group(&key)
        .await?
        .into_iter()
        .filter(|r| r.workflow == WorkflowStatus::New && r.record_state == RecordState::Active)
        .collect();
    if records.is_empty() || !app.config.settings.securityhub.writeback {
        return Ok(Outcome::default());
    }
    let owner = group
        .assignee
        .as_deref()
        .map(|o| format!(" Owner: {o}."))
        .unwrap_or_default();
    let text = note_text(&format!("Lever: tracked in {url}.{owner}"));
    let refs: Vec<FindingRef> = records
        .iter()
        .map(|r| FindingRef {
            id: r.finding_id.clone(),
            product_arn: r.product_arn.clone(),
        })
        .collect();
    let outcome = app
        .securityhub
        .update_workflow(&refs, WorkflowStatus::Notified, &text, &updated_by)
        .await?;
    let now = app.now();
    let mut changes = ChangeSet::default();
    for mut r in records {
        let processed = outcome
            .processed
            .iter()
            .any(|p| p.id == r.finding_id && p.product_arn == r.product_arn);
        if !processed {
            continue;
        }
        // Record what Security Hub now holds, so its echo (an Imported event) is not news.
        r.workflow = WorkflowStatus::Notified;
        r.finding.workflow = WorkflowStatus::Notified;
        r.finding.note = Some(Note {
            text: text.clone(),
            updated_by: updated_by.clone(),
            updated_at: None,
        });
        changes.findings.push(r);
    }
    changes.audit.push(AuditEntry {
        seq: 0,
        at: now,
        actor: "lever".into(),
        action: "findings-notified".into(),
        group_key: Some(key.clone()),
        issue: Some(format!("{}#{number}", group.repo)),
        source: Some(format!("job:{}", job.id)),
        detail: json!({
            "workflow": "NOTIFIED",
            "processed": outcome.processed.len(),
            "unprocessed": outcome.unprocessed,
        }),
    });
    let again = (!outcome.unprocessed.is_empty()).then(|| {
        let first = &outcome.unprocessed[0];
        JobError::retry(format!(
            "Security Hub did not process {} finding(s), e.g. {}: {} {}",
            outcome.unprocessed.len(),
            first.finding.id,
            first.code,
            first.message
        ))
    });
    Ok(Outcome { changes, again })
}
