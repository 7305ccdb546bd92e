//! Bytes → `serde_json::Value` without the parts of a finding no parser reads.
//!
//! A third of an ASFF finding's bytes are `ProductFields` (dozens of product-specific strings,
//! of which Lever reads the few in [`PRODUCT_FIELDS_READ`]) and a tenth are
//! `Resources[].Details` (never read). Building them into a `Value` (a `String` per key and
//! value, a map node per entry) was most of the parse time of the `lever sync` pipeline;
//! skipping them (`IgnoredAny`: checked as JSON, nothing allocated) leaves a `Value` on which
//! every parser reads exactly what it would read on the whole document
//! (`lean_and_whole_documents_parse_alike`, and the property test beside it).
//!
//! Only what is never read is dropped, wherever it is: the entries of a `ProductFields` object
//! that are not in [`PRODUCT_FIELDS_READ`], and `Details` in the objects of a `Resources` array.
//! Top-level keys are all kept (they tell a finding from an event, and unrecognised documents
//! are answered with their keys). OCSF findings have neither key (their names are snake_case).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The `ProductFields` entries any parser reads (through
/// [`super::value::product_field`], which checks that the key it is asked for is listed here).
pub(crate) const PRODUCT_FIELDS_READ: [&str; 10] = [
    "aws/securityhub/ProductName",
    "aws/securityhub/SeverityLabel",
    "RecommendationUrl",
    "ControlId",
    "RuleId",
    "StandardsArn",
    "StandardsGuideArn",
    "StandardsControlArn",
    "serviceAttributes/rulesPackageArn",
    "aws/inspector/RulesPackageName",
];

/// The document in `bytes` as JSON, without what no parser reads (see the module). Errors are
/// serde_json's, with the same line and column.
pub(crate) fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    // UTF-8 checked once for the whole document (vectorised) rather than string by string; a
    // document that is not UTF-8 is read as bytes, for serde_json's error naming the place.
    match std::str::from_utf8(bytes) {
        Ok(text) => read(serde_json::Deserializer::from_str(text)),
        Err(_) => read(serde_json::Deserializer::from_slice(bytes)),
    }
}

fn read<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> serde_json::Result<Value> {
    let value = Lean::Any.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Where a value sits, which says what of it is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lean {
    /// Anywhere else: kept whole, except for the keys below inside it.
    Any,
    /// The value of a `ProductFields` key.
    ProductFields,
    /// The value of a `Resources` key.
    Resources,
    /// An element of a `Resources` array.
    Resource,
}

impl Lean {
    /// What the value under `key` of an object in this place is.
    fn under(self, key: &str) -> Lean {
        match key {
            "ProductFields" => Lean::ProductFields,
            "Resources" => Lean::Resources,
            _ => Lean::Any,
        }
    }

    /// Whether the entry `key` of an object in this place is read by any parser.
    fn keeps(self, key: &str) -> bool {
        match self {
            Lean::ProductFields => PRODUCT_FIELDS_READ.contains(&key),
            Lean::Resource => key != "Details",
            Lean::Any | Lean::Resources => true,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Lean {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The visitor of `serde_json::Value`'s own `Deserialize`, with the places above.
impl<'de> Visitor<'de> for Lean {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let element = match self {
            Lean::Resources => Lean::Resource,
            _ => Lean::Any,
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(element)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            if self.keeps(&key) {
                let value = map.next_value_seed(self.under(&key))?;
                out.insert(key.into_owned(), value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object's key, borrowed from the input when it has no escape (a skipped entry's key is
/// then never copied).
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is dropped, and where; everything else is the whole document's.
    #[test]
    fn drops_only_what_no_parser_reads() {
        let doc = serde_json::json!({
            "Findings": [{
                "SchemaVersion": "2018-10-08",
                "ProductFields": {
                    "ControlId": "S3.1",
                    "aws/securityhub/FindingId": "x",
                    "StandardsArn": "arn:aws:securityhub:::standards/aws-foundational-security-best-practices/v/1.0.0",
                },
                "Resources": [
                    {"Id": "r", "Details": {"AwsS3Bucket": {"Name": "b"}}, "Tags": {"a": "b"}},
                    "not an object",
                ],
                "Details": {"kept": "not in a resource"},
                "Note": {"ProductFields": {"Other": 1, "RuleId": "r"}},
            }],
            "ProductFields": "a string",
            "Resources": {"Details": "not in an array"},
        });
        let lean = from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut want = doc.clone();
        let f = &mut want["Findings"][0];
        f["ProductFields"]
            .as_object_mut()
            .unwrap()
            .remove("aws/securityhub/FindingId");
        f["Resources"][0].as_object_mut().unwrap().remove("Details");
        f["Note"]["ProductFields"]
            .as_object_mut()
            .unwrap()
            .remove("Other");
        assert_eq!(lean, want);
    }

    /// A key with an escape, a duplicate key (the last wins, as in serde_json), numbers of
    /// every kind and the errors: the same as serde_json's.
    #[test]
    fn reads_json_as_serde_json_does() {
        let texts = [
            r#"{"a\u0041": 1, "a": -2, "a": 3.5e300, "b": 18446744073709551615, "c": null}"#,
            r#"[true, false, "x\n", {"ProductFields": {"Rule\u0049d": "kept"}}]"#,
            "  42 ",
            r#"{"a": 1,}"#,
            "{\"a\": \n tru}",
            "[1] [2]",
            "",
            r#"{"a": 1e999}"#,
        ];
        let mut docs: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
        // Not UTF-8: in a string, in a key, outside of any.
        docs.push(b"{\"a\": \"x\xff\"}".to_vec());
        docs.push(b"{\"\xc3\": 1}".to_vec());
        docs.push(b"[1, \xe2\x82]".to_vec());
        for doc in docs {
            let text = String::from_utf8_lossy(&doc);
            let whole = serde_json::from_slice::<Value>(&doc);
            let lean = from_slice(&doc);
            match (whole, lean) {
                (Ok(w), Ok(l)) => assert_eq!(l, w, "{text}"),
                (Err(w), Err(l)) => assert_eq!(l.to_string(), w.to_string(), "{text}"),
                (w, l) => panic!("{text}: whole {w:?}, lean {l:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, and JSON with a byte changed: the same value or the same error
        /// (message, line and column) as serde_json's.
        #[test]
        fn arbitrary_bytes_read_as_serde_json_reads_them(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            doc in crate::proptest_support::json(&["a", "Id", "x"]),
            at in 0usize..256,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut changed = serde_json::to_vec(&doc).unwrap();
            let i = at % changed.len();
            changed[i] = byte;
            for input in [bytes, changed] {
                let whole = serde_json::from_slice::<Value>(&input);
                let lean = from_slice(&input);
                match (whole, lean) {
                    (Ok(w), Ok(l)) => proptest::prop_assert_eq!(l, w),
                    (Err(w), Err(l)) => proptest::prop_assert_eq!(l.to_string(), w.to_string()),
                    (w, l) => proptest::prop_assert!(false, "whole {:?}, lean {:?}", w, l),
                }
            }
        }
    }
}
