"""One emulated account's backups and clusters, per region: what seeds and tests add, inspect and reset."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from cloudhsm_offline.emulator.errors import ResourceNotFoundError
from cloudhsm_offline.emulator.model import Clock, Timestamp, build_backup
from cloudhsm_offline.emulator.operations import BackupApi
from cloudhsm_offline.emulator.retention import DEFAULT_PURGE_INTERVAL, build_cluster
from cloudhsm_offline.emulator.store import BackupStore


class EmulatedAccount:
    """The stores of one account: its own region's, plus any added with ``add_region``."""

    def __init__(
        self,
        clock: Clock,
        region: str = "us-east-1",
        account: str = "123456789012",
        restore_seconds: float = 0.0,
        restore_in_progress_state: str = "PENDING_DELETION",
        *,
        delete_timestamp_is_expiry: bool = True,
        default_page_size: int = 50,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
    ) -> None:
        self.clock: Clock = clock
        self.store = BackupStore(
            self.clock,
            region=region,
            account=account,
            restore_seconds=restore_seconds,
            restore_in_progress_state=restore_in_progress_state,
            delete_timestamp_is_expiry=delete_timestamp_is_expiry,
            purge_interval=purge_interval,
        )
        self.api = BackupApi(self.store, default_page_size=default_page_size)
        self._regions: dict[str, BackupApi] = {}
        """Further regions of the same account (add_region): requests signed for one are served from its store."""
        self._definitions: list[dict[str, Any]] = []
        self._cluster_definitions: list[dict[str, Any]] = []
        self._lock = threading.RLock()

    # -- settings ------------------------------------------------------------------------------

    @property
    def region(self) -> str:
        """The emulated region (ARNs, SigV4 scope check)."""
        return self.store.region

    @region.setter
    def region(self, value: str) -> None:
        self.store.region = value

    @property
    def account(self) -> str:
        """The emulated account id (ARNs)."""
        return self.store.account

    @account.setter
    def account(self, value: str) -> None:
        self.store.account = value

    @property
    def restore_seconds(self) -> float:
        """Default modelled duration of a restore for backups without their own."""
        return self.store.restore_seconds

    @restore_seconds.setter
    def restore_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("restore_seconds must not be negative")
        self.store.restore_seconds = float(value)

    @property
    def restore_in_progress_state(self) -> str:
        """The state a backup reports while its restore runs."""
        return self.store.restore_in_progress_state.value

    @restore_in_progress_state.setter
    def restore_in_progress_state(self, value: str) -> None:
        self.store.restore_in_progress_state = value

    # -- backups -------------------------------------------------------------------------------

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
        ``region`` puts it in another region added with ``add_region`` (default: the emulator's own).
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

    def add_region(self, region: str) -> BackupStore:
        """Serve another region of the same account (a backup's Region property, a Region replacement)."""
        with self._lock:
            if region != self.region and region not in self._regions:
                store = BackupStore(
                    self.clock,
                    region=region,
                    account=self.account,
                    restore_seconds=self.store.restore_seconds,
                    restore_in_progress_state=self.store.restore_in_progress_state.value,
                    delete_timestamp_is_expiry=self.store.delete_timestamp_is_expiry,
                    purge_interval=self.store.sweep.interval,
                )
                self._regions[region] = BackupApi(store, default_page_size=self.api.default_page_size)
            return self.store_of(region)

    @property
    def regions(self) -> list[str]:
        """Every emulated region: the emulator's own first, then those added with ``add_region``."""
        return [self.region, *self._regions]

    def store_of(self, region: str | None) -> BackupStore:
        """The store of ``region`` (None: the emulator's own); ValueError for a region never added."""
        if region is None or region == self.region:
            return self.store
        if region not in self._regions:
            raise ValueError(f"region {region} is not emulated; call add_region first")
        return self._regions[region].store

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
            self.store.add_cluster(cluster)
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
        """Every backup's API view right now."""
        return self.store.views()

    def reset_backups(self) -> None:
        """Re-create every added backup and cluster as it was added."""
        with self._lock:
            self.store.clear()
            for api in self._regions.values():
                api.store.clear()
            for definition in self._definitions:
                self.store_of(definition.get("region")).add(build_backup(definition, self.clock.now()))
            for definition in self._cluster_definitions:
                self.store.add_cluster(build_cluster(definition, self.clock.now()))
