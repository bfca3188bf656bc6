"""Fuzzing the safetensors header check: valid files are built, then their length prefix, JSON
text, dtypes, shapes, offsets, metadata and trailing bytes are mutated. Whatever comes out,
`proxy.scan.safetensors` and `engine.scan_path` must not raise and must answer quickly, and a
file is allowed exactly when it passes a strict reference check written here from the format
description (and the safetensors library itself can load it).

A safetensors file is an import firewall's release point (architecture.md: judged on its header
alone), so a header that a loader would read differently from the scanner must never pass."""

from __future__ import annotations

import ctypes
import json
import math
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import safetensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.policy import Verdict, decide
from proxy.scan import safetensors as scan_safetensors
from proxy.scan.engine import scan_path
from proxy.scan.report import Severity

# The dtypes of the format (safetensors 0.8 `Dtype`), in bits per element.
REFERENCE_DTYPES = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
    "U64": 64,
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # what the safetensors library refuses above
TIME_BOUND_S = 1.0


# --- the reference ------------------------------------------------------------------------------


class _Reject(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Reject(f"duplicate key {key!r}")
        result[key] = value
    return result


def _constant(name: str) -> float:
    raise _Reject(f"{name} is not JSON")


def _count(value: Any) -> int:
    """Shape dimensions and offsets are 64-bit unsigned integers (`usize` in the library)."""
    if type(value) is not int or not 0 <= value < 2**64:
        raise _Reject(f"{value!r} is not a count")
    return value


def reference_check(data: bytes) -> bool:
    """Strict reading of the format: the file round-trips through it (parsed, re-serialised
    and parsed again to the same header) and its tensors tile the data region exactly."""
    try:
        _reference(data)
    except _Reject:
        return False
    return True


def _reference(data: bytes) -> None:
    if len(data) < 8:
        raise _Reject("no length prefix")
    length = int.from_bytes(data[:8], "little")
    if not 2 <= length <= MAX_HEADER_BYTES or 8 + length > len(data):
        raise _Reject("bad header length")
    raw = data[8 : 8 + length]
    if raw[:1] != b"{":
        raise _Reject("the header does not start with {")
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
        again = json.dumps(header, ensure_ascii=False).encode("utf-8")  # lone surrogates fail
    except (UnicodeError, ValueError) as exc:
        raise _Reject(str(exc)) from exc
    if not isinstance(header, dict) or json.loads(again) != header:
        raise _Reject("does not round-trip")
    spans: list[tuple[int, int]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
            ):
                raise _Reject("metadata must map strings to strings")
            continue
        if not isinstance(entry, dict) or sorted(entry) != ["data_offsets", "dtype", "shape"]:
            raise _Reject("a tensor has exactly dtype, shape and data_offsets")
        bits = REFERENCE_DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
        shape, offsets = entry["shape"], entry["data_offsets"]
        if bits is None or not isinstance(shape, list) or not isinstance(offsets, list):
            raise _Reject("bad dtype, shape or offsets")
        dims = [_count(d) for d in shape]
        if len(offsets) != 2:
            raise _Reject("two offsets")
        begin, end = _count(offsets[0]), _count(offsets[1])
        elements = 1
        for dim in dims:  # the library multiplies left to right and refuses an overflow
            elements *= dim
            if elements >= 2**64:
                raise _Reject("the shape overflows")
        total_bits = elements * bits
        if begin > end or total_bits % 8 or total_bits // 8 != end - begin:
            raise _Reject("offsets do not match the dtype and shape")
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise _Reject("gap or overlap")
        position = end
    if position != len(data) - 8 - length:
        raise _Reject("the tensors do not cover the data region")


def library_loads(data: bytes) -> bool:
    try:
        safetensors.deserialize(data)  # type: ignore[no-untyped-call]  # untyped stub
    except Exception:
        return False
    return True


# --- building and mutating files ------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["weight", "model.layers.0.mlp.up_proj.weight", "bias", "w", ""]),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
COUNTS = st.one_of(
    st.integers(0, 64),
    st.integers(-3, -1),
    st.integers(2**62, 2**66),
    st.sampled_from([1.0, True, "8", None]),
)
Pairs = list[tuple[str, Any]]


@st.composite
def valid_header(draw: st.DrawFn) -> tuple[Pairs, int]:
    """(header members in file order, data bytes) of a valid file."""
    pairs: Pairs = []
    offset = 0
    used: set[str] = set()
    for index in range(draw(st.integers(0, 4))):
        name = draw(NAMES)
        if name in used or name == "__metadata__":
            name = f"t{index}"
        used.add(name)
        dtype = draw(st.sampled_from(sorted(scan_safetensors.DTYPE_BITS)))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        if math.prod(shape) * REFERENCE_DTYPES[dtype] % 8:
            shape.append(8)
        size = math.prod(shape) * REFERENCE_DTYPES[dtype] // 8
        pairs.append(
            (name, {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]})
        )
        offset += size
    if draw(st.booleans()):
        metadata = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
        pairs.insert(draw(st.integers(0, len(pairs))), ("__metadata__", metadata))
    return pairs, offset


