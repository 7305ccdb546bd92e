use std::path::Path;

use chrono::Duration;

use super::*;
use crate::config::{Deadline, FollowHandoffs};
use crate::domain::Severity;

fn write_dir(toml: &str, owners: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lever.toml"), toml).unwrap();
    std::fs::write(dir.path().join("OWNERS"), owners).unwrap();
    dir
}

const MINIMAL: &str = "[github]\nfallback_repo = \"acme/security\"\n";

#[test]
fn demo_config_encodes_the_demo_table() {
    let cfg = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")).unwrap();
    let s = &cfg.settings;
    let row = |id: &str| {
        let a = cfg.account(id);
        (
            a.name.clone(),
            a.environment.clone(),
            a.min_severity,
            a.mode,
        )
    };
    assert_eq!(
        row("111111111111"),
        (
            Some("payments-prod".into()),
            "production".into(),
            Severity::High,
            Mode::Enforce
        )
    );
    assert_eq!(
        row("222222222222"),
        (
            Some("payments-staging".into()),
            "staging".into(),
            Severity::Critical,
            Mode::Enforce
        )
    );
    assert_eq!(row("333333333333").3, Mode::Off);
    assert_eq!(
        row("444444444444"),
        (None, "unknown".into(), Severity::Critical, Mode::Enforce)
    );
    let rot = |n: &str| {
        (
            s.rotations[n].base.members.clone(),
            s.rotations[n].base.handoff,
        )
    };
    assert_eq!(
        rot("payments"),
        (
            vec!["alice".to_string(), "bob".to_string()],
            Duration::days(7)
        )
    );
    assert_eq!(
        rot("platform"),
        (
            vec!["dave".to_string(), "erin".to_string()],
            Duration::days(7)
        )
    );
    assert_eq!(
        rot("security"),
        (vec!["sam".to_string()], Duration::days(7))
    );
    assert_eq!(
        s.approvers,
        vec![Approver::User {
            login: "cto-user".into()
        }]
    );
    let owners: Vec<(String, String, Vec<String>)> = cfg
        .owners
        .rules
        .iter()
        .map(|r| {
            (
                r.matchers
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                r.repo.to_string(),
                r.assignees.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect();
    let want = [
        ("*", "acme/security", "@rotation:security"),
        (
            "account:111111111111",
            "acme/payments",
            "@rotation:payments",
        ),
        (
            "account:222222222222",
            "acme/payments",
            "@rotation:payments",
        ),
        (
            "resource:arn:aws:s3:::acme-logs-*",
            "acme/platform",
            "@rotation:platform",
        ),
        (
            "account:111111111111 tag:team=ledger",
            "acme/ledger",
            "@carol",
        ),
    ];
    assert_eq!(owners.len(), want.len());
    for (got, (m, repo, who)) in owners.iter().zip(want) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2.join(" ")),
            (m, repo, who.to_string())
        );
    }
}

