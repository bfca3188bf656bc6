"""The static pickle analyser: malicious pickles built opcode by opcode are blocked, benign ones
pass with zero findings, and broken or hostile input never escapes or hangs the scanner.

Nothing here ever unpickles: ``test_scanning_never_unpickles`` makes sure of it, and every
payload would only touch a marker file in a temporary directory if it ever ran.
"""

from __future__ import annotations

import _compat_pickle
import base64
import bz2
import gzip
import importlib.util
import io
import json
import lzma
import pickle
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan.allowlist import (
    ARGUMENT_ROLES,
    CALLABLE,
    CONSTRUCTIBLE,
    REFERENCED,
    LoadContext,
    Use,
    canonical,
    dangerous_reason,
    is_allowed,
    uses,
)
from proxy.scan.pickles import PickleScan, looks_like_pickle, scan_pickle, scan_pickle_stream
from proxy.scan.report import Finding, Severity
from tests.scan import pickle_samples
from tests.scan.conftest import needs_torch
from tests.scan.pickle_samples import MALICIOUS, Malicious, Ops, benign_stdlib

SAMPLES_SCRIPT = Path(pickle_samples.__file__)


def scan(data: bytes, context: LoadContext = LoadContext.TORCH, **kwargs: Any) -> PickleScan:
    return scan_pickle(io.BytesIO(data), context=context, **kwargs)


def all_findings(scans: tuple[PickleScan, ...] | PickleScan) -> list[Finding]:
    if isinstance(scans, PickleScan):
        return list(scans.findings)
    return [finding for one in scans for finding in one.findings]


def scan_sample(sample: Malicious, marker: Path) -> list[Finding]:
    data = sample.build(str(marker))
    context = LoadContext(sample.context)
    max_ops = int(sample.extra.get("max_ops", 10_000_000))
    if sample.multi:
        return all_findings(scan_pickle_stream(io.BytesIO(data), context=context, max_ops=max_ops))
    return all_findings(scan(data, context, max_ops=max_ops))


# --------------------------------------------------------------------------------------------
# Malicious samples (sources: tests/scan/pickle_samples.py MALICIOUS, each with its advisory).


def test_there_are_at_least_forty_malicious_samples() -> None:
    assert len(MALICIOUS) >= 40
    assert len({sample.id for sample in MALICIOUS}) == len(MALICIOUS)
    assert all(sample.source for sample in MALICIOUS)


