//! `lever oncall` through the real binary: exact JSON lines, text output and exit codes.

use std::path::Path;
use std::process::Output;

use crate::support::bin::lever;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const NOW: &str = "2026-11-23T12:00:00Z";

/// Payments in the demo: alice/bob weekly from 2026-11-02T00:00:00Z; at NOW it is bob's week.
const DEMO_PAYMENTS: &str = r#"{"rotation":"payments","on_call":"bob","next_handoffs":[{"at":"2026-11-30T00:00:00Z","user":"alice"},{"at":"2026-12-07T00:00:00Z","user":"bob"},{"at":"2026-12-14T00:00:00Z","user":"alice"},{"at":"2026-12-21T00:00:00Z","user":"bob"},{"at":"2026-12-28T00:00:00Z","user":"alice"}]}"#;
const DEMO_PLATFORM: &str = r#"{"rotation":"platform","on_call":"erin","next_handoffs":[{"at":"2026-11-30T00:00:00Z","user":"dave"},{"at":"2026-12-07T00:00:00Z","user":"erin"},{"at":"2026-12-14T00:00:00Z","user":"dave"},{"at":"2026-12-21T00:00:00Z","user":"erin"},{"at":"2026-12-28T00:00:00Z","user":"dave"}]}"#;
const DEMO_SECURITY: &str = r#"{"rotation":"security","on_call":"sam","next_handoffs":[]}"#;

#[test]
fn demo_json_is_one_exact_line_per_rotation() {
    let out = lever(&[
        "oncall",
        "--config",
        "examples/demo",
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines, [DEMO_PAYMENTS, DEMO_PLATFORM, DEMO_SECURITY]);
    // And each line is the documented shape.
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 3, "{line}");
        for h in v["next_handoffs"].as_array().unwrap() {
            assert!(h["at"].as_str().unwrap().ends_with('Z'), "{line}");
            assert!(h["user"].is_string(), "{line}");
        }
    }
}

