"""Backup -> flat string Data for Fn::GetAtt that fits CloudFormation's 4096-byte response."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

RESPONSE_LIMIT_BYTES = 4096
"""CloudFormation rejects a response body longer than this ("Response object is too long")."""

ATTRIBUTE_NAMES = (
    "BackupId",
    "BackupArn",
    "BackupState",
    "ClusterId",
    "CreateTimestamp",
    "CopyTimestamp",
    "NeverExpires",
    "SourceRegion",
    "SourceBackup",
    "SourceCluster",
    "DeleteTimestamp",
    "HsmType",
    "Mode",
)
"""Backup attributes always present in Data (as "" when AWS returns none)."""
TAG_LIST_ATTRIBUTE = "TagList"
TAGS_TRUNCATED_ATTRIBUTE = "TagsTruncated"
TAG_ATTRIBUTE_PREFIX = "Tag."


def _as_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _tag_list_json(tags: list[dict[str, str]]) -> str:
    return json.dumps(tags, separators=(",", ":"), ensure_ascii=False)


def body_size(body: Mapping[str, Any]) -> int:
    """Bytes of a response body as crhelper serialises it (json.dumps defaults)."""
    return len(json.dumps(body).encode("utf-8"))


def to_attributes(
    backup: Mapping[str, Any],
    envelope: Mapping[str, Any] | None = None,
    limit: int = RESPONSE_LIMIT_BYTES,
) -> dict[str, str]:
    """Flatten a Backup into string attributes; drop trailing tags until the whole body fits ``limit``.

    ``envelope`` is the rest of the response body (Status, Reason, ids, NoEcho): its bytes count too.
    """
    data = {name: _as_string(backup.get(name)) for name in ATTRIBUTE_NAMES}
    tags = [
        {"Key": str(tag.get("Key", "")), "Value": str(tag.get("Value", ""))}
        for tag in backup.get("TagList") or []
    ]
    body: dict[str, Any] = dict(envelope or {})

    def sized(kept: list[dict[str, str]]) -> tuple[dict[str, str], int]:
        candidate = dict(data)
        candidate[TAG_LIST_ATTRIBUTE] = _tag_list_json(kept)
        candidate[TAGS_TRUNCATED_ATTRIBUTE] = "true" if len(kept) < len(tags) else "false"
        for tag in kept:
            candidate[TAG_ATTRIBUTE_PREFIX + tag["Key"]] = tag["Value"]
        body["Data"] = candidate
        return candidate, body_size(body)

    # Largest prefix of the tag list that fits: binary search over how many tags are kept.
    low, high = 0, len(tags)
    best, size = sized(tags)
    if size <= limit:
        return best
    best, _ = sized([])
    while low < high:
        middle = (low + high + 1) // 2
        candidate, size = sized(tags[:middle])
        if size <= limit:
            low, best = middle, candidate
        else:
            high = middle - 1
    return best
