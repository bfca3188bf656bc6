"""Private and gated repos: tokens go upstream (never to the CDN, never to disk or logs), and a
cached restricted file reaches only callers upstream has confirmed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub

PRIVATE = "acme/secret"
GATED = "acme/gated"
OWNER_TOKEN = "hf_ownerTOKEN1234567890"
ALICE = "hf_aliceTOKEN1234567890"
BOB = "hf_bobTOKEN123456789012"
MALLORY = "hf_malloryTOKEN12345678"
WEIGHTS = safetensors_bytes(50_000)


@pytest.fixture
def repos(hub: FakeHub) -> None:
    files = {"config.json": CONFIG_JSON, "model.safetensors": WEIGHTS}
    hub.add_repo(PRIVATE, files, private_token=OWNER_TOKEN)
    hub.add_repo(GATED, files, gated_tokens={ALICE, BOB})


def home(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def cdn_requests(hub: FakeHub) -> int:
    return sum(1 for r in hub.requests if r.origin == "cdn")


def test_private_repo_needs_the_token_and_does_not_leak_from_cache(
    hub: FakeHub, repos: None, airlock: RunningAirlock, tmp_path: Path
) -> None:
    owner = HubClient(airlock.url, home(tmp_path, "owner"))
    commit = hub.head_commit(PRIVATE)
    got = owner.run(
        "download", repo_id=PRIVATE, filename="model.safetensors", token=OWNER_TOKEN
    ).ok()
    assert got["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    # The token reached the hub origin, and never the CDN.
    assert any(r.headers.get("authorization") == f"Bearer {OWNER_TOKEN}" for r in hub.requests)
    assert all("authorization" not in r.headers for r in hub.requests if r.origin == "cdn")

    for name, token in (("anon", False), ("mallory", MALLORY)):
        stranger = HubClient(airlock.url, home(tmp_path, name))
        result = stranger.run(
            "download", repo_id=PRIVATE, filename="model.safetensors", revision=commit, token=token
        )
        assert result.error is not None
        assert result.error["type"] == "RepositoryNotFoundError"
        assert not list((stranger.home / "hf").rglob("model.safetensors"))
    assert cdn_requests(hub) == 1


def test_gated_file_cached_for_one_user_is_confirmed_for_the_next(
    hub: FakeHub, repos: None, airlock: RunningAirlock, tmp_path: Path
) -> None:
    alice = HubClient(airlock.url, home(tmp_path, "alice"))
    alice.run("download", repo_id=GATED, filename="model.safetensors", token=ALICE).ok()
    hub.clear_log()

    bob = HubClient(airlock.url, home(tmp_path, "bob"))
    bob.run("download", repo_id=GATED, filename="model.safetensors", token=BOB).ok()
    # Bob's access was confirmed upstream with Bob's token; the bytes came from Airlock's cache.
    assert any(r.headers.get("authorization") == f"Bearer {BOB}" for r in hub.requests)
    assert cdn_requests(hub) == 0

    mallory = HubClient(airlock.url, home(tmp_path, "mallory"))
    denied = mallory.run("download", repo_id=GATED, filename="model.safetensors", token=MALLORY)
    assert denied.error is not None and denied.error["type"] == "GatedRepoError"

    anonymous = HubClient(airlock.url, home(tmp_path, "anon"))
    denied = anonymous.run("download", repo_id=GATED, filename="model.safetensors")
    assert denied.error is not None and denied.error["type"] == "GatedRepoError"


def test_access_confirmation_is_cached_briefly_per_token(
    hub: FakeHub, repos: None, airlock: RunningAirlock, tmp_path: Path
) -> None:
    commit = hub.head_commit(GATED)
    for attempt in range(3):
        # A fresh client cache each time, so the client asks Airlock every time.
        alice = HubClient(airlock.url, home(tmp_path, f"alice-{attempt}"))
        alice.run(
            "download", repo_id=GATED, filename="config.json", revision=commit, token=ALICE
        ).ok()
    upstream_heads = [r for r in hub.requests if r.method == "HEAD"]
    assert len(upstream_heads) == 1


def test_upstream_token_serves_callers_without_one(
    hub: FakeHub, repos: None, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(upstream_token=OWNER_TOKEN)
    anonymous = HubClient(airlock.url, home(tmp_path, "anon"))
    got = anonymous.run("download", repo_id=PRIVATE, filename="model.safetensors").ok()
    assert got["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    # A caller's own token still wins over Airlock's.
    mallory = HubClient(airlock.url, home(tmp_path, "mallory"))
    denied = mallory.run("download", repo_id=PRIVATE, filename="config.json", token=MALLORY)
    assert denied.error is not None


def test_tokens_are_never_written_to_disk(
    hub: FakeHub, repos: None, airlock: RunningAirlock, tmp_path: Path
) -> None:
    owner = HubClient(airlock.url, home(tmp_path, "owner"))
    owner.run("download", repo_id=PRIVATE, filename="config.json", token=OWNER_TOKEN).ok()
    owner.run("model_info", repo_id=PRIVATE, token=OWNER_TOKEN).ok()
    rows = airlock.registry().audit_rows()
    assert {row["token_fp"] for row in rows if row["repo_id"] == PRIVATE} - {None}
    for path in airlock.settings.data_dir.rglob("*"):
        if path.is_file():
            assert OWNER_TOKEN.encode() not in path.read_bytes(), path
