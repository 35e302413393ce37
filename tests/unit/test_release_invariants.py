"""Property-based: a Delete calls DeleteBackup only for the sole owner of the backup (or a previous-release
resource with no record at all), whatever the record, the physical id and the properties say."""

from __future__ import annotations

from typing import Any

from cloudhsm_backup_restore.ownership import OWNER_TAG_KEY, Claimant, record
from cloudhsm_backup_restore.release import Request, release
from hypothesis import given, settings
from hypothesis import strategies as st

STACKS = ("arn:aws:cloudformation:us-east-1:1:stack/a/1", "arn:aws:cloudformation:us-east-1:1:stack/b/2")
BACKUP = "backup-abcdefghijk"
ARN = f"arn:aws:cloudhsm:us-east-1:123456789012:backup/{BACKUP}"
PHYSICAL_IDS = (ARN, BACKUP, "create-failed-1", f"arn:aws:cloudhsm:eu-west-1:123456789012:backup/{BACKUP}")
claimants = st.builds(Claimant, st.sampled_from(STACKS), st.sampled_from(("A", "B")), st.sampled_from(PHYSICAL_IDS))


class FakeBackups:
    """Records the calls release() makes; the backup is READY with the given tags."""

    region = "us-east-1"

    def __init__(self, tags: list[dict[str, str]] | None) -> None:
        self.backup: dict[str, Any] = {"BackupId": BACKUP, "BackupArn": ARN, "BackupState": "READY"}
        if tags is not None:
            self.backup["TagList"] = tags
        self.calls: list[str] = []

    def describe(self, backup_id: str) -> dict[str, Any]:
        return self.backup

    def tags(self, backup: Any) -> list[dict[str, str]]:
        self.calls.append("ListTags")
        return []

    def tag(self, backup_id: str, key: str, value: str) -> None:
        self.calls.append("TagResource")

    def untag(self, backup_id: str, key: str) -> None:
        self.calls.append("UntagResource")

    def delete(self, backup_id: str) -> None:
        self.calls.append("DeleteBackup")


@settings(max_examples=300, deadline=None)
@given(
    record_claims=st.one_of(st.none(), st.lists(claimants, min_size=1, max_size=4, unique=True)),
    stack=st.sampled_from(STACKS),
    logical=st.sampled_from(("A", "B")),
    physical=st.sampled_from(PHYSICAL_IDS),
    on_delete=st.sampled_from(("Retain", "Delete")),
)
def test_only_the_sole_owner_deletes(
    record_claims: list[Claimant] | None, stack: str, logical: str, physical: str, on_delete: str
) -> None:
    tags = None
    if record_claims is not None:
        value = record([c.digest for c in record_claims], record_claims[0])
        tags = [{"Key": OWNER_TAG_KEY, "Value": value}]
    fake = FakeBackups(tags if tags is not None else [])
    request = Request(stack_id=stack, logical_id=logical, request_type="Delete", physical_id=physical)
    props = {"BackupId": BACKUP, "OnDelete": on_delete}
    release(lambda region: fake, props, physical, request, lambda call: call())  # type: ignore[arg-type,return-value]

    me_id = ARN if physical == "create-failed-1" else physical
    me = Claimant(stack, logical, me_id)
    sole_owner = record_claims is not None and [c.digest for c in record_claims] == [me.digest]
    legacy_unrecorded = record_claims is None and physical == BACKUP
    deleted = "DeleteBackup" in fake.calls
    assert deleted == (on_delete == "Delete" and (sole_owner or legacy_unrecorded))
