"""A clock for the emulator's own tests: modelled time that moves only when a test advances it."""

from __future__ import annotations

T0 = 1_800_000_000.0


class ManualClock:
    """Modelled time that moves only when a test advances it."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
