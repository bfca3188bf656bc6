"""`.bin` (and other pickle-family names) on content that is not a pickle.

`.bin` is the name torch checkpoints, legacy llama.cpp/whisper.cpp GGML weights, CTranslate2's
model.bin, fastText and word2vec files all use. A name that claims a pickle on other content is
a MEDIUM finding (blocked), except:

- GGML content (magic b"lmgg", b"fmgg", b"tjgg", b"algg") is a reading `.bin` may have: weights
  only, no finding;
- raw bytes or text on which unpickling provably raises before anything is imported or called
  (torch.load's legacy path unpickles from byte 0): a LOW finding, allowed.

Everything else keeps the MEDIUM finding: bytes that reach an import or a call before they break
are what CVE-2025-10155 and nullifAI use (threats.md section 2)."""

from __future__ import annotations

import gzip
import io
import pickle
import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.policy import Verdict, decide
from proxy.scan.engine import scan_path
from proxy.scan.report import Finding, ScanReport, Severity
from proxy.scan.sniff import Kind, name_mismatch, sniff, unpickling_fails_at

RNG = random.Random(20260612)


def noise(size: int) -> bytes:
    return RNG.randbytes(size)


def ggml(magic: bytes, version: int | None, hparams: tuple[int, ...]) -> bytes:
    header = magic + (struct.pack("<I", version) if version is not None else b"")
    return header + struct.pack(f"<{len(hparams)}i", *hparams) + noise(4096)


LLAMA_HPARAMS = (32000, 4096, 256, 32, 32, 128, 2)  # n_vocab, n_embd, n_mult, ... ftype
GGML_FILES = {
    "whisper.cpp ggml-base.en.bin (GGML)": (
        "ggml-base.en.bin",
        ggml(b"lmgg", None, (51864, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1)),
    ),
    "llama.cpp GGMF v1": ("ggml-model-f16.bin", ggml(b"fmgg", 1, LLAMA_HPARAMS)),
    "llama.cpp GGJT v3": ("ggml-model-q4_0.bin", ggml(b"tjgg", 3, LLAMA_HPARAMS)),
    "llama.cpp GGLA LoRA adapter": ("ggml-adapter-model.bin", ggml(b"algg", 1, (8, 16))),
}


def scan(tmp_path: Path, name: str, data: bytes) -> ScanReport:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_path(path)


def mismatch(report: ScanReport) -> list[Finding]:
    return [f for f in report.findings if f.rule == "format-name-mismatch"]


class _Ran(Exception):
    pass


class _NothingRuns(pickle.Unpickler):
    """The C unpickler, stopped at the first import or persistent id (nothing else can reach
    code: before an import only builtin objects exist)."""

    def find_class(self, module: str, name: str, /) -> type:
        raise _Ran(f"import {module}.{name}")

    def persistent_load(self, pid: object, /) -> object:
        raise _Ran("persistent_load")


def real_unpickling(data: bytes) -> str:
    """'raises', 'runs' (reached an import) or 'loads' (returned an object)."""
    try:
        _NothingRuns(io.BytesIO(data)).load()
    except _Ran:
        return "runs"
    except Exception:
        return "raises"
    return "loads"


# --- GGML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(GGML_FILES))
def test_ggml_bin_is_allowed(tmp_path: Path, case: str) -> None:
    name, data = GGML_FILES[case]
    report = scan(tmp_path, name, data)
    assert report.format is Kind.GGML
    assert report.findings == ()
    assert decide(report).verdict is Verdict.ALLOW
    # and no pickle loader could run it: every magic breaks the unpickler at byte 0
    assert unpickling_fails_at(data[:64], len(data)) == 0
    assert real_unpickling(data) == "raises"


