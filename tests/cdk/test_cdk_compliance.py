"""The done-when matrix: every app shape synthesizes clean under cdk-nag (AwsSolutions, Serverless) and cfn-lint,
and every IAM quota holds, computed from the synthesized templates.

Two apps are synthesized once per session (jsii synth is slow on 2 cores): one with CDK's defaults, one with
every feature flag ``cdk init`` writes (partition literals among them). Each holds the full cross product env x
VPC x Stage x NestedStack at 1 backup, and the large counts on a few shapes. 500 RestoredBackups cannot share one
template (CloudFormation and CDK allow 500 resources per template), so 500 is a stack plus its NestedStack of
250 each, and 450 (agnostic env, the longest ARNs) come close to CloudFormation's resource limit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, NestedStack, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE

from tests.cdk.matrix import CONTAINERS, ENVS, Shape, backup_id, build, new_app, role_quotas, templates

ONE_EACH = [Shape(env, vpc, container, 1) for env in ENVS for vpc in (False, True) for container in CONTAINERS]
COUNTS_DEFAULT = [Shape("agnostic", False, "stage", 100), Shape("agnostic", False, "stack", 450)]
COUNTS_FLAGS = [Shape("explicit", True, "nested", 100)]
FULL_STACK = COUNTS_DEFAULT[1].name


@dataclass
class Synthesized:
    """One matrix app after synth: its outdir and its validation report."""

    outdir: Path
    report: dict[str, Any]


def _synth(outdir: Path, *, flags: bool, shapes: list[Shape], split500: bool) -> Synthesized:
    app = new_app(outdir, flags=flags)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    for shape in shapes:
        build(app, shape)
    if split500:
        parent = Stack(app, "Split500", env=ENVS["explicit"])
        nested = NestedStack(parent, "Nested")
        for number in range(250):
            RestoredBackup(parent, f"Backup{number}", backup_id=backup_id(number))
            RestoredBackup(nested, f"Backup{number}", backup_id=backup_id(number + 250))
    try:
        app.synth()
    except RuntimeError as error:
        raise AssertionError(f"synth failed: {error}\n{(outdir / 'validation-report.json').read_text()}") from error
    return Synthesized(outdir, json.loads((outdir / "validation-report.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every 1-backup shape plus 100 (in a Stage) and 450 (one stack), CDK's default flags."""
    return _synth(
        tmp_path_factory.mktemp("matrix-default"), flags=False, shapes=ONE_EACH + COUNTS_DEFAULT, split500=False
    )


@pytest.fixture(scope="module")
def flags_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every 1-backup shape plus 100 (explicit env, VPC, NestedStack) and 500 split, with ``cdk init``'s flags."""
    return _synth(tmp_path_factory.mktemp("matrix-flags"), flags=True, shapes=ONE_EACH + COUNTS_FLAGS, split500=True)


def _violations(synthesized: Synthesized) -> list[tuple[str, str, str]]:
    return [
        (violation["ruleName"], violation["severity"], construct["constructPath"])
        for plugin in synthesized.report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]


@pytest.mark.slow
@pytest.mark.parametrize("app_name", ["default_app", "flags_app"])
def test_no_unacknowledged_nag_errors(app_name: str, request: pytest.FixtureRequest) -> None:
    """A passing plugin adds nothing to the report; test_our_acknowledgments_... shows the same setup does report."""
    synthesized: Synthesized = request.getfixturevalue(app_name)
    assert synthesized.report["pluginReports"] == []
    assert _violations(synthesized) == []


def _cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    assert found, "cfn-lint is not installed"
    return found


@pytest.mark.slow
@pytest.mark.parametrize("app_name", ["default_app", "flags_app"])
def test_cfn_lint_finds_nothing(app_name: str, request: pytest.FixtureRequest) -> None:
    """Every check, informational and experimental included, on every template (nested too): the 1-backup shapes
    in every region; the 100-to-450-backup templates, which only repeat the same resources, in one region (2 cores)."""
    synthesized: Synthesized = request.getfixturevalue(app_name)
    found = templates(synthesized.outdir)
    assert len(found) >= len(ONE_EACH) + sum(shape.container == "nested" for shape in ONE_EACH)
    big = [path for path in found if path.read_text(encoding="utf-8").count(RESOURCE_TYPE) >= 100]
    assert _lint([path for path in found if path not in big], "--regions", "ALL_REGIONS") == (0, "", "")
    # 450 backups nearly fill a template on purpose: cfn-lint's only remark there is the resource count (I3010).
    assert _lint(big, "--regions", "us-east-1", "--ignore-checks", "I3010") == (0, "", "")
    assert big


def _lint(paths: list[Path], *options: str) -> tuple[int, str, str]:
    command = [_cfn_lint(), "--include-checks", "I", "--include-experimental", *options]
    result = subprocess.run([*command, "--", *map(str, paths)], capture_output=True, text=True, check=False)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("app_name", ["default_app", "flags_app"])
def test_every_iam_quota_holds_in_every_template(app_name: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(app_name)
    measured = []
    for path in templates(synthesized.outdir):
        template = json.loads(path.read_text(encoding="utf-8"))
        measured += [(path.name, quota) for quota in role_quotas(template)]
    assert [problem for _, quota in measured for problem in quota.problems()] == []
    # The big stacks really were measured: 100 backups already need more than one backup policy.
    assert max(quota.managed_policies for _, quota in measured) >= 3


@pytest.mark.slow
def test_the_largest_stack_is_packed_near_the_limits(default_app: Synthesized) -> None:
    """450 backups, worst-case ARN lengths: the policies are full (first-fit), not one per backup."""
    template = json.loads((default_app.outdir / f"{FULL_STACK}.template.json").read_text(encoding="utf-8"))
    (quota,) = list(role_quotas(template))
    assert quota.inline_characters == 0
    assert quota.managed_policies == 8  # the provider's own + 7 backup policies, of the default 10
    assert 5500 < quota.largest_managed_policy <= 6144


@pytest.mark.slow
def test_our_acknowledgments_do_not_silence_the_users_own_findings(tmp_path: Path) -> None:
    """The same wildcard (Resource '*') in the user's own role, beside a RestoredBackup, is still an error."""
    app = App(outdir=str(tmp_path))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Careless")
    RestoredBackup(stack, "Backup", backup_id=backup_id(1))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["cloudhsm:DescribeBackups"], resources=["*"]))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    found = {
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }
    assert found == {("AwsSolutions-IAM5[Resource::*]", "Careless/Role/DefaultPolicy/Resource")}


@pytest.mark.slow
def test_cfn_lint_is_live(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"Resources": {"Function": {"Type": "AWS::Lambda::Function", "Properties": {}}}}))
    result = subprocess.run([_cfn_lint(), "--", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "E3003" in result.stdout
