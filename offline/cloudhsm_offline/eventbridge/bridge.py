"""EventBridge and Lambda APIs for crhelper's polling hand-off, plus a scheduler that fires rules.

moto's server implements the events, lambda (and logs) APIs. A small gateway in front of it checks
what moto does not but EventBridge does (rule name at most 64 characters, a valid ``rate()``
expression, target ``Input`` valid JSON of at most 8192 characters), records every call on the
modelled clock, and pins moto's account to the world's. A scheduler thread lists the rules and fires
each scheduled target by invoking the provider function with the target's ``Input`` as the event,
provided the function's resource policy lets ``events.amazonaws.com`` invoke it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from cloudhsm_offline.clock import HANG_GUARD_SECONDS, VirtualClock
from cloudhsm_offline.eventbridge.deployment import INVOKE_STATEMENT_ID, deploy_function
from cloudhsm_offline.eventbridge.gateway import (
    FAULT_ERRORS,
    ApiCall,
    GatewayServer,
    check_events_call,
    classify,
    error_code,
    fault_answer,
    summarise,
)
from cloudhsm_offline.eventbridge.scheduler import RuleScheduler, all_rules
from cloudhsm_offline.faults import GATEWAY_KINDS, FaultPlan
from cloudhsm_offline.lambda_runtime.function import LambdaFunction
from cloudhsm_offline.loopback import Reply, Request
from cloudhsm_offline.observers import Listeners

_LIVE_ACCOUNTS: set[str] = set()
_LIVE_LOCK = threading.Lock()


class EventBridge:
    """moto (events, lambda, logs) behind a checking gateway, with a ``RuleScheduler`` on the world's clock.

    ``rules``, ``firings``, ``problems`` and ``functions`` are the scheduler's (one record, two views).
    """

    def __init__(self, function: LambdaFunction, clock: VirtualClock | None = None) -> None:
        self.function = function
        self.faults = FaultPlan(GATEWAY_KINDS)
        """Faults injected into the SSM, EventBridge and Lambda calls passing the gateway."""
        self.clock = clock or function.clock
        self.region = function.region
        self.account = function.account
        self.calls: list[ApiCall] = []
        self.listeners: Listeners[[str, Any]] = Listeners()
        """Called with ``(kind, item)``: ``call`` (ApiCall), ``fire`` (Firing) or ``rule-gone`` (RuleState)."""
        self.scheduler = RuleScheduler(self.clock, self.region, self.account, self.client, self.listeners.notify)
        self.scheduler.functions[function.arn] = function
        self.rules = self.scheduler.rules
        self.firings = self.scheduler.firings
        self.problems = self.scheduler.problems
        self.functions = self.scheduler.functions
        self._lock = threading.Lock()
        self._moto: Any = None
        self._moto_url = ""
        self._gateway: GatewayServer | None = None
        self._thread: threading.Thread | None = None

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
        self._thread = threading.Thread(target=self._gateway.serve_forever, args=(0.05,), daemon=True)
        deploy_function(self.client, self.function)
        # moto builds its SSM backend (AWS's public parameters) on first use, which takes seconds of real
        # time: build it now, so the handler's first PutParameter cannot run into its own read timeout and
        # retry into ParameterAlreadyExists (real time the model does not see, but botocore's sockets do).
        self.client("ssm").describe_parameters(MaxResults=1)
        self._thread.start()
        self.scheduler.start()
        return self.url

    @property
    def url(self) -> str:
        """The gateway's base URL (what the function's AWS_ENDPOINT_URL_EVENTBRIDGE/LAMBDA/CLOUDWATCH_LOGS point at)."""
        assert self._gateway is not None, "start() first"
        return f"http://127.0.0.1:{self._gateway.server_address[1]}"

    def stop(self) -> None:
        """Stop the scheduler, the gateway and moto."""
        self.scheduler.stop()
        if self._gateway is not None:
            if self._thread is not None and self._thread.ident is not None:  # shutdown() waits for serve_forever
                self._gateway.shutdown()
                self._thread.join(timeout=2)
            self._gateway.server_close()
            self._gateway = None
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

    # -- gateway -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Check, record and forward one API call to moto (or answer it with an injected fault)."""
        service, operation, params = classify(request.method, request.path, request.headers, request.body)
        fault = self.faults.decide(operation, self.clock.now()).fault if service in FAULT_ERRORS else None
        rejection = check_events_call(operation, params) if service == "events" else None
        if fault is not None:
            status, headers, data = fault_answer(service, fault, operation, params)
        elif rejection is not None:
            status, payload = rejection
            data = json.dumps(payload).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "offline-gateway"}
        else:
            status, headers, data = self._forward(request)
        error = error_code(headers, data) if status >= 400 else None
        call = ApiCall(service, operation, self.clock.now(), status, error, summarise(params))
        with self._lock:
            self.calls.append(call)
            if service == "events" and operation == "PutRule" and status < 400:
                self.scheduler.track(params, call.modelled)
        if service == "events" and status < 400:
            self.scheduler.rules_changed()
        self.listeners.notify("call", call)
        return Reply(status, headers, data)

    def _forward(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self._moto_url.removeprefix("http://"), timeout=30)
        headers = {k: v for k, v in request.headers.items() if k not in ("connection", "host")}
        headers["x-moto-account-id"] = self.account
        try:
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    # -- reporting ---------------------------------------------------------------------------------

    def active_rules(self) -> list[str]:
        """Names of scheduled rules that still exist (a leftover keeps invoking the function)."""
        names = [rule["Name"] for rule in all_rules(self.client("events"))]
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

    def rules_removed(self) -> int:
        """How many rules a DeleteRule removed. Not its successful calls: "If you call delete rule multiple
        times for the same rule, all calls will succeed" (EventBridge API Reference, DeleteRule), so a
        precautionary DeleteRule of a rule that is not there succeeds and removes nothing."""
        live: set[str] = set()
        removed = 0
        for call in self.calls:
            name = str(call.params.get("Name"))
            if call.status >= 400:
                continue
            if call.operation == "PutRule":
                live.add(name)
            elif call.operation == "DeleteRule" and name in live:
                live.discard(name)
                removed += 1
        return removed

    def wait_quiet(self, timeout: float = HANG_GUARD_SECONDS, within: float = 3600.0) -> bool:
        """Wait until no rule is tracked as live, at most ``within`` modelled seconds; True if none is.

        ``timeout`` is a real-seconds guard against a hung world (at least ``HANG_GUARD_SECONDS``).
        """
        return self.clock.wait_for(
            lambda: not self.scheduler.has_live_rules, within, hang_guard=max(timeout, HANG_GUARD_SECONDS)
        )

    @property
    def has_live_rules(self) -> bool:
        """True while a scheduled rule created through the gateway has not been seen removed."""
        return self.scheduler.has_live_rules
