"""Smoke test of the concurrent hand-off bench on a tiny input (``make bench`` runs 200)."""

from __future__ import annotations

import pytest

from bench.handoffs import measure_handoffs, summary

pytestmark = pytest.mark.slow


def test_a_few_concurrent_hand_offs_each_answer_once_and_leave_nothing() -> None:
    result = measure_handoffs(count=4, concurrency=2)

    assert result.all_ok, summary(result)
    assert result.answers == [1, 1, 1, 1]
    assert result.rules == 4
    assert result.add_permission == 0
    assert result.polls >= 4
    assert "| 4 | 4 | 4 | 4 | 0 |" in summary(result)
