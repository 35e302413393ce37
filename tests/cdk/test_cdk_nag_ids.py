"""Acknowledgment ids are built from the resource as cdk-nag renders it, and recorded on our constructs only."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment, Fn, NestedStack, Stack, Stage, Validations
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_cdk.nag import flatten_cfn_reference, wildcard_finding

from tests.cdk.matrix import EXPLICIT, backup_id

PARTITION_LITERALS = {"@aws-cdk/core:enablePartitionLiterals": True}


def _acknowledged(construct: Any) -> set[str]:
    """The ids acknowledged on one construct (aws-cdk-lib records them as metadata under a well-known key)."""
    found: set[str] = set()
    for entry in construct.node.metadata:
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
            found |= {key.split("::", 1)[-1] for key in entry.data}
    return found


def _provider(stack_factory: Any) -> RestoreProvider:
    stack = stack_factory()
    return RestoredBackup(stack, "Backup", backup_id=backup_id(1)).provider


SHAPES = {
    "agnostic": (lambda: Stack(App(), "S"), "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/"),
    "explicit": (lambda: Stack(App(), "S", env=EXPLICIT), "arn:<AWS::Partition>:events:eu-west-1:111122223333:rule/"),
    "partition-literals": (
        lambda: Stack(App(context=PARTITION_LITERALS), "S", env=EXPLICIT),
        "arn:aws:events:eu-west-1:111122223333:rule/",
    ),
    "stage": (
        lambda: Stack(Stage(App(), "Prod", env=Environment(account="444455556666", region="us-gov-west-1")), "S"),
        "arn:<AWS::Partition>:events:us-gov-west-1:444455556666:rule/",
    ),
    "nested": (
        lambda: NestedStack(Stack(App(), "S", env=EXPLICIT), "Nested"),
        "arn:<AWS::Partition>:events:eu-west-1:111122223333:rule/",
    ),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_rule_wildcard_id_follows_the_rendering(shape: str) -> None:
    factory, prefix = SHAPES[shape]
    provider = _provider(factory)
    ids = _acknowledged(provider.policy)
    (rules,) = [i for i in ids if ":events:" in i and "cloudhsm-poll-" in i]
    assert rules.startswith(f"AwsSolutions-IAM5[Resource::{prefix}cloudhsm-poll-")
    assert rules.endswith("-*]")
    assert "AwsSolutions-IAM5[Resource::*]" in ids
    assert all(not i.startswith("AwsSolutions::") for i in ids)  # unqualified: scoped to this construct


def test_flatten_matches_cdk_nag_for_each_intrinsic() -> None:
    """The cases of cdk-nag's flattenCfnReference (src/utils/flatten-cfn-reference.ts)."""
    assert flatten_cfn_reference("arn:${AWS::Partition}:s3:::b/*") == "arn:<AWS::Partition>:s3:::b/*"
    assert flatten_cfn_reference({"Ref": "AWS::Region"}) == "<AWS::Region>"
    assert flatten_cfn_reference({"Fn::GetAtt": ["Queue", "Arn"]}) == "<Queue.Arn>"
    assert flatten_cfn_reference({"Fn::Join": ["", ["a", {"Ref": "X"}, "b"]]}) == "a<X>b"
    assert flatten_cfn_reference({"Fn::ImportValue": "Shared"}) == "Shared"
    assert flatten_cfn_reference({"Fn::Select": [0, ["a"]]}) == '{"Fn::Select":[0,["a"]]}'


def test_finding_of_a_token_resource_is_rendered_like_the_policy() -> None:
    stack = Stack(App(), "S", env=EXPLICIT)
    resource = Fn.join("", ["arn:", stack.partition, ":ssm:", stack.region, ":parameter/x*"])
    assert wildcard_finding(stack, resource) == "Resource::arn:<AWS::Partition>:ssm:eu-west-1:parameter/x*"


def test_one_provider_holds_the_most_backups_a_stack_can_hold() -> None:
    """490 backups (CloudFormation's 500 resources per stack, less the provider's) fit one role: no second provider."""
    stack = Stack(App(), "Many")
    backups = [RestoredBackup(stack, f"B{n}", backup_id=backup_id(n)) for n in range(490)]
    assert {backup.provider for backup in backups} == {backups[0].provider}
    # The provider policy and the backup policies, within the default quota of 10.
    assert 1 + len(backups[0].provider.backup_policies) <= 10


def _fill(stack: Stack, provider: RestoreProvider) -> None:
    for number in range(1000):
        RestoredBackup(stack, f"B{number}", backup_id=Fn.ref(f"P{number}"), provider=provider)


def test_a_provider_that_is_full_is_a_clear_error() -> None:
    stack = Stack(App(), "Full")
    provider = RestoreProvider(stack, "Provider")
    with pytest.raises(ValueError, match=r"Full/Provider has no room for another backup: its 9 backup policies"):
        _fill(stack, provider)
    assert len(provider.backup_policies) == 9


@pytest.mark.parametrize("shape", ["agnostic", "explicit", "partition-literals"])
def test_cdk_nag_2_reads_the_same_acknowledgments_from_template_metadata(shape: str) -> None:
    """cdk-nag 2 reads ``cdk_nag.rules_to_suppress`` on the resource (finding ids under ``applies_to``): the same
    findings as the cdk-nag 3 ids. (Checked once against cdk-nag 2.38.2: its AwsSolutions and Serverless packs
    report nothing on these stacks, and report every IAM5 finding without this metadata.)"""
    factory, _ = SHAPES[shape]
    provider = _provider(factory)
    for construct in (provider.policy, provider.dead_letter_queue):
        v3 = _acknowledged(construct)
        resource = construct.node.default_child
        assert resource is not None
        rules = resource.get_metadata("cdk_nag")["rules_to_suppress"]  # type: ignore[attr-defined]
        v2 = {
            f"{rule['id']}[{finding}]" if "applies_to" in rule else rule["id"]
            for rule in rules
            for finding in rule.get("applies_to", [None])
        }
        assert v2 == v3
        assert all(len(rule["reason"]) > 60 for rule in rules)
