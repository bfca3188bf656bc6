"""The scan -> decide seam runs on every staged blob. Until the scanners land, the default
scanner is a placeholder that clears what it does not understand; these tests pin that name so
it cannot pass for a real scanner, and pin the one check it does make (safetensors headers)."""

from __future__ import annotations

import json
import struct

from tests.airlock_server import RunningAirlock
from tests.artifacts import opaque_weights
from tests.client import HubClient
from tests.fakehub import FakeHub


def test_the_default_scanner_is_the_named_clear_all_placeholder(
    hub: FakeHub, airlock: RunningAirlock, client: HubClient
) -> None:
    hub.add_repo("acme/seam", {"pytorch_model.bin": opaque_weights(5000)})
    client.run("download", repo_id="acme/seam", filename="pytorch_model.bin").ok()
    decisions = list(airlock.registry().db.query("SELECT * FROM decisions"))
    assert [(d["path"], d["verdict"], d["scanner"]) for d in decisions] == [
        ("pytorch_model.bin", "allow", "placeholder-clear-all")
    ]


def test_a_malformed_safetensors_header_is_blocked_even_by_the_placeholder(
    hub: FakeHub, airlock: RunningAirlock, client: HubClient
) -> None:
    header = json.dumps({"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}).encode()
    # 8 declared tensor bytes, 64 actual: hidden bytes after the last tensor.
    hidden = struct.pack("<Q", len(header)) + header + b"\0" * 64
    hub.add_repo("acme/hidden", {"model.safetensors": hidden})
    error = client.run("download", repo_id="acme/hidden", filename="model.safetensors").error
    assert error is not None
    assert error["type"] == "GatedRepoError"
    assert "safetensors-layout" in error["message"]
    assert airlock.blob_files("blobs") == []
