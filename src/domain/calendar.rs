//! Working time: a time zone, working days, daily working hours and holidays. Pure: every
//! instant is an argument, nothing reads a clock.
//!
//! A calendar turns each local date into at most one **working interval** `[start, end)` of
//! UTC instants: the date's working hours read on the local wall clock, or nothing on days that
//! are not working days and on holidays. Working time is the real time elapsed inside those
//! intervals, so a day on which the clocks change counts what the wall clock really covered.
//!
//! Local times that do not exist (the hour skipped when clocks go forward) are shifted forward
//! by the length of the gap (02:30 on a spring-forward night is read as 03:30 summer time), and
//! local times that exist twice (the hour repeated when clocks go back) mean the first of the two
//! instants, as in RFC 5545 and `java.time`. See [`local_to_utc`].

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc, Weekday, WeekdaySet,
};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// The instant a local wall-clock time means in `tz`. A time skipped by a daylight-saving gap is
/// shifted forward by the gap's length (read with the offset in force before the gap); a time
/// that occurs twice means its first occurrence.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // The transition lies within 14 h of `local` read as UTC (offsets span -12..+14 h),
            // so a day earlier the offset in force is the one before the gap.
            let day_before = local.and_utc() - Duration::days(1);
            let before = tz.offset_from_utc_datetime(&day_before.naive_utc()).fix();
            (local - Duration::seconds(i64::from(before.local_minus_utc()))).and_utc()
        }
    }
}

/// Daily working hours in local time: from `start` to `end` minutes after local midnight,
/// `0 <= start < end <= 24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkingHours {
    start: u32,
    end: u32,
}

const MINUTES_PER_DAY: u32 = 24 * 60;

impl WorkingHours {
    /// Working hours from `start` to `end` minutes after midnight; `None` unless
    /// `start < end <= 1440`.
    pub fn from_minutes(start: u32, end: u32) -> Option<WorkingHours> {
        (start < end && end <= MINUTES_PER_DAY).then_some(WorkingHours { start, end })
    }

    /// Parses `"09:00-17:00"` (24-hour clock; `24:00` is allowed as an end).
    pub fn parse(s: &str) -> Result<WorkingHours, String> {
        let bad = || format!("{s:?} is not working hours such as \"09:00-17:00\" (HH:MM-HH:MM)");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            if h.is_empty() || h.len() > 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start >= MINUTES_PER_DAY {
            return Err(format!("{s:?}: working hours cannot start at 24:00"));
        }
        WorkingHours::from_minutes(start, end)
            .ok_or_else(|| format!("{s:?}: the end of working hours must be after the start"))
    }

    /// Minutes after local midnight when work starts.
    pub fn start_minute(self) -> u32 {
        self.start
    }

    /// Minutes after local midnight when work ends (1440 for `24:00`).
    pub fn end_minute(self) -> u32 {
        self.end
    }

    fn local(day: NaiveDate, minute: u32) -> NaiveDateTime {
        day.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute))
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl Serialize for WorkingHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses a weekday as the configuration spells it: `mon` ... `sun` or the full English name,
/// in any case.
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    let day = match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

pub(crate) fn serialize_tz<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

fn serialize_days<S: Serializer>(days: &WeekdaySet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        days.iter(Weekday::Mon)
            .map(|d| d.to_string().to_ascii_lowercase()),
    )
}

