"""`make package`: dist/provider.packaged.yaml names the zip's content-addressed key literally in the function's Code."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest
from cloudhsm_backup_restore_pipeline import __version__
from cloudhsm_backup_restore_pipeline.__main__ import main
from cloudhsm_backup_restore_pipeline.build import PackageResult, default_dist, package, packaged_provider
from cloudhsm_backup_restore_pipeline.lambda_zip import PackagingError, ZipDigest, handler_package_dir

from tests.templates.cfn import ROOT, TEMPLATES, load


def _code(template_path: Path) -> dict[str, str]:
    code: dict[str, str] = load(template_path.read_text(encoding="utf-8"))["Resources"]["Function"]["Properties"][
        "Code"
    ]
    return code


def test_writes_the_zip_and_template_into_dist(packaged: PackageResult) -> None:
    assert packaged.zip_path.name == "cloudhsm-backup-restore-lambda.zip"
    assert packaged.template_path == packaged.zip_path.parent / "provider.packaged.yaml"


def test_function_code_names_the_zip_hash_literally(packaged: PackageResult) -> None:
    sha = hashlib.sha256(packaged.zip_path.read_bytes()).hexdigest()
    template = load(packaged.template_path.read_text(encoding="utf-8"))
    # A literal, not a parameter: `aws cloudformation deploy` keeps a parameter's previous value on an
    # existing stack, so a new default would never reach it (reference/PROTOCOL.md, Deployment tooling).
    assert _code(packaged.template_path) == {
        "S3Bucket": {"Ref": "S3Bucket"},
        "S3Key": f"cloudhsm-backup-restore/{sha}.zip",
    }
    assert "S3Key" not in template["Parameters"]
    assert "Default" not in template["Parameters"]["S3Bucket"]  # the bucket is the user's


def test_only_the_code_location_differs_from_provider(packaged: PackageResult) -> None:
    original = load((TEMPLATES / "provider.yaml").read_text(encoding="utf-8"))
    generated = load(packaged.template_path.read_text(encoding="utf-8"))
    del original["Parameters"]["S3Key"]
    groups = original["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    groups[0]["Parameters"] = ["S3Bucket"]
    original["Resources"]["Function"]["Properties"]["Code"]["S3Key"] = packaged.code.s3_key
    assert generated == original


def test_different_handler_code_gives_a_different_code_location(packaged: PackageResult, tmp_path: Path) -> None:
    changed = tmp_path / "handler" / "cloudhsm_backup_restore"
    shutil.copytree(handler_package_dir(), changed, ignore=shutil.ignore_patterns("__pycache__"))
    with (changed / "app.py").open("a", encoding="utf-8") as app:
        app.write("\n# a new release\n")
    again = package(tmp_path / "dist-changed", handler_dir=changed)
    new_key, old_key = _code(again.template_path)["S3Key"], _code(packaged.template_path)["S3Key"]
    assert new_key != old_key
    assert new_key == f"cloudhsm-backup-restore/{hashlib.sha256(again.zip_path.read_bytes()).hexdigest()}.zip"
    same = package(tmp_path / "dist-same")  # unchanged code: the very same location
    assert _code(same.template_path)["S3Key"] == old_key


def test_refuses_a_template_without_the_expected_code_shape() -> None:
    code = ZipDigest(size=1, sha256_hex="0" * 64, code_sha256="AA==")
    with pytest.raises(PackagingError, match="S3Key"):
        packaged_provider("Parameters:\n  Bucket:\n    Type: String\n", code)
    no_code = "Parameters:\n  S3Key:\n    Type: String\nResources: {}\n"
    with pytest.raises(PackagingError, match="Code"):
        packaged_provider(no_code, code)
    leftover = no_code + "Outputs:\n  Key:\n    Value: !Ref S3Key\n"
    with pytest.raises(PackagingError):
        packaged_provider(leftover, code)


def test_dist_defaults_to_the_checkout_root_from_any_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "cfn-templates")
    assert default_dist() == ROOT / "dist"


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
    assert capsys.readouterr().err.startswith("cloudhsm-backup-restore-package: error: ")
    assert main(["--dist", str(tmp_path / "dist"), "--template", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cloudhsm-backup-restore-package {__version__}"
