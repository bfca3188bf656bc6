"""7z archives: list the members, stream each one out to a spooled file and hand it back to the
engine, which scans it like any other file. Never extracted to disk under its own name.

nullifAI (ReversingLabs, Feb 2025) shipped PyTorch checkpoints compressed with 7z that scanners
skipped because they could not open them; threats.md section 4.4 asks for 7z to be sniffed and
opened like the other wrappers. The container is parsed by py7zr, within bounds set here and by
the engine's limits:

- The header (the member list) is parsed in memory by py7zr, which keeps a ~600-byte dict per
  member and lets a header declare up to one member per byte. Its size is therefore checked from
  the 32-byte signature header (and, for an encoded header, from the declared size of the
  decoded stream) before py7zr reads it.
- Declared member sizes are checked against the engine's limits and against the archive's size
  (ratio) before anything is decompressed; every member is then streamed through a writer that
  counts the bytes it is given (py7zr's `SevenZipFile.read()` would buffer whole members).
- Encrypted content, links, names that leave the extraction directory, and anything py7zr
  refuses are findings: nothing is skipped silently.
"""

from __future__ import annotations

import io
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

import py7zr
from py7zr.archiveinfo import HeaderStreamsInfo

from proxy.scan import zipread
from proxy.scan.report import Finding, Severity

MAGIC = b"7z\xbc\xaf\x27\x1c"
SIGNATURE_BYTES = 32
# The largest header (raw, or decoded when 7-Zip compressed it) py7zr is allowed to parse. 7-Zip
# spends about 110 header bytes on a member with a 45-character name, so this lists a few
# thousand members; a header of this size that declares one member per byte costs py7zr
# about 150 MB.
MAX_HEADER_BYTES = 256 << 10
# Same bomb heuristic as for zip members (declared uncompressed / compressed); 7z compresses
# whole solid blocks, so it is applied to the archive as a whole.
RATIO_LIMIT = zipread.RATIO_LIMIT
RATIO_MIN_BYTES = zipread.RATIO_MIN_BYTES
SPOOL_MEMORY_BYTES = 16 << 20

_ENCODED_HEADER = 0x17
_DRIVE = re.compile(r"^[A-Za-z]:")


class Budget(Protocol):
    """What the engine's per-file budget offers (proxy.scan.engine._Budget)."""

    def out_of_time(self, where: str) -> Finding | None: ...

    def spend(self, size: int, where: str) -> Finding | None: ...


# Scans one extracted member: (name in the archive, its bytes, their size, its location).
ScanMember = Callable[[str, BinaryIO, int, str], list[Finding]]


def check(
    handle: BinaryIO,
    size: int,
    *,
    where: str,
    budget: Budget,
    max_members: int,
    max_member_bytes: int,
    scan_member: ScanMember,
) -> list[Finding]:
    """Findings for the 7z archive in `handle` (at offset 0, `size` bytes), members included:
    each member is spooled and given to `scan_member`, which recurses into the engine."""
    try:
        header_bytes = _declared_header_bytes(handle, size)
    except _Malformed as exc:
        return [_finding("sevenzip-malformed", str(exc), where)]
    if header_bytes > MAX_HEADER_BYTES:
        return [
            _finding(
                "archive-bomb",
                f"the 7z header declares {header_bytes} bytes, more than the "
                f"{MAX_HEADER_BYTES} this engine parses",
                where,
            )
        ]
    handle.seek(0)
    try:
        archive = py7zr.SevenZipFile(handle, "r")
    except py7zr.PasswordRequired:
        return [_encrypted(where)]
    except Exception as exc:  # py7zr raises many types (TypeError too): all of them mean "bad"
        return [_finding("sevenzip-malformed", f"cannot open the 7z archive: {exc!r}", where)]
    with archive:
        return _check_open(archive, size, where, budget, max_members, max_member_bytes, scan_member)


