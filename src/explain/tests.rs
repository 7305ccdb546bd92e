use super::*;
use crate::config::{AccountPolicy, Approver, Mode};
use crate::domain::sample::control_finding;
use crate::domain::{Finding, GroupKey, Severity, Source};

fn account(mode: Mode) -> AccountPolicy {
    AccountPolicy {
        id: Some("111111111111".into()),
        name: Some("payments-prod".into()),
        environment: "production".into(),
        min_severity: Severity::High,
        mode,
        ignore_tags: Default::default(),
        schedule: Default::default(),
    }
}

fn render(findings: &[Finding], mode: Mode, owner: Option<&str>) -> RenderedIssue {
    let r = Renderer::new(None).expect("built-in templates compile");
    let key = GroupKey("control|S3.1|111111111111|us-east-1|arn:aws:s3:::b".into());
    let approvers = [Approver::User {
        login: "cto-user".into(),
    }];
    r.render(&IssueInput {
        group_key: &key,
        findings,
        account: &account(mode),
        owner,
        approvers: &approvers,
        ignore_tag: "lever:ignore",
        notes: &[],
        due: None,
    })
    .unwrap()
}

#[test]
fn body_has_every_section_marker_and_labels() {
    let f = control_finding(
        "S3.1",
        "S3 Block Public Access setting should be enabled",
        Severity::High,
    );
    let issue = render(&[f], Mode::Enforce, Some("alice"));
    assert_eq!(
        issue.title,
        "S3.1: S3 Block Public Access setting should be enabled (payments-prod)"
    );
    for needle in [
        "## Why this matters",
        "## Affected resources",
        "## How to fix",
        "## How to verify",
        "## If it should not be fixed",
        "`cto-approved`",
        "`exception-requested`",
        "Owner: @alice",
        "**HIGH** finding in **payments-prod** (`111111111111`, production, us-east-1)",
        "https://docs.aws.amazon.com/console/securityhub/S3.1/remediation",
        "aws s3control put-public-access-block --account-id 111111111111",
        "- [ ] `arn:aws:s3:us-east-1:111111111111:example/sample-resource`",
        RESOURCES_START,
        RESOURCES_END,
    ] {
        assert!(
            issue.body.contains(needle),
            "missing {needle:?} in:\n{}",
            issue.body
        );
    }
    assert!(
        issue
            .body
            .trim_end()
            .ends_with("<!-- lever:group=control|S3.1|111111111111|us-east-1|arn:aws:s3:::b -->")
    );
    assert_eq!(
        parse_marker(&issue.body),
        Some(GroupKey(
            "control|S3.1|111111111111|us-east-1|arn:aws:s3:::b".into()
        ))
    );
    assert_eq!(
        issue.labels,
        [
            "security-finding",
            "severity:high",
            "env:production",
            "control:s3.1"
        ]
    );
    // The approver is named, not pinged.
    assert!(issue.body.contains("cto-user"));
    assert!(!issue.body.contains("@cto-user"));
    assert!(
        mentions_and_references(&as_github_reads(&outside_code(&issue.body)))
            .iter()
            .all(|m| m.contains("@alice")),
        "only the owner is mentioned"
    );
}

#[test]
fn default_template_serves_any_control_and_other_products() {
    // ACM.1 has no curated explanation: the finding's own description stands in.
    let f = control_finding(
        "ACM.1",
        "Imported and ACM-issued certificates should be renewed after a specified time period",
        Severity::Medium,
    );
    let issue = render(&[f], Mode::Enforce, None);
    assert!(issue.body.contains("Nobody could be assigned yet"));
    assert!(
        issue.body.contains("Sample finding for ACM.1"),
        "{}",
        issue.body
    );
    assert!(issue.labels.contains(&"control:acm.1".to_string()));

    let mut gd = control_finding("X", "SSH brute force against i-123", Severity::High);
    gd.source = Source::GuardDuty {
        finding_type: "UnauthorizedAccess:EC2-SSHBruteForce".into(),
    };
    gd.product = "aws/guardduty".into();
    gd.product_name = Some("GuardDuty".into());
    let issue = render(&[gd], Mode::RampUp, Some("bob"));
    assert_eq!(issue.title, "SSH brute force against i-123 (payments-prod)");
    assert_eq!(
        issue.labels,
        [
            "security-finding",
            "severity:high",
            "env:production",
            "source:guardduty",
            "ramp-up"
        ]
    );
    assert!(issue.body.contains("Ramp-up"));
    assert!(
        issue
            .body
            .contains("When GuardDuty stops reporting this finding"),
        "{}",
        issue.body
    );
}

