"""Content identity: git blob sha1, LFS pointers, sha256, and blobs that stream their bytes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 1 << 20
SMALL_FILE_LIMIT = 1024
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".gguf",
    ".onnx",
    ".h5",
    ".npy",
    ".npz",
    ".joblib",
    ".msgpack",
    ".parquet",
    ".zip",
)
GITATTRIBUTES_PATH = ".gitattributes"
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
).encode()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer text stored in git in place of an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs_name(path: str) -> bool:
    return path.lower().endswith(LFS_SUFFIXES)


@dataclass(frozen=True)
class Blob:
    """File content and its identity. Exactly one of ``data``/``path`` is set unless virtual."""

    size: int
    sha256: str
    sha1: str  # git blob sha1 of the content itself
    data: bytes | None = None
    path: Path | None = None

    @property
    def virtual(self) -> bool:
        """A blob that is only announced (huge files): it has no bytes to serve."""
        return self.data is None and self.path is None

    def read_all(self) -> bytes:
        """Whole content; for assertions and gzip of small text files only."""
        if self.data is not None:
            return self.data
        if self.path is not None:
            return self.path.read_bytes()
        raise ValueError("virtual blob has no content")

    async def iter_range(self, start: int, stop: int) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, stop)`` in chunks of at most CHUNK_SIZE."""
        if self.data is not None:
            for pos in range(start, stop, CHUNK_SIZE):
                yield self.data[pos : min(stop, pos + CHUNK_SIZE)]
            return
        if self.path is None:
            raise ValueError("virtual blob has no content")
        with self.path.open("rb") as fh:
            fh.seek(start)
            pos = start
            while pos < stop:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK_SIZE, stop - pos))
                if not chunk:
                    raise OSError(f"{self.path} is shorter than announced")
                pos += len(chunk)
                yield chunk


def blob_from_bytes(data: bytes) -> Blob:
    return Blob(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=git_blob_sha1(data),
        data=bytes(data),
    )


def blob_from_path(path: Path) -> Blob:
    """Hash a file by streaming it; the content stays on disk."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    read = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            sha256.update(chunk)
            sha1.update(chunk)
            read += len(chunk)
    if read != size:
        raise OSError(f"{path} changed while hashing")
    return Blob(size=size, sha256=sha256.hexdigest(), sha1=sha1.hexdigest(), path=path)


def virtual_blob(key: str, size: int) -> Blob:
    """A blob announced with ``size`` but without content (deterministic fake hashes)."""
    seed = f"virtual:{key}:{size}".encode()
    return Blob(size=size, sha256=hashlib.sha256(seed).hexdigest(), sha1=git_blob_sha1(seed))


def to_blob(content: bytes | Path) -> Blob:
    if isinstance(content, Path):
        return blob_from_path(content)
    return blob_from_bytes(content)
