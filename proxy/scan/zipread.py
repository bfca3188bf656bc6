"""Airlock's own ZIP reader: list an archive and read its members the way torch.load does.

Python's zipfile is not fit for scanning. It crashes on archives that PyTorch loads without a
complaint (a local/central name mismatch, CVE-2025-1944; flag bits on a decoy member,
CVE-2025-1945; a bad CRC-32, CVE-2025-10156), it returns the *last* of duplicate names while
torch reads the first, and it calls a file with a pickle in front of a zip a zip, while torch.load
unpickles the front (threats.md section 2). So this module parses the end record, the central
directory and every local header itself, reports each of those differentials as a finding, and
reads a member the way miniz (torch's zip library) does: sizes from the central directory, the
data offset recomputed from the local header, no CRC check, DEFLATE inflated in bounded chunks.

`read_listing` never raises on a damaged archive: it returns what it could read together with a
`zip-malformed` finding (fail closed). `open_member` raises only `ZipError` subclasses (and the
I/O errors of the file it reads).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from proxy.scan.report import Finding, Severity

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Declared uncompressed/compressed ratio above which a member of more than RATIO_MIN_BYTES is a
# bomb suspect. Weights rarely compress better than 10:1; text-like members reach 20:1.
RATIO_LIMIT = 200
RATIO_MIN_BYTES = 1 << 20
MAX_TOTAL_UNCOMPRESSED_BYTES = 64 << 30
MAX_MEMBERS = 100_000
CHUNK_BYTES = 64 << 10

METHOD_STORED = 0
METHOD_DEFLATE = 8

FLAG_ENCRYPTED = 0x0001
FLAG_PATCHED = 0x0020  # "compressed patched data": miniz refuses it, zipfile raises
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800

_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_END64_SIG = b"PK\x06\x06"
_LOCATOR_SIG = b"PK\x06\x07"

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes, then name and extra
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes, then name, extra and comment
_END = struct.Struct("<4sHHHHIIH")  # 22 bytes, then the archive comment
_END64 = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes (a record without extensible data)
_LOCATOR = struct.Struct("<4sIQI")  # 20 bytes, right before the end record

_MAX_COMMENT = 0xFFFF
# The last bytes of a file that can hold the end record, its ZIP64 locator and ZIP64 record.
END_SEARCH_BYTES = _END64.size + _LOCATOR.size + _END.size + _MAX_COMMENT

_ZIP64_EXTRA = 0x0001
_S_IFMT = 0o170000
_S_IFLNK = 0o120000

_Read = Callable[[int, int], bytes]
_MAX_OFFSET = 1 << 62


class ZipError(ValueError):
    """A member could not be read as the loader would read it (a ValueError, like other
    errors about bad data)."""


class ZipBomb(ZipError):
    """Reading the member would produce more than the caller's byte limit."""


class ZipCorrupt(ZipError):
    """The member's headers or data are damaged: no loader would get these bytes."""


class ZipUnsupported(ZipError):
    """The member uses a compression method torch cannot read (only stored and DEFLATE)."""


@dataclass(frozen=True)
class ZipMember:
    name: str  # central-directory name (UTF-8 if flag bit 11, else cp437)
    local_name: str  # name in the local file header
    header_offset: int  # absolute offset of the local file header
    data_offset: int  # absolute offset of the data (local header + name + extra)
    compressed_size: int
    uncompressed_size: int
    method: int  # 0 stored, 8 deflate, others unsupported
    flags: int  # central-directory general-purpose flags
    crc32: int
    is_symlink: bool  # unix mode S_IFLNK in the external attributes


@dataclass(frozen=True)
class ZipListing:
    members: tuple[ZipMember, ...]  # central-directory order, duplicates kept
    prefix_bytes: int  # bytes before the first local header (0 for a normal zip)
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class EndRecord:
    """Where the central directory is, according to the end record (ZIP64 values applied)."""

    offset: int  # absolute offset of the end-of-central-directory record
    directory_offset: int  # as declared (relative to the archive's start)
    directory_size: int
    entries: int
    directory_end: int  # where the directory must end: the ZIP64 record, else the end record
    zip64_offset: int | None  # absolute offset of the ZIP64 end record, if there is one
    zip64_declared_offset: int | None  # where the ZIP64 locator says it is
    trailing_bytes: int  # bytes after the record and its comment (< 0: the comment is cut)
    problems: tuple[str, ...]  # multi-disk archives, ZIP64 inconsistencies

    @property
    def fits(self) -> bool:
        """The directory fits between the file's start and the end record."""
        return 0 <= self.directory_size <= self.directory_end and (
            self.directory_offset + self.directory_size <= self.directory_end
        )

    @property
    def directory_start(self) -> int:
        """Where the directory really is: right before its end (Python's zipfile reading of an
        archive whose offsets are relative to a prefix); equal to the declared offset otherwise."""
        return self.directory_end - self.directory_size


