"""The scan engine: identify a file by its content, run the checks for every reading of it, and
recurse into containers, within limits. Pure functions over files; no ML framework is imported
and nothing in the file is ever executed.

Formats this engine understands so far: safetensors, raw and stacked pickles (legacy torch),
PyTorch zip checkpoints and any zip (every member, whatever its name), NumPy .npy (object arrays
carry pickles), gzip/bz2/xz, tar and 7z wrappers, JSON configs (custom code) and Python source.
Anything else is reported as not scanned.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from proxy.policy import BLOCK_AT
from proxy.scan import (
    gguf,
    hdf5,
    keras,
    onnx,
    safetensors,
    savedmodel,
    sniff,
    templates,
    zipread,
)
from proxy.scan.allowlist import LoadContext
from proxy.scan.pickles import scan_pickle_stream
from proxy.scan.report import Finding, ScanReport, Severity

HEAD_BYTES = 64 * 1024
MAX_CONFIG_BYTES = 64 * 1024 * 1024
TAIL_BYTES = 64 * 1024 + 22
SCANNER_NAME = "airlock-engine"


@dataclass(frozen=True)
class Limits:
    """Bounds against archive bombs and runaway inputs."""

    max_depth: int = 4  # containers inside containers
    max_member_bytes: int = 32 * 1024**3  # one decompressed member
    max_total_bytes: int = 128 * 1024**3  # everything decompressed for one file
    max_members: int = 100_000
    # Wall time for one file, all its members included; checked between members.
    time_limit_s: float = 300.0


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.spent_bytes = 0
        self.deadline = time.monotonic() + limits.time_limit_s
        self.seen: set[str] = set()  # every format found, nested ones included

    def out_of_time(self, where: str) -> Finding | None:
        if time.monotonic() <= self.deadline:
            return None
        return Finding(
            "scan-time-limit",
            Severity.HIGH,
            f"scanning took longer than {self.limits.time_limit_s:g} s; the rest was not scanned",
            where or None,
        )

    def spend(self, size: int, where: str) -> Finding | None:
        self.spent_bytes += size
        if self.spent_bytes > self.limits.max_total_bytes:
            return Finding(
                "archive-bomb",
                Severity.HIGH,
                f"more than {self.limits.max_total_bytes} bytes once decompressed",
                where,
            )
        return None


def scan_path(path: Path, *, name: str | None = None, limits: Limits | None = None) -> ScanReport:
    """Scan one file. `name` is the file's name in its repo (for name/content mismatches)."""
    started = time.perf_counter()
    budget = _Budget(limits or Limits())
    with path.open("rb") as handle:
        size = path.stat().st_size
        kinds, findings = _scan(handle, size, name or path.name, "", 0, budget)
    fmt = kinds[0]  # the most specific reading
    return ScanReport(
        fmt,
        SCANNER_NAME,
        tuple(findings),
        round((time.perf_counter() - started) * 1000, 3),
        tuple(sorted(budget.seen)),
    )


def _read_edges(handle: BinaryIO, size: int) -> tuple[bytes, bytes]:
    handle.seek(0)
    head = handle.read(HEAD_BYTES)
    handle.seek(max(0, size - TAIL_BYTES))
    tail = handle.read(TAIL_BYTES)
    handle.seek(0)
    return head, tail


def _scan(
    handle: BinaryIO, size: int, name: str, where: str, depth: int, budget: _Budget
) -> tuple[tuple[sniff.Kind, ...], list[Finding]]:
    if size == 0:
        return (sniff.Kind.UNKNOWN,), []  # nothing in it can run, whatever its name
    head, tail = _read_edges(handle, size)
    kinds = sniff.sniff(head, size=size, tail=tail)
    budget.seen.update(k.value for k in kinds)
    findings: list[Finding] = []
    mismatch = sniff.name_mismatch(name, kinds, head=head, size=size)
    if mismatch is not None:
        findings.append(_at(mismatch, where))
    late = budget.out_of_time(where)
    if late is not None:
        return kinds, [*findings, late]
    if depth > budget.limits.max_depth:
        findings.append(
            Finding("archive-depth", Severity.HIGH, "containers nested too deeply", where or None)
        )
        return kinds, findings
    for kind in kinds:
        handle.seek(0)
        findings.extend(_scan_kind(kind, handle, size, name, where, depth, budget, kinds))
    handle.seek(0)  # keras_metadata.pb, saved_model.pbtxt: SavedModel files known by name
    findings.extend(savedmodel.check_named(handle, size, name, location_prefix=_prefix(where)))
    return kinds, findings


