"""One measured lifecycle (Create, then Delete) of a restored backup, and the median over several."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.world import OfflineWorld

from bench.rows import MEASURED, Case, Row
from bench.world import Variant, new_backup_id

THROTTLED = "ThrottlingException"


@dataclass
class Sample:
    """What one Create + Delete cost: CloudFormation-visible latency (modelled and real) and counts."""

    create_modelled: float
    create_real: float
    delete_modelled: float | None
    delete_real: float | None
    ok: bool
    invocations: int
    rules: int
    api_calls: int
    throttled: int
    calls_by_operation: dict[str, int]
    lambda_seconds: float = 0.0
    max_concurrent: int = 0
    issues: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class _Counters:
    api_calls: int
    throttled: int
    rules: int
    by_operation: dict[str, int]
    issues: frozenset[str]

    @classmethod
    def read(cls, world: OfflineWorld) -> _Counters:
        assert world.emulator is not None
        by_operation: dict[str, int] = {}
        for call in world.emulator.calls:
            by_operation[call.operation] = by_operation.get(call.operation, 0) + 1
        return cls(
            api_calls=world.emulator.count(),
            throttled=world.emulator.count(outcome=THROTTLED),
            rules=world.eventbridge.count("PutRule") if world.eventbridge is not None else 0,
            by_operation=by_operation,
            issues=frozenset(str(v) for v in world.verify()),
        )


def _issue_codes(before: frozenset[str], after: frozenset[str], outcomes: Sequence[Outcome]) -> list[str]:
    codes = {text.split(":", 1)[0] for text in after - before}
    for outcome in outcomes:
        codes.update(v.code for v in outcome.violations)
    return sorted(codes)


def _invocation_load(world: OfflineWorld, request_ids: set[str]) -> tuple[float, int]:
    """Modelled Lambda seconds spent on these requests, and the most invocations running at once."""
    records = [r for r in list(world.function.records) if r.event.get("RequestId") in request_ids]
    busy = sum(r.modelled_seconds or 0.0 for r in records)
    edges = sorted(
        [(r.start_modelled, 1) for r in records] + [(r.end_modelled or r.start_modelled, -1) for r in records]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return busy, peak


def run_lifecycle(world: OfflineWorld, variant: Variant, case: Case, number: int) -> Sample:
    """Create a resource for a fresh backup READY ``case.t_ready`` s after RestoreBackup, then delete it."""
    assert world.emulator is not None
    backup_id = new_backup_id()
    world.emulator.account.add_backup(backup_id, restore_seconds=case.t_ready)
    logical_id = f"RestoredBackup{number}"
    before = _Counters.read(world)
    create = world.simulator.create(logical_id, variant.properties(backup_id))
    outcomes = [create, *create.followups]
    delete: Outcome | None = None
    if create.status == "SUCCESS":
        delete = world.simulator.delete(logical_id)
        outcomes.append(delete)
    after = _Counters.read(world)
    final_state = world.emulator.account.backup(backup_id).get("BackupState")
    lambda_seconds, max_concurrent = _invocation_load(world, {o.request_id for o in outcomes})
    ok = create.ok and delete is not None and delete.ok and final_state == "PENDING_DELETION"
    reason = "" if ok else "; ".join(o.summary() for o in outcomes if not o.ok) or f"backup ended {final_state}"
    return Sample(
        create_modelled=create.elapsed_modelled,
        create_real=create.elapsed_real,
        delete_modelled=None if delete is None else delete.elapsed_modelled,
        delete_real=None if delete is None else delete.elapsed_real,
        ok=ok,
        invocations=sum(o.invocations for o in outcomes),
        rules=after.rules - before.rules,
        api_calls=after.api_calls - before.api_calls,
        throttled=after.throttled - before.throttled,
        calls_by_operation={
            op: n - before.by_operation.get(op, 0)
            for op, n in after.by_operation.items()
            if n - before.by_operation.get(op, 0)
        },
        lambda_seconds=lambda_seconds,
        max_concurrent=max_concurrent,
        issues=_issue_codes(before.issues, after.issues, outcomes),
        reason=reason,
    )


def median(values: Sequence[float | None]) -> float | None:
    """Median of the known values (None when there are none)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise(case: Case, variant: Variant, speed: float, samples: Sequence[Sample]) -> Row:
    """The row for one (case, variant): medians over the samples."""
    issues = sorted({code for s in samples for code in s.issues})
    reasons = [s.reason for s in samples if s.reason]
    calls = median([float(s.api_calls) for s in samples])
    by_op: dict[str, float] = {}
    for op in sorted({op for s in samples for op in s.calls_by_operation}):
        value = median([float(s.calls_by_operation.get(op, 0)) for s in samples])
        if value:
            by_op[op] = value
    real = f"real s: Create {_num3(median([s.create_real for s in samples]))}"
    real += f", Delete {_num3(median([s.delete_real for s in samples]))}"
    note = real + "; calls: " + ", ".join(f"{op} {_num(n)}" for op, n in by_op.items())
    if reasons:
        note += " | failures: " + reasons[0][:200]
    return Row(
        case=case,
        variant=variant.key,
        kind=MEASURED,
        create_s=median([s.create_modelled for s in samples]),
        delete_s=median([s.delete_modelled for s in samples]),
        invocations=median([float(s.invocations) for s in samples]),
        rules=median([float(s.rules) for s in samples]),
        api_calls=calls,
        speed=speed,
        runs=len(samples),
        succeeded=sum(1 for s in samples if s.ok),
        create_real_s=median([s.create_real for s in samples]),
        delete_real_s=median([s.delete_real for s in samples]),
        throttled=median([float(s.throttled) for s in samples]),
        lambda_s=median([s.lambda_seconds for s in samples]),
        max_concurrent=median([float(s.max_concurrent) for s in samples]),
        violations=issues,
        note=note,
    )


def _num(value: float) -> str:
    return f"{value:g}"


def _num3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def measure_case(world: OfflineWorld, variant: Variant, case: Case, speed: float, runs: int, first: int = 0) -> Row:
    """``runs`` lifecycles of one case in a warm world; the median row."""
    samples = [run_lifecycle(world, variant, case, first + n) for n in range(runs)]
    return summarise(case, variant, speed, samples)
