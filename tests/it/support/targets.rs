//! The targets of issue 8 against their measurements: every benchmark prints one `target:`
//! line per target it measures, met or missed, and by how much when missed. The Rust benches
//! (`benches/*.rs`, which include this support module) print [`verdict`]; the shell ones
//! (`tools/bench/*.sh`) print the same lines through `target_verdict` of `tools/bench/lib.sh`,
//! and a test here checks that both say the same.

/// What a measurement must reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// At least this much (a rate, a share).
    AtLeast(f64),
    /// Strictly below this (a latency, a size).
    Below(f64),
    /// At most this many (a count that must stay at zero).
    AtMost(f64),
}

/// `target: WHAT GOAL UNIT: measured X UNIT, met` or `… MISSED by F×` (or by the excess, for
/// a goal of zero).
pub fn verdict(what: &str, measured: f64, goal: Goal, unit: &str) -> String {
    let (sign, bound, met) = match goal {
        Goal::AtLeast(g) => ("≥", g, measured >= g),
        Goal::Below(g) => ("<", g, measured < g),
        Goal::AtMost(g) => ("≤", g, measured <= g),
    };
    let head = format!(
        "target: {what} {sign} {}{unit}: measured {}{unit}",
        number(bound),
        number(measured)
    );
    if met {
        return format!("{head}, met");
    }
    let by = match goal {
        Goal::AtLeast(g) if measured > 0.0 => format!("{:.2}× short", g / measured),
        Goal::AtLeast(_) => "all of it".to_string(),
        Goal::Below(g) | Goal::AtMost(g) if g > 0.0 => format!("{:.2}× over", measured / g),
        Goal::Below(g) | Goal::AtMost(g) => format!("{} over", number(measured - g)),
    };
    format!("{head}, MISSED by {by}")
}

/// Prints [`verdict`] (for the benches; the suite checks [`verdict`] itself).
#[allow(dead_code)]
pub fn report(what: &str, measured: f64, goal: Goal, unit: &str) {
    println!("{}", verdict(what, measured, goal, unit));
}

/// A measurement as people read it: whole from 100 up, else at most two decimals (one from
/// 10 up), trailing zeros dropped.
fn number(x: f64) -> String {
    let decimals = if x.abs() >= 100.0 {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_met_or_by_how_much() {
        #[rustfmt::skip]
        let cases = [
            ("rate", 27_800.0, Goal::AtLeast(20_000.0), "/s", "target: rate ≥ 20000/s: measured 27800/s, met"),
            ("rate", 4_000.0, Goal::AtLeast(10_000.0), "/s", "target: rate ≥ 10000/s: measured 4000/s, MISSED by 2.50× short"),
            ("rate", 0.0, Goal::AtLeast(10.0), "/s", "target: rate ≥ 10/s: measured 0/s, MISSED by all of it"),
            ("ratio", 0.95, Goal::AtLeast(3.0), "×", "target: ratio ≥ 3×: measured 0.95×, MISSED by 3.16× short"),
            ("size", 46.34, Goal::Below(150.0), " MB", "target: size < 150 MB: measured 46.3 MB, met"),
            ("p99", 6.9, Goal::Below(2.0), " ms", "target: p99 < 2 ms: measured 6.9 ms, MISSED by 3.45× over"),
            ("p99", 2.0, Goal::Below(2.0), " ms", "target: p99 < 2 ms: measured 2 ms, MISSED by 1.00× over"),
            ("breaches", 0.0, Goal::AtMost(0.0), "", "target: breaches ≤ 0: measured 0, met"),
            ("breaches", 3.0, Goal::AtMost(0.0), "", "target: breaches ≤ 0: measured 3, MISSED by 3 over"),
        ];
        for (what, measured, goal, unit, want) in cases {
            assert_eq!(verdict(what, measured, goal, unit), want);
            // The shell benchmarks' verdict, through tools/bench/lib.sh.
            let (op, bound) = match goal {
                Goal::AtLeast(g) => (">=", g),
                Goal::Below(g) => ("<", g),
                Goal::AtMost(g) => ("<=", g),
            };
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(r#"source tools/bench/lib.sh && target_verdict "$@""#)
                .arg("target_verdict")
                .args([what, &measured.to_string(), op, &bound.to_string(), unit])
                .current_dir(crate::support::app::root())
                .env(
                    "LEVER_BENCH_DIR",
                    std::env::temp_dir().join("lever-bench-verdict"),
                )
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), want);
        }
    }
}