@pytest.mark.parametrize(
    "head",
    [
        b"tjgg\x04\x00\x00\x00",
        b"fmgg\x02\x00\x00\x00",
        b"algg\x00\x00\x00\x00",
        b"GGML\x01\x00\x00\x00",
        b"lmgg",
    ],
    ids=["ggjt-v4", "ggmf-v2", "ggla-v0", "wrong-byte-order", "too-short"],
)
def test_ggml_needs_a_known_magic_and_version(head: bytes) -> None:
    assert Kind.GGML not in sniff(head, size=len(head))


def test_ggml_under_a_torch_name_other_than_bin_is_low(tmp_path: Path) -> None:
    report = scan(tmp_path, "model.pt", GGML_FILES["llama.cpp GGJT v3"][1])
    assert [(f.severity, f.location) for f in mismatch(report)] == [(Severity.LOW, "model.pt")]
    assert decide(report).verdict is Verdict.ALLOW


# --- non-pickle .bin ----------------------------------------------------------------------------

NOT_PICKLES = {
    # binary version 6, then the spec name as a uint16-length string
    "CTranslate2 model.bin": (
        "model.bin",
        struct.pack("<IH", 6, 22) + b"TransformerSpec\x00" + noise(4096),
    ),
    "fastText model.bin": ("cc.en.300.bin", struct.pack("<ii", 793712314, 12) + noise(4096)),
    "word2vec binary": ("GoogleNews-vectors.bin", b"3000000 300\n" + noise(4096)),
    "random bytes": ("weights.bin", b"\xd7" + noise(8191)),
    "text": ("merges.bin", b"hello world, this is a vocabulary\n" * 20),
    "inert opcodes, then an invalid one": ("state.pkl", b"N]K\x07" + b"\xff" + noise(100)),
    "a length beyond the end of the file": ("x.pt", b"X\xff\xff\xff\x7f" + noise(64)),
    "a MARK-taking opcode without MARK": ("w.ckpt", b"l" + noise(256)),
}


# Benign corpus samples (tests/artifacts.py): (technique, file name, bytes).
BIN_NOT_PICKLE = [
    *((f"ggml/{case}", *GGML_FILES[case]) for case in sorted(GGML_FILES)),
    *(
        (f"bin-not-pickle/{case}", *NOT_PICKLES[case])
        for case in ("CTranslate2 model.bin", "fastText model.bin", "word2vec binary")
    ),
]


@pytest.mark.parametrize("case", sorted(NOT_PICKLES))
def test_a_bin_that_no_unpickler_can_start_is_allowed_with_a_low_finding(
    tmp_path: Path, case: str
) -> None:
    name, data = NOT_PICKLES[case]
    report = scan(tmp_path, name, data)
    (finding,) = mismatch(report)
    assert finding.severity is Severity.LOW
    assert "before anything is imported or called" in finding.message
    assert decide(report).verdict is Verdict.ALLOW
    assert real_unpickling(data) == "raises"


# --- what stays blocked ---------------------------------------------------------------------------


def test_random_bytes_whose_start_reaches_a_call_are_blocked(tmp_path: Path) -> None:
    """CVE-2025-10155 (protocol 0 pickle without magic in a .bin) and nullifAI (the payload runs,
    then the stream breaks): the first bytes are opcodes up to a REDUCE, the rest is noise."""
    data = b"cos\nsystem\n(S'touch /tmp/airlock-never'\ntR" + noise(4096)
    report = scan(tmp_path, "pytorch_model.bin", data)
    assert decide(report).verdict is Verdict.BLOCK
    assert {"pickle-dangerous-call", "pickle-malformed"} <= {f.rule for f in report.findings}
    assert real_unpickling(data) == "runs"


def test_random_bytes_whose_start_reaches_an_import_keep_the_medium_finding(
    tmp_path: Path,
) -> None:
    """Too short to read as a pickle, but pickle.load imports `foo` (module code runs) before
    it breaks: not proven inert, so the name mismatch still blocks."""
    data = b"cfoo\nbar\n" + b"\xff" + noise(4096)
    report = scan(tmp_path, "weights.bin", data)
    assert Kind.PICKLE not in sniff(data[:65536], size=len(data))
    assert [f.severity for f in mismatch(report)] == [Severity.MEDIUM]
    assert decide(report).verdict is Verdict.BLOCK
    assert real_unpickling(data) == "runs"


