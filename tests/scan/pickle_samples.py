"""Pickle samples for the scanner tests.

Three kinds of sample live here:

* malicious pickles written opcode by opcode (``MALICIOUS``), each naming its technique and the
  advisory, CVE or paper that published it (see docs/threats.md section 2);
* benign pickles made with the stdlib ``pickle`` module at every protocol (``benign_stdlib``);
* a generator of REAL benign checkpoints (``generate_real_samples``) that needs torch, numpy,
  scikit-learn, joblib and transformers. It runs only under a separate Python 3.11 interpreter
  (``python pickle_samples.py real OUT_DIR``), started by the tests when AIRLOCK_TORCH_PYTHON
  points at one, and writes the files plus a ``manifest.json`` describing them.

This module imports nothing outside the stdlib at module level, so that the 3.11 interpreter can
run it as a script without the Airlock package, and so that the tests can import it anywhere.

Every payload is harmless if it were ever run (``touch`` of a marker file in a temporary
directory, or opening that marker for writing): no network, nothing destructive. The tests never
unpickle any of these bytes.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import importlib
import json
import pickle
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------
# An opcode-level pickle writer.


class Ops:
    """Builds a pickle opcode by opcode. Every method appends and returns ``self``."""

    def __init__(self) -> None:
        self.data = bytearray()

    def raw(self, chunk: bytes) -> Ops:
        self.data += chunk
        return self

    def build(self) -> bytes:
        return bytes(self.data)

    # framing and protocol
    def proto(self, version: int) -> Ops:
        return self.raw(b"\x80" + bytes([version]))

    def frame(self, length: int) -> Ops:
        return self.raw(b"\x95" + struct.pack("<Q", length))

    def stop(self) -> Ops:
        return self.raw(b".")

    # constants
    def unicode(self, text: str) -> Ops:
        """SHORT_BINUNICODE or BINUNICODE, whichever fits."""
        encoded = text.encode("utf-8")
        if len(encoded) < 256:
            return self.raw(b"\x8c" + bytes([len(encoded)]) + encoded)
        return self.raw(b"X" + struct.pack("<I", len(encoded)) + encoded)

    def binunicode(self, text: str) -> Ops:
        encoded = text.encode("utf-8")
        return self.raw(b"X" + struct.pack("<I", len(encoded)) + encoded)

    def string0(self, literal: str) -> Ops:
        """Protocol 0 STRING with a literal already quoted/escaped by the caller."""
        return self.raw(b"S" + literal.encode("latin-1") + b"\n")

    def unicode0(self, text: str) -> Ops:
        return self.raw(b"V" + text.encode("raw-unicode-escape") + b"\n")

    def short_binstring(self, data: bytes) -> Ops:
        return self.raw(b"U" + bytes([len(data)]) + data)

    def binbytes(self, data: bytes) -> Ops:
        if len(data) < 256:
            return self.raw(b"C" + bytes([len(data)]) + data)
        return self.raw(b"B" + struct.pack("<I", len(data)) + data)

    def binbytes8(self, data: bytes) -> Ops:
        return self.raw(b"\x8e" + struct.pack("<Q", len(data)) + data)

    def int_(self, value: int) -> Ops:
        if 0 <= value < 256:
            return self.raw(b"K" + bytes([value]))
        if -(2**31) <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(encoded)]) + encoded)  # LONG1

    def int0(self, value: int) -> Ops:
        return self.raw(b"I" + str(value).encode() + b"\n")

    def none(self) -> Ops:
        return self.raw(b"N")

    def newtrue(self) -> Ops:
        return self.raw(b"\x88")

    # stack and containers
    def mark(self) -> Ops:
        return self.raw(b"(")

    def pop(self) -> Ops:
        return self.raw(b"0")

    def pop_mark(self) -> Ops:
        return self.raw(b"1")

    def dup(self) -> Ops:
        return self.raw(b"2")

    def tuple_(self) -> Ops:
        return self.raw(b"t")

    def tuple1(self) -> Ops:
        return self.raw(b"\x85")

    def tuple2(self) -> Ops:
        return self.raw(b"\x86")

    def empty_tuple(self) -> Ops:
        return self.raw(b")")

    def empty_dict(self) -> Ops:
        return self.raw(b"}")

    def empty_list(self) -> Ops:
        return self.raw(b"]")

    def setitem(self) -> Ops:
        return self.raw(b"s")

    def setitems(self) -> Ops:
        return self.raw(b"u")

    def append(self) -> Ops:
        return self.raw(b"a")

    def appends(self) -> Ops:
        return self.raw(b"e")

    # memo
    def binput(self, index: int) -> Ops:
        return self.raw(b"q" + bytes([index]))

    def long_binput(self, index: int) -> Ops:
        return self.raw(b"r" + struct.pack("<I", index))

    def put0(self, index: int) -> Ops:
        return self.raw(b"p" + str(index).encode() + b"\n")

    def binget(self, index: int) -> Ops:
        return self.raw(b"h" + bytes([index]))

    def long_binget(self, index: int) -> Ops:
        return self.raw(b"j" + struct.pack("<I", index))

    def get0(self, index: int) -> Ops:
        return self.raw(b"g" + str(index).encode() + b"\n")

    def memoize(self) -> Ops:
        return self.raw(b"\x94")

    # globals and calls
    def global_(self, module: str, name: str) -> Ops:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def stack_global(self, module: str | None = None, name: str | None = None) -> Ops:
        if module is not None and name is not None:
            self.unicode(module).unicode(name)
        return self.raw(b"\x93")

    def inst(self, module: str, name: str) -> Ops:
        return self.raw(b"i" + module.encode() + b"\n" + name.encode() + b"\n")

    def obj(self) -> Ops:
        return self.raw(b"o")

    def reduce(self) -> Ops:
        return self.raw(b"R")

    def build_(self) -> Ops:
        return self.raw(b"b")

    def newobj(self) -> Ops:
        return self.raw(b"\x81")

    def newobj_ex(self) -> Ops:
        return self.raw(b"\x92")

    def ext1(self, code: int) -> Ops:
        return self.raw(b"\x82" + bytes([code]))

    def ext2(self, code: int) -> Ops:
        return self.raw(b"\x83" + struct.pack("<H", code))

    def ext4(self, code: int) -> Ops:
        return self.raw(b"\x84" + struct.pack("<i", code))

    def binpersid(self) -> Ops:
        return self.raw(b"Q")

    # composite helpers
    def call1(self, module: str, name: str, arg: str) -> Ops:
        """``module.name(arg)`` with GLOBAL + REDUCE (the classic __reduce__ payload)."""
        return self.global_(module, name).unicode(arg).tuple1().reduce()


def call_global(module: str, name: str, *args: str, proto: int = 2) -> bytes:
    """``module.name(*args)`` via GLOBAL/REDUCE, a complete pickle."""
    ops = Ops().proto(proto).global_(module, name).mark()
    for arg in args:
        ops.unicode(arg)
    return ops.tuple_().reduce().stop().build()


def call_stack_global(module: str, name: str, *args: str) -> bytes:
    """``module.name(*args)`` via STACK_GLOBAL/REDUCE (protocol 4)."""
    ops = Ops().proto(4).stack_global(module, name).memoize().mark()
    for arg in args:
        ops.unicode(arg)
    return ops.tuple_().reduce().stop().build()


# --------------------------------------------------------------------------------------------
# Malicious samples.


@dataclass(frozen=True)
class Malicious:
    id: str
    source: str  # the advisory / CVE / paper (threats.md section 2) or "classic"
    build: Callable[[str], bytes]  # marker path -> pickle bytes
    rules: frozenset[str] = frozenset({"pickle-global-not-allowed"})
    global_: tuple[str, str] | None = None  # a (module, qualname) that must be reported
    multi: bool = False  # a stream of several pickles (scan with scan_pickle_stream)
    context: str = "torch"
    extra: dict[str, Any] = field(default_factory=dict)


def _touch(marker: str) -> str:
    return f"touch {marker}"


def _benign_prefix() -> Ops:
    """The start of a benign-looking state dict: {'w': 1}."""
    return Ops().proto(2).empty_dict().binput(0).unicode("w").int_(1).setitem()


def _nullifai_truncated(marker: str) -> bytes:
    # The payload REDUCE runs, then the stream simply ends: pickle raises only afterwards.
    return Ops().proto(2).call1("os", "system", _touch(marker)).raw(b"\x80").build()


def _invalid_opcode_after(marker: str) -> bytes:
    return Ops().proto(2).call1("os", "system", _touch(marker)).raw(b"\xff").stop().build()


def _memo_decoy(marker: str) -> bytes:
    # picklescan issue #22 / ImaginaryCTF 2023: benign strings are memoized first, the slots are
    # then overwritten with the real names; a scanner that reads the first PUT resolves
    # "builtins.print" while the unpickler imports "os.system".
    return (
        Ops()
        .proto(4)
        .unicode("builtins")
        .binput(1)
        .unicode("print")
        .binput(2)
        .pop()
        .pop()
        .unicode("os")
        .binput(1)
        .unicode("system")
        .binput(2)
        .pop()
        .pop()
        .binget(1)
        .binget(2)
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _memo_decoy_popped(marker: str) -> bytes:
    # modelaudit PR #518 "popped decoy": decoy operands are pushed and popped right before the
    # real ones, so a scanner that looks at "the two strings before STACK_GLOBAL" in the byte
    # stream sees the decoys.
    return (
        Ops()
        .proto(4)
        .unicode("os")
        .memoize()
        .unicode("system")
        .memoize()
        .unicode("collections")
        .unicode("OrderedDict")
        .pop()
        .pop()
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _nonconstant_stack_global(marker: str) -> bytes:
    # The module name is computed at load time (str.join of pieces), so no static scanner can
    # know it: a block by itself (threats.md 4.3).
    return (
        Ops()
        .proto(4)
        .stack_global("builtins", "str.join")
        .unicode("")
        .mark()
        .unicode("o")
        .unicode("s")
        .raw(b"l")  # LIST from mark
        .tuple2()
        .reduce()
        .unicode("system")
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _stack_global_from_call_in_memo(marker: str) -> bytes:
    # The operand is a call result stored in the memo, then fetched with BINGET.
    return (
        Ops()
        .proto(4)
        .stack_global("builtins", "str")
        .unicode("os")
        .tuple1()
        .reduce()
        .binput(5)
        .pop()
        .binget(5)
        .unicode("system")
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _proto0_no_magic(marker: str) -> bytes:
    # CVE-2025-10155 (JFrog): a protocol 0 pickle has no \x80 magic and is skipped by scanners
    # that check for it.
    return f"cos\nsystem\n(S'{_touch(marker)}'\ntR.".encode()


def _proto1_no_magic(marker: str) -> bytes:
    payload = _touch(marker).encode()
    return b"cos\nsystem\nq\x00(U" + bytes([len(payload)]) + payload + b"tq\x01Rq\x02."


def _escaped_string_operands(marker: str) -> bytes:
    # threats.md 4.3: escaped protocol 0 STRING literals feeding STACK_GLOBAL ("\x6fs" == "os").
    return (
        Ops()
        .proto(4)
        .string0("'\\x6fs'")
        .string0("'sys\\x74em'")
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _unicode0_operands(marker: str) -> bytes:
    return (
        Ops()
        .proto(4)
        .raw(b"Vo\\u0073\n")
        .raw(b"Vsystem\n")
        .stack_global()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _inst(marker: str) -> bytes:
    return Ops().mark().string0(f"'{_touch(marker)}'").inst("os", "system").stop().build()


def _obj(marker: str) -> bytes:
    return (
        Ops().proto(1).mark().global_("os", "system").unicode(_touch(marker)).obj().stop().build()
    )


def _newobj(marker: str) -> bytes:
    # NEWOBJ calls cls.__new__: subprocess.Popen.__new__ itself is harmless, but a class that is
    # not allowlisted must never be instantiated (its __new__/__setstate__ are attacker-chosen).
    return (
        Ops()
        .proto(2)
        .global_("subprocess", "Popen")
        .mark()
        .mark()
        .unicode("touch")
        .unicode(marker)
        .raw(b"l")
        .tuple_()
        .newobj()
        .stop()
        .build()
    )


def _newobj_ex(marker: str) -> bytes:
    return (
        Ops()
        .proto(4)
        .stack_global("subprocess", "Popen")
        .mark()
        .unicode("touch")
        .unicode(marker)
        .raw(b"l")
        .tuple1()
        .empty_dict()
        .newobj_ex()
        .stop()
        .build()
    )


def _build_setstate(marker: str) -> bytes:
    # BUILD calls the instance's __setstate__: an object of a class whose __setstate__ runs
    # commands (here a class from a library the attacker controls).
    return (
        Ops()
        .proto(2)
        .global_("evil_lib.payload", "Runner")
        .empty_tuple()
        .newobj()
        .unicode(_touch(marker))
        .build_()
        .stop()
        .build()
    )


def _build_on_global(marker: str) -> bytes:
    # BUILD on a class object (not an instance) sets class attributes: monkey-patching
    # collections.OrderedDict so that a later load runs code.
    return (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .none()
        .empty_dict()
        .unicode("__reduce__")
        .global_("os", "system")
        .setitem()
        .tuple2()
        .build_()
        .stop()
        .build()
    )


def _ext_code(marker: str) -> bytes:
    # EXT1/2/4 fetch a callable from copyreg's extension registry, invisible to name checks.
    return Ops().proto(2).ext1(0x42).unicode(_touch(marker)).tuple1().reduce().stop().build()


def _ext4_code(marker: str) -> bytes:
    return Ops().proto(2).ext4(0x7FFF01).unicode(_touch(marker)).tuple1().reduce().stop().build()


def _getattr_self_walk(marker: str) -> bytes:
    # threats.md 4.2: protocol 4 attribute walk from an innocent module name.
    return call_stack_global("builtins", "getattr.__self__.exec", f"open({marker!r}, 'w')")


def _torch_utils_os_system(marker: str) -> bytes:
    return call_stack_global("torch._utils", "os.system", _touch(marker))


def _print_subclasses(marker: str) -> bytes:
    # modelscan issue #338: builtins dotted-name introspection.
    return call_stack_global("builtins", "print.__class__.__base__.__subclasses__")


def _pop_after_call(marker: str) -> bytes:
    # promptfoo disclosure against fickling: the result of the call is POPped, so the call does
    # not appear in the decompiled AST; the returned object is an innocent dict.
    return (
        Ops()
        .proto(2)
        .call1("os", "system", _touch(marker))
        .pop()
        .empty_dict()
        .unicode("ok")
        .int_(1)
        .setitem()
        .stop()
        .build()
    )


def _second_proto(marker: str) -> bytes:
    # A PROTO opcode in the middle of the stream (parser differential).
    return (
        Ops()
        .proto(2)
        .empty_dict()
        .proto(4)
        .pop()
        .call1("os", "system", _touch(marker))
        .stop()
        .build()
    )


def _multi_third(marker: str) -> bytes:
    # Legacy torch files are several pickles in a row; modelscan 0.8.8 scans only the first.
    first = pickle.dumps(119547037146038801333356, protocol=2)
    second = pickle.dumps(1001, protocol=2)
    third = call_global("os", "system", _touch(marker))
    return first + second + third


def _pickle_loads_embedded(marker: str) -> bytes:
    inner = call_global("os", "system", _touch(marker))
    return (
        Ops().proto(3).global_("pickle", "loads").binbytes(inner).tuple1().reduce().stop().build()
    )


def _base64_embedded(marker: str) -> bytes:
    import base64

    inner = base64.b64encode(call_global("os", "system", _touch(marker))).decode()
    return (
        Ops()
        .proto(3)
        .global_("_pickle", "loads")
        .global_("base64", "b64decode")
        .unicode(inner)
        .tuple1()
        .reduce()
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _marshal_function(marker: str) -> bytes:
    # types.FunctionType(marshal.loads(code), globals): the code object is opaque bytes.
    return (
        Ops()
        .proto(3)
        .global_("types", "FunctionType")
        .global_("marshal", "loads")
        .binbytes(b"\xe3" + b"\x00" * 40)
        .tuple1()
        .reduce()
        .empty_dict()
        .tuple2()
        .reduce()
        .empty_tuple()
        .reduce()
        .stop()
        .build()
    )


def _functools_partial(marker: str) -> bytes:
    # functools.partial + BUILD kwargs (threats.md 4.7): an empty partial gets its function and
    # arguments from BUILD (partial.__setstate__), then is called.
    return (
        Ops()
        .proto(2)
        .global_("functools", "partial")
        .global_("builtins", "print")
        .tuple1()
        .reduce()
        .mark()
        .global_("os", "system")
        .unicode(_touch(marker))
        .tuple1()
        .empty_dict()
        .none()
        .tuple_()
        .build_()
        .empty_tuple()
        .reduce()
        .stop()
        .build()
    )


def _copy_reg_reconstructor(marker: str) -> bytes:
    # _compat_pickle maps copy_reg to copyreg (an allowed helper at protocol 2); the class it is
    # asked to construct is what matters.
    return (
        Ops()
        .proto(2)
        .global_("copy_reg", "_reconstructor")
        .global_("subprocess", "Popen")
        .global_("__builtin__", "object")
        .none()
        .raw(b"\x87")
        .reduce()
        .stop()
        .build()
    )


def _simple(module: str, name: str, *args: str, proto: int = 2) -> Callable[[str], bytes]:
    def build(marker: str) -> bytes:
        resolved = tuple(arg.replace("{marker}", marker) for arg in args)
        if proto >= 4:
            return call_stack_global(module, name, *resolved)
        return call_global(module, name, *resolved, proto=proto)

    return build


def _calls(
    case_id: str, source: str, module: str, qualname: str, *args: str, proto: int = 2
) -> Malicious:
    """A sample that calls `module.qualname(*args)`, which the scan must report by name."""
    build = _simple(module, qualname, *args, proto=proto)
    return Malicious(case_id, source, build, global_=(module, qualname))


def _asyncio_transport(marker: str) -> bytes:
    # CVE-2025-10157 (JFrog): asyncio.unix_events._UnixSubprocessTransport._start, a dotted
    # qualname in a submodule of a denylisted package.
    return (
        Ops()
        .proto(4)
        .stack_global("asyncio.unix_events", "_UnixSubprocessTransport._start")
        .mark()
        .none()
        .unicode(_touch(marker))
        .newtrue()
        .none()
        .none()
        .none()
        .int_(0)
        .tuple_()
        .reduce()
        .stop()
        .build()
    )


def _sneaky_nested_list_global(marker: str) -> bytes:
    # A disallowed global only referenced (not called), hidden inside an innocent container.
    return (
        Ops().proto(2).empty_dict().unicode("hook").global_("os", "system").setitem().stop().build()
    )


def _setitem_on_global(marker: str) -> bytes:
    # SETITEM on a module-level mapping (os.environ) mutates process state: LD_PRELOAD.
    return (
        Ops()
        .proto(2)
        .global_("os", "environ")
        .unicode("LD_PRELOAD")
        .unicode(marker)
        .setitem()
        .stop()
        .build()
    )


def _append_to_sys_path(marker: str) -> bytes:
    return Ops().proto(2).global_("sys", "path").unicode(marker).append().stop().build()


def _indirect_call(marker: str) -> bytes:
    # The callable is the result of an allowed call: collections.OrderedDict() called again.
    return (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .unicode(_touch(marker))
        .tuple1()
        .reduce()
        .stop()
        .build()
    )


def _misused_reference(marker: str) -> bytes:
    # torch.float32 is allowed as a value, never as a callable.
    return Ops().proto(2).global_("torch", "float32").empty_tuple().reduce().stop().build()


def _persistent_id_joblib(marker: str) -> bytes:
    # A persistent id in a context whose loader has no persistent_load.
    return Ops().proto(2).unicode("x").binpersid().stop().build()


def _reconstructor_with_function(marker: str) -> bytes:
    # copyreg._reconstructor(cls, base, state) constructs `cls`; an allowed *function* passed as
    # cls is a misuse (the helper's class argument must be constructible).
    return (
        Ops()
        .proto(2)
        .global_("copy_reg", "_reconstructor")
        .global_("torch._utils", "_rebuild_tensor_v2")
        .global_("__builtin__", "object")
        .none()
        .raw(b"\x87")
        .reduce()
        .stop()
        .build()
    )


def _reduce_of_newobj_only_class(marker: str) -> bytes:
    # torch.nn Linear is allowed for NEWOBJ (no __init__); REDUCE would run __init__ with the
    # file's arguments -- not how any real checkpoint uses it (PickleBall-style role check).
    return (
        Ops()
        .proto(2)
        .global_("torch.nn.modules.linear", "Linear")
        .int_(4)
        .int_(3)
        .tuple2()
        .reduce()
        .stop()
        .build()
    )


def _inst_of_trainer_state(marker: str) -> bytes:
    # accelerate's PartialState.__init__ sets up (distributed) devices: INST would call it.
    return Ops().mark().inst("accelerate.state", "PartialState").stop().build()


def joblib_array(
    payload: bytes,
    *,
    code: str = "f8",
    shape: tuple[int, ...] = (3,),
    flags: int = 0,
    alignment: int | None = 16,
    via_reconstructor: bool = False,
) -> Ops:
    """The opcodes joblib writes for one numpy array: a NumpyArrayWrapper and its BUILD; the
    caller appends the bytes joblib writes after it (padding + data, or a nested pickle)."""
    ops = Ops()
    if via_reconstructor:
        ops.global_("copyreg", "_reconstructor").global_(
            "joblib.numpy_pickle", "NumpyArrayWrapper"
        ).global_("builtins", "object").none().raw(b"\x87").reduce()
    else:
        ops.global_("joblib.numpy_pickle", "NumpyArrayWrapper").empty_tuple().newobj()
    ops.empty_dict().mark()
    ops.unicode("subclass").global_("numpy", "ndarray")
    ops.unicode("shape").mark()
    for dim in shape:
        ops.int_(dim)
    ops.tuple_()
    ops.unicode("order").unicode("C")
    ops.unicode("dtype").global_("numpy", "dtype").unicode(code).raw(b"\x89\x88").raw(b"\x87")
    ops.reduce().mark().int_(3).unicode("<").none().none().none().raw(b"J\xff\xff\xff\xff")
    ops.raw(b"J\xff\xff\xff\xff").int_(flags).tuple_().build_()
    ops.unicode("allow_mmap").raw(b"\x88")
    if alignment is not None:
        ops.unicode("numpy_array_alignment_bytes").int_(alignment)
    ops.setitems().build_()
    return ops.raw(payload)


def _joblib_payload_after_array(marker: str) -> bytes:
    # The array bytes are skipped exactly as joblib reads them; what follows is opcodes again.
    data = b"\x03\xff\xff\xff" + struct.pack("<3d", 1.0, 2.0, 3.0)
    ops = Ops().proto(2).empty_list().mark()
    ops.raw(joblib_array(data).build())
    return ops.call1("os", "system", _touch(marker)).appends().stop().build()


def _joblib_object_array_payload(marker: str) -> bytes:
    # An object array is a nested pickle read from the same file by a plain unpickler.
    nested = call_global("os", "system", _touch(marker))
    ops = Ops().proto(2).raw(joblib_array(nested, code="O8", flags=63, alignment=None).build())
    return ops.stop().build()


def _joblib_wrapper_by_reconstructor(marker: str) -> bytes:
    # The wrapper made by copyreg._reconstructor is still a NumpyArrayWrapper to joblib: its
    # array bytes must be skipped, or they could hide the payload that follows from the scan.
    hidden = b"\x00\x8e" + struct.pack("<Q", 40)  # would swallow the payload if parsed
    data = hidden + bytes(14)
    ops = Ops().proto(2).empty_list().mark()
    ops.raw(joblib_array(data, alignment=None, via_reconstructor=True).build())
    return ops.call1("os", "system", _touch(marker)).appends().stop().build()


def _joblib_array_inside_frame(marker: str) -> bytes:
    # joblib reads the array after the frame while the opcodes continue inside it.
    body = joblib_array(b"", alignment=None).build() + b"0" + b"N."
    return Ops().proto(4).frame(len(body)).raw(body).raw(bytes(24)).build()


def _max_ops(marker: str) -> bytes:
    # A long run of cheap opcodes before the payload: the scanner's budget must fail closed.
    return Ops().proto(2).raw(b"N0" * 5000).call1("os", "system", _touch(marker)).stop().build()


def _mark_mismatch_after_call(marker: str) -> bytes:
    return Ops().proto(2).call1("os", "system", _touch(marker)).raw(b"t").stop().build()


def _memo_miss(marker: str) -> bytes:
    return Ops().proto(2).call1("os", "system", _touch(marker)).binget(9).stop().build()


def _big_bytes_truncated(marker: str) -> bytes:
    # BINBYTES8 claiming 4 GiB after the payload: must be skipped by seek and reported as
    # truncated, never read.
    return (
        Ops()
        .proto(4)
        .call1("os", "system", _touch(marker))
        .raw(b"\x8e" + struct.pack("<Q", 4 << 30) + b"abc")
        .build()
    )


MALICIOUS: tuple[Malicious, ...] = (
    _calls(
        "global_reduce_os_system", "classic __reduce__ payload", "os", "system", "touch {marker}"
    ),
    _calls(
        "global_reduce_posix_system",
        "classic (os.system pickles as posix.system)",
        "posix",
        "system",
        "touch {marker}",
    ),
    _calls(
        "global_reduce_nt_system", "classic (Windows spelling)", "nt", "system", "touch {marker}"
    ),
    _calls(
        "stack_global_os_system",
        "protocol 4 STACK_GLOBAL",
        "os",
        "system",
        "touch {marker}",
        proto=4,
    ),
    Malicious("inst_os_system", "protocol 0 INST opcode", _inst, global_=("os", "system")),
    Malicious("obj_os_system", "protocol 1 OBJ opcode", _obj, global_=("os", "system")),
    Malicious(
        "newobj_subprocess_popen",
        "NEWOBJ of a non-allowlisted class",
        _newobj,
        global_=("subprocess", "Popen"),
    ),
    Malicious(
        "newobj_ex_subprocess_popen",
        "NEWOBJ_EX of a non-allowlisted class",
        _newobj_ex,
        global_=("subprocess", "Popen"),
    ),
    Malicious(
        "build_setstate_custom_class",
        "BUILD -> __setstate__ (threats.md 4.3)",
        _build_setstate,
        global_=("evil_lib.payload", "Runner"),
    ),
    Malicious(
        "build_on_global_class",
        "BUILD on a class object (attribute overwrite)",
        _build_on_global,
        rules=frozenset({"pickle-global-mutation"}),
    ),
    Malicious(
        "ext1_extension_registry",
        "copyreg extension codes (threats.md 4.3)",
        _ext_code,
        rules=frozenset({"pickle-extension-code"}),
    ),
    Malicious(
        "ext4_extension_registry",
        "copyreg extension codes (threats.md 4.3)",
        _ext4_code,
        rules=frozenset({"pickle-extension-code"}),
    ),
    Malicious(
        "memo_decoy_overwritten_binput",
        "picklescan issue #22, ImaginaryCTF 2023",
        _memo_decoy,
        global_=("os", "system"),
    ),
    Malicious(
        "memo_decoy_popped",
        "modelaudit PR #518 popped decoy",
        _memo_decoy_popped,
        global_=("os", "system"),
    ),
    Malicious(
        "stack_global_nonconstant_join",
        "non-constant STACK_GLOBAL operand (4.3)",
        _nonconstant_stack_global,
        rules=frozenset({"pickle-nonconstant-global"}),
    ),
    Malicious(
        "stack_global_operand_from_call_in_memo",
        "non-constant operand via BINGET (4.3)",
        _stack_global_from_call_in_memo,
        rules=frozenset({"pickle-nonconstant-global"}),
    ),
    Malicious(
        "protocol0_without_magic",
        "CVE-2025-10155 (JFrog)",
        _proto0_no_magic,
        global_=("os", "system"),
    ),
    Malicious(
        "protocol1_without_magic",
        "CVE-2025-10155 (JFrog)",
        _proto1_no_magic,
        global_=("os", "system"),
    ),
    Malicious(
        "escaped_string_operands",
        "escaped STRING literals (threats.md 4.3)",
        _escaped_string_operands,
        global_=("os", "system"),
    ),
    Malicious(
        "raw_unicode_escape_operands",
        "escaped UNICODE literals (threats.md 4.3)",
        _unicode0_operands,
        global_=("os", "system"),
    ),
    Malicious(
        "dotted_builtins_getattr_self_exec",
        "attribute walk (threats.md 4.2)",
        _getattr_self_walk,
        global_=("builtins", "getattr.__self__.exec"),
    ),
    Malicious(
        "dotted_torch_utils_os_system",
        "attribute walk torch._utils + os.system (4.2)",
        _torch_utils_os_system,
        global_=("torch._utils", "os.system"),
    ),
    Malicious(
        "dotted_print_subclasses",
        "modelscan issue #338 builtins introspection",
        _print_subclasses,
        global_=("builtins", "print.__class__.__base__.__subclasses__"),
    ),
    Malicious(
        "compat_builtin_eval",
        "_compat_pickle alias __builtin__ (threats.md 4.2)",
        _simple("__builtin__", "eval", "1"),
        global_=("builtins", "eval"),
    ),
    Malicious(
        "compat_copy_reg_reconstructor_popen",
        "_compat_pickle alias copy_reg (threats.md 4.2)",
        _copy_reg_reconstructor,
        global_=("subprocess", "Popen"),
    ),
    Malicious(
        "compat_commands_getoutput",
        "_compat_pickle alias commands -> subprocess",
        _simple("commands", "getoutput", "touch {marker}"),
        global_=("subprocess", "getoutput"),
    ),
    _calls(
        "pip_main", "CVE-2025-1716 (Sonatype)", "pip", "main", "install", "--dry-run", "nothing"
    ),
    Malicious(
        "asyncio_unix_subprocess_transport",
        "CVE-2025-10157 (JFrog)",
        _asyncio_transport,
        global_=("asyncio.unix_events", "_UnixSubprocessTransport._start"),
    ),
    _calls(
        "pkgutil_resolve_name",
        "ModelAudit universal picklescan bypass (2025-26)",
        "pkgutil",
        "resolve_name",
        "os:system",
    ),
    _calls(
        "uuid_get_command_stdout",
        "CVE-2026-56315",
        "uuid",
        "_get_command_stdout",
        "touch",
        "{marker}",
    ),
    _calls("imaplib_imap4_stream", "CVE-2026-56315", "imaplib", "IMAP4_stream", "touch {marker}"),
    _calls(
        "osx_support_read_output",
        "CVE-2026-56315",
        "_osx_support",
        "_read_output",
        "touch {marker}",
    ),
    _calls("pyrepl_pager", "CVE-2026-56315", "_pyrepl.pager", "pipe_pager", "x", "touch {marker}"),
    _calls("logging_filehandler", "CVE-2026-56304", "logging", "FileHandler", "{marker}"),
    _calls(
        "io_open",
        "HF PoC vs picklescan 1.0.5 + modelscan 0.8.8 (2026)",
        "io",
        "open",
        "{marker}",
        "w",
    ),
    _calls("bz2_open", "HF PoC (2026)", "bz2", "open", "{marker}", "w"),
    _calls("gzip_open", "HF PoC (2026)", "gzip", "open", "{marker}", "w"),
    _calls("lzma_open", "HF PoC (2026)", "lzma", "open", "{marker}", "w"),
    _calls("sqlite3_connect", "HF PoC (2026)", "sqlite3", "connect", "{marker}"),
    _calls(
        "torch_collect_env_run",
        "modelscan issue #338 (library gadget)",
        "torch.utils.collect_env",
        "run",
        "touch {marker}",
    ),
    _calls(
        "multiprocessing_spawnv_passfds",
        "modelscan issue #338 (library gadget)",
        "multiprocessing.util",
        "spawnv_passfds",
        "/usr/bin/touch",
    ),
    _calls(
        "timeit_timeit", "modelscan PR #313 list", "timeit", "timeit", f"open({'{marker}'!r}, 'w')"
    ),
    _calls("cprofile_run", "modelscan PR #313 list", "cProfile", "run", "open('{marker}', 'w')"),
    _calls(
        "code_interactive_interpreter", "modelscan PR #313 list", "code", "InteractiveInterpreter"
    ),
    _calls("ensurepip_run_pip", "modelscan PR #313 list", "ensurepip", "_run_pip", "--version"),
    Malicious(
        "functools_partial_build_kwargs",
        "threats.md 4.7 (partial + BUILD kwargs)",
        _functools_partial,
        global_=("functools", "partial"),
    ),
    Malicious(
        "types_functiontype_marshal_loads",
        "threats.md 4.1/4.7 (marshal + FunctionType)",
        _marshal_function,
        global_=("marshal", "loads"),
    ),
    Malicious(
        "pickle_loads_embedded_pickle",
        "second-stage loader (threats.md 4.7)",
        _pickle_loads_embedded,
        global_=("pickle", "loads"),
    ),
    Malicious(
        "base64_pickle_loads_chain",
        "second-stage loader via base64 (threats.md 4.7)",
        _base64_embedded,
        global_=("_pickle", "loads"),
    ),
    _calls("builtins_exec", "classic", "builtins", "exec", "open('{marker}','w')"),
    _calls("runpy_run_path", "classic", "runpy", "run_path", "{marker}"),
    Malicious(
        "nullifai_truncated_after_payload",
        "nullifAI (ReversingLabs, Feb 2025)",
        _nullifai_truncated,
        rules=frozenset({"pickle-global-not-allowed", "pickle-malformed"}),
        global_=("os", "system"),
        extra={"malformed_critical": True},
    ),
    Malicious(
        "payload_then_invalid_opcode",
        "nullifAI / Exception-Oriented Programming",
        _invalid_opcode_after,
        rules=frozenset({"pickle-global-not-allowed", "pickle-malformed"}),
        global_=("os", "system"),
        extra={"malformed_critical": True},
    ),
    Malicious(
        "payload_then_mark_mismatch",
        "Hide and Seek, Exception-Oriented Programming",
        _mark_mismatch_after_call,
        rules=frozenset({"pickle-malformed"}),
        global_=("os", "system"),
        extra={"malformed_critical": True},
    ),
    Malicious(
        "payload_then_memo_miss",
        "Hide and Seek, Exception-Oriented Programming",
        _memo_miss,
        rules=frozenset({"pickle-malformed"}),
        global_=("os", "system"),
        extra={"malformed_critical": True},
    ),
    Malicious(
        "payload_then_truncated_binbytes8",
        "nullifAI + 4 GiB length claim",
        _big_bytes_truncated,
        rules=frozenset({"pickle-malformed"}),
        global_=("os", "system"),
        extra={"malformed_critical": True},
    ),
    Malicious(
        "pop_after_call",
        "promptfoo disclosure against fickling",
        _pop_after_call,
        global_=("os", "system"),
    ),
    Malicious(
        "second_proto_mid_stream",
        "parser differential (threats.md 4.6)",
        _second_proto,
        rules=frozenset({"pickle-malformed", "pickle-global-not-allowed"}),
        global_=("os", "system"),
    ),
    Malicious(
        "multi_pickle_third_malicious",
        "modelscan 0.8.8 first-pickle-only (huntr, 2026)",
        _multi_third,
        global_=("os", "system"),
        multi=True,
    ),
    Malicious(
        "referenced_not_called",
        "default deny: a reference is enough",
        _sneaky_nested_list_global,
        global_=("os", "system"),
    ),
    Malicious(
        "setitem_on_os_environ",
        "process-state mutation via SETITEM",
        _setitem_on_global,
        rules=frozenset({"pickle-global-mutation"}),
        global_=("os", "environ"),
    ),
    Malicious(
        "append_to_sys_path",
        "process-state mutation via APPEND",
        _append_to_sys_path,
        rules=frozenset({"pickle-global-mutation"}),
        global_=("sys", "path"),
    ),
    Malicious(
        "call_of_call_result",
        "indirect call (threats.md 4.3)",
        _indirect_call,
        rules=frozenset({"pickle-indirect-call"}),
    ),
    Malicious(
        "reference_only_global_called",
        "allowed value used as a callable",
        _misused_reference,
        rules=frozenset({"pickle-call-not-allowed"}),
    ),
    Malicious(
        "reconstructor_constructs_a_function",
        "PickleBall-style role check",
        _reconstructor_with_function,
        rules=frozenset({"pickle-call-not-allowed"}),
    ),
    Malicious(
        "reduce_runs_init_of_newobj_only_class",
        "PickleBall (CCS 2025) per-use policies",
        _reduce_of_newobj_only_class,
        rules=frozenset({"pickle-call-not-allowed"}),
    ),
    Malicious(
        "inst_runs_init_of_newobj_only_class",
        "PickleBall (CCS 2025) per-use policies",
        _inst_of_trainer_state,
        rules=frozenset({"pickle-call-not-allowed"}),
        context="generic",
    ),
    Malicious(
        "joblib_payload_after_array_data",
        "joblib NumpyArrayWrapper layout (Hide and Seek: loader-specific paths)",
        _joblib_payload_after_array,
        global_=("os", "system"),
        context="joblib",
    ),
    Malicious(
        "joblib_object_array_nested_pickle",
        "joblib object arrays are nested pickles (Hide and Seek)",
        _joblib_object_array_payload,
        global_=("os", "system"),
        context="joblib",
    ),
    Malicious(
        "joblib_wrapper_via_reconstructor",
        "parser differential on joblib array data (threats.md 4.6)",
        _joblib_wrapper_by_reconstructor,
        global_=("os", "system"),
        context="joblib",
    ),
    Malicious(
        "joblib_array_inside_frame",
        "frame/array read-order differential (threats.md 4.6)",
        _joblib_array_inside_frame,
        rules=frozenset({"pickle-malformed"}),
        context="joblib",
    ),
    Malicious(
        "persistent_id_without_loader",
        "joblib/numpy loaders have no persistent_load",
        _persistent_id_joblib,
        rules=frozenset({"pickle-malformed"}),
        context="joblib",
    ),
    Malicious(
        "opcode_budget_exhausted",
        "fail closed on resource limits (threats.md 4.6)",
        _max_ops,
        rules=frozenset({"pickle-malformed"}),
        extra={"max_ops": 2000},
    ),
)


# --------------------------------------------------------------------------------------------
# Benign stdlib samples.


def benign_stdlib() -> list[tuple[str, bytes]]:
    """(id, pickle bytes) for plain data made with pickle.dumps at every protocol."""
    values: dict[str, object] = {
        "dict": {"lr": 0.001, "epochs": 3, "name": "run", "flags": [True, False, None]},
        "list": [1, 2.5, "three", b"four", (5, 6), {"seven": 7}, -(2**70)],
        "ordered_dict": collections.OrderedDict([("b", 1), ("a", [1, 2])]),
        "datetime": {
            "when": datetime.datetime(2025, 2, 3, 4, 5, 6, 7),
            "day": datetime.date(2024, 1, 1),
            "time": datetime.time(1, 2, 3),
            "delta": datetime.timedelta(days=2, seconds=3),
            "aware": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
            "offset": datetime.timezone(datetime.timedelta(hours=2), "CEST"),
        },
        "decimal": [decimal.Decimal("1.25"), decimal.Decimal("-0")],
        "counter": collections.Counter("abracadabra"),
        "namespace": argparse.Namespace(lr=0.1, model="bert", layers=[1, 2]),
        "sets_and_bytes": {"s": {1, 2}, "f": frozenset({"x"}), "b": b"\x00\xff", "e": b""},
        "bytearray_complex": [bytearray(b"abc"), complex(1, 2)],
        "defaultdict": collections.defaultdict(list, {"a": [1]}),
        "shared_refs": _shared_refs(),
        "unicode": "naïve \u2013 ünïcödé \n 'quoted' \"double\" \\ backslash",
        "big_bytes": bytes(range(256)) * 300,
    }
    samples = []
    for name, value in values.items():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            samples.append((f"{name}-p{protocol}", pickle.dumps(value, protocol=protocol)))
    return samples


def _shared_refs() -> object:
    inner = [1, 2]
    return {"a": inner, "b": inner, "c": (inner, inner)}


# --------------------------------------------------------------------------------------------
# Real checkpoints (Python 3.11 with torch 2.13.0, numpy, scikit-learn, joblib, transformers,
# accelerate). Run as `python pickle_samples.py real OUT_DIR`.


def _tiny_net_class(torch: Any) -> Any:
    """A user-defined nn.Module, registered in __main__ as full-module pickles of scripts are."""
    nn = torch.nn

    def __init__(self: Any) -> None:
        nn.Module.__init__(self)
        self.fc = nn.Linear(4, 3)
        self.act = nn.ReLU()

    def forward(self: Any, x: Any) -> Any:
        return self.act(self.fc(x))

    cls = type("TinyNet", (nn.Module,), {"__init__": __init__, "forward": forward})
    cls.__module__ = "__main__"
    vars(sys.modules["__main__"])["TinyNet"] = cls
    return cls


def _zoo(torch: Any) -> Any:
    """An nn.Sequential made only of torch.nn classes, to build the structural allowlist."""
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(4, 4),
        nn.Bilinear(2, 2, 2),
        nn.Identity(),
        nn.Conv1d(2, 2, 3),
        nn.Conv2d(2, 2, 3),
        nn.Conv3d(1, 1, 1),
        nn.ConvTranspose1d(2, 2, 3),
        nn.ConvTranspose2d(2, 2, 3),
        nn.BatchNorm1d(4),
        nn.BatchNorm2d(2),
        nn.BatchNorm3d(2),
        nn.LayerNorm(4),
        nn.GroupNorm(1, 2),
        nn.InstanceNorm2d(2),
        nn.RMSNorm(4),
        nn.Embedding(10, 4, padding_idx=0),
        nn.EmbeddingBag(10, 4),
        nn.Dropout(0.1),
        nn.Dropout1d(0.1),
        nn.Dropout2d(0.1),
        nn.ReLU(),
        nn.ReLU6(),
        nn.LeakyReLU(),
        nn.PReLU(),
        nn.ELU(),
        nn.SELU(),
        nn.CELU(),
        nn.GELU(),
        nn.SiLU(),
        nn.Mish(),
        nn.Sigmoid(),
        nn.Tanh(),
        nn.Softmax(dim=-1),
        nn.LogSoftmax(dim=-1),
        nn.Softplus(),
        nn.Hardswish(),
        nn.Hardsigmoid(),
        nn.Hardtanh(),
        nn.GLU(),
        nn.MaxPool1d(2),
        nn.MaxPool2d(2),
        nn.AvgPool1d(2),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool1d(1),
        nn.AdaptiveAvgPool2d(1),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Unflatten(1, (2, 2)),
        nn.Upsample(scale_factor=2),
        nn.ZeroPad2d(1),
        nn.PixelShuffle(2),
        nn.LSTM(4, 4, batch_first=True),
        nn.GRU(4, 4),
        nn.RNN(4, 4),
        nn.LSTMCell(4, 4),
        nn.GRUCell(4, 4),
        nn.MultiheadAttention(4, 2),
        nn.TransformerEncoderLayer(4, 2, dim_feedforward=8),
        nn.TransformerDecoderLayer(4, 2, dim_feedforward=8),
        nn.ModuleList([nn.Linear(2, 2)]),
        nn.ModuleDict({"a": nn.Linear(2, 2)}),
        nn.ParameterList([nn.Parameter(torch.zeros(2))]),
        nn.ParameterDict({"p": nn.Parameter(torch.zeros(2))}),
        nn.CrossEntropyLoss(),
        nn.MSELoss(),
        nn.L1Loss(),
        nn.SmoothL1Loss(),
        nn.HuberLoss(),
        nn.BCELoss(),
        nn.BCEWithLogitsLoss(),
        nn.NLLLoss(),
        nn.KLDivLoss(),
        nn.CTCLoss(),
        nn.CosineEmbeddingLoss(),
        nn.MarginRankingLoss(),
        nn.TripletMarginLoss(),
        nn.ConvTranspose3d(1, 1, 1),
        nn.InstanceNorm1d(2),
        nn.InstanceNorm3d(2),
        nn.LocalResponseNorm(2),
        nn.SyncBatchNorm(2),
        nn.AlphaDropout(0.1),
        nn.Dropout3d(0.1),
        nn.Threshold(0.1, 0.0),
        nn.Softsign(),
        nn.Softmin(dim=-1),
        nn.Softmax2d(),
        nn.LogSigmoid(),
        nn.Tanhshrink(),
        nn.Hardshrink(),
        nn.Softshrink(),
        nn.RReLU(),
        nn.MaxPool3d(2),
        nn.AvgPool3d(2),
        nn.LPPool1d(2, 2),
        nn.LPPool2d(2, 2),
        nn.AdaptiveMaxPool1d(1),
        nn.AdaptiveAvgPool3d(1),
        nn.AdaptiveMaxPool3d(1),
        nn.MaxUnpool2d(2),
        nn.FractionalMaxPool2d(2, output_size=1),
        nn.Fold((4, 4), 2),
        nn.Unfold(2),
        nn.ReflectionPad1d(1),
        nn.ReflectionPad2d(1),
        nn.ReplicationPad1d(1),
        nn.ReplicationPad2d(1),
        nn.ConstantPad1d(1, 0.0),
        nn.ConstantPad2d(1, 0.0),
        nn.ZeroPad1d(1),
        nn.CircularPad2d(1),
        nn.PixelUnshuffle(2),
        nn.UpsamplingNearest2d(scale_factor=2),
        nn.UpsamplingBilinear2d(scale_factor=2),
        nn.ChannelShuffle(2),
        nn.CosineSimilarity(),
        nn.PairwiseDistance(),
        nn.RNNCell(4, 4),
        nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1, enable_nested_tensor=False),
        nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 8, activation="gelu"), 1),
        nn.Transformer(4, 2, 1, 1, 8),
    )


def generate_real_samples(out_dir: Path) -> list[dict[str, Any]]:
    """Write real benign files into out_dir; return the manifest (also saved as JSON)."""
    import random

    torch = importlib.import_module("torch")
    np = importlib.import_module("numpy")
    joblib = importlib.import_module("joblib")
    nn = torch.nn
    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []

    def save_torch(name: str, obj: Any, context: str, **extra: Any) -> None:
        legacy = extra.pop("legacy", False)
        protocol = extra.pop("protocol", 2)
        path = out_dir / name
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
        manifest.append(
            {
                "file": name,
                "container": "torch-legacy" if legacy else "torch-zip",
                "context": context,
                **extra,
            }
        )

    # --- TORCH context: state dicts ----------------------------------------------------------
    linear = nn.Linear(8, 4)
    state = {
        "linear": linear.state_dict(),
        "conv": nn.Conv2d(3, 4, 3).state_dict(),
        "bn": nn.BatchNorm2d(4).state_dict(),  # num_batches_tracked is an int64 tensor
        "ln": nn.LayerNorm(8).state_dict(),
        "emb": nn.Embedding(16, 8).state_dict(),
        "lstm": nn.LSTM(4, 4).state_dict(),
    }
    save_torch("state_dict_modules.pt", state, "torch")

    dtypes = [
        "float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32",
        "int64", "bool", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2",
        "uint16", "uint32", "uint64",
    ]  # fmt: skip
    by_dtype = {name: torch.ones(3).to(getattr(torch, name)) for name in dtypes}
    save_torch("state_dict_dtypes.pt", by_dtype, "torch")
    save_torch("state_dict_dtypes_proto4.pt", by_dtype, "torch", protocol=4)

    emb = nn.Embedding(16, 8)
    head = nn.Linear(8, 16, bias=False)
    head.weight = emb.weight  # tied weights: one storage, two keys
    tied = collections.OrderedDict(
        [("emb.weight", emb.weight), ("head.weight", head.weight),
         ("view", emb.weight[2:5, 1:3]), ("t", emb.weight.t())]
    )  # fmt: skip
    save_torch("state_dict_tied_views.pt", tied, "torch")

    misc = {
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "device": torch.device("cpu"),
        "layout": torch.strided,
        "param": nn.Parameter(torch.randn(2, 2)),
        "frozen": nn.Parameter(torch.randn(2), requires_grad=False),
        "sparse_coo": torch.randn(3, 3).to_sparse(),
        "sparse_csr": torch.eye(3).to_sparse_csr(),
        "quantized": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.quint8),
        "qchannel": torch.quantize_per_channel(
            torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.qint8
        ),
        "meta_free": torch.empty(0),
        "scalar": torch.tensor(3.5),
        "named": {"a": 1, "b": [1.0, 2.0], "c": (None, True)},
    }
    save_torch("tensors_misc.pt", misc, "torch")

    full_zoo = _zoo(torch)
    save_torch("full_module_torch_only.pt", full_zoo, "torch")
    save_torch("full_module_torch_only_proto4.pt", full_zoo, "torch", protocol=4)

    tiny_net = _tiny_net_class(torch)()
    save_torch(
        "full_module_user_class.pt", tiny_net, "torch", user_globals=[["__main__", "TinyNet"]]
    )

    # --- legacy (non-zip) serialization: several pickles in a row, then raw storages ----------
    save_torch("legacy_state_dict.pt", state, "torch", legacy=True)
    save_torch("legacy_dtypes.pt", by_dtype, "torch", legacy=True)
    save_torch(
        "legacy_full_module_user_class.pt",
        tiny_net,
        "torch",
        legacy=True,
        user_globals=[["__main__", "TinyNet"]],
    )
    save_torch("legacy_full_module_torch_only.pt", full_zoo, "torch", legacy=True)

    # --- GENERIC context: trainer metadata ---------------------------------------------------
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    for opt_name, opt in [
        ("sgd", torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)),
        ("adam", torch.optim.Adam(model.parameters(), lr=1e-3)),
        ("adamw", torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)),
    ]:
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
        save_torch(f"optimizer_{opt_name}.pt", opt.state_dict(), "generic")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedulers = {
        "steplr": torch.optim.lr_scheduler.StepLR(opt, step_size=2),
        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10),
        "lambda": torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0),
        "linear_warmup": torch.optim.lr_scheduler.LinearLR(opt),
    }
    for sched_name, sched in schedulers.items():
        opt.step()
        sched.step()
        save_torch(f"scheduler_{sched_name}.pt", sched.state_dict(), "generic")
    save_torch("scaler.pt", torch.amp.GradScaler("cpu").state_dict(), "generic")

    random.seed(0)
    np.random.seed(0)
    rng_state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }  # what transformers.Trainer._save_rng_state writes as rng_state.pth
    save_torch("rng_state.pth", rng_state, "generic")

    transformers = importlib.import_module("transformers")
    args = transformers.TrainingArguments(
        output_dir=str(out_dir / "trainer"), report_to=[], learning_rate=3e-5,
        eval_strategy="steps", save_strategy="epoch", lr_scheduler_type="cosine",
    )  # fmt: skip
    save_torch("training_args.bin", args, "generic")
    seq2seq = transformers.Seq2SeqTrainingArguments(
        output_dir=str(out_dir / "trainer"), report_to=[], debug="underflow_overflow",
        predict_with_generate=True,
    )  # fmt: skip
    save_torch("training_args_seq2seq.bin", seq2seq, "generic")
    save_torch("namespace_args.bin", argparse.Namespace(lr=0.1, seed=1, tags=["a"]), "generic")
    save_torch(
        "trainer_state_like.pt",
        {"epoch": 1.5, "global_step": 10, "when": datetime.datetime(2025, 1, 2),
         "best": decimal.Decimal("0.5"), "counts": collections.Counter("aab"),
         "np_scalar": np.float32(0.25), "np_int": np.int64(3), "np_array": np.arange(4)},
        "generic",
    )  # fmt: skip

    # --- full transformers model pickle: user classes (library classes) -----------------------
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16,
    )  # fmt: skip
    bert = transformers.BertModel(config)
    save_torch(
        "full_module_bert.pt",
        bert,
        "torch",
        user_module_prefixes=["transformers."],
        must_report=[["transformers.models.bert.modeling_bert", "BertModel"]],
    )

    # --- JOBLIB context: scikit-learn estimators ------------------------------------------------
    sklearn = {
        name: importlib.import_module(f"sklearn.{name}")
        for name in ["linear_model", "ensemble", "pipeline", "preprocessing", "tree", "svm",
                     "cluster", "neural_network", "decomposition", "feature_extraction.text",
                     "naive_bayes", "neighbors"]
    }  # fmt: skip
    rs = np.random.RandomState(0)
    x = rs.randn(40, 4)
    y = (x[:, 0] > 0).astype(int)
    estimators: dict[str, Any] = {
        "logistic_regression": sklearn["linear_model"].LogisticRegression().fit(x, y),
        "random_forest": sklearn["ensemble"]
        .RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
        .fit(x, y),
        "pipeline_scaler_logreg": sklearn["pipeline"]
        .Pipeline(
            [
                ("scale", sklearn["preprocessing"].StandardScaler()),
                ("clf", sklearn["linear_model"].LogisticRegression()),
            ]
        )
        .fit(x, y),
        "linear_regression": sklearn["linear_model"].LinearRegression().fit(x, x[:, 1]),
        "ridge": sklearn["linear_model"].Ridge().fit(x, x[:, 1]),
        "decision_tree_regressor": sklearn["tree"]
        .DecisionTreeRegressor(max_depth=2)
        .fit(x, x[:, 1]),
        "svc": sklearn["svm"].SVC().fit(x, y),
        "kmeans": sklearn["cluster"].KMeans(n_clusters=2, n_init=1, random_state=0).fit(x),
        "gradient_boosting": sklearn["ensemble"]
        .GradientBoostingClassifier(n_estimators=3, random_state=0)
        .fit(x, y),
        "mlp": sklearn["neural_network"]
        .MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
        .fit(x, y),
        "pca": sklearn["decomposition"].PCA(n_components=2).fit(x),
        "gaussian_nb": sklearn["naive_bayes"].GaussianNB().fit(x, y),
        "knn": sklearn["neighbors"].KNeighborsClassifier(n_neighbors=3).fit(x, y),
        "tfidf": sklearn["feature_extraction.text"]
        .TfidfVectorizer()
        .fit(["a cat sat", "a dog ran", "the cat ran"]),
        "onehot_strings": sklearn["preprocessing"]
        .OneHotEncoder()
        .fit(np.array([["red"], ["green"], ["red"]], dtype=object)),
        "label_encoder": sklearn["preprocessing"].LabelEncoder().fit(["x", "y", "x"]),
        "plain_arrays": {
            "a": np.arange(6).reshape(2, 3),
            "f": np.asfortranarray(np.ones((2, 3))),
            "obj": np.array(["a", None, 3], dtype=object),
            "s": np.float64(1.5),
        },
    }
    import warnings

    warnings.filterwarnings("ignore")
    for est_name, est in estimators.items():
        joblib.dump(est, out_dir / f"{est_name}.joblib")
        manifest.append({"file": f"{est_name}.joblib", "container": "joblib", "context": "joblib"})
    compressions: list[int | tuple[str, int]] = [3, ("gzip", 3), ("lzma", 3), ("bz2", 3)]
    for compress in compressions:
        tag = compress if isinstance(compress, int) else compress[0]
        name = f"random_forest_compressed_{tag}.joblib"
        joblib.dump(estimators["random_forest"], out_dir / name, compress=compress)
        manifest.append({"file": name, "container": "joblib", "context": "joblib"})
        name = f"pipeline_compressed_{tag}.joblib"
        joblib.dump(estimators["pipeline_scaler_logreg"], out_dir / name, compress=compress)
        manifest.append({"file": name, "container": "joblib", "context": "joblib"})

    # --- NUMPY context: object arrays in .npy ---------------------------------------------------
    object_arrays = {
        "strings": np.array(["a", "bb", None], dtype=object),
        "mixed": np.array([1, 2.5, "x", {"k": [1, 2]}, (3, 4)], dtype=object),
        "nested_arrays": np.array([np.arange(3), np.ones(2)], dtype=object),
    }
    for arr_name, arr in object_arrays.items():
        np.save(out_dir / f"{arr_name}.npy", arr, allow_pickle=True)
        manifest.append({"file": f"{arr_name}.npy", "container": "npy", "context": "numpy"})

    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "real":
        generate_real_samples(Path(argv[2]))
        return 0
    print(f"usage: {argv[0]} real OUT_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
