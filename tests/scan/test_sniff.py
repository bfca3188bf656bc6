"""Content sniffing: every format by its bytes, polyglots as several readings, names that lie.

Each case builds a tiny real sample (stdlib writers where they exist, by hand otherwise)."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.scan.report import Severity
from proxy.scan.sniff import (
    HEAD_BYTES,
    TAIL_BYTES,
    Kind,
    extension_kinds,
    name_mismatch,
    sniff,
)
from tests.artifacts import safetensors_bytes

K = Kind


def sniff_bytes(data: bytes) -> tuple[Kind, ...]:
    """Sniff as the engine does: the first HEAD_BYTES and the last TAIL_BYTES of a file."""
    return sniff(data[:HEAD_BYTES], size=len(data), tail=data[-TAIL_BYTES:])


# --- samples ----------------------------------------------------------------------------------


def npy(shape: tuple[int, ...] = (3,), major: int = 1) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    width = 2 if major == 1 else 4
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([major, 0]) + len(header).to_bytes(width, "little") + header


def gguf() -> bytes:
    key = b"general.architecture"
    value = b"llama"
    return (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<IQ", 8, len(value))
        + value
    )


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def proto_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def onnx_model() -> bytes:
    node = proto_field(1, b"x") + proto_field(2, b"y") + proto_field(4, b"Relu")
    graph = proto_field(1, node) + proto_field(2, b"main_graph")
    return (
        proto_field(1, 8)  # ir_version
        + proto_field(2, b"pytorch")
        + proto_field(3, b"2.1.0")
        + proto_field(7, graph)
        + proto_field(8, proto_field(2, 17))  # opset_import { version: 17 }
    )


def saved_model() -> bytes:
    meta_info = proto_field(1, b"") + proto_field(4, b"serve")
    meta_graph = proto_field(1, meta_info) + proto_field(2, b"graph-def")
    return proto_field(1, 1) + proto_field(2, meta_graph)


def tflite() -> bytes:
    return b"\x1c\x00\x00\x00TFL3" + bytes(40)


def tar(format: int = tarfile.USTAR_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as archive:
        info = tarfile.TarInfo("archive/data.pkl")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue()


def v7_tar() -> bytes:
    """A pre-POSIX header: no magic, only the checksum says it is a tar."""
    block = bytearray(tar()[:512])
    block[257:265] = bytes(8)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block) + bytes(1024)


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


OBJECT = {"weights": [1.0, 2.5, -3.0], "name": "layer", "shape": (2, 3), "ok": True, "n": None}
PYTHON = (
    b'"""A module."""\n\nimport os\n\n\nclass Model:\n    def forward(self, x):\n        return x\n'
)
PROSE = b"This model card describes a small model. It doesn't run code; it's just text.\n"
CSV = b"epoch,loss,accuracy\n1,0.53,0.81\n2,0.41,0.86\n"
MARKDOWN = b"# Model\n\n- **license**: apache-2.0\n- see [the paper](https://example.org)\n"
YAML = b"model:\n  name: tiny\n  layers: [1, 2, 3]\n"
ZIPPED = zip_bytes({"archive/data.pkl": pickle.dumps(OBJECT, 2), "archive/version": b"3\n"})

SAMPLES: dict[str, tuple[bytes, tuple[Kind, ...]]] = {
    "safetensors": (safetensors_bytes(100), (K.SAFETENSORS,)),
    "numpy_v1": (npy() + bytes(12), (K.NUMPY,)),
    "numpy_v2": (npy(major=2) + bytes(12), (K.NUMPY,)),
    "gguf": (gguf(), (K.GGUF,)),
    "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(200), (K.HDF5,)),
    "hdf5_after_a_user_block": (bytes(512) + b"\x89HDF\r\n\x1a\n" + bytes(200), (K.HDF5,)),
    "onnx": (onnx_model(), (K.ONNX,)),
    "tflite": (tflite(), (K.TFLITE,)),
    "savedmodel": (saved_model(), (K.PROTOBUF_SAVEDMODEL,)),
    "seven_zip": (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), (K.SEVEN_ZIP,)),
    "xz": (lzma.compress(b"x" * 100), (K.XZ,)),
    "zstd": (b"\x28\xb5\x2f\xfd\x24\x05\x29\x00\x00hello\x00\x00\x00\x00", (K.ZSTD,)),
    "bzip2": (bz2.compress(b"x" * 100), (K.BZIP2,)),
    "bzip2_empty": (bz2.compress(b""), (K.BZIP2,)),
    "gzip": (gzip.compress(b"x" * 100), (K.GZIP,)),
    "zlib": (zlib.compress(pickle.dumps(OBJECT, 4)), (K.ZLIB,)),
    "zip": (ZIPPED, (K.ZIP,)),
    "zip_stored": (zip_bytes({"a.npy": npy()}, zipfile.ZIP_STORED), (K.ZIP,)),
    "empty_zip": (zip_bytes({}), (K.ZIP,)),
    "tar_ustar": (tar(), (K.TAR,)),
    "tar_gnu": (tar(tarfile.GNU_FORMAT), (K.TAR,)),
    "tar_pax": (tar(tarfile.PAX_FORMAT), (K.TAR,)),
    "tar_v7": (v7_tar(), (K.TAR,)),
    "json_object": (json.dumps(OBJECT, indent=2).encode(), (K.JSON, K.TEXT)),
    "json_array": (b'[1, 2.5e-3, "x", null, true, {}]', (K.JSON, K.TEXT)),
    "json_with_bom": (codecs.BOM_UTF8 + b'{"a": 1}', (K.JSON, K.TEXT)),
    "json_with_nan": (b'{"loss": NaN, "best": -Infinity}', (K.JSON, K.TEXT)),
    "json_lines": (b'{"a": 1}\n{"a": 2}\n[3]\n', (K.JSON, K.TEXT)),
    "python": (PYTHON, (K.PYTHON_SOURCE, K.TEXT)),
    "python_script": (b"#!/usr/bin/env python3\nprint('hi')\n", (K.PYTHON_SOURCE, K.TEXT)),
    "prose": (PROSE, (K.TEXT,)),
    "csv": (CSV, (K.TEXT,)),
    "markdown": (MARKDOWN, (K.TEXT,)),
    "yaml": (YAML, (K.TEXT,)),
    "empty": (b"", (K.UNKNOWN,)),
    "binary_noise": (bytes(range(256)) * 4, (K.UNKNOWN,)),
    "pickle_protocol_0": (pickle.dumps(OBJECT, 0), (K.PICKLE, K.TEXT)),
    "pickle_protocol_1": (pickle.dumps(OBJECT, 1), (K.PICKLE,)),
    "pickle_protocol_2": (pickle.dumps(OBJECT, 2), (K.PICKLE,)),
    "pickle_protocol_3": (pickle.dumps(OBJECT, 3), (K.PICKLE,)),
    "pickle_protocol_4": (pickle.dumps(OBJECT, 4), (K.PICKLE,)),
    "pickle_protocol_5": (pickle.dumps(OBJECT, 5), (K.PICKLE,)),
}


@pytest.mark.parametrize("data, kinds", SAMPLES.values(), ids=SAMPLES.keys())
def test_sniff_reads_each_format_by_content(data: bytes, kinds: tuple[Kind, ...]) -> None:
    assert sniff_bytes(data) == kinds


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize(
    "value",
    [None, True, 0, 2**70, 1.5, "s", b"", [], {}, (), {1, 2}, list(range(100_000)), b"y" * 99_999],
    ids=repr,
)
def test_sniff_finds_every_pickle_protocol(value: object, protocol: int) -> None:
    data = pickle.dumps(value, protocol)
    assert sniff_bytes(data)[0] is K.PICKLE


# --- things that must not be pickles ------------------------------------------------------------

NOT_PICKLES = {
    "csv": CSV,
    "csv_of_numbers": b"1,2,3\n4,5,6\n",
    "markdown": MARKDOWN,
    "prose": PROSE,
    "yaml": YAML,
    "json": json.dumps(OBJECT).encode(),
    "python": PYTHON,
    "html": b"<!DOCTYPE html>\n<html><body>hi</body></html>\n",
    "nota_bene": b"N.B. the weights are in fp16.\n",
    # "G" + 8 bytes + "2" + "." reads BINFLOAT, DUP, STOP: a real pickle, but not a whole file
    "release_notes": b"Git v2.31.7 Release Notes\n==========================\n\nFixes.\n",
    # every line starts with P: one PERSID opcode per line, nothing built from them
    "apt_pin": b"Package: nodejs\nPin: origin deb.nodesource.com\nPin-Priority: 600\n",
    "record_file": b"PyYAML-6.0.dist-info/INSTALLER,sha256=x,4\nPyYAML-6.0.dist-info/METADATA,,\n",
    "parenthesis": b"(see below)\n",
    "license": b"Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n",
    "integer_line": b"I think, therefore I am.\n",
    "version_file": b"3\n",
}


@pytest.mark.parametrize("data", NOT_PICKLES.values(), ids=NOT_PICKLES.keys())
def test_sniff_keeps_text_out_of_pickle(data: bytes) -> None:
    assert K.PICKLE not in sniff_bytes(data)


# --- pickles that hide --------------------------------------------------------------------------

# CVE-2025-10155: protocol 0/1 pickles have no magic; nullifAI: the payload runs, then the
# stream breaks. Both must still read as pickles.
HIDDEN_PICKLES = {
    "protocol_0_payload": b"cos\nsystem\n(S'id'\ntR.",
    "protocol_0_broken_after_the_call": b"cos\nsystem\n(S'id'\ntR\xff\xfe garbage",
    "protocol_0_shortest_call": b"cbuiltins\nbreakpoint\n)R",
    "protocol_1_payload": b"cposix\nsystem\nU\x02id\x85R.",
    "protocol_0_inst": b"(S'id'\nios\nsystem\n.",
    "protocol_2_broken_stream": b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R\xff\xff",
    "protocol_4_stack_global": pickle.dumps(OBJECT, 4)[:-1] + b"\x8c\x02os\x8c\x06system\x93",
    "trailing_text_after_stop": b"cbuiltins\nexec\n(Vprint(1)\ntR.\nthis is just text\n",
    "one_huge_string_first": b"X" + struct.pack("<I", 100_000) + b"a" * 100_000 + b".",
}


@pytest.mark.parametrize("data", HIDDEN_PICKLES.values(), ids=HIDDEN_PICKLES.keys())
def test_sniff_finds_pickles_without_magic_and_broken_ones(data: bytes) -> None:
    assert K.PICKLE in sniff_bytes(data)


# --- polyglots and windows ----------------------------------------------------------------------


def test_sniff_reads_a_pickle_before_a_zip_as_both() -> None:
    # threats.md: torch.load unpickles the front, zipfile lists the back
    assert sniff_bytes(pickle.dumps(OBJECT, 2) + ZIPPED) == (K.PICKLE, K.ZIP)
    assert sniff_bytes(pickle.dumps(OBJECT, 0) + ZIPPED) == (K.PICKLE, K.ZIP)


def test_sniff_finds_the_zip_end_record_through_the_tail_window() -> None:
    member = bytes(range(256)) * 1000  # 256 KB: the local header is far from the end
    data = pickle.dumps(OBJECT, 2) + zip_bytes({"archive/data/0": member}, zipfile.ZIP_STORED)
    assert len(data) > HEAD_BYTES + TAIL_BYTES
    assert sniff(data[:HEAD_BYTES], size=len(data), tail=data[-TAIL_BYTES:]) == (K.PICKLE, K.ZIP)
    # without the tail only the front reading is left
    assert sniff(data[:HEAD_BYTES], size=len(data)) == (K.PICKLE,)


def test_sniff_reads_a_zip_behind_safetensors() -> None:
    assert sniff_bytes(safetensors_bytes(64) + ZIPPED) == (K.SAFETENSORS, K.ZIP)


def test_sniff_ignores_an_end_signature_that_does_not_fit_the_file() -> None:
    def end_record(entries: int, size: int, offset: int) -> bytes:
        return b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, entries, entries, size, offset, 0)

    noise = bytes(range(1, 200))
    assert K.ZIP not in sniff_bytes(noise + end_record(1, 46, 500))  # past the file
    assert K.ZIP not in sniff_bytes(noise + end_record(1, 46, 10))  # no directory there
    entry = b"PK\x01\x02" + bytes(42)
    assert K.ZIP not in sniff_bytes(noise[:153] + entry + end_record(5, 46, 153))  # 5 in 46 B
    assert sniff_bytes(noise[:153] + entry + end_record(1, 46, 153)) == (K.ZIP,)
    assert sniff_bytes(noise + end_record(0, 0, 0)) == (K.ZIP,)  # an empty archive's record


@pytest.mark.parametrize(
    "data, kind",
    [
        (pickle.dumps(list(range(100_000)), 4), K.PICKLE),
        (pickle.dumps(list(range(100_000)), 1), K.PICKLE),
        (pickle.dumps(list(range(100_000)), 0), K.PICKLE),
        (json.dumps({str(i): "x" * 30 for i in range(10_000)}).encode(), K.JSON),
        (json.dumps([[i, "y"] for i in range(20_000)]).encode(), K.JSON),
        (
            PYTHON + b"\n".join(b"def f%d(x):\n    return x\n" % i for i in range(5000)),
            K.PYTHON_SOURCE,
        ),
    ],
    ids=["pickle_4", "pickle_1", "pickle_0", "json_object", "json_array", "python"],
)
def test_sniff_judges_a_large_file_by_its_head(data: bytes, kind: Kind) -> None:
    assert len(data) > HEAD_BYTES
    for cut in (HEAD_BYTES, HEAD_BYTES - 1, 4097):
        assert kind in sniff(data[:cut], size=len(data))


def test_sniff_reads_protobuf_models_from_a_head() -> None:
    long_doc = proto_field(1, 9) + proto_field(6, b"d" * 100_000) + proto_field(7, b"\x0a\x00")
    assert sniff(long_doc[:HEAD_BYTES], size=len(long_doc)) == (K.ONNX,)
    meta_graph = proto_field(1, b"") + proto_field(2, b"g" * 100_000)  # a large graph_def
    data = proto_field(1, 1) + proto_field(2, meta_graph)
    assert sniff(data[:HEAD_BYTES], size=len(data)) == (K.PROTOBUF_SAVEDMODEL,)
    no_graph = proto_field(1, 8) + proto_field(2, b"pytorch")
    assert sniff_bytes(no_graph) == (K.UNKNOWN,)


def test_sniff_rejects_json_that_breaks_within_the_head() -> None:
    assert K.JSON not in sniff_bytes(b'{"a": 1,, "b": 2}')
    assert K.JSON not in sniff(b'{"a": [1, 2}' + b" " * 100, size=10**6)
    assert K.JSON not in sniff_bytes(b"{not json}")


def test_sniff_rejects_python_looking_prose() -> None:
    assert K.PYTHON_SOURCE not in sniff_bytes(b"import this: it's a poem, not code.\n")
    assert K.PYTHON_SOURCE not in sniff_bytes(b"#!/bin/sh\nimport x\n")


# --- names --------------------------------------------------------------------------------------

PICKLED = pickle.dumps(OBJECT, 2)

MISLEADING_NAMES: dict[str, tuple[str, bytes, Severity | None]] = {
    "safetensors_that_is_a_pickle": ("model.safetensors", PICKLED, Severity.HIGH),
    "safetensors_that_is_a_zip": ("model.safetensors", ZIPPED, Severity.HIGH),
    "json_that_is_a_pickle": ("config.json", pickle.dumps(OBJECT, 0), Severity.HIGH),
    "txt_that_is_a_pickle": ("notes.txt", pickle.dumps(OBJECT, 0), Severity.HIGH),
    "npy_that_is_a_pickle": ("x.npy", PICKLED, Severity.HIGH),
    "onnx_that_is_text": ("model.onnx", PROSE, Severity.MEDIUM),
    "bin_that_is_gzip": ("pytorch_model.bin", gzip.compress(PICKLED), Severity.MEDIUM),
    "gguf_that_is_a_zip": ("model.gguf", ZIPPED, Severity.MEDIUM),
    "bin_legacy_pickle": ("pytorch_model.bin", PICKLED, None),
    "bin_protocol_0_pickle": ("pytorch_model.bin", pickle.dumps(OBJECT, 0), None),
    "bin_torch_zip": ("pytorch_model.bin", ZIPPED, None),
    "bin_polyglot": ("pytorch_model.bin", PICKLED + ZIPPED, None),
    "keras_zip": ("model.keras", ZIPPED, None),
    "npz_zip": ("arrays.npz", ZIPPED, None),
    "joblib_zlib": ("model.joblib", zlib.compress(PICKLED), None),
    "python_without_defs": ("consts.py", b"X = 1\n", None),
    "upper_case_path": ("Sub/Dir/MODEL.SAFETENSORS", safetensors_bytes(8), None),
    "unknown_extension": ("weights.xyz", PICKLED, None),
    "no_extension": ("README", PROSE, None),
}


@pytest.mark.parametrize(
    "name, data, severity", MISLEADING_NAMES.values(), ids=MISLEADING_NAMES.keys()
)
def test_sniff_ignores_misleading_extension(
    name: str, data: bytes, severity: Severity | None
) -> None:
    finding = name_mismatch(name, sniff_bytes(data))
    if severity is None:
        assert finding is None
    else:
        assert finding is not None
        assert (finding.rule, finding.severity, finding.location) == (
            "format-name-mismatch",
            severity,
            name,
        )


@pytest.mark.parametrize(
    "name, kinds",
    [
        ("pytorch_model.bin", {K.PICKLE, K.ZIP, K.TAR, K.GGML}),  # and legacy llama.cpp weights
        ("model.ckpt", {K.PICKLE, K.ZIP, K.TAR}),
        ("data.pkl", {K.PICKLE, K.ZIP}),
        ("model.safetensors", {K.SAFETENSORS}),
        ("x.npz", {K.ZIP}),
        ("x.tar.gz", {K.GZIP}),
        ("x.tar", {K.TAR}),
        ("model.keras", {K.ZIP}),
        ("model.h5", {K.HDF5}),
        ("variables/saved_model.pb", {K.PROTOBUF_SAVEDMODEL}),
        ("frozen_graph.pb", set()),
        ("tokenizer.model", set()),
        ("Makefile", set()),
    ],
)
def test_extension_kinds_says_what_a_name_claims(name: str, kinds: set[Kind]) -> None:
    assert extension_kinds(name) == kinds


# --- robustness -----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 10**10))
def test_sniff_never_raises(data: bytes, extra: int) -> None:
    kinds = sniff(data, size=len(data) + extra, tail=data[-100:])
    assert kinds and all(isinstance(kind, Kind) for kind in kinds)
    assert (K.UNKNOWN in kinds) == (kinds == (K.UNKNOWN,))


SEEDS = [data for data, _ in SAMPLES.values() if data] + list(HIDDEN_PICKLES.values())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_sniff_never_raises_on_damaged_samples(seed: bytes, data: st.DataObject) -> None:
    damaged = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(damaged)))
    sniff(bytes(damaged[:cut]), size=len(damaged), tail=bytes(damaged[-50:]))
    sniff(bytes(damaged), size=len(damaged))