def find_zip(f: BinaryIO, size: int) -> bool:
    """Is there an end-of-central-directory record (ZIP or ZIP64) that points at a directory?

    True also for archives that `read_listing` will call malformed (multi-disk, trailing bytes):
    whatever a reader could take for a zip must be scanned as one.
    """
    read = _file_reader(f)
    record = _locate_end(read, size)
    if record is None or not record.fits:
        return False
    if record.directory_size == 0:
        return record.entries == 0
    return read(record.directory_start, 4) == _CENTRAL_SIG


def end_record(tail: bytes, size: int) -> EndRecord | None:
    """The end record found in `tail`, the last bytes of a file of `size` bytes (for sniffing
    without the whole file). None when there is none, or when it is cut off from the window."""
    if len(tail) > size:
        return None
    start = size - len(tail)

    def read(offset: int, n: int) -> bytes:
        if offset < start or n <= 0:
            return b""
        return tail[offset - start : offset - start + n]

    return _locate_end(read, size)


def read_listing(
    f: BinaryIO,
    size: int,
    *,
    location_prefix: str = "",
    max_members: int = MAX_MEMBERS,
    max_total_uncompressed_bytes: int = MAX_TOTAL_UNCOMPRESSED_BYTES,
) -> ZipListing:
    """List the archive from its central directory and check every local header.

    Never raises on damaged input: what could not be read is a `zip-malformed` finding and the
    listing holds the members read up to that point. Members whose local header is missing are
    left out (no loader can read them) and named in that finding. `location_prefix` is put
    verbatim in front of every finding's location (e.g. "outer.zip!" for a nested archive).
    """
    return _Lister(f, size, location_prefix, max_members, max_total_uncompressed_bytes).run()


def open_member(f: BinaryIO, member: ZipMember, *, max_bytes: int) -> BinaryIO:
    """A read-only stream of the member's uncompressed bytes, read as miniz reads them.

    The data offset is recomputed from the local header (30 + name length + extra length), the
    sizes come from the central directory, the CRC and the flag bits are ignored (torch ignores
    the CRC, and a scanner must see the bytes whatever the flags claim). A stored member yields
    `uncompressed_size` bytes; a DEFLATE member is inflated in bounded chunks.

    Raises ZipBomb when the member declares more than `max_bytes`, ZipUnsupported for other
    methods, and ZipCorrupt (on open or while reading) for a missing local header, short data,
    a damaged DEFLATE stream, or one that inflates to another size than declared. Reading is
    bounded by the declared size, so a lying size costs at most that much work.

    The stream supports tell() and seek (SEEK_SET/SEEK_CUR): forward by inflating and
    discarding, backward by starting over. It does not close `f`.
    """
    if member.method not in (METHOD_STORED, METHOD_DEFLATE):
        raise ZipUnsupported(f"{member.name!r}: compression method {member.method}")
    if member.uncompressed_size > max_bytes:
        raise ZipBomb(
            f"{member.name!r} declares {member.uncompressed_size} bytes, over the limit of "
            f"{max_bytes}"
        )
    read = _file_reader(f)
    header = read(member.header_offset, _LOCAL.size)
    if len(header) < _LOCAL.size or header[:4] != _LOCAL_SIG:
        raise ZipCorrupt(f"{member.name!r}: no local header at byte {member.header_offset}")
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    data_offset = member.header_offset + _LOCAL.size + name_length + extra_length
    stream = _MemberStream(read, data_offset, member, max_bytes)
    return io.BufferedReader(stream, buffer_size=CHUNK_BYTES)


