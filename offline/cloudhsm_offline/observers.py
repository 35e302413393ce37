"""Observers of the world's parts: each part keeps whoever watches it (the timeline, a test) in one ``Listeners``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Listeners(Generic[P]):
    """Listeners called with what a part reports; an observer that fails never changes what it observes."""

    def __init__(self) -> None:
        self._listeners: list[Callable[P, None]] = []

    def add(self, listener: Callable[P, None]) -> None:
        """Call ``listener`` with every later report."""
        self._listeners.append(listener)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Report to every listener."""
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):
                listener(*args, **kwargs)
