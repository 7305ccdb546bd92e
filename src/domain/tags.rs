//! The tag audit's pure half: what the ignore tags the Tagging API reports mean, compared with
//! what the previous audit recorded. Time is an argument; nothing here does I/O.
//!
//! * An ignore tag whose value is blank (after trimming) has **no reason**: it never counts, and
//!   the audit flags it.
//! * A resource is identified by its ARN. The same ARN reported by two regions (global
//!   resources) is one resource, the first report wins.
//! * A scope (account, region) the audit could not read (role not assumable, throttled for good)
//!   carries its previous resources over unchanged: nothing "disappears" because it could not be
//!   seen.
//! * `first_seen` is when Lever first saw an ignore tag on the resource (kept while the tag
//!   stays, whatever its reason becomes); `reason_since` is when Lever first saw the current
//!   reason. Who added a tag is not something the Tagging API knows (CloudTrail does).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One resource carrying the ignore tag, as the Tagging API reported it in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub account_id: String,
    pub region: String,
    /// The tag's value as written (untrusted text).
    pub value: String,
    /// Every tag of the resource (for routing by tag).
    pub tags: BTreeMap<String, String>,
}

/// One resource in the audit's snapshot (kept in the store between audits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredResource {
    pub arn: String,
    pub account_id: String,
    pub region: String,
    /// The tag's value as written (untrusted text; blank means no reason).
    pub reason: String,
    /// When Lever first saw an ignore tag on this resource.
    pub first_seen: DateTime<Utc>,
    /// When Lever first saw the current reason.
    pub reason_since: DateTime<Utc>,
}

impl IgnoredResource {
    /// Whether the tag gives a reason (a blank value does not count).
    pub fn has_reason(&self) -> bool {
        !self.reason.trim().is_empty()
    }
}

/// What changed since the previous audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum TagChange {
    Appeared {
        resource: IgnoredResource,
    },
    Changed {
        before: IgnoredResource,
        after: IgnoredResource,
    },
    Disappeared {
        resource: IgnoredResource,
    },
}

impl TagChange {
    pub fn kind(&self) -> &'static str {
        match self {
            TagChange::Appeared { .. } => "appeared",
            TagChange::Changed { .. } => "changed",
            TagChange::Disappeared { .. } => "disappeared",
        }
    }

    /// The resource as it is now (as it was, for one that disappeared).
    pub fn resource(&self) -> &IgnoredResource {
        match self {
            TagChange::Appeared { resource } | TagChange::Disappeared { resource } => resource,
            TagChange::Changed { after, .. } => after,
        }
    }

    /// A tag that is new or whose reason changed: someone should say why.
    pub fn asks_why(&self) -> bool {
        matches!(self, TagChange::Appeared { .. } | TagChange::Changed { .. })
    }
}

/// The audit's result: the new snapshot (by ARN) and the changes, in ARN order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagDiff {
    pub current: Vec<IgnoredResource>,
    pub changes: Vec<TagChange>,
}

