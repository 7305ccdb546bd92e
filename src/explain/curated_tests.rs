use super::*;

/// A minimal valid file, the base the rule tests break one field of.
const GOOD: &str = r#"
id = "S3.8"
why = "Anyone can read the `reports` bucket."
matters_less = "A public website bucket."
links = ["https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html"]

[fix]
summary = "Block public access on the bucket."
terraform = """
resource "aws_s3_bucket_public_access_block" "this" {
  bucket            = "<bucket-name>"
  block_public_acls = true
}
"""
terraform_broken = """
resource "aws_s3_bucket_public_access_block" "this" {
  bucket            = "<bucket-name>"
  block_public_acls = false
}
"""
cli = "aws s3api put-public-access-block --bucket <bucket-name> --region <region>"
side_effects = "Public readers lose access."

[verify]
how = "All four settings show `true`."
command = "aws s3api get-public-access-block --bucket <bucket-name>"

[exception]
reasons = ["A public website."]
evidence = ["The bucket holds only public files."]

[checkov]
terraform = ["CKV_AWS_53"]
"#;

fn good() -> Curated {
    Curated::parse("S3.8.toml", GOOD).expect("GOOD parses")
}

fn catalog() -> &'static Catalog {
    Catalog::embedded()
}

fn fields(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn builtin_files_all_load_and_pass_every_rule() {
    let set = CuratedSet::builtin(catalog()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.len(), BUILTIN_CURATED.len());
    assert!(
        !set.is_empty(),
        "issue-templates/controls has no .toml file"
    );
    for (name, _) in BUILTIN_CURATED {
        let id = name.strip_suffix(".toml").unwrap();
        assert_eq!(set.get(id).map(|c| c.id.as_str()), Some(id));
    }
}

#[test]
fn the_good_example_has_no_problems() {
    assert_eq!(good().problems(catalog()), []);
}

#[test]
fn parse_errors_name_the_file_the_field_and_the_line() {
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "not TOML",
            "id = \"S3.8\"\nwhy = \"unterminated\n".to_string(),
            "(file)",
            "line 2",
        ),
        (
            "unknown field",
            GOOD.replace("terraform_broken =", "terraform_brokn ="),
            "fix.terraform_brokn",
            "expected one of",
        ),
        (
            "missing field",
            GOOD.replace("side_effects = \"Public readers lose access.\"", ""),
            "fix",
            "side_effects",
        ),
        (
            "wrong type",
            GOOD.replace("reasons = [\"A public website.\"]", "reasons = \"one\""),
            "exception.reasons",
            "expected a sequence",
        ),
        (
            "id and file name",
            GOOD.replace("\"S3.8\"", "\"S3.9\""),
            "id",
            "S3.9",
        ),
    ];
    for (what, text, field, needle) in cases {
        let err = Curated::parse("controls/S3.8.toml", text).unwrap_err();
        assert_eq!(err.file, "controls/S3.8.toml", "{what}");
        assert_eq!(err.problems.len(), 1, "{what}: {err}");
        assert_eq!(err.problems[0].field, *field, "{what}: {err}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("controls/S3.8.toml: {field}: ")),
            "{what}: {shown}"
        );
        assert!(shown.contains(needle), "{what}: {needle:?} not in {shown}");
    }
}

/// Each rule of the format, broken once on an in-memory explanation: the problem names the
/// field at fault.
#[test]
fn every_rule_is_enforced_and_names_the_field() {
    type Breaker = fn(&mut Curated);
    let cases: &[(&str, Breaker, &str)] = &[
        ("empty why", |c| c.why = " \n".into(), "why"),
        ("mention", |c| c.why = "ask @alice".into(), "why"),
        (
            "issue reference",
            |c| c.matters_less = "see acme/x#12".into(),
            "matters_less",
        ),
        (
            "HTML",
            |c| c.fix.summary = "<img src=x>".into(),
            "fix.summary",
        ),
        (
            "link in prose",
            |c| c.fix.side_effects = "read https://example.com".into(),
            "fix.side_effects",
        ),
        (
            "markdown link",
            |c| c.verify.how = "[docs](x)".into(),
            "verify.how",
        ),
        (
            "backslash",
            |c| c.verify.how = "a \\ b".into(),
            "verify.how",
        ),
        (
            "code block in prose",
            |c| c.exception.reasons = vec!["```sh".into()],
            "exception.reasons[0]",
        ),
        (
            "no reasons",
            |c| c.exception.reasons.clear(),
            "exception.reasons",
        ),
        (
            "no evidence",
            |c| c.exception.evidence.clear(),
            "exception.evidence",
        ),
        (
            "three backticks in a snippet",
            |c| c.fix.cli = "echo ```".into(),
            "fix.cli",
        ),
        (
            "empty snippet",
            |c| c.fix.cdk = Some(String::new()),
            "fix.cdk",
        ),
        (
            "empty command",
            |c| c.verify.command = "  ".into(),
            "verify.command",
        ),
        (
            "no IaC and no reason",
            |c| {
                c.fix.terraform = None;
                c.fix.terraform_broken = None;
                c.checkov.terraform.clear();
            },
            "fix",
        ),
        (
            "mention in no_iac",
            |c| c.fix.no_iac = Some("ask @ops".into()),
            "fix.no_iac",
        ),
        (
            "checkov without a broken snippet",
            |c| c.fix.terraform_broken = None,
            "checkov.terraform",
        ),
        (
            "checkov id",
            |c| c.checkov.terraform = vec!["rm -rf".into()],
            "checkov.terraform",
        ),
        (
            "http link",
            |c| c.links = vec!["http://docs.aws.amazon.com/x".into()],
            "links",
        ),
        (
            "link host",
            |c| c.links = vec!["https://evil.example/x".into()],
            "links",
        ),
        (
            "host look-alike",
            |c| c.links = vec!["https://docs.aws.amazon.com.evil.example/x".into()],
            "links",
        ),
        (
            "credentials in a link",
            |c| c.links = vec!["https://user@docs.aws.amazon.com/x".into()],
            "links",
        ),
        (
            "markdown breaking link",
            |c| c.links = vec!["https://docs.aws.amazon.com/a)b".into()],
            "links",
        ),
        ("unknown control", |c| c.id = "Nope.99".into(), "id"),
        ("id spelled otherwise", |c| c.id = "s3.8".into(), "id"),
    ];
    for (what, breaker, field) in cases {
        let mut c = good();
        breaker(&mut c);
        let problems = c.problems(catalog());
        assert_eq!(fields(&problems), [*field], "{what}: {problems:?}");
    }
}

