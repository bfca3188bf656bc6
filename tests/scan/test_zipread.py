"""Airlock's own ZIP reader: listings, findings for every known zip differential, and members
read the way torch (miniz) reads them. Each malicious case cites the advisory it comes from."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan import zipread
from proxy.scan.report import Finding, Severity
from proxy.scan.zipread import (
    ZipBomb,
    ZipCorrupt,
    ZipError,
    ZipListing,
    ZipUnsupported,
    find_zip,
    first_member,
    open_member,
    read_listing,
)

KNOWN_RULES = {
    "zip-prefix-bytes",
    "zip-name-mismatch",
    "zip-duplicate-name",
    "zip-encrypted",
    "zip-path-traversal",
    "zip-symlink",
    "zip-unsupported-method",
    "zip-bomb-ratio",
    "zip-malformed",
}
MiB = 1 << 20


# --- building archives ------------------------------------------------------------------------


def stdlib_zip(
    members: dict[str, bytes],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    comment: bytes = b"",
    force_zip64: bool = False,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            with archive.open(name, "w", force_zip64=force_zip64) as handle:
                handle.write(data)
        archive.comment = comment
    return buffer.getvalue()


@dataclass
class Entry:
    """One member of a hand-made archive; every field a malicious archive might bend."""

    name: bytes
    data: bytes = b""
    method: int = 0
    local_name: bytes | None = None
    flags: int = 0
    local_flags: int | None = None
    external: int = 0
    crc: int | None = None
    declared_size: int | None = None  # uncompressed size in the central directory
    zip64: bool = False  # sizes and offset in a ZIP64 extra field
    payload: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        if self.method == 8:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.payload = packer.compress(self.data) + packer.flush()
        else:
            self.payload = self.data


def build_zip(
    entries: list[Entry],
    *,
    prefix: bytes = b"",
    comment: bytes = b"",
    zip64: bool = False,
    relative_offsets: bool = False,
    declared_entries: int | None = None,
    disk: int = 0,
) -> bytes:
    """A zip written field by field. Offsets are absolute (a prefix shifts them, as `zip -A`
    does) unless `relative_offsets` (plain concatenation, which zipfile tolerates)."""
    out = bytearray(prefix)
    base = len(prefix) if relative_offsets else 0
    offsets = []
    for entry in entries:
        offsets.append(len(out) - base)
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        local_name = entry.name if entry.local_name is None else entry.local_name
        local_flags = entry.flags if entry.local_flags is None else entry.local_flags
        out += struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            45 if entry.zip64 else 20,
            local_flags,
            entry.method,
            0,
            0x21,
            crc,
            len(entry.payload),
            len(entry.data),
            len(local_name),
            0,
        )
        out += local_name + entry.payload
    directory_at = len(out)
    for entry, offset in zip(entries, offsets, strict=True):
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.declared_size is None else entry.declared_size
        sizes = (size, len(entry.payload), offset)
        extra = b""
        if entry.zip64:
            extra = struct.pack("<HHQQQ", 1, 24, *sizes)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        out += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            0x0314,
            45 if entry.zip64 else 20,
            entry.flags,
            entry.method,
            0,
            0x21,
            crc,
            sizes[1],
            sizes[0],
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            entry.external,
            sizes[2],
        )
        out += entry.name + extra
    directory_size = len(out) - directory_at
    count = len(entries) if declared_entries is None else declared_entries
    if zip64:
        record_at = len(out)
        out += struct.pack(
            "<4sQHHIIQQQQ",
            b"PK\x06\x06",
            44,
            45,
            45,
            0,
            0,
            count,
            count,
            directory_size,
            directory_at - base,
        )
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at - base, 1)
        classic = (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    else:
        classic = (count, directory_size, directory_at - base)
    out += struct.pack(
        "<4sHHHHIIH",
        b"PK\x05\x06",
        disk,
        disk,
        classic[0],
        classic[0],
        classic[1],
        classic[2],
        len(comment),
    )
    return bytes(out + comment)


def listing_of(data: bytes, max_total: int = zipread.MAX_TOTAL_UNCOMPRESSED_BYTES) -> ZipListing:
    return read_listing(io.BytesIO(data), len(data), max_total_uncompressed_bytes=max_total)


def rules(listing: ZipListing) -> set[str]:
    return {finding.rule for finding in listing.findings}


def read_member(data: bytes, member: zipread.ZipMember, max_bytes: int = 64 * MiB) -> bytes:
    with open_member(io.BytesIO(data), member, max_bytes=max_bytes) as stream:
        return stream.read()


def patched(data: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    assert data.count(old) >= count
    return data.replace(old, new, count)


PICKLE = pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)
SYMLINK = (0o120777 << 16) | 0x20


# --- benign archives --------------------------------------------------------------------------

BENIGN: dict[str, bytes] = {
    "stored": stdlib_zip(
        {"archive/data.pkl": PICKLE, "archive/data/0": os.urandom(3000)},
        compression=zipfile.ZIP_STORED,
    ),
    "deflated": stdlib_zip({"archive/data.pkl": PICKLE, "archive/data/0": b"ab" * 50_000}),
    "with_comment": stdlib_zip({"a.txt": b"hello"}, comment=b"an archive comment " * 20),
    "force_zip64_members": stdlib_zip({"a": b"x" * 1000, "b": b"y"}, force_zip64=True),
    "utf8_names": stdlib_zip({"archive/dätä.pkl": PICKLE, "日本/x": b"1"}),
    "directory_entries": stdlib_zip({"archive/": b"", "archive/data.pkl": PICKLE}),
    "empty": stdlib_zip({}),
    "zip64_end_record": build_zip(
        [Entry(b"archive/data.pkl", PICKLE, zip64=True), Entry(b"archive/w", b"w" * 999, 8)],
        zip64=True,
    ),
}


@pytest.mark.parametrize("data", BENIGN.values(), ids=BENIGN.keys())
def test_a_benign_archive_lists_like_zipfile_with_no_findings(data: bytes) -> None:
    listing = listing_of(data)
    assert listing.findings == ()
    assert listing.prefix_bytes == 0
    assert find_zip(io.BytesIO(data), len(data))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expected = [
            (i.filename, i.header_offset, i.compress_size, i.file_size, i.CRC)
            for i in archive.infolist()
        ]
        assert [
            (m.name, m.header_offset, m.compressed_size, m.uncompressed_size, m.crc32)
            for m in listing.members
        ] == expected
        for member in listing.members:
            assert read_member(data, member) == archive.read(member.name)
            assert member.local_name == member.name
            assert not member.is_symlink


def test_the_handmade_zip64_archive_is_one_zipfile_reads() -> None:
    data = BENIGN["zip64_end_record"]
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("archive/data.pkl") == PICKLE


def test_a_large_member_streams_with_bounded_memory(tmp_path: Path) -> None:
    block = os.urandom(4096)
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("archive/data/0", "w") as handle:
            for _ in range(50 * MiB // len(block)):
                handle.write(block)
        archive.writestr("archive/data.pkl", PICKLE)
    size = path.stat().st_size
    with path.open("rb") as f:
        listing = read_listing(f, size)
        (big,) = [m for m in listing.members if m.name == "archive/data/0"]
        assert big.uncompressed_size == 50 * MiB
        ours = hashlib.sha256()
        tracemalloc.start()
        try:
            with open_member(f, big, max_bytes=64 * MiB) as stream:
                while chunk := stream.read(MiB):
                    ours.update(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * MiB
    theirs = hashlib.sha256()
    with zipfile.ZipFile(path) as archive, archive.open("archive/data/0") as handle:
        while chunk := handle.read(MiB):
            theirs.update(chunk)
    assert ours.digest() == theirs.digest()


# --- findings ---------------------------------------------------------------------------------


def name_mismatch() -> bytes:
    # CVE-2025-1944: patch the local header's name only; zipfile refuses, torch reads.
    data = stdlib_zip({"archive/data.pkl": PICKLE}, compression=zipfile.ZIP_STORED)
    return patched(data, b"archive/data.pkl", b"archive/evil.pkl")


def duplicate_names() -> bytes:
    # torch reads the first data.pkl, zipfile the last (threats.md, checked against torch 2.13)
    return build_zip([Entry(b"archive/data.pkl", b"first"), Entry(b"archive/data.pkl", PICKLE)])


def case_only_duplicates() -> bytes:
    return build_zip([Entry(b"archive/data.pkl", PICKLE), Entry(b"archive/DATA.PKL", b"x")])


def encrypted_decoy() -> bytes:
    # CVE-2025-1945: the encryption bit on a member torch never reads
    return build_zip([Entry(b"archive/data.pkl", PICKLE), Entry(b"archive/decoy", b"x", flags=1)])


def encrypted_in_local_header_only() -> bytes:
    return build_zip([Entry(b"archive/decoy", b"x", local_flags=1)])


def symlink() -> bytes:
    return build_zip([Entry(b"archive/link", b"/etc/passwd", external=SYMLINK)])


def pickle_before_zip_absolute() -> bytes:
    # a pickle in front of a zip whose offsets count it (`zip -A`): torch.load unpickles it
    return build_zip([Entry(b"archive/data.pkl", b"decoy")], prefix=PICKLE)


def pickle_before_zip_concatenated() -> bytes:
    # plain `cat evil.pkl model.zip`: zipfile still lists the zip (offsets relative)
    return PICKLE + stdlib_zip({"archive/data.pkl": b"decoy"})


def unsupported_method() -> bytes:
    return stdlib_zip({"archive/data.pkl": PICKLE}, compression=zipfile.ZIP_LZMA)


def patched_data_flag() -> bytes:
    return build_zip([Entry(b"a", b"x", flags=0x20)])


def deflate_bomb() -> bytes:
    return build_zip([Entry(b"archive/data/0", bytes(8 * MiB), method=8)])


FINDINGS: dict[str, tuple[Callable[[], bytes], str, Severity]] = {
    "local_central_name_mismatch": (name_mismatch, "zip-name-mismatch", Severity.HIGH),
    "duplicate_names": (duplicate_names, "zip-duplicate-name", Severity.HIGH),
    "names_differing_only_in_case": (case_only_duplicates, "zip-duplicate-name", Severity.HIGH),
    "encryption_bit_on_a_decoy": (encrypted_decoy, "zip-encrypted", Severity.MEDIUM),
    "encryption_bit_in_local_header": (
        encrypted_in_local_header_only,
        "zip-encrypted",
        Severity.MEDIUM,
    ),
    "symlink_member": (symlink, "zip-symlink", Severity.HIGH),
    "pickle_prepended_absolute": (pickle_before_zip_absolute, "zip-prefix-bytes", Severity.HIGH),
    "pickle_prepended_relative": (
        pickle_before_zip_concatenated,
        "zip-prefix-bytes",
        Severity.HIGH,
    ),
    "lzma_member": (unsupported_method, "zip-unsupported-method", Severity.MEDIUM),
    "patched_data_flag": (patched_data_flag, "zip-unsupported-method", Severity.MEDIUM),
    "deflate_ratio_over_200": (deflate_bomb, "zip-bomb-ratio", Severity.HIGH),
}


@pytest.mark.parametrize("build, rule, severity", FINDINGS.values(), ids=FINDINGS.keys())
def test_listing_reports(build: Callable[[], bytes], rule: str, severity: Severity) -> None:
    data = build()
    listing = listing_of(data)
    matching = [finding for finding in listing.findings if finding.rule == rule]
    assert matching, listing.findings
    assert {finding.severity for finding in matching} == {severity}
    assert all(finding.location and finding.message for finding in matching)
    assert "zip-malformed" not in rules(listing), listing.findings
    assert listing.members  # the archive is still listed, so every member gets scanned


@pytest.mark.parametrize(
    "name",
    [
        "../evil.pkl",
        "archive/../../evil.pkl",
        "/etc/cron.d/evil",
        "archive\\..\\evil",
        "C:/evil.pkl",
        "c:evil",
        "archive/data.pkl\x00.txt",
    ],
)
def test_listing_reports_path_traversal(name: str) -> None:
    listing = listing_of(build_zip([Entry(name.encode(), b"x")]))
    (finding,) = [f for f in listing.findings if f.rule == "zip-path-traversal"]
    assert finding.severity is Severity.HIGH
    assert finding.location is not None and finding.location.startswith("member ")


@pytest.mark.parametrize("name", ["archive/data.pkl", "a..b/c", "archive/.hidden", "archive/x:y"])
def test_listing_accepts_ordinary_names(name: str) -> None:
    assert listing_of(build_zip([Entry(name.encode(), b"x")])).findings == ()


def test_a_local_name_mismatch_reads_the_local_data_as_torch_does() -> None:
    data = name_mismatch()
    (member,) = listing_of(data).members
    assert (member.name, member.local_name) == ("archive/data.pkl", "archive/evil.pkl")
    assert read_member(data, member) == PICKLE
    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(zipfile.BadZipFile):
        archive.read("archive/data.pkl")


def test_first_member_models_torch_on_duplicates() -> None:
    data = duplicate_names()
    listing = listing_of(data)
    first = first_member(listing, "/data.pkl")
    assert first is not None and read_member(data, first) == b"first"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("archive/data.pkl") == PICKLE  # zipfile takes the last


def test_first_member_compares_names_as_miniz_does() -> None:
    listing = listing_of(build_zip([Entry(b"archive/xdata.pkl"), Entry(b"archive/DATA.PKL")]))
    found = first_member(listing, "/data.pkl")
    assert found is not None and found.name == "archive/DATA.PKL"
    assert first_member(listing, "/version") is None


def test_a_bad_crc_is_no_finding_and_reads_fine() -> None:
    # CVE-2025-10156: zipfile raises on a bad CRC, torch loads the member
    good = stdlib_zip({"archive/data.pkl": PICKLE})
    crc = struct.pack("<I", zlib.crc32(PICKLE))
    data = patched(good, crc, struct.pack("<I", zlib.crc32(PICKLE) ^ 0xFFFF), count=2)
    listing = listing_of(data)
    assert listing.findings == ()
    assert read_member(data, listing.members[0]) == PICKLE
    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(zipfile.BadZipFile):
        archive.read("archive/data.pkl")


def test_an_encrypted_decoy_leaves_the_real_member_readable() -> None:
    data = encrypted_decoy()
    listing = listing_of(data)
    (finding,) = listing.findings
    assert finding.location == "member archive/decoy"
    member = first_member(listing, "/data.pkl")
    assert member is not None and read_member(data, member) == PICKLE


@pytest.mark.parametrize(
    "build", [pickle_before_zip_absolute, pickle_before_zip_concatenated], ids=["abs", "cat"]
)
def test_a_prepended_pickle_is_measured_and_the_zip_still_read(build: Callable[[], bytes]) -> None:
    data = build()
    listing = listing_of(data)
    assert listing.prefix_bytes == len(PICKLE)
    assert listing.findings[0].location == "byte 0"
    assert read_member(data, listing.members[0]) == b"decoy"
    assert zipfile.is_zipfile(io.BytesIO(data))  # what a zipfile-based scanner believes


def test_locations_carry_the_prefix() -> None:
    listing = read_listing(io.BytesIO(data := symlink()), len(data), location_prefix="outer.zip!")
    assert listing.findings[0].location == "outer.zip!member archive/link"


def test_total_declared_size_over_the_limit_is_a_bomb() -> None:
    data = build_zip([Entry(b"a", b"x" * 1000), Entry(b"b", b"y" * 1000)])
    listing = listing_of(data, max_total=1500)
    (finding,) = listing.findings
    assert (finding.rule, finding.severity) == ("zip-bomb-ratio", Severity.HIGH)


# --- malformed archives: fail closed ----------------------------------------------------------

GOOD = build_zip([Entry(b"archive/data.pkl", PICKLE), Entry(b"archive/w", b"w" * 500, 8)])
GOOD_DIRECTORY = GOOD.index(b"PK\x01\x02")
GOOD_END = GOOD.index(b"PK\x05\x06")


def overwrite(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


MALFORMED: dict[str, Callable[[], bytes]] = {
    "no_end_record": lambda: GOOD[:GOOD_END],
    "truncated_central_directory": lambda: GOOD[: GOOD_DIRECTORY + 30] + GOOD[GOOD_END:],
    "directory_offset_out_of_bounds": lambda: overwrite(
        GOOD, GOOD_END + 16, struct.pack("<I", len(GOOD) * 2)
    ),
    "directory_size_too_large": lambda: overwrite(
        GOOD, GOOD_END + 12, struct.pack("<I", len(GOOD))
    ),
    "entry_count_mismatch": lambda: build_zip([Entry(b"a", b"x")], declared_entries=2),
    "missing_local_header": lambda: overwrite(GOOD, 0, b"XX\x03\x04"),
    "overlapping_members": lambda: overlapping(),
    "short_end_signature_in_the_comment": lambda: stdlib_zip(
        {"a": b"x"}, comment=b"PK\x05\x06 1234"
    ),
    "full_end_record_in_the_comment": lambda: stdlib_zip(
        {"a": b"x"}, comment=b"PK\x05\x06" + bytes(range(1, 40))
    ),
    "multi_disk": lambda: build_zip([Entry(b"a", b"x")], disk=1),
    "trailing_bytes": lambda: GOOD + b"trailing payload",
    "comment_past_end": lambda: overwrite(GOOD, GOOD_END + 20, struct.pack("<H", 50)),
    "zip64_locator_points_elsewhere": lambda: zip64_with_locator_offset(-8),
    "zip64_contradicts_end_record": lambda: zip64_with_classic_count(7),
    "stored_sizes_differ": lambda: build_zip([Entry(b"a", b"xyz", declared_size=5)]),
    "name_not_utf8": lambda: build_zip([Entry(b"\xff\xfe", b"x", flags=0x800)]),
    "bad_zip64_extra": lambda: patched(
        BENIGN["zip64_end_record"], struct.pack("<HH", 1, 24), struct.pack("<HH", 1, 8)
    ),
}


def overlapping() -> bytes:
    """Two directory entries for one local header (zipfile and miniz read both)."""
    data = build_zip([Entry(b"a", b"x" * 100), Entry(b"a", b"y")])
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    return overwrite(data, second + 42, struct.pack("<I", 0))


def zip64_with_locator_offset(delta: int) -> bytes:
    data = BENIGN["zip64_end_record"]
    at = data.index(b"PK\x06\x07") + 8
    (offset,) = struct.unpack_from("<Q", data, at)
    return overwrite(data, at, struct.pack("<Q", offset + delta))


def zip64_with_classic_count(count: int) -> bytes:
    data = BENIGN["zip64_end_record"]
    at = data.index(b"PK\x05\x06") + 8
    return overwrite(data, at, struct.pack("<HH", count, count))


@pytest.mark.parametrize("build", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_archive_is_a_finding_not_an_exception(build: Callable[[], bytes]) -> None:
    listing = listing_of(build())
    malformed = [f for f in listing.findings if f.rule == "zip-malformed"]
    assert malformed, listing.findings
    assert all(f.severity is Severity.HIGH for f in malformed)
    assert all(f.location and f.location.startswith("byte ") for f in malformed)


def test_a_missing_local_header_leaves_the_member_out() -> None:
    listing = listing_of(MALFORMED["missing_local_header"]())
    assert [m.name for m in listing.members] == ["archive/w"]


@pytest.mark.parametrize("data", [b"", b"PK", b"not a zip at all" * 10, GOOD[:GOOD_END]])
def test_find_zip_says_no_without_an_end_record(data: bytes) -> None:
    assert not find_zip(io.BytesIO(data), len(data))


def test_find_zip_sees_a_zip_behind_a_pickle() -> None:
    data = pickle_before_zip_concatenated()
    assert find_zip(io.BytesIO(data), len(data))


# --- reading members --------------------------------------------------------------------------


def test_a_member_declaring_more_than_max_bytes_is_a_bomb() -> None:
    data = deflate_bomb()
    (member,) = listing_of(data).members
    with pytest.raises(ZipBomb):
        open_member(io.BytesIO(data), member, max_bytes=MiB)


def test_a_member_inflating_past_its_declared_size_stops_there() -> None:
    data = build_zip([Entry(b"archive/data/0", bytes(8 * MiB), method=8, declared_size=1000)])
    (member,) = listing_of(data).members
    stream = open_member(io.BytesIO(data), member, max_bytes=MiB)
    with pytest.raises(ZipCorrupt):
        stream.read()


@pytest.mark.parametrize(
    "declared, payload",
    [(2000, b"short"), (5, b"a" * 100)],
    ids=["inflates_short", "inflates_long"],
)
def test_a_member_whose_size_lies_is_corrupt(declared: int, payload: bytes) -> None:
    data = build_zip([Entry(b"a", payload, method=8, declared_size=declared)])
    (member,) = listing_of(data).members
    with pytest.raises(ZipCorrupt):
        read_member(data, member)


def test_damaged_deflate_data_is_corrupt() -> None:
    entry = Entry(b"a", os.urandom(5000), method=8)
    data = build_zip([entry])
    at = data.index(entry.payload)
    data = overwrite(data, at, b"\xff" * 64)
    (member,) = listing_of(data).members
    with pytest.raises(ZipCorrupt):
        read_member(data, member)


def test_an_unsupported_method_cannot_be_opened() -> None:
    data = unsupported_method()
    (member,) = listing_of(data).members
    with pytest.raises(ZipUnsupported):
        open_member(io.BytesIO(data), member, max_bytes=MiB)


def test_a_member_cut_by_the_end_of_file_is_corrupt() -> None:
    data = stdlib_zip({"a": os.urandom(5000)}, compression=zipfile.ZIP_STORED)
    (member,) = listing_of(data).members
    cut = data[: member.data_offset + 100]
    with pytest.raises(ZipCorrupt):
        read_member(cut, member)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_member_stream_tells_and_seeks(method: int) -> None:
    content = bytes(range(256)) * 1000
    data = stdlib_zip({"m": content}, compression=method)
    (member,) = listing_of(data).members
    with open_member(io.BytesIO(data), member, max_bytes=MiB) as stream:
        assert stream.seekable() and stream.readable()
        assert stream.read(10) == content[:10]
        assert stream.seek(0, io.SEEK_CUR) == stream.tell() == 10
        assert stream.seek(100_000) == 100_000
        assert stream.read(5) == content[100_000:100_005]
        assert stream.seek(-100_000, io.SEEK_CUR) == 5  # backwards: inflated again
        assert stream.read(3) == content[5:8]
        assert stream.seek(10**9) == len(content)
        assert stream.read() == b""
        with pytest.raises(io.UnsupportedOperation):
            stream.seek(0, io.SEEK_END)


def test_open_member_uses_the_local_header_not_the_listing() -> None:
    # miniz recomputes the data offset from the local header; a stale data_offset is ignored
    data = BENIGN["stored"]
    member = listing_of(data).members[0]
    stale = dataclasses.replace(member, data_offset=0)
    assert read_member(data, stale) == PICKLE


# --- mutated archives ---------------------------------------------------------------------------

SEEDS = [
    GOOD,
    BENIGN["with_comment"],
    BENIGN["zip64_end_record"],
    BENIGN["force_zip64_members"],
    duplicate_names(),
]


@st.composite
def mutated_zips(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):  # the directory and the end records are at the end
            at = len(data) - 1 - draw(st.integers(0, min(len(data) - 1, 160)))
        else:
            at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[at] ^= 1 << draw(st.integers(0, 7))
        else:
            value = draw(st.sampled_from([0, 0xFF, 0xFFFF, 0xFFFFFFFF, 1, 2**31]))
            width = draw(st.sampled_from([1, 2, 4]))
            chunk = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            data[at : at + width] = chunk
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_zips())
def test_mutated_archives_raise_only_the_readers_own_errors(data: bytes) -> None:
    f = io.BytesIO(data)
    find_zip(f, len(data))
    listing = read_listing(f, len(data))
    assert isinstance(listing, ZipListing)
    assert all(isinstance(finding, Finding) for finding in listing.findings)
    assert rules(listing) <= KNOWN_RULES
    for member in listing.members:
        try:
            with open_member(f, member, max_bytes=MiB) as stream:
                while stream.read(4096):
                    pass
        except ZipError:
            pass
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [info.filename for info in archive.infolist()]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return
    # Whatever zipfile lists, we list too, or we say why not.
    if not listing.findings:
        assert names == [m.name for m in listing.members]