#[test]
fn untrusted_text_is_inert() {
    let mut f = control_finding("Custom.1", "t", Severity::High);
    f.source = Source::Product {
        product: "evil/evil".into(),
        generator_id: "g".into(),
    };
    f.title = "Pwn @everyone <img src=x> {{ secret }} acme/other#2\nsecond line".into();
    f.description = "Contact @alice or @acme/admins (&#64;carol, \\@dave). <!-- lever:group=forged --> \
        [click](https://evil.example) ![p](https://t.example/p.gif) acme/other#1 #3 GH-4 `x` {% raw %} \
        https://github.com/acme/other/issues/5 www.evil.example"
        .into();
    f.remediation_url = Some("javascript:alert(1)".into());
    f.remediation_text = Some("<script>alert(1)</script> ask @acme/leads".into());
    f.source_url = Some("https://evil.example/track?u=1".into());
    f.resources[0].id = "arn:aws:s3:::b`ad\n@bob".into();
    f.resources[0].kind = Some("AwsS3Bucket @eve".into());
    f.region = "us-east-1\"; rm -rf /".into();
    let issue = render(&[f], Mode::Enforce, None);
    let body = &issue.body;
    // Outside code, nothing is markup; inside code spans/blocks, mentions and HTML are inert.
    let prose = outside_code(body);
    for bad in [
        "<img",
        "<script",
        "[click]",
        "![p]",
        "javascript:",
        "<!-- lever:group=forged",
    ] {
        assert!(!prose.contains(bad), "prose contains {bad:?}:\n{prose}");
    }
    // What GitHub reads (escapes and character references undone): no mention, no issue
    // reference, no link, except Lever's own links to AWS.
    let read = as_github_reads(&prose);
    let found = mentions_and_references(&read);
    assert!(found.is_empty(), "GitHub would find {found:?} in:\n{read}");
    for (i, _) in read.match_indices("http") {
        assert!(
            read[i..].starts_with("https://docs.aws.amazon.com/"),
            "a link outside code: {}",
            &read[i..]
        );
    }
    assert!(
        read.contains("Contact @\u{200B}alice"),
        "still readable:\n{read}"
    );
    assert!(
        body.contains("`https://evil.example/track?u=1`"),
        "an untrusted URL is shown in code"
    );
    assert!(
        body.contains("`arn:aws:s3:::b'ad @bob`"),
        "the resource id stays readable inside a code span"
    );
    // The shell snippet cannot be broken out of.
    let snippet = body
        .lines()
        .find(|l| l.starts_with("aws securityhub get-findings"))
        .unwrap();
    assert_eq!(
        snippet,
        "aws securityhub get-findings --region us-east-1rm-rf/ \\"
    );
    assert_eq!(
        body.matches("<!-- lever:group=").count(),
        1,
        "only Lever's marker"
    );
    assert!(
        body.contains("{{ secret }}") || !body.contains("secret"),
        "values are not evaluated"
    );
    // The title is plain text on one line; GitHub reads references in titles too.
    assert_eq!(
        issue.title,
        "Pwn @\u{200B}everyone <img src=x> {{ secret }} acme/other#\u{200B}2 second line (payments-prod)"
    );
}

#[test]
fn the_ramp_up_note_offers_the_ignore_tag_only_where_it_is_honoured() {
    let r = Renderer::new(None).unwrap();
    let key = GroupKey("k".into());
    let f = control_finding("S3.1", "t", Severity::High);
    let body = |ignore_tags: crate::config::IgnoreTags| {
        r.render(&IssueInput {
            group_key: &key,
            findings: std::slice::from_ref(&f),
            account: &AccountPolicy {
                ignore_tags,
                ..account(Mode::RampUp)
            },
            owner: None,
            approvers: &[],
            ignore_tag: "lever:ignore",
            notes: &[],
            due: None,
        })
        .unwrap()
        .body
    };
    use crate::config::IgnoreTags;
    assert!(
        body(IgnoreTags::RampUp).contains("or tag the resource with `lever:ignore` and a reason")
    );
    assert!(body(IgnoreTags::Always).contains("or tag the resource"));
    assert!(!body(IgnoreTags::Never).contains("tag the resource"));
    assert!(body(IgnoreTags::Never).contains("please fix it."));
}

