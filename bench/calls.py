"""CloudHSM API calls per lifecycle step (issue 9): what ownership and protection cost on the happy path.

``python -m bench.calls`` runs each step once in the offline world (the real handler against the emulator,
RestoreBackup READY at once) and counts the calls the emulator received, by operation. Counts, not times:
they do not depend on the machine.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cloudhsm_offline.cfn.simulator import CloudFormationSimulator
from cloudhsm_offline.cfn.world import OfflineWorld

BACKUP = "backup-abcdefghijk"
RESTORE_DELETE = {"BackupId": BACKUP, "OnDelete": "Delete"}
RESTORE_RETAIN = {"BackupId": BACKUP}


@dataclass(frozen=True)
class StepCalls:
    """One lifecycle step and the CloudHSM calls it made."""

    step: str
    calls: dict[str, int]
    ok: bool

    @property
    def total(self) -> int:
        """All calls of the step."""
        return sum(self.calls.values())


Step = Callable[[OfflineWorld, CloudFormationSimulator], bool]


def _steps() -> list[tuple[str, str, Step]]:
    """(setup state, step name, action) in the order they run; each world starts from its setup."""
    return [
        ("PENDING_DELETION", "Create: restore (OnDelete Delete)", lambda w, s: s.create("R", RESTORE_DELETE).ok),
        ("owned", "Update: same backup, nothing to do", lambda w, s: s.update("R", RESTORE_DELETE).ok),
        ("owned", "Delete by the owner, OnDelete Delete", lambda w, s: s.delete("R").ok),
        ("owned-retain", "Delete by the owner, OnDelete Retain", lambda w, s: s.delete("R").ok),
        ("READY", "Create: adopt a READY backup", lambda w, s: s.create("R", RESTORE_DELETE).ok),
        ("adopted", "Delete by an adopter (retained)", lambda w, s: s.delete("R").ok),
        ("owned", "Rename: Create of the new logical id (take-over)", lambda w, s: s.create("New", RESTORE_DELETE).ok),
        ("renamed", "Rename: cleanup Delete of the old logical id", lambda w, s: s.delete("R").ok),
    ]


def _prepare(world: OfflineWorld, sim: CloudFormationSimulator, setup: str) -> bool:
    world.emulator.account.add_backup(BACKUP, state="READY" if setup in ("READY", "adopted") else "PENDING_DELETION")
    if setup == "owned":
        return bool(sim.create("R", RESTORE_DELETE).ok)
    if setup == "owned-retain":
        return bool(sim.create("R", RESTORE_RETAIN).ok)
    if setup == "adopted":
        return bool(sim.create("R", RESTORE_DELETE).ok)
    if setup == "renamed":
        return bool(sim.create("R", RESTORE_DELETE).ok and sim.create("New", RESTORE_DELETE).ok)
    return True


def measure() -> list[StepCalls]:
    """Each step in a fresh emulator state (one world, reset between steps); calls counted by operation."""
    results: list[StepCalls] = []
    with OfflineWorld() as world:
        for index, (setup, name, action) in enumerate(_steps()):
            sim = CloudFormationSimulator(
                world.function, world.responses, world.clock, eventbridge=world.eventbridge, stack_name=f"calls-{index}"
            )
            world.emulator.reset()
            ready = _prepare(world, sim, setup)
            world.emulator.call_log.clear()
            ok = ready and action(world, sim)
            counted = Counter(call.operation for call in world.emulator.calls)
            results.append(StepCalls(name, dict(sorted(counted.items())), ok))
    return results


def render(results: list[StepCalls]) -> str:
    """A markdown table: step, total, calls by operation."""
    lines = ["| Lifecycle step | CloudHSM calls | By operation |", "|---|---|---|"]
    for result in results:
        detail = ", ".join(f"{op} {n}" for op, n in result.calls.items()) or "none"
        mark = "" if result.ok else " (FAILED)"
        lines.append(f"| {result.step}{mark} | {result.total} | {detail} |")
    return "\n".join(lines)


def main() -> int:
    """Print the table; 0 when every step succeeded."""
    results = measure()
    print(render(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
