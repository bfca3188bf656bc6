"""Shared fixtures for the scanner tests: real checkpoints written by torch, numpy, sklearn,
joblib and transformers under the client environment's Python 3.11 (AIRLOCK_TORCH_PYTHON)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts import run_producer
from tests.scan import pickle_samples

SAMPLES_SCRIPT = Path(pickle_samples.__file__)

TORCH_PYTHON = os.environ.get("AIRLOCK_TORCH_PYTHON")
needs_torch = pytest.mark.skipif(
    not TORCH_PYTHON, reason="AIRLOCK_TORCH_PYTHON does not point at a Python with torch"
)


@pytest.fixture(scope="session")
def real_samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    assert TORCH_PYTHON
    out = tmp_path_factory.mktemp("real")
    run_producer(TORCH_PYTHON, SAMPLES_SCRIPT, ["real", str(out)], cwd=out)
    manifest: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text())
    return out, manifest
