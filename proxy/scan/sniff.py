"""What a file is, by its content: magic bytes and structure, never the name.

Scanners that pick a parser by extension skip what they do not expect: a pickle saved as `.txt`
or without an extension (CVE-2025-1889), a protocol 0/1 pickle in a `.bin` that fails a
magic-number check (CVE-2025-10155), a pickle with a zip behind it that torch.load unpickles
while zipfile lists the zip (threats.md section 2). `sniff` therefore returns every plausible
reading of a file, and the engine scans all of them; `name_mismatch` turns a name that claims
another format into a finding.
"""

from __future__ import annotations

import codecs
import io
import json
import lzma
import pickletools
import re
import struct
import tokenize
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from proxy.scan import safetensors, zipread
from proxy.scan.report import Finding, Format, Severity

# A reading of a file is a report format: one vocabulary for sniffing and for reports.
Kind = Format

HEAD_BYTES = 64 << 10
TAIL_BYTES = (64 << 10) + 22


def sniff(head: bytes, *, size: int, tail: bytes = b"") -> tuple[Kind, ...]:
    """Every plausible reading of a file of `size` bytes, most specific first.

    `head` is the file's first bytes (HEAD_BYTES is enough), `tail` its last (TAIL_BYTES, for
    the zip end record; when the head holds the whole file the tail may be left empty). A file
    can be several things at once: a pickle that is also a zip reads (PICKLE, ZIP), a protocol 0
    pickle (PICKLE, TEXT). An empty or unrecognised file reads (UNKNOWN,).
    """
    head = head[: max(size, 0)]
    if not head:
        return (Kind.UNKNOWN,)
    truncated = len(head) < size
    if not tail and not truncated:
        tail = head
    kinds = [kind for kind, check in _AT_START if check(head, size)]
    if _is_pickle(head, size):
        kinds.append(Kind.PICKLE)
    text = _decode_text(head, truncated)
    if text is not None:
        if _is_json(text, truncated):
            kinds.append(Kind.JSON)
        if _is_python(text, truncated):
            kinds.append(Kind.PYTHON_SOURCE)
    if Kind.ZIP not in kinds and _zip_end_in(head, tail, size):
        kinds.append(Kind.ZIP)
    if text is not None:
        kinds.append(Kind.TEXT)
    return tuple(kinds) or (Kind.UNKNOWN,)