/// Compares what the Tagging API reported (`observed`) with the previous snapshot.
/// `unread` lists the (account, region) scopes that could not be read this time: their
/// previous resources are carried over, never reported as disappeared. Pure.
pub fn diff(
    previous: &[IgnoredResource],
    observed: &[Observed],
    unread: &BTreeSet<(String, String)>,
    now: DateTime<Utc>,
) -> TagDiff {
    let before: BTreeMap<&str, &IgnoredResource> =
        previous.iter().map(|r| (r.arn.as_str(), r)).collect();
    let mut seen: BTreeMap<&str, &Observed> = BTreeMap::new();
    for o in observed {
        seen.entry(o.arn.as_str()).or_insert(o);
    }
    let mut current = Vec::new();
    let mut changes = Vec::new();
    for (arn, o) in &seen {
        match before.get(arn) {
            None => {
                let r = IgnoredResource {
                    arn: o.arn.clone(),
                    account_id: o.account_id.clone(),
                    region: o.region.clone(),
                    reason: o.value.clone(),
                    first_seen: now,
                    reason_since: now,
                };
                changes.push(TagChange::Appeared {
                    resource: r.clone(),
                });
                current.push(r);
            }
            Some(prev) if prev.reason != o.value => {
                let r = IgnoredResource {
                    account_id: o.account_id.clone(),
                    region: o.region.clone(),
                    reason: o.value.clone(),
                    reason_since: now,
                    ..(*prev).clone()
                };
                changes.push(TagChange::Changed {
                    before: (*prev).clone(),
                    after: r.clone(),
                });
                current.push(r);
            }
            Some(prev) => current.push((*prev).clone()),
        }
    }
    for (arn, prev) in &before {
        if seen.contains_key(arn) {
            continue;
        }
        if unread.contains(&(prev.account_id.clone(), prev.region.clone())) {
            current.push((*prev).clone());
        } else {
            changes.push(TagChange::Disappeared {
                resource: (*prev).clone(),
            });
        }
    }
    current.sort_by(|a, b| a.arn.cmp(&b.arn));
    changes.sort_by(|a, b| a.resource().arn.cmp(&b.resource().arn));
    TagDiff { current, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const THEN: &str = "2026-11-01T00:00:00Z";
    const EARLIER: &str = "2026-10-01T00:00:00Z";
    const NOW: &str = "2026-11-23T12:00:00Z";

    fn prev(arn: &str, region: &str, reason: &str) -> IgnoredResource {
        IgnoredResource {
            arn: arn.into(),
            account_id: "111111111111".into(),
            region: region.into(),
            reason: reason.into(),
            first_seen: t(EARLIER),
            reason_since: t(THEN),
        }
    }

    fn obs(arn: &str, region: &str, value: &str) -> Observed {
        Observed {
            arn: arn.into(),
            account_id: "111111111111".into(),
            region: region.into(),
            value: value.into(),
            tags: BTreeMap::new(),
        }
    }

    /// One line per change: `kind arn reason first_seen reason_since`.
    fn summary(d: &TagDiff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                let r = c.resource();
                format!(
                    "{} {} {:?} {} {}",
                    c.kind(),
                    r.arn,
                    r.reason,
                    r.first_seen.format("%m-%d"),
                    r.reason_since.format("%m-%d")
                )
            })
            .collect()
    }

    #[test]
    fn diff_table() {
        let unread_eu: BTreeSet<(String, String)> =
            [("111111111111".to_string(), "eu-west-1".to_string())].into();
        let none = BTreeSet::new();
        type Case<'a> = (
            &'a str,
            Vec<IgnoredResource>,
            Vec<Observed>,
            &'a BTreeSet<(String, String)>,
            Vec<&'a str>,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing before, nothing now",
                vec![],
                vec![],
                &none,
                vec![],
                0,
            ),
            (
                "a new tag appears, first seen now",
                vec![],
                vec![obs("arn:a", "eu-west-1", "legacy")],
                &none,
                vec!["appeared arn:a \"legacy\" 11-23 11-23"],
                1,
            ),
            (
                "an unchanged tag is no news and keeps its dates",
                vec![prev("arn:a", "eu-west-1", "legacy")],
                vec![obs("arn:a", "eu-west-1", "legacy")],
                &none,
                vec![],
                1,
            ),
            (
                "a changed reason keeps first_seen, moves reason_since",
                vec![prev("arn:a", "eu-west-1", "legacy")],
                vec![obs("arn:a", "eu-west-1", "decommissioned")],
                &none,
                vec!["changed arn:a \"decommissioned\" 10-01 11-23"],
                1,
            ),
            (
                "a tag removed disappears",
                vec![prev("arn:a", "eu-west-1", "legacy")],
                vec![],
                &none,
                vec!["disappeared arn:a \"legacy\" 10-01 11-01"],
                0,
            ),
            (
                "a scope not read keeps its resources and reports nothing",
                vec![prev("arn:a", "eu-west-1", "legacy")],
                vec![],
                &unread_eu,
                vec![],
                1,
            ),
            (
                "a scope not read does not hide another scope's removal",
                vec![
                    prev("arn:a", "eu-west-1", "legacy"),
                    prev("arn:b", "us-east-1", "x"),
                ],
                vec![],
                &unread_eu,
                vec!["disappeared arn:b \"x\" 10-01 11-01"],
                1,
            ),
            (
                "a blank reason appears like any other (flagged by has_reason)",
                vec![],
                vec![obs("arn:a", "eu-west-1", "  ")],
                &none,
                vec!["appeared arn:a \"  \" 11-23 11-23"],
                1,
            ),
            (
                "a global resource reported by two regions is one resource, first report wins",
                vec![],
                vec![
                    obs("arn:aws:iam::111111111111:role/r", "us-east-1", "why"),
                    obs("arn:aws:iam::111111111111:role/r", "eu-west-1", "why"),
                ],
                &none,
                vec!["appeared arn:aws:iam::111111111111:role/r \"why\" 11-23 11-23"],
                1,
            ),
            (
                "added, changed and removed together, in ARN order",
                vec![
                    prev("arn:b", "eu-west-1", "old"),
                    prev("arn:c", "eu-west-1", "gone"),
                ],
                vec![
                    obs("arn:b", "eu-west-1", "new"),
                    obs("arn:a", "eu-west-1", "fresh"),
                ],
                &none,
                vec![
                    "appeared arn:a \"fresh\" 11-23 11-23",
                    "changed arn:b \"new\" 10-01 11-23",
                    "disappeared arn:c \"gone\" 10-01 11-01",
                ],
                2,
            ),
        ];
        let mut wrong = Vec::new();
        for (name, previous, observed, unread, want, current) in cases {
            let d = diff(&previous, &observed, unread, t(NOW));
            let got = summary(&d);
            if got != want {
                wrong.push(format!("{name}: got {got:#?}, expected {want:#?}"));
            }
            if d.current.len() != current {
                wrong.push(format!(
                    "{name}: {} resource(s) in the snapshot, expected {current}",
                    d.current.len()
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_blank_reason_is_no_reason() {
        let rows = [("legacy", true), ("", false), ("   ", false), (" x ", true)];
        for (reason, want) in rows {
            assert_eq!(
                prev("arn:a", "eu-west-1", reason).has_reason(),
                want,
                "{reason:?}"
            );
        }
    }
}
