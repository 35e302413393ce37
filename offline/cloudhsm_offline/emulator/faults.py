"""Fault injection: throttling, internal failures, access denial, latency and dropped connections."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudhsm_offline.emulator.errors import (
    AccessDeniedError,
    ApiError,
    InternalFailureError,
    ThrottlingError,
)

COUNTED_KINDS = ("drop_next", "throttle_next", "fail_next")


@dataclass
class _Counted:
    kind: str
    remaining: int
    operation: str | None


@dataclass
class _RateLimit:
    rps: float
    burst: float
    operation: str | None
    tokens: float
    updated: float | None = None

    def refill(self, now: float) -> bool:
        """Add the tokens earned since the last call; tell whether one is available."""
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rps)
        self.updated = now
        return self.tokens >= 1.0


@dataclass
class _Latency:
    seconds: float
    operation: str | None


@dataclass(frozen=True)
class Decision:
    """What the server does with one call: wait ``latency`` real seconds, then drop, fail or serve it."""

    latency: float = 0.0
    drop: bool = False
    error: ApiError | None = None


def _applies(scope: str | None, operation: str) -> bool:
    return scope is None or scope == operation


@dataclass
class FaultPlan:
    """The faults armed on an emulator; every method is thread-safe and may be called while it serves.

    Checked per call in this order: dropped connection, throttle-next, internal failure, rate limit,
    access denied. Counted faults (``*_next``) are consumed only by the calls they hit.
    """

    _counted: list[_Counted] = field(default_factory=list)
    _rates: list[_RateLimit] = field(default_factory=list)
    _latencies: list[_Latency] = field(default_factory=list)
    _denied: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Answer the next ``n`` calls (of ``operation``, or any) with ThrottlingException."""
        return self._count("throttle_next", n, operation)

    def fail_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Answer the next ``n`` calls with CloudHsmInternalFailureException (HTTP 500)."""
        return self._count("fail_next", n, operation)

    def drop_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Close the connection without a response on the next ``n`` calls."""
        return self._count("drop_next", n, operation)

    def throttle_above_rate(self, rps: float, operation: str | None = None, burst: float | None = None) -> FaultPlan:
        """Throttle calls beyond ``rps`` per modelled second (token bucket of ``burst``, default max(1, rps))."""
        if rps <= 0:
            raise ValueError("rps must be positive")
        size = max(1.0, rps) if burst is None else float(burst)
        if size < 1:
            raise ValueError("burst must be at least 1")
        with self._lock:
            self._rates.append(_RateLimit(rps=float(rps), burst=size, operation=operation, tokens=size))
        return self

    def deny(self, operation: str) -> FaultPlan:
        """Answer every call of ``operation`` with CloudHsmAccessDeniedException."""
        with self._lock:
            self._denied.add(operation)
        return self

    def allow(self, operation: str) -> FaultPlan:
        """Undo ``deny(operation)``."""
        with self._lock:
            self._denied.discard(operation)
        return self

    def add_latency(self, seconds: float, operation: str | None = None) -> FaultPlan:
        """Delay every call (of ``operation``, or any) by ``seconds`` of real time; rules add up."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latencies.append(_Latency(seconds=float(seconds), operation=operation))
        return self

    def clear(self) -> FaultPlan:
        """Disarm every fault."""
        with self._lock:
            self._counted.clear()
            self._rates.clear()
            self._latencies.clear()
            self._denied.clear()
        return self

    def apply(self, spec: Mapping[str, Any]) -> FaultPlan:
        """Arm faults from JSON-like data, e.g. ``{"clear": true, "throttle_next": {"n": 2}, "deny": ["X"]}``.

        Keys: clear, throttle_next / fail_next / drop_next ({n, operation}), throttle_above_rate
        ({rps, operation, burst}), latency ({seconds, operation}), deny / allow (operation names).
        Each value may be one item or a list of them.
        """
        unknown = set(spec) - {"clear", *COUNTED_KINDS, "throttle_above_rate", "latency", "deny", "allow"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        for kind in COUNTED_KINDS:
            for item in _items(spec.get(kind)):
                self._count(kind, int(item["n"]), item.get("operation"))
        for item in _items(spec.get("throttle_above_rate")):
            burst = item.get("burst")
            self.throttle_above_rate(float(item["rps"]), item.get("operation"), None if burst is None else float(burst))
        for item in _items(spec.get("latency")):
            self.add_latency(float(item["seconds"]), item.get("operation"))
        for name in _items(spec.get("deny")):
            self.deny(str(name))
        for name in _items(spec.get("allow")):
            self.allow(str(name))
        return self

    def describe(self) -> dict[str, Any]:
        """The armed faults, in the shape ``apply`` accepts."""
        with self._lock:
            described: dict[str, Any] = {
                kind: [{"n": c.remaining, "operation": c.operation} for c in self._counted if c.kind == kind]
                for kind in COUNTED_KINDS
            }
            described["throttle_above_rate"] = [
                {"rps": r.rps, "burst": r.burst, "operation": r.operation} for r in self._rates
            ]
            described["latency"] = [{"seconds": lat.seconds, "operation": lat.operation} for lat in self._latencies]
            described["deny"] = sorted(self._denied)
            return described

    def decide(self, operation: str, now: float, principal: str, resource: str = "*") -> Decision:
        """Decide the fate of one call to ``operation`` at modelled time ``now``, consuming counted faults."""
        with self._lock:
            latency = sum(lat.seconds for lat in self._latencies if _applies(lat.operation, operation))
            if self._consume("drop_next", operation):
                return Decision(latency=latency, drop=True)
            if self._consume("throttle_next", operation):
                return Decision(latency=latency, error=ThrottlingError("Rate exceeded"))
            if self._consume("fail_next", operation):
                return Decision(
                    latency=latency,
                    error=InternalFailureError("An internal error occurred (injected by the emulator)."),
                )
            limits = [r for r in self._rates if _applies(r.operation, operation)]
            available = [limit.refill(now) for limit in limits]  # refill every bucket, no short-circuit
            if not all(available):
                return Decision(latency=latency, error=ThrottlingError("Rate exceeded"))
            for limit in limits:
                limit.tokens -= 1.0
            if operation in self._denied:
                action = f"cloudhsm:{operation}"
                return Decision(
                    latency=latency,
                    error=AccessDeniedError(
                        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
                        f"because no identity-based policy allows the {action} action"
                    ),
                )
            return Decision(latency=latency)

    def _count(self, kind: str, n: int, operation: str | None) -> FaultPlan:
        if n < 0:
            raise ValueError("n must not be negative")
        with self._lock:
            if n:
                self._counted.append(_Counted(kind=kind, remaining=n, operation=operation))
        return self

    def _consume(self, kind: str, operation: str) -> bool:
        for counted in self._counted:
            if counted.kind == kind and _applies(counted.operation, operation):
                counted.remaining -= 1
                if counted.remaining <= 0:
                    self._counted.remove(counted)
                return True
        return False


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
