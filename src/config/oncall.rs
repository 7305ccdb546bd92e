//! `[calendars.NAME]` and `[rotations.NAME]` of `lever.toml`, with the rotations' layers
//! (`[[rotations.NAME.layers]]`) and overrides (`[[rotations.NAME.overrides]]`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc, WeekdaySet};
use chrono_tz::Tz;
use toml::de::DeValue;

use super::parse_duration;
use super::settings::is_login;
use super::spanned::{Diag, Table, as_table, type_name};
use crate::domain::calendar::{Calendar, WorkingHours, parse_weekday};
use crate::domain::oncall::{Layer, Override, Rotation};

/// Every `[calendars.NAME]`.
pub(super) fn calendars(d: &mut Diag, root: &mut Table) -> BTreeMap<String, Calendar> {
    let mut out = BTreeMap::new();
    if let Some(mut t) = root.table(d, "calendars") {
        for (k, v) in t.entries() {
            let name = k.get_ref().to_string();
            if let Some(mut ct) = as_table(d, format!("calendars.{name}"), v) {
                if let Some(c) = calendar(d, &mut ct, &name) {
                    out.insert(name, c);
                }
                ct.finish(d);
            }
        }
        t.finish(d);
    }
    out
}

/// Every `[rotations.NAME]`, and the names of those that were defined but invalid (so that
/// references to them are not reported a second time as unknown).
pub(super) fn rotations(
    d: &mut Diag,
    root: &mut Table,
    calendars: &BTreeMap<String, Calendar>,
) -> (BTreeMap<String, Rotation>, BTreeSet<String>) {
    let mut out = BTreeMap::new();
    let mut invalid = BTreeSet::new();
    if let Some(mut t) = root.table(d, "rotations") {
        for (k, v) in t.entries() {
            let name = k.get_ref().to_string();
            if let Some(mut rt) = as_table(d, format!("rotations.{name}"), v) {
                match rotation(d, &mut rt, &name, calendars) {
                    Some(r) => {
                        out.insert(name, r);
                    }
                    None => {
                        invalid.insert(name);
                    }
                }
                rt.finish(d);
            }
        }
        t.finish(d);
    }
    (out, invalid)
}

fn time_zone(d: &mut Diag, t: &mut Table, path: &str) -> Result<Option<Tz>, ()> {
    let Some(s) = t.string(d, "time_zone") else {
        return Ok(None);
    };
    match s.get_ref().parse::<Tz>() {
        Ok(tz) => Ok(Some(tz)),
        Err(_) => {
            d.error(
                s.span(),
                format!(
                    "{path}.time_zone: unknown time zone {:?} (expected an IANA name such as \
                     Europe/Berlin, America/New_York or UTC)",
                    s.get_ref()
                ),
            );
            Err(())
        }
    }
}

fn calendar(d: &mut Diag, t: &mut Table, name: &str) -> Option<Calendar> {
    let path = format!("calendars.{name}");
    let errors = d.errors.len();
    let time_zone = time_zone(d, t, &path).ok().flatten();
    if time_zone.is_none() && t.get("time_zone").is_none() {
        d.error(
            t.span.clone(),
            format!("{path}: missing time_zone = \"Europe/Berlin\" (an IANA name)"),
        );
    }

    let mut working_days = WeekdaySet::EMPTY;
    match t.string_list(d, "working_days") {
        Some(list) if list.is_empty() => d.error(
            t.span.clone(),
            format!("{path}: working_days is empty (a calendar needs at least one working day)"),
        ),
        Some(list) => {
            for s in list {
                match parse_weekday(s.get_ref()) {
                    Some(day) if working_days.contains(day) => d.error(
                        s.span(),
                        format!("{path}.working_days: {:?} is listed twice", s.get_ref()),
                    ),
                    Some(day) => {
                        working_days.insert(day);
                    }
                    None => d.error(
                        s.span(),
                        format!(
                            "{path}.working_days: {:?} is not a weekday (mon, tue, wed, thu, fri, \
                             sat, sun)",
                            s.get_ref()
                        ),
                    ),
                }
            }
        }
        None => d.error(
            t.span.clone(),
            format!("{path}: missing working_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"),
        ),
    }

    let working_hours = match t.string(d, "working_hours") {
        Some(s) => match WorkingHours::parse(s.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => {
                d.error(s.span(), format!("{path}.working_hours: {e}"));
                None
            }
        },
        None => {
            d.error(
                t.span.clone(),
                format!("{path}: missing working_hours = \"09:00-17:00\""),
            );
            None
        }
    };

    let mut holidays = BTreeSet::new();
    if let Some(v) = t.get("holidays") {
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let text = match item.get_ref() {
                        DeValue::String(s) => s.to_string(),
                        DeValue::Datetime(dt) => dt.to_string(),
                        other => {
                            d.error(
                                item.span(),
                                format!(
                                    "{path}.holidays[{i}] must be a date such as \"2026-12-24\", found {}",
                                    type_name(other)
                                ),
                            );
                            continue;
                        }
                    };
                    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                        Ok(day) if !holidays.insert(day) => d.error(
                            item.span(),
                            format!("{path}.holidays: {text} is listed twice"),
                        ),
                        Ok(_) => {}
                        Err(e) => d.error(
                            item.span(),
                            format!(
                                "{path}.holidays: {text:?} is not a date such as 2026-12-24 ({e})"
                            ),
                        ),
                    }
                }
            }
            other => d.error(
                v.span(),
                format!(
                    "{path}.holidays must be an array of dates, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    if d.errors.len() > errors {
        return None;
    }
    Some(Calendar {
        name: name.to_string(),
        time_zone: time_zone?,
        working_days,
        working_hours: working_hours?,
        holidays,
    })
}

