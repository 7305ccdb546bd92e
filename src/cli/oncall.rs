//! `lever oncall`: who is on call now and the next handoffs, per rotation, so a team can check
//! its schedule. Reads the configuration only.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{Failure, Format, load_config};
use crate::config::unknown_rotation;
use crate::domain::oncall::{Handoff, Rotation, ShiftSource};

/// How many upcoming handoffs are shown per rotation.
pub const NEXT_HANDOFFS: usize = 5;

/// One line of `--format json`, fields in this order.
#[derive(Serialize)]
struct JsonLine<'a> {
    rotation: &'a str,
    on_call: &'a str,
    next_handoffs: Vec<JsonHandoff<'a>>,
}

#[derive(Serialize)]
struct JsonHandoff<'a> {
    at: String,
    user: &'a str,
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn source(r: &Rotation, s: ShiftSource) -> String {
    match s {
        ShiftSource::Base => String::new(),
        ShiftSource::Layer(i) => match &r.layers[i].calendar {
            Some(c) => format!(" (layer {i}, {} working hours)", c.name),
            None => format!(" (layer {i})"),
        },
        ShiftSource::Override(i) => format!(" (override until {})", instant(r.overrides[i].to)),
    }
}

/// The handoff instant on the rotation's own clock, when it has a time zone.
fn local(r: &Rotation, at: DateTime<Utc>) -> String {
    match r.base.time_zone {
        Some(tz) => at
            .with_timezone(&tz)
            .format(&format!("%a %Y-%m-%d %H:%M {}", tz.name()))
            .to_string(),
        None => String::new(),
    }
}

fn print_text(now: DateTime<Utc>, rows: &[(&Rotation, Vec<Handoff>)]) {
    println!("On call at {}", instant(now));
    println!();
    let header = ["ROTATION", "ON CALL", "NEXT HANDOFF", "TO", "LOCAL TIME"];
    let mut table: Vec<[String; 5]> = Vec::new();
    for (r, handoffs) in rows {
        let (who, why) = r.on_call_with_source(now);
        let mut first = [
            r.name.clone(),
            format!("@{who}{}", source(r, why)),
            "-".into(),
            "-".into(),
            String::new(),
        ];
        for (i, h) in handoffs.iter().enumerate() {
            let cells = [instant(h.at), format!("@{}", h.user), local(r, h.at)];
            if i == 0 {
                let [a, b, c] = cells;
                first[2] = a;
                first[3] = b;
                first[4] = c;
                table.push(first.clone());
            } else {
                let [a, b, c] = cells;
                table.push([String::new(), String::new(), a, b, c]);
            }
        }
        if handoffs.is_empty() {
            table.push(first);
        }
    }
    // The local-time column only when some rotation has a time zone.
    let columns = if table.iter().any(|row| !row[4].is_empty()) {
        5
    } else {
        4
    };
    let rows: Vec<Vec<String>> = table
        .into_iter()
        .map(|r| r.into_iter().take(columns).collect())
        .collect();
    super::print_table(&header[..columns], &rows);
}

pub(super) fn run(
    config_dir: &Path,
    now: Option<DateTime<Utc>>,
    rotation: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    let config = load_config(config_dir)?;
    let rotations = &config.settings.rotations;
    let chosen: Vec<&Rotation> = match rotation {
        Some(name) => match rotations.get(name) {
            Some(r) => vec![r],
            None => return Err(Failure::usage(unknown_rotation(name, rotations))),
        },
        None => rotations.values().collect(),
    };
    let now = now.unwrap_or_else(Utc::now);
    let rows: Vec<(&Rotation, Vec<Handoff>)> = chosen
        .into_iter()
        .map(|r| (r, r.next_handoffs(now, NEXT_HANDOFFS)))
        .collect();
    match format {
        Format::Json => {
            for (r, handoffs) in &rows {
                let line = JsonLine {
                    rotation: &r.name,
                    on_call: r.on_call(now),
                    next_handoffs: handoffs
                        .iter()
                        .map(|h| JsonHandoff {
                            at: instant(h.at),
                            user: &h.user,
                        })
                        .collect(),
                };
                println!("{}", serde_json::to_string(&line).map_err(Failure::failed)?);
            }
        }
        Format::Text if rows.is_empty() => {
            println!(
                "{}: lever.toml defines no [rotations]",
                config_dir.display()
            );
        }
        Format::Text => print_text(now, &rows),
    }
    Ok(())
}
