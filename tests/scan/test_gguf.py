"""The GGUF checker: hand-built files (a small writer below) with every value type, nested arrays,
named chat templates, alignment padding and tensor data pass with zero findings; chat template
SSTI payloads (CVE-2024-34359, the 2025 vLLM variant, CVE-2026-5760) are blocked; damaged or
hostile structure is one `gguf-malformed` finding and never an exception (threats.md §4.6: fail
closed on broken streams); tensor data is never read.
"""

from __future__ import annotations

import io
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan import gguf, templates
from proxy.scan.gguf import ValueType as T
from proxy.scan.report import Finding, Severity
from tests.scan.test_templates import CHATML, CVE_LLAMA_CPP, CVE_SGLANG, THINKING_TOOLS, VLLM_2025

# -- a minimal GGUF writer -----------------------------------------------------------------------

SCALAR_FORMATS = {
    T.UINT8: "<B", T.INT8: "<b", T.UINT16: "<H", T.INT16: "<h", T.UINT32: "<I", T.INT32: "<i",
    T.FLOAT32: "<f", T.BOOL: "<?", T.UINT64: "<Q", T.INT64: "<q", T.FLOAT64: "<d",
}  # fmt: skip

F32, F16, Q4_0, Q8_0, Q4_K = 0, 1, 2, 8, 12
BLOCKS = {F32: (1, 4), F16: (1, 2), Q4_0: (32, 18), Q8_0: (32, 34), Q4_K: (256, 144)}


def gstr(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def value(kind: T, item: object) -> bytes:
    if kind is T.STRING:
        assert isinstance(item, str | bytes)
        return gstr(item)
    if kind is T.ARRAY:
        assert isinstance(item, tuple)
        element, items = item
        return struct.pack("<IQ", element, len(items)) + b"".join(value(element, i) for i in items)
    return struct.pack(SCALAR_FORMATS[kind], item)


def kv(key: str | bytes, kind: T, item: object) -> bytes:
    return gstr(key) + struct.pack("<I", kind) + value(kind, item)


@dataclass
class Tensor:
    name: str | bytes
    dims: tuple[int, ...]
    ggml_type: int = F32
    offset: int | None = None  # None: laid out after the previous one, aligned

    def nbytes(self) -> int:
        elements = 1
        for dim in self.dims:
            elements *= dim
        block, size = BLOCKS[self.ggml_type]
        return elements // block * size


def build(
    metadata: list[bytes],
    tensors: list[Tensor] | None = None,
    *,
    version: int = 3,
    alignment: int = 32,
    data: bool = True,
) -> bytes:
    """A GGUF file. `general.alignment` must be among `metadata` when it is not 32."""
    tensors = tensors or []
    offsets: list[int] = []
    cursor = 0
    for tensor in tensors:
        offset = cursor if tensor.offset is None else tensor.offset
        offsets.append(offset)
        cursor = -(-(offset + tensor.nbytes()) // alignment) * alignment
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata)) + b"".join(metadata)
    for tensor, offset in zip(tensors, offsets, strict=True):
        out += gstr(tensor.name) + struct.pack("<I", len(tensor.dims))
        out += struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims)
        out += struct.pack("<IQ", tensor.ggml_type, offset)
    if tensors and data:
        out += b"\0" * (-len(out) % alignment)
        end = max(o + t.nbytes() for o, t in zip(offsets, tensors, strict=True))
        out += bytes(range(256)) * (end // 256) + b"\x5a" * (end % 256)
    return out


EVERY_TYPE = [
    kv("general.architecture", T.STRING, "llama"),
    kv("general.name", T.STRING, "tiny test model ünïcödé"),
    kv("test.u8", T.UINT8, 255),
    kv("test.i8", T.INT8, -128),
    kv("test.u16", T.UINT16, 65535),
    kv("test.i16", T.INT16, -32768),
    kv("test.u32", T.UINT32, 2**32 - 1),
    kv("test.i32", T.INT32, -(2**31)),
    kv("test.f32", T.FLOAT32, 1.5),
    kv("test.bool", T.BOOL, True),
    kv("test.u64", T.UINT64, 2**64 - 1),
    kv("test.i64", T.INT64, -(2**63)),
    kv("test.f64", T.FLOAT64, 2.25),
    kv("test.empty", T.STRING, ""),
    kv("test.ints", T.ARRAY, (T.INT32, [1, 2, 3])),
    kv("test.floats", T.ARRAY, (T.FLOAT32, [0.5] * 100)),
    kv("tokenizer.ggml.tokens", T.ARRAY, (T.STRING, ["<s>", "</s>", "▁hello", "世界", ""])),
    kv("tokenizer.ggml.scores", T.ARRAY, (T.FLOAT32, [0.0, 0.0, -1.0, -2.0, -3.0])),
    kv("test.nested", T.ARRAY, (T.ARRAY, [(T.UINT8, [1, 2]), (T.STRING, ["a", "b"])])),
    kv("test.deep", T.ARRAY, (T.ARRAY, [(T.ARRAY, [(T.ARRAY, [(T.BOOL, [False])])])])),
    kv("test.no_items", T.ARRAY, (T.STRING, [])),
    kv("tokenizer.ggml.bos_token_id", T.UINT32, 0),
]

TENSORS = [
    Tensor("token_embd.weight", (64, 5), Q8_0),
    Tensor("blk.0.attn_q.weight", (256, 2), Q4_K),
    Tensor("blk.0.attn_norm.weight", (7,), F32),  # 28 bytes: the next one sits after padding
    Tensor("output.weight", (32, 3), Q4_0),
    Tensor("output_norm.weight", (3, 2, 2), F16),
]


def scan(raw: bytes, prefix: str = "") -> list[Finding]:
    return gguf.check(io.BytesIO(raw), len(raw), location_prefix=prefix)


def malformed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == gguf.MALFORMED]