@pytest.mark.parametrize("sample", MALICIOUS, ids=[sample.id for sample in MALICIOUS])
def test_malicious_pickle_is_blocked(sample: Malicious, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    findings = scan_sample(sample, marker)
    rules = {finding.rule for finding in findings}
    assert sample.rules <= rules, [f.describe() for f in findings]
    assert any(f.severity >= Severity.HIGH for f in findings), "must be block-worthy"
    if sample.global_ is not None:
        module, qualname = sample.global_
        naming = [f for f in findings if f"{module}.{qualname}" in f.message]
        assert naming, [f.describe() for f in findings]
        assert any(f.severity is Severity.CRITICAL for f in naming)
        assert all(f.location and "byte " in f.location for f in naming)
    if sample.extra.get("malformed_critical"):
        assert any(
            f.rule == "pickle-malformed" and f.severity is Severity.CRITICAL for f in findings
        ), [f.describe() for f in findings]
    assert not marker.exists()


def test_scanning_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scanner must never unpickle")

    for name in ("load", "loads", "Unpickler", "_Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    marker = tmp_path / "marker"
    for sample in MALICIOUS:
        scan_sample(sample, marker)
        data = sample.build(str(marker))
        scan_pickle_stream(io.BytesIO(data), context=LoadContext.GENERIC, max_ops=100_000)
        looks_like_pickle(data[:64])
    assert not marker.exists()
    assert not list(tmp_path.iterdir())


def test_called_and_referenced_globals_are_told_apart() -> None:
    called = scan(pickle_samples.call_global("os", "system", "true"))
    (finding,) = [f for f in called.findings if f.rule == "pickle-global-not-allowed"]
    assert "os.system" in finding.message and "called via REDUCE" in finding.message
    assert finding.location == "byte 21"  # the REDUCE
    referenced = scan(Ops().proto(2).global_("os", "system").stop().build())
    (finding,) = [f for f in referenced.findings if f.rule == "pickle-global-not-allowed"]
    assert "referenced at byte 2, not called" in finding.message
    assert finding.location == "byte 2"


def test_known_gadget_gets_an_explaining_finding() -> None:
    result = scan(pickle_samples.call_global("os", "system", "true"))
    (danger,) = [f for f in result.findings if f.rule == "pickle-dangerous-call"]
    assert danger.severity is Severity.CRITICAL
    assert "runs programs" in danger.message


def test_memo_decoy_resolves_the_overwritten_slot(tmp_path: Path) -> None:
    # picklescan issue #22: the decoy "builtins.print" must not be what the scanner reports.
    result = scan(pickle_samples._memo_decoy(str(tmp_path / "m")))
    assert result.globals == (("os", "system"),)
    assert result.complete


def test_compat_aliases_are_mapped_only_where_the_unpickler_maps_them() -> None:
    # fix_imports applies to protocols 0-2; at protocol 3+ "__builtin__" is imported as is.
    at_two = scan(
        Ops().proto(2).global_("__builtin__", "set").empty_tuple().reduce().stop().build()
    )
    assert at_two.globals == (("builtins", "set"),)
    assert at_two.findings == ()
    at_three = scan(
        Ops().proto(3).global_("__builtin__", "set").empty_tuple().reduce().stop().build()
    )
    assert at_three.globals == (("__builtin__", "set"),)
    assert {f.rule for f in at_three.findings} == {"pickle-global-not-allowed"}


def test_embedded_pickle_is_scanned_for_reporting(tmp_path: Path) -> None:
    data = pickle_samples._pickle_loads_embedded(str(tmp_path / "m"))
    result = scan(data)
    embedded = [f for f in result.findings if f.message.startswith("embedded pickle:")]
    assert any("os.system" in f.message and f.severity is Severity.CRITICAL for f in embedded)
    assert all("embedded pickle byte" in (f.location or "") for f in embedded)
    assert any(f.rule == "pickle-embedded" for f in result.findings)
    assert ("pickle", "loads") in result.globals


def test_base64_embedded_pickle_is_decoded_for_reporting(tmp_path: Path) -> None:
    result = scan(pickle_samples._base64_embedded(str(tmp_path / "m")))
    assert any("base64-encoded" in f.message for f in result.findings)
    assert any(
        f.message.startswith("embedded pickle:") and "os.system" in f.message
        for f in result.findings
    )


def test_embedded_pickles_are_scanned_at_most_three_deep() -> None:
    data = pickle_samples.call_global("os", "system", "true")
    for _ in range(5):
        wrapper = Ops().proto(3).global_("pickle", "loads").binbytes(data).tuple1().reduce()
        data = wrapper.stop().build()
    result = scan(data)
    deepest = max((f.location or "").count("embedded") for f in result.findings)
    assert deepest == 3


def test_large_embedded_pickle_is_scanned_in_place() -> None:
    # Too large to keep in memory: the embedded pickle is read again from the stream.
    inner = Ops().proto(2).global_("os", "system").unicode("x" * 100_000).tuple1().reduce()
    outer = Ops().proto(4).global_("_pickle", "loads").binbytes8(inner.stop().build())
    result = scan(outer.tuple1().reduce().stop().build())
    assert result.complete
    embedded = [f for f in result.findings if f.message.startswith("embedded pickle:")]
    assert any("os.system" in f.message for f in embedded)


class NoSizeStream(io.BytesIO):
    """Seeking to the end of a decompressing stream decompresses all of it: never do that."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        assert whence != io.SEEK_END, "the scanner asked for the size"
        return super().seek(offset, whence)


def test_stream_size_is_never_asked_for_a_good_pickle() -> None:
    data = Ops().proto(4).binbytes8(bytes(200_000)).stop().build()
    for stream_scan in (
        scan_pickle(NoSizeStream(data), context=LoadContext.GENERIC),
        scan_pickle_stream(NoSizeStream(data + data), context=LoadContext.GENERIC)[-1],
    ):
        assert stream_scan.complete and stream_scan.findings == ()


def test_function_is_not_constructible_and_value_is_not_callable() -> None:
    newobj = Ops().proto(2).global_("torch._utils", "_rebuild_tensor_v2").empty_tuple().newobj()
    result = scan(newobj.stop().build())
    assert [f.rule for f in result.findings] == ["pickle-call-not-allowed"]
    assert "construct" in result.findings[0].message


def test_allowed_class_may_be_reduced_and_built() -> None:
    data = (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .mark()
        .unicode("a")
        .int_(1)
        .setitems()
        .global_("torch", "device")
        .unicode("cpu")
        .tuple1()
        .reduce()
        .pop()
        .stop()
        .build()
    )
    result = scan(data)
    assert result.findings == ()
    assert result.complete and result.end_offset == len(data)


def test_user_class_in_full_module_pickle_is_reported_as_constructed() -> None:
    data = (
        Ops()
        .proto(2)
        .global_("__main__", "MyNet")
        .empty_tuple()
        .newobj()
        .empty_dict()
        .unicode("training")
        .raw(b"\x88")
        .setitem()
        .build_()
        .stop()
        .build()
    )
    result = scan(data)
    (finding,) = result.findings
    assert finding.rule == "pickle-global-not-allowed"
    assert "__main__.MyNet" in finding.message and "called via NEWOBJ" in finding.message


def test_joblib_array_data_is_skipped_as_joblib_reads_it() -> None:
    # Array bytes that look like opcodes are data to joblib: no finding.
    data_bytes = b"\x01\xff" + b"cos\nsystem\n(S'x'\ntR." + bytes(4)
    array = pickle_samples.joblib_array(data_bytes, code="u1", shape=(2, 12))
    data = Ops().proto(2).raw(array.build()).stop().build()
    result = scan(data, LoadContext.JOBLIB)
    assert result.complete and result.findings == () and result.end_offset == len(data)
    # Read as a plain pickle (another loader), the same bytes are opcodes again.
    assert not scan(data, LoadContext.GENERIC).complete


def test_joblib_array_claiming_more_data_than_the_file_has() -> None:
    array = pickle_samples.joblib_array(b"\x00", shape=(1 << 40,))
    result = scan(Ops().proto(2).raw(array.build()).stop().build(), LoadContext.JOBLIB)
    assert not result.complete
    assert result.findings[-1].rule == "pickle-malformed"


def test_joblib_object_array_is_scanned_as_a_nested_pickle() -> None:
    nested = pickle.dumps(["a", {"b": 1}], protocol=2)
    array = pickle_samples.joblib_array(nested, code="O8", flags=63, alignment=None)
    data = Ops().proto(2).raw(array.build()).stop().build()
    result = scan(data, LoadContext.JOBLIB)
    assert result.complete and result.findings == () and result.end_offset == len(data)


# --------------------------------------------------------------------------------------------
# Malformed streams fail closed.


@pytest.mark.parametrize(
    ("data", "severity"),
    [
        pytest.param(b"", Severity.HIGH, id="empty"),
        pytest.param(b"\x80\x02}q\x00", Severity.HIGH, id="truncated_before_stop"),
        pytest.param(b"\x80\x02\xff.", Severity.HIGH, id="unknown_opcode"),
        pytest.param(b"\x80\x02R.", Severity.HIGH, id="stack_underflow"),
        pytest.param(b"\x80\x02K\x01t.", Severity.HIGH, id="mark_missing"),
        pytest.param(b"\x80\x02h\x07.", Severity.HIGH, id="memo_miss"),
        pytest.param(b"\x80\x06N.", Severity.HIGH, id="unsupported_protocol"),
        pytest.param(b"\x80\x02(K\x01d.", Severity.HIGH, id="odd_dict"),
        pytest.param(b"\x80\x05\x97.", Severity.HIGH, id="out_of_band_buffer"),
        pytest.param(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", Severity.HIGH, id="frame"),
        pytest.param(b"\x80\x02S'unquoted\n.", Severity.HIGH, id="unquoted_string"),
        pytest.param(
            b"\x80\x02cos\nsystem\nN\x85R\xfe", Severity.CRITICAL, id="error_after_call_site"
        ),
    ],
)
def test_broken_stream_is_a_finding(data: bytes, severity: Severity) -> None:
    result = scan(data)
    assert not result.complete
    malformed = [f for f in result.findings if f.rule == "pickle-malformed"]
    assert malformed and malformed[-1].severity is severity


def test_second_proto_is_reported_but_followed() -> None:
    result = scan(b"\x80\x02N0\x80\x02N.")
    assert result.complete
    (finding,) = result.findings
    assert finding.rule == "pickle-malformed" and "PROTO" in finding.message


def test_stack_global_with_bytes_operands_fails_like_the_unpickler() -> None:
    result = scan(Ops().proto(4).binbytes(b"os").binbytes(b"system").stack_global().stop().build())
    assert not result.complete
    assert [f.rule for f in result.findings] == ["pickle-nonconstant-global", "pickle-malformed"]


def test_opcode_budget_bounds_the_work() -> None:
    data = Ops().proto(2).raw(b"N0" * 50_000).none().stop().build()
    started = time.perf_counter()
    result = scan(data, max_ops=1_000)
    assert time.perf_counter() - started < 1.0
    assert not result.complete
    assert any("budget" in f.message for f in result.findings)


# --------------------------------------------------------------------------------------------
# Streams of several pickles.


def _legacy_like(data_bytes: int) -> bytes:
    """The five pickles of a legacy torch file (magic, version, sys_info, object, keys)."""
    main = (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .unicode("w")
        .global_("torch._utils", "_rebuild_tensor_v2")
        .mark()
        .mark()
        .unicode("storage")
        .global_("torch", "FloatStorage")
        .unicode("0")
        .unicode("cpu")
        .int_(data_bytes // 4)
        .none()
        .tuple_()
        .binpersid()
        .int_(0)
        .int_(data_bytes // 4)
        .tuple1()
        .int_(1)
        .tuple1()
        .raw(b"\x89")
        .global_("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .tuple_()
        .reduce()
        .setitem()
        .stop()
        .build()
    )
    return b"".join(
        [
            pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
            pickle.dumps(1001, protocol=2),
            pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
            main,
            pickle.dumps(["0"], protocol=2),
        ]
    )


class VirtualFile(io.RawIOBase):
    """``prefix`` followed by ``size`` zero bytes that exist only on demand; counts reads."""

    def __init__(self, prefix: bytes, size: int, fill: bytes = b"\x00") -> None:
        self.prefix = prefix
        self.total = len(prefix) + size
        self.fill = fill
        self.position = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.total}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.total - self.position))
        for i in range(n):
            at = self.position + i
            view[i] = self.prefix[at] if at < len(self.prefix) else self.fill[0]
        self.position += n
        self.bytes_read += n
        return n


def test_legacy_layout_stops_at_storage_bytes() -> None:
    head = _legacy_like(64)
    data = head + struct.pack("<Q", 16) + bytes(range(64))
    scans = scan_pickle_stream(io.BytesIO(data), context=LoadContext.TORCH)
    assert len(scans) == 5
    assert all(one.complete and one.findings == () for one in scans)
    assert scans[-1].end_offset == len(head)


def test_one_gib_legacy_file_streams_without_reading_the_data() -> None:
    head = _legacy_like(1 << 30) + struct.pack("<Q", 1 << 28)
    virtual = VirtualFile(head, 1 << 30)
    started = time.perf_counter()
    scans = scan_pickle_stream(cast(BinaryIO, virtual), context=LoadContext.TORCH)
    assert time.perf_counter() - started < 2.0
    assert len(scans) == 5 and all(one.findings == () for one in scans)
    assert virtual.bytes_read < 256 * 1024


def test_huge_binbytes8_is_skipped_by_seek() -> None:
    size = 3 << 30
    prefix = b"\x80\x04\x8e" + struct.pack("<Q", size)
    virtual = VirtualFile(prefix, size + 1, fill=b".")
    result = scan_pickle(cast(BinaryIO, virtual), context=LoadContext.GENERIC)
    assert result.complete and result.findings == ()
    assert result.end_offset == len(prefix) + size + 1
    assert virtual.bytes_read < 256 * 1024


class OneWayStream(io.RawIOBase):
    """A stream that cannot seek (a pipe, a decompressor)."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self.inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream_is_read_forward(tmp_path: Path) -> None:
    big = Ops().proto(4).binbytes8(b"\x00" * 300_000).stop().build()
    data = big + pickle_samples._multi_third(str(tmp_path / "m"))
    scans = scan_pickle_stream(cast(BinaryIO, OneWayStream(data)), context=LoadContext.TORCH)
    assert [one.complete for one in scans] == [True, True, True, True]
    assert scans[0].findings == () and scans[3].globals == (("os", "system"),)
    assert scans[-1].end_offset == len(data)


def test_multi_pickle_reports_only_the_bad_one(tmp_path: Path) -> None:
    data = pickle_samples._multi_third(str(tmp_path / "m"))
    scans = scan_pickle_stream(io.BytesIO(data), context=LoadContext.TORCH)
    assert [one.findings == () for one in scans] == [True, True, False]
    assert scans[2].globals == (("os", "system"),)


def test_broken_later_pickle_that_ran_something_keeps_its_severity() -> None:
    good = pickle.dumps({"a": 1}, protocol=2)
    bad = b"\x80\x02cos\nsystem\nN\x85R"  # payload, then the stream ends
    scans = scan_pickle_stream(io.BytesIO(good + bad), context=LoadContext.TORCH)
    assert len(scans) == 2 and not scans[1].complete
    assert {f.rule for f in scans[1].findings} >= {"pickle-global-not-allowed", "pickle-malformed"}


def test_stream_with_too_many_pickles_is_a_finding() -> None:
    data = pickle.dumps(1, protocol=2) * 5
    scans = scan_pickle_stream(io.BytesIO(data), context=LoadContext.GENERIC, max_pickles=3)
    assert len(scans) == 4
    assert scans[-1].findings[0].rule == "pickle-too-many"


def test_scan_pickle_leaves_the_stream_after_stop_and_uses_offsets() -> None:
    first = pickle.dumps([1, 2], protocol=2)
    second = pickle_samples.call_global("os", "system", "true")
    stream = io.BytesIO(b"junk" + first + second)
    stream.seek(4)
    one = scan_pickle(stream, context=LoadContext.GENERIC, start_offset=4)
    assert one.complete and one.end_offset == 4 + len(first) and stream.tell() == 4 + len(first)
    two = scan_pickle(
        stream, context=LoadContext.GENERIC, start_offset=one.end_offset, location_prefix="a/b: "
    )
    assert two.findings[0].location == f"a/b: byte {one.end_offset + 21}"
    stream.seek(4)
    three = scan_pickle(stream, context=LoadContext.GENERIC, location_prefix="x/data.pkl")
    assert three.end_offset == len(first)
    stream.seek(4 + len(first))
    four = scan_pickle(stream, context=LoadContext.GENERIC, location_prefix="x/data.pkl")
    assert four.findings[0].location == "x/data.pkl: byte 21"


# --------------------------------------------------------------------------------------------
# Content sniffing.


@pytest.mark.parametrize(
    "head",
    [
        pickle.dumps({"a": 1}, protocol=0),
        pickle.dumps([1, 2], protocol=1),
        pickle.dumps(None, protocol=0),
        b"cos\nsystem\n(S'x'\ntR.",
        b"]q\x00(K\x01K\x02e.",
        b"}q\x00X\x01\x00\x00\x00aq\x01K\x01s.",
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94",
        b"\x80\x02}q\x00(X",
        b"N.",
    ],
)
def test_pickles_are_recognised(head: bytes) -> None:
    assert looks_like_pickle(head[:64])


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"# README\n\nSome text about a model.\n",
        b'{"architectures": ["BertModel"]}',
        b"(Intro) this is prose, not a pickle",
        b"Rough notes",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"\x80\x09junk",
        b"\x80",
        b".",
        b"I am not a number\n",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'",
        b"GGUF\x03\x00\x00\x00",
    ],
)
def test_other_content_is_not_a_pickle(head: bytes) -> None:
    assert not looks_like_pickle(head)


