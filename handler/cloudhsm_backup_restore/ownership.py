"""Who owns a restored backup: the physical id of a resource and the ownership record kept in a backup tag.

The record is one tag, ``cloudhsm-backup-restore:owner``, whose value is a stack of claims: the 12-hex
digests of the resources that claimed the backup, newest first (``d1+d2``), then, for operators,
``owner <stack name>/<logical id>`` naming the owner, or ``returned-by <stack name>/<logical id>`` when
an owner that had taken the backup over handed it back to the claim below it. The first claim owns
the backup; only the owner's Delete may delete it. A digest covers the StackId, the LogicalResourceId
and the PhysicalResourceId, so a replacement of the same logical id (a new Region, the upgrade from the
bare-BackupId physical id) is a different claimant from the resource it replaces.

Tag values allow letters, digits, spaces and ``_.:/=+-@`` up to 256 characters (botocore cloudhsmv2
model, shape TagValue), so the format uses ``+`` and a space as separators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloudhsm_backup_restore.properties import BACKUP_ID_PATTERN

OWNER_TAG_KEY = "cloudhsm-backup-restore:owner"
"""The project's own prefix: never ``aws:``, which AWS reserves."""
MAX_TAGS = 50
"""A backup holds at most 50 tags (botocore cloudhsmv2 model, shape TagList max 50)."""
MAX_TAG_VALUE = 256
MAX_CLAIMS = 8
"""Claims kept in the record; the oldest beyond this lose their claim (they then never delete)."""
DIGEST_LENGTH = 12
LABEL_SEPARATOR = " "
CLAIM_SEPARATOR = "+"


def partition_of(region: str) -> str:
    """The ARN partition of a region (aws-cn for cn-*, aws-us-gov for us-gov-*, else aws)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def physical_id_of(backup: Mapping[str, Any], region: str) -> str:
    """The PhysicalResourceId: the backup's ARN, unique per backup and region (composed if AWS sent none)."""
    arn = backup.get("BackupArn")
    if isinstance(arn, str) and arn.startswith("arn:"):
        return arn
    return f"arn:{partition_of(region)}:cloudhsm:{region}::backup/{backup['BackupId']}"


@dataclass(frozen=True)
class Target:
    """The backup a Delete's PhysicalResourceId points at, and which release of the resource answered it."""

    backup_id: str
    region: str | None
    legacy: bool
    """The previous release's physical id: the bare BackupId (no record of who restored it)."""


def target_of(physical_id: str) -> Target | None:
    """The backup named by a physical id (an ARN, or a bare BackupId from the previous release); None otherwise."""
    if BACKUP_ID_PATTERN.fullmatch(physical_id):
        return Target(physical_id, None, True)
    parts = physical_id.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "cloudhsm" and parts[5].startswith("backup/"):
        backup_id = parts[5].removeprefix("backup/")
        if BACKUP_ID_PATTERN.fullmatch(backup_id):
            return Target(backup_id, parts[3] or None, False)
    return None


@dataclass(frozen=True)
class Claimant:
    """One resource (stack, logical id, physical id) as the ownership record names it."""

    stack_id: str
    logical_id: str
    physical_id: str

    @property
    def digest(self) -> str:
        """A short, stable fingerprint of the three ids."""
        text = "\n".join((self.stack_id, self.logical_id, self.physical_id))
        return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]

    @property
    def label(self) -> str:
        """``<stack name>/<logical id>`` for operators reading the tag."""
        parts = self.stack_id.split("/")
        stack = parts[1] if len(parts) > 2 else self.stack_id
        return f"{stack}/{self.logical_id}"


def tag_value(backup: Mapping[str, Any] | None, key: str) -> str | None:
    """The value of tag ``key`` in a Backup's TagList, None when absent."""
    for tag in (backup or {}).get("TagList") or []:
        if tag.get("Key") == key:
            return str(tag.get("Value", ""))
    return None


def claims_in(value: str | None) -> list[str] | None:
    """The claims of a record (owner first); None when there is no record."""
    if value is None:
        return None
    head = value.split(LABEL_SEPARATOR, 1)[0]
    return [claim for claim in head.split(CLAIM_SEPARATOR) if claim]


def record(claims: Sequence[str], writer: Claimant, verb: str = "owner") -> str:
    """The tag value for ``claims`` (owner first) and ``<verb> <writer's label>``, within 256 characters."""
    return relabel(claims, f"{verb} {writer.label}")


def relabel(claims: Sequence[str], label: str) -> str:
    """The tag value for ``claims`` (owner first) followed by ``label``, within 256 characters."""
    head = CLAIM_SEPARATOR.join(list(claims)[:MAX_CLAIMS])
    return (head + LABEL_SEPARATOR + label)[:MAX_TAG_VALUE]


def label_of(value: str) -> str:
    """The operator-readable part of a record."""
    return value.split(LABEL_SEPARATOR, 1)[1] if LABEL_SEPARATOR in value else ""


def with_record(backup: Mapping[str, Any], value: str | None) -> dict[str, Any]:
    """A copy of the Backup whose TagList shows the record as written (or removed, for None)."""
    tags = [dict(t) for t in backup.get("TagList") or [] if t.get("Key") != OWNER_TAG_KEY]
    if value is not None:
        tags.append({"Key": OWNER_TAG_KEY, "Value": value})
    copy = dict(backup)
    copy["TagList"] = tags
    return copy


def room_for_record(backup: Mapping[str, Any]) -> bool:
    """Whether TagResource can add the record: the key is there already, or fewer than 50 tags are."""
    tags = backup.get("TagList") or []
    return tag_value(backup, OWNER_TAG_KEY) is not None or len(tags) < MAX_TAGS
