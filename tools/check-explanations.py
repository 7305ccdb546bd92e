#!/usr/bin/env python3
"""Checks the curated control explanations (issue-templates/controls/*.toml).

Usage: tools/check-explanations.py [DIR_OR_FILE ...]   (default: issue-templates/controls)

For each file: the required fields are present and not empty; the id matches the file name;
prose has no links, HTML, mentions or issue references; links point at allowed hosts; every
Terraform snippet parses (python-hcl2); every CloudFormation snippet, wrapped into a minimal
template, passes cfn-lint; where [checkov] names checks, the fixed snippet passes each and the
broken one fails each. Exits 1 listing every problem as `file: field: message`.

Needs cfn-lint, checkov and python-hcl2 (pip install cfn-lint checkov python-hcl2).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ALLOWED_HOSTS = {
    "docs.aws.amazon.com",
    "aws.amazon.com",
    "registry.terraform.io",
    "docs.github.com",
    "cheatsheetseries.owasp.org",
}
PROSE = [
    ("why",),
    ("matters_less",),
    ("fix", "summary"),
    ("fix", "side_effects"),
    ("verify", "how"),
]
REQUIRED = PROSE + [("fix", "cli"), ("verify", "command")]
SNIPPETS = [
    ("fix", "terraform"),
    ("fix", "terraform_broken"),
    ("fix", "cloudformation"),
    ("fix", "cloudformation_broken"),
    ("fix", "cdk"),
    ("fix", "cli"),
    ("verify", "command"),
]
KNOWN = {
    "": {"id", "why", "matters_less", "fix", "verify", "exception", "checkov", "links"},
    "fix": {
        "summary", "terraform", "terraform_broken", "cloudformation",
        "cloudformation_broken", "cdk", "cli", "side_effects", "no_iac",
    },
    "verify": {"how", "command"},
    "exception": {"reasons", "evidence"},
    "checkov": {"terraform", "cloudformation"},
}


def get(doc, path):
    for p in path:
        if not isinstance(doc, dict) or p not in doc:
            return None
        doc = doc[p]
    return doc


def catalog_ids(root):
    ids = set()
    with open(root / "src/controls/catalog.tsv", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or line.startswith("control_id"):
                continue
            ids.add(line.split("\t", 1)[0])
    return ids


def prose_problems(text):
    out = []
    if re.search(r"https?://|\]\(|<|>", text):
        out.append("prose may not hold links, HTML or angle brackets")
    if "@" in text:
        out.append("prose may not hold '@' (GitHub mentions)")
    if "#" in text:
        out.append("prose may not hold '#' (GitHub issue references, headings)")
    if "\\" in text:
        out.append("prose may not hold backslashes")
    if "```" in text:
        out.append("prose may not hold code blocks")
    return out


def cfn_template(fragment):
    body = "\n".join("  " + l if l.strip() else "" for l in fragment.strip("\n").splitlines())
    return 'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n' + body + "\n"


def run(cmd, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def checkov(framework, path, check):
    code, out = run([
        "checkov", "--skip-download", "--quiet", "--compact", "--framework", framework,
        "--check", check, "-o", "json", "-f", str(path),
    ])
    try:
        data = json.loads(out[out.index("{"):]) if "{" in out else {}
    except ValueError:
        return None, out
    if isinstance(data, list):
        data = data[0] if data else {}
    # Only `check` runs (--check), so the summary counts are its results.
    summary = data.get("summary", {})
    return (int(summary.get("passed", 0)), int(summary.get("failed", 0))), out


def check_file(path, catalog, tools):
    problems = []
    name = path.name

    def bad(field, msg):
        problems.append(f"{path}: {field}: {msg}")

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        bad("(file)", f"not valid TOML: {e}")
        return problems
    cid = doc.get("id")
    if cid != name[: -len(".toml")]:
        bad("id", f"{cid!r} does not match the file name")
    if catalog and cid not in catalog:
        bad("id", f"{cid!r} is not in src/controls/catalog.tsv")
    for section, keys in KNOWN.items():
        table = doc if section == "" else doc.get(section, {})
        if not isinstance(table, dict):
            bad(section, "must be a table")
            continue
        for k in table:
            if k not in keys:
                bad(f"{section + '.' if section else ''}{k}", "unknown field")
    for field in REQUIRED:
        v = get(doc, field)
        if not isinstance(v, str) or not v.strip():
            bad(".".join(field), "required and must not be empty")
    for field in PROSE:
        v = get(doc, field)
        if isinstance(v, str):
            for p in prose_problems(v):
                bad(".".join(field), p)
    for key in ("reasons", "evidence"):
        v = get(doc, ("exception", key))
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x.strip() for x in v):
            bad(f"exception.{key}", "required: a non-empty list of non-empty strings")
        else:
            for x in v:
                for p in prose_problems(x):
                    bad(f"exception.{key}", p)
    for field in SNIPPETS:
        v = get(doc, field)
        if v is None:
            continue
        if not isinstance(v, str) or not v.strip():
            bad(".".join(field), "must not be empty when present")
        elif "```" in v:
            bad(".".join(field), "may not hold three backticks")
    nia = get(doc, ("fix", "no_iac"))
    if nia is not None and (not isinstance(nia, str) or not nia.strip()):
        bad("fix.no_iac", "must not be empty when present")
    if not get(doc, ("fix", "terraform")) and not get(doc, ("fix", "cloudformation")) and not nia:
        bad("fix", "needs terraform or cloudformation, or no_iac saying why not")
    for link in doc.get("links", []) or []:
        m = re.fullmatch(r"https://([a-z0-9.-]+)(/[^\s<>()\"'`]*)?", link or "")
        if not m or m.group(1) not in ALLOWED_HOSTS:
            bad("links", f"{link!r}: https:// on an allowed host only ({', '.join(sorted(ALLOWED_HOSTS))})")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for key in ("terraform", "terraform_broken"):
            v = get(doc, ("fix", key))
            if not isinstance(v, str) or not v.strip():
                continue
            d = tmp / key
            d.mkdir()
            (d / "main.tf").write_text(v)
            try:
                import hcl2

                hcl2.loads(v)
            except Exception as e:  # noqa: BLE001
                bad(f"fix.{key}", f"does not parse as HCL: {str(e).splitlines()[0] if str(e) else e}")
        for key in ("cloudformation", "cloudformation_broken"):
            v = get(doc, ("fix", key))
            if not isinstance(v, str) or not v.strip():
                continue
            f = tmp / f"{key}.yaml"
            f.write_text(cfn_template(v))
            if "cfn-lint" in tools:
                code, out = run(["cfn-lint", "--format", "parseable", str(f)])
                # The broken shape may trip cfn-lint's own security rules; the fixed one may not.
                if code != 0 and key == "cloudformation":
                    for line in out.strip().splitlines() or [out]:
                        bad(f"fix.{key}", f"cfn-lint: {line.replace(str(f), 'template')}")
                elif code != 0:
                    errors = [l for l in out.splitlines() if ":E" in l]
                    for line in errors:
                        bad(f"fix.{key}", f"cfn-lint: {line.replace(str(f), 'template')}")
        if "checkov" in tools:
            for framework, fixed_key, broken_key, target in (
                ("terraform", "terraform", "terraform_broken", "main.tf"),
                ("cloudformation", "cloudformation", "cloudformation_broken", None),
            ):
                checks = get(doc, ("checkov", framework)) or []
                for check in checks:
                    for key, want in ((fixed_key, "pass"), (broken_key, "fail")):
                        v = get(doc, ("fix", key))
                        if not isinstance(v, str) or not v.strip():
                            bad(f"checkov.{framework}", f"{check}: fix.{key} is needed to test it")
                            continue
                        p = tmp / key / target if target else tmp / f"{key}.yaml"
                        counts, out = checkov(framework, p, check)
                        if counts is None:
                            bad(f"fix.{key}", f"checkov {check}: could not read its output: {out[:300]}")
                            continue
                        passed, failed = counts
                        if want == "pass" and (failed or not passed):
                            bad(f"fix.{key}", f"checkov {check}: expected to pass (passed {passed}, failed {failed})")
                        if want == "fail" and not failed:
                            bad(f"fix.{key}", f"checkov {check}: expected to fail (passed {passed}, failed {failed})")
    return problems


def main(argv):
    root = Path(__file__).resolve().parent.parent
    targets = [Path(a) for a in argv] or [root / "issue-templates/controls"]
    files = []
    for t in targets:
        files += sorted(t.glob("*.toml")) if t.is_dir() else [t]
    tools = {t for t in ("cfn-lint", "checkov") if subprocess.run(["sh", "-c", f"command -v {t}"], capture_output=True).returncode == 0}
    missing = {"cfn-lint", "checkov"} - tools
    if missing and os.environ.get("LEVER_REQUIRE_LINTERS"):
        print(f"check-explanations: {', '.join(sorted(missing))} not installed", file=sys.stderr)
        return 1
    for m in sorted(missing):
        print(f"*** check-explanations: {m} not installed: its checks are SKIPPED ***", file=sys.stderr)
    catalog = catalog_ids(root) if (root / "src/controls/catalog.tsv").exists() else set()
    workers = int(os.environ.get("CHECK_EXPLANATIONS_JOBS", "2"))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        results = list(ex.map(lambda f: check_file(f, catalog, tools), files))
    problems = [p for r in results for p in r]
    for p in problems:
        print(p, flush=True)
    print(f"check-explanations: {len(files)} files, {len(problems)} problems", file=sys.stderr)
    return 1 if problems or not files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
