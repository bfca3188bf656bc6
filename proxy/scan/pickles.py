"""Static analysis of pickle streams: a symbolic pickle machine that never imports or calls.

The machine follows the opcode stream the way CPython's unpickler does (stack, marks, memo with
overwrites, framing, protocol changes) but pushes *symbolic* values: constants, containers,
``_Global`` references and ``_Call`` results. Every global is checked against the default-deny
allowlist of the loading context (proxy.scan.allowlist), and every call site (REDUCE, INST, OBJ,
NEWOBJ, NEWOBJ_EX, BUILD, EXT*) is checked as a call of the value it calls (threats.md 4.3).

Reading is incremental and bounded: opcodes are decoded from a small buffer, large binary
arguments (BINBYTES8 of gigabytes) are skipped with ``seek`` and never read, long text lines are
consumed without being kept, and the opcode count is capped. Input that the real unpickler would
refuse ends the analysis with a ``pickle-malformed`` finding, keeping everything found before it
(nullifAI: a truncated pickle has already run its payload when the error is raised).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import io
import pickletools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Final

from proxy.scan.allowlist import (
    ARGUMENT_ROLES,
    LoadContext,
    Use,
    canonical,
    dangerous_reason,
    uses,
)
from proxy.scan.report import Finding, Severity

__all__ = ["LoadContext", "PickleScan", "looks_like_pickle", "scan_pickle", "scan_pickle_stream"]

_CHUNK: Final = 64 * 1024
_KEEP_BYTES: Final = 64 * 1024  # a bytes/str argument up to this size is kept for analysis
_ALWAYS_KEEP: Final = 512  # short values are kept even when the retention budget is spent
_RETAIN_BUDGET: Final = 64 * 1024 * 1024  # bytes kept in memory per source, in all
_NAME_MAX: Final = 4096  # a GLOBAL/INST line longer than this cannot name a module
_CONTAINER_KEEP: Final = 100_000  # items kept per container (the rest were checked when pushed)
_HEAD: Final = 64  # bytes used to sniff an embedded pickle
_MAX_DEPTH: Final = 3  # embedded pickles are scanned this deep
_EMBED_MIN: Final = 8  # len(b"ca\nb\n)R."): nothing shorter imports and calls
_MAX_FINDINGS: Final = 200  # per pickle; the rest are counted in one summary finding
_HIGHEST_PROTOCOL: Final = 5

_BASE64 = re.compile(rb"[A-Za-z0-9+/\r\n]+={0,2}")
_DTYPE_CODE = re.compile(r"([biufcmMOSUV])(\d+)")


@dataclass(frozen=True)
class PickleScan:
    """What one pickle contains. ``complete`` is True only when STOP was reached cleanly."""

    findings: tuple[Finding, ...]
    globals: tuple[tuple[str, str], ...]  # distinct (module, qualname), in order of reference
    end_offset: int  # just after STOP, or where the analysis stopped
    complete: bool


# --------------------------------------------------------------------------------------------
# Symbolic values. Constants are plain Python values (str, bytes, int, float, bool, None) and
# tuples of values; everything else is one of these.


@dataclass(eq=False, slots=True)
class _Global:
    module: str
    qualname: str
    offset: int

    @property
    def name(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass(eq=False, slots=True)
class _Call:
    func: object
    args: object
    op: str
    offset: int
    state: object = None  # set by BUILD


@dataclass(eq=False, slots=True)
class _Opaque:
    what: str
    reported: bool = False  # a finding already covers calls of this value


@dataclass(eq=False, slots=True)
class _Blob:
    """A bytes/str argument too large to keep; its head is kept for sniffing."""

    kind: str  # "bytes" or "str"
    offset: int  # absolute stream position of the data
    length: int
    head: bytes


@dataclass(eq=False, slots=True)
class _List:
    items: list[object] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Dict:
    items: list[tuple[object, object]] = field(default_factory=list)

    def get(self, key: str) -> object:
        for k, v in self.items:
            if k == key:
                return v
        return _MISSING


@dataclass(eq=False, slots=True)
class _Set:
    frozen: bool
    items: list[object] = field(default_factory=list)


_MISSING: Final = _Opaque("missing")


def _describe(value: object) -> str:
    """A short, safe description (no repr of nested or huge values)."""
    if isinstance(value, _Global):
        return value.name
    if isinstance(value, _Call):
        return f"the result of {value.op} at byte {value.offset}"
    if isinstance(value, _Opaque):
        return value.what
    if isinstance(value, _Blob):
        return f"a {value.length}-byte {value.kind}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} items"
    if isinstance(value, _List | _Dict | _Set):
        return f"a {type(value).__name__.strip('_').lower()}"
    if isinstance(value, str | bytes):
        text = repr(value[:60])
        return text if len(value) <= 60 else text + "..."
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        return "an integer" if value.bit_length() > 64 else repr(value)
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Errors inside the machine.


class _Truncated(Exception):
    """The data ended inside an opcode."""


class _Broken(Exception):
    """Input that the real unpickler refuses: loading stops here."""


class _OutOfBudget(Exception):
    """The opcode budget is spent."""


# --------------------------------------------------------------------------------------------
# Bounded, position-tracking reads.


class _Source:
    """Reads a binary stream through a small buffer. Positions are absolute stream offsets for
    seekable streams, and counted from the first byte read otherwise.

    The size of the stream is never asked for (seeking to the end of a decompressing stream
    decompresses all of it): a long skip probes its last byte instead. ``length`` bounds a
    window (an embedded pickle inside a larger argument)."""

    def __init__(self, raw: BinaryIO, *, start: int | None = None, length: int | None = None):
        self.raw = raw
        try:
            self.seekable = bool(raw.seekable())
        except (AttributeError, OSError, ValueError):
            self.seekable = False
        origin = 0
        if self.seekable:
            origin = raw.tell() if start is None else start
        self.end: int | None = None if length is None else origin + length
        self.origin = origin
        self.buf = b""
        self.buf_pos = origin
        self.i = 0
        self.retained = 0

    @property
    def pos(self) -> int:
        return self.buf_pos + self.i

    def _more(self, want: int) -> bool:
        """Buffer at least one more byte (up to ``want`` or a chunk); False at the end."""
        read_at = self.buf_pos + len(self.buf)
        limit = max(want, _CHUNK)
        if self.end is not None:
            limit = min(limit, self.end - read_at)
            if limit <= 0:
                return False
        if self.seekable and self.raw.tell() != read_at:
            self.raw.seek(read_at)
        chunk = self.raw.read(limit)
        if not chunk:
            return False
        if self.i:
            self.buf = self.buf[self.i :] + chunk
            self.buf_pos += self.i
            self.i = 0
        else:
            self.buf += chunk
        return True

    def _exists(self, offset: int) -> bool:
        """Whether the byte at ``offset`` exists (seekable streams), without reading up to it."""
        try:
            self.raw.seek(offset)
            return len(self.raw.read(1)) == 1
        except (OSError, OverflowError, ValueError):
            return False

    def available(self, n: int) -> bool:
        """Whether ``n`` more bytes exist (True when that cannot be known cheaply)."""
        if n <= len(self.buf) - self.i:
            return True
        if self.end is not None and self.pos + n > self.end:
            return False
        if n <= _CHUNK:
            return len(self.peek(n)) == n
        return self._exists(self.pos + n - 1) if self.seekable else True

    def clamped_pos(self) -> int:
        """The position, never past the end of a window. (A skip checks that its target exists
        before moving there, so the position never passes the end of the data.)"""
        return self.pos if self.end is None else min(self.pos, self.end)

    def read_byte(self) -> int:
        if self.i >= len(self.buf) and not self._more(1):
            raise _Truncated
        value = self.buf[self.i]
        self.i += 1
        return value

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.i < n:
            if not self._more(n - (len(self.buf) - self.i)):
                raise _Truncated
        data = self.buf[self.i : self.i + n]
        self.i += n
        return data

    def at_end(self) -> bool:
        return self.i >= len(self.buf) and not self._more(1)

    def peek(self, n: int) -> bytes:
        while len(self.buf) - self.i < n and self._more(n):
            pass
        return self.buf[self.i : self.i + n]

    def readline(self, keep: int) -> bytes | None:
        """The next line without its newline; None when it is longer than ``keep`` (it is then
        consumed without being kept). Raises _Truncated when the data ends before a newline."""
        searched = 0  # relative to self.i
        dropping = False
        while True:
            found = self.buf.find(b"\n", self.i + searched)
            if found >= 0:
                line = None if dropping else self.buf[self.i : found]
                if line is not None and len(line) > keep:
                    line = None
                self.i = found + 1
                return line
            searched = len(self.buf) - self.i
            if searched > keep:
                dropping = True
                self.buf_pos += len(self.buf)
                self.buf = b""
                self.i = 0
                searched = 0
            if not self._more(_CHUNK):
                raise _Truncated

    def skip(self, n: int) -> None:
        available = len(self.buf) - self.i
        if n <= available:
            self.i += n
            return
        target = self.pos + n
        self.buf_pos += len(self.buf)
        self.buf = b""
        self.i = 0
        if self.end is not None and target > self.end:
            self.buf_pos = self.end
            raise _Truncated
        if self.seekable:
            if not self._exists(target - 1):
                raise _Truncated
            self.buf_pos = target
            return
        remaining = target - self.buf_pos
        while remaining > 0:
            chunk = self.raw.read(min(remaining, 1 << 20))
            if not chunk:
                raise _Truncated
            self.buf_pos += len(chunk)
            remaining -= len(chunk)

    def take(self, n: int, kind: str) -> bytes | _Blob:
        """An n-byte argument: kept when small (and within the budget), else skipped."""
        if n <= _ALWAYS_KEEP or (n <= _KEEP_BYTES and self.retained + n <= _RETAIN_BUDGET):
            data = self.read(n)
            self.retained += n
            return data
        offset = self.pos
        head = self.read(_HEAD)
        self.skip(n - _HEAD)
        return _Blob(kind, offset, n, head)

    def rewind(self, pos: int) -> None:
        """Go back to an earlier position (seekable streams only)."""
        if self.seekable:
            self.buf_pos, self.buf, self.i = pos, b"", 0

    def release(self) -> None:
        """Leave the underlying stream just after what was consumed."""
        if self.seekable:
            self.raw.seek(self.clamped_pos())


# --------------------------------------------------------------------------------------------
# Findings of one scan.


@dataclass(slots=True)
class _Entry:
    """A global that is not allowed or is known to be dangerous, reported once."""

    module: str
    qualname: str
    location: str
    allowed: bool
    danger: str | None
    call: tuple[str, str] | None = None  # (opcode, location) of the first call


class _Report:
    def __init__(self, context: LoadContext, prefix: str, delta: int, budget: list[int]):
        self.context = context
        # "archive/data.pkl" -> "archive/data.pkl: byte 12"; a prefix ending in ": " is kept.
        self.prefix = prefix if not prefix or prefix.endswith((" ", ":")) else f"{prefix}: "
        self.delta = delta  # location offset = stream position + delta
        self.budget = budget  # [opcodes left], shared with nested scans
        self.items: list[Finding | _Entry] = []
        self.entries: dict[tuple[str, str], _Entry] = {}
        self.globals: dict[tuple[str, str], None] = {}
        self.suppressed = 0

    def where(self, pos: int) -> str:
        return f"{self.prefix}byte {pos + self.delta}"

    def add(self, rule: str, severity: Severity, message: str, pos: int) -> None:
        if len(self.items) >= _MAX_FINDINGS:
            self.suppressed += 1
            return
        self.items.append(Finding(rule, severity, message, self.where(pos)))

    def extend(self, findings: tuple[Finding, ...]) -> None:
        for finding in findings:
            if len(self.items) >= _MAX_FINDINGS:
                self.suppressed += 1
            else:
                self.items.append(finding)

    def reference(self, module: str, qualname: str, allowed: bool, pos: int) -> None:
        pair = (module, qualname)
        if pair not in self.globals:
            self.globals[pair] = None
        danger = dangerous_reason(module, qualname)
        if (allowed and danger is None) or pair in self.entries:
            return
        entry = _Entry(module, qualname, self.where(pos), allowed, danger)
        self.entries[pair] = entry
        if len(self.items) >= _MAX_FINDINGS:
            self.suppressed += 1
        else:
            self.items.append(entry)

    def called(self, module: str, qualname: str, op: str, pos: int) -> None:
        entry = self.entries.get((module, qualname))
        if entry is not None and entry.call is None:
            entry.call = (op, self.where(pos))

    def findings(self) -> tuple[Finding, ...]:
        out: list[Finding] = []
        for item in self.items:
            if isinstance(item, Finding):
                out.append(item)
                continue
            name = f"{item.module}.{item.qualname}"
            if "." in item.qualname:
                name += f" (module {item.module!r}, attribute walk {item.qualname!r})"
            if item.call is not None:
                how = f"called via {item.call[0]} at {item.call[1]} (referenced at {item.location})"
                location = item.call[1]
            else:
                how = f"referenced at {item.location}, not called"
                location = item.location
            if not item.allowed:
                out.append(
                    Finding(
                        "pickle-global-not-allowed",
                        Severity.CRITICAL,
                        f"global {name} is not on the {self.context} allowlist; {how}",
                        location,
                    )
                )
            if item.danger is not None:
                out.append(
                    Finding(
                        "pickle-dangerous-call",
                        Severity.CRITICAL,
                        f"global {name} {item.danger}; {how}",
                        location,
                    )
                )
        if self.suppressed:
            out.append(
                Finding(
                    "pickle-findings-truncated",
                    Severity.INFO,
                    f"{self.suppressed} more findings were not listed",
                    None,
                )
            )
        return tuple(out)


# --------------------------------------------------------------------------------------------
# The machine.


def _is_dotted_identifier(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


class _Machine:
    """Runs one pickle symbolically. ``sniff`` mode checks structure only (no reporting)."""

    def __init__(
        self,
        src: _Source,
        report: _Report,
        *,
        depth: int = 0,
        sniff: bool = False,
        joblib_arrays: bool = False,
    ) -> None:
        self.src = src
        # joblib's NumpyUnpickler reads array data after each NumpyArrayWrapper BUILD; the
        # plain unpickler of a nested object-array pickle (or of anything else) does not.
        self.joblib_arrays = joblib_arrays and not sniff
        self.report = report
        self.context = report.context
        self.depth = depth
        self.sniff = sniff
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.proto = 0
        self.ops = 0
        self.calls = 0  # call sites passed so far
        self.activity = 0  # globals, calls, extension codes, persistent ids
        self.done = False
        self.frame_end: int | None = None
        self.op_pos = 0
        self.unsure = False  # stopped where the real unpickler might have gone on
        self.in_op = False  # a valid opcode byte was read; its argument or effect is pending

    # ---- driving ----------------------------------------------------------------------------

    def run(self) -> None:
        """Run until STOP. Raises _Truncated, _Broken or _OutOfBudget."""
        src = self.src
        table = _TABLE
        budget = self.report.budget
        while not self.done:
            if budget[0] <= 0:
                raise _OutOfBudget
            budget[0] -= 1
            self.ops += 1
            self.op_pos = pos = src.pos
            if self.frame_end is not None and pos >= self.frame_end:
                if pos > self.frame_end and not self.sniff:
                    self.note_malformed("an opcode runs past the end of its FRAME", pos)
                self.frame_end = None
            code = src.read_byte()
            spec = table[code]
            if spec is None:
                raise _Broken(f"invalid opcode 0x{code:02x}")
            self.in_op = True
            spec[2](self, spec[1](src))
            self.in_op = False

    def inert(self) -> bool:
        """Whether this pickle failed in a way the unpickler certainly shares, before anything
        that could run: no global, call site, extension code or persistent id."""
        return not self.done and not self.unsure and self.activity == 0

    def note_malformed(self, message: str, pos: int) -> None:
        """A structural oddity that the real unpickler tolerates: reported, loading goes on."""
        if not self.sniff:
            self.report.add("pickle-malformed", self.error_severity(), message, pos)

    def error_severity(self) -> Severity:
        return Severity.CRITICAL if self.calls else Severity.HIGH

    # ---- stack helpers ----------------------------------------------------------------------

    def pop(self) -> object:
        if not self.stack:
            raise _Broken("stack underflow")
        return self.stack.pop()

    def top(self) -> object:
        if not self.stack:
            raise _Broken("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise _Broken("could not find MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # ---- reporting helpers ------------------------------------------------------------------

    def resolve(self, module: str, qualname: str, how: str) -> _Global:
        """A GLOBAL / INST / STACK_GLOBAL reference, resolved as find_class would."""
        if self.proto < 3:
            # The unpickler maps Python 2 names only for protocols 0-2 (fix_imports).
            module, qualname = canonical(module, qualname)
        value = _Global(module, qualname, self.op_pos)
        if not self.sniff:
            allowed = bool(uses(module, qualname, self.context))
            self.report.reference(module, qualname, allowed, self.op_pos)
        if not (_is_dotted_identifier(module) and _is_dotted_identifier(qualname)):
            # No module or attribute of that name can exist: the import fails right here.
            raise _Broken(f"{how} names {module!r} {qualname!r}, which cannot be imported")
        self.activity += 1
        return value

    def check_use(self, target: object, use: Use, op: str) -> None:
        """``target`` is called (CALL) or instantiated (CONSTRUCT) by ``op``."""
        if self.sniff:
            return
        pos = self.op_pos
        report = self.report
        if isinstance(target, _Global):
            allowed = uses(target.module, target.qualname, self.context)
            report.called(target.module, target.qualname, op, pos)
            if not allowed:
                return  # already reported as not allowed; now marked as called
            if use not in allowed:
                permitted = ", ".join(sorted(allowed)) or "nothing"
                report.add(
                    "pickle-call-not-allowed",
                    Severity.CRITICAL,
                    f"{target.name} may be used only for: {permitted} in {self.context} "
                    f"pickles, but {op} uses it for: {use}",
                    pos,
                )
            return
        if isinstance(target, _Opaque) and target.reported:
            return
        report.add(
            "pickle-indirect-call",
            Severity.CRITICAL,
            f"{op} calls {_describe(target)}, which is not a resolved global",
            pos,
        )

    def call_site(self, func: object, args: object, op: str, use: Use) -> _Call:
        self.calls += 1
        self.activity += 1
        self.check_use(func, use, op)
        if isinstance(func, _Global) and isinstance(args, tuple):
            roles = ARGUMENT_ROLES.get((func.module, func.qualname))
            if roles:
                for index, role in roles.items():
                    if index < len(args) and isinstance(args[index], _Global | _Call | _Opaque):
                        self.check_use(args[index], role, f"{op} of {func.name} (argument {index})")
        return _Call(func, args, op, self.op_pos)

    def mutate(self, target: object, op: str, items: list[object]) -> None:
        """APPEND(S) / SETITEM(S) / ADDITEMS on ``target``."""
        if isinstance(target, _List):
            if op.startswith("APPEND"):
                room = _CONTAINER_KEEP - len(target.items)
                target.items.extend(items[: max(room, 0)])
            return
        if isinstance(target, _Dict):
            if op.startswith("SETITEM"):
                room = _CONTAINER_KEEP - len(target.items)
                pairs = list(zip(items[::2], items[1::2], strict=False))
                target.items.extend(pairs[: max(room, 0)])
            return
        if isinstance(target, _Set):
            if op == "ADDITEMS" and not target.frozen:
                room = _CONTAINER_KEEP - len(target.items)
                target.items.extend(items[: max(room, 0)])
            return
        if isinstance(target, _Global):
            self.calls += 1
            self.activity += 1
            if not self.sniff:
                self.report.called(target.module, target.qualname, op, self.op_pos)
                self.report.add(
                    "pickle-global-mutation",
                    Severity.CRITICAL,
                    f"{op} changes the module-level object {target.name} (process state)",
                    self.op_pos,
                )
            return
        if isinstance(target, _Call):
            # A method of an instance (list/dict subclass): its class was checked when built.
            self.calls += 1
            if isinstance(target.func, _Global) and not self.sniff:
                self.report.called(target.func.module, target.func.qualname, op, self.op_pos)
            return
        if isinstance(target, _Opaque | _Blob):
            self.calls += 1
            if not (isinstance(target, _Opaque) and target.reported):
                self.check_use(target, Use.CALL, op)
            return
        raise _Broken(f"{op} on {_describe(target)}")

    # ---- embedded pickles (second-stage payloads, threats.md 4.7) -----------------------------

    def inspect_data(self, value: bytes | str | _Blob, pos: int) -> None:
        if self.sniff or self.depth >= _MAX_DEPTH:
            return
        if isinstance(value, _Blob):
            if looks_like_pickle(value.head) and self.src.seekable:
                window = _Source(self.src.raw, start=value.offset, length=value.length)
                self.embedded(window, pos, "")
            return
        data: bytes
        if isinstance(value, str):
            try:
                data = value.encode("latin-1")  # _codecs.encode(text, 'latin1') -> bytes
            except UnicodeEncodeError:
                data = value.encode("utf-8", "surrogatepass")
        else:
            data = value
        if len(data) < _EMBED_MIN:
            return
        if data[0] in OPCODES and looks_like_pickle(data[:_HEAD]):
            self.embedded(_Source(io.BytesIO(data)), pos, "")
        elif len(data) >= 24 and _BASE64.fullmatch(data):
            try:
                decoded = base64.b64decode(data)
            except (binascii.Error, ValueError):
                return
            if looks_like_pickle(decoded[:_HEAD]):
                self.embedded(_Source(io.BytesIO(decoded)), pos, "base64-encoded ")

    def embedded(self, src: _Source, pos: int, how: str) -> None:
        report = self.report
        prefix = f"{report.where(pos)}: {how}embedded pickle "
        nested = _Report(self.context, prefix, -src.pos, report.budget)
        machine = _Machine(src, nested, depth=self.depth + 1)
        scan = _finish(machine, nested)
        report.add(
            "pickle-embedded",
            Severity.INFO,
            f"a {how}pickle is embedded in a data argument "
            f"({len(scan.globals)} globals); it runs only if something loads it",
            pos,
        )
        for finding in scan.findings:
            if finding.rule == "pickle-malformed":
                finding = replace(finding, severity=Severity.INFO)
            report.extend((replace(finding, message=f"embedded pickle: {finding.message}"),))

    # ---- joblib arrays ----------------------------------------------------------------------

    def joblib_array(self, wrapper: _Call) -> object:
        """joblib writes array bytes (or a nested pickle) right after a NumpyArrayWrapper's
        BUILD; its unpickler reads them from the file there (joblib/numpy_pickle.py)."""
        state = wrapper.state
        if not isinstance(state, _Dict):
            raise _Broken("NumpyArrayWrapper state is not a dict")
        shape = state.get("shape")
        info = _dtype_info(state.get("dtype"))
        if not isinstance(shape, tuple) or info is None:
            raise _Broken("NumpyArrayWrapper with a shape or dtype that cannot be followed")
        count = 1
        for dim in shape:
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
                raise _Broken("NumpyArrayWrapper with an invalid shape")
            count *= dim
        if self.frame_end is not None and self.src.pos < self.frame_end:
            # joblib's unpickler reads the array from after the frame, the opcodes go on inside
            # it: the two readings of the stream differ, which joblib itself never writes.
            raise _Broken("joblib array data inside a pickle frame")
        self.frame_end = None
        itemsize, has_object = info
        if has_object:
            nested = _Machine(self.src, self.report, depth=self.depth)
            nested.run()
            self.calls += nested.calls
            self.activity += nested.activity
            return _Opaque("a numpy object array")
        alignment = state.get("numpy_array_alignment_bytes")
        if alignment is not None and alignment is not _MISSING:
            self.src.skip(self.src.read_byte())
        self.src.skip(count * itemsize)
        return _Opaque("a numpy array")


def _dtype_info(value: object) -> tuple[int, bool] | None:
    """(itemsize, has_object) of a pickled numpy.dtype, or None when it cannot be trusted."""
    if not (
        isinstance(value, _Call)
        and isinstance(value.func, _Global)
        and (value.func.module, value.func.qualname) == ("numpy", "dtype")
        and isinstance(value.args, tuple)
        and value.args
        and isinstance(value.args[0], str)
    ):
        return None
    match = _DTYPE_CODE.fullmatch(value.args[0])
    if match is None:
        return None
    kind, digits = match.group(1), int(match.group(2))
    itemsize = digits * 4 if kind == "U" else digits
    has_object = kind == "O"
    state = value.state
    if isinstance(state, tuple) and len(state) >= 8:
        elsize, flags = state[5], state[7]
        if isinstance(elsize, int) and elsize > 0 and elsize != itemsize:
            return None
        if isinstance(flags, int) and flags & 1:  # NPY_ITEM_HASOBJECT
            has_object = True
        subarray, fields = state[2], state[4]
        if isinstance(subarray, tuple) and subarray:
            inner = _dtype_info(subarray[0])
            if inner is None:
                return None
            has_object = has_object or inner[1]
        if isinstance(fields, _Dict):
            for _key, spec in fields.items:
                if not isinstance(spec, tuple) or not spec:
                    return None
                inner = _dtype_info(spec[0])
                if inner is None:
                    return None
                has_object = has_object or inner[1]
    elif state is not None:
        return None
    return itemsize, has_object


# --------------------------------------------------------------------------------------------
# Opcode arguments, by the argument descriptors of pickletools.


def _arg_none(src: _Source) -> object:
    return None


def _arg_uint1(src: _Source) -> object:
    return src.read_byte()


def _arg_uint2(src: _Source) -> object:
    return int.from_bytes(src.read(2), "little")


def _arg_int4(src: _Source) -> object:
    return int.from_bytes(src.read(4), "little", signed=True)


def _arg_uint4(src: _Source) -> object:
    return int.from_bytes(src.read(4), "little")


def _arg_uint8(src: _Source) -> object:
    return int.from_bytes(src.read(8), "little")


def _arg_float8(src: _Source) -> object:
    value: float = struct.unpack(">d", src.read(8))[0]
    return value


def _arg_line(src: _Source) -> object:
    return src.readline(_KEEP_BYTES)


def _arg_name_pair(src: _Source) -> object:
    return src.readline(_NAME_MAX), src.readline(_NAME_MAX)


def _arg_bytes1(src: _Source) -> object:
    return src.take(src.read_byte(), "bytes")


def _arg_bytes4(src: _Source) -> object:
    return src.take(int.from_bytes(src.read(4), "little"), "bytes")


def _arg_bytes8(src: _Source) -> object:
    return src.take(int.from_bytes(src.read(8), "little"), "bytes")


def _arg_string4(src: _Source) -> object:
    length = int.from_bytes(src.read(4), "little", signed=True)
    if length < 0:
        raise _Broken("BINSTRING with a negative length")
    return src.take(length, "bytes")


def _arg_text1(src: _Source) -> object:
    return src.take(src.read_byte(), "str")


def _arg_text4(src: _Source) -> object:
    return src.take(int.from_bytes(src.read(4), "little"), "str")


def _arg_text8(src: _Source) -> object:
    return src.take(int.from_bytes(src.read(8), "little"), "str")


def _arg_long1(src: _Source) -> object:
    return int.from_bytes(src.read(src.read_byte()), "little", signed=True)


def _arg_long4(src: _Source) -> object:
    length = int.from_bytes(src.read(4), "little", signed=True)
    if length < 0:
        raise _Broken("LONG4 with a negative length")
    if length > _KEEP_BYTES:
        src.skip(length)
        return _Opaque("a huge integer")
    return int.from_bytes(src.read(length), "little", signed=True)


_ARG_READERS: Final[dict[str, Callable[[_Source], object]]] = {
    "uint1": _arg_uint1,
    "uint2": _arg_uint2,
    "int4": _arg_int4,
    "uint4": _arg_uint4,
    "uint8": _arg_uint8,
    "float8": _arg_float8,
    "stringnl": _arg_line,
    "stringnl_noescape": _arg_line,
    "decimalnl_short": _arg_line,
    "decimalnl_long": _arg_line,
    "floatnl": _arg_line,
    "unicodestringnl": _arg_line,
    "stringnl_noescape_pair": _arg_name_pair,
    "string1": _arg_bytes1,
    "string4": _arg_string4,
    "bytes1": _arg_bytes1,
    "bytes4": _arg_bytes4,
    "bytes8": _arg_bytes8,
    "bytearray8": _arg_bytes8,
    "unicodestring1": _arg_text1,
    "unicodestring4": _arg_text4,
    "unicodestring8": _arg_text8,
    "long1": _arg_long1,
    "long4": _arg_long4,
}


# --------------------------------------------------------------------------------------------
# Opcode semantics. Each handler gets the machine and the decoded argument.

_Handler = Callable[[_Machine, object], None]


def _line(arg: object, what: str) -> bytes:
    if not isinstance(arg, bytes):
        raise _Broken(f"{what} argument is too long")
    return arg


def _text(value: object) -> object:
    """A text argument (kept bytes) decoded as UTF-8, as the unpickler does."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise _Broken("invalid UTF-8 in a text argument") from exc
    return value


