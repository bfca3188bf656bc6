"""create_app(settings): the aiohttp application. The route table, the request middleware (request
id, caller, error rendering, audit row, `request_finished` log line), and service lifetimes."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from cache.blobs import BlobStore
from cache.registry import AsyncRegistry, AuditRow, DecisionRow
from proxy.admin.api import setup_api
from proxy.admin.ui import setup_ui
from proxy.auth import Fingerprinter
from proxy.context import CONTEXT, SERVICES, RequestContext, Services, public_base
from proxy.errors import AirlockError, Blocked, MethodNotAllowed, NotFound
from proxy.hub import (
    EXPOSED_HEADERS,
    HarnessesRoute,
    PassThroughApiRoute,
    RepoApiRoute,
    ResolveRoute,
    error_body,
    header_safe,
    parse_route,
)
from proxy.metrics import Metrics
from proxy.pipeline import Pipeline
from proxy.policy import load_policy
from proxy.review import ReviewService
from proxy.review import view as review_view
from proxy.routes import api, health, resolve
from proxy.scan import Scanner
from proxy.scan.isolated import IsolatedScanner
from proxy.settings import Settings
from proxy.upstream import UpstreamClient
from proxy.webhook import Webhook

log = structlog.get_logger(__name__)

# Probes and scrapes: frequent, and about Airlock itself rather than anyone's download.
UNAUDITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READ_ONLY_MESSAGE = "Airlock is a read-only mirror: uploads and changes go to the Hub itself"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings, *, scanner: Scanner | None = None) -> web.Application:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = BlobStore(settings.data_dir)
    registry = AsyncRegistry(settings.data_dir / "registry.sqlite3")
    metrics = Metrics()
    upstream = UpstreamClient(settings, metrics=metrics)
    pipeline = Pipeline(
        settings,
        store=store,
        registry=registry,
        upstream=upstream,
        scanner=scanner
        or IsolatedScanner(
            workers=settings.scan_workers,
            memory_bytes=settings.scan_memory_bytes,
            time_limit_s=settings.scan_time_limit_s,
        ),
        policy=load_policy(settings.policy),
    )
    fingerprinter = Fingerprinter.from_data_dir(settings.data_dir)
    webhook = Webhook.from_settings(settings, metrics)
    _connect_hooks(pipeline, metrics, webhook)
    services = Services(
        settings=settings,
        store=store,
        registry=registry,
        upstream=upstream,
        pipeline=pipeline,
        fingerprinter=fingerprinter,
        metrics=metrics,
        review=ReviewService(
            registry,
            pipeline,
            fingerprinter.caller(None, settings.upstream_token),
            notify=webhook.notify if webhook else None,
            policy_path=settings.policy,
        ),
        webhook=webhook,
    )
    app = web.Application(middlewares=[_middleware], client_max_size=1024 * 1024)
    app[SERVICES] = services
    app.cleanup_ctx.append(_lifetime)
    app.on_response_prepare.append(_stamp_response)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", _metrics)
    setup_ui(app)  # /ui/: the review web UI (before the catch-all)
    setup_api(app)  # /admin/api/: the JSON admin API
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


def _connect_hooks(pipeline: Pipeline, metrics: Metrics, webhook: Webhook | None) -> None:
    def decided(row: DecisionRow, changed: bool) -> None:
        if changed:
            metrics.decision(row.verdict, row.format or "unknown")

    def quarantined(row: DecisionRow) -> None:
        if webhook is not None:
            webhook.notify("blob_quarantined", review_view(row).to_json())

    pipeline.hooks.scanned = lambda report: metrics.scan_finished(
        report.duration_ms / 1000, report.format.value
    )
    pipeline.hooks.decided = decided
    pipeline.hooks.quarantined = quarantined


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    removed = services.store.prepare()
    services.registry.open()
    await services.upstream.start()
    if services.webhook is not None:
        await services.webhook.start()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, services.review.reload_soon, "SIGHUP")
        sighup = True
    except (ValueError, RuntimeError):  # not the main thread (tests run apps in threads)
        sighup = False
    policy = services.pipeline.policy
    log.info(
        "airlock_started",
        upstream=services.settings.upstream_origin,
        data_dir=str(services.settings.data_dir),
        staging_files_removed=removed,
        scanner=services.pipeline.scanner.name,
        scanner_version=services.pipeline.scanner.version,
        policy_version=policy.version,
        policy_source=policy.source,
    )
    yield
    if sighup:
        loop.remove_signal_handler(signal.SIGHUP)
    await services.review.wait_idle()
    await services.pipeline.close()
    services.pipeline.scanner.close()
    if services.webhook is not None:
        await services.webhook.close()  # sends what is queued, for a few seconds at most
    await services.upstream.close()
    services.registry.close()


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus scrape endpoint (text format); see proxy/metrics.py for what is counted."""
    body, content_type = request.app[SERVICES].metrics.render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})


