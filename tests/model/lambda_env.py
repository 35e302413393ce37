"""One Lambda execution environment for the model: the real handler in its own process, on modelled time.

Lambda runs each concurrent invocation in its own execution environment and reuses a warm one for later
invocations (AWS Lambda Developer Guide, "Lambda execution environment lifecycle"). The model runs the
handler here, in a spawned process, one invocation at a time, so the handler's module state lives as it
would in one warm environment, and a timeout restarts it (the guide: after a timeout Lambda resets the
environment: the next invocation is a cold start, here a fresh import).

Time in this process is the model's: ``time.time``/``time.monotonic`` read the shared clock,
``time.sleep`` advances it, and ``threading.Timer`` (crhelper's timeout guard) fires when the clock passes
its due time. When the clock passes the invocation's deadline the invocation is killed (``LambdaTimeout``,
a BaseException the handler does not catch) and no later call or response of it gets through. Nothing
here reads the handler's internals: the handler is a string, the rest is boto3's event hooks.

Faults injected per invocation (the CloudHSM ones are armed on the emulator by the parent):
- ``{"kind": "error", "service": "ssm"|"events", "operation": name|None, "code": ..., "n": k}``: the next
  k attempts answer that error (as SSM and EventBridge would, JSON protocol), botocore retries as usual;
- ``{"kind": "pause", "at": k | "operation": name}``: the invocation stops before that attempt while the
  parent runs another invocation in another environment (a true overlap), then goes on;
- ``{"kind": "slow", "at": k | "operation": name, "seconds": s, "when": "before"|"after"}``: the k-th
  AWS call attempt (or the first of that operation) takes s modelled seconds before it reaches the
  service ("before": not applied if the invocation dies meanwhile) or after the service applied it
  ("after": applied, then the answer comes late or never).
"""

from __future__ import annotations

import importlib
import json
import mmap
import os
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

HANDLER_PACKAGES = ("cloudhsm_backup_restore", "crhelper")
CALL_SECONDS = 0.01
"""Modelled duration of every AWS call attempt (so successive calls have distinct times)."""
_REAL_SLEEP = time.sleep
_REAL_MONOTONIC = time.monotonic


class LambdaTimeout(BaseException):
    """The invocation ran past its deadline: Lambda stops it here."""


class SharedValue(Protocol):
    """What the clock needs from the shared double (MappedClock)."""

    @property
    def value(self) -> float: ...

    @value.setter
    def value(self, seconds: float) -> None: ...


class VirtualTime:
    """Modelled time of this process: shared with the parent (the emulator reads the same value)."""

    def __init__(self, shared: SharedValue) -> None:
        self.shared = shared
        self.timers: list[VirtualTimer] = []
        self.deadline: float | None = None
        self.dead = False

    def now(self) -> float:
        return float(self.shared.value)

    def check_alive(self) -> None:
        if self.dead:
            raise LambdaTimeout

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: fire due timers in order, then die if the deadline passed."""
        self.check_alive()
        target = self.now() + max(0.0, float(seconds))
        while True:
            due = [t for t in self.timers if t.due is not None and t.due <= target]
            if self.deadline is not None:
                due = [t for t in due if t.due is not None and t.due < self.deadline]
            if not due:
                break
            timer = min(due, key=lambda t: t.due or 0.0)
            self.timers.remove(timer)
            self.shared.value = max(self.now(), timer.due or 0.0)
            timer.fire()
            self.check_alive()
        if self.deadline is not None and target >= self.deadline:
            self.shared.value = max(self.now(), self.deadline)
            self.dead = True
            raise LambdaTimeout
        self.shared.value = max(self.now(), target)


_CLOCKS: list[VirtualTime] = []


def _clock() -> VirtualTime:
    assert _CLOCKS, "install() first"
    return _CLOCKS[0]


class VirtualTimer:
    """threading.Timer on modelled time: runs its function in the thread that lets the due time pass."""

    def __init__(
        self,
        interval: float,
        function: Callable[..., Any],
        args: Any = None,
        kwargs: Any = None,
    ) -> None:
        self.interval = float(interval)
        self.function = function
        self.args = list(args or [])
        self.kwargs = dict(kwargs or {})
        self.due: float | None = None
        self.daemon = True
        self.name = "VirtualTimer"
        self.fired = False

    def start(self) -> None:
        self.due = _clock().now() + max(0.0, self.interval)
        _clock().timers.append(self)

    def cancel(self) -> None:
        if self in _clock().timers:
            _clock().timers.remove(self)

    def fire(self) -> None:
        self.fired = True
        self.function(*self.args, **self.kwargs)

    def is_alive(self) -> bool:
        return self in _clock().timers

    def join(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the timer runs in the thread that advances the clock."""


