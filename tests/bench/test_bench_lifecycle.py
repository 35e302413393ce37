"""The modelled lifecycle figures: deterministic, and what the documented schedules say.

GIVEN a backup whose restore takes ``t_ready`` modelled seconds (the emulator's restore_seconds), WHEN a
variant runs Create then Delete in the offline world, THEN its latencies follow its documented polling
schedule exactly, and running the same case again gives the same row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import asdict

import pytest
from cloudhsm_backup_restore.waiting import WaitPolicy
from cloudhsm_offline.cfn.world import OfflineWorld

from bench.lifecycle import measure_case
from bench.rows import CRHELPER_DOCUMENTED, OURS, Case
from bench.world import VARIANTS, open_world

pytestmark = pytest.mark.slow

POLICY = WaitPolicy()
CRHELPER_POLL_S = 120.0
"""crhelper's CfnResource(polling_interval=2): rate(2 minutes)."""
CRHELPER_SLEEP_ON_DELETE_S = 120.0


def first_check_at_or_after(t_ready: float) -> float:
    """When ours' in-process backoff (1 s, x1.5, capped at 5 s) first describes a READY backup."""
    return next(t for t in itertools.accumulate(POLICY.delays()) if t >= t_ready)


# Function scope: moto keeps EventBridge state per process, so two worlds of one account cannot overlap.
@pytest.fixture
def ours() -> Iterator[OfflineWorld]:
    with open_world(VARIANTS[OURS]) as world:
        yield world


@pytest.fixture
def crhelper() -> Iterator[OfflineWorld]:
    with open_world(VARIANTS[CRHELPER_DOCUMENTED]) as world:
        yield world


def test_ours_answers_a_short_restore_at_the_first_backoff_check_after_ready(ours: OfflineWorld) -> None:
    row = measure_case(ours, VARIANTS[OURS], Case("READY in 5 s", 5.0))

    assert row.ok, row.note
    assert row.create_s == pytest.approx(first_check_at_or_after(5.0))  # checks at 1, 2.5, 4.75, 8.125 s
    assert row.delete_s == 0.0
    assert row.invocations == 2
    assert row.rules == 0
    # RestoreBackup's answer is not READY, then one DescribeBackups per check; the rest as in the fast path.
    checks = sum(1 for _ in itertools.takewhile(lambda t: t <= row.create_s, itertools.accumulate(POLICY.delays())))
    assert row.calls_by_operation["DescribeBackups"] == 1 + checks + 1


def test_ours_answers_a_handed_off_restore_within_one_poll_interval_of_ready(ours: OfflineWorld) -> None:
    row = measure_case(ours, VARIANTS[OURS], Case("READY in 5 min", 300.0), number=1)

    assert row.ok, row.note
    assert row.rules == 1  # 300 s is past the 210 s a 300 s Lambda may wait in-process: one hand-off
    assert row.invocations > 2  # answered by a poll
    assert row.after_ready_s is not None
    assert 0 <= row.after_ready_s <= POLICY.poll_interval
    assert row.after_ready_s <= POLICY.max_delay  # READY falls inside a poll's in-process window here
    assert row.max_concurrent == 1  # polls never overlap
    assert row.violations == []


def test_the_same_case_gives_the_same_modelled_row_twice(ours: OfflineWorld) -> None:
    case = Case("READY in 90 s", 90.0)

    first = asdict(measure_case(ours, VARIANTS[OURS], case, number=2))
    second = asdict(measure_case(ours, VARIANTS[OURS], case, number=3))

    assert first == second


def test_crhelper_as_documented_polls_every_two_minutes_and_sleeps_on_delete(crhelper: OfflineWorld) -> None:
    at_once = measure_case(crhelper, VARIANTS[CRHELPER_DOCUMENTED], Case("READY at once", 0.0))
    five_min = measure_case(crhelper, VARIANTS[CRHELPER_DOCUMENTED], Case("READY in 5 min", 300.0), number=1)

    assert at_once.ok, at_once.note
    assert five_min.ok, five_min.note
    assert at_once.create_s == CRHELPER_POLL_S  # its first poll, two minutes after the Create
    assert five_min.create_s == 3 * CRHELPER_POLL_S  # polls at 120, 240, 360 s: READY seen at the third
    assert at_once.delete_s == five_min.delete_s == CRHELPER_SLEEP_ON_DELETE_S
    assert at_once.calls_by_operation == {"DeleteBackup": 1, "DescribeBackups": 1, "RestoreBackup": 1}
    assert five_min.calls_by_operation["DescribeBackups"] == 3
    assert "secret-in-logs" in at_once.violations  # log_level DEBUG logs the ResponseURL
