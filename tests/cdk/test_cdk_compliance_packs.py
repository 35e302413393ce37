"""NIST 800-53 R5 and HIPAA Security: what remains with the defaults, and the provider props that clear it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from cdk_nag import HIPAASecurityChecks, NIST80053R5Checks
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider

from tests.cdk.matrix import EXPLICIT, backup_id

REMAINING_WITH_DEFAULTS = {
    # The README's per-pack table lists these, each with the RestoreProvider prop that clears it.
    "CloudWatchLogGroupEncrypted",  # log_group_encryption_key
    "LambdaConcurrency",  # reserved_concurrent_executions
    "LambdaInsideVPC",  # vpc
}


def _findings(outdir: Path, configure: Any) -> set[tuple[str, str]]:
    app = App(outdir=str(outdir))
    Validations.of(app).add_plugins(NIST80053R5Checks(app), HIPAASecurityChecks(app))
    configure(Stack(app, "Regulated", env=EXPLICIT))
    with contextlib.suppress(RuntimeError):  # a finding fails the synth; the report says which
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return {
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }


@pytest.mark.slow
def test_defaults_leave_only_the_documented_findings(tmp_path: Path) -> None:
    found = _findings(tmp_path, lambda stack: RestoredBackup(stack, "Backup", backup_id=backup_id(1)))
    rules = {rule.split("-", 1)[1] for rule, _ in found}
    assert rules == REMAINING_WITH_DEFAULTS
    assert {rule.split("-", 1)[0] for rule, _ in found} == {"NIST.800.53.R5", "HIPAA.Security"}


def _regulated(stack: Stack) -> None:
    """What a regulated user passes: a VPC without internet routes, a rotated key for the logs, concurrency."""
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
        flow_logs={"FlowLog": ec2.FlowLogOptions()},
    )
    key = kms.Key(stack, "LogKey", enable_key_rotation=True)
    key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com"))
    provider = RestoreProvider(
        stack,
        "Provider",
        vpc=vpc,
        log_group_encryption_key=key,
        reserved_concurrent_executions=5,
    )
    RestoredBackup(stack, "Backup", backup_id=backup_id(1), provider=provider)


@pytest.mark.slow
def test_provider_props_clear_every_finding_about_the_construct(tmp_path: Path) -> None:
    found = _findings(tmp_path, _regulated)
    ours = {(rule, path) for rule, path in found if "/Provider/" in path or "/Backup/" in path}
    assert ours == set()
    # What remains belongs to the user's VPC flow log role (its inline policy), not to this construct.
    assert {path.split("/")[1] for _, path in found} <= {"Vpc"}
