"""Every command in the README still runs or parses, and the README stays a newcomer's guide (size, order, links).

Shell blocks parse (bash -n); `make` targets exist and dry-run; each `aws` command is parsed by the real AWS CLI
v1 (it then fails to connect to a closed port on 127.0.0.1: nothing leaves the machine); our own CLIs answer
--help; YAML snippets load as CloudFormation with no cfn-lint error or warning; JSON loads; Python compiles.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.templates import readme
from tests.templates.cfn import ROOT, findings, load
from tests.templates.tools import tool

MAX_BYTES = 25 * 1024
QUICK_START_BEFORE_LINE = 80
PARALLEL_PAGES = {"docs/lifecycle.md", "docs/cdk.md", "docs/offline.md"}
"""Written by other issues (15, 16, 18); linked here before they land."""
AWS_PARSE_ERRORS = ("usage: aws", "aws: error", "Unknown options", "Invalid choice", "argument ")
OUR_CLIS = {
    "cloudhsm-offline": [sys.executable, "-m", "cloudhsm_offline"],
    "cloudhsm-backup-restore-package": [sys.executable, "-m", "cloudhsm_backup_restore_pipeline"],
}


def all_commands() -> list[str]:
    return [command for block in readme.blocks("bash") for command in readme.commands(block)]


def test_readme_is_short_and_starts_with_aws() -> None:
    assert len(readme.README.read_bytes()) <= MAX_BYTES
    line = next(n for n, text in enumerate(readme.text().splitlines(), 1) if text == readme.QUICK_START)
    assert line < QUICK_START_BEFORE_LINE
    headings = [text for text in readme.text().splitlines() if text.startswith("## ")]
    assert headings[0] == readme.QUICK_START
    for topic in ("## Two commands", "## How it works", "## The resource", "## Troubleshooting", "## Documentation"):
        assert topic in headings


@pytest.mark.parametrize("block", readme.blocks("bash"), ids=lambda b: b.splitlines()[0][:40])
def test_shell_blocks_parse(block: str) -> None:
    subprocess.run(["bash", "-n"], input=block, text=True, check=True)


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.MULTILINE)
    assert phony is not None
    targets = [c.split()[1] for c in all_commands() if c.startswith("make ")]
    assert {"package", "demo", "test"} <= set(targets)
    for target in targets:
        assert target in phony.group(1).split(), target
        subprocess.run(["make", "-n", "-f", str(ROOT / "Makefile"), target], capture_output=True, check=True)


def test_our_clis_answer_help() -> None:
    used = [c for c in all_commands() + re.findall(r"`(cloudhsm-[a-z-]+ [^`]*)`", readme.text()) if c]
    for command in used:
        name = command.split()[0]
        if name in OUR_CLIS:
            subprocess.run([*OUR_CLIS[name], "--help"], capture_output=True, check=True, cwd=ROOT)


@pytest.mark.slow
def test_aws_commands_parse_with_the_real_cli(tmp_path: Path) -> None:
    aws = tool(".venv-awscli", "aws")
    [template] = [b for b in readme.blocks("yaml") if "Custom::CloudHsmBackupRestore" in b]
    (tmp_path / "my-restore.yaml").write_text(template, encoding="utf-8")
    (tmp_path / "cfn-templates").symlink_to(ROOT / "cfn-templates")  # docs/pipeline.md deploys consumer.yaml
    env = {
        "PATH": f"{aws.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the discard port, closed: every call fails to connect
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "BUCKET": "my-artifacts-bucket",
        "BACKUP_ARNS": "arn:aws:cloudhsm:eu-west-1:111122223333:backup/backup-abcdefghijk",
        "KEY": "cloudhsm-backup-restore/0.zip",
        "LOG_GROUP": "cloudhsm-backup-restore-provider-LogGroup-0",  # troubleshooting: the stack's output
    }
    pipeline_page = (ROOT / "docs" / "pipeline.md").read_text(encoding="utf-8")
    documented = all_commands() + [c for b in readme.blocks("bash", pipeline_page) for c in readme.commands(b)]
    commands = [c for c in documented if c.startswith("aws ")]
    assert len(commands) >= 5
    for command in commands:
        shlex.split(command)
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert not any(marker in result.stderr for marker in AWS_PARSE_ERRORS), (command, result.stderr)
        # Parsed, then stopped by a missing local file or the closed endpoint: never a success.
        assert result.returncode != 0, command
        assert (
            "does not exist" in result.stderr
            or "Invalid template path" in result.stderr
            or ("Could not connect to the endpoint URL" in result.stderr)
        ), (command, result.stderr)


def test_yaml_snippets_are_templates_that_lint_clean() -> None:
    snippets = readme.blocks("yaml")
    assert snippets
    for snippet in snippets:
        template = load(snippet)
        assert any(r["Type"] == "Custom::CloudHsmBackupRestore" for r in template["Resources"].values())
        # Errors and warnings; informational remarks (I4010: add architecture Metadata) would only lengthen it.
        assert [f for f in findings(snippet) if not f.startswith("I")] == []


def test_json_and_python_snippets_load() -> None:
    for snippet in readme.blocks("json"):
        json.loads(snippet)
    python = readme.blocks("python")
    assert python
    for snippet in python:
        compile(snippet, "README.md", "exec")


def test_relative_links_resolve() -> None:
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme.text())
    assert "docs/templates.md" in links
    for link in links:
        if link in PARALLEL_PAGES and not (ROOT / link).exists():
            continue
        assert (ROOT / link).exists(), link
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            resolved = (page.parent / target).resolve()
            if str(resolved.relative_to(ROOT)) in PARALLEL_PAGES and not resolved.exists():
                continue
            assert resolved.exists(), (page.name, target)