def assert_malformed(raw: bytes, *words: str) -> Finding:
    findings = scan(raw)
    bad = malformed(findings)
    assert len(bad) == 1, findings
    assert bad[0].severity is Severity.HIGH
    assert bad[0] is findings[-1], "the structural error ends the walk"
    for word in words:
        assert word in bad[0].message, bad[0].message
    return bad[0]


# -- benign files ----------------------------------------------------------------------------------


def test_every_value_type_and_tensor_layout_is_clean() -> None:
    raw = build(EVERY_TYPE, TENSORS)
    assert scan(raw) == []


def test_version_2_is_read() -> None:
    assert scan(build(EVERY_TYPE, TENSORS, version=2)) == []


def test_custom_alignment_is_honoured() -> None:
    metadata = [*EVERY_TYPE, kv("general.alignment", T.UINT32, 64)]
    assert scan(build(metadata, TENSORS, alignment=64)) == []


def test_no_tensors_and_no_metadata() -> None:
    assert scan(build([], [])) == []


def test_chat_templates_benign_default_and_named() -> None:
    metadata = [
        *EVERY_TYPE,
        kv("tokenizer.chat_template", T.STRING, CHATML),
        kv("tokenizer.chat_template.tool_use", T.STRING, THINKING_TOOLS),
        kv("tokenizer.chat_template.rag", T.STRING, "{{ bos_token }}{{ messages[0]['content'] }}"),
        kv("tokenizer.chat_templates", T.ARRAY, (T.STRING, ["tool_use", "rag"])),
    ]
    assert scan(build(metadata, TENSORS)) == []


def test_large_string_values_are_walked_not_kept() -> None:
    big = "x" * (3 * gguf.CHUNK_BYTES + 17)
    metadata = [kv("test.big", T.STRING, big), kv("test.tokens", T.ARRAY, (T.STRING, [big] * 3))]
    assert scan(build(metadata, TENSORS)) == []


def test_big_vocabulary_is_fast() -> None:
    tokens = [f"tok{i}" for i in range(150_000)]
    merges = [f"t o{i}" for i in range(150_000)]
    metadata = [
        kv("tokenizer.ggml.tokens", T.ARRAY, (T.STRING, tokens)),
        kv("tokenizer.ggml.merges", T.ARRAY, (T.STRING, merges)),
        kv("tokenizer.ggml.token_type", T.ARRAY, (T.INT32, [1] * 150_000)),
    ]
    raw = build(metadata, TENSORS)
    started = time.perf_counter()
    assert scan(raw) == []
    assert time.perf_counter() - started < 2.0


# -- chat template SSTI ------------------------------------------------------------------------

