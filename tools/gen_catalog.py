#!/usr/bin/env python3
"""Regenerates src/controls/catalog.tsv, Lever's own table of Security Hub controls.

Inputs (read-only, external facts): ../shared/conformance/controls/*.csv
  - securityhub-controls-2023-03.csv (AWS documentation, CC-BY-SA-4.0)
  - fsbp-controls-added-after-2023-03.from-prowler.csv (Prowler transcription, Apache-2.0)
  - ../shared/conformance/asff/findings/*.json: real Security Hub findings of controls newer than
    both lists (e.g. EC2.44 of the 2024 Resource Tagging Standard) give the id, title,
    severity and remediation URL the finding carries; nothing else is known about them.
The `source` column says where each row comes from: `aws-docs-2023-03`, `prowler-fsbp`, or
`asff:<file>` (the corpus file whose finding describes the control).
The PCI DSS v3.2.1 control-id mapping below is transcribed from the AWS Security Hub user guide
("Consolidated controls - changes to control IDs"); CIS mappings come from the
`related_requirements` column.

Usage: python3 tools/gen_catalog.py [../shared/conformance/controls] > src/controls/catalog.tsv
"""
import csv
import json
import re
import sys
from pathlib import Path

PCI = {
    "PCI.AutoScaling.1": "AutoScaling.1", "PCI.CloudTrail.1": "CloudTrail.2",
    "PCI.CloudTrail.2": "CloudTrail.3", "PCI.CloudTrail.3": "CloudTrail.4",
    "PCI.CloudTrail.4": "CloudTrail.5", "PCI.CodeBuild.1": "CodeBuild.1",
    "PCI.CodeBuild.2": "CodeBuild.2", "PCI.Config.1": "Config.1", "PCI.CW.1": "CloudWatch.1",
    "PCI.DMS.1": "DMS.1", "PCI.EC2.1": "EC2.1", "PCI.EC2.2": "EC2.2", "PCI.EC2.4": "EC2.12",
    "PCI.EC2.5": "EC2.13", "PCI.EC2.6": "EC2.6", "PCI.ELBV2.1": "ELB.1", "PCI.ES.1": "ES.2",
    "PCI.ES.2": "ES.1", "PCI.GuardDuty.1": "GuardDuty.1", "PCI.IAM.1": "IAM.4",
    "PCI.IAM.2": "IAM.2", "PCI.IAM.3": "IAM.1", "PCI.IAM.4": "IAM.6", "PCI.IAM.5": "IAM.9",
    "PCI.IAM.6": "IAM.19", "PCI.IAM.7": "IAM.8", "PCI.IAM.8": "IAM.10", "PCI.KMS.1": "KMS.4",
    "PCI.Lambda.1": "Lambda.1", "PCI.Lambda.2": "Lambda.3", "PCI.Opensearch.1": "Opensearch.2",
    "PCI.RDS.1": "RDS.1", "PCI.RDS.2": "RDS.2", "PCI.Redshift.1": "Redshift.1",
    "PCI.S3.1": "S3.3", "PCI.S3.2": "S3.2", "PCI.S3.3": "S3.7", "PCI.S3.4": "S3.4",
    "PCI.S3.5": "S3.5", "PCI.S3.6": "S3.1", "PCI.SageMaker.1": "SageMaker.1",
    "PCI.SSM.1": "SSM.2", "PCI.SSM.2": "SSM.3", "PCI.SSM.3": "SSM.1",
}

COLUMNS = ["control_id", "title", "severity", "remediation_url", "doc_url", "category",
           "resource_types", "schedule_type", "standards", "cis_1_2", "cis_1_4", "pci_3_2_1",
           "source"]


def asff_findings(doc):
    """Every ASFF finding in a document (a finding, a list, a GetFindings page, an event)."""
    if isinstance(doc, dict):
        if "SchemaVersion" in doc and "ProductArn" in doc:
            yield doc
        else:
            for v in doc.values():
                yield from asff_findings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from asff_findings(v)