def first_member(listing: ZipListing, name_suffix: str) -> ZipMember | None:
    """The member torch would read for a record name: the first, in directory order, whose name
    ends with `name_suffix`, compared case-insensitively (ASCII), as miniz compares names.

    Pass a suffix with its slash ("/data.pkl") so that "xdata.pkl" does not match. miniz finds a
    name by binary search over a sorted copy of the directory, so for duplicates "first" is a
    model: scanners must scan every duplicate anyway (zip-duplicate-name).
    """
    wanted = _ascii_lower(name_suffix)
    for member in listing.members:
        if _ascii_lower(member.name).endswith(wanted):
            return member
    return None


# --- the end record ---------------------------------------------------------------------------


def _file_reader(f: BinaryIO) -> _Read:
    def read(offset: int, n: int) -> bytes:
        if not 0 <= offset < _MAX_OFFSET or n <= 0:
            return b""  # also offsets from 8-byte fields that no seek() accepts
        f.seek(offset)
        return f.read(n)

    return read


def _locate_end(read: _Read, size: int) -> EndRecord | None:
    """The last end-record signature with room for a record after it, as miniz and zipfile
    both take the last one; None if there is none."""
    window_start = max(0, size - (_END.size + _MAX_COMMENT))
    window = read(window_start, size - window_start)
    at = window.rfind(_END_SIG)
    while at >= 0 and at + _END.size > len(window):
        at = window.rfind(_END_SIG, 0, at)
    if at < 0:
        return None
    _, disk, directory_disk, disk_entries, entries, directory_size, directory_offset, comment = (
        _END.unpack_from(window, at)
    )
    offset = window_start + at
    problems: list[str] = []
    if window.find(_END_SIG, at + 1) >= 0:
        # too close to the end for a record: miniz skips it, zipfile gives up on the file
        problems.append("an end-record signature in the archive comment")
    if disk != 0 or directory_disk != 0 or disk_entries != entries:
        problems.append("the end record describes a multi-disk (spanned) archive")
    record = EndRecord(
        offset=offset,
        directory_offset=directory_offset,
        directory_size=directory_size,
        entries=entries,
        directory_end=offset,
        zip64_offset=None,
        zip64_declared_offset=None,
        trailing_bytes=size - (offset + _END.size + comment),
        problems=(),
    )
    locator_at = offset - _LOCATOR.size
    locator = read(locator_at, _LOCATOR.size) if locator_at >= 0 else b""
    if len(locator) == _LOCATOR.size and locator[:4] == _LOCATOR_SIG:
        record = _apply_zip64(read, record, locator, locator_at, problems)
    return dataclasses.replace(record, problems=tuple(problems))


def _apply_zip64(
    read: _Read, record: EndRecord, locator: bytes, locator_at: int, problems: list[str]
) -> EndRecord:
    _, record_disk, declared, disks = _LOCATOR.unpack(locator)
    if record_disk != 0 or disks > 1:
        problems.append("the ZIP64 locator describes a multi-disk archive")
    # miniz reads the ZIP64 record where the locator says; zipfile reads it right before the
    # locator. Accept either, and report when they are not the same place.
    found: int | None = None
    for candidate in (declared, locator_at - _END64.size):
        if 0 <= candidate <= locator_at - _END64.size:
            data = read(candidate, _END64.size)
            if len(data) == _END64.size and data[:4] == _END64_SIG:
                found = candidate
                break
    if found is None:
        problems.append("the ZIP64 locator points at no ZIP64 end record")
        return record
    data = read(found, _END64.size)
    (_, record_size, _, _, disk, directory_disk, disk_entries, entries, size64, offset64) = (
        _END64.unpack(data)
    )
    if found + 12 + record_size != locator_at:
        problems.append("the ZIP64 end record does not end where its locator starts")
    if disk != 0 or directory_disk != 0 or disk_entries != entries:
        problems.append("the ZIP64 end record describes a multi-disk archive")
    for what, classic, marker, value in (
        ("entry count", record.entries, 0xFFFF, entries),
        ("directory size", record.directory_size, 0xFFFFFFFF, size64),
        ("directory offset", record.directory_offset, 0xFFFFFFFF, offset64),
    ):
        if classic not in (marker, value):
            problems.append(f"the end record's {what} ({classic}) contradicts ZIP64 ({value})")
    return dataclasses.replace(
        record,
        directory_offset=offset64,
        directory_size=size64,
        entries=entries,
        directory_end=found,
        zip64_offset=found,
        zip64_declared_offset=declared,
    )