GGUF_SSTI = [
    ("{{ self.__init__.__globals__ }}", CVE_LLAMA_CPP),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", CVE_LLAMA_CPP),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", VLLM_2025),
    ("{{ x|attr('__class__') }}", "threats.md §4.8: attr() with a dunder"),
    ("{{ x|attr(name) }}", "threats.md §4.8: attr() with a non-literal argument"),
    ("{{ lipsum.__globals__['os'] }}", CVE_SGLANG),
    ("{{ joiner.__init__ }}", "threats.md §4.8: walk from joiner"),
    ("{{ namespace.__init__ }}", "threats.md §4.8: walk from namespace"),
    ("{% set a = '_' ~ '_class_' ~ '_' %}{{ x[a] }}", "threats.md §4.8: string-built dunder"),
]


@pytest.mark.parametrize(("payload", "source"), GGUF_SSTI)
def test_ssti_in_default_chat_template(payload: str, source: str) -> None:
    metadata = [*EVERY_TYPE, kv("tokenizer.chat_template", T.STRING, payload)]
    findings = scan(build(metadata, TENSORS), prefix="model.gguf: ")
    critical = [f for f in findings if f.severity is Severity.CRITICAL]
    assert critical, source
    assert {f.rule for f in critical} == {templates.SSTI}
    assert all(f.location == "model.gguf: metadata tokenizer.chat_template" for f in findings)
    assert not malformed(findings)


def test_ssti_in_named_tool_use_template() -> None:
    """CVE-2024-34359 carried by a named template: consumers render
    `tokenizer.chat_template.<name>` when tools are passed."""
    metadata = [
        kv("tokenizer.chat_template", T.STRING, CHATML),
        kv("tokenizer.chat_template.tool_use", T.STRING, GGUF_SSTI[1][0]),
        kv("tokenizer.chat_templates", T.ARRAY, (T.STRING, ["tool_use"])),
    ]
    findings = scan(build(metadata, TENSORS))
    assert findings
    assert {(f.rule, f.location) for f in findings} == {
        (templates.SSTI, "metadata tokenizer.chat_template.tool_use")
    }


def test_template_findings_survive_a_later_structural_error() -> None:
    metadata = [
        kv("tokenizer.chat_template", T.STRING, GGUF_SSTI[0][0]),
        gstr("broken") + struct.pack("<I", 99),
    ]
    findings = scan(build(metadata, []))
    assert findings[0].rule == templates.SSTI
    assert findings[-1].rule == gguf.MALFORMED
    assert "unknown value type 99" in findings[-1].message


def test_unparseable_template_is_malformed() -> None:
    findings = scan(build([kv("tokenizer.chat_template", T.STRING, "{% for m in messages %}")]))
    assert [(f.rule, f.severity) for f in findings] == [(templates.MALFORMED, Severity.HIGH)]


def test_template_of_another_type_is_flagged() -> None:
    raw = build([kv("tokenizer.chat_template", T.ARRAY, (T.STRING, ["{{ x.__class__ }}"]))])
    assert [f.rule for f in scan(raw)] == [templates.MALFORMED]


def test_oversized_template_is_flagged_not_parsed() -> None:
    source = "{{ x }}" * (gguf.MAX_TEMPLATE_BYTES // 7 + 1)
    findings = scan(build([kv("tokenizer.chat_template", T.STRING, source)]))
    assert [f.rule for f in findings] == [templates.MALFORMED]
    assert "too large" in findings[0].message


def test_keys_that_only_look_like_templates_are_not_parsed() -> None:
    metadata = [
        kv("tokenizer.chat_templates", T.ARRAY, (T.STRING, ["{{ x.__class__ }}"])),
        kv("tokenizer.chat_template_note", T.STRING, "{{ x.__class__ }}"),
    ]
    assert scan(build(metadata)) == []


# -- malformed structure -----------------------------------------------------------------------


def test_every_truncation_is_malformed() -> None:
    raw = build(EVERY_TYPE, TENSORS)
    for cut in range(len(raw)):
        findings = scan(raw[:cut])
        assert len(findings) == 1 and findings[0].rule == gguf.MALFORMED, (cut, findings)


def test_handle_shorter_than_declared_size() -> None:
    raw = build(EVERY_TYPE, TENSORS)
    findings = gguf.check(io.BytesIO(raw[:100]), len(raw))
    assert [f.rule for f in findings] == [gguf.MALFORMED]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"GGML" + bytes(20), ("magic",)),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), ("version 1",)),
        (b"GGUF" + struct.pack("<IQQ", 0x03000000, 0, 0), ("version",)),  # big-endian
        (b"GGUF" + struct.pack("<IQQ", 3, 2**63, 0), ("tensors declared",)),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 10**6 + 1), ("metadata entries declared",)),
        (b"GGUF" + struct.pack("<IQQ", 3, 10**7, 10**6), ("remain",)),
    ],
)
def test_bad_headers(raw: bytes, words: tuple[str, ...]) -> None:
    assert_malformed(raw, *words)


