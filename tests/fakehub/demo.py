"""The demo repo set served by ``python -m tests.fakehub --demo``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .hub import FakeHub

PRIVATE_TOKEN = "hf_demo_private_token"
GATED_TOKEN = "hf_demo_gated_token"


def _pseudo_random(seed: str, size: int) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _write_big(path: Path, seed: str, size: int) -> Path:
    chunk = _pseudo_random(seed, 1 << 20)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            fh.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


def _model_files(name: str) -> dict[str, bytes | Path]:
    config = {"architectures": ["FakeModel"], "model_type": "fake", "name": name}
    return {
        "config.json": json.dumps(config, indent=2).encode(),
        "README.md": f"# {name}\n\nA fakehub demo model.\n".encode(),
        "model.safetensors": _pseudo_random(name, 16_496),
        "sub/extra.txt": b"extra\n",
        "tokenizer.json": json.dumps({"version": "1.0", "vocab": list(range(50))}).encode(),
    }


def populate(hub: FakeHub, big_dir: Path | None = None, big_mb: int = 0) -> dict[str, Any]:
    """Add the demo repos; returns a description (ids, tokens, revisions) for the JSON line."""
    main = hub.add_repo("acme/tiny-model", _model_files("tiny-model"))
    hub.tag("acme/tiny-model", "v1.0", main)
    pr = hub.open_pr("acme/tiny-model", {"config.json": b'{"model_type": "fake", "pr": 1}\n'})
    hub.add_repo(
        "acme/tiny-data",
        {
            "README.md": b"# tiny-data\n",
            "data/train.csv": b"a,b\n1,2\n3,4\n",
            "data/train.parquet": _pseudo_random("parquet", 4096),
        },
        repo_type="dataset",
    )
    hub.add_repo("acme/cached-model", _model_files("cached-model"), resolve_style="resolve-cache")
    hub.add_repo("acme/xet-model", _model_files("xet-model"), xet=True)
    hub.add_repo("acme/private-model", _model_files("private-model"), private_token=PRIVATE_TOKEN)
    hub.add_repo("acme/gated-model", _model_files("gated-model"), gated_tokens={GATED_TOKEN})
    hub.add_repo("acme/old-name", _model_files("renamed-model"))
    hub.rename("acme/old-name", "acme/renamed-model")
    hub.add_huge_file("acme/huge", "huge.safetensors")
    repos = [
        "acme/tiny-model",
        "datasets/acme/tiny-data",
        "acme/cached-model",
        "acme/xet-model",
        "acme/private-model",
        "acme/gated-model",
        "acme/renamed-model",
        "acme/huge",
    ]
    if big_dir is not None and big_mb > 0:
        big = _write_big(big_dir / "big.safetensors", "big", big_mb << 20)
        hub.add_repo("acme/big-model", {"config.json": b"{}\n", "model.safetensors": big})
        repos.append("acme/big-model")
    return {
        "repos": repos,
        "renamed": {"acme/old-name": "acme/renamed-model"},
        "private_token": PRIVATE_TOKEN,
        "gated_token": GATED_TOKEN,
        "pr_sha": pr,
        "main_sha": main,
    }
