"""Single flight: many clients asking for one uncached blob cause one upstream fetch."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights, safetensors_bytes
from tests.client import HubClient
from tests.fakehub import FakeHub, Fault

REPO = "acme/popular"


@pytest.mark.parametrize(
    "name, content",
    [
        ("model.safetensors", safetensors_bytes(3_000_000)),
        ("pytorch_model.bin", pickled_weights(3_000_000)),
    ],
)
def test_twenty_concurrent_clients_cause_one_upstream_fetch(
    hub: FakeHub, airlock: RunningAirlock, tmp_path: Path, name: str, content: bytes
) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG_JSON, name: content})
    # Slow the transfer so that every client arrives while the fetch is under way.
    hub.set_fault(Fault.THROTTLE, path=name, times=None, rate_bytes_s=3_000_000)
    client = HubClient(airlock.url, tmp_path)

    result = client.run(
        "concurrent_download", repo_id=REPO, filename=name, clients=20, cache_dir=str(tmp_path)
    ).ok()

    digests = [r.get("sha256") for r in result["results"]]
    assert digests == [hashlib.sha256(content).hexdigest()] * 20, result["results"]
    fetches = [r for r in hub.requests if r.origin == "cdn"]
    assert len(fetches) == 1
