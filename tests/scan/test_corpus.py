"""The whole labelled corpus (tests/artifacts.py write_corpus) through the engine: every malicious
file is blocked, every benign one allowed, and no payload ever runs. With AIRLOCK_TORCH_PYTHON
the benign side includes real files written by torch, joblib, numpy, scikit-learn,
transformers, safetensors, gguf and onnx."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from proxy.policy import Verdict, decide
from proxy.scan.engine import scan_path
from tests.artifacts import CorpusEntry, write_corpus
from tests.scan.conftest import TORCH_PYTHON, needs_torch


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CorpusEntry]]:
    out = tmp_path_factory.mktemp("corpus")
    return out, write_corpus(out, torch_python=TORCH_PYTHON, marker=out / "MARKER")


def _verdict(entry: CorpusEntry) -> tuple[Verdict, list[str]]:
    report = scan_path(entry.path)
    return decide(report).verdict, [f"{f.rule}: {f.message}" for f in report.findings]


@pytest.mark.parametrize(
    "label, expected, at_least",
    [("malicious", Verdict.BLOCK, 80), ("benign", Verdict.ALLOW, 40)],
    ids=["every-malicious-file-is-blocked", "every-benign-file-is-allowed"],
)
def test_every_file_gets_the_verdict_of_its_label(
    corpus: tuple[Path, list[CorpusEntry]], label: str, expected: Verdict, at_least: int
) -> None:
    out, entries = corpus
    labelled = [e for e in entries if e.label == label]
    assert len(labelled) >= at_least
    wrong = []
    for entry in labelled:
        verdict, findings = _verdict(entry)
        if verdict is not expected:
            wrong.append((entry.technique, entry.path.name, findings))
    assert not wrong
    assert not (out / "MARKER").exists()


def test_every_threat_family_is_covered(corpus: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = corpus
    families = Counter(e.family for e in entries if e.label == "malicious")
    expected = {
        "pickle-gadget", "torch-zip-gadget", "extension", "zip", "7z", "legacy-torch", "joblib",
        "compressed", "npy", "tar", "keras", "onnx", "savedmodel", "gguf-template",
        "tokenizer-template", "custom-code", "hdf5",
    }  # fmt: skip
    assert expected <= set(families)
    paths = [e.path for e in entries]
    assert len(paths) == len(set(paths))


@needs_torch
def test_real_producers_are_in_the_corpus(corpus: tuple[Path, list[CorpusEntry]]) -> None:
    _, entries = corpus
    benign = [e for e in entries if e.label == "benign"]
    real = Counter(e.family for e in benign if e.family.startswith("real-"))
    assert real["real-torch-zip"] >= 10
    assert real["real-joblib"] >= 10
    assert {"real-torch-legacy", "real-npy", "real-safetensors", "real-save-pretrained"} <= set(
        real
    )
    assert real["real-savedmodel"] >= 20  # tf.saved_model.save, Keras export, TF1 builder
    malicious = [e.technique for e in entries if e.label == "malicious"]
    assert sum(t.startswith("savedmodel/real-") for t in malicious) >= 5
    assert len(benign) >= 80
