"""One emulated account's CloudHSM backups and clusters, per region, settled lazily from a clock on every read."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudhsm_offline import partition_of
from cloudhsm_offline.clock import SimClock
from cloudhsm_offline.emulator.errors import InvalidRequestError, ResourceLimitExceededError, ResourceNotFoundError
from cloudhsm_offline.emulator.model import (
    MAX_TAGS,
    RESTORE_WINDOW_SECONDS,
    Backup,
    BackupState,
    Clock,
    Timestamp,
    build_backup,
    normalize_tags,
)
from cloudhsm_offline.emulator.retention import DEFAULT_PURGE_INTERVAL, Cluster, RetentionSweep, build_cluster
from cloudhsm_offline.emulator.seed import SETTINGS, Seed

RESERVED_TAG_PREFIX = "aws:"
"""AWS reserves tag keys starting with aws: (AWS General Reference, "Tagging AWS resources")."""
RESTORING_STATES = (BackupState.PENDING_DELETION, BackupState.CREATE_IN_PROGRESS)


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


@dataclass(eq=False)
class EmulatedAccount:
    """An account's settings and its backups and clusters: its own region's ``store``, plus ``add_region``'s.

    What seeds and tests add, inspect and reset; every region's store reads the settings from here.
    """

    clock: Clock = field(default_factory=SimClock)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    restore_seconds: float = 0.0
    """Default modelled duration of a restore for backups without their own."""
    restore_in_progress_state: str = BackupState.PENDING_DELETION
    """What a backup reports while its restore runs: PENDING_DELETION or CREATE_IN_PROGRESS."""
    delete_timestamp_is_expiry: bool = True
    """DeleteTimestamp is "the date and time when the backup will be permanently deleted" (API reference,
    Backup: https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_Backup.html): the deletion plus the
    7-day window. False reports the moment of deletion instead (the handler must work under either)."""
    purge_interval: float = DEFAULT_PURGE_INTERVAL
    store: BackupStore = field(init=False)
    others: dict[str, BackupStore] = field(init=False, default_factory=dict)
    """Further regions of the same account (add_region): requests signed for one are served from its store."""
    _definitions: list[dict[str, Any]] = field(init=False, default_factory=list)
    _cluster_definitions: list[dict[str, Any]] = field(init=False, default_factory=list)
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.store = BackupStore(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "restore_in_progress_state" and value not in RESTORING_STATES:
            raise ValueError("restore_in_progress_state must be PENDING_DELETION or CREATE_IN_PROGRESS")
        if name in ("restore_seconds", "purge_interval"):
            value = float(value)
            if value < 0 or (value == 0 and name == "purge_interval"):
                raise ValueError(f"{name} must be a number of seconds {'>' if name == 'purge_interval' else '>='} 0")
        super().__setattr__(name, value)

    def seed(self, seed: Seed) -> None:
        """Apply a parsed seed's settings, clusters and backups (its faults are the emulator's)."""
        for key in SETTINGS:
            if key in seed.settings:
                setattr(self, "account_id" if key == "account" else key, seed.settings[key])
        for kwargs in seed.clusters:
            self.add_cluster(**kwargs)
        for kwargs in seed.backups:
            if kwargs.get("region"):
                self.add_region(str(kwargs["region"]))
            self.add_backup(**kwargs)

    def add_backup(
        self,
        backup_id: str,
        state: str = "PENDING_DELETION",
        *,
        cluster_id: str | None = None,
        tags: Mapping[str, str] | Iterable[Mapping[str, str]] | None = None,
        restore_seconds: float | None = None,
        never_expires: bool = False,
        create_timestamp: Timestamp | None = None,
        hsm_type: str | None = "hsm2m.medium",
        mode: str | None = "FIPS",
        delete_timestamp: Timestamp | None = None,
        deleted_seconds_ago: float | None = None,
        copy_timestamp: Timestamp | None = None,
        source_region: str | None = None,
        source_backup: str | None = None,
        source_cluster: str | None = None,
        refuse_restore: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a backup and return its API view; ``reset()`` re-creates it as given here.

        ``delete_timestamp`` (or ``deleted_seconds_ago``) is when DeleteBackup was called; it defaults to
        now for PENDING_DELETION and to just past the 7-day window for DELETED. ``restore_seconds`` > 0 makes
        its RestoreBackup asynchronous; ``refuse_restore`` makes RestoreBackup refuse it with that message.
        ``region`` puts it in another region added with ``add_region`` (default: the account's own).
        """
        definition = {k: v for k, v in locals().items() if k != "self"}
        store = self.store_of(region)
        backup = build_backup(definition, self.clock.now())
        with self._lock:
            store.add(backup)
            self._definitions = [
                d for d in self._definitions if (d["backup_id"], d.get("region")) != (backup_id, region)
            ]
            self._definitions.append(definition)
        return store.view(backup_id)

    def add_region(self, region: str) -> None:
        """Serve another region of the same account (a backup's Region property, a Region replacement)."""
        with self._lock:
            if region != self.region and region not in self.others:
                self.others[region] = BackupStore(self, region)

    @property
    def regions(self) -> list[str]:
        """Every emulated region: the account's own first, then those added with ``add_region``."""
        return [self.region, *self.others]

    def store_of(self, region: str | None) -> BackupStore:
        """The store of ``region`` (None: the account's own); ValueError for a region never added."""
        if region is None or region == self.region:
            return self.store
        if region not in self.others:
            raise ValueError(f"region {region} is not emulated; call add_region first")
        return self.others[region]

    def add_cluster(
        self,
        cluster_id: str,
        *,
        retention_days: int | None = 90,
        create_timestamp: Timestamp | None = None,
        tags: Mapping[str, str] | Iterable[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a cluster with a backup retention policy (days, None for none); its Cluster view."""
        definition = {k: v for k, v in locals().items() if k != "self"}
        cluster = build_cluster(definition, self.clock.now())
        with self._lock:
            self.store.clusters[cluster_id] = cluster
            self._cluster_definitions = [d for d in self._cluster_definitions if d["cluster_id"] != cluster_id]
            self._cluster_definitions.append(definition)
        return cluster.view()

    def backup(self, backup_id: str, region: str | None = None) -> dict[str, Any]:
        """The backup's API view right now (timestamps as datetimes); KeyError if unknown."""
        try:
            return self.store_of(region).view(backup_id)
        except ResourceNotFoundError as exc:
            raise KeyError(backup_id) from exc

    def backups(self) -> list[dict[str, Any]]:
        """Every backup's API view right now (the account's own region)."""
        return self.store.views()

    def reset(self) -> None:
        """Re-create every added backup and cluster as it was added."""
        with self._lock:
            for store in [self.store, *self.others.values()]:
                store.clear()
            for definition in self._definitions:
                self.store_of(definition.get("region")).add(build_backup(definition, self.clock.now()))
            for definition in self._cluster_definitions:
                cluster = build_cluster(definition, self.clock.now())
                self.store.clusters[cluster.cluster_id] = cluster


class BackupStore:
    """The backups (and clusters) of one region of an ``EmulatedAccount``; thread-safe, driven by its clock."""

    def __init__(self, account: EmulatedAccount, region: str | None = None) -> None:
        self.account = account
        self._region = region
        """None: the account's own region (which a seed may set after the store exists)."""
        self.sweep = RetentionSweep(account.clock.now())
        self.clusters: dict[str, Cluster] = {}
        self._backups: dict[str, Backup] = {}
        self._lock = threading.RLock()

    @property
    def region(self) -> str:
        """The region this store serves."""
        return self._region or self.account.region

    def arn(self, backup_id: str) -> str:
        """The backup's ARN in this account, region and the region's partition."""
        return f"arn:{partition_of(self.region)}:cloudhsm:{self.region}:{self.account.account_id}:backup/{backup_id}"

    def arn_of(self, params: Mapping[str, Any]) -> str:
        """The backup ARN a request acts on (BackupId or a backup ResourceId), '*' for none."""
        backup_id = params.get("BackupId", params.get("ResourceId"))
        return self.arn(backup_id) if isinstance(backup_id, str) and backup_id.startswith("backup-") else "*"

    def add(self, backup: Backup) -> None:
        """Add or replace a backup."""
        with self._lock:
            self._backups[backup.backup_id] = backup

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
            seconds = self.account.restore_seconds if backup.restore_seconds is None else backup.restore_seconds
            now = self.account.clock.now()
            backup.restore_ready_at = now + seconds
            backup.restoring_as = BackupState(self.account.restore_in_progress_state)
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
            backup.deleted_at = self.account.clock.now()
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
        now = self.account.clock.now()
        for backup in self._backups.values():
            backup.settle(now)
        at = self.sweep.due(now, self.account.purge_interval)
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
        if delete_ts is not None and self.account.delete_timestamp_is_expiry:
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
