//! The `lever.toml` and `OWNERS` readers on arbitrary text: they never panic, and every
//! rejection names a file and says why.

use std::path::Path;

use proptest::prelude::*;

use super::{ConfigError, owners, settings};

/// Lines made of pieces of real configuration, so the cases get past the TOML syntax.
fn toml_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        proptest::sample::select(
            &[
                "[github]",
                "[securityhub]",
                "[defaults]",
                "[accounts.111111111111]",
                "[rotations.payments]",
                "[calendars.eu]",
                "[policy]",
                "[lifecycle]",
                "[sla]",
                "[escalation]",
                "[[approvers]]",
                "[exceptions]",
                "[digest]",
            ][..]
        )
        .prop_map(str::to_string),
        (
            proptest::sample::select(
                &[
                    "min_severity",
                    "mode",
                    "environment",
                    "ignore_tags",
                    "members",
                    "timezone",
                    "handoff",
                    "start",
                    "length",
                    "content_per_minute",
                    "max",
                    "login",
                    "team",
                    "ramp_up_until",
                    "labels",
                    "region",
                    "overrides",
                    "holidays",
                ][..]
            ),
            prop_oneof![
                Just("\"HIGH\"".to_string()),
                Just("\"enforce\"".to_string()),
                Just("[\"@a\", \"@b\"]".to_string()),
                Just("2026-01-01T00:00:00Z".to_string()),
                Just("\"7d\"".to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                ".{0,12}".prop_map(|s| format!("{s:?}")),
            ],
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        ".{0,20}",
    ];
    proptest::collection::vec(line, 0..16).prop_map(|l| l.join("\n"))
}

fn owners_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        proptest::sample::select(
            &[
                "*",
                "account:111111111111",
                "tag:team=ledger",
                "resource:arn:aws:s3:::x-*",
                "control:S3.1",
                "region:us-east-1",
                "acme/payments",
                "@carol",
                "@rotation:payments",
                "@acme/team",
                "#",
                "severity:HIGH",
                "type:AwsS3Bucket",
            ][..]
        )
        .prop_map(str::to_string),
        "[^\n]{0,12}",
    ];
    proptest::collection::vec(proptest::collection::vec(word, 0..5), 0..10).prop_map(|lines| {
        lines
            .iter()
            .map(|w| w.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn reasons(errors: &[ConfigError]) {
    assert!(!errors.is_empty(), "a rejection without an error");
    for e in errors {
        assert!(!e.file.is_empty() && !e.message.trim().is_empty(), "{e:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_as_lever_toml(text in prop_oneof![toml_text(), ".{0,200}"]) {
        if let Err(e) = settings::parse("lever.toml", &text, Path::new(".")) {
            reasons(&e);
        }
    }

    #[test]
    fn arbitrary_text_as_owners(text in prop_oneof![owners_text(), ".{0,200}"]) {
        if let Err(e) = owners::parse("OWNERS", &text) {
            reasons(&e);
        }
    }
}
