"""The backups and clusters of one emulated account and region, settled lazily from a clock on every read."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cloudhsm_offline.emulator.errors import InvalidRequestError, ResourceLimitExceededError, ResourceNotFoundError
from cloudhsm_offline.emulator.model import (
    MAX_TAGS,
    RESTORE_WINDOW_SECONDS,
    Backup,
    BackupState,
    Clock,
    normalize_tags,
)
from cloudhsm_offline.emulator.retention import DEFAULT_PURGE_INTERVAL, Cluster, RetentionSweep

RESERVED_TAG_PREFIX = "aws:"
"""AWS reserves tag keys starting with aws: (AWS General Reference, "Tagging AWS resources")."""


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


class BackupStore:
    """The backups (and clusters) of one emulated account and region; thread-safe, driven by ``clock``."""

    def __init__(
        self,
        clock: Clock,
        region: str,
        account: str,
        *,
        restore_seconds: float = 0.0,
        restore_in_progress_state: str = "PENDING_DELETION",
        delete_timestamp_is_expiry: bool = True,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
    ) -> None:
        self.clock = clock
        self.region = region
        self.account = account
        self.restore_seconds = restore_seconds
        self.restore_in_progress_state = restore_in_progress_state
        self.delete_timestamp_is_expiry = delete_timestamp_is_expiry
        """DeleteTimestamp is "the date and time when the backup will be permanently deleted" (API reference,
        Backup: https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_Backup.html): the deletion plus the
        7-day window. False reports the moment of deletion instead (the handler must work under either)."""
        self.sweep = RetentionSweep(clock.now(), purge_interval)
        self.clusters: dict[str, Cluster] = {}
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
        """The backup's ARN in this account, region and the region's partition."""
        return f"arn:{partition_of(self.region)}:cloudhsm:{self.region}:{self.account}:backup/{backup_id}"

    def add(self, backup: Backup) -> None:
        """Add or replace a backup."""
        with self._lock:
            self._backups[backup.backup_id] = backup

    def add_cluster(self, cluster: Cluster) -> None:
        """Add or replace a cluster (its retention policy governs its backups)."""
        with self._lock:
            self.clusters[cluster.cluster_id] = cluster

    def clear(self) -> None:
        """Forget every backup and cluster."""
        with self._lock:
            self._backups.clear()
            self.clusters.clear()

    def view(self, backup_id: str) -> dict[str, Any]:
        """The Backup shape the API reports for one backup right now."""
        with self._lock:
            return self._view(self._settled(backup_id))

    def views(self) -> list[dict[str, Any]]:
        """The Backup shapes of every backup right now, in insertion order."""
        with self._lock:
            self._settle_all()
            return [self._view(b) for b in self._backups.values()]

    def cluster_views(self) -> list[dict[str, Any]]:
        """The Cluster shapes of every cluster, in insertion order."""
        with self._lock:
            return [c.view() for c in self.clusters.values()]

    def restore(self, backup_id: str) -> dict[str, Any]:
        """RestoreBackup: restore a PENDING_DELETION backup; READY at once unless it is given restore seconds."""
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
            if backup.refuse_restore:
                raise InvalidRequestError(backup.refuse_restore)
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

    # -- tags (TagResource, UntagResource, ListTags on a backup or cluster id) ----------------------

    def _tags_of(self, resource_id: str) -> list[dict[str, str]]:
        if resource_id in self.clusters:
            return self.clusters[resource_id].tags
        backup = self._settled(resource_id)
        if backup.state is BackupState.DELETED:
            raise ResourceNotFoundError(f"Backup {resource_id} is DELETED.")
        return backup.tags

    def tag(self, resource_id: str, tags: Iterable[dict[str, str]]) -> None:
        """TagResource: add or overwrite; a resource holds at most 50 tags (TagList max 50, botocore model)."""
        with self._lock:
            current = self._tags_of(resource_id)
            new = normalize_tags(list(tags))
            for pair in new:
                if pair["Key"].lower().startswith(RESERVED_TAG_PREFIX):
                    raise InvalidRequestError(f"Tag keys starting with {RESERVED_TAG_PREFIX} are reserved by AWS.")
            merged = {t["Key"]: t["Value"] for t in current}
            merged.update({t["Key"]: t["Value"] for t in new})
            if len(merged) > MAX_TAGS:
                # Which error AWS answers over the limit is not documented; this one "exceeds a CloudHSM limit".
                raise ResourceLimitExceededError(
                    f"Resource {resource_id} would have {len(merged)} tags; a resource can have at most {MAX_TAGS}."
                )
            current[:] = [{"Key": k, "Value": v} for k, v in merged.items()]

    def untag(self, resource_id: str, keys: Iterable[str]) -> None:
        """UntagResource: remove the named keys (absent keys are ignored)."""
        with self._lock:
            current = self._tags_of(resource_id)
            gone = set(keys)
            current[:] = [t for t in current if t["Key"] not in gone]

    def list_tags(self, resource_id: str) -> list[dict[str, str]]:
        """ListTags: the resource's tags."""
        with self._lock:
            return [dict(t) for t in self._tags_of(resource_id)]

    # -- settling ----------------------------------------------------------------------------------

    def _settle_all(self) -> None:
        now = self.clock.now()
        for backup in self._backups.values():
            backup.settle(now)
        at = self.sweep.due(now)
        if at is not None:
            RetentionSweep.purge(self._backups.values(), self.clusters, at)

    def _settled(self, backup_id: str) -> Backup:
        self._settle_all()
        backup = self._backups.get(backup_id)
        if backup is None:
            raise ResourceNotFoundError(f"Backup {backup_id} not found.")
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
