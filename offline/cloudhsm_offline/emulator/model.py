"""Emulated backups and their state machine, settled lazily from a clock on every read."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from cloudhsm_offline.emulator.errors import InvalidRequestError, ResourceNotFoundError

BACKUP_ID_PATTERN = re.compile(r"backup-[2-7a-zA-Z]{11,16}")
CLUSTER_ID_PATTERN = re.compile(r"cluster-[2-7a-zA-Z]{11,16}")
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
    """One backup as the emulator stores it; ``view`` renders what the API reports."""

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
        if self.restoring_as is not None and self.restoring:
            return self.restoring_as
        return self.state


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
        create_timestamp=now if create is None else to_epoch(create),
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
    )


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


class BackupStore:
    """The backups of one emulated account and region; thread-safe, transitions driven by ``clock``."""

    def __init__(
        self,
        clock: Clock,
        region: str,
        account: str,
        *,
        restore_seconds: float = 0.0,
        restore_in_progress_state: str = "PENDING_DELETION",
        delete_timestamp_is_expiry: bool = False,
    ) -> None:
        self.clock = clock
        self.region = region
        self.account = account
        self.restore_seconds = restore_seconds
        self.restore_in_progress_state = restore_in_progress_state
        self.delete_timestamp_is_expiry = delete_timestamp_is_expiry
        self._backups: dict[str, Backup] = {}
        self._lock = threading.RLock()

    @property
    def restore_in_progress_state(self) -> BackupState:
        """What a backup reports while its restore runs: PENDING_DELETION or CREATE_IN_PROGRESS."""
        return self._restore_in_progress_state

    @restore_in_progress_state.setter
    def restore_in_progress_state(self, value: str) -> None:
        state = BackupState(value)
        if state not in (BackupState.PENDING_DELETION, BackupState.CREATE_IN_PROGRESS):
            raise ValueError("restore_in_progress_state must be PENDING_DELETION or CREATE_IN_PROGRESS")
        self._restore_in_progress_state = state

    def arn(self, backup_id: str) -> str:
        """The backup's ARN in this account and region."""
        return f"arn:aws:cloudhsm:{self.region}:{self.account}:backup/{backup_id}"

    def add(self, backup: Backup) -> None:
        """Add or replace a backup."""
        with self._lock:
            self._backups[backup.backup_id] = backup

    def clear(self) -> None:
        """Forget every backup."""
        with self._lock:
            self._backups.clear()

    def view(self, backup_id: str) -> dict[str, Any]:
        """The Backup shape the API reports for one backup right now."""
        with self._lock:
            return self._view(self._settled(backup_id))

    def views(self) -> list[dict[str, Any]]:
        """The Backup shapes of every backup right now, in insertion order."""
        with self._lock:
            now = self.clock.now()
            for backup in self._backups.values():
                backup.settle(now)
            return [self._view(b) for b in self._backups.values()]

    def restore(self, backup_id: str) -> dict[str, Any]:
        """RestoreBackup: start restoring a PENDING_DELETION backup; READY at once if it takes 0 s."""
        with self._lock:
            backup = self._settled(backup_id)
            reported = backup.reported_state()
            if backup.restoring and reported is BackupState.PENDING_DELETION:
                return self._view(backup)
            if reported is not BackupState.PENDING_DELETION:
                raise InvalidRequestError(
                    f"Backup {backup_id} is in state {reported.value}; "
                    "only a backup in PENDING_DELETION state can be restored."
                )
            seconds = self.restore_seconds if backup.restore_seconds is None else backup.restore_seconds
            now = self.clock.now()
            backup.restore_ready_at = now + seconds
            backup.restoring_as = self.restore_in_progress_state
            backup.settle(now)
            return self._view(backup)

    def delete(self, backup_id: str) -> dict[str, Any]:
        """DeleteBackup: a READY backup goes to PENDING_DELETION, restorable for 7 days."""
        with self._lock:
            backup = self._settled(backup_id)
            reported = backup.reported_state()
            if reported is not BackupState.READY:
                raise InvalidRequestError(
                    f"Backup {backup_id} is in state {reported.value}; only a READY backup can be deleted."
                )
            backup.state = BackupState.PENDING_DELETION
            backup.deleted_at = self.clock.now()
            return self._view(backup)

    def modify(self, backup_id: str, never_expires: bool) -> dict[str, Any]:
        """ModifyBackupAttributes: set NeverExpires on a backup that is not DELETED."""
        with self._lock:
            backup = self._settled(backup_id)
            if backup.state is BackupState.DELETED:
                raise InvalidRequestError(f"Backup {backup_id} is DELETED and cannot be modified.")
            backup.never_expires = never_expires
            return self._view(backup)

    def _settled(self, backup_id: str) -> Backup:
        backup = self._backups.get(backup_id)
        if backup is None:
            raise ResourceNotFoundError(f"Backup {backup_id} not found.")
        backup.settle(self.clock.now())
        return backup

    def _view(self, backup: Backup) -> dict[str, Any]:
        state = backup.reported_state()
        delete_ts = backup.deleted_at
        if delete_ts is not None and self.delete_timestamp_is_expiry:
            delete_ts += RESTORE_WINDOW_SECONDS
        if state is BackupState.CREATE_IN_PROGRESS and backup.restoring:
            delete_ts = None
        view: dict[str, Any] = {
            "BackupId": backup.backup_id,
            "BackupArn": self.arn(backup.backup_id),
            "BackupState": state.value,
            "ClusterId": backup.cluster_id,
            "CreateTimestamp": _dt(backup.create_timestamp),
            "CopyTimestamp": _dt(backup.copy_timestamp),
            "NeverExpires": backup.never_expires,
            "SourceRegion": backup.source_region,
            "SourceBackup": backup.source_backup,
            "SourceCluster": backup.source_cluster,
            "DeleteTimestamp": _dt(delete_ts),
            "TagList": [dict(t) for t in backup.tags] or None,
            "HsmType": backup.hsm_type,
            "Mode": backup.mode,
        }
        return {k: v for k, v in view.items() if v is not None}
