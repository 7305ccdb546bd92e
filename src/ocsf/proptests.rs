//! The OCSF parser on arbitrary JSON placed where an OCSF finding's fields go: it never panics,
//! every rejection names a field and says why, and every accepted finding gets well-formed keys.

use proptest::prelude::*;
use serde_json::{Value, json as j};

use crate::controls::Catalog;
use crate::domain::keys::{GroupKey, Grouping, StableKey};
use crate::proptest_support::json;

const KEYS: &[&str] = &[
    "uid",
    "uid_alt",
    "name",
    "value",
    "key",
    "type",
    "region",
    "tags",
    "owner",
    "account",
    "product",
    "title",
    "desc",
    "types",
    "control",
    "status",
    "status_id",
    "severity",
    "severity_id",
    "cve",
    "cvss",
    "base_score",
    "version",
    "affected_packages",
    "fixed_in_version",
    "references",
    "modified_time",
    "modified_time_dt",
    "cloud_partition",
    "analytic",
    "standards",
    "assessments",
    "is_fix_available",
];

fn check(doc: &Value) {
    match super::parse_finding(doc, 3, Catalog::embedded()) {
        Err(e) => {
            assert_eq!(e.index, 3);
            assert!(!e.field.is_empty() && !e.message.trim().is_empty(), "{e}");
        }
        Ok(f) => {
            assert!(!f.resources.is_empty());
            let key = StableKey::for_finding(&f);
            assert!(GroupKey::is_well_formed(&key.0), "{key}");
            let group = GroupKey::for_finding(&f, &Grouping::default());
            assert!(!group.as_str().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_fields_in_an_ocsf_finding(
        metadata in json(KEYS),
        info in json(KEYS),
        cloud in json(KEYS),
        resources in json(KEYS),
        compliance in json(KEYS),
        vulns in json(KEYS),
        severity_id in json(KEYS),
        status_id in json(KEYS),
    ) {
        let doc = j!({
            "class_uid": 2003, "metadata": metadata, "finding_info": info, "cloud": cloud,
            "resources": resources, "compliance": compliance, "vulnerabilities": vulns,
            "severity_id": severity_id, "status_id": status_id,
        });
        check(&doc);
    }

    /// The required fields present and valid, everything else arbitrary: accepted, keys sound.
    #[test]
    fn arbitrary_optional_fields_around_valid_required_ones(
        resource in json(KEYS),
        compliance in json(KEYS),
        types in json(KEYS),
        product in prop_oneof![
            Just("arn:aws:securityhub:us-east-1::productv2/aws/securityhub"),
            Just("arn:aws:securityhub:us-east-1::productv2/aws/guardduty"),
            Just("arn:aws:securityhub:us-east-1::productv2/aws/inspector"),
            Just("x"),
        ],
        uid in ".{1,40}",
    ) {
        let mut r = resource;
        if let Value::Object(o) = &mut r {
            o.insert("uid".into(), Value::String(format!("u{uid}")));
        } else {
            r = j!({"uid": format!("u{uid}")});
        }
        let doc = j!({
            "class_uid": 2003,
            "metadata": {"product": {"uid": product}},
            "finding_info": {"uid": format!("f{uid}"), "title": "t", "types": types},
            "cloud": {"account": {"uid": "123456789012"}},
            "resources": [r],
            "compliance": compliance,
            "severity_id": 3,
        });
        let f = super::parse_finding(&doc, 0, Catalog::embedded());
        prop_assert!(f.is_ok(), "{f:?}");
        check(&doc);
    }
}