# --------------------------------------------------------------------------------------------
# The allowlists.


def test_canonical_maps_python2_names() -> None:
    assert canonical("__builtin__", "eval") == ("builtins", "eval")
    assert canonical("copy_reg", "_reconstructor") == ("copyreg", "_reconstructor")
    assert canonical("commands", "getoutput") == ("subprocess", "getoutput")
    assert canonical("UserDict", "UserDict") == ("collections", "UserDict")
    assert canonical("__builtin__", "unicode") == ("builtins", "str")
    assert canonical("torch", "float32") == ("torch", "float32")


def test_is_allowed_is_exact() -> None:
    torch = LoadContext.TORCH
    assert is_allowed("torch._utils", "_rebuild_tensor_v2", torch)
    assert is_allowed("copy_reg", "_reconstructor", torch)  # via _compat_pickle
    assert is_allowed("torch.nn.modules.linear", "Linear", torch)
    assert not is_allowed("torch._utils", "_rebuild_tensor_v2.__globals__", torch)
    assert not is_allowed("torch", "_utils._rebuild_tensor_v2", torch)
    assert not is_allowed("torch._utils", "os.system", torch)
    assert not is_allowed("torch._utils.x", "_rebuild_tensor_v2", torch)
    assert not is_allowed("collections", "OrderedDictX", torch)
    assert not is_allowed("torch.nn.modules", "linear", torch)
    assert not is_allowed("torch._utils", "_rebuild_tensor_v2", LoadContext.JOBLIB)
    assert not is_allowed("torch.nn.modules.linear", "Linear", LoadContext.GENERIC)
    assert not is_allowed("builtins", "getattr", torch)
    assert uses("torch", "float32", torch) == {Use.REFERENCE}
    assert uses("torch._utils", "_rebuild_tensor_v2", torch) == {Use.CALL, Use.REFERENCE}
    assert Use.CONSTRUCT in uses("torch.nn.modules.linear", "Linear", torch)


