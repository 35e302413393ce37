"""cdk-nag's AwsSolutions pack and cfn-lint find nothing in what the construct synthesizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from cloudhsm_backup_restore_cdk.provider import ENI_ACTIONS
from cloudhsm_backup_restore_pipeline.contract import POLL_RULE_PREFIX

from tests.cdk.support import CLI_CONTEXT, Synthesized, build_main, build_tokens, build_vpcs

EXPECTED_ACKNOWLEDGMENTS = {
    # cloudhsm:DescribeBackups on "*" (no resource-level permission exists), on the role of every stack.
    ("ServiceRole", "AwsSolutions-IAM5[Resource::*]"),
    # crhelper's polling rules, all named with the provider's prefix.
    (
        "ServiceRole",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/"
        f"{POLL_RULE_PREFIX}*]",
    ),
    # The ResponseURL during a hand-off: SSM parameters under the provider's prefix.
    (
        "ServiceRole",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/"
        "cloudhsm-restore/*]",
    ),
    # VPC only: ec2:Describe* on "*", and network interfaces whose ids Lambda picks.
    ("NetworkInterfaces", "AwsSolutions-IAM5[Resource::*]"),
    (
        "NetworkInterfaces",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]",
    ),
}


def _nag(outdir: Path, build: Any) -> tuple[list[Stack], dict[str, Any]]:
    """Synthesize with AwsSolutionsChecks; return the stacks and the validation report."""
    app = App(outdir=str(outdir), context=CLI_CONTEXT)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stacks = build(app)
    try:
        app.synth()
    except RuntimeError as error:
        report = outdir / "validation-report.json"
        details = report.read_text(encoding="utf-8") if report.is_file() else ""
        raise AssertionError(f"cdk-nag failed the synth: {error}\n{details}") from error
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return stacks, report


@pytest.mark.slow
def test_cdk_nag_aws_solutions_finds_nothing(tmp_path: Path) -> None:
    def build(app: App) -> list[Stack]:
        vpcs = build_vpcs(app)
        return [build_main(app).stack, vpcs.default_stack, vpcs.explicit_stack, build_tokens(app).stack]

    stacks, report = _nag(tmp_path, build)
    (plugin,) = report["pluginReports"]
    assert (plugin["pluginName"], plugin["conclusion"], plugin["violations"]) == ("AwsSolutions", "success", [])
    acknowledged = {
        (item["acknowledgedAt"].split("/")[-1], item["ruleName"]) for item in plugin["suppressedViolations"]
    }
    assert acknowledged == EXPECTED_ACKNOWLEDGMENTS
    assert all("IAM4" not in rule for _, rule in acknowledged)  # no managed policies to excuse
    for item in plugin["suppressedViolations"]:
        assert len(item["reason"]) > 60, item
    for stack in stacks:
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.any_value()) == []
        assert annotations.find_warning("*", Match.any_value()) == []


@pytest.mark.slow
def test_cdk_nag_is_live(tmp_path: Path) -> None:
    """The same setup fails a stack with an unexplained wildcard, so the clean result above means something."""

    def build(app: App) -> list[Stack]:
        stack = Stack(app, "Careless")
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
        return [stack]

    with pytest.raises(AssertionError, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        _nag(tmp_path, build)


def _cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    assert found, "cfn-lint is not installed"
    return found


@pytest.mark.slow
def test_cfn_lint_finds_nothing(synthesized: Synthesized) -> None:
    """Every check, informational and experimental included, in every region, on the deployable templates."""
    templates = sorted(synthesized.outdir.glob("*.template.json"))
    assert [path.name for path in templates] == [
        "InVpc.template.json",
        "InVpcExplicit.template.json",
        "Main.template.json",
        "Tokens.template.json",
    ]
    command = [_cfn_lint(), "--include-checks", "I", "--include-experimental", "--regions", "ALL_REGIONS", "--"]
    result = subprocess.run([*command, *map(str, templates)], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.slow
def test_cfn_lint_is_live(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"Resources": {"Function": {"Type": "AWS::Lambda::Function", "Properties": {}}}}))
    result = subprocess.run([_cfn_lint(), "--", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "E3003" in result.stdout
