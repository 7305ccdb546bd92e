//! Who is on call: computed from a rotation and an instant, never stored. Pure: time is an
//! argument.
//!
//! A rotation is a **base layer** (ordered members taking turns from `start`, each for
//! `handoff`), optional extra **layers** on top of it (a later layer wins wherever it applies; a
//! layer with a calendar applies only inside that calendar's working time) and **overrides**
//! (`user` from `from` until `to`) that win over every layer, the later one where they overlap.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use super::calendar::{Calendar, local_to_utc, serialize_tz};

fn serialize_opt_tz<S: Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
    match tz {
        Some(tz) => serialize_tz(tz, s),
        None => s.serialize_none(),
    }
}

/// Ordered GitHub users taking turns, starting at `start`, each for `handoff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// GitHub logins, without `@`. Never empty (the config loader rejects empty layers).
    pub members: Vec<String>,
    /// When the first member's first turn starts; before it, the first member is on call.
    pub start: DateTime<Utc>,
    /// The length of a turn.
    pub handoff: Duration,
    /// With a time zone, a handoff of whole days (`1d`, `7d`, `2w`) happens at the local
    /// wall-clock time of `start` (09:00 stays 09:00 across daylight-saving changes, so such a
    /// turn lasts 23 or 25 hours). Without one, and for other periods (`8h`, `1d12h`), turns are
    /// exactly `handoff` long.
    #[serde(serialize_with = "serialize_opt_tz")]
    pub time_zone: Option<Tz>,
    /// The layer applies only inside this calendar's working time. Not consulted on the base
    /// layer, which always applies.
    pub calendar: Option<Calendar>,
}

/// Someone on call instead of the layers, from `from` until just before `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub user: String,
    pub from: DateTime<Utc>,
    /// Exclusive: at `to` the layers take over again.
    pub to: DateTime<Utc>,
}

impl Override {
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.to
    }
}

/// A schedule: a base layer, layers on top of it, and overrides on top of everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    pub name: String,
    /// Always applies: who is on call where no layer and no override does.
    pub base: Layer,
    /// In configuration order; a later layer wins where several apply.
    pub layers: Vec<Layer>,
    /// In configuration order; a later override wins where several cover an instant.
    pub overrides: Vec<Override>,
}

/// One upcoming change of the person on call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handoff {
    pub at: DateTime<Utc>,
    pub user: String,
}

/// What decides who is on call at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "index", rename_all = "kebab-case")]
pub enum ShiftSource {
    Base,
    /// `layers[i]`.
    Layer(usize),
    /// `overrides[i]`.
    Override(usize),
}

/// How far `next_handoffs` looks: at most this many candidate instants (turn starts, working
/// hours boundaries, override edges) after `at`.
pub const MAX_CANDIDATES: usize = 10_000;

impl Layer {
    /// A layer of fixed-length turns, without time zone or calendar.
    pub fn new(members: Vec<String>, start: DateTime<Utc>, handoff: Duration) -> Layer {
        Layer {
            members,
            start,
            handoff,
            time_zone: None,
            calendar: None,
        }
    }

    /// With a time zone and a handoff of whole days: the zone, the local start and the days.
    fn local_days(&self) -> Option<(Tz, NaiveDateTime, i64)> {
        let tz = self.time_zone?;
        let days = self.handoff.num_days();
        (days > 0 && Duration::try_days(days) == Some(self.handoff))
            .then(|| (tz, self.start.with_timezone(&tz).naive_local(), days))
    }

    /// When turn `k` starts (turn 0 at `start`); `None` past the end of time.
    fn turn_start(&self, k: i64) -> Option<DateTime<Utc>> {
        if k == 0 {
            return Some(self.start);
        }
        match self.local_days() {
            Some((tz, local, days)) => {
                let local = local.checked_add_signed(Duration::try_days(k.checked_mul(days)?)?)?;
                Some(local_to_utc(tz, local))
            }
            None => {
                let ms = self.handoff.num_milliseconds().checked_mul(k)?;
                self.start
                    .checked_add_signed(Duration::try_milliseconds(ms)?)
            }
        }
    }