def _check_open(
    archive: py7zr.SevenZipFile,
    size: int,
    where: str,
    budget: Budget,
    max_members: int,
    max_member_bytes: int,
    scan_member: ScanMember,
) -> list[Finding]:
    if archive.needs_password():
        return [_encrypted(where)]
    files = list(archive.files)
    if len(files) > max_members:
        return [_finding("archive-bomb", f"more than {max_members} members", where)]
    findings: list[Finding] = []
    targets: list[str] = []
    declared_total = 0
    for member in files:
        name: str = member.filename
        member_where = _join(where, name)
        declared: int = member.uncompressed or 0
        declared_total += declared
        unsafe = _unsafe_path(name)
        if unsafe is not None:
            findings.append(_finding("sevenzip-path-traversal", f"{name!r} {unsafe}", member_where))
        elif member.is_symlink or member.is_junction:
            findings.append(_finding("sevenzip-link", "archive member is a link", member_where))
        elif member.is_directory or member.is_socket:
            if not member.emptystream:  # py7zr would skip its data unscanned
                findings.append(
                    _finding(
                        "sevenzip-malformed",
                        "a directory or special-file member carries data",
                        member_where,
                    )
                )
        else:
            targets.append(name)
        if declared > max_member_bytes:
            findings.append(
                _finding(
                    "archive-bomb",
                    f"declares {declared} bytes, more than {max_member_bytes}",
                    member_where,
                )
            )
    if declared_total > RATIO_MIN_BYTES and declared_total > RATIO_LIMIT * size:
        findings.append(
            _finding(
                "sevenzip-bomb-ratio",
                f"the members declare {declared_total} bytes from a {size}-byte archive "
                f"(more than {RATIO_LIMIT}:1)",
                where,
            )
        )
    bomb = budget.spend(declared_total, where or "7z")
    if bomb is not None:
        findings.append(bomb)
    if any(f.rule in ("archive-bomb", "sevenzip-bomb-ratio") for f in findings):
        return findings  # blocked already; decompressing it would only cost time and disk
    if not targets:
        return findings
    extraction = _Extraction(where, budget, max_member_bytes, scan_member)
    try:
        # An empty directory of our own as the destination: py7zr checks each name against it
        # (resolving symlinks), so the outcome cannot depend on the process's working directory.
        # Nothing is written there; every member goes to the factory's spools.
        with tempfile.TemporaryDirectory(prefix="airlock-7z-") as root:
            extraction.root = Path(root)
            if len(targets) == len(files):
                archive.extractall(path=root, factory=extraction)
            else:
                archive.extract(path=root, targets=targets, factory=extraction)
    except _Stop as stop:
        findings.extend(extraction.findings)
        findings.append(stop.finding)
        return findings
    except py7zr.PasswordRequired:
        findings.extend(extraction.findings)
        findings.append(_encrypted(where))
        return findings
    except Exception as exc:  # fail closed: whatever py7zr raises is a finding
        findings.extend(extraction.findings)
        findings.append(_finding("sevenzip-malformed", f"cannot extract: {exc!r}", where))
        return findings
    finally:
        extraction.discard()
    findings.extend(extraction.findings)
    return findings


class _Malformed(Exception):
    pass


