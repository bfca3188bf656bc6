"""Benign files written by the real producers of the non-pickle formats: ``safetensors.torch``,
transformers' ``save_pretrained``, the ``gguf`` package's GGUFWriter and the ``onnx`` package.

Run under the client environment's Python 3.11 (torch, transformers, safetensors, and gguf and
onnx from tests/client-requirements.txt): ``python real_producers.py OUT_DIR``. It writes the
files and a ``manifest.json`` (file, technique, source); a producer whose package is missing is
skipped and listed under ``skipped`` on stderr. Only stdlib imports at module level.
"""

from __future__ import annotations

import importlib
import json
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


PRODUCERS = {
    "safetensors": _safetensors,
    "transformers": _transformers,
    "gguf": _gguf,
    "onnx": _onnx,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, str]] = []
    skipped: dict[str, Any] = {}
    for name, produce in PRODUCERS.items():
        try:
            produce(out, manifest)
        except ImportError as exc:
            skipped[name] = str(exc)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if skipped:
        print(f"skipped: {json.dumps(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
