"""SIGINT and SIGTERM in the CLI: a signal at any instant stops the run cleanly.

The invariant: whenever SIGINT or SIGTERM arrives while ``cli.main`` runs, the world's teardown runs
to completion, and no later signal cuts it short or starts it again; the exit status is 128 + N (N the
first signal); stderr gets one line; with ``--output json`` stdout holds one valid JSON document
saying the run was interrupted.

How, in three rules (only the main thread counts: Python runs signal handlers there, and the blocks
below are no-ops in other threads):

- ``install`` is the first thing ``main`` does, before the heavy modules are imported. From then on
  the handler raises ``Stopped`` in the main thread, once: ``with`` blocks and ``finally`` clauses
  stop what they started. Every later signal is only recorded.
- Inside ``deferred()`` (the world's teardown, writing the report, starting a Lambda worker's
  process) a signal is only recorded; it is raised when the block ends, so what the block does is
  never cut short. ``raising()`` inside it marks the part that may stop at once (the run itself):
  being nested, neither has a gap at its edges in which a signal could skip the teardown.
- A ``Stopped`` that Python could not raise (the handler ran inside a finalizer, which reports the
  exception as unraisable instead) is delivered again.

A process-directed signal may be delivered to any thread that does not block it (signal(7)), and
CPython runs the Python-level handler only when the main thread next executes bytecode
(https://docs.python.org/3/library/signal.html, "Signals and threads"). A main thread blocked in a
lock or ``Event.wait`` is woken by the signal only if the kernel picked that thread; otherwise the
handler waits for the main thread's wait to end (a run under load was seen hung this way, its main
thread in ``Event.wait`` after SIGTERM, with no way to tell which thread took the signal). So
the main thread never blocks longer than ``MAIN_THREAD_SLICE`` at a time: ``wait`` is the one way it
waits on an event. Between slices, in a block that raises, a signal that came is raised again even
if ``Stopped`` was raised before: code that swallowed it (a finalizer, a library catching
``BaseException``) must not leave the run waiting on with its signal spent.

Before ``install`` (the interpreter starting up, imports of the entry module) a signal takes its
default action: nothing exists yet to remove. After ``uninstall`` the run is over and has reported
its status; a late signal no longer changes it.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Handled in this order: once SIGTERM is caught (SigCgt in /proc/PID/status), so is SIGINT."""
MAIN_THREAD_SLICE = 0.1
"""Real seconds the main thread blocks at most before it runs a pending signal handler (see ``wait``)."""
REDELIVERY_SECONDS = 0.05
"""Real seconds after which a ``Stopped`` lost in a finalizer is sent again (see ``_unraisable``)."""


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: unwind (every ``with`` block stops what it started) and exit 128 + N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    """What the handler knows; touched only in the main thread."""

    def __init__(self) -> None:
        self.received: int | None = None
        """The first signal's number, once one came."""
        self.raised = False
        """``Stopped`` was raised (it is raised once per run)."""
        self.modes: list[bool] = []
        """Innermost last: True raises a signal at once, False defers it. Empty: not installed."""
        self.previous: dict[int, Any] = {}
        self.previous_hook: Any = None


_state = _State()


def install() -> None:
    """From now on SIGINT and SIGTERM stop the run (see the module docstring)."""
    _state.received, _state.raised = None, False
    _state.modes = [True]
    _state.previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _state.previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handle)


def uninstall(*, ignore_late: bool) -> None:
    """The run is over: put the previous handlers back, or with ``ignore_late`` ignore later signals."""
    if not _state.modes:
        return
    _state.modes = [False]  # first: nothing raises while the handlers change
    for signum, previous in _state.previous.items():
        signal.signal(signum, signal.SIG_IGN if ignore_late else previous)
    sys.unraisablehook = _state.previous_hook
    _state.modes = []


def stopped_by(exc: BaseException | None) -> str | None:
    """The name of the signal stopping the run: ``exc``'s, else one that came and waits to be raised; or None.

    A bare ``KeyboardInterrupt`` is a SIGINT that came before ``install``.
    """
    if isinstance(exc, Stopped):
        return signal.Signals(exc.signum).name
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT.name
    return None if _state.received is None else signal.Signals(_state.received).name


class _Mode:
    """A block in which signals raise at once (``raising``) or wait for the block's end (``deferred``)."""

    def __init__(self, raising: bool) -> None:
        self._raising = raising

    def __enter__(self) -> None:
        if _state.modes and threading.current_thread() is threading.main_thread():
            _state.modes.append(self._raising)
            _raise_if_due()

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if len(_state.modes) > 1 and threading.current_thread() is threading.main_thread():
            _state.modes.pop()
            _raise_if_due()  # a signal deferred by the block: it replaces whatever the block raised


def deferred() -> _Mode:
    """A block no signal cuts short: one that comes meanwhile is raised as ``Stopped`` when it ends."""
    return _Mode(raising=False)


def raising() -> _Mode:
    """A block (inside ``deferred``) that stops at the first signal, including one deferred before it."""
    return _Mode(raising=True)


def wait(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)``; in the main thread in slices, so a signal always stops it (module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    while not event.wait(min(MAIN_THREAD_SLICE, max(0.0, deadline - time.monotonic()))):
        if _state.modes and _state.modes[-1] and _state.received is not None:  # a stop that was lost
            _state.raised = True
            raise Stopped(_state.received)
        if time.monotonic() >= deadline:
            return False
    return True


def _raise_if_due() -> None:
    if _state.modes and _state.modes[-1] and _state.received is not None and not _state.raised:
        _state.raised = True
        raise Stopped(_state.received)


def _handle(signum: int, _frame: FrameType | None) -> None:
    if _state.received is None:
        _state.received = signum
    _raise_if_due()


def _unraisable(info: Any) -> None:
    """A ``Stopped`` raised inside a finalizer is lost there: have the signal sent again, from outside it.

    Not from here: Python runs a handler as soon as a signal is sent to the process from the main thread,
    which would raise it inside this hook, where it is lost too. A thread sends it a moment later.
    """
    if isinstance(info.exc_value, Stopped) and _state.modes:
        resend = threading.Timer(REDELIVERY_SECONDS, os.kill, (os.getpid(), info.exc_value.signum))
        resend.daemon = True
        resend.start()
        _state.raised = False  # last: a signal that comes meanwhile is not raised in here
        return
    _state.previous_hook(info)
