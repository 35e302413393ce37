"""The offline world per variant: our handler or a baseline, run by the same CloudFormation simulator."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cloudhsm_offline.cfn.world import OfflineWorld

from bench import REPO_ROOT
from bench.rows import CRHELPER_DOCUMENTED, OURS

BENCH_ACCOUNT = "210987654321"
"""moto keeps EventBridge state per process and account: the benchmark keeps to its own account."""
BACKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
WORKAROUNDS: set[str] = set()
"""Environment settings the bench had to add to the offline world (reported in the notes)."""
LAMBDA_TIMEOUT_S = 300.0
"""The provider function's Timeout (cfn-templates: 300 s), for both handlers."""


@dataclass(frozen=True)
class Variant:
    """A handler run under the simulator: its code directory, handler string and resource properties."""

    key: str
    code_dir: Path
    handler: str
    properties: Callable[[str], dict[str, str]]
    trust_offline_ca_via_env: bool = False
    """Baselines with crhelper's ``ssl_verify=None`` trust the ResponseURL's CA through SSL_CERT_FILE."""


def _ours_properties(backup_id: str) -> dict[str, str]:
    # OnDelete=Delete so both handlers call DeleteBackup on Delete (ours defaults to Retain).
    return {"BackupId": backup_id, "OnDelete": "Delete"}


def _baseline_properties(backup_id: str) -> dict[str, str]:
    return {"BackupId": backup_id}


VARIANTS: dict[str, Variant] = {
    OURS: Variant(OURS, REPO_ROOT / "handler", "cloudhsm_backup_restore.app.handler", _ours_properties),
    CRHELPER_DOCUMENTED: Variant(
        CRHELPER_DOCUMENTED,
        Path(__file__).resolve().parent / "baselines" / "crhelper_documented",
        "index.handler",
        _baseline_properties,
        trust_offline_ca_via_env=True,
    ),
}


def new_backup_id() -> str:
    """A fresh id matching ``backup-[2-7a-zA-Z]{11,16}``."""
    return "backup-" + "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(12))


def _route_endpoints(world: OfflineWorld) -> None:
    """Point EventBridge and CloudWatch Logs clients at the offline gateway.

    botocore derives these variables from the service *id* ("EventBridge", "CloudWatch Logs"), so it
    reads ``AWS_ENDPOINT_URL_EVENTBRIDGE`` and ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``, not ``..._EVENTS`` or
    ``..._LOGS``. An early OfflineWorld set only the latter, and crhelper's polling set-up then tried the
    real AWS endpoint. Kept as a guard: adds only what the world left out, and the report says so.
    """
    if world.eventbridge is None:
        return
    url = world.eventbridge.url
    for name in ("AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"):
        if name not in world.function.env:
            world.function.env[name] = url
            WORKAROUNDS.add(f"set {name} (the offline world did not)")


@contextmanager
def open_world(
    variant: Variant,
    speed: float,
    *,
    max_concurrency: int = 10,
    init_timeout_real: float | None = None,
) -> Iterator[OfflineWorld]:
    """A started world running ``variant`` at ``speed`` (modelled seconds per real second)."""
    world = OfflineWorld(
        speed=speed,
        code_dir=variant.code_dir,
        handler=variant.handler,
        layer_packages=("crhelper",),
        lambda_timeout=LAMBDA_TIMEOUT_S,
        account=BENCH_ACCOUNT,
        stack_name="bench",
        max_concurrency=max_concurrency,
    )
    if init_timeout_real is not None:
        world.function.init_timeout_real = init_timeout_real
    world.start()
    try:
        _route_endpoints(world)
        if variant.trust_offline_ca_via_env:
            world.function.env["SSL_CERT_FILE"] = world.responses.ca_bundle
        yield world
    finally:
        world.stop()


def warm_up(world: OfflineWorld, variant: Variant, environments: int = 1) -> None:
    """Start ``environments`` execution environments and run one harmless Update in each.

    Under a compressed clock every real second of compute shows as ``speed`` modelled seconds, so the
    measured lifecycles run on warm environments (cold start is measured on its own, in real time).
    The Update names a READY backup: ours re-checks it (one DescribeBackups), the baseline's update
    does nothing; both import everything, create their clients and PUT one response.
    """
    backup_id = new_backup_id()
    assert world.emulator is not None
    world.emulator.account.add_backup(backup_id, state="READY")
    props = variant.properties(backup_id)
    errors: list[str] = []

    def one(number: int) -> None:
        event = world.simulator.build_event(
            "Update", f"WarmUp{number}", props, physical_id=backup_id, old_properties=props
        )
        record = world.function.invoke(event, source="bench:warm-up")
        if record.error is not None:
            errors.append(f"{record.error.get('errorType')}: {record.error.get('errorMessage')}")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(environments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"warm-up of {variant.key} failed: {errors[0]}")
