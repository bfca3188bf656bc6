"""TensorFlow SavedModel op allowlist (proxy.scan.savedmodel) on SavedModel protobufs built by
the small encoder of tests/scan/test_onnx.py (no TensorFlow or protobuf package is imported
here), laid out the way TensorFlow 2.21 writes them; with AIRLOCK_TORCH_PYTHON, on real
SavedModels written by TensorFlow and Keras (tests/scan/real_producers.py). Each malicious
sample names its source (threats.md sections 2 and 4.8)."""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.policy import Verdict, decide
from proxy.scan import savedmodel
from proxy.scan.engine import scan_path
from proxy.scan.report import Finding, Severity
from proxy.scan.savedmodel import (
    ALLOWED_OPS,
    DANGEROUS_OPS,
    SAVER_OPS,
    check,
    check_keras_metadata,
    check_named,
    dangerous_reason,
)
from tests.artifacts import REAL_PRODUCERS, run_producer
from tests.scan.conftest import TORCH_PYTHON, needs_torch
from tests.scan.test_onnx import f_bytes, f_str, f_varint, tag, varint

THREATS = "threats.md 2/4.8"

# --- SavedModel builders ----------------------------------------------------------------------


def attr_s(text: str) -> bytes:
    return f_str(2, text)  # AttrValue.s


def attr_placeholder(name: str) -> bytes:
    return f_str(9, name)  # AttrValue.placeholder


def name_attr_list(name: str, attrs: dict[str, bytes] | None = None) -> bytes:
    out = f_str(1, name)
    for key, value in (attrs or {}).items():
        out += f_bytes(2, f_str(1, key) + f_bytes(2, value))
    return out


def attr_func(name: str, attrs: dict[str, bytes] | None = None) -> bytes:
    return f_bytes(10, name_attr_list(name, attrs))  # AttrValue.func


def attr_funcs(*names: str) -> bytes:
    return f_bytes(1, b"".join(f_bytes(9, name_attr_list(n)) for n in names))  # list.func


def node(
    name: str, op: str, inputs: Iterable[str] = (), attrs: dict[str, bytes] | None = None
) -> bytes:
    out = f_str(1, name) + f_str(2, op) + b"".join(f_str(3, i) for i in inputs)
    for key, value in (attrs or {}).items():
        out += f_bytes(5, f_str(1, key) + f_bytes(2, value))
    return out


def call(name: str, function: str, inputs: Iterable[str] = ()) -> bytes:
    return node(name, "StatefulPartitionedCall", inputs, {"f": attr_func(function)})


def function(name: str, nodes: Iterable[bytes]) -> bytes:
    return f_bytes(1, f_str(1, name)) + b"".join(f_bytes(3, n) for n in nodes)


def graph_def(
    nodes: Iterable[bytes],
    functions: Iterable[bytes] = (),
    gradients: Iterable[tuple[str, str]] = (),
) -> bytes:
    out = b"".join(f_bytes(1, n) for n in nodes)
    library = b"".join(f_bytes(1, f) for f in functions)
    library += b"".join(f_bytes(2, f_str(1, f) + f_str(2, g)) for f, g in gradients)
    return out + (f_bytes(2, library) if library else b"") + f_bytes(4, f_varint(1, 1882))


def tensor_info(name: str) -> bytes:
    return f_str(1, name) + f_varint(2, 1)


def meta_graph(
    graph: bytes | None,
    *,
    saver: tuple[str, str] | None = None,
    signature_outputs: Iterable[str] = (),
    object_functions: Iterable[str] = (),
    collections: dict[str, list[str]] | None = None,
) -> bytes:
    out = f_bytes(1, f_str(4, "serve") + f_str(5, "2.21.0"))  # meta_info_def (sniff wants it)
    if graph is not None:
        out += f_bytes(2, graph)
    if saver is not None:
        save_tensor, restore_op = saver
        out += f_bytes(
            3, f_str(1, "saver_filename:0") + f_str(2, save_tensor) + f_str(3, restore_op)
        )
    for key, values in (collections or {}).items():
        node_list = f_bytes(1, b"".join(f_str(1, v) for v in values))
        out += f_bytes(4, f_str(1, key) + f_bytes(2, node_list))
    outputs = b"".join(
        f_bytes(2, f_str(1, f"out{i}") + f_bytes(2, tensor_info(name)))
        for i, name in enumerate(signature_outputs)
    )
    if outputs:
        out += f_bytes(5, f_str(1, "serving_default") + f_bytes(2, outputs))
    concrete = b"".join(f_bytes(2, f_str(1, name) + f_bytes(2, b"")) for name in object_functions)
    if concrete:
        out += f_bytes(7, concrete)
    return out


