"""Seed files: a small JSON or YAML description of the backups (and settings) an emulator starts with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    return Seed(
        settings=settings,
        backups=[_backup_entry(i, entry) for i, entry in enumerate(entries)],
        clusters=[_cluster_entry(i, entry) for i, entry in enumerate(clusters)],
        faults=None if faults is None else dict(faults),
    )


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


def load_seed(source: str | Path | Mapping[str, Any] | list[Any]) -> Seed:
    """Read a seed from a .json/.yaml/.yml file (or take already-loaded data) and validate it."""
    if isinstance(source, Mapping | list):
        return parse_seed(source)
    path = Path(source)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    try:
        return parse_seed(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
