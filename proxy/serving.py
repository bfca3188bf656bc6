"""Sending bytes: cleared blobs with sendfile, and safetensors files while they arrive.

Both honour a single Range (206, or 416 with `Content-Range: bytes */size`), as the Hub does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest

from proxy.pipeline import Flight


class BlobResponse(web.FileResponse):
    """aiohttp's FileResponse (sendfile, Range, HEAD) with the Hub's ETag instead of aiohttp's
    mtime-based one: the client names its cache blob after the ETag (hub-protocol.md §3)."""

    def __init__(self, path: Path, *, hub_etag: str, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._hub_etag = hub_etag

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        # The middleware sends the response itself (to audit the bytes sent); aiohttp then calls
        # prepare() again, which FileResponse would take as a request to send the file twice.
        if self.prepared:
            return self._payload_writer
        return await super().prepare(request)

    @property
    def etag(self) -> Any:
        return self._headers.get(hdrs.ETAG)

    @etag.setter
    def etag(self, value: Any) -> None:
        # FileResponse assigns its own ETag while preparing; keep the Hub's.
        self._headers[hdrs.ETAG] = f'"{self._hub_etag}"'


def requested_range(request: web.Request, size_bytes: int) -> tuple[int, int] | None:
    """The inclusive byte span asked for, None for the whole file; raises 416 when unsatisfiable."""
    if hdrs.RANGE not in request.headers:
        return None
    try:
        span = request.http_range
    except ValueError:
        return None  # a malformed Range is ignored, as RFC 9110 allows
    start, stop = span.start, span.stop
    if start is not None and start < 0:
        start = max(0, size_bytes + start)
    start = start or 0
    end = size_bytes - 1 if stop is None else min(stop, size_bytes) - 1
    if start >= size_bytes or end < start:
        raise web.HTTPRequestRangeNotSatisfiable(
            headers={hdrs.CONTENT_RANGE: f"bytes */{size_bytes}"}
        )
    return start, end


async def stream_growing(
    request: web.Request, flight: Flight, headers: dict[str, str]
) -> tuple[web.StreamResponse, int, bool]:
    """Send a file that is still being fetched, following the staging file as it grows, with
    sendfile (no copy through Python).

    The last byte is held back until the flight has verified and cleared the whole file, so a
    client never holds a complete, unverified copy. If verification fails the connection is
    aborted. Returns the response, the body bytes sent, and whether all of them went out.
    """
    progress = flight.progress
    size = progress.size_bytes
    span = requested_range(request, size)
    start, end = span if span is not None else (0, size - 1)
    response = web.StreamResponse(status=206 if span is not None else 200, headers=headers)
    response.content_type = "application/octet-stream"
    response.content_length = end - start + 1
    if span is not None:
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end}/{size}"
    await response.prepare(request)  # sends the headers at once
    if request.method == hdrs.METH_HEAD or size == 0:
        await response.write_eof()
        return response, 0, True
    loop = asyncio.get_running_loop()
    position = start
    with progress.staging.path.open("rb") as handle:
        while position <= end:
            if flight.failed or request.transport is None:
                _abort(request)
                return response, position - start, False
            available = size if progress.cleared else min(progress.bytes_done, size - 1)
            count = min(available, end + 1) - position
            if count > 0:
                await loop.sendfile(request.transport, handle, position, count)
                position += count
            elif flight.finished:  # finished without clearing: nothing more may go out
                _abort(request)
                return response, position - start, False
            else:
                await progress.changed(1.0)
    await response.write_eof()
    return response, position - start, True


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
