"""The one fault planner of the offline world: what goes wrong with the next call, for any emulated API.

The CloudHSM emulator and the EventBridge/SSM/Lambda gateway each hold a ``FaultPlan`` and consult it per
call. The plan decides only *which* fault hits a call (a ``Decision``); the server that consults it answers
that fault in its own service's words (error code, HTTP status, body), so the wire knowledge stays with
the wire. Counted faults (``*_next``) are consumed only by the calls they hit; ``deny`` holds until ``allow``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DROP, THROTTLE, FAIL, CONFLICT, DENY = "drop", "throttle", "fail", "conflict", "deny"
COUNTED = (DROP, THROTTLE, FAIL, CONFLICT)
"""Checked in this order, then the rate limits, then ``deny``."""
EVERY_KIND = (*COUNTED, "rate", "latency", DENY)
CLOUDHSM_KINDS = (DROP, THROTTLE, FAIL, "rate", "latency", DENY)
"""What the CloudHSM emulator can answer: CloudHSM has no conflict error."""
GATEWAY_KINDS = (THROTTLE, FAIL, CONFLICT, DENY)
"""What the gateway can answer: it neither drops connections nor models rate limits or latency."""
KIND_KEYS = {**{f"{k}_next": k for k in COUNTED}, "throttle_above_rate": "rate", "latency": "latency", DENY: DENY}
"""The ``apply`` keys that arm a fault, each with its kind (``clear`` and ``allow`` arm none)."""


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


@dataclass(frozen=True)
class Decision:
    """What happens to one call: wait ``latency`` modelled seconds, then suffer ``fault`` (None: serve it)."""

    latency: float = 0.0
    fault: str | None = None


def denied_message(principal: str, action: str, resource: str) -> str:
    """IAM's AccessDenied wording for an identity policy that does not allow ``action``."""
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


@dataclass
class FaultPlan:
    """The faults armed on one server; thread-safe, may change while the world runs.

    ``kinds`` is what that server can answer (``CLOUDHSM_KINDS`` for the CloudHSM emulator, ``GATEWAY_KINDS``
    for the gateway); arming anything else is a ValueError.
    """

    kinds: tuple[str, ...] = EVERY_KIND
    _counted: list[_Counted] = field(default_factory=list)
    _rates: list[_RateLimit] = field(default_factory=list)
    _latencies: list[tuple[float, str | None]] = field(default_factory=list)
    _denied: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Throttle the next ``n`` calls (of ``operation``, or any)."""
        return self._count(THROTTLE, n, operation)

    def fail_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Answer the next ``n`` calls with the service's internal error (HTTP 500)."""
        return self._count(FAIL, n, operation)

    def drop_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Close the connection without a response on the next ``n`` calls."""
        return self._count(DROP, n, operation)

    def conflict_next(self, n: int, operation: str | None = None) -> FaultPlan:
        """Answer the next ``n`` calls with the service's conflict error (Lambda: 409)."""
        return self._count(CONFLICT, n, operation)

    def throttle_above_rate(self, rps: float, operation: str | None = None, burst: float | None = None) -> FaultPlan:
        """Throttle calls beyond ``rps`` per modelled second (token bucket of ``burst``, default max(1, rps))."""
        self._supports("rate")
        if rps <= 0:
            raise ValueError("rps must be positive")
        size = max(1.0, rps) if burst is None else float(burst)
        if size < 1:
            raise ValueError("burst must be at least 1")
        with self._lock:
            self._rates.append(_RateLimit(rps=float(rps), burst=size, operation=operation, tokens=size))
        return self

    def deny(self, operation: str) -> FaultPlan:
        """AccessDenied on every call of ``operation`` until ``allow``."""
        self._supports(DENY)
        with self._lock:
            self._denied.add(operation)
        return self

    def allow(self, operation: str) -> FaultPlan:
        """Undo ``deny(operation)``."""
        with self._lock:
            self._denied.discard(operation)
        return self

    def add_latency(self, seconds: float, operation: str | None = None) -> FaultPlan:
        """Delay every call (of ``operation``, or any) by ``seconds`` of modelled time; rules add up."""
        self._supports("latency")
        if seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latencies.append((float(seconds), operation))
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

        Keys: clear, ``<kind>_next`` ({n, operation}) for each counted kind, throttle_above_rate ({rps,
        operation, burst}), latency ({seconds, operation}), deny / allow (operation names); only those of
        the kinds this plan supports. Each value may be one item or a list of them.
        """
        supported = {"clear", "allow", *(key for key, kind in KIND_KEYS.items() if kind in self.kinds)}
        unknown = set(spec) - supported
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        for kind in COUNTED:
            for item in _items(spec.get(f"{kind}_next")):
                self._count(kind, int(item["n"]), item.get("operation"))
        for item in _items(spec.get("throttle_above_rate")):
            burst = item.get("burst")
            self.throttle_above_rate(float(item["rps"]), item.get("operation"), None if burst is None else float(burst))
        for item in _items(spec.get("latency")):
            self.add_latency(float(item["seconds"]), item.get("operation"))
        for name in _items(spec.get(DENY)):
            self.deny(str(name))
        for name in _items(spec.get("allow")):
            self.allow(str(name))
        return self

    def describe(self) -> dict[str, Any]:
        """The armed faults, in the shape ``apply`` accepts (only the kinds this plan supports)."""
        with self._lock:
            described: dict[str, Any] = {
                f"{kind}_next": [{"n": c.remaining, "operation": c.operation} for c in self._counted if c.kind == kind]
                for kind in COUNTED
                if kind in self.kinds
            }
            if "rate" in self.kinds:
                described["throttle_above_rate"] = [
                    {"rps": r.rps, "burst": r.burst, "operation": r.operation} for r in self._rates
                ]
            if "latency" in self.kinds:
                described["latency"] = [{"seconds": s, "operation": op} for s, op in self._latencies]
            described[DENY] = sorted(self._denied)
            return described

    def decide(self, operation: str, now: float) -> Decision:
        """Decide the fate of one call to ``operation`` at modelled time ``now``, consuming counted faults."""
        with self._lock:
            latency = sum(seconds for seconds, scope in self._latencies if _applies(scope, operation))
            for kind in COUNTED:
                if self._consume(kind, operation):
                    return Decision(latency, kind)
            limits = [r for r in self._rates if _applies(r.operation, operation)]
            available = [limit.refill(now) for limit in limits]  # refill every bucket, no short-circuit
            if not all(available):
                return Decision(latency, THROTTLE)
            for limit in limits:
                limit.tokens -= 1.0
            return Decision(latency, DENY if operation in self._denied else None)

    def _supports(self, kind: str) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r} here (supported: {', '.join(self.kinds)})")

    def _count(self, kind: str, n: int, operation: str | None) -> FaultPlan:
        self._supports(kind)
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


def _applies(scope: str | None, operation: str) -> bool:
    return scope is None or scope == operation


def _items(value: Any) -> Iterable[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
