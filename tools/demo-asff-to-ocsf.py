#!/usr/bin/env python3
"""Write examples/demo/findings-ocsf/: the demo's ASFF findings as Security Hub v2 reports them.

Each ASFF finding of examples/demo/findings/ becomes one OCSF finding in the shape the real
Security Hub v2 samples show (../shared/conformance/ocsf, read its MANIFEST.md): a Compliance
Finding (class 2003) for Security Hub controls, a Detection Finding (class 2004) for GuardDuty;
`resources[].uid` the service-native id and the ARN in `uid_alt`; CloudFormation-style resource
types; tags as `{name, value}`; `status_id` from the workflow status (5 Archived for an archived
record); `metadata.product.uid` a `productv2/` ARN. The files keep the wrapper of their ASFF
twin: a bare finding, an array, a GetFindingsV2 answer (`{"Findings": [...]}`) or a
`Findings Imported V2` EventBridge event.

Hand-written by the Lever project (no third-party data). Run it after changing a demo finding:
    python3 tools/demo-asff-to-ocsf.py
`.ci/run` runs it with `--check`: the committed files must be what it writes.
"""

import hashlib
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "examples/demo/findings"
DST = ROOT / "examples/demo/findings-ocsf"

SEVERITY_ID = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
STATUS_ID = {"NEW": 1, "NOTIFIED": 2, "SUPPRESSED": 3, "RESOLVED": 4}
STATUS_NAME = {1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 5: "Archived"}
CFN_TYPE = {
    "AwsAccount": "AWS::::Account",
    "AwsEc2Instance": "AWS::EC2::Instance",
    "AwsEc2SecurityGroup": "AWS::EC2::SecurityGroup",
    "AwsRdsDbInstance": "AWS::RDS::DBInstance",
    "AwsS3Bucket": "AWS::S3::Bucket",
    "AwsCloudTrailTrail": "AWS::CloudTrail::Trail",
    "AwsLambdaFunction": "AWS::Lambda::Function",
    "AwsIamPolicy": "AWS::IAM::Policy",
}


def epoch_ms(iso):
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def dt(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def native_id(kind, arn):
    """The service-native id Security Hub v2 puts in `uid` (the ARN goes to `uid_alt`)."""
    if kind == "AwsAccount":
        return arn.rsplit(":", 1)[-1]
    if kind == "AwsS3Bucket":
        return arn.split(":::", 1)[-1]
    if kind == "AwsLambdaFunction":
        return arn.rsplit(":", 1)[-1]
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def resource(r, account):
    kind = r["Type"]
    out = {
        "cloud_partition": r.get("Partition", "aws"),
        "owner": {"account": {"uid": account}},
        "region": r.get("Region", "us-east-1"),
        "type": CFN_TYPE[kind],
        "uid": native_id(kind, r["Id"]),
    }
    if r["Id"].startswith("arn:"):
        out["uid_alt"] = r["Id"]
    if r.get("Tags"):
        out["tags"] = [{"name": k, "value": v} for k, v in r["Tags"].items()]
    return out


def finding(a):
    guardduty = a["ProductArn"].endswith("/aws/guardduty")
    severity = SEVERITY_ID[a["Severity"]["Label"]]
    status = 5 if a.get("RecordState") == "ARCHIVED" else STATUS_ID[a["Workflow"]["Status"]]
    info = {
        "created_time": epoch_ms(a["CreatedAt"]),
        "created_time_dt": dt(a["CreatedAt"]),
        "desc": a.get("Description", a["Title"]),
        "first_seen_time_dt": dt(a.get("FirstObservedAt", a["CreatedAt"])),
        "last_seen_time_dt": dt(a.get("LastObservedAt", a["UpdatedAt"])),
        "modified_time": epoch_ms(a["UpdatedAt"]),
        "modified_time_dt": dt(a["UpdatedAt"]),
        "title": a["Title"],
        "uid": a["Id"],
    }
    if guardduty:
        # GuardDuty 1.6.0 samples: "Threats" and the GuardDuty type (`Purpose:Resource/Name`).
        gd_type = a["Types"][0].rsplit("/", 1)[-1].replace("-", "/", 1)
        info["types"] = ["Threats", gd_type]
    else:
        info["types"] = list(a.get("Types", [])) + ["Posture Management"]
    out = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_name": "Findings",
        "category_uid": 2,
        "class_name": "Detection Finding" if guardduty else "Compliance Finding",
        "class_uid": 2004 if guardduty else 2003,
        "cloud": {
            "account": {"type": "AWS Account", "type_id": 10, "uid": a["AwsAccountId"]},
            "provider": "AWS",
            "region": a["Region"],
        },
        "finding_info": info,
        "metadata": {
            "product": {
                "name": a.get("ProductName", "Security Hub"),
                "uid": a["ProductArn"].replace("::product/", "::productv2/"),
                "vendor_name": "AWS",
            },
            "profiles": ["cloud", "datetime"],
            "uid": hashlib.sha256(a["Id"].encode()).hexdigest(),
            "version": "1.6.0",
        },
        "resources": [resource(r, a["AwsAccountId"]) for r in a["Resources"]],
        "severity": ["", "Informational", "Low", "Medium", "High", "Critical"][severity],
        "severity_id": severity,
        "status": STATUS_NAME[status],
        "status_id": status,
        "time": epoch_ms(a["UpdatedAt"]),
        "time_dt": dt(a["UpdatedAt"]),
        "type_name": ("Detection Finding" if guardduty else "Compliance Finding") + ": Create",
        "type_uid": 200401 if guardduty else 200301,
    }
    if "Compliance" in a:
        c = a["Compliance"]
        comp = {
            "status": {"PASSED": "Pass", "FAILED": "Fail", "WARNING": "Warning"}[c["Status"]],
            "status_id": {"PASSED": 1, "WARNING": 2, "FAILED": 3}[c["Status"]],
        }
        if c.get("SecurityControlId"):
            comp["control"] = c["SecurityControlId"]
        standards = [s["StandardsId"] for s in c.get("AssociatedStandards", [])]
        if standards:
            comp["standards"] = standards
        out["compliance"] = comp
    rec = a.get("Remediation", {}).get("Recommendation", {})
    if rec:
        out["remediation"] = {"desc": rec.get("Text", "")}
        if rec.get("Url"):
            out["remediation"]["references"] = [rec["Url"]]
    return out


def convert(doc):
    if isinstance(doc, list):
        return [finding(f) for f in doc]
    if "detail" in doc:
        event = dict(doc)
        event["detail-type"] = "Findings Imported V2"
        event["detail"] = {"findings": [finding(f) for f in doc["detail"]["findings"]]}
        return event
    if "Findings" in doc:
        return {"Findings": [finding(f) for f in doc["Findings"]]}
    return finding(doc)


def main():
    check = "--check" in sys.argv
    DST.mkdir(exist_ok=True)
    stale = []
    for src in sorted(SRC.glob("*.json")):
        text = json.dumps(convert(json.loads(src.read_text())), indent=2) + "\n"
        dst = DST / src.name
        if check:
            if not dst.is_file() or dst.read_text() != text:
                stale.append(dst.name)
        else:
            dst.write_text(text)
    if stale:
        print("stale OCSF demo files (run python3 tools/demo-asff-to-ocsf.py):", ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
