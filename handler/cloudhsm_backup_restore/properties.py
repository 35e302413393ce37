"""ResourceProperties -> a frozen dataclass; every error names the property and the rule it broke."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloudhsm_backup_restore.errors import InvalidPropertiesError

BACKUP_ID_PATTERN = re.compile(r"backup-[2-7a-zA-Z]{11,16}")
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")
DEFAULT_SERVICE_TIMEOUT = 3600
MAX_SERVICE_TIMEOUT = 3600


class OnDelete(StrEnum):
    """What stack deletion (or replacement) does to the restored backup."""

    RETAIN = "Retain"
    DELETE = "Delete"


RESOURCE_PROPERTIES = ("BackupId", "OnDelete", "NeverExpires", "Region")
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
    )
