//! Making untrusted finding text inert in GitHub Markdown.
//!
//! Finding titles, descriptions, resource ids and remediation text come from AWS services and
//! third-party products, so they are untrusted: they must not ping people (`@user`, `@org/team`),
//! inject HTML or hidden comments (a fake Lever marker), links or images (tracking pixels),
//! cross-references to other issues (`#1`, `org/repo#1`, `GH-1` and links to issues write into
//! that timeline), or break out of code.
//!
//! GitHub looks for mentions and references in the *rendered* text, after backslash escapes and
//! character references are undone, so escaping `@` as `&#64;` stops nothing. What stops them is
//! what GitHub's patterns cannot match: a zero-width space (U+200B) right after every `@` and `#`
//! and inside `GH-N` (as Renovate and Dependabot do; the text reads the same), or a code span.
//! Untrusted URLs are put in code spans, so they are never links (nor autolinks, nor references
//! to the issues they point at). Everything else that could be markup is written as a character
//! reference or a backslash escape, which render as the character and are never markup.

use std::io::Write;

/// Longest untrusted text Lever writes in one place, in characters.
pub const MAX_TEXT: usize = 4000;

/// Zero-width space: after `@`, `#` and in `GH-N` it breaks GitHub's mention and reference
/// patterns without changing what a reader sees.
pub const ZWSP: char = '\u{200B}';

/// The first `max` characters of `s`, and whether anything was cut.
fn clip(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((end, _)) => (&s[..end], true),
        None => (s, false),
    }
}

/// Whether `rest` starts with a URL GitHub would autolink (`https://`, `http://`, `ftp://`,
/// `www.`, any case) followed by at least one more character.
fn url_start(rest: &str) -> bool {
    ["https://", "http://", "ftp://", "www."].iter().any(|p| {
        rest.len() > p.len() && rest.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    })
}

/// An untrusted URL as a code span: readable and copyable, never a link. Backticks become `'`,
/// `|` is percent-encoded (it would end a table cell even inside code).
fn url_code(url: &str, out: &mut String) {
    out.push('`');
    for c in url.chars() {
        match c {
            '`' => out.push('\''),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    out.push('`');
}

/// Whether `out` ends with `GH` (any case) after a non-word character: the `GH-N` reference.
fn ends_with_gh(out: &str) -> bool {
    let mut rev = out.chars().rev();
    let (Some(h), Some(g)) = (rev.next(), rev.next()) else {
        return false;
    };
    h.eq_ignore_ascii_case(&'h')
        && g.eq_ignore_ascii_case(&'g')
        && !rev
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes text for Markdown prose: the result renders as the same characters (plus invisible
/// zero-width spaces) but is never markup, never mentions anyone and never references an issue;
/// URLs are code spans. Control characters are dropped and runs of blank lines collapsed.
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
        let kept: std::borrow::Cow<'_, str> = if line.chars().any(char::is_control) {
            line.chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .into()
        } else {
            line.into()
        };
        let line = &*kept;
        let mut i = 0;
        while let Some(c) = line[i..].chars().next() {
            let rest = &line[i..];
            // Only these letters start a URL (`url_start`).
            if matches!(c, 'h' | 'H' | 'f' | 'F' | 'w' | 'W') && url_start(rest) {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                url_code(&rest[..end], &mut out);
                i += end;
                continue;
            }
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '@' | '#' => {
                    out.push(c);
                    out.push(ZWSP);
                }
                '-' if ends_with_gh(&out) => {
                    out.push('-');
                    out.push(ZWSP);
                }
                '`' => out.push_str("&#96;"),
                '[' => out.push_str("&#91;"),
                ']' => out.push_str("&#93;"),
                '|' => out.push_str("&#124;"),
                '\\' => out.push_str("&#92;"),
                '!' => out.push_str("&#33;"),
                '*' | '_' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
            i += c.len_utf8();
        }
    }
    if clipped {
        out.push_str(" …");
    }
    out
}

/// Plain text GitHub does not render as Markdown (issue titles) but still reads for issue
/// references: a zero-width space after every `@` and `#` and inside `GH-N`.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        let gh = c == '-' && ends_with_gh(&out);
        out.push(c);
        if c == '@' || c == '#' || gh {
            out.push(ZWSP);
        }
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
    let kept = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '_' | '-');
    // Account ids, regions and finding ids are kept whole: one copy, no filtering.
    if s.len() <= 512 && s.bytes().all(|b| kept(char::from(b))) {
        return s.to_string();
    }
    s.chars().filter(|&c| kept(c)).take(512).collect()
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
                || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '`' | '\\')
        });
    ok.then(|| s.to_string())
}

