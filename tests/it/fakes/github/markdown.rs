//! How GitHub reads an issue body or a comment for `@mentions`, issue references and links.
//!
//! GitHub renders the Markdown first and looks for mentions and references in the *rendered
//! text*: Markdown backslash escapes and HTML character references (`&#64;`, `&#x40;`,
//! `&commat;`) are undone before the search, so none of them stops a ping or a
//! cross-reference. Text inside code spans, code blocks, HTML comments and HTML tags is not
//! searched; text in each text node is, with the patterns of GitHub's mention filter
//! (html-pipeline's `MentionFilter`: `@login` and `@org/team` after a non-word character), issue
//! references (`#N`, `owner/repo#N`, `GH-N`) and autolinks (`https://`, `http://`, `ftp://`,
//! `www.`); a link (autolink or `[text](url)`) to `github.com/OWNER/REPO/issues/N` (or `pull/N`)
//! is a reference too.
//!
//! A model, faithful where it matters for inertness and conservative elsewhere: mentions and
//! references inside link text are reported (GitHub would skip them); raw HTML blocks are read
//! like paragraphs; the full HTML5 entity list (2,231 names) is reduced to the names of ASCII
//! punctuation and the usual ones. A zero-width space (U+200B) after `@` or `#` breaks every
//! pattern, as GitHub's do (`\W` is ASCII in Ruby, and a login or number must follow at once).

use std::collections::BTreeSet;

/// What GitHub would find in one text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `login` or `org/team`, without `@`, as written.
    pub mentions: Vec<String>,
    /// `owner/repo#N` (a bare `#N` or `GH-N` is resolved to `here`).
    pub references: Vec<String>,
    /// URLs that render as links (inline links, images and autolinks).
    pub links: Vec<String>,
}

/// Reads a Markdown body (issue body or comment) as GitHub does. `here` is the repository the
/// text lives in (`owner/repo`), for `#N` and `GH-N`.
pub fn scan(markdown: &str, here: &str) -> Found {
    let mut found = Found::default();
    for text in paragraphs(markdown) {
        inline(&text, here, &mut found);
    }
    found
}

/// Reads an issue title: titles are not Markdown, but GitHub links `#N` and `owner/repo#N` in
/// them (an assumption of this fake: it reports references, not mentions, from titles).
pub fn scan_title(title: &str, here: &str) -> Found {
    let mut found = Found::default();
    for node in title.split('\n') {
        text_node(node, here, &mut found);
    }
    found.mentions.clear();
    found.links.clear();
    found
}

