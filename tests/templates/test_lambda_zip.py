"""The Lambda zip: reproducible, small, and holding exactly the handler package and the pinned crhelper."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cloudhsm_backup_restore_pipeline import lambda_zip
from cloudhsm_backup_restore_pipeline.lambda_zip import (
    PackagingError,
    build_zip,
    digest,
    extract_zip,
    parse_requirements,
    stage_lambda_code,
)

from tests.templates.cfn import ROOT

HANDLER_MODULES = sorted(
    f"cloudhsm_backup_restore/{path.name}" for path in (ROOT / "handler" / "cloudhsm_backup_restore").glob("*.py")
)


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_two_builds_are_byte_identical(tmp_path: Path, lambda_zip: Path) -> None:
    again = build_zip(tmp_path / "again" / "code.zip")
    assert again.read_bytes() == lambda_zip.read_bytes()


def test_entries_are_sorted_with_fixed_time_mode_and_deflate(lambda_zip: Path) -> None:
    with zipfile.ZipFile(lambda_zip) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert not info.is_dir()


def test_holds_handler_package_and_crhelper(lambda_zip: Path) -> None:
    entries = names(lambda_zip)
    assert "cloudhsm_backup_restore/app.py" in entries
    assert [entry for entry in entries if entry.startswith("cloudhsm_backup_restore/")] == HANDLER_MODULES
    assert {
        "crhelper/__init__.py",
        "crhelper/resource_helper.py",
        "crhelper/log_helper.py",
        "crhelper/utils.py",
    } <= set(entries)
    assert "crhelper-2.0.12.dist-info/LICENSE" in entries
    assert "crhelper-2.0.12.dist-info/METADATA" in entries  # keeps importlib.metadata.version("crhelper") working


def test_holds_nothing_else(lambda_zip: Path) -> None:
    for entry in names(lambda_zip):
        top = entry.split("/")[0]
        assert top in {"cloudhsm_backup_restore", "crhelper", "crhelper-2.0.12.dist-info"}, entry
        assert "__pycache__" not in entry
        assert not entry.endswith((".pyc", ".pyi", "RECORD", "INSTALLER", "WHEEL"))
        assert "/tests/" not in entry
        assert not entry.split("/")[-1].startswith(("test_", "."))
        assert not top.startswith(("boto3", "botocore"))


def test_is_tens_of_kilobytes(lambda_zip: Path) -> None:
    assert lambda_zip.stat().st_size < 100 * 1024


def test_digest_matches_lambda_code_sha256(lambda_zip: Path) -> None:
    measured = digest(lambda_zip)
    raw = hashlib.sha256(lambda_zip.read_bytes()).digest()
    assert measured.sha256_hex == raw.hex()
    assert measured.size == lambda_zip.stat().st_size
    assert base64.b64decode(measured.code_sha256) == raw
    assert measured.s3_key == f"cloudhsm-backup-restore/{raw.hex()}.zip"


def test_unzipped_code_imports_with_its_own_crhelper(tmp_path: Path, lambda_zip: Path) -> None:
    code = extract_zip(lambda_zip, tmp_path / "task")
    script = (
        "import cloudhsm_backup_restore.app as app, crhelper, importlib.metadata as m;"
        "assert callable(app.handler);"
        "print(crhelper.__file__);"
        "print(m.version('crhelper'))"
    )
    env = {**os.environ, "PYTHONPATH": str(code), "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    crhelper_file, version = result.stdout.split()
    assert Path(crhelper_file).is_relative_to(code)
    assert version == "2.0.12"


def test_stage_matches_zip(tmp_path: Path, lambda_zip: Path) -> None:
    staged = stage_lambda_code(tmp_path / "staged")
    files = sorted(path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file())
    assert files == names(lambda_zip)
    assert all((staged / name).stat().st_mode & 0o777 == 0o644 for name in files)


def test_stage_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "left-over.txt").write_text("x")
    with pytest.raises(PackagingError, match="empty"):
        stage_lambda_code(tmp_path)


def test_stage_accepts_an_empty_directory(tmp_path: Path) -> None:
    assert stage_lambda_code(tmp_path) == tmp_path
    assert (tmp_path / "cloudhsm_backup_restore" / "__init__.py").is_file()


def test_requirements_come_from_handler_requirements_txt() -> None:
    pins, origin = lambda_zip.lambda_requirements()
    assert pins == {"crhelper": "2.0.12"}
    assert Path(origin) == ROOT / "handler" / "requirements.txt"


def test_installed_version_must_equal_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_zip, "lambda_requirements", lambda: ({"crhelper": "9.9.9"}, "requirements.txt"))
    with pytest.raises(PackagingError, match=r"Installed crhelper is 2\.0\.12 but requirements\.txt pins 9\.9\.9"):
        stage_lambda_code(tmp_path / "code")


def test_missing_pinned_distribution_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_zip, "lambda_requirements", lambda: ({"no-such-dist-xyz": "1.0"}, "requirements.txt"))
    with pytest.raises(PackagingError, match="not installed"):
        stage_lambda_code(tmp_path / "code")


def test_without_requirements_txt_the_project_metadata_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regular (non-editable) install ships no handler/requirements.txt: Requires-Dist pins instead."""
    installed = tmp_path / "site-packages" / "cloudhsm_backup_restore"
    installed.mkdir(parents=True)
    (installed.parent / "requirements.txt").write_text("unrelated==1.0\n")  # not next to handler/: ignored
    monkeypatch.setattr(lambda_zip, "handler_package_dir", lambda: installed)
    requires = ["boto3>=1.34", "crhelper==2.0.12", 'aws-cdk-lib==2.275.0; extra == "cdk"', "botocore==1.0"]
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: requires)
    pins, origin = lambda_zip.lambda_requirements()
    assert pins == {"crhelper": "2.0.12"}
    assert "Requires-Dist" in origin


def test_parse_requirements() -> None:
    assert parse_requirements("# pinned\ncrhelper == 2.0.12  # the framework\n\nFoo_Bar==1.0\n") == {
        "crhelper": "2.0.12",
        "foo-bar": "1.0",
    }
    with pytest.raises(PackagingError, match="line 1"):
        parse_requirements("crhelper>=2\n")


def test_extract_refuses_paths_outside(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../outside.txt", "x")
    with pytest.raises(PackagingError, match="outside"):
        extract_zip(evil, tmp_path / "task")