def _scan_kind(
    kind: sniff.Kind,
    handle: BinaryIO,
    size: int,
    name: str,
    where: str,
    depth: int,
    budget: _Budget,
    kinds: tuple[sniff.Kind, ...],
) -> list[Finding]:
    if kind is sniff.Kind.SAFETENSORS:
        return _scan_safetensors(handle, size, where)
    if kind is sniff.Kind.PICKLE:
        # A pickle in front of a zip is what torch.load would unpickle (polyglot).
        return _scan_pickles(
            handle, TORCH_LOAD if sniff.Kind.ZIP in kinds else _loaders(name), where
        )
    if kind is sniff.Kind.ZIP:
        return _scan_zip(handle, size, where, depth, budget)
    if kind is sniff.Kind.NUMPY:
        return _scan_npy(handle, where, budget)
    if kind in (sniff.Kind.GZIP, sniff.Kind.BZIP2, sniff.Kind.XZ, sniff.Kind.ZLIB, sniff.Kind.LZMA):
        return _scan_compressed(kind, handle, name, where, depth, budget)
    if kind is sniff.Kind.TAR:
        return _scan_tar(handle, where, depth, budget)
    if kind is sniff.Kind.JSON:
        return _scan_json(handle, size, where)
    if kind is sniff.Kind.ONNX:
        return onnx.check(handle, size, location_prefix=_prefix(where))
    if kind is sniff.Kind.GGUF:
        return gguf.check(handle, size, location_prefix=_prefix(where))
    if kind is sniff.Kind.GGML:
        return []  # hyperparameters, vocabulary and tensors: nothing a loader executes
    if kind is sniff.Kind.PROTOBUF_SAVEDMODEL:
        return savedmodel.check(handle, size, location_prefix=_prefix(where))
    if kind is sniff.Kind.HDF5:  # Keras 2 .h5 models, the weights inside .keras archives
        remaining = max(0.0, budget.deadline - time.monotonic())
        return hdf5.check(
            handle,
            size,
            location_prefix=_prefix(where),
            time_limit_s=min(hdf5.TIME_LIMIT_S, remaining),
        )
    if kind is sniff.Kind.PYTHON_SOURCE:
        return [
            Finding(
                "custom-code",
                Severity.HIGH,
                "Python source: code a loader may import with trust_remote_code",
                where or None,
            )
        ]
    if kind is sniff.Kind.SEVEN_ZIP:
        # nullifAI shipped a 7z-compressed PyTorch archive
        return _scan_7z(handle, size, where, depth, budget)
    if kind is sniff.Kind.ZSTD:
        # A container Airlock cannot open may hold anything: fail closed.
        return [
            Finding(
                "archive-not-scanned",
                Severity.HIGH,
                f"{kind.value} archives cannot be opened by this engine, so their content "
                "was not scanned",
                where or None,
            )
        ]
    if kind is sniff.Kind.TEXT or depth > 0:
        return []  # raw bytes inside a container (tensor storage) are expected
    return [
        Finding(
            "format-not-scanned",
            Severity.INFO,
            f"{kind.value} content is not inspected by this engine yet",
            where or None,
        )
    ]


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _at(finding: Finding, where: str) -> Finding:
    if not where:
        return finding
    location = f"{where}: {finding.location}" if finding.location else where
    return Finding(finding.rule, finding.severity, finding.message, location)


def _scan_safetensors(handle: BinaryIO, size: int, where: str) -> list[Finding]:
    length = safetensors.header_length(handle.read(safetensors.PREFIX_BYTES + 1))
    if length is None:
        return [
            Finding("safetensors-header-bounds", Severity.HIGH, "bad header length", where or None)
        ]
    handle.seek(safetensors.PREFIX_BYTES)
    header = handle.read(length)
    return [_at(f, where) for f in safetensors.check_header(header, size)]


