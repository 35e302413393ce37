"""RestoredBackup: the custom resource's properties, attributes and each backup's own IAM policy."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, CfnDeletionPolicy, Duration, Environment, RemovalPolicy, Stack, Token
from aws_cdk.assertions import Annotations, Match, Template
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES
from cloudhsm_backup_restore.properties import VALID_PROPERTIES, OnDelete, parse_properties
from cloudhsm_backup_restore_cdk import RestoredBackup, RestoreProvider
from cloudhsm_backup_restore_cdk.restored_backup import ATTRIBUTE_PROPERTIES
from cloudhsm_backup_restore_cdk.validation import UNKNOWN_REGION_WARNING
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE, backup_actions

from tests.cdk.matrix import backup_id
from tests.cdk.support import (
    DELETE_ID,
    KEEP_ID,
    PLAIN_ID,
    Synthesized,
    all_statements,
    as_list,
    logical_id,
    resources,
    statements,
)

BACKUP_ARN = "arn:${{AWS::Partition}}:cloudhsm:{region}:${{AWS::AccountId}}:backup/{backup_id}"
STACK_REGION = "${AWS::Region}"


def _properties(synthesized: Synthesized, stack: Stack, backup: RestoredBackup) -> dict[str, Any]:
    body = synthesized.json(stack)["Resources"][logical_id(stack, backup.resource)]
    assert body["Type"] == RESOURCE_TYPE
    properties: dict[str, Any] = body["Properties"]
    return properties


def test_removal_policy_maps_to_the_handlers_on_delete() -> None:
    stack = _stack()
    retain = RestoredBackup(stack, "Retain", backup_id=PLAIN_ID)
    destroy = RestoredBackup(stack, "Destroy", backup_id=KEEP_ID, removal_policy=RemovalPolicy.DESTROY)
    assert (retain.on_delete, destroy.on_delete) == (OnDelete.RETAIN, OnDelete.DELETE)
    template = Template.from_stack(stack).to_json()
    for backup, on_delete in ((retain, "Retain"), (destroy, "Delete")):
        body = template["Resources"][logical_id(stack, backup.resource)]
        # The handler's Delete carries out removal_policy, so CloudFormation must send it.
        assert (body["Properties"]["OnDelete"], body["DeletionPolicy"], body["UpdateReplacePolicy"]) == (
            on_delete,
            "Delete",
            "Delete",
        )


def test_the_cloudformation_resource_is_one_hop_away() -> None:
    stack = _stack()
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID)
    assert backup.node.default_child is backup.resource
    backup.resource.add_property_override("Extra", "x")
    Template.from_stack(stack).has_resource_properties(RESOURCE_TYPE, {"Extra": "x"})


def test_default_properties(synthesized: Synthesized) -> None:
    main = synthesized.main
    synthesized.template(main.stack).has_resource_properties(
        RESOURCE_TYPE,
        {
            "BackupId": PLAIN_ID,
            "OnDelete": "Retain",
            "NeverExpires": Match.absent(),
            "Region": Match.absent(),
            "ServiceTimeout": "3600",
        },
    )
    assert set(_properties(synthesized, main.stack, main.plain)) == {
        "ServiceToken",
        "ServiceTimeout",
        "BackupId",
        "OnDelete",
    }


def test_every_option_becomes_a_property(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.template(main.stack)
    template.has_resource_properties(
        RESOURCE_TYPE,
        {
            "BackupId": DELETE_ID,
            "OnDelete": "Delete",
            "NeverExpires": "true",
            "Region": "eu-west-1",
            "ServiceTimeout": "300",
        },
    )
    template.has_resource_properties(
        RESOURCE_TYPE,
        {"BackupId": KEEP_ID, "OnDelete": "Retain", "NeverExpires": "false", "ServiceTimeout": "1"},
    )


def test_the_handler_accepts_what_the_construct_writes(synthesized: Synthesized) -> None:
    """CloudFormation sends these properties (ServiceToken resolved) to parse_properties in the Lambda."""
    main = synthesized.main
    parsed = {}
    for name, backup in (("plain", main.plain), ("delete", main.delete), ("keep", main.keep)):
        properties = _properties(synthesized, main.stack, backup)
        assert set(properties) <= set(VALID_PROPERTIES)
        parsed[name] = parse_properties({**properties, "ServiceToken": "arn:aws:lambda:eu-west-1:1:function:f"})
    assert (parsed["plain"].on_delete, parsed["plain"].never_expires, parsed["plain"].region) == (
        OnDelete.RETAIN,
        None,
        None,
    )
    assert parsed["plain"].service_timeout == 3600
    assert (parsed["delete"].on_delete, parsed["delete"].never_expires, parsed["delete"].region) == (
        OnDelete.DELETE,
        True,
        "eu-west-1",
    )
    assert parsed["delete"].service_timeout == 300
    assert (parsed["keep"].never_expires, parsed["keep"].service_timeout) == (False, 1)


@pytest.mark.parametrize(
    ("attribute", "backup_name"), [(name, "plain") for name in ATTRIBUTE_PROPERTIES] + [("backup_arn", "delete")]
)
def test_attributes_are_getatt_tokens(synthesized: Synthesized, attribute: str, backup_name: str) -> None:
    main = synthesized.main
    backup = getattr(main, backup_name)
    value = getattr(backup, attribute)
    assert isinstance(value, str)
    assert main.stack.resolve(value) == {
        "Fn::GetAtt": [logical_id(main.stack, backup.resource), ATTRIBUTE_PROPERTIES[attribute]]
    }


def test_attribute_properties_cover_every_handler_attribute() -> None:
    assert sorted(ATTRIBUTE_PROPERTIES.values()) == sorted(ATTRIBUTE_NAMES)
    assert sorted(ATTRIBUTE_PROPERTIES) == sorted(
        [
            "backup_id",
            "backup_arn",
            "backup_state",
            "cluster_id",
            "create_timestamp",
            "copy_timestamp",
            "never_expires",
            "source_region",
            "source_backup",
            "source_cluster",
            "delete_timestamp",
            "hsm_type",
            "mode",
        ]
    )
    for name in ATTRIBUTE_PROPERTIES:
        assert isinstance(getattr(RestoredBackup, name), property)
        assert getattr(RestoredBackup, name).__doc__


def test_get_tag_reads_the_dotted_attribute(synthesized: Synthesized) -> None:
    main = synthesized.main
    resource = logical_id(main.stack, main.plain.resource)
    assert main.stack.resolve(main.plain.get_tag("Env")) == {"Fn::GetAtt": [resource, "Tag.Env"]}
    assert main.stack.resolve(main.plain.get_tag("team:cost-centre")) == {
        "Fn::GetAtt": [resource, "Tag.team:cost-centre"]
    }
    with pytest.raises(ValueError, match="get_tag key must have 1 to 128 characters"):
        main.plain.get_tag("")


def _grant_of(template: dict[str, Any], policy: str, arn: str) -> list[dict[str, Any]]:
    """The statements of managed policy ``policy`` whose resources include ``arn``."""
    return [s for s in statements(template, policy) if arn in as_list(s["Resource"])]


@pytest.mark.parametrize(
    ("backup_name", "backup_id", "region", "on_delete", "never_expires"),
    [
        ("plain", PLAIN_ID, STACK_REGION, OnDelete.RETAIN, None),
        ("delete", DELETE_ID, "eu-west-1", OnDelete.DELETE, True),
        ("keep", KEEP_ID, STACK_REGION, OnDelete.RETAIN, False),
    ],
)
def test_each_backup_is_granted_only_its_actions_on_its_own_arn(
    synthesized: Synthesized,
    backup_name: str,
    backup_id: str,
    region: str,
    on_delete: OnDelete,
    never_expires: bool | None,
) -> None:
    actions = list(backup_actions(on_delete=on_delete, never_expires=never_expires))
    main = synthesized.main
    backup = getattr(main, backup_name)
    template = synthesized.json(main.stack)
    (holder,) = backup.provider.backup_policies
    policy = logical_id(main.stack, holder)
    assert template["Resources"][policy]["Type"] == "AWS::IAM::ManagedPolicy"
    arn = BACKUP_ARN.format(region=region, backup_id=backup_id)
    granted = [s for name in resources(template, "AWS::IAM::ManagedPolicy") for s in _grant_of(template, name, arn)]
    assert [(as_list(s["Action"]), s["Effect"]) for s in granted] == [(actions, "Allow")]
    assert _grant_of(template, policy, arn)  # in the policy the resource depends on
    assert policy in template["Resources"][logical_id(main.stack, backup.resource)]["DependsOn"]
    assert template["Resources"][policy]["Properties"]["Roles"] == [
        {"Ref": logical_id(main.stack, main.plain.provider.role)}
    ]


def test_backups_with_the_same_actions_share_one_statement() -> None:
    """Statements are merged per action set: one statement per distinct set in each policy, never one per backup."""
    stack = _stack()
    for number in range(40):
        removal_policy = RemovalPolicy.DESTROY if number % 2 else RemovalPolicy.RETAIN
        backup = RestoredBackup(stack, f"B{number}", backup_id=backup_id(number), removal_policy=removal_policy)
    template = Template.from_stack(stack).to_json()
    policies = [logical_id(stack, policy) for policy in backup.provider.backup_policies]
    action_sets = {
        name: [tuple(as_list(statement["Action"])) for statement in statements(template, name)] for name in policies
    }
    assert all(len(sets) == len(set(sets)) <= 2 for sets in action_sets.values())
    arns = [
        arn for name in policies for statement in statements(template, name) for arn in as_list(statement["Resource"])
    ]
    assert len(arns) == len(set(arns)) == 40
    assert len(policies) < 40 / 4  # shared, not one policy per backup
    assert sum(len(sets) for sets in action_sets.values()) <= 2 * len(policies)


def test_delete_backup_only_with_destroy_or_on_a_backup_carrying_the_owner_tag(synthesized: Synthesized) -> None:
    main = synthesized.main
    template = synthesized.json(main.stack)
    deleting = [s for s in all_statements(template) if "cloudhsm:DeleteBackup" in as_list(s["Action"])]
    by_arn, owned = [s for s in deleting if "Condition" not in s], [s for s in deleting if "Condition" in s]
    assert [as_list(s["Resource"]) for s in by_arn] == [[BACKUP_ARN.format(region="eu-west-1", backup_id=DELETE_ID)]]
    assert [s["Sid"] for s in owned] == ["OwnedBackups"]


def test_tokens_pass_validation_and_reach_properties_and_policy(synthesized: Synthesized) -> None:
    tokens = synthesized.tokens
    template = synthesized.json(tokens.stack)
    properties = _properties(synthesized, tokens.stack, tokens.backup)
    backup_parameter = logical_id(tokens.stack, tokens.backup_id)
    region_parameter = logical_id(tokens.stack, tokens.region)
    assert properties["BackupId"] == {"Ref": backup_parameter}
    assert properties["Region"] == {"Ref": region_parameter}
    (policy,) = tokens.backup.provider.backup_policies
    (statement,) = statements(template, logical_id(tokens.stack, policy))
    assert statement["Resource"] == BACKUP_ARN.format(
        region=f"${{{region_parameter}}}", backup_id=f"${{{backup_parameter}}}"
    )


# --- validation: construct-time errors that name the option --------------------------------------------


def _stack() -> Stack:
    return Stack(App(), "Validation")


@pytest.mark.parametrize(
    "backup_id",
    [
        "",
        "backup-",
        "backup-abcdefghij",  # 10 characters: too short
        "backup-abcdefghijklmnopq",  # 17: too long
        "backup-abcdefghij1",  # 1 is not in [2-7a-zA-Z]
        "Backup-abcdefghijk",
        "backup_abcdefghijk",
        " backup-abcdefghijk",
        "backup-abcdefghijk ",
        "cluster-abcdefghijk",
    ],
)
def test_invalid_backup_id_is_rejected(backup_id: str) -> None:
    with pytest.raises(ValueError, match=r"backup_id must match backup-\[2-7a-zA-Z\]\{11,16\}"):
        RestoredBackup(_stack(), "Backup", backup_id=backup_id)


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (Duration.minutes(61), "service_timeout must be at most 60 minutes"),
        (Duration.seconds(3601), "service_timeout must be at most 60 minutes"),
        (Duration.hours(2), "service_timeout must be at most 60 minutes"),
        (Duration.seconds(0), "service_timeout must be at least 1 second"),
        (Duration.millis(999), "service_timeout must be at least 1 second"),
        (Duration.millis(1500), "service_timeout must be a whole number of seconds"),
    ],
)
def test_invalid_service_timeout_is_rejected(timeout: Duration, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, service_timeout=timeout)


@pytest.mark.parametrize("region", ["", "eu-west", "EU-WEST-1", "euwest1", "eu-west-1 ", "moon-base-1a"])
def test_invalid_region_is_rejected(region: str) -> None:
    with pytest.raises(ValueError, match="region must be an AWS region name"):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, region=region)


@pytest.mark.parametrize("given", [RemovalPolicy.SNAPSHOT, RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE])
def test_removal_policies_without_a_meaning_for_a_backup_are_rejected(given: RemovalPolicy) -> None:
    with pytest.raises(ValueError, match="removal_policy") as raised:
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, removal_policy=given)
    message = str(raised.value)
    assert message.startswith("RestoredBackup removal_policy must be RemovalPolicy.RETAIN (")
    assert "or RemovalPolicy.DESTROY (" in message
    # The value as the user wrote it, not the enum's repr (<RemovalPolicy.SNAPSHOT: 'SNAPSHOT'>).
    assert message.endswith(f", got RemovalPolicy.{given.name}")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"backup_id": None}, TypeError, r"RestoredBackup backup_id must be a str .*, got NoneType None"),
        ({"backup_id": 12}, TypeError, r"RestoredBackup backup_id must be a str .*, got int 12"),
        (
            {"service_timeout": 300},
            TypeError,
            r"RestoredBackup service_timeout must be a Duration \(e.g. Duration.minutes\(30\)\), got int 300",
        ),
        (
            {"never_expires": "true"},
            TypeError,
            r"never_expires must be a bool \(True or False\) or None, got str 'true'",
        ),
        ({"removal_policy": "Delete"}, TypeError, r"removal_policy must be RemovalPolicy.RETAIN .*, got str 'Delete'"),
        (
            {"removal_policy": CfnDeletionPolicy.RETAIN},
            TypeError,
            r"removal_policy must be RemovalPolicy.RETAIN .*, got CfnDeletionPolicy.RETAIN$",
        ),
        ({"region": 1}, TypeError, r"region must be a str .*, got int 1"),
        ({"provider": "p"}, TypeError, r"provider must be a RestoreProvider or None, got str"),
    ],
)
def test_wrong_types_name_the_option_and_the_expected_type(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RestoredBackup(_stack(), "Backup", **{"backup_id": PLAIN_ID, **options})


def test_region_outside_the_stacks_partition_is_rejected() -> None:
    stack = Stack(App(), "China", env=Environment(account="111122223333", region="cn-north-1"))
    with pytest.raises(
        ValueError, match=r"region eu-west-1 is in partition aws, but stack China deploys to cn-north-1"
    ):
        RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, region="eu-west-1")
    RestoredBackup(stack, "Same", backup_id=PLAIN_ID, region="cn-northwest-1")  # same partition: fine


@pytest.mark.parametrize(("region", "partition"), [("eusc-de-east-1", "aws-eusc"), ("us-isob-east-1", "aws-iso-b")])
def test_every_region_aws_cdk_lib_knows_is_accepted(region: str, partition: str) -> None:
    """Defect 5: eusc-de-east-1 (partition aws-eusc) was refused by a pattern that wanted two letters first."""
    literals = {"@aws-cdk/core:enablePartitionLiterals": True}
    stack = Stack(App(context=literals), "Sovereign", env=Environment(account="111122223333", region=region))
    backup = RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, region=region)
    assert stack.resolve(stack.partition) == partition
    parsed = parse_properties({"ServiceToken": "arn:x", "BackupId": PLAIN_ID, "Region": region})
    assert parsed.region == region
    assert (
        Template.from_stack(stack).to_json()["Resources"][logical_id(stack, backup.resource)]["Properties"]["Region"]
        == region
    )
    with pytest.raises(
        ValueError, match=rf"region eu-west-1 is in partition aws, but stack Sovereign deploys to {region}"
    ):
        RestoredBackup(stack, "Elsewhere", backup_id=PLAIN_ID, region="eu-west-1")


def test_tag_keys_longer_than_128_characters_are_rejected() -> None:
    backup = RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID)
    backup.get_tag("k" * 128)
    with pytest.raises(ValueError, match=r"get_tag key must have 1 to 128 characters, got 129"):
        backup.get_tag("k" * 129)
    with pytest.raises(TypeError, match=r"get_tag key must be a str"):
        backup.get_tag(None)  # type: ignore[arg-type]


def test_never_expires_attribute_is_a_string_token() -> None:
    backup = RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, never_expires=True)
    assert isinstance(backup.never_expires, str)
    assert Token.is_unresolved(backup.never_expires)
    assert "string token" in (RestoredBackup.never_expires.__doc__ or "")


def test_provider_in_another_stack_is_rejected() -> None:
    app = App()
    provider = RestoreProvider(Stack(app, "One"), "Provider")
    with pytest.raises(ValueError, match=r"provider must be in the same stack as the backup \(Two\), got one in One"):
        RestoredBackup(Stack(app, "Two"), "Backup", backup_id=PLAIN_ID, provider=provider)


@pytest.mark.parametrize("region", ["eu-wst-1", "moon-base-9"])
def test_a_region_aws_cdk_lib_does_not_know_is_warned_about_at_synth(region: str) -> None:
    stack = _stack()
    RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, region=region)
    (warning,) = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("RegionInfo knows"))
    assert warning.id == "/Validation/Backup"
    assert f"region {region} is not a region" in str(warning.entry.data)
    assert UNKNOWN_REGION_WARNING in str(warning.entry.data)


@pytest.mark.parametrize("region", ["eu-west-1", "eusc-de-east-1"])
def test_a_known_region_is_not_warned_about(region: str) -> None:
    stack = _stack()
    RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, region=region)
    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []
