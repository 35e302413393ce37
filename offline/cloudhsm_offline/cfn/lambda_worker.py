"""One Lambda execution environment (a worker subprocess running the bootstrap) and the records of its invocations."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cloudhsm_offline.clock import SimClock

if TYPE_CHECKING:
    from cloudhsm_offline.cfn.lambda_runtime import LambdaFunction

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
SENTINEL = "\x00offline-lambda-end "


@dataclass
class LogLine:
    """One line the function wrote (stream ``stdout``/``stderr``) or the platform logged (``platform``)."""

    request_id: str
    stream: str
    text: str
    modelled: float
    real: float


@dataclass
class InvocationRecord:
    """What happened in one invocation (one attempt)."""

    request_id: str
    event: dict[str, Any]
    source: str
    attempt: int
    cold: bool = False
    init_seconds: float | None = None
    start_modelled: float = 0.0
    end_modelled: float | None = None
    start_real: float = 0.0
    end_real: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    max_memory_mb: int | None = None
    worker_pid: int | None = None
    logs: list[LogLine] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The event's RequestType (or ``?``)."""
        return str(self.event.get("RequestType", "?"))

    @property
    def modelled_seconds(self) -> float | None:
        """Modelled duration, once finished."""
        return None if self.end_modelled is None else self.end_modelled - self.start_modelled

    @property
    def real_seconds(self) -> float | None:
        """Real duration, once finished."""
        return None if self.end_real is None else self.end_real - self.start_real

    def log_text(self) -> str:
        """All captured lines joined with newlines."""
        return "\n".join(line.text for line in self.logs)


class Invocation:
    """Handle on an asynchronous invocation and its retries."""

    def __init__(self, event: dict[str, Any], source: str) -> None:
        self.event = event
        self.source = source
        self.attempts: list[InvocationRecord] = []
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        """True once the last attempt finished (retries included)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (real seconds) until done; True if done."""
        return self._done.wait(timeout)

    @property
    def record(self) -> InvocationRecord | None:
        """The latest attempt."""
        return self.attempts[-1] if self.attempts else None


def runtime_dir_for(packages: Iterable[str], into: Path) -> Path:
    """Make ``into`` a directory of symlinks to the installed top-level ``packages`` (a runtime layer)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = into / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return into


def clock_snapshot(clock: SimClock) -> dict[str, float]:
    """The clock as a worker adopts it: modelled now, the matching real monotonic time, speed."""
    return {"model_now": clock.now(), "real_monotonic": time.monotonic(), "speed": clock.speed}


def iso_timestamp(epoch: float) -> str:
    """Epoch seconds as Lambda prints them in platform lines."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class Worker:
    """One execution environment: a subprocess running the bootstrap."""

    def __init__(self, function: LambdaFunction, number: int) -> None:
        self.function = function
        self.log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        read_fd, write_fd = os.pipe()
        env = function.worker_environment(self.log_stream)
        env["OFFLINE_LAMBDA_RESULT_FD"] = str(write_fd)
        env["OFFLINE_LAMBDA_CLOCK"] = json.dumps(clock_snapshot(function.clock))
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap
            [function.python, "-I", "-S", "-u", str(BOOTSTRAP)],
            cwd=function.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self.number = number
        self.version = function.version
        self.results: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._current: InvocationRecord | None = None
        self._markers: dict[str, set[str]] = {}
        self._lock = threading.Condition()
        self.init_seconds: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.init_logs: list[str] = []
        self._init_logged = False
        self._threads = [
            threading.Thread(target=self._read_results, args=(os.fdopen(read_fd, "rb"),), daemon=True),
            threading.Thread(target=self._read_stream, args=("stdout", self.proc.stdout), daemon=True),
            threading.Thread(target=self._read_stream, args=("stderr", self.proc.stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float) -> None:
        """Wait for the Init phase (importing the handler) to finish; real seconds (compute is not compressed)."""
        try:
            message = self.results.get(timeout=timeout)
        except queue.Empty:
            message = None
        if message is None:
            self.kill()
            self.init_error = {"errorType": "Runtime.InitTimeout", "errorMessage": "Init phase timed out"}
            return
        self.init_seconds = float(message.get("init_seconds") or 0.0)
        self.init_error = message.get("init_error")
        with self._lock:
            self._lock.wait_for(lambda: len(self._markers.get("init", ())) >= 2, timeout=2.0)
            self._markers.pop("init", None)
            self._init_logged = True

    def _read_results(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in pipe:
                self.results.put(json.loads(raw))
        self.results.put(None)

    def _read_stream(self, name: str, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        with pipe:
            for raw in pipe:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    record = self._current
                    if text.startswith(SENTINEL):
                        self._markers.setdefault(text[len(SENTINEL) :], set()).add(name)
                        self._lock.notify_all()
                        continue
                if not text:
                    continue  # blank lines (e.g. the newline the bootstrap puts before its end marker)
                if record is not None:
                    self.function.log(record, name, text)
                elif not self.initialised_logs_done():
                    self.init_logs.append(text)
                else:
                    self.function.orphan_lines.append(f"[worker {self.number} {name}] {text}")

    def initialised_logs_done(self) -> bool:
        """True once both streams passed the Init phase's end marker."""
        return self._init_logged or len(self._markers.get("init", ())) >= 2

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def run(self, record: InvocationRecord, deadline_modelled: float) -> dict[str, Any] | None:
        """Run one invocation; None when it ran past its deadline (the worker is then killed)."""
        function = self.function
        with self._lock:
            self._current = record
        request = {
            "event": record.event,
            "context": function.context_fields(record.request_id, deadline_modelled, self.log_stream),
            "clock": clock_snapshot(function.clock),
        }
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(request) + "\n").encode())
            stdin.flush()
        except OSError:
            return {"error": {"errorType": "Runtime.ExitError", "errorMessage": "worker is gone"}}
        real_left = max(0.0, function.clock.real_seconds(deadline_modelled - function.clock.now()))
        try:
            message = self.results.get(timeout=real_left)
        except queue.Empty:
            message = None
        if message is None and self.alive():
            self.kill()
            return None
        if message is None:
            self.proc.wait()
            return {
                "error": {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {record.request_id} Error: Runtime exited with error: "
                    f"exit status {self.proc.returncode}",
                },
            }
        with self._lock:
            self._lock.wait_for(lambda: len(self._markers.get(record.request_id, ())) >= 2, timeout=2.0)
            self._markers.pop(record.request_id, None)
            self._current = None
        return message

    def memory_high_water_mb(self) -> int | None:
        """Peak resident memory of the worker (VmHWM), Linux only."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except OSError:
            return None
        return None

    def kill(self) -> None:
        """Terminate the process at once."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """Close stdin and let the process exit; kill it if it lingers."""
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
