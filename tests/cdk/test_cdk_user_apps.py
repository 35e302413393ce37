"""The construct as teams adopt it: apps with an explicit account and region, ``cdk init``'s flags, the CDK CLI.

Each test is one thing a team tried: pre-created roles, grants through the provider's function, configuring the
stack's default provider, their own log group, and the warnings ``cdk synth`` must print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Annotations as CoreAnnotations
from aws_cdk import App, CfnParameter, Environment, RemovalPolicies, RemovalPolicy, Stack, aws_ssm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_cdk.provider import SECOND_PROVIDER_WARNING
from cloudhsm_backup_restore_cdk.restored_backup import DUPLICATE_BACKUP_WARNING, RETAINED_WARNING

from tests.cdk.matrix import recommended_flags
from tests.cdk.support import (
    KEEP_ID,
    PLAIN_ID,
    all_statements,
    as_list,
    cdk_cli,
    cdk_init_project,
    logical_id,
    resources,
)

ENV = Environment(account="111122223333", region="eu-west-1")
PARAMETER_ARN = "arn:aws:ssm:eu-west-1:111122223333:parameter/hsm"


def _app(tmp_path: Path | None = None) -> App:
    """An app with the flags ``cdk init`` writes to cdk.json."""
    return App(context=recommended_flags(), **({"outdir": str(tmp_path)} if tmp_path else {}))


def _statements_of(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to ``role`` (managed and inline)."""
    found = []
    for kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for body in resources(template, kind).values():
            if {"Ref": role} in body["Properties"].get("Roles", []):
                found += body["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_grants_through_the_function_reach_the_template_in_a_managed_policy() -> None:
    """Defect 4: the role was imported immutable, so these four grants vanished (Grant even returned success)."""
    stack = Stack(_app(), "Grants", env=ENV)
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    function = backup.provider.function
    bucket = s3.Bucket(stack, "Bucket")
    key = kms.Key(stack, "Key")
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["sqs:ReceiveMessage"], resources=["arn:aws:sqs:eu-west-1:111122223333:q"])
    )
    bucket.grant_read(function)
    grant = iam.Grant.add_to_principal(grantee=function, actions=["ssm:GetParameter"], resource_arns=[PARAMETER_ARN])
    key.grant_encrypt_decrypt(function)
    assert grant.success

    template = Template.from_stack(stack).to_json()
    role = logical_id(stack, backup.provider.role)
    granted = [sorted(as_list(statement["Action"])) for statement in _statements_of(template, role)]
    assert ["sqs:ReceiveMessage"] in granted
    assert ["s3:GetBucket*", "s3:GetObject*", "s3:List*"] in granted
    assert ["ssm:GetParameter"] in granted
    assert ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"] in granted
    # All in the provider's customer managed policy: no inline policy for NIST/HIPAA IAMNoInlinePolicy to find.
    assert resources(template, "AWS::IAM::Policy") == {}
    policy = template["Resources"][logical_id(stack, backup.provider.policy)]["Properties"]["PolicyDocument"]
    assert {"Action": "ssm:GetParameter", "Effect": "Allow", "Resource": PARAMETER_ARN} in policy["Statement"]


@pytest.mark.parametrize("precreated", [False, True])
def test_customize_roles_synthesizes_and_reports_the_providers_policies(tmp_path: Path, precreated: bool) -> None:
    """Defect 3: iam.Role.customize_roles crashed (no CloudFormation resource to carry cdk-nag metadata)."""
    # Without names, the template's role ARN is incomplete (CDK's design: the report comes first), which the
    # CloudFormation validation among cdk init's flags refuses; so that case runs with CDK's defaults.
    app = _app(tmp_path) if precreated else App(outdir=str(tmp_path))
    stack = Stack(app, "Precreated", env=ENV)
    role_path = "Precreated/CloudHsmBackupRestoreProvider/ServiceRole"
    if precreated:
        iam.Role.customize_roles(stack, use_precreated_roles={role_path: "security-team-cloudhsm-restore"})
    else:
        iam.Role.customize_roles(stack)
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, removal_policy=RemovalPolicy.DESTROY)
    backup.provider.function.add_to_role_policy(
        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["arn:aws:sqs:eu-west-1:111122223333:q"])
    )
    app.synth()

    template = json.loads((tmp_path / "Precreated.template.json").read_text(encoding="utf-8"))
    # Nothing IAM is created: the security team creates the role and attaches the reported statements.
    assert [body["Type"] for body in template["Resources"].values() if body["Type"].startswith("AWS::IAM::")] == []
    (role,) = json.loads((tmp_path / "iam-policy-report.json").read_text(encoding="utf-8"))["roles"]
    assert role["roleConstructPath"] == role_path
    assert role["missing"] is not precreated
    reported = [sorted(as_list(s["Action"])) for s in role["managedPolicyStatements"]]
    assert ["sqs:SendMessage"] in reported
    assert ["cloudhsm:DescribeBackups"] in reported
    assert any("cloudhsm:RestoreBackup" in actions and "cloudhsm:DeleteBackup" in actions for actions in reported)
    if precreated:
        function = next(iter(resources(template, "AWS::Lambda::Function").values()))
        assert "role/security-team-cloudhsm-restore" in json.dumps(function["Properties"]["Role"])


