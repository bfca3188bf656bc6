"""Content-addressed blob storage on local disk.

Layout under the data directory:

    staging/      files being fetched; never served from a path, wiped at start-up
    blobs/<sha256>       verified and cleared content, the only bytes Airlock serves
    quarantine/<sha256>  evidence: blocked files and bytes that failed verification

A staging file reaches `blobs/` only through `commit`, which the pipeline calls after the bytes
were verified and judged. The rename is atomic, so a crash leaves either no blob or a whole one.
Blobs are addressed by hash only: no name taken from a URL ever reaches the filesystem.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StagingFile:
    path: Path


class BlobStore:
    """Local-disk backend. A multi-replica deployment would put an S3-compatible store behind the
    same methods; nothing outside `cache/` knows which one is in use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / "staging"
        self.blobs_dir = root / "blobs"
        self.quarantine_dir = root / "quarantine"

    def prepare(self) -> int:
        """Create the folders and delete what a crash left in staging. Returns files removed."""
        for folder in (self.staging_dir, self.blobs_dir, self.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        removed = 0
        for leftover in self.staging_dir.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def new_staging(self) -> StagingFile:
        path = self.staging_dir / f"{secrets.token_hex(16)}.partial"
        # O_EXCL: a name collision must never reuse someone else's bytes.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return StagingFile(path)

    def discard(self, staging: StagingFile) -> None:
        staging.path.unlink(missing_ok=True)

    def commit(self, staging: StagingFile, sha256: str) -> Path:
        """Make verified, cleared bytes servable under their hash."""
        target = self.blobs_dir / _checked(sha256)
        _fsync(staging.path)
        staging.path.replace(target)
        _fsync(self.blobs_dir)  # the rename itself must survive a crash
        return target

    def quarantine(self, staging: StagingFile, sha256: str) -> Path:
        """Keep refused bytes as evidence, where nothing serves them."""
        target = self.quarantine_dir / _checked(sha256)
        staging.path.replace(target)
        return target

    def path(self, sha256: str) -> Path | None:
        """The servable file for a hash, or None when it is not (or no longer) on disk."""
        candidate = self.blobs_dir / _checked(sha256)
        return candidate if candidate.is_file() else None

    def quarantined(self, sha256: str) -> Path | None:
        candidate = self.quarantine_dir / _checked(sha256)
        return candidate if candidate.is_file() else None

    def release(self, sha256: str) -> Path | None:
        """Move reviewed, now allowed bytes out of quarantine to where they are served."""
        source = self.quarantined(sha256)
        if source is None:
            return self.path(sha256)
        target = self.blobs_dir / _checked(sha256)
        source.replace(target)
        _fsync(self.blobs_dir)
        return target

    def stored(self, sha256: str) -> Path | None:
        """The verified bytes wherever they are kept (to scan them again)."""
        return self.path(sha256) or self.quarantined(sha256)

    def writable(self) -> bool:
        probe = self.staging_dir / f".probe-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            return False
        return True


def _checked(sha256: str) -> str:
    if not _SHA256_RE.match(sha256):
        raise ValueError("blob names are lowercase sha256 hex digests")
    return sha256


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