def saved_model(*meta_graphs: bytes) -> bytes:
    return f_varint(1, 1) + b"".join(f_bytes(2, m) for m in meta_graphs)


# What tf.saved_model.save writes (TF 2.21 census): a serving signature calling the model's
# function, and the saver's nodes calling __inference__traced_save/_restore.
SAVE_FN, RESTORE_FN = "__inference__traced_save_69", "__inference__traced_restore_84"
MODEL_FN, WRAPPER_FN = "__inference___call___25", "__inference_signature_wrapper_35"
TRACED_SAVE = function(
    SAVE_FN,
    [
        node("StaticRegexFullMatch", "StaticRegexFullMatch", ["file_prefix"]),
        node("Const", "Const"),
        node("Select", "Select", ["StaticRegexFullMatch", "Const", "Const"]),
        node("StringJoin", "StringJoin", ["file_prefix", "Select:output:0"]),
        node("ShardedFilename", "ShardedFilename", ["StringJoin:output:0"]),
        node("ReadVariableOp", "ReadVariableOp", ["w"]),
        node("SaveV2", "SaveV2", ["ShardedFilename:filename:0"]),
        node("MergeV2Checkpoints", "MergeV2Checkpoints", ["^SaveV2"]),
        node("Identity", "Identity", ["file_prefix"]),
        node("NoOp", "NoOp", ["^MergeV2Checkpoints"]),
    ],
)
TRACED_RESTORE = function(
    RESTORE_FN,
    [
        node("RestoreV2", "RestoreV2", ["file_prefix"]),
        node("AssignVariableOp", "AssignVariableOp", ["w", "RestoreV2:tensors:0"]),
        node("NoOp", "NoOp", ["^AssignVariableOp"]),
        node("Identity", "Identity", ["file_prefix", "^NoOp"]),
    ],
)
TF2_SAVER = ("StatefulPartitionedCall_1:0", "StatefulPartitionedCall_2")


def tf2_model(
    *,
    model_ops: Iterable[bytes] = (),
    main_extra: Iterable[bytes] = (),
    functions: Iterable[bytes] = (),
    gradients: Iterable[tuple[str, str]] = (),
    save_fn: bytes = TRACED_SAVE,
    restore_fn: bytes = TRACED_RESTORE,
    object_functions: Iterable[str] = (WRAPPER_FN, MODEL_FN),
    signature_outputs: Iterable[str] = ("StatefulPartitionedCall:0",),
) -> bytes:
    main = [
        node("serving_default_x", "Placeholder"),
        node("w", "VarHandleOp"),
        call("StatefulPartitionedCall", WRAPPER_FN, ["serving_default_x", "w"]),
        node("saver_filename", "Placeholder"),
        call("StatefulPartitionedCall_1", SAVE_FN, ["saver_filename", "w", "Const"]),
        call("StatefulPartitionedCall_2", RESTORE_FN, ["saver_filename", "w"]),
        node("NoOp", "NoOp"),
        node("Const", "Const"),
        *main_extra,
    ]
    model_body = [
        node("ReadVariableOp", "ReadVariableOp", ["w"]),
        node("MatMul", "MatMul", ["x", "ReadVariableOp:value:0"]),
        node("Relu", "Relu", ["MatMul:product:0"]),
        *model_ops,
        node("Identity", "Identity", ["Relu:activations:0"]),
    ]
    library = [
        function(WRAPPER_FN, [call("StatefulPartitionedCall", MODEL_FN, ["x", "w"])]),
        function(MODEL_FN, model_body),
        save_fn,
        restore_fn,
        *functions,
    ]
    return saved_model(
        meta_graph(
            graph_def(main, library, gradients),
            saver=TF2_SAVER,
            signature_outputs=signature_outputs,
            object_functions=object_functions,
        )
    )