def corpus_controls(asff_dir):
    """{control id: row} for the consolidated control ids of Security Hub's own findings."""
    out = {}
    for path in sorted(asff_dir.glob("*.json")):
        for f in asff_findings(json.load(open(path, encoding="utf-8"))):
            if not f.get("ProductArn", "").endswith("/aws/securityhub"):
                continue
            cid = (f.get("Compliance") or {}).get("SecurityControlId")
            gen = f.get("GeneratorId") or ""
            if not cid and gen.startswith("security-control/"):
                cid = gen.split("/", 1)[1]
            if not cid or cid in out:
                continue
            url = ((f.get("Remediation") or {}).get("Recommendation") or {}).get("Url") or ""
            if not url.startswith("https://docs.aws.amazon.com/"):
                url = ""
            out[cid] = {
                "control_id": cid, "title": clean(f.get("Title")),
                "severity": (f.get("Severity") or {}).get("Label", ""),
                "remediation_url": url, "doc_url": "", "category": "",
                "resource_types": "",  # ASFF resource types, not the catalog's CloudFormation ones
                "schedule_type": "", "standards": "",
                "cis_1_2": "", "cis_1_4": "", "pci_3_2_1": "", "source": f"asff:{path.name}",
            }
    return out


def clean(s):
    return re.sub(r"\s+", " ", (s or "")).strip()


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/conformance/controls")
    rows = {}
    for r in csv.DictReader(open(src / "securityhub-controls-2023-03.csv", encoding="utf-8")):
        reqs = [x.strip() for x in r["related_requirements"].split(";")]
        cis12 = [x.split("/", 1)[1] for x in reqs if x.startswith("CIS AWS Foundations Benchmark v1.2.0/")]
        cis14 = [x.split("/", 1)[1] for x in reqs if x.startswith("CIS AWS Foundations Benchmark v1.4.0/")]
        rows[r["control_id"]] = {
            "control_id": r["control_id"], "title": clean(r["title"]), "severity": r["severity"],
            "remediation_url": r["remediation_url"], "doc_url": r["doc_url"],
            "category": clean(r["category"]), "resource_types": clean(r["resource_types"]),
            "schedule_type": r["schedule_type"], "standards": r["standards"],
            "cis_1_2": ",".join(cis12), "cis_1_4": ",".join(cis14), "pci_3_2_1": "",
            "source": "aws-docs-2023-03",
        }
    for r in csv.DictReader(open(src / "fsbp-controls-added-after-2023-03.from-prowler.csv", encoding="utf-8")):
        if r["control_id"] in rows:
            continue
        rows[r["control_id"]] = {
            "control_id": r["control_id"], "title": clean(r["title"]), "severity": r["severity"],
            "remediation_url": r["remediation_url"], "doc_url": "", "category": "",
            "resource_types": "", "schedule_type": "", "standards": "FSBP",
            "cis_1_2": "", "cis_1_4": "", "pci_3_2_1": "", "source": "prowler-fsbp",
        }
    asff_dir = src.parent / "asff" / "findings"
    if asff_dir.is_dir():
        for cid, row in corpus_controls(asff_dir).items():
            rows.setdefault(cid, row)
    for pci, cid in PCI.items():
        if cid not in rows:
            sys.exit(f"PCI mapping {pci} -> {cid}: control not in the catalog")
        rows[cid]["pci_3_2_1"] = ",".join(filter(None, [rows[cid]["pci_3_2_1"], pci]))
    out = sys.stdout
    out.write("# Generated by tools/gen_catalog.py from ../shared/conformance/controls (AWS Security Hub user guide,\n")
    out.write("# CC-BY-SA-4.0; Prowler, Apache-2.0) and ../shared/conformance/asff (controls newer than both).\n")
    out.write("# Column `source`: aws-docs-2023-03 | prowler-fsbp | asff:<corpus file>. Do not edit by hand.\n")
    out.write("\t".join(COLUMNS) + "\n")
    for cid in sorted(rows, key=lambda c: (c.split(".")[0].lower(), int(re.sub(r"\D", "", c.split(".")[-1]) or 0))):
        r = rows[cid]
        for k, v in r.items():
            if "\t" in v or "\n" in v:
                sys.exit(f"{cid}.{k} holds a tab or newline")
        out.write("\t".join(r[c] for c in COLUMNS) + "\n")


if __name__ == "__main__":
    main()
