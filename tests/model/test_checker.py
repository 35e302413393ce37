"""The checker can fail: a deliberately broken world breaks the invariant it should (and a sound one does not)."""

from __future__ import annotations

import pytest

from tests.model.cloudformation import properties
from tests.model.machine import ModelMachine
from tests.model.model import InvariantViolation

RETAIN = properties(("B1", None), "Retain", "600")


def _machine(sabotage: str | None) -> ModelMachine:
    state = ModelMachine()
    state.backups(slow=())
    state.model.sabotage = sabotage
    return state


def test_the_same_steps_in_a_sound_world_keep_every_invariant() -> None:
    state = _machine(None)
    state.create(stack=0, name=0, props=RETAIN, faults=[])
    state.delete(index=0, faults=[])
    state.teardown()


def test_an_extra_delete_backup_breaks_i1_and_i2() -> None:
    state = _machine("extra_delete")
    with pytest.raises(InvariantViolation, match=r"(?s)I1: DeleteBackup\(backup-firstmodelbkp\).*I2: "):
        state.create(stack=0, name=0, props=RETAIN, faults=[])


def test_lost_answers_break_i4_at_the_service_timeout() -> None:
    state = _machine("lose_answers")
    state.create(stack=0, name=0, props=RETAIN, faults=[])
    with pytest.raises(InvariantViolation, match=r"I4: Create#0 .* got no answer within its ServiceTimeout"):
        state.wait(seconds=1800.0)


def test_a_rule_left_after_the_delete_breaks_i3() -> None:
    state = _machine("leave_rule")
    state.create(stack=0, name=0, props=RETAIN, faults=[])
    with pytest.raises(InvariantViolation, match=r"I3: rule cloudhsm-poll-model1-sabotage .* remains after its Delete"):
        state.delete(index=0, faults=[])
