"""CloudHsmEmulator: an emulated account's backups (``account``), its faults and call log, served over HTTP."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cloudhsm_offline.clock import SimClock
from cloudhsm_offline.emulator import admin
from cloudhsm_offline.emulator.account import EmulatedAccount
from cloudhsm_offline.emulator.calls import DROPPED, OK, Call, CallLog
from cloudhsm_offline.emulator.errors import (
    ApiError,
    InternalFailureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
)
from cloudhsm_offline.emulator.faults import FaultPlan
from cloudhsm_offline.emulator.model import Clock
from cloudhsm_offline.emulator.protocol import WireResponse, decode, encode_error, encode_result, identify
from cloudhsm_offline.emulator.retention import DEFAULT_PURGE_INTERVAL
from cloudhsm_offline.emulator.seed import Seed, load_seed
from cloudhsm_offline.emulator.server import EmulatorServer
from cloudhsm_offline.emulator.store import partition_of

SIGNING_NAME = "cloudhsm"
CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
NOT_FOUND = WireResponse(404, {"Content-Type": "application/json"}, b'{"error": "not found"}')


class CloudHsmEmulator(EmulatedAccount):
    """An emulated CloudHSM v2 backup API (plus tags and clusters) on 127.0.0.1 with a lazy, clock-driven state machine.

    Use as a context manager (``with CloudHsmEmulator() as emu: emu.url``) or ``start()``/``stop()``.
    Point boto3 at it with ``AWS_ENDPOINT_URL_CLOUDHSM_V2=emu.url`` plus fake credentials.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        region: str = "us-east-1",
        account: str = "123456789012",
        restore_seconds: float = 0.0,
        restore_in_progress_state: str = "PENDING_DELETION",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        check_auth: bool = True,
        delete_timestamp_is_expiry: bool = True,
        default_page_size: int = 50,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
    ) -> None:
        super().__init__(
            clock if clock is not None else SimClock(),
            region,
            account,
            restore_seconds,
            restore_in_progress_state,
            delete_timestamp_is_expiry=delete_timestamp_is_expiry,
            default_page_size=default_page_size,
            purge_interval=purge_interval,
        )
        self.faults = FaultPlan()
        self.call_log = CallLog()
        self.host = host
        self.port = port
        self.check_auth = check_auth
        self._seed_faults: list[dict[str, Any]] = []
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    def seed(self, source: str | Path | Mapping[str, Any] | list[Any] | Seed) -> CloudHsmEmulator:
        """Apply a seed (file path, loaded data or ``Seed``): settings first, then backups and faults."""
        parsed = source if isinstance(source, Seed) else load_seed(source)
        settings = parsed.settings
        if "region" in settings:
            self.region = str(settings["region"])
        if "account" in settings:
            self.account = str(settings["account"])
        if "restore_seconds" in settings:
            self.restore_seconds = float(settings["restore_seconds"])
        if "restore_in_progress_state" in settings:
            self.restore_in_progress_state = str(settings["restore_in_progress_state"])
        if "purge_interval" in settings:
            self.store.sweep.interval = float(settings["purge_interval"])
        for kwargs in parsed.clusters:
            self.add_cluster(**kwargs)
        for kwargs in parsed.backups:
            if kwargs.get("region"):
                self.add_region(str(kwargs["region"]))
            self.add_backup(**kwargs)
        if parsed.faults:
            self.faults.apply(parsed.faults)
            self._seed_faults.append(parsed.faults)
        return self

    def reset(self, backups: bool = True, calls: bool = True, faults: bool = True) -> None:
        """Back to the seeded start: re-create the added backups, forget calls, re-arm only seeded faults."""
        with self._lock:
            if backups:
                self.reset_backups()
            if calls:
                self.call_log.clear()
            if faults:
                self.faults.clear()
                for spec in self._seed_faults:
                    self.faults.apply(spec)

    # -- the call log --------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every API call received so far, oldest first."""
        return self.call_log.all()

    def count(self, operation: str | None = None, outcome: str | None = None) -> int:
        """How many calls (of ``operation``) had ``outcome``: ``ok``, ``dropped``, ``error`` or an error code."""
        return self.call_log.count(operation, outcome)

    # -- serving -------------------------------------------------------------------------------

    def serve_api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> WireResponse | None:
        """Answer one API request: decode, check auth, apply faults, run the operation, record the call."""
        identified = identify(method, path, headers)
        if identified is None:
            return NOT_FOUND
        protocol, operation = identified
        at = self.clock.now()
        request_id = str(uuid.uuid4())
        call = Call(operation, {}, "", at, protocol)
        try:
            call = call.with_params(decode(protocol, operation, headers, body).params)
            access_key, region = self._authenticate(headers)
            api = self._regions.get(region or "", self.api)
            decision = self.faults.decide(
                operation, at, principal=self._principal(access_key), resource=api.store.arn_of(call.params)
            )
            if decision.latency:
                # Modelled: on the world's virtual clock the caller (blocked on this answer) lends its token.
                self.clock.sleep(decision.latency)
            if decision.drop:
                self.call_log.record(call.finished(DROPPED, None))
                return None
            if decision.error is not None:
                return self._error(call, decision.error, request_id)
            response = encode_result(protocol, api.call(operation, call.params), request_id)
        except ApiError as api_error:
            return self._error(call, api_error, request_id)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must reach the caller as a 500
            failure = InternalFailureError(f"The emulator failed: {type(exc).__name__}: {exc}")
            return self._error(call, failure, request_id)
        self.call_log.record(call.finished(OK, response.status))
        return response

    def serve_admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one admin request (see ``admin``)."""
        return admin.handle(self, method, path, body)

    def _error(self, call: Call, error: ApiError, request_id: str) -> WireResponse:
        response = encode_error(call.protocol, error, request_id)
        self.call_log.record(call.finished(error.code, response.status))
        return response

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str, str | None]:
        """The caller's access key and the region its signature is scoped to."""
        authorization = headers.get("authorization")
        if not authorization:
            if self.check_auth:
                raise MissingAuthenticationTokenError("Missing Authentication Token")
            return "anonymous", None
        match = CREDENTIAL_SCOPE.search(authorization)
        if match is None:
            if self.check_auth:
                raise MissingAuthenticationTokenError("Authorization header is not a SigV4 signature.")
            return "anonymous", None
        access_key, region, service = match.groups()
        if self.check_auth and region != self.region and region not in self._regions:
            raise InvalidSignatureError(
                f"Credential should be scoped to a valid region. (signed for {region}, emulating {self.region})"
            )
        if self.check_auth and service != SIGNING_NAME:
            raise InvalidSignatureError(f"Credential should be scoped to correct service: '{SIGNING_NAME}'.")
        return access_key, region

    def _principal(self, access_key: str) -> str:
        return f"arn:{partition_of(self.region)}:sts::{self.account}:assumed-role/EmulatedRole/{access_key}"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint URL (``http://127.0.0.1:<port>``); only once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Bind and serve in a background thread; returns the endpoint URL."""
        with self._lock:
            if self._server is None:
                self._server = EmulatorServer((self.host, self.port), self)
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"cloudhsm-emulator-{self._server.server_address[1]}",
                    daemon=True,
                )
                self._thread.start()
            return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> CloudHsmEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