HUGE_LENGTH = struct.pack("<Q", 2**64 - 1)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (HUGE_LENGTH + b"key", ("over the cap",)),
        (struct.pack("<Q", gguf.MAX_KEY_BYTES + 1) + b"k", ("over the cap",)),
        (struct.pack("<Q", 60_000) + b"short", ("remain",)),
        (gstr("k") + struct.pack("<I", 13) + b"\0" * 8, ("unknown value type 13",)),
        (gstr("k") + struct.pack("<I", 2**32 - 1) + b"\0" * 8, ("unknown value type",)),
        (gstr("k") + struct.pack("<IQ", T.STRING, gguf.MAX_STRING_BYTES + 1), ("over the cap",)),
        (gstr("k") + struct.pack("<I", T.STRING) + HUGE_LENGTH, ("over the cap",)),
        (gstr("k") + struct.pack("<IQ", T.STRING, 60_000) + b"x" * 10, ("remain",)),
        (gstr("k") + struct.pack("<IIQ", T.ARRAY, T.UINT8, 10**8 + 1), ("over the cap",)),
        (gstr("k") + struct.pack("<IIQ", T.ARRAY, T.UINT64, 10**8), ("remain",)),
        (gstr("k") + struct.pack("<IIQ", T.ARRAY, T.STRING, 10**6), ("remain",)),
        (gstr("k") + struct.pack("<IIQ", T.ARRAY, 77, 1) + b"\0" * 16, ("unknown value type 77",)),
        (gstr("k") + struct.pack("<IIQ", T.ARRAY, T.STRING, 1) + HUGE_LENGTH, ("over the cap",)),
        (gstr(b"bad\xff\xfekey") + struct.pack("<IB", T.UINT8, 0), ("UTF-8",)),
        (kv("k", T.STRING, b"caf\xc3"), ("UTF-8",)),
        (kv("k", T.STRING, b"\xed\xa0\x80"), ("UTF-8",)),  # an encoded surrogate
        (kv("k", T.STRING, b"x" * (3 * gguf.CHUNK_BYTES) + b"\xff"), ("UTF-8",)),
        (kv("k", T.ARRAY, (T.STRING, ["ok", b"\xc0\xaf"])), ("UTF-8",)),
        (kv("tokenizer.chat_template", T.STRING, b"{{ x }}\xff"), ("UTF-8",)),
        (kv("general.alignment", T.UINT64, 32), ("uint32",)),
        (kv("general.alignment", T.UINT32, 48), ("power of two",)),
        (kv("general.alignment", T.UINT32, 0), ("power of two",)),
    ],
)
def test_bad_metadata(entry: bytes, words: tuple[str, ...]) -> None:
    # the bad entry follows a good one, and a good tensor table follows it
    assert_malformed(build([kv("general.name", T.STRING, "m"), entry], TENSORS), *words)


def test_arrays_nested_too_deep() -> None:
    item: tuple[T, list[object]] = (T.UINT8, [1])
    for _ in range(gguf.MAX_ARRAY_DEPTH + 1):
        item = (T.ARRAY, [item])
    assert_malformed(build([kv("k", T.ARRAY, item)]), "nested")


def test_duplicate_key() -> None:
    metadata = [kv("tokenizer.chat_template", T.STRING, CHATML)] * 2
    assert_malformed(build(metadata, TENSORS), "duplicate metadata key")


