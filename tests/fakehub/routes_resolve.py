"""HEAD/GET ``/{repo}/resolve/{rev}/{path}`` and ``/api/resolve-cache/...``."""

from __future__ import annotations

import hashlib
import mimetypes
from urllib.parse import quote, unquote

from aiohttp import web

from .access import RepoRef, check_gated, open_repo
from .bodies import accepts_gzip, send_blob
from .context import Ctx
from .faults import Fault, FaultRule, Site
from .httputil import (
    EXPOSE_HEADERS,
    content_disposition,
    entry_not_found,
    request_id,
    revision_not_found,
)
from .model import FileObj, Repo


def _base_headers(commit: str, etag: str) -> dict[str, str]:
    return {
        "X-Repo-Commit": commit,
        "ETag": f'"{etag}"',
        "Accept-Ranges": "bytes",
        "X-Request-Id": request_id(),
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin, Accept-Encoding",
    }


def _lookup(
    ctx: Ctx, request: web.BaseRequest, ref: RepoRef, rev: str, path: str
) -> tuple[Repo, str, FileObj] | web.Response:
    opened = open_repo(ctx, request, ref)
    if isinstance(opened, web.Response):
        return opened
    denied = check_gated(opened, request)
    if denied is not None:
        return denied
    with ctx.state.lock:
        sha = opened.resolve(rev)
        found = opened.commits[sha].files.get(path) if sha is not None else None
    if sha is None:
        return revision_not_found(rev)
    if found is None:
        return entry_not_found(sha)
    return opened, sha, found


def _body_rule(ctx: Ctx, request: web.BaseRequest, repo: Repo, path: str) -> FaultRule | None:
    site = Site(
        point="hub-body",
        endpoint="resolve",
        method=request.method,
        raw_path=request.path,
        repo_ids=frozenset({repo.repo_id}),
        paths=frozenset({path}),
    )
    has_range = "Range" in request.headers
    gzip_ok = accepts_gzip(request) and not has_range
    return ctx.faults.take(site, lambda r: r.kind is not Fault.GZIP or gzip_ok)


async def _direct(
    ctx: Ctx, request: web.BaseRequest, repo: Repo, sha: str, found: FileObj
) -> web.StreamResponse:
    headers = _base_headers(sha, found.oid)
    headers["Content-Type"] = mimetypes.guess_type(found.path)[0] or "application/octet-stream"
    headers["Content-Disposition"] = content_disposition(found.path.rsplit("/", 1)[-1])
    rule = _body_rule(ctx, request, repo, found.path)
    return await send_blob(request, found.blob, headers, rule)


def _lfs_redirect(ctx: Ctx, repo: Repo, sha: str, found: FileObj) -> web.Response:
    filename = found.path.rsplit("/", 1)[-1]
    disposition = content_disposition(filename)
    if found.xet_hash is not None:
        repo_hex = hashlib.sha256(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24]
        cdn_path = f"/xet-bridge-us/{repo_hex}/{found.xet_hash}"
    else:
        cdn_path = f"/lfs/{found.blob.sha256}"
    location = f"{ctx.cdn_url}{cdn_path}?{ctx.sign(cdn_path, disposition)}"
    headers = _base_headers(sha, found.oid)
    headers.update(
        {
            "Location": location,
            "X-Linked-Etag": f'"{found.blob.sha256}"',
            "X-Linked-Size": str(found.size),
        }
    )
    if found.xet_hash is not None:
        plural = repo.repo_type + "s"
        token_url = f"{ctx.hub_url}/api/{plural}/{repo.repo_id}/xet-read-token/{sha}"
        recon_url = f"{ctx.cas_url}/reconstruction/{found.xet_hash}"
        headers["X-Xet-Hash"] = found.xet_hash
        headers["Link"] = (
            f'<{token_url}>; rel="xet-auth", <{recon_url}>; rel="xet-reconstruction-info"'
        )
    return web.Response(status=302, text=f"Found. Redirecting to {location}", headers=headers)


def _resolve_cache_redirect(ref: RepoRef, repo: Repo, sha: str, found: FileObj) -> web.Response:
    plural = repo.repo_type + "s"
    quoted_path = quote(found.path)
    original = f"{ref.prefix}{repo.repo_id}/{'/'.join(ref.rest)}"
    location = (
        f"/api/resolve-cache/{plural}/{repo.repo_id}/{sha}/{quoted_path}"
        f"?{quote(original, safe='')}=&etag=%22{found.oid}%22"
    )
    headers = _base_headers(sha, found.oid)
    headers["Location"] = location
    return web.Response(
        status=307, text=f"Temporary Redirect. Redirecting to {location}", headers=headers
    )


async def handle_resolve(ctx: Ctx, request: web.BaseRequest, ref: RepoRef) -> web.StreamResponse:
    rev = unquote(ref.rest[1])
    path = unquote("/".join(ref.rest[2:]))
    looked = _lookup(ctx, request, ref, rev, path)
    if isinstance(looked, web.Response):
        return looked
    repo, sha, found = looked
    if found.lfs:
        return _lfs_redirect(ctx, repo, sha, found)
    canonical = "/" not in repo.repo_id
    if (
        repo.resolve_style == "resolve-cache"
        and not (repo.private or repo.gated or canonical)
        and found.size > 0
    ):
        return _resolve_cache_redirect(ref, repo, sha, found)
    return await _direct(ctx, request, repo, sha, found)


async def handle_resolve_cache(
    ctx: Ctx, request: web.BaseRequest, ref: RepoRef
) -> web.StreamResponse:
    sha, path = ref.rest[0], unquote("/".join(ref.rest[1:]))
    looked = _lookup(ctx, request, ref, sha, path)
    if isinstance(looked, web.Response):
        return looked
    repo, sha, found = looked
    if found.lfs:
        return _lfs_redirect(ctx, repo, sha, found)
    return await _direct(ctx, request, repo, sha, found)
