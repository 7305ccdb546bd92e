//! NUL characters: legal in JSON strings, refused by PostgreSQL in TEXT and JSONB. Findings
//! are cleaned when parsed and JSON documents when stored, so no store refuses a write and
//! every store keeps the same data.

use serde_json::Value;

/// Whether any string (or key) in `v` holds a NUL character.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `v` with every NUL character in strings and keys replaced by U+FFFD.
pub fn without_nul(v: &Value) -> Value {
    let clean = |s: &str| s.replace('\0', "\u{FFFD}");
    match v {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(a) => Value::Array(a.iter().map(without_nul).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (clean(k), without_nul(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_and_replaced_everywhere() {
        let v = serde_json::json!({"a\0": ["x", {"t": "b\0c"}], "n": 1});
        assert!(has_nul(&v));
        let clean = without_nul(&v);
        assert!(!has_nul(&clean));
        assert_eq!(
            clean,
            serde_json::json!({"a\u{FFFD}": ["x", {"t": "b\u{FFFD}c"}], "n": 1})
        );
        assert!(!has_nul(&serde_json::json!({"a": "b"})));
    }
}
