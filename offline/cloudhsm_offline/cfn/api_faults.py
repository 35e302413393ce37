"""Fault injection for the SSM, EventBridge and Lambda calls that pass the gateway: deny, throttle, fail, conflict.

Like the CloudHSM emulator's FaultPlan: ``deny`` holds until ``allow``; the ``*_next`` faults hit the next ``n``
matching calls. Error codes and statuses are those of each service's botocore model and API reference:
- events (JSON 1.1): AccessDeniedException 400, ThrottlingException 400, InternalException 500,
  ConcurrentModificationException 400;
- ssm (JSON 1.1): AccessDeniedException 400, ThrottlingException 400, InternalServerError 500,
  TooManyUpdates 400;
- lambda (REST-JSON, code in x-amzn-ErrorType): AccessDeniedException 403, TooManyRequestsException 429,
  ServiceException 500, ResourceConflictException 409 ("another operation is in progress").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("deny", "throttle", "fail", "conflict")
ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    "events": {
        "deny": (400, "AccessDeniedException"),
        "throttle": (400, "ThrottlingException"),
        "fail": (500, "InternalException"),
        "conflict": (400, "ConcurrentModificationException"),
    },
    "ssm": {
        "deny": (400, "AccessDeniedException"),
        "throttle": (400, "ThrottlingException"),
        "fail": (500, "InternalServerError"),
        "conflict": (400, "TooManyUpdates"),
    },
    "lambda": {
        "deny": (403, "AccessDeniedException"),
        "throttle": (429, "TooManyRequestsException"),
        "fail": (500, "ServiceException"),
        "conflict": (409, "ResourceConflictException"),
    },
}
SERVICE_PREFIX = {"events": "events", "ssm": "ssm", "lambda": "lambda"}


@dataclass
class _Fault:
    kind: str
    service: str | None
    operation: str | None
    remaining: int | None
    """None: every matching call until cleared (deny)."""

    def matches(self, service: str, operation: str) -> bool:
        return (self.service in (None, service)) and (self.operation in (None, operation))


@dataclass(frozen=True)
class InjectedError:
    """The HTTP answer the gateway sends instead of forwarding the call."""

    status: int
    code: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ApiFaultPlan:
    """Faults armed on the gateway; thread-safe, may change while the world runs."""

    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deny(self, operation: str, service: str | None = None) -> ApiFaultPlan:
        """AccessDenied on every call of ``operation`` (e.g. ``GetParameter``) until ``allow``."""
        return self._add("deny", service, operation, None)

    def allow(self, operation: str) -> ApiFaultPlan:
        """Undo ``deny(operation)``."""
        with self._lock:
            self._faults = [f for f in self._faults if not (f.kind == "deny" and f.operation == operation)]
        return self

    def throttle_next(self, n: int, operation: str | None = None, service: str | None = None) -> ApiFaultPlan:
        """Throttle the next ``n`` matching calls."""
        return self._add("throttle", service, operation, n)

    def fail_next(self, n: int, operation: str | None = None, service: str | None = None) -> ApiFaultPlan:
        """Answer the next ``n`` matching calls with the service's internal error (HTTP 500)."""
        return self._add("fail", service, operation, n)

    def conflict_next(self, n: int, operation: str | None = None, service: str | None = None) -> ApiFaultPlan:
        """Answer the next ``n`` matching calls with the service's conflict error (Lambda: 409)."""
        return self._add("conflict", service, operation, n)

    def clear(self) -> ApiFaultPlan:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()
        return self

    def apply(self, spec: Mapping[str, Any]) -> ApiFaultPlan:
        """Arm from JSON-like data: ``{"deny": ["GetParameter"], "fail_next": {"n": 1, "operation": "DeleteRule"}}``."""
        unknown = set(spec) - {"clear", "deny", "allow", "throttle_next", "fail_next", "conflict_next"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        for name in _items(spec.get("deny")):
            self.deny(str(name))
        for name in _items(spec.get("allow")):
            self.allow(str(name))
        for kind in ("throttle", "fail", "conflict"):
            for item in _items(spec.get(f"{kind}_next")):
                self._add(kind, item.get("service"), item.get("operation"), int(item["n"]))
        return self

    def decide(self, service: str, operation: str, resource: str = "*") -> InjectedError | None:
        """The error to answer this call with (consuming a counted fault), or None to forward it."""
        if service not in ERRORS:
            return None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(service, operation):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return _error(service, fault.kind, operation, resource)
        return None

    def _add(self, kind: str, service: str | None, operation: str | None, n: int | None) -> ApiFaultPlan:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if n is not None and n < 1:
            return self
        with self._lock:
            self._faults.append(_Fault(kind, service, operation, n))
        return self


def _error(service: str, kind: str, operation: str, resource: str) -> InjectedError:
    status, code = ERRORS[service][kind]
    action = f"{SERVICE_PREFIX[service]}:{operation}"
    message = {
        "deny": f"User: arn:aws:sts::000000000000:assumed-role/provider/function is not authorized to perform: "
        f"{action} on resource: {resource} because no identity-based policy allows the {action} action",
        "throttle": "Rate exceeded",
        "fail": "An internal error occurred (injected by the offline gateway).",
        "conflict": "The operation cannot be performed at this time. Another operation is in progress.",
    }[kind]
    if service == "lambda":
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        body = json.dumps({"Type": "User", "message": message}).encode()
    else:
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        body = json.dumps({"__type": code, "message": message}).encode()
    return InjectedError(status, code, {**headers, "x-amzn-RequestId": "offline-gateway-fault"}, body)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
