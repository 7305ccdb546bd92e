//! `[exceptions]`, `[verification]` and `[sync]`: how issues live after they are opened.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Serialize;
use toml::de::DeValue;

use super::parse_duration;
use super::spanned::{Diag, Table, type_name};
use crate::domain::Severity;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionSettings {
    /// Whether an approver may approve an exception on an issue assigned to themselves.
    pub allow_self_approval: bool,
    /// How long an exception lasts when its approver wrote no `Exception-Expires:`, per severity.
    pub expiry: BTreeMap<Severity, Duration>,
    /// The longest an exception may last from its approval, whatever `Exception-Expires:` says.
    pub max_expiry: Duration,
}

impl ExceptionSettings {
    pub fn expiry_for(&self, severity: Severity) -> Duration {
        self.expiry
            .get(&severity)
            .copied()
            .unwrap_or(Duration::days(90))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationSettings {
    /// First Security Hub check after an issue is closed without approval.
    pub after: Duration,
    /// How long a closed issue whose findings still fail waits before it reopens.
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncSettings {
    /// How often `lever serve` reconciles with Security Hub (`None`: never).
    pub interval: Option<Duration>,
    /// How far before the last cursor a sync reads again (findings updated while a sync ran).
    pub overlap: Duration,
    /// How often `lever serve` asks GitHub for the App's failed webhook deliveries and has them
    /// sent again (`None`: never). GitHub keeps deliveries for 3 days and never redelivers by
    /// itself.
    pub webhooks: Option<Duration>,
    /// How often `lever serve` reconciles its tracked issues with GitHub (state, labels,
    /// assignees), beyond the 3 days GitHub keeps deliveries (`None`: never).
    pub reconcile: Option<Duration>,
}

/// How long finished work is kept (`[retention]`). The audit trail is kept forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionSettings {
    /// Finished (`done`) jobs are deleted this long after they finished. Parked jobs stay until
    /// an operator re-queues them.
    pub jobs: Duration,
    /// Deliveries (ids and body digests, for deduplication) are deleted this long after they
    /// arrived; never less than [`MIN_DELIVERY_RETENTION`], so a redelivery is always known.
    pub deliveries: Duration,
}

/// GitHub keeps an App's deliveries 3 days and redelivers on request; EventBridge retries for
/// up to 24 h: 8 days covers both with room to spare.
pub const MIN_DELIVERY_RETENTION: Duration = Duration::days(8);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleSettings {
    pub exceptions: ExceptionSettings,
    pub verification: VerificationSettings,
    pub sync: SyncSettings,
    pub retention: RetentionSettings,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            exceptions: ExceptionSettings {
                allow_self_approval: false,
                expiry: Severity::ALL
                    .iter()
                    .map(|s| (*s, Duration::days(90)))
                    .collect(),
                max_expiry: Duration::days(365),
            },
            verification: VerificationSettings {
                after: Duration::minutes(15),
                grace: Duration::hours(24),
            },
            sync: SyncSettings {
                interval: Some(Duration::hours(1)),
                overlap: Duration::minutes(15),
                webhooks: Some(Duration::minutes(15)),
                reconcile: Some(Duration::hours(6)),
            },
            retention: RetentionSettings {
                jobs: Duration::days(30),
                deliveries: Duration::days(14),
            },
        }
    }
}

fn duration(d: &mut Diag, t: &mut Table, key: &str, positive: bool) -> Option<Duration> {
    let s = t.string(d, key)?;
    match parse_duration(s.get_ref()) {
        Ok(v) if positive && v <= Duration::zero() => {
            d.error(
                s.span(),
                format!("{}.{key} must be longer than zero", t.path),
            );
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            d.error(s.span(), format!("{}.{key}: {e}", t.path));
            None
        }
    }
}