async def _dispatch(request: web.Request) -> web.StreamResponse:
    read_only = request.method in (hdrs.METH_GET, hdrs.METH_HEAD)
    try:
        route = parse_route(request.rel_url.raw_path)
    except NotFound:
        if read_only:
            raise
        raise MethodNotAllowed(READ_ONLY_MESSAGE) from None
    if isinstance(route, ResolveRoute):
        if not read_only:
            raise MethodNotAllowed(READ_ONLY_MESSAGE)
        return await resolve.resolve(request, route)
    if isinstance(route, RepoApiRoute):
        return await api.repo_api(request, route)
    if isinstance(route, HarnessesRoute):
        return await api.harnesses(request)
    if isinstance(route, PassThroughApiRoute):
        return await api.pass_through(request, route)
    raise AssertionError(f"unrouted {route!r}")


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    services = request.app[SERVICES]
    request_id = uuid.uuid4().hex
    caller = services.fingerprinter.caller(
        request.headers.get(hdrs.AUTHORIZATION), services.settings.upstream_token
    )
    context = RequestContext(request_id=request_id, caller=caller)
    request[CONTEXT] = context
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except AirlockError as err:
        if isinstance(err, Blocked):
            err.point_to(public_base(request))
            context.commit = context.commit or err.at_commit
        response = error_response(err)
        context.verdict = context.verdict or type(err).__name__
    except web.HTTPException as exc:
        response = exc
    except Exception:
        log.exception("request_failed")
        response = error_response(AirlockError("Airlock failed to handle this request"))
        context.verdict = "error"
    try:
        if not response.prepared:
            await response.prepare(request)
            await response.write_eof()
        if context.bytes_sent is None:
            context.bytes_sent = _body_bytes(request, response)
    except (ConnectionError, OSError) as exc:
        log.info("client_disconnected", error=type(exc).__name__)
        context.verdict = f"{context.verdict or ''} disconnected".strip()
    finally:
        await _finish(request, response, context, started)
    return response


def _body_bytes(request: web.Request, response: web.StreamResponse) -> int:
    """Body bytes of a response sent whole (aiohttp's own counters include the headers)."""
    if request.method == hdrs.METH_HEAD:
        return 0
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        return len(response.body)
    return response.content_length or 0


async def _finish(
    request: web.Request, response: web.StreamResponse, context: RequestContext, started: float
) -> None:
    duration_s = time.perf_counter() - started
    duration_ms = round(duration_s * 1000, 2)
    bytes_sent = context.bytes_sent or 0
    services = request.app[SERVICES]
    services.metrics.request_finished(request.method, response.status, bytes_sent, duration_s)
    repo = context.repo
    row = AuditRow(
        ts=time.time(),
        request_id=context.request_id,
        client_addr=request.remote,
        token_fp=context.caller.token_fp,
        method=request.method,
        url_path=request.rel_url.raw_path[:2048],
        repo_type=repo.repo_type.value if repo else None,
        repo_id=repo.repo_id if repo else None,
        revision=context.revision,
        commit_sha=context.commit,
        path=context.path,
        status=response.status,
        bytes_sent=bytes_sent,
        verdict=context.verdict,
        duration_ms=duration_ms,
    )
    if request.path not in UNAUDITED_PATHS:
        await services.registry.write(lambda r: r.record_audit(row))
    log.info(
        "request_finished",
        method=request.method,
        url_path=row.url_path,
        status=row.status,
        bytes_sent=bytes_sent,
        duration_ms=duration_ms,
        repo_id=row.repo_id,
        revision=row.revision,
        commit=row.commit_sha,
        path=row.path,
        verdict=row.verdict,
        token_fp=row.token_fp,
        client_addr=row.client_addr,
    )


async def _stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    context = request.get(CONTEXT)
    if context is not None:
        response.headers["X-Request-Id"] = context.request_id
    response.headers.setdefault("Access-Control-Expose-Headers", EXPOSED_HEADERS)


def error_response(err: AirlockError) -> web.Response:
    """The one renderer of errors, in the Hub's dialect (hub-protocol.md §6)."""
    message = header_safe(err.message)
    headers = {"X-Error-Message": message, **err.extra_headers}
    if err.error_code:
        headers["X-Error-Code"] = err.error_code
    if err.commit:
        headers["X-Repo-Commit"] = err.commit
    return web.Response(
        status=err.status,
        body=error_body(err.message),
        content_type="application/json",
        headers=headers,
    )
