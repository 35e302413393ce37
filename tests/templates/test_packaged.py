"""`make package`: dist/provider.packaged.yaml defaults S3Key to the zip's content-addressed key."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cloudhsm_backup_restore_pipeline.__main__ import main
from cloudhsm_backup_restore_pipeline.build import PackageResult, packaged_provider
from cloudhsm_backup_restore_pipeline.lambda_zip import PackagingError, ZipDigest

from tests.templates.cfn import TEMPLATES, load


def test_writes_the_zip_and_template_into_dist(packaged: PackageResult) -> None:
    assert packaged.zip_path.name == "cloudhsm-backup-restore-lambda.zip"
    assert packaged.template_path == packaged.zip_path.parent / "provider.packaged.yaml"


def test_s3_key_defaults_to_the_zip_hash(packaged: PackageResult) -> None:
    sha = hashlib.sha256(packaged.zip_path.read_bytes()).hexdigest()
    template = load(packaged.template_path.read_text(encoding="utf-8"))
    assert template["Parameters"]["S3Key"]["Default"] == f"cloudhsm-backup-restore/{sha}.zip"
    assert "Default" not in template["Parameters"]["S3Bucket"]  # the bucket is the user's


def test_only_the_s3_key_default_differs_from_provider(packaged: PackageResult) -> None:
    original = load((TEMPLATES / "provider.yaml").read_text(encoding="utf-8"))
    generated = load(packaged.template_path.read_text(encoding="utf-8"))
    del generated["Parameters"]["S3Key"]["Default"]
    assert generated == original


def test_refuses_a_template_without_a_plain_s3_key_parameter() -> None:
    code = ZipDigest(size=1, sha256_hex="0" * 64, code_sha256="AA==")
    with pytest.raises(PackagingError, match="S3Key"):
        packaged_provider("Parameters:\n  Bucket:\n    Type: String\n", code)
    with pytest.raises(PackagingError, match="already has a Default"):
        packaged_provider("Parameters:\n  S3Key:\n    Type: String\n    Default: x\n", code)


def test_cli_prints_size_and_both_hashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dist", str(tmp_path / "dist")]) == 0
    out = capsys.readouterr().out
    data = (tmp_path / "dist" / "cloudhsm-backup-restore-lambda.zip").read_bytes()
    assert f"{len(data)} bytes" in out
    assert hashlib.sha256(data).hexdigest() in out
    assert base64.b64encode(hashlib.sha256(data).digest()).decode() in out
    assert "aws cloudformation deploy" in out


def test_cli_reports_errors_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("Parameters: {}\n")
    assert main(["--dist", str(tmp_path / "dist"), "--template", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