/// A URL Lever links to: a [`safe_url`] on an AWS host (`aws.amazon.com` or a subdomain, such
/// as `docs.` and `console.`). Any other URL from a finding is untrusted and is shown as text.
pub fn aws_link(s: &str) -> Option<String> {
    let url = safe_url(s)?;
    let rest = &url["https://".len()..];
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.to_ascii_lowercase();
    let aws = !host.contains(['@', ':'])
        && (host == "aws.amazon.com" || host.ends_with(".aws.amazon.com"));
    aws.then_some(url)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_table() {
        let cases = [
            ("plain text.", "plain text."),
            (
                "ping @alice and @acme/team",
                "ping @\u{200B}alice and @\u{200B}acme/team",
            ),
            (
                "&#64;alice \\@bob",
                "&amp;#\u{200B}64;alice &#92;@\u{200B}bob",
            ),
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            (
                "<!-- lever:group=evil -->",
                "&lt;&#33;-- lever:group=evil --&gt;",
            ),
            (
                "![pixel](https://t.example/p.gif)",
                "&#33;&#91;pixel&#93;(`https://t.example/p.gif)`",
            ),
            ("see acme/other#12", "see acme/other#\u{200B}12"),
            (
                "#1, GH-2, gh-3, sigh-4",
                "#\u{200B}1, GH-\u{200B}2, gh-\u{200B}3, sigh-4",
            ),
            (
                "at https://github.com/a/b/issues/1 or WWW.x.example/a|b`c.",
                "at `https://github.com/a/b/issues/1` or `WWW.x.example/a%7Cb'c.`",
            ),
            ("mail sec@acme.example", "mail sec@\u{200B}acme.example"),
            ("`code` and | pipes", "&#96;code&#96; and &#124; pipes"),
            ("**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
            ("{{ secret }} {% raw %}", "{{ secret }} {% raw %}"),
            ("a\u{0}b\u{1b}[31m", "ab&#91;31m"),
            ("line1\n\n\n\nline2  ", "line1\n\nline2"),
        ];
        for (input, want) in cases {
            assert_eq!(prose(input), want, "prose({input:?})");
        }
        assert_eq!(
            plain("Fix #1 for @alice, GH-2"),
            "Fix #\u{200B}1 for @\u{200B}alice, GH-\u{200B}2"
        );
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
            ("https://x.example/a\\b", false),
        ];
        for (u, ok) in urls {
            assert_eq!(safe_url(u).is_some(), ok, "{u}");
        }
        let links = [
            ("https://docs.aws.amazon.com/securityhub/x.html#s3-1", true),
            ("https://console.aws.amazon.com/securityhub/home", true),
            ("https://aws.amazon.com/", true),
            ("https://github.com/acme/x/issues/1", false),
            ("https://evil.example/?docs.aws.amazon.com", false),
            ("https://docs.aws.amazon.com@evil.example/", false),
            ("https://docs.aws.amazon.com.evil.example/", false),
            ("https://evilaws.amazon.com/", false),
            ("https://bucket.s3.amazonaws.com/x", false),
        ];
        for (u, ok) in links {
            assert_eq!(aws_link(u).is_some(), ok, "{u}");
        }
    }
}
