"""Emulated backups and their state machine, settled lazily from a clock on every read."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

BACKUP_ID_PATTERN = re.compile(r"backup-[2-7a-zA-Z]{11,16}")
CLUSTER_ID_PATTERN = re.compile(r"cluster-[2-7a-zA-Z]{11,16}")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
"""Region names: us-east-1, eu-west-2, ap-southeast-5, us-gov-west-1, cn-north-1."""
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
RESTORE_WINDOW_SECONDS = 7 * 24 * 3600.0
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MODES = ("FIPS", "NON_FIPS")

Timestamp = float | int | datetime | str


class Clock(Protocol):
    """Anything that tells modelled time as epoch seconds."""

    def now(self) -> float:
        """Modelled seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of modelled time pass for the caller (an injected latency)."""
        ...


class BackupState(StrEnum):
    """The states CloudHSM reports for a backup."""

    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    READY = "READY"
    DELETED = "DELETED"
    PENDING_DELETION = "PENDING_DELETION"


def to_epoch(value: Timestamp) -> float:
    """Epoch seconds from a number, an aware/naive-UTC datetime or an ISO-8601 string."""
    if isinstance(value, bool):
        raise TypeError("a timestamp cannot be a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def derived_id(prefix: str, seed: str) -> str:
    """A stable, pattern-valid id (``prefix-`` + 11 base32 letters) derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return f"{prefix}-{base64.b32encode(digest).decode().lower()[:11]}"


def normalize_tags(tags: Mapping[str, str] | Iterable[Mapping[str, str]] | None) -> list[dict[str, str]]:
    """Tags as a TagList, from a mapping or a list of ``{"Key", "Value"}``; enforces the service limits."""
    if tags is None:
        return []
    if isinstance(tags, Mapping):
        pairs = [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    else:
        pairs = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]
    if len(pairs) > MAX_TAGS:
        raise ValueError(f"a backup has at most {MAX_TAGS} tags, got {len(pairs)}")
    for pair in pairs:
        if not 1 <= len(pair["Key"]) <= MAX_TAG_KEY:
            raise ValueError(f"tag key must be 1-{MAX_TAG_KEY} characters: {pair['Key']!r}")
        if len(pair["Value"]) > MAX_TAG_VALUE:
            raise ValueError(f"tag value must be at most {MAX_TAG_VALUE} characters (key {pair['Key']!r})")
    return pairs


@dataclass
class Backup:
    """One backup as the emulator stores it; ``BackupStore`` renders what the API reports."""

    backup_id: str
    state: BackupState
    cluster_id: str
    create_timestamp: float
    tags: list[dict[str, str]] = field(default_factory=list)
    restore_seconds: float | None = None
    never_expires: bool = False
    hsm_type: str | None = "hsm2m.medium"
    mode: str | None = "FIPS"
    deleted_at: float | None = None
    copy_timestamp: float | None = None
    source_region: str | None = None
    source_backup: str | None = None
    source_cluster: str | None = None
    restore_ready_at: float | None = None
    restoring_as: BackupState | None = None
    """What the backup reports while a restore runs (set and cleared with ``restore_ready_at``)."""
    ready_since: float | None = None
    """When the backup last became READY (None: at creation); the retention sweep only sees it after that."""
    refuse_restore: str | None = None
    """If set, RestoreBackup refuses this PENDING_DELETION backup with this message (an undocumented refusal)."""

    def __post_init__(self) -> None:
        if not BACKUP_ID_PATTERN.fullmatch(self.backup_id):
            raise ValueError(f"backup id {self.backup_id!r} does not match {BACKUP_ID_PATTERN.pattern}")
        if not CLUSTER_ID_PATTERN.fullmatch(self.cluster_id):
            raise ValueError(f"cluster id {self.cluster_id!r} does not match {CLUSTER_ID_PATTERN.pattern}")
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.restore_seconds is not None and self.restore_seconds < 0:
            raise ValueError("restore_seconds must not be negative")

    @property
    def restoring(self) -> bool:
        """Whether a RestoreBackup is under way."""
        return self.restore_ready_at is not None

    def settle(self, now: float) -> None:
        """Apply every transition due by ``now``: a finished restore, an expired restore window."""
        if self.restore_ready_at is not None and now >= self.restore_ready_at:
            self.ready_since = self.restore_ready_at
            self.state = BackupState.READY
            self.deleted_at = None
            self.restore_ready_at = None
            self.restoring_as = None
        if (
            self.state is BackupState.PENDING_DELETION
            and not self.restoring
            and self.deleted_at is not None
            and now - self.deleted_at > RESTORE_WINDOW_SECONDS
        ):
            self.state = BackupState.DELETED

    def reported_state(self) -> BackupState:
        """The state the API shows (a restore in progress shows as configured)."""
        return self.restoring_as or self.state


def build_backup(d: Mapping[str, Any], now: float) -> Backup:
    """A Backup from ``add_backup`` keywords, with defaults (cluster id, delete time) relative to ``now``."""
    state = BackupState(d["state"])
    deleted_at: float | None = None
    if d.get("delete_timestamp") is not None:
        deleted_at = to_epoch(d["delete_timestamp"])
    elif d.get("deleted_seconds_ago") is not None:
        deleted_at = now - float(d["deleted_seconds_ago"])
    elif state is BackupState.PENDING_DELETION:
        deleted_at = now
    elif state is BackupState.DELETED:
        deleted_at = now - RESTORE_WINDOW_SECONDS - 1
    if deleted_at is not None and state not in (BackupState.PENDING_DELETION, BackupState.DELETED):
        raise ValueError(f"{d['backup_id']}: a delete timestamp only applies to PENDING_DELETION or DELETED")
    never_expires = d.get("never_expires", False)
    if not isinstance(never_expires, bool):
        raise TypeError(f"{d['backup_id']}: never_expires must be true or false, got {never_expires!r}")
    create = d.get("create_timestamp")
    copy = d.get("copy_timestamp")
    restore = d.get("restore_seconds")
    return Backup(
        backup_id=str(d["backup_id"]),
        state=state,
        cluster_id=d.get("cluster_id") or derived_id("cluster", str(d["backup_id"])),
        # Not given: created no later than it was deleted (the seed check refuses a creation after that).
        create_timestamp=(
            to_epoch(create) if create is not None else now if deleted_at is None else min(now, deleted_at)
        ),
        tags=normalize_tags(d.get("tags")),
        restore_seconds=None if restore is None else float(restore),
        never_expires=never_expires,
        hsm_type=d.get("hsm_type", "hsm2m.medium"),
        mode=d.get("mode", "FIPS"),
        deleted_at=deleted_at,
        copy_timestamp=None if copy is None else to_epoch(copy),
        source_region=d.get("source_region"),
        source_backup=d.get("source_backup"),
        source_cluster=d.get("source_cluster"),
        refuse_restore=d.get("refuse_restore"),
    )