/// A duration as written in the file when it is whole days (`180d`), else in the largest units.
fn days(d: Duration) -> String {
    if d.num_seconds() % 86_400 == 0 {
        format!("{}d", d.num_days())
    } else {
        super::format_duration(d)
    }
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> LifecycleSettings {
    let mut out = LifecycleSettings::default();
    if let Some(mut t) = root.table(d, "retention") {
        if let Some(v) = duration(d, &mut t, "jobs", true) {
            out.retention.jobs = v;
        }
        let span = t.get("deliveries").map(|v| v.span());
        if let Some(v) = duration(d, &mut t, "deliveries", true) {
            if v < MIN_DELIVERY_RETENTION {
                d.error(
                    span.unwrap_or_default(),
                    format!(
                        "retention.deliveries must be at least {} (GitHub's 3-day redelivery window and EventBridge's retries), found {}",
                        days(MIN_DELIVERY_RETENTION),
                        days(v)
                    ),
                );
            } else {
                out.retention.deliveries = v;
            }
        }
        t.finish(d);
    }
    if let Some(mut t) = root.table(d, "exceptions") {
        if let Some(b) = t.boolean(d, "allow_self_approval") {
            out.exceptions.allow_self_approval = b.into_inner();
        }
        let span = t
            .get("max_expiry")
            .or_else(|| t.get("expiry"))
            .map(|v| v.span());
        if let Some(v) = duration(d, &mut t, "max_expiry", true) {
            out.exceptions.max_expiry = v;
        }
        match t.get("expiry") {
            None => {}
            Some(v) => match v.get_ref() {
                DeValue::String(s) => match parse_duration(s) {
                    Ok(dur) if dur > Duration::zero() => {
                        for sev in Severity::ALL {
                            out.exceptions.expiry.insert(sev, dur);
                        }
                    }
                    Ok(_) => d.error(v.span(), "exceptions.expiry must be longer than zero"),
                    Err(e) => d.error(v.span(), format!("exceptions.expiry: {e}")),
                },
                DeValue::Table(_) => {
                    if let Some(mut et) = super::spanned::as_table(d, "exceptions.expiry".into(), v) {
                        for (k, val) in et.entries() {
                            let name = k.get_ref().to_string();
                            let Ok(sev) = name.parse::<Severity>() else {
                                d.error(k.span(), format!("exceptions.expiry: unknown severity {name:?}"));
                                continue;
                            };
                            match val.get_ref() {
                                DeValue::String(s) => match parse_duration(s) {
                                    Ok(dur) if dur > Duration::zero() => {
                                        out.exceptions.expiry.insert(sev, dur);
                                    }
                                    Ok(_) => d.error(val.span(), format!("exceptions.expiry.{name} must be longer than zero")),
                                    Err(e) => d.error(val.span(), format!("exceptions.expiry.{name}: {e}")),
                                },
                                other => d.error(
                                    val.span(),
                                    format!("exceptions.expiry.{name} must be a duration such as \"90d\", found {}", type_name(other)),
                                ),
                            }
                        }
                        et.finish(d);
                    }
                }
                other => d.error(
                    v.span(),
                    format!(
                        "exceptions.expiry must be a duration (\"90d\") or a table per severity, found {}",
                        type_name(other)
                    ),
                ),
            },
        }
        // A default longer than the maximum would be cut at every approval: say so here.
        if let Some(span) = span {
            let max = out.exceptions.max_expiry;
            let longer: Vec<String> = out
                .exceptions
                .expiry
                .iter()
                .filter(|(_, d)| **d > max)
                .map(|(s, _)| s.slug().to_string())
                .collect();
            if !longer.is_empty() {
                d.error(
                    span,
                    format!(
                        "exceptions.max_expiry ({}) is shorter than exceptions.expiry for {}",
                        days(max),
                        longer.join(", ")
                    ),
                );
            }
        }
        t.finish(d);
    }
    if let Some(mut t) = root.table(d, "verification") {
        if let Some(v) = duration(d, &mut t, "after", false) {
            out.verification.after = v;
        }
        if let Some(v) = duration(d, &mut t, "grace", false) {
            out.verification.grace = v;
        }
        t.finish(d);
    }
    if let Some(mut t) = root.table(d, "sync") {
        for key in ["interval", "webhooks", "reconcile"] {
            let Some(s) = t.string(d, key) else { continue };
            let value = match s.get_ref().trim() {
                "off" | "never" => Some(None),
                text => match parse_duration(text) {
                    Ok(v) if v >= Duration::minutes(1) => Some(Some(v)),
                    Ok(_) => {
                        d.error(
                            s.span(),
                            format!("sync.{key} must be at least 1m (or \"off\")"),
                        );
                        None
                    }
                    Err(e) => {
                        d.error(s.span(), format!("sync.{key}: {e}"));
                        None
                    }
                },
            };
            match (key, value) {
                ("interval", Some(v)) => out.sync.interval = v,
                ("reconcile", Some(v)) => out.sync.reconcile = v,
                (_, Some(v)) => out.sync.webhooks = v,
                (_, None) => {}
            }
        }
        if let Some(v) = duration(d, &mut t, "overlap", false) {
            out.sync.overlap = v;
        }
        t.finish(d);
    }
    out
}