def _all_pairs() -> Iterator[tuple[LoadContext, tuple[str, str]]]:
    for table in (CALLABLE, CONSTRUCTIBLE, REFERENCED):
        for context, pairs in table.items():
            for pair in pairs:
                yield context, pair


def test_allowlists_hold_exact_names_only() -> None:
    for _context, (module, qualname) in _all_pairs():
        assert module and qualname and "." not in qualname and "*" not in module + qualname
        assert all(part.isidentifier() for part in module.split("."))
        assert canonical(module, qualname) == (module, qualname)


def test_allowlists_and_known_gadgets_are_disjoint() -> None:
    for context, (module, qualname) in _all_pairs():
        assert dangerous_reason(module, qualname) is None, (context, module, qualname)


def test_every_context_has_a_list() -> None:
    for table in (CALLABLE, CONSTRUCTIBLE, REFERENCED):
        assert set(table) == set(LoadContext)
    for pair in ARGUMENT_ROLES:
        assert any(pair in CALLABLE[c] or pair in CONSTRUCTIBLE[c] for c in LoadContext)


def test_python2_aliases_of_allowed_names_do_not_exist_in_python3() -> None:
    # canonical() maps unconditionally; the unpickler maps only at protocols 0-2. An alias that
    # names a real Python 3 module would make the two disagree at protocol 3+.
    allowed = {pair for _context, pair in _all_pairs()}
    for (module, _name), target in _compat_pickle.NAME_MAPPING.items():
        if target in allowed:
            assert importlib.util.find_spec(module) is None, module
    for module, target_module in _compat_pickle.IMPORT_MAPPING.items():
        if any(m == target_module for m, _ in allowed) and "." not in module:
            assert importlib.util.find_spec(module) is None, module


