"""Raw HTTP for tests that need exact control: no redirects followed, the path sent exactly as
given (no normalisation, no re-quoting), and a cut body kept rather than raised."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    incomplete: bool = False  # the connection closed before Content-Length bytes arrived

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request to `url` exactly as given."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        incomplete = False
        try:
            data = resp.read()
        except http.client.IncompleteRead as exc:
            data, incomplete = exc.partial, True
        out = {k.lower(): v for k, v in resp.getheaders()}
        return RawResponse(resp.status, out, data, incomplete)
    finally:
        conn.close()


def raw_request(
    method: str,
    base_url: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    body: bytes | None = None,
    timeout_s: float = 30.0,
) -> RawResponse:
    return call(base_url + path, method, headers, body, timeout_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