class Faults:
    """The faults of the current invocation (see the module docstring) and its call counter."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []
        self.attempts = 0
        self.log: list[str] = []

    def reset(self, specs: list[dict[str, Any]]) -> None:
        self.specs = [dict(s) for s in specs]
        self.attempts = 0
        self.log = []

    def slow(self, operation: str, when: str) -> float:
        """Seconds this attempt is delayed ``when`` (consumes the matching spec)."""
        for spec in self.specs:
            if spec.get("kind") != "slow" or spec.get("when", "before") != when or spec.get("used"):
                continue
            if spec.get("operation") == operation or ("operation" not in spec and spec.get("at") == self.attempts):
                spec["used"] = True
                return float(spec["seconds"])
        return 0.0

    def pause(self, operation: str) -> bool:
        """Whether the invocation stops before this attempt until the parent resumes it (an overlap)."""
        for spec in self.specs:
            if spec.get("kind") != "pause" or spec.get("used"):
                continue
            if spec.get("operation") == operation or ("operation" not in spec and spec.get("at") == self.attempts):
                spec["used"] = True
                return True
        return False

    def error(self, service: str, operation: str) -> dict[str, Any] | None:
        for spec in self.specs:
            if spec.get("kind") != "error" or spec.get("service") != service or int(spec.get("n", 1)) <= 0:
                continue
            if spec.get("operation") in (None, operation):
                spec["n"] = int(spec.get("n", 1)) - 1
                return spec
        return None


FAULTS = Faults()


class Channel:
    """The pipe to the parent: JSON lines in on stdin, out on a copy of the original stdout."""

    def __init__(self) -> None:
        self.replies: Any = None

    def send(self, message: dict[str, Any]) -> None:
        self.replies.write(json.dumps(message) + "\n")

    def receive(self) -> dict[str, Any]:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit(0)
        message: dict[str, Any] = json.loads(line)
        return message

    def pause(self) -> None:
        """Tell the parent this invocation stopped (it runs another meanwhile) and wait for ``resume``."""
        self.send({"paused": True})
        message = self.receive()
        assert message.get("op") == "resume", message


CHANNEL = Channel()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _service_and_operation(event_name: str) -> tuple[str, str]:
    parts = event_name.split(".")
    return (parts[1] if len(parts) > 1 else ""), (parts[2] if len(parts) > 2 else "")


def _before_send(request: Any, event_name: str = "", **_: Any) -> Any:
    """Every AWS call attempt: dead invocations send nothing; each attempt takes modelled time; faults."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    clock = _clock()
    clock.check_alive()
    service, operation = _service_and_operation(event_name)
    if FAULTS.pause(operation):
        CHANNEL.pause()
        clock.check_alive()
    delay = FAULTS.slow(operation, "before")
    FAULTS.attempts += 1
    FAULTS.log.append(f"{service}.{operation}")
    clock.advance(CALL_SECONDS + delay)
    spec = FAULTS.error(service, operation)
    if spec is None:
        return None
    code = str(spec.get("code", "ThrottlingException"))
    status = 400
    body = json.dumps({"__type": code, "message": f"{code} (injected by the model)"}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "model-injected"}
    fields = HTTPHeaders()
    for key, value in headers.items():
        fields[key] = value
    return AWSResponse(request.url, status, fields, _Raw(body))


