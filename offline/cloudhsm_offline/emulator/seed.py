"""Seed files: a small JSON or YAML description of the backups (and settings) an emulator starts with."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cloudhsm_offline.emulator.model import (
    ACCOUNT_PATTERN,
    REGION_PATTERN,
    RESTORE_WINDOW_SECONDS,
    BackupState,
    build_backup,
    normalize_tags,
    to_epoch,
)
from cloudhsm_offline.emulator.retention import build_cluster
from cloudhsm_offline.faults import CLOUDHSM_KINDS, FaultPlan

SETTINGS = ("region", "account", "restore_seconds", "restore_in_progress_state", "purge_interval")
BACKUP_KEYS = {
    "backup_id",
    "state",
    "cluster_id",
    "tags",
    "restore_seconds",
    "never_expires",
    "create_timestamp",
    "delete_timestamp",
    "deleted_seconds_ago",
    "hsm_type",
    "mode",
    "copy_timestamp",
    "source_region",
    "source_backup",
    "source_cluster",
    "refuse_restore",
    "region",
}
CLUSTER_KEYS = {"cluster_id", "retention_days", "create_timestamp", "tags"}
ALIASES = {"id": "backup_id", "cluster": "cluster_id"}
DEMO_SEED = Path(__file__).with_name("demo_seed.yaml")


@dataclass(frozen=True)
class Seed:
    """A parsed seed: optional emulator settings, backups as ``add_backup`` keyword sets, optional faults."""

    settings: dict[str, Any] = field(default_factory=dict)
    backups: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, Any] | None = None


def parse_seed(data: object) -> Seed:
    """Validate seed data (a list of backups, or a mapping with ``backups`` and optional settings)."""
    if isinstance(data, list):
        data = {"backups": data}
    if not isinstance(data, Mapping):
        raise TypeError("a seed is a list of backups or a mapping with a 'backups' list")
    unknown = set(data) - {*SETTINGS, "backups", "clusters", "faults"}
    if unknown:
        raise ValueError(f"unknown seed keys: {sorted(unknown)}")
    settings = {key: data[key] for key in SETTINGS if data.get(key) is not None}
    entries = data.get("backups") or []
    if not isinstance(entries, list):
        raise TypeError("'backups' must be a list")
    clusters = data.get("clusters") or []
    if not isinstance(clusters, list):
        raise TypeError("'clusters' must be a list")
    faults = data.get("faults")
    if faults is not None and not isinstance(faults, Mapping):
        raise ValueError("'faults' must be a mapping")
    seed = Seed(
        settings=settings,
        backups=[_backup_entry(i, entry) for i, entry in enumerate(entries)],
        clusters=[_cluster_entry(i, entry) for i, entry in enumerate(clusters)],
        faults=None if faults is None else dict(faults),
    )
    _check(seed, time.time())
    return seed


def _check(seed: Seed, now: float) -> None:
    """Refuse a seed that cannot be true, naming the field: ids twice, undeclared clusters, values that do
    not parse, a PENDING_DELETION backup deleted outside the 7-day window (CloudHSM User Guide, "Deleting
    and restoring AWS CloudHSM backups": a deleted backup can be restored for 7 days)."""
    settings = seed.settings
    if "region" in settings and not REGION_PATTERN.fullmatch(str(settings["region"])):
        raise ValueError(f"region must be a region name like eu-west-1, got {settings['region']!r}")
    if "account" in settings and not ACCOUNT_PATTERN.fullmatch(str(settings["account"])):
        raise ValueError(f"account must be a 12-digit account id (quote it in YAML), got {settings['account']!r}")
    _seconds(settings, "restore_seconds")
    state = seed.settings.get("restore_in_progress_state")
    if state is not None and state not in (BackupState.PENDING_DELETION, BackupState.CREATE_IN_PROGRESS):
        raise ValueError(f"restore_in_progress_state must be PENDING_DELETION or CREATE_IN_PROGRESS, got {state!r}")
    interval = seed.settings.get("purge_interval")
    if interval is not None and not _is_number(interval, positive=True):
        raise ValueError(f"purge_interval must be a number of seconds > 0, got {interval!r}")
    declared: dict[str, int] = {}
    for index, cluster in enumerate(seed.clusters):
        where = f"clusters[{index}]"
        cluster_id = str(cluster["cluster_id"])
        if cluster_id in declared:
            raise ValueError(f"{where}.id: {cluster_id} is declared twice (clusters[{declared[cluster_id]}])")
        declared[cluster_id] = index
        days = cluster.get("retention_days", 90)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 7 <= days <= 379):
            # CloudHSM API Reference, BackupRetentionPolicy: Value is a number of days from 7 to 379.
            raise ValueError(f"{where}.retention_days must be a whole number of days from 7 to 379, got {days!r}")
        _timestamp(cluster, "create_timestamp", where)
    seen: dict[tuple[str, Any], int] = {}
    for index, backup in enumerate(seed.backups):
        where = f"backups[{index}]"
        key = (str(backup["backup_id"]), backup.get("region"))
        if key in seen:
            raise ValueError(f"{where}.id: {key[0]} is declared twice (backups[{seen[key]}])")
        seen[key] = index
        _check_backup(backup, where, declared, now)
    for index, cluster in enumerate(seed.clusters):
        _builds(build_cluster, cluster, f"clusters[{index}]", now)
    for index, backup in enumerate(seed.backups):
        _builds(build_backup, {"state": BackupState.PENDING_DELETION, **backup}, f"backups[{index}]", now)
    try:
        FaultPlan(CLOUDHSM_KINDS).apply(seed.faults or {})
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"faults: {exc}") from None