def tf1_model(
    *, extra: Iterable[bytes] = (), restore_inputs: Iterable[str] = (), **meta: Any
) -> bytes:
    """What tf.compat.v1.saved_model.Builder writes: the saver's nodes under `save/`."""
    nodes = [
        node("x", "Placeholder"),
        node("w", "VarHandleOp"),
        node("MatMul/ReadVariableOp", "ReadVariableOp", ["w"]),
        node("MatMul", "MatMul", ["x", "MatMul/ReadVariableOp"]),
        node("y", "Identity", ["MatMul"]),
        node("save/filename/input", "Const"),
        node("save/filename", "PlaceholderWithDefault", ["save/filename/input"]),
        node("save/Const", "PlaceholderWithDefault", ["save/filename"]),
        node("save/StringJoin", "StringJoin", ["save/Const"]),
        node("save/ShardedFilename", "ShardedFilename", ["save/StringJoin"]),
        node("save/SaveV2", "SaveV2", ["save/ShardedFilename", "w"]),
        node("save/control_dependency", "Identity", ["save/ShardedFilename", "^save/SaveV2"]),
        node("save/MergeV2Checkpoints", "MergeV2Checkpoints", ["save/Const"]),
        node("save/Identity", "Identity", ["save/Const", "^save/MergeV2Checkpoints"]),
        node("save/RestoreV2", "RestoreV2", ["save/Const"]),
        node("save/AssignVariableOp", "AssignVariableOp", ["w", "save/RestoreV2"]),
        node("save/restore_shard", "NoOp", ["^save/AssignVariableOp"]),
        node("save/restore_all", "NoOp", ["^save/restore_shard", *restore_inputs]),
        *extra,
    ]
    meta.setdefault("signature_outputs", ["y:0"])
    return saved_model(
        meta_graph(graph_def(nodes), saver=("save/Identity:0", "save/restore_all"), **meta)
    )


def scan(data: bytes, prefix: str = "") -> list[Finding]:
    return check(io.BytesIO(data), len(data), location_prefix=prefix)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


# --- benign layouts ---------------------------------------------------------------------------


def test_tf2_layout_has_no_findings() -> None:
    assert scan(tf2_model()) == []


def test_tf1_layout_has_no_findings() -> None:
    assert scan(tf1_model()) == []


def test_unknown_fields_are_skipped() -> None:
    """Fields this walker does not know, at every level, of every wire type."""
    junk = f_varint(99, 7) + f_bytes(100, b"\xff\x00junk") + tag(101, 5) + b"1234"
    junk += tag(102, 1) + b"12345678"
    nodes = [node("a", "Const") + junk, node("b", "Identity", ["a"]) + junk]
    body = function(MODEL_FN, [node("c", "Relu") + junk]) + junk
    graph = graph_def(nodes, [body]) + junk
    data = f_varint(1, 1) + junk + f_bytes(2, meta_graph(graph) + junk)
    assert scan(data) == []


def test_op_field_last_value_wins() -> None:
    """Protobuf keeps the last value of a repeated singular field, and so does TensorFlow."""
    twice = f_str(1, "n") + f_str(2, "Identity") + f_str(2, "ReadFile")
    findings = scan(saved_model(meta_graph(graph_def([twice]))))
    assert rules(findings) == {"savedmodel-dangerous-op"}


def test_graph_def_occurrences_merge() -> None:
    """A second graph_def field merges into the first (protobuf semantics): both are walked."""
    first = f_bytes(2, graph_def([node("a", "Const")]))
    second = f_bytes(2, graph_def([node("b", "ReadFile", ["a"])]))
    data = saved_model(f_bytes(1, f_str(4, "serve")) + first + second)
    assert rules(scan(data)) == {"savedmodel-dangerous-op"}


def test_print_to_stderr_and_default_stream_are_allowed() -> None:
    for attrs in ({}, {"output_stream": attr_s("stderr")}, {"output_stream": attr_s("log(info)")}):
        body = [node("p", "PrintV2", ["s"], attrs)]
        assert scan(tf2_model(model_ops=body)) == [], attrs


def test_function_called_by_op_name_is_resolved() -> None:
    """`op` may name a function of the library (the call form older TF wrote)."""
    helper = function("my_helper_7", [node("t", "Tanh", ["x"])])
    data = tf2_model(model_ops=[node("h", "my_helper_7", ["x"])], functions=[helper])
    assert scan(data) == []


def test_allowlist_is_disjoint_from_dangerous_and_saver_ops() -> None:
    assert not ALLOWED_OPS & SAVER_OPS
    assert not ALLOWED_OPS & DANGEROUS_OPS.keys()
    assert [op for op in ALLOWED_OPS if dangerous_reason(op)] == []
    assert len(ALLOWED_OPS) > 700
    # The census of real SavedModels (TF 2.21, Keras 3.15): every op is allowed or a saver op.
    census = {"AddV2", "AssignAddVariableOp", "BatchMatMulV2", "BiasAdd", "Conv2D",
              "DisableCopyOnRead", "Einsum", "HashTableV2", "LookupTableFindV2",
              "LookupTableImportV2", "MutableHashTableV2", "PrintV2", "RaggedTensorToTensor",
              "ReadVariableOp", "RngReadAndSkip", "ShardedFilename", "StatefulPartitionedCall",
              "StatelessIf", "StatelessWhile", "StaticRegexFullMatch", "StringJoin",
              "StringSplitV2", "TensorListReserve", "UnsortedSegmentJoin", "VarHandleOp",
              "While"}  # fmt: skip
    assert census <= ALLOWED_OPS


# --- dangerous ops ----------------------------------------------------------------------------

DANGEROUS_SAMPLES = [
    "ReadFile",
    "WriteFile",
    "MatchingFiles",
    "PyFunc",
    "PyFuncStateless",
    "EagerPyFunc",
    "ImmutableConst",
    "LoadAndRemapMatrix",
    "InitializeTableFromTextFileV2",
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugNumericSummaryV2",
    "WholeFileReaderV2",
    "ReaderReadV2",
    "TFRecordDataset",
    "FixedLengthRecordDataset",
    "TextLineDataset",
    "SnapshotDatasetV2",
    "SaveDatasetV2",
    "CreateSummaryFileWriter",
    "WriteScalarSummary",
    "CollectiveReduceV2",
    "RemoteCall",
    "_Send",
    "Abort",
]


@pytest.mark.parametrize("op", DANGEROUS_SAMPLES)
def test_dangerous_op_in_the_model_function_is_critical(op: str) -> None:
    """threats.md 2/4.8: file-system, Python-callback, debugger and network ops."""
    findings = scan(tf2_model(model_ops=[node("evil", op, ["x"])]), "saved_model.pb: ")
    assert [(f.rule, f.severity) for f in findings] == [
        ("savedmodel-dangerous-op", Severity.CRITICAL)
    ]
    assert findings[0].location is not None
    assert findings[0].location.startswith("saved_model.pb: meta_graphs[0].library.function(")
    assert "node_def[3](evil)" in findings[0].location
    assert op in findings[0].message


def test_dangerous_op_in_the_main_graph() -> None:
    """threats.md 2/4.8 (ReadFile/WriteFile in a TF1 graph)."""
    extra = [node("r", "ReadFile", ["x"]), node("wf", "WriteFile", ["x", "r"])]
    findings = scan(tf1_model(extra=extra))
    assert {(f.rule, f.message.split(":")[0]) for f in findings} == {
        ("savedmodel-dangerous-op", "ReadFile"),
        ("savedmodel-dangerous-op", "WriteFile"),
    }
    assert all(f.severity is Severity.CRITICAL for f in findings)


def test_same_op_is_reported_once_with_a_count() -> None:
    extra = [node(f"r{i}", "ReadFile", ["x"]) for i in range(5)]
    (finding,) = scan(tf1_model(extra=extra))
    assert "(5 nodes)" in finding.message
    assert finding.location is not None and finding.location.endswith("(r0)")


def test_function_attribute_naming_a_primitive_op() -> None:
    """threats.md 4.8: AttrValue.func may name a primitive op, which the runtime then runs."""
    sneaky = node("p", "PartitionedCall", ["x"], {"f": attr_func("ReadFile")})
    findings = scan(tf2_model(model_ops=[sneaky]))
    assert rules(findings) == {"savedmodel-dangerous-op"}
    assert "function attribute" in (findings[0].location or "")


def test_branch_lists_and_nested_function_attributes_are_walked() -> None:
    """threats.md 4.8: Case's `branches` list and functions inside a function's attributes."""
    case = node("c", "Case", ["i"], {"branches": attr_funcs("Identity", "PyFunc")})
    nested = node(
        "n",
        "PartitionedCall",
        ["x"],
        {"f": attr_func("Identity", {"inner": attr_func("WriteFile")})},
    )
    findings = scan(tf2_model(model_ops=[case, nested]))
    assert {f.message.split(":")[0] for f in findings} == {"PyFunc", "WriteFile"}


def test_dangerous_op_in_a_branch_function() -> None:
    """threats.md 4.8: a tf.cond branch is a library function like any other."""
    branch = function("cond_true_12", [node("r", "ReadFile", ["path"])])
    cond = node("If", "StatelessIf", ["c"], {"then_branch": attr_func("cond_true_12")})
    findings = scan(tf2_model(model_ops=[cond], functions=[branch]))
    assert rules(findings) == {"savedmodel-dangerous-op"}
    assert "function(cond_true_12)" in (findings[0].location or "")


@pytest.mark.parametrize(
    "stream", [attr_s("file:///home/user/.bashrc"), attr_s("/tmp/x"), attr_placeholder("s")]
)
def test_print_to_a_file_is_critical(stream: bytes) -> None:
    """threats.md 4.8: PrintV2 with a file:// output_stream appends to any file."""
    body = [node("p", "PrintV2", ["s"], {"output_stream": stream})]
    findings = scan(tf2_model(model_ops=body))
    assert [(f.rule, f.severity) for f in findings] == [
        ("savedmodel-print-to-file", Severity.CRITICAL)
    ]


