//! Unit tests for the ASFF intake: document shapes, every rejection with its field path, the
//! lenient cases real files need, and how each product's findings are keyed.
//!
//! Shared builders live here: [`base`] is a minimal valid control finding, and [`with`] /
//! [`without`] change one field by path, so each case states only what it is about.

mod document;
mod fields;
mod sources;

use serde_json::{Value, json};

use super::finding::{product_of, region_of};
use super::*;
use crate::controls::Catalog;
use crate::domain::{
    ComplianceStatus, Control, RecordState, Severity, Source, StableKey, WorkflowStatus,
};

fn cat() -> &'static Catalog {
    Catalog::embedded()
}

/// A minimal valid FSBP control finding.
fn base() -> Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": "arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/0001",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/S3.8",
        "AwsAccountId": "111111111111",
        "Title": "S3.8 S3 Block Public Access setting should be enabled at the bucket-level",
        "Description": "This control checks whether S3 buckets have bucket-level public access blocks applied.",
        "Severity": {"Label": "HIGH"},
        "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::my-bucket", "Region": "us-east-1"}]
    })
}

/// `v` with the value at `path` (object keys, created as needed) set to `new`.
fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut v;
    for p in parents {
        cur = cur
            .as_object_mut()
            .expect("parent is an object")
            .entry(p.to_string())
            .or_insert_with(|| json!({}));
    }
    cur.as_object_mut()
        .expect("parent is an object")
        .insert(last.to_string(), new);
    v
}

/// `v` without the key at `path`.
fn without(mut v: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut v;
    for p in parents {
        cur = cur.get_mut(*p).expect("parent exists");
    }
    cur.as_object_mut().expect("object").remove(*last);
    v
}

fn ok(v: &Value) -> Finding {
    parse_finding(v, 0, cat()).unwrap_or_else(|e| panic!("expected a finding, got {e}"))
}

fn rejected(v: &Value) -> FindingError {
    match parse_finding(v, 0, cat()) {
        Ok(f) => panic!("expected a rejection, got {f:?}"),
        Err(e) => e,
    }
}

fn control(v: &Value) -> Control {
    match ok(v).source {
        Source::Control(c) => c,
        other => panic!("expected a control, got {other:?}"),
    }
}

fn doc(s: &str) -> Result<Intake, DocumentError> {
    parse_document(s.as_bytes(), cat())
}

fn doc_err(s: &str) -> String {
    match doc(s) {
        Ok(i) => panic!(
            "expected a DocumentError, got {:?} with {} entries",
            i.shape,
            i.entries.len()
        ),
        Err(e) => e.message,
    }
}
