"""One Lambda execution environment (a worker subprocess running the bootstrap) and the records of its invocations."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cloudhsm_offline.clock import HANG_GUARD_SECONDS, VirtualClock

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

    def log_text(self) -> str:
        """All captured lines joined with newlines."""
        return "\n".join(line.text for line in self.logs)


class Invocation:
    """Handle on an asynchronous invocation and its retries."""

    def __init__(self, event: dict[str, Any], source: str, clock: VirtualClock) -> None:
        self.clock = clock
        self.event = event
        self.source = source
        self.attempts: list[InvocationRecord] = []
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        """True once the last attempt finished (retries included)."""
        return self._done.is_set()

    def wait(self, timeout: float = HANG_GUARD_SECONDS) -> bool:
        """Wait until done, modelled time moving on meanwhile; True if done (``timeout``: real-seconds hang guard)."""
        return self.clock.wait_for(self._done.is_set, None, hang_guard=max(timeout, HANG_GUARD_SECONDS))

    @property
    def record(self) -> InvocationRecord | None:
        """The latest attempt."""
        return self.attempts[-1] if self.attempts else None


def runtime_dir_for(packages: Iterable[str], into: Path, required: bool = False) -> Path:
    """Make ``into`` a directory of symlinks to the installed top-level ``packages`` (a runtime layer).

    ``required``: a package that is not installed is a ValueError (a layer) instead of left out (the runtime).
    """
    into.mkdir(parents=True, exist_ok=True)
    for name in packages:
        spec = importlib.util.find_spec(name) if name.isidentifier() else None
        if spec is None or spec.origin is None:
            if required:
                raise ValueError(f"layer {name}: no installed package {name!r} to expose")
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = into / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return into


def iso_timestamp(epoch: float) -> str:
    """Epoch seconds as Lambda prints them in platform lines."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


LogSink = Callable[["InvocationRecord", str, str], None]


class Worker:
    """One execution environment: a subprocess running the bootstrap, an actor on the virtual clock.

    The worker holds a clock token while it starts, and from each dispatch until it reports its result,
    except while every thread of it waits on the modelled clock (``idle``): then the clock may move,
    and wakes it with ``advance`` when its earliest wake-up comes.
    """

    def __init__(
        self,
        *,
        python: str,
        code_dir: str,
        env: dict[str, str],
        clock: VirtualClock,
        version: int,
        number: int,
        log: LogSink,
        orphan_lines: list[str],
    ) -> None:
        self.clock = clock
        self._log = log
        self._orphans = orphan_lines
        read_fd, write_fd = os.pipe()
        env = {**env, "OFFLINE_LAMBDA_RESULT_FD": str(write_fd), "OFFLINE_LAMBDA_CLOCK": repr(clock.now())}
        self.log_stream = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._stdin_lock = threading.Lock()
        self._inbox: list[dict[str, Any] | None] = []
        self._holding = True
        self._cancel_wake: Callable[[], None] | None = None
        clock.hold()  # the Init phase runs: time stands still
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap
                [python, "-I", "-S", "-u", str(BOOTSTRAP)],
                cwd=code_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except BaseException:
            self._holding = False
            clock.release()
            raise
        finally:
            os.close(write_fd)
        self.number = number
        self.version = version
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

    # -- the clock ---------------------------------------------------------------------------------

    def _stop_holding(self) -> None:
        if self._holding:
            self._holding = False
            self.clock.release()

    def _wake(self, now: float) -> None:
        """The clock reached this worker's wake-up (called under the clock's lock, a token taken for us)."""
        self._holding = True
        self._cancel_wake = None
        self._send({"advance": now})

    def _send(self, message: dict[str, Any]) -> bool:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            with self._stdin_lock:
                stdin.write((json.dumps(message) + "\n").encode())
                stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def _read_results(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in pipe:
                message = json.loads(raw)
                if "idle" in message:
                    until = message["idle"]
                    if until is not None:  # asleep until then; None: waits for nothing the clock moves
                        self._cancel_wake = self.clock.schedule(float(until), self._wake)
                    self._stop_holding()
                    continue
                self._inbox.append(message)
                self._stop_holding()
        if self._cancel_wake is not None:
            self._cancel_wake()
        self._inbox.append(None)
        self._stop_holding()
        self.clock.notify()

    def _next_message(self, timeout: float | None, hang_guard: float | None = None) -> dict[str, Any] | None:
        """The next result (or None: the process is gone, or ``timeout`` modelled seconds passed)."""
        if hang_guard is None:
            arrived = self.clock.wait_for(lambda: bool(self._inbox), timeout)
        else:
            arrived = self.clock.wait_for(lambda: bool(self._inbox), timeout, hang_guard=hang_guard)
        return self._inbox.pop(0) if arrived else None

    # -- the Init phase and invocations ------------------------------------------------------------

    def wait_ready(self, timeout: float) -> None:
        """Wait for the Init phase (importing the handler) to finish; ``timeout`` real seconds guard a hang."""
        message = self._next_message(None, hang_guard=timeout)
        if message is None:
            self.kill()
            self.init_error = {"errorType": "Runtime.InitTimeout", "errorMessage": "Init phase timed out"}
            return
        self.init_seconds = float(message.get("init_seconds") or 0.0)
        self.init_error = message.get("init_error")
        with self._lock:
            self._lock.wait_for(lambda: len(self._markers.get("init", ())) >= 2, timeout=5.0)
            self._markers.pop("init", None)
            self._init_logged = True

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
                    self._log(record, name, text)
                elif not self.initialised_logs_done():
                    self.init_logs.append(text)
                else:
                    self._orphans.append(f"[worker {self.number} {name}] {text}")

    def initialised_logs_done(self) -> bool:
        """True once both streams passed the Init phase's end marker."""
        return self._init_logged or len(self._markers.get("init", ())) >= 2

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def run(self, record: InvocationRecord, context: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """Run one invocation; None when it ran past its modelled deadline (the worker is then killed)."""
        with self._lock:
            self._current = record
        self.clock.hold()
        self._holding = True
        request = {"event": record.event, "context": context, "now": self.clock.now()}
        if not self._send({"invoke": request}):
            self._stop_holding()
            return {"error": {"errorType": "Runtime.ExitError", "errorMessage": "worker is gone"}}
        message = self._next_message(max(0.0, deadline - self.clock.now()))
        if message is None and self.alive() and self.clock.now() >= deadline:
            self.kill()
            return None
        if message is None:
            self.kill()
            return {
                "error": {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {record.request_id} Error: Runtime exited with error: "
                    f"{_exit_words(self.proc.returncode)}",
                },
            }
        with self._lock:
            self._lock.wait_for(lambda: len(self._markers.get(record.request_id, ())) >= 2, timeout=5.0)
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
                with self._stdin_lock:
                    self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


def _exit_words(returncode: int | None) -> str:
    """Lambda's words for a runtime that exited: "exit status 1", or "signal: killed" for SIGKILL.

    These are the words CloudWatch Logs show for a Lambda runtime that died ("Error: Runtime exited
    with error: signal: killed" on an out-of-memory kill, "exit status 1" on sys.exit(1)), as users
    quote them; the Lambda Developer Guide does not list them. The signal's name is the lower-cased
    strsignal(3) text ("Killed", "Terminated", "Interrupt"), which Lambda's Go runtime also prints.
    """
    if returncode is not None and returncode < 0:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
        return f"signal: {name.lower()}"
    return f"exit status {returncode}"
