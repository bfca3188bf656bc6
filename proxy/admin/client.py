"""The admin API's client, for the `airlock review`, `rescan`, `audit` and `policy` commands."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

API = "/admin/api"
TIMEOUT_S = 60.0


class AdminApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def get(self, path: str, **query: Any) -> Any:
        return self._call("GET", path, query, None)

    def post(self, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        return self._call("POST", path, query, body or {})

    def _call(
        self, method: str, path: str, query: dict[str, Any], body: dict[str, Any] | None
    ) -> Any:
        params = {k: str(v) for k, v in query.items() if v is not None}
        url = f"{self.base_url}{API}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        if not url.startswith(("http://", "https://")):
            raise AdminApiError(0, f"the Airlock URL must be http(s): {self.base_url!r}")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = str(json.loads(raw)["error"])
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")[:500] or exc.reason
            raise AdminApiError(exc.code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminApiError(0, f"cannot reach Airlock at {self.base_url}: {reason}") from None