UNPROVEN = {
    # pickle.load returns None here without raising: "raises before anything runs" is not shown
    "a complete pickle, then noise": b"N.\xff" + noise(512),
    # the C unpickler and pickletools may read a text argument differently
    "an INT that pickletools cannot parse": b"I0x10\n\xff" + noise(512),
    "a text argument without newline": b"I12345",
    "a persistent id": b"Q" + noise(64),
    "a container a loader would open": gzip.compress(b"\xff" * 100),
}


@pytest.mark.parametrize("case", sorted(UNPROVEN))
def test_unproven_content_keeps_the_medium_finding(tmp_path: Path, case: str) -> None:
    report = scan(tmp_path, "pytorch_model.bin", UNPROVEN[case])
    outer = [f for f in mismatch(report) if f.location == "pytorch_model.bin"]
    assert [f.severity for f in outer] == [Severity.MEDIUM]
    assert decide(report).verdict is Verdict.BLOCK


def test_the_proof_needs_the_failure_inside_the_head() -> None:
    kinds = (Kind.UNKNOWN,)
    # only inert opcodes in the first bytes, more of the file unseen: not proven
    finding = name_mismatch("w.bin", kinds, head=b"]" * 10, size=1000)
    assert finding is not None and finding.severity is Severity.MEDIUM
    # the same bytes as the whole file: the unpickler runs out of input
    finding = name_mismatch("w.bin", kinds, head=b"]" * 10, size=10)
    assert finding is not None and finding.severity is Severity.LOW
    # no head given (older callers): MEDIUM as before
    finding = name_mismatch("w.bin", kinds)
    assert finding is not None and finding.severity is Severity.MEDIUM


# --- the proof against the real unpickler -------------------------------------------------------

PICKLE_CHUNKS = st.sampled_from(
    [b"(", b".", b"0", b"1", b"2", b"N", b"]", b")", b"}", b"a", b"e", b"l", b"t", b"d", b"s",
     b"u", b"\x85", b"\x86", b"\x87", b"\x88", b"\x8f", b"\x90", b"\x91", b"\x94", b"K\x01",
     b"M\x01\x00", b"J\x01\x00\x00\x00", b"h\x00", b"q\x00", b"j\x00\x00\x00\x00",
     b"r\x00\x00\x00\x00", b"\x80\x02", b"\x80\x09", b"\x95\x05\x00\x00\x00\x00\x00\x00\x00",
     b"U\x02ab", b"C\x01x", b"\x8c\x01x", b"X\x01\x00\x00\x00x", b"X\xff\x00\x00\x00",
     b"T\xff\xff\xff\xff", b"I1\n", b"L5\n", b"F1.5\n", b"S'a'\n", b"Vx\n", b"g0\n", b"p0\n",
     b"cos\nsystem\n", b"\x93", b"R", b"b", b"Q", b"P0\n", b"\x82\x01", b"\n", b"\xff", b"\x00"]
)  # fmt: skip


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.lists(PICKLE_CHUNKS, max_size=12).map(b"".join), st.binary(max_size=24)),
    st.integers(0, 30),
)
def test_a_proven_failure_is_a_failure_of_the_c_unpickler(data: bytes, cut: int) -> None:
    """Whenever the proof says "raises before anything runs", Python's C unpickler (what
    torch.load and pickle.load use) raises without reaching an import or a persistent id, on
    the whole file and when the proof saw only its first bytes."""
    for head in (data, data[:cut]):
        if unpickling_fails_at(head, len(data)) is not None:
            assert real_unpickling(data) == "raises", (head, data)
