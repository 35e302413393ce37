"""The ownership record and the physical id, as pure functions (no I/O)."""

from __future__ import annotations

import pytest
from cloudhsm_backup_restore.ownership import (
    MAX_CLAIMS,
    MAX_TAG_VALUE,
    OWNER_TAG_KEY,
    Claimant,
    Target,
    claims_in,
    label_of,
    physical_id_of,
    record,
    room_for_record,
    target_of,
)

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/my-stack/0f0e0d0c-0000-1111-2222-333344445555"
BACKUP = "backup-abcdefghijk"


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_a_composed_physical_id_uses_the_region_partition(region: str, partition: str) -> None:
    assert physical_id_of({"BackupId": BACKUP}, region) == f"arn:{partition}:cloudhsm:{region}::backup/{BACKUP}"


def test_the_physical_id_is_the_backup_arn_aws_reports() -> None:
    arn = f"arn:aws-cn:cloudhsm:cn-north-1:111122223333:backup/{BACKUP}"
    assert physical_id_of({"BackupId": BACKUP, "BackupArn": arn}, "cn-north-1") == arn


@pytest.mark.parametrize(
    ("physical_id", "target"),
    [
        (BACKUP, Target(BACKUP, None, True)),
        (f"arn:aws:cloudhsm:eu-west-1:123456789012:backup/{BACKUP}", Target(BACKUP, "eu-west-1", False)),
        (f"arn:aws-us-gov:cloudhsm:us-gov-west-1::backup/{BACKUP}", Target(BACKUP, "us-gov-west-1", False)),
        ("create-failed-1234", None),
        ("arn:aws:cloudhsm:eu-west-1:123456789012:cluster/cluster-abcdefghijk", None),
    ],
)
def test_delete_understands_both_physical_id_forms_and_markers(physical_id: str, target: Target | None) -> None:
    assert target_of(physical_id) == target


def test_claimants_differ_by_stack_logical_id_and_physical_id() -> None:
    arn = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"
    base = Claimant(STACK, "Restored", arn)
    others = [
        Claimant(STACK.replace("0f0e", "1f0e"), "Restored", arn),
        Claimant(STACK, "Renamed", arn),
        Claimant(STACK, "Restored", BACKUP),
    ]
    assert len({base.digest, *(o.digest for o in others)}) == 4
    assert base.label == "my-stack/Restored"


def test_the_record_is_a_claim_stack_owner_first_within_tag_limits() -> None:
    me = Claimant(STACK, "R" * 255, BACKUP)
    claims = [f"{i:012x}" for i in range(MAX_CLAIMS + 3)]
    value = record(claims, me)
    assert len(value) <= MAX_TAG_VALUE
    assert claims_in(value) == claims[:MAX_CLAIMS]
    assert label_of(record(["abc"], me, "returned-by")).startswith("returned-by my-stack/")
    assert claims_in(None) is None
    import re

    assert re.fullmatch(r"[\w\s.:/=+\-@]*", value)  # botocore's TagValue pattern
    assert re.fullmatch(r"[\w\s.:/=+\-@]*", OWNER_TAG_KEY)


def test_room_for_the_record() -> None:
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert not room_for_record({"TagList": fifty})
    assert room_for_record({"TagList": [*fifty[:49], {"Key": OWNER_TAG_KEY, "Value": "x"}]})
    assert room_for_record({"TagList": fifty[:49]})