#[test]
fn minimal_config_uses_defaults() {
    let dir = write_dir(MINIMAL, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert_eq!(cfg.settings.defaults.min_severity, Severity::Critical);
    assert_eq!(cfg.settings.defaults.mode, Mode::Enforce);
    assert_eq!(cfg.settings.securityhub.updated_by, "lever");
    assert_eq!(cfg.settings.policy.ignore_tag, "lever:ignore");
    assert_eq!(cfg.settings.github.public_repos, PublicRepos::Deny);
    assert_eq!(cfg.settings.defaults.ignore_tags, IgnoreTags::RampUp);
}

#[test]
fn ignore_tags_per_account_inherit_the_defaults_and_errors_are_located() {
    let toml = r#"[github]
fallback_repo = "acme/security"

[defaults]
ignore_tags = "always"

[accounts.111111111111]
ignore_tags = "never"

[accounts.222222222222]
mode = "ramp-up"
"#;
    let dir = write_dir(toml, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert_eq!(cfg.account("111111111111").ignore_tags, IgnoreTags::Never);
    assert_eq!(cfg.account("222222222222").ignore_tags, IgnoreTags::Always);
    assert_eq!(cfg.account("333333333333").ignore_tags, IgnoreTags::Always);

    let bad = format!("{MINIMAL}\n[accounts.111111111111]\nignore_tags = \"sometimes\"\n");
    let dir = write_dir(&bad, "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, 5);
    assert_eq!(
        errs[0].message,
        "accounts.111111111111.ignore_tags: unknown value \"sometimes\" (expected ramp-up, always or never)"
    );
}

#[test]
fn every_error_is_reported_with_file_and_line() {
    let toml = r#"approvers = ["cto-user", "@acme/", "not a login"]

[github]
fallback_repo = "acme/security"
fallback_assignees = ["@rotation:nope"]
allow_public_repos = "yes"

[defaults]
min_severity = "SEVERE"

[accounts.12345]
mode = "sometimes"
colour = "blue"

[rotations.empty]
members = []
start = "2026-11-02T00:00:00Z"
handoff = "7d"

[rotations.bad]
members = ["alice"]
start = "yesterday"
handoff = "7 days"
"#;
    let owners = "* acme/security @rotation:missing\naccount:1 acme/x @a\n";
    let dir = write_dir(toml, owners);
    let errs = Config::load(dir.path()).unwrap_err().0;
    let shown: Vec<String> = errs
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                Path::new(&e.file).file_name().unwrap().to_string_lossy(),
                e.line
            )
        })
        .collect();
    let want = [
        "lever.toml:1",  // @acme/ is not a team
        "lever.toml:1",  // "not a login"
        "lever.toml:6",  // allow_public_repos
        "lever.toml:9",  // SEVERE
        "lever.toml:11", // account id 12345
        "lever.toml:12", // mode
        "lever.toml:13", // colour
        "lever.toml:15", // empty members
        "lever.toml:22", // start
        "lever.toml:23", // handoff
        "lever.toml:5",  // unknown rotation in fallback_assignees
        "OWNERS:2",      // account:1
    ];
    let mut got_sorted = shown.clone();
    got_sorted.sort();
    let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "{errs:#?}");
    let text = ConfigErrors(errs.clone()).to_string();
    for needle in [
        "unknown severity \"SEVERE\"",
        "unknown mode \"sometimes\"",
        "unknown key \"colour\" in [accounts.12345]",
        "members is empty",
        "is not an RFC 3339 instant",
        "unknown unit ' '",
        "unknown rotation \"nope\"",
        "must be 12 digits",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // OWNERS rotation check runs only when both files parse; here lever.toml failed.
    assert!(!text.contains("\"missing\""), "{text}");
}

#[test]
fn owners_rotation_references_are_checked() {
    let dir = write_dir(MINIMAL, "* acme/security @rotation:missing\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 1);
    assert!(errs[0].file.ends_with("OWNERS"));
    assert!(
        errs[0]
            .message
            .contains("unknown rotation \"missing\" (lever.toml defines no [rotations])"),
        "{}",
        errs[0].message
    );
}

#[test]
fn syntax_errors_and_missing_files() {
    let dir = write_dir("[github\nfallback_repo = 1\n", "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    assert!(
        errs.iter()
            .all(|e| e.file.ends_with("lever.toml") && e.line == 1),
        "{errs:#?}"
    );
    assert!(
        errs[0].message.starts_with("TOML syntax error"),
        "{}",
        errs[0].message
    );

    let empty = tempfile::tempdir().unwrap();
    let errs = Config::load(empty.path()).unwrap_err().0;
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.line == 0 && e.message.starts_with("cannot read"))
    );

    let errs = Config::load(Path::new("/definitely/not/here"))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].message, "configuration directory not found");
}

