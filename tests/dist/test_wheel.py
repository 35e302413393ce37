"""The built wheel, installed into a clean venv outside the checkout, runs every entry point a user would.

One venv per module (building it installs aws-cdk-lib from pip's cache: about a minute); every check
runs the installed commands from a temporary folder, with no PYTHONPATH, so nothing leaks in from the
checkout. Everything lives under pytest's tmp folder and is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
SOURCE_FOLDERS = ("handler", "cdk", "offline", "pipeline")

TWO_RESOURCES = """
Parameters:
  First: {Type: String, Default: backup-pipeline2first}
Resources:
  Kept:
    Type: Custom::CloudHsmBackupRestore
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, BackupId: !Ref First}
  Dropped:
    Type: Custom::CloudHsmBackupRestore
    Properties: {ServiceToken: !ImportValue provider-ServiceToken, BackupId: backup-pipeline2second, OnDelete: Delete}
Outputs:
  KeptArn: {Value: !GetAtt Kept.BackupArn}
  DroppedTeam: {Value: !GetAtt Dropped.Tag.Team}
"""
SEED = {
    "region": "eu-west-2",
    "account": "210987654321",
    "restore_seconds": 4,
    "backups": [
        {"id": "backup-pipeline2first", "state": "PENDING_DELETION", "cluster": "cluster-pipeline2abc"},
        {"id": "backup-pipeline2second", "state": "PENDING_DELETION", "tags": {"Team": "payments"}},
    ],
}
CDK_APP = """
import aws_cdk as cdk
from cloudhsm_backup_restore_cdk import RestoredBackup

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "Restore", env=cdk.Environment(account="111122223333", region="eu-west-1"))
backup = RestoredBackup(stack, "Backup", backup_id="backup-abcdefghijk", removal_policy=cdk.RemovalPolicy.DESTROY)
cdk.CfnOutput(stack, "Arn", value=backup.backup_arn)
app.synth()
"""


@dataclass(frozen=True)
class Installed:
    """A clean venv with the wheel (and its [cdk,offline] extras) and a scratch folder outside the checkout."""

    wheel: Path
    sdist: Path
    bin: Path
    work: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run an installed command in the scratch folder."""
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build wheel + sdist (python -m build), install the wheel with [cdk,offline] into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    try:
        assert not base.is_relative_to(ROOT)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        source = _copy_of_the_source(base / "source")  # setuptools writes egg-info and build/ next to its input
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)],
            check=True,
            capture_output=True,
            env=env,
            timeout=300,
        )
        (wheel,) = (base / "dist").glob("*.whl")
        (sdist,) = (base / "dist").glob("*.tar.gz")
        venv.EnvBuilder(with_pip=True).create(base / "venv")
        bin_dir = base / "venv" / "bin"
        subprocess.run(
            [
                str(bin_dir / "python"),
                *("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"),
                f"cloudhsm-backup-restore[cdk,offline] @ {wheel.as_uri()}",
            ],
            check=True,
            capture_output=True,
            env=env,
            timeout=600,
        )
        work = base / "work"
        work.mkdir()
        yield Installed(wheel, sdist, bin_dir, work, {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"})
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _copy_of_the_source(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), copied to ``dest``: what a clone would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _packages_in_source() -> set[str]:
    found = set()
    for folder in SOURCE_FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found.add(init.parent.relative_to(ROOT / folder).as_posix())
    return found


def test_the_wheel_holds_every_package_data_file_and_the_license(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith("/__init__.py")}
    assert packages == _packages_in_source()
    for data in (
        "cloudhsm_offline/cfn/demo_template.yaml",
        "cloudhsm_offline/lambda_runtime/_bootstrap.py",
        "cloudhsm_offline/emulator/demo_seed.yaml",
        "cloudhsm_offline/py.typed",
        "cloudhsm_backup_restore/py.typed",
    ):
        assert data in names
    assert f"cloudhsm_backup_restore-{VERSION}.dist-info/licenses/LICENSE" in names
    assert any(name.endswith("share/cloudhsm-backup-restore/cfn-templates/provider.yaml") for name in names)
    with tarfile.open(installed.sdist) as archive:
        sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "handler/requirements.txt", "cfn-templates/provider.yaml"} <= sdist


def test_every_command_reports_the_version(installed: Installed) -> None:
    for command, name in (
        (["cloudhsm-offline", "--version"], "cloudhsm-offline"),
        (["cloudhsm-offline", "emulator", "--version"], "cloudhsm-offline emulator"),
        (["cloudhsm-backup-restore-package", "--version"], "cloudhsm-backup-restore-package"),
    ):
        result = installed.run(*command)
        assert (result.returncode, result.stdout.strip()) == (0, f"{name} {VERSION}"), result.stderr


def test_the_offline_cli_runs_a_two_resource_template_in_another_region(installed: Installed) -> None:
    (installed.work / "two.yaml").write_text(TWO_RESOURCES, encoding="utf-8")
    (installed.work / "seed.json").write_text(json.dumps(SEED), encoding="utf-8")
    result = installed.run(
        "cloudhsm-offline",
        "run-template",
        "two.yaml",
        "--seed",
        "seed.json",
        "--delete",
        "--output",
        "json",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["stack"]["region"] == "eu-west-2"
    assert [s["status"] for s in report["steps"]] == ["CREATE_COMPLETE", "DELETE_COMPLETE"]
    assert report["outputs"] == {
        "KeptArn": "arn:aws:cloudhsm:eu-west-2:210987654321:backup/backup-pipeline2first",
        "DroppedTeam": "payments",
    }
    assert report["summary"]["failed"] == 0
    assert report["summary"]["succeeded"] == len(report["operations"]) == 4


def test_a_cdk_app_synthesizes_with_the_installed_construct(installed: Installed) -> None:
    (installed.work / "app.py").write_text(CDK_APP, encoding="utf-8")
    result = installed.run("python", "app.py", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "!!" not in result.stderr  # jsii's Node banner is silenced (tests/conftest.py exports the variables)
    out = installed.work / "cdk.out"
    template = json.loads((out / "Restore.template.json").read_text(encoding="utf-8"))
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert "Custom::CloudHsmBackupRestore" in kinds
    assets = [p for p in out.glob("asset.*") if (p / "cloudhsm_backup_restore" / "app.py").is_file()]
    assert len(assets) == 1  # the provider's code, staged from the installed handler
    assert (assets[0] / "crhelper" / "__init__.py").is_file()


def test_the_packaging_command_builds_the_zip_and_template_without_a_checkout(installed: Installed) -> None:
    result = installed.run("cloudhsm-backup-restore-package", "--dist", "out")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(installed.work / "out" / "cloudhsm-backup-restore-lambda.zip") as archive:
        names = set(archive.namelist())
    assert "cloudhsm_backup_restore/app.py" in names
    assert "crhelper/__init__.py" in names
    assert not any(name.startswith(("boto3/", "cloudhsm_offline/")) for name in names)
    packaged = (installed.work / "out" / "provider.packaged.yaml").read_text(encoding="utf-8")
    assert "S3Key: cloudhsm-backup-restore/" in packaged
    assert "!Ref S3Key" not in packaged
