"""CloudHsmEmulator: an ``EmulatedAccount`` served over HTTP, with its faults, call log and admin surface."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudhsm_offline import partition_of
from cloudhsm_offline.emulator import operations
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.calls import DROPPED, OK, Call, CallLog
from cloudhsm_offline.emulator.errors import (
    AccessDeniedError,
    ApiError,
    InternalFailureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    ThrottlingError,
)
from cloudhsm_offline.emulator.protocol import decode, dumps_json, encode_error, encode_result, identify
from cloudhsm_offline.emulator.seed import Seed, load_seed, parse_seed
from cloudhsm_offline.faults import CLOUDHSM_KINDS, DENY, DROP, FAIL, THROTTLE, FaultPlan, denied_message
from cloudhsm_offline.loopback import LoopbackServer, Reply, Request

SIGNING_NAME = "cloudhsm"
CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
ADMIN_PREFIX = "/_emulator"
NOT_FOUND = Reply(404, {"Content-Type": "application/json"}, b'{"error": "not found"}')
ADMIN_ROUTES = {
    ("GET", ""): "summary",
    ("GET", "/backups"): "list backups",
    ("POST", "/backups"): "add a backup (a seed entry)",
    ("GET", "/clusters"): "list clusters (retention policies)",
    ("GET", "/calls"): "list calls (?operation=&outcome=)",
    ("GET", "/faults"): "armed faults",
    ("POST", "/faults"): "arm faults (FaultPlan.apply)",
    ("POST", "/reset"): "reset backups, calls, faults",
    ("GET", "/clock"): "modelled now",
    ("POST", "/clock"): "advance the clock ({advance: seconds})",
}


class CloudHsmEmulator:
    """An emulated CloudHSM v2 backup API (plus tags and clusters) on 127.0.0.1, serving ``account``.

    Use as a context manager (``with CloudHsmEmulator() as emu: emu.url``) or ``start()``/``stop()``.
    Point boto3 at it with ``AWS_ENDPOINT_URL_CLOUDHSM_V2=emu.url`` plus fake credentials. Backups are
    added and inspected on ``account`` (an ``EmulatedAccount``, on a real-time ``SimClock`` by default).
    """

    def __init__(
        self,
        account: EmulatedAccount | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        check_auth: bool = True,
    ) -> None:
        self.account = EmulatedAccount() if account is None else account
        self.faults = FaultPlan(CLOUDHSM_KINDS)
        self.call_log = CallLog()
        self.host = host
        self.port = port
        self.check_auth = check_auth
        self._seed_faults: list[dict[str, Any]] = []
        self._server: LoopbackServer | None = None
        self._lock = threading.RLock()

    def seed(self, source: str | Path | Mapping[str, Any] | list[Any] | Seed) -> CloudHsmEmulator:
        """Apply a seed (file path, loaded data or ``Seed``): settings first, then backups and faults."""
        parsed = load_seed(source)
        self.account.seed(parsed)
        if parsed.faults:
            self.faults.apply(parsed.faults)
            self._seed_faults.append(parsed.faults)
        return self

    def reset(self, backups: bool = True, calls: bool = True, faults: bool = True) -> None:
        """Back to the seeded start: re-create the added backups, forget calls, re-arm only seeded faults."""
        with self._lock:
            if backups:
                self.account.reset()
            if calls:
                self.call_log.clear()
            if faults:
                self.faults.clear()
                for spec in self._seed_faults:
                    self.faults.apply(spec)

    @property
    def calls(self) -> list[Call]:
        """Every API call received so far, oldest first."""
        return self.call_log.all()

    def count(self, operation: str | None = None, outcome: str | None = None) -> int:
        """How many calls (of ``operation``) had ``outcome``: ``ok``, ``dropped``, ``error`` or an error code."""
        return self.call_log.count(operation, outcome)

    # -- serving -------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply | None:
        """Answer one HTTP request: the admin surface under ``ADMIN_PREFIX``, else the API (None: drop it)."""
        if request.path.startswith(ADMIN_PREFIX):
            status, payload = self.serve_admin(request.method, request.path, request.body)
            return Reply(status, {"Content-Type": "application/json"}, dumps_json(payload))
        return self.serve_api(request.method, request.path, request.headers, request.body)

    def serve_api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Answer one API request: decode, check auth, apply faults, run the operation, record the call."""
        identified = identify(method, path, headers)
        if identified is None:
            return NOT_FOUND
        protocol, operation = identified
        clock = self.account.clock
        at = clock.now()
        request_id = str(uuid.uuid4())
        call = Call(operation, {}, "", at, protocol)
        try:
            call = replace(call, params=decode(protocol, headers, body))
            access_key, region = self._authenticate(headers)
            store = self.account.others.get(region or "", self.account.store)
            decision = self.faults.decide(operation, at)
            if decision.latency:
                # Modelled: on the world's virtual clock the caller (blocked on this answer) lends its token.
                clock.sleep(decision.latency)
            if decision.fault == DROP:
                self.call_log.record(call.finished(DROPPED, None))
                return None
            if decision.fault is not None:
                resource = store.arn_of(call.params)
                return self._error(call, self._fault_error(decision.fault, operation, access_key, resource), request_id)
            response = encode_result(protocol, operations.call(store, operation, call.params), request_id)
        except ApiError as api_error:
            return self._error(call, api_error, request_id)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must reach the caller as a 500
            failure = InternalFailureError(f"The emulator failed: {type(exc).__name__}: {exc}")
            return self._error(call, failure, request_id)
        self.call_log.record(call.finished(OK, response.status))
        return response

    def _error(self, call: Call, error: ApiError, request_id: str) -> Reply:
        response = encode_error(call.protocol, error, request_id)
        self.call_log.record(call.finished(error.code, response.status))
        return response

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str, str | None]:
        """The caller's access key and the region its signature is scoped to."""
        authorization = headers.get("authorization")
        match = CREDENTIAL_SCOPE.search(authorization) if authorization else None
        if match is None:
            if self.check_auth:
                signed = "Authorization header is not a SigV4 signature."
                raise MissingAuthenticationTokenError(signed if authorization else "Missing Authentication Token")
            return "anonymous", None
        access_key, region, service = match.groups()
        if self.check_auth and region not in self.account.regions:
            raise InvalidSignatureError(
                f"Credential should be scoped to a valid region. (signed for {region}, emulating {self.account.region})"
            )
        if self.check_auth and service != SIGNING_NAME:
            raise InvalidSignatureError(f"Credential should be scoped to correct service: '{SIGNING_NAME}'.")
        return access_key, region

    def _fault_error(self, fault: str, operation: str, access_key: str, resource: str) -> ApiError:
        """An injected fault in CloudHSM's words."""
        if fault == THROTTLE:
            return ThrottlingError("Rate exceeded")
        if fault == FAIL:
            return InternalFailureError("An internal error occurred (injected by the emulator).")
        assert fault == DENY, fault
        account = self.account
        role = f"assumed-role/EmulatedRole/{access_key}"
        principal = f"arn:{partition_of(account.region)}:sts::{account.account_id}:{role}"
        return AccessDeniedError(denied_message(principal, f"cloudhsm:{operation}", resource))

    # -- the admin surface under /_emulator: inspect backups and calls, arm faults, reset, move the clock

    def serve_admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one admin request with an HTTP status and a JSON-ready payload."""
        parts = urlsplit(path)
        route = parts.path.removeprefix(ADMIN_PREFIX).rstrip("/")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        if not isinstance(data, dict):
            return 400, {"error": "body must be a JSON object"}
        try:
            return self._admin(method, route, query, data)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}

    def _admin(self, method: str, route: str, query: dict[str, str], data: dict[str, Any]) -> tuple[int, Any]:
        account, clock = self.account, self.account.clock
        if method == "GET" and route == "":
            return 200, {
                "url": self.url,
                "region": account.region,
                "account": account.account_id,
                "now": clock.now(),
                "operations": list(operations.OPERATIONS),
                "routes": [f"{m} {ADMIN_PREFIX}{r}: {what}" for (m, r), what in ADMIN_ROUTES.items()],
            }
        if method == "GET" and route == "/backups":
            return 200, {"now": clock.now(), "backups": account.backups()}
        if method == "GET" and route.startswith("/backups/"):
            backup_id = route.removeprefix("/backups/")
            try:
                return 200, account.backup(backup_id)
            except KeyError:
                return 404, {"error": f"no backup {backup_id}"}
        if method == "POST" and route == "/backups":
            return 201, account.add_backup(**parse_seed([data]).backups[0])
        if method == "GET" and route == "/clusters":
            return 200, {"clusters": account.store.cluster_views()}
        if method == "GET" and route == "/calls":
            calls = self.call_log.all(query.get("operation"), query.get("outcome"))
            return 200, {"count": len(calls), "calls": [asdict(c) for c in calls]}
        if method == "GET" and route == "/faults":
            return 200, self.faults.describe()
        if method == "POST" and route == "/faults":
            return 200, self.faults.apply(data).describe()
        if method == "POST" and route == "/reset":
            self.reset(**{key: bool(data.get(key, True)) for key in ("backups", "calls", "faults")})
            return 200, {"reset": True, "backups": len(account.backups())}
        if method == "GET" and route == "/clock":
            return 200, {"now": clock.now()}
        if method == "POST" and route == "/clock":
            advance = getattr(clock, "advance", None)
            if advance is None:
                return 409, {"error": "this emulator's clock cannot be advanced"}
            advance(float(data["advance"]))
            return 200, {"now": clock.now()}
        return 404, {"error": f"no admin route {method} {ADMIN_PREFIX}{route}", "routes": list(ADMIN_ROUTES.values())}

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint URL (``http://127.0.0.1:<port>``); only once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        return self._server.url

    def start(self) -> str:
        """Bind and serve in a background thread; returns the endpoint URL."""
        with self._lock:
            if self._server is None:
                self._server = LoopbackServer(self.respond, host=self.host, port=self.port)
                self._server.start(f"cloudhsm-emulator-{self._server.server_address[1]}")
            return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> CloudHsmEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
