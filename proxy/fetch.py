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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import structlog

from cache.blobs import BlobStore, StagingFile
from proxy.auth import Caller
from proxy.errors import UpstreamError, UpstreamUnavailable
from proxy.settings import Settings
from proxy.upstream import UpstreamClient, UpstreamMeta

log = structlog.get_logger(__name__)

# Written and hashed in a worker thread per chunk; small enough that progress (and the
# Retry-After derived from it) stays current on slow links.
WRITE_CHUNK_BYTES = 256 * 1024
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

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.git_sha1 is not None:
            self.git_sha1.update(chunk)


def _write_and_hash(handle: BinaryIO, hashes: _Hashes, chunk: bytes) -> None:
    # In a worker thread: hashlib and file writes release the GIL for large buffers.
    handle.write(chunk)
    hashes.update(chunk)


async def stage(
    meta: UpstreamMeta,
    caller: Caller,
    *,
    upstream: UpstreamClient,
    store: BlobStore,
    settings: Settings,
    progress: Progress,
    observe: Observer,
) -> StagedBlob:
    """Fetch the whole file into `progress.staging`. Raises UpstreamUnavailable or UpstreamError
    when upstream fails for good; the caller discards the staging file then."""
    loop = asyncio.get_running_loop()
    size = meta.size_bytes
    limit = size + OVERRUN_EVIDENCE_BYTES
    attempts = 0
    with progress.staging.path.open("wb") as handle:
        hashes = _Hashes(size, git=not meta.lfs)
        done = 0
        while True:
            try:
                async with upstream.open_bytes(meta, caller, start_byte=done) as resp:
                    if resp.status == 200 and done:
                        # Upstream ignored the Range: start over rather than splice.
                        handle.seek(0)
                        handle.truncate()
                        hashes = _Hashes(size, git=not meta.lfs)
                        done = 0
                    elif resp.status not in (200, 206):
                        raise UpstreamError(
                            resp.status,
                            f"Upstream answered {resp.status} to the download of a file it lists",
                            error_code=resp.headers.get("X-Error-Code"),
                        )
                    elif resp.status == 206 and not _range_starts_at(resp.headers, done, size):
                        raise UpstreamUnavailable("Upstream answered a Range request wrongly")
                    buffer = bytearray()
                    async for piece in resp.content.iter_chunked(WRITE_CHUNK_BYTES):
                        buffer += piece
                        if len(buffer) >= WRITE_CHUNK_BYTES or done + len(buffer) >= limit:
                            done = await _flush(loop, handle, hashes, buffer, done, progress)
                            await observe(progress)
                            if done >= limit:
                                break
                    done = await _flush(loop, handle, hashes, buffer, done, progress)
                    await observe(progress)
                if done >= size:
                    break
                raise UpstreamUnavailable(f"Upstream body ended after {done} of {size} bytes")
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
                    bytes_done=done,
                    reason=exc.message,
                    delay_s=delay_s,
                )
                await asyncio.sleep(delay_s)
        handle.flush()
    git_sha1 = hashes.git_sha1.hexdigest() if hashes.git_sha1 is not None else None
    return StagedBlob(progress.staging, done, hashes.sha256.hexdigest(), git_sha1)


async def _flush(
    loop: asyncio.AbstractEventLoop,
    handle: BinaryIO,
    hashes: _Hashes,
    buffer: bytearray,
    done: int,
    progress: Progress,
) -> int:
    if not buffer:
        return done
    chunk = bytes(buffer)
    buffer.clear()
    await loop.run_in_executor(None, _write_and_hash, handle, hashes, chunk)
    handle.flush()  # readers streaming the staging file see every byte counted in progress
    done += len(chunk)
    progress.advance(done)
    return done


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
