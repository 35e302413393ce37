"""ResourceProperties -> a frozen dataclass; every error names the property and the rule it broke."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloudhsm_backup_restore.errors import InvalidPropertiesError

BACKUP_ID_PATTERN = re.compile(r"backup-[2-7a-zA-Z]{11,16}")
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")
DEFAULT_SERVICE_TIMEOUT = 3600
MAX_SERVICE_TIMEOUT = 3600
PROJECT_TAG_PREFIX = "cloudhsm-backup-restore:"
"""This resource's own tag keys (the ownership record): never a user's, nor ``aws:``, which AWS reserves."""
MAX_TAGS = 50
"""A backup holds at most 50 tags (botocore cloudhsmv2 model, shape TagList max 50), one of them the record."""
TAG_LIMITS = {"Key": (1, 128), "Value": (0, 256)}
"""Characters of a tag key and value (botocore cloudhsmv2 model, shapes TagKey and TagValue)."""


class OnDelete(StrEnum):
    """What stack deletion (or replacement) does to the restored backup."""

    RETAIN = "Retain"
    DELETE = "Delete"


RESOURCE_PROPERTIES = ("BackupId", "OnDelete", "NeverExpires", "Region", "Tags")
"""Properties this resource defines."""
CLOUDFORMATION_PROPERTIES = ("ServiceToken", "ServiceTimeout")
"""Properties CloudFormation itself reads and passes along."""
VALID_PROPERTIES = tuple(sorted(RESOURCE_PROPERTIES + CLOUDFORMATION_PROPERTIES))


@dataclass(frozen=True)
class RestoreProperties:
    """The validated ResourceProperties of one request."""

    backup_id: str
    on_delete: OnDelete = OnDelete.RETAIN
    never_expires: bool | None = None
    region: str | None = None
    service_timeout: int = DEFAULT_SERVICE_TIMEOUT
    tags: tuple[tuple[str, str], ...] = ()
    """(Key, Value) pairs in the order given, keys unique."""

    def identity(self, default_region: str) -> tuple[str, str]:
        """What names the backup, as its ARN does: (BackupId, Region or the function's). A change is a replacement;
        a Region written out or removed is not."""
        return (self.backup_id, self.region or default_region)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_backup_id(raw: dict[str, Any]) -> str:
    if "BackupId" not in raw:
        raise InvalidPropertiesError(
            "Property BackupId is required: the id of the backup to restore, e.g. backup-abcdefghijk"
        )
    value = raw["BackupId"]
    if not isinstance(value, str) or not BACKUP_ID_PATTERN.fullmatch(value):
        raise InvalidPropertiesError(f"Property BackupId must match backup-[2-7a-zA-Z]{{11,16}}, got {_shown(value)}")
    return value


def _parse_on_delete(raw: dict[str, Any]) -> OnDelete:
    value = raw.get("OnDelete", OnDelete.RETAIN.value)
    for choice in OnDelete:
        if isinstance(value, str) and value.lower() == choice.value.lower():
            return choice
    raise InvalidPropertiesError(f"Property OnDelete must be Retain or Delete, got {_shown(value)}")


def _parse_never_expires(raw: dict[str, Any]) -> bool | None:
    if "NeverExpires" not in raw:
        return None
    value = raw["NeverExpires"]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidPropertiesError(f"Property NeverExpires must be true or false, got {_shown(value)}")


def _parse_region(raw: dict[str, Any]) -> str | None:
    value = raw.get("Region")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not REGION_PATTERN.fullmatch(value):
        raise InvalidPropertiesError(f"Property Region must be an AWS region name like eu-west-1, got {_shown(value)}")
    return value


def _parse_service_timeout(raw: dict[str, Any]) -> int:
    value = raw.get("ServiceTimeout", DEFAULT_SERVICE_TIMEOUT)
    try:
        seconds = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        seconds = None
    if seconds is None or not 1 <= seconds <= MAX_SERVICE_TIMEOUT:
        raise InvalidPropertiesError(
            f"Property ServiceTimeout must be a whole number of seconds from 1 to {MAX_SERVICE_TIMEOUT}, "
            f"got {_shown(value)}"
        )
    return seconds


def _tag_problem(tag: object, seen: dict[str, str]) -> str:
    """What is wrong with one tag ("" when nothing): CloudHSM's rules for TagKey and TagValue (botocore cloudhsmv2
    model: pattern ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``), the reserved prefixes, a key given twice."""
    if not isinstance(tag, dict) or sorted(tag) != ["Key", "Value"]:
        return "each tag must be an object with exactly Key and Value"
    for name, (low, high) in TAG_LIMITS.items():
        text = tag[name]
        if not isinstance(text, str) or not low <= len(text) <= high or not all(map(_tag_character, text)):
            return f"a tag's {name} must be a string of {low}-{high} letters, digits, spaces and _.:/=+-@"
    if tag["Key"].lower().startswith(("aws:", PROJECT_TAG_PREFIX)):
        return f"keys starting with aws: (AWS's) or {PROJECT_TAG_PREFIX} (the ownership record's) are reserved"
    return f"key {tag['Key']} is given twice" if tag["Key"] in seen else ""


def _tag_character(char: str) -> bool:
    return char.isalnum() or char in "_.:/=+-@" or unicodedata.category(char)[0] == "Z"


def _parse_tags(raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    value = raw.get("Tags", [])
    if not isinstance(value, list) or len(value) >= MAX_TAGS:
        raise InvalidPropertiesError(
            f"Property Tags must be a list of at most {MAX_TAGS - 1} {{Key, Value}} objects (a backup holds "
            f"{MAX_TAGS} tags, one is the ownership record), got {_shown(value)}"
        )
    tags: dict[str, str] = {}
    for tag in value:
        if problem := _tag_problem(tag, tags):
            raise InvalidPropertiesError(f"Property Tags: {problem}, got {_shown(tag)}")
        tags[tag["Key"]] = tag["Value"]
    return tuple(tags.items())


def _reject_unknown(raw: dict[str, Any]) -> None:
    unknown = sorted(str(key) for key in raw if key not in VALID_PROPERTIES)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, VALID_PROPERTIES, n=1, cutoff=0.6)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    noun = "property" if len(unknown) == 1 else "properties"
    raise InvalidPropertiesError(
        f"Unknown {noun} {', '.join(hints)}; valid properties are {', '.join(VALID_PROPERTIES)}"
    )


def parse_properties(raw: object) -> RestoreProperties:
    """Validate ResourceProperties as CloudFormation sends them (scalars as strings)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidPropertiesError(f"ResourceProperties must be an object, got {_shown(raw)}")
    _reject_unknown(raw)
    return RestoreProperties(
        backup_id=_parse_backup_id(raw),
        on_delete=_parse_on_delete(raw),
        never_expires=_parse_never_expires(raw),
        region=_parse_region(raw),
        service_timeout=_parse_service_timeout(raw),
        tags=_parse_tags(raw),
    )
