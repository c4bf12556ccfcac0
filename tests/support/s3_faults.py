"""A fault-injecting HTTP proxy in front of the moto S3 server: forwards every request, except that
while ``deny`` matches a request it answers ``403 AccessDenied`` as S3 does for bad or expired
credentials. Lets tests reproduce "storage refuses for a while, then recovers"."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied</Message></Error>")
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        server: FaultyS3Proxy = self.server.owner  # type: ignore[attr-defined]
        if server.deny(self.command, self.path):
            server.denied += 1
            self._reply(403, {"Content-Type": "application/xml"}, DENIED if self.command != "HEAD" else b"")
            return
        conn = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP | {"content-length"}}
        self._reply(resp.status, out, data, head_length=resp.getheader("Content-Length"))

    def _reply(self, status: int, headers: dict[str, str], data: bytes, head_length: str | None = None) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        length = head_length if self.command == "HEAD" and head_length is not None else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class FaultyS3Proxy:
    """Start with :meth:`start`; ``endpoint`` is its URL; set ``deny = lambda method, path: bool``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.deny: Callable[[str, str], bool] = lambda method, path: False
        self.denied = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FaultyS3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
