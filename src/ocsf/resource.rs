//! OCSF `resources[]` → domain [`Resource`]s, with the identity ASFF gives the same resource.
//!
//! In OCSF `uid` is the service-native id and often not an ARN (an EC2 instance id, an SQS
//! queue URL, an IAM policy id, an account id, a Lambda function name, an access key id);
//! `uid_alt` carries the ARN when Security Hub has it. The stable key needs the id ASFF uses
//! (`Resources[].Id`), so the resource id is, in order:
//!
//! 1. `uid_alt` when it is an ARN; 2. `uid` when it is an ARN;
//! 3. built from `type` and `uid` where the ARN is fully determined by them and the resource's
//!    partition, region and owner account (EC2 instance, Lambda function, SQS queue URL, S3
//!    bucket), or ASFF's `Type:uid` form for the account and access-key pseudo-resources;
//! 4. `uid` as given (an IAM policy id without `uid_alt`: its ARN needs the policy's path and
//!    name, which the id does not carry).
//!
//! `type` comes CloudFormation-style (`AWS::EC2::Instance`) and becomes ASFF-style
//! (`AwsEc2Instance`) so routing and templates see one vocabulary; an ASFF-style type is kept.

use serde_json::Value;

use crate::asff::FindingError;
use crate::asff::finding::string_problem;
use crate::asff::value::{Obj, describe, looks_like_region, obj, opt_str};
use crate::domain::Resource;

use super::finding::tags;
use crate::asff::finding::reject;

/// Every resource with a usable `uid`; at least one is required. When none is usable the error
/// names the first problem (`resources`, `resources[0]`, `resources[0].uid`).
pub(super) fn resources(
    f: &Obj,
    index: usize,
    account: &str,
    region: Option<&str>,
) -> Result<Vec<Resource>, FindingError> {
    let list = match f.get("resources") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err(reject(
                index,
                "resources",
                "empty array (at least one resource with a uid is required)",
            ));
        }
        None => {
            return Err(reject(
                index,
                "resources",
                "missing (at least one resource with a uid is required)",
            ));
        }
        Some(other) => {
            return Err(reject(
                index,
                "resources",
                format!("wrong type: expected an array, found {}", describe(other)),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    let mut first_problem = None;
    for (i, r) in list.iter().enumerate() {
        let Some(r) = r.as_object() else {
            first_problem.get_or_insert_with(|| {
                reject(
                    index,
                    format!("resources[{i}]"),
                    format!("wrong type: expected an object, found {}", describe(r)),
                )
            });
            continue;
        };
        if let Some(problem) = string_problem(r.get("uid")) {
            first_problem
                .get_or_insert_with(|| reject(index, format!("resources[{i}].uid"), problem));
            continue;
        }
        out.push(resource(r, account, region));
    }
    match first_problem {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

fn resource(r: &Obj, account: &str, finding_region: Option<&str>) -> Resource {
    let uid = opt_str(r, "uid").unwrap_or_default().trim();
    let kind = opt_str(r, "type").map(str::trim);
    let own_region = opt_str(r, "region").map(str::trim);
    let region = own_region
        .filter(|r| looks_like_region(r))
        .or(finding_region);
    let owner = obj(r, "owner")
        .and_then(|o| obj(o, "account"))
        .and_then(|a| opt_str(a, "uid"))
        .unwrap_or(account);
    let partition = opt_str(r, "cloud_partition").unwrap_or("aws");
    let id = opt_str(r, "uid_alt")
        .map(str::trim)
        .filter(|a| a.starts_with("arn:"))
        .map(str::to_string)
        .unwrap_or_else(|| resource_id(uid, kind, partition, region, owner));
    Resource {
        id,
        kind: kind.map(asff_type),
        region: own_region.map(str::to_string),
        tags: tags(r.get("tags")),
    }
}

/// The ASFF resource id of an OCSF resource without an ARN in `uid_alt` (rules 2–4 of the
/// module doc).
pub(crate) fn resource_id(
    uid: &str,
    kind: Option<&str>,
    partition: &str,
    region: Option<&str>,
    account: &str,
) -> String {
    if uid.starts_with("arn:") {
        return uid.to_string();
    }
    let kind = kind.map(asff_type);
    let regional = |service: &str, rest: String| match region {
        Some(region) => format!("arn:{partition}:{service}:{region}:{account}:{rest}"),
        None => uid.to_string(),
    };
    match kind.as_deref() {
        Some("AwsAccount") => format!("AWS::::Account:{uid}"),
        Some("AwsIamAccessKey") => format!("AWS::IAM::AccessKey:{uid}"),
        Some("AwsEc2Instance") if uid.starts_with("i-") && !uid.contains('/') => {
            regional("ec2", format!("instance/{uid}"))
        }
        Some("AwsLambdaFunction") if !uid.contains([':', '/']) => {
            regional("lambda", format!("function:{uid}"))
        }
        Some("AwsSqsQueue") => match sqs_url(uid) {
            Some((url_region, url_account, name)) => {
                format!("arn:{partition}:sqs:{url_region}:{url_account}:{name}")
            }
            None => uid.to_string(),
        },
        Some("AwsS3Bucket") if !uid.contains([':', '/']) => format!("arn:{partition}:s3:::{uid}"),
        _ => uid.to_string(),
    }
}

/// `https://sqs.<region>.amazonaws.com/<account>/<name>` → (region, account, name).
fn sqs_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url.strip_prefix("https://sqs.")?;
    let (host, path) = rest.split_once('/')?;
    let region = host.split('.').next().filter(|r| looks_like_region(r))?;
    let (account, name) = path.trim_end_matches('/').split_once('/')?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(account) && ok(name)).then_some((region, account, name))
}

/// `AWS::EC2::Instance` → `AwsEc2Instance`, `AWS::RDS::DBInstance` → `AwsRdsDbInstance`,
/// `AWS::::Account` → `AwsAccount`: segments joined, each run of capitals lower-cased after its
/// first letter except a last capital that starts a word (`DBInstance` → `DbInstance`), as ASFF
/// spells its types. A type without `::` (already ASFF-style) is kept. Types ASFF renames
/// outright (`AWS::ElasticLoadBalancingV2::LoadBalancer`, ASFF `AwsElbv2LoadBalancer`) stay
/// approximate; the type is shown, not keyed on.
pub(crate) fn asff_type(kind: &str) -> String {
    if !kind.contains("::") {
        return kind.to_string();
    }
    let mut out = String::with_capacity(kind.len());
    for seg in kind.split("::").filter(|s| !s.is_empty()) {
        let chars: Vec<char> = seg.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if i == 0 {
                out.push(c.to_ascii_uppercase());
            } else if c.is_ascii_uppercase() && prev_upper && !next_lower {
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
    }
    out
}
