"""HDF5 checks (proxy.scan.hdf5): Keras 2 `.h5` models and Keras 3 weights files built with h5py
in the layouts Keras writes, each malicious shape naming the advisory it comes from; the
reader's failures (crash, hang, memory, bad answer) fail closed; mutated files never raise.
With AIRLOCK_TORCH_PYTHON, real files written by Keras 3 `model.save` are checked too."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.policy import Verdict, decide
from proxy.scan import hdf5
from proxy.scan.engine import scan_path
from proxy.scan.hdf5 import Caps, check
from proxy.scan.report import Finding, Severity
from tests.artifacts import REAL_PRODUCERS, run_producer
from tests.scan.conftest import TORCH_PYTHON, needs_torch
from tests.scan.test_keras import BENIGN as KERAS_BENIGN
from tests.scan.test_keras import (
    legacy_h5_config,
    marshalled_lambda,
    obj,
    sequential_cnn,
)

Build = Callable[[h5py.File], None]


# --- building files -----------------------------------------------------------------------------


def h5_bytes(build: Build, *, userblock: int = 0, libver: str | None = None) -> bytes:
    """An HDF5 file written by h5py (optionally behind a zero-filled user block)."""
    buffer = io.BytesIO()
    options: dict[str, Any] = {"libver": libver} if libver else {}
    if userblock:
        options["userblock_size"] = userblock
    with h5py.File(buffer, "w", **options) as handle:
        build(handle)
    return buffer.getvalue()


def keras3_weights(handle: h5py.File) -> None:
    """`model.weights.h5` as Keras 3 writes it: layers/<name>/vars/<i>, optimizer/vars/<i>."""
    rng = np.random.default_rng(0)
    for name, shapes in (("dense", [(4, 8), (8,)]), ("dense_1", [(8, 2), (2,)])):
        variables = handle.create_group(f"layers/{name}/vars")
        variables.attrs["name"] = name
        for index, shape in enumerate(shapes):
            variables.create_dataset(str(index), data=rng.standard_normal(shape).astype("f4"))
    optimizer = handle.create_group("optimizer/vars")
    optimizer.attrs["name"] = "adam"
    optimizer.create_dataset("0", data=np.int64(1))
    optimizer.create_dataset("1", data=np.float32(0.001))
    handle.create_group("vars").attrs["name"] = "sequential"


def weights_h5() -> bytes:
    return h5_bytes(keras3_weights)


def keras2_weights(group: h5py.Group) -> None:
    """`model_weights` as Keras 2 `save_weights` / `save` writes it: fixed-length byte names."""
    rng = np.random.default_rng(1)
    group.attrs["layer_names"] = np.array([b"dense_1"])
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = b"2.12.0"
    layer = group.create_group("dense_1")
    layer.attrs["weight_names"] = np.array([b"dense_1/kernel:0", b"dense_1/bias:0"])
    layer.create_dataset("dense_1/kernel:0", data=rng.standard_normal((8, 4)).astype("f4"))
    layer.create_dataset("dense_1/bias:0", data=np.zeros(4, dtype="f4"))


TRAINING_CONFIG = {
    "loss": "mse",
    "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "mae", "fn": "mae"}}]],
    "weighted_metrics": None,
    "loss_weights": None,
    "optimizer_config": {
        "class_name": "Adam",
        "config": {"name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "amsgrad": False},
    },
}


def legacy_model_h5(
    config: object,
    *,
    training: object = None,
    as_bytes: bool = True,
    group: str | None = None,
) -> bytes:
    """A Keras 2 `model.save("m.h5")`: JSON `model_config` / `training_config` attributes
    (bytes as tf.keras writes them, or str as Keras 3 does) and `model_weights`. With `group`
    the model is saved into that group, as `save_model(model, h5py_group)` does."""

    def encode(value: object) -> object:
        text = value if isinstance(value, str) else json.dumps(value)
        return text.encode() if as_bytes else text

    def build(handle: h5py.File) -> None:
        target = handle.require_group(group) if group else handle
        target.attrs["keras_version"] = encode("2.12.0")
        target.attrs["backend"] = encode("tensorflow")
        target.attrs["model_config"] = encode(config)
        if training is not None:
            target.attrs["training_config"] = encode(training)
        keras2_weights(target.create_group("model_weights"))

    return h5_bytes(build)


def with_lambda(config: dict[str, Any]) -> dict[str, Any]:
    """A Keras 2 Lambda layer: function = [base64 bytecode, defaults, closure]."""
    config["config"]["layers"].append(
        {
            "class_name": "Lambda",
            "config": {
                "name": "lambda_1",
                "function": [marshalled_lambda(), None, None],
                "function_type": "lambda",
                "output_shape": None,
                "arguments": {},
            },
        }
    )
    return config


def external_storage_h5(target: str = "/etc/passwd") -> bytes:
    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        del handle["layers/dense/vars/1"]
        handle["layers/dense/vars"].create_dataset(
            "1", shape=(8,), dtype="f4", external=[(target, 0, 32)]
        )

    return h5_bytes(build)


def external_link_h5(target: str = "/etc/victim.weights.h5") -> bytes:
    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        del handle["layers/dense_1"]
        handle["layers/dense_1"] = h5py.ExternalLink(target, "/layers/dense_1")

    return h5_bytes(build)


def virtual_h5(source: str) -> bytes:
    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
        layout[:] = h5py.VirtualSource(source, "data", shape=(8,))
        del handle["layers/dense/vars/1"]
        handle["layers/dense/vars"].create_virtual_dataset("1", layout)

    return h5_bytes(build)


def scan(data: bytes, **options: Any) -> list[Finding]:
    return check(io.BytesIO(data), len(data), **options)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


# --- benign ---------------------------------------------------------------------------------


def test_keras3_weights_file_has_no_findings() -> None:
    assert scan(weights_h5()) == []


def test_weights_only_keras2_file_has_no_findings() -> None:
    """`model.save_weights("w.h5")` in Keras 2: layer_names at the root, no model_config."""
    assert scan(h5_bytes(keras2_weights)) == []


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes-attrs", "str-attrs"])
@pytest.mark.parametrize("name", sorted(KERAS_BENIGN))
def test_full_keras_models_have_no_findings(name: str, as_bytes: bool) -> None:
    data = legacy_model_h5(KERAS_BENIGN[name], training=TRAINING_CONFIG, as_bytes=as_bytes)
    assert scan(data) == []


def test_benign_extras_have_no_findings() -> None:
    """Soft links, hard-link cycles, named datatypes, strings that are not configs, a
    zero-filled user block, the latest file format (dense attribute storage)."""

    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        handle["alias"] = h5py.SoftLink("/layers/dense")
        handle["dangling"] = h5py.SoftLink("/no/such/object")
        handle["layers/dense/loop"] = handle["layers"]  # a cycle of hard links
        handle["float_type"] = np.dtype("f4")
        handle.attrs["note"] = "{not json: class_name"
        handle.attrs["json_without_class"] = json.dumps({"units": 4})
        handle.attrs["names"] = np.array(["a", "b"], dtype=h5py.string_dtype())
        handle.attrs["empty"] = h5py.Empty("S5")
        handle.attrs["numbers"] = np.arange(5)
        for index in range(20):  # more than fit in the object header: dense storage
            handle["vars"].attrs[f"a{index}"] = "x" * 4000

    assert scan(h5_bytes(build, userblock=512, libver="latest")) == []


def test_handles_without_a_descriptor_give_the_same_findings(tmp_path: Path) -> None:
    data = external_storage_h5()
    path = tmp_path / "w.h5"
    path.write_bytes(data)
    with path.open("rb") as handle:
        on_disk = check(handle, len(data))
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:  # in memory
        spool.write(data)
        spool.seek(0)
        spooled = check(spool, len(data))  # type: ignore[arg-type]
    assert on_disk == spooled == scan(data)
    assert rules(on_disk) == {"hdf5-external-storage"}


def test_the_callers_handle_is_left_as_it_was(tmp_path: Path) -> None:
    """The reader shares the caller's descriptor but reads with pread: a buffered handle still
    reads the file's bytes after the check (the engine scans the other readings next)."""
    data = legacy_model_h5(legacy_h5_config(), training=TRAINING_CONFIG) + bytes(1 << 16)
    path = tmp_path / "model.h5"
    path.write_bytes(data)
    with path.open("rb") as handle:
        assert handle.read(16) == data[:16]
        assert check(handle, len(data)) == []
        handle.seek(0)
        assert handle.read() == data