def extension_kinds(name: str) -> frozenset[Kind]:
    """The formats a file name claims; empty when the name claims nothing we know."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base in _NAME_CLAIMS:
        return _NAME_CLAIMS[base]
    for suffix, kinds in _SUFFIX_CLAIMS:
        if base.endswith(suffix):
            return kinds
    return frozenset()


def name_mismatch(
    name: str, kinds: tuple[Kind, ...], *, head: bytes = b"", size: int = 0
) -> Finding | None:
    """A `format-name-mismatch` finding when the name claims a format the content is not.

    HIGH when a name that claims a format which cannot run code holds a pickle (a `.json` or
    `.safetensors` that unpickles), or when a `.safetensors` is not safetensors at all; MEDIUM
    otherwise. No finding for names that claim nothing, or when any reading matches the claim.

    LOW instead of MEDIUM for a pickle-family name (`.bin`, `.pt`, `.pkl`...) on content that is
    no pickle, no container a loader would open, only raw bytes, text or GGML, when `head` (the
    file's first bytes, `size` in all) proves that unpickling it raises before any opcode that
    imports or calls (`unpickling_fails_at`): torch.load, pickle.load and joblib.load would fail
    without running anything (CTranslate2's model.bin, fastText and word2vec `.bin` files).
    """
    claimed = extension_kinds(name)
    if not claimed:
        return None
    readings = frozenset(kinds) - {Kind.UNKNOWN}
    shown = ", ".join(kind.value for kind in kinds)
    claims = "/".join(sorted(kind.value for kind in claimed))
    if readings & _RUNS_CODE and not claimed & _RUNS_CODE:
        return Finding(
            "format-name-mismatch",
            Severity.HIGH,
            f"the name claims {claims} but the content reads as a pickle, which runs code "
            f"when loaded (readings: {shown})",
            name,
        )
    if claimed & readings:
        return None
    severity = Severity.HIGH if Kind.SAFETENSORS in claimed else Severity.MEDIUM
    if Kind.PICKLE in claimed and readings <= _INERT_READINGS and head:
        fails_at = unpickling_fails_at(head, max(size, len(head)))
        if fails_at is not None:
            return Finding(
                "format-name-mismatch",
                Severity.LOW,
                f"the name claims {claims} but the content reads as {shown}; unpickling it "
                f"raises at byte {fails_at} before anything is imported or called",
                name,
            )
    return Finding(
        "format-name-mismatch",
        severity,
        f"the name claims {claims} but the content reads as {shown}",
        name,
    )


# --- names ------------------------------------------------------------------------------------

_RUNS_CODE = frozenset({Kind.PICKLE})
# torch.save writes a zip (>= 1.6), a stack of raw pickles before that, a tar in the oldest.
_TORCH = frozenset({Kind.PICKLE, Kind.ZIP, Kind.TAR})
# llama.cpp and whisper.cpp named their pre-GGUF weights `ggml-model-q4_0.bin`.
_BIN = _TORCH | {Kind.GGML}
# Readings with nothing a pickle-family loader would unpickle or unpack.
_INERT_READINGS = frozenset({Kind.TEXT, Kind.GGML})
_PICKLED = frozenset({Kind.PICKLE, Kind.ZIP})
_TEXT = frozenset({Kind.TEXT})

_NAME_CLAIMS: dict[str, frozenset[Kind]] = {
    "saved_model.pb": frozenset({Kind.PROTOBUF_SAVEDMODEL}),
}
_SUFFIX_CLAIMS: tuple[tuple[str, frozenset[Kind]], ...] = tuple(
    sorted(
        {
            ".bin": _BIN,
            ".pt": _TORCH,
            ".pth": _TORCH,
            ".ckpt": _TORCH,
            ".pkl": _PICKLED,
            ".pickle": _PICKLED,
            ".joblib": _PICKLED | {Kind.ZLIB, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.LZMA},
            ".safetensors": frozenset({Kind.SAFETENSORS}),
            ".npy": frozenset({Kind.NUMPY}),
            ".npz": frozenset({Kind.ZIP}),
            ".gguf": frozenset({Kind.GGUF}),
            ".h5": frozenset({Kind.HDF5}),
            ".hdf5": frozenset({Kind.HDF5}),
            ".keras": frozenset({Kind.ZIP}),
            ".onnx": frozenset({Kind.ONNX}),
            ".tflite": frozenset({Kind.TFLITE}),
            ".json": frozenset({Kind.JSON}),
            ".jsonl": frozenset({Kind.JSON}),
            ".py": frozenset({Kind.PYTHON_SOURCE, Kind.TEXT}),
            ".txt": _TEXT,
            ".md": _TEXT,
            ".csv": _TEXT,
            ".tsv": _TEXT,
            ".yaml": _TEXT,
            ".yml": _TEXT,
            ".jinja": _TEXT,
            ".zip": frozenset({Kind.ZIP}),
            ".mar": frozenset({Kind.ZIP}),
            ".tar": frozenset({Kind.TAR}),
            ".nemo": frozenset({Kind.TAR}),
            ".tar.gz": frozenset({Kind.GZIP}),
            ".tgz": frozenset({Kind.GZIP}),
            ".gz": frozenset({Kind.GZIP}),
            ".bz2": frozenset({Kind.BZIP2}),
            ".xz": frozenset({Kind.XZ}),
            ".zst": frozenset({Kind.ZSTD}),
            ".7z": frozenset({Kind.SEVEN_ZIP}),
        }.items(),
        key=lambda item: -len(item[0]),
    )
)


# --- magic numbers and binary structure -------------------------------------------------------


def _is_safetensors(head: bytes, size: int) -> bool:
    length = safetensors.header_length(head)
    return length is not None and length + safetensors.PREFIX_BYTES <= size


def _is_numpy(head: bytes, size: int) -> bool:
    return head.startswith(b"\x93NUMPY") and len(head) >= 8 and head[6] in (1, 2, 3)


def _is_hdf5(head: bytes, size: int) -> bool:
    # The superblock sits at 0, or after a user block of 512, 1024, 2048... bytes: HDF5 tries
    # every power of two, so every one the head reaches is tried here.
    return any(head.startswith(b"\x89HDF\r\n\x1a\n", at) for at in _HDF5_OFFSETS)


_HDF5_OFFSETS = (0, *(1 << n for n in range(9, HEAD_BYTES.bit_length() - 1)))


def _is_tflite(head: bytes, size: int) -> bool:
    return head[4:8] == b"TFL3"  # the FlatBuffers file identifier


def _is_bzip2(head: bytes, size: int) -> bool:
    # "BZh" + block size, then the first block's magic (pi) or the end-of-stream magic (sqrt pi)
    return (
        len(head) >= 10
        and head.startswith(b"BZh")
        and head[3] in b"123456789"
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    )


def _is_zlib(head: bytes, size: int) -> bool:
    if len(head) < 2 or head[0] & 0x0F != 8 or head[0] >> 4 > 7:
        return False
    if (head[0] << 8 | head[1]) % 31 or head[1] & 0x20:  # check bits; no preset dictionary
        return False
    try:
        zlib.decompressobj().decompress(head[:4096], 1024)
    except zlib.error:
        return False
    return True


_LZMA_DICTIONARY_SIZES = frozenset(
    size for n in range(12, 31) for size in (1 << n, (1 << n) + (1 << (n - 1)))
)


def _is_lzma_alone(head: bytes, size: int) -> bool:
    """An LZMA-alone header (properties byte, dictionary size, uncompressed size) whose first
    bytes decode."""
    # The format has no magic and no header checksum, so random bytes would often "decode":
    # accept only the default properties byte (lc=3, lp=0, pb=2), a dictionary size that
    # encoders write (2^n or 2^n + 2^(n-1)), and an unknown or plausible uncompressed size.
    if len(head) < 13 or head[0] != 0x5D:
        return False
    dictionary = int.from_bytes(head[1:5], "little")
    if dictionary not in _LZMA_DICTIONARY_SIZES:
        return False
    if int.from_bytes(head[5:13], "little") not in range(1 << 50) and head[5:13] != b"\xff" * 8:
        return False
    try:
        lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(head[:4096], 1024)
    except lzma.LZMAError:
        return False
    return True


def _is_zip_start(head: bytes, size: int) -> bool:
    return head.startswith(b"PK\x03\x04") or (head.startswith(b"PK\x05\x06") and size >= 22)


def _is_tar(head: bytes, size: int) -> bool:
    if len(head) < 512 or head[0] == 0:
        return False
    block = head[:512]
    if block[257:262] == b"ustar":
        return True
    # A pre-POSIX (v7) header has no magic: trust its checksum.
    field = block[148:156].replace(b"\x00", b" ").strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    return int(field, 8) == unsigned


# The formats before GGUF write their magic as a little-endian uint32 ('ggml' is on disk as
# b"lmgg"); all but the oldest follow it with a uint32 version. llama.cpp knew GGMF v1, GGJT
# v1-3 and GGLA (LoRA adapters) v1; whisper.cpp and the ggml examples write unversioned GGML.
_GGML_VERSIONS: dict[bytes, range | None] = {
    b"lmgg": None,
    b"fmgg": range(1, 2),
    b"tjgg": range(1, 4),
    b"algg": range(1, 2),
}


def _is_ggml(head: bytes, size: int) -> bool:
    if head[:4] not in _GGML_VERSIONS or len(head) < 8:
        return False
    versions = _GGML_VERSIONS[head[:4]]
    return versions is None or int.from_bytes(head[4:8], "little") in versions


def _magic(prefix: bytes) -> Callable[[bytes, int], bool]:
    def check(head: bytes, size: int) -> bool:
        return head.startswith(prefix)

    return check


# ONNX ModelProto fields and their wire types (0 varint, 2 length-delimited).
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
_ONNX_GRAPH = 7
# IR version 3 shipped with ONNX 1.0; 1 and 2 never left pre-release (and a SavedModel's
# schema version field reads as ir_version 1).
_ONNX_IR_VERSIONS = range(3, 65)


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value = 0
    for index in range(10):
        if at + index >= len(data):
            return None
        byte = data[at + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, at + index + 1
    return None


def _is_onnx(head: bytes, size: int) -> bool:
    """A ModelProto: ir_version first (protobuf writers emit fields in number order), then
    known fields with the right wire types, up to the graph."""
    if not head.startswith(b"\x08"):
        return False
    at = 0
    fields = 0
    while at < len(head):
        key = _varint(head, at)
        if key is None:
            return len(head) < size and fields >= 2
        number, wire = key[0] >> 3, key[0] & 7
        if _ONNX_FIELDS.get(number) != wire or (fields == 0 and number != 1):
            return False
        value = _varint(head, key[1])
        if value is None:
            return len(head) < size and fields >= 2
        if number == 1 and value[0] not in _ONNX_IR_VERSIONS:
            return False
        at = value[1]
        fields += 1
        if wire == 2:
            if at + value[0] > size:
                return False
            if number == _ONNX_GRAPH:
                return value[0] > 0
            if number in (2, 3, 4) and at + value[0] <= len(head):
                try:
                    head[at : at + value[0]].decode("utf-8")
                except UnicodeDecodeError:
                    return False
            at += value[0]
    # the head ran out inside a field before the graph (a long doc_string), or the whole file
    # ended without one
    return len(head) < size and fields >= 2


def _is_savedmodel(head: bytes, size: int) -> bool:
    """SavedModel: saved_model_schema_version = 1, then a MetaGraphDef starting with its
    meta_info_def (field 1, length-delimited)."""
    if not head.startswith(b"\x08\x01\x12"):
        return False
    length = _varint(head, 3)
    return (
        length is not None
        and 0 < length[0] <= size - length[1]
        and head[length[1] : length[1] + 1] == b"\x0a"
    )


_AT_START: tuple[tuple[Kind, Callable[[bytes, int], bool]], ...] = (
    (Kind.SAFETENSORS, _is_safetensors),
    (Kind.NUMPY, _is_numpy),
    (Kind.GGUF, _magic(b"GGUF")),
    (Kind.GGML, _is_ggml),
    (Kind.HDF5, _is_hdf5),
    (Kind.TFLITE, _is_tflite),
    (Kind.ONNX, _is_onnx),
    (Kind.PROTOBUF_SAVEDMODEL, _is_savedmodel),
    (Kind.SEVEN_ZIP, _magic(b"7z\xbc\xaf\x27\x1c")),
    (Kind.XZ, _magic(b"\xfd7zXZ\x00")),
    (Kind.ZSTD, _magic(b"\x28\xb5\x2f\xfd")),
    (Kind.BZIP2, _is_bzip2),
    (Kind.GZIP, _magic(b"\x1f\x8b\x08")),
    (Kind.ZLIB, _is_zlib),
    (Kind.LZMA, _is_lzma_alone),
    (Kind.ZIP, _is_zip_start),
    (Kind.TAR, _is_tar),
)


def _zip_end_in(head: bytes, tail: bytes, size: int) -> bool:
    """An end record in the tail whose directory fits the file, and, when the directory's first
    bytes are in one of the windows, a directory signature there."""
    if not tail:
        return False
    record = zipread.end_record(tail, size)
    if record is None or not record.fits or record.entries * 46 > record.directory_size:
        return False  # (46 bytes is the smallest directory entry)
    if record.directory_size == 0:
        return record.entries == 0
    start = record.directory_start
    tail_start = size - len(tail)
    if start + 4 <= len(head):
        return head[start : start + 4] == b"PK\x01\x02"
    if start >= tail_start:
        return tail[start - tail_start : start - tail_start + 4] == b"PK\x01\x02"
    return True


# --- pickles ----------------------------------------------------------------------------------

_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_MEMO_WRITES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_READS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_IMPORTS = frozenset({"GLOBAL", "STACK_GLOBAL"})
_BUILDS = _IMPORTS | _MEMO_WRITES | {"MARK", "MEMOIZE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"}
_CALLS = frozenset({"REDUCE", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})
_LENGTH_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: struct.Struct("<B"),
    pickletools.TAKEN_FROM_ARGUMENT4: struct.Struct("<i"),
    pickletools.TAKEN_FROM_ARGUMENT4U: struct.Struct("<I"),
    pickletools.TAKEN_FROM_ARGUMENT8U: struct.Struct("<Q"),
}
_HIGHEST_PROTOCOL = 5
_MAX_OPCODES = 200
_SIZED = frozenset(
    {"BINSTRING", "BINBYTES", "BINBYTES8", "BINUNICODE", "BINUNICODE8", "BYTEARRAY8"}
)
# What the start of an opcode's text argument may look like when the data cuts off its line.
_PARTIAL_LINE = {
    name: re.compile(pattern)
    for pattern, names in (
        (rb"[-+0-9L \r]*", ("INT", "LONG", "GET", "PUT")),
        (rb"[-+0-9.eEinfatyIN \r]*", ("FLOAT",)),
        (rb"(?s:['\"].*)?", ("STRING",)),
        (rb"[A-Za-z0-9_.\n\x80-\xff]*", ("GLOBAL", "INST")),
    )
    for name in names
}  # this many well-formed opcodes in a row is a pickle


class _Walk(Enum):
    COMPLETE = "a STOP with one object on the stack"
    ENDED = "the data ran out before STOP (a pickle still runs what came before)"
    BROKEN = "an opcode that no unpickler would accept"
    ENOUGH = "many well-formed opcodes"


def _is_pickle(head: bytes, size: int) -> bool:
    """Could an unpickler run these bytes? A protocol 2-5 pickle starts with PROTO; a protocol
    0/1 pickle has no magic at all, so the first opcodes are simulated (arguments decoded with
    pickletools' readers, a stack with marks and a few types, the memo), which is what keeps
    JSON, CSV and prose out. A pickle that breaks after a few good opcodes still counts: its
    payload runs before the unpickler hits the error (nullifAI)."""
    magic = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    walk = _walk_pickle(head, size)
    if walk.outcome is _Walk.ENOUGH or walk.calls:
        return True
    if magic:
        if walk.outcome is _Walk.COMPLETE:
            return True
        return walk.count >= (2 if walk.outcome is _Walk.ENDED else 3)
    if walk.outcome is _Walk.ENDED and walk.count == 1 and walk.cut in _SIZED:
        # one string or bytes object longer than the head, whose length fits the file
        return True
    # Without magic, text must not read as a pickle by accident: "N.B." starts with NONE, STOP;
    # "Git v2.31.7" with BINFLOAT, DUP, STOP; lines starting with P or V are PERSID/UNICODE
    # opcodes that only push. A real pickle builds something (built), and ends the file at its
    # STOP unless it is long enough to carry a payload.
    if not walk.built:
        return False
    if walk.outcome is _Walk.COMPLETE:
        return walk.end == size or walk.count >= 4
    return walk.count >= (3 if walk.outcome is _Walk.ENDED else 4)


@dataclass(frozen=True)
class _PickleWalk:
    outcome: _Walk
    count: int  # well-formed opcodes read (with ENDED, the one the data cuts off)
    end: int  # where the walk stopped
    built: bool  # a container, a global, the memo, or an opcode that took items off the stack
    calls: bool  # a call opcode after a global: the payload has run by then
    cut: str | None = None  # with ENDED, the opcode whose argument the data cuts off


def _walk_pickle(head: bytes, size: int) -> _PickleWalk:
    """How far the head reads as a pickle."""
    stream = io.BytesIO(head)
    stack: list[pickletools.StackObject] = []
    memo: dict[object, pickletools.StackObject] = {}
    built = imports = calls = False
    at = 0
    for count in range(_MAX_OPCODES):
        if at >= len(head):
            return _PickleWalk(_Walk.ENDED, count, at, built, calls)
        op = _OPCODES.get(head[at : at + 1])
        if op is None:
            return _PickleWalk(_Walk.BROKEN, count, at, built, calls)
        argument = _read_argument(op, head, at + 1, size, stream)
        if argument is _Walk.ENDED:  # a known opcode whose argument the data cuts off
            return _PickleWalk(_Walk.ENDED, count + 1, at, built, calls, op.name)
        if isinstance(argument, _Walk):
            return _PickleWalk(argument, count, at, built, calls)
        value, end = argument
        if not _step(op, value, stack, memo):
            return _PickleWalk(_Walk.BROKEN, count, at, built, calls)
        built = built or op.name in _BUILDS or bool(op.stack_before)
        imports = imports or op.name in _IMPORTS
        calls = calls or op.name == "INST" or (imports and op.name in _CALLS)
        at = end
        if op.name == "STOP":
            return _PickleWalk(_Walk.COMPLETE, count + 1, at, built, calls)
    return _PickleWalk(_Walk.ENOUGH, _MAX_OPCODES, at, built, calls)


def _read_argument(
    op: pickletools.OpcodeInfo, head: bytes, at: int, size: int, stream: io.BytesIO
) -> tuple[object, int] | _Walk:
    descriptor = op.arg
    if descriptor is None:
        return None, at
    width = descriptor.n
    if width >= 0:
        if at + width > len(head):
            return _Walk.ENDED
    elif width == pickletools.UP_TO_NEWLINE:
        lines = 2 if op.name in ("GLOBAL", "INST") else 1
        end = at
        for _ in range(lines):
            end = head.find(b"\n", end) + 1
            if end == 0:
                partial = _PARTIAL_LINE.get(op.name)
                if partial is None or partial.fullmatch(head, at):
                    return _Walk.ENDED
                return _Walk.BROKEN
    else:
        prefix = _LENGTH_PREFIX[width]
        if at + prefix.size > len(head):
            return _Walk.ENDED
        (length,) = prefix.unpack_from(head, at)
        end = at + prefix.size + length
        if length < 0 or end > size:
            return _Walk.BROKEN
        if end > len(head):
            if op.name in ("BINUNICODE", "BINUNICODE8"):
                try:
                    codecs.getincrementaldecoder("utf-8")().decode(head[at + prefix.size :])
                except UnicodeDecodeError:
                    return _Walk.BROKEN
            return _Walk.ENDED
    stream.seek(at)
    try:
        value = descriptor.reader(stream)
    except Exception:  # any reader error means no unpickler would accept the argument
        return _Walk.BROKEN
    if op.name in ("GLOBAL", "INST") and not _dotted_pair(value):
        return _Walk.BROKEN
    if op.name == "PROTO" and not (isinstance(value, int) and 0 <= value <= _HIGHEST_PROTOCOL):
        return _Walk.BROKEN
    return value, stream.tell()


def _dotted_pair(value: object) -> bool:
    """GLOBAL's argument: 'module name', each a dotted identifier."""
    if not isinstance(value, str):
        return False
    parts = value.split(" ")
    return len(parts) == 2 and all(
        part and all(piece.isidentifier() for piece in part.split(".")) for part in parts
    )


def _step(
    op: pickletools.OpcodeInfo,
    value: object,
    stack: list[pickletools.StackObject],
    memo: dict[object, pickletools.StackObject],
) -> bool:
    """Apply the opcode's stack effect; False when the unpickler would refuse it."""
    mark = pickletools.markobject
    if op.name in _MEMO_READS:
        if value not in memo:
            return False
        stack.append(memo[value])
        return True
    if op.name in _MEMO_WRITES or op.name == "MEMOIZE":
        if not stack or stack[-1] is mark:
            return False
        memo[len(memo) if value is None else value] = stack[-1]
        return True
    before = op.stack_before
    if mark in before:
        index = before.index(mark)
        below = before[:index]
        above = [item for item in before[index + 1 :] if item is not pickletools.stackslice]
        if mark not in stack:
            return False
        top_mark = len(stack) - 1 - stack[::-1].index(mark)
        if len(stack) - top_mark - 1 < len(above):
            return False
        del stack[top_mark:]
        if len(stack) < len(below):
            return False
        taken = stack[len(stack) - len(below) :] if below else []
    elif op.name == "POP" and stack and stack[-1] is mark:
        taken = []
        stack.pop()  # POP discards a MARK too
    else:
        taken = stack[len(stack) - len(before) :] if before else []
        if len(taken) < len(before):
            return False
    if mark in taken:
        return False
    if op.name == "STACK_GLOBAL" and any(
        item not in (pickletools.pyunicode, pickletools.anyobject) for item in taken
    ):
        return False  # the unpickler insists on two str operands
    del stack[len(stack) - len(taken) :]
    stack.extend(op.stack_after)
    return True


# --- does unpickling fail before anything runs? ------------------------------------------------

# Opcodes that push constants, build builtin containers or move things between the stack and
# the memo. Before the first import or call only builtin objects exist, so none of these can
# reach code of the file's choosing.
_INERT_OPCODES = frozenset(
    {
        "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
        "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
        "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
        "TUPLE3", "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS",
        "FROZENSET", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "MEMOIZE", "PROTO", "FRAME",
    }
)  # fmt: skip
_MAX_PROOF_OPCODES = 100_000


class _Proof(Enum):
    RAISES = "the unpickler certainly raises at this opcode"
    UNKNOWN = "what the unpickler does here is not certain"


def unpickling_fails_at(head: bytes, size: int) -> int | None:
    """The offset at which unpickling a file that starts with `head` (`size` bytes in all)
    raises, when that is certain to happen before any opcode that imports, calls or looks up a
    persistent id; None when it is not certain.

    torch.load unpickles a file that is neither zip nor tar from byte 0 (its legacy path), as
    pickle.load, joblib.load and numpy.load(allow_pickle=True) do. Only failures that the C
    unpickler cannot avoid count: an unknown opcode, input that ends inside an opcode, a negative
    or oversized length, an unsupported protocol, a missing MARK, stack underflow and memo misses
    (simulated exactly, since only inert opcodes come first). A STOP, an opcode whose text
    argument might be parsed differently, or bytes beyond the head are "not certain".
    """
    stack: list[pickletools.StackObject] = []
    memo: dict[object, pickletools.StackObject] = {}
    stream = io.BytesIO(head)
    at = 0
    for _ in range(_MAX_PROOF_OPCODES):
        if at >= len(head):
            return at if at >= size else None  # the input ran out: "pickle data was truncated"
        op = _OPCODES.get(head[at : at + 1])
        if op is None:
            return at  # "invalid load key"
        if op.name not in _INERT_OPCODES:
            return None  # an import, a call, a persistent id or a STOP
        argument = _proof_argument(op, head, at + 1, size, stream)
        if argument is _Proof.RAISES:
            return at
        if argument is _Proof.UNKNOWN:
            return None
        value, end = argument
        if not _step(op, value, stack, memo):
            return at  # no MARK, stack underflow or a memo miss
        at = end
    return None


def _proof_argument(
    op: pickletools.OpcodeInfo, head: bytes, at: int, size: int, stream: io.BytesIO
) -> tuple[object, int] | _Proof:
    descriptor = op.arg
    if descriptor is None:
        return None, at
    width = descriptor.n
    if width >= 0:
        end = at + width
        if end > size:
            return _Proof.RAISES
    elif width == pickletools.UP_TO_NEWLINE:
        newline = head.find(b"\n", at)
        if newline < 0:
            return _Proof.UNKNOWN  # loaders differ on a last line without its newline
        end = newline + 1
    else:
        prefix = _LENGTH_PREFIX[width]
        if at + prefix.size > size:
            return _Proof.RAISES
        if at + prefix.size > len(head):
            return _Proof.UNKNOWN
        (length,) = prefix.unpack_from(head, at)
        end = at + prefix.size + length
        if length < 0 or end > size:
            return _Proof.RAISES  # a negative count, or more bytes than the file holds
    if end > len(head):
        return _Proof.UNKNOWN
    stream.seek(at)
    try:
        value = descriptor.reader(stream)
    except Exception:  # pickletools may parse text differently from the C unpickler
        return _Proof.UNKNOWN
    if stream.tell() != end:
        return _Proof.UNKNOWN
    if op.name == "PROTO" and not (isinstance(value, int) and value <= _HIGHEST_PROTOCOL):
        return _Proof.RAISES  # "unsupported pickle protocol"
    return value, end


# --- text -------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _decode_text(head: bytes, truncated: bool) -> str | None:
    """The head as UTF-8 text (a character cut by the end of the head is fine), or None for
    binary: invalid UTF-8, a NUL, or more than 1% control characters."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=not truncated)
    except UnicodeDecodeError:
        return None
    if "\x00" in text or len(_CONTROL.findall(text)) * 100 > len(text):
        return None
    return text


_JSON_TOKEN = re.compile(
    r"""[ \t\r\n]+
    | (?P<punct>[{}\[\],:])
    | (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
    | (?P<scalar>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?
        |true|false|null|NaN|-?Infinity)""",
    re.VERBOSE,
)
_JSON_PARTIAL = re.compile(
    r"""(?:"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{0,4}))*\\?
    | -?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?
    | t(?:r(?:ue?)?)? | f(?:a(?:l(?:se?)?)?)? | n(?:u(?:ll?)?)? | N(?:aN?)?
    | -?I(?:n(?:f(?:i(?:n(?:i(?:ty?)?)?)?)?)?)?)\Z""",
    re.VERBOSE,
)


_JSON_PREFIX_CHARS = 16 << 10


def _is_json(text: str, truncated: bool) -> bool:
    """A JSON object or array (or a JSON-lines run of them); for a head cut from a larger file,
    a valid prefix of one. Checked with a small pushdown automaton over the tokens, so a
    truncated head needs no parse of the rest."""
    if not text.lstrip(" \t\r\n").startswith(("{", "[")):
        return False
    if not truncated:
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            pass  # perhaps JSON lines: the automaton decides
        else:
            return True
    elif len(text) > _JSON_PREFIX_CHARS:
        text = text[:_JSON_PREFIX_CHARS]
    stack: list[str] = []
    expect = "top"  # top, value, first (value or ]), key (or } when first), colon, next
    first_key = False
    at = 0
    while at < len(text):
        match = _JSON_TOKEN.match(text, at)
        if match is None:
            return truncated and _JSON_PARTIAL.match(text, at) is not None
        at = match.end()
        punct, is_string, is_scalar = match["punct"], match["string"], match["scalar"]
        if not (punct or is_string or is_scalar):
            continue  # whitespace
        if expect == "next" and not stack:
            expect = "top"  # JSON lines: another document
        if expect in ("top", "value", "first"):
            if punct == "{":
                stack.append("{")
                expect, first_key = "key", True
            elif punct == "[":
                stack.append("[")
                expect = "first"
            elif punct == "]" and expect == "first":
                stack.pop()
                expect = "next"
            elif (is_string or is_scalar) and expect != "top":
                expect = "next"
            else:
                return False
        elif expect == "key":
            if is_string:
                expect = "colon"
            elif punct == "}" and first_key:
                stack.pop()
                expect = "next"
            else:
                return False
        elif expect == "colon":
            if punct != ":":
                return False
            expect = "value"
        elif punct == "," and stack:
            expect, first_key = ("key", False) if stack[-1] == "{" else ("value", False)
        elif punct in ("}", "]") and stack and stack[-1] == ("{" if punct == "}" else "["):
            stack.pop()
        else:
            return False
    return truncated or (not stack and expect == "next")


_PYTHON_LINE = re.compile(
    r"^(?:(?:async\s+)?def\s+\w+\s*\(|class\s+\w+\s*[(:]|import\s+[\w.]+"
    r"|from\s+[\w.]+\s+import\s|@[\w.]+|if\s+__name__\s*==)",
    re.MULTILINE,
)
_PYTHON_PREFIX_CHARS = 32 << 10


def _is_python(text: str, truncated: bool) -> bool:
    """Python source: a def/class/import line (or a python shebang) at a line start, and the
    first 32 KiB tokenize (an unclosed bracket at a cut is fine)."""
    if text.startswith("#!"):
        shebang = text.split("\n", 1)[0]
        if "python" not in shebang:
            return False
    elif _PYTHON_LINE.search(text[:_PYTHON_PREFIX_CHARS]) is None:
        return False
    if len(text) > _PYTHON_PREFIX_CHARS:
        text = text[:_PYTHON_PREFIX_CHARS]
        truncated = True
    if truncated:
        text = text[: text.rfind("\n") + 1]  # whole lines only
    try:
        for _token in tokenize.generate_tokens(io.StringIO(text).readline):
            pass
    except tokenize.TokenError as exc:
        # a cut inside a bracket or a docstring; an unclosed one-line string is prose
        return truncated and ("EOF" in str(exc) or "triple-quoted" in str(exc))
    except SyntaxError:  # IndentationError, and the tokenizer's own syntax errors
        return False
    return True
