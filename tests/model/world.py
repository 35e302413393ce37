"""The model's world: the CloudHSM emulator, SSM and EventBridge from moto, an HTTPS ResponseURL, one Lambda.

Everything talks real HTTP on 127.0.0.1. One clock (a shared double) is the emulator's clock and the
Lambda process's time; only the model (between invocations) and the running invocation move it.
Invocations run one at a time, so every CloudHSM call and every response body is attributed to the
invocation that was running when it arrived.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from cloudhsm_backup_restore_pipeline.contract import LAMBDA_TIMEOUT_SECONDS, MEMORY_MB
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.calls import Call
from cloudhsm_offline.emulator.emulator import CloudHsmEmulator
from moto.server import ThreadedMotoServer

from tests.model import lambda_env
from tests.support.https_capture import ResponseCapture

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
HANDLER = "cloudhsm_backup_restore.app.handler"
ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
"""The function's own region (the emulator's)."""
OTHER_REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION_NAME = "cloudhsm-restore-model"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
PROVIDER_ID = "model1"
T0 = 1_800_000_000.0
HANG_SECONDS = 120.0
"""Real seconds one invocation may take before the model calls it hung (no test outcome depends on it)."""


class SharedClock:
    """The emulator's clock: a double in a mapped file, shared with the Lambda process (lambda_env.MappedClock)."""

    def __init__(self, path: Path, start: float = T0) -> None:
        self.path = path
        path.write_bytes(struct.pack("d", start))
        self._mapped = lambda_env.MappedClock(str(path))

    def now(self) -> float:
        return self._mapped.value

    def advance(self, seconds: float) -> None:
        self._mapped.value = self.now() + seconds


@dataclass
class Arrival:
    """One body PUT to a ResponseURL: when (modelled), after how many CloudHSM calls, during which invocation."""

    path: str
    body: dict[str, Any]
    size: int
    at: float
    call_index: int
    invocation: int | None


@dataclass
class Invocation:
    """One run of the handler and everything attributed to it."""

    number: int
    event: dict[str, Any]
    started: float
    deadline: float
    ended: float = 0.0
    outcome: str = ""
    detail: str = ""
    calls: list[tuple[int, Call]] = field(default_factory=list)
    """(index in the emulator's call log, call) of every CloudHSM call made while this invocation ran."""
    ranges: list[tuple[int, int]] = field(default_factory=list)
    accounted: int = 0
    """How many of ``calls`` and ``arrivals`` the model has attributed (an overlap accounts in parts)."""
    accounted_arrivals: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)


class _Arrivals(list[bytes]):
    def __init__(self, path: str, world: World) -> None:
        super().__init__()
        self.path = path
        self.world = world

    def append(self, body: bytes) -> None:
        self.world.arrived(self.path, body)
        super().append(body)


class _ByPath(dict[str, list[bytes]]):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def __missing__(self, path: str) -> list[bytes]:
        value = _Arrivals(path, self.world)
        self[path] = value
        return value