    /// The turn that covers `at`; turn 0 also covers everything before `start`.
    fn turn(&self, at: DateTime<Utc>) -> i64 {
        if at < self.start || self.handoff <= Duration::zero() {
            return 0;
        }
        // An estimate from the nominal length, then exact steps: turns of local days differ
        // from it only by the daylight-saving shifts between `start` and `at`.
        let period = self.handoff.num_milliseconds().max(1);
        let mut k = (at - self.start).num_milliseconds() / period;
        while k > 0 && self.turn_start(k).is_none_or(|s| s > at) {
            k -= 1;
        }
        while self.turn_start(k + 1).is_some_and(|s| s <= at) {
            k += 1;
        }
        k
    }

    fn member(&self, turn: i64) -> &str {
        let n = self.members.len() as i64;
        &self.members[turn.rem_euclid(n) as usize]
    }

    /// Who this layer puts on call at `at`, whether or not it applies then.
    pub fn member_at(&self, at: DateTime<Utc>) -> &str {
        self.member(self.turn(at))
    }

    /// Whether the layer applies at `at` (always without a calendar).
    pub fn applies(&self, at: DateTime<Utc>) -> bool {
        self.calendar.as_ref().is_none_or(|c| c.is_working_time(at))
    }

    /// The next turn start strictly after `at`, when turns can change who is on call.
    fn next_turn_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.members.len() < 2 || self.handoff <= Duration::zero() {
            return None;
        }
        self.turn_start(self.turn(at) + 1)
    }
}

impl Rotation {
    /// A rotation of one layer.
    pub fn new(name: impl Into<String>, base: Layer) -> Rotation {
        Rotation {
            name: name.into(),
            base,
            layers: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// The person on call at `at` and what put them there: the last override covering `at`,
    /// else the last layer that applies, else the base layer. Before a layer's start its first
    /// member is on call; at a handoff instant, the incoming person is.
    pub fn on_call_with_source(&self, at: DateTime<Utc>) -> (&str, ShiftSource) {
        if let Some((i, o)) = self
            .overrides
            .iter()
            .enumerate()
            .rev()
            .find(|(_, o)| o.covers(at))
        {
            return (&o.user, ShiftSource::Override(i));
        }
        if let Some((i, l)) = self
            .layers
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| l.applies(at))
        {
            return (l.member_at(at), ShiftSource::Layer(i));
        }
        (self.base.member_at(at), ShiftSource::Base)
    }

    /// The person on call at `at` (see [`Rotation::on_call_with_source`]).
    pub fn on_call(&self, at: DateTime<Utc>) -> &str {
        self.on_call_with_source(at).0
    }

    /// The next instant strictly after `at` where who is on call may change: a turn start of a
    /// layer, the start or end of a restricted layer's working hours, an override's edge.
    fn next_candidate_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let layers = std::iter::once(&self.base).chain(&self.layers);
        let turns = layers.clone().filter_map(|l| l.next_turn_after(at));
        let hours = layers
            .filter_map(|l| l.calendar.as_ref())
            .filter_map(|c| c.next_boundary_after(at));
        let edges = self
            .overrides
            .iter()
            .flat_map(|o| [o.from, o.to])
            .filter(|t| *t > at);
        turns.chain(hours).chain(edges).min()
    }

