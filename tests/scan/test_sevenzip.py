"""7z archives through the engine: members are streamed out with py7zr and scanned like any
other file, within the engine's limits; what cannot be opened is blocked.

Every archive is built here with py7zr (names that py7zr refuses to write are patched into an
uncompressed header afterwards, with the CRCs fixed)."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import py7zr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py7zr.io import BytesIOFactory

from proxy.policy import Verdict, decide
from proxy.scan import sevenzip
from proxy.scan.engine import Limits, scan_path
from proxy.scan.report import Finding, Format, ScanReport, Severity
from tests.artifacts import safetensors_bytes
from tests.scan.pickle_samples import _nullifai_truncated
from tests.scan.test_engine import benign_pickle, system_pickle, torch_like_zip

MiB = 1 << 20
PICKLE_RULES = {"pickle-global-not-allowed", "pickle-dangerous-call"}


def seven_zip(
    members: dict[str, bytes],
    *,
    password: str | None = None,
    header_encryption: bool = False,
    encoded_header: bool = True,
    filters: list[dict[str, int]] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(
        buffer, "w", password=password, header_encryption=header_encryption, filters=filters
    ) as archive:
        if not encoded_header:
            archive.set_encoded_header_mode(False)
        for name, data in members.items():
            archive.writestr(data, name)
    return buffer.getvalue()


def renamed(data: bytes, renames: dict[str, str]) -> bytes:
    """Rename members in an archive with a plain (not encoded) header: py7zr refuses to write
    unsafe names, 7-Zip and hand-made archives do not."""
    out = bytearray(data)
    offset, length = struct.unpack_from("<QQ", out, 12)
    start = 32 + offset
    header = bytes(out[start : start + length])
    for old, new in renames.items():
        assert len(old) == len(new)
        encoded_old, encoded_new = old.encode("utf-16-le"), new.encode("utf-16-le")
        assert header.count(encoded_old) == 1
        header = header.replace(encoded_old, encoded_new)
    out[start : start + length] = header
    struct.pack_into("<I", out, 28, zlib.crc32(header))
    struct.pack_into("<I", out, 8, zlib.crc32(bytes(out[12:32])))
    return bytes(out)


def nullifai_7z(marker: Path) -> bytes:
    """nullifAI (ReversingLabs, Feb 2025): a PyTorch checkpoint directory compressed with 7z
    instead of zip (torch.load cannot read it, scanners skipped it), its data.pkl a pickle that
    runs os.system and then breaks."""
    return seven_zip(
        {
            "ballr7/data.pkl": _nullifai_truncated(str(marker)),
            "ballr7/data/0": os.urandom(256),
            "ballr7/version": b"3\n",
        }
    )


def scan(tmp_path: Path, data: bytes, name: str = "model.7z", **limits: int) -> ScanReport:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_path(path, limits=Limits(**limits) if limits else None)


def rules(report: ScanReport) -> set[str]:
    return {f.rule for f in report.findings}


def located(report: ScanReport, rule: str) -> list[str]:
    return [f.location or "" for f in report.findings if f.rule == rule]


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


# --- members are scanned ------------------------------------------------------------------------


def test_nullifai_7z_pickle_is_blocked_at_the_member(tmp_path: Path, marker: Path) -> None:
    report = scan(tmp_path, nullifai_7z(marker), "pytorch_model.bin")
    assert report.format is Format.SEVEN_ZIP
    assert decide(report).verdict is Verdict.BLOCK
    assert rules(report) >= PICKLE_RULES
    assert all(
        location.startswith("ballr7/data.pkl: byte ")
        for location in located(report, "pickle-dangerous-call")
    )
    assert not marker.exists()


def test_7z_of_a_torch_zip_checkpoint_is_scanned_through_both_containers(
    tmp_path: Path, marker: Path
) -> None:
    report = scan(tmp_path, seven_zip({"model.pt": torch_like_zip(system_pickle(marker))}))
    assert decide(report).verdict is Verdict.BLOCK
    assert any(
        loc.startswith("model.pt/archive/data.pkl")
        for loc in located(report, "pickle-dangerous-call")
    )


def test_7z_holding_safetensors_is_allowed(tmp_path: Path) -> None:
    data = seven_zip(
        {
            "model/model.safetensors": safetensors_bytes(64 << 10),
            "model/config.json": json.dumps({"model_type": "bert"}).encode(),
            "model/README.md": b"# tiny\n",
        }
    )
    report = scan(tmp_path, data)
    assert report.format is Format.SEVEN_ZIP
    assert report.findings == ()
    assert decide(report).verdict is Verdict.ALLOW


def test_a_7z_member_that_is_not_what_its_name_says_is_found(tmp_path: Path) -> None:
    report = scan(tmp_path, seven_zip({"model.safetensors": benign_pickle()}))
    assert located(report, "format-name-mismatch") == ["model.safetensors: model.safetensors"]
    assert decide(report).verdict is Verdict.BLOCK


def test_empty_7z_is_allowed(tmp_path: Path) -> None:
    report = scan(tmp_path, seven_zip({}))
    assert report.format is Format.SEVEN_ZIP
    assert report.findings == ()


@pytest.mark.parametrize(
    "filters",
    [
        [{"id": py7zr.FILTER_COPY}],
        [{"id": py7zr.FILTER_BZIP2}],
        [{"id": py7zr.FILTER_DEFLATE}],
        [{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA2}],
    ],
    ids=["copy", "bzip2", "deflate", "bcj-lzma2"],
)
def test_every_7z_method_is_opened(
    tmp_path: Path, marker: Path, filters: list[dict[str, int]]
) -> None:
    report = scan(tmp_path, seven_zip({"w.pkl": system_pickle(marker)}, filters=filters))
    assert rules(report) >= PICKLE_RULES


def test_duplicate_names_are_all_scanned(tmp_path: Path, marker: Path) -> None:
    """Extractors keep one of two same-named members (7-Zip asks, others overwrite): scan both."""
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr(benign_pickle(), "w.pkl")
        archive.writestr(system_pickle(marker), "w.pkl")
    data = buffer.getvalue()
    report = scan(tmp_path, data)
    assert rules(report) >= PICKLE_RULES


# --- nesting and limits -------------------------------------------------------------------------


def test_nested_7z_is_scanned(tmp_path: Path, marker: Path) -> None:
    inner = seven_zip({"w.pkl": system_pickle(marker)})
    outer = seven_zip({"bundle/inner.7z": inner, "bundle/README.md": b"hi\n"})
    report = scan(tmp_path, outer)
    assert decide(report).verdict is Verdict.BLOCK
    assert all(
        loc.startswith("bundle/inner.7z/w.pkl: byte ")
        for loc in located(report, "pickle-dangerous-call")
    )
    assert located(report, "pickle-dangerous-call")


def test_nesting_deeper_than_the_limit_is_blocked(tmp_path: Path) -> None:
    data = b"hello\n"
    for depth in range(4):
        data = seven_zip({f"level{depth}.7z" if depth else "notes.txt": data})
    assert scan(tmp_path, data).findings == ()
    report = scan(tmp_path, data, max_depth=2)
    assert located(report, "archive-depth") == ["level3.7z/level2.7z/level1.7z"]


def test_a_bomb_is_refused_from_its_declared_sizes(tmp_path: Path) -> None:
    """A small archive that declares a huge, highly compressible member (threats.md 4.5: bombs):
    blocked on the ratio before anything is decompressed."""
    data = seven_zip({"zeros.bin": bytes(256 * MiB)})
    assert len(data) < 256 * MiB // 1000
    started = time.perf_counter()
    report = scan(tmp_path, data)
    assert time.perf_counter() - started < 0.5  # 256 MiB would take seconds to inflate
    assert rules(report) == {"sevenzip-bomb-ratio"}
    assert decide(report).verdict is Verdict.BLOCK


def test_a_member_over_the_member_limit_stops_the_scan(tmp_path: Path, marker: Path) -> None:
    data = seven_zip({"a.bin": os.urandom(4 * MiB), "b.pkl": system_pickle(marker)})
    report = scan(tmp_path, data, max_member_bytes=MiB)
    assert [(f.rule, f.location) for f in report.findings] == [("archive-bomb", "a.bin")]


def test_members_over_the_total_limit_stop_the_scan(tmp_path: Path) -> None:
    data = seven_zip({"a.bin": os.urandom(MiB), "b.bin": os.urandom(MiB)})
    report = scan(tmp_path, data, max_total_bytes=MiB + MiB // 2)
    assert rules(report) == {"archive-bomb"}


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    data = seven_zip({f"m{index}.txt": b"x" for index in range(5)})
    assert scan(tmp_path, data, max_members=5).findings == ()
    assert rules(scan(tmp_path, data, max_members=4)) == {"archive-bomb"}


def test_an_oversized_header_is_refused_before_py7zr_parses_it(tmp_path: Path) -> None:
    """py7zr keeps a dict per member and lets a header declare a member per byte: a small
    archive with a big (compressed) header would cost gigabytes, so its size is checked first."""
    names = {f"shard-{index:05d}-{'x' * 60}.bin": b"" for index in range(3000)}
    data = seven_zip(names)
    assert len(data) < sevenzip.MAX_HEADER_BYTES  # the header is encoded (compressed)
    report = scan(tmp_path, data)
    assert [f.rule for f in report.findings] == ["archive-bomb"]
    assert "header" in report.findings[0].message


def test_the_streamed_bytes_are_counted_whatever_the_header_says() -> None:
    """The writer py7zr extracts into enforces the member limit itself."""
    seen: list[int] = []

    class Budget:
        def out_of_time(self, where: str) -> Finding | None:
            return None

        def spend(self, size: int, where: str) -> Finding | None:
            return None

    def scan_member(name: str, spool: object, size: int, where: str) -> list[Finding]:
        seen.append(size)
        return []

    extraction = sevenzip._Extraction("outer.7z", Budget(), 10, scan_member)
    writer = extraction.create("w.bin")
    writer.write(b"0123456789")
    with pytest.raises(sevenzip._Stop) as stopped:
        writer.write(b"x")
    assert stopped.value.finding == Finding(
        "archive-bomb", Severity.HIGH, "decompresses beyond 10 bytes", "outer.7z/w.bin"
    )
    extraction.discard()
    assert seen == []


# --- what cannot be scanned is blocked ------------------------------------------------------------


@pytest.mark.parametrize("header_encryption", [False, True], ids=["content", "header"])
def test_encrypted_7z_is_blocked(tmp_path: Path, marker: Path, header_encryption: bool) -> None:
    data = seven_zip(
        {"w.pkl": system_pickle(marker)}, password="secret", header_encryption=header_encryption
    )
    report = scan(tmp_path, data)
    assert rules(report) == {"sevenzip-encrypted"}
    assert decide(report).verdict is Verdict.BLOCK


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


CORRUPT: dict[str, Callable[[bytes], bytes]] = {
    "flipped data byte (CRC)": lambda d: _flip(d, 40),
    "flipped signature CRC": lambda d: _flip(d, 9),
    "flipped header byte": lambda d: _flip(d, len(d) - 5),
    "truncated": lambda d: d[: len(d) // 2],
    "signature only": lambda d: d[:32],
    "magic and junk (nullifAI stand-in)": lambda d: d[:8] + bytes(24) + d[32:],
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupted_7z_is_blocked(tmp_path: Path, case: str) -> None:
    data = CORRUPT[case](seven_zip({"model.safetensors": safetensors_bytes(4096)}))
    report = scan(tmp_path, data)
    assert report.format is Format.SEVEN_ZIP
    assert rules(report) == {"sevenzip-malformed"}, report.findings
    assert all(f.severity is Severity.HIGH for f in report.findings)


@pytest.mark.parametrize(
    "unsafe, reason",
    [
        ("../../evil.pkl", "has a '..' component"),
        ("/tmp/a/evil.pkl", "is an absolute path"),
        ("C:/Users/evil.pkl", "starts with a drive letter"),
    ],
)
def test_member_names_that_leave_the_directory_are_blocked(
    tmp_path: Path, marker: Path, unsafe: str, reason: str
) -> None:
    """threats.md 4.5: path traversal and absolute paths in archives. The other members are
    still scanned."""
    placeholder = "q" * len(unsafe)
    data = seven_zip(
        {placeholder: b"[Desktop Entry]\n", "w.pkl": system_pickle(marker)},
        encoded_header=False,
    )
    report = scan(tmp_path, renamed(data, {placeholder: unsafe}))
    traversal = [f for f in report.findings if f.rule == "sevenzip-path-traversal"]
    assert [(f.location, f.message) for f in traversal] == [(unsafe, f"{unsafe!r} {reason}")]
    assert rules(report) >= PICKLE_RULES


def test_links_in_7z_are_blocked(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "link").symlink_to("/etc/passwd")
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.write(tmp_path / "src" / "link", "model/link")
        archive.writestr(b"hi\n", "model/README.md")
    report = scan(tmp_path, buffer.getvalue())
    assert [(f.rule, f.location) for f in report.findings] == [("sevenzip-link", "model/link")]


def test_zstd_is_still_refused(tmp_path: Path) -> None:
    report = scan(tmp_path, b"\x28\xb5\x2f\xfd" + bytes(64), "model.zst")
    assert rules(report) == {"archive-not-scanned"}


# --- robustness ---------------------------------------------------------------------------------

SEED = seven_zip({"w.pkl": benign_pickle(), "model.safetensors": safetensors_bytes(512)})
SEED_PLAIN = seven_zip(
    {"w.pkl": benign_pickle(), "model.safetensors": safetensors_bytes(512)}, encoded_header=False
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from([SEED, SEED_PLAIN]), st.data())
def test_damaged_7z_never_raises_and_is_never_allowed_with_other_content(
    tmp_path: Path, seed: bytes, data: st.DataObject
) -> None:
    damaged = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(damaged)))
    damaged = damaged[:cut]
    started = time.perf_counter()
    report = scan(tmp_path, bytes(damaged))
    assert time.perf_counter() - started < 5
    if decide(report).verdict is Verdict.ALLOW:
        # allowed only if the damage changed nothing a 7z reader delivers (headers, names and
        # data are all CRC-protected)
        assert members_of(bytes(damaged)) == members_of(seed)


def members_of(data: bytes) -> dict[str, bytes] | None:
    """What py7zr extracts, or None when it cannot."""
    factory = BytesIOFactory(limit=1 << 20)
    try:
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            names = archive.getnames()
            archive.extractall(factory=factory)
    except Exception:
        return None
    return {name: factory.products[name].read() for name in names}