def test_engine_scans_h5_at_the_top_and_inside_keras_archives(tmp_path: Path) -> None:
    model = tmp_path / "model.h5"
    model.write_bytes(legacy_model_h5(legacy_h5_config(), training=TRAINING_CONFIG))
    report = scan_path(model)
    assert report.format.value == "hdf5"
    assert report.findings == ()
    archive = tmp_path / "model.keras"
    archive.write_bytes(keras_archive(sequential_cnn(), weights_h5()))
    assert scan_path(archive).findings == ()


def keras_archive(config: object, weights: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("model.weights.h5", weights)
    return buffer.getvalue()


# --- malicious: configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes-attrs", "str-attrs"])
def test_lambda_in_model_config_cve_2024_3660(as_bytes: bool) -> None:
    """CVE-2024-3660: Lambda bytecode in a `.h5` model_config, which Keras versions affected by
    CVE-2025-9905 run even with safe_mode=True."""
    findings = scan(legacy_model_h5(with_lambda(legacy_h5_config()), as_bytes=as_bytes))
    lam = [f for f in findings if f.rule == "keras-lambda"]
    assert lam
    assert lam[0].severity is Severity.CRITICAL
    assert lam[0].location == "/@model_config: config.layers[2]"


def test_module_outside_keras_in_model_config_cve_2025_1550() -> None:
    """CVE-2025-1550: a config `module` Keras imports, here in an `.h5` model_config."""
    config = sequential_cnn()
    config["config"]["layers"].append(obj("os", "system", "touch /tmp/marker"))
    findings = scan(legacy_model_h5(config))
    assert "keras-module-outside-keras" in rules(findings)
    assert all(f.location and f.location.startswith("/@model_config") for f in findings)


def test_training_config_is_checked_cve_2025_1550() -> None:
    """`load_model` compiles the model from training_config: a loss naming os.system."""
    training = dict(TRAINING_CONFIG, loss=obj("os", "system", "touch /tmp/marker"))
    findings = scan(legacy_model_h5(legacy_h5_config(), training=training))
    assert "keras-module-outside-keras" in rules(findings)
    assert {f.location for f in findings} == {"/@training_config: loss"}


def test_model_config_saved_into_a_group_cve_2024_3660() -> None:
    """Keras 2 saves into, and loads from, any h5py group: a config below the root counts."""
    findings = scan(legacy_model_h5(with_lambda(legacy_h5_config()), group="models/inner"))
    assert any(
        f.rule == "keras-lambda" and f.location == "/models/inner@model_config: config.layers[2]"
        for f in findings
    )


def test_config_hidden_in_another_attribute_cve_2024_3660() -> None:
    """A JSON object naming a class_name in any string attribute, anywhere, is checked."""
    hidden = json.dumps(with_lambda(legacy_h5_config()))

    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        handle["layers/dense/vars/0"].attrs["config"] = hidden
        handle["vars"].attrs["configs"] = np.array([b"plain", hidden.encode()])

    findings = scan(h5_bytes(build))
    locations = {f.location for f in findings if f.rule == "keras-lambda"}
    assert locations == {
        "/layers/dense/vars/0@config: config.layers[2]",
        "/vars@configs[1]: config.layers[2]",
    }


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (np.int64(7), "not a string"),
        (np.array([b"{}", b"{}"]), "holds 2 strings"),
        (h5py.Empty("S10"), "empty"),
        (json.dumps([1, 2]).encode(), "must be a JSON object"),
    ],
    ids=["not-json", "not-utf8", "number", "two-strings", "empty", "json-list"],
)
def test_unreadable_model_config_fails_closed(value: object, why: str) -> None:
    """threats.md 4.6: a config that cannot be parsed is a block, never a pass."""

    def build(handle: h5py.File) -> None:
        handle.attrs["model_config"] = value
        keras2_weights(handle.create_group("model_weights"))

    findings = scan(h5_bytes(build))
    assert [f.rule for f in findings] == ["keras-malformed"]
    assert findings[0].severity is Severity.HIGH
    assert why in findings[0].message
    assert findings[0].location == "/@model_config"


