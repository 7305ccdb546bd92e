//! Who is on call: computed from a rotation and an instant, never stored.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// An ordered list of GitHub users taking turns, starting at `start`, each for `handoff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    pub name: String,
    /// GitHub logins, without `@`. Never empty (the config loader rejects empty rotations).
    pub members: Vec<String>,
    pub start: DateTime<Utc>,
    pub handoff: Duration,
}

/// One upcoming change of the person on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handoff {
    pub at: DateTime<Utc>,
    pub user: String,
}

impl Rotation {
    /// Index of the turn that covers `at`; turn 0 also covers everything before `start`.
    fn turn(&self, at: DateTime<Utc>) -> i64 {
        if at < self.start || self.handoff <= Duration::zero() {
            return 0;
        }
        let elapsed = (at - self.start).num_milliseconds();
        elapsed / self.handoff.num_milliseconds().max(1)
    }

    fn member(&self, turn: i64) -> &str {
        let n = self.members.len() as i64;
        &self.members[turn.rem_euclid(n) as usize]
    }

    /// The person on call at `at` (the first member before the rotation starts). The handoff
    /// instant itself belongs to the incoming person.
    pub fn on_call(&self, at: DateTime<Utc>) -> &str {
        self.member(self.turn(at))
    }

    /// The next `count` handoffs strictly after `at` where the person on call changes.
    pub fn next_handoffs(&self, at: DateTime<Utc>, count: usize) -> Vec<Handoff> {
        let mut out = Vec::new();
        if self.handoff <= Duration::zero() || self.members.len() < 2 {
            return out;
        }
        let mut turn = self.turn(at);
        let mut current = self.on_call(at).to_string();
        // Bounded: each iteration advances one turn; a change happens at least every n turns
        // unless every member is the same login, which the loop bound also covers.
        for _ in 0..(count * self.members.len() + self.members.len()) {
            if out.len() == count {
                break;
            }
            turn += 1;
            let when = self.start
                + Duration::milliseconds(self.handoff.num_milliseconds().saturating_mul(turn));
            let who = self.member(turn).to_string();
            if who != current {
                out.push(Handoff {
                    at: when,
                    user: who.clone(),
                });
                current = who;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rot(members: &[&str]) -> Rotation {
        Rotation {
            name: "payments".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            start: t("2026-11-02T00:00:00Z"),
            handoff: Duration::days(7),
        }
    }

    #[test]
    fn on_call_table() {
        let r = rot(&["alice", "bob"]);
        let cases = [
            ("2020-01-01T00:00:00Z", "alice"), // before the start: first member
            ("2026-11-01T23:59:59Z", "alice"),
            ("2026-11-02T00:00:00Z", "alice"), // the start instant
            ("2026-11-08T23:59:59Z", "alice"),
            ("2026-11-09T00:00:00Z", "bob"), // exact handoff instant: incoming person
            ("2026-11-15T23:59:59Z", "bob"),
            ("2026-11-16T00:00:00Z", "alice"),
            ("2026-11-23T12:00:00Z", "bob"),
            ("2027-11-02T00:00:00Z", "alice"), // 52 weeks later: even turn
        ];
        for (at, want) in cases {
            assert_eq!(r.on_call(t(at)), want, "on call at {at}");
        }
    }

    #[test]
    fn single_member_is_always_on_call_and_never_hands_off() {
        let r = rot(&["sam"]);
        assert_eq!(r.on_call(t("2030-01-01T00:00:00Z")), "sam");
        assert!(r.next_handoffs(t("2026-11-23T00:00:00Z"), 3).is_empty());
    }

    #[test]
    fn next_handoffs_lists_changes_after_now() {
        let r = rot(&["alice", "bob"]);
        let got = r.next_handoffs(t("2026-11-23T12:00:00Z"), 3);
        let want = vec![
            Handoff {
                at: t("2026-11-30T00:00:00Z"),
                user: "alice".into(),
            },
            Handoff {
                at: t("2026-12-07T00:00:00Z"),
                user: "bob".into(),
            },
            Handoff {
                at: t("2026-12-14T00:00:00Z"),
                user: "alice".into(),
            },
        ];
        assert_eq!(got, want);
        // Before the start, the first handoff is the second member's first turn.
        let early = r.next_handoffs(t("2026-10-01T00:00:00Z"), 1);
        assert_eq!(
            early,
            vec![Handoff {
                at: t("2026-11-09T00:00:00Z"),
                user: "bob".into()
            }]
        );
        // Exactly at a handoff, the next one is a full period later.
        let at = r.next_handoffs(t("2026-11-09T00:00:00Z"), 1);
        assert_eq!(at[0].at, t("2026-11-16T00:00:00Z"));
    }

    #[test]
    fn repeated_member_is_one_continuous_turn() {
        let r = rot(&["alice", "alice", "bob"]);
        let got = r.next_handoffs(t("2026-11-02T00:00:00Z"), 2);
        assert_eq!(
            got[0],
            Handoff {
                at: t("2026-11-16T00:00:00Z"),
                user: "bob".into()
            }
        );
        assert_eq!(
            got[1],
            Handoff {
                at: t("2026-11-23T00:00:00Z"),
                user: "alice".into()
            }
        );
    }
}