def _scan_pickles(handle: BinaryIO, contexts: tuple[LoadContext, ...], where: str) -> list[Finding]:
    """Scan every pickle in the stream under each loading context its loader may mean, and
    keep the reading with the fewest blocking findings: a file is allowed only if it is benign
    for one real loader, never with names mixed from several."""
    start = handle.tell()
    best: list[Finding] | None = None
    for context in contexts:
        handle.seek(start)
        results = scan_pickle_stream(handle, context=context, location_prefix=where)
        findings = [finding for result in results for finding in result.findings]
        if best is None or _blocking(findings) < _blocking(best):
            best = findings
        if not _blocking(best):
            break
    assert best is not None
    return best


# What torch.load unpickles (data.pkl, legacy files, a pickle in front of a zip) holds weights or
# the metadata Trainer saves with it (rng states, training arguments).
TORCH_LOAD = (LoadContext.TORCH, LoadContext.GENERIC)
# A bare pickle file: its loader is unknown.
ANY_LOADER = (LoadContext.GENERIC, LoadContext.TORCH, LoadContext.JOBLIB, LoadContext.NUMPY)


def _loaders(name: str) -> tuple[LoadContext, ...]:
    """The loaders a bare pickle may be meant for. A name can only narrow them (a stricter
    reading), never widen them: a `.joblib` file is judged as joblib.load reads it."""
    if name.lower().endswith(".joblib"):
        return (LoadContext.JOBLIB,)
    return ANY_LOADER


def _blocking(findings: list[Finding]) -> int:
    return sum(1 for f in findings if f.severity >= BLOCK_AT)


def _scan_zip(
    handle: BinaryIO, size: int, where: str, depth: int, budget: _Budget
) -> list[Finding]:
    listing = zipread.read_listing(
        handle, size, location_prefix=where, max_members=budget.limits.max_members
    )
    findings = list(listing.findings)
    if keras.check_archive_members([member.name for member in listing.members]):
        findings.extend(_scan_keras_config(handle, listing, where, budget))
    for member in listing.members:
        member_where = f"{where}/{member.name}" if where else member.name
        late = budget.out_of_time(member_where)
        if late is not None:
            return [*findings, late]
        if member.is_symlink or member.method not in (0, 8):
            continue  # reported by the listing; never followed or inflated
        bomb = budget.spend(member.uncompressed_size, member_where)
        if bomb is not None:
            return [*findings, bomb]
        try:
            with _spooled(
                zipread.open_member(handle, member, max_bytes=budget.limits.max_member_bytes)
            ) as (spool, spool_size):
                # torch.load unpickles `<archive>/data.pkl`; every other member is sniffed too.
                is_data_pkl = member.name == "data.pkl" or member.name.endswith("/data.pkl")
                if is_data_pkl:
                    budget.seen.add(sniff.Kind.PICKLE.value)
                    spool.seek(0)
                    findings.extend(_scan_pickles(spool, TORCH_LOAD, member_where))
                    continue
                _, inner = _scan(spool, spool_size, member.name, member_where, depth + 1, budget)
                findings.extend(inner)
        except zipread.ZipBomb as exc:
            findings.append(Finding("archive-bomb", Severity.HIGH, str(exc), member_where))
        except (OSError, ValueError, EOFError) as exc:
            findings.append(
                Finding(
                    "zip-malformed", Severity.HIGH, f"member cannot be read: {exc}", member_where
                )
            )
    return findings


def _scan_7z(handle: BinaryIO, size: int, where: str, depth: int, budget: _Budget) -> list[Finding]:
    # py7zr takes ~0.1 s to import: only files that are 7z archives pay for it
    from proxy.scan import sevenzip

    def scan_member(
        name: str, spool: BinaryIO, spool_size: int, member_where: str
    ) -> list[Finding]:
        _, inner = _scan(spool, spool_size, name, member_where, depth + 1, budget)
        return inner

    return sevenzip.check(
        handle,
        size,
        where=where,
        budget=budget,
        max_members=budget.limits.max_members,
        max_member_bytes=budget.limits.max_member_bytes,
        scan_member=scan_member,
    )


