"""Issue 15's seven defects, each a scenario replayed through the model's own steps (machine.ModelMachine).

Each test ends with the model's check of I1-I4 (and W7); each broke the named invariant on the handler before issue
15. None is marked xfail:
they guard for real.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.model.cloudformation import properties
from tests.model.machine import ModelMachine
from tests.model.model import InvariantViolation
from tests.model.world import REGION


@contextlib.contextmanager
def breaks(*invariants: str) -> Iterator[None]:
    """The scenario must break exactly for the named invariants' reasons (else it is a different failure)."""
    try:
        yield
    except InvariantViolation as violation:
        found = str(violation).split("--- steps")[0]
        missing = [name for name in invariants if f"{name}:" not in found]
        if missing:
            raise AssertionError(f"expected {', '.join(missing)} to break; got:\n{violation}") from violation
        raise


def machine(slow: tuple[str, ...] = ()) -> ModelMachine:
    state = ModelMachine()
    state.backups(slow=slow)
    return state


def slow(operation: str, seconds: float, when: str = "before") -> dict[str, Any]:
    return {"kind": "slow", "operation": operation, "seconds": seconds, "when": when}


B1_DELETE = properties(("B1", None), "Delete", "600")
B1_RETAIN = properties(("B1", None), "Retain", "600")


def test_defect_1_writing_out_the_region_keeps_the_live_backup() -> None:
    with breaks("I1", "I2"):
        state = machine()
        state.create(stack=0, name=0, props=B1_DELETE, faults=[])
        state.spell_region(index=0, faults=[])  # Region: us-east-1, the function's own: the same ARN
        state.teardown()


def test_defect_1_removing_the_region_keeps_the_live_backup() -> None:
    with breaks("I1", "I2"):
        state = machine()
        state.create(stack=0, name=0, props=properties(("B1", REGION), "Delete", "600"), faults=[])
        state.spell_region(index=0, faults=[])
        state.teardown()


def test_defect_2_a_redelivered_create_after_its_rollback_delete_does_nothing() -> None:
    """The Create's restore is applied, then the invocation runs out of time: crhelper's timer answers FAILED,
    CloudFormation rolls back with a Delete (C4). The same Create event arrives again: Lambda's retry of the
    timed-out invocation when MaximumRetryAttempts > 0, or, with the contract's 0, an at-least-once duplicate
    (C8). Either way it must not restore, tag or protect the backup of a resource whose Delete was answered."""
    with breaks("I3"):
        state = machine()
        state.create(stack=0, name=0, props=B1_DELETE, faults=[slow("ModifyBackupAttributes", 400.0)])
        state.delete(index=0, faults=[])
        state.redeliver(index=1, faults=[])
        state.teardown()


def test_defect_2_a_rollback_delete_during_a_parked_wait_ends_it() -> None:
    with breaks("I3"):
        state = machine()
        state.model.add_backups({"B1": 900.0})
        state.create(stack=0, name=0, props=B1_DELETE, faults=[])  # handed off to polling
        state.cancel(index=0)  # C7: another resource failed
        state.delete(index=0, faults=[])  # the rollback Delete
        state.wait(seconds=1800.0)
        state.teardown()


def test_defect_3_a_duplicate_delivery_never_undoes_a_restore_it_did_not_make() -> None:
    with breaks("I1", "I2"):
        state = machine()
        # D1 makes two calls and stops; D2 runs whole: restores, answers SUCCESS. D1 goes on:
        # its RestoreBackup is refused, ModifyBackupAttributes is denied.
        denied = {"service": "cloudhsmv2", "kind": "deny", "operation": "ModifyBackupAttributes"}
        state.create_delivered_twice(stack=0, name=0, props=B1_DELETE, at=2, faults=[denied], duplicate_faults=[])
        state.teardown()


def test_defect_4_an_adopter_in_another_stack_never_deletes() -> None:
    with breaks("I1"):
        state = machine()
        state.create(stack=0, name=0, props=B1_RETAIN, faults=[])
        state.create(stack=1, name=0, props=B1_DELETE, faults=[])  # finds B1 READY: adopts it
        state.delete(index=0, faults=[])  # stack 1 deleted: withdraws
        state.delete(index=0, faults=[])  # stack 2 deleted
        state.teardown()


def test_defect_5_a_poll_that_runs_out_of_time_still_answers() -> None:
    with breaks("I4"):
        state = machine()
        state.model.add_backups({"B1": 900.0})
        state.create(stack=0, name=0, props=B1_DELETE, faults=[])  # handed off
        # A poll whose first CloudHSM call hangs past the timer; the timer's DeleteParameter takes effect, then
        # its answer comes too late: Lambda stops the invocation.
        state.fire(index=0, faults=[slow("DescribeBackups", 298.0), slow("DeleteParameter", 10.0, "after")])
        state.teardown()


@pytest.mark.parametrize("restore", ["synchronous", "slow"])
def test_defect_6_the_documented_ready_answer_and_the_slow_fallback(restore: str) -> None:
    """RestoreBackup answering READY (the User Guide's example) and a 120 s restore both keep I1-I4."""
    state = machine(slow=("B1",) if restore == "slow" else ())
    state.create(stack=0, name=0, props=B1_DELETE, faults=[])
    state.wait(seconds=300.0)
    state.delete(index=0, faults=[])
    state.teardown()
    assert state.model.world.backup_state("backup-firstmodelbkp", REGION) == "PENDING_DELETION"
    answers = [r.answer.body["Status"] for r in state.model.requests if r.answer is not None]
    assert answers == ["SUCCESS", "SUCCESS"]


def test_defect_7_a_wait_whose_backup_was_deleted_by_someone_else_fails_at_once() -> None:
    """The Create waits for a backup still being made; it turns READY, someone deletes it: PENDING_DELETION
    that this resource did not restore. The next poll ends the wait."""
    with breaks("W7"):
        state = machine()
        state.model.creation_in_progress("B1")
        state.create(stack=0, name=0, props=B1_DELETE, faults=[])  # waits, hands off
        state.creation_completes(key="B1")
        state.delete_from_outside(key="B1")
        state.fire(index=0, faults=[])
        state.teardown()


def test_defect_7_a_wait_whose_backup_turned_deleted_fails_at_once() -> None:
    """Today's handler already ends this wait (DELETED) at the next poll; the model keeps it so."""
    state = machine()
    state.model.add_backups({"B1": 900.0})
    state.create(stack=0, name=0, props=B1_DELETE, faults=[])  # handed off
    state.waited_backup_vanishes(index=0)
    state.fire(index=0, faults=[])
    state.teardown()
    assert state.model.requests[0].answer is not None
    assert state.model.requests[0].answer.body["Status"] == "FAILED"