def _builds(
    build: Callable[[Mapping[str, Any], float], object], entry: Mapping[str, Any], where: str, now: float
) -> None:
    """What the emulator will build from this entry builds: any other refusal is named by its place."""
    try:
        build(entry, now)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _seconds(holder: Mapping[str, Any], where: str) -> None:
    value = holder.get("restore_seconds")
    if value is not None and not (_is_number(value) and value >= 0):
        raise ValueError(f"{where} must be a number of seconds >= 0, got {value!r}")


def _check_backup(backup: Mapping[str, Any], where: str, clusters: Mapping[str, int], now: float) -> None:
    if not isinstance(backup.get("backup_id"), str):
        raise TypeError(f"{where}.id must be a string, got {backup.get('backup_id')!r}")
    _seconds(backup, f"{where}.restore_seconds")
    try:
        state = BackupState(backup.get("state", "PENDING_DELETION"))
    except ValueError:
        raise ValueError(
            f"{where}.state must be one of {', '.join(s.value for s in BackupState)}, got {backup.get('state')!r}"
        ) from None
    cluster = backup.get("cluster_id")
    if clusters and cluster is not None and str(cluster) not in clusters:
        # With clusters declared they are the account's: a name outside them is a typo. (A backup can
        # outlive its cluster: seed it without clusters, or without cluster, for a derived id.)
        raise ValueError(f"{where}.cluster: {cluster} is not declared under clusters")
    created = _timestamp(backup, "create_timestamp", where)
    _timestamp(backup, "copy_timestamp", where)
    try:
        normalize_tags(backup.get("tags"))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{where}.tags: a mapping or a list of Key/Value pairs within the limits ({exc})") from None
    deleted = _timestamp(backup, "delete_timestamp", where)
    ago = backup.get("deleted_seconds_ago")
    if ago is not None:
        if not _is_number(ago) or ago < 0:
            raise ValueError(f"{where}.deleted_seconds_ago must be a number of seconds >= 0, got {ago!r}")
        deleted = now - float(ago)
    if created is not None and deleted is not None and created > deleted + 1:
        given = backup["create_timestamp"]
        raise ValueError(f"{where}.create_timestamp: {given!r} is after its deletion: a backup is created first")
    if deleted is None:
        return
    if state not in (BackupState.PENDING_DELETION, BackupState.DELETED):
        raise ValueError(f"{where}: a delete timestamp only applies to PENDING_DELETION or DELETED, not {state.value}")
    if state is BackupState.PENDING_DELETION and not now - RESTORE_WINDOW_SECONDS < deleted <= now + 1:
        field_name = "deleted_seconds_ago" if ago is not None else "delete_timestamp"
        days = (now - deleted) / 86400
        when = f"{days:.1f} days ago" if days > 0 else f"{-days:.1f} days in the future"
        raise ValueError(
            f"{where}.{field_name}: {backup[field_name]!r} is {when}; a PENDING_DELETION backup was deleted within the "
            "last 7 days (the restore window; after it the backup is DELETED)"
        )


def _timestamp(holder: Mapping[str, Any], name: str, where: str) -> float | None:
    value = holder.get(name)
    if value is None:
        return None
    try:
        return to_epoch(value)
    except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f"{where}.{name}: cannot parse {value!r} (an ISO 8601 time like 2025-01-15T09:30:00Z, or epoch seconds)"
        ) from None


def _is_number(value: Any, positive: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value > 0 if positive else True


def _backup_entry(index: int, entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise TypeError(f"backups[{index}] must be a mapping")
    kwargs = {ALIASES.get(str(key), str(key)): value for key, value in entry.items()}
    unknown = set(kwargs) - BACKUP_KEYS
    if unknown:
        raise ValueError(f"backups[{index}] has unknown keys: {sorted(unknown)}")
    if "backup_id" not in kwargs:
        raise ValueError(f"backups[{index}] needs an 'id'")
    return kwargs


def _cluster_entry(index: int, entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise TypeError(f"clusters[{index}] must be a mapping")
    kwargs = {("cluster_id" if key == "id" else str(key)): value for key, value in entry.items()}
    unknown = set(kwargs) - CLUSTER_KEYS
    if unknown:
        raise ValueError(f"clusters[{index}] has unknown keys: {sorted(unknown)}")
    if "cluster_id" not in kwargs:
        raise ValueError(f"clusters[{index}] needs an 'id'")
    return kwargs


def load_seed(source: str | Path | Mapping[str, Any] | list[Any] | Seed) -> Seed:
    """Read a seed from a .json/.yaml/.yml file (or take already-loaded data) and validate it; a Seed is one."""
    if isinstance(source, Seed):
        return source
    if isinstance(source, Mapping | list):
        return parse_seed(source)
    path = Path(source)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    try:
        return parse_seed(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
