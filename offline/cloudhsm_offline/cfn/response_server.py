"""The ResponseURL endpoint: an HTTPS server on 127.0.0.1 standing in for CloudFormation's presigned S3 URLs.

Its certificate comes from a throw-away trustme CA whose PEM is written to a temporary file; that
path becomes the function's ``AWS_CA_BUNDLE``. Each request gets a presigned-looking URL whose
``X-Amz-Signature`` (64 random hex characters) is the secret a handler must never log.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from cloudhsm_offline.clock import VirtualClock
from cloudhsm_offline.loopback import LoopbackServer, Reply, Request
from cloudhsm_offline.observers import Listeners

PATH_PREFIX = "/cloudformation-custom-resource-response/"


@dataclass
class ReceivedResponse:
    """One PUT to a ResponseURL."""

    request_id: str
    raw: bytes
    modelled: float
    parsed: Any = None

    @property
    def size(self) -> int:
        """Body length in bytes."""
        return len(self.raw)


@dataclass
class MintedUrl:
    """A ResponseURL handed out for one request."""

    request_id: str
    url: str
    responses: list[ReceivedResponse] = field(default_factory=list)


class ResponseServer:
    """HTTPS endpoint for ResponseURLs; records every body PUT to it."""

    def __init__(self, clock: VirtualClock | None = None, region: str = "us-east-1") -> None:
        self.clock = clock or VirtualClock()
        self.region = region
        self._ca = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="offline-responses-")
        self.ca_bundle = str(Path(self._tmp.name) / "offline-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        self._minted: dict[str, MintedUrl] = {}
        """Every URL handed out, by its signature."""
        self._lock = threading.Condition()
        self.listeners: Listeners[[ReceivedResponse]] = Listeners()
        """Called with every recorded PUT."""
        self._server: LoopbackServer | None = None

    def start(self) -> str:
        """Start serving; returns the base URL."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # trustme's configure_cert would write the key to a temporary file of its own, outside our folder: a
        # signal during start-up could leave it behind. Ours lives in the folder that every stop removes.
        chain = str(Path(self._tmp.name) / "offline-server.pem")
        self._ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(chain)
        context.load_cert_chain(chain)
        self._server = LoopbackServer(self._respond, tls=context)
        return self._server.start("response-url")

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        assert self._server is not None, "start() first"
        return self._server.url

    def stop(self) -> None:
        """Stop serving and delete the CA file."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> ResponseServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mint(self, stack_id: str, request_id: str) -> str:
        """A presigned-looking URL for one request."""
        signature = secrets.token_hex(32)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.now()))
        credential = f"AKIAOFFLINEEXAMPLE00/{amz_date[:8]}/{self.region}/s3/aws4_request"
        stack_part = urllib.parse.quote(stack_id, safe="")
        key = f"{PATH_PREFIX}{stack_part}%7C{request_id}"
        query = urllib.parse.urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": credential,
                "X-Amz-Date": amz_date,
                "X-Amz-Expires": "7200",
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Signature": signature,
            }
        )
        url = f"{self.url}{key}?{query}"
        with self._lock:
            self._minted[signature] = MintedUrl(request_id, url)
        return url

    def _respond(self, request: Request) -> Reply:
        """Record a PUT; 405 for another method, 403 for an unknown or tampered URL, else 200."""
        if request.method != "PUT":
            return Reply(405, {}, b"")
        with self._lock:
            minted = self._minted.get(_signature(request.path))
        if minted is None or not minted.url.endswith(request.path):
            return Reply(403, {}, b"")
        response = ReceivedResponse(minted.request_id, request.body, self.clock.now())
        with contextlib.suppress(ValueError):  # not JSON: the simulator judges the raw bytes
            response.parsed = json.loads(request.body)
        with self._lock:
            minted.responses.append(response)
        self.clock.notify()  # the simulator waits on the clock for this response
        self.listeners.notify(response)
        return Reply(200, {}, b"")

    def responses(self, request_id: str | None = None) -> list[ReceivedResponse]:
        """Every recorded PUT (for one request id, or all), in arrival order per URL."""
        with self._lock:
            return [r for m in self._minted.values() if request_id in (None, m.request_id) for r in m.responses]

    def responses_for_url(self, url: str) -> list[ReceivedResponse]:
        """Every PUT to one minted URL."""
        with self._lock:
            minted = self._minted.get(_signature(url))
            return list(minted.responses) if minted else []

    def wait_for_response(self, url: str, timeout: float | None) -> ReceivedResponse | None:
        """Wait up to ``timeout`` modelled seconds for the first PUT to ``url`` (the caller holds a clock token)."""
        self.clock.wait_for(lambda: bool(self.responses_for_url(url)), timeout)
        responses = self.responses_for_url(url)
        return responses[0] if responses else None

    @property
    def secrets(self) -> list[str]:
        """Every signature minted so far (to check none leaked into logs)."""
        with self._lock:
            return list(self._minted)


def _signature(url: str) -> str:
    """The ``X-Amz-Signature`` of a ResponseURL (or its path and query), "" when it has none."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("X-Amz-Signature", [""])[0]