def _string8(value: object) -> object:
    """A protocol 0-2 byte string: torch.load decodes it as UTF-8; kept as bytes otherwise."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _op_push_const(value: object) -> _Handler:
    def handler(m: _Machine, arg: object) -> None:
        m.stack.append(value)

    return handler


def _op_proto(m: _Machine, arg: object) -> None:
    assert isinstance(arg, int)
    if arg > _HIGHEST_PROTOCOL:
        raise _Broken(f"unsupported pickle protocol {arg}")
    if m.ops != 1:
        m.note_malformed(f"PROTO {arg} in the middle of the stream", m.op_pos)
    m.proto = arg


def _op_frame(m: _Machine, arg: object) -> None:
    assert isinstance(arg, int)
    src = m.src
    if m.frame_end is not None and src.pos < m.frame_end:
        m.note_malformed("a FRAME starts before the previous one ends", m.op_pos)
    if not m.sniff and not src.available(arg):
        raise _Truncated  # the unpickler reads the whole frame before running any of it
    m.frame_end = src.pos + arg


def _op_stop(m: _Machine, arg: object) -> None:
    m.pop()
    m.done = True


def _op_mark(m: _Machine, arg: object) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _op_pop(m: _Machine, arg: object) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _op_pop_mark(m: _Machine, arg: object) -> None:
    m.pop_mark()


def _op_dup(m: _Machine, arg: object) -> None:
    m.stack.append(m.top())


def _op_int(m: _Machine, arg: object) -> None:
    if arg is None:
        m.stack.append(_Opaque("a huge integer"))
        return
    line = _line(arg, "INT")
    if line == b"00":
        m.stack.append(False)
        return
    if line == b"01":
        m.stack.append(True)
        return
    try:
        m.stack.append(int(line, 0))
    except ValueError as exc:
        raise _Broken("INT argument is not a number") from exc


def _op_long(m: _Machine, arg: object) -> None:
    if arg is None:
        m.stack.append(_Opaque("a huge integer"))
        return
    line = _line(arg, "LONG")
    if line.endswith(b"L"):
        line = line[:-1]
    try:
        m.stack.append(int(line, 0))
    except ValueError as exc:
        raise _Broken("LONG argument is not a number") from exc


def _op_float(m: _Machine, arg: object) -> None:
    if arg is None:
        m.stack.append(_Opaque("a long float literal"))
        return
    try:
        m.stack.append(float(_line(arg, "FLOAT")))
    except ValueError as exc:
        raise _Broken("FLOAT argument is not a number") from exc


def _op_value(m: _Machine, arg: object) -> None:
    m.stack.append(arg)


_ESCAPE = re.compile(rb"\\(.?)", re.DOTALL)


def _keep_invalid_escape(match: re.Match[bytes]) -> bytes:
    """escape_decode keeps an unknown escape such as \\q as it is, with a DeprecationWarning:
    spell it as an escaped backslash instead (same bytes, no warning from a worker thread)."""
    char = match.group(1)
    if char and char not in b"\\'\"abfnrtvx01234567\n":
        return b"\\\\" + char
    return match.group(0)


def _op_string(m: _Machine, arg: object) -> None:
    if arg is None:
        m.stack.append(_Opaque("a long string"))
        return
    assert isinstance(arg, bytes)
    if len(arg) < 2 or arg[0] != arg[-1] or arg[0] not in b"\"'":
        raise _Broken("the STRING opcode argument must be quoted")
    try:
        data = codecs.escape_decode(_ESCAPE.sub(_keep_invalid_escape, arg[1:-1]))[0]
    except ValueError as exc:
        raise _Broken("invalid escape in a STRING argument") from exc
    value = _string8(data)
    m.stack.append(value)
    if isinstance(value, str | bytes):
        m.inspect_data(value, m.op_pos)


def _op_unicode(m: _Machine, arg: object) -> None:
    if arg is None:
        m.stack.append(_Opaque("a long string"))
        return
    assert isinstance(arg, bytes)
    try:
        value = arg.decode("raw-unicode-escape")
    except UnicodeDecodeError as exc:
        raise _Broken("invalid escape in a UNICODE argument") from exc
    m.stack.append(value)
    m.inspect_data(value, m.op_pos)


def _op_binstring(m: _Machine, arg: object) -> None:
    value = _string8(arg)
    m.stack.append(value)
    if isinstance(value, str | bytes | _Blob):
        m.inspect_data(value, m.op_pos)


def _op_binunicode(m: _Machine, arg: object) -> None:
    value = _text(arg)
    m.stack.append(value)
    if isinstance(value, str | _Blob):
        m.inspect_data(value, m.op_pos)


def _op_binbytes(m: _Machine, arg: object) -> None:
    m.stack.append(arg)
    if isinstance(arg, bytes | _Blob):
        m.inspect_data(arg, m.op_pos)


def _op_bytearray(m: _Machine, arg: object) -> None:
    m.stack.append(arg)


def _op_next_buffer(m: _Machine, arg: object) -> None:
    raise _Broken("NEXT_BUFFER without out-of-band buffers")


def _op_readonly_buffer(m: _Machine, arg: object) -> None:
    m.top()


def _op_empty_list(m: _Machine, arg: object) -> None:
    m.stack.append(_List())


def _op_empty_dict(m: _Machine, arg: object) -> None:
    m.stack.append(_Dict())


def _op_empty_set(m: _Machine, arg: object) -> None:
    m.stack.append(_Set(frozen=False))


def _op_empty_tuple(m: _Machine, arg: object) -> None:
    m.stack.append(())


def _op_tuple_n(n: int) -> _Handler:
    def handler(m: _Machine, arg: object) -> None:
        if len(m.stack) < n:
            raise _Broken("stack underflow")
        items = tuple(m.stack[-n:])
        del m.stack[-n:]
        m.stack.append(items)

    return handler


def _op_tuple(m: _Machine, arg: object) -> None:
    items = m.pop_mark()  # pop_mark swaps m.stack: take the items before appending
    m.stack.append(tuple(items))


def _op_list(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    m.stack.append(_List(items[:_CONTAINER_KEEP]))


def _op_dict(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise _Broken("odd number of items for DICT")
    pairs = list(zip(items[::2], items[1::2], strict=True))
    m.stack.append(_Dict(pairs[:_CONTAINER_KEEP]))


def _op_frozenset(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    m.stack.append(_Set(True, items[:_CONTAINER_KEEP]))


def _op_append(m: _Machine, arg: object) -> None:
    value = m.pop()
    m.mutate(m.top(), "APPEND", [value])


def _op_appends(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    m.mutate(m.top(), "APPENDS", items)


def _op_setitem(m: _Machine, arg: object) -> None:
    value = m.pop()
    key = m.pop()
    m.mutate(m.top(), "SETITEM", [key, value])


def _op_setitems(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise _Broken("odd number of items for SETITEMS")
    m.mutate(m.top(), "SETITEMS", items)


def _op_additems(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    m.mutate(m.top(), "ADDITEMS", items)


def _memo_index(m: _Machine, arg: object, what: str) -> int:
    if isinstance(arg, int):
        return arg
    if arg is None:
        m.unsure = True  # int() would strip a megabyte of padding: we do not follow that far
        raise _Broken(f"{what} argument is too long to follow")
    try:
        index = int(_line(arg, what))
    except ValueError as exc:
        raise _Broken(f"{what} argument is not a number") from exc
    if index < 0:
        raise _Broken(f"negative {what} argument")
    return index


def _op_put(m: _Machine, arg: object) -> None:
    m.memo[_memo_index(m, arg, "PUT")] = m.top()


def _op_memoize(m: _Machine, arg: object) -> None:
    m.memo[len(m.memo)] = m.top()


def _op_get(m: _Machine, arg: object) -> None:
    index = _memo_index(m, arg, "GET")
    try:
        m.stack.append(m.memo[index])
    except KeyError as exc:
        raise _Broken(f"memo key {index} is not set") from exc


def _names(arg: object, op: str) -> tuple[str, str]:
    assert isinstance(arg, tuple)
    module, name = arg
    if module is None or name is None:
        raise _Broken(f"{op} name is too long")
    try:
        return module.decode("utf-8"), name.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Broken(f"{op} name is not UTF-8") from exc


def _op_global(m: _Machine, arg: object) -> None:
    module, name = _names(arg, "GLOBAL")
    m.stack.append(m.resolve(module, name, "GLOBAL"))


_NOT_STR: Final = (bytes, _Blob, int, float, type(None), tuple)


def _op_stack_global(m: _Machine, arg: object) -> None:
    name = m.pop()
    module = m.pop()
    if isinstance(module, str) and isinstance(name, str):
        m.stack.append(m.resolve(module, name, "STACK_GLOBAL"))
        return
    if isinstance(module, _NOT_STR) or isinstance(name, _NOT_STR):
        # The unpickler refuses these ("STACK_GLOBAL requires str"): reported, then stop.
        if not m.sniff:
            m.report.add(
                "pickle-nonconstant-global",
                Severity.CRITICAL,
                f"STACK_GLOBAL with operands that are not strings (module: "
                f"{_describe(module)}; name: {_describe(name)})",
                m.op_pos,
            )
        raise _Broken("STACK_GLOBAL requires str")
    m.activity += 1
    if not m.sniff:
        m.report.add(
            "pickle-nonconstant-global",
            Severity.CRITICAL,
            f"STACK_GLOBAL with operands that are not constant strings "
            f"(module: {_describe(module)}; name: {_describe(name)}): "
            "what it imports is decided at load time",
            m.op_pos,
        )
    m.stack.append(_Opaque("a global chosen at load time", reported=True))


def _op_inst(m: _Machine, arg: object) -> None:
    module, name = _names(arg, "INST")
    cls = m.resolve(module, name, "INST")  # imported before the MARK is looked for
    args = tuple(m.pop_mark())
    m.stack.append(m.call_site(cls, args, "INST", Use.CALL))  # klass(*args)


def _op_obj(m: _Machine, arg: object) -> None:
    items = m.pop_mark()
    if not items:
        raise _Broken("OBJ without a class")
    m.stack.append(m.call_site(items[0], tuple(items[1:]), "OBJ", Use.CALL))  # cls(*args)


def _op_reduce(m: _Machine, arg: object) -> None:
    args = m.pop()
    func = m.pop()
    m.stack.append(m.call_site(func, args, "REDUCE", Use.CALL))


def _op_newobj(m: _Machine, arg: object) -> None:
    args = m.pop()
    cls = m.pop()
    m.stack.append(m.call_site(cls, args, "NEWOBJ", Use.CONSTRUCT))


def _op_newobj_ex(m: _Machine, arg: object) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.stack.append(m.call_site(cls, (args, kwargs), "NEWOBJ_EX", Use.CONSTRUCT))


def _op_build(m: _Machine, arg: object) -> None:
    state = m.pop()
    inst = m.top()
    if isinstance(inst, _Global):
        m.mutate(inst, "BUILD", [])
        return
    if isinstance(inst, _Call):
        # BUILD calls the instance's __setstate__ (or sets attributes): a call of its class.
        m.calls += 1
        m.activity += 1
        inst.state = state
        cls = _instance_class(inst)
        if isinstance(cls, _Global) and not m.sniff:
            m.report.called(cls.module, cls.qualname, "BUILD", m.op_pos)
            if m.joblib_arrays and (cls.module, cls.qualname) == _JOBLIB_WRAPPER:
                m.stack[-1] = m.joblib_array(inst)
        return
    if isinstance(inst, _Opaque | _Blob):
        m.calls += 1
        if not (isinstance(inst, _Opaque) and inst.reported):
            m.check_use(inst, Use.CALL, "BUILD")
        return
    raise _Broken(f"BUILD on {_describe(inst)}")


_JOBLIB_WRAPPER: Final = ("joblib.numpy_pickle", "NumpyArrayWrapper")


def _instance_class(inst: _Call) -> object:
    """The class of the object a call site made: the class NEWOBJ / INST / OBJ / REDUCE
    instantiated, or the class argument of a helper such as copyreg._reconstructor."""
    func = inst.func
    if inst.op == "REDUCE" and isinstance(func, _Global) and isinstance(inst.args, tuple):
        roles = ARGUMENT_ROLES.get((func.module, func.qualname), {})
        if roles.get(0) is Use.CONSTRUCT and inst.args:
            return inst.args[0]
    return func


def _op_ext(m: _Machine, arg: object) -> None:
    assert isinstance(arg, int)
    m.activity += 1
    if not m.sniff:
        m.report.add(
            "pickle-extension-code",
            Severity.CRITICAL,
            f"extension code {arg} loads a callable from the copyreg extension registry, "
            "which no name check can see",
            m.op_pos,
        )
    m.stack.append(_Opaque(f"extension object {arg}", reported=True))


def _op_persid(m: _Machine, arg: object) -> None:
    if arg is None:
        raise _Broken("PERSID argument is too long")
    assert isinstance(arg, bytes)
    try:
        pid: object = arg.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _Broken("PERSID argument is not ASCII") from exc
    m.stack.append(_persistent(m, pid))


def _op_binpersid(m: _Machine, arg: object) -> None:
    m.stack.append(_persistent(m, m.pop()))


def _persistent(m: _Machine, pid: object) -> object:
    """torch.load's persistent_load: ('storage', type, key, location, numel[, view]) loads a
    storage; ('module', cls, source_file, source) (legacy files) returns the class object. Other
    loaders have no persistent_load and fail."""
    m.activity += 1
    if m.sniff:
        return _Opaque("a persistent object")
    if m.context not in (LoadContext.TORCH, LoadContext.GENERIC):
        raise _Broken(f"persistent id, but the {m.context} loader has no persistent_load")
    if not isinstance(pid, tuple) or not pid:
        return _Opaque("a tensor storage")  # the pre-1.0 tar format's storage keys
    kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
    if kind == "storage":
        return _Opaque("a tensor storage")
    if kind == "module" and len(pid) >= 2:
        return pid[1]  # the class itself: checked where it is instantiated
    if isinstance(pid[0], _Global):
        return pid[0]  # the pre-1.0 tar format's (class, source_file, source)
    m.note_malformed(f"persistent id of unknown kind {_describe(pid[0])}", m.op_pos)
    return _Opaque("a persistent object")


def _build_table() -> list[tuple[str, Callable[[_Source], object], _Handler] | None]:
    handlers: dict[str, _Handler] = {
        "PROTO": _op_proto,
        "FRAME": _op_frame,
        "STOP": _op_stop,
        "MARK": _op_mark,
        "POP": _op_pop,
        "POP_MARK": _op_pop_mark,
        "DUP": _op_dup,
        "INT": _op_int,
        "BININT": _op_value,
        "BININT1": _op_value,
        "BININT2": _op_value,
        "LONG": _op_long,
        "LONG1": _op_value,
        "LONG4": _op_value,
        "FLOAT": _op_float,
        "BINFLOAT": _op_value,
        "STRING": _op_string,
        "BINSTRING": _op_binstring,
        "SHORT_BINSTRING": _op_binstring,
        "UNICODE": _op_unicode,
        "BINUNICODE": _op_binunicode,
        "SHORT_BINUNICODE": _op_binunicode,
        "BINUNICODE8": _op_binunicode,
        "BINBYTES": _op_binbytes,
        "SHORT_BINBYTES": _op_binbytes,
        "BINBYTES8": _op_binbytes,
        "BYTEARRAY8": _op_bytearray,
        "NEXT_BUFFER": _op_next_buffer,
        "READONLY_BUFFER": _op_readonly_buffer,
        "NONE": _op_push_const(None),
        "NEWTRUE": _op_push_const(True),
        "NEWFALSE": _op_push_const(False),
        "EMPTY_LIST": _op_empty_list,
        "EMPTY_DICT": _op_empty_dict,
        "EMPTY_SET": _op_empty_set,
        "EMPTY_TUPLE": _op_empty_tuple,
        "TUPLE": _op_tuple,
        "TUPLE1": _op_tuple_n(1),
        "TUPLE2": _op_tuple_n(2),
        "TUPLE3": _op_tuple_n(3),
        "LIST": _op_list,
        "DICT": _op_dict,
        "FROZENSET": _op_frozenset,
        "APPEND": _op_append,
        "APPENDS": _op_appends,
        "SETITEM": _op_setitem,
        "SETITEMS": _op_setitems,
        "ADDITEMS": _op_additems,
        "PUT": _op_put,
        "BINPUT": _op_put,
        "LONG_BINPUT": _op_put,
        "MEMOIZE": _op_memoize,
        "GET": _op_get,
        "BINGET": _op_get,
        "LONG_BINGET": _op_get,
        "GLOBAL": _op_global,
        "STACK_GLOBAL": _op_stack_global,
        "INST": _op_inst,
        "OBJ": _op_obj,
        "REDUCE": _op_reduce,
        "NEWOBJ": _op_newobj,
        "NEWOBJ_EX": _op_newobj_ex,
        "BUILD": _op_build,
        "EXT1": _op_ext,
        "EXT2": _op_ext,
        "EXT4": _op_ext,
        "PERSID": _op_persid,
        "BINPERSID": _op_binpersid,
    }
    table: list[tuple[str, Callable[[_Source], object], _Handler] | None] = [None] * 256
    for opcode in pickletools.opcodes:
        reader = _arg_none if opcode.arg is None else _ARG_READERS[opcode.arg.name]
        table[ord(opcode.code)] = (opcode.name, reader, handlers[opcode.name])
    return table


_TABLE: Final = _build_table()
OPCODES: Final[frozenset[int]] = frozenset(i for i, spec in enumerate(_TABLE) if spec)


# --------------------------------------------------------------------------------------------
# Entry points.


def _finish(machine: _Machine, report: _Report) -> PickleScan:
    """Run a machine and turn what happened into a PickleScan."""
    src = machine.src
    complete = False
    try:
        machine.run()
        complete = True
    except _Truncated:
        report.add(
            "pickle-malformed",
            machine.error_severity(),
            f"the stream ends inside the pickle ({_after(machine)})",
            src.clamped_pos(),
        )
    except _Broken as exc:
        report.add(
            "pickle-malformed",
            machine.error_severity(),
            f"the unpickler would fail here: {exc} ({_after(machine)})",
            machine.op_pos,
        )
    except _OutOfBudget:
        report.add(
            "pickle-malformed",
            machine.error_severity(),
            f"analysis stopped after {machine.ops} opcodes (budget exhausted); the rest "
            f"is unchecked ({_after(machine)})",
            src.pos,
        )
    except OSError:
        raise  # the file could not be read: not a property of the pickle
    except Exception as exc:  # a scanner defect must block, not pass (fail closed)
        machine.unsure = True
        report.add(
            "pickle-scanner-error",
            Severity.CRITICAL,
            f"the analysis failed ({type(exc).__name__}: {exc}); the pickle cannot be cleared",
            machine.op_pos,
        )
    return PickleScan(
        findings=report.findings(),
        globals=tuple(report.globals),
        end_offset=(src.pos if complete else src.clamped_pos()) + report.delta,
        complete=complete,
    )


def _after(machine: _Machine) -> str:
    if machine.calls:
        return f"after {machine.calls} call sites: anything they did has already happened"
    return "before any call site"


def scan_pickle(
    stream: BinaryIO,
    *,
    context: LoadContext,
    start_offset: int = 0,
    max_ops: int = 10_000_000,
    location_prefix: str = "",
) -> PickleScan:
    """Analyse ONE pickle starting at the stream's current position. Locations are
    ``"{location_prefix}: byte N"`` with N counted from ``start_offset`` at that position. A
    seekable stream is left just after what was analysed (after STOP when ``complete``)."""
    src = _Source(stream)
    report = _Report(context, location_prefix, start_offset - src.pos, [max_ops])
    machine = _Machine(src, report, joblib_arrays=context is LoadContext.JOBLIB)
    scan = _finish(machine, report)
    src.release()
    return scan


def scan_pickle_stream(
    stream: BinaryIO,
    *,
    context: LoadContext,
    location_prefix: str = "",
    max_pickles: int = 64,
    max_ops: int = 10_000_000,
) -> tuple[PickleScan, ...]:
    """Analyse every pickle of a multi-pickle stream (legacy torch files are five pickles in a
    row followed by raw storage bytes).

    The rule for where the pickles end: the first pickle is always analysed in full. After each
    complete pickle, the bytes that follow are analysed as the next pickle unless the stream has
    ended. That candidate counts as *data* (and the stream as finished) only if the real
    unpickler would fail on it before it referenced any global, reached any call site, extension
    code or persistent id -- i.e. nothing in it could have run. Anything else is reported with
    full severity, so a broken pickle whose payload runs before the error (nullifAI) is caught in
    any position. ``max_ops`` is a budget shared by the whole stream; a pickle beyond
    ``max_pickles`` is a HIGH finding. A seekable stream is left at the end of the last pickle
    (where any trailing data starts); a non-seekable one may have been read further.
    """
    src = _Source(stream)
    delta = -src.pos
    budget = [max_ops]
    scans: list[PickleScan] = []
    while True:
        if scans and src.at_end():
            break
        start = src.pos
        report = _Report(context, location_prefix, delta, budget)
        machine = _Machine(src, report, joblib_arrays=context is LoadContext.JOBLIB)
        scan = _finish(machine, report)
        if scans and machine.inert() and budget[0] > 0:
            # Raw data after the last pickle (legacy torch storages): nothing in it could run.
            # The caller sees where the pickles end in the last scan's end_offset.
            src.rewind(start)
            break
        if len(scans) >= max_pickles:
            scans.append(
                replace(
                    scan,
                    findings=(
                        Finding(
                            "pickle-too-many",
                            Severity.HIGH,
                            f"more than {max_pickles} pickles in one stream; the rest is unchecked",
                            report.where(start),
                        ),
                        *scan.findings,
                    ),
                )
            )
            break
        scans.append(scan)
        if not scan.complete:
            break
    src.release()
    return tuple(scans)


def looks_like_pickle(head: bytes) -> bool:
    """Content sniff: do these first bytes start a pickle? Protocol 2-5 pickles begin with PROTO
    (``\\x80`` and a version); protocol 0/1 pickles have no magic, so the first opcodes must
    decode and run on the symbolic stack without an error the unpickler would raise (a text file
    almost never does). True when STOP is reached, or when the head runs out after at least two
    opcodes following PROTO, or three opcodes without it."""
    if not head or head[0] not in OPCODES:
        return False
    if head[0] == 0x80 and (len(head) < 2 or head[1] > _HIGHEST_PROTOCOL):
        return False
    report = _Report(LoadContext.GENERIC, "", 0, [256])
    machine = _Machine(_Source(io.BytesIO(head)), report, sniff=True)
    try:
        machine.run()
    except _OutOfBudget:
        return True
    except _Truncated:
        # An opcode whose argument runs past the head counts: its byte was valid.
        decoded = machine.ops if machine.in_op else machine.ops - 1
        return decoded >= (2 if head[0] == 0x80 else 3)
    except _Broken:
        return False
    except Exception:  # a sniffer defect must not hide a pickle: let the scanner look at it
        return True
    return True
