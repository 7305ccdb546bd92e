//! `[settle]`: how long a finding for a short-lived resource waits before its issue opens.
//!
//! ```toml
//! [settle]
//! "AWS::AutoScaling::AutoScalingGroup" = "15m"   # a resource type (CloudFormation or ASFF
//! AwsEc2Instance = "30m"                         # spelling: AwsAutoScalingAutoScalingGroup)
//! "EC2.8" = "1h"                                 # or a control id (wins over the type)
//! ```
//!
//! The delay counts from when Lever first stored the finding. If the finding passes, is
//! archived (the resource is gone) or is suppressed meanwhile, no issue opens.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Serialize;

use super::spanned::{Diag, Table};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettleSettings {
    /// By normalised key (see [`normalise`]): a control id or a resource type.
    #[serde(skip)]
    pub delays: BTreeMap<String, Duration>,
}

/// The form keys are compared in: lower case, without `:` (so `AWS::EC2::Instance` and
/// `AwsEc2Instance` are one key).
pub fn normalise(key: &str) -> String {
    key.chars()
        .filter(|c| *c != ':')
        .flat_map(char::to_lowercase)
        .collect()
}

pub(super) fn parse(d: &mut Diag, root: &mut Table) -> SettleSettings {
    let mut out = SettleSettings::default();
    let Some(mut t) = root.table(d, "settle") else {
        return out;
    };
    let keys: Vec<(String, std::ops::Range<usize>)> = t
        .entries()
        .into_iter()
        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
        .collect();
    for (key, span) in keys {
        if normalise(&key).is_empty() {
            d.error(
                span,
                "settle: an empty key names no control or resource type",
            );
            continue;
        }
        if let Some(s) = t.string(d, &key) {
            match super::parse_duration(s.get_ref()) {
                Ok(v) if v > Duration::zero() && v <= Duration::days(7) => {
                    out.delays.insert(normalise(&key), v);
                }
                Ok(_) => d.error(
                    s.span(),
                    format!("settle.{key:?} must be longer than zero and at most 7d"),
                ),
                Err(e) => d.error(s.span(), format!("settle.{key:?}: {e}")),
            }
        }
    }
    t.finish(d);
    out
}
