"""VPC placement: the function's VpcConfig and the network-interface grants written by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match
from cloudhsm_backup_restore_cdk import RestoreProvider

from tests.cdk.matrix import recommended_flags
from tests.cdk.support import (
    NO_AWS_CREDENTIALS,
    Synthesized,
    as_list,
    cdk_cli,
    cdk_init_project,
    logical_id,
    resources,
    statements,
)

INTERFACES = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"


def _arn(kind: str, name: str) -> str:
    return f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{name}"


ENI_SIDS = ("DescribeNetworkInterfaces", "CreateNetworkInterfacesInOwnSubnetsAndGroups", "ManageNetworkInterfaces")


def _eni_grants(template: dict[str, Any], policy: str) -> dict[str, tuple[list[str], list[str]]]:
    """The network-interface statements of the provider policy, by Sid."""
    return {
        statement["Sid"]: (sorted(as_list(statement["Action"])), as_list(statement["Resource"]))
        for statement in statements(template, policy)
        if statement.get("Sid") in ENI_SIDS
    }


def test_default_placement_uses_the_private_subnets_and_a_new_group(synthesized: Synthesized) -> None:
    vpcs = synthesized.vpcs
    stack = vpcs.default_stack
    template = synthesized.template(stack)
    subnets = [{"Ref": logical_id(stack, subnet)} for subnet in vpcs.default_vpc.private_subnets]
    (group,) = resources(template.to_json(), "AWS::EC2::SecurityGroup")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"VpcConfig": {"SubnetIds": subnets, "SecurityGroupIds": [{"Fn::GetAtt": [group, "GroupId"]}]}},
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupEgress": [Match.object_like({"CidrIp": "0.0.0.0/0"})], "SecurityGroupIngress": Match.absent()},
    )


def test_network_interface_grants_are_scoped_to_own_subnets_and_groups(synthesized: Synthesized) -> None:
    vpcs = synthesized.vpcs
    stack = vpcs.default_stack
    template = synthesized.json(stack)
    provider = vpcs.default_backup.provider
    policy = logical_id(stack, provider.policy)
    (group,) = resources(template, "AWS::EC2::SecurityGroup")
    subnets = [_arn("subnet", f"${{{logical_id(stack, subnet)}}}") for subnet in vpcs.default_vpc.private_subnets]
    assert _eni_grants(template, policy) == {
        "DescribeNetworkInterfaces": (["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], ["*"]),
        "CreateNetworkInterfacesInOwnSubnetsAndGroups": (
            ["ec2:CreateNetworkInterface"],
            [INTERFACES, *subnets, _arn("security-group", f"${{{group}.GroupId}}")],
        ),
        "ManageNetworkInterfaces": (
            ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"],
            [_arn("*", "*")],
        ),
    }
    function = template["Resources"][logical_id(stack, provider.function)]
    assert policy in function["DependsOn"]  # Lambda checks these permissions when it creates the function


def test_explicit_subnets_and_security_group_are_used_as_given(synthesized: Synthesized) -> None:
    vpcs = synthesized.vpcs
    stack = vpcs.explicit_stack
    template = synthesized.template(stack)
    template.resource_count_is("AWS::EC2::SecurityGroup", 1)  # only the caller's: none created for the function
    group = {"Fn::GetAtt": [logical_id(stack, vpcs.security_group), "GroupId"]}
    subnets = [{"Ref": logical_id(stack, subnet)} for subnet in vpcs.explicit_vpc.isolated_subnets]
    template.has_resource_properties(
        "AWS::Lambda::Function", {"VpcConfig": {"SubnetIds": subnets, "SecurityGroupIds": [group]}}
    )
    provider = vpcs.explicit_backups[0].provider
    grants = _eni_grants(dict(template.to_json()), logical_id(stack, provider.policy))
    created_in = grants["CreateNetworkInterfacesInOwnSubnetsAndGroups"][1]
    assert created_in == [
        INTERFACES,
        *(_arn("subnet", f"${{{logical_id(stack, subnet)}}}") for subnet in vpcs.explicit_vpc.isolated_subnets),
        _arn("security-group", f"${{{logical_id(stack, vpcs.security_group)}.GroupId}}"),
    ]


def test_without_vpc_there_are_no_ec2_grants(synthesized: Synthesized) -> None:
    template = synthesized.json(synthesized.main.stack)
    assert "ec2:" not in str(template)


def test_placement_is_set_once_on_the_provider_and_shared(synthesized: Synthesized) -> None:
    first, second = synthesized.vpcs.explicit_backups
    assert first.provider is second.provider
    template = synthesized.json(synthesized.vpcs.explicit_stack)
    assert len(resources(template, "AWS::Lambda::Function")) == 1


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"vpc": "vpc-0123456789abcdef0"},
            TypeError,
            r"RestoreProvider vpc must be an ec2.IVpc .* got str 'vpc-0123456789abcdef0'",
        ),
        (
            {"security_groups": "sg-1"},
            TypeError,
            r"RestoreProvider security_groups must be a list of ec2.ISecurityGroup",
        ),
        ({"vpc_subnets": ["subnet-1"]}, TypeError, r"RestoreProvider vpc_subnets must be an ec2.SubnetSelection"),
        (
            {"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)},
            ValueError,
            "vpc_subnets: only with vpc",
        ),
        (
            {"reserved_concurrent_executions": "5"},
            TypeError,
            r"reserved_concurrent_executions must be an int or None, got str",
        ),
        ({"reserved_concurrent_executions": 0}, ValueError, r"reserved_concurrent_executions must be at least 1"),
        ({"log_retention": 90}, TypeError, r"log_retention must be a logs.RetentionDays or None, got int 90"),
        ({"log_removal_policy": "retain"}, TypeError, r"log_removal_policy must be a RemovalPolicy or None"),
        ({"log_group": "/aws/lambda/x"}, TypeError, r"log_group must be a logs.ILogGroup or None"),
        ({"role": "arn:aws:iam::111122223333:role/x"}, TypeError, r"role must be an iam.IRole or None"),
        ({"function_name": 7}, TypeError, r"function_name must be a str or None, got int 7"),
        ({"allow_public_subnet": "yes"}, TypeError, r"allow_public_subnet must be a bool"),
        ({"allow_public_subnet": True}, ValueError, r"allow_public_subnet: only with vpc"),
        ({"tracing": "Active"}, TypeError, r"tracing must be a lambda.Tracing, got str"),
        ({"log_group_encryption_key": "arn:aws:kms:..."}, TypeError, r"log_group_encryption_key must be a kms.IKey"),
        ({"dead_letter_queue": "queue"}, TypeError, r"dead_letter_queue must be an sqs.IQueue"),
    ],
)
def test_provider_options_are_checked_naming_the_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RestoreProvider(Stack(App(), "Checked"), "Provider", **options)


def test_security_groups_need_a_vpc() -> None:
    stack = Stack(App(), "NoVpc")
    group = ec2.SecurityGroup.from_security_group_id(stack, "Group", "sg-0123456789abcdef0")
    with pytest.raises(ValueError, match="RestoreProvider security_groups: only with vpc"):
        RestoreProvider(stack, "Provider", security_groups=[group])


# --- an ec2.Vpc in a stack with an explicit env: the availability zones come from context (docs/cdk.md) ------------

AZ_CONTEXT_KEY = "availability-zones:account=111122223333:region=eu-west-1"
VPC_APP = """
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider

app = cdk.App()
stack = cdk.Stack(app, "Placed", env=cdk.Environment(account="111122223333", region="eu-west-1"))
RestoreProvider(stack, "Provider", vpc=ec2.Vpc(stack, "Vpc", max_azs=2))
RestoredBackup(stack, "Backup", backup_id="backup-abcdefghijk")
app.synth()
"""


def _missing_context(tmp_path: Path, context: dict[str, Any], **vpc_options: Any) -> list[str]:
    """The context keys a synth left for the CLI to look up (it needs the account's credentials to)."""
    app = App(outdir=str(tmp_path), context=context)
    stack = Stack(app, "Placed", env=Environment(account="111122223333", region="eu-west-1"))
    RestoreProvider(stack, "Provider", vpc=ec2.Vpc(stack, "Vpc", **vpc_options))
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    return [entry["key"] for entry in manifest.get("missing", [])]


@pytest.mark.parametrize(
    "vpc_options", [{}, {"max_azs": 2}, {"availability_zones": ["eu-west-1a", "eu-west-1b"]}], ids=str
)
def test_a_vpc_in_an_explicit_env_asks_for_the_regions_zones(tmp_path: Path, vpc_options: dict[str, Any]) -> None:
    """Neither max_azs nor availability_zones spares the lookup: only the context (cdk.context.json) does."""
    assert _missing_context(tmp_path / "bare", {}, **vpc_options) == [AZ_CONTEXT_KEY]
    zones = {AZ_CONTEXT_KEY: ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}
    assert _missing_context(tmp_path / "with-context", zones, **vpc_options) == []


@pytest.mark.slow
def test_cdk_synth_offline_needs_the_zones_in_cdk_context_json(tmp_path: Path) -> None:
    project = cdk_init_project(tmp_path, VPC_APP, recommended_flags())
    failed = cdk_cli(project, "synth", "--quiet", "-o", str(tmp_path / "first"), env=NO_AWS_CREDENTIALS)
    assert "no credentials have been configured" in failed.stdout + failed.stderr
    zones = {AZ_CONTEXT_KEY: ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}
    (project / "cdk.context.json").write_text(json.dumps(zones), encoding="utf-8")
    synthesized = cdk_cli(project, "synth", "--quiet", "-o", str(tmp_path / "second"), env=NO_AWS_CREDENTIALS)
    assert synthesized.returncode == 0, synthesized.stderr
    template = json.loads((tmp_path / "second" / "Placed.template.json").read_text(encoding="utf-8"))
    zones_used = {body["Properties"]["AvailabilityZone"] for body in resources(template, "AWS::EC2::Subnet").values()}
    assert zones_used == {"eu-west-1a", "eu-west-1b"}