# --- malicious: storage and links outside the file ---------------------------------------------


def test_external_storage_cve_2026_1669(tmp_path: Path) -> None:
    """CVE-2026-1669 (GHSA-3m4q-jmj6-r34q): a weight whose raw data is another host file.
    The target is a FIFO: had the reader opened it, it would hang instead of answering."""
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    findings = scan(external_storage_h5(str(fifo)), time_limit_s=20)
    assert rules(findings) == {"hdf5-external-storage"}
    assert findings[0].severity is Severity.HIGH
    assert findings[0].location == "/layers/dense/vars/1"
    assert str(fifo) in findings[0].message
    assert "/etc/passwd" in scan(external_storage_h5())[0].message


def test_external_link_ghsa_27f4_p4xq_cxg8(tmp_path: Path) -> None:
    """GHSA-27f4-p4xq-cxg8 (Keras PR 22900) and CVE-2026-1669: an ExternalLink in place of a
    layer's group makes load_weights read another HDF5 file; it is reported, never followed."""
    fifo = tmp_path / "victim.h5"
    os.mkfifo(fifo)
    findings = scan(external_link_h5(str(fifo)), time_limit_s=20)
    assert rules(findings) == {"hdf5-external-link"}
    assert findings[0].location == "/layers/dense_1"
    assert str(fifo) in findings[0].message