/// The text of every paragraph-like block (lines joined by `\n`), without fenced or indented
/// code blocks and HTML comment blocks.
fn paragraphs(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    let mut prev_blank = true;
    let flush = |para: &mut Vec<&str>, out: &mut Vec<String>| {
        if !para.is_empty() {
            out.push(para.join("\n"));
            para.clear();
        }
    };
    for line in markdown.lines() {
        if in_comment {
            // An HTML comment block ends on the line holding `-->`; the rest of that line is
            // raw HTML, whose text GitHub searches.
            if let Some(end) = line.find("-->") {
                in_comment = false;
                let rest = &line[end + 3..];
                if !rest.trim().is_empty() {
                    out.push(rest.to_string());
                }
            }
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let trimmed = line.trim_start_matches(' ');
        if let Some((c, n)) = fence {
            let run = trimmed.chars().take_while(|x| *x == c).count();
            if indent <= 3 && run >= n && trimmed[run * c.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            prev_blank = false;
            continue;
        }
        if indent <= 3 {
            for c in ['`', '~'] {
                let run = trimmed.chars().take_while(|x| *x == c).count();
                if run >= 3 && !(c == '`' && trimmed[run..].contains('`')) {
                    fence = Some((c, run));
                }
            }
            if fence.is_some() {
                flush(&mut para, &mut out);
                continue;
            }
            if trimmed.starts_with("<!--") && !trimmed.contains("-->") {
                flush(&mut para, &mut out);
                in_comment = true;
                prev_blank = false;
                continue;
            }
        }
        if line.trim().is_empty() {
            flush(&mut para, &mut out);
            prev_blank = true;
            continue;
        }
        if (indent >= 4 || line.starts_with('\t')) && prev_blank && para.is_empty() {
            // An indented code block (it continues while lines stay indented).
            continue;
        }
        prev_blank = false;
        para.push(line);
    }
    flush(&mut para, &mut out);
    out
}

/// Inline parsing of one paragraph: code spans, HTML, links and escapes; the decoded text is
/// searched node by node (a code span, tag, link or line break ends a text node).
fn inline(raw: &str, here: &str, found: &mut Found) {
    const BREAK: char = '\u{1}';
    let chars: Vec<char> = raw.chars().collect();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                text.push(chars[i + 1]);
                i += 2;
            }
            '`' => {
                let n = run_len(&chars, i, '`');
                match find_closing_backticks(&chars, i + n, n) {
                    Some(end) => {
                        text.push(BREAK);
                        i = end + n;
                    }
                    None => {
                        text.extend(std::iter::repeat_n('`', n));
                        i += n;
                    }
                }
            }
            '<' => {
                let rest: String = chars[i..].iter().collect();
                if rest.starts_with("<!--") {
                    let end = rest.find("-->").map(|e| e + 3).unwrap_or(rest.len());
                    i += rest[..end].chars().count();
                    text.push(BREAK);
                } else if let Some(len) = autolink_in_brackets(&rest) {
                    let url: String = chars[i + 1..i + len - 1].iter().collect();
                    link(&url, found);
                    text.push(BREAK);
                    i += len;
                } else if let Some(len) = html_tag(&rest) {
                    text.push(BREAK);
                    i += len;
                } else {
                    text.push('<');
                    i += 1;
                }
            }
            '&' => match entity(&chars[i..]) {
                Some((decoded, len)) => {
                    text.push(decoded);
                    i += len;
                }
                None => {
                    text.push('&');
                    i += 1;
                }
            },
            '!' | '[' => {
                let start = if c == '!' { i + 1 } else { i };
                match inline_link(&chars, start) {
                    Some((label, url, end)) if chars.get(start) == Some(&'[') => {
                        link(&decode(&url), found);
                        text.push(BREAK);
                        inline(&label, here, found);
                        text.push(BREAK);
                        i = end;
                    }
                    _ => {
                        text.push(c);
                        i += 1;
                    }
                }
            }
            '\n' => {
                text.push(BREAK);
                i += 1;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    for node in text.split(BREAK) {
        text_node(node, here, found);
    }
}

fn run_len(chars: &[char], at: usize, c: char) -> usize {
    chars[at..].iter().take_while(|x| **x == c).count()
}

/// Start of the next run of exactly `n` backticks at or after `from`.
fn find_closing_backticks(chars: &[char], from: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let m = run_len(chars, i, '`');
            if m == n {
                return Some(i);
            }
            i += m;
        } else {
            i += 1;
        }
    }
    None
}

/// `<scheme:...>` (a CommonMark autolink): its length including the brackets.
fn autolink_in_brackets(rest: &str) -> Option<usize> {
    let end = rest.find('>')?;
    let inner = &rest[1..end];
    let (scheme, _) = inner.split_once(':')?;
    let ok = scheme.len() >= 2
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        && !inner.chars().any(|c| c.is_whitespace() || c == '<');
    ok.then(|| rest[..=end].chars().count())
}

/// An HTML open or close tag at the start of `rest`: its length in chars.
fn html_tag(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix("</").or_else(|| rest.strip_prefix('<'))?;
    if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let end = rest.find('>')?;
    Some(rest[..=end].chars().count())
}

/// `[label](url ...)` starting at `at` (which holds `[`): label, url and the index after `)`.
fn inline_link(chars: &[char], at: usize) -> Option<(String, String, usize)> {
    if chars.get(at) != Some(&'[') {
        return None;
    }
    let mut depth = 0;
    let mut i = at;
    let close = loop {
        match chars.get(i)? {
            '\\' => i += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break i;
                }
            }
            _ => {}
        }
        i += 1;
    };
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let mut j = close + 2;
    let mut url = String::new();
    while let Some(&c) = chars.get(j) {
        if c == ')' || c.is_whitespace() {
            break;
        }
        url.push(c);
        j += 1;
    }
    while chars.get(j).is_some_and(|c| *c != ')') {
        j += 1;
    }
    chars.get(j)?;
    let label: String = chars[at + 1..close].iter().collect();
    Some((label, url, j + 1))
}

