"""Backup -> flat string Data for Fn::GetAtt, trimmed so the response fits CloudFormation's 4096 bytes."""

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


def as_attribute(value: Any) -> str:
    """One attribute value as CloudFormation should see it: a string, ISO 8601 UTC for timestamps."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _with_tags(core: Mapping[str, str], tags: list[dict[str, str]], total: int) -> dict[str, str]:
    data = dict(core)
    data[TAG_LIST_ATTRIBUTE] = json.dumps(tags, separators=(",", ":"), ensure_ascii=False)
    data[TAGS_TRUNCATED_ATTRIBUTE] = "true" if len(tags) < total else "false"
    for tag in tags:
        data[TAG_ATTRIBUTE_PREFIX + tag["Key"]] = tag["Value"]
    return data


def to_attributes(backup: Mapping[str, Any]) -> dict[str, str]:
    """Every Backup attribute as a string, plus TagList (compact JSON) and one Tag.<Key> per tag."""
    core = {name: as_attribute(backup.get(name)) for name in ATTRIBUTE_NAMES}
    tags = [{"Key": str(tag.get("Key", "")), "Value": str(tag.get("Value", ""))} for tag in backup.get("TagList") or []]
    return _with_tags(core, tags, len(tags))


def body_size(body: Mapping[str, Any]) -> int:
    """Bytes of a response body as crhelper serialises it (json.dumps with its defaults)."""
    return len(json.dumps(body).encode("utf-8"))


def fit_response(body: dict[str, Any], limit: int = RESPONSE_LIMIT_BYTES) -> dict[str, Any]:
    """Drop trailing tags from body["Data"] until the whole body fits ``limit`` bytes; core attributes stay."""
    data = body.get("Data")
    if body_size(body) <= limit or not isinstance(data, dict) or TAG_LIST_ATTRIBUTE not in data:
        return body
    tags: list[dict[str, str]] = json.loads(data[TAG_LIST_ATTRIBUTE])
    core = {
        key: value
        for key, value in data.items()
        if not key.startswith(TAG_ATTRIBUTE_PREFIX) and key not in (TAG_LIST_ATTRIBUTE, TAGS_TRUNCATED_ATTRIBUTE)
    }
    for count in range(len(tags) - 1, 0, -1):  # at most 50 tags (botocore cloudhsmv2 model, shape TagList)
        candidate = dict(body, Data=_with_tags(core, tags[:count], len(tags)))
        if body_size(candidate) <= limit:
            return candidate
    return dict(body, Data=_with_tags(core, [], len(tags)))
