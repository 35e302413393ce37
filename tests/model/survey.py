"""Survey: run the generated examples without stopping at the first violation; count what breaks, and how fast.

    .venv/bin/python -m tests.model.survey 100      # examples (default 50), MODEL_STEPS as in test_model

Prints, per invariant, how many examples broke it and one short message, and the real seconds per example.
Used for the README's "what it finds on today's handler" and to size the ``make test`` budget.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.machine import ModelMachine

FOUND: list[list[str]] = []


class SurveyMachine(ModelMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model.survey = []
        FOUND.append(self.model.survey)


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    steps = int(os.environ.get("MODEL_STEPS", "20"))
    started = time.monotonic()
    run_state_machine_as_test(
        SurveyMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    elapsed = time.monotonic() - started
    by_rule: collections.Counter[str] = collections.Counter()
    sample: dict[str, str] = {}
    for found in FOUND:
        kinds = set()
        for text in found:
            head = text.split("\n")[0]
            key = re.sub(r"#\d+|\d{4}", "#", re.sub(r"(Stack\d/)?(Restored|Renamed)\d#\d+", "R", head))[:120]
            kinds.add(key)
            sample.setdefault(key, text)
        by_rule.update(kinds)
    print(f"{len(FOUND)} examples, {steps} steps max, {elapsed:.1f} s ({elapsed / max(1, len(FOUND)):.2f} s each)")
    for key, count in by_rule.most_common():
        print(f"{count:4d} examples: {key}")
    details = os.environ.get("MODEL_SURVEY_DETAILS")
    if details:
        with open(details, "w") as out:
            for key, _count in by_rule.most_common():
                out.write(f"=== {key}\n{sample[key]}\n\n")


if __name__ == "__main__":
    main()
