//! Durations in the configuration: `90s`, `15m`, `4h`, `7d`, `2w`, or combinations such as
//! `1d12h`.

use chrono::Duration;

/// Parses a duration made of `<number><unit>` parts, units `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration (expected e.g. 90s, 15m, 4h, 7d, 2w)".into());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c == '_' {
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} (use s, m, h, d or w)"
                ));
            }
        };
        if digits.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: unit {c:?} without a number"
            ));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration {s:?}: too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid duration {s:?}: number without a unit (use s, m, h, d or w)"
        ));
    }
    if total > 100 * 365 * 86_400 {
        return Err(format!("invalid duration {s:?}: longer than 100 years"));
    }
    Ok(Duration::seconds(total))
}

/// Formats a duration in the largest units that divide it (`7d`, `1d12h`, `90s` → `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
        secs = -secs;
    }
    for (unit, size) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("90s", 90),
            ("15m", 900),
            ("4h", 14_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1d12h", 129_600),
            (" 30s ", 30),
            ("0s", 0),
            ("1_000s", 1000),
        ];
        for (s, secs) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::seconds(secs)), "{s}");
        }
        let bad = [
            ("", "empty"),
            ("7", "without a unit"),
            ("d", "without a number"),
            ("7y", "unknown unit"),
            ("-1d", "unknown unit"),
            ("99999999999w", "longer than 100 years"),
            ("99999999999999999999s", "too large"),
        ];
        for (s, want) in bad {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["1w", "6d", "1d12h", "1m30s", "2w", "4h", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