@pytest.mark.parametrize(
    ("tensors", "words"),
    [
        ([Tensor("a", (8,)), Tensor("b", (8,), offset=4)], ("not aligned",)),
        ([Tensor("a", (8,)), Tensor("b", (8,), offset=2**40)], ("beyond the end",)),
        ([Tensor("a", (8,)), Tensor("b", (8,), offset=0)], ("overlaps",)),
        ([Tensor("a", (64,)), Tensor("b", (8,), offset=128)], ("overlaps",)),
        ([Tensor("a", (8,)), Tensor("a", (8,))], ("duplicate tensor name",)),
        ([Tensor(b"\xff", (8,))], ("UTF-8",)),
        ([Tensor("a", (1,) * 9)], ("9 dimensions",)),
        ([Tensor("a", (2**63, 2))], ("int64",)),
        ([Tensor("a", (2**40, 2**40))], ("int64",)),
        ([Tensor("a", (33, 2), Q4_0)], ("blocks",)),
    ],
)
def test_bad_tensor_tables(tensors: list[Tensor], words: tuple[str, ...]) -> None:
    raw = build(EVERY_TYPE, tensors, data=False)
    raw += b"\0" * (-len(raw) % 32) + b"\0" * 1024  # enough data for the well-formed ones
    assert_malformed(raw, *words)


def test_unknown_ggml_type() -> None:
    raw = bytearray(build([], [Tensor("a", (8,))]))
    type_at = raw.index(b"a") + 1 + 4 + 8
    raw[type_at : type_at + 4] = struct.pack("<I", 4)  # Q4_2: removed from ggml long ago
    assert_malformed(bytes(raw), "unknown ggml type 4")


def test_tensor_extending_past_the_end() -> None:
    raw = build([], TENSORS)
    assert_malformed(raw[:-1], "beyond the end")


def test_location_prefix_is_verbatim() -> None:
    finding = malformed(scan(b"GGUF" + bytes(3), prefix="repo/model.gguf: "))[0]
    assert finding.location == "repo/model.gguf: byte 4"


# -- hostile input never escapes, and tensor data is never read ----------------------------------

SEED = build(
    [
        *EVERY_TYPE[:4],
        kv("test.nested", T.ARRAY, (T.ARRAY, [(T.UINT8, [1, 2]), (T.STRING, ["a", "b"])])),
        kv("tokenizer.chat_template", T.STRING, CHATML),
        kv("general.alignment", T.UINT32, 32),
    ],
    TENSORS[:3],
)


@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")  # jinja's lexer
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "set", "insert", "delete", "cut"]),
            st.integers(min_value=0, max_value=len(SEED) - 1),
            st.binary(min_size=1, max_size=9),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_files_never_raise(edits: list[tuple[str, int, bytes]]) -> None:
    raw = bytearray(SEED)
    for operation, at, blob in edits:
        if not raw:
            break
        at %= len(raw)
        if operation == "flip":
            raw[at] ^= blob[0]
        elif operation == "set":
            raw[at : at + len(blob)] = blob
        elif operation == "insert":
            raw[at:at] = blob
        elif operation == "delete":
            del raw[at : at + len(blob)]
        else:
            del raw[at:]
    findings = scan(bytes(raw))  # any exception here is a defect
    assert all(isinstance(f, Finding) for f in findings)


class CountingReader:
    """A read-only file that records how many bytes were read and how far."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.furthest = 0
        self.bytes_read = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.bytes_read += len(data)
        self.furthest = max(self.furthest, self._handle.tell())
        return data


def test_sparse_two_gib_file_reads_only_the_header(tmp_path: Path) -> None:
    elements = (2**31 - 4096) // 4
    metadata = [*EVERY_TYPE, kv("tokenizer.chat_template", T.STRING, CHATML)]
    header = build(metadata, [Tensor("huge.weight", (elements,), F32)], data=False)
    header += b"\0" * (-len(header) % 32)
    path = tmp_path / "sparse.gguf"
    with path.open("wb") as out:
        out.write(header)
        out.truncate(len(header) + elements * 4)
    size = path.stat().st_size
    assert size > 2**31 - 4096
    with path.open("rb", buffering=0) as raw:
        counting = CountingReader(raw)
        started = time.perf_counter()
        findings = gguf.check(cast(BinaryIO, counting), size)
        elapsed = time.perf_counter() - started
    assert findings == []
    assert elapsed < 1.0
    assert counting.furthest <= len(header) + gguf.CHUNK_BYTES
    assert counting.bytes_read <= len(header) + gguf.CHUNK_BYTES