@pytest.mark.parametrize(
    ("module", "qualname", "needle"),
    [
        ("os", "system", "programs"),
        ("posix", "system", "programs"),
        ("builtins", "getattr.__self__.exec", "attributes"),
        ("torch._utils", "os.system", "attribute walk"),
        ("asyncio.unix_events", "_UnixSubprocessTransport._start", "programs"),
        ("pip._internal.cli.main", "main", "programs"),
        ("transformers", "AutoModel.from_pretrained", "another repository"),
        ("builtins", "print.__class__.__base__.__subclasses__", "attributes"),
    ],
)
def test_dangerous_reason_names_the_gadget(module: str, qualname: str, needle: str) -> None:
    reason = dangerous_reason(module, qualname)
    assert reason is not None and needle in reason


# --------------------------------------------------------------------------------------------
# Benign pickles made by the stdlib.


@pytest.mark.parametrize(("name", "data"), benign_stdlib(), ids=[n for n, _ in benign_stdlib()])
def test_benign_stdlib_pickle_is_clean(name: str, data: bytes) -> None:
    for context in (LoadContext.GENERIC, LoadContext.TORCH):
        result = scan(data, context)
        assert result.findings == (), [f.describe() for f in result.findings]
        assert result.complete and result.end_offset == len(data)
    # 64 bytes are enough after PROTO; protocol 0/1 text needs a few complete opcodes.
    assert looks_like_pickle(data[: 64 if data[:1] == b"\x80" else 4096])