/// Backslash escapes and character references undone (for link destinations).
fn decode(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1).is_some_and(|c| c.is_ascii_punctuation()) {
            out.push(chars[i + 1]);
            i += 2;
        } else if chars[i] == '&'
            && let Some((c, len)) = entity(&chars[i..])
        {
            out.push(c);
            i += len;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Named character references that matter here (what an attacker would use to spell `@`, `#`,
/// `/`, `:` or `-`) and the usual ones.
const NAMED: &[(&str, char)] = &[
    ("commat", '@'),
    ("num", '#'),
    ("sol", '/'),
    ("colon", ':'),
    ("period", '.'),
    ("hyphen", '\u{2010}'),
    ("dash", '\u{2010}'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
    ("excl", '!'),
    ("quest", '?'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lbrack", '['),
    ("rbrack", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("verbar", '|'),
    ("vert", '|'),
    ("grave", '`'),
    ("bsol", '\\'),
    ("ast", '*'),
    ("midast", '*'),
    ("plus", '+'),
    ("equals", '='),
    ("comma", ','),
    ("semi", ';'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("Hat", '^'),
    ("apos", '\''),
    ("quot", '"'),
    ("QUOT", '"'),
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("nbsp", '\u{a0}'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("ZeroWidthSpace", '\u{200b}'),
];

/// A character reference at the start of `chars` (`&#64;`, `&#x40;`, `&commat;`): the
/// character and the reference's length.
fn entity(chars: &[char]) -> Option<(char, usize)> {
    let semi = chars.iter().take(40).position(|c| *c == ';')?;
    let body: String = chars[1..semi].iter().collect();
    let c = if let Some(num) = body.strip_prefix('#') {
        let n = if let Some(hex) = num.strip_prefix(['x', 'X']) {
            (!hex.is_empty() && hex.len() <= 6)
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()?
        } else {
            (!num.is_empty() && num.len() <= 7 && num.chars().all(|c| c.is_ascii_digit()))
                .then(|| num.parse::<u32>().ok())
                .flatten()?
        };
        if n == 0 {
            '\u{fffd}'
        } else {
            char::from_u32(n).unwrap_or('\u{fffd}')
        }
    } else {
        NAMED.iter().find(|(name, _)| *name == body)?.1
    };
    Some((c, semi + 1))
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One text node of the rendered document: autolinks first (their text is a link, not
/// searched further), then mentions and references in the rest.
fn text_node(node: &str, here: &str, found: &mut Found) {
    let chars: Vec<char> = node.chars().collect();
    let mut masked = vec![false; chars.len()];
    // Autolinks (GFM extension), case-insensitive schemes.
    let lower: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = ["https://", "http://", "ftp://", "www."]
            .iter()
            .find(|p| lower[i..].iter().take(p.len()).copied().eq(p.chars()));
        let preceded_ok = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        match starts {
            Some(p) if preceded_ok && chars.len() > i + p.len() => {
                let mut end = i;
                while end < chars.len() && !chars[end].is_whitespace() && chars[end] != '<' {
                    end += 1;
                }
                while end > i + p.len() && "?!.,:*_~'\")".contains(chars[end - 1]) {
                    if chars[end - 1] == ')' {
                        let open = chars[i..end].iter().filter(|c| **c == '(').count();
                        let close = chars[i..end].iter().filter(|c| **c == ')').count();
                        if open >= close {
                            break;
                        }
                    }
                    end -= 1;
                }
                if end > i + p.len() {
                    let url: String = chars[i..end].iter().collect();
                    let url = if p == &"www." {
                        format!("http://{url}")
                    } else {
                        url
                    };
                    link(&url, found);
                    for m in &mut masked[i..end] {
                        *m = true;
                    }
                    i = end;
                    continue;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let at = |k: usize| -> Option<char> { (!masked.get(k)?).then(|| chars[k]) };
    let word_before = |k: usize| k > 0 && at(k - 1).is_some_and(is_word);
    for k in 0..chars.len() {
        match at(k) {
            Some('@') if !word_before(k) => {
                if let Some(m) = mention(&chars, &masked, k + 1) {
                    found.mentions.push(m);
                }
            }
            Some('#') => {
                let Some(n) = number(&chars, &masked, k + 1) else {
                    continue;
                };
                // owner/repo#N: walk back over the repository and the owner.
                let mut j = k;
                while j > 0
                    && at(j - 1).is_some_and(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    j -= 1;
                }
                let repo: String = chars[j..k].iter().collect();
                if !repo.is_empty() && j > 0 && at(j - 1) == Some('/') {
                    let mut o = j - 1;
                    while o > 0 && at(o - 1).is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                    {
                        o -= 1;
                    }
                    let owner: String = chars[o..j - 1].iter().collect();
                    // After any non-word character, `/` included (`x/acme/app#1` too).
                    if !owner.is_empty() && !word_before(o) {
                        found.references.push(format!("{owner}/{repo}#{n}"));
                    }
                } else if repo.is_empty() && !word_before(k) {
                    found.references.push(format!("{here}#{n}"));
                }
            }
            Some('g' | 'G')
                if !word_before(k)
                    && at(k + 1).is_some_and(|c| c.eq_ignore_ascii_case(&'h'))
                    && at(k + 2) == Some('-') =>
            {
                if let Some(n) = number(&chars, &masked, k + 3) {
                    found.references.push(format!("{here}#{n}"));
                }
            }
            _ => {}
        }
    }
}

/// Digits at `from` that end at a non-word character.
fn number(chars: &[char], masked: &[bool], from: usize) -> Option<u64> {
    let mut end = from;
    while end < chars.len() && !masked[end] && chars[end].is_ascii_digit() {
        end += 1;
    }
    if end == from || (end < chars.len() && is_word(chars[end])) {
        return None;
    }
    chars[from..end].iter().collect::<String>().parse().ok()
}

/// `login` or `org/team` right after an `@` at `from - 1` (html-pipeline's patterns).
fn mention(chars: &[char], masked: &[bool], from: usize) -> Option<String> {
    let ok = |k: usize| k < chars.len() && !masked[k];
    let login_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if !ok(from) || !chars[from].is_ascii_alphanumeric() {
        return None;
    }
    let mut end = from;
    while ok(end) && login_char(chars[end]) {
        end += 1;
    }
    let login: String = chars[from..end].iter().collect();
    if ok(end) && chars[end] == '/' {
        // @org/team
        let t = end + 1;
        if !ok(t) || !chars[t].is_ascii_alphanumeric() {
            return None;
        }
        let mut e = t;
        while ok(e) && (login_char(chars[e]) || chars[e] == '_') {
            e += 1;
        }
        let team: String = chars[t..e].iter().collect();
        return Some(format!("{login}/{team}"));
    }
    // A login followed by dots then a non-word character (or the end), or by a non-word
    // character other than a dot.
    let mut d = end;
    while ok(d) && chars[d] == '.' {
        d += 1;
    }
    let next = if ok(d) { Some(chars[d]) } else { None };
    let fine = match next {
        None => true,
        Some(c) if d > end => !is_word(c),
        Some(c) => !is_word(c) && c != '.',
    };
    fine.then_some(login)
}

/// Records a link, and a reference when it points at a GitHub issue or pull request.
fn link(url: &str, found: &mut Found) {
    found.links.push(url.to_string());
    let lower = url.to_ascii_lowercase();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .map(|r| r.strip_prefix("www.").unwrap_or(r));
    let Some(rest) = rest.and_then(|r| r.strip_prefix("github.com/")) else {
        return;
    };
    // Keep the original spelling of owner and repository.
    let offset = url.len() - rest.len();
    let parts: Vec<&str> = url[offset..].split(['/', '#', '?']).collect();
    if let [owner, repo, kind, n, ..] = parts[..]
        && ["issues", "pull", "discussions"].contains(&kind.to_ascii_lowercase().as_str())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        found.references.push(format!("{owner}/{repo}#{n}"));
    }
}

/// Distinct values, sorted (for assertions).
pub fn distinct(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_github() {
        let here = "acme/payments";
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("ping @alice and @acme/team", &["alice", "acme/team"], &[]),
            (
                "escaped &#64;alice &#x40;bob &commat;carol \\@dave",
                &["alice", "bob", "carol", "dave"],
                &[],
            ),
            (
                "not a mention: bob@example.com, `@code`, @\u{200b}zwsp",
                &[],
                &[],
            ),
            (
                "refs #1 acme/other#2 GH-3 acme/other&#35;4 x#5 &#35;6",
                &[],
                &[
                    "acme/payments#1",
                    "acme/other#2",
                    "acme/payments#3",
                    "acme/other#4",
                    "acme/payments#6",
                ],
            ),
            ("no refs: #\u{200b}1 #a1 `acme/x#1`", &[], &[]),
            (
                "url https://github.com/acme/x/issues/9 and <https://github.com/acme/y/pull/8>",
                &[],
                &["acme/x#9", "acme/y#8"],
            ),
            (
                "[t](https://github.com/acme/z/issues/7)",
                &[],
                &["acme/z#7"],
            ),
            ("<!-- @hidden #1 --> <b>@bold</b>", &["bold"], &[]),
            ("```\n@fenced #1\n```\n    \n", &[], &[]),
        ];
        for (text, mentions, refs) in cases {
            let f = scan(text, here);
            let sorted = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
            assert_eq!(
                distinct(&f.mentions),
                sorted(mentions),
                "mentions in {text:?}"
            );
            assert_eq!(
                distinct(&f.references),
                sorted(refs),
                "references in {text:?}"
            );
        }
        let f = scan("see https&#58;//evil.example/x and www.evil.example", here);
        assert_eq!(
            f.links,
            ["https://evil.example/x", "http://www.evil.example"]
        );
        assert_eq!(
            scan_title("Fix #3 for @alice", here).references,
            ["acme/payments#3"]
        );
        assert!(scan_title("Fix #3 for @alice", here).mentions.is_empty());
    }
}