/// When people work: the working hours of the working days in a time zone, except holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Calendar {
    /// The name under `[calendars.NAME]`.
    pub name: String,
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    /// Local weekdays with working hours. A calendar without any has no working time at all.
    #[serde(serialize_with = "serialize_days")]
    pub working_days: WeekdaySet,
    pub working_hours: WorkingHours,
    /// Local dates without any working time.
    pub holidays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Whether a local date has working hours (a working day that is not a holiday).
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        self.working_days.contains(day.weekday()) && !self.holidays.contains(&day)
    }

    /// The working interval of a local date, `[start, end)` in UTC; `None` on days off (and on
    /// the rare day whose working hours fall entirely into a daylight-saving gap).
    pub fn working_interval(&self, day: NaiveDate) -> Option<Range<DateTime<Utc>>> {
        if !self.is_working_day(day) {
            return None;
        }
        let h = self.working_hours;
        let start = local_to_utc(self.time_zone, WorkingHours::local(day, h.start));
        let end = local_to_utc(self.time_zone, WorkingHours::local(day, h.end));
        (start < end).then_some(start..end)
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// Working intervals in order, from the first one that ends after `at`. Ends only when the
    /// calendar has no working days (or at the end of chrono's calendar).
    fn intervals_from(&self, at: DateTime<Utc>) -> impl Iterator<Item = Range<DateTime<Utc>>> + '_ {
        // The previous local date too: its interval can reach past local midnight only at the
        // end of the day (24:00), but starting a day early costs nothing and is always right.
        let first = self.local_date(at).pred_opt().unwrap_or(NaiveDate::MIN);
        let has_days = !self.working_days.is_empty();
        first
            .iter_days()
            .take_while(move |_| has_days)
            .filter_map(|day| self.working_interval(day))
            .filter(move |r| r.end > at)
    }

    /// Whether `at` is inside working time (working hours are half-open: the start instant is
    /// working time, the end instant is not).
    pub fn is_working_time(&self, at: DateTime<Utc>) -> bool {
        let day = self.local_date(at);
        [day.pred_opt(), Some(day)]
            .into_iter()
            .flatten()
            .filter_map(|d| self.working_interval(d))
            .any(|r| r.contains(&at))
    }

    /// The first instant at or after `at` that is working time: `at` itself inside working
    /// hours, otherwise the start of the next working interval. `DateTime::<Utc>::MAX_UTC`
    /// when the calendar has no working time at all.
    pub fn next_working_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.intervals_from(at)
            .next()
            .map(|r| r.start.max(at))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The earliest instant by which `dur` of working time has elapsed since `start`: only time
    /// inside working hours on working, non-holiday days counts. When the duration is used up
    /// exactly at the end of a working day, that end is the answer (not the next morning).
    /// A zero or negative duration gives `start` back. `DateTime::<Utc>::MAX_UTC` when the
    /// calendar has no working time at all.
    pub fn add_working_time(&self, start: DateTime<Utc>, dur: Duration) -> DateTime<Utc> {
        if dur <= Duration::zero() {
            return start;
        }
        let mut left = dur;
        for r in self.intervals_from(start) {
            let from = r.start.max(start);
            let here = r.end - from;
            if left <= here {
                return from + left;
            }
            left -= here;
        }
        DateTime::<Utc>::MAX_UTC
    }

    /// The working time inside `[from, to)` (zero when `to <= from`).
    pub fn working_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        for r in self.intervals_from(from) {
            if r.start >= to {
                break;
            }
            total += r.end.min(to) - r.start.max(from);
        }
        total
    }

    /// The next instant strictly after `at` where a working interval starts or ends. Where two
    /// intervals touch (working hours to 24:00 followed by a day from 00:00) the shared instant
    /// is returned although working time goes on. `None` when the calendar has no working days.
    pub fn next_boundary_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.intervals_from(at)
            .find_map(|r| [r.start, r.end].into_iter().find(|t| *t > at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal(tz: &str, days: &[Weekday], hours: &str, holidays: &[&str]) -> Calendar {
        Calendar {
            name: "test".into(),
            time_zone: tz.parse().unwrap(),
            working_days: days.iter().copied().collect(),
            working_hours: WorkingHours::parse(hours).unwrap(),
            holidays: holidays.iter().map(|d| date(d)).collect(),
        }
    }

    const WEEKDAYS: &[Weekday] = &[
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];

    /// Berlin, Monday to Friday 09:00-17:00, Christmas Eve and Day off.
    fn berlin() -> Calendar {
        cal(
            "Europe/Berlin",
            WEEKDAYS,
            "09:00-17:00",
            &["2026-12-24", "2026-12-25"],
        )
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    #[test]
    fn local_to_utc_table() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let cases = [
            // (zone, local, instant)
            (berlin, "2026-01-15 09:00", "2026-01-15T08:00:00Z"), // CET
            (berlin, "2026-07-15 09:00", "2026-07-15T07:00:00Z"), // CEST
            (berlin, "2026-03-29 01:59", "2026-03-29T00:59:00Z"), // last minute of CET
            (berlin, "2026-03-29 02:00", "2026-03-29T01:00:00Z"), // skipped → 03:00 CEST
            (berlin, "2026-03-29 02:30", "2026-03-29T01:30:00Z"), // skipped → 03:30 CEST
            (berlin, "2026-03-29 03:00", "2026-03-29T01:00:00Z"), // first minute of CEST
            (berlin, "2026-10-25 02:30", "2026-10-25T00:30:00Z"), // twice: the first (CEST)
            (berlin, "2026-10-25 03:00", "2026-10-25T02:00:00Z"), // once again: CET
            (ny, "2026-03-08 02:30", "2026-03-08T07:30:00Z"),     // skipped → 03:30 EDT
            (ny, "2026-11-01 01:30", "2026-11-01T05:30:00Z"),     // twice: the first (EDT)
            (lord_howe, "2026-10-04 02:15", "2026-10-03T15:45:00Z"), // 30-minute gap → 02:45
        ];
        for (tz, l, want) in cases {
            assert_eq!(local_to_utc(tz, local(l)), t(want), "{} {l}", tz.name());
        }
    }

    #[test]
    fn working_hours_parse_table() {
        let ok = [
            ("09:00-17:00", (540, 1020), "09:00-17:00"),
            (" 8:30 - 12:15 ", (510, 735), "08:30-12:15"),
            ("00:00-24:00", (0, 1440), "00:00-24:00"),
            ("22:00-23:59", (1320, 1439), "22:00-23:59"),
        ];
        for (s, (a, b), shown) in ok {
            let h = WorkingHours::parse(s).unwrap();
            assert_eq!((h.start_minute(), h.end_minute()), (a, b), "{s}");
            assert_eq!(h.to_string(), shown);
        }
        let bad = [
            ("17:00-09:00", "after the start"),
            ("09:00-09:00", "after the start"),
            ("24:00-24:00", "cannot start at 24:00"),
            ("9-17", "HH:MM-HH:MM"),
            ("09:00", "HH:MM-HH:MM"),
            ("09:60-17:00", "HH:MM-HH:MM"),
            ("25:00-26:00", "HH:MM-HH:MM"),
            ("24:30-24:45", "HH:MM-HH:MM"),
            ("09:00-17:0", "HH:MM-HH:MM"),
            ("", "HH:MM-HH:MM"),
        ];
        for (s, want) in bad {
            let e = WorkingHours::parse(s).unwrap_err();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn weekday_names() {
        assert_eq!(parse_weekday("mon"), Some(Weekday::Mon));
        assert_eq!(parse_weekday("Sunday"), Some(Weekday::Sun));
        assert_eq!(parse_weekday("THU"), Some(Weekday::Thu));
        assert_eq!(parse_weekday("mo"), None);
        assert_eq!(parse_weekday(""), None);
    }

    #[test]
    #[rustfmt::skip]
    fn is_working_time_table() {
        let c = berlin();
        let cases = [
            // Monday 2026-11-02, CET (UTC+1): 09:00 local = 08:00Z, 17:00 local = 16:00Z.
            ("2026-11-02T07:59:59Z", false), // 08:59:59 local
            ("2026-11-02T08:00:00Z", true),  // 09:00 local: the start is working time
            ("2026-11-02T15:59:59Z", true),  // 16:59:59 local
            ("2026-11-02T16:00:00Z", false), // 17:00 local: the end is not
            ("2026-11-07T10:00:00Z", false), // Saturday
            ("2026-11-08T10:00:00Z", false), // Sunday
            ("2026-12-23T10:00:00Z", true),  // Wednesday before Christmas
            ("2026-12-24T10:00:00Z", false), // holiday (Thursday)
            ("2026-12-25T10:00:00Z", false), // holiday (Friday)
            // Summer (CEST, UTC+2): 09:00 local = 07:00Z.
            ("2026-07-15T06:59:59Z", false),
            ("2026-07-15T07:00:00Z", true),
            ("2026-07-15T14:59:59Z", true),
            ("2026-07-15T15:00:00Z", false),
            // The Mondays after both changes in 2026: 03-30 (CEST), 10-26 (CET).
            ("2026-03-30T07:00:00Z", true),
            ("2026-03-30T06:59:59Z", false),
            ("2026-10-26T08:00:00Z", true),
            ("2026-10-26T07:59:59Z", false),
        ];
        for (at, want) in cases {
            assert_eq!(c.is_working_time(t(at)), want, "{at}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn next_working_start_table() {
        let c = berlin();
        let cases = [
            ("2026-11-02T08:30:00Z", "2026-11-02T08:30:00Z"), // inside: itself
            ("2026-11-02T08:00:00Z", "2026-11-02T08:00:00Z"), // at the start: itself
            ("2026-11-02T07:00:00Z", "2026-11-02T08:00:00Z"), // before hours
            ("2026-11-02T16:00:00Z", "2026-11-03T08:00:00Z"), // at the end: next day
            ("2026-11-06T18:00:00Z", "2026-11-09T08:00:00Z"), // Friday evening → Monday
            ("2026-11-07T12:00:00Z", "2026-11-09T08:00:00Z"), // Saturday → Monday
            ("2026-12-23T17:00:00Z", "2026-12-28T08:00:00Z"), // holidays then weekend
            ("2026-03-27T17:00:00Z", "2026-03-30T07:00:00Z"), // Friday CET → Monday CEST
            ("2026-10-23T17:00:00Z", "2026-10-26T08:00:00Z"), // Friday CEST → Monday CET
        ];
        for (at, want) in cases {
            assert_eq!(c.next_working_start(t(at)), t(want), "{at}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn add_working_time_table() {
        let c = berlin();
        let cases: &[(&str, &str, Duration, &str)] = &[
            ("zero inside hours", "2026-11-02T10:00:00Z", Duration::zero(), "2026-11-02T10:00:00Z"),
            ("zero outside hours: start itself", "2026-11-07T10:00:00Z", Duration::zero(), "2026-11-07T10:00:00Z"),
            ("negative: start itself", "2026-11-02T10:00:00Z", -hours(3), "2026-11-02T10:00:00Z"),
            ("inside the day", "2026-11-02T08:00:00Z", hours(4), "2026-11-02T12:00:00Z"),
            ("one working day from 09:00 ends 17:00 the same day", "2026-11-02T08:00:00Z", hours(8), "2026-11-02T16:00:00Z"),
            ("one working day from 11:00 ends 11:00 next day", "2026-11-02T10:00:00Z", hours(8), "2026-11-03T10:00:00Z"),
            ("one second", "2026-11-02T10:00:00Z", Duration::seconds(1), "2026-11-02T10:00:01Z"),
            ("before hours: counts from 09:00", "2026-11-02T05:00:00Z", hours(2), "2026-11-02T10:00:00Z"),
            ("after hours: counts from 09:00 next day", "2026-11-02T19:00:00Z", hours(2), "2026-11-03T10:00:00Z"),
            ("at 17:00 exactly: next morning", "2026-11-02T16:00:00Z", Duration::minutes(1), "2026-11-03T08:01:00Z"),
            ("Friday afternoon over the weekend", "2026-11-06T14:00:00Z", hours(4), "2026-11-09T10:00:00Z"),
            ("Friday 16:00 local, 8h → Monday 16:00", "2026-11-06T15:00:00Z", hours(8), "2026-11-09T15:00:00Z"),
            ("from Saturday", "2026-11-07T10:00:00Z", hours(8), "2026-11-09T16:00:00Z"),
            ("from Sunday night", "2026-11-08T23:30:00Z", hours(1), "2026-11-09T09:00:00Z"),
            ("over the Christmas holidays and weekend", "2026-12-23T12:00:00Z", hours(8), "2026-12-28T12:00:00Z"),
            ("starting on a holiday", "2026-12-24T09:00:00Z", hours(1), "2026-12-28T09:00:00Z"),
            ("three days", "2026-11-02T08:00:00Z", hours(24), "2026-11-04T16:00:00Z"),
            ("exactly a working week", "2026-11-02T08:00:00Z", hours(40), "2026-11-06T16:00:00Z"),
            ("three working weeks from Wednesday noon", "2026-11-04T11:00:00Z", hours(120), "2026-11-25T11:00:00Z"),
            ("Friday CET over the spring change", "2026-03-27T15:00:00Z", hours(2), "2026-03-30T08:00:00Z"),
            ("Friday CEST over the autumn change", "2026-10-23T14:00:00Z", hours(2), "2026-10-26T09:00:00Z"),
            ("a week over the autumn change", "2026-10-21T07:00:00Z", hours(40), "2026-10-27T16:00:00Z"),
        ];
        for (name, start, dur, want) in cases {
            let got = c.add_working_time(t(start), *dur);
            assert_eq!(got, t(want), "{name}");
            if *dur > Duration::zero() {
                // The inverse: exactly `dur` of working time lies between start and the answer.
                assert_eq!(c.working_time_between(t(start), got), *dur, "{name}: inverse");
                // And it is the earliest such instant.
                assert!(c.working_time_between(t(start), got - Duration::seconds(1)) < *dur, "{name}: earliest");
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn dst_nights_count_real_time() {
        // Round-the-clock working hours: the day of a change has 23 or 25 real hours.
        let all_week = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        let berlin = cal("Europe/Berlin", &all_week, "00:00-24:00", &[]);
        let ny = cal("America/New_York", &all_week, "00:00-24:00", &[]);
        let night = cal("Europe/Berlin", &all_week, "01:00-05:00", &[]);
        let cases: &[(&str, &Calendar, &str, &str, Duration)] = &[
            ("Berlin spring day is 23 h", &berlin, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", hours(23)),
            ("Berlin autumn day is 25 h", &berlin, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", hours(25)),
            ("New York spring day is 23 h", &ny, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", hours(23)),
            ("New York autumn day is 25 h", &ny, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", hours(25)),
            ("01:00-05:00 on the spring night is 3 h", &night, "2026-03-29T00:00:00Z", "2026-03-29T03:00:00Z", hours(3)),
            ("01:00-05:00 on the autumn night is 5 h", &night, "2026-10-24T23:00:00Z", "2026-10-25T04:00:00Z", hours(5)),
        ];
        for (name, c, from, to, want) in cases {
            let day = c.time_zone.from_utc_datetime(&t(from).naive_utc()).date_naive();
            assert_eq!(c.working_interval(day), Some(t(from)..t(to)), "{name}: interval");
            assert_eq!(c.working_time_between(t(from), t(to)), *want, "{name}: length");
            assert_eq!(c.add_working_time(t(from), *want), t(to), "{name}: add");
        }
        // Adding a full day of working time across the spring night: 24 h of working time take
        // until 01:00 local the next day (23 h on the 29th plus 1 h on the 30th).
        assert_eq!(berlin.add_working_time(t("2026-03-28T23:00:00Z"), hours(24)), t("2026-03-29T23:00:00Z"));
    }

    #[test]
    fn working_hours_inside_a_gap_are_shifted_or_empty() {
        let sunday = [Weekday::Sun];
        // 02:00-03:00 lies entirely in the Berlin spring gap: nothing to work that day.
        let gone = cal("Europe/Berlin", &sunday, "02:00-03:00", &[]);
        assert_eq!(gone.working_interval(date("2026-03-29")), None);
        assert_eq!(
            gone.next_working_start(t("2026-03-28T12:00:00Z")),
            t("2026-04-05T00:00:00Z") // the next Sunday, 02:00 CEST
        );
        // 02:30-04:00: the start is shifted to 03:30 CEST.
        let half = cal("Europe/Berlin", &sunday, "02:30-04:00", &[]);
        assert_eq!(
            half.working_interval(date("2026-03-29")),
            Some(t("2026-03-29T01:30:00Z")..t("2026-03-29T02:00:00Z"))
        );
    }

    #[test]
    fn new_york_calendar() {
        let c = cal("America/New_York", WEEKDAYS, "09:00-17:00", &["2026-11-26"]);
        let cases = [
            // Friday before the autumn change (EDT, UTC-4) → Monday (EST, UTC-5).
            ("2026-10-30T19:00:00Z", hours(3), "2026-11-02T15:00:00Z"),
            // Friday before the spring change (EST) → Monday (EDT).
            ("2026-03-06T21:00:00Z", hours(2), "2026-03-09T14:00:00Z"),
            // Wednesday before Thanksgiving → Friday.
            ("2026-11-25T20:00:00Z", hours(3), "2026-11-27T15:00:00Z"),
        ];
        for (start, dur, want) in cases {
            assert_eq!(c.add_working_time(t(start), dur), t(want), "{start}");
        }
    }

    #[test]
    fn a_calendar_without_working_days_never_works() {
        let c = cal("UTC", &[], "09:00-17:00", &[]);
        let at = t("2026-11-02T10:00:00Z");
        assert!(!c.is_working_time(at));
        assert_eq!(c.next_working_start(at), DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.add_working_time(at, hours(1)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.add_working_time(at, Duration::zero()), at);
        assert_eq!(c.next_boundary_after(at), None);
        assert_eq!(
            c.working_time_between(at, at + hours(100)),
            Duration::zero()
        );
    }

    #[test]
    fn boundaries_are_starts_and_ends_in_order() {
        let c = berlin();
        let mut at = t("2026-11-06T12:00:00Z"); // Friday 13:00 local
        let mut got = Vec::new();
        for _ in 0..4 {
            at = c.next_boundary_after(at).unwrap();
            got.push(at);
        }
        let want = [
            "2026-11-06T16:00:00Z",
            "2026-11-09T08:00:00Z",
            "2026-11-09T16:00:00Z",
            "2026-11-10T08:00:00Z",
        ];
        assert_eq!(got, want.map(t));
    }

    #[test]
    fn long_spans_are_consistent() {
        // Multi-week sums agree with a day-by-day count.
        let c = berlin();
        let start = t("2026-12-01T08:00:00Z");
        let end = c.add_working_time(start, hours(8 * 20));
        // 20 working days from Tue 1 Dec, skipping weekends and 24/25 Dec: ends Wed 30 Dec 17:00.
        assert_eq!(end, t("2026-12-30T16:00:00Z"));
        assert_eq!(c.working_time_between(start, end), hours(160));
    }

    #[test]
    fn serializes_as_configured() {
        let v = serde_json::to_value(berlin()).unwrap();
        assert_eq!(v["time_zone"], "Europe/Berlin");
        assert_eq!(
            v["working_days"],
            serde_json::json!(["mon", "tue", "wed", "thu", "fri"])
        );
        assert_eq!(v["working_hours"], "09:00-17:00");
        assert_eq!(
            v["holidays"],
            serde_json::json!(["2026-12-24", "2026-12-25"])
        );
    }
}
