"""Structural check of a safetensors header, without reading tensor data.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then raw tensor
bytes. Nothing in it runs code when loaded, so once the header is known to be well formed the
rest can be judged by size and hash alone: that is the release point for streaming.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from proxy.scan.report import Finding, Severity

# The safetensors library refuses headers above 100 MB; so does Airlock.
MAX_HEADER_BYTES = 100_000_000
PREFIX_BYTES = 8
_U64 = 1 << 64

DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


def header_length(prefix: bytes) -> int | None:
    """The declared header length, or None when these bytes cannot start a safetensors file."""
    if len(prefix) < PREFIX_BYTES + 1:
        return None
    (length,) = struct.unpack("<Q", prefix[:PREFIX_BYTES])
    if not 2 <= length <= MAX_HEADER_BYTES or prefix[PREFIX_BYTES : PREFIX_BYTES + 1] != b"{":
        return None
    return int(length)


def check_header(header: bytes, file_size_bytes: int) -> list[Finding]:
    """Findings for a header (the N JSON bytes after the prefix) of a file of the given size.
    An empty list means the header is well formed and the data region is exactly accounted for."""
    data_bytes = file_size_bytes - PREFIX_BYTES - len(header)
    if data_bytes < 0:
        return [_bad("safetensors-header-bounds", "header is longer than the file", 0)]
    try:
        parsed = json.loads(header.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        return [_bad("safetensors-header-json", f"header is not valid JSON: {exc}", PREFIX_BYTES)]
    if not isinstance(parsed, dict):
        return [_bad("safetensors-header-json", "header is not a JSON object", PREFIX_BYTES)]
    findings: list[Finding] = []
    spans: list[tuple[int, int, str]] = []
    for name, entry in parsed.items():
        if name == "__metadata__":
            findings.extend(_check_metadata(entry))
            continue
        problem = _check_tensor(name, entry)
        if problem:
            findings.append(_bad("safetensors-tensor", problem, None, name))
            continue
        begin, end = entry["data_offsets"]
        spans.append((begin, end, name))
    if not findings:  # the layout only means something when every tensor entry is valid
        findings.extend(_check_layout(spans, data_bytes))
    return findings


def _check_metadata(entry: Any) -> list[Finding]:
    if not isinstance(entry, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
    ):
        return [_bad("safetensors-metadata", "__metadata__ must map strings to strings", None)]
    return []


def _check_tensor(name: str, entry: Any) -> str | None:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return f"tensor {name!r} must have exactly dtype, shape and data_offsets"
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:  # a list or dict is unhashable
        return f"tensor {name!r} has unknown dtype {dtype!r}"
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        return f"tensor {name!r} has an invalid shape"
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        return f"tensor {name!r} has invalid data_offsets"
    elements = 1
    for dim in shape:
        elements *= dim
        if elements >= _U64:  # the library refuses it (and a huge product would be slow)
            return f"tensor {name!r}: its shape overflows 64 bits"
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != offsets[1] - offsets[0]:
        return f"tensor {name!r}: data_offsets do not match its dtype and shape"
    return None


def _check_layout(spans: list[tuple[int, int, str]], data_bytes: int) -> list[Finding]:
    """Tensors must tile the data region exactly: no gaps (hidden bytes), no overlaps."""
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            kind = "overlaps another tensor" if begin < position else "leaves a gap before it"
            return [_bad("safetensors-layout", f"tensor {name!r} {kind}", None, name)]
        position = end
    if position != data_bytes:
        return [
            _bad(
                "safetensors-layout",
                f"tensors cover {position} bytes but the file holds {data_bytes} data bytes",
                None,
            )
        ]
    return []


def _is_count(value: Any) -> bool:
    """A shape dimension or an offset: the safetensors library reads them as 64-bit unsigned."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _U64


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        if _lone_surrogate(key) or (isinstance(value, str) and _lone_surrogate(value)):
            # json reads a "\ud800" escape as a lone surrogate; the safetensors library refuses it
            raise ValueError(f"a string in {key!r} is not valid Unicode (lone surrogate)")
        result[key] = value
    return result


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad(rule: str, message: str, offset: int | None, member: str | None = None) -> Finding:
    location = f"byte {offset}" if offset is not None else (f"tensor {member}" if member else None)
    return Finding(rule, Severity.HIGH, message, location)
