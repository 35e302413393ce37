"""The world's HTTP(S) servers: one threading server on 127.0.0.1 that hands each request to a function.

The CloudHSM emulator, the EventBridge/SSM/Lambda gateway and the ResponseURL endpoint are each a
``respond(Request) -> Reply | None`` behind a ``LoopbackServer``: bound to a free port (port 0), served
from a daemon thread, stopped once. None drops the connection without an answer (an injected fault).
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
HOP_HEADERS = ("content-length", "connection", "transfer-encoding", "server", "date")
"""Headers the server writes itself; a reply's own (a forwarded moto answer's) are left out."""


@dataclass(frozen=True)
class Request:
    """One request: header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """One encoded HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes


Respond = Callable[[Request], Reply | None]


class LoopbackServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer answering every method with ``respond``; HTTPS when given a TLS context."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, respond: Respond, *, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__((host, port), _Handler)
        self.respond = respond
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http(s)://<host>:<port>``."""
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self, name: str) -> str:
        """Serve in a daemon thread; returns the URL."""
        with self._lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
                )
                self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port; a second call does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self.shutdown()
        self.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a worker the world stopped, an idle keep-alive connection reset) is
        not a server error: no traceback on stderr for it. Anything else is reported as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            LOG.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, hands it to the server's ``respond``, writes (or withholds) the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: LoopbackServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(Reply(413, {"Content-Type": "application/json"}, b'{"error": "body too large"}'))
            return
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        reply = self.server.respond(Request(self.command, self.path, headers, body))
        if reply is not None:
            self._write(reply)
            return
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            LOG.debug("connection already closed before the drop")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            if key.lower() not in HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Access logs go to ``logging`` at debug level, never stderr; no path (a ResponseURL holds a secret)."""
        LOG.debug("%s %s", self.address_string(), self.command)