def test_unknown_op_is_high() -> None:
    """Default deny: a custom-op library's kernel is not on the allowlist."""
    findings = scan(tf2_model(model_ops=[node("t", "Addons>TotallyCustom", ["x"])]))
    assert [(f.rule, f.severity) for f in findings] == [("savedmodel-unknown-op", Severity.HIGH)]
    assert "Addons>TotallyCustom" in findings[0].message


def test_functions_are_scoped_to_their_meta_graph() -> None:
    """A name defined as a function in another meta graph is not a function here."""
    first = meta_graph(graph_def([node("a", "Const")], [function("helper", [node("t", "Tanh")])]))
    second = meta_graph(graph_def([node("b", "helper")]))
    findings = scan(saved_model(first, second))
    assert rules(findings) == {"savedmodel-unknown-op"}
    assert (findings[0].location or "").startswith("meta_graphs[1]")


# --- the saver ----------------------------------------------------------------------------------


def saver_ops(findings: list[Finding]) -> set[str]:
    return {f.message.split()[2] for f in findings if f.rule == "savedmodel-saver-op"}


def test_savev2_in_the_model_function_is_critical() -> None:
    """threats.md 4.8: a checkpoint writer the serving signature runs writes where it wants."""
    findings = scan(tf2_model(model_ops=[node("s", "SaveV2", ["prefix"])]))
    assert saver_ops(findings) == {"SaveV2"}
    assert all(f.severity is Severity.CRITICAL for f in findings)


def test_saver_op_in_the_main_graph_outside_the_saver() -> None:
    findings = scan(tf2_model(main_extra=[node("m", "MergeV2Checkpoints", ["Const"])]))
    assert saver_ops(findings) == {"MergeV2Checkpoints"}


def test_saver_function_called_by_the_model_is_the_model_s() -> None:
    """threats.md 4.8: the serving function may not call the traced save function."""
    findings = scan(tf2_model(model_ops=[call("s", SAVE_FN, ["prefix"])]))
    assert saver_ops(findings) == {"SaveV2", "MergeV2Checkpoints"}


@pytest.mark.parametrize("where", ["object graph", "gradient", "orphan"])
def test_saver_function_reachable_otherwise_is_the_model_s(where: str) -> None:
    """threats.md 4.8: a function the object graph lists, a gradient function, or one nobody
    calls is callable by the loaded model."""
    if where == "object graph":
        data = tf2_model(object_functions=[WRAPPER_FN, MODEL_FN, SAVE_FN])
    elif where == "gradient":
        data = tf2_model(gradients=[(MODEL_FN, SAVE_FN)])
    else:
        orphan = function("orphan_3", [node("s", "SaveV2", ["p"])])
        data = tf2_model(functions=[orphan])
    assert "SaveV2" in saver_ops(scan(data))


def test_signature_using_a_saver_node_taints_the_saver() -> None:
    """threats.md 4.8: a signature whose output is the save op's runs the checkpoint writer."""
    data = tf2_model(signature_outputs=["StatefulPartitionedCall:0", "StatefulPartitionedCall_1:0"])
    findings = scan(data)
    assert saver_ops(findings) == {"SaveV2", "MergeV2Checkpoints", "RestoreV2"}
    assert "signature uses the saver's node" in findings[0].message


def test_model_node_using_a_saver_node_taints_the_saver() -> None:
    extra = [node("after", "Identity", ["Const", "^StatefulPartitionedCall_1"])]
    findings = scan(tf2_model(main_extra=extra))
    assert "SaveV2" in saver_ops(findings)
    assert "'after' uses the saver's" in findings[0].message


def test_writer_on_the_restore_side_is_critical() -> None:
    """The loader runs the restore op: a checkpoint writer there runs at load time."""
    restore = function(RESTORE_FN, [node("RestoreV2", "RestoreV2"), node("SaveV2", "SaveV2")])
    findings = scan(tf2_model(restore_fn=restore))
    assert saver_ops(findings) == {"SaveV2"}
    assert "restore side" in findings[0].message


def test_restorev2_in_the_model_is_critical() -> None:
    findings = scan(tf2_model(model_ops=[node("r", "RestoreV2", ["prefix"])]))
    assert saver_ops(findings) == {"RestoreV2"}


def test_tf1_writer_on_the_restore_side_is_critical() -> None:
    findings = scan(tf1_model(restore_inputs=["^save/control_dependency"]))
    assert saver_ops(findings) == {"SaveV2"}


def test_tf1_collection_naming_a_saver_node_taints_the_saver() -> None:
    """A collection's node list (main_op, legacy_init_op) is run by the TF1 loader."""
    data = tf1_model(collections={"saved_model_main_op": ["save/Identity"]})
    assert saver_ops(scan(data)) == {"SaveV2", "MergeV2Checkpoints", "RestoreV2"}


