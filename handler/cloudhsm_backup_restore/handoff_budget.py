"""The hand-off's time budget: its clients' retries and timeouts derived from the wait policy's hand-off margin.

The worst case of every call made while handing off (all attempts timing out, every backoff maximal) plus one
response attempt must end before crhelper's timeout guard fires, or the guard would answer FAILED while a rule
is half made (issue 10, rule 5).
"""

from __future__ import annotations

from botocore.config import Config

from cloudhsm_backup_restore.waiting import WaitPolicy

POLLING_INTERVAL_MINUTES = 1
TIMER_MARGIN_SECONDS = 3.0
"""crhelper's guard answers FAILED this long before the Lambda deadline (crhelper: 0.5 s)."""
RESPONSE_SOCKET_TIMEOUT = 10.0
"""Each attempt of crhelper's ResponseURL PUT gives up after this (crhelper sets none)."""
HANDOFF_CALLS = 5
"""The longest chain of calls while handing off: PutParameter, PutRule, PutTargets failing, then DeleteRule and
DeleteParameter undoing the half-made hand-off (the FAILED answer follows)."""
CONNECT_TIMEOUT = 1.0
MAX_BACKOFF = 20.0
"""botocore standard mode: attempt i (0-based) sleeps rand * min(2**i, 20) s when throttled ..."""
RETRY_AFTER_EXTRA = 5.0
"""... raised by an x-amz-retry-after header to at most 5 s more (botocore/retries/standard.py)."""


def call_worst_case(attempts: int, connect_timeout: float, read_timeout: float) -> float:
    """Seconds one call can take in botocore's standard mode: every attempt times out, every backoff is maximal."""
    backoffs = sum(min(2.0**i, MAX_BACKOFF) + RETRY_AFTER_EXTRA for i in range(attempts - 1))
    return attempts * (connect_timeout + read_timeout) + backoffs


LAST_CHECK_RESERVE = 15.0
"""Part of the margin left for what runs between the end of the in-process wait and the hand-off's first call
(the last DescribeBackups, the answer's bookkeeping): the hand-off starts only with its worst case left."""


def handoff_client_settings(margin: float) -> tuple[int, float, float]:
    """(max_attempts, connect_timeout, read_timeout): the most attempts whose worst case fits the margin."""
    per_call = (margin - LAST_CHECK_RESERVE - TIMER_MARGIN_SECONDS - RESPONSE_SOCKET_TIMEOUT) / HANDOFF_CALLS
    for attempts in (4, 3, 2, 1):
        read = (per_call - call_worst_case(attempts, 0.0, 0.0)) / attempts - CONNECT_TIMEOUT
        if read >= 1.0:
            return attempts, CONNECT_TIMEOUT, int(read * 10) / 10
    raise ValueError(f"a hand-off margin of {margin} s leaves no time for {HANDOFF_CALLS} calls")


HANDOFF_ATTEMPTS, HANDOFF_CONNECT_TIMEOUT, HANDOFF_READ_TIMEOUT = handoff_client_settings(WaitPolicy().handoff_margin)
HANDOFF_WORST_CASE = HANDOFF_CALLS * call_worst_case(HANDOFF_ATTEMPTS, HANDOFF_CONNECT_TIMEOUT, HANDOFF_READ_TIMEOUT)
"""What the hand-off's calls can take at worst; a hand-off starts only with this much Lambda time left."""
HANDOFF_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": HANDOFF_ATTEMPTS},  # max_attempts would not count the first
    connect_timeout=HANDOFF_CONNECT_TIMEOUT,
    read_timeout=HANDOFF_READ_TIMEOUT,
)
"""SSM, EventBridge and Lambda clients (crhelper's default 60 s timeouts would overrun the margin)."""
