"""The CDN origin (signed LFS and xet-bridge URLs) and the Xet CAS stub."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

from aiohttp import web

from .bodies import accepts_gzip, send_blob
from .content import Blob
from .context import Ctx
from .faults import Fault, Site
from .httputil import json_response

AUTH_REJECTION = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)


def s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return web.Response(
        status=status, text=body, content_type="application/xml", headers=_cdn_headers()
    )


def _cdn_headers() -> dict[str, str]:
    return {"X-Amz-Cf-Id": secrets.token_urlsafe(42), "X-Cache": "Miss from cloudfront"}


def _find_blob(ctx: Ctx, path: str) -> tuple[Blob, frozenset[str], frozenset[str]] | None:
    """The blob behind a CDN path, with the repo file paths and repo ids that hold it."""
    segs = path.strip("/").split("/")
    with ctx.state.lock:
        if len(segs) == 2 and segs[0] == "lfs":
            blob = ctx.state.by_sha256.get(segs[1])
        elif len(segs) == 3 and segs[0] == "xet-bridge-us":
            blob = ctx.state.by_xet.get(segs[2])
        else:
            return None
        if blob is None:
            return None
        owners = ctx.state.owners.get(blob.sha256, set())
        paths = frozenset(owner[2] for owner in owners)
        repos = frozenset(owner[1] for owner in owners)
    return blob, paths, repos


async def handle_cdn(
    ctx: Ctx, request: web.BaseRequest, path: str, query: str
) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        return s3_error(405, "MethodNotAllowed", "The specified method is not allowed")
    if "Authorization" in request.headers:
        return s3_error(400, "InvalidArgument", AUTH_REJECTION)
    problem = ctx.verify(path, query)
    if problem is not None:
        return s3_error(403, "AccessDenied", problem)
    found = _find_blob(ctx, path)
    if found is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    blob, paths, repos = found
    gzip_ok = accepts_gzip(request) and "Range" not in request.headers
    site = Site(
        point="cdn-body",
        endpoint="cdn",
        method=request.method,
        raw_path=path,
        repo_ids=repos,
        paths=paths,
    )
    rule = ctx.faults.take(site, lambda r: r.kind is not Fault.GZIP or gzip_ok)
    params = dict(parse_qsl(query, keep_blank_values=True))
    headers = _cdn_headers()
    headers.update(
        {
            "Content-Type": "binary/octet-stream",
            "ETag": f'"{blob.sha256[:32]}"',
            "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        }
    )
    disposition = params.get("response-content-disposition")
    if disposition:
        headers["Content-Disposition"] = disposition
    return await send_blob(request, blob, headers, rule)


async def handle_cas(request: web.BaseRequest) -> web.StreamResponse:
    return json_response({"error": "fakehub CAS stub: not found"}, status=404)
