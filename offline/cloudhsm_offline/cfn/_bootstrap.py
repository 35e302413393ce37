"""Worker bootstrap run as a script in a Lambda-like subprocess (stdlib only, never imported).

Protocol: one JSON request per line on stdin, one JSON result per line on the file descriptor named
by ``OFFLINE_LAMBDA_RESULT_FD``. After each invocation a sentinel line is written to stdout and
stderr so the parent knows it has read every log line of that invocation.

When the modelled clock runs faster than real time, this process replaces ``time.sleep``,
``time.time``, ``time.monotonic`` (and the interval of ``threading.Timer``) with modelled versions:
the simulator compresses the sandbox clock, the handler code is unchanged.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

SENTINEL = "\x00offline-lambda-end "

_REAL_SLEEP = time.sleep
_REAL_MONOTONIC = time.monotonic
_REAL_TIME = time.time
_REAL_TIMER = threading.Timer


class _ClockState:
    """Modelled clock: ``model = model_at + (real_monotonic - real_at) * speed``."""

    speed = 1.0
    model_at = _REAL_TIME()
    real_at = _REAL_MONOTONIC()

    @classmethod
    def sync(cls, snapshot: dict[str, float]) -> None:
        """Adopt the parent's clock (CLOCK_MONOTONIC is shared by all processes on the host)."""
        cls.speed = float(snapshot["speed"])
        cls.model_at = float(snapshot["model_now"])
        cls.real_at = float(snapshot["real_monotonic"])

    @classmethod
    def now(cls) -> float:
        """Modelled epoch seconds."""
        return cls.model_at + (_REAL_MONOTONIC() - cls.real_at) * cls.speed


def _modelled_time() -> float:
    return _ClockState.now()


def _modelled_monotonic() -> float:
    return _ClockState.now()


def _modelled_sleep(seconds: float) -> None:
    if seconds > 0:
        _REAL_SLEEP(seconds / _ClockState.speed)


class _ModelledTimer(_REAL_TIMER):
    """A ``threading.Timer`` whose interval is modelled seconds."""

    def __init__(self, interval: float, function: Any, args: Any = None, kwargs: Any = None) -> None:
        super().__init__(interval / _ClockState.speed, function, args, kwargs)


def _compress_time(speed: float) -> None:
    if speed == 1.0:
        return
    time.sleep = _modelled_sleep  # type: ignore[assignment]
    time.time = _modelled_time
    time.monotonic = _modelled_monotonic
    threading.Timer = _ModelledTimer  # type: ignore[misc]


class LambdaContext:
    """The context object the Python Lambda runtime passes to handlers."""

    def __init__(self, request: dict[str, Any]) -> None:
        ctx = request["context"]
        self.function_name: str = ctx["function_name"]
        self.function_version: str = ctx["function_version"]
        self.invoked_function_arn: str = ctx["invoked_function_arn"]
        self.memory_limit_in_mb: str = str(ctx["memory_limit_in_mb"])
        self.aws_request_id: str = ctx["aws_request_id"]
        self.log_group_name: str = ctx["log_group_name"]
        self.log_stream_name: str = ctx["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline: float = float(ctx["deadline"])

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the modelled deadline."""
        return max(0, int((self._deadline - _ClockState.now()) * 1000))


def _emit(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, default=repr) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _end_marker(request_id: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        stream.write("\n" + SENTINEL + request_id + "\n")
        stream.flush()


class _LambdaLogFilter:
    """Adds ``aws_request_id`` to records as the Lambda runtime's root handler does."""

    request_id = ""

    def filter(self, record: Any) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_root_logger() -> _LambdaLogFilter:
    flt = _LambdaLogFilter()
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    # Lambda sends each record as one log event; here each record ends with a newline instead.
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(flt)
    logging.getLogger().addHandler(handler)
    return flt


def main() -> None:
    """Serve invocations until stdin closes."""
    result_fd = int(os.environ.pop("OFFLINE_LAMBDA_RESULT_FD"))
    speed = float(os.environ.pop("OFFLINE_LAMBDA_CLOCK_SPEED", "1"))
    extra_paths = [p for p in os.environ.pop("OFFLINE_LAMBDA_SYS_PATH", "").split(os.pathsep) if p]
    sys.path[:0] = extra_paths
    _compress_time(speed)
    log_filter = _install_root_logger()
    _ClockState.sync(json.loads(os.environ.pop("OFFLINE_LAMBDA_CLOCK")))
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    handler: Any = None
    init_error: dict[str, Any] | None = None
    started = _REAL_MONOTONIC()
    try:  # the Init phase: import the handler module once per execution environment
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is an init error, as in Lambda
        traceback.print_exc()
        init_error = {
            "errorType": "Runtime.ImportModuleError" if isinstance(exc, ImportError) else type(exc).__name__,
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
        }
    _end_marker("init")
    _emit(result_fd, {"ready": True, "init_seconds": _REAL_MONOTONIC() - started, "init_error": init_error})
    for line in sys.stdin:
        request = json.loads(line)
        _ClockState.sync(request["clock"])
        request_id = request["context"]["aws_request_id"]
        log_filter.request_id = request_id
        message: dict[str, Any] = {"request_id": request_id}
        if init_error is not None:
            message["error"] = init_error
            message["init_failed"] = True
        else:
            try:
                message["result"] = handler(request["event"], LambdaContext(request))
            except Exception as exc:  # noqa: BLE001 - reported as the invocation's error
                traceback.print_exc()
                message["error"] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        _end_marker(request_id)
        _emit(result_fd, message)


if __name__ == "__main__":
    main()
