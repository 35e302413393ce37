"""The wait-until-READY policy: capped backoff, and budgets for hand-off and deadline; the caller judges states."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudhsm_backup_restore.backups import Backup


class Verdict(Enum):
    """What a backup state means for the wait."""

    SUCCESS = "success"
    FAILURE = "failure"
    RETRY = "retry"


@dataclass(frozen=True)
class WaitPolicy:
    """Backoff between DescribeBackups calls and the time kept back for handing off and answering."""

    first_delay: float = 1.0
    multiplier: float = 1.5
    max_delay: float = 5.0
    handoff_margin: float = 90.0
    """Lambda time kept for the hand-off and the response: polling.py derives its clients' retries from it."""
    poll_window: float = 40.0
    """Longest in-process wait of a poll invocation, so EventBridge's next firing never overlaps it."""
    poll_interval: float = 60.0
    """crhelper's polling schedule: rate(1 minute)."""
    deadline_margin: float = 0.10
    """Share of ServiceTimeout (10 s to 60 s) kept back to report FAILED before CloudFormation gives up."""

    def delays(self) -> Iterator[float]:
        for attempt in itertools.count():
            yield min(self.max_delay, self.first_delay * self.multiplier**attempt)

    def overall_deadline(self, started_at: float, service_timeout: float) -> float:
        """When to give up and answer FAILED: a little before CloudFormation's ServiceTimeout."""
        margin = min(60.0, max(10.0, service_timeout * self.deadline_margin))
        return started_at + max(1.0, service_timeout - margin)

    def budget(self, *, lambda_left: float, overall_left: float, polling: bool, waited: float = 0.0) -> float:
        """Seconds this invocation may still wait in-process, having waited ``waited`` already."""
        budget = min(lambda_left - self.handoff_margin, overall_left)
        if polling and overall_left > self.poll_window - waited + self.poll_interval:
            budget = min(budget, self.poll_window - waited)
        return max(0.0, budget)


@dataclass(frozen=True)
class WaitResult:
    """Where the wait ended: READY (SUCCESS), a state that cannot end well (FAILURE), or pending (RETRY)."""

    backup: Backup | None
    verdict: Verdict
    checks: int
    waited: float


def wait_until_ready(
    describe: Callable[[], Backup | None],
    *,
    current: Backup | None,
    judge: Callable[[Backup | None], Verdict],
    budget: Callable[[], float],
    sleep: Callable[[float], None],
    policy: WaitPolicy,
) -> WaitResult:
    """Describe until ``judge`` says SUCCESS or FAILURE, or until sleeping again would overrun ``budget()``.

    ``current`` is the backup as last seen (e.g. RestoreBackup's response): READY there costs no call.
    """
    backup, waited = current, 0.0
    for checks, delay in enumerate(policy.delays()):
        outcome = judge(backup)
        if outcome is not Verdict.RETRY:
            return WaitResult(backup, outcome, checks, waited)
        left = budget()
        if left <= 0:
            return WaitResult(backup, Verdict.RETRY, checks, waited)
        pause = min(delay, left)
        sleep(pause)
        waited += pause
        backup = describe()
    raise AssertionError("unreachable: delays() is infinite")  # pragma: no cover
