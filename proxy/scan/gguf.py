"""Structural check of a GGUF file (llama.cpp's format), without reading tensor data.

Layout (little-endian, versions 2 and 3): b"GGUF", u32 version, u64 tensor count, u64 metadata
count; the metadata as key/value pairs (a string key, a u32 value type, the value); the tensor
table (name, u32 dimension count, u64 dimensions, u32 ggml type, u64 offset); padding to the
alignment (`general.alignment`, 32 by default); then tensor data, each tensor at its offset from
the start of that region. Strings are a u64 byte length and UTF-8 bytes, arrays a u32 element
type, a u64 count and the elements (arrays of arrays are allowed).

Nothing in the tensor data runs code; the metadata does when a consumer renders a chat template
(`tokenizer.chat_template`, `tokenizer.chat_template.<name>`) with Jinja2 outside a sandbox
(CVE-2024-34359, CVE-2026-5760). So the templates are read and handed to
`templates.check_template`, and everything else is only walked: every length and count is
checked against the bytes left in the file and against caps before anything is read or skipped,
large values are skipped with seek, and the first structural error ends the walk as one
`gguf-malformed` HIGH finding (fail closed), after the findings made before it.
"""

from __future__ import annotations

import codecs
import struct
from enum import IntEnum
from typing import BinaryIO, Final

from proxy.scan import templates
from proxy.scan.report import Finding, Severity

MAGIC: Final = b"GGUF"
VERSIONS: Final = (2, 3)
HEADER_BYTES: Final = 24
DEFAULT_ALIGNMENT: Final = 32
ALIGNMENT_KEY: Final = "general.alignment"
CHAT_TEMPLATE_KEY: Final = "tokenizer.chat_template"

MAX_KEY_BYTES: Final = 64 * 1024  # also the cap on tensor names
MAX_STRING_BYTES: Final = 64 * 1024 * 1024
MAX_TEMPLATE_BYTES: Final = 1024 * 1024  # real chat templates are a few KiB
MAX_ARRAY_COUNT: Final = 10**8
MAX_KV_COUNT: Final = 10**6
MAX_TENSOR_COUNT: Final = 10**7
MAX_DIMS: Final = 8
MAX_ARRAY_DEPTH: Final = 8
MAX_ALIGNMENT: Final = 1 << 30

CHUNK_BYTES: Final = 64 * 1024
FIRST_WINDOW_BYTES: Final = 4096
SHOWN_NAME_CHARS: Final = 80

MALFORMED: Final = "gguf-malformed"


class ValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


SCALAR_BYTES: Final = {
    ValueType.UINT8: 1, ValueType.INT8: 1, ValueType.BOOL: 1,
    ValueType.UINT16: 2, ValueType.INT16: 2,
    ValueType.UINT32: 4, ValueType.INT32: 4, ValueType.FLOAT32: 4,
    ValueType.UINT64: 8, ValueType.INT64: 8, ValueType.FLOAT64: 8,
}  # fmt: skip
# The fewest bytes an array element of each type can take.
_MIN_ELEMENT_BYTES: Final = {**SCALAR_BYTES, ValueType.STRING: 8, ValueType.ARRAY: 12}
_MIN_KV_BYTES: Final = 8 + 4 + 1  # key length, value type, smallest value
_MIN_TENSOR_INFO_BYTES: Final = 8 + 4 + 4 + 8  # name length, dimension count, type, offset

# ggml tensor types: (elements per block, bytes per block). Ids missing here were removed from
# ggml (4, 5, 31-33, 36-38) or are newer than this table; either way llama.cpp of this table's
# age refuses them, and so does Airlock.
GGML_TYPES: Final = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}  # fmt: skip

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def is_chat_template_key(key: str) -> bool:
    return key == CHAT_TEMPLATE_KEY or (
        key.startswith(CHAT_TEMPLATE_KEY + ".") and len(key) > len(CHAT_TEMPLATE_KEY) + 1
    )


def check(handle: BinaryIO, size: int, *, location_prefix: str = "") -> list[Finding]:
    """Findings for the GGUF file that occupies `handle` from offset 0 to `size` bytes.

    Never raises on damaged input (I/O errors of the handle itself propagate): the first
    structural problem is a `gguf-malformed` finding after those already made. Chat templates
    are checked as they are met, so their findings survive a later structural error.
    `location_prefix` is put verbatim in front of every finding's location.
    """
    walker = _Walker(handle, size, location_prefix)
    try:
        walker.run()
    except _Malformed as exc:
        walker.findings.append(
            Finding(MALFORMED, Severity.HIGH, exc.message, f"{location_prefix}byte {exc.offset}")
        )
    return walker.findings


def _shown(name: str) -> str:
    """A key or tensor name as messages show it: quoted, and cut when long."""
    return repr(name) if len(name) <= SHOWN_NAME_CHARS else repr(name[:SHOWN_NAME_CHARS]) + "..."


