"""Version, CHANGELOG, LICENSE and Makefile stay in step: one version, read back from the installed metadata."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import cloudhsm_backup_restore_pipeline
import cloudhsm_offline

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
"""sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt (the copy s3transfer and many others ship)."""


def test_the_packages_read_the_version_from_the_installed_metadata() -> None:
    declared = PYPROJECT["project"]["version"]
    assert version("cloudhsm-backup-restore") == declared
    assert cloudhsm_offline.__version__ == declared
    assert cloudhsm_backup_restore_pipeline.__version__ == declared


def test_changelog_has_an_unreleased_section_and_the_current_version_on_top() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in text
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    released, date = headings[1]
    assert released == PYPROJECT["project"]["version"]
    assert date, "a released version carries its date"


def test_license_is_the_apache_2_0_text_and_ships_in_the_wheel() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_0_SHA256


def test_make_help_lists_every_phony_target_and_each_has_a_recipe() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.MULTILINE)
    assert phony is not None
    targets = phony.group(1).split()
    help_text = subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "help"],
        cwd=ROOT / "tests",  # from a subfolder: the Makefile anchors its paths at its own folder
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = re.findall(r"^make (\S+)", help_text, re.MULTILINE)
    assert listed == targets
    for target in targets:
        rule = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert rule is not None, f"phony target {target} has no recipe"


def test_make_package_runs_from_any_folder_with_only_the_crhelper_venv() -> None:
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "../Makefile", "package"],
        cwd=ROOT / "cfn-templates",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        f"cd {ROOT} && PYTHONPATH={ROOT}/pipeline {ROOT}/.venv-package/bin/python -m cloudhsm_backup_restore_pipeline"
        in (dry_run)
    )
    assert "[dev]" not in dry_run  # never the 1 GB dev toolchain
