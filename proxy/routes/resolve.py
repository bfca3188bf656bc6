"""HEAD/GET `/{repo}/resolve/{revision}/{path}` (and `/datasets/...`, `/api/resolve-cache/...`)."""

from __future__ import annotations

from aiohttp import hdrs, web

from proxy.context import CONTEXT, SERVICES
from proxy.errors import Blocked
from proxy.hub import ResolveRoute, file_headers, warning_header
from proxy.pipeline import Fetching, Ready
from proxy.serving import BlobResponse, stream_growing


async def resolve(request: web.Request, route: ResolveRoute) -> web.StreamResponse:
    try:
        return await _resolve(request, route)
    except Blocked as blocked:
        if not _loader_hides_refusals(request):
            raise
        return _refuse_at_download(request, route, blocked)


def _loader_hides_refusals(request: web.Request) -> bool:
    """transformers loads weights with `_raise_exceptions_for_gated_repo=False`: a 403 GatedRepo
    at HEAD time becomes "does not appear to have a file named ...", hiding Airlock's reason.
    Its user agent names the file type only when telemetry is on, so every transformers
    request gets the refusal at download time (which shows the reason for every file)."""
    return "transformers/" in request.headers.get(hdrs.USER_AGENT, "")


def _refuse_at_download(
    request: web.Request, route: ResolveRoute, blocked: Blocked
) -> web.StreamResponse:
    """For such loaders the HEAD succeeds and the GET fails with 451 and no error code, which
    transformers reports as "There was a specific connection error ... <Airlock's reason>"
    (hub-protocol.md §6.2). Nothing of the file's content is sent either way."""
    known = blocked.upstream_file
    if request.method == hdrs.METH_HEAD and known is not None and blocked.at_commit is not None:
        etag, size_bytes = known
        headers = file_headers(
            commit=blocked.at_commit, etag=etag, size_bytes=size_bytes, path=route.file.path
        )
        headers[hdrs.CONTENT_LENGTH] = str(size_bytes)
        request[CONTEXT].verdict = "Blocked (at download)"
        request[CONTEXT].commit = blocked.at_commit
        return web.Response(status=200, headers=headers)
    raise blocked.at_download()


async def _resolve(request: web.Request, route: ResolveRoute) -> web.StreamResponse:
    services = request.app[SERVICES]
    context = request[CONTEXT]
    context.about(route.file)
    pipeline = services.pipeline
    admission = await pipeline.admit(route.file, context.caller)
    # A hit is a cleared blob already on disk (Ready); a miss waits for a fetch and scan
    # (Fetching). Refusals (blocked, pending errors) raise before this and count as neither.
    services.metrics.cache_lookup(hit=isinstance(admission, Ready))
    if isinstance(admission, Fetching):
        context.commit = admission.file.revision
        flight = admission.flight
        wait_s = services.settings.head_wait_s if request.method == hdrs.METH_HEAD else None
        if wait_s is None:
            while not await flight.wait_streamable(3600.0):
                pass
        elif not await flight.wait_streamable(wait_s):
            raise flight.pending_error(route.file)
        if not flight.finished:
            # The release point was reached: the header is checked and the rest may stream.
            context.verdict = "streaming"
            meta = admission.meta
            headers = file_headers(
                commit=meta.commit, etag=meta.etag, size_bytes=meta.size_bytes, path=route.file.path
            )
            response, context.bytes_sent, complete = await stream_growing(request, flight, headers)
            if not complete:
                context.verdict = "aborted"
            return response
        ready = await pipeline.settle(admission, timeout_s=0)
        assert ready is not None
        admission = ready
    return serve_ready(request, admission)


def serve_ready(request: web.Request, ready: Ready) -> web.StreamResponse:
    context = request[CONTEXT]
    row = ready.file
    context.commit = row.commit_sha
    context.verdict = "cleared"
    headers = file_headers(
        commit=row.commit_sha, etag=row.etag, size_bytes=row.size_bytes, path=row.path
    )
    headers[hdrs.CONTENT_TYPE] = "application/octet-stream"
    if ready.warning:
        headers["X-HF-Warning"] = warning_header("airlock-offline", ready.warning)
    return BlobResponse(ready.blob_path, hub_etag=row.etag, headers=headers)
