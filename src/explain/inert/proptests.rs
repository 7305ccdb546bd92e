//! The property test of [`prose`](super::prose): the byte-slicing implementation renders
//! exactly what the `Vec<char>` one it replaced did (kept here as the reference), on arbitrary
//! text and on text built from what `prose` treats specially; and `shell_word` against the
//! filter it was.

use proptest::prelude::*;

use super::{MAX_TEXT, ZWSP, ends_with_gh};

/// The implementation `prose` had until 2026-12-03, unchanged.
mod reference {
    use super::{MAX_TEXT, ZWSP, ends_with_gh};

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

    fn url_start(chars: &[char], i: usize) -> bool {
        ["https://", "http://", "ftp://", "www."].iter().any(|p| {
            p.len() < chars.len() - i
                && chars[i..i + p.len()]
                    .iter()
                    .zip(p.chars())
                    .all(|(a, b)| a.to_ascii_lowercase() == b)
        })
    }

    fn url_code(url: &str) -> String {
        let inner: String = url
            .chars()
            .map(|c| match c {
                '`' => "'".to_string(),
                '|' => "%7C".to_string(),
                c => c.to_string(),
            })
            .collect();
        format!("`{inner}`")
    }

    pub(super) fn prose(s: &str) -> String {
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
            let chars: Vec<char> = line.chars().filter(|c| !c.is_control()).collect();
            let mut i = 0;
            while i < chars.len() {
                if url_start(&chars, i) {
                    let end = chars[i..]
                        .iter()
                        .position(|c| c.is_whitespace())
                        .map_or(chars.len(), |n| i + n);
                    let url: String = chars[i..end].iter().collect();
                    out.push_str(&url_code(&url));
                    i = end;
                    continue;
                }
                let c = chars[i];
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
                i += 1;
            }
        }
        if clipped {
            out.push_str(" …");
        }
        out
    }
}

/// Pieces `prose` treats specially, and the text around them.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,:/()-]{0,12}",
        2 => proptest::sample::select(vec![
            "https://", "HTTP://", "ftp://", "www.", "Www.", "https:/", "http", "gh-", "GH-",
            "_gh-", "xgh-", "@", "#", "&", "<", ">", "`", "[", "]", "|", "\\", "!", "*", "_",
            "~", "\n", "\n\n\n", "  \n", "\r\n", "\t", "\u{0}", "\u{1b}[31m", "\u{7f}",
            "\u{85}", "\u{2028}", "é", "漢字", "🦀", "\u{200B}", " ", "-",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn prose_renders_as_the_reference_does(s in text()) {
        prop_assert_eq!(super::prose(&s), reference::prose(&s));
    }

    #[test]
    fn prose_renders_arbitrary_text_as_the_reference_does(s in any::<String>()) {
        prop_assert_eq!(super::prose(&s), reference::prose(&s));
    }

    /// `shell_word` keeps plain words whole without filtering them; the same result as the
    /// filter it had (kept here inline), long and short, plain and not.
    #[test]
    fn shell_word_is_the_filter_it_was(
        s in prop_oneof![
            "[a-zA-Z0-9:/._-]{0,600}",
            "[a-zA-Z0-9:/._ \"é;-]{0,600}",
            any::<String>(),
        ]
    ) {
        let filtered: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '_' | '-'))
            .take(512)
            .collect();
        prop_assert_eq!(super::shell_word(&s), filtered);
    }
}

/// Around the clip: exactly `MAX_TEXT` characters are kept whole, one more is cut, in the
/// middle of a URL or of a multi-byte character too.
#[test]
fn prose_clips_where_the_reference_clips() {
    for filler in ["x", "é", "🦀", "@", "https://a.example/ "] {
        for extra in [0usize, 1, 2, 7] {
            let n = MAX_TEXT + extra;
            let s: String = filler.chars().cycle().take(n).collect();
            assert_eq!(super::prose(&s), reference::prose(&s), "{filler:?} × {n}");
        }
    }
}