    /// The next `count` instants strictly after `at` where the person on call changes (layer
    /// turns, layers starting or stopping with working hours, overrides starting or ending),
    /// with the incoming person. Looks at most [`MAX_CANDIDATES`] candidate instants ahead, so
    /// a schedule that never changes hands returns fewer than `count`.
    pub fn next_handoffs(&self, at: DateTime<Utc>, count: usize) -> Vec<Handoff> {
        let mut out = Vec::new();
        let mut current = self.on_call(at);
        let mut t = at;
        for _ in 0..MAX_CANDIDATES {
            if out.len() == count {
                break;
            }
            let Some(next) = self.next_candidate_after(t) else {
                break;
            };
            let who = self.on_call(next);
            if !who.eq_ignore_ascii_case(current) {
                out.push(Handoff {
                    at: next,
                    user: who.to_string(),
                });
                current = who;
            }
            t = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{NaiveDate, Weekday};

    use super::*;
    use crate::domain::calendar::WorkingHours;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn logins(members: &[&str]) -> Vec<String> {
        members.iter().map(|m| m.to_string()).collect()
    }

    fn layer(members: &[&str], start: &str, handoff: Duration, tz: Option<&str>) -> Layer {
        Layer {
            time_zone: tz.map(|z| z.parse().unwrap()),
            ..Layer::new(logins(members), t(start), handoff)
        }
    }

    fn rot(members: &[&str]) -> Rotation {
        Rotation::new(
            "payments",
            layer(members, "2026-11-02T00:00:00Z", Duration::days(7), None),
        )
    }

    fn ov(user: &str, from: &str, to: &str) -> Override {
        Override {
            user: user.into(),
            from: t(from),
            to: t(to),
        }
    }

    fn h(at: &str, user: &str) -> Handoff {
        Handoff {
            at: t(at),
            user: user.into(),
        }
    }

    /// Europe/Berlin, Monday to Friday 09:00-17:00, 24 and 25 December off.
    fn eu_office() -> Calendar {
        Calendar {
            name: "eu-office".into(),
            time_zone: chrono_tz::Europe::Berlin,
            working_days: [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ]
            .into_iter()
            .collect(),
            working_hours: WorkingHours::parse("09:00-17:00").unwrap(),
            holidays: ["2026-12-24", "2026-12-25"]
                .iter()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
                .collect::<BTreeSet<_>>(),
        }
    }

    /// Base: alice/bob weekly at Monday 09:00 Berlin time; on top, carol/dave daily at 09:00,
    /// only during eu-office working hours.
    fn office_rotation() -> Rotation {
        let mut r = Rotation::new(
            "payments",
            layer(
                &["alice", "bob"],
                "2026-11-02T09:00:00+01:00",
                Duration::weeks(1),
                Some("Europe/Berlin"),
            ),
        );
        r.layers.push(Layer {
            calendar: Some(eu_office()),
            ..layer(
                &["carol", "dave"],
                "2026-11-02T09:00:00+01:00",
                Duration::days(1),
                Some("Europe/Berlin"),
            )
        });
        r
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
            h("2026-11-30T00:00:00Z", "alice"),
            h("2026-12-07T00:00:00Z", "bob"),
            h("2026-12-14T00:00:00Z", "alice"),
        ];
        assert_eq!(got, want);
        // Before the start, the first handoff is the second member's first turn.
        let early = r.next_handoffs(t("2026-10-01T00:00:00Z"), 1);
        assert_eq!(early, vec![h("2026-11-09T00:00:00Z", "bob")]);
        // Exactly at a handoff, the next one is a full period later.
        let at = r.next_handoffs(t("2026-11-09T00:00:00Z"), 1);
        assert_eq!(at[0].at, t("2026-11-16T00:00:00Z"));
        assert!(r.next_handoffs(t("2026-11-09T00:00:00Z"), 0).is_empty());
    }

    #[test]
    fn repeated_member_is_one_continuous_turn() {
        let r = rot(&["alice", "alice", "bob"]);
        let got = r.next_handoffs(t("2026-11-02T00:00:00Z"), 2);
        assert_eq!(
            got,
            vec![
                h("2026-11-16T00:00:00Z", "bob"),
                h("2026-11-23T00:00:00Z", "alice")
            ]
        );
    }

    /// (case, layer, instants with who is on call, handoffs listed from the first instant)
    type ScheduleCase<'a> = (
        &'a str,
        Layer,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );

    #[test]
    #[rustfmt::skip]
    fn handoffs_across_daylight_saving_changes() {
        let week = Duration::weeks(1);
        let day = Duration::days(1);
        let cases: Vec<ScheduleCase> = vec![
            (
                "weekly at 09:00 Berlin across the spring change: 09:00 stays 09:00",
                layer(&["alice", "bob"], "2026-03-16T09:00:00+01:00", week, Some("Europe/Berlin")),
                &[
                    ("2026-03-23T07:59:59Z", "alice"),
                    ("2026-03-23T08:00:00Z", "bob"),   // 09:00 CET
                    ("2026-03-30T06:59:59Z", "bob"),   // 08:59:59 CEST
                    ("2026-03-30T07:00:00Z", "alice"), // 09:00 CEST: a week of 167 h
                ],
                &[("2026-03-23T08:00:00Z", "bob"), ("2026-03-30T07:00:00Z", "alice"), ("2026-04-06T07:00:00Z", "bob")],
            ),
            (
                "weekly at 09:00 Berlin across the autumn change",
                layer(&["alice", "bob"], "2026-10-12T09:00:00+02:00", week, Some("Europe/Berlin")),
                &[
                    ("2026-10-19T07:00:00Z", "bob"),   // 09:00 CEST
                    ("2026-10-26T07:00:00Z", "bob"),   // 08:00 CET: not yet
                    ("2026-10-26T07:59:59Z", "bob"),
                    ("2026-10-26T08:00:00Z", "alice"), // 09:00 CET: a week of 169 h
                ],
                &[("2026-10-19T07:00:00Z", "bob"), ("2026-10-26T08:00:00Z", "alice"), ("2026-11-02T08:00:00Z", "bob")],
            ),
            (
                "weekly without a time zone: exactly 168 h, 10:00 local after the change",
                layer(&["alice", "bob"], "2026-03-16T09:00:00+01:00", week, None),
                &[("2026-03-30T07:00:00Z", "bob"), ("2026-03-30T08:00:00Z", "alice")],
                &[("2026-03-23T08:00:00Z", "bob"), ("2026-03-30T08:00:00Z", "alice"), ("2026-04-06T08:00:00Z", "bob")],
            ),
            (
                "daily at 09:00 Berlin: the turn over the spring night lasts 23 h",
                layer(&["ann", "ben", "cat"], "2026-03-27T09:00:00+01:00", day, Some("Europe/Berlin")),
                &[
                    ("2026-03-28T08:00:00Z", "ben"),
                    ("2026-03-29T06:59:59Z", "ben"),
                    ("2026-03-29T07:00:00Z", "cat"),
                    ("2026-03-30T07:00:00Z", "ann"),
                ],
                &[("2026-03-28T08:00:00Z", "ben"), ("2026-03-29T07:00:00Z", "cat"), ("2026-03-30T07:00:00Z", "ann")],
            ),
            (
                "daily at 09:00 Berlin: the turn over the autumn night lasts 25 h",
                layer(&["ann", "ben"], "2026-10-24T09:00:00+02:00", day, Some("Europe/Berlin")),
                &[("2026-10-25T07:59:59Z", "ann"), ("2026-10-25T08:00:00Z", "ben"), ("2026-10-26T08:00:00Z", "ann")],
                &[("2026-10-25T08:00:00Z", "ben"), ("2026-10-26T08:00:00Z", "ann"), ("2026-10-27T08:00:00Z", "ben")],
            ),
            (
                "daily at 09:00 New York across the autumn change (first Sunday of November)",
                layer(&["ann", "ben"], "2026-10-30T09:00:00-04:00", day, Some("America/New_York")),
                &[("2026-11-01T13:00:00Z", "ben"), ("2026-11-01T13:59:59Z", "ben"), ("2026-11-01T14:00:00Z", "ann")],
                &[("2026-10-31T13:00:00Z", "ben"), ("2026-11-01T14:00:00Z", "ann"), ("2026-11-02T14:00:00Z", "ben")],
            ),
            (
                "weekly at 09:00 New York across the spring change (Sunday 03-08): 14:00Z then 13:00Z",
                layer(&["ann", "ben"], "2026-03-02T09:00:00-05:00", week, Some("America/New_York")),
                &[("2026-03-09T12:59:59Z", "ann"), ("2026-03-09T13:00:00Z", "ben"), ("2026-03-16T13:00:00Z", "ann")],
                &[("2026-03-09T13:00:00Z", "ben"), ("2026-03-16T13:00:00Z", "ann"), ("2026-03-23T13:00:00Z", "ben")],
            ),
            (
                "8 h turns are absolute even with a time zone (07:00 CET, 16:00 CEST, ...)",
                layer(&["ann", "ben", "cat"], "2026-03-28T22:00:00Z", Duration::hours(8), Some("Europe/Berlin")),
                &[("2026-03-29T05:59:59Z", "ann"), ("2026-03-29T06:00:00Z", "ben"), ("2026-03-29T14:00:00Z", "cat")],
                &[("2026-03-29T06:00:00Z", "ben"), ("2026-03-29T14:00:00Z", "cat"), ("2026-03-29T22:00:00Z", "ann")],
            ),
            (
                "1d12h is not whole days: absolute 36 h even with a time zone",
                layer(&["ann", "ben"], "2026-03-28T09:00:00+01:00", Duration::hours(36), Some("Europe/Berlin")),
                &[("2026-03-29T20:00:00Z", "ben")],
                &[("2026-03-29T20:00:00Z", "ben"), ("2026-03-31T08:00:00Z", "ann")],
            ),
            (
                "daily at 02:30 Berlin: the skipped 02:30 becomes 03:30 CEST",
                layer(&["ann", "ben"], "2026-03-28T02:30:00+01:00", day, Some("Europe/Berlin")),
                &[("2026-03-29T01:29:59Z", "ann"), ("2026-03-29T01:30:00Z", "ben"), ("2026-03-30T00:30:00Z", "ann")],
                &[("2026-03-29T01:30:00Z", "ben"), ("2026-03-30T00:30:00Z", "ann")],
            ),
            (
                "daily at 02:30 Berlin: the repeated 02:30 means the first one (CEST)",
                layer(&["ann", "ben"], "2026-10-24T02:30:00+02:00", day, Some("Europe/Berlin")),
                &[("2026-10-25T00:29:59Z", "ann"), ("2026-10-25T00:30:00Z", "ben"), ("2026-10-26T01:30:00Z", "ann")],
                &[("2026-10-25T00:30:00Z", "ben"), ("2026-10-26T01:30:00Z", "ann")],
            ),
        ];
        for (name, l, at, handoffs) in cases {
            let r = Rotation::new("r", l);
            for (i, (instant, who)) in at.iter().enumerate() {
                assert_eq!(r.on_call(t(instant)), *who, "{name}: on call at {instant} (#{i})");
            }
            let from = r.base.start;
            let want: Vec<Handoff> = handoffs.iter().map(|(a, u)| h(a, u)).collect();
            assert_eq!(r.next_handoffs(from, want.len()), want, "{name}: handoffs");
        }
    }

