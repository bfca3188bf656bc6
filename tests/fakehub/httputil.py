"""HTTP helpers shared by the handlers: hub errors, request ids, Range parsing, auth."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web

EXPOSE_HEADERS = (
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
    "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash"
)
WWW_AUTHENTICATE = 'Bearer realm="Authentication required", charset="UTF-8"'
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable:
    """Marker for a Range that cannot be served (416)."""


UNSATISFIABLE = Unsatisfiable()


def request_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def hub_error(
    status: int,
    code: str | None,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error as the hub sends it: X-Error-Code/X-Error-Message headers and JSON body."""
    out = {
        "X-Request-Id": request_id(),
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "X-Error-Message": message,
    }
    if code is not None:
        out["X-Error-Code"] = code
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-type", "content-length", "content-disposition"):
            out[name] = value
    return web.Response(
        status=status,
        body=json.dumps({"error": message}).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=out,
    )


def json_response(
    payload: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        charset="utf-8",
        headers={"Access-Control-Allow-Origin": "*", **(headers or {})},
    )


def repo_not_found(*, with_token: bool) -> web.Response:
    if with_token:
        return hub_error(404, "RepoNotFound", "Repository not found")
    return hub_error(
        401, "RepoNotFound", "Repository not found", {"WWW-Authenticate": WWW_AUTHENTICATE}
    )


def revision_not_found(rev: str) -> web.Response:
    return hub_error(404, "RevisionNotFound", f"Invalid rev id: {rev}")


def entry_not_found(commit: str | None) -> web.Response:
    extra = {"X-Repo-Commit": commit} if commit is not None else {}
    return hub_error(404, "EntryNotFound", "Entry not found", extra)


def gated_error(repo_type: str, repo_id: str, *, with_token: bool) -> web.Response:
    if with_token:
        message = (
            f"Access to {repo_type} {repo_id} is restricted and you are not in the authorized "
            f"list. Visit https://huggingface.co/{repo_id} to ask for access."
        )
        return hub_error(403, "GatedRepo", message)
    message = (
        f"Access to {repo_type} {repo_id} is restricted. You must have access to it and be "
        "authenticated to access it. Please log in."
    )
    return hub_error(401, "GatedRepo", message, {"WWW-Authenticate": WWW_AUTHENTICATE})


def parse_range(header: str | None, total: int) -> tuple[int, int] | Unsatisfiable | None:
    """A single ``bytes=`` range as half-open ``(start, stop)``; None means "send it all"."""
    if header is None:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None  # multi-range or junk: ignored, like S3
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or total == 0:
            return UNSATISFIABLE
        return (max(0, total - suffix), total)
    start = int(first)
    if start >= total:
        return UNSATISFIABLE
    stop = total if not last else min(total, int(last) + 1)
    if stop <= start:
        return None  # last < first: syntactically invalid, ignored
    return (start, stop)


def bearer_token(request: web.BaseRequest) -> str | None:
    """The caller's credential: the exact ``Bearer <token>`` value, or the raw header."""
    value = request.headers.get("Authorization")
    if value is None:
        return None
    return value[len("Bearer ") :] if value.startswith("Bearer ") else "\0" + value


def content_disposition(filename: str) -> str:
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"inline; filename*=UTF-8''{quote(filename)}; filename=\"{plain}\";"


def split_raw(raw_path: str) -> tuple[str, str]:
    path, _, query = raw_path.partition("?")
    return path, query
