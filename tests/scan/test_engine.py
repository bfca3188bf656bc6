"""The scan engine and `airlock scan`: content decides the format, containers are opened, and
every reading of a file is scanned. Nothing scanned is ever executed."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.policy import Verdict, decide
from proxy.scan.engine import Limits, scan_path
from proxy.scan.gguf import ValueType as GGUFType
from tests.artifacts import safetensors_bytes
from tests.scan.conftest import needs_torch
from tests.scan.test_gguf import TENSORS as GGUF_TENSORS
from tests.scan.test_gguf import build as gguf_build
from tests.scan.test_gguf import kv as gguf_kv
from tests.scan.test_onnx import external as onnx_external
from tests.scan.test_onnx import graph as onnx_graph
from tests.scan.test_onnx import model as onnx_proto
from tests.scan.test_onnx import tensor as onnx_tensor
from tests.scan.test_templates import CHATML

AIRLOCK = Path(sys.executable).parent / "airlock"


def system_pickle(marker: Path) -> bytes:
    """Protocol 0, no magic: os.system('touch MARKER') via GLOBAL + REDUCE (CVE-2025-10155
    shows protocol 0/1 pickles slipping past magic checks)."""
    return b"cposix\nsystem\n(V touch %s\ntR." % str(marker).encode()


def benign_pickle() -> bytes:
    return pickle.dumps(OrderedDict(a=1, b=[1.5, "x"]), protocol=4)


def torch_like_zip(data_pkl: bytes, *, prefix: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/data/0", b"\x00" * 64)
        archive.writestr("archive/version", b"3\n")
    return prefix + buffer.getvalue()


def keras_archive(layers: list[dict[str, object]]) -> bytes:
    """A Keras v3 `.keras` file: config.json, metadata.json and the weights at the root."""
    from tests.scan.test_hdf5 import weights_h5  # the HDF5 inside is read too

    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": layers},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.13.2"}))
        archive.writestr("model.weights.h5", weights_h5())
    return buffer.getvalue()


DENSE: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Dense",
    "config": {"name": "dense", "units": 4, "activation": "relu"},
}
# CVE-2024-3660: a Lambda layer carries marshalled bytecode that runs at load time.
LAMBDA: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": "4wEA"}}},
}


def onnx_model(location: str | None) -> bytes:
    external = onnx_external(location) if location is not None else None
    return onnx_proto(onnx_graph("g", initializers=[onnx_tensor("w", external=external)]))


SSTI = "{{ cycler.__init__.__globals__.os.popen('touch marker').read() }}"  # CVE-2024-34359


def gguf_model(template: str) -> bytes:
    return gguf_build([gguf_kv("tokenizer.chat_template", GGUFType.STRING, template)], GGUF_TENSORS)


def tokenizer_config(template: str) -> bytes:
    return json.dumps({"model_max_length": 512, "chat_template": template}).encode()


def npy_object_array(payload: bytes) -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def tar_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


def verdict_of(path: Path) -> tuple[Verdict, set[str]]:
    report = scan_path(path)
    return decide(report).verdict, {f.rule for f in report.findings}


BENIGN: dict[str, Callable[[Path], bytes]] = {
    "model.safetensors": lambda m: safetensors_bytes(1000),
    "state.pkl": lambda m: benign_pickle(),
    "pytorch_model.bin": lambda m: torch_like_zip(benign_pickle()),
    "config.json": lambda m: b'{"model_type": "bert"}',
    "README.md": lambda m: b"# a model\n",
    "notes.txt.gz": lambda m: gzip.compress(b"hello"),
    "model.keras": lambda m: keras_archive([DENSE]),
    "model.onnx": lambda m: onnx_model("model.onnx.data"),
    "model.gguf": lambda m: gguf_model(CHATML),
    "tokenizer_config.json": lambda m: tokenizer_config(CHATML),
}

MALICIOUS: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    "raw pickle named .bin": ("weights.bin", lambda m: system_pickle(m)),
    "pickle named .safetensors": ("model.safetensors", lambda m: system_pickle(m)),
    "pickle named .json": ("config.json", lambda m: system_pickle(m)),
    "torch zip data.pkl": ("pytorch_model.bin", lambda m: torch_like_zip(system_pickle(m))),
    "pickle in front of a zip": (
        "pytorch_model.bin",
        lambda m: torch_like_zip(benign_pickle(), prefix=system_pickle(m)),
    ),
    "7z archive (nullifAI)": ("pytorch_model.bin", lambda m: b"7z\xbc\xaf\x27\x1c" + b"\0" * 64),
    "gzip-wrapped pickle": ("weights.pkl.gz", lambda m: gzip.compress(system_pickle(m))),
    "joblib-style zlib pickle": ("model.joblib", lambda m: zlib.compress(system_pickle(m))),
    "joblib-style lzma pickle": (
        "model.joblib",
        lambda m: lzma.compress(system_pickle(m), format=lzma.FORMAT_ALONE),
    ),
    "pickle inside tar": ("bundle.tar", lambda m: tar_with("inner/w.pt", system_pickle(m))),
    "numpy object array": ("arr.npy", lambda m: npy_object_array(system_pickle(m))),
    "auto_map custom code": (
        "config.json",
        lambda m: json.dumps({"auto_map": {"AutoModel": "modeling_x.XModel"}}).encode(),
    ),
    "python source": ("modeling_x.py", lambda m: b"import os\n\nclass XModel:\n    pass\n"),
    "keras lambda layer": ("model.keras", lambda m: keras_archive([DENSE, LAMBDA])),
    "gguf chat template ssti": ("model.gguf", lambda m: gguf_model(SSTI)),
    "tokenizer_config chat template ssti": (
        "tokenizer_config.json",
        lambda m: tokenizer_config(SSTI),
    ),
    "onnx external data outside the model dir": (
        "model.onnx",
        lambda m: onnx_model("../../etc/passwd"),
    ),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_files_are_allowed(tmp_path: Path, marker: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BENIGN[name](marker))
    verdict, rules = verdict_of(path)
    assert verdict is Verdict.ALLOW, rules


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_files_are_blocked(tmp_path: Path, marker: Path, case: str) -> None:
    name, build = MALICIOUS[case]
    path = tmp_path / name
    path.write_bytes(build(marker))
    verdict, rules = verdict_of(path)
    assert verdict is Verdict.BLOCK, rules
    assert not marker.exists()


def test_a_safetensors_scan_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    header = json.dumps(
        {"w": {"dtype": "U8", "shape": [1 << 30], "data_offsets": [0, 1 << 30]}}
    ).encode()
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + (1 << 30))  # sparse: 1 GiB that is never read
    report = scan_path(path)
    assert report.findings == ()
    assert report.duration_ms < 1000


def test_airlock_scan_cli_reports_json_lines_and_exit_codes(tmp_path: Path, marker: Path) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "model.safetensors").write_bytes(safetensors_bytes(100))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "weights.bin").write_bytes(system_pickle(marker))

    ok = subprocess.run(
        [str(AIRLOCK), "scan", str(tmp_path / "ok")], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ALLOW")

    bad = subprocess.run(
        [str(AIRLOCK), "scan", "--json", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    lines = [json.loads(line) for line in bad.stdout.splitlines()]
    by_name = {Path(line["path"]).name: line for line in lines}
    assert by_name["model.safetensors"]["verdict"] == "allow"
    blocked = by_name["weights.bin"]
    assert blocked["verdict"] == "block"
    assert blocked["format"] == "pickle"
    assert {"rule", "severity", "message", "location"} <= set(blocked["findings"][0])
    assert isinstance(blocked["duration_ms"], float)

    usage = subprocess.run(
        [str(AIRLOCK), "scan", str(tmp_path / "missing")], capture_output=True, check=False
    )
    assert usage.returncode == 2
    assert not marker.exists()


def test_empty_files_have_no_findings_whatever_their_name(tmp_path: Path) -> None:
    for name in ("empty.txt", "model.safetensors", "w.bin", "x.json"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert scan_path(path).findings == ()


@needs_torch
def test_real_checkpoints_through_the_engine(
    real_samples: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Files written by torch.save (zip and legacy), joblib.dump, numpy.save and HF's
    TrainingArguments: the engine finds their format by content, opens their containers and
    allows every one, except full-module pickles of user classes, which it blocks."""
    out, manifest = real_samples
    for entry in manifest:
        report = scan_path(out / entry["file"])
        verdict = decide(report).verdict
        user_classes = entry.get("user_globals") or entry.get("user_module_prefixes")
        if user_classes:
            assert verdict is Verdict.BLOCK, entry["file"]
            assert {f.rule for f in report.findings} == {"pickle-global-not-allowed"}
        else:
            assert verdict is Verdict.ALLOW, (entry["file"], report.findings)


def test_a_scan_that_runs_out_of_time_is_a_finding(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(50):
            archive.writestr(f"m{index}.pkl", benign_pickle())
    path = tmp_path / "many.zip"
    path.write_bytes(buffer.getvalue())
    report = scan_path(path, limits=Limits(time_limit_s=0.0))
    assert [f.rule for f in report.findings] == ["scan-time-limit"]
    assert decide(report).verdict is Verdict.BLOCK


def test_the_report_lists_every_format_found_inside(tmp_path: Path) -> None:
    """The policy's format families see what is inside: a torch zip is a zip and a pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        archive.writestr("archive/config.json", b'{"a": 1}')
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(buffer.getvalue())
    assert {"zip", "pickle", "json"} <= set(scan_path(path).contents)
    plain = tmp_path / "model.safetensors"
    plain.write_bytes(safetensors_bytes(64))
    assert scan_path(plain).contents == ("safetensors",)
