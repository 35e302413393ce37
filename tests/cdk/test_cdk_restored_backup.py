"""RestoredBackup: the custom resource's properties, attributes and each backup's own IAM policy."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template
from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES
from cloudhsm_backup_restore.properties import VALID_PROPERTIES, OnDelete, parse_properties
from cloudhsm_backup_restore_cdk import OnDelete as ExportedOnDelete
from cloudhsm_backup_restore_cdk import RestoredBackup
from cloudhsm_backup_restore_cdk.restored_backup import ATTRIBUTE_PROPERTIES, _policy_id
from cloudhsm_backup_restore_pipeline.contract import RESOURCE_TYPE, backup_actions

from tests.cdk.support import DELETE_ID, KEEP_ID, PLAIN_ID, Synthesized, logical_id, resources, statements

BACKUP_ARN = "arn:${{AWS::Partition}}:cloudhsm:{region}:${{AWS::AccountId}}:backup/{backup_id}"
STACK_REGION = "${AWS::Region}"


def _properties(synthesized: Synthesized, stack: Stack, backup: RestoredBackup) -> dict[str, Any]:
    body = synthesized.json(stack)["Resources"][logical_id(stack, backup.resource)]
    assert body["Type"] == RESOURCE_TYPE
    properties: dict[str, Any] = body["Properties"]
    return properties


def test_on_delete_is_the_handlers_enum() -> None:
    assert ExportedOnDelete is OnDelete
    assert (OnDelete.RETAIN.value, OnDelete.DELETE.value) == ("Retain", "Delete")


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
    with pytest.raises(ValueError, match="get_tag key"):
        main.plain.get_tag("")


OWN_AND_PROTECT = (
    "cloudhsm:RestoreBackup",
    "cloudhsm:TagResource",
    "cloudhsm:UntagResource",
    "cloudhsm:ListTags",
    "cloudhsm:ModifyBackupAttributes",
)
"""Every configuration restores, records ownership in a tag and protects what it restored (issue 9)."""


@pytest.mark.parametrize(
    ("backup_name", "backup_id", "region", "actions"),
    [
        ("plain", PLAIN_ID, STACK_REGION, [*OWN_AND_PROTECT]),
        ("delete", DELETE_ID, "eu-west-1", [*OWN_AND_PROTECT, "cloudhsm:DeleteBackup"]),
        ("keep", KEEP_ID, STACK_REGION, [*OWN_AND_PROTECT]),
    ],
)
def test_each_backup_has_its_own_least_privilege_policy(
    synthesized: Synthesized, backup_name: str, backup_id: str, region: str, actions: list[str]
) -> None:
    main = synthesized.main
    backup = getattr(main, backup_name)
    template = synthesized.json(main.stack)
    policy = logical_id(main.stack, backup.policy)
    granted = statements(template, policy)
    assert granted == [
        {
            "Action": actions if len(actions) > 1 else actions[0],
            "Effect": "Allow",
            "Resource": BACKUP_ARN.format(region=region, backup_id=backup_id),
        }
    ]
    assert template["Resources"][policy]["Properties"]["Roles"] == [
        {"Ref": logical_id(main.stack, main.plain.provider.role)}
    ]


def test_policies_match_the_contract_per_option(synthesized: Synthesized) -> None:
    """DeleteBackup only with OnDelete.DELETE; ModifyBackupAttributes always (a restore is protected by default)."""
    main = synthesized.main
    template = synthesized.template(main.stack)
    template.resource_count_is("AWS::IAM::Policy", 4)  # one per backup, one for the polling permission
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": [Match.object_like({"Action": list(OWN_AND_PROTECT)})]}},
    )
    cases = [
        (main.plain, OnDelete.RETAIN, None),
        (main.delete, OnDelete.DELETE, True),
        (main.keep, OnDelete.RETAIN, False),
    ]
    body = template.to_json()
    for backup, on_delete, never_expires in cases:
        (statement,) = statements(body, logical_id(main.stack, backup.policy))
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert tuple(actions) == backup_actions(on_delete=on_delete, never_expires=never_expires)
    all_actions = [
        str(statement["Action"]) for name in resources(body, "AWS::IAM::Policy") for statement in statements(body, name)
    ]
    assert sum("cloudhsm:DeleteBackup" in actions for actions in all_actions) == 1
    assert sum("cloudhsm:ModifyBackupAttributes" in actions for actions in all_actions) == 3


def test_tokens_pass_validation_and_reach_properties_and_policy(synthesized: Synthesized) -> None:
    tokens = synthesized.tokens
    template = synthesized.json(tokens.stack)
    properties = _properties(synthesized, tokens.stack, tokens.backup)
    backup_parameter = logical_id(tokens.stack, tokens.backup_id)
    region_parameter = logical_id(tokens.stack, tokens.region)
    assert properties["BackupId"] == {"Ref": backup_parameter}
    assert properties["Region"] == {"Ref": region_parameter}
    (statement,) = statements(template, logical_id(tokens.stack, tokens.backup.policy))
    assert statement["Resource"] == BACKUP_ARN.format(
        region=f"${{{region_parameter}}}", backup_id=f"${{{backup_parameter}}}"
    )


def test_policy_identity_follows_the_backup() -> None:
    """A new backup id or region means a new policy resource, so the old grant outlives the old resource."""
    assert _policy_id(PLAIN_ID, None) == _policy_id(PLAIN_ID, None)
    assert _policy_id(PLAIN_ID, None) != _policy_id(KEEP_ID, None)
    assert _policy_id(PLAIN_ID, None) != _policy_id(PLAIN_ID, "eu-west-1")
    assert _policy_id("${Token[TOKEN.1]}", None) == "Permissions"


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
        (Duration.minutes(61), "timeout must be at most 60 minutes"),
        (Duration.seconds(3601), "timeout must be at most 60 minutes"),
        (Duration.hours(2), "timeout must be at most 60 minutes"),
        (Duration.seconds(0), "timeout must be at least 1 second"),
        (Duration.millis(999), "timeout must be at least 1 second"),
        (Duration.millis(1500), "timeout must be a whole number of seconds"),
    ],
)
def test_invalid_timeout_is_rejected(timeout: Duration, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, timeout=timeout)


@pytest.mark.parametrize("region", ["", "eu-west", "EU-WEST-1", "euwest1", "eu-west-1 ", "moon-base-1a"])
def test_invalid_region_is_rejected(region: str) -> None:
    with pytest.raises(ValueError, match="region must be an AWS region name"):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, region=region)


def test_invalid_on_delete_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"on_delete must be one of OnDelete.RETAIN, OnDelete.DELETE"):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, on_delete="Destroy")  # type: ignore[arg-type]


def test_on_delete_string_value_is_accepted_as_the_enum() -> None:
    stack = _stack()
    RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, on_delete="Delete")  # type: ignore[arg-type]
    Template.from_stack(stack).has_resource_properties(RESOURCE_TYPE, {"OnDelete": "Delete"})


def test_non_boolean_never_expires_is_rejected() -> None:
    with pytest.raises(TypeError, match="never_expires must be True, False or None"):
        RestoredBackup(_stack(), "Backup", backup_id=PLAIN_ID, never_expires="true")  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["vpc_subnets", "security_groups"])
def test_placement_options_need_a_vpc(option: str) -> None:
    stack = _stack()
    value: Any = (
        ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        if option == "vpc_subnets"
        else [ec2.SecurityGroup.from_security_group_id(stack, "Group", "sg-0123456789abcdef0")]
    )
    with pytest.raises(ValueError, match=f"RestoredBackup {option} need vpc"):
        RestoredBackup(stack, "Backup", backup_id=PLAIN_ID, **{option: value})
