"""HEAD/GET `/{repo}/resolve/{revision}/{path}` (and `/datasets/...`, `/api/resolve-cache/...`)."""

from __future__ import annotations

from aiohttp import hdrs, web

from proxy.context import CONTEXT, SERVICES
from proxy.hub import ResolveRoute, file_headers, warning_header
from proxy.pipeline import Fetching, Ready
from proxy.serving import BlobResponse, stream_growing


async def resolve(request: web.Request, route: ResolveRoute) -> web.StreamResponse:
    services = request.app[SERVICES]
    context = request[CONTEXT]
    context.about(route.file)
    pipeline = services.pipeline
    admission = await pipeline.admit(route.file, context.caller)
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