#[test]
fn github_table_is_required() {
    let dir = write_dir("approvers = []\n", "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].message.contains("missing [github] table"));
}

#[test]
fn approvers_and_public_repos_forms() {
    let toml = format!(
        "approvers = [\"cto-user\", \"@acme/security-leads\", \"acme/cto-office\"]\n{MINIMAL}allow_public_repos = [\"acme/oss\"]\n"
    );
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert_eq!(
        cfg.settings.approvers,
        vec![
            Approver::User {
                login: "cto-user".into()
            },
            Approver::Team {
                org: "acme".into(),
                slug: "security-leads".into()
            },
            Approver::Team {
                org: "acme".into(),
                slug: "cto-office".into()
            },
        ]
    );
    assert!(cfg.settings.github.public_repos.allows("ACME/oss"));
    assert!(!cfg.settings.github.public_repos.allows("acme/other"));
}

#[test]
fn repo_name_table() {
    let ok = ["acme/security", "a-b/c.d_e", "A/B"];
    for s in ok {
        assert_eq!(RepoName::parse(s).unwrap().to_string(), s);
    }
    let bad = [
        "acme",
        "/x",
        "acme/",
        "-a/b",
        "a/b/c",
        "a b/c",
        "a/..",
        "acme/sec urity",
    ];
    for s in bad {
        assert!(RepoName::parse(s).is_err(), "{s:?} should be rejected");
    }
}

#[test]
fn escalation_sla_and_digest_settings() {
    let toml = format!(
        r#"{MINIMAL}
[rotations.platform]
members = ["dave", "erin"]
start = "2026-11-02T00:00:00Z"
handoff = "7d"

[calendars.eu]
time_zone = "Europe/Berlin"
working_days = ["mon", "tue", "wed", "thu", "fri"]
working_hours = "09:00-17:00"

[escalation]
backup = ["@rotation:platform"]
calendar = "eu"
follow_handoffs = "all"
[escalation.acknowledge]
critical = "4h"
high = "8h working"
[escalation.accounts.111111111111]
backup = ["@carol"]
acknowledge = {{ critical = "1h" }}

[sla]
reminder = "1d"
[sla.production]
critical = "3d"

[digest]
every = "off"
"#
    );
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    let e = &cfg.settings.escalation;
    let d = |h: i64, w: bool| Deadline {
        after: Duration::hours(h),
        working_time: w,
    };
    assert_eq!(
        e.default.acknowledge.get(&Severity::Critical),
        Some(&d(4, false))
    );
    assert_eq!(
        e.default.acknowledge.get(&Severity::High),
        Some(&d(8, true))
    );
    assert_eq!(e.default.acknowledge.get(&Severity::Medium), None);
    assert_eq!(
        e.default.backup,
        vec![Assignee::Rotation("platform".into())]
    );
    assert_eq!(e.default.follow_handoffs, FollowHandoffs::All);
    let acct = e.policy("111111111111");
    assert_eq!(acct.backup, vec![Assignee::User("carol".into())]);
    assert_eq!(
        acct.acknowledge.get(&Severity::Critical),
        Some(&d(1, false)),
        "overridden"
    );
    assert_eq!(
        acct.acknowledge.get(&Severity::High),
        Some(&d(8, true)),
        "inherited"
    );
    assert_eq!(acct.calendar.as_deref(), Some("eu"));
    assert_eq!(e.policy("999999999999"), &e.default);
    assert_eq!(e.sla.reminder, Duration::days(1));
    assert_eq!(
        e.sla.fix_within("production", Severity::Critical),
        Some(Duration::days(3))
    );
    assert_eq!(
        e.sla.fix_within("production", Severity::High),
        Some(Duration::days(30)),
        "from the default table"
    );
    assert_eq!(
        e.sla.fix_within("staging", Severity::Critical),
        Some(Duration::days(7))
    );
    assert_eq!(e.digest.every, None);
}

#[test]
fn escalation_errors_are_located() {
    let toml = format!(
        r#"{MINIMAL}
[escalation]
backup = ["@rotation:nope", "carol"]
follow_handoffs = "sometimes"
[escalation.acknowledge]
critical = "4 hours"
high = "8h working"
urgent = "1h"
[escalation.accounts.123]
calendar = "missing"

[sla.default]
critical = 7

[digest]
every = "5m"
"#
    );
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    let text = ConfigErrors(errs.clone()).to_string();
    for needle in [
        ":5: escalation.backup: unknown rotation \"nope\"",
        ":5: escalation.backup: \"carol\" must start with @",
        ":6: escalation.follow_handoffs: \"sometimes\" is not unacknowledged, all or never",
        ":8: escalation.acknowledge.critical: \"4 hours\" is not a duration",
        "a deadline counts working time, so a calendar is needed",
        ":10: escalation.acknowledge: unknown severity \"urgent\"",
        ":11: escalation.accounts: account id \"123\" must be 12 digits",
        ":12: escalation.accounts.123.calendar: unknown calendar \"missing\"",
        ":15: sla.default.critical must be a duration",
        ":18: digest.every must be at least 1h",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn github_content_budget_defaults_reads_and_errors() {
    let dir = write_dir(MINIMAL, "* acme/security @sam\n");
    let gh = Config::load(dir.path()).unwrap().settings.github;
    assert_eq!((gh.content_per_minute, gh.content_per_hour), (80, 500));

    let toml = format!("{MINIMAL}content_per_minute = 40\ncontent_per_hour = 1_000\n");
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let gh = Config::load(dir.path()).unwrap().settings.github;
    assert_eq!((gh.content_per_minute, gh.content_per_hour), (40, 1000));

    let toml = format!("{MINIMAL}content_per_minute = 0\ncontent_per_hour = \"500\"\n");
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    let text = ConfigErrors(errs).to_string();
    for needle in [
        "lever.toml:3: github.content_per_minute must be a whole number from 1 to 1000000, found 0",
        "lever.toml:4: github.content_per_hour must be a whole number, found a string",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn exception_maximum_is_read_and_checked() {
    let cfg = |extra: &str| {
        let dir = write_dir(
            &format!("{MINIMAL}\n[exceptions]\n{extra}"),
            "* acme/security @sam\n",
        );
        Config::load(dir.path())
    };
    let defaults = cfg("").unwrap();
    assert_eq!(
        defaults.settings.lifecycle.exceptions.max_expiry,
        Duration::days(365)
    );
    let ok =
        cfg("max_expiry = \"180d\"\nexpiry = { critical = \"30d\", high = \"90d\" }\n").unwrap();
    assert_eq!(
        ok.settings.lifecycle.exceptions.max_expiry,
        Duration::days(180)
    );
    for (extra, needle) in [
        (
            "max_expiry = \"six months\"\n",
            ":5: exceptions.max_expiry: ",
        ),
        (
            "max_expiry = \"0d\"\n",
            ":5: exceptions.max_expiry must be longer than zero",
        ),
        (
            "max_expiry = 180\n",
            ":5: exceptions.max_expiry must be a string",
        ),
        (
            "max_expiry = \"60d\"\nexpiry = { critical = \"30d\", low = \"365d\" }\n",
            ":5: exceptions.max_expiry (60d) is shorter than exceptions.expiry for informational, low, medium, high",
        ),
        (
            "expiry = \"400d\"\n",
            ":5: exceptions.max_expiry (365d) is shorter than exceptions.expiry for informational, low, medium, high, critical",
        ),
    ] {
        let text = ConfigErrors(cfg(extra).unwrap_err().0).to_string();
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn retention_defaults_reads_and_never_goes_below_the_redelivery_window() {
    let cfg = |extra: &str| {
        let dir = write_dir(
            &format!("{MINIMAL}\n[retention]\n{extra}"),
            "* acme/security @sam\n",
        );
        Config::load(dir.path())
    };
    let defaults = cfg("").unwrap().settings.lifecycle.retention;
    assert_eq!(
        (defaults.jobs, defaults.deliveries),
        (Duration::days(30), Duration::days(14))
    );
    let set = cfg("jobs = \"7d\"\ndeliveries = \"8d\"\n")
        .unwrap()
        .settings
        .lifecycle
        .retention;
    assert_eq!(
        (set.jobs, set.deliveries),
        (Duration::days(7), Duration::days(8))
    );
    let text = ConfigErrors(cfg("deliveries = \"3d\"\n").unwrap_err().0).to_string();
    assert!(
        text.contains(":5: retention.deliveries must be at least 8d") && text.contains("found 3d"),
        "{text}"
    );
}

#[test]
fn noise_cap_is_off_by_default_reads_overrides_and_names_bad_input() {
    let cfg = |extra: &str| {
        let dir = write_dir(&format!("{MINIMAL}\n{extra}"), "* acme/security @sam\n");
        Config::load(dir.path())
    };
    let off = cfg("").unwrap().settings.noise;
    assert_eq!(off.limit_for("acme/payments"), None);
    let set = cfg(
        "[noise]\nmax_new_issues_per_product_per_hour = 20\n[noise.products]\n\"Acme/Payments\" = 50\n\"acme/ledger\" = 0\n",
    )
    .unwrap()
    .settings
    .noise;
    assert_eq!(set.limit_for("acme/payments"), Some(50));
    assert_eq!(set.limit_for("acme/ledger"), None);
    assert_eq!(set.limit_for("acme/platform"), Some(20));
    let text = ConfigErrors(
        cfg("[noise]\nmax_new_issues_per_product_per_hour = -1\nper_day = 3\n[noise.products]\n\"not a repo\" = 5\n\"acme/web\" = \"many\"\n")
            .unwrap_err()
            .0,
    )
    .to_string();
    for want in [
        ":5: noise.max_new_issues_per_product_per_hour must be a whole number from 0 to 100000, found -1",
        ":6: unknown key \"per_day\" in [noise]",
        ":8: noise.products: \"not a repo\" is not a repository",
        ":9: noise.products.acme/web must be a whole number, found",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn tags_settings_parse_with_defaults_and_every_error_is_located() {
    let dir = write_dir(MINIMAL, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert_eq!(cfg.settings.tags, TagSettings::default());
    assert_eq!(cfg.settings.tags.role_name, "LeverTagAuditReadOnly");

    let good = format!(
        "{MINIMAL}\n[tags]\nregions = [\"eu-west-1\", \"us-gov-west-1\"]\naccounts = [\"111111111111\"]\n\
         role_name = \"Audit\"\npartition = \"aws-us-gov\"\naudit_every = \"1d\"\nrequests_per_second = 2\ncache_ttl = \"5m\"\n"
    );
    let dir = write_dir(&good, "* acme/security @sam\n");
    let t = Config::load(dir.path()).unwrap().settings.tags;
    assert_eq!(t.regions, vec!["eu-west-1", "us-gov-west-1"]);
    assert_eq!(t.accounts, vec!["111111111111"]);
    assert_eq!(
        t.role_arn("111111111111"),
        "arn:aws-us-gov:iam::111111111111:role/Audit"
    );
    assert_eq!(t.audit_every, Some(Duration::days(1)));
    assert_eq!(t.requests_per_second, 2);
    assert_eq!(t.cache_ttl, Duration::minutes(5));

    // Lines 5.. of the [tags] table, one mistake each, each named (by key or table) and located.
    let bad = format!(
        "{MINIMAL}\n[tags]\nregions = [\"eu-west\"]\naccounts = [\"1111\"]\nrole_name = \"a b\"\n\
         partition = \"aws-mars\"\naudit_every = \"soon\"\nrequests_per_second = 0\ncache_ttl = \"10s\"\nrole = \"x\"\n"
    );
    let dir = write_dir(&bad, "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    let mut got: Vec<(usize, bool)> = errs
        .iter()
        .map(|e| (e.line, e.message.contains("tags")))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (5, true),
            (6, true),
            (7, true),
            (8, true),
            (9, true),
            (10, true),
            (11, true),
            (12, true),
        ],
        "{errs:#?}"
    );
    assert_eq!(
        errs[0].message,
        "tags.regions: \"eu-west\" is not an AWS region (e.g. eu-west-1)"
    );

    // A scheduled audit without regions would fail every run: refused at load, located.
    let bad = format!("{MINIMAL}\n[tags]\naudit_every = \"1d\"\n");
    let dir = write_dir(&bad, "* acme/security @sam\n");
    let errs = Config::load(dir.path()).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, 5);
    assert!(
        errs[0]
            .message
            .starts_with("tags.audit_every: the tag audit needs tags.regions"),
        "{errs:#?}"
    );
}

#[test]
fn ramp_up_schedule_is_read_and_inherited() {
    let toml = format!(
        r#"{MINIMAL}
[defaults]
mode = "ramp-up"
enforce_from = "2027-01-04"
min_severity = "CRITICAL"
min_severity_from = {{ "2027-02-01" = "HIGH", "2027-04-01" = "MEDIUM" }}

[accounts.111111111111]
name = "payments-prod"

[accounts.222222222222]
mode = "enforce"
min_severity = "HIGH"
"#
    );
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let inherited = &cfg.account("111111111111").schedule;
    assert_eq!(inherited.enforce_from, Some(date("2027-01-04")));
    assert_eq!(
        inherited.min_severity_from.get(&date("2027-04-01")),
        Some(&Severity::Medium)
    );
    // An account that sets its own mode and minimum keeps neither part of the defaults'.
    assert!(cfg.account("222222222222").schedule.is_empty());
    // A TOML date works as well as a string.
    let toml = format!(
        "{MINIMAL}\n[accounts.111111111111]\nmode = \"ramp-up\"\nenforce_from = 2027-01-04\n"
    );
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert_eq!(
        cfg.account("111111111111").schedule.enforce_from,
        Some(date("2027-01-04"))
    );
}

/// Bad schedules: every error names the file, the line and the key.
#[test]
#[rustfmt::skip]
fn ramp_up_schedule_errors_table() {
    let cases: [(&str, usize, &str); 6] = [
        ("mode = \"ramp-up\"\nenforce_from = \"2027-13-01\"", 5,
         "accounts.111111111111.enforce_from: \"2027-13-01\" is not a date such as 2027-01-04"),
        ("mode = \"enforce\"\nenforce_from = \"2027-01-04\"", 5,
         "accounts.111111111111.enforce_from needs mode = \"ramp-up\" (the mode is enforce)"),
        ("min_severity = \"CRITICAL\"\nmin_severity_from = { \"next month\" = \"HIGH\" }", 5,
         "accounts.111111111111.min_severity_from: \"next month\" is not a date such as 2027-02-01"),
        ("min_severity = \"CRITICAL\"\nmin_severity_from = { \"2027-02-01\" = \"SEVERE\" }", 5,
         "accounts.111111111111.min_severity_from.2027-02-01: unknown severity \"SEVERE\" (expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL)"),
        ("min_severity = \"HIGH\"\nmin_severity_from = { \"2027-02-01\" = \"MEDIUM\", \"2027-04-01\" = \"CRITICAL\" }", 5,
         "accounts.111111111111.min_severity_from: steps only widen, but CRITICAL from 2027-04-01 is not below MEDIUM (the step of 2027-02-01)"),
        ("min_severity = \"HIGH\"\nmin_severity_from = \"2027-02-01\"", 5,
         "accounts.111111111111.min_severity_from must be a table of dates to severities such as { \"2027-02-01\" = \"HIGH\" }, found a string"),
    ];
    for (body, line, want) in cases {
        let toml = format!("{MINIMAL}[accounts.111111111111]\n{body}\n");
        let dir = write_dir(&toml, "* acme/security @sam\n");
        let errs = Config::load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{body}: {errs:#?}");
        assert!(errs[0].file.ends_with("lever.toml"), "{:?}", errs[0]);
        assert_eq!((errs[0].line, errs[0].message.as_str()), (line, want), "{body}");
    }
}

/// Bad `[exclusions]` and `[settle]`: every error names the file, the line and the key.
#[test]
#[rustfmt::skip]
fn exclusions_and_settle_errors_table() {
    let cases: [(&str, usize, &str); 7] = [
        ("[[exclusions.rules]]\ncontrol = \"EC2.8\"", 3,
         "exclusions.rules[0] needs a reason = \"...\" (shown wherever the exclusion applies)"),
        ("[[exclusions.rules]]\nreason = \"everything\"", 3,
         "exclusions.rules[0] needs at least one of product, control, resource_type or arn (an exclusion of everything is mode = \"off\")"),
        ("[[exclusions.rules]]\ncontrol = \"EC2.8\"\nreason = \" \"", 5,
         "exclusions.rules[0].reason must not be empty"),
        ("[[exclusions.rules]]\ncontrol = \"EC2.8\"\naccounts = [\"1234\"]\nreason = \"x\"", 5,
         "exclusions.rules[0].accounts: \"1234\" must be 12 digits"),
        ("[exclusions]\ncontrol_tower = \"no\"", 4,
         "exclusions.control_tower must be true or false, found a string"),
        ("[settle]\n\"AWS::EC2::Instance\" = \"soon\"", 4,
         "settle.\"AWS::EC2::Instance\": invalid duration \"soon\": unit 's' without a number"),
        ("[settle]\n\"EC2.8\" = \"30d\"", 4,
         "settle.\"EC2.8\" must be longer than zero and at most 7d"),
    ];
    for (body, line, want) in cases {
        let toml = format!("{MINIMAL}{body}\n");
        let dir = write_dir(&toml, "* acme/security @sam\n");
        let errs = Config::load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{body}: {errs:#?}");
        assert!(errs[0].file.ends_with("lever.toml"), "{:?}", errs[0]);
        assert_eq!((errs[0].line, errs[0].message.as_str()), (line, want), "{body}");
    }
    let ok = format!("{MINIMAL}[settle]\n\"AWS::AutoScaling::AutoScalingGroup\" = \"15m\"\n[exclusions]\ncontrol_tower = false\n");
    let dir = write_dir(&ok, "* acme/security @sam\n");
    let cfg = Config::load(dir.path()).unwrap();
    assert!(!cfg.settings.exclusions.control_tower);
    assert_eq!(
        cfg.settings.settle.delays.get("awsautoscalingautoscalinggroup"),
        Some(&Duration::minutes(15))
    );
}

#[test]
fn report_and_dashboard_settings_default_read_and_locate_errors() {
    use super::report::{DEFAULT_EXPIRING, DashboardAccess};
    let cfg = |extra: &str| {
        let dir = write_dir(&format!("{MINIMAL}\n{extra}"), "* acme/security @sam\n");
        Config::load(dir.path())
    };
    let default = cfg("").unwrap().settings;
    assert_eq!(default.report.expiring, DEFAULT_EXPIRING);
    assert_eq!(default.dashboard.access, DashboardAccess::Off);
    let set = cfg("[report]\nexpiring = \"30d\"\n[dashboard]\ngithub_org = \"acme\"\ngithub_team = \"security\"\n")
        .unwrap()
        .settings;
    assert_eq!(set.report.expiring, chrono::Duration::days(30));
    assert_eq!(
        set.dashboard.access,
        DashboardAccess::GitHub {
            org: "acme".into(),
            team: Some("security".into())
        }
    );
    let proxy = cfg("[dashboard]\nproxy_header = \"X-Forwarded-User\"\n").unwrap();
    assert_eq!(
        proxy.settings.dashboard.access,
        DashboardAccess::ProxyHeader {
            header: "X-Forwarded-User".into()
        }
    );
    let errors = |extra: &str| ConfigErrors(cfg(extra).unwrap_err().0).to_string();
    let base = MINIMAL.lines().count() + 1;
    #[rustfmt::skip]
    let rows: &[(&str, usize, &str)] = &[
        ("[report]\nexpiring = \"soon\"\n", 2, "report.expiring:"),
        ("[report]\nexpiring = \"14d\"\nwindow = 3\n", 3, "unknown key \"window\" in [report]"),
        ("[dashboard]\nproxy_header = \"X Forwarded\"\n", 2, "dashboard.proxy_header: \"X Forwarded\" is not an HTTP header name"),
        ("[dashboard]\ngithub_org = \"-acme\"\n", 2, "dashboard.github_org: \"-acme\" is not a GitHub organisation name"),
        ("[dashboard]\ngithub_team = \"security\"\n", 2, "dashboard.github_team needs github_org"),
        ("[dashboard]\nproxy_header = \"X-User\"\ngithub_org = \"acme\"\n", 2, "dashboard: set proxy_header or github_org, not both"),
        ("[dashboard]\n", 1, "[dashboard] needs proxy_header"),
    ];
    for (extra, line, want) in rows {
        let text = errors(extra);
        let located = format!(":{}: {want}", base + line);
        assert!(text.contains(&located), "missing {located:?} in:\n{text}");
    }
}

#[test]
#[rustfmt::skip]
fn securityhub_api_defaults_to_cspm_reads_each_value_and_names_a_wrong_one() {
    let dir = write_dir(MINIMAL, "* acme/security @sam\n");
    assert_eq!(Config::load(dir.path()).unwrap().settings.securityhub.api, SecurityHubApi::Cspm);
    let cases = [
        ("cspm", SecurityHubApi::Cspm, (true, false)),
        ("v2", SecurityHubApi::V2, (false, true)),
        ("both", SecurityHubApi::Both, (true, true)),
    ];
    for (value, want, (cspm, v2)) in cases {
        let toml = format!("{MINIMAL}[securityhub]\napi = \"{value}\"\n");
        let dir = write_dir(&toml, "* acme/security @sam\n");
        let api = Config::load(dir.path()).unwrap().settings.securityhub.api;
        assert_eq!((api, api.cspm(), api.v2(), api.as_str()), (want, cspm, v2, value));
        assert_eq!(api.knows("arn:aws:securityhub:us-east-1::product/aws/securityhub"), cspm);
        assert_eq!(api.knows("arn:aws:securityhub:us-east-1::productv2/aws/securityhub"), v2);
    }
    let toml = format!("{MINIMAL}[securityhub]\napi = \"V2\"\n");
    let dir = write_dir(&toml, "* acme/security @sam\n");
    let text = ConfigErrors(Config::load(dir.path()).unwrap_err().0).to_string();
    let needle = "lever.toml:4: securityhub.api must be \"cspm\", \"v2\" or \"both\", not \"V2\"";
    assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
}