class LambdaProcess:
    """The execution environment (``python -m tests.model.lambda_env``) and the JSON-lines pipe to it."""

    def __init__(self, clock: SharedClock, env: dict[str, str], log_path: str) -> None:
        self.warm = False
        """Whether an invocation ran since the last (cold) start: only then does ``reset`` restart it."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.model.lambda_env", str(clock.path), HANDLER, log_path],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(_child_path())},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, key: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], HANG_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the Lambda process did not answer {key!r} (hung or died; see its log)")
        message: dict[str, Any] = json.loads(line)
        return message

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def cold_start(self) -> None:
        self._send({"op": "load"})
        self._expect("loaded")
        self.warm = False

    def invoke(self, message: dict[str, Any], on_pause: Callable[[], None] | None = None) -> dict[str, Any]:
        """Run one invocation; when it pauses (an overlap fault), run ``on_pause`` and resume it."""
        self.warm = True
        self._send({"op": "invoke", **message})
        while True:
            reply = self._expect("invoke")
            if not reply.get("paused"):
                return reply
            if on_pause is not None:
                on_pause()
            self._send({"op": "resume"})

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._send({"op": "stop"})
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _child_path() -> list[str]:
    """The Lambda process's import path: MODEL_HANDLER_PATH first (another handler tree, e.g. a rewrite's
    ``handler`` folder), then the repository (tests.model), then what this process has."""
    extra = os.environ.get("MODEL_HANDLER_PATH", "")
    return [p for p in (extra, str(ROOT), os.environ.get("PYTHONPATH", "")) if p]


class World:
    """Started once per test session; ``reset`` gives each example a clean account at a later time."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="cloudhsm-model-"))
        self.clock = SharedClock(self.tmp / "clock")
        self.emulator = CloudHsmEmulator(EmulatedAccount(self.clock, region=REGION, account_id=ACCOUNT))
        self.emulator.account.add_region(OTHER_REGION)
        self.emulator.start()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        ca = self.tmp / "ca.pem"
        self.capture = ResponseCapture(ca)
        self.capture.bodies = _ByPath(self)
        self.lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self._seen_rules: list[dict[str, Any]] | None = None
        self._seen_parameters: list[dict[str, Any]] | None = None
        self.current: Invocation | None = None
        self.arrivals: list[Arrival] = []
        self.log_path = str(self.tmp / "lambda.log")
        env = {
            "AWS_ACCESS_KEY_ID": "AKIAMODELTESTING0000",
            "AWS_SECRET_ACCESS_KEY": "model-secret",
            "AWS_SESSION_TOKEN": "model-session",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.tmp / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.tmp / "no-credentials"),
            "AWS_ENDPOINT_URL_CLOUDHSM_V2": self.emulator.url,
            "AWS_ENDPOINT_URL_SSM": self.moto_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.moto_url,
            "AWS_ENDPOINT_URL_LAMBDA": self.moto_url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.moto_url,
            "AWS_CA_BUNDLE": str(ca),
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "CLOUDHSM_RESTORE_PROVIDER_ID": PROVIDER_ID,
            "PYTHONHASHSEED": "0",
        }
        self.ssm = self._client("ssm")
        self.events = self._client("events")
        self.ssm.describe_parameters(MaxResults=1)  # moto builds its SSM backend on first use: not in an invocation
        self.environments = [LambdaProcess(self.clock, env, self.log_path) for _ in range(2)]
        """Two execution environments: a second one runs an invocation that overlaps one paused in the first."""

    def _client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id="AKIAMODELADMIN000000",
            aws_secret_access_key="model",
        )

    # -- per example ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """A clean account at the next 30-day boundary (so an example replays at the same time of day, hour and
        retention-sweep phase): no calls, faults, parameters or rules; cold Lambda environments."""
        period = 30 * 86400.0
        self.clock.advance((self.clock.now() // period + 1) * period - self.clock.now())
        self.emulator.faults.clear()
        self.emulator.call_log.clear()
        for rule in self._list_rules():
            targets = [t["Id"] for t in rule["Targets"]]
            if targets:
                self.events.remove_targets(Rule=rule["Name"], Ids=targets)
            self.events.delete_rule(Name=rule["Name"])
        names = [p["Name"] for p in self._list_parameters()]
        for start in range(0, len(names), 10):
            self.ssm.delete_parameters(Names=names[start : start + 10])
        with self.lock:
            self.invocations = []
            self.arrivals = []
        for environment in self.environments:
            if environment.warm:
                environment.cold_start()
        self._seen_rules = self._seen_parameters = None

    # -- the Lambda ----------------------------------------------------------------------------------

    def invoke(
        self,
        event: dict[str, Any],
        faults: list[dict[str, Any]] | None = None,
        environment: int = 0,
        on_pause: Callable[[Invocation], None] | None = None,
    ) -> Invocation:
        """Run the handler once with ``event``; CloudHSM faults are armed on the emulator for this invocation.

        With a ``pause`` fault, ``on_pause(this invocation)`` runs while it is stopped (another invocation,
        in the other environment); calls and answers are attributed to whichever invocation was running.
        """
        cloudhsm_faults = [f for f in faults or [] if f.get("service") == "cloudhsmv2"]
        lambda_faults = [f for f in faults or [] if f.get("service") != "cloudhsmv2"]
        for fault in cloudhsm_faults:
            self._arm(fault)
        started = self.clock.now()
        invocation = Invocation(
            number=len(self.invocations),
            event=json.loads(json.dumps(event)),
            started=started,
            deadline=started + LAMBDA_TIMEOUT_SECONDS,
        )
        outer = self.current
        with self.lock:
            self.invocations.append(invocation)
        self._seen_rules = self._seen_parameters = None
        self._switch(outer, invocation)

        def paused() -> None:
            self._switch(invocation, None)
            self.emulator.faults.clear()
            if on_pause is not None:
                on_pause(invocation)
            for fault in cloudhsm_faults:  # the paused invocation's own faults again (the other one's are gone)
                self._arm(fault)
            self._switch(None, invocation)

        try:
            result = self.environments[environment].invoke(
                {
                    "event": event,
                    "faults": lambda_faults,
                    "deadline": invocation.deadline,
                    "function_name": FUNCTION_NAME,
                    "function_arn": FUNCTION_ARN,
                    "memory": MEMORY_MB,
                    "invocation_id": f"invocation-{invocation.number:04d}",
                },
                on_pause=paused,
            )
        finally:
            self._switch(invocation, outer)
            self.emulator.faults.clear()
        invocation.ended = self.clock.now()
        invocation.outcome = str(result["outcome"])
        invocation.detail = str(result.get("detail", ""))
        invocation.attempts = list(result.get("attempts", []))
        if invocation.outcome == "timeout":
            self.environments[environment].cold_start()  # Lambda resets an environment whose invocation timed out
        return invocation

    def _switch(self, leaving: Invocation | None, entering: Invocation | None) -> None:
        """The running invocation changes: close the leaving one's call range, open the entering one's."""
        with self.lock:
            now = len(self.emulator.calls)
            if leaving is not None and leaving.ranges and leaving.ranges[-1][1] < 0:
                start = leaving.ranges[-1][0]
                leaving.ranges[-1] = (start, now)
                calls = self.emulator.calls
                leaving.calls.extend((i, calls[i]) for i in range(start, now))
            if entering is not None:
                entering.ranges.append((now, -1))
            self.current = entering

    def _arm(self, fault: dict[str, Any]) -> None:
        operation = fault.get("operation")
        if fault["kind"] == "throttle":
            self.emulator.faults.throttle_next(int(fault.get("n", 1)), operation)
        elif fault["kind"] == "deny":
            self.emulator.faults.deny(str(operation))
        elif fault["kind"] == "fail":
            self.emulator.faults.fail_next(int(fault.get("n", 1)), operation)
        else:
            raise ValueError(f"unknown CloudHSM fault {fault}")

    def arrived(self, path: str, raw: bytes) -> None:
        """A body PUT to a ResponseURL (capture thread): stamp it with the clock and the running invocation."""
        with self.lock:
            current = self.current
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_unparseable": raw[:200].decode(errors="replace")}
            arrival = Arrival(
                path=path,
                body=body,
                size=len(raw),
                at=self.clock.now(),
                call_index=len(self.emulator.calls),
                invocation=None if current is None else current.number,
            )
            self.arrivals.append(arrival)
            if current is not None:
                current.arrivals.append(arrival)

    def response_url(self) -> tuple[str, str]:
        """A ResponseURL presigned now (modelled): CloudFormation signs it when it sends the request."""
        return self.capture.url(signed_at=self.clock.now())

    # -- what the handler left in SSM and EventBridge -------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        """Every EventBridge rule (all pages) with its targets, as of the last invocation's end (only an
        invocation, ``reset`` or ``changed`` changes them)."""
        if self._seen_rules is None:
            self._seen_rules = self._list_rules()
        return self._seen_rules

    def parameters(self) -> list[dict[str, Any]]:
        """Every SSM parameter the account holds, with its (decrypted) value (cached like ``rules``)."""
        if self._seen_parameters is None:
            self._seen_parameters = self._list_parameters()
        return self._seen_parameters

    def changed(self) -> None:
        """Something other than an invocation changed rules or parameters (the meta-tests' sabotage)."""
        self._seen_rules = self._seen_parameters = None

    def _list_rules(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.events.list_rules(**({"NextToken": token} if token else {}))
            for rule in page.get("Rules", []):
                targets = self.events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
                found.append({**rule, "Targets": targets})
            token = page.get("NextToken")
            if not token:
                return found

    def _list_parameters(self) -> list[dict[str, Any]]:
        names: list[str] = []
        paginator = self.ssm.get_paginator("describe_parameters")
        for page in paginator.paginate():
            names.extend(p["Name"] for p in page["Parameters"])
        values: list[dict[str, Any]] = []
        for start in range(0, len(names), 10):
            got = self.ssm.get_parameters(Names=names[start : start + 10], WithDecryption=True)
            values.extend(got["Parameters"])
        return values

    def backup_state(self, backup_id: str, region: str | None) -> str:
        try:
            return str(self.emulator.account.backup(backup_id, None if region == REGION else region)["BackupState"])
        except KeyError:
            return "ABSENT"

    def close(self) -> None:
        for environment in self.environments:
            environment.stop()
        self.capture.close()
        self.moto.stop()
        self.emulator.stop()


_WORLDS: list[World] = []


def world() -> World:
    """The process's one world (moto keeps state per process; the Lambda processes take a second to start)."""
    if not _WORLDS:
        _WORLDS.append(World())
        atexit.register(_close_world)
    return _WORLDS[0]


def _close_world() -> None:
    """At exit: stop the servers and the Lambda processes; keep the handler's log only if MODEL_KEEP_LOG is set."""
    for opened in _WORLDS:
        with contextlib.suppress(Exception):
            opened.close()
        if not os.environ.get("MODEL_KEEP_LOG"):
            shutil.rmtree(opened.tmp, ignore_errors=True)
