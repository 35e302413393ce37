"""The record of every API call the emulator received, for tests and benchmarks to count."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from cloudhsm_offline.observers import Listeners

OK = "ok"
DROPPED = "dropped"
ERROR = "error"


@dataclass(frozen=True)
class Call:
    """One received call: its operation, params, outcome (``ok``, an error code or ``dropped``), modelled time."""

    operation: str
    params: dict[str, Any]
    outcome: str
    at: float
    protocol: str
    status: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.outcome == OK

    def finished(self, outcome: str, status: int | None) -> Call:
        """The same call with its outcome and HTTP status."""
        return replace(self, outcome=outcome, status=status)


def _outcome_matches(call: Call, outcome: str | None) -> bool:
    if outcome is None:
        return True
    if outcome == ERROR:
        return call.outcome not in (OK, DROPPED)
    return call.outcome == outcome


@dataclass
class CallLog:
    """A thread-safe, append-only list of ``Call``."""

    _calls: list[Call] = field(default_factory=list)
    listeners: Listeners[[Call]] = field(default_factory=Listeners)
    """Called with each call as it is recorded."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: Call) -> None:
        """Append one call."""
        with self._lock:
            self._calls.append(call)
        self.listeners.notify(call)

    def all(self, operation: str | None = None, outcome: str | None = None) -> list[Call]:
        """A snapshot of the calls, optionally of one operation and/or outcome (``error`` = any error)."""
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls if (operation is None or c.operation == operation) and _outcome_matches(c, outcome)]

    def count(self, operation: str | None = None, outcome: str | None = None) -> int:
        """How many calls match (see ``all``)."""
        return len(self.all(operation, outcome))

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()
