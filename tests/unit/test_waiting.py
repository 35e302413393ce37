"""The wait policy: capped backoff, budgets that keep time for the hand-off, the overall deadline."""

from __future__ import annotations

import itertools
from typing import Any

from cloudhsm_backup_restore.waiting import Verdict, WaitPolicy, wait_until_ready


def test_backoff_grows_and_is_capped_at_a_few_seconds() -> None:
    delays = list(itertools.islice(WaitPolicy().delays(), 8))
    assert delays[0] == 1.0
    assert delays == sorted(delays)
    assert max(delays) == 5.0


def test_budget_keeps_the_handoff_margin_and_respects_the_deadline() -> None:
    policy = WaitPolicy()
    assert policy.budget(lambda_left=300, overall_left=3000, polling=False) == 210
    assert policy.budget(lambda_left=300, overall_left=100, polling=False) == 100
    assert policy.budget(lambda_left=20, overall_left=3000, polling=False) == 0
    # A poll invocation waits at most poll_window, unless the deadline falls before the next poll.
    assert policy.budget(lambda_left=300, overall_left=3000, polling=True) == 40
    assert policy.budget(lambda_left=300, overall_left=90, polling=True) == 90
    # The poll window counts what this invocation already waited.
    assert policy.budget(lambda_left=270, overall_left=2970, polling=True, waited=30) == 10
    assert policy.budget(lambda_left=250, overall_left=2950, polling=True, waited=50) == 0


def test_overall_deadline_answers_before_service_timeout() -> None:
    policy = WaitPolicy()
    assert policy.overall_deadline(1000.0, 3600) == 1000.0 + 3600 - 60
    assert policy.overall_deadline(1000.0, 300) == 1000.0 + 270
    assert policy.overall_deadline(1000.0, 60) == 1000.0 + 50


def test_wait_stops_when_sleeping_again_would_overrun_the_budget() -> None:
    now = [0.0]
    checks: list[float] = []

    def describe() -> dict[str, Any]:
        checks.append(now[0])
        return {"BackupState": "PENDING_DELETION"}

    def sleep(seconds: float) -> None:
        now[0] += seconds

    result = wait_until_ready(
        describe,
        current={"BackupState": "PENDING_DELETION"},
        judge=lambda b: Verdict.SUCCESS if b and b.get("BackupState") == "READY" else Verdict.RETRY,
        budget=lambda: 12.0 - now[0],
        sleep=sleep,
        policy=WaitPolicy(),
    )
    assert result.verdict is Verdict.RETRY
    assert result.waited == 12.0
    assert now[0] == 12.0
    assert checks == [1.0, 2.5, 4.75, 8.125, 12.0]


def test_ready_at_first_sight_costs_no_call() -> None:
    def describe() -> None:
        raise AssertionError("no call expected")

    result = wait_until_ready(
        describe,
        current={"BackupState": "READY"},
        judge=lambda b: Verdict.SUCCESS,
        budget=lambda: 100.0,
        sleep=lambda s: None,
        policy=WaitPolicy(),
    )
    assert result.verdict is Verdict.SUCCESS
    assert result.checks == 0