/// An instant: RFC 3339 with an offset, as a string or a TOML offset date-time.
fn instant(d: &mut Diag, t: &mut Table, path: &str, key: &str) -> Option<DateTime<Utc>> {
    match t.string_or_datetime(d, key) {
        Some(s) => match DateTime::parse_from_rfc3339(s.get_ref()) {
            Ok(dt) => Some(dt.with_timezone(&Utc)),
            Err(e) => {
                d.error(
                    s.span(),
                    format!(
                        "{path}.{key}: {:?} is not an RFC 3339 instant with offset ({e})",
                        s.get_ref()
                    ),
                );
                None
            }
        },
        None => {
            if t.get(key).is_none() {
                d.error(
                    t.span.clone(),
                    format!("{path}: missing {key} = 2026-11-02T00:00:00Z"),
                );
            }
            None
        }
    }
}

fn login(d: &mut Diag, raw: &toml::Spanned<String>, what: &str) -> Option<String> {
    let login = raw.get_ref().trim_start_matches('@');
    if is_login(login) {
        Some(login.to_string())
    } else {
        d.error(
            raw.span(),
            format!("{what}: {:?} is not a valid GitHub login", raw.get_ref()),
        );
        None
    }
}

/// The keys every layer has: members, start, handoff, time_zone (else `default_tz`).
fn layer(d: &mut Diag, t: &mut Table, path: &str, default_tz: Option<Tz>) -> Option<Layer> {
    let errors = d.errors.len();
    let mut members = Vec::new();
    match t.string_list(d, "members") {
        Some(list) if list.is_empty() => d.error(
            t.span.clone(),
            format!("{path}: members is empty (a rotation needs at least one person)"),
        ),
        Some(list) => {
            let what = format!("{path}.members");
            members.extend(list.iter().filter_map(|m| login(d, m, &what)));
        }
        None => d.error(
            t.span.clone(),
            format!("{path}: missing members = [\"login\", ...]"),
        ),
    }
    let start = instant(d, t, path, "start");
    let handoff = match t.string(d, "handoff") {
        Some(s) => match parse_duration(s.get_ref()) {
            Ok(h) if h.num_seconds() > 0 => Some(h),
            Ok(_) => {
                d.error(s.span(), format!("{path}.handoff must be longer than zero"));
                None
            }
            Err(e) => {
                d.error(s.span(), format!("{path}.handoff: {e}"));
                None
            }
        },
        None => {
            d.error(t.span.clone(), format!("{path}: missing handoff = \"7d\""));
            None
        }
    };
    let time_zone = time_zone(d, t, path).ok()?.or(default_tz);
    if d.errors.len() > errors {
        return None;
    }
    Some(Layer {
        time_zone,
        ..Layer::new(members, start?, handoff?)
    })
}

fn rotation(
    d: &mut Diag,
    t: &mut Table,
    name: &str,
    calendars: &BTreeMap<String, Calendar>,
) -> Option<Rotation> {
    let path = format!("rotations.{name}");
    let errors = d.errors.len();
    let base = layer(d, t, &path, None);
    let base_tz = base.as_ref().and_then(|b| b.time_zone);
    if let Some(v) = t.get("calendar") {
        d.error(
            v.span(),
            format!(
                "{path}.calendar: the base layer always applies; put the calendar on an extra \
                 layer ([[{path}.layers]])"
            ),
        );
    }

    let mut layers = Vec::new();
    for mut lt in t.tables(d, "layers").unwrap_or_default() {
        let lpath = lt.path.clone();
        let l = layer(d, &mut lt, &lpath, base_tz);
        let calendar = lt.string(d, "calendar").and_then(|s| {
            let found = calendars.get(s.get_ref()).cloned();
            if found.is_none() {
                d.error(
                    s.span(),
                    format!(
                        "{lpath}.calendar: {}",
                        unknown_calendar(s.get_ref(), calendars)
                    ),
                );
            }
            found
        });
        lt.finish(d);
        if let Some(l) = l {
            layers.push(Layer { calendar, ..l });
        }
    }

    let mut overrides = Vec::new();
    for mut ot in t.tables(d, "overrides").unwrap_or_default() {
        let opath = ot.path.clone();
        let user = match ot.string(d, "user") {
            Some(s) => login(d, &s, &format!("{opath}.user")),
            None => {
                if ot.get("user").is_none() {
                    d.error(
                        ot.span.clone(),
                        format!("{opath}: missing user = \"login\""),
                    );
                }
                None
            }
        };
        let from = instant(d, &mut ot, &opath, "from");
        let to = instant(d, &mut ot, &opath, "to");
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            let span = ot.get("to").map(|v| v.span()).unwrap_or(ot.span.clone());
            d.error(
                span,
                format!(
                    "{opath}: to ({to}) must be after from ({from}); the override covers [from, to)"
                ),
            );
        }
        ot.finish(d);
        if let (Some(user), Some(from), Some(to)) = (user, from, to) {
            overrides.push(Override { user, from, to });
        }
    }

    if d.errors.len() > errors {
        return None;
    }
    Some(Rotation {
        name: name.to_string(),
        base: base?,
        layers,
        overrides,
    })
}

