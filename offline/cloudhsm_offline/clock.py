"""Modelled time: a virtual clock for the offline world, a compressed real-time clock for the standalone emulator.

The world's ``VirtualClock`` is a discrete-event clock. Every actor that can make something happen (each
Lambda execution environment while it runs an invocation, EventBridge's scheduler, each asynchronous
invocation, and a driver thread inside a world call such as a stack operation) holds a *token* while it
runs. Modelled time stands still while any token is held, and jumps to the earliest wake-up once every
actor waits: a Lambda worker in ``time.sleep`` or a ``threading.Timer``, the simulator on a
ServiceTimeout, the scheduler on its next firing. Time moves only while a driver waits on the world, so
it stands still between a test's (or the CLI's) steps. Real compute (process start, imports, HTTP)
takes no modelled time, so what the model sees is the same on a quiet and on a loaded machine
(DESIGN.md rule 6); only the real duration differs.

Why not compressed real time (what this replaced): a busy CPU stretched real compute into minutes of
modelled time at speed 60, so ServiceTimeouts and Lambda deadlines were hit on loaded machines only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cloudhsm_offline import signals

HANG_GUARD_SECONDS = 300.0
"""Real seconds a wait gives up after when the world makes no progress at all (a bug, never an outcome)."""


class SimClock:
    """Real time compressed ``speed`` times: for the standalone emulator, which has no world to drive it."""

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
            return self._model_start + (time.monotonic() - self._real_start) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        """Jump modelled time forward (e.g. past a backup's 7-day restore window)."""
        with self._lock:
            self._offset += seconds

    def sleep(self, modelled: float) -> None:
        """Sleep for a span of modelled time."""
        if modelled > 0:
            time.sleep(modelled / self.speed)


@dataclass(eq=False)
class _Wait:
    """One actor waiting for ``predicate`` or the modelled ``deadline``; ``wake`` runs once it is due."""

    deadline: float | None
    predicate: Callable[[], bool] | None = None
    wake: Callable[[float], None] | None = None
    driver: bool = False
    woken: bool = False
    satisfied: bool = False
    event: threading.Event = field(default_factory=threading.Event)


class VirtualClock:
    """Modelled epoch seconds that move only when every actor waits (see the module docstring).

    ``hold``/``release`` count actors that run; ``wait_for`` and ``sleep`` release the caller's token
    while they wait and take it back when they return; ``schedule`` registers a wake-up for an actor
    outside this process (a Lambda worker asleep); ``notify`` re-checks waits after a state change.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._cond = threading.Condition()
        self._running = 0
        self._waits: list[_Wait] = []
        self._local = threading.local()

    def now(self) -> float:
        """Modelled seconds since the epoch."""
        return self._now

    # -- tokens ------------------------------------------------------------------------------------

    def hold(self) -> None:
        """An actor starts running: time stands still until it releases."""
        with self._cond:
            self._running += 1

    def release(self) -> None:
        """An actor stops running (finished, or blocked on something the clock is told about)."""
        with self._cond:
            self._running -= 1
            self._settle()

    @contextmanager
    def driving(self) -> Iterator[None]:
        """A world call from outside (a test's or the CLI's thread): hold a token for its duration.

        Nested calls and the world's own actor threads (which hold theirs already) take none.
        """
        depth = getattr(self._local, "depth", 0)
        own = depth == 0 and not getattr(self._local, "actor", False)
        self._local.depth = depth + 1
        if own:
            self.hold()
        try:
            yield
        finally:
            self._local.depth = depth
            if own:
                self.release()

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon actor thread that holds a token from before it starts until it ends."""

        def run() -> None:
            self._local.actor = True
            try:
                target()
            finally:
                self.release()

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.hold()
        thread.start()
        return thread

    # -- waiting -----------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Jump modelled time forward (a test moving past a backup's 7-day window); wakes what falls due."""
        with self._cond:
            self._now += max(0.0, seconds)
            self._wake_due()

    def notify(self) -> None:
        """Something changed that a wait's predicate may be watching."""
        with self._cond:
            self._check_predicates()
            self._settle()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float | None = None, hang_guard: float = HANG_GUARD_SECONDS
    ) -> bool:
        """Wait until ``predicate()`` holds or ``timeout`` modelled seconds pass; True if it holds.

        The caller's token is released meanwhile (a thread outside the world drives it for the call).
        ``hang_guard`` bounds the real wait when nothing at all moves (a stalled world): then the result
        is ``predicate()``.
        """
        with self.driving():
            return self._wait(predicate, timeout, hang_guard, driver=not getattr(self._local, "actor", False))

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` modelled seconds pass for the caller.

        A thread that holds no token (an emulator's request thread answering with an injected latency)
        lends the token of the caller blocked on its answer, so time can move on.
        """
        if getattr(self._local, "depth", 0) or getattr(self._local, "actor", False):
            self.wait_for(lambda: False, seconds)
        else:
            self._wait(lambda: False, seconds, HANG_GUARD_SECONDS, driver=True)

    def _wait(self, predicate: Callable[[], bool], timeout: float | None, hang_guard: float, driver: bool) -> bool:
        with self._cond:
            if predicate():
                return True
            if timeout is not None and timeout <= 0:
                return False
            wait = _Wait(None if timeout is None else self._now + timeout, predicate, driver=driver)
            self._park(wait)
        try:
            woken = signals.wait(wait.event, hang_guard)  # interruptible by a signal in the main thread
        except BaseException:  # a signal in the main thread: take the token back before unwinding
            with self._cond:
                if not wait.woken:
                    self._unpark(wait)
            raise
        if not woken:
            with self._cond:
                if not wait.woken:
                    self._unpark(wait)
                    wait.satisfied = predicate()
        return wait.satisfied

    def schedule(self, deadline: float, wake: Callable[[float], None]) -> Callable[[], None]:
        """Register a remote actor asleep until ``deadline``: ``wake(now)`` runs (holding a new token for
        it) when that time comes. The caller has already released the actor's token. Returns a cancel."""
        wait = _Wait(deadline, None, wake)
        with self._cond:
            self._waits.append(wait)
            self._settle()

        def cancel() -> None:
            with self._cond:
                if wait in self._waits:
                    self._waits.remove(wait)
                    self._settle()

        return cancel

    # -- the scheduler (under the lock) ------------------------------------------------------------

    def _park(self, wait: _Wait) -> None:
        self._waits.append(wait)
        self._running -= 1
        self._settle()

    def _unpark(self, wait: _Wait) -> None:
        self._waits.remove(wait)
        self._running += 1
        wait.woken = True

    def _resume(self, wait: _Wait, satisfied: bool) -> None:
        self._unpark(wait)
        wait.satisfied = satisfied
        if wait.wake is not None:
            wait.wake(self._now)
        wait.event.set()

    def _check_predicates(self) -> bool:
        woke = False
        for wait in list(self._waits):
            if wait.predicate is not None and wait.predicate():
                self._resume(wait, True)
                woke = True
        return woke

    def _wake_due(self) -> None:
        for wait in list(self._waits):
            if wait.deadline is not None and wait.deadline <= self._now:
                self._resume(wait, wait.predicate() if wait.predicate is not None else True)

    def _settle(self) -> None:
        """With no token held and a driver waiting, move time to the earliest deadline and wake what is due."""
        if self._running > 0:
            return
        if self._check_predicates():
            return
        if not any(w.driver for w in self._waits):
            return  # between a driver's steps time stands still, whatever the world's actors wait for
        deadlines = [w.deadline for w in self._waits if w.deadline is not None]
        if not deadlines:
            return  # nothing will ever happen by itself: only an outside call (a test, the admin API) moves on
        self._now = max(self._now, min(deadlines))
        self._wake_due()
