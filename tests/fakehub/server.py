"""The three aiohttp applications (hub, CDN, CAS stub), request logging and pre-faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web
from aiohttp.typedefs import Middleware

from .access import parse_api_repo, parse_resolve
from .bodies import status_fault
from .context import CTX_KEY, Ctx
from .faults import Endpoint, Fault, Site
from .httputil import hub_error, request_id, split_raw
from .records import Origin, RequestRecord
from .routes_api import handle_api, not_found_page
from .routes_cdn import handle_cas, handle_cdn
from .routes_resolve import handle_resolve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECORD_KEY = web.RequestKey("fakehub_record", int)
PREPARED_KEY = web.RequestKey("fakehub_prepared", bool)
ORIGIN_KEY = web.AppKey("fakehub_origin", str)
MAX_LOGGED_BODY = 64 * 1024


def _headers(request: web.BaseRequest) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _logging_middleware(origin: Origin) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        ctx = request.app[CTX_KEY]
        body = b""
        length = request.content_length
        if request.body_exists and length is not None and length <= MAX_LOGGED_BODY:
            body = await request.read()
        path, query = split_raw(request.raw_path)
        record = RequestRecord(
            origin=origin,
            method=request.method,
            path=path,
            query=query,
            headers=_headers(request),
            status=0,
            time=time.time(),
            body=body,
        )
        record_id = ctx.log.start(record)
        request[RECORD_KEY] = record_id
        try:
            return await handler(request)
        except web.HTTPException as exc:
            ctx.log.finish(record_id, exc.status)
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            if not request.get(PREPARED_KEY, False):
                ctx.log.finish(record_id, 500)
            raise

    return middleware


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request[PREPARED_KEY] = True
    record_id = request.get(RECORD_KEY)
    if record_id is not None:
        request.app[CTX_KEY].log.finish(record_id, response.status)
    if request.app[ORIGIN_KEY] == "hub" and "X-Request-Id" not in response.headers:
        response.headers["X-Request-Id"] = request_id()


async def _pre_faults(
    ctx: Ctx,
    request: web.Request,
    endpoint: Endpoint,
    path: str,
    site_paths: frozenset[str],
    repo_ids: frozenset[str],
) -> web.StreamResponse | None:
    site = Site(
        point="pre",
        endpoint=endpoint,
        method=request.method,
        raw_path=path,
        repo_ids=repo_ids,
        paths=site_paths,
    )
    for _ in range(3):
        rule = ctx.faults.take(site)
        if rule is None:
            return None
        if rule.kind is Fault.SLOW_HEAD:
            await asyncio.sleep(rule.delay_s)
        elif rule.kind is Fault.STALL:
            await asyncio.sleep(rule.stall_s)
        else:
            return status_fault(rule, {})
    return None


async def _hub_handler(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    path, query = split_raw(request.raw_path)
    if path.startswith("/api/"):
        api_ref = parse_api_repo(ctx, path.split("/")[2:], query)
        repo_ids = frozenset({api_ref.repo_id}) if api_ref is not None else frozenset()
        early = await _pre_faults(ctx, request, "api", path, frozenset(), repo_ids)
        if early is not None:
            return early
        return await handle_api(ctx, request, path, query)
    ref = parse_resolve(path, query)
    if ref is None:
        return not_found_page()
    if request.method not in ("GET", "HEAD"):
        return hub_error(405, None, "Method not allowed")
    file_path = unquote("/".join(ref.rest[2:]))
    early = await _pre_faults(
        ctx, request, "resolve", path, frozenset({file_path}), frozenset({ref.repo_id})
    )
    if early is not None:
        return early
    return await handle_resolve(ctx, request, ref)


async def _cdn_handler(request: web.Request) -> web.StreamResponse:
    path, query = split_raw(request.raw_path)
    return await handle_cdn(request.app[CTX_KEY], request, path, query)


async def _cas_handler(request: web.Request) -> web.StreamResponse:
    return await handle_cas(request)


def build_app(ctx: Ctx, origin: Origin) -> web.Application:
    app = web.Application(middlewares=[_logging_middleware(origin)], client_max_size=1 << 24)
    app[CTX_KEY] = ctx
    app[ORIGIN_KEY] = origin
    handler = {"hub": _hub_handler, "cdn": _cdn_handler, "cas": _cas_handler}[origin]
    app.router.add_route("*", "/{tail:.*}", handler)
    app.on_response_prepare.append(_on_prepare)
    return app
