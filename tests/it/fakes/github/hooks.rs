//! The App's webhook delivery log, as GitHub keeps it (`GET /app/hook/deliveries`, newest
//! first, cursor-paged) and redelivery on request (`POST /app/hook/deliveries/{id}/attempts`:
//! the same event, same guid, queued again for the test to deliver).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::api::Ctx;
use super::server::Reply;
use super::state::ts;
use super::webhooks::WebhookDelivery;

/// One recorded delivery attempt.
#[derive(Debug, Clone)]
pub struct HookAttempt {
    pub id: u64,
    pub delivery: WebhookDelivery,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    /// What the App's endpoint answered; 0 when GitHub could not connect.
    pub status_code: u16,
}

impl HookAttempt {
    fn json(&self) -> Value {
        let status = match self.status_code {
            0 => "Couldn't connect to server".to_string(),
            200..=299 => "OK".to_string(),
            s => format!("Invalid HTTP Response: {s}"),
        };
        json!({
            "id": self.id,
            "guid": self.delivery.id,
            "delivered_at": ts(self.delivered_at),
            "redelivery": self.redelivery,
            "duration": 0.05,
            "status": status,
            "status_code": self.status_code,
            "event": self.delivery.event,
            "action": self.delivery.action,
            "installation_id": self.delivery.payload["installation"]["id"].as_u64(),
            "repository_id": self.delivery.payload["repository"]["id"].as_u64(),
        })
    }
}

/// `GET /app/hook/deliveries`: newest first; `cursor=v1_<offset>`.
pub(crate) fn list(ctx: &Ctx) -> Reply {
    let per_page = ctx
        .q("per_page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let offset = ctx
        .q("cursor")
        .and_then(|c| c.strip_prefix("v1_").and_then(|n| n.parse::<usize>().ok()))
        .unwrap_or(0);
    let mut all: Vec<&HookAttempt> = ctx.st.hook_log.iter().collect();
    all.sort_by_key(|a| std::cmp::Reverse((a.delivered_at, a.id)));
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(per_page)
        .map(|a| a.json())
        .collect();
    let mut reply = Reply::json(200, Value::Array(page));
    if offset + per_page < all.len() {
        reply = reply.header(
            "link",
            format!(
                "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                ctx.b.api,
                offset + per_page
            ),
        );
    }
    reply
}

/// `POST /app/hook/deliveries/{id}/attempts`: 202, and the event is queued to be delivered again.
pub(crate) fn redeliver(ctx: &mut Ctx, id: &str) -> Reply {
    let Some(attempt) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| ctx.st.hook_log.iter().find(|a| a.id == id).cloned())
    else {
        return Reply::not_found();
    };
    ctx.st.redelivery_requests.push(attempt.id);
    ctx.st.outbox.push(attempt.delivery.clone());
    Reply::json(202, json!({}))
}