def _scan_keras_config(
    handle: BinaryIO, listing: zipread.ZipListing, where: str, budget: _Budget
) -> list[Finding]:
    """A Keras v3 archive: its config.json decides which classes and functions load runs."""
    member = next((m for m in listing.members if m.name == "config.json"), None)
    config_where = f"{where}/config.json" if where else "config.json"
    if member is None or member.uncompressed_size > MAX_CONFIG_BYTES:
        return [Finding("keras-malformed", Severity.HIGH, "no readable config.json", config_where)]
    try:
        data = zipread.open_member(handle, member, max_bytes=MAX_CONFIG_BYTES).read()
    except ValueError as exc:
        return [Finding("keras-malformed", Severity.HIGH, str(exc), config_where)]
    return keras.check_config(data, location=config_where)


@contextlib.contextmanager
def _spooled(stream: BinaryIO) -> Iterator[tuple[BinaryIO, int]]:
    """A seekable copy of a member stream (in memory while small, on disk beyond)."""
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        shutil.copyfileobj(stream, spool, 1024 * 1024)
        spool_size = spool.tell()
        spool.seek(0)
        yield spool, spool_size  # type: ignore[misc]


def _scan_npy(handle: BinaryIO, where: str, budget: _Budget) -> list[Finding]:
    """A .npy header names its dtype; an object dtype means the data is a pickle."""
    magic = handle.read(8)
    if magic[:6] != b"\x93NUMPY":
        return [Finding("npy-malformed", Severity.HIGH, "bad .npy magic", where or None)]
    major = magic[6]
    length_bytes = 2 if major == 1 else 4
    header_len = int.from_bytes(handle.read(length_bytes), "little")
    if header_len > 1_000_000:
        return [Finding("npy-malformed", Severity.HIGH, "oversized .npy header", where or None)]
    header = handle.read(header_len).decode("latin-1", "replace")
    if "'descr': '|O'" in header or "'O'" in header or "object" in header:
        budget.seen.add(sniff.Kind.PICKLE.value)
        return _scan_pickles(handle, (LoadContext.NUMPY,), where)
    return []


def _scan_compressed(
    kind: sniff.Kind, handle: BinaryIO, name: str, where: str, depth: int, budget: _Budget
) -> list[Finding]:
    inner_where = f"{where}/{kind.value}" if where else kind.value
    try:
        with (
            _decompressed(kind, handle) as stream,
            _bounded_spool(stream, budget, inner_where) as (spool, spool_size),
        ):
            # `w.pkl.gz` holds `w.pkl`; a joblib file keeps its name around its own compression.
            stem, _, suffix = name.rpartition(".")
            inner_name = stem if stem and f".{suffix.lower()}" in _WRAPPER_SUFFIXES else name
            _, findings = _scan(spool, spool_size, inner_name, inner_where, depth + 1, budget)
            return findings
    except _TooBig as exc:
        return [exc.finding]
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        return [
            Finding("archive-malformed", Severity.HIGH, f"cannot decompress: {exc}", inner_where)
        ]