    #[test]
    fn long_local_rotations_stay_on_the_wall_clock() {
        // Ten years of weekly 09:00 handoffs in Berlin: every one at 09:00 local, every turn
        // 167, 168 or 169 hours.
        let r = Rotation::new(
            "r",
            layer(
                &["a", "b", "c"],
                "2026-01-05T09:00:00+01:00",
                Duration::weeks(1),
                Some("Europe/Berlin"),
            ),
        );
        let handoffs = r.next_handoffs(r.base.start, 520);
        assert_eq!(handoffs.len(), 520);
        let mut prev = r.base.start;
        for (i, x) in handoffs.iter().enumerate() {
            let local = x.at.with_timezone(&chrono_tz::Europe::Berlin);
            assert_eq!(local.format("%a %H:%M").to_string(), "Mon 09:00", "#{i}");
            assert!(
                [167, 168, 169].contains(&(x.at - prev).num_hours()),
                "#{i}: {}",
                x.at
            );
            assert_eq!(r.on_call(x.at), x.user, "#{i}");
            assert_eq!(
                r.on_call(x.at - Duration::seconds(1)),
                r.on_call(prev),
                "#{i}"
            );
            prev = x.at;
        }
        assert_eq!(handoffs[519].user, ["a", "b", "c"][520 % 3]);
    }

