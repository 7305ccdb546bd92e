//! Small, allocation-free accessors over `serde_json::Value` used by the ASFF parser, and the
//! wording of "what was found" in error messages.

use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

/// JSON type name as it appears in error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value described for an error message: its type, and for scalars the value itself
/// (long strings are cut, so one huge field cannot flood a log line).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", cut(s, 60)),
        Value::Array(a) => format!("array of {} element(s)", a.len()),
        Value::Object(_) => "object".into(),
    }
}

/// At most `max` characters of `s`, with `…` when something was cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The object under `key`, if it is one.
pub(crate) fn obj<'a>(o: &'a Obj, key: &str) -> Option<&'a Obj> {
    o.get(key).and_then(Value::as_object)
}

/// A string under `key` that is not blank. Absent, null, blank and non-string values are all
/// `None`: optional ASFF fields in real files come as `""` often enough that blank means absent.
pub(crate) fn opt_str<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// [`opt_str`], owned.
pub(crate) fn opt_string(o: &Obj, key: &str) -> Option<String> {
    opt_str(o, key).map(str::to_string)
}

/// `ProductFields[key]` as a non-blank string. `key` must be one of
/// [`super::lean::PRODUCT_FIELDS_READ`]: documents are read without the others.
pub(crate) fn product_field<'a>(finding: &'a Obj, key: &str) -> Option<&'a str> {
    debug_assert!(
        super::lean::PRODUCT_FIELDS_READ.contains(&key),
        "ProductFields[{key:?}] is read but not in lean::PRODUCT_FIELDS_READ"
    );
    obj(finding, "ProductFields").and_then(|pf| opt_str(pf, key))
}

/// Whether `s` looks like an AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `cn-north-1`, `us-isob-east-1`, `eusc-de-east-1`. Two to four letters, one or more
/// lower-case words, a number. (Partitions such as `aws-us-gov` end in a word, not a number.)
pub(crate) fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() < 3 {
        return false;
    }
    let (first, rest) = parts.split_first().expect("at least three parts");
    let (last, middle) = rest.split_last().expect("at least two parts");
    (2..=4).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && middle
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn looks_like_region_table() {
        let cases = [
            ("us-east-1", true),
            ("eu-central-1", true),
            ("ap-southeast-2", true),
            ("us-gov-west-1", true),
            ("cn-north-1", true),
            ("us-isob-east-1", true),
            ("eusc-de-east-1", true),
            ("aws-us-gov", false),
            ("aws-cn", false),
            ("abcde-east-1", false),
            ("", false),
            ("global", false),
            ("securityhub", false),
            ("123456789012", false),
            ("product/aws/guardduty", false),
            ("us-east", false),
            ("US-EAST-1", false),
            ("u-east-1", false),
            ("us--1", false),
        ];
        for (s, want) in cases {
            assert_eq!(looks_like_region(s), want, "looks_like_region({s:?})");
        }
    }

    #[test]
    fn describe_names_type_and_scalar_value() {
        let cases = [
            (json!(null), "null"),
            (json!(true), "boolean true"),
            (json!(42), "number 42"),
            (json!("x"), "string \"x\""),
            (json!([1, 2]), "array of 2 element(s)"),
            (json!({"a": 1}), "object"),
        ];
        for (v, want) in cases {
            assert_eq!(describe(&v), want);
            assert!(
                want.starts_with(type_name(&v)),
                "{want} vs {}",
                type_name(&v)
            );
        }
        let long = "é".repeat(100);
        let d = describe(&Value::String(long));
        assert_eq!(d.chars().filter(|c| *c == 'é').count(), 60, "{d}");
        assert!(d.ends_with("…\""), "{d}");
    }

    #[test]
    fn opt_str_treats_blank_and_wrong_types_as_absent() {
        let o = json!({"a": "x", "b": "", "c": "  ", "d": 5, "e": null});
        let o = o.as_object().unwrap();
        assert_eq!(opt_str(o, "a"), Some("x"));
        for k in ["b", "c", "d", "e", "missing"] {
            assert_eq!(opt_str(o, k), None, "{k}");
        }
    }
}
