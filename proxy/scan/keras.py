"""Structural check of a Keras model config: the JSON that says which objects to rebuild.

A Keras v3 `.keras` file is a zip with `config.json`, `metadata.json` and (usually)
`model.weights.h5`; a legacy `.h5` file carries the same kind of JSON in its `model_config`
attribute. Loading either rebuilds every object the config names, so the config alone decides
which code runs. Each serialized object is a dict with `class_name`, `config` and, since
Keras 2.13, `module` and `registered_name`; layers sit in `layers` lists, models nest.

What this module reports (threats.md, sections 2 and 4.8):

- `keras-lambda` (critical): a Lambda layer or a `__lambda__` function, whose marshalled
  bytecode runs at load time once safe_mode is off (CVE-2024-3660), and any string that is
  base64 of a marshalled code object.
- `keras-module-outside-keras` (critical): a `module` that is not `keras` or `keras.*`; Keras
  before 3.9 imported it (CVE-2025-1550). Keras' own `builtins` form for built-in functions is
  accepted when the named function is not a Python builtin.
- `keras-unsafe-deserialization` (critical): anything naming `enable_unsafe_deserialization` or
  `SafeModeScope`, which a config can call before a Lambda (CVE-2025-9906).
- `keras-gadget` (critical): a function where a layer or class is expected, or a Keras function
  that touches files or loads models (`get_file`, `load_model`, ...). A Functional model calls
  each entry of its `layers` list with the inbound node's arguments, which is how a config runs
  Keras functions inside safe_mode (CVE-2025-8747, CVE-2025-9906).
- `keras-tfsmlayer` (critical): a TFSMLayer, which loads a SavedModel from a path the config
  chooses (CVE-2026-1462).
- `keras-torch-module` (critical): a TorchModuleWrapper, whose config holds a torch.save'd
  module that is unpickled at load time.
- `keras-function-reference` (high): a function referenced from a Keras module that hosts
  no built-in activations, losses, metrics, initializers, regularizers or constraints.
- `keras-custom-object` (high): a registered custom object (`Package>Name`), a class from the
  keras_hub / keras_cv / keras_nlp / tf_keras packages, or a function field naming something
  outside Keras' built-ins: its code must come from somewhere else, a policy decision.
- `keras-file-reference` (high): a lookup layer whose vocabulary is a file path, read at load.
- `keras-malformed` (high): a config that is not a JSON object, a `class_name` or `module`
  that is not a string, or nesting beyond the caps (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re

from proxy.scan.report import Finding, Severity

MAX_DEPTH = 400
MAX_NODES = 2_000_000

KERAS_V3_REQUIRED_MEMBERS = frozenset({"config.json", "metadata.json"})

# Packages whose classes Keras itself agrees to import (since 3.9) but whose code is not Keras.
ECOSYSTEM_PACKAGES = frozenset({"keras_hub", "keras_cv", "keras_nlp", "tf_keras"})

# Modules (after `keras.` or `keras.src.`) that hold the functions a config may name.
FUNCTION_HOSTS = frozenset(
    {"activations", "losses", "metrics", "initializers", "regularizers", "constraints", "ops"}
)

# Keras callables that reach the file system, the network or the loader itself.
GADGET_NAMES = frozenset(
    {
        "get_file",
        "load_model",
        "load_weights",
        "save_model",
        "save_weights",
        "load_data",
        "deserialize_keras_object",
        "get_registered_object",
        "register_keras_serializable",
        "get_custom_objects",
        "custom_object_scope",
        "CustomObjectScope",
    }
)

UNSAFE_MARKERS = ("enable_unsafe_deserialization", "SafeModeScope")

# Markers serialize_keras_object uses for values that are not objects.
VALUE_MARKERS = frozenset(
    {
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__typespec__",
        "__keras_tensor__",
        "__tuple__",
        "__ellipsis__",
        "__slice__",
    }
)

# Config fields that name functions (activations, initializers, losses, metrics).
FUNCTION_FIELDS = frozenset(
    {
        "activation",
        "recurrent_activation",
        "kernel_initializer",
        "bias_initializer",
        "recurrent_initializer",
        "embeddings_initializer",
        "depthwise_initializer",
        "pointwise_initializer",
        "gamma_initializer",
        "beta_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "loss",
        "metrics",
        "weighted_metrics",
        "optimizer",
    }
)

LOOKUP_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})

_PLAIN, _LAYERS, _LAYER = 0, 1, 2  # roles: any value, a `layers` list, an entry of one

_SNAKE_CASE = re.compile(r"[a-z_][a-z0-9_]*\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+\Z")
_MIN_BYTECODE_CHARS = 24


def check_archive_members(names: list[str]) -> bool:
    """Whether a zip's member names look like a Keras v3 archive: `config.json` and
    `metadata.json` at the root (`model.weights.h5` and `assets/` are optional)."""
    return set(names) >= KERAS_V3_REQUIRED_MEMBERS


def check_config(config: object, *, location: str) -> list[Finding]:
    """Findings for a Keras model config: the parsed `config.json` of a `.keras` archive or an
    `.h5` file's `model_config` (a JSON string or bytes is parsed first). `location` names the
    file; each finding adds the JSON path of the object it is about. Never raises."""
    if isinstance(config, bytes | bytearray):
        try:
            config = bytes(config).decode("utf-8-sig")
        except UnicodeDecodeError:
            return [_malformed(location, "", "config is not UTF-8")]
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (ValueError, RecursionError) as exc:
            return [_malformed(location, "", f"config is not valid JSON: {exc}")]
    if not isinstance(config, dict):
        return [_malformed(location, "", "a Keras config must be a JSON object")]
    return _Walker(location).walk(config)


class _Walker:
    def __init__(self, location: str) -> None:
        self.location = location
        self.findings: dict[tuple[str, str], Finding] = {}

    def add(self, rule: str, severity: Severity, message: str, path: str) -> None:
        key = (rule, path)
        if key not in self.findings:
            where = f"{self.location}: {path}" if path else self.location
            self.findings[key] = Finding(rule, severity, message, where or None)

    def walk(self, root: dict[object, object]) -> list[Finding]:
        # (value, JSON path, depth, role, inside an already reported Lambda)
        stack: list[tuple[object, str, int, int, bool]] = [(root, "", 0, _PLAIN, False)]
        nodes = 0
        while stack:
            value, path, depth, role, in_lambda = stack.pop()
            nodes += 1
            if nodes > MAX_NODES:
                self.add("keras-malformed", Severity.HIGH, "config has too many values", "")
                break
            if depth > MAX_DEPTH:
                self.add("keras-malformed", Severity.HIGH, "config is nested too deeply", path)
                continue
            children: list[tuple[object, str, int]] = []
            if isinstance(value, dict):
                in_lambda = self._check_dict(value, path, role == _LAYER, in_lambda)
                for key, item in value.items():
                    item_role = _LAYERS if key == "layers" else _PLAIN
                    children.append((item, _child(path, key), item_role))
            elif isinstance(value, list | tuple):
                item_role = _LAYER if role == _LAYERS else _PLAIN
                children = [(item, f"{path}[{i}]", item_role) for i, item in enumerate(value)]
            for item, item_path, item_role in reversed(children):
                if isinstance(item, str):
                    self._check_string(item, path or item_path, in_lambda)
                elif isinstance(item, dict | list | tuple):
                    stack.append((item, item_path, depth + 1, item_role, in_lambda))
        return list(self.findings.values())

    def _check_string(self, text: str, path: str, in_lambda: bool) -> None:
        for marker in UNSAFE_MARKERS:
            if marker in text:
                self.add(
                    "keras-unsafe-deserialization",
                    Severity.CRITICAL,
                    f"config names {marker}: it turns safe_mode off for the objects after it "
                    "(CVE-2025-9906)",
                    path,
                )
        if not in_lambda and _is_bytecode(text):
            self.add(
                "keras-lambda",
                Severity.CRITICAL,
                "config holds base64 of marshalled Python bytecode (CVE-2024-3660)",
                path,
            )

    def _check_dict(
        self, node: dict[object, object], path: str, in_layers: bool, in_lambda: bool
    ) -> bool:
        """Check one dict; returns whether its children are inside a reported Lambda."""
        for key, value in node.items():
            if isinstance(key, str):
                self._check_string(key, path, in_lambda)
                if key in FUNCTION_FIELDS:
                    self._check_function_field(key, value, path)
        if not in_lambda and node.get("function_type") == "lambda":
            self.add(
                "keras-lambda",
                Severity.CRITICAL,
                "Lambda function stored as marshalled bytecode (CVE-2024-3660)",
                path,
            )
            in_lambda = True
        if "class_name" in node:
            in_lambda = self._check_object(node, path, in_layers, in_lambda)
        else:
            for key, value in node.items():
                if isinstance(key, str) and (key == "module" or key.endswith("_module")):
                    self._check_module(value, None, None, path)
        return in_lambda

    def _check_object(
        self, node: dict[object, object], path: str, in_layers: bool, in_lambda: bool
    ) -> bool:
        class_name = node["class_name"]
        inner = node.get("config")
        for key, value in node.items():
            if isinstance(key, str) and (key == "module" or key.endswith("_module")):
                self._check_module(value, class_name, inner, path)
        if not isinstance(class_name, str):
            self.add("keras-malformed", Severity.HIGH, "class_name is not a string", path)
            return in_lambda
        if class_name in ("Lambda", "__lambda__"):
            if not in_lambda:
                self.add(
                    "keras-lambda",
                    Severity.CRITICAL,
                    f"{class_name} runs arbitrary Python code when loaded (CVE-2024-3660)",
                    path,
                )
            in_lambda = True
        elif class_name == "TFSMLayer":
            target = inner.get("filepath") if isinstance(inner, dict) else None
            self.add(
                "keras-tfsmlayer",
                Severity.CRITICAL,
                f"TFSMLayer loads a TensorFlow SavedModel from {_short(target)} (CVE-2026-1462)",
                path,
            )
        elif class_name == "TorchModuleWrapper":
            self.add(
                "keras-torch-module",
                Severity.CRITICAL,
                "TorchModuleWrapper unpickles a torch module stored in the config",
                path,
            )
        elif class_name in LOOKUP_LAYERS and isinstance(inner, dict):
            vocabulary = inner.get("vocabulary")
            if isinstance(vocabulary, str):
                self.add(
                    "keras-file-reference",
                    Severity.HIGH,
                    f"{class_name} reads its vocabulary from the file {_short(vocabulary)}",
                    path,
                )
        self._check_callable(node, class_name, inner, path, in_layers)
        self._check_registration(node.get("registered_name"), class_name, path)
        return in_lambda

    def _check_callable(
        self, node: dict[object, object], class_name: str, inner: object, path: str, layer: bool
    ) -> None:
        module = node.get("module")
        keras_module = module is None or (isinstance(module, str) and _in_keras(module))
        if class_name == "function":
            name = inner if isinstance(inner, str) else None
            if layer:
                self.add(
                    "keras-gadget",
                    Severity.CRITICAL,
                    f"function {_short(name)} in a layers list is called with the inbound node's "
                    "arguments (CVE-2025-8747)",
                    path,
                )
            elif name in GADGET_NAMES and keras_module:
                self._gadget(name, path)
            elif isinstance(module, str) and _in_keras(module) and not _hosts_functions(module):
                self.add(
                    "keras-function-reference",
                    Severity.HIGH,
                    f"function {_short(name)} from {module!r}, which holds no built-in "
                    "activations, losses, metrics or initializers",
                    path,
                )
            return
        if class_name in GADGET_NAMES and keras_module:
            self._gadget(class_name, path)
        elif class_name.startswith("__") and class_name.endswith("__"):
            if class_name not in VALUE_MARKERS and class_name != "__lambda__":
                self._gadget(class_name, path)
        elif _SNAKE_CASE.match(class_name):
            self.add(
                "keras-gadget",
                Severity.CRITICAL,
                f"{class_name!r} names a function where a class is expected (CVE-2025-8747)",
                path,
            )

    def _gadget(self, name: str | None, path: str) -> None:
        self.add(
            "keras-gadget",
            Severity.CRITICAL,
            f"config calls {_short(name)}, which reaches files, the network or the loader "
            "(CVE-2025-8747)",
            path,
        )

    def _check_module(self, module: object, class_name: object, inner: object, path: str) -> None:
        if module is None:
            return
        if not isinstance(module, str):
            self.add("keras-malformed", Severity.HIGH, "module is not a string", path)
            return
        if _in_keras(module):
            return
        package = module.split(".", 1)[0]
        if package in ECOSYSTEM_PACKAGES:
            self.add(
                "keras-custom-object",
                Severity.HIGH,
                f"object from {module!r}: its code comes from {package}, not Keras",
                path,
            )
            return
        if module == "builtins" and class_name == "function" and _keras_builtin_name(inner):
            return  # Keras looks these names up in its own modules only
        self.add(
            "keras-module-outside-keras",
            Severity.CRITICAL,
            f"config imports from module {_short(module)} (CVE-2025-1550)",
            path,
        )

    def _check_registration(self, registered: object, class_name: str, path: str) -> None:
        for name in (registered, class_name):
            if isinstance(name, str) and ">" in name:
                package, _, short = name.partition(">")
                if package == "Custom" and short in TF_KERAS_OPTIMIZERS:
                    continue  # tf.keras' own optimizers, registered in the default package
                if package.lower() != "keras":
                    self.add(
                        "keras-custom-object",
                        Severity.HIGH,
                        f"registered custom object {_short(name)}: its class must be supplied "
                        "by code outside the file",
                        path,
                    )
                    return

    def _check_function_field(self, key: str, value: object, path: str) -> None:
        names: list[object] = [value]
        if isinstance(value, list | tuple):
            names = list(value)
        elif isinstance(value, dict) and "class_name" not in value:
            names = list(value.values())  # per-output losses and metrics
        for name in names:
            if isinstance(name, str) and (">" in name or "." in name):
                self.add(
                    "keras-custom-object",
                    Severity.HIGH,
                    f"{key} names {_short(name)}, which is not a Keras built-in",
                    _child(path, key),
                )


# tf.keras registers its own optimizers as `Custom>{name}` (the default package of
# register_keras_serializable, tf_keras/src/optimizers): built-ins, not user code.
TF_KERAS_OPTIMIZERS = frozenset(
    {"Adadelta", "Adafactor", "Adagrad", "Adam", "Adamax", "AdamW", "Ftrl", "Lion", "Nadam",
     "RMSprop", "SGD"}
)  # fmt: skip


def _in_keras(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def _hosts_functions(module: str) -> bool:
    parts = module.split(".")
    rest = parts[2:] if parts[1:2] == ["src"] else parts[1:]
    return bool(rest) and rest[0] in FUNCTION_HOSTS


def _keras_builtin_name(inner: object) -> bool:
    """Keras writes its built-in functions as module `builtins`; a name Python's builtins also
    has (exec, eval, open, ...) would be imported from there by Keras before 3.9."""
    return (
        isinstance(inner, str)
        and inner.isidentifier()
        and not inner.startswith("_")
        and not hasattr(builtins, inner)
    )


def _is_bytecode(text: str) -> bool:
    """Whether a string is base64 of a marshalled code object (type byte 0xe3 or 'c')."""
    if len(text) < _MIN_BYTECODE_CHARS or not text.lstrip().startswith(("4w", "Yw")):
        return False
    head = "".join(text.split())[:32]
    if not _BASE64.match(head):
        return False
    try:
        raw = base64.b64decode(head[: len(head) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) < 9:
        return False
    # A code object starts with small argument counts (little-endian int32s).
    argcount = int.from_bytes(raw[1:5], "little")
    second = int.from_bytes(raw[5:9], "little")
    return raw[0] in (0xE3, 0x63) and argcount < 256 and second < 256


def _child(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _malformed(location: str, path: str, message: str) -> Finding:
    where = f"{location}: {path}" if path else location
    return Finding("keras-malformed", Severity.HIGH, message, where or None)
