"""A tiny raw HTTP client for the self-tests: no redirects, no decoding, partial bodies kept."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Resp:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    incomplete: bool = False  # the connection closed before Content-Length bytes arrived

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Resp:
    """Send one request exactly as given (the path is not re-quoted)."""
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
        return Resp(resp.status, out, data, incomplete)
    finally:
        conn.close()