_WRAPPER_SUFFIXES = frozenset({".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".zlib"})


def _decompressed(
    kind: sniff.Kind, handle: BinaryIO
) -> contextlib.AbstractContextManager[_Readable]:
    if kind is sniff.Kind.GZIP:
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if kind is sniff.Kind.BZIP2:
        return bz2.BZ2File(handle, "rb")
    if kind is sniff.Kind.XZ:
        return lzma.LZMAFile(handle, "rb")
    if kind is sniff.Kind.LZMA:
        return lzma.LZMAFile(handle, "rb", format=lzma.FORMAT_ALONE)
    return contextlib.nullcontext(_ZlibStream(handle))


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _ZlibStream:
    """A bare zlib stream (joblib's compressed pickles), inflated in bounded steps."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._inflate = zlib.decompressobj()
        self._pending = b""

    def read(self, size: int = -1, /) -> bytes:
        want = size if size > 0 else 1 << 20
        while True:
            if self._pending:
                out = self._inflate.decompress(self._pending, want)
                self._pending = self._inflate.unconsumed_tail
                if out:
                    return out
            if self._inflate.eof:
                return b""
            chunk = self._source.read(1 << 16)
            if not chunk:
                return self._inflate.flush()
            self._pending = chunk


class _TooBig(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@contextlib.contextmanager
def _bounded_spool(
    stream: _Readable, budget: _Budget, where: str
) -> Iterator[tuple[BinaryIO, int]]:
    limit = budget.limits.max_member_bytes
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        total = 0
        while chunk := stream.read(1024 * 1024):
            total += len(chunk)
            if total > limit:
                raise _TooBig(
                    Finding(
                        "archive-bomb", Severity.HIGH, f"decompresses beyond {limit} bytes", where
                    )
                )
            spool.write(chunk)
        bomb = budget.spend(total, where)
        if bomb is not None:
            raise _TooBig(bomb)
        spool.seek(0)
        yield spool, total  # type: ignore[misc]


def _scan_tar(handle: BinaryIO, where: str, depth: int, budget: _Budget) -> list[Finding]:
    findings: list[Finding] = []
    try:
        with tarfile.open(fileobj=handle, mode="r:") as archive:
            for count, info in enumerate(archive):
                member_where = f"{where}/{info.name}" if where else info.name
                late = budget.out_of_time(member_where)
                if late is not None:
                    findings.append(late)
                    break
                if count >= budget.limits.max_members:
                    findings.append(
                        Finding("archive-bomb", Severity.HIGH, "too many members", member_where)
                    )
                    break
                if info.issym() or info.islnk():
                    findings.append(
                        Finding("tar-link", Severity.HIGH, "archive member is a link", member_where)
                    )
                    continue
                parts = info.name.replace("\\", "/").split("/")
                if info.name.startswith("/") or ".." in parts:
                    findings.append(
                        Finding(
                            "tar-path-traversal",
                            Severity.HIGH,
                            "member path leaves the archive",
                            member_where,
                        )
                    )
                if not info.isfile():
                    continue
                extracted = archive.extractfile(info)
                if extracted is None:
                    continue
                try:
                    with _bounded_spool(extracted, budget, member_where) as (spool, spool_size):
                        _, inner = _scan(
                            spool, spool_size, info.name, member_where, depth + 1, budget
                        )
                        findings.extend(inner)
                except _TooBig as exc:
                    findings.append(exc.finding)
                    break
    except tarfile.TarError as exc:
        findings.append(
            Finding("archive-malformed", Severity.HIGH, f"bad tar: {exc}", where or None)
        )
    return findings


def _scan_json(handle: BinaryIO, size: int, where: str) -> list[Finding]:
    """Configs that make transformers import repository code (`auto_map`, trust_remote_code)
    and chat templates (`tokenizer_config.json`), which non-sandboxed renderers execute."""
    if size > MAX_CONFIG_BYTES:
        return []
    try:
        parsed = json.loads(handle.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return []
    if not isinstance(parsed, dict):
        return []
    findings: list[Finding] = []
    auto_map = parsed.get("auto_map")
    if isinstance(auto_map, dict) and auto_map:
        targets = ", ".join(sorted({str(v) for v in auto_map.values()}))[:300]
        findings.append(
            Finding(
                "custom-code",
                Severity.HIGH,
                f"auto_map makes transformers import repository code: {targets}",
                where or None,
            )
        )
    for name, source in _chat_templates(parsed.get("chat_template")):
        findings.extend(
            templates.check_template(source, location=f"{_prefix(where)}chat_template{name}")
        )
    return findings


def _chat_templates(value: object) -> list[tuple[str, str]]:
    """A chat template is one string, or a list of {"name", "template"} entries."""
    if isinstance(value, str):
        return [("", value)]
    if isinstance(value, list):
        return [
            (f".{entry.get('name')}", entry["template"])
            for entry in value
            if isinstance(entry, dict) and isinstance(entry.get("template"), str)
        ]
    return []