def test_tf1_model_node_outside_the_scope_is_not_the_saver() -> None:
    findings = scan(tf1_model(extra=[node("mine/SaveV2", "SaveV2", ["x"])]))
    assert saver_ops(findings) == {"SaveV2"}
    assert (findings[0].location or "").endswith("(mine/SaveV2)")


def test_saver_ops_without_a_saver_def() -> None:
    graph = graph_def([node("s", "SaveV2"), node("r", "RestoreV2")])
    assert saver_ops(scan(saved_model(meta_graph(graph)))) == {"SaveV2", "RestoreV2"}


# --- malformed and bounds -----------------------------------------------------------------------


def test_no_meta_graph_and_no_graph_are_malformed() -> None:
    assert rules(scan(f_varint(1, 1))) == {"savedmodel-malformed"}
    findings = scan(saved_model(meta_graph(None)))
    assert rules(findings) == {"savedmodel-malformed"}
    assert "no graph_def" in findings[0].message


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (f_varint(1, 1) + f_varint(2, 5), "should be a message"),
        (f_varint(1, 1) + tag(2, 2) + varint(1000) + b"\x0a\x00", "runs past"),
        (f_varint(1, 1) + tag(2, 3), "wire type 3"),
        (f_varint(1, 1) + b"\x80" * 11, "varint"),
        (saved_model(meta_graph(f_bytes(1, f_varint(2, 3)))), "should be a string"),
    ],
)
def test_garbled_protobufs_are_malformed(data: bytes, why: str) -> None:
    findings = scan(data)
    assert any(f.rule == "savedmodel-malformed" and why in f.message for f in findings), findings


def test_truncated_file_keeps_earlier_findings() -> None:
    data = tf2_model(model_ops=[node("evil", "ReadFile", ["x"])])
    cut = data.index(b"ReadFile") + 40
    findings = scan(data[:cut])
    assert "savedmodel-dangerous-op" in rules(findings)
    assert "savedmodel-malformed" in rules(findings)


def test_declared_size_beyond_the_file() -> None:
    data = tf2_model()
    findings = check(io.BytesIO(data), len(data) + 10)
    assert rules(findings) == {"savedmodel-malformed"}


def test_every_truncation_is_blocked_or_benign() -> None:
    """Fail closed: a cut anywhere is malformed (or, at a field boundary, a smaller model)."""
    data = tf2_model(model_ops=[node("evil", "EagerPyFunc", ["x"])])
    for cut in range(len(data)):
        assert blocking(scan(data[:cut])), cut


def test_file_too_large_for_protobuf() -> None:
    data = tf2_model()
    findings = check(io.BytesIO(data), savedmodel.MAX_FILE_BYTES + 1)
    assert rules(findings) == {"savedmodel-malformed"}


def test_node_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savedmodel, "MAX_NODES", 5)
    findings = scan(tf2_model())
    assert any("more than 5 nodes" in f.message for f in findings)


def test_name_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savedmodel, "MAX_NAMES", 3)
    assert "savedmodel-malformed" in rules(scan(tf2_model()))


def test_function_attribute_depth_cap() -> None:
    value = attr_func("Identity")
    for _ in range(savedmodel.MAX_ATTR_DEPTH + 2):
        value = attr_func("Identity", {"inner": value})
    findings = scan(tf2_model(model_ops=[node("deep", "PartitionedCall", [], {"f": value})]))
    assert any("nested deeper" in f.message for f in findings)


def test_meta_graph_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(savedmodel, "MAX_META_GRAPHS", 2)
    graph = meta_graph(graph_def([node("a", "Const")]))
    assert "savedmodel-malformed" in rules(scan(saved_model(graph, graph, graph)))


def test_large_constants_are_skipped_not_read() -> None:
    """Tensor bytes are seeked past: a 64 MiB constant costs no read of its bytes."""
    big = f_bytes(8, f_bytes(4, b"\x00" * (64 << 20)))  # AttrValue.tensor.tensor_content

    class CountingReader(io.BytesIO):
        bytes_read = 0

        def read(self, size: int | None = -1, /) -> bytes:
            data = super().read(size)
            CountingReader.bytes_read += len(data)
            return data

    data = tf1_model(extra=[node("c", "Const", [], {"value": big})])
    handle = CountingReader(data)
    assert check(handle, len(data)) == []
    assert CountingReader.bytes_read < 1 << 20


# --- keras_metadata.pb and names ----------------------------------------------------------------


def keras_metadata(*configs: object) -> bytes:
    nodes = b""
    for index, config in enumerate(configs):
        obj = f_varint(2, index) + f_str(3, "root" if index == 0 else f"root.layer-{index}")
        obj += f_str(4, "_tf_keras_layer") + f_str(5, json.dumps(config))
        nodes += f_bytes(1, obj)
    return nodes


