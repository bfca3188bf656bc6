"""Files written by the real producers of the non-pickle formats: ``safetensors.torch``,
transformers' ``save_pretrained``, the ``gguf`` package's GGUFWriter, the ``onnx`` package,
TensorFlow's ``tf.saved_model.save`` / Keras' ``model.export`` and Keras' ``model.save``
(``.keras``, legacy ``.h5``).

Run under the client environment's Python 3.11 (torch, transformers, safetensors, and gguf, onnx,
tensorflow-cpu and keras from tests/client-requirements.txt): ``python real_producers.py OUT_DIR
[MARKER]``. It writes the files and a ``manifest.json`` (file, technique, source, and label:
"benign" unless said otherwise); a producer whose package is missing is skipped and listed under
``skipped`` on stderr. With MARKER it also writes real malicious SavedModels and Keras Lambda
models (label "malicious") whose ops or bytecode would only ever touch MARKER; nothing here
loads or runs them. Only stdlib imports at module level.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _safetensors(out: Path, manifest: list[dict[str, str]]) -> None:
    torch = importlib.import_module("torch")
    st_torch = importlib.import_module("safetensors.torch")
    torch.manual_seed(0)
    tensors = {
        "embed.weight": torch.randn(16, 8),
        "norm.weight": torch.ones(8, dtype=torch.bfloat16),
        "head.bias": torch.zeros(16, dtype=torch.float16),
        "steps": torch.arange(4, dtype=torch.int64),
    }
    st_torch.save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    manifest.append(
        {
            "file": "model.safetensors",
            "technique": "real-safetensors/save_file",
            "source": "safetensors.torch.save_file",
        }
    )
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    (out / "st_model").mkdir()
    st_torch.save_model(model, str(out / "st_model" / "model.safetensors"))
    manifest.append(
        {
            "file": "st_model/model.safetensors",
            "technique": "real-safetensors/save_model",
            "source": "safetensors.torch.save_model",
        }
    )


def _transformers(out: Path, manifest: list[dict[str, str]]) -> None:
    transformers = importlib.import_module("transformers")
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    folder = out / "bert"
    transformers.BertModel(config).save_pretrained(str(folder))
    for path in sorted(folder.iterdir()):
        manifest.append(
            {
                "file": f"bert/{path.name}",
                "technique": f"real-save-pretrained/{path.name}",
                "source": "transformers save_pretrained",
            }
        )


def _gguf(out: Path, manifest: list[dict[str, str]]) -> None:
    gguf = importlib.import_module("gguf")
    np = importlib.import_module("numpy")
    writer = gguf.GGUFWriter(str(out / "model.gguf"), "llama")
    writer.add_name("tiny")
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<unk>", "<s>", "</s>", "▁hello", "世界"])
    writer.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHATML)
    writer.add_tensor("token_embd.weight", np.arange(40, dtype=np.float32).reshape(5, 8))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    manifest.append(
        {"file": "model.gguf", "technique": "real-gguf/gguf-writer", "source": "gguf.GGUFWriter"}
    )


def _onnx(out: Path, manifest: list[dict[str, str]]) -> None:
    onnx = importlib.import_module("onnx")
    helper = onnx.helper
    np = importlib.import_module("numpy")
    numpy_helper = importlib.import_module("onnx.numpy_helper")
    weight = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "W")
    bias = numpy_helper.from_array(np.zeros(8, dtype=np.float32), "B")
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["H"]),
        helper.make_node("Add", ["H", "B"], ["A"]),
        helper.make_node("Relu", ["A"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [1, 8])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save_model(model, str(out / "model.onnx"))
    manifest.append(
        {"file": "model.onnx", "technique": "real-onnx/inline", "source": "onnx.save_model"}
    )
    (out / "external").mkdir()
    onnx.save_model(
        model,
        str(out / "external" / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    manifest.append(
        {
            "file": "external/model.onnx",
            "technique": "real-onnx/external-data",
            "source": "onnx.save_model(save_as_external_data=True)",
        }
    )


def _tensorflow(out: Path, manifest: list[dict[str, str]], marker: Path | None = None) -> None:
    """Real SavedModels (the op census behind proxy.scan.savedmodel's allowlist), and with
    `marker` real malicious ones (threats.md 2 and 4.8)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = importlib.import_module("tensorflow")
    keras = importlib.import_module("keras")
    base = out / "savedmodel"

    def saved(kind: str, name: str, source: str, label: str = "benign") -> None:
        for path in sorted((base / name).rglob("*")):
            if path.is_file() and (label == "benign" or path.name == "saved_model.pb"):
                inner = path.relative_to(base / name).as_posix()
                manifest.append(
                    {"file": path.relative_to(out).as_posix(), "label": label,
                     "technique": f"{kind}/{name}" + (f"/{inner}" if label == "benign" else ""),
                     "source": source}
                )  # fmt: skip

    def module(name: str, signature: list[Any], body: Any, **state: Any) -> None:
        holder = tf.Module()
        for key, value in state.items():
            setattr(holder, key, value)
        holder.serve = tf.function(functools.partial(body, holder), input_signature=signature)
        tf.saved_model.save(holder, str(base / name), signatures=holder.serve)

    def small(holder: Any, x: Any) -> Any:
        return tf.nn.softmax(tf.nn.relu(tf.matmul(x, holder.w) + holder.b))

    module(
        "module",
        [tf.TensorSpec([None, 4], tf.float32)],
        small,
        w=tf.Variable(tf.random.stateless_normal([4, 3], seed=[1, 2])),
        b=tf.Variable(tf.zeros([3])),
    )
    saved("real-savedmodel", "module", "tf.saved_model.save (tf.Module)")

    def flow(holder: Any, n: Any, x: Any) -> Any:
        def body(i: Any, acc: Any) -> Any:
            half = tf.cond(tf.reduce_sum(acc) > 10.0, lambda: acc * 0.5, lambda: acc + x)
            return i + 1, half

        _, acc = tf.while_loop(lambda i, acc: i < n, body, [tf.constant(0), tf.zeros_like(x)])
        items = tf.TensorArray(tf.float32, size=0, dynamic_size=True).write(0, acc)
        holder.v.assign_add(1.0)
        branch = tf.case([(n > 5, lambda: tf.constant(1))], default=lambda: tf.constant(2))
        return items.stack(), branch

    scalar_and_vector = [tf.TensorSpec([], tf.int32), tf.TensorSpec([None], tf.float32)]
    module("control-flow", scalar_and_vector, flow, v=tf.Variable(1.0))
    saved("real-savedmodel", "control-flow", "tf.saved_model.save (while_loop, cond, case)")

    def strings(holder: Any, s: Any) -> Any:
        words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(s), "[^a-z ]", ""))
        tf.print("lengths", tf.strings.length(s))  # to stderr: allowed
        return {
            "ids": holder.table.lookup(words).to_tensor(),
            "joined": tf.strings.reduce_join(words, axis=-1, separator="|"),
            "hashed": tf.strings.to_hash_bucket_fast(s, 100),
            "chars": tf.strings.unicode_decode(s, "UTF-8").to_tensor(),
            "base64": tf.io.encode_base64(s),
        }

    init = tf.lookup.KeyValueTensorInitializer(["a", "b"], tf.constant([1, 2], tf.int64))
    table = tf.lookup.StaticHashTable(init, -1)
    module("strings", [tf.TensorSpec([None], tf.string)], strings, table=table)
    saved("real-savedmodel", "strings", "tf.saved_model.save (strings, lookup table)")

    layers = keras.layers
    inputs = keras.Input((8,))
    hidden = layers.BatchNormalization()(layers.Dropout(0.1)(layers.Dense(16, "relu")(inputs)))
    keras.Model(inputs, layers.Dense(2, activation="softmax")(hidden)).export(
        str(base / "keras-dense")
    )
    saved("real-savedmodel", "keras-dense", "keras Model.export")
    inputs = keras.Input((5, 4))
    recurrent = layers.GRU(6)(layers.LSTM(8, return_sequences=True)(inputs))
    keras.Model(inputs, layers.Dense(1)(recurrent)).export(str(base / "keras-rnn"))
    saved("real-savedmodel", "keras-rnn", "keras Model.export (LSTM, GRU)")
    tokens = keras.Input((6,), dtype="int32")
    embedded = layers.Embedding(50, 8)(tokens)
    attended = layers.LayerNormalization()(
        layers.Add()([layers.MultiHeadAttention(2, 4)(embedded, embedded), embedded])
    )
    pooled = layers.GlobalMaxPooling1D()(layers.Conv1D(4, 2)(attended))
    keras.Model(tokens, pooled).export(str(base / "keras-attention"))
    saved("real-savedmodel", "keras-attention", "keras Model.export (attention, conv)")
    vectorize = layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorize.adapt(["hello world", "foo bar baz"])
    text = keras.Input((1,), dtype="string")
    keras.Model(text, vectorize(text)).export(str(base / "keras-text"))
    saved("real-savedmodel", "keras-text", "keras Model.export (TextVectorization)")

    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        y = tf.identity(tf.matmul(x, tf.compat.v1.get_variable("w", [3, 2])), name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(str(base / "tf1-builder"))
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(
            session, ["serve"], signature_def_map={"serving_default": signature}
        )
        builder.save()
    saved("real-savedmodel", "tf1-builder", "tf.compat.v1.saved_model.Builder")
    if marker is not None:
        _tensorflow_malicious(module, str(marker))
        for name, source in MALICIOUS_SAVEDMODELS.items():
            saved("savedmodel", name, source, "malicious")


MALICIOUS_SAVEDMODELS = {
    "real-read-write-file": "threats.md 2/4.8 (ReadFile/WriteFile, modelscan HIGH)",
    "real-py-function": "threats.md 2/4.8 (tf.py_function: EagerPyFunc)",
    "real-numpy-function": "threats.md 2/4.8 (tf.numpy_function: PyFunc)",
    "real-print-to-file": "threats.md 4.8 (PrintV2 output_stream file://)",
    "real-savev2-in-model": "threats.md 4.8 (checkpoint writer outside the saver)",
    "real-textline-dataset": "threats.md 4.8 (file-reading dataset in the graph)",
}


def _tensorflow_malicious(module: Any, marker: str) -> None:
    """SavedModels whose serving function would touch `marker`; built, never loaded or run.
    `module(name, input_signature, body, **state)` saves `body` as a tf.function."""
    tf = importlib.import_module("tensorflow")

    def touch(value: Any) -> Any:
        Path(marker).touch()
        return value

    path_spec = [tf.TensorSpec([], tf.string)]
    vector_spec = [tf.TensorSpec([None], tf.float32)]

    def read_write(_: Any, path: Any) -> Any:
        data = tf.io.read_file(path)
        tf.io.write_file(marker, data)
        return data

    def py_function(_: Any, x: Any) -> Any:
        return tf.py_function(touch, [x], tf.float32)

    def numpy_function(_: Any, x: Any) -> Any:
        return tf.numpy_function(touch, [x], tf.float32)

    def print_to_file(_: Any, x: Any) -> Any:
        tf.print("leak", x, output_stream=f"file://{marker}")
        return x

    def savev2(holder: Any, path: Any) -> Any:
        tensor = holder.v.read_value()
        tf.raw_ops.SaveV2(
            prefix=marker, tensor_names=["v"], shape_and_slices=[""], tensors=[tensor]
        )
        return path

    def textline(_: Any, path: Any) -> Any:
        lines = tf.data.TextLineDataset([marker, path])
        return lines.reduce(tf.constant(""), lambda joined, line: joined + line)

    module("real-read-write-file", path_spec, read_write)
    module("real-py-function", vector_spec, py_function)
    module("real-numpy-function", vector_spec, numpy_function)
    module("real-print-to-file", vector_spec, print_to_file)
    module("real-savev2-in-model", path_spec, savev2, v=tf.Variable([1.0, 2.0]))
    module("real-textline-dataset", path_spec, textline)


def _keras(out: Path, manifest: list[dict[str, str]], marker: Path | None = None) -> None:
    """Keras 3 files as ``model.save`` writes them: a ``.keras`` archive (with its
    ``model.weights.h5``), a legacy ``.h5`` model and a ``.weights.h5``; with `marker`, real
    Lambda models whose bytecode would only ever touch `marker` (CVE-2024-3660; Keras before
    the CVE-2025-9905 fix ignored safe_mode for `.h5`). Runs on TensorFlow once that is
    imported, else on torch."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = importlib.import_module("keras")
    np = importlib.import_module("numpy")
    folder = out / "keras"
    folder.mkdir()
    layers = keras.layers

    def add(name: str, technique: str, source: str, label: str = "benign") -> None:
        manifest.append(
            {"file": f"keras/{name}", "technique": technique, "source": source, "label": label}
        )

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential(
        [keras.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(2)], name="mlp"
    )
    mlp.compile(optimizer="adam", loss="mse", metrics=["mae"])
    mlp.fit(np.zeros((4, 4)), np.zeros((4, 2)), epochs=1, verbose=0)
    mlp.save(str(folder / "mlp.keras"))
    add("mlp.keras", "real-keras/keras-v3", "keras Model.save (.keras)")
    mlp.save(str(folder / "mlp.h5"))
    add("mlp.h5", "real-keras/legacy-h5", "keras Model.save (.h5, legacy HDF5)")
    mlp.save_weights(str(folder / "mlp.weights.h5"))
    add("mlp.weights.h5", "real-keras/weights-h5", "keras Model.save_weights")
    inputs = keras.Input((8, 8, 1))
    hidden = layers.BatchNormalization()(layers.Conv2D(4, 3, activation="relu")(inputs))
    pooled = layers.GlobalAveragePooling2D()(layers.Dropout(0.1)(hidden))
    cnn = keras.Model(inputs, layers.Dense(3, activation="softmax")(pooled), name="cnn")
    cnn.save(str(folder / "cnn.h5"))
    add("cnn.h5", "real-keras/legacy-h5-functional", "keras Model.save (.h5, functional)")
    cnn.save(str(folder / "cnn.keras"))
    add("cnn.keras", "real-keras/keras-v3-functional", "keras Model.save (.keras, functional)")
    if marker is None:
        return
    # output_shape spares Keras from tracing the function while building: nothing runs here.
    # Run at load time, the function would create `marker` (os.open with O_CREAT | O_WRONLY)
    # and pass x through; Keras stores the path as the lambda's closure.
    payload = layers.Lambda(_touching(str(marker)), output_shape=(4,))
    evil = keras.Sequential([keras.Input((4,)), payload], name="evil")
    evil.save(str(folder / "lambda.h5"))
    add("lambda.h5", "keras/real-lambda-h5", "CVE-2024-3660, CVE-2025-9905", "malicious")
    evil.save(str(folder / "lambda.keras"))
    add("lambda.keras", "keras/real-lambda-keras", "CVE-2024-3660", "malicious")


def _touching(path: str) -> Any:
    return lambda x: x + 0 * __import__("os").open(path, 0o101)


PRODUCERS = {
    "safetensors": _safetensors,
    "transformers": _transformers,
    "gguf": _gguf,
    "onnx": _onnx,
    "tensorflow": _tensorflow,
    "keras": _keras,
}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} OUT_DIR [MARKER]", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    marker = Path(argv[2]) if len(argv) == 3 else None
    manifest: list[dict[str, str]] = []
    skipped: dict[str, Any] = {}
    for name, produce in PRODUCERS.items():
        try:
            if produce is _tensorflow:
                _tensorflow(out, manifest, marker)
            elif produce is _keras:
                _keras(out, manifest, marker)
            else:
                produce(out, manifest)
        except ImportError as exc:
            skipped[name] = str(exc)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if skipped:
        print(f"skipped: {json.dumps(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
