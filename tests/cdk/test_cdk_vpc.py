"""VPC placement: the function's VpcConfig and the network-interface grants written by hand."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match
from cloudhsm_backup_restore_cdk import RestoredBackup

from tests.cdk.support import PLAIN_ID, Synthesized, as_list, logical_id, resources, statements

INTERFACES = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"


def _arn(kind: str, name: str) -> str:
    return f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{name}"


def _eni_grants(template: dict[str, Any], policy: str) -> dict[str, tuple[list[str], list[str]]]:
    return {
        statement["Sid"]: (sorted(as_list(statement["Action"])), as_list(statement["Resource"]))
        for statement in statements(template, policy)
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
    policy = logical_id(stack, provider.node.find_child("NetworkInterfaces"))
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
            [INTERFACES],
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
    grants = _eni_grants(dict(template.to_json()), logical_id(stack, provider.node.find_child("NetworkInterfaces")))
    created_in = grants["CreateNetworkInterfacesInOwnSubnetsAndGroups"][1]
    assert created_in == [
        INTERFACES,
        *(_arn("subnet", f"${{{logical_id(stack, subnet)}}}") for subnet in vpcs.explicit_vpc.isolated_subnets),
        _arn("security-group", f"${{{logical_id(stack, vpcs.security_group)}.GroupId}}"),
    ]


def test_without_vpc_there_are_no_ec2_grants(synthesized: Synthesized) -> None:
    template = synthesized.json(synthesized.main.stack)
    assert "ec2:" not in str(template)
    assert synthesized.main.plain.provider.node.try_find_child("NetworkInterfaces") is None


@pytest.mark.parametrize("second", ["no-vpc", "other-subnets", "other-groups"])
def test_backups_of_one_stack_must_agree_on_placement(second: str) -> None:
    stack = Stack(App(), "Mixed")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1)
    group = ec2.SecurityGroup(stack, "Group", vpc=vpc)
    RestoredBackup(stack, "First", backup_id=PLAIN_ID, vpc=vpc, security_groups=[group])
    options: dict[str, Any] = {
        "no-vpc": {},
        "other-subnets": {
            "vpc": vpc,
            "security_groups": [group],
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        },
        "other-groups": {"vpc": vpc, "security_groups": [ec2.SecurityGroup(stack, "Other", vpc=vpc)]},
    }[second]
    with pytest.raises(ValueError, match="vpc, vpc_subnets and security_groups must be the same for every"):
        RestoredBackup(stack, "Second", backup_id=PLAIN_ID, **options)