DENSE = {"class_name": "Dense", "name": "dense", "config": {"units": 2, "activation": "relu"}}


def test_keras_metadata_benign_and_tf_keras_optimizers() -> None:
    compiled = {
        "class_name": "Functional",
        "config": {"layers": [DENSE]},
        "training_config": {"loss": "mse", "optimizer_config": {"class_name": "Custom>Adam"}},
    }
    data = keras_metadata(compiled, DENSE)
    assert check_keras_metadata(io.BytesIO(data), len(data)) == []


def test_keras_metadata_lambda_is_critical() -> None:
    """CVE-2024-3660: a tf.keras SavedModel's Lambda config carries marshalled bytecode."""
    from tests.scan.test_keras import marshalled_lambda

    lam = {"class_name": "Lambda", "name": "l", "config": {"function": marshalled_lambda()}}
    data = keras_metadata({"class_name": "Functional", "config": {"layers": [DENSE, lam]}})
    findings = check_keras_metadata(io.BytesIO(data), len(data), location_prefix="m: ")
    assert "keras-lambda" in rules(findings)
    assert all((f.location or "").startswith("m: nodes[0](root)") for f in findings)


def test_keras_metadata_custom_optimizer_is_not_excused() -> None:
    config = {"class_name": "Functional", "training_config": {"optimizer_config": {
        "class_name": "Custom>Evil"}}}  # fmt: skip
    data = keras_metadata(config)
    assert "keras-custom-object" in rules(check_keras_metadata(io.BytesIO(data), len(data)))


def test_keras_metadata_damage_is_malformed() -> None:
    data = keras_metadata(DENSE)[:-3]
    assert rules(check_keras_metadata(io.BytesIO(data), len(data))) == {"keras-malformed"}


@pytest.mark.parametrize("name", ["saved_model.pbtxt", "model/saved_model.cpb"])
def test_savedmodel_forms_this_engine_cannot_read_are_blocked(name: str) -> None:
    data = b'meta_graphs { graph_def { node { name: "r" op: "ReadFile" } } }\n'
    findings = check_named(io.BytesIO(data), len(data), name)
    assert [(f.rule, f.severity) for f in findings] == [("savedmodel-not-scanned", Severity.HIGH)]
    assert check_named(io.BytesIO(data), len(data), "notes.txt") == []


# --- through the engine -------------------------------------------------------------------------