#[test]
fn long_resource_lists_end_with_and_n_more_and_fit_github() {
    let mut findings = Vec::new();
    for i in 0..3000 {
        let mut f = control_finding(
            "EC2.19",
            "Security groups should not allow unrestricted access to ports with high risk",
            Severity::Critical,
        );
        f.resources[0].id = format!(
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-{i:08}{}",
            // 200 lines of ~170 characters fit beside EC2.19's curated explanation.
            "x".repeat(100)
        );
        findings.push(f);
    }
    let issue = render(&findings, Mode::Enforce, Some("alice"));
    assert!(
        issue.body.chars().count() <= MAX_BODY_CHARS,
        "{} chars",
        issue.body.chars().count()
    );
    assert!(
        issue
            .body
            .contains(&format!("- and {} more", 3000 - MAX_LISTED_RESOURCES)),
        "listed 200 of 3000"
    );
    assert!(issue.body.contains("sg-00000000"));

    // Even longer lines force the list to shrink further.
    for f in findings.iter_mut() {
        f.resources[0].id.push_str(&"y".repeat(900));
    }
    let issue = render(&findings, Mode::Enforce, Some("alice"));
    assert!(issue.body.chars().count() <= MAX_BODY_CHARS);
    let listed = issue.body.matches("- [ ] `").count();
    assert!(
        listed < MAX_LISTED_RESOURCES && listed > 0,
        "listed {listed}"
    );
    assert!(
        issue
            .body
            .contains(&format!("- and {} more", 3000 - listed))
    );
}

#[test]
fn fixed_resources_are_ticked() {
    let a = control_finding("S3.1", "t", Severity::High);
    let mut b = a.clone();
    b.resources[0].id = "arn:aws:s3:::fixed".into();
    b.compliance = Some(crate::domain::ComplianceStatus::Passed);
    let issue = render(&[a, b], Mode::Enforce, Some("alice"));
    assert!(
        issue.body.contains("- [x] `arn:aws:s3:::fixed`"),
        "{}",
        issue.body
    );
    assert!(issue.body.contains("- [ ] `arn:aws:s3:us-east-1"));
}

#[test]
fn labels_are_lowercase_and_short() {
    let mut f = control_finding("S3.1", "t", Severity::Critical);
    let mut acct = account(Mode::Enforce);
    acct.environment = "Production EU (Frankfurt) with a very long environment name indeed".into();
    f.source = Source::Product {
        product: "x/y".into(),
        generator_id: "g".into(),
    };
    f.product = "aquasecurity/aquasecurity".into();
    let labels = labels(&f, &acct);
    for l in &labels {
        assert!(l.chars().count() <= 50, "{l}");
        assert_eq!(l, &l.to_lowercase());
        assert!(!l.contains(' '));
    }
    assert_eq!(labels[3], "source:aquasecurity");
}

#[test]
fn override_directory_replaces_and_adds_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("controls")).unwrap();
    std::fs::write(dir.path().join("title.txt"), "[sec] {{ title }}").unwrap();
    std::fs::write(
        dir.path().join("controls/Lambda.1.md"),
        "{% extends \"issue.md\" %}{% block fix %}Use the internal runbook.{% endblock fix %}",
    )
    .unwrap();
    let r = Renderer::new(Some(dir.path())).unwrap();
    let f = control_finding("Lambda.1", "t", Severity::High);
    let key = GroupKey("k".into());
    let out = r
        .render(&IssueInput {
            group_key: &key,
            findings: &[f],
            account: &account(Mode::Enforce),
            owner: None,
            approvers: &[],
            ignore_tag: "lever:ignore",
            notes: &[],
            due: None,
        })
        .unwrap();
    assert!(out.title.starts_with("[sec] "), "{}", out.title);
    assert!(out.body.contains("Use the internal runbook."));

    std::fs::write(dir.path().join("issue.md"), "{% if %}broken").unwrap();
    let err = Renderer::new(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("issue.md"), "{err}");
}

/// A small valid curated file for `id`, with the given `why`.
fn curated_toml(id: &str, why: &str) -> String {
    format!(
        r#"id = "{id}"
why = "{why}"
matters_less = "Never."
[fix]
summary = "Fix it."
no_iac = "Console only."
cli = "aws lambda remove-permission --function-name <function-name> --region <region>"
side_effects = "None."
[verify]
how = "It is gone."
command = "aws lambda get-policy --function-name <function-name> --region <region>"
[exception]
reasons = ["A reason."]
evidence = ["Some evidence."]
"#
    )
}

#[test]
fn override_directory_adds_curated_explanations_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("controls")).unwrap();
    let file = dir.path().join("controls/Lambda.1.toml");
    std::fs::write(&file, curated_toml("Lambda.1", "Our own words.")).unwrap();
    let r = Renderer::new(Some(dir.path())).unwrap();
    assert_eq!(
        r.curated().get("Lambda.1").map(|c| c.why.as_str()),
        Some("Our own words.")
    );
    // Every built-in explanation is still there.
    let builtin = Renderer::new(None).unwrap();
    for c in builtin.curated().all() {
        assert!(r.curated().get(&c.id).is_some(), "{} lost", c.id);
    }

    let f = control_finding("Lambda.1", "t", Severity::High);
    let key = GroupKey("k".into());
    let input = IssueInput {
        group_key: &key,
        findings: std::slice::from_ref(&f),
        account: &account(Mode::Enforce),
        owner: None,
        approvers: &[],
        ignore_tag: "lever:ignore",
        notes: &[],
        due: None,
    };
    let body = r.render(&input).unwrap().body;
    assert!(body.contains("Our own words."), "{body}");
    assert!(
        body.contains("aws lambda get-policy --function-name <function-name> --region us-east-1")
    );
    // A controls/<ID>.md template takes precedence for the blocks it overrides.
    std::fs::write(
        dir.path().join("controls/Lambda.1.md"),
        "{% extends \"issue.md\" %}{% block why %}The runbook says so.{% endblock why %}",
    )
    .unwrap();
    let r = Renderer::new(Some(dir.path())).unwrap();
    let body = r.render(&input).unwrap().body;
    assert!(body.contains("The runbook says so."), "{body}");
    assert!(!body.contains("Our own words."), "{body}");
    assert!(
        body.contains("It is gone."),
        "the other curated blocks stay: {body}"
    );

    std::fs::write(
        &file,
        curated_toml("Lambda.1", "x").replace("[verify]", "[verfy]"),
    )
    .unwrap();
    let err = Renderer::new(Some(dir.path())).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: verfy: unknown field", file.display())),
        "{err}"
    );
    std::fs::write(&file, curated_toml("Lambda.1", "ask @alice")).unwrap();
    let err = Renderer::new(Some(dir.path())).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: why: prose may not hold '@'", file.display())),
        "{err}"
    );
}

#[test]
fn marker_round_trip_rejects_forgeries() {
    assert_eq!(
        parse_marker("x <!-- lever:group=a|b --> y"),
        Some(GroupKey("a|b".into()))
    );
    assert_eq!(parse_marker("<!-- lever:group=a b -->"), None);
    assert_eq!(parse_marker("no marker"), None);
    assert_eq!(
        parse_marker("<!-- lever:group=first --> <!-- lever:group=second -->"),
        Some(GroupKey("second".into()))
    );
}