#[test]
#[rustfmt::skip]
fn one_rotation_and_other_instants() {
    let cases: &[(&str, &str, &str)] = &[
        ("payments", NOW, DEMO_PAYMENTS),
        // The exact handoff instant belongs to the incoming person.
        ("payments", "2026-11-09T00:00:00Z", r#"{"rotation":"payments","on_call":"bob","next_handoffs":[{"at":"2026-11-16T00:00:00Z","user":"alice"},{"at":"2026-11-23T00:00:00Z","user":"bob"},{"at":"2026-11-30T00:00:00Z","user":"alice"},{"at":"2026-12-07T00:00:00Z","user":"bob"},{"at":"2026-12-14T00:00:00Z","user":"alice"}]}"#),
        // Before the start: the first member.
        ("platform", "2026-10-01T00:00:00+02:00", r#"{"rotation":"platform","on_call":"dave","next_handoffs":[{"at":"2026-11-09T00:00:00Z","user":"erin"},{"at":"2026-11-16T00:00:00Z","user":"dave"},{"at":"2026-11-23T00:00:00Z","user":"erin"},{"at":"2026-11-30T00:00:00Z","user":"dave"},{"at":"2026-12-07T00:00:00Z","user":"erin"}]}"#),
        ("security", NOW, DEMO_SECURITY),
    ];
    for (rotation, now, want) in cases {
        let out = lever(&["oncall", "--config", "examples/demo", "--now", now, "--rotation", rotation, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{rotation} {now}: {}", stderr(&out));
        assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), [*want], "{rotation} {now}");
    }
}

#[test]
fn text_output_is_a_table() {
    let out = lever(&["oncall", "--config", "examples/demo", "--now", NOW]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "On call at 2026-11-23T12:00:00Z");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["ROTATION", "ON", "CALL", "NEXT", "HANDOFF", "TO"]
    );
    let rows: Vec<Vec<&str>> = lines[3..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["payments", "@bob", "2026-11-30T00:00:00Z", "@alice"]
    );
    assert_eq!(rows[1], ["2026-12-07T00:00:00Z", "@bob"]);
    assert_eq!(
        rows[5],
        ["platform", "@erin", "2026-11-30T00:00:00Z", "@dave"]
    );
    assert_eq!(rows[10], ["security", "@sam", "-", "-"]);
    assert_eq!(rows.len(), 11, "{text}");
}

#[test]
fn unknown_rotation_and_config_errors_exit_2() {
    let out = lever(&[
        "oncall",
        "--config",
        "examples/demo",
        "--rotation",
        "nope",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert_eq!(
        stderr(&out).trim(),
        "lever oncall: unknown rotation \"nope\" (lever.toml defines: payments, platform, security)"
    );

    let dir = tempfile::tempdir().unwrap();
    let toml = "[github]\nfallback_repo = \"acme/security\"\n\n[rotations.payments]\nmembers = []\nstart = \"2026-11-02T00:00:00Z\"\nhandoff = \"7d\"\ntime_zone = \"Europe/Berln\"\n";
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    std::fs::write(dir.path().join("OWNERS"), "* acme/security @sam\n").unwrap();
    let out = lever(&["oncall", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    let file = dir.path().join("lever.toml").display().to_string();
    assert!(
        err.contains(&format!("{file}:4: rotations.payments: members is empty")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:8: rotations.payments.time_zone: unknown time zone"
        )),
        "{err}"
    );

    let out = lever(&["oncall", "--config", "examples/demo", "--now", "tomorrow"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = lever(&["oncall", "--config", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

fn write_config(dir: &Path, rotations: &str) {
    let toml = format!(
        "[github]\nfallback_repo = \"acme/security\"\n\n\
         [calendars.eu-office]\ntime_zone = \"Europe/Berlin\"\n\
         working_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\n\
         working_hours = \"09:00-17:00\"\nholidays = [\"2026-12-24\", \"2026-12-25\"]\n\n{rotations}"
    );
    std::fs::write(dir.join("lever.toml"), toml).unwrap();
    std::fs::write(dir.join("OWNERS"), "* acme/security @rotation:payments\n").unwrap();
}

#[test]
fn layers_overrides_and_time_zones_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        r#"[rotations.payments]
members = ["alice", "bob"]
start = "2026-11-02T09:00:00+01:00"
handoff = "1w"
time_zone = "Europe/Berlin"

[[rotations.payments.layers]]
members = ["carol", "dave"]
start = "2026-11-02T09:00:00+01:00"
handoff = "1d"
calendar = "eu-office"

[[rotations.payments.overrides]]
user = "erin"
from = "2026-12-20T00:00:00Z"
to = "2027-01-03T00:00:00Z"

[rotations.spring]
members = ["ann", "ben"]
start = "2026-03-16T09:00:00+01:00"
handoff = "1w"
time_zone = "Europe/Berlin"
"#,
    );
    let config = dir.path().to_str().unwrap();
    // Friday 2026-12-18 13:00 in Berlin: the working-hours layer (day 46: carol) is on call;
    // at 17:00 the base (week 6: alice); on Sunday the override (erin) until 2027-01-03; then
    // the base again (week 8: alice); Monday 01-04 09:00 both the base (bob) and the layer
    // (day 63: dave) change, the layer wins; at 17:00 bob.
    let payments = r#"{"rotation":"payments","on_call":"carol","next_handoffs":[{"at":"2026-12-18T16:00:00Z","user":"alice"},{"at":"2026-12-20T00:00:00Z","user":"erin"},{"at":"2027-01-03T00:00:00Z","user":"alice"},{"at":"2027-01-04T08:00:00Z","user":"dave"},{"at":"2027-01-04T16:00:00Z","user":"bob"}]}"#;
    // Weekly at 09:00 Berlin: 08:00Z in winter, 07:00Z in summer.
    let spring = r#"{"rotation":"spring","on_call":"ann","next_handoffs":[{"at":"2026-03-23T08:00:00Z","user":"ben"},{"at":"2026-03-30T07:00:00Z","user":"ann"},{"at":"2026-04-06T07:00:00Z","user":"ben"},{"at":"2026-04-13T07:00:00Z","user":"ann"},{"at":"2026-04-20T07:00:00Z","user":"ben"}]}"#;
    let cases = [
        ("payments", "2026-12-18T12:00:00Z", payments),
        ("spring", "2026-03-16T08:00:00Z", spring),
    ];
    for (rotation, now, want) in cases {
        let out = lever(&[
            "oncall",
            "--config",
            config,
            "--now",
            now,
            "--rotation",
            rotation,
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).lines().collect::<Vec<_>>(),
            [want],
            "{rotation}"
        );
    }

    // Text: who is on call and why, with local times for rotations with a time zone.
    let out = lever(&[
        "oncall",
        "--config",
        config,
        "--now",
        "2026-12-21T12:00:00Z",
        "--rotation",
        "payments",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().nth(3).unwrap();
    assert!(
        row.starts_with("payments  @erin (override until 2027-01-03T00:00:00Z)"),
        "{text}"
    );
    assert!(
        row.ends_with("2027-01-03T00:00:00Z  @alice  Sun 2027-01-03 01:00 Europe/Berlin"),
        "{text}"
    );
}