def _tensor_indexes(pairs: Pairs) -> list[int]:
    """The members that are still tensor entries (a dict) after earlier mutations."""
    return [
        i
        for i, (name, value) in enumerate(pairs)
        if name != "__metadata__" and isinstance(value, dict)
    ]


def mutate_structure(pairs: Pairs, data: st.DataObject) -> Pairs:
    pairs = [(name, dict(value) if isinstance(value, dict) else value) for name, value in pairs]
    tensors = _tensor_indexes(pairs)
    kinds = ["dtype", "shape", "offsets", "swap", "metadata", "extra", "drop", "duplicate",
             "surrogate", "entry"]  # fmt: skip
    kind = data.draw(st.sampled_from(kinds))
    if kind == "metadata":
        pairs = [pair for pair in pairs if pair[0] != "__metadata__"]
        pairs.insert(
            data.draw(st.integers(0, len(pairs))), ("__metadata__", data.draw(JSON_VALUES))
        )
        return pairs
    if not tensors:
        return pairs
    at = data.draw(st.sampled_from(tensors))
    name, entry = pairs[at]
    if kind == "dtype":
        entry["dtype"] = data.draw(
            st.one_of(
                st.sampled_from([*REFERENCE_DTYPES, "bool", "F8", "F32 ", "E8M0"]), JSON_VALUES
            )
        )
    elif kind == "shape":
        entry["shape"] = data.draw(st.one_of(st.lists(COUNTS, max_size=3), JSON_VALUES))
    elif kind == "offsets":
        entry["data_offsets"] = data.draw(st.one_of(st.lists(COUNTS, max_size=3), JSON_VALUES))
    elif kind == "swap" and isinstance(entry.get("data_offsets"), list):
        entry["data_offsets"] = entry["data_offsets"][::-1]
    elif kind == "extra":
        entry[data.draw(st.sampled_from(["offsets", "dtype ", "data", "x"]))] = data.draw(
            JSON_VALUES
        )
    elif kind == "drop" and entry:
        del entry[data.draw(st.sampled_from(sorted(entry)))]
    elif kind == "duplicate":
        pairs.insert(data.draw(st.integers(0, len(pairs))), (name, dict(entry)))
    elif kind == "surrogate":
        pairs[at] = (name + chr(data.draw(st.integers(0xD800, 0xDFFF))), entry)
    elif kind == "entry":
        pairs[at] = (name, data.draw(JSON_VALUES))
    return pairs


def serialise(pairs: Pairs, *, ascii_only: bool) -> bytes:
    members = (
        json.dumps(name, ensure_ascii=ascii_only) + ":" + json.dumps(value, ensure_ascii=ascii_only)
        for name, value in pairs
    )
    text = "{" + ",".join(members) + "}"
    raw = text.encode("utf-8", "surrogatepass")
    return raw + b" " * (-len(raw) % 8)


JSONISH = st.binary(max_size=3) | st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b'"',
        b"\\",
        b"\\u",
        b"-",
        b"0",
        b"1e9",
        b"NaN",
        b"\x00",
        b"\xff",
    ]
)