class _Malformed(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class _Reader:
    """Bounded reads through a small window; skips beyond the window are seeks."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self.size = size
        self.pos = 0
        self._window = b""
        self._window_start = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, count: int, what: str) -> None:
        if count > self.remaining():
            raise _Malformed(
                self.pos, f"{what} needs {count} bytes but only {self.remaining()} remain"
            )

    def read(self, count: int, what: str) -> bytes:
        self.need(count, what)
        offset = self.pos - self._window_start
        if offset + count > len(self._window):
            # windows grow with what has been read, so the overshoot past the metadata and
            # tensor table into tensor data stays small (those bytes are never looked at)
            self._fill(max(count, min(CHUNK_BYTES, max(FIRST_WINDOW_BYTES, self.pos))), what)
            offset = 0
        self.pos += count
        return self._window[offset : offset + count]

    def _fill(self, count: int, what: str) -> None:
        wanted = min(count, self.remaining())
        self._handle.seek(self.pos)
        data = self._handle.read(wanted)
        if len(data) < min(count, wanted):
            raise _Malformed(self.pos + len(data), f"file ends inside {what}")
        self._window = data
        self._window_start = self.pos

    def skip(self, count: int, what: str) -> None:
        self.need(count, what)
        self.pos += count

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.read(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = _U64.unpack(self.read(8, what))[0]
        return value

    def text(self, length: int, what: str) -> str:
        """`length` bytes of UTF-8 read in memory (the caller has capped `length`)."""
        start = self.pos
        data = self.read(length, what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Malformed(start + exc.start, f"{what} is not valid UTF-8") from None

    def validate_text(self, length: int, what: str) -> None:
        """Check that the next `length` bytes are UTF-8, holding one window at a time."""
        if length <= CHUNK_BYTES:
            self.text(length, what)
            return
        self.need(length, what)
        decoder = codecs.getincrementaldecoder("utf-8")()
        start, end = self.pos, self.pos + length
        while self.pos < end:
            piece = self.read(min(CHUNK_BYTES, end - self.pos), what)
            try:
                decoder.decode(piece, final=self.pos == end)
            except UnicodeDecodeError:
                raise _Malformed(start, f"{what} is not valid UTF-8") from None


class _Walker:
    def __init__(self, handle: BinaryIO, size: int, prefix: str) -> None:
        self._reader = _Reader(handle, size)
        self._prefix = prefix
        self.findings: list[Finding] = []
        self._alignment = DEFAULT_ALIGNMENT

    def run(self) -> None:
        tensor_count, kv_count = self._header()
        keys: set[str] = set()
        for index in range(kv_count):
            self._key_value(index, keys)
        self._tensors(tensor_count)

    def _header(self) -> tuple[int, int]:
        reader = self._reader
        if reader.size < len(MAGIC) or reader.read(len(MAGIC), "the magic") != MAGIC:
            raise _Malformed(0, "not a GGUF file: the magic is not b'GGUF'")
        version = reader.u32("the version")
        if version not in VERSIONS:
            raise _Malformed(4, f"unsupported GGUF version {version} (only 2 and 3 are read)")
        tensor_count = reader.u64("the tensor count")
        kv_count = reader.u64("the metadata count")
        if tensor_count > MAX_TENSOR_COUNT:
            raise _Malformed(8, f"{tensor_count} tensors declared, over the cap")
        if kv_count > MAX_KV_COUNT:
            raise _Malformed(16, f"{kv_count} metadata entries declared, over the cap")
        reader.need(
            kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_INFO_BYTES,
            f"{kv_count} metadata entries and {tensor_count} tensor infos",
        )
        return tensor_count, kv_count

    def _string_length(self, cap: int, what: str) -> int:
        at = self._reader.pos
        length = self._reader.u64(f"the length of {what}")
        if length > cap:
            raise _Malformed(at, f"{what} declares {length} bytes, over the cap of {cap}")
        self._reader.need(length, what)
        return length

    def _value_type(self, what: str) -> ValueType:
        at = self._reader.pos
        raw = self._reader.u32(f"the type of {what}")
        try:
            return ValueType(raw)
        except ValueError:
            raise _Malformed(at, f"{what} has unknown value type {raw}") from None

    def _key_value(self, index: int, keys: set[str]) -> None:
        reader = self._reader
        at = reader.pos
        key = reader.text(self._string_length(MAX_KEY_BYTES, "a key"), "a key")
        if key in keys:
            raise _Malformed(at, f"duplicate metadata key {_shown(key)}")
        keys.add(key)
        value_type = self._value_type(f"metadata {_shown(key)}")
        if is_chat_template_key(key):
            self._chat_template(key, value_type)
        elif key == ALIGNMENT_KEY:
            self._alignment_value(value_type)
        else:
            self._skip_value(value_type, f"metadata {_shown(key)}", 0)

    def _chat_template(self, key: str, value_type: ValueType) -> None:
        where = f"{self._prefix}metadata {key}"
        what = f"metadata {_shown(key)}"
        if value_type is not ValueType.STRING:
            self.findings.append(
                Finding(
                    templates.MALFORMED,
                    Severity.HIGH,
                    f"chat template holds a {value_type.name.lower()}, not a string",
                    where,
                )
            )
            self._skip_value(value_type, what, 0)
            return
        length = self._string_length(MAX_STRING_BYTES, what)
        if length > MAX_TEMPLATE_BYTES:
            self._reader.validate_text(length, what)
            self.findings.append(
                Finding(
                    templates.MALFORMED,
                    Severity.HIGH,
                    f"chat template of {length} bytes is too large to analyse",
                    where,
                )
            )
            return
        source = self._reader.text(length, what)
        self.findings.extend(templates.check_template(source, location=where))

    def _alignment_value(self, value_type: ValueType) -> None:
        at = self._reader.pos
        if value_type is not ValueType.UINT32:
            raise _Malformed(at, f"{ALIGNMENT_KEY} must be a uint32, not {value_type.name}")
        alignment = self._reader.u32(ALIGNMENT_KEY)
        if alignment == 0 or alignment & (alignment - 1) or alignment > MAX_ALIGNMENT:
            raise _Malformed(at, f"{ALIGNMENT_KEY} {alignment} is not a power of two")
        self._alignment = alignment

    def _skip_value(self, value_type: ValueType, what: str, depth: int) -> None:
        reader = self._reader
        if value_type is ValueType.STRING:
            reader.validate_text(self._string_length(MAX_STRING_BYTES, what), what)
        elif value_type is ValueType.ARRAY:
            self._skip_array(what, depth)
        else:
            reader.skip(SCALAR_BYTES[value_type], what)

    def _skip_array(self, what: str, depth: int) -> None:
        reader = self._reader
        at = reader.pos
        if depth >= MAX_ARRAY_DEPTH:
            raise _Malformed(at, f"{what}: arrays nested more than {MAX_ARRAY_DEPTH} deep")
        element_type = self._value_type(f"the elements of {what}")
        count = reader.u64(f"the element count of {what}")
        if count > MAX_ARRAY_COUNT:
            raise _Malformed(at, f"{what}: array of {count} elements, over the cap")
        reader.need(count * _MIN_ELEMENT_BYTES[element_type], f"{what}: {count} elements")
        if element_type in SCALAR_BYTES:
            reader.skip(count * SCALAR_BYTES[element_type], what)
        elif element_type is ValueType.STRING:
            for _ in range(count):
                reader.validate_text(self._string_length(MAX_STRING_BYTES, what), what)
        else:
            for _ in range(count):
                self._skip_array(what, depth + 1)

    def _tensors(self, tensor_count: int) -> None:
        reader = self._reader
        names: set[str] = set()
        spans: list[tuple[int, int, str, int]] = []
        for _ in range(tensor_count):
            at = reader.pos
            name = reader.text(self._string_length(MAX_KEY_BYTES, "a tensor name"), "a tensor name")
            if name in names:
                raise _Malformed(at, f"duplicate tensor name {_shown(name)}")
            names.add(name)
            spans.append((*self._tensor_info(name), name, at))
        data_start = -(-reader.pos // self._alignment) * self._alignment
        for begin, length, name, at in spans:
            if data_start + begin + length > reader.size:
                raise _Malformed(
                    at,
                    f"tensor {_shown(name)} (bytes {begin}..{begin + length} of the data region at "
                    f"{data_start}) extends beyond the end of the file",
                )
        end = 0
        previous = ""
        for begin, length, name, at in sorted(spans):
            if begin < end:
                raise _Malformed(at, f"tensor {_shown(name)} overlaps tensor {_shown(previous)}")
            if begin + length > end:
                end, previous = begin + length, name
        # the tensor data is not read: nothing in it is ever executed

    def _tensor_info(self, name: str) -> tuple[int, int]:
        """The offset and byte length of one tensor, from its dimensions and type."""
        reader = self._reader
        what = f"tensor {_shown(name)}"
        at = reader.pos
        n_dims = reader.u32(f"the dimension count of {what}")
        if n_dims > MAX_DIMS:
            raise _Malformed(at, f"{what} has {n_dims} dimensions, over the cap of {MAX_DIMS}")
        dims = [reader.u64(f"the dimensions of {what}") for _ in range(n_dims)]
        elements = 1
        for dim in dims:
            elements *= dim
        if any(dim >= 1 << 63 for dim in dims) or elements >= 1 << 63:
            raise _Malformed(at, f"{what} has {elements} elements, more than int64 can count")
        at = reader.pos
        type_id = reader.u32(f"the type of {what}")
        if type_id not in GGML_TYPES:
            raise _Malformed(at, f"{what} has unknown ggml type {type_id}")
        type_name, block, block_bytes = GGML_TYPES[type_id]
        row = dims[0] if dims else 1
        if row % block:
            raise _Malformed(
                at, f"{what}: row of {row} elements is not a whole number of {type_name} blocks"
            )
        at = reader.pos
        offset = reader.u64(f"the offset of {what}")
        if offset % self._alignment:
            raise _Malformed(
                at, f"{what}: offset {offset} is not aligned to {self._alignment} bytes"
            )
        if offset > reader.size:
            raise _Malformed(at, f"{what}: offset {offset} is beyond the end of the file")
        return offset, elements // block * block_bytes
