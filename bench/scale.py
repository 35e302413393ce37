"""Scale: one stack with many restored backups created (then deleted) concurrently against an emulator
that throttles above a fixed request rate per modelled second.

CloudFormation sends every Create at once; the simulated Lambda runs at most ``concurrency`` execution
environments (the other events queue, as with reserved concurrency): 100 worker processes importing
boto3 at once would exhaust this 2-core machine's memory and CPU without changing a modelled figure.
Latencies are modelled seconds, but not deterministic: botocore's retry backoff after a
ThrottlingException draws a random jitter, so which calls collide (and how many are throttled) varies
from run to run. The phase's real duration is reported apart.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.world import OfflineWorld

from bench.lifecycle import THROTTLED
from bench.rows import OURS
from bench.world import VARIANTS, at_once, new_backup_id, open_world


@dataclass
class Phase:
    """Create or Delete of every resource: successes, modelled latencies, calls, and the real time it took."""

    name: str
    resources: int
    succeeded: int
    real_s: float
    """Real seconds the phase took on this machine."""
    median_s: float
    """Modelled seconds from the events (all sent at the same instant) to an answer: the median."""
    max_s: float
    """The same, to the last answer."""
    api_calls: int
    throttled: int
    invocations: int
    rules: int
    calls_by_operation: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class Scale:
    """The scale run's settings and its two phases."""

    backups: int
    rps: float
    concurrency: int
    t_ready: float
    phases: list[Phase]


def _phase(name: str, world: OfflineWorld, run: Callable[[int], Outcome], numbers: list[int]) -> Phase:
    assert world.emulator is not None
    calls_before = list(world.emulator.calls)
    rules_before = world.eventbridge.count("PutRule") if world.eventbridge is not None else 0
    started = time.monotonic()
    outcomes = at_once(world, [functools.partial(run, number) for number in numbers])
    real = time.monotonic() - started
    calls = list(world.emulator.calls)[len(calls_before) :]
    by_operation: dict[str, int] = {}
    for call in calls:
        by_operation[call.operation] = by_operation.get(call.operation, 0) + 1
    latencies = [o.elapsed_modelled for o in outcomes]
    return Phase(
        name=name,
        resources=len(numbers),
        succeeded=sum(1 for o in outcomes if o.ok),
        real_s=real,
        median_s=statistics.median(latencies),
        max_s=max(latencies),
        api_calls=len(calls),
        throttled=sum(1 for c in calls if c.outcome == THROTTLED),
        invocations=sum(o.invocations for o in outcomes),
        rules=(world.eventbridge.count("PutRule") if world.eventbridge is not None else 0) - rules_before,
        calls_by_operation=by_operation,
        failures=[o.summary()[:300] for o in outcomes if not o.ok][:3],
    )


def measure_scale(backups: int = 100, rps: float = 10.0, concurrency: int = 25, t_ready: float = 5.0) -> Scale:
    """Create ``backups`` resources in one stack at once, then delete them all at once."""
    variant = VARIANTS[OURS]
    with open_world(variant, max_concurrency=concurrency, init_timeout_real=300.0) as world:
        assert world.emulator is not None
        ids = [new_backup_id() for _ in range(backups)]
        for backup_id in ids:
            world.emulator.account.add_backup(backup_id, restore_seconds=t_ready)
        world.emulator.faults.throttle_above_rate(rps)
        simulator = world.simulator

        def create(number: int) -> Outcome:
            return simulator.create(f"RestoredBackup{number}", variant.properties(ids[number]))

        def delete(number: int) -> Outcome:
            return simulator.delete(f"RestoredBackup{number}")

        created = _phase("Create", world, create, list(range(backups)))
        # Then the stack goes away (or rolls back): every resource that was created is deleted at once.
        alive = [n for n in range(backups) if f"RestoredBackup{n}" in simulator.resources]
        deleted = _phase("Delete", world, delete, alive)
        return Scale(backups, rps, concurrency, t_ready, [created, deleted])
