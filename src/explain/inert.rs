//! Making untrusted finding text inert in GitHub Markdown.
//!
//! Finding titles, descriptions, resource ids and remediation text come from AWS services and
//! third-party products, so they are untrusted: they must not ping people (`@user`, `@org/team`),
//! inject HTML or hidden comments (a fake Lever marker), links or images (tracking pixels),
//! cross-references to other repositories (`org/repo#1` notifies them), or break out of code.

use std::io::Write;

/// Longest untrusted text Lever writes in one place, in characters.
pub const MAX_TEXT: usize = 4000;

fn clip(s: &str, max: usize) -> (String, bool) {
    let mut out = String::new();
    for (count, c) in s.chars().enumerate() {
        if count == max {
            return (out, true);
        }
        out.push(c);
    }
    (out, false)
}

/// Escapes text for Markdown prose: the result renders as the same characters but is never
/// markup. Control characters are dropped and runs of blank lines collapsed.
pub fn prose(s: &str) -> String {
    let (s, clipped) = clip(s, MAX_TEXT);
    let mut out = String::with_capacity(s.len() + 16);
    let mut blank_run = 0;
    for line in s.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for c in line.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '@' => out.push_str("&#64;"),
                '`' => out.push_str("&#96;"),
                '[' => out.push_str("&#91;"),
                ']' => out.push_str("&#93;"),
                '#' => out.push_str("&#35;"),
                '|' => out.push_str("&#124;"),
                '\\' => out.push_str("&#92;"),
                '!' => out.push_str("&#33;"),
                '*' | '_' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
    }
    if clipped {
        out.push_str(" …");
    }
    out
}

/// The tera escape function for `.md` templates: every `{{ value }}` goes through [`prose`].
pub fn escape_fn(input: &str, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(prose(input).as_bytes())
}

/// Text for inside a Markdown code span: backticks and line breaks removed (nothing inside a
/// code span is markup, mentions included).
pub fn code(s: &str) -> String {
    let (s, clipped) = clip(s, 1024);
    let mut out: String = s
        .chars()
        .map(|c| {
            if c == '`' {
                '\''
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    if clipped {
        out.push('…');
    }
    out
}

/// Text for a shell command inside a code block: only characters that cannot end a quoted
/// string or the block (`[A-Za-z0-9:/._-]`) are kept.
pub fn shell_word(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '_' | '-'))
        .take(512)
        .collect()
}

/// A URL safe to link to: `https://`, no whitespace, quotes, angle brackets or parentheses.
pub fn safe_url(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = s.starts_with("https://")
        && s.len() <= 2048
        && s.len() > "https://".len()
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '`')
        });
    ok.then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_table() {
        let cases = [
            ("plain text.", "plain text."),
            (
                "ping @alice and @acme/team",
                "ping &#64;alice and &#64;acme/team",
            ),
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            (
                "<!-- lever:group=evil -->",
                "&lt;&#33;-- lever:group=evil --&gt;",
            ),
            (
                "![pixel](https://t.example/p.gif)",
                "&#33;&#91;pixel&#93;(https://t.example/p.gif)",
            ),
            ("see acme/other#12", "see acme/other&#35;12"),
            ("`code` and | pipes", "&#96;code&#96; and &#124; pipes"),
            ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
            ("{{ secret }} {% raw %}", "{{ secret }} {% raw %}"),
            ("a\u{0}b\u{1b}[31m", "ab&#91;31m"),
            ("line1\n\n\n\nline2  ", "line1\n\nline2"),
        ];
        for (input, want) in cases {
            assert_eq!(prose(input), want, "prose({input:?})");
        }
    }

    #[test]
    fn prose_clips_long_text() {
        let long = "x".repeat(MAX_TEXT + 10);
        let out = prose(&long);
        assert!(out.ends_with(" …"));
        assert_eq!(out.chars().count(), MAX_TEXT + 2);
    }

    #[test]
    fn code_shell_and_url_table() {
        assert_eq!(code("arn:aws:s3:::a`b\nc"), "arn:aws:s3:::a'b c");
        assert_eq!(shell_word("us-east-1\"; rm -rf / #"), "us-east-1rm-rf/");
        assert_eq!(
            shell_word("arn:aws:securityhub:us-east-1:1:x/y"),
            "arn:aws:securityhub:us-east-1:1:x/y"
        );
        let urls = [
            (
                "https://docs.aws.amazon.com/console/securityhub/S3.1/remediation",
                true,
            ),
            ("http://insecure.example", false),
            ("javascript:alert(1)", false),
            ("https://x.example/a b", false),
            ("https://x.example/a)(b", false),
            ("https://", false),
        ];
        for (u, ok) in urls {
            assert_eq!(safe_url(u).is_some(), ok, "{u}");
        }
    }
}