def test_engine_blocks_and_allows(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    evil = folder / "saved_model.pb"
    evil.write_bytes(tf2_model(model_ops=[node("r", "ReadFile", ["x"])]))
    report = scan_path(evil)
    assert report.format.value == "savedmodel"
    assert decide(report).verdict is Verdict.BLOCK
    evil.write_bytes(tf2_model())
    assert decide(scan_path(evil)).verdict is Verdict.ALLOW
    assert scan_path(evil).findings == ()
    text = folder / "saved_model.pbtxt"
    text.write_text('meta_graphs { graph_def { node { op: "ReadFile" } } }\n')
    assert decide(scan_path(text)).verdict is Verdict.BLOCK
    metadata = folder / "keras_metadata.pb"
    metadata.write_bytes(keras_metadata({"class_name": "Lambda", "config": {"function": "x"}}))
    assert decide(scan_path(metadata)).verdict is Verdict.BLOCK


def test_engine_finds_a_savedmodel_inside_an_archive(tmp_path: Path) -> None:
    from tests.scan.test_engine import tar_with

    bundle = tmp_path / "model.tar"
    bundle.write_bytes(tar_with("export/saved_model.pb", tf1_model(extra=[node("p", "PyFunc")])))
    report = scan_path(bundle)
    assert decide(report).verdict is Verdict.BLOCK
    assert any(f.rule == "savedmodel-dangerous-op" for f in report.findings)
    assert any(
        "export/saved_model.pb: meta_graphs[0]" in (f.location or "") for f in report.findings
    )


# --- fuzz ---------------------------------------------------------------------------------------

SEEDS = [
    tf2_model(),
    tf1_model(),
    tf2_model(model_ops=[node("p", "PrintV2", ["s"], {"output_stream": attr_s("stderr")})]),
    tf2_model(model_ops=[node("c", "Case", [], {"branches": attr_funcs("Identity", "PyFunc")})]),
    tf1_model(collections={"saved_model_main_op": ["save/Identity"]}),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_savedmodels_never_raise(seed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    size = data.draw(st.integers(0, len(mutated) + 8))
    started = time.perf_counter()
    findings = check(io.BytesIO(bytes(mutated[:cut])), size)
    assert time.perf_counter() - started < 2.0
    assert all(isinstance(f, Finding) for f in findings)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(f, Finding) for f in scan(data))
    metadata = check_keras_metadata(io.BytesIO(data), len(data))
    assert all(isinstance(f, Finding) for f in metadata)


# --- real SavedModels (AIRLOCK_TORCH_PYTHON: the client env with tensorflow-cpu) -----------------


@pytest.fixture(scope="module")
def real_savedmodels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    assert TORCH_PYTHON
    out = tmp_path_factory.mktemp("tf")
    run_producer(TORCH_PYTHON, REAL_PRODUCERS, [str(out), str(out / "MARKER")], out)
    manifest: list[dict[str, str]] = json.loads((out / "manifest.json").read_text())
    made = [e for e in manifest if e["file"].startswith("savedmodel/")]
    if not made:
        pytest.skip("tensorflow is not installed in the client environment")
    return out, made


@needs_torch
def test_real_benign_savedmodels_are_allowed(
    real_savedmodels: tuple[Path, list[dict[str, str]]],
) -> None:
    out, made = real_savedmodels
    benign = [e for e in made if e["label"] == "benign"]
    assert sum(e["file"].endswith("saved_model.pb") for e in benign) >= 8
    for entry in benign:
        report = scan_path(out / entry["file"])
        assert decide(report).verdict is Verdict.ALLOW, (entry, report.findings)
        if entry["file"].endswith("/saved_model.pb"):
            assert report.format.value == "savedmodel"
            assert report.findings == (), entry
    assert not (out / "MARKER").exists()


EXPECTED_REAL = {
    "savedmodel/real-read-write-file": {"savedmodel-dangerous-op"},
    "savedmodel/real-py-function": {"savedmodel-dangerous-op"},
    "savedmodel/real-numpy-function": {"savedmodel-dangerous-op"},
    "savedmodel/real-print-to-file": {"savedmodel-print-to-file"},
    "savedmodel/real-savev2-in-model": {"savedmodel-saver-op"},
    "savedmodel/real-textline-dataset": {"savedmodel-dangerous-op", "savedmodel-unknown-op"},
}


@needs_torch
def test_real_malicious_savedmodels_are_blocked(
    real_savedmodels: tuple[Path, list[dict[str, str]]],
) -> None:
    """threats.md 2/4.8: tf.io.read_file/write_file, tf.py_function, tf.numpy_function,
    tf.print to a file, tf.raw_ops.SaveV2 and tf.data.TextLineDataset in a serving function."""
    out, made = real_savedmodels
    malicious = {e["technique"]: out / e["file"] for e in made if e["label"] == "malicious"}
    assert set(malicious) == set(EXPECTED_REAL)
    for technique, path in malicious.items():
        report = scan_path(path)
        assert decide(report).verdict is Verdict.BLOCK, technique
        assert rules(list(report.findings)) == EXPECTED_REAL[technique], report.findings
        assert any(f.severity is Severity.CRITICAL for f in report.findings)
    assert not (out / "MARKER").exists()


REGISTRY_SCRIPT = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session
buffer = pywrap_tf_session.TF_GetAllOpList()
ops = op_def_pb2.OpList.FromString(bytes(pywrap_tf_session.TF_GetBuffer(buffer)))
print(json.dumps(sorted(op.name for op in ops.op)))
"""


@needs_torch
def test_allowlist_names_are_registered_tensorflow_ops(
    real_savedmodels: tuple[Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    """Every allowed name is an op of TensorFlow's registry (no typo lets nothing through, and
    nothing is allowed by a name TensorFlow does not have)."""
    assert TORCH_PYTHON
    result = subprocess.run(
        [TORCH_PYTHON, "-c", REGISTRY_SCRIPT],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    registry = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert len(registry) > 1500
    assert ALLOWED_OPS - registry == set()
    assert SAVER_OPS - registry == set()
    known = {op for op in DANGEROUS_OPS if op not in {"Rpc", "TryRpc"}}  # removed from TF
    assert known - registry == set()


def test_saved_model_pb_that_does_not_sniff_as_one_is_blocked(tmp_path: Path) -> None:
    """TensorFlow does not need the schema version field; without it the content does not
    sniff as a SavedModel, and the name that claims one blocks it (threats.md 4.4)."""
    path = tmp_path / "saved_model.pb"
    path.write_bytes(tf2_model(model_ops=[node("r", "ReadFile", ["x"])])[2:])
    report = scan_path(path)
    assert report.format.value != "savedmodel"
    assert decide(report).verdict is Verdict.BLOCK
    assert any(f.rule == "format-name-mismatch" for f in report.findings)
