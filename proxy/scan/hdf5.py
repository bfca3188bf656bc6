"""Structural check of an HDF5 file: Keras 2 `.h5` models, Keras 3 `model.weights.h5` members
of `.keras` archives and any other HDF5 content, without reading tensor data.

What loading such a file can do beyond reading numbers (threats.md sections 2 and 4.8):

- A Keras 2 `.h5` model keeps its architecture as JSON in the `model_config` attribute of the
  root group (or of the group it was saved into) and its compile arguments in
  `training_config`; `load_model` rebuilds every object they name, Lambda bytecode included
  (CVE-2024-3660), with safe_mode ignored for `.h5` files before CVE-2025-9905 was fixed.
  Both are handed to `keras.check_config`; one that is not a single readable string is
  `keras-malformed` (high), like a config that is not JSON. Any other string attribute that
  is a JSON object naming a `class_name` is checked the same way.
- `hdf5-external-link` (high): a link into another file, which HDF5 opens when the link is
  followed: loading weights through it reads another HDF5 file on the host (GHSA-27f4-p4xq-cxg8,
  Keras PR 22900). A soft link names a path in this file, so one that leads elsewhere goes
  through an external link, which is reported itself. `hdf5-link-unsupported` (high): a
  user-defined link.
- `hdf5-external-storage` (high): a dataset whose raw data lives in other files; loading the
  weights reads them (any file the loader can read, /etc/passwd included; CVE-2026-1669).
- `hdf5-virtual-dataset` (high): a virtual dataset mapped from datasets in other files (the
  same file read through another door, Keras PR 22976).
- `hdf5-shape-bomb` (medium): a dataset that declares over 4 GiB and over 1000 times what the
  file stores; the loader allocates the declared size (a denial of service Keras fixed in
  PR 22975; tf-keras PR 921 rejects the same datasets).
- `hdf5-user-block` (medium): bytes in front of the superblock that are not all zero; another
  format (a pickle, a zip) can live there and is sniffed and scanned by the engine as well.
- `hdf5-unreadable` (high): a file, object or attribute HDF5 cannot read, or a reader that
  crashed; `hdf5-limit` (high): a file beyond the caps below (objects, attributes, string
  sizes, memory, time). Both fail closed.

HDF5 is a large C library, and fuzzed files make it crash and hang: a scan must not take the
mirror down with it. h5py therefore runs in a child process (a fresh interpreter, about 0.15 s
to start) under an address-space limit, a CPU limit and a wall-clock timeout, with HDF5 filter
plugins disabled, and returns an inventory of the file as JSON: links, dataset storage, and
the string attributes worth checking. The child opens the file through a descriptor, so HDF5
never learns a path to resolve external names against; it never reads dataset data nor asks
for a virtual dataset's extent (which opens the sources of an unlimited one). Everything
that decides a finding happens here, in the parent, on the inventory. (The mirror's scan
workers, proxy.scan.isolated, would survive a crash too, but lose the file's other findings
to it, and a hang would hold a worker for the whole scan time limit.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from proxy.scan import keras
from proxy.scan.report import Finding, Severity

SIGNATURE: Final = b"\x89HDF\r\n\x1a\n"
# The keras attributes `load_model` reads a model from.
CONFIG_ATTRIBUTES: Final = frozenset({"model_config", "training_config"})

TIME_LIMIT_S: Final = 60.0


@dataclass(frozen=True)
class Caps:
    """Bounds on what the reader walks and reads; beyond any of them the file is blocked."""

    objects: int = 200_000  # groups, datasets and named datatypes
    links: int = 1_000_000
    attributes: int = 1_000_000
    attribute_items: int = 100_000  # elements of one string attribute
    attribute_bytes: int = 64 * 1024 * 1024  # one string attribute
    string_bytes: int = 256 * 1024 * 1024  # all string attributes read
    reported_bytes: int = 64 * 1024 * 1024  # the configs handed back to be checked
    sources: int = 10_000  # mappings of one virtual dataset
    events: int = 1_000
    memory_bytes: int = 1024 * 1024 * 1024  # the reader's address space
    # A dataset declaring more than this and this many times what it stores is a memory bomb
    # for the loader (the bounds Keras' and tf-keras' HDF5 loaders reject, Keras PR 22975).
    declared_bytes: int = 4 * 1024**3
    declared_ratio: int = 1000


_COPY_CHUNK: Final = 1024 * 1024
_REPORTED_NAMES: Final = 20

# The child's environment: nothing inherited (no HDF5_PLUGIN_PATH, HDF5_VDS_PREFIX, ...),
# no filter plugin loaded, one BLAS thread (numpy's pools would eat the address space).
_CHILD_ENV: Final = {
    "HDF5_PLUGIN_PRELOAD": "::",
    "HDF5_USE_FILE_LOCKING": "FALSE",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[2])
_BOOT: Final = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from proxy.scan.hdf5 import reader_main; raise SystemExit(reader_main(sys.argv[2:]))"
)

# Inventory events (child) -> finding rule and severity (parent).
_EVENT_RULES: Final = {
    "external-link": ("hdf5-external-link", Severity.HIGH),
    "user-defined-link": ("hdf5-link-unsupported", Severity.HIGH),
    "external-storage": ("hdf5-external-storage", Severity.HIGH),
    "virtual-dataset": ("hdf5-virtual-dataset", Severity.HIGH),
    "shape-bomb": ("hdf5-shape-bomb", Severity.MEDIUM),
    "unreadable": ("hdf5-unreadable", Severity.HIGH),
    "limit": ("hdf5-limit", Severity.HIGH),
}


def check(
    handle: BinaryIO,
    size: int,
    *,
    location_prefix: str = "",
    time_limit_s: float = TIME_LIMIT_S,
    caps: Caps = Caps(),
) -> list[Finding]:
    """Findings for the HDF5 file in `handle` (`size` bytes). `location_prefix` is put verbatim
    in front of every location, which names an object path (`/model_weights/dense`) or an
    attribute (`/@model_config`). Never raises."""
    try:
        inventory = _read_inventory(handle, size, time_limit_s, caps)
        findings = _user_block(handle, size, inventory.userblock, location_prefix)
    except _ReaderFailed as failed:
        return [Finding(failed.rule, Severity.HIGH, failed.message, location_prefix or None)]
    except (OSError, ValueError) as exc:
        return [
            Finding(
                "hdf5-unreadable",
                Severity.HIGH,
                f"the file could not be read for the HDF5 check: {exc}",
                location_prefix or None,
            )
        ]
    findings.extend(_judge(inventory, location_prefix))
    return findings


# --- parent: run the reader, judge its inventory --------------------------------------------


class _ReaderFailed(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class _Inventory:
    """What the reader found, validated: nothing from the child is trusted by shape."""

    def __init__(self, raw: object) -> None:
        if not isinstance(raw, dict):
            raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
        self.error = raw.get("error")
        userblock = raw.get("userblock", 0)
        events = raw.get("events", [])
        strings = raw.get("strings", [])
        if (
            not isinstance(userblock, int)
            or userblock < 0
            or not isinstance(events, list)
            or not isinstance(strings, list)
            or not (self.error is None or isinstance(self.error, str))
        ):
            raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
        self.userblock = userblock
        self.events: list[tuple[str, str, str]] = []
        for event in events:
            if not isinstance(event, dict):
                raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
            fields = (event.get("kind"), event.get("path"), event.get("detail"))
            if not all(isinstance(value, str) for value in fields):
                raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
            self.events.append((str(fields[0]), str(fields[1]), str(fields[2])))
        self.strings: list[tuple[str, str, bool, str | None, str]] = []
        for entry in strings:
            if not isinstance(entry, dict):
                raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
            where, text, error = entry.get("where"), entry.get("text"), entry.get("error")
            config = entry.get("config")
            if (
                not isinstance(where, str)
                or not isinstance(config, bool)
                or not (text is None or isinstance(text, str))
                or not isinstance(error, str)
            ):
                raise _ReaderFailed("hdf5-unreadable", "the HDF5 reader answered badly")
            self.strings.append((where, str(entry.get("name", "")), config, text, error))


def _read_inventory(handle: BinaryIO, size: int, time_limit_s: float, caps: Caps) -> _Inventory:
    timeout = max(1.0, time_limit_s)
    with _descriptor(handle, size) as fd:
        command = [
            sys.executable,
            "-I",
            "-c",
            _BOOT,
            _PACKAGE_ROOT,
            str(fd),
            str(math.ceil(timeout) + 1),
            json.dumps(dataclasses.asdict(caps)),
        ]
        try:
            done = subprocess.run(
                command,
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env=_CHILD_ENV,
                cwd="/",
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _ReaderFailed(
                "hdf5-limit",
                f"reading the HDF5 structure took longer than {timeout:g} s; "
                "the file was not cleared",
            ) from None
    handle.seek(0)
    if done.returncode < 0:
        raise _ReaderFailed(
            "hdf5-unreadable",
            f"the HDF5 reader was killed by signal {-done.returncode} while reading this file",
        )
    try:
        inventory = _Inventory(json.loads(done.stdout))
    except (ValueError, RecursionError):
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no answer"]
        raise _ReaderFailed(
            "hdf5-unreadable",
            f"the HDF5 reader failed (status {done.returncode}): {tail[0][:300]}",
        ) from None
    if inventory.error == "memory":
        raise _ReaderFailed(
            "hdf5-limit",
            f"reading the HDF5 structure needed more than {caps.memory_bytes} bytes of memory",
        )
    return inventory


@contextlib.contextmanager
def _descriptor(handle: BinaryIO, size: int) -> Iterator[int]:
    """A descriptor of a regular file holding exactly the `size` bytes of `handle`: its own
    when it has one (a spooled member goes to disk here), else a temporary copy."""
    fd: int | None = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        handle.flush()  # a spooled file rolled over to disk may still be buffering
        candidate = handle.fileno()
        status = os.fstat(candidate)
        if stat.S_ISREG(status.st_mode) and status.st_size == size:
            fd = candidate
    if fd is not None:
        yield fd
        return
    with tempfile.TemporaryFile() as copy:
        handle.seek(0)
        shutil.copyfileobj(handle, copy, _COPY_CHUNK)
        copy.flush()
        yield copy.fileno()


def _user_block(handle: BinaryIO, size: int, reported: int, prefix: str) -> list[Finding]:
    """Bytes before the superblock: HDF5 looks for it at 0, 512, 1024, 2048, ... and keeps
    what precedes it as a user block, which any other format can fill."""
    start = max(reported, _superblock_offset(handle, size))
    left = min(start, size)
    handle.seek(0)
    while left > 0:
        chunk = handle.read(min(left, _COPY_CHUNK))
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            return [
                Finding(
                    "hdf5-user-block",
                    Severity.MEDIUM,
                    f"{start} bytes in front of the HDF5 superblock hold data "
                    "(a user block can carry another format)",
                    prefix or None,
                )
            ]
        left -= len(chunk)
    return []


def _superblock_offset(handle: BinaryIO, size: int) -> int:
    offset = 0
    while offset + len(SIGNATURE) <= size:
        handle.seek(offset)
        if handle.read(len(SIGNATURE)) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return 0


def _judge(inventory: _Inventory, prefix: str) -> list[Finding]:
    findings: list[Finding] = []
    if inventory.error is not None:
        findings.append(
            Finding(
                "hdf5-unreadable",
                Severity.HIGH,
                f"HDF5 cannot read the file: {inventory.error[:300]}",
                prefix or None,
            )
        )
    for kind, path, detail in inventory.events:
        rule, severity = _EVENT_RULES.get(kind, ("hdf5-unreadable", Severity.HIGH))
        findings.append(Finding(rule, severity, detail[:500], f"{prefix}{path}"))
    for where, name, config, text, error in inventory.strings:
        location = f"{prefix}{where}"
        if text is None:
            if config:
                findings.append(
                    Finding(
                        "keras-malformed",
                        Severity.HIGH,
                        f"{name} cannot be read as a Keras config: {error}",
                        location,
                    )
                )
            continue
        if config:
            findings.extend(keras.check_config(text, location=location))
            continue
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            continue  # not JSON: nothing rebuilds objects from it
        if isinstance(parsed, dict):
            findings.extend(keras.check_config(parsed, location=location))
    return findings


# --- child: the reader -------------------------------------------------------------------------


def reader_main(argv: list[str]) -> int:
    """The reader process: `FD CPU_SECONDS CAPS_JSON`; prints the inventory as JSON."""
    fd, cpu, caps = int(argv[0]), int(argv[1]), Caps(**json.loads(argv[2]))
    _lower_limit(resource.RLIMIT_CORE, 0, 0)
    _lower_limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    result: dict[str, Any] = {}
    try:
        reader = _Reader(fd, caps, result)  # imports h5py: the memory cap is for the file
        _lower_limit(resource.RLIMIT_AS, caps.memory_bytes, caps.memory_bytes)
        reader.run()
    except MemoryError:
        result = {"error": "memory"}
    except Exception as exc:  # the parent turns it into hdf5-unreadable (fail closed)
        result["error"] = f"{type(exc).__name__}: {exc}"
    try:
        sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode())
    except MemoryError:
        sys.stdout.buffer.write(b'{"error": "memory"}')
    return 0


def _lower_limit(which: int, soft: int, hard: int) -> None:
    """Set a resource limit, never above the one inherited (a scan worker's, for one)."""
    _, inherited = resource.getrlimit(which)
    if inherited != resource.RLIM_INFINITY:
        soft, hard = min(soft, inherited), min(hard, inherited)
    resource.setrlimit(which, (soft, hard))


class _Limit(Exception):
    pass


class _Reader:
    """Walks every object reachable by hard links (each once), its links and attributes."""

    def __init__(self, fd: int, caps: Caps, result: dict[str, Any]) -> None:
        import h5py  # only in the child
        import numpy

        self.h5py: Any = h5py
        self.numpy: Any = numpy
        self.fd = fd
        self.caps = caps
        self.result = result
        self.events: list[dict[str, str]] = result.setdefault("events", [])
        self.strings: list[dict[str, object]] = result.setdefault("strings", [])
        self.objects = 0
        self.links = 0
        self.attributes = 0
        self.string_bytes = 0
        self.reported_bytes = 0

    def run(self) -> None:
        h5py = self.h5py
        with h5py.File(_PositionalReader(self.fd), "r") as handle:
            self.result["userblock"] = int(handle.userblock_size)
            with contextlib.suppress(_Limit):  # reported as an event
                self._walk(handle.id)

    def event(self, kind: str, path: str, detail: str) -> None:
        if len(self.events) >= self.caps.events:
            self.events.append({"kind": "limit", "path": path, "detail": "too many findings"})
            raise _Limit
        self.events.append({"kind": kind, "path": path, "detail": detail})

    def limit(self, path: str, detail: str) -> None:
        self.event("limit", path, detail)
        raise _Limit

    def _walk(self, file_id: Any) -> None:
        h5g, h5o, h5d = self.h5py.h5g, self.h5py.h5o, self.h5py.h5d
        root = h5g.open(file_id, b"/")
        seen = {h5o.get_info(root).addr}
        self._attributes(root, "/")
        groups: deque[tuple[Any, str]] = deque([(root, "/")])
        while groups:
            group, path = groups.popleft()
            for name, link_type, address in self._links(group, path):
                child = f"{path.rstrip('/')}/{name.decode('utf-8', 'backslashreplace')}"
                target = self._follow(group, name, link_type, address, child, seen)
                if target is None:
                    continue
                self._attributes(target, child)
                if isinstance(target, h5g.GroupID):
                    groups.append((target, child))
                elif isinstance(target, h5d.DatasetID):
                    self._dataset(target, child)

    def _links(self, group: Any, path: str) -> list[tuple[bytes, int, int]]:
        """(name, link type, address or value size) of each link; h5py reuses `info`."""
        found: list[tuple[bytes, int, int]] = []

        def collect(name: bytes, info: Any) -> bool | None:
            found.append((name, int(info.type), int(info.u)))
            self.links += 1
            return True if self.links > self.caps.links else None

        try:
            group.links.iterate(collect, info=True)
        except Exception as exc:
            self.event("unreadable", path, f"the group's links cannot be read: {exc}")
        if self.links > self.caps.links:
            self.limit(path, f"more than {self.caps.links} links")
        return found

    def _follow(
        self, group: Any, name: bytes, link_type: int, address: int, path: str, seen: set[int]
    ) -> Any | None:
        """The object behind a hard link not seen before; other links become events."""
        h5l, h5o = self.h5py.h5l, self.h5py.h5o
        if link_type == h5l.TYPE_SOFT:
            return None  # a path inside this file (see the module docstring)
        if link_type == h5l.TYPE_EXTERNAL:
            try:
                file_name, object_name = group.links.get_val(name)
                detail = (
                    f"external link to {_text(object_name)!r} in the file {_text(file_name)!r}: "
                    "following it opens another file"
                )
            except Exception as exc:
                detail = f"external link that cannot be read ({exc}): it opens another file"
            self.event("external-link", path, detail)
            return None
        if link_type != h5l.TYPE_HARD:
            self.event("user-defined-link", path, f"user-defined link of type {link_type}")
            return None
        if not name or name in (b".", b"..") or b"/" in name:
            self.event("unreadable", path, f"link name {name!r} is not a valid HDF5 name")
            return None
        if address in seen:
            return None
        seen.add(address)
        self.objects += 1
        if self.objects > self.caps.objects:
            self.limit(path, f"more than {self.caps.objects} objects")
        try:
            target = h5o.open(group, name)
            opened = h5o.get_info(target).addr
        except Exception as exc:
            self.event("unreadable", path, f"the object cannot be opened: {exc}")
            return None
        if opened != address:
            # Two links of one name: the name opens another object than the one listed.
            self.event("unreadable", path, "the link name does not lead to the linked object")
            return None
        return target

    def _dataset(self, dataset: Any, path: str) -> None:
        """External raw storage and virtual mappings, from the creation properties only."""
        h5d = self.h5py.h5d
        try:
            plist = dataset.get_create_plist()
            external = plist.get_external_count()
            if external:
                names = [
                    _text(plist.get_external(i)[0]) for i in range(min(external, _REPORTED_NAMES))
                ]
                self.event(
                    "external-storage",
                    path,
                    f"raw data stored in {external} external file(s) {names}: loading the "
                    "weights reads them",
                )
            if plist.get_layout() == h5d.VIRTUAL:
                count = plist.get_virtual_count()
                if count > self.caps.sources:
                    self.limit(path, f"virtual dataset with more than {self.caps.sources} mappings")
                files = sorted({_text(plist.get_virtual_filename(i)) for i in range(count)} - {"."})
                if files:
                    self.event(
                        "virtual-dataset",
                        path,
                        f"virtual dataset mapped from other files {files[:_REPORTED_NAMES]}: "
                        "reading it opens them",
                    )
            else:  # (a virtual dataset's extent is not asked for: that opens its sources)
                self._declared_size(dataset, path)
        except (_Limit, MemoryError):
            raise
        except Exception as exc:
            self.event("unreadable", path, f"the dataset's properties cannot be read: {exc}")

    def _declared_size(self, dataset: Any, path: str) -> None:
        """A dataset that declares far more than the file stores makes the loader allocate all
        of it: a small file that exhausts the memory of whoever loads it."""
        declared = dataset.get_space().get_select_npoints() * dataset.get_type().get_size()
        stored = dataset.get_storage_size()
        caps = self.caps
        if declared > caps.declared_bytes and declared > caps.declared_ratio * max(stored, 1):
            self.event(
                "shape-bomb",
                path,
                f"the dataset declares {declared} bytes but stores {stored}: loading it "
                "allocates the declared size",
            )

    def _attributes(self, target: Any, path: str) -> None:
        h5a = self.h5py.h5a
        try:
            count = h5a.get_num_attrs(target)
        except Exception as exc:
            self.event("unreadable", path, f"the attributes cannot be listed: {exc}")
            return
        for index in range(count):
            self.attributes += 1
            if self.attributes > self.caps.attributes:
                self.limit(path, f"more than {self.caps.attributes} attributes")
            try:
                attribute = h5a.open(target, index=index)
                name = _text(attribute.name)
            except Exception as exc:
                self.event("unreadable", path, f"attribute {index} cannot be opened: {exc}")
                continue
            where = f"{path}@{name}"
            try:
                self._attribute(attribute, name, where)
            except (_Limit, MemoryError):
                raise
            except Exception as exc:
                self.event("unreadable", where, f"the attribute cannot be read: {exc}")

    def _attribute(self, attribute: Any, name: str, where: str) -> None:
        h5t = self.h5py.h5t
        config = name in CONFIG_ATTRIBUTES
        kind = attribute.get_type()
        if kind.get_class() != h5t.STRING:
            if config:
                self._string(where, name, config, None, "it is not a string")
            return  # numbers cannot hold a config; their data is never read
        shape = attribute.shape
        if shape is None:
            if config:
                self._string(where, name, config, None, "it is empty")
            return
        items = math.prod(shape)
        caps = self.caps
        if items > caps.attribute_items:
            self.limit(where, f"string attribute with more than {caps.attribute_items} items")
        if not kind.is_variable_str() and items * kind.get_size() > caps.attribute_bytes:
            self.limit(where, f"string attribute larger than {caps.attribute_bytes} bytes")
        # As h5py's AttributeManager reads it: variable-length strings arrive as bytes.
        dtype = attribute.dtype
        values = self.numpy.zeros(shape, dtype=dtype)
        attribute.read(values, mtype=h5t.py_create(dtype))
        texts = [bytes(value) for value in values.flat]
        for text in texts:
            if len(text) > caps.attribute_bytes:
                self.limit(where, f"string attribute larger than {caps.attribute_bytes} bytes")
            self.string_bytes += len(text)
        if self.string_bytes > caps.string_bytes:
            self.limit(where, f"string attributes add up to more than {caps.string_bytes} bytes")
        if config:
            if len(texts) != 1:
                self._string(where, name, config, None, f"it holds {len(texts)} strings")
            else:
                self._decoded(where, name, config, texts[0])
            return
        for index, text in enumerate(texts):
            stripped = text.strip()
            if stripped.startswith(b"{") and b"class_name" in stripped:
                self._decoded(f"{where}[{index}]" if shape else where, name, config, stripped)

    def _decoded(self, where: str, name: str, config: bool, raw: bytes) -> None:
        try:
            self._string(where, name, config, raw.decode("utf-8-sig"), "")
        except UnicodeDecodeError:
            self._string(where, name, config, None, "it is not UTF-8")

    def _string(self, where: str, name: str, config: bool, text: str | None, error: str) -> None:
        self.reported_bytes += len(text or "")
        if self.reported_bytes > self.caps.reported_bytes:
            self.limit(where, f"configs add up to more than {self.caps.reported_bytes} bytes")
        self.strings.append(
            {"where": where, "name": name, "config": config, "text": text, "error": error}
        )


class _PositionalReader(io.RawIOBase):
    """The file behind a descriptor shared with the parent, read with pread: the parent's
    file offset (and its buffered view of the file) stays where it was."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._size = os.fstat(fd).st_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self._fd, len(view), self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
