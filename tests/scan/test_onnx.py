"""ONNX external data checks on ModelProto bytes built by a small protobuf encoder in this
module (no onnx or protobuf package is imported). Each malicious location cites its advisory."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan import onnx
from proxy.scan.onnx import check, location_problem
from proxy.scan.report import Finding, Severity

# --- a tiny protobuf encoder ------------------------------------------------------------------

FLOAT = 1  # TensorProto.DataType.FLOAT
EXTERNAL = 1


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def f_varint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def f_bytes(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def f_str(number: int, text: str) -> bytes:
    return f_bytes(number, text.encode())


def entry(key: str, value: str) -> bytes:
    return f_str(1, key) + f_str(2, value)


def tensor(
    name: str,
    *,
    raw: bytes | None = None,
    external: dict[str, str] | None = None,
    data_location: int | None = None,
    dims: Iterable[int] = (4,),
) -> bytes:
    out = b"".join(f_varint(1, d) for d in dims) + f_varint(2, FLOAT) + f_str(8, name)
    if raw is not None:
        out += f_bytes(9, raw)
    for key, value in (external or {}).items():
        out += f_bytes(13, entry(key, value))
    if external is not None and data_location is None:
        data_location = EXTERNAL
    if data_location is not None:
        out += f_varint(14, data_location)
    return out


def attribute(
    name: str,
    *,
    t: bytes | None = None,
    g: bytes | None = None,
    tensors: Iterable[bytes] = (),
    graphs: Iterable[bytes] = (),
    i: int | None = None,
) -> bytes:
    out = f_str(1, name)
    if i is not None:
        out += f_varint(3, i) + f_varint(20, 2)  # AttributeType.INT
    if t is not None:
        out += f_bytes(5, t) + f_varint(20, 4)
    if g is not None:
        out += f_bytes(6, g) + f_varint(20, 5)
    out += b"".join(f_bytes(10, x) for x in tensors)
    out += b"".join(f_bytes(11, x) for x in graphs)
    return out


def node(op_type: str, name: str, inputs: Iterable[str] = (), *attributes: bytes) -> bytes:
    out = b"".join(f_str(1, i) for i in inputs) + f_str(2, name + "_out")
    out += f_str(3, name) + f_str(4, op_type)
    return out + b"".join(f_bytes(5, a) for a in attributes)


def graph(name: str, nodes: Iterable[bytes] = (), initializers: Iterable[bytes] = ()) -> bytes:
    out = b"".join(f_bytes(1, n) for n in nodes) + f_str(2, name)
    out += b"".join(f_bytes(5, t) for t in initializers)
    value_info = f_str(1, "x")  # ValueInfoProto with just a name
    return out + f_bytes(11, value_info) + f_bytes(12, f_str(1, "y"))


def model(main_graph: bytes, *, extra: bytes = b"") -> bytes:
    opset = f_str(1, "") + f_varint(2, 17)
    head = f_varint(1, 8) + f_str(2, "airlock-tests") + f_str(3, "1.0") + f_bytes(8, opset)
    return head + f_bytes(7, main_graph) + extra


def weights(count: int = 4) -> bytes:
    return bytes(i % 251 for i in range(count * 4))


def external(location: str, offset: int = 0, length: int = 16) -> dict[str, str]:
    return {"location": location, "offset": str(offset), "length": str(length)}


def scan(data: bytes, prefix: str = "model.onnx") -> list[Finding]:
    return check(io.BytesIO(data), len(data), location_prefix=prefix)


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def if_node(name: str, then_graph: bytes, else_graph: bytes) -> bytes:
    return node(
        "If",
        name,
        ["cond"],
        attribute("then_branch", g=then_graph),
        attribute("else_branch", g=else_graph),
    )


def loop_node(name: str, body: bytes) -> bytes:
    return node("Loop", name, ["M", "cond"], attribute("body", g=body))


# --- benign -----------------------------------------------------------------------------------


def test_inline_model_has_no_findings() -> None:
    constant = node("Constant", "c0", (), attribute("value", t=tensor("c", raw=weights(1))))
    body = graph("body", [node("Relu", "r", ["x"])], [tensor("b0", raw=weights())])
    data = model(
        graph(
            "main",
            [node("MatMul", "mm", ["x", "w"]), constant, loop_node("loop", body)],
            [tensor("w", raw=weights(256)), tensor("s", raw=b"", dims=())],
        )
    )
    assert scan(data) == []


def test_empty_file_is_an_empty_model() -> None:
    assert scan(b"") == []


@pytest.mark.parametrize("location", ["weights.bin", "data/w0.bin", "./model.onnx.data", "a/./b"])
def test_benign_external_data_is_info_only(location: str) -> None:
    data = model(
        graph(
            "main",
            [node("MatMul", "mm", ["x", "w"])],
            [tensor("w", external=external(location)), tensor("v", external=external(location))],
        )
    )
    findings = scan(data)
    assert [(f.rule, f.severity) for f in findings] == [("onnx-external-data", Severity.INFO)]
    assert "2 tensor(s)" in findings[0].message
    assert findings[0].location == "model.onnx: graph.initializer[0](w)"


def test_checksum_key_is_known() -> None:
    data = model(graph("g", [], [tensor("w", external={"location": "w.bin", "checksum": "ab"})]))
    assert rules(scan(data)) == {"onnx-external-data"}


# --- malicious locations ----------------------------------------------------------------------

MALICIOUS = [
    "../../etc/passwd",  # CVE-2022-25882: path traversal in external data
    "/etc/passwd",  # CVE-2024-27318: absolute paths bypassed the 1.13 fix
    "..\\x",  # CVE-2024-27318: Windows separators
    "C:/x",  # a drive letter: absolute on Windows
    "a/../../b",  # traversal hidden behind a normal first part
    "",  # an empty location names the model directory itself
    "a\x00b",  # NUL truncates the path in C++ loaders
    "a/..",  # normalises to the model directory
    "//server/share/x",  # UNC-style absolute path
]


@pytest.mark.parametrize("location", MALICIOUS)
def test_malicious_location_is_critical(location: str) -> None:
    data = model(graph("main", [], [tensor("w", external=external(location))]))
    findings = scan(data)
    critical = [f for f in findings if f.severity is Severity.CRITICAL]
    assert [f.rule for f in critical] == ["onnx-external-data-path"]
    assert critical[0].location == "model.onnx: graph.initializer[0](w)"
    assert "onnx-external-data" in rules(findings)


@pytest.mark.parametrize("location", MALICIOUS)
def test_location_problem(location: str) -> None:
    assert location_problem(location) is not None


def test_external_entries_are_checked_even_without_data_location() -> None:
    """onnx ignores external_data unless data_location is EXTERNAL, but other runtimes may not:
    every location is checked (fail closed)."""
    data = model(graph("g", [], [tensor("w", external=external("/etc/shadow"), data_location=0)]))
    assert "onnx-external-data-path" in rules(scan(data))


def test_nested_subgraph_external_data_is_found() -> None:
    """CVE-2024-27318 style traversal hidden in an If branch inside a Loop body."""
    evil = tensor("deep", external=external("../../../root/.ssh/id_rsa"))
    then_graph = graph("then", [node("Constant", "k", (), attribute("value", t=evil))])
    body = graph("body", [if_node("if0", then_graph, graph("else"))])
    data = model(graph("main", [loop_node("loop0", body)]))
    findings = scan(data)
    bad = [f for f in findings if f.rule == "onnx-external-data-path"]
    assert len(bad) == 1
    assert bad[0].location == (
        "model.onnx: graph.node[0](loop0).attribute[0](body).graphs[0].node[0](if0)"
        ".attribute[0](then_branch).graphs[0].node[0](k).attribute[0](value).tensors[0](deep)"
    )


def test_attribute_tensors_graphs_and_sparse_are_found() -> None:
    sparse = f_bytes(1, tensor("sv", external=external("/abs/values")))
    sparse += f_bytes(2, tensor("si", raw=weights()))
    attr = attribute(
        "bodies",
        tensors=[tensor("t0", raw=weights()), tensor("t1", external=external("../t1"))],
        graphs=[graph("g0", [], [tensor("gi", external=external("C:\\gi"))])],
    )
    attr += f_bytes(22, sparse)
    main = graph("main", [node("Scan", "scan", (), attr)])
    main += f_bytes(15, f_bytes(1, tensor("sparse_init", external=external("../s"))))
    findings = scan(model(main))
    paths = {f.message.split("'")[1] for f in findings if f.rule == "onnx-external-data-path"}
    assert paths == {"/abs/values", "../t1", "C:\\\\gi", "../s"}


def test_training_info_and_functions_are_walked() -> None:
    training = f_bytes(1, graph("init", [], [tensor("ti", external=external("../ti"))]))
    function = f_str(1, "fn") + f_bytes(
        7, node("Constant", "fc", (), attribute("value", t=tensor("ft", external=external("/ft"))))
    )
    data = model(graph("main"), extra=f_bytes(20, training) + f_bytes(25, function))
    bad = [f for f in scan(data) if f.rule == "onnx-external-data-path"]
    assert len(bad) == 2


def test_unknown_external_data_key_is_medium() -> None:
    data = model(graph("g", [], [tensor("w", external={"location": "w.bin", "__class__": "x"})]))
    findings = scan(data)
    assert [f.severity for f in findings if f.rule == "onnx-external-data-key"] == [Severity.MEDIUM]


def test_external_without_location_is_malformed() -> None:
    data = model(graph("g", [], [tensor("w", external={"offset": "0"})]))
    assert rules(scan(data)) == {"onnx-malformed"}


def test_non_numeric_offset_is_malformed() -> None:
    data = model(graph("g", [], [tensor("w", external=external("w.bin") | {"offset": "-1"})]))
    assert rules(scan(data)) == {"onnx-external-data", "onnx-malformed"}


def test_invalid_utf8_location_is_malformed_and_critical() -> None:
    bad_entry = f_str(1, "location") + f_bytes(2, b"w\xff.bin")
    data = model(graph("g", [], [f_str(8, "w") + f_bytes(13, bad_entry) + f_varint(14, 1)]))
    assert {"onnx-malformed", "onnx-external-data-path"} <= rules(scan(data))


# --- streaming --------------------------------------------------------------------------------


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_raw_data_is_skipped_not_read() -> None:
    big = bytes(8 << 20)
    data = model(graph("main", [], [tensor("w", raw=big), tensor("e", external=external("e.bin"))]))
    reader = CountingReader(data)
    findings = check(reader, len(data))
    assert rules(findings) == {"onnx-external-data"}
    assert reader.bytes_read < 1 << 20


# --- malformed --------------------------------------------------------------------------------


def benign_external_model() -> bytes:
    evil_first = graph("main", [], [tensor("bad", external=external("../x"))])
    return model(evil_first + f_bytes(5, tensor("w", raw=weights(64))))


def test_truncated_model_keeps_earlier_findings() -> None:
    data = benign_external_model()
    for cut in (data[:-10], data[: data.index(b"../x") + 4]):
        findings = scan(cut)
        assert {"onnx-malformed", "onnx-external-data-path"} <= rules(findings)


def test_declared_size_beyond_file_is_malformed() -> None:
    data = model(graph("main"))
    findings = check(io.BytesIO(data), len(data) + 100)
    assert rules(findings) == {"onnx-malformed"}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80", "truncated varint"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "varint longer"),
        (f_bytes(7, b"")[:-1] + b"\x05", "runs past"),  # graph length 5, nothing after
        (tag(7, 0) + varint(3), "wire type 0"),  # graph as a varint
        (tag(7, 5) + b"abcd", "wire type 5"),
        (tag(3, 3), "wire type 3"),  # start group: not used by onnx
        (tag(1, 6), "wire type 6"),
        (b"\x00\x00", "field number 0"),
        (model(graph("g", [], [f_bytes(14, b"\x01")])), "data_location"),
        (model(graph("g", [f_varint(3, 1)])), "should be a string"),  # node name as a varint
    ],
)
def test_garbled_protobufs_are_malformed(data: bytes, why: str) -> None:
    findings = scan(data)
    assert rules(findings) == {"onnx-malformed"}
    assert findings[0].severity is Severity.HIGH
    assert why in findings[0].message


def test_subgraph_depth_cap() -> None:
    inner = graph("leaf")
    for level in range(onnx.MAX_GRAPH_DEPTH + 2):
        inner = graph(f"g{level}", [if_node(f"if{level}", inner, graph("e"))])
    findings = scan(model(inner))
    assert [f.rule for f in findings] == ["onnx-malformed"]
    assert "nested deeper" in findings[0].message


def test_location_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx, "MAX_LOCATIONS", 3)
    inits = [tensor(f"w{i}", external=external(f"w{i}.bin")) for i in range(5)]
    findings = scan(model(graph("g", [], inits)))
    assert rules(findings) == {"onnx-external-data", "onnx-malformed"}


# --- never raises -----------------------------------------------------------------------------

SEEDS = [
    benign_external_model(),
    model(graph("main", [loop_node("l", graph("b", [], [tensor("t", external=external("a"))]))])),
    model(graph("main", [node("Constant", "c", (), attribute("v", t=tensor("c", raw=b"1234")))])),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(f, Finding) for f in scan(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_models_never_raise(seed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    size = data.draw(st.integers(0, len(mutated) + 8))
    findings = check(io.BytesIO(bytes(mutated[:cut])), size)
    assert all(isinstance(f, Finding) for f in findings)