def test_large_state_dict_pickle_is_fast() -> None:
    # A torch-like data.pkl of 20,000 tensors (several MB of opcodes).
    ops = (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .binput(0)
        .empty_tuple()
        .reduce()
        .binput(1)
        .global_("torch._utils", "_rebuild_tensor_v2")
        .binput(2)
        .pop()
        .global_("torch", "FloatStorage")
        .binput(3)
        .pop()
        .mark()
    )
    for i in range(20_000):
        (
            ops.unicode(f"model.layers.{i}.self_attn.q_proj.weight")
            .binget(2)
            .mark()
            .mark()
            .unicode("storage")
            .binget(3)
            .unicode(str(i))
            .unicode("cpu")
            .int_(4096)
            .tuple_()
            .binpersid()
            .int_(0)
            .int_(64)
            .int_(64)
            .tuple2()
            .int_(64)
            .int_(1)
            .tuple2()
            .raw(b"\x89")
            .binget(0)
            .empty_tuple()
            .reduce()
            .tuple_()
            .reduce()
            .long_binput(10 + i)
        )
    data = ops.setitems().stop().build()
    assert len(data) > 2_000_000
    started = time.perf_counter()
    result = scan(data)
    elapsed = time.perf_counter() - started
    assert result.complete and result.findings == ()
    assert elapsed < 5.0


