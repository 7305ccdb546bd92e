//! Enums that are stored and printed as fixed strings: database columns, JSON output,
//! `lever plan`, configuration values.
//!
//! Each spelling is written once, as `strum` attributes on the enum (`IntoStaticStr`,
//! `EnumString`, `Display`, with the same `serialize_all` as its serde spelling);
//! [`string_codes!`] adds the two thin methods callers use, `as_str()` and `parse()`. The
//! spellings are contracts (rows already stored, scripts reading the output): the table test
//! below pins every one of them.

/// Adds `as_str()` (from strum's `IntoStaticStr`) and `parse()` (from `FromStr`) to each enum.
macro_rules! string_codes {
    ($($t:ty),+ $(,)?) => {$(
        impl $t {
            /// The fixed spelling (stored, printed, accepted by [`parse`](Self::parse)).
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The value `s` spells (see the type's `FromStr`); `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                s.parse().ok()
            }
        }
    )+};
}
pub(crate) use string_codes;

#[cfg(test)]
mod tests {
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    use serde::Serialize;

    use crate::config::{IgnoreTags, Mode};
    use crate::domain::{ComplianceStatus, RecordState, Severity, WorkflowStatus};
    use crate::policy::{Decision, Reason};
    use crate::store::{GroupStatus, JobState};

    /// Every way a value is spelled agrees with `expected`: `as_str` (via `Into`), `Display`,
    /// serde, and `FromStr` back; and the spellings of a type are distinct.
    fn check<T>(cases: &[(T, &str)])
    where
        T: Copy + PartialEq + Debug + Display + Serialize + FromStr + Into<&'static str>,
    {
        for &(value, expected) in cases {
            let s: &'static str = value.into();
            assert_eq!(s, expected, "{value:?}");
            assert_eq!(value.to_string(), expected, "{value:?} Display");
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::Value::String(expected.into()),
                "{value:?} serde"
            );
            assert!(
                T::from_str(expected).is_ok_and(|v| v == value),
                "{expected:?} parses"
            );
        }
        let mut all: Vec<&str> = cases.iter().map(|c| c.1).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), cases.len(), "distinct spellings");
    }

    #[test]
    fn every_spelling_is_pinned() {
        use ComplianceStatus as C;
        use WorkflowStatus as W;
        check(&[
            (Severity::Informational, "INFORMATIONAL"),
            (Severity::Low, "LOW"),
            (Severity::Medium, "MEDIUM"),
            (Severity::High, "HIGH"),
            (Severity::Critical, "CRITICAL"),
        ]);
        check(&[
            (C::Passed, "PASSED"),
            (C::Warning, "WARNING"),
            (C::Failed, "FAILED"),
            (C::NotAvailable, "NOT_AVAILABLE"),
        ]);
        check(&[
            (RecordState::Active, "ACTIVE"),
            (RecordState::Archived, "ARCHIVED"),
        ]);
        check(&[
            (W::New, "NEW"),
            (W::Notified, "NOTIFIED"),
            (W::Resolved, "RESOLVED"),
            (W::Suppressed, "SUPPRESSED"),
        ]);
        check(&[
            (GroupStatus::Pending, "pending"),
            (GroupStatus::Open, "open"),
            (GroupStatus::Closed, "closed"),
        ]);
        check(&[
            (JobState::Pending, "pending"),
            (JobState::Done, "done"),
            (JobState::Dead, "dead"),
        ]);
        check(&[
            (Mode::Off, "off"),
            (Mode::RampUp, "ramp-up"),
            (Mode::Enforce, "enforce"),
        ]);
        check(&[
            (IgnoreTags::RampUp, "ramp-up"),
            (IgnoreTags::Always, "always"),
            (IgnoreTags::Never, "never"),
        ]);
        check(&[(Decision::Ticket, "ticket"), (Decision::Skip, "skip")]);
        check(&[
            (Reason::Ticket, "ticket"),
            (Reason::AccountOff, "account-off"),
            (Reason::Archived, "archived"),
            (Reason::Passed, "passed"),
            (Reason::NotAvailable, "not-available"),
            (Reason::Suppressed, "suppressed"),
            (Reason::BelowThreshold, "below-threshold"),
            (Reason::Ignored, "ignored"),
            (Reason::Excluded, "excluded"),
            (Reason::ControlTower, "control-tower"),
            (Reason::Settling, "settling"),
        ]);
    }

    #[test]
    fn parse_is_exact_except_for_severity() {
        assert_eq!(ComplianceStatus::parse("passed"), None);
        assert_eq!(Mode::parse("Ramp-Up"), None);
        assert_eq!(GroupStatus::parse(" open"), None);
        assert_eq!(JobState::parse("DONE"), None);
        // Severity accepts any case and surrounding whitespace, and names what it expects.
        assert_eq!(" high ".parse::<Severity>(), Ok(Severity::High));
        assert_eq!(Severity::parse("Critical"), Some(Severity::Critical));
        assert_eq!(
            "severe".parse::<Severity>(),
            Err(
                "unknown severity \"severe\" (expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)"
                    .to_string()
            )
        );
    }
}
