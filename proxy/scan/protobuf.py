"""A bounded reader of the protobuf wire format, for the scanners of protobuf model files (ONNX's
ModelProto, TensorFlow's SavedModel).

Nothing here knows a schema: `Source.fields` lists the fields of one message as (number, wire
type, value or payload length, position) and never reads a payload; the scanner decides which
payloads to descend into and seeks past the rest (tensor bytes included). Every read is checked
against the message it belongs to and against the file's size, and goes through a small window,
so memory stays flat whatever the file size. Damage raises `Malformed`, which each scanner turns
into a finding (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

WINDOW_BYTES = 64 << 10

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class Malformed(Exception):
    """The bytes at `offset` are not valid protobuf (or break a scanner's bound)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class Source:
    """Reads of an untrusted file through a small window, every one checked against `size`."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = max(0, size)
        self.window = b""
        self.start = 0

    def read(self, pos: int, count: int) -> bytes:
        end = self.start + len(self.window)
        if not (self.start <= pos and pos + count <= end):
            self.handle.seek(pos)
            self.window = self.handle.read(max(count, min(WINDOW_BYTES, self.size - pos)))
            self.start = pos
        data = self.window[pos - self.start : pos - self.start + count]
        if len(data) != count:
            raise Malformed("file is shorter than its declared size", pos)
        return data

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """The varint at `pos` and the position after it; it must end before `end`."""
        offset = pos - self.start
        if pos < end and 0 <= offset < len(self.window):
            byte = self.window[offset]  # most tags and lengths are one byte: no slicing
            if byte < 0x80:
                return byte, pos + 1
        chunk = self.read(pos, min(10, end - pos)) if pos < end else b""
        value = 0
        for index, byte in enumerate(chunk):
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                return value, pos + index + 1
        if len(chunk) == 10:
            raise Malformed("varint longer than 10 bytes", pos)
        raise Malformed("truncated varint", pos)

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """(field number, wire type, varint value or payload length, payload position) for each
        field of the message in [start, end). Payloads are skipped, not read.

        A length-delimited field that runs past its message is yielded with the bytes that are
        there (so a scanner keeps what it finds before the damage), then `Malformed` is raised.
        Groups (wire types 3 and 4, which no schema walked here uses) are malformed."""
        pos = start
        while pos < end:
            tag, after = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if not 0 < number < (1 << 29):
                raise Malformed(f"invalid field number {number}", pos)
            if wire == VARINT:
                value, pos = self.varint(after, end)
                yield number, wire, value, after
            elif wire == LEN:
                length, payload = self.varint(after, end)
                if length > end - payload:
                    # Walk what is there first, so findings before the damage are kept.
                    yield number, wire, end - payload, payload
                    raise Malformed(f"field {number} runs past its message", after)
                pos = payload + length
                yield number, wire, length, payload
            elif wire in (I64, I32):
                width = 8 if wire == I64 else 4
                if width > end - after:
                    raise Malformed(f"field {number} runs past its message", after)
                pos = after + width
                yield number, wire, width, after
            else:
                raise Malformed(f"unsupported wire type {wire} in field {number}", pos)


def expect_message(number: int, wire: int, pos: int) -> int:
    """`pos` when field `number` is length-delimited (a message), else `Malformed`."""
    if wire != LEN:
        raise Malformed(f"field {number} should be a message but has wire type {wire}", pos)
    return pos
