"""Clusters and their backup retention policy: the service's periodic purge of old backups.

Sources (AWS CloudHSM User Guide, "Managing backup retention",
https://docs.aws.amazon.com/cloudhsm/latest/userguide/manage-backup-retention.html; API reference,
BackupRetentionPolicy https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_BackupRetentionPolicy.html):
- a cluster's ``BackupRetentionPolicy`` is ``{"Type": "DAYS", "Value": "7".."379"}``; the service deletes
  the cluster's backups older than that, except the cluster's most recent backup and backups with
  ``NeverExpires`` true; a purged backup goes to PENDING_DELETION and is restorable like a deleted one;
- restoring a purged backup brings back a backup still past the policy: the service can purge it again
  (the guide's race warning), which the sweep models by purging it at the next sweep;
- a backup copied to another region belongs to no cluster there, so no policy applies to it.
How often the service sweeps is not documented: the emulator sweeps every ``purge_interval`` modelled
seconds (default one hour), at boundaries counted from the emulator's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudhsm_offline.emulator.model import CLUSTER_ID_PATTERN, Backup, BackupState, normalize_tags, to_epoch

DAY = 86400.0
MIN_RETENTION_DAYS = 7
MAX_RETENTION_DAYS = 379
DEFAULT_PURGE_INTERVAL = 3600.0


@dataclass
class Cluster:
    """A cluster as far as backups care: its id, retention policy (days, None = none) and tags."""

    cluster_id: str
    retention_days: int | None = 90
    create_timestamp: float = 0.0
    tags: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not CLUSTER_ID_PATTERN.fullmatch(self.cluster_id):
            raise ValueError(f"cluster id {self.cluster_id!r} does not match {CLUSTER_ID_PATTERN.pattern}")
        if self.retention_days is not None and not MIN_RETENTION_DAYS <= self.retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}")

    def view(self) -> dict[str, Any]:
        """The Cluster shape DescribeClusters reports (the backup-related part)."""
        shape: dict[str, Any] = {
            "ClusterId": self.cluster_id,
            "BackupPolicy": "DEFAULT",
            "CreateTimestamp": datetime.fromtimestamp(self.create_timestamp, tz=UTC),
            "HsmType": "hsm2m.medium",
            "Mode": "FIPS",
            "State": "ACTIVE",
            "Hsms": [],
        }
        if self.retention_days is not None:
            shape["BackupRetentionPolicy"] = {"Type": "DAYS", "Value": str(self.retention_days)}
        if self.tags:
            shape["TagList"] = [dict(t) for t in self.tags]
        return shape


def build_cluster(d: Mapping[str, Any], now: float) -> Cluster:
    """A Cluster from ``add_cluster`` keywords (``retention_days`` None for no policy)."""
    create = d.get("create_timestamp")
    days = d.get("retention_days", 90)
    return Cluster(
        cluster_id=str(d["cluster_id"]),
        retention_days=None if days is None else int(days),
        create_timestamp=now if create is None else to_epoch(create),
        tags=normalize_tags(d.get("tags")),
    )


class RetentionSweep:
    """Runs the purge at every ``interval`` boundary the clock has passed since the last one."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.last = start

    def due(self, now: float, interval: float) -> float | None:
        """The latest sweep boundary not yet swept, if the clock has passed one."""
        boundary = self.start + ((now - self.start) // interval) * interval
        if boundary <= self.last:
            return None
        self.last = boundary
        return boundary

    @staticmethod
    def purge(backups: Iterable[Backup], clusters: Mapping[str, Cluster], at: float) -> None:
        """Purge, as of ``at``, every READY backup past its cluster's policy."""
        by_cluster: dict[str, list[Backup]] = {}
        for backup in backups:
            if backup.source_region is None and backup.cluster_id in clusters:  # copies belong to no cluster
                by_cluster.setdefault(backup.cluster_id, []).append(backup)
        for cluster_id, members in by_cluster.items():
            days = clusters[cluster_id].retention_days
            if days is None:
                continue
            ready = [b for b in members if b.state is BackupState.READY and not b.restoring]
            latest = max(ready, key=lambda b: b.create_timestamp, default=None)
            for backup in ready:
                if (
                    backup is latest
                    or backup.never_expires
                    or backup.create_timestamp > at - days * DAY
                    or (backup.ready_since or 0.0) > at
                ):
                    continue
                backup.state = BackupState.PENDING_DELETION
                backup.deleted_at = at
