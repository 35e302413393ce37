"""checkov 3 (--framework cloudformation) finds nothing in cfn-templates/: every check passes or is skipped in the
template's own Metadata with its reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.templates.cfn import TEMPLATES
from tests.templates.tools import tool

SKIPPED_ON_PURPOSE = {("CKV_AWS_27", "AWS::SQS::Queue.DefaultDeadLetterQueue")}
"""SQS-managed encryption (SqsManagedSseEnabled), as the construct's default queue; checkov only accepts a KMS key."""


def checkov(folder: Path) -> tuple[int, list[dict[str, Any]]]:
    """Run checkov on ``folder``; its exit code and its report(s). --skip-download: it contacts nothing."""
    result = subprocess.run(
        [
            str(tool(".venv-checkov", "checkov")),
            *("--framework", "cloudformation", "--directory", str(folder), "--output", "json", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout)
    return result.returncode, report if isinstance(report, list) else [report]


def test_checkov_exits_0_on_the_templates() -> None:
    code, reports = checkov(TEMPLATES)
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert code == 0
    skipped = {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["skipped_checks"]}
    assert skipped == SKIPPED_ON_PURPOSE
    passed = {c["check_id"] for r in reports for c in r["results"]["passed_checks"]}
    # The findings of issue 17, now passing: KMS for logs and environment, DLQ, reserved concurrency, VPC.
    assert {"CKV_AWS_158", "CKV_AWS_173", "CKV_AWS_116", "CKV_AWS_115", "CKV_AWS_117"} <= passed


def test_checkov_reports_a_finding(tmp_path: Path) -> None:
    """The harness really fails: the provider without its dead-letter queue is CKV_AWS_116."""
    text = (TEMPLATES / "provider.yaml").read_text(encoding="utf-8")
    start = text.index("      DeadLetterConfig:\n")
    end = text.index("\n", text.index("TargetArn:", start)) + 1
    (tmp_path / "provider.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    code, reports = checkov(tmp_path)
    assert code == 1
    assert [c["check_id"] for r in reports for c in r["results"]["failed_checks"]] == ["CKV_AWS_116"]


@pytest.mark.parametrize("check", ["CKV_AWS_27"])
def test_every_skip_gives_its_reason(check: str) -> None:
    text = (TEMPLATES / "provider.yaml").read_text(encoding="utf-8")
    block = text.split(f"- id: {check}\n", 1)[1]
    assert block.lstrip().startswith("comment: >-")
