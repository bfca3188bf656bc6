"""stage(): stream one upstream file into a staging file while hashing it, then verify().

The body is written chunk by chunk (memory stays flat whatever the size) and hashed as it goes:
sha256 always, and the git blob sha1 for small files, which the Hub identifies by that hash.
A cut or stalled body is resumed with a Range request. Nothing here decides whether the bytes are
served: `verify` compares them with upstream's published claims, and the pipeline acts on that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import structlog

from cache.blobs import StagingFile
from proxy.auth import Caller
from proxy.errors import UpstreamError, UpstreamUnavailable
from proxy.settings import Settings
from proxy.upstream import UpstreamClient, UpstreamMeta

log = structlog.get_logger(__name__)

# Chunks handed to the writer and hasher threads. Pieces read from upstream are gathered up to
# this size, or for at most FLUSH_INTERVAL_S on a slow link so progress stays current.
WRITE_CHUNK_BYTES = 1 << 20
FLUSH_INTERVAL_S = 0.1
# Bytes handed to the threads but not yet written and hashed; the reader waits beyond this.
MAX_IN_FLIGHT_BYTES = 4 << 20
# Gathered chunks are at most two reads long.
GATHER_BUFFER_BYTES = 2 * WRITE_CHUNK_BYTES
# Bytes beyond the claimed size that are still read (as evidence) before giving up on a body.
OVERRUN_EVIDENCE_BYTES = 1 << 20


@dataclass(frozen=True)
class StagedBlob:
    staging: StagingFile
    size_bytes: int
    sha256: str
    git_sha1: str | None


class Progress:
    """How far a fetch has got; shared with the requests that wait on it."""

    def __init__(self, size_bytes: int, staging: StagingFile) -> None:
        self.size_bytes = size_bytes
        self.staging = staging
        self.bytes_done = 0
        self.started = time.monotonic()
        self.streamable = False  # the release point was reached: bytes may go out before the end
        self.release_decided = False
        self.header_length: int | None = None
        # Verified and allowed: the last byte of a streamed file may go out.
        self.cleared = False
        self._changed = asyncio.Event()

    def advance(self, bytes_done: int) -> None:
        self.bytes_done = bytes_done
        self.notify()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    def rate_bytes_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.bytes_done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate_bytes_s()
        if rate <= 0:
            return None
        return max(0, self.size_bytes - self.bytes_done) / rate


# Called after every chunk with the progress so far (the pipeline's release-point check).
Observer = Callable[[Progress], Awaitable[None]]


class _Hashes:
    def __init__(self, size_bytes: int, git: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.git_sha1: Any = None
        if git:
            self.git_sha1 = hashlib.sha1(usedforsecurity=False)
            self.git_sha1.update(b"blob %d\0" % size_bytes)

    def update(self, chunk: bytes | memoryview) -> None:
        self.sha256.update(chunk)
        if self.git_sha1 is not None:
            self.git_sha1.update(chunk)


class _Sink:
    """Writes and hashes chunks in two worker threads, each in order, while the event loop goes
    on reading upstream. At most MAX_IN_FLIGHT_BYTES wait in the threads, so memory stays flat;
    progress advances as each chunk reaches the staging file (streaming readers follow it)."""

    def __init__(self, progress: Progress, *, git: bool) -> None:
        self._progress = progress
        self._git = git
        self._file = progress.staging.path.open("wb", buffering=0)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airlock-write")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airlock-hash")
        self._pending: deque[
            tuple[asyncio.Future[None], asyncio.Future[None], int, bytearray | None]
        ] = deque()
        self._free: list[bytearray] = []
        self._in_flight = 0
        self.hashes = _Hashes(progress.size_bytes, git=git)
        self.submitted = 0

    async def push(self, pieces: list[bytes]) -> None:
        """Hand pieces read from upstream to the threads, as one chunk."""
        buffer: bytearray | None = None
        if len(pieces) == 1:
            chunk: bytes | memoryview = pieces[0]
        else:
            # Gather into a recycled buffer: a fresh allocation per chunk costs a page fault
            # per 4 KiB, which at Hub speeds is more than the copy itself.
            size = sum(len(p) for p in pieces)
            buffer = self._free.pop() if self._free else bytearray(max(size, GATHER_BUFFER_BYTES))
            if len(buffer) < size:
                buffer = bytearray(size)
            at = 0
            for piece in pieces:
                buffer[at : at + len(piece)] = piece
                at += len(piece)
            chunk = memoryview(buffer)[:size]
        loop = asyncio.get_running_loop()
        written = loop.run_in_executor(self._writer, self._write, chunk)
        hashed = loop.run_in_executor(self._hasher, self.hashes.update, chunk)
        self.submitted += len(chunk)
        written.add_done_callback(partial(self._written, self.submitted))
        self._pending.append((written, hashed, len(chunk), buffer))
        self._in_flight += len(chunk)
        while self._in_flight > MAX_IN_FLIGHT_BYTES:
            await self._settle_oldest()

    async def drain(self) -> None:
        while self._pending:
            await self._settle_oldest()

    async def restart(self) -> None:
        """Upstream ignored a Range request: throw away what was written and start over."""
        await self.drain()
        self._file.seek(0)
        self._file.truncate()
        self.hashes = _Hashes(self._progress.size_bytes, git=self._git)
        self.submitted = 0
        self._progress.advance(0)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._hasher.shutdown(wait=True)
        self._file.close()

    async def _settle_oldest(self) -> None:
        written, hashed, size, buffer = self._pending.popleft()
        self._in_flight -= size
        await written
        await hashed
        if buffer is not None:
            self._free.append(buffer)

    def _write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            view = view[self._file.write(view) or 0 :]

    def _written(self, end: int, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._progress.advance(end)


async def stage(
    meta: UpstreamMeta,
    caller: Caller,
    *,
    upstream: UpstreamClient,
    settings: Settings,
    progress: Progress,
    observe: Observer,
) -> StagedBlob:
    """Fetch the whole file into `progress.staging`. Raises UpstreamUnavailable or UpstreamError
    when upstream fails for good; the caller discards the staging file then."""
    size = meta.size_bytes
    limit = size + OVERRUN_EVIDENCE_BYTES
    attempts = 0
    sink = _Sink(progress, git=not meta.lfs)
    try:
        while True:
            try:
                async with upstream.open_bytes(meta, caller, start_byte=sink.submitted) as resp:
                    if resp.status == 200 and sink.submitted:
                        await sink.restart()  # upstream ignored the Range: never splice
                    elif resp.status not in (200, 206):
                        raise UpstreamError(
                            resp.status,
                            f"Upstream answered {resp.status} to the download of a file it lists",
                            error_code=resp.headers.get("X-Error-Code"),
                        )
                    elif resp.status == 206 and not _range_starts_at(
                        resp.headers, sink.submitted, size
                    ):
                        raise UpstreamUnavailable("Upstream answered a Range request wrongly")
                    await _copy_body(resp, sink, limit, observe, progress)
                if sink.submitted >= size:
                    break
                raise UpstreamUnavailable(
                    f"Upstream body ended after {sink.submitted} of {size} bytes"
                )
            except UpstreamUnavailable as exc:
                attempts += 1
                if attempts > settings.upstream_retries:
                    raise
                delay_s = (
                    exc.retry_after_s if exc.retry_after_s is not None else min(2**attempts, 8)
                )
                log.warning(
                    "upstream_fetch_retried",
                    attempt=attempts,
                    bytes_done=sink.submitted,
                    reason=exc.message,
                    delay_s=delay_s,
                )
                await asyncio.sleep(delay_s)
        await sink.drain()
    finally:
        sink.close()
    hashes = sink.hashes
    git_sha1 = hashes.git_sha1.hexdigest() if hashes.git_sha1 is not None else None
    return StagedBlob(progress.staging, sink.submitted, hashes.sha256.hexdigest(), git_sha1)


async def _copy_body(
    resp: aiohttp.ClientResponse, sink: _Sink, limit: int, observe: Observer, progress: Progress
) -> None:
    """Hand the body to the sink in chunks of about WRITE_CHUNK_BYTES (one copy at most)."""
    pieces: list[bytes] = []
    gathered = 0
    last_push = time.monotonic()
    async for piece in resp.content.iter_chunked(WRITE_CHUNK_BYTES):
        pieces.append(piece)
        gathered += len(piece)
        if (
            gathered >= WRITE_CHUNK_BYTES
            or sink.submitted + gathered >= limit
            or time.monotonic() - last_push > FLUSH_INTERVAL_S
        ):
            await sink.push(pieces)
            pieces, gathered, last_push = [], 0, time.monotonic()
            await observe(progress)
            if sink.submitted >= limit:
                return
    if pieces:
        await sink.push(pieces)
        await observe(progress)


def _range_starts_at(headers: Any, start: int, size: int) -> bool:
    value = str(headers.get("Content-Range", ""))
    if not value.startswith("bytes "):
        return False
    span, _, total = value[6:].partition("/")
    first, _, _ = span.partition("-")
    return first == str(start) and total in (str(size), "*")


def verify(staged: StagedBlob, meta: UpstreamMeta) -> str | None:
    """What is wrong with the staged bytes compared with upstream's claims, or None."""
    if staged.size_bytes != meta.size_bytes:
        return (
            f"upstream sent {staged.size_bytes} bytes for a file the Hub lists as "
            f"{meta.size_bytes} bytes"
        )
    if meta.sha256 is not None and staged.sha256 != meta.sha256:
        return (
            f"the bytes upstream sent have sha256 {staged.sha256}, the Hub publishes {meta.sha256}"
        )
    if meta.git_sha1 is not None and staged.git_sha1 != meta.git_sha1:
        return (
            f"the bytes upstream sent have git sha1 {staged.git_sha1}, "
            f"the Hub publishes {meta.git_sha1}"
        )
    return None
