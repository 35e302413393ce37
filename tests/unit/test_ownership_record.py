"""The ownership record and the physical id, as pure functions (no I/O), and I1 as a property."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from cloudhsm_backup_restore.backups import CloudHsmBackups
from cloudhsm_backup_restore.lifecycle import BackupLifecycle, Request
from cloudhsm_backup_restore.ownership import (
    OWNER_TAG_KEY,
    OnDeleteVerdict,
    OwnershipRecord,
    Resource,
    tokens_of,
    verdict_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/my-stack/0f0e0d0c-0000-1111-2222-333344445555"
OTHER_STACK = STACK.replace("my-stack/0f0e", "other/1f0e")
BACKUP = "backup-abcdefghijk"
ARN = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"


def client(region: str) -> Any:
    """A real cloudhsmv2 client (composing an ARN makes no call): its partition comes from botocore's data."""
    return boto3.client("cloudhsmv2", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("eu-west-1", "aws"),
        ("eusc-de-east-1", "aws-eusc"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_a_composed_physical_id_uses_the_region_partition(region: str, partition: str) -> None:
    backups = CloudHsmBackups(client(region), region)
    assert backups.arn({"BackupId": BACKUP}) == f"arn:{partition}:cloudhsm:{region}::backup/{BACKUP}"


def test_the_physical_id_is_the_backup_arn_aws_reports() -> None:
    arn = f"arn:aws-cn:cloudhsm:cn-north-1:111122223333:backup/{BACKUP}"
    assert CloudHsmBackups(client("cn-north-1"), "cn-north-1").arn({"BackupId": BACKUP, "BackupArn": arn}) == arn


def test_resources_differ_by_stack_logical_id_and_arn_and_know_their_stack() -> None:
    base = Resource(STACK, "Restored", ARN)
    others = [
        Resource(OTHER_STACK, "Restored", ARN),
        Resource(STACK, "Renamed", ARN),
        Resource(STACK, "Restored", ARN.replace("us-east-1", "eu-west-1")),
    ]
    assert len({base.token, *(o.token for o in others)}) == 4
    assert base.label == "my-stack/Restored"
    assert base.same_stack(others[1].token)
    assert not base.same_stack(others[0].token)


def test_the_record_keeps_an_owner_and_at_most_one_previous_within_tag_limits() -> None:
    me, old = Resource(STACK, "R" * 255, ARN), Resource(STACK, "Old", ARN)
    written: list[str] = []

    class Tagging:
        def tag(self, backup: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
            written.append(tags[OWNER_TAG_KEY])
            return {**backup, "TagList": [{"Key": key, "Value": value} for key, value in tags.items()]}

    backup = OwnershipRecord(Tagging()).write(
        {"BackupId": BACKUP, "TagList": []}, [me.token, old.token, "x"], "owner " + me.label
    )  # type: ignore[arg-type]
    assert len(written[0]) <= 256
    assert tokens_of(backup) == [me.token, old.token]
    assert re.fullmatch(r"[\w\s.:/=+\-@]*", written[0])  # botocore's TagValue pattern
    assert re.fullmatch(r"[\w\s.:/=+\-@]*", OWNER_TAG_KEY)
    assert tokens_of({"BackupId": BACKUP, "TagList": []}) is None


def test_delete_verdicts() -> None:
    me, new = Resource(STACK, "A", ARN), Resource(STACK, "B", ARN)
    assert verdict_for(me, None) is OnDeleteVerdict.RETAIN
    assert verdict_for(me, [me.token]) is OnDeleteVerdict.HONOUR
    assert verdict_for(me, [me.token, new.token]) is OnDeleteVerdict.HAND_BACK
    assert verdict_for(me, [new.token, me.token]) is OnDeleteVerdict.WITHDRAW
    assert verdict_for(me, [new.token]) is OnDeleteVerdict.RETAIN


STACKS = (STACK, OTHER_STACK)
PHYSICAL_IDS = (ARN, "create-failed-1", ARN.replace("us-east-1", "eu-west-1"))
resources = st.builds(Resource, st.sampled_from(STACKS), st.sampled_from(("A", "B")), st.sampled_from(PHYSICAL_IDS))


class FakeBackups:
    """Records the calls a Delete makes; the backup is READY with the given tags."""

    region = "us-east-1"

    def __init__(self, tags: list[dict[str, str]]) -> None:
        self.backup: dict[str, Any] = {"BackupId": BACKUP, "BackupArn": ARN, "BackupState": "READY", "TagList": tags}
        self.calls: list[str] = []

    def describe(self, backup_id: str) -> dict[str, Any]:
        return self.backup

    def with_tags(self, backup: Any) -> Any:
        return backup

    def arn(self, backup: Any) -> str:
        return ARN

    def tag(self, backup: Any, tags: dict[str, str]) -> Any:
        self.calls.append("TagResource")
        return backup

    def untag(self, backup: Any, keys: list[str]) -> Any:
        self.calls.append("UntagResource")
        return backup

    def delete(self, backup_id: str) -> None:
        self.calls.append("DeleteBackup")


@settings(max_examples=300, deadline=None)
@given(
    recorded=st.one_of(st.none(), st.lists(resources, min_size=1, max_size=2, unique=True)),
    stack=st.sampled_from(STACKS),
    logical=st.sampled_from(("A", "B")),
    physical=st.sampled_from(PHYSICAL_IDS),
    on_delete=st.sampled_from(("Retain", "Delete")),
)
def test_i1_only_the_sole_owner_deletes(
    recorded: list[Resource] | None, stack: str, logical: str, physical: str, on_delete: str
) -> None:
    tags = [] if recorded is None else [{"Key": OWNER_TAG_KEY, "Value": "+".join(r.token for r in recorded) + " x"}]
    fake = FakeBackups(tags)
    lifecycle = BackupLifecycle(lambda region: fake)  # type: ignore[arg-type,return-value]
    request = Request(stack_id=stack, logical_id=logical, physical_id=physical)
    lifecycle.delete({"BackupId": BACKUP, "OnDelete": on_delete}, physical, request)

    me = Resource(stack, logical, ARN if physical == "create-failed-1" else physical)
    sole_owner = recorded is not None and [r.token for r in recorded] == [me.token]
    assert ("DeleteBackup" in fake.calls) == (on_delete == "Delete" and sole_owner)