/// The body with fenced code blocks and inline code spans removed.
fn outside_code(body: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in body.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// The text of `prose` (already without code) as GitHub reads it: backslash escapes and
/// character references (numeric, and the names of `@`, `#`, `/`, `:`) undone.
fn as_github_reads(prose: &str) -> String {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1).is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '&'
            && let Some(len) = chars[i..].iter().take(12).position(|c| *c == ';')
        {
            let name: String = chars[i + 1..i + len].iter().collect();
            let decoded = match name.as_str() {
                "commat" => Some('@'),
                "num" => Some('#'),
                "sol" => Some('/'),
                "colon" => Some(':'),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                n => n.strip_prefix('#').and_then(|n| {
                    let v = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse().ok(),
                    };
                    v.and_then(char::from_u32)
                }),
            };
            if let Some(d) = decoded {
                out.push(d);
                i += len + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// `@login`, `#N` and `GH-N` as GitHub's patterns see them (a non-word character before, a
/// login or number right after).
fn mentions_and_references(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let after_gh = *c == '-'
            && i >= 2
            && chars[i - 2].eq_ignore_ascii_case(&'g')
            && chars[i - 1].eq_ignore_ascii_case(&'h');
        let hit = match c {
            '@' => (i == 0 || !word(chars[i - 1])) && next.is_ascii_alphanumeric(),
            '#' => next.is_ascii_digit(),
            _ => after_gh && next.is_ascii_digit(),
        };
        if hit {
            found.push(
                chars[i.saturating_sub(8)..(i + 8).min(chars.len())]
                    .iter()
                    .collect(),
            );
        }
    }
    found
}

#[path = "quality_tests.rs"]
mod quality;

/// One renderer serves every account and region: whatever it rendered before, in whatever
/// order, an issue shows its own account's and region's commands, exactly as a fresh renderer
/// would render it (nothing of one issue's curated view leaks into the next).
#[test]
fn curated_views_are_reused_only_for_their_own_account_and_region() {
    let shared = Renderer::new(None).expect("built-in templates compile");
    let key = GroupKey("control|CloudWatch.15|x".into());
    let places = [
        ("111111111111", "us-east-1"),
        ("222222222222", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("333333333333", "ap-southeast-2"),
    ];
    let render = |r: &Renderer, (account_id, region): (&str, &str)| {
        let mut f = control_finding(
            "CloudWatch.15",
            "CloudWatch alarms should have specified actions configured",
            Severity::High,
        );
        f.account_id = account_id.into();
        f.region = region.into();
        let mut policy = account(Mode::Enforce);
        policy.id = Some(account_id.into());
        r.render(&IssueInput {
            group_key: &key,
            findings: &[f],
            account: &policy,
            owner: None,
            approvers: &[],
            ignore_tag: "lever:ignore",
            notes: &[],
            due: None,
        })
        .unwrap()
    };
    for round in 0..3 {
        // Forwards, then backwards, then forwards again: every view is asked for after others.
        let order: Vec<_> = if round == 1 {
            places.iter().rev().copied().collect()
        } else {
            places.to_vec()
        };
        for place in order {
            let issue = render(&shared, place);
            let fresh = render(&Renderer::new(None).unwrap(), place);
            assert_eq!(issue, fresh, "{place:?}, round {round}");
            let (account_id, region) = place;
            assert!(
                issue
                    .body
                    .contains(&format!("arn:aws:sns:{region}:{account_id}:")),
                "{place:?}: {}",
                issue.body
            );
            for other in places.iter().filter(|p| **p != place) {
                let (a, r) = other;
                assert!(
                    !issue.body.contains(&format!("arn:aws:sns:{r}:{a}:")),
                    "{place:?} shows the commands of {other:?}: {}",
                    issue.body
                );
            }
        }
    }
}

/// The checklist as it was first written (a `format!` per part), the oracle of the one-string
/// [`resources_section`].
fn plain_resources_section(resources: &[ResourceLine], listed: usize) -> String {
    let mut s = String::from(RESOURCES_START);
    s.push('\n');
    for r in resources.iter().take(listed) {
        let mut extra = Vec::new();
        if let Some(k) = &r.kind {
            extra.push(inert::prose(k));
        }
        if let Some(reg) = &r.region {
            extra.push(inert::prose(reg));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        let what = match &r.vulnerability {
            Some((id, packages)) => format!(
                "`{}` in `{}` on `{}`",
                inert::code(id),
                inert::code(&packages.join(", ")),
                inert::code(&r.id)
            ),
            None => format!("`{}`", inert::code(&r.id)),
        };
        match &r.ignored {
            Some(tag) if !r.fixed => s.push_str(&format!(
                "- [x] ~~{what}~~{extra}: ignored, tagged `{}`\n",
                inert::code(tag)
            )),
            _ => s.push_str(&format!(
                "- [{}] {what}{extra}\n",
                if r.fixed { "x" } else { " " },
            )),
        }
    }
    if resources.len() > listed {
        s.push_str(&format!("- and {} more\n", resources.len() - listed));
    }
    s.push_str(RESOURCES_END);
    s
}

/// Every combination of kind, region, fixed, vulnerability and ignore tag (hostile text
/// included), every cut: the checklist is the plain implementation's.
#[test]
fn the_checklist_is_what_the_plain_implementation_writes() {
    let texts = [None, Some("AwsEc2Instance"), Some("@eve <b>`x`</b>\n# h")];
    let mut lines = Vec::new();
    for kind in texts {
        for region in [None, Some("us-east-1"), Some("eu-west-1`")] {
            for fixed in [false, true] {
                for vulnerability in [
                    None,
                    Some((
                        "CVE-2024-1".to_string(),
                        vec!["a 1.0".to_string(), "b`".into()],
                    )),
                ] {
                    for ignored in [None, Some("lever:ignore=legacy `box`")] {
                        lines.push(ResourceLine {
                            id: format!("arn:aws:ec2:::instance/i-{}", lines.len()),
                            kind: kind.map(str::to_string),
                            region: region.map(str::to_string),
                            fixed,
                            vulnerability: vulnerability.clone(),
                            ignored: ignored.map(str::to_string),
                        });
                    }
                }
            }
        }
    }
    for listed in [0, 1, 7, lines.len()] {
        assert_eq!(
            resources_section(&lines, listed),
            plain_resources_section(&lines, listed),
            "listed {listed}"
        );
    }
}
