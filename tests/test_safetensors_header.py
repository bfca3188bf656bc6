"""The safetensors header check that gates streaming (the release point)."""

from __future__ import annotations

import json
import struct

import pytest

from proxy.scan import safetensors
from tests.artifacts import safetensors_bytes


def split(data: bytes) -> tuple[bytes, int]:
    (length,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + length], len(data)


def build(header: object, data_bytes: int, raw: bytes | None = None) -> bytes:
    encoded = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + b"\0" * data_bytes


def test_a_well_formed_file_has_no_findings() -> None:
    data = safetensors_bytes(1000, metadata={"format": "pt"})
    assert safetensors.header_length(data[:9]) is not None
    assert safetensors.check_header(*split(data)) == []


def test_multiple_dtypes_tile_the_data_region() -> None:
    header = {
        "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]},
        "c": {"dtype": "F4", "shape": [4], "data_offsets": [20, 22]},
    }
    assert safetensors.check_header(*split(build(header, 22))) == []


@pytest.mark.parametrize(
    "header, data_bytes, rule",
    [
        ({"w": {"dtype": "EVIL", "shape": [1], "data_offsets": [0, 1]}}, 1, "safetensors-tensor"),
        ({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 1]}}, 1, "safetensors-tensor"),
        ({"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, 1, "safetensors-tensor"),
        ({"w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 0]}}, 1, "safetensors-tensor"),
        (
            {"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}},
            1,
            "safetensors-tensor",
        ),
        ({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, 5, "safetensors-layout"),
        ({"w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, 2, "safetensors-layout"),
        (
            {
                "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]},
            },
            3,
            "safetensors-layout",
        ),
        ({"__metadata__": {"k": 1}}, 0, "safetensors-metadata"),
        ([1, 2], 0, "safetensors-header-json"),
    ],
)
def test_malformed_headers_are_findings(header: object, data_bytes: int, rule: str) -> None:
    findings = safetensors.check_header(*split(build(header, data_bytes)))
    assert [f.rule for f in findings] == [rule]


def test_duplicate_keys_and_bad_json_are_findings() -> None:
    dup = b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {}}'
    assert [f.rule for f in safetensors.check_header(*split(build(None, 1, dup)))] == [
        "safetensors-header-json"
    ]
    assert safetensors.check_header(b"{not json", 100)[0].rule == "safetensors-header-json"


def test_headers_longer_than_the_file_are_findings() -> None:
    assert safetensors.check_header(b"{}" * 10, 12)[0].rule == "safetensors-header-bounds"


@pytest.mark.parametrize(
    "prefix",
    [
        b"\x80\x04\x95" + b"\0" * 6,  # a pickle
        b"PK\x03\x04" + b"\0" * 5,  # a zip
        struct.pack("<Q", 200_000_000) + b"{",  # a header above the 100 MB bound
        struct.pack("<Q", 10) + b"[",  # JSON that is not an object
        b"\x01",  # too short to tell
    ],
)
def test_other_content_is_not_safetensors(prefix: bytes) -> None:
    assert safetensors.header_length(prefix) is None
