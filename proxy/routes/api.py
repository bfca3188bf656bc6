"""The Hub's JSON API, passed through with Airlock's changes applied.

Answers keep upstream's status and JSON, minus Xet (`xetHash` fields, Xet links), with
pagination links pointing back at Airlock. Every answer for a repo is remembered so that, when
upstream is unreachable, the last one can be served with a warning; answers pinned to a commit
never change, so for public repos those are served from the registry without asking upstream.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from proxy.context import CONTEXT, SERVICES, Services, public_base
from proxy.errors import MethodNotAllowed, NotFound, UpstreamUnavailable
from proxy.hub import (
    GIT_SHA1_RE,
    HARNESSES_BODY,
    ApiKind,
    PassThroughApiRoute,
    RepoApiRoute,
    api_url_path,
    rewrite_link_header,
    strip_xet_json,
    warning_header,
)
from proxy.pipeline import OFFLINE_WARNING
from proxy.upstream import ApiAnswer

# Upstream answer headers a client may need; everything else (Xet, cookies, CDN) is dropped.
_KEPT_HEADERS = ("Content-Type", "X-Total-Count", "X-Repo-Commit", "ETag", "Last-Modified")
# Commit-pinned answers of these kinds never change.
_IMMUTABLE_AT_COMMIT = (ApiKind.REVISION, ApiKind.TREE, ApiKind.PATHS_INFO)
_PATHS_INFO_FIELDS = ("paths", "expand")


async def harnesses(request: web.Request) -> web.Response:
    """Answered locally: every new client process asks (hub-protocol.md §1.8), and the answer
    only tunes the client's user agent."""
    return web.json_response(HARNESSES_BODY)


async def repo_api(request: web.Request, route: RepoApiRoute) -> web.StreamResponse:
    services = request.app[SERVICES]
    context = request[CONTEXT]
    context.repo = route.repo
    context.revision = route.revision
    context.path = route.path
    if route.kind is ApiKind.XET_READ_TOKEN:
        # Reaching this means a Xet advertisement leaked past Airlock: never hand out a token.
        raise NotFound(
            "Airlock serves files over plain HTTP and does not hand out Xet tokens; "
            "download through /resolve instead"
        )
    expected = hdrs.METH_POST if route.kind is ApiKind.PATHS_INFO else hdrs.METH_GET
    if request.method not in (expected, hdrs.METH_HEAD if expected == hdrs.METH_GET else ""):
        raise MethodNotAllowed(f"{request.method} is not supported on this Hub API path")
    form = await _paths_info_form(request) if route.kind is ApiKind.PATHS_INFO else None
    path_qs = api_url_path(route) + (f"?{request.query_string}" if request.query_string else "")
    key = _cache_key(request.method, path_qs, form)
    public = await services.registry.read(
        lambda r: r.repo_public(route.repo.repo_type, route.repo.repo_id)
    )
    pinned = route.revision is not None and GIT_SHA1_RE.match(route.revision) is not None
    if public and pinned and route.kind in _IMMUTABLE_AT_COMMIT:
        cached = await services.registry.read(lambda r: r.api_answer(key))
        if cached is not None:
            context.verdict = "cached"
            return _respond(request, services, cached[0], cached[1], warning=None)
    try:
        answer = await services.upstream.api(
            "POST" if form is not None else "GET", path_qs, context.caller, form=form
        )
    except UpstreamUnavailable:
        cached = await services.registry.read(lambda r: r.api_answer(key))
        allowed = public or services.pipeline.access.confirmed(route.repo, context.caller)
        if cached is None or not allowed:
            raise
        context.verdict = "offline"
        return _respond(request, services, cached[0], cached[1], warning=OFFLINE_WARNING)
    headers, body = _clean(answer)
    await _learn_commit(services, route, body)
    await services.registry.write(
        lambda r: r.record_api_answer(
            key, route.repo.repo_type.value, route.repo.repo_id, headers, body
        )
    )
    return _respond(request, services, headers, body, warning=None)


async def pass_through(request: web.Request, route: PassThroughApiRoute) -> web.StreamResponse:
    """Other read-only API calls (whoami, search) go upstream as they are, never cached."""
    services = request.app[SERVICES]
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
        raise MethodNotAllowed("Airlock is a read-only mirror: only GET is passed upstream")
    path_qs = route.path + (f"?{request.query_string}" if request.query_string else "")
    answer = await services.upstream.api("GET", path_qs, request[CONTEXT].caller)
    headers, body = _clean(answer)
    return _respond(request, services, headers, body, warning=None)


async def _paths_info_form(request: web.Request) -> list[tuple[str, str]]:
    posted = await request.post()
    form = [(k, v) for k, v in posted.items() if k in _PATHS_INFO_FIELDS and isinstance(v, str)]
    if not any(k == "paths" for k, _ in form):
        raise NotFound("paths-info needs at least one `paths` form field")
    return form


def _cache_key(method: str, path_qs: str, form: list[tuple[str, str]] | None) -> str:
    return json.dumps([method, path_qs, form], separators=(",", ":"))


def _clean(answer: ApiAnswer) -> tuple[dict[str, str], bytes]:
    headers = {k: answer.headers[k] for k in _KEPT_HEADERS if k in answer.headers}
    if "Link" in answer.headers:
        headers["Link"] = answer.headers["Link"]
    body = answer.body
    if "json" in headers.get("Content-Type", "application/json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            raise UpstreamUnavailable(
                "Upstream sent an API answer that is not valid JSON"
            ) from None
        body = json.dumps(strip_xet_json(parsed), separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json; charset=utf-8"
    return headers, body


async def _learn_commit(services: Services, route: RepoApiRoute, body: bytes) -> None:
    """A revision answer names the commit a branch or tag points at: remember it."""
    revision = route.revision
    if route.kind is not ApiKind.REVISION or revision is None or GIT_SHA1_RE.match(revision):
        return
    parsed: Any = json.loads(body)
    sha = parsed.get("sha") if isinstance(parsed, dict) else None
    if isinstance(sha, str) and GIT_SHA1_RE.match(sha):
        await services.registry.write(
            lambda r: r.record_revision(route.repo.repo_type, route.repo.repo_id, revision, sha)
        )


def _respond(
    request: web.Request,
    services: Services,
    headers: dict[str, str],
    body: bytes,
    *,
    warning: str | None,
) -> web.Response:
    out = dict(headers)
    if "Link" in out:
        link = rewrite_link_header(
            out["Link"], services.settings.upstream_origin, public_base(request)
        )
        if link is None:
            del out["Link"]
        else:
            out["Link"] = link
    if warning:
        out["X-HF-Warning"] = warning_header("airlock-offline", warning)
    return web.Response(body=body, headers=out)