def test_the_first_provider_in_the_stack_is_the_default() -> None:
    """Configure the stack's provider once (here a VPC-less provider with reserved concurrency and a name)."""
    stack = Stack(_app(), "Configured", env=ENV)
    provider = RestoreProvider(stack, "Restores", reserved_concurrent_executions=2, function_name="hsm-restores")
    first = RestoredBackup(stack, "First", backup_id=PLAIN_ID)
    second = RestoredBackup(stack, "Second", backup_id=KEEP_ID)
    assert first.provider is second.provider is provider
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"FunctionName": "hsm-restores", "ReservedConcurrentExecutions": 2}
    )
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def test_a_second_provider_is_loudly_reported_and_can_be_acknowledged() -> None:
    """Forgetting provider= once used to create a silent second provider without the user's settings."""
    stack = Stack(_app(), "Forgot", env=ENV)
    RestoredBackup(stack, "Early", backup_id=PLAIN_ID)  # before the configured provider: gets the default one
    configured = RestoreProvider(stack, "Restores", reserved_concurrent_executions=2)
    RestoredBackup(stack, "Late", backup_id=KEEP_ID, provider=configured)
    (warning,) = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("RestoreProviders"))
    assert warning.id == "/Forgot/Restores"
    message = str(warning.entry.data)
    assert "Forgot/CloudHsmBackupRestoreProvider, Forgot/Restores" in message
    assert "create your RestoreProvider before the RestoredBackups" in message
    assert SECOND_PROVIDER_WARNING in message

    acknowledged = Stack(_app(), "Deliberate", env=ENV)
    RestoreProvider(acknowledged, "Public")
    in_vpc = RestoreProvider(acknowledged, "Private")
    CoreAnnotations.of(in_vpc).acknowledge_warning(SECOND_PROVIDER_WARNING, "one provider per network placement")
    assert Annotations.from_stack(acknowledged).find_warning("*", Match.any_value()) == []


def test_token_backup_ids_share_the_backup_policies(tmp_path: Path) -> None:
    """Ten tokens (parameters, SSM values) used to take a policy slot each and spill into a second provider."""
    stack = Stack(_app(tmp_path), "Tokens", env=ENV)
    provider = RestoreProvider(stack, "Restores")
    for number in range(5):
        parameter = CfnParameter(stack, f"Id{number}", allowed_pattern="backup-[2-7a-zA-Z]{11,16}")
        RestoredBackup(stack, f"P{number}", backup_id=parameter.value_as_string)
        ssm_id = aws_ssm.StringParameter.value_for_string_parameter(stack, f"/hsm/backup/{number}")
        RestoredBackup(stack, f"S{number}", backup_id=ssm_id)
    assert len(provider.backup_policies) == 1
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2)


def test_log_group_follows_aws_cdk_lib(tmp_path: Path) -> None:
    stack = Stack(_app(tmp_path), "Logs", env=ENV)
    forever = RestoreProvider(stack, "Forever", log_retention=logs.RetentionDays.INFINITE)
    temporary = RestoreProvider(stack, "Temporary", log_removal_policy=RemovalPolicy.DESTROY)
    shared = logs.LogGroup(stack, "Shared", retention=logs.RetentionDays.ONE_YEAR)
    given = RestoreProvider(stack, "Given", log_group=shared)
    for provider in (forever, temporary, given):
        CoreAnnotations.of(provider).acknowledge_warning(SECOND_PROVIDER_WARNING, "three on purpose")
    template = Template.from_stack(stack).to_json()
    groups = resources(template, "AWS::Logs::LogGroup")
    assert "RetentionInDays" not in groups[logical_id(stack, forever.log_group)].get("Properties", {})
    assert groups[logical_id(stack, forever.log_group)]["DeletionPolicy"] == "Retain"
    assert groups[logical_id(stack, temporary.log_group)]["DeletionPolicy"] == "Delete"
    assert given.log_group is shared
    function = template["Resources"][logical_id(stack, given.function)]
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": logical_id(stack, shared)}}
    writes = [s for s in all_statements(template) if s.get("Sid") == "WriteOwnLogs"]
    assert f"${{{logical_id(stack, shared)}.Arn}}" in [s["Resource"] for s in writes]
    with pytest.raises(ValueError, match="log_retention: only for a new log group"):
        RestoreProvider(stack, "Conflict", log_group=shared, log_retention=logs.RetentionDays.ONE_DAY)


