"""Upstream unreachable: cleared content keeps flowing, marked as such; nothing is invented."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub
from tests.http import raw_request

REPO = "acme/offline"
WEIGHTS = safetensors_bytes(40_000)


def home(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def test_cached_content_is_served_when_upstream_is_down(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    # With no TTL every branch request asks upstream first, so each one meets the outage.
    airlock = make_airlock(revision_ttl_s=0.0)
    hub.add_repo(REPO, {"config.json": CONFIG_JSON, "model.safetensors": WEIGHTS})
    hub.add_repo("acme/never-fetched", {"config.json": CONFIG_JSON})
    commit = hub.head_commit(REPO)
    HubClient(airlock.url, home(tmp_path, "warm")).run("snapshot", repo_id=REPO).ok()
    HubClient(airlock.url, home(tmp_path, "warm2")).run(
        "download", repo_id=REPO, filename="config.json"
    ).ok()
    hub.stop()

    client = HubClient(airlock.url, home(tmp_path, "offline"))
    pinned = client.run("download", repo_id=REPO, filename="model.safetensors", revision=commit)
    assert pinned.ok()["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()

    by_branch = client.run("download", repo_id=REPO, filename="config.json")
    assert by_branch.ok()["sha256"] == hashlib.sha256(CONFIG_JSON).hexdigest()
    assert "could not reach upstream" in by_branch.stderr  # X-HF-Warning, logged by the client

    snapshot = HubClient(airlock.url, home(tmp_path, "snap")).run("snapshot", repo_id=REPO)
    assert snapshot.ok()["files"]["model.safetensors"] == hashlib.sha256(WEIGHTS).hexdigest()

    head = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/config.json")
    assert head.status == 200
    assert (head.header("X-HF-Warning") or "").startswith("airlock-offline;")


def test_nothing_uncached_is_invented_when_upstream_is_down(
    hub: FakeHub, airlock: RunningAirlock, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG_JSON, "model.safetensors": WEIGHTS})
    HubClient(airlock.url, home(tmp_path, "warm")).run(
        "download", repo_id=REPO, filename="config.json"
    ).ok()
    hub.stop()

    # (The real client retries a 502 HEAD for about 23 s before giving up; raw requests keep
    # this test fast.)
    head = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/model.safetensors")
    assert head.status == 502
    assert "could not reach upstream" in (head.header("X-Error-Message") or "")
    unknown_branch = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/dev/config.json")
    assert unknown_branch.status == 502