# --------------------------------------------------------------------------------------------
# Mutated pickles: nothing escapes, the budget holds, broken input is a finding.

_SEEDS: list[bytes] = [data for _name, data in benign_stdlib()[::7]] + [
    sample.build("/nonexistent/marker") for sample in MALICIOUS[::3]
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            other = draw(st.sampled_from(_SEEDS))
            cut = draw(st.integers(0, len(other)))
            data[at:] = other[cut:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        else:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(data=mutated(), context=st.sampled_from(list(LoadContext)))
def test_mutated_pickles_never_escape(data: bytes, context: LoadContext) -> None:
    result = scan_pickle(io.BytesIO(data), context=context, max_ops=20_000)
    assert isinstance(result, PickleScan)
    assert "pickle-scanner-error" not in {f.rule for f in result.findings}
    assert 0 <= result.end_offset <= len(data)
    if not result.complete:
        assert any(f.rule == "pickle-malformed" for f in result.findings)
    scans = scan_pickle_stream(io.BytesIO(data), context=context, max_ops=20_000)
    assert scans and scans[0].complete == result.complete
    assert all(0 <= one.end_offset <= len(data) for one in scans)
    looks_like_pickle(data[:64])


# --------------------------------------------------------------------------------------------
# Real checkpoints, written by torch/numpy/sklearn/joblib/transformers under Python 3.11
# (AIRLOCK_TORCH_PYTHON). The zip reading here is for the test only.


def _decompress(data: bytes) -> bytes:
    if data[:1] == b"\x78":
        return zlib.decompress(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00" or data[:1] == b"\x5d":
        return lzma.decompress(data)
    return data


def _scan_real(path: Path, entry: dict[str, Any], whole: bool = True) -> tuple[PickleScan, ...]:
    """Scan a real file the way its loader reads it; ``whole``: the pickle must end exactly
    where the data ends."""
    context = LoadContext(entry["context"])
    container = entry["container"]
    if container == "torch-zip":
        with zipfile.ZipFile(path) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            data = archive.read(name)
        result = scan(data, context, location_prefix=f"{name}: ")
        assert not whole or result.end_offset == len(data)
        return (result,)
    if container == "torch-legacy":
        with path.open("rb") as handle:
            return scan_pickle_stream(cast(BinaryIO, handle), context=context)
    if container == "joblib":
        data = _decompress(path.read_bytes())
        result = scan(data, context)
        assert not whole or result.end_offset == len(data)
        return (result,)
    assert container == "npy"
    raw = path.read_bytes()
    assert raw[:6] == b"\x93NUMPY"
    if raw[6] == 1:
        start = 10 + struct.unpack("<H", raw[8:10])[0]
    else:
        start = 12 + struct.unpack("<I", raw[8:12])[0]
    result = scan(raw[start:], context)
    assert not whole or result.end_offset == len(raw) - start
    return (result,)


@needs_torch
def test_real_benign_files_have_zero_findings(
    real_samples: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, manifest = real_samples
    assert len(manifest) >= 50
    problems: dict[str, list[str]] = {}
    for entry in manifest:
        if entry.get("user_globals") or entry.get("user_module_prefixes"):
            continue
        scans = _scan_real(out / entry["file"], entry)
        issues = [f.describe() for f in all_findings(scans)]
        issues += [f"incomplete at {one.end_offset}" for one in scans if not one.complete]
        if issues:
            problems[entry["file"]] = issues
    assert not problems, json.dumps(problems, indent=1)


@needs_torch
def test_real_legacy_files_are_five_pickles(
    real_samples: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, manifest = real_samples
    legacy = [entry for entry in manifest if entry["container"] == "torch-legacy"]
    assert len(legacy) >= 3
    for entry in legacy:
        scans = _scan_real(out / entry["file"], entry)
        assert len(scans) == 5, entry["file"]


@needs_torch
def test_real_full_module_pickles_report_exactly_the_user_classes(
    real_samples: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, manifest = real_samples
    entries = [e for e in manifest if e.get("user_globals") or e.get("user_module_prefixes")]
    assert len(entries) >= 3
    for entry in entries:
        findings = all_findings(_scan_real(out / entry["file"], entry))
        assert {f.rule for f in findings} == {"pickle-global-not-allowed"}, entry["file"]
        assert all("called via NEWOBJ" in f.message for f in findings), entry["file"]
        scans = _scan_real(out / entry["file"], entry)
        reported = {
            pair
            for one in scans
            for pair in one.globals
            if not is_allowed(pair[0], pair[1], LoadContext(entry["context"]))
        }
        if entry.get("user_globals"):
            assert reported == {tuple(pair) for pair in entry["user_globals"]}, entry["file"]
        else:
            prefixes = tuple(entry["user_module_prefixes"])
            assert reported and all(module.startswith(prefixes) for module, _ in reported)
            for module, qualname in entry["must_report"]:
                assert (module, qualname) in reported
        assert len(findings) == len(reported)


@needs_torch
def test_real_files_stay_clean_only_in_their_own_context(
    real_samples: tuple[Path, list[dict[str, Any]]],
) -> None:
    # Per-context lists: a joblib model is not a clean numpy object array, and so on.
    out, manifest = real_samples
    by_name = {entry["file"]: entry for entry in manifest}
    moved = [
        ("random_forest.joblib", LoadContext.NUMPY),
        ("training_args.bin", LoadContext.TORCH),
        ("full_module_torch_only.pt", LoadContext.GENERIC),
        ("rng_state.pth", LoadContext.JOBLIB),
    ]
    for name, context in moved:
        entry = {**by_name[name], "context": context}
        findings = all_findings(_scan_real(out / name, entry, whole=False))
        assert any(f.severity >= Severity.HIGH for f in findings), name


def test_sample_generator_is_a_script() -> None:
    # The generator must run under the 3.11 interpreter without the Airlock package.
    source = SAMPLES_SCRIPT.read_text()
    assert "from proxy" not in source and "import proxy" not in source
    assert "from tests" not in source
    completed = subprocess.run(
        [sys.executable, str(SAMPLES_SCRIPT)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2 and "usage" in completed.stderr


def test_base64_helper_is_sane() -> None:
    inner = pickle_samples.call_global("os", "system", "true")
    assert looks_like_pickle(base64.b64decode(base64.b64encode(inner))[:64])