    /// (case, overrides, instants with who is on call, handoffs from, handoffs)
    type OverrideCase<'a> = (
        &'a str,
        Vec<Override>,
        &'a [(&'a str, &'a str)],
        &'a str,
        &'a [(&'a str, &'a str)],
    );

    #[test]
    #[rustfmt::skip]
    fn overrides_table() {
        // Base: alice/bob weekly from Monday 2026-11-02 00:00Z (handoffs 11-09, 11-16, ...).
        let cases: &[OverrideCase] = &[
            (
                "an override spanning a handoff",
                vec![ov("erin", "2026-11-08T12:00:00Z", "2026-11-10T12:00:00Z")],
                &[
                    ("2026-11-08T11:59:59Z", "alice"),
                    ("2026-11-08T12:00:00Z", "erin"), // from is inclusive
                    ("2026-11-09T00:00:00Z", "erin"), // the handoff under the override
                    ("2026-11-10T11:59:59Z", "erin"),
                    ("2026-11-10T12:00:00Z", "bob"),  // to is exclusive; the layer's person now
                ],
                "2026-11-03T00:00:00Z",
                &[("2026-11-08T12:00:00Z", "erin"), ("2026-11-10T12:00:00Z", "bob"), ("2026-11-16T00:00:00Z", "alice")],
            ),
            (
                "an override spanning several handoffs",
                vec![ov("erin", "2026-11-05T00:00:00Z", "2026-11-25T00:00:00Z")],
                &[("2026-11-09T00:00:00Z", "erin"), ("2026-11-16T00:00:00Z", "erin"), ("2026-11-25T00:00:00Z", "bob")],
                "2026-11-03T00:00:00Z",
                &[("2026-11-05T00:00:00Z", "erin"), ("2026-11-25T00:00:00Z", "bob"), ("2026-11-30T00:00:00Z", "alice")],
            ),
            (
                "overlapping overrides: the later in the file wins",
                vec![
                    ov("erin", "2026-11-03T00:00:00Z", "2026-11-06T00:00:00Z"),
                    ov("frank", "2026-11-05T00:00:00Z", "2026-11-07T00:00:00Z"),
                ],
                &[
                    ("2026-11-04T00:00:00Z", "erin"),
                    ("2026-11-05T00:00:00Z", "frank"),
                    ("2026-11-06T00:00:00Z", "frank"),
                    ("2026-11-07T00:00:00Z", "alice"),
                ],
                "2026-11-02T00:00:00Z",
                &[("2026-11-03T00:00:00Z", "erin"), ("2026-11-05T00:00:00Z", "frank"), ("2026-11-07T00:00:00Z", "alice"), ("2026-11-09T00:00:00Z", "bob")],
            ),
            (
                "a later override inside an earlier one: the earlier resumes after it",
                vec![
                    ov("erin", "2026-11-03T00:00:00Z", "2026-11-12T00:00:00Z"),
                    ov("frank", "2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
                ],
                &[("2026-11-05T12:00:00Z", "frank"), ("2026-11-06T00:00:00Z", "erin"), ("2026-11-09T00:00:00Z", "erin"), ("2026-11-12T00:00:00Z", "bob")],
                "2026-11-02T00:00:00Z",
                &[("2026-11-03T00:00:00Z", "erin"), ("2026-11-05T00:00:00Z", "frank"), ("2026-11-06T00:00:00Z", "erin"), ("2026-11-12T00:00:00Z", "bob")],
            ),
            (
                "an earlier override inside a later one is hidden",
                vec![
                    ov("frank", "2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
                    ov("erin", "2026-11-03T00:00:00Z", "2026-11-12T00:00:00Z"),
                ],
                &[("2026-11-05T12:00:00Z", "erin")],
                "2026-11-02T00:00:00Z",
                &[("2026-11-03T00:00:00Z", "erin"), ("2026-11-12T00:00:00Z", "bob")],
            ),
            (
                "an override ending exactly at a handoff: one change, to the incoming person",
                vec![ov("erin", "2026-11-08T00:00:00Z", "2026-11-09T00:00:00Z")],
                &[("2026-11-08T23:59:59Z", "erin"), ("2026-11-09T00:00:00Z", "bob")],
                "2026-11-08T12:00:00Z",
                &[("2026-11-09T00:00:00Z", "bob"), ("2026-11-16T00:00:00Z", "alice")],
            ),
            (
                "an override for the person already on call changes nothing (logins ignore case)",
                vec![ov("Alice", "2026-11-03T00:00:00Z", "2026-11-10T00:00:00Z")],
                &[("2026-11-09T00:00:00Z", "Alice"), ("2026-11-10T00:00:00Z", "bob")],
                "2026-11-02T00:00:00Z",
                &[("2026-11-10T00:00:00Z", "bob"), ("2026-11-16T00:00:00Z", "alice")],
            ),
            (
                "an override before the rotation starts",
                vec![ov("erin", "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z")],
                &[("2026-09-30T00:00:00Z", "alice"), ("2026-10-01T00:00:00Z", "erin"), ("2026-10-02T00:00:00Z", "alice")],
                "2026-09-01T00:00:00Z",
                &[("2026-10-01T00:00:00Z", "erin"), ("2026-10-02T00:00:00Z", "alice"), ("2026-11-09T00:00:00Z", "bob")],
            ),
            (
                "overrides in the past do not matter",
                vec![ov("erin", "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")],
                &[("2026-11-04T00:00:00Z", "alice")],
                "2026-11-05T00:00:00Z",
                &[("2026-11-09T00:00:00Z", "bob")],
            ),
        ];
        for (name, overrides, at, from, handoffs) in cases {
            let mut r = rot(&["alice", "bob"]);
            r.overrides = overrides.clone();
            for (instant, who) in *at {
                assert_eq!(r.on_call(t(instant)), *who, "{name}: on call at {instant}");
            }
            let want: Vec<Handoff> = handoffs.iter().map(|(a, u)| h(a, u)).collect();
            assert_eq!(r.next_handoffs(t(from), want.len()), want, "{name}: handoffs");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn a_layer_restricted_to_working_hours() {
        let r = office_rotation();
        // November: CET (UTC+1). Base alice until Mon 11-09 09:00 local, then bob. The layer's
        // daily turns count every calendar day: 11-02 carol, 11-03 dave, ..., 11-09 dave.
        let cases = [
            ("Mon 08:59 local: before hours, base (before its start: first member)", "2026-11-02T07:59:00Z", "alice", ShiftSource::Base),
            ("Mon 09:00: hours start, layer", "2026-11-02T08:00:00Z", "carol", ShiftSource::Layer(0)),
            ("Mon 16:59", "2026-11-02T15:59:00Z", "carol", ShiftSource::Layer(0)),
            ("Mon 17:00: hours end, base", "2026-11-02T16:00:00Z", "alice", ShiftSource::Base),
            ("Tue 09:00: next daily turn", "2026-11-03T08:00:00Z", "dave", ShiftSource::Layer(0)),
            ("Tue 03:00: night, base", "2026-11-03T02:00:00Z", "alice", ShiftSource::Base),
            ("Sat noon: weekend, base", "2026-11-07T11:00:00Z", "alice", ShiftSource::Base),
            ("Sun noon", "2026-11-08T11:00:00Z", "alice", ShiftSource::Base),
            ("Mon 11-09 08:59: base handoff not yet", "2026-11-09T07:59:59Z", "alice", ShiftSource::Base),
            ("Mon 11-09 09:00: both change; the layer wins", "2026-11-09T08:00:00Z", "dave", ShiftSource::Layer(0)),
            ("Mon 11-09 17:00: the new base person", "2026-11-09T16:00:00Z", "bob", ShiftSource::Base),
            ("Wed 12-23 noon: working day", "2026-12-23T11:00:00Z", "dave", ShiftSource::Layer(0)),
            ("Thu 12-24 noon: holiday, base", "2026-12-24T11:00:00Z", "bob", ShiftSource::Base),
            ("Fri 12-25 noon: holiday, base", "2026-12-25T11:00:00Z", "bob", ShiftSource::Base),
            ("Mon 12-28 noon", "2026-12-28T11:00:00Z", "carol", ShiftSource::Layer(0)),
            // Summer time (CEST, UTC+2), before both layers start: their first members.
            ("Mon 2026-03-30 08:59 CEST", "2026-03-30T06:59:59Z", "alice", ShiftSource::Base),
            ("Mon 2026-03-30 09:00 CEST", "2026-03-30T07:00:00Z", "carol", ShiftSource::Layer(0)),
            ("Mon 2026-03-30 16:59 CEST", "2026-03-30T14:59:59Z", "carol", ShiftSource::Layer(0)),
            ("Mon 2026-03-30 17:00 CEST", "2026-03-30T15:00:00Z", "alice", ShiftSource::Base),
        ];
        for (name, at, who, source) in cases {
            assert_eq!(r.on_call_with_source(t(at)), (who, source), "{name}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn next_handoffs_follow_layers_and_overrides() {
        let mut r = office_rotation();
        let cases: &[(&str, &str, Vec<Handoff>)] = &[
            (
                "a working day starts and ends",
                "2026-11-02T00:00:00Z",
                vec![
                    h("2026-11-02T08:00:00Z", "carol"),
                    h("2026-11-02T16:00:00Z", "alice"),
                    h("2026-11-03T08:00:00Z", "dave"),
                    h("2026-11-03T16:00:00Z", "alice"),
                ],
            ),
            (
                "over a weekend into a base handoff",
                "2026-11-06T12:00:00Z",
                vec![
                    h("2026-11-06T16:00:00Z", "alice"),
                    h("2026-11-09T08:00:00Z", "dave"),
                    h("2026-11-09T16:00:00Z", "bob"),
                    h("2026-11-10T08:00:00Z", "carol"),
                ],
            ),
            (
                // Base turn 7 (bob) since 12-21; 24 and 25 are holidays; on 12-28 09:00 local
                // the base hands off to alice and the layer (daily turn 56: carol) applies.
                "over the Christmas holidays",
                "2026-12-23T12:00:00Z",
                vec![
                    h("2026-12-23T16:00:00Z", "bob"),
                    h("2026-12-28T08:00:00Z", "carol"),
                    h("2026-12-28T16:00:00Z", "alice"),
                ],
            ),
        ];
        for (name, from, want) in cases {
            assert_eq!(&r.next_handoffs(t(from), want.len()), want, "{name}");
        }

        // An override wins over the layer during working hours, and the layer comes back.
        r.overrides.push(ov("erin", "2026-11-03T12:00:00Z", "2026-11-04T12:00:00Z"));
        let want = vec![
            h("2026-11-03T08:00:00Z", "dave"),
            h("2026-11-03T12:00:00Z", "erin"),
            h("2026-11-04T12:00:00Z", "carol"), // Wed 13:00 local: the layer's turn
            h("2026-11-04T16:00:00Z", "alice"),
        ];
        assert_eq!(r.next_handoffs(t("2026-11-03T00:00:00Z"), 4), want);
    }

    #[test]
    fn a_schedule_that_never_changes_hands_lists_nothing() {
        let mut r = rot(&["sam"]);
        r.layers.push(Layer {
            calendar: Some(eu_office()),
            ..layer(
                &["sam", "SAM"],
                "2026-11-02T00:00:00Z",
                Duration::hours(1),
                None,
            )
        });
        assert!(r.next_handoffs(t("2026-11-02T00:00:00Z"), 5).is_empty());
    }

    #[test]
    fn later_layers_win_over_earlier_ones() {
        let mut r = rot(&["alice", "bob"]);
        r.layers.push(layer(
            &["carol"],
            "2026-11-02T00:00:00Z",
            Duration::days(1),
            None,
        ));
        r.layers.push(Layer {
            calendar: Some(eu_office()),
            ..layer(&["dave"], "2026-11-02T00:00:00Z", Duration::days(1), None)
        });
        let cases = [
            ("2026-11-02T12:00:00Z", "dave", ShiftSource::Layer(1)),
            ("2026-11-02T20:00:00Z", "carol", ShiftSource::Layer(0)),
            ("2026-11-07T12:00:00Z", "carol", ShiftSource::Layer(0)),
        ];
        for (at, who, source) in cases {
            assert_eq!(r.on_call_with_source(t(at)), (who, source), "{at}");
        }
        assert_eq!(
            r.next_handoffs(t("2026-11-02T12:00:00Z"), 2),
            vec![
                h("2026-11-02T16:00:00Z", "carol"),
                h("2026-11-03T08:00:00Z", "dave")
            ]
        );
    }
}