def test_a_role_of_your_own_gets_the_providers_managed_policies() -> None:
    stack = Stack(_app(), "OwnRole", env=ENV)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    provider = RestoreProvider(stack, "Restores", role=role)
    RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    assert provider.role is role
    template = Template.from_stack(stack).to_json()
    attached = [
        name
        for name, body in resources(template, "AWS::IAM::ManagedPolicy").items()
        if {"Ref": logical_id(stack, role)} in body["Properties"]["Roles"]
    ]
    assert len(attached) == 2  # the provider policy and one backup policy


# --- what `cdk synth` prints: the CLI on a `cdk init`-style project ------------------------------------------

APP = """
import aws_cdk as cdk
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider

app = cdk.App()
env = cdk.Environment(account="111122223333", region="eu-west-1")

forgot = cdk.Stack(app, "Forgot", env=env)
RestoredBackup(forgot, "Early", backup_id="{plain}")
RestoreProvider(forgot, "Restores", reserved_concurrent_executions=2)

retained = cdk.Stack(app, "Retained", env=env)
RestoredBackup(retained, "Backup", backup_id="{plain}", removal_policy=cdk.RemovalPolicy.DESTROY)
cdk.RemovalPolicies.of(retained).retain()

twice = cdk.Stack(app, "Twice", env=env)
RestoredBackup(twice, "One", backup_id="{plain}")
RestoredBackup(twice, "Other", backup_id="{plain}")

sovereign = cdk.Stack(app, "Sovereign", env=cdk.Environment(account="111122223333", region="eusc-de-east-1"))
RestoredBackup(sovereign, "Backup", backup_id="{plain}", region="eusc-de-east-1")
app.synth()
"""


@pytest.mark.slow
def test_cdk_synth_prints_the_warnings(tmp_path: Path) -> None:
    project = cdk_init_project(tmp_path, APP.format(plain=PLAIN_ID), recommended_flags())
    result = cdk_cli(project, "synth", "--quiet", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    printed = result.stderr
    assert "   Forgot/Restores " in printed
    assert "Forgot now has 2 RestoreProviders" in printed
    assert SECOND_PROVIDER_WARNING in printed
    assert RETAINED_WARNING in printed
    assert "DeletionPolicy Retain, UpdateReplacePolicy Retain" in printed
    assert "cancels removal_policy=DESTROY" in printed
    assert DUPLICATE_BACKUP_WARNING in printed
    sovereign = json.loads((tmp_path / "out" / "Sovereign.template.json").read_text(encoding="utf-8"))
    (body,) = resources(sovereign, "Custom::CloudHsmBackupRestore").values()
    assert body["Properties"]["Region"] == "eusc-de-east-1"


def test_removal_policies_retain_is_warned_about_only_where_it_cancels_destroy() -> None:
    stack = Stack(_app(), "Retained", env=ENV)
    RestoredBackup(stack, "Destroy", backup_id=PLAIN_ID, removal_policy=RemovalPolicy.DESTROY)
    RestoredBackup(stack, "Retain", backup_id=KEEP_ID)
    RemovalPolicies.of(stack).retain()
    App.of(stack).synth()  # type: ignore[union-attr]
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("cancels removal_policy"))
    assert [warning.id for warning in warnings] == ["/Retained/Destroy"]


def test_two_restored_backups_naming_one_backup_are_warned_about() -> None:
    stack = Stack(_app(), "Twice", env=ENV)
    RestoredBackup(stack, "One", backup_id=PLAIN_ID)
    RestoredBackup(stack, "Other", backup_id=PLAIN_ID, region="eu-west-1")  # the stack's region, written out
    RestoredBackup(stack, "Elsewhere", backup_id=PLAIN_ID, region="eu-central-1")  # another backup
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("also restored by"))
    assert [warning.id for warning in warnings] == ["/Twice/Other"]
    assert "Twice/One" in str(warnings[0].entry.data)
