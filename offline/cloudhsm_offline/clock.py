"""Modelled time for the offline world: real time, optionally compressed by a speed factor."""

from __future__ import annotations

import threading
import time


class SimClock:
    """Modelled seconds since the epoch: starts at real now and runs ``speed`` times faster.

    The emulator (restore durations), the CloudFormation simulator (ServiceTimeout, EventBridge
    schedules) and the Lambda context (remaining time) share one clock, so a test of a ten-minute
    restore takes ten seconds at ``speed=60``. Code under test sleeps in real time.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real_start = time.monotonic()
        self._model_start = time.time()
        self._lock = threading.Lock()
        self._offset = 0.0

    def now(self) -> float:
        """Modelled seconds since the epoch."""
        with self._lock:
            elapsed = time.monotonic() - self._real_start
            return self._model_start + elapsed * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        """Jump modelled time forward (e.g. past a backup's 7-day restore window)."""
        with self._lock:
            self._offset += seconds

    def real_seconds(self, modelled: float) -> float:
        """How many real seconds a span of modelled seconds takes."""
        return modelled / self.speed

    def sleep(self, modelled: float) -> None:
        """Sleep for a span of modelled time."""
        if modelled > 0:
            time.sleep(modelled / self.speed)