def mutate_bytes(header: bytes, data_bytes: int, data: st.DataObject) -> tuple[bytes, bytes]:
    """(prefix + header, data region) after a byte-level mutation."""
    prefix = struct.pack("<Q", len(header))
    kind = data.draw(
        st.sampled_from(["prefix", "flip", "insert", "delete", "cut", "pad", "trailing", "short"])
    )
    body = bytearray(header)
    region = bytes(range(256)) * (data_bytes // 256) + bytes(range(data_bytes % 256))
    if kind == "prefix":
        delta = data.draw(st.one_of(st.integers(-9, 9), st.integers(-(2**63), 2**63)))
        prefix = struct.pack("<Q", max(0, min(2**64 - 1, len(header) + delta)))
    elif kind == "flip" and body:
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    elif kind == "insert":
        at = data.draw(st.integers(0, len(body)))
        body[at:at] = data.draw(JSONISH)
        prefix = struct.pack("<Q", len(body))
    elif kind == "delete" and body:
        at = data.draw(st.integers(0, len(body) - 1))
        del body[at : at + data.draw(st.integers(1, 4))]
        prefix = struct.pack("<Q", len(body))
    elif kind == "cut":
        cut = data.draw(st.integers(0, 8 + len(body) + len(region)))
        whole = (prefix + bytes(body) + region)[:cut]
        return whole, b""
    elif kind == "pad":
        body += data.draw(st.sampled_from([b" ", b"\t", b"\n", b"\r", b"\x00", b"  x"]))
        prefix = struct.pack("<Q", len(body))
    elif kind == "trailing":
        region += data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "short" and region:
        region = region[: data.draw(st.integers(0, len(region) - 1))]
    return prefix + bytes(body), region


# --- the properties -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safetensors-fuzz")


@settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(valid_header(), st.data())
def test_mutated_headers_are_blocked_unless_they_round_trip(
    work: Path, valid: tuple[Pairs, int], data: st.DataObject
) -> None:
    pairs, data_bytes = valid
    for _ in range(data.draw(st.integers(0, 2))):
        pairs = mutate_structure(pairs, data)
    header = serialise(pairs, ascii_only=data.draw(st.booleans()))
    head, region = (
        mutate_bytes(header, data_bytes, data)
        if data.draw(st.booleans())
        else (struct.pack("<Q", len(header)) + header, bytes(data_bytes))
    )
    content = head + region

    # the module's own entry points, on whatever bytes came out
    length = scan_safetensors.header_length(content[:9])
    findings = scan_safetensors.check_header(content[8 : 8 + (length or 0)], len(content))
    assert all(f.severity is Severity.HIGH for f in findings)

    path = work / "model.safetensors"
    path.write_bytes(content)
    started = time.perf_counter()
    report = scan_path(path)
    assert time.perf_counter() - started < TIME_BOUND_S
    verdict = decide(report).verdict
    if not content:
        assert report.findings == ()  # the engine's rule: an empty file runs nothing
        return

    loadable = reference_check(content) and library_loads(content)
    if loadable:
        assert verdict is Verdict.ALLOW, (content[:300], report.findings)
    else:
        assert verdict is Verdict.BLOCK, (content[:300], report.findings)


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=200), st.integers(0, 2**64))
def test_the_header_checks_never_raise_on_arbitrary_bytes(raw: bytes, size: int) -> None:
    scan_safetensors.header_length(raw)
    findings = scan_safetensors.check_header(raw, size)
    assert all(f.rule.startswith("safetensors-") for f in findings)


def test_the_reference_accepts_what_the_library_writes(tmp_path: Path) -> None:
    """The reference is not vacuous: what the safetensors library writes passes it (and the
    engine), and the same file with bytes no tensor accounts for does not."""
    buffers = {
        "a": ctypes.create_string_buffer(bytes(range(16)), 16),
        "b": ctypes.create_string_buffer(b"xyz", 3),
    }
    specs = {
        name: safetensors.TensorSpec(
            dtype=dtype, shape=shape, data_ptr=ctypes.addressof(buffers[name]), data_len=size
        )
        for name, dtype, shape, size in (("a", "float32", [2, 2], 16), ("b", "uint8", [3], 3))
    }
    written = safetensors.serialize(specs, metadata={"format": "pt"})
    assert reference_check(written) and library_loads(written)
    (tmp_path / "model.safetensors").write_bytes(written)
    assert decide(scan_path(tmp_path / "model.safetensors")).verdict is Verdict.ALLOW
    assert not reference_check(written + b"hidden")


def _file(header: str, data_bytes: int) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data_bytes)


# What this fuzz test found in proxy/scan/safetensors.py, kept as fixed examples:
FOUND = {
    # a non-string dtype made check_header raise TypeError (unhashable list) instead of a finding
    "list dtype": (_file('{"w":{"dtype":[],"shape":[1],"data_offsets":[0,1]}}', 1), Verdict.BLOCK),
    "dict dtype": (_file('{"w":{"dtype":{},"shape":[1],"data_offsets":[0,1]}}', 1), Verdict.BLOCK),
    # json reads "\ud800" as a lone surrogate; the library refuses the header, Airlock allowed it
    "lone surrogate in a name": (
        _file('{"w\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
        Verdict.BLOCK,
    ),
    "lone surrogate in metadata": (
        _file(
            '{"__metadata__":{"k":"\\udfff"},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            1,
        ),
        Verdict.BLOCK,
    ),
    # a zero-size tensor whose other dimensions overflow 64 bits: the library refuses it
    "shape beyond 64 bits": (
        _file('{"w":{"dtype":"U8","shape":[0,18446744073709551616],"data_offsets":[0,0]}}', 0),
        Verdict.BLOCK,
    ),
    "shape product overflows before a zero": (
        _file('{"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', 0),
        Verdict.BLOCK,
    ),
    "zero first, then large dimensions": (
        _file('{"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}', 0),
        Verdict.ALLOW,
    ),
    # dtypes of the format that Airlock did not know (a false positive)
    "F8_E4M3FNUZ": (
        _file('{"w":{"dtype":"F8_E4M3FNUZ","shape":[2],"data_offsets":[0,2]}}', 2),
        Verdict.ALLOW,
    ),
    "F8_E5M2FNUZ": (
        _file('{"w":{"dtype":"F8_E5M2FNUZ","shape":[2],"data_offsets":[0,2]}}', 2),
        Verdict.ALLOW,
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_what_the_fuzzer_found(tmp_path: Path, case: str) -> None:
    content, expected = FOUND[case]
    assert (reference_check(content) and library_loads(content)) == (expected is Verdict.ALLOW)
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    assert decide(scan_path(path)).verdict is expected
