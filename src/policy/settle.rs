//! Settle delays: a finding for a short-lived resource waits before its issue opens. Pure.

use chrono::{DateTime, Duration, Utc};

use super::{Decision, Reason, Verdict};
use crate::config::settle::{SettleSettings, normalise};
use crate::domain::Finding;

/// The settle delay of `f`: its control id's, else its primary resource type's.
pub fn delay(f: &Finding, settle: &SettleSettings) -> Option<Duration> {
    if settle.delays.is_empty() {
        return None;
    }
    f.control_id()
        .and_then(|c| settle.delays.get(&normalise(c)))
        .or_else(|| {
            f.primary_resource()
                .kind
                .as_deref()
                .and_then(|k| settle.delays.get(&normalise(k)))
        })
        .copied()
}

/// Until when `f`, first stored at `first_seen`, is still settling at `now`; `None` when it
/// is not (no delay, or the delay is over).
pub fn settling_until(
    f: &Finding,
    settle: &SettleSettings,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    delay(f, settle)
        .map(|d| first_seen + d)
        .filter(|until| *until > now)
}

/// `verdict` with the settle delay applied: a ticket for a finding still settling becomes a
/// skip with reason `settling`, and the instant its delay ends.
pub fn apply(
    verdict: Verdict,
    f: &Finding,
    settle: &SettleSettings,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Verdict, Option<DateTime<Utc>>) {
    if verdict.decision != Decision::Ticket {
        return (verdict, None);
    }
    match settling_until(f, settle, first_seen, now) {
        Some(until) => (
            Verdict {
                decision: Decision::Skip,
                reason: Reason::Settling,
                detail: format!(
                    "settling until {}: the issue opens then if the finding still counts ({})",
                    until.format("%Y-%m-%d %H:%M UTC"),
                    verdict.detail
                ),
            },
            Some(until),
        ),
        None => (verdict, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use crate::domain::sample::control_finding;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// (control, resource type, first seen, now) → settling until.
    #[test]
    #[rustfmt::skip]
    fn settling_table() {
        let settle = SettleSettings {
            delays: [
                (normalise("AWS::AutoScaling::AutoScalingGroup"), Duration::minutes(15)),
                (normalise("AwsEc2Instance"), Duration::minutes(30)),
                (normalise("EC2.8"), Duration::hours(1)),
            ]
            .into_iter()
            .collect(),
        };
        let t0 = "2026-11-23T12:00:00Z";
        let cases = [
            ("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", t0, "2026-11-23T12:00:00Z", Some("2026-11-23T12:15:00Z")),
            ("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", t0, "2026-11-23T12:14:59Z", Some("2026-11-23T12:15:00Z")),
            ("AutoScaling.1", "AwsAutoScalingAutoScalingGroup", t0, "2026-11-23T12:15:00Z", None),
            ("EC2.19", "AWS::EC2::Instance", t0, "2026-11-23T12:10:00Z", Some("2026-11-23T12:30:00Z")),
            // The control id wins over the resource type.
            ("EC2.8", "AwsEc2Instance", t0, "2026-11-23T12:40:00Z", Some("2026-11-23T13:00:00Z")),
            ("S3.1", "AwsS3Bucket", t0, "2026-11-23T12:00:00Z", None),
        ];
        for (control, kind, first, now, want) in cases {
            let mut f = control_finding(control, "t", Severity::High);
            f.resources[0].kind = Some(kind.into());
            assert_eq!(settling_until(&f, &settle, at(first), at(now)), want.map(at), "{control} {kind} at {now}");
        }
        assert_eq!(delay(&control_finding("EC2.8", "t", Severity::High), &SettleSettings::default()), None);
    }
}