def _after_attempt(event_name: str = "", **_: Any) -> None:
    """After an attempt was answered: a slow answer (the service applied the call already)."""
    _service, operation = _service_and_operation(event_name)
    delay = FAULTS.slow(operation, "after")
    if delay:
        _clock().advance(delay)


class Context:
    """The Lambda context object (the fields the Python runtime provides), its remaining time on the model's clock."""

    def __init__(self, function_name: str, function_arn: str, memory: int, deadline: float, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = str(memory)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "model"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - _clock().now()) * 1000))


def install(shared: SharedValue) -> None:
    """Put this process on modelled time and hook boto3; before the handler is imported."""
    _CLOCKS[:] = [VirtualTime(shared)]
    time.time = lambda: _clock().now()
    time.sleep = lambda seconds: _clock().advance(float(seconds))
    base = _clock().now()
    time.monotonic = lambda: 1000.0 + _clock().now() - base
    threading.Timer = VirtualTimer  # type: ignore[misc,assignment]
    import boto3

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-send", _before_send)
    boto3.DEFAULT_SESSION.events.register("needs-retry", _after_attempt)


def load(handler: str) -> Callable[[dict[str, Any], Any], Any]:
    """Import the handler afresh (a cold start): every module of the handler's packages is dropped first."""
    for name in list(sys.modules):
        if name.split(".")[0] in HANDLER_PACKAGES:
            del sys.modules[name]
    module_name, function = handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    return getattr(module, function)  # type: ignore[no-any-return]


def invoke(entry: Callable[[dict[str, Any], Any], Any], message: dict[str, Any]) -> dict[str, Any]:
    """One invocation: returns how it ended (returned, error, timeout) and the calls it attempted."""
    clock = _clock()
    clock.dead = False
    clock.timers.clear()
    clock.deadline = float(message["deadline"])
    FAULTS.reset(list(message.get("faults", [])))
    context = Context(
        message["function_name"],
        message["function_arn"],
        int(message["memory"]),
        clock.deadline,
        message["invocation_id"],
    )
    outcome, detail = "returned", ""
    try:
        entry(message["event"], context)
    except LambdaTimeout:
        outcome = "timeout"
    except Exception as error:
        outcome, detail = "error", "".join(traceback.format_exception_only(type(error), error)).strip()
    finally:
        if clock.dead:
            outcome = "timeout"
        clock.deadline = None
        clock.timers.clear()  # the environment is frozen between invocations: armed timers do not fire
        clock.dead = False
    return {"outcome": outcome, "detail": detail[:2000], "attempts": FAULTS.log}


class MappedClock:
    """The shared double: 8 bytes of a file both processes map (one writer at a time: the running side)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "r+b")  # noqa: SIM115 - mapped for the process's life
        self._map = mmap.mmap(self._file.fileno(), 8)

    @property
    def value(self) -> float:
        return float(struct.unpack("d", self._map[:8])[0])

    @value.setter
    def value(self, seconds: float) -> None:
        self._map[:8] = struct.pack("d", seconds)


def serve(clock_path: str, handler: str, log_path: str) -> None:
    """The child's main loop: JSON lines on stdin (load, invoke, stop), one JSON line answered for each."""
    CHANNEL.replies = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - the child's stdout/stderr for its whole life
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    install(MappedClock(clock_path))
    entry = load(handler)
    CHANNEL.send({"ready": True})
    while True:
        message = CHANNEL.receive()
        op = message.get("op")
        if op == "stop":
            return
        if op == "load":
            entry = load(handler)
            reply: dict[str, Any] = {"loaded": True}
        else:
            print(f"--- invoke {message['invocation_id']} {message['event'].get('RequestType')}", flush=True)
            reply = invoke(entry, message)
        CHANNEL.send(reply)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3])
