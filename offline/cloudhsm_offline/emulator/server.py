"""The HTTP layer: a threading server on 127.0.0.1 that hands API and admin requests to the emulator."""

from __future__ import annotations

import logging
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from cloudhsm_offline.emulator.protocol import WireResponse, dumps_json

LOG = logging.getLogger(__name__)
ADMIN_PREFIX = "/_emulator"
MAX_BODY = 1024 * 1024


class Application(Protocol):
    """What the server needs from the emulator."""

    def serve_api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> WireResponse | None:
        """Answer an API request (header names lower-cased); None means drop the connection."""
        ...

    def serve_admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer an admin request with a status and a JSON-ready payload."""
        ...


class EmulatorServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound to one ``Application``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Application) -> None:
        super().__init__(address, EmulatorRequestHandler)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a worker the world stopped, an idle keep-alive connection reset) is
        not a server error: no traceback on stderr for it. Anything else is reported as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            LOG.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Reads one request, routes it to the admin surface or the API, writes (or withholds) the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EmulatorServer

    def do_GET(self) -> None:
        """GET: admin surface only."""
        self._route("GET")

    def do_POST(self) -> None:
        """POST: the API, or the admin surface."""
        self._route("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Send access logs to ``logging`` at debug level instead of stderr."""
        LOG.debug("%s %s", self.address_string(), format % args)

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(WireResponse(413, {"Content-Type": "application/json"}, b'{"error": "body too large"}'))
            return
        body = self.rfile.read(length) if length else b""
        app = self.server.app
        if self.path.startswith(ADMIN_PREFIX):
            status, payload = app.serve_admin(method, self.path, body)
            self._write(WireResponse(status, {"Content-Type": "application/json"}, dumps_json(payload)))
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        response = app.serve_api(method, self.path, headers, body)
        if response is None:
            self._drop()
        else:
            self._write(response)

    def _write(self, response: WireResponse) -> None:
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            LOG.debug("connection already closed before the drop")
