"""The stateful property test of issue 15 (see README.md here): generated CloudFormation event orders.

``make test`` runs a small fixed budget (derandomized, no example database, no shrinking: a failure is
reported as found); ``make model`` (or MODEL_EXAMPLES=2000 MODEL_SHRINK=1) a large one that shrinks.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.machine import ModelMachine

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "40"))
STEPS = int(os.environ.get("MODEL_STEPS", "20"))
SHRINK = os.environ.get("MODEL_SHRINK", "") not in ("", "0")
RANDOM = os.environ.get("MODEL_RANDOM", "") not in ("", "0")


def test_generated_event_orders_keep_the_invariants() -> None:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else [])
    run_state_machine_as_test(
        ModelMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=not RANDOM,
            database=None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )
