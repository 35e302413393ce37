"""The example app (cdk/app.py): backup id from context, one output per attribute."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from aws_cdk import App, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cloudhsm_backup_restore_cdk.restored_backup import ATTRIBUTE_PROPERTIES
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE

from tests.cdk.matrix import recommended_flags
from tests.cdk.support import CLI_CONTEXT, PLAIN_ID, Synthesized, cdk_cli, logical_id

CDK_DIR = Path(__file__).resolve().parents[2] / "cdk"
APP = CDK_DIR / "app.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """cdk/app.py imported as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("cloudhsm_backup_restore_cdk_example", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cdk_json_runs_app_py() -> None:
    settings = json.loads((CDK_DIR / "cdk.json").read_text(encoding="utf-8"))
    assert settings["app"] == "python3 app.py"


def test_cdk_json_carries_the_flags_cdk_init_writes() -> None:
    """``cdk init`` writes aws-cdk-lib's recommended-feature-flags.json (checked against CLI 2.1148.1's init)."""
    settings = json.loads((CDK_DIR / "cdk.json").read_text(encoding="utf-8"))
    assert settings["context"] == recommended_flags()


@pytest.mark.slow
def test_example_app_is_nag_clean_with_the_cdk_json_flags(tmp_path: Path, example: ModuleType) -> None:
    settings = json.loads((CDK_DIR / "cdk.json").read_text(encoding="utf-8"))
    app = App(outdir=str(tmp_path), context={**CLI_CONTEXT, **settings["context"], "backup_id": PLAIN_ID})
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    example.build(app)
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    assert report["pluginReports"] == []


@pytest.mark.slow
def test_npx_aws_cdk_synth_works_offline(tmp_path: Path) -> None:
    """What the README tells users to run, with the virtualenv's python3 first on PATH."""
    result = cdk_cli(CDK_DIR, "synth", "--quiet", "-o", str(tmp_path), "-c", f"backup_id={PLAIN_ID}")
    assert result.returncode == 0, result.stderr
    template = json.loads((tmp_path / "RestoredBackupExample.template.json").read_text(encoding="utf-8"))
    assert [
        body["Properties"]["BackupId"] for body in template["Resources"].values() if body["Type"] == RESOURCE_TYPE
    ] == [PLAIN_ID]


def test_outputs_every_attribute(example: ModuleType, tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), context={**CLI_CONTEXT, "backup_id": PLAIN_ID})
    stack = example.build(app)
    template = Template.from_stack(stack)
    template.resource_count_is(RESOURCE_TYPE, 1)
    template.has_resource_properties(RESOURCE_TYPE, {"BackupId": PLAIN_ID, "OnDelete": "Retain"})
    resource = logical_id(stack, stack.node.find_child("Backup").resource)
    outputs = template.to_json()["Outputs"]
    assert {name: output["Value"] for name, output in outputs.items()} == {
        name: {"Fn::GetAtt": [resource, name]} for name in ATTRIBUTE_PROPERTIES.values()
    }


def test_options_from_context(example: ModuleType, tmp_path: Path) -> None:
    context = {"backup_id": PLAIN_ID, "removal_policy": "destroy", "never_expires": "true", "region": "eu-west-1"}
    stack = example.build(App(outdir=str(tmp_path), context=context))
    Template.from_stack(stack).has_resource_properties(
        RESOURCE_TYPE, {"OnDelete": "Delete", "NeverExpires": "true", "Region": "eu-west-1"}
    )


def test_missing_backup_id_is_a_clear_error(example: ModuleType) -> None:
    with pytest.raises(example.MissingContextError, match="Context backup_id is required"):
        example.build(App())


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"removal_policy": "Delete"}, "Context removal_policy must be retain or destroy"),
        ({"never_expires": "yes"}, "Context never_expires must be true or false"),
        ({"backup_id": "backup-1"}, "backup_id must match"),
    ],
)
def test_bad_context_is_a_clear_error(example: ModuleType, context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        example.build(App(context={"backup_id": PLAIN_ID, **context}))


def _run_app(outdir: Path, context: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """Run ``python app.py`` the way the CDK CLI does (CDK_OUTDIR, CDK_CONTEXT_JSON), without pytest's paths."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "CDK_CONTEXT_JSON")}
    env.update(CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps({**CLI_CONTEXT, **context}))
    return subprocess.run(
        [sys.executable, "app.py"], cwd=CDK_DIR, env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.mark.slow
def test_python_app_py_synthesizes_from_a_checkout(synthesized: Synthesized, tmp_path: Path) -> None:
    """What ``cdk synth -c backup_id=...`` runs; a separate process stages the same asset hash."""
    result = _run_app(tmp_path, {"backup_id": PLAIN_ID})
    assert result.returncode == 0, result.stderr
    template = json.loads((tmp_path / "RestoredBackupExample.template.json").read_text(encoding="utf-8"))
    assert len(template["Outputs"]) == len(ATTRIBUTE_PROPERTIES)
    expected_hash = synthesized.main.plain.provider.code_asset.asset_hash
    assert (tmp_path / f"asset.{expected_hash}" / "cloudhsm_backup_restore" / "app.py").is_file()
    keys = [
        body["Properties"]["Code"]["S3Key"]
        for body in template["Resources"].values()
        if body["Type"] == "AWS::Lambda::Function"
    ]
    assert keys == [f"{expected_hash}.zip"]


@pytest.mark.slow
def test_python_app_py_without_backup_id_exits_with_the_message(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {})
    assert result.returncode == 1
    assert "error: Context backup_id is required" in result.stderr
    assert "Traceback" not in result.stderr
