"""Lambda runtime emulation: the handler runs in worker subprocesses like Lambda execution environments.

A cold start launches a fresh Python process that imports the handler by its handler string from the
code directory; warm workers are reused; concurrent invocations get separate workers up to a maximum
concurrency. Each invocation gets a Lambda context whose remaining time is computed on the world's
virtual clock, is killed when it runs past its modelled deadline (the worker is replaced), and has
every stdout/stderr line captured. Asynchronous invocations are retried on error as Lambda does.

Time: the worker replaces ``time.sleep``, ``time.time``, ``time.monotonic`` and ``threading.Timer``
with the world's virtual clock before importing the handler (see ``clock.py`` and ``_bootstrap.py``):
a sleep hands control back to the world, and real compute takes no modelled time.

By default the worker sees only the code directory, ``extra_sys_path`` and a runtime directory with
boto3 and its dependencies (like the Lambda Python runtime), so a package that forgot to bundle a
dependency fails to import here as it would in AWS.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cloudhsm_offline import signals
from cloudhsm_offline.clock import HANG_GUARD_SECONDS, VirtualClock
from cloudhsm_offline.lambda_runtime.worker import (
    Invocation,
    InvocationRecord,
    LogLine,
    Worker,
    iso_timestamp,
    runtime_dir_for,
)
from cloudhsm_offline.observers import Listeners

DEFAULT_HANDLER = "cloudhsm_backup_restore.app.handler"
DEFAULT_FUNCTION_NAME = "cloudhsm-backup-restore-provider"
# What the Lambda Python runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
ASYNC_RETRY_DELAYS = (60.0, 120.0)


class LambdaFunction:
    """A Lambda function whose handler runs in worker subprocesses on a shared modelled clock.

    ``sys.path`` in the worker: ``code_dir``, ``extra_sys_path``, a layer of symlinks to the installed
    ``layer_packages`` (e.g. ``("crhelper",)`` for the bare ``handler/`` directory), then a runtime of
    ``runtime_packages`` (boto3 and its dependencies; ``None`` exposes this interpreter's site-packages).
    """

    def __init__(
        self,
        code_dir: str | os.PathLike[str],
        handler: str = DEFAULT_HANDLER,
        *,
        env: Mapping[str, str] | None = None,
        timeout_seconds: float = 300,
        memory_mb: int = 256,
        function_name: str = DEFAULT_FUNCTION_NAME,
        clock: VirtualClock | None = None,
        extra_sys_path: Iterable[str | os.PathLike[str]] = (),
        region: str = "us-east-1",
        account: str = "123456789012",
        max_concurrency: int = 10,
        async_retry_delays: Iterable[float] = ASYNC_RETRY_DELAYS,
        runtime_packages: Iterable[str] | None = RUNTIME_PACKAGES,
        layer_packages: Iterable[str] = (),
        python: str = sys.executable,
    ) -> None:
        self.code_dir = str(Path(code_dir).resolve())
        self.handler = handler
        self.env = dict(env or {})
        self.timeout_seconds = float(timeout_seconds)
        self.memory_mb = memory_mb
        self.function_name = function_name
        self.clock = clock or VirtualClock()
        self.region = region
        self.account = account
        self.max_concurrency = max_concurrency
        self.async_retry_delays = tuple(async_retry_delays)
        self.python = python
        self.init_timeout_real = 120.0
        self.arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.records: list[InvocationRecord] = []
        self.invocations: list[Invocation] = []
        self.orphan_lines: list[str] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="offline-lambda-")
        self._extra_sys_path = [str(Path(p).resolve()) for p in extra_sys_path]
        self._runtime_packages = None if runtime_packages is None else tuple(runtime_packages)
        self.layer_packages = tuple(layer_packages)
        try:
            self.sys_path = self._sys_path()
        except BaseException:
            self._tmp.cleanup()
            raise
        self.version = 1
        """Bumped by ``update``: workers of an older version are not reused (a new execution environment)."""
        self.listeners: Listeners[[str, InvocationRecord]] = Listeners()
        """Called with ``(phase, record)``, phase ``start`` or ``end``, for each attempt."""
        self._idle: list[Worker] = []
        self._workers: list[Worker] = []
        self._busy = 0
        self._pending = 0
        self._cond = threading.Lock()
        self._closed = threading.Event()
        self._worker_count = 0

    def _sys_path(self) -> list[str]:
        paths = list(self._extra_sys_path)
        if self.layer_packages:
            layer = Path(self._tmp.name) / f"layer-{'-'.join(self.layer_packages)}"
            paths.append(str(runtime_dir_for(self.layer_packages, layer, required=True)))
        if self._runtime_packages is not None:
            paths.append(str(runtime_dir_for(self._runtime_packages, Path(self._tmp.name) / "runtime")))
        else:
            paths.extend(p for p in sys.path if p.endswith("site-packages"))
        return [self.code_dir, *paths]

    def update(
        self,
        *,
        code_dir: str | os.PathLike[str] | None = None,
        handler: str | None = None,
        env: Mapping[str, str] | None = None,
        layer_packages: Iterable[str] | None = None,
    ) -> None:
        """UpdateFunctionCode/Configuration: later invocations run the new code in new execution environments.

        Like Lambda, an invocation already running finishes on the old code; idle environments are retired.
        """
        with self._cond:
            if code_dir is not None:
                self.code_dir = str(Path(code_dir).resolve())
            if handler is not None:
                self.handler = handler
            if env is not None:
                self.env.update(env)
            if layer_packages is not None:
                self.layer_packages = tuple(layer_packages)
            self.sys_path = self._sys_path()
            self.version += 1
            retired, self._idle = self._idle, []
        for worker in retired:
            worker.stop()

    def check_init(self) -> dict[str, Any] | None:
        """Run one Init phase alone (import the handler, as a cold start does); its error, if any.

        What ``run-template`` uses to refuse a ``--handler``/``--code``/``--layer`` that cannot be
        imported before the world starts.
        """
        with self.clock.driving():
            worker = self._new_worker(0)
            try:
                worker.wait_ready(self.init_timeout_real)
                return worker.init_error
            finally:
                worker.stop()

    def _new_worker(self, number: int) -> Worker:
        """A new execution environment, known to ``close`` from the moment its process exists."""
        env = self.worker_environment(f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}")
        with signals.deferred():  # no signal between the process starting and close() knowing it
            worker = Worker(
                python=self.python,
                code_dir=self.code_dir,
                env=env,
                clock=self.clock,
                version=self.version,
                number=number,
                log=self.log,
                orphan_lines=self.orphan_lines,
            )
            with self._cond:
                self._workers.append(worker)
        return worker

    # -- configuration seen by the worker ---------------------------------------------------------

    def worker_environment(self, log_stream: str) -> dict[str, str]:
        """The environment of an execution environment: Lambda's variables plus ``env``."""
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": self.code_dir,
            "LAMBDA_RUNTIME_DIR": self._tmp.name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "ASIAOFFLINEEXAMPLE00",
            "AWS_SECRET_ACCESS_KEY": "offline-secret-access-key",
            "AWS_SESSION_TOKEN": "offline-session-token",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "_HANDLER": self.handler,
            "OFFLINE_LAMBDA_SYS_PATH": os.pathsep.join(self.sys_path),
        }
        base.update(self.env)
        return base

    @property
    def log_group_name(self) -> str:
        """``/aws/lambda/<function name>``."""
        return f"/aws/lambda/{self.function_name}"

    def context_fields(self, request_id: str, deadline_modelled: float, log_stream: str) -> dict[str, Any]:
        """The fields of the context object the worker builds."""
        return {
            "function_name": self.function_name,
            "function_version": "$LATEST",
            "invoked_function_arn": self.arn,
            "memory_limit_in_mb": self.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": self.log_group_name,
            "log_stream_name": log_stream,
            "deadline": deadline_modelled,
        }

    # -- observation -------------------------------------------------------------------------------

    def log(self, record: InvocationRecord, stream: str, text: str) -> None:
        """Append a log line to an invocation."""
        record.logs.append(LogLine(record.request_id, stream, text, self.clock.now(), time.monotonic()))

    def all_logs(self) -> list[LogLine]:
        """Every captured line of every invocation, in invocation order."""
        return [line for record in list(self.records) for line in record.logs]

    def log_text(self) -> str:
        """Every captured line joined with newlines (plus lines written outside invocations)."""
        return "\n".join([*(line.text for line in self.all_logs()), *self.orphan_lines])

    @property
    def busy(self) -> bool:
        """True while an invocation runs or waits (retries included)."""
        with self._cond:
            return self._pending > 0

    def wait_idle(self, timeout: float = HANG_GUARD_SECONDS) -> bool:
        """Wait until nothing runs or waits, modelled time moving on meanwhile; True if idle.

        ``timeout`` is a real-seconds guard against a hung world (at least ``HANG_GUARD_SECONDS``), never
        an outcome: every invocation ends within its modelled timeout and retries.
        """
        return self.clock.wait_for(lambda: self._pending == 0, None, hang_guard=max(timeout, HANG_GUARD_SECONDS))

    @property
    def cold_starts(self) -> int:
        """How many attempts started a new execution environment."""
        return sum(1 for record in self.records if record.cold)

    # -- invocation --------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any], source: str = "direct") -> InvocationRecord:
        """Invoke synchronously (RequestResponse): one attempt, no retries."""
        with self._cond:
            self._pending += 1
        try:
            with self.clock.driving():
                return self._attempt(event, source, 1)
        finally:
            with self._cond:
                self._pending -= 1
            self.clock.notify()

    def invoke_async(self, event: dict[str, Any], source: str = "async", retries: bool = True) -> Invocation:
        """Invoke with the Event invocation type: queued, retried on error (60 s, then 120 s later)."""
        invocation = Invocation(json.loads(json.dumps(event)), source, self.clock)
        self.invocations.append(invocation)
        with self._cond:
            self._pending += 1
        self.clock.spawn(lambda: self._run_async(invocation, retries), name=f"invoke {source}")
        return invocation

    def _run_async(self, invocation: Invocation, retries: bool) -> None:
        delays = list(self.async_retry_delays) if retries else []
        try:
            attempt = 1
            while not self._closed.is_set():
                try:
                    record = self._attempt(invocation.event, invocation.source, attempt)
                except Exception:
                    if self._closed.is_set():
                        break  # the function is closing (the world stops): the invocation ends with it
                    raise
                invocation.attempts.append(record)
                if record.error is None or not delays:
                    break
                delay = delays.pop(0)
                if self.clock.wait_for(self._closed.is_set, delay):
                    break
                attempt += 1
        finally:
            invocation._done.set()
            with self._cond:
                self._pending -= 1
            self.clock.notify()

    def _acquire(self) -> tuple[Worker, bool]:
        while True:  # at most max_concurrency environments run; a waiting invocation lets time move
            self.clock.wait_for(lambda: bool(self._idle) or self._busy < self.max_concurrency)
            with self._cond:
                if self._idle or self._busy < self.max_concurrency:
                    self._busy += 1
                    break
        with self._cond:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker, False
            self._worker_count += 1
            number = self._worker_count
        try:
            worker = self._new_worker(number)  # known at once: close() stops it even while it starts
            if self._closed.is_set():
                worker.stop()
                self._refuse_closed()
            worker.wait_ready(self.init_timeout_real)
        except BaseException:
            with self._cond:
                self._busy -= 1
            self.clock.notify()
            raise
        return worker, True

    def _refuse_closed(self) -> None:
        raise RuntimeError(f"{self.function_name} is closed")

    def _release(self, worker: Worker, reuse: bool) -> None:
        with self._cond:
            self._busy -= 1
            keep = reuse and worker.alive() and worker.version == self.version and not self._closed.is_set()
            if keep:
                self._idle.append(worker)
        self.clock.notify()
        if not keep:
            worker.stop()

    def _attempt(self, event: dict[str, Any], source: str, attempt: int) -> InvocationRecord:
        record = InvocationRecord(str(uuid.uuid4()), event, source, attempt)
        worker, cold = self._acquire()
        record.cold = cold
        if cold:
            record.init_seconds = worker.init_seconds
            for text in worker.init_logs:
                self.log(record, "init", text)
        record.worker_pid = worker.proc.pid
        record.start_modelled = self.clock.now()
        record.start_real = time.monotonic()
        self.records.append(record)
        self._platform(record, f"START RequestId: {record.request_id} Version: $LATEST")
        self.listeners.notify("start", record)
        deadline = record.start_modelled + self.timeout_seconds
        reuse = True
        try:
            context = self.context_fields(record.request_id, deadline, worker.log_stream)
            message = worker.run(record, context, deadline)
        except Exception as exc:  # noqa: BLE001 - a broken worker must not hang the caller
            message = {"error": {"errorType": "Runtime.Unknown", "errorMessage": repr(exc)}}
            reuse = False
        record.end_modelled = self.clock.now()
        record.end_real = time.monotonic()
        record.max_memory_mb = worker.memory_high_water_mb() if worker.alive() else None
        if message is None and record.end_modelled < deadline:
            # The worker died before its deadline (killed, e.g. a Ctrl-C reaching the process group): Lambda
            # reports a runtime that exits mid-invocation as Runtime.ExitError, not as a timeout.
            record.error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {record.request_id} Error: Runtime exited without providing a reason",
            }
            reuse = False
        elif message is None:
            record.timed_out = True
            record.error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {self.timeout_seconds:.2f} seconds",
            }
            self._platform(
                record,
                f"{iso_timestamp(record.end_modelled)} {record.request_id} "
                f"Task timed out after {self.timeout_seconds:.2f} seconds",
            )
            reuse = False
        else:
            record.result = message.get("result")
            record.error = message.get("error")
            if message.get("init_failed") or not worker.alive():
                reuse = False
        self._platform(record, f"END RequestId: {record.request_id}")
        self._platform(record, self._report_line(record))
        self._release(worker, reuse)
        self.listeners.notify("end", record)
        return record

    def _report_line(self, record: InvocationRecord) -> str:
        duration_ms = (record.modelled_seconds or 0.0) * 1000
        line = (
            f"REPORT RequestId: {record.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {record.max_memory_mb or 0} MB"
        )
        if record.init_seconds is not None:
            line += f"\tInit Duration: {record.init_seconds * 1000:.2f} ms"
        if record.timed_out:
            line += "\tStatus: timeout"
        return line

    def _platform(self, record: InvocationRecord, text: str) -> None:
        self.log(record, "platform", text)

    def close(self) -> None:
        """Stop every worker and cancel pending retries."""
        self._closed.set()
        self.clock.notify()
        with self._cond:
            workers = list(self._workers)
            self._idle.clear()
        for worker in workers:
            worker.stop()
        self._tmp.cleanup()

    def __enter__(self) -> LambdaFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
