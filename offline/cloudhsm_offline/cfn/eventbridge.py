"""EventBridge and Lambda APIs for crhelper's polling hand-off, plus a scheduler that fires rules.

moto's server implements the events, lambda (and logs) APIs. A small gateway in front of it checks
what moto does not but EventBridge does (rule name at most 64 characters, a valid ``rate()``
expression, target ``Input`` valid JSON of at most 8192 characters), records every call on the
modelled clock, and pins moto's account to the world's. A scheduler thread lists the rules and fires
each scheduled target by invoking the provider function with the target's ``Input`` as the event,
provided the function's resource policy lets ``events.amazonaws.com`` invoke it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from cloudhsm_offline.cfn.api_faults import ApiFaultPlan
from cloudhsm_offline.cfn.deployment import INVOKE_STATEMENT_ID, deploy_function
from cloudhsm_offline.cfn.gateway import (
    ApiCall,
    GatewayHandler,
    GatewayServer,
    check_events_call,
    classify,
    error_code,
    rate_seconds,
    summarise,
)
from cloudhsm_offline.cfn.lambda_runtime import Invocation, LambdaFunction
from cloudhsm_offline.clock import SimClock

__all__ = ["ApiCall", "EventBridge", "Firing", "RuleState", "check_events_call", "rate_seconds"]

_LIVE_ACCOUNTS: set[str] = set()
_LIVE_LOCK = threading.Lock()


@dataclass
class Firing:
    """One scheduled firing of a rule's target (or why it could not fire)."""

    rule: str
    modelled: float
    real: float
    invocation: Invocation | None
    problem: str | None = None


@dataclass
class RuleState:
    """A scheduled rule the scheduler tracks."""

    name: str
    arn: str
    period: float
    created: float
    next_fire: float
    fired: int = 0
    removed: float | None = None