# --- the listing --------------------------------------------------------------------------------


class _Malformed(Exception):
    """Stops the directory walk; the message becomes a zip-malformed finding."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Cursor:
    """Sequential reads over [start, end) through a bounded buffer (the directory can be large)."""

    def __init__(self, read: _Read, start: int, end: int) -> None:
        self._read = read
        self.position = start
        self._end = end
        self._buffer = b""
        self._buffer_at = start

    @property
    def remaining(self) -> int:
        return self._end - self.position

    def take(self, n: int) -> bytes | None:
        if n > self.remaining:
            return None
        skip = self.position - self._buffer_at
        if skip + n > len(self._buffer):
            self._buffer = self._read(self.position, min(max(n, 1 << 20), self.remaining))
            self._buffer_at = self.position
            skip = 0
            if len(self._buffer) < n:
                return None
        self.position += n
        return self._buffer[skip : skip + n]


class _Lister:
    def __init__(
        self, f: BinaryIO, size: int, prefix: str, max_members: int, max_total: int
    ) -> None:
        self._read = _file_reader(f)
        self._size = size
        self._prefix = prefix
        self._max_members = max_members
        self._max_total = max_total
        self._findings: list[Finding] = []
        self._members: list[ZipMember] = []
        self._directory_start: int | None = None
        self._header_offsets: list[int] = []

    def run(self) -> ZipListing:
        try:
            self._walk()
        except _Malformed as exc:
            self._malformed(str(exc), exc.offset)
        directory_start = self._size if self._directory_start is None else self._directory_start
        self._check_archive(directory_start)
        # Measured from the offsets the directory declares (a damaged first local header is
        # zip-malformed, not a prefix); without a directory there is nothing to measure from.
        prefix_bytes = min(self._header_offsets, default=self._directory_start or 0)
        if prefix_bytes:
            self._findings.insert(
                0,
                Finding(
                    "zip-prefix-bytes",
                    Severity.HIGH,
                    f"{prefix_bytes} bytes precede the first local header: torch.load reads a "
                    "file that does not start with a zip header as a pickle (pickle+zip "
                    "polyglot), while zipfile still lists the archive",
                    self._at_byte(0),
                ),
            )
        return ZipListing(tuple(self._members), prefix_bytes, tuple(self._findings))

    # locations and findings

    def _at_byte(self, offset: int) -> str:
        return f"{self._prefix}byte {offset}"

    def _at_member(self, name: str) -> str:
        shown = name if name.isprintable() else repr(name)
        return f"{self._prefix}member {shown}"

    def _malformed(self, message: str, offset: int) -> None:
        self._findings.append(
            Finding("zip-malformed", Severity.HIGH, message, self._at_byte(offset))
        )

    def _member_finding(self, rule: str, severity: Severity, message: str, name: str) -> None:
        self._findings.append(Finding(rule, severity, message, self._at_member(name)))

    # the walk

    def _walk(self) -> None:
        record = _locate_end(self._read, self._size)
        if record is None:
            raise _Malformed("no end-of-central-directory record", max(0, self._size - 1))
        for problem in record.problems:
            self._malformed(problem, record.offset)
        if record.trailing_bytes > 0:
            self._malformed(
                f"{record.trailing_bytes} bytes follow the end record and its comment",
                self._size - record.trailing_bytes,
            )
        elif record.trailing_bytes < 0:
            self._malformed("the archive comment runs past the end of the file", record.offset)
        if not record.fits:
            raise _Malformed(
                f"the central directory (offset {record.directory_offset}, size "
                f"{record.directory_size}) does not fit before its end record",
                record.offset,
            )
        start = record.directory_start
        self._directory_start = start
        shift = start - record.directory_offset
        if shift:
            # Offsets relative to a prefix: zipfile reads the archive at the shifted place,
            # miniz at the declared one. If both hold a directory the readers disagree.
            if record.directory_size and self._read(record.directory_offset, 4) == _CENTRAL_SIG:
                self._malformed(
                    f"two central directories: at the declared offset {record.directory_offset} "
                    f"and right before the end record at {start}",
                    start,
                )
            if record.zip64_declared_offset is not None and record.zip64_offset is not None:
                declared = record.zip64_declared_offset + shift
                if declared != record.zip64_offset:
                    self._malformed(
                        "the ZIP64 locator and the directory disagree on the archive's start",
                        record.offset,
                    )
        elif (
            record.zip64_offset is not None
            and record.zip64_declared_offset is not None
            and record.zip64_offset != record.zip64_declared_offset
        ):
            self._malformed(
                f"the ZIP64 locator points at byte {record.zip64_declared_offset}, the "
                f"ZIP64 end record is at {record.zip64_offset}",
                record.offset,
            )
        self._walk_directory(record, start, shift)

    def _walk_directory(self, record: EndRecord, start: int, shift: int) -> None:
        cursor = _Cursor(self._read, start, start + record.directory_size)
        seen = 0
        while cursor.remaining > 0:
            if seen >= self._max_members:
                self._malformed(
                    f"more than {self._max_members} entries: the listing is truncated",
                    cursor.position,
                )
                return
            self._read_entry(cursor, shift, start)
            seen += 1
        if seen != record.entries:
            self._malformed(
                f"the end record declares {record.entries} entries, the central directory "
                f"holds {seen}",
                record.offset,
            )

    def _read_entry(self, cursor: _Cursor, shift: int, directory_start: int) -> None:
        at = cursor.position
        fixed = cursor.take(_CENTRAL.size)
        if fixed is None or fixed[:4] != _CENTRAL_SIG:
            raise _Malformed(f"damaged central directory entry at byte {at}", at)
        (
            _,
            _made_by,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            compressed,
            uncompressed,
            name_length,
            extra_length,
            comment_length,
            disk,
            _internal,
            external,
            offset,
        ) = _CENTRAL.unpack(fixed)
        raw_name = cursor.take(name_length)
        extra = cursor.take(extra_length)
        comment = cursor.take(comment_length)
        if raw_name is None or extra is None or comment is None:
            raise _Malformed(f"central directory entry at byte {at} overruns the directory", at)
        name = self._decode_name(raw_name, flags, at)
        values = _zip64_extra(
            extra,
            uncompressed == 0xFFFFFFFF,
            compressed == 0xFFFFFFFF,
            offset == 0xFFFFFFFF,
            disk == 0xFFFF,
        )
        if values is None:
            raise _Malformed(f"damaged extra field in the entry of {name!r}", at)
        uncompressed = values[0] if values[0] is not None else uncompressed
        compressed = values[1] if values[1] is not None else compressed
        offset = values[2] if values[2] is not None else offset
        disk = values[3] if values[3] is not None else disk
        if disk != 0:
            self._malformed(f"{name!r} starts on disk {disk} (multi-disk archive)", at)
        header_offset = offset + shift
        if 0 <= header_offset < directory_start:
            self._header_offsets.append(header_offset)
        local = self._read_local(name, header_offset, directory_start)
        if local is None:
            return
        raw_local_name, local_flags, data_offset = local
        local_name = self._decode_name(raw_local_name, local_flags, header_offset)
        member = ZipMember(
            name=name,
            local_name=local_name,
            header_offset=header_offset,
            data_offset=data_offset,
            compressed_size=compressed,
            uncompressed_size=uncompressed,
            method=method,
            flags=flags,
            crc32=crc,
            is_symlink=(external >> 16) & _S_IFMT == _S_IFLNK,
        )
        self._members.append(member)
        self._check_member(member, raw_name, raw_local_name, local_flags, directory_start)

    def _decode_name(self, raw: bytes, flags: int, offset: int) -> str:
        if not flags & FLAG_UTF8:
            return raw.decode("cp437")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._malformed(f"name {raw!r} is flagged UTF-8 but is not", offset)
            return raw.decode("utf-8", errors="replace")

    def _read_local(
        self, name: str, header_offset: int, directory_start: int
    ) -> tuple[bytes, int, int] | None:
        inside = header_offset >= 0 and header_offset + _LOCAL.size <= directory_start
        header = self._read(header_offset, _LOCAL.size) if inside else b""
        if len(header) < _LOCAL.size or header[:4] != _LOCAL_SIG:
            self._malformed(
                f"no local header for {name!r} at byte {header_offset}; member left out",
                max(0, header_offset),
            )
            return None
        (_, _, local_flags, _, _, _, _, _, _, name_length, extra_length) = _LOCAL.unpack(header)
        data_offset = header_offset + _LOCAL.size + name_length + extra_length
        raw_name = self._read(header_offset + _LOCAL.size, name_length)
        if data_offset > directory_start or len(raw_name) < name_length:
            self._malformed(
                f"the local header of {name!r} runs into the central directory; member left out",
                header_offset,
            )
            return None
        return raw_name, local_flags, data_offset

    def _check_member(
        self,
        member: ZipMember,
        raw_name: bytes,
        raw_local_name: bytes,
        local_flags: int,
        directory_start: int,
    ) -> None:
        name = member.name
        if raw_local_name != raw_name:
            self._member_finding(
                "zip-name-mismatch",
                Severity.HIGH,
                f"the local header names it {member.local_name!r}: zipfile refuses such an "
                "archive, torch reads it (CVE-2025-1944)",
                name,
            )
        flags = member.flags | local_flags
        if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION):
            self._member_finding(
                "zip-encrypted",
                Severity.MEDIUM,
                "the encryption flag is set: torch refuses it on the records it reads but "
                "ignores it on others, so it can hide a decoy member from zipfile-based "
                "scanners (CVE-2025-1945)",
                name,
            )
        if flags & FLAG_PATCHED:
            self._member_finding(
                "zip-unsupported-method", Severity.MEDIUM, "compressed patched data (bit 5)", name
            )
        if member.method not in (METHOD_STORED, METHOD_DEFLATE):
            self._member_finding(
                "zip-unsupported-method",
                Severity.MEDIUM,
                f"compression method {member.method} (torch reads only stored and DEFLATE)",
                name,
            )
        for unsafe_name in dict.fromkeys((name, member.local_name)):
            reason = _unsafe_path(unsafe_name)
            if reason:
                self._member_finding(
                    "zip-path-traversal", Severity.HIGH, f"{unsafe_name!r} {reason}", name
                )
        if member.is_symlink:
            self._member_finding(
                "zip-symlink", Severity.HIGH, "the member is a symbolic link", name
            )
        if member.method == METHOD_STORED and member.compressed_size != member.uncompressed_size:
            self._malformed(
                f"stored member {name!r} has compressed size {member.compressed_size} but "
                f"uncompressed size {member.uncompressed_size}",
                member.header_offset,
            )
        if member.data_offset + member.compressed_size > directory_start:
            self._malformed(
                f"the data of {name!r} runs past the start of the central directory",
                member.header_offset,
            )
        if (
            member.uncompressed_size > RATIO_MIN_BYTES
            and member.uncompressed_size > RATIO_LIMIT * member.compressed_size
        ):
            self._member_finding(
                "zip-bomb-ratio",
                Severity.HIGH,
                f"declares {member.uncompressed_size} bytes from {member.compressed_size} "
                f"compressed (more than {RATIO_LIMIT}:1)",
                name,
            )

    # whole-archive checks

    def _check_archive(self, directory_start: int) -> None:
        members = self._members
        seen: dict[str, str] = {}
        for member in members:
            folded = _ascii_lower(member.name)
            earlier = seen.get(folded)
            if earlier is None:
                seen[folded] = member.name
            elif earlier == member.name:
                self._member_finding(
                    "zip-duplicate-name",
                    Severity.HIGH,
                    "the name occurs more than once: torch reads the first, zipfile the last",
                    member.name,
                )
            else:
                self._member_finding(
                    "zip-duplicate-name",
                    Severity.HIGH,
                    f"the name differs from {earlier!r} only in case, and miniz (torch) "
                    "compares names case-insensitively",
                    member.name,
                )
        ordered = sorted(members, key=lambda m: (m.header_offset, m.data_offset))
        for before, after in itertools.pairwise(ordered):
            end = before.data_offset + max(before.compressed_size, _stored_length(before))
            if after.header_offset < end:
                self._malformed(
                    f"members {before.name!r} and {after.name!r} overlap",
                    after.header_offset,
                )
        total = sum(m.uncompressed_size for m in members)
        if total > self._max_total:
            self._findings.append(
                Finding(
                    "zip-bomb-ratio",
                    Severity.HIGH,
                    f"the members declare {total} uncompressed bytes in all, over the limit of "
                    f"{self._max_total}",
                    self._at_byte(directory_start),
                )
            )


def _stored_length(member: ZipMember) -> int:
    # miniz reads uncompressed_size bytes of a stored member
    return member.uncompressed_size if member.method == METHOD_STORED else 0


def _zip64_extra(
    extra: bytes, want_uncompressed: bool, want_compressed: bool, want_offset: bool, want_disk: bool
) -> tuple[int | None, int | None, int | None, int | None] | None:
    """The ZIP64 values the entry's markers ask for, in the order the format stores them.
    None when the extra field is damaged or lacks a value a marker asks for."""
    wanted = (want_uncompressed, want_compressed, want_offset, want_disk)
    found: list[int | None] = [None, None, None, None]
    position = 0
    seen_zip64 = False
    while position + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if len(body) < length:
            return None
        if kind == _ZIP64_EXTRA and not seen_zip64:
            seen_zip64 = True
            at = 0
            for index, (want, width) in enumerate(zip(wanted, (8, 8, 8, 4), strict=True)):
                if not want:
                    continue
                if at + width > len(body):
                    return None
                found[index] = int.from_bytes(body[at : at + width], "little")
                at += width
        position += 4 + length
    if any(want and value is None for want, value in zip(wanted, found, strict=True)):
        return None
    return found[0], found[1], found[2], found[3]


def _unsafe_path(name: str) -> str | None:
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "has a '..' component"
    return None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


# --- reading a member -----------------------------------------------------------------------


class _MemberStream(io.RawIOBase):
    """The member's bytes as miniz produces them, in chunks of at most CHUNK_BYTES of input."""

    def __init__(self, read: _Read, data_offset: int, member: ZipMember, max_bytes: int) -> None:
        super().__init__()
        self._read = read
        self._data_offset = data_offset
        self._name = member.name
        self._deflate = member.method == METHOD_DEFLATE
        self._declared = member.uncompressed_size
        self._input_size = member.compressed_size if self._deflate else member.uncompressed_size
        self._max_bytes = max_bytes
        self._start()

    def _start(self) -> None:
        self._input_at = self._data_offset
        self._input_left = self._input_size
        self._inflater = zlib.decompressobj(-15)
        self._pending = b""
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        else:
            raise io.UnsupportedOperation("a zip member stream cannot seek from its end")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target < self._position:
            self._start()
        while self._position < target:
            if not self._produce(min(CHUNK_BYTES, target - self._position)):
                break
        return self._position

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._produce(len(view))
        view[: len(data)] = data
        return len(data)

    def _take_input(self, n: int) -> bytes:
        data = self._read(self._input_at, n)
        if len(data) < n:
            raise ZipCorrupt(f"{self._name!r}: the member's data is cut off by the end of file")
        self._input_at += n
        self._input_left -= n
        return data

    def _produce(self, n: int) -> bytes:
        if n <= 0:
            return b""
        if not self._deflate:
            data = self._take_input(min(n, self._input_left)) if self._input_left else b""
            self._position += len(data)
            return data
        while True:
            if self._inflater.eof:
                if self._position != self._declared:
                    raise ZipCorrupt(
                        f"{self._name!r} inflates to {self._position} bytes, not the declared "
                        f"{self._declared}"
                    )
                return b""
            if not self._pending:
                if self._input_left <= 0:
                    raise ZipCorrupt(f"{self._name!r}: the DEFLATE stream is truncated")
                self._pending = self._take_input(min(CHUNK_BYTES, self._input_left))
            # One byte beyond the declared size is enough to know the size was a lie.
            room = self._declared - self._position + 1
            try:
                out = self._inflater.decompress(self._pending, min(n, room))
            except zlib.error as exc:
                raise ZipCorrupt(f"{self._name!r}: damaged DEFLATE data ({exc})") from exc
            self._pending = self._inflater.unconsumed_tail
            if not out:
                continue
            self._position += len(out)
            if self._position > self._max_bytes:
                raise ZipBomb(f"{self._name!r} inflates to more than {self._max_bytes} bytes")
            if self._position > self._declared:
                raise ZipCorrupt(
                    f"{self._name!r} inflates to more than its declared {self._declared} bytes"
                )
            return out
