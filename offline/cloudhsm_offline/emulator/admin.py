"""The admin surface under /_emulator: inspect backups and calls, arm faults, reset, move the clock."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cloudhsm_offline.emulator.seed import parse_seed

if TYPE_CHECKING:
    from cloudhsm_offline.emulator.emulator import CloudHsmEmulator

PREFIX = "/_emulator"
ROUTES = {
    ("GET", ""): "summary",
    ("GET", "/backups"): "list backups",
    ("POST", "/backups"): "add a backup (a seed entry)",
    ("GET", "/clusters"): "list clusters (retention policies)",
    ("GET", "/calls"): "list calls (?operation=&outcome=)",
    ("GET", "/faults"): "armed faults",
    ("POST", "/faults"): "arm faults (FaultPlan.apply)",
    ("POST", "/reset"): "reset backups, calls, faults",
    ("GET", "/clock"): "modelled now",
    ("POST", "/clock"): "advance the clock ({advance: seconds})",
}


def handle(emulator: CloudHsmEmulator, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Route one admin request; returns an HTTP status and a JSON-ready payload."""
    parts = urlsplit(path)
    route = parts.path.removeprefix(PREFIX).rstrip("/")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        return 400, {"error": f"body is not JSON: {exc}"}
    if not isinstance(data, dict):
        return 400, {"error": "body must be a JSON object"}
    try:
        return _dispatch(emulator, method, route, query, data)
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": f"{type(exc).__name__}: {exc}"}


def _dispatch(
    emulator: CloudHsmEmulator, method: str, route: str, query: dict[str, str], data: dict[str, Any]
) -> tuple[int, Any]:
    if method == "GET" and route == "":
        return 200, {
            "url": emulator.url,
            "region": emulator.region,
            "account": emulator.account,
            "now": emulator.clock.now(),
            "operations": list(emulator.api.operations),
            "routes": [f"{m} {PREFIX}{r}: {what}" for (m, r), what in ROUTES.items()],
        }
    if method == "GET" and route == "/backups":
        return 200, {"now": emulator.clock.now(), "backups": emulator.backups()}
    if method == "GET" and route.startswith("/backups/"):
        backup_id = route.removeprefix("/backups/")
        try:
            return 200, emulator.backup(backup_id)
        except KeyError:
            return 404, {"error": f"no backup {backup_id}"}
    if method == "POST" and route == "/backups":
        seed = parse_seed([data])
        return 201, emulator.add_backup(**seed.backups[0])
    if method == "GET" and route == "/clusters":
        return 200, {"clusters": emulator.store.cluster_views()}
    if method == "GET" and route == "/calls":
        calls = emulator.call_log.all(query.get("operation"), query.get("outcome"))
        return 200, {"count": len(calls), "calls": [c.to_dict() for c in calls]}
    if method == "GET" and route == "/faults":
        return 200, emulator.faults.describe()
    if method == "POST" and route == "/faults":
        return 200, emulator.faults.apply(data).describe()
    if method == "POST" and route == "/reset":
        emulator.reset(
            backups=bool(data.get("backups", True)),
            calls=bool(data.get("calls", True)),
            faults=bool(data.get("faults", True)),
        )
        return 200, {"reset": True, "backups": len(emulator.backups())}
    if method == "GET" and route == "/clock":
        return 200, {"now": emulator.clock.now()}
    if method == "POST" and route == "/clock":
        advance = getattr(emulator.clock, "advance", None)
        if advance is None:
            return 409, {"error": "this emulator's clock cannot be advanced"}
        advance(float(data["advance"]))
        return 200, {"now": emulator.clock.now()}
    return 404, {"error": f"no admin route {method} {PREFIX}{route}", "routes": list(ROUTES.values())}
