"""Sending file bytes: single Range, HEAD without body, and the byte-level faults."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Mapping

from aiohttp import web

from .content import Blob
from .faults import Fault, FaultRule
from .httputil import UNSATISFIABLE, hub_error, parse_range

STALL_LEAD_BYTES = 64 * 1024
WRONG_BYTES_SPAN = 16


def accepts_gzip(request: web.BaseRequest) -> bool:
    """True when the client lists gzip (with a non-zero q) in Accept-Encoding."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def status_fault(rule: FaultRule, headers: Mapping[str, str]) -> web.Response:
    if rule.kind is Fault.RATE_LIMIT:
        retry = {"Retry-After": str(rule.retry_after if rule.retry_after is not None else 1)}
        return hub_error(429, None, "Rate limit reached (fakehub fault)", {**headers, **retry})
    extra = dict(headers)
    if rule.retry_after is not None:
        extra["Retry-After"] = str(rule.retry_after)
    return hub_error(rule.status, None, f"Internal error (fakehub fault {rule.status})", extra)


async def send_blob(
    request: web.BaseRequest,
    blob: Blob,
    headers: Mapping[str, str],
    rule: FaultRule | None,
) -> web.StreamResponse:
    """Answer HEAD/GET for ``blob`` with ``headers``, honouring one Range and ``rule``."""
    if rule is not None and rule.kind in (Fault.SERVER_ERROR, Fault.RATE_LIMIT):
        return status_fault(rule, headers)
    total = blob.size
    rng = parse_range(request.headers.get("Range"), total)
    out = dict(headers)
    out["Accept-Ranges"] = "bytes"
    if rng is UNSATISFIABLE:
        out["Content-Range"] = f"bytes */{total}"
        return hub_error(416, None, "Requested Range Not Satisfiable", out)
    start, stop = rng if isinstance(rng, tuple) else (0, total)
    status = 206 if isinstance(rng, tuple) else 200
    if status == 206:
        out["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
    if blob.virtual and request.method != "HEAD":
        return hub_error(500, None, "fakehub: this file is announced only and has no content")
    if rule is not None and rule.kind is Fault.GZIP and request.method != "HEAD":
        return await _send_gzip(request, blob, out, start, stop, status)
    length = stop - start
    send_len = length
    if rule is not None and rule.kind is Fault.WRONG_LENGTH:
        send_len = max(0, length + rule.length_delta)
    resp = web.StreamResponse(status=status, headers=out)
    resp.content_length = send_len
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    # a client that goes away mid-body is fine: the status was already sent and logged
    with contextlib.suppress(ConnectionResetError):
        await _stream(request, resp, blob, start, stop, send_len, rule)
    return resp


async def _send_gzip(
    request: web.BaseRequest,
    blob: Blob,
    headers: dict[str, str],
    start: int,
    stop: int,
    status: int,
) -> web.StreamResponse:
    chunks = [chunk async for chunk in blob.iter_range(start, stop)]
    data = gzip.compress(b"".join(chunks))
    headers.pop("Content-Length", None)
    headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(status=status, headers=headers)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    half = len(data) // 2
    await resp.write(data[:half])
    await resp.write(data[half:])
    return resp


async def _stream(
    request: web.BaseRequest,
    resp: web.StreamResponse,
    blob: Blob,
    start: int,
    stop: int,
    send_len: int,
    rule: FaultRule | None,
) -> None:
    kind = rule.kind if rule is not None else None
    length = stop - start
    cut_at = send_len // 2 if kind is Fault.CUT else None
    stall_at = min(STALL_LEAD_BYTES, send_len // 2) if kind is Fault.STALL else None
    flip_from = length // 2
    throttled = rule is not None and (kind is Fault.THROTTLE or rule.throttle)
    sent = 0
    offset = 0  # position in the real range
    async for raw in blob.iter_range(start, stop):
        chunk = raw
        if kind is Fault.WRONG_BYTES:
            chunk = _flip(chunk, offset, flip_from)
        offset += len(raw)
        chunk = chunk[: max(0, send_len - sent)]
        while chunk:
            if cut_at is not None and sent >= cut_at:
                _cut(request)
                return
            if stall_at is not None and sent >= stall_at and rule is not None:
                stall_at = None
                await asyncio.sleep(rule.stall_s)
            limit = len(chunk)
            if cut_at is not None:
                limit = min(limit, cut_at - sent)
            if stall_at is not None:
                limit = min(limit, stall_at - sent)
            if throttled and rule is not None:
                limit = min(limit, max(1, rule.rate_bytes_s // 20))
            piece, chunk = chunk[:limit], chunk[limit:]
            await resp.write(piece)
            sent += len(piece)
            if throttled and rule is not None:
                await asyncio.sleep(len(piece) / rule.rate_bytes_s)
    if send_len > sent:
        await resp.write(b"\n" * (send_len - sent))


def _cut(request: web.BaseRequest) -> None:
    """Close the connection after the bytes written so far are flushed."""
    if request.transport is not None:
        request.transport.close()


def _flip(chunk: bytes, offset: int, flip_from: int) -> bytes:
    """Invert the bytes of ``chunk`` that fall in ``[flip_from, flip_from + SPAN)``."""
    lo = max(0, flip_from - offset)
    hi = min(len(chunk), flip_from + WRONG_BYTES_SPAN - offset)
    if lo >= hi:
        return chunk
    mutable = bytearray(chunk)
    for i in range(lo, hi):
        mutable[i] ^= 0xFF
    return bytes(mutable)