class EventBridge:
    """moto (events, lambda, logs) behind a checking gateway, with a scheduler on the shared clock."""

    def __init__(
        self,
        function: LambdaFunction,
        clock: SimClock | None = None,
        tick_seconds: float = 0.02,
    ) -> None:
        self.function = function
        self.functions: dict[str, LambdaFunction] = {function.arn: function}
        """Every provider function in this account, by ARN (rules may target any of them)."""
        self.faults = ApiFaultPlan()
        """Faults injected into the SSM, EventBridge and Lambda calls passing the gateway."""
        self.clock = clock or function.clock
        self.region = function.region
        self.account = function.account
        self.tick_seconds = tick_seconds
        self.calls: list[ApiCall] = []
        self.firings: list[Firing] = []
        self.rules: dict[str, RuleState] = {}
        self.problems: list[str] = []
        self._listeners: list[Callable[[str, Any], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._moto: Any = None
        self._moto_url = ""
        self._gateway: GatewayServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Start moto, the gateway and the scheduler; returns the gateway URL for AWS_ENDPOINT_URL_*."""
        with _LIVE_LOCK:
            if self.account in _LIVE_ACCOUNTS:
                raise RuntimeError(
                    f"an offline EventBridge for account {self.account} already runs in this process "
                    "(moto keeps its state per process): stop it first or use another account"
                )
            _LIVE_ACCOUNTS.add(self.account)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._moto_url = f"http://{host}:{port}"
        self._reset_account()
        self._gateway = GatewayServer(self)
        self._threads = [
            threading.Thread(target=self._gateway.serve_forever, args=(0.05,), daemon=True),
            threading.Thread(target=self._schedule_loop, daemon=True),
        ]
        deploy_function(self.client, self.function)
        # moto builds its SSM backend (AWS's public parameters) on first use, which takes seconds: start it
        # now, in the background, so the provider's first PutParameter (the ResponseURL during a hand-off)
        # does not pay for it inside its Lambda time.
        threading.Thread(target=self._warm_ssm, daemon=True).start()
        for thread in self._threads:
            thread.start()
        return self.url

    @property
    def url(self) -> str:
        """The gateway's base URL (what the function's AWS_ENDPOINT_URL_EVENTBRIDGE/LAMBDA/CLOUDWATCH_LOGS point at)."""
        assert self._gateway is not None, "start() first"
        return f"http://127.0.0.1:{self._gateway.server_address[1]}"

    def stop(self) -> None:
        """Stop the scheduler, the gateway and moto."""
        self._stop.set()
        if self._gateway is not None:
            self._gateway.shutdown()
            self._gateway.server_close()
            self._gateway = None
        for thread in self._threads:
            thread.join(timeout=2)
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        with _LIVE_LOCK:
            _LIVE_ACCOUNTS.discard(self.account)

    def __enter__(self) -> EventBridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _warm_ssm(self) -> None:
        with contextlib.suppress(Exception):  # the world may already be stopping
            self.client("ssm").describe_parameters(MaxResults=1)

    def client(self, service: str) -> Any:
        """A boto3 client talking to moto directly as this world's account (calls are not recorded)."""
        client = boto3.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self._moto_url,
            aws_access_key_id="AKIAOFFLINEADMIN0000",
            aws_secret_access_key="offline",  # noqa: S106 - moto accepts any
        )

        def _account_header(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = self.account

        client.meta.events.register("before-sign.*.*", _account_header)
        return client

    def _reset_account(self) -> None:
        with _LIVE_LOCK:
            alone = {self.account} == _LIVE_ACCOUNTS
        if alone:
            connection = http.client.HTTPConnection(self._moto_url.removeprefix("http://"), timeout=10)
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
            connection.close()

    def add_function(self, function: LambdaFunction) -> None:
        """Deploy another provider function into this account (two providers, one account)."""
        self.functions[function.arn] = function
        deploy_function(self.client, function)

    def add_listener(self, listener: Callable[[str, Any], None]) -> None:
        """Call ``listener(kind, item)``: kind ``call`` (ApiCall), ``fire`` (Firing) or ``rule-gone`` (RuleState)."""
        self._listeners.append(listener)

    def _notify(self, kind: str, item: Any) -> None:
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):
                listener(kind, item)

    # -- gateway -----------------------------------------------------------------------------------

    def handle(self, request: GatewayHandler, body: bytes) -> None:
        """Check, record and forward one API call to moto (or answer it with an injected fault)."""
        service, operation, params = classify(request.command, request.path, request.headers, body)
        injected = self.faults.decide(service, operation, _resource_of(params))
        rejection = check_events_call(operation, params) if service == "events" else None
        if injected is not None:
            status, headers, data = injected.status, injected.headers, injected.body
        elif rejection is not None:
            status, payload = rejection
            data = json.dumps(payload).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "offline-gateway"}
        else:
            status, headers, data = self._forward(request, body)
        error = error_code(headers, data) if status >= 400 else None
        call = ApiCall(service, operation, self.clock.now(), status, error, summarise(params))
        with self._lock:
            self.calls.append(call)
            if service == "events" and operation == "PutRule" and status < 400:
                self._track_rule(params, call.modelled)
        self._notify("call", call)
        request.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _forward(self, request: GatewayHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self._moto_url.removeprefix("http://"), timeout=30)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("connection", "host")}
        headers["x-moto-account-id"] = self.account
        try:
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def _track_rule(self, params: dict[str, Any], created: float) -> None:
        name = str(params.get("Name"))
        period = rate_seconds(str(params.get("ScheduleExpression", "")))
        if period is None:
            return
        arn = f"arn:aws:events:{self.region}:{self.account}:rule/{name}"
        existing = self.rules.get(name)
        if existing is None or existing.removed is not None:
            self.rules[name] = RuleState(name, arn, period, created, created + period)
        else:
            existing.period = period

    # -- scheduler ---------------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        events = self.client("events")
        lambda_client = self.client("lambda")
        while not self._stop.wait(self.tick_seconds):
            try:
                self._tick(events, lambda_client)
            except Exception as exc:  # noqa: BLE001 - keep scheduling; report what broke
                if not self._stop.is_set():
                    self.problems.append(f"scheduler: {exc!r}")

    def _tick(self, events: Any, lambda_client: Any) -> None:
        with self._lock:
            tracked = [rule for rule in self.rules.values() if rule.removed is None]
        if not tracked:
            return
        listed = {rule["Name"]: rule for rule in _all_rules(events)}
        now = self.clock.now()
        for rule in tracked:
            current = listed.get(rule.name)
            if current is None:
                rule.removed = now
                self._notify("rule-gone", rule)
                continue
            if current.get("State") != "ENABLED" or now < rule.next_fire:
                continue
            rule.next_fire = max(rule.next_fire + rule.period, now)
            rule.fired += 1
            self._fire(rule, events, lambda_client)

    def _fire(self, rule: RuleState, events: Any, lambda_client: Any) -> None:
        try:
            targets = events.list_targets_by_rule(Rule=rule.name)["Targets"]
        except events.exceptions.ResourceNotFoundException:
            rule.removed = self.clock.now()  # deleted since ListRules: a firing that never happens
            self._notify("rule-gone", rule)
            return
        if not targets:
            # A target-less rule fires into nothing, as in EventBridge (e.g. between a hand-off's RemoveTargets
            # and its DeleteRule): not a problem in itself; one that stays is reported as left behind.
            firing = Firing(rule.name, self.clock.now(), time.monotonic(), None, "rule has no targets")
            self._record_firing(firing, problem=False)
        for target in targets:
            arn = str(target["Arn"])
            function = self.functions.get(arn.split(":$", maxsplit=1)[0]) or next(
                (f for a, f in self.functions.items() if arn.startswith(a + ":")), None
            )
            if function is None:
                problem = f"target {arn} is not a provider function ({', '.join(self.functions)})"
                self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), None, problem))
                continue
            if not self._permitted(rule.arn, function, lambda_client):
                problem = (
                    "EventBridge may not invoke the function: its resource policy has no lambda:InvokeFunction "
                    f"statement for events.amazonaws.com matching {rule.arn}"
                )
                self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), None, problem))
                continue
            event = json.loads(target["Input"]) if "Input" in target else _scheduled_event(rule, self)
            invocation = function.invoke_async(event, source=f"eventbridge:{rule.name}")
            self._record_firing(Firing(rule.name, self.clock.now(), time.monotonic(), invocation))

    def _record_firing(self, firing: Firing, problem: bool = True) -> None:
        with self._lock:
            self.firings.append(firing)
            if firing.problem and problem:
                self.problems.append(f"{firing.rule}: {firing.problem}")
        self._notify("fire", firing)

    def _permitted(self, rule_arn: str, function: LambdaFunction, lambda_client: Any) -> bool:
        try:
            policy = json.loads(lambda_client.get_policy(FunctionName=function.function_name)["Policy"])
        except Exception:  # noqa: BLE001 - no policy at all
            return False
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal", {})
            service = principal.get("Service") if isinstance(principal, dict) else principal
            action = statement.get("Action")
            actions = action if isinstance(action, list) else [action]
            if statement.get("Effect", "Allow") != "Allow" or service != "events.amazonaws.com":
                continue
            if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
                continue
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            if source is None or fnmatch.fnmatchcase(rule_arn, source):
                return True
        return False

    # -- reporting ---------------------------------------------------------------------------------

    def active_rules(self) -> list[str]:
        """Names of scheduled rules that still exist (a leftover keeps invoking the function)."""
        names = [rule["Name"] for rule in _all_rules(self.client("events"))]
        return sorted(names)

    def leftovers(self) -> list[str]:
        """What a hand-off may leave behind besides rules: parked parameters, per-wait invoke permissions."""
        found: list[str] = []
        ssm = self.client("ssm")
        paginator = ssm.get_paginator("describe_parameters")
        filters = [{"Key": "Name", "Option": "BeginsWith", "Values": ["/cloudhsm-restore/"]}]
        for page in paginator.paginate(ParameterFilters=filters):
            found.extend(f"SSM parameter {p['Name']} still exists" for p in page["Parameters"])
        lambda_client = self.client("lambda")
        for function in self.functions.values():
            try:
                policy = json.loads(lambda_client.get_policy(FunctionName=function.function_name)["Policy"])
            except Exception:  # noqa: BLE001, S112 - no policy at all
                continue
            for statement in policy.get("Statement", []):
                if statement.get("Sid") != INVOKE_STATEMENT_ID:
                    found.append(f"permission {statement.get('Sid')} on {function.function_name} still exists")
        return found

    def count(self, operation: str) -> int:
        """How many successful calls of one operation (e.g. ``PutRule``, ``DeleteRule``) were made."""
        return sum(1 for call in self.calls if call.operation == operation and call.status < 400)

    def wait_quiet(self, timeout: float) -> bool:
        """Wait (real seconds) until no rule is tracked as live; True if none."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(rule.removed is not None for rule in self.rules.values()):
                    return True
            time.sleep(self.tick_seconds)
        return False

    @property
    def has_live_rules(self) -> bool:
        """True while a scheduled rule created through the gateway has not been seen removed."""
        with self._lock:
            return any(rule.removed is None for rule in self.rules.values())


def _scheduled_event(rule: RuleState, bridge: EventBridge) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "offline-scheduled-event",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": bridge.account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bridge.clock.now())),
        "region": bridge.region,
        "resources": [rule.arn],
        "detail": {},
    }


def _resource_of(params: dict[str, Any]) -> str:
    """The resource an injected AccessDenied names (the parameter, rule or function)."""
    for key in ("Name", "Rule", "FunctionName"):
        if key in params:
            return str(params[key])
    return "*"


def _all_rules(events: Any) -> list[dict[str, Any]]:
    """Every rule: ListRules pages its answer (moto too), so a single call misses rules past the first page."""
    rules: list[dict[str, Any]] = []
    for page in events.get_paginator("list_rules").paginate():
        rules.extend(page["Rules"])
    return rules