def test_virtual_dataset_from_another_file(tmp_path: Path) -> None:
    """Keras PR 22976 (huntr): a virtual dataset maps another file into a weight."""
    fifo = tmp_path / "source.h5"
    os.mkfifo(fifo)
    findings = scan(virtual_h5(str(fifo)), time_limit_s=20)
    assert rules(findings) == {"hdf5-virtual-dataset"}
    assert findings[0].location == "/layers/dense/vars/1"


def test_virtual_dataset_within_the_same_file_is_benign() -> None:
    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "/layers/dense/vars/1", shape=(8,))
        handle.create_virtual_dataset("view", layout)

    assert scan(h5_bytes(build)) == []


def test_declared_size_far_beyond_the_stored_bytes_keras_pr_22975() -> None:
    """Keras PR 22975 (huntr 0908fb05): an 8 GiB dataset that stores nothing is a memory bomb
    for whoever loads it; a large dataset that stores its bytes is not."""

    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        handle.create_dataset("bomb", shape=(2**31,), dtype="f4", chunks=(1024,))
        handle.create_dataset("stored", data=np.zeros(1 << 16, dtype="f4"))

    findings = scan(h5_bytes(build))
    assert [(f.rule, f.severity, f.location) for f in findings] == [
        ("hdf5-shape-bomb", Severity.MEDIUM, "/bomb")
    ]


def test_user_block_with_a_pickle_threats_4_4(tmp_path: Path) -> None:
    """threats.md 4.4 (polyglots): a pickle in the user block in front of the superblock. The
    HDF5 reading reports the user block; the engine also reads the head as a pickle and
    blocks the payload."""
    payload = b"cos\nsystem\n(S'touch /tmp/marker'\ntR."
    data = bytearray(h5_bytes(keras3_weights, userblock=512))
    data[: len(payload)] = payload
    findings = scan(bytes(data))
    assert [(f.rule, f.severity) for f in findings] == [("hdf5-user-block", Severity.MEDIUM)]
    path = tmp_path / "model.weights.h5"
    path.write_bytes(bytes(data))
    report = scan_path(path)
    assert decide(report).verdict is Verdict.BLOCK
    assert "hdf5-user-block" in rules(list(report.findings))
    assert any(f.severity is Severity.CRITICAL for f in report.findings)


