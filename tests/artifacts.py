"""Builders for test artifacts. Everything a test serves is generated here, at test time."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

CONFIG_JSON = json.dumps({"model_type": "bert", "hidden_size": 8}, indent=2).encode()


def safetensors_bytes(data_bytes: int = 4096, *, metadata: dict[str, str] | None = None) -> bytes:
    """A well-formed safetensors file: one U8 tensor of `data_bytes` pseudo-random bytes."""
    return safetensors_header(data_bytes, metadata=metadata) + os.urandom(data_bytes)


def safetensors_header(data_bytes: int, *, metadata: dict[str, str] | None = None) -> bytes:
    header: dict[str, object] = {
        "weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}
    }
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the writer pads the header to 8 bytes, as safetensors does
    return struct.pack("<Q", len(raw)) + raw


def write_safetensors(path: Path, data_bytes: int, *, chunk_bytes: int = 1 << 24) -> Path:
    """A large safetensors file written in chunks (memory stays flat)."""
    with path.open("wb") as handle:
        handle.write(safetensors_header(data_bytes))
        block = os.urandom(min(chunk_bytes, max(data_bytes, 1)))
        left = data_bytes
        while left > 0:
            piece = block[: min(left, len(block))]
            handle.write(piece)
            left -= len(piece)
    return path


def pickled_weights(size_bytes: int) -> bytes:
    """A benign pickle of about `size_bytes` (a pickle-family file: held until it is verified
    and scanned, and allowed by the scanner)."""
    return pickle.dumps({"weight": os.urandom(max(0, size_bytes - 64))}, protocol=4)
