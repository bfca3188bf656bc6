"""Upstream misbehaves: Airlock verifies, resumes, retries, and never serves bad bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cache.registry import BlobState
from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.cutting_proxy import CuttingProxy
from tests.fakehub import FakeHub, Fault
from tests.http import raw_request

REPO = "acme/faulty"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def files(hub: FakeHub) -> dict[str, bytes]:
    content = {
        "config.json": CONFIG_JSON,
        "model.safetensors": safetensors_bytes(3_000_000),
        "pytorch_model.bin": pickled_weights(200_000),
    }
    hub.add_repo(REPO, content)
    return content


def cdn_gets(hub: FakeHub) -> list[str]:
    return [r.headers.get("range", "") for r in hub.requests if r.origin == "cdn"]


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.safetensors", "config.json"])
def test_corrupted_bytes_are_quarantined_and_never_delivered(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock, client: HubClient, name: str
) -> None:
    hub.set_fault(Fault.WRONG_BYTES, path=name, times=None)

    result = client.run("download", repo_id=REPO, filename=name)

    assert result.error is not None
    text = result.error["message"] + str(result.error["cause"])
    assert "Airlock" in text
    # Nothing with the file's name was left in the client's cache.
    assert not list((client.home / "hf").rglob(name))
    assert airlock.blob_files("blobs") == []
    quarantined = airlock.blob_files("quarantine")
    assert len(quarantined) == 1
    assert quarantined[0].name != sha256(files[name])
    row = airlock.registry().blob(quarantined[0].name)
    assert row is not None and row.state is BlobState.CORRUPT


def test_corruption_message_reaches_the_user_at_head_time(
    hub: FakeHub, files: dict[str, bytes], client: HubClient
) -> None:
    hub.set_fault(Fault.WRONG_BYTES, path="pytorch_model.bin", times=None)
    error = client.run("download", repo_id=REPO, filename="pytorch_model.bin").error
    assert error is not None
    assert error["type"] == "GatedRepoError"
    assert "Airlock refused pytorch_model.bin" in error["message"]
    assert "sha256" in error["message"]


def test_retries_within_the_cooldown_get_the_reason_not_a_new_fetch(
    hub: FakeHub, files: dict[str, bytes], client: HubClient
) -> None:
    hub.set_fault(Fault.WRONG_BYTES, path="model.safetensors", times=None)
    for _ in range(2):
        error = client.run("download", repo_id=REPO, filename="model.safetensors").error
        assert error is not None
        assert error["type"] == "GatedRepoError"
        assert "Airlock refused model.safetensors" in error["message"]
    assert len(cdn_gets(hub)) == 1


def test_a_later_request_fetches_again_after_the_cooldown(
    hub: FakeHub, files: dict[str, bytes], make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(failure_cooldown_s=0.0)
    client = HubClient(airlock.url, tmp_path)
    hub.set_fault(Fault.WRONG_BYTES, path="pytorch_model.bin", times=1)
    assert client.run("download", repo_id=REPO, filename="pytorch_model.bin").error is not None
    ok = client.run("download", repo_id=REPO, filename="pytorch_model.bin").ok()
    assert ok["sha256"] == sha256(files["pytorch_model.bin"])


def test_a_longer_body_than_published_is_refused(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    hub.set_fault(Fault.WRONG_LENGTH, path="pytorch_model.bin", times=None, length_delta=7)
    error = client.run("download", repo_id=REPO, filename="pytorch_model.bin").error
    assert error is not None
    assert "bytes for a file the Hub lists as" in error["message"]
    assert airlock.blob_files("blobs") == []


def test_a_shorter_body_is_completed_with_a_range_request_and_verified(
    hub: FakeHub, files: dict[str, bytes], client: HubClient
) -> None:
    hub.set_fault(Fault.WRONG_LENGTH, path="pytorch_model.bin", times=1, length_delta=-1000)
    ok = client.run("download", repo_id=REPO, filename="pytorch_model.bin").ok()
    assert ok["sha256"] == sha256(files["pytorch_model.bin"])
    assert any(r.startswith("bytes=") for r in cdn_gets(hub))


def test_a_cut_upstream_body_is_resumed_with_range(
    hub: FakeHub, files: dict[str, bytes], client: HubClient
) -> None:
    hub.set_fault(Fault.CUT, path="model.safetensors", times=1)
    ok = client.run("download", repo_id=REPO, filename="model.safetensors").ok()
    assert ok["sha256"] == sha256(files["model.safetensors"])
    ranges = cdn_gets(hub)
    assert ranges[0] == ""
    assert ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_a_stalled_upstream_body_is_abandoned_and_resumed(
    hub: FakeHub, files: dict[str, bytes], make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(upstream_read_timeout_s=1.0)
    hub.set_fault(Fault.STALL, path="pytorch_model.bin", times=1, stall_s=8.0)
    home = tmp_path / "home"
    home.mkdir()
    ok = HubClient(airlock.url, home).run("download", repo_id=REPO, filename="pytorch_model.bin")
    assert ok.ok()["sha256"] == sha256(files["pytorch_model.bin"])
    assert len(cdn_gets(hub)) == 2


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMIT])
def test_transient_upstream_errors_are_retried(
    hub: FakeHub, files: dict[str, bytes], client: HubClient, fault: Fault
) -> None:
    hub.set_fault(fault, path="pytorch_model.bin", times=2, retry_after=1)
    ok = client.run("download", repo_id=REPO, filename="pytorch_model.bin").ok()
    assert ok["sha256"] == sha256(files["pytorch_model.bin"])
    assert len(cdn_gets(hub)) == 3


def test_range_requests_against_a_cached_file(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    client.run("download", repo_id=REPO, filename="pytorch_model.bin").ok()
    data = files["pytorch_model.bin"]
    path = f"/{REPO}/resolve/main/pytorch_model.bin"

    partial = raw_request("GET", airlock.url, path, {"Range": "bytes=100-"})
    assert partial.status == 206
    assert partial.body == data[100:]
    assert partial.header("Content-Range") == f"bytes 100-{len(data) - 1}/{len(data)}"

    middle = raw_request("GET", airlock.url, path, {"Range": "bytes=10-19"})
    assert middle.status == 206 and middle.body == data[10:20]

    beyond = raw_request("GET", airlock.url, path, {"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416
    assert beyond.header("Content-Range") == f"bytes */{len(data)}"


def test_gzip_encoded_upstream_text_is_verified_after_decoding(
    hub: FakeHub, files: dict[str, bytes], client: HubClient
) -> None:
    hub.set_fault(Fault.GZIP, path="config.json", times=None)
    ok = client.run("download", repo_id=REPO, filename="config.json").ok()
    assert ok["sha256"] == sha256(CONFIG_JSON)


def test_the_client_resumes_a_cut_download_from_airlock_with_range(
    hub: FakeHub, airlock: RunningAirlock, tmp_path: Path
) -> None:
    weights = safetensors_bytes(25_000_000)
    hub.add_repo("acme/big", {"model.safetensors": weights})
    # Warm the cache first, so the cut happens between the client and Airlock only.
    HubClient(airlock.url, tmp_path / "warm").run(
        "download", repo_id="acme/big", filename="model.safetensors"
    ).ok()
    with CuttingProxy(airlock.port, cut_after_bytes=12_500_000) as proxy:
        client = HubClient(proxy.url, tmp_path / "cut")
        got = client.run("download", repo_id="acme/big", filename="model.safetensors").ok()
        assert proxy.cuts == 1
    assert got["sha256"] == sha256(weights)
    gets = [r for r in airlock.registry().audit_rows() if r["method"] == "GET"]
    assert [r["status"] for r in gets] == [200, 200, 206]  # warm-up, cut, resume
    assert gets[-1]["bytes_sent"] == len(weights) - 10 * 1024 * 1024
