"""Worker bootstrap run as a script in a Lambda-like subprocess (stdlib only, never imported).

Protocol. Parent to worker, one JSON object per line on stdin: ``{"invoke": request}`` or
``{"advance": now}``. Worker to parent, one per line on the file descriptor ``OFFLINE_LAMBDA_RESULT_FD``:
``{"ready": ...}`` after the Init phase, ``{"idle": until}`` when every thread of the invocation waits
on the modelled clock (``until`` is the earliest wake-up), and the invocation's result. After each
invocation a sentinel line goes to stdout and stderr so the parent knows it has every log line.

Time. ``time.sleep``, ``time.time``, ``time.monotonic`` and ``threading.Timer`` are replaced before the
handler is imported: the worker's time is the world's virtual clock, moved only by ``advance``
messages. A sleep hands control back to the world (the ``idle`` message) instead of sleeping for real,
so real compute takes no modelled time. The handler code is unchanged.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any

SENTINEL = "\x00offline-lambda-end "

_REAL_MONOTONIC = time.monotonic
_RESULT_FD = -1


def _emit(message: dict[str, Any]) -> None:
    data = (json.dumps(message, default=repr) + "\n").encode()
    while data:
        written = os.write(_RESULT_FD, data)
        data = data[written:]


class _Wake:
    """One thread waiting on the modelled clock until ``until`` (or cancelled)."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.fired = False
        self.event = threading.Event()


class _VirtualTime:
    """The worker's side of the world's clock: counts its running threads, reports when none runs."""

    def __init__(self) -> None:
        self.now = 0.0
        self.running = 0
        self.invoked = False
        self.lock = threading.Lock()
        self.waits: list[_Wake] = []

    def _stopped(self) -> None:
        """A thread stopped running (under the lock): with none left, hand control back to the world."""
        self.running -= 1
        if self.running == 0 and self.invoked:
            _emit({"idle": min((w.until for w in self.waits), default=None)})

    def _fire_due(self) -> None:
        for wake in [w for w in self.waits if w.until <= self.now]:
            self.waits.remove(wake)
            wake.fired = True
            self.running += 1
            wake.event.set()

    def register(self, until: float) -> _Wake:
        """A wake-up for a thread that is not running yet (a Timer)."""
        wake = _Wake(until)
        with self.lock:
            self.waits.append(wake)
            self._fire_due()
        return wake

    def block(self, wake: _Wake, running: bool) -> bool:
        """Wait until ``wake`` fires (True) or is cancelled (False); a running caller stops running."""
        with self.lock:
            if running:
                if wake not in self.waits and not wake.fired:
                    self.waits.append(wake)
                self._fire_due()
                if not wake.fired:
                    self._stopped()
        wake.event.wait()
        return wake.fired

    def cancel(self, wake: _Wake) -> None:
        with self.lock:
            if wake in self.waits:
                self.waits.remove(wake)
                wake.event.set()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.block(_Wake(self.now + seconds), running=True)

    def advance(self, now: float) -> None:
        with self.lock:
            self.now = max(self.now, now)
            self._fire_due()

    def begin(self, now: float) -> None:
        with self.lock:
            self.invoked = True
            self.running += 1
            self.now = max(self.now, now)
            self._fire_due()

    def end(self) -> None:
        with self.lock:
            self.invoked = False
            self.running -= 1

    def thread_done(self) -> None:
        with self.lock:
            self._stopped()


_TIME = _VirtualTime()


class _ModelledTimer(threading.Thread):
    """``threading.Timer`` on the modelled clock: fires when the world's time reaches it."""

    def __init__(self, interval: float, function: Any, args: Any = None, kwargs: Any = None) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.function = function
        self.args = args if args is not None else []
        self.kwargs = kwargs if kwargs is not None else {}
        self.finished = threading.Event()
        self._wake: _Wake | None = None

    def start(self) -> None:
        self._wake = _TIME.register(_TIME.now + max(0.0, self.interval))
        super().start()

    def cancel(self) -> None:
        if self._wake is not None:
            _TIME.cancel(self._wake)
        self.finished.set()

    def run(self) -> None:
        assert self._wake is not None
        if _TIME.block(self._wake, running=False):
            try:
                self.function(*self.args, **self.kwargs)
            finally:
                _TIME.thread_done()
        self.finished.set()


def _init_error(module_name: str, function_name: str) -> dict[str, Any] | None:
    """The Init phase: import the handler module once per execution environment; the error, if any."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is an init error, as in Lambda
        traceback.print_exc()
        return {
            "errorType": "Runtime.ImportModuleError" if isinstance(exc, ImportError) else type(exc).__name__,
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
        }
    if not callable(getattr(module, function_name, None)):
        return {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
        }
    return None


def _install_virtual_time() -> None:
    time.sleep = _TIME.sleep  # type: ignore[assignment]
    time.time = lambda: _TIME.now
    time.time_ns = lambda: int(_TIME.now * 1e9)
    time.monotonic = lambda: _TIME.now
    threading.Timer = _ModelledTimer  # type: ignore[misc,assignment]


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
        return max(0, int((self._deadline - _TIME.now) * 1000))


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


def _read_stdin(requests: queue.Queue[dict[str, Any] | None]) -> None:
    """Route the parent's messages: clock advances at once (threads may be asleep), requests to main."""
    for line in sys.stdin:
        message = json.loads(line)
        if "advance" in message:
            _TIME.advance(float(message["advance"]))
        else:
            requests.put(message["invoke"])
    requests.put(None)


def main() -> None:
    """Serve invocations until stdin closes."""
    global _RESULT_FD  # noqa: PLW0603 - set once, before any thread starts
    _RESULT_FD = int(os.environ.pop("OFFLINE_LAMBDA_RESULT_FD"))
    _TIME.now = float(os.environ.pop("OFFLINE_LAMBDA_CLOCK"))
    extra_paths = [p for p in os.environ.pop("OFFLINE_LAMBDA_SYS_PATH", "").split(os.pathsep) if p]
    sys.path[:0] = extra_paths
    _install_virtual_time()
    log_filter = _install_root_logger()
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    handler: Any = None
    init_error: dict[str, Any] | None
    started = _REAL_MONOTONIC()
    if not module_name:  # awslambdaric's error type and wording for a handler without a dot
        init_error = {
            "errorType": "Runtime.MalformedHandlerName",
            "errorMessage": f"Bad handler '{function_name}': not enough values to unpack (expected 2, got 1)",
        }
    else:
        init_error = _init_error(module_name, function_name)
        handler = None if init_error else getattr(sys.modules[module_name], function_name)
    _end_marker("init")
    _emit({"ready": True, "init_seconds": _REAL_MONOTONIC() - started, "init_error": init_error})
    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(requests,), daemon=True).start()
    while (request := requests.get()) is not None:
        _TIME.begin(float(request["now"]))
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
        _TIME.end()
        _end_marker(request_id)
        _emit(message)


if __name__ == "__main__":
    main()
