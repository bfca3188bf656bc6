"""Structural check of an ONNX model: where its tensors say their bytes live.

An `.onnx` file is one protobuf ModelProto. A tensor may keep its bytes in another file: it sets
`data_location` to EXTERNAL and lists `external_data` key/value pairs whose `location` is a path
the loader joins to the model's directory. A location that escapes that directory makes the
loader read (and, when the model is re-saved, write) any file it can reach: CVE-2022-25882,
its bypass CVE-2024-27318, and the link variants CVE-2026-27489 / -34447 / -34446.

This module walks the protobuf by hand, streaming and bounds-checked: it descends only into the
messages that can hold tensors (graph, node, attribute, subgraphs of If/Loop/Scan, sparse
tensors, training graphs, model-local functions) and seeks past everything else, tensor bytes
included, without reading them. It reports:

- `onnx-external-data-path` (critical): a location that is empty, absolute, has a `..` part, a
  backslash, a drive letter or a NUL, or does not normalise to a file inside the model's
  directory.
- `onnx-external-data` (info): every distinct external location, for the engine and policy.
- `onnx-external-data-key` (medium): an external_data key onnx does not define (its loader sets
  every key as an attribute of a Python object).
- `onnx-malformed` (high): truncated varints, lengths past their message or the file, wrong wire
  types for the fields walked, invalid UTF-8 in a location, an external tensor without a
  location, nesting or count caps exceeded. Parsing stops there (fail closed) and the findings
  made before are kept.

A symbolic or hard link inside the model directory (CVE-2026-27489 and related) cannot be seen
from the .onnx file alone: the repository listing must reject links, which Airlock does for
archives and the mirror does for repository files.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import BinaryIO

from proxy.scan.protobuf import LEN, VARINT
from proxy.scan.protobuf import Malformed as _Malformed
from proxy.scan.protobuf import Source as _Source
from proxy.scan.report import Finding, Severity

MAX_GRAPH_DEPTH = 64  # If/Loop/Scan bodies nested in each other
MAX_STRING_BYTES = 64 << 10  # a name, key or value this walker reads
MAX_LOCATIONS = 10_000  # distinct external data locations in one model

EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

KNOWN_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})

# ModelProto
MODEL_GRAPH, MODEL_TRAINING_INFO, MODEL_FUNCTIONS = 7, 20, 25
# TrainingInfoProto
TRAINING_INITIALIZATION, TRAINING_ALGORITHM = 1, 2
# FunctionProto
FUNCTION_NODE = 7
# GraphProto
GRAPH_NODE, GRAPH_NAME, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 2, 5, 15
# NodeProto
NODE_NAME, NODE_ATTRIBUTE = 3, 5
# AttributeProto
ATTR_NAME, ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS = 1, 5, 6, 10, 11
ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 22, 23
# SparseTensorProto
SPARSE_VALUES, SPARSE_INDICES = 1, 2
# TensorProto
TENSOR_NAME, TENSOR_RAW_DATA, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 9, 13, 14
# StringStringEntryProto
ENTRY_KEY, ENTRY_VALUE = 1, 2

_DRIVE = re.compile(r"[A-Za-z]:")


@dataclass
class _Location:
    path: str  # where the first tensor naming it sits
    tensors: int
    problem: str | None


def check(handle: BinaryIO, size: int, *, location_prefix: str = "") -> list[Finding]:
    """Findings for the ONNX ModelProto in the first `size` bytes of `handle` (read with seek
    and read; tensor bytes are skipped, never read). Never raises on a damaged file: damage is an
    `onnx-malformed` finding. I/O errors of `handle` itself propagate."""
    walker = _Walker(_Source(handle, size), location_prefix)
    try:
        walker.model(0, size)
    except _Malformed as exc:
        walker.malformed(str(exc), exc.offset)
    return walker.report()


def location_problem(location: str) -> str | None:
    """Why an external data location is not a plain relative path inside the model's
    directory, or None when it is one."""
    if not location:
        return "is empty"
    if "\x00" in location:
        return "contains a NUL byte"
    if "\\" in location:
        return "contains a backslash"
    if location.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(location):
        return "starts with a drive letter"
    if ".." in location.split("/"):
        return "has a '..' part"
    normal = posixpath.normpath(location)
    if normal in (".", "..") or normal.startswith(("../", "/")):
        return "does not name a file inside the model directory"
    return None


class _Walker:
    def __init__(self, source: _Source, prefix: str) -> None:
        self.source = source
        self.prefix = prefix
        self.findings: list[Finding] = []
        self.locations: dict[str, _Location] = {}

    def where(self, path: str) -> str | None:
        if self.prefix and path:
            return f"{self.prefix}: {path}"
        return self.prefix or path or None

    def malformed(self, message: str, offset: int) -> None:
        self.findings.append(
            Finding("onnx-malformed", Severity.HIGH, message, self.where(f"byte {offset}"))
        )

    def report(self) -> list[Finding]:
        result: list[Finding] = []
        for location, seen in self.locations.items():
            if seen.problem:
                result.append(
                    Finding(
                        "onnx-external-data-path",
                        Severity.CRITICAL,
                        f"external data location {location!r} {seen.problem}: the loader "
                        "would read a file outside the model directory (CVE-2022-25882, "
                        "CVE-2024-27318)",
                        self.where(seen.path),
                    )
                )
            result.append(
                Finding(
                    "onnx-external-data",
                    Severity.INFO,
                    f"{seen.tensors} tensor(s) read their data from {location!r}",
                    self.where(seen.path),
                )
            )
        return result + self.findings

    # --- messages ---------------------------------------------------------------------------

    def model(self, start: int, end: int) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number == MODEL_GRAPH:
                self.graph(self._message(number, wire, pos), pos + length, "graph", 1)
            elif number == MODEL_TRAINING_INFO:
                self._message(number, wire, pos)
                for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                    pos, pos + length
                ):
                    if inner in (TRAINING_INITIALIZATION, TRAINING_ALGORITHM):
                        self._message(inner, inner_wire, inner_pos)
                        path = f"training_info.{'algorithm' if inner == 2 else 'initialization'}"
                        self.graph(inner_pos, inner_pos + inner_length, path, 1)
            elif number == MODEL_FUNCTIONS:
                self._message(number, wire, pos)
                index = 0
                for inner, inner_wire, inner_length, inner_pos in self.source.fields(
                    pos, pos + length
                ):
                    if inner == FUNCTION_NODE:
                        self._message(inner, inner_wire, inner_pos)
                        self.node(inner_pos, inner_pos + inner_length, f"function.node[{index}]", 1)
                        index += 1

    def graph(self, start: int, end: int, path: str, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise _Malformed(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH}", start)
        nodes = initializers = sparse = 0
        for number, wire, length, pos in self.source.fields(start, end):
            if number == GRAPH_NODE:
                self._message(number, wire, pos)
                self.node(pos, pos + length, f"{path}.node[{nodes}]", depth)
                nodes += 1
            elif number == GRAPH_INITIALIZER:
                self._message(number, wire, pos)
                self.tensor(pos, pos + length, f"{path}.initializer[{initializers}]")
                initializers += 1
            elif number == GRAPH_SPARSE_INITIALIZER:
                self._message(number, wire, pos)
                self.sparse(pos, pos + length, f"{path}.sparse_initializer[{sparse}]")
                sparse += 1

    def node(self, start: int, end: int, path: str, depth: int) -> None:
        name = ""
        attributes = 0
        for number, wire, length, pos in self.source.fields(start, end):
            if number == NODE_NAME:
                name = self._string(number, wire, length, pos)
            elif number == NODE_ATTRIBUTE:
                self._message(number, wire, pos)
                here = f"{path}({name})" if name else path
                self.attribute(pos, pos + length, f"{here}.attribute[{attributes}]", depth)
                attributes += 1

    def attribute(self, start: int, end: int, path: str, depth: int) -> None:
        name = ""
        tensors = graphs = sparse = 0
        for number, wire, length, pos in self.source.fields(start, end):
            here = f"{path}({name})" if name else path
            if number == ATTR_NAME:
                name = self._string(number, wire, length, pos)
            elif number in (ATTR_T, ATTR_TENSORS):
                self._message(number, wire, pos)
                self.tensor(pos, pos + length, f"{here}.tensors[{tensors}]")
                tensors += 1
            elif number in (ATTR_G, ATTR_GRAPHS):
                self._message(number, wire, pos)
                self.graph(pos, pos + length, f"{here}.graphs[{graphs}]", depth + 1)
                graphs += 1
            elif number in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
                self._message(number, wire, pos)
                self.sparse(pos, pos + length, f"{here}.sparse_tensors[{sparse}]")
                sparse += 1

    def sparse(self, start: int, end: int, path: str) -> None:
        for number, wire, length, pos in self.source.fields(start, end):
            if number in (SPARSE_VALUES, SPARSE_INDICES):
                self._message(number, wire, pos)
                part = "values" if number == SPARSE_VALUES else "indices"
                self.tensor(pos, pos + length, f"{path}.{part}")

    def tensor(self, start: int, end: int, path: str) -> None:
        name = ""
        external = False
        entries: list[tuple[str, str, int]] = []
        try:
            for number, wire, length, pos in self.source.fields(start, end):
                if number == TENSOR_NAME:
                    name = self._string(number, wire, length, pos)
                elif number == TENSOR_DATA_LOCATION:
                    if wire != VARINT:
                        raise _Malformed("data_location is not a varint", pos)
                    external = length == EXTERNAL
                elif number == TENSOR_EXTERNAL_DATA:
                    self._message(number, wire, pos)
                    entries.append((*self.entry(pos, pos + length), pos))
                # raw_data (9) and the typed data fields are skipped by `fields`, never read
        except _Malformed:
            for key, value, pos in entries:  # keep what a damaged tensor already showed
                if key == "location":
                    self.record(value, f"{path}({name})" if name else path, pos)
            raise
        here = f"{path}({name})" if name else path
        locations = [(value, pos) for key, value, pos in entries if key == "location"]
        if external and not locations:
            self.malformed(f"tensor {name!r} is EXTERNAL but names no location", start)
        for key, value, pos in entries:
            if key not in KNOWN_KEYS:
                self.findings.append(
                    Finding(
                        "onnx-external-data-key",
                        Severity.MEDIUM,
                        f"external_data key {key!r} is not one onnx defines",
                        self.where(here),
                    )
                )
            elif key in ("offset", "length") and not (value.isascii() and value.isdigit()):
                self.malformed(f"external_data {key} {value!r} is not a decimal number", pos)
        for location, pos in locations:
            self.record(location, here, pos)

    def entry(self, start: int, end: int) -> tuple[str, str]:
        key = value = ""
        for number, wire, length, pos in self.source.fields(start, end):
            if number == ENTRY_KEY:
                key = self._string(number, wire, length, pos)
            elif number == ENTRY_VALUE:
                value = self._string(number, wire, length, pos)
        return key, value

    def record(self, location: str, path: str, pos: int) -> None:
        seen = self.locations.get(location)
        if seen is not None:
            seen.tensors += 1
            return
        if len(self.locations) >= MAX_LOCATIONS:
            raise _Malformed(f"more than {MAX_LOCATIONS} external data locations", pos)
        self.locations[location] = _Location(path, 1, location_problem(location))

    # --- fields -----------------------------------------------------------------------------

    @staticmethod
    def _message(number: int, wire: int, pos: int) -> int:
        if wire != LEN:
            raise _Malformed(f"field {number} should be a message but has wire type {wire}", pos)
        return pos

    def _string(self, number: int, wire: int, length: int, pos: int) -> str:
        if wire != LEN:
            raise _Malformed(f"field {number} should be a string but has wire type {wire}", pos)
        if length > MAX_STRING_BYTES:
            raise _Malformed(f"string field {number} is longer than {MAX_STRING_BYTES}", pos)
        raw = self.source.read(pos, length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.malformed(f"string field {number} is not valid UTF-8", pos)
            return raw.decode("utf-8", "backslashreplace")
