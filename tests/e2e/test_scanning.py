"""The scan engine runs in the mirror on every staged blob: a malicious pickle fetched through
Airlock is refused with the finding, the payload never runs, and benign files pass."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights
from tests.client import HubClient
from tests.fakehub import FakeHub


def system_pickle(marker: Path) -> bytes:
    """Protocol 2: os.system('touch MARKER') through GLOBAL + REDUCE, the classic malicious
    checkpoint (harmless if it ever ran: it creates a marker file under the test's tmp dir)."""
    command = f"touch {marker}".encode()
    return (
        b"\x80\x02cposix\nsystem\nq\x00X"
        + struct.pack("<I", len(command))
        + command
        + b"q\x01\x85q\x02Rq\x03."
    )


def test_every_blob_is_scanned_and_judged(
    hub: FakeHub, airlock: RunningAirlock, client: HubClient
) -> None:
    hub.add_repo(
        "acme/ok", {"pytorch_model.bin": pickled_weights(5000), "config.json": CONFIG_JSON}
    )
    client.run("snapshot", repo_id="acme/ok").ok()
    decisions = list(airlock.registry().db.query("SELECT path, verdict, scanner FROM decisions"))
    assert {(d["path"], d["verdict"], d["scanner"]) for d in decisions} >= {
        ("pytorch_model.bin", "allow", "airlock-engine"),
        ("config.json", "allow", "airlock-engine"),
    }


def test_a_malicious_pickle_is_blocked_with_its_finding(
    hub: FakeHub, airlock: RunningAirlock, client: HubClient, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    hub.add_repo("acme/evil", {"pytorch_model.bin": system_pickle(marker)})
    error = client.run("download", repo_id="acme/evil", filename="pytorch_model.bin").error
    assert error is not None
    assert error["type"] == "GatedRepoError"
    assert "Airlock blocked pytorch_model.bin in acme/evil@" in error["message"]
    assert "posix.system" in error["message"]
    assert airlock.blob_files("blobs") == []
    assert len(airlock.blob_files("quarantine")) == 1
    assert not marker.exists()


def test_a_malformed_safetensors_header_is_blocked(
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
