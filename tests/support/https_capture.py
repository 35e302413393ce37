"""A real HTTPS ResponseURL for handler-level tests: records every body PUT to it."""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


class ResponseCapture:
    """An HTTPS server on 127.0.0.1 with a certificate from a throwaway CA; answers 200 to PUTs."""

    def __init__(self, ca_path: Path) -> None:
        self.ca = trustme.CA()
        self.ca.cert_pem.write_to_path(str(ca_path))
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                capture.bodies[self.path.split("?")[0]].append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, signed_at: float | None = None) -> tuple[str, str]:
        """A fresh presigned-looking URL and its path; the signature is the secret part. ``signed_at`` (epoch s) is
        its X-Amz-Date (SigV4 query authentication, Amazon S3 API Reference "Authenticating Requests: Using Query
        Parameters"), when CloudFormation signed it; None keeps a fixed date."""
        path = f"/cfn-response/{secrets.token_hex(8)}"
        signature = secrets.token_hex(32)
        date = "20261126T000000Z" if signed_at is None else time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
        query = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires=7200"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        )
        return f"https://127.0.0.1:{self.server.server_port}{path}?{query}", path

    def responses(self, path: str) -> list[dict[str, Any]]:
        """Every body PUT to ``path``, parsed."""
        return [json.loads(body) for body in self.bodies[path]]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
