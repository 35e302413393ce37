"""One lifecycle (Create, then Delete) of a restored backup in the offline world, as a row.

Latencies are modelled seconds of the world's virtual clock: time stands still while anything computes
and jumps when every actor waits, so a lifecycle's figures are the same on every run and every machine.
One run per (variant, case) is the measurement; there is nothing to take a median of.
"""

from __future__ import annotations

from collections import Counter

from cloudhsm_offline.cfn.outcome import Outcome
from cloudhsm_offline.cfn.world import OfflineWorld

from bench.rows import RUN, Case, Row
from bench.world import Variant, new_backup_id

THROTTLED = "ThrottlingException"


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


def _issue_codes(world: OfflineWorld, before: set[str], outcomes: list[Outcome]) -> list[str]:
    """Protocol problems this lifecycle added: the world's (e.g. secret-in-logs) and the outcomes' own."""
    codes = {text.split(":", 1)[0] for text in {str(v) for v in world.verify()} - before}
    for outcome in outcomes:
        codes.update(v.code for v in outcome.violations)
    return sorted(codes)


def measure_case(world: OfflineWorld, variant: Variant, case: Case, number: int = 0) -> Row:
    """Create a resource for a fresh backup READY ``case.t_ready`` s after RestoreBackup, then delete it."""
    assert world.emulator is not None
    backup_id = new_backup_id()
    world.emulator.account.add_backup(backup_id, restore_seconds=case.t_ready)  # the seed's per-backup restore_seconds
    logical_id = f"RestoredBackup{number}"
    issues_before = {str(v) for v in world.verify()}
    calls_before = len(world.emulator.calls)
    rules_before = world.eventbridge.count("PutRule") if world.eventbridge is not None else 0
    create = world.simulator.create(logical_id, variant.properties(backup_id))
    outcomes = [create, *create.followups]
    delete: Outcome | None = None
    if create.status == "SUCCESS":
        delete = world.simulator.delete(logical_id)
        outcomes.append(delete)
    calls = list(world.emulator.calls)[calls_before:]
    final_state = world.emulator.account.backup(backup_id).get("BackupState")
    lambda_seconds, max_concurrent = _invocation_load(world, {o.request_id for o in outcomes})
    ok = create.ok and delete is not None and delete.ok and final_state == "PENDING_DELETION"
    reason = "" if ok else "; ".join(o.summary() for o in outcomes if not o.ok) or f"backup ended {final_state}"
    rules = world.eventbridge.count("PutRule") - rules_before if world.eventbridge is not None else 0
    return Row(
        case=case,
        variant=variant.key,
        kind=RUN,
        create_s=create.elapsed_modelled,
        delete_s=None if delete is None else delete.elapsed_modelled,
        invocations=float(sum(o.invocations for o in outcomes)),
        rules=float(rules),
        api_calls=float(len(calls)),
        ok=ok,
        calls_by_operation=dict(sorted(Counter(call.operation for call in calls).items())),
        lambda_s=lambda_seconds,
        max_concurrent=float(max_concurrent),
        violations=_issue_codes(world, issues_before, outcomes),
        note=f"failed: {reason[:200]}" if reason else "",
    )