fn unknown_calendar(name: &str, calendars: &BTreeMap<String, Calendar>) -> String {
    let known: Vec<&str> = calendars.keys().map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown calendar {name:?} (lever.toml defines no [calendars])")
    } else {
        format!(
            "unknown calendar {name:?} (lever.toml defines: {})",
            known.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{Duration, Weekday};

    use crate::config::{Config, ConfigError};
    use crate::domain::calendar::WorkingHours;
    use crate::domain::oncall::Override;

    const GITHUB: &str = "[github]\nfallback_repo = \"acme/security\"\n";

    fn load(toml: &str) -> Result<Config, Vec<ConfigError>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lever.toml"), format!("{GITHUB}{toml}")).unwrap();
        std::fs::write(dir.path().join("OWNERS"), "* acme/security @sam\n").unwrap();
        Config::load(dir.path()).map_err(|e| e.0)
    }

    fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    const CONTRACT: &str = r#"
[calendars.eu-office]
time_zone = "Europe/Berlin"
working_days = ["mon", "tue", "wed", "thu", "fri"]
working_hours = "09:00-17:00"
holidays = ["2026-12-24", 2026-12-25]

[rotations.payments]
members = ["alice", "@bob"]
start = "2026-11-02T09:00:00+01:00"
handoff = "1w"
time_zone = "Europe/Berlin"

[[rotations.payments.layers]]
members = ["carol", "dave"]
start = 2026-11-02T09:00:00+01:00
handoff = "1d"
calendar = "eu-office"

[[rotations.payments.layers]]
members = ["frank"]
start = "2026-11-02T00:00:00Z"
handoff = "8h"
time_zone = "UTC"

[[rotations.payments.overrides]]
user = "erin"
from = "2026-12-20T00:00:00Z"
to = 2027-01-03T00:00:00Z

[[rotations.payments.overrides]]
user = "@frank"
from = "2026-12-31T00:00:00Z"
to = "2027-01-01T00:00:00Z"

[rotations.simple]
members = ["sam"]
start = "2026-11-02T00:00:00Z"
handoff = "7d"
"#;

    #[test]
    fn the_contract_example_loads() {
        let cfg = load(CONTRACT).unwrap_or_else(|e| panic!("{e:#?}"));
        let s = &cfg.settings;
        let cal = &s.calendars["eu-office"];
        assert_eq!(cal.name, "eu-office");
        assert_eq!(cal.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(
            cal.working_days,
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
            .into_iter()
            .collect()
        );
        assert_eq!(
            cal.working_hours,
            WorkingHours::parse("09:00-17:00").unwrap()
        );
        let holidays: Vec<String> = cal.holidays.iter().map(|d| d.to_string()).collect();
        assert_eq!(holidays, ["2026-12-24", "2026-12-25"]);

        let r = &s.rotations["payments"];
        assert_eq!(r.name, "payments");
        assert_eq!(r.base.members, ["alice", "bob"]);
        assert_eq!(r.base.start, t("2026-11-02T08:00:00Z"));
        assert_eq!(r.base.handoff, Duration::weeks(1));
        assert_eq!(r.base.time_zone, Some(chrono_tz::Europe::Berlin));
        assert_eq!(r.base.calendar, None);
        assert_eq!(r.layers.len(), 2);
        assert_eq!(r.layers[0].members, ["carol", "dave"]);
        assert_eq!(r.layers[0].handoff, Duration::days(1));
        // A layer without its own time zone takes the rotation's.
        assert_eq!(r.layers[0].time_zone, Some(chrono_tz::Europe::Berlin));
        assert_eq!(r.layers[0].calendar.as_ref(), Some(cal));
        assert_eq!(r.layers[1].time_zone, Some(chrono_tz::UTC));
        assert_eq!(r.layers[1].calendar, None);
        assert_eq!(
            r.overrides,
            vec![
                Override {
                    user: "erin".into(),
                    from: t("2026-12-20T00:00:00Z"),
                    to: t("2027-01-03T00:00:00Z")
                },
                Override {
                    user: "frank".into(),
                    from: t("2026-12-31T00:00:00Z"),
                    to: t("2027-01-01T00:00:00Z")
                },
            ]
        );
        let simple = &s.rotations["simple"];
        assert!(simple.layers.is_empty() && simple.overrides.is_empty());
        assert_eq!(simple.base.time_zone, None);
        // The loaded rotation behaves as configured: the unrestricted 8 h layer (frank) is the
        // last layer, so it wins everywhere outside overrides; the later override wins.
        assert_eq!(r.on_call(t("2026-11-03T10:00:00Z")), "frank");
        assert_eq!(r.on_call(t("2026-12-21T10:00:00Z")), "erin");
        assert_eq!(r.on_call(t("2026-12-31T10:00:00Z")), "frank");
        assert_eq!(r.on_call(t("2027-01-01T10:00:00Z")), "erin");
    }

    #[test]
    fn every_rotation_and_calendar_error_is_reported_with_its_line() {
        let toml = r#"
[calendars.bad]
time_zone = "Europe/Berln"
working_days = ["mon", "mon", "funday"]
working_hours = "17:00-09:00"
holidays = ["2026-02-30", "2026-12-24", "2026-12-24", 7]
colour = "red"

[calendars.empty]
working_days = []
working_hours = "9-5"

[calendars.ok]
time_zone = "UTC"
working_days = ["mon"]
working_hours = "09:00-17:00"

[rotations.payments]
members = []
start = "2026-11-02T09:00:00+01:00"
handoff = "1w"
time_zone = "Mars/Olympus"
calendar = "ok"

[[rotations.payments.layers]]
members = ["carol"]
start = "2026-11-02"
handoff = "1d"
calendar = "nope"
time_zone = "Europe/Paris"
shift = "night"

[[rotations.payments.layers]]
members = []

[[rotations.payments.overrides]]
user = "erin"
from = "2027-01-03T00:00:00Z"
to = "2026-12-20T00:00:00Z"

[[rotations.payments.overrides]]
user = "not a login"
from = "2026-12-20T00:00:00Z"
to = "2026-12-20T00:00:00Z"
note = "holiday"

[[rotations.payments.overrides]]
user = "erin"
from = "tomorrow"

[rotations.other]
members = ["sam"]
start = "2026-11-02T00:00:00Z"
handoff = "7d"
layers = "none"
overrides = [1]
"#;
        let errs = load(toml).unwrap_err();
        // GITHUB takes the first two lines; `toml` starts with an empty line 3.
        let want: &[(usize, &str)] = &[
            (
                5,
                "calendars.bad.time_zone: unknown time zone \"Europe/Berln\"",
            ),
            (6, "calendars.bad.working_days: \"mon\" is listed twice"),
            (6, "calendars.bad.working_days: \"funday\" is not a weekday"),
            (
                7,
                "calendars.bad.working_hours: \"17:00-09:00\": the end of working hours must be after the start",
            ),
            (8, "calendars.bad.holidays: \"2026-02-30\" is not a date"),
            (8, "calendars.bad.holidays: 2026-12-24 is listed twice"),
            (8, "calendars.bad.holidays[3] must be a date"),
            (9, "unknown key \"colour\" in [calendars.bad]"),
            (11, "calendars.empty: missing time_zone"),
            (11, "calendars.empty: working_days is empty"),
            (
                13,
                "calendars.empty.working_hours: \"9-5\" is not working hours",
            ),
            (20, "rotations.payments: members is empty"),
            (
                24,
                "rotations.payments.time_zone: unknown time zone \"Mars/Olympus\"",
            ),
            (
                25,
                "rotations.payments.calendar: the base layer always applies",
            ),
            (
                29,
                "rotations.payments.layers[0].start: \"2026-11-02\" is not an RFC 3339 instant",
            ),
            (
                31,
                "rotations.payments.layers[0].calendar: unknown calendar \"nope\" (lever.toml defines: ok)",
            ),
            (
                33,
                "unknown key \"shift\" in [rotations.payments.layers[0]]",
            ),
            (35, "rotations.payments.layers[1]: members is empty"),
            (35, "rotations.payments.layers[1]: missing start"),
            (35, "rotations.payments.layers[1]: missing handoff"),
            (
                41,
                "rotations.payments.overrides[0]: to (2026-12-20 00:00:00 UTC) must be after from (2027-01-03 00:00:00 UTC)",
            ),
            (
                44,
                "rotations.payments.overrides[1].user: \"not a login\" is not a valid GitHub login",
            ),
            (
                46,
                "rotations.payments.overrides[1]: to (2026-12-20 00:00:00 UTC) must be after from",
            ),
            (
                47,
                "unknown key \"note\" in [rotations.payments.overrides[1]]",
            ),
            (49, "rotations.payments.overrides[2]: missing to"),
            (
                51,
                "rotations.payments.overrides[2].from: \"tomorrow\" is not an RFC 3339 instant",
            ),
            (57, "rotations.other.layers must be an array of tables"),
            (
                58,
                "rotations.other.overrides[0] must be a table, found an integer",
            ),
        ];
        let mut missing = Vec::new();
        for (line, needle) in want {
            if !errs
                .iter()
                .any(|e| e.line == *line && e.message.contains(needle))
            {
                missing.push(format!("{line}: {needle}"));
            }
        }
        assert!(missing.is_empty(), "missing {missing:#?}\nin {errs:#?}");
        assert_eq!(errs.len(), want.len(), "unexpected extra errors: {errs:#?}");
        assert!(errs.iter().all(|e| e.file.ends_with("lever.toml")));
    }

    #[test]
    fn duplicate_names_are_rejected_with_their_line() {
        let cases = [
            (
                "[calendars.x]\ntime_zone = \"UTC\"\n[calendars.x]\nworking_hours = \"09:00-17:00\"\n",
                5,
            ),
            (
                "[rotations.x]\nmembers = [\"a\"]\n[rotations.x]\nhandoff = \"1d\"\n",
                5,
            ),
        ];
        for (toml, line) in cases {
            let errs = load(toml).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:#?}");
            assert_eq!(errs[0].line, line, "{toml}: {errs:#?}");
            assert!(
                errs[0].message.contains("duplicate key"),
                "{}",
                errs[0].message
            );
        }
    }

    #[test]
    fn an_invalid_rotation_is_not_reported_again_as_unknown() {
        let toml = "[rotations.security]\nmembers = []\nstart = \"2026-11-02T00:00:00Z\"\nhandoff = \"7d\"\n";
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[github]\nfallback_repo = \"acme/security\"\nfallback_assignees = [\"@rotation:security\"]\n{toml}"
        );
        std::fs::write(dir.path().join("lever.toml"), text).unwrap();
        std::fs::write(dir.path().join("OWNERS"), "* acme/security @sam\n").unwrap();
        let errs = Config::load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].message.contains("members is empty"));
        assert_eq!(errs[0].line, 4);
    }

    #[test]
    fn the_demo_calendar_is_valid() {
        let cfg =
            Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")).unwrap();
        let c = &cfg.settings.calendars["eu-office"];
        assert_eq!(c.name, "eu-office");
        assert_eq!(c.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(c.working_hours.to_string(), "09:00-17:00");
        assert_eq!(c.holidays.len(), 4);
        // No demo rotation uses it: the demo's rotations keep their plain weekly turns.
        for r in cfg.settings.rotations.values() {
            assert!(r.layers.is_empty() && r.overrides.is_empty(), "{}", r.name);
            assert_eq!(r.base.time_zone, None, "{}", r.name);
        }
    }
}