class _Stop(Exception):
    """Ends an extraction early (a limit was reached); carries the finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def _declared_header_bytes(handle: BinaryIO, size: int) -> int:
    """The size of the header py7zr would parse: the next header as stored, or, when it is an
    encoded (compressed) header, the size it declares once decoded."""
    handle.seek(0)
    signature = handle.read(SIGNATURE_BYTES)
    if len(signature) < SIGNATURE_BYTES or not signature.startswith(MAGIC):
        raise _Malformed("truncated 7z signature header")
    start_crc, offset, length, _ = struct.unpack("<IQQI", signature[8:])
    if zlib.crc32(signature[12:]) != start_crc:
        raise _Malformed("bad 7z signature header CRC")
    if offset > size or length > size - SIGNATURE_BYTES - min(offset, size):
        raise _Malformed("the 7z header lies beyond the end of the file")
    if length > MAX_HEADER_BYTES:
        return int(length)
    handle.seek(SIGNATURE_BYTES + offset)
    raw = handle.read(length)
    if not raw or raw[0] != _ENCODED_HEADER:
        return len(raw)  # a plain header (or an empty archive); py7zr checks the rest
    try:
        streams = HeaderStreamsInfo.retrieve(io.BytesIO(raw[1:]))
        folders = streams.unpackinfo.folders
        decoded = sum(folder.unpacksizes[-1] for folder in folders)
    except Exception as exc:  # what py7zr's own parse would refuse, refused here first
        raise _Malformed(f"bad encoded 7z header: {exc!r}") from exc
    return max(len(raw), int(decoded))


class _MemberSpool(py7zr.Py7zIO):
    """Where py7zr writes one member: a spooled temporary file, counted as it fills. py7zr calls
    `close` once the member is complete (and its CRC checked); the member is scanned then and
    its spool dropped, so only one member is held at a time."""

    def __init__(self, name: str, extraction: _Extraction) -> None:
        self.name = name
        self._extraction = extraction
        # closed by close() once scanned, or by discard() when py7zr stops mid-member
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self._size = 0

    def write(self, s: bytes | bytearray) -> int:
        self._size += len(s)
        limit = self._extraction.max_member_bytes
        if self._size > limit:
            raise _Stop(
                Finding(
                    "archive-bomb",
                    Severity.HIGH,
                    f"decompresses beyond {limit} bytes",
                    _join(self._extraction.where, self.name),
                )
            )
        return self._spool.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self._spool.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._spool.seek(offset, whence)

    def flush(self) -> None:
        self._spool.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._spool.closed:
            return
        try:
            self._extraction.member_done(self.name, self._spool, self._size)  # type: ignore[arg-type]
        finally:
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()


class _Extraction(py7zr.WriterFactory):
    """The writer factory py7zr extracts into; scans each member as soon as it is complete."""

    def __init__(
        self, where: str, budget: Budget, max_member_bytes: int, scan_member: ScanMember
    ) -> None:
        self.where = where
        self.root = Path()
        self.max_member_bytes = max_member_bytes
        self.findings: list[Finding] = []
        self._budget = budget
        self._scan_member = scan_member
        self._spools: list[_MemberSpool] = []

    def create(self, filename: str) -> py7zr.Py7zIO:
        # py7zr passes the sanitised destination path (a duplicate name gets a `_N` suffix).
        path = Path(filename)
        name = path.relative_to(self.root).as_posix() if path.is_absolute() else filename
        spool = _MemberSpool(name, self)
        self._spools.append(spool)
        return spool

    def member_done(self, name: str, spool: BinaryIO, size: int) -> None:
        member_where = _join(self.where, name)
        late = self._budget.out_of_time(member_where)
        if late is not None:
            raise _Stop(late)
        spool.seek(0)
        self.findings.extend(self._scan_member(name, spool, size, member_where))

    def discard(self) -> None:
        """Drop the spools of members py7zr never finished (an error mid-member)."""
        for spool in self._spools:
            spool.discard()
        self._spools.clear()


def _unsafe_path(name: str) -> str | None:
    """Why a member name would leave the extraction directory (py7zr's reader has already
    turned backslashes into slashes)."""
    if not name or all(part in ("", ".") for part in name.split("/")):
        return "is empty"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "has a '..' component"
    return None


def _join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


def _encrypted(where: str) -> Finding:
    return _finding(
        "sevenzip-encrypted",
        "the 7z archive is encrypted (password), so its content cannot be scanned",
        where,
    )


def _finding(rule: str, message: str, where: str) -> Finding:
    return Finding(rule, Severity.HIGH, message, where or None)