#[test]
fn a_bad_file_is_refused_by_the_set_with_every_problem() {
    let mut set = CuratedSet::default();
    let text = GOOD
        .replace("Anyone can read", "@alice can read")
        .replace("https://docs.aws", "http://docs.aws");
    let err = set.add("x/S3.8.toml", &text, catalog()).unwrap_err();
    assert_eq!(fields(&err.problems), ["why", "links"], "{err}");
    assert!(set.is_empty());
    set.add("x/S3.8.toml", GOOD, catalog()).unwrap();
    assert_eq!(
        set.get("S3.8").map(|c| c.why.as_str()),
        Some(good().why.as_str())
    );
}

/// The view as it was first written (plainly: a `Vec` per joined line, every placeholder
/// replaced whether present or not), the oracle of the faster [`Curated::view`].
fn plain_view(c: &Curated, account_id: &str, region: &str) -> CuratedView {
    let account = crate::explain::inert::shell_word(account_id);
    let region = crate::explain::inert::shell_word(region);
    let snippet = |s: &str| {
        let mut s = s.trim_matches('\n').trim_end().to_string();
        if !account.is_empty() {
            s = s.replace("<account-id>", &account);
        }
        if !region.is_empty() {
            s = s.replace("<region>", &region);
        }
        s
    };
    let opt = |s: &Option<String>| s.as_deref().map(snippet).unwrap_or_default();
    let cfn = |s: &Option<String>| {
        s.as_deref()
            .map(|y| {
                let body = snippet(y)
                    .lines()
                    .map(|l| {
                        if l.trim().is_empty() {
                            String::new()
                        } else {
                            format!("  {l}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                format!("Resources:\n{body}")
            })
            .unwrap_or_default()
    };
    let line = |s: &String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    CuratedView {
        why: c.why.trim().to_string(),
        matters_less: c.matters_less.trim().to_string(),
        summary: c.fix.summary.trim().to_string(),
        terraform: opt(&c.fix.terraform),
        terraform_broken: opt(&c.fix.terraform_broken),
        cloudformation: cfn(&c.fix.cloudformation),
        cloudformation_broken: cfn(&c.fix.cloudformation_broken),
        cdk: opt(&c.fix.cdk),
        cli: snippet(&c.fix.cli),
        side_effects: c.fix.side_effects.trim().to_string(),
        no_iac: c
            .fix
            .no_iac
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string(),
        how: c.verify.how.trim().to_string(),
        command: snippet(&c.verify.command),
        reasons: c.exception.reasons.iter().map(line).collect(),
        evidence: c.exception.evidence.iter().map(line).collect(),
        links: c
            .links
            .iter()
            .map(|u| LinkView {
                text: u
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_string(),
                url: u.clone(),
            })
            .collect(),
    }
}

/// Every built-in explanation, and odd ones (blank lines with spaces, CRLF, tabs, placeholders
/// back to back, an empty snippet), for accounts and regions real and hostile: the view is the
/// plain implementation's, field for field.
#[test]
fn the_view_is_what_the_plain_implementation_makes() {
    let set = CuratedSet::builtin(Catalog::embedded()).unwrap();
    let mut all: Vec<Curated> = set.all().cloned().collect();
    assert!(all.len() > 50, "{} built-in explanations", all.len());
    let mut odd = good();
    odd.fix.cloudformation = Some(
        "\n\nBucket:\r\n  Type: AWS::S3::Bucket\n   \n\t\n  Properties:\n    Arn: arn:aws:s3:<region>:<account-id><region>\n\n\n"
            .into(),
    );
    odd.fix.cloudformation_broken = Some(String::new());
    odd.fix.cdk = Some("<account-id><account-id>\n<region>".into());
    odd.exception.reasons = vec!["  a \t b\n\n c  ".into(), String::new(), " \n ".into()];
    odd.verify.command = "\n\n  <region>  \n".into();
    all.push(odd);
    let places = [
        ("111111111111", "us-east-1"),
        ("", ""),
        ("222233334444\n```\n@eve", "eu-west-1\"; rm -rf / `x`"),
        ("<region>", "<account-id>"),
    ];
    for c in &all {
        for (account, region) in places {
            assert_eq!(
                c.view(account, region),
                plain_view(c, account, region),
                "{} in {account:?} / {region:?}",
                c.id
            );
        }
    }
}