def test_superblock_after_a_large_user_block_is_sniffed(tmp_path: Path) -> None:
    """HDF5 finds the superblock at any power of two: 16 KiB of user block hide nothing."""
    data = bytearray(h5_bytes(keras3_weights, userblock=16384))
    data[:4] = b"junk"
    path = tmp_path / "weights"  # no name to hint at the format
    path.write_bytes(bytes(data))
    report = scan_path(path)
    assert report.format.value == "hdf5"
    assert rules(list(report.findings)) == {"hdf5-user-block"}


def test_malicious_weights_inside_a_keras_archive_cve_2026_1669(tmp_path: Path) -> None:
    """CVE-2026-1669: the `.keras` archive's model.weights.h5 reads /etc/passwd."""
    path = tmp_path / "model.keras"
    path.write_bytes(keras_archive(sequential_cnn(), external_storage_h5()))
    report = scan_path(path)
    assert decide(report).verdict is Verdict.BLOCK
    assert [(f.rule, f.location) for f in report.findings] == [
        ("hdf5-external-storage", "model.weights.h5: /layers/dense/vars/1")
    ]


# --- fail closed: unreadable files, limits, a reader that crashes, hangs or lies -------------


@pytest.mark.parametrize(
    "data",
    [b"\x89HDF\r\n\x1a\n" + bytes(64), b"\x89HDF\r\n\x1a\n" + os.urandom(4096), b"not hdf5"],
    ids=["zeros", "random", "no-signature"],
)
def test_unreadable_files_fail_closed(data: bytes) -> None:
    findings = scan(data)
    assert [f.rule for f in findings] == ["hdf5-unreadable"]
    assert findings[0].severity is Severity.HIGH


def test_truncated_file_fails_closed() -> None:
    data = legacy_model_h5(legacy_h5_config())
    findings = scan(data[: len(data) // 2])
    assert findings
    assert all(f.severity >= Severity.HIGH for f in findings)


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (Caps(objects=3), "more than 3 objects"),
        (Caps(links=3), "more than 3 links"),
        (Caps(attributes=2), "more than 2 attributes"),
        (Caps(attribute_bytes=100), "larger than 100 bytes"),
        (Caps(attribute_items=1), "more than 1 items"),
        (Caps(reported_bytes=100), "configs add up to more than 100 bytes"),
    ],
    ids=["objects", "links", "attributes", "attribute-bytes", "attribute-items", "reported"],
)
def test_caps_fail_closed(caps: Caps, expected: str) -> None:
    data = legacy_model_h5(legacy_h5_config(), training=TRAINING_CONFIG)
    findings = scan(data, caps=caps)
    limits = [f for f in findings if f.rule == "hdf5-limit"]
    assert limits, findings
    assert limits[0].severity is Severity.HIGH
    assert expected in limits[0].message


def test_reader_memory_limit_fails_closed() -> None:
    """The reader's address space is capped: a file that needs more is blocked (HDF5 reports a
    failed allocation, or dies on one), whatever it holds."""

    def build(handle: h5py.File) -> None:
        keras3_weights(handle)
        handle.attrs["model_config"] = json.dumps(sequential_cnn()) + " " * (8 << 20)

    data = h5_bytes(build, libver="latest")
    assert scan(data) == []
    findings = scan(data, caps=Caps(memory_bytes=1 << 20))
    assert [f.severity for f in findings] == [Severity.HIGH]
    assert findings[0].rule in {"hdf5-limit", "hdf5-unreadable"}


@pytest.mark.parametrize(
    ("boot", "rule", "message"),
    [
        ("import time; time.sleep(60)", "hdf5-limit", "longer than 1 s"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "hdf5-unreadable", "signal 9"),
        ("print('[1, 2]')", "hdf5-unreadable", "answered badly"),
        ('print(\'{"events": [{"kind": 1}]}\')', "hdf5-unreadable", "answered badly"),
        ("raise SystemExit(3)", "hdf5-unreadable", "status 3"),
    ],
    ids=["hangs", "crashes", "not-an-object", "bad-event", "no-answer"],
)
def test_a_reader_that_fails_blocks_the_file(
    monkeypatch: pytest.MonkeyPatch, boot: str, rule: str, message: str
) -> None:
    """HDF5 crashes and hangs on fuzzed files; whatever the reader does, the file is blocked."""
    monkeypatch.setattr(hdf5, "_BOOT", boot)
    started = time.monotonic()
    data = weights_h5()
    findings = check(io.BytesIO(data), len(data), time_limit_s=1, location_prefix="m.h5")
    assert time.monotonic() - started < 10
    assert [(f.rule, f.severity, f.location) for f in findings] == [(rule, Severity.HIGH, "m.h5")]
    assert message in findings[0].message


