"""The offline world per variant: our handler or a baseline, run by the same CloudFormation simulator."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.world import OfflineWorld

from bench import REPO_ROOT
from bench.rows import CRHELPER_DOCUMENTED, OURS

BENCH_ACCOUNT = "210987654321"
"""moto keeps EventBridge state per process and account: the benchmark keeps to its own account."""
BACKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
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


@contextmanager
def open_world(
    variant: Variant,
    *,
    max_concurrency: int = 10,
    init_timeout_real: float | None = None,
) -> Iterator[OfflineWorld]:
    """A started world running ``variant`` on its virtual clock.

    No warm-up: a cold start (process start, imports) is real compute, which takes no modelled time, so
    the modelled figures are the same on a cold and on a warm execution environment. The cold start's
    real cost is measured on its own (bench/coldstart.py).
    """
    world = OfflineWorld(
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
        if variant.trust_offline_ca_via_env:
            world.function.env["SSL_CERT_FILE"] = world.responses.ca_bundle
        yield world
    finally:
        world.stop()


def at_once(world: OfflineWorld, operations: Sequence[Callable[[], Outcome]]) -> list[Outcome]:
    """Run every operation (a stack operation each) from its own thread, all sent at the same modelled instant.

    Modelled time moves once every actor waits. Threads started one after another could let it move
    between two sends (the first request's function asleep in a backoff while the next thread is not yet
    running). So each thread takes its clock token first, and this one keeps its own until all of them
    hold theirs.
    """
    clock = world.clock
    everyone = threading.Barrier(len(operations) + 1)

    def run(operation: Callable[[], Outcome]) -> Outcome:
        with clock.driving():
            everyone.wait()
            return operation()

    with ThreadPoolExecutor(max_workers=max(1, len(operations))) as pool:
        clock.hold()
        try:
            futures = [pool.submit(run, operation) for operation in operations]
            everyone.wait()
        finally:
            clock.release()
        return [future.result() for future in futures]