def test_inside_a_memory_capped_scan_worker(tmp_path: Path) -> None:
    """Scan workers (proxy.scan.isolated) cap their address space; the reader they start
    inherits that cap and stays under it instead of failing to raise it."""
    path = tmp_path / "model.h5"
    path.write_bytes(legacy_model_h5(with_lambda(legacy_h5_config())))
    code = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))\n"
        "from pathlib import Path\n"
        "from proxy.scan.engine import scan_path\n"
        "print(json.dumps(sorted({f.rule for f in scan_path(Path(sys.argv[1])).findings})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == ["keras-lambda"]


def test_reader_environment_is_clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the mirror's environment (HDF5 plugin paths, prefixes) reaches HDF5."""
    probe = tmp_path / "env.json"
    monkeypatch.setenv("HDF5_PLUGIN_PATH", str(tmp_path))
    monkeypatch.setattr(
        hdf5,
        "_BOOT",
        f"import json, os; open({str(probe)!r}, 'w').write(json.dumps(dict(os.environ)))",
    )
    scan(weights_h5())
    seen = json.loads(probe.read_text())
    assert "HDF5_PLUGIN_PATH" not in seen
    assert seen["HDF5_PLUGIN_PRELOAD"] == "::"


# --- fuzz -----------------------------------------------------------------------------------------

SEEDS = [
    legacy_model_h5(with_lambda(legacy_h5_config()), training=TRAINING_CONFIG),
    weights_h5(),
    external_storage_h5(),
    h5_bytes(keras3_weights, libver="latest"),
]
FUZZ_TIME_LIMIT_S = 5.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.data())
def test_mutated_files_never_raise(seed: int, data: st.DataObject) -> None:
    mutated = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(mutated) // 2, len(mutated)))
    started = time.monotonic()
    findings = scan(bytes(mutated[:cut]), time_limit_s=FUZZ_TIME_LIMIT_S)
    assert time.monotonic() - started < FUZZ_TIME_LIMIT_S + 3
    assert all(isinstance(f, Finding) for f in findings)


# --- real files ----------------------------------------------------------------------------------


@needs_torch
def test_real_keras_files(tmp_path: Path) -> None:
    """Files Keras 3.15 writes (tests/scan/real_producers.py `_keras`): benign `.keras`,
    legacy `.h5` and `.weights.h5` pass; real Lambda models (CVE-2024-3660, CVE-2025-9905)
    are blocked; the payload never runs."""
    assert TORCH_PYTHON
    marker = tmp_path / "MARKER"
    script = tmp_path / "keras_only.py"
    script.write_text(
        "import json, sys\nfrom pathlib import Path\n"
        f"sys.path.insert(0, {str(REAL_PRODUCERS.parent)!r})\n"
        "import real_producers\n"
        "manifest = []\n"
        "real_producers._keras(Path(sys.argv[1]), manifest, Path(sys.argv[2]))\n"
        "Path(sys.argv[1], 'manifest.json').write_text(json.dumps(manifest))\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    run_producer(TORCH_PYTHON, script, [str(out), str(marker)], out)
    manifest: list[dict[str, str]] = json.loads((out / "manifest.json").read_text())
    labels = {entry["file"]: entry["label"] for entry in manifest}
    assert sum(label == "malicious" for label in labels.values()) == 2
    assert {Path(name).suffix for name in labels} == {".keras", ".h5"}
    for name, label in labels.items():
        report = scan_path(out / name)
        verdict = decide(report).verdict
        if label == "benign":
            assert report.findings == (), name
        else:
            assert verdict is Verdict.BLOCK, name
            assert "keras-lambda" in rules(list(report.findings))
    assert not marker.exists()
