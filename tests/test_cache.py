"""The blob store and the registry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cache.blobs import BlobStore
from cache.registry import MIGRATIONS, BlobState, FileRow, Registry


def test_staging_leftovers_from_a_crash_are_removed_at_start(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.prepare()
    staging = store.new_staging()
    staging.path.write_bytes(b"half a file")
    assert store.prepare() == 1
    assert list(store.staging_dir.iterdir()) == []
    assert list(store.blobs_dir.iterdir()) == []


def test_commit_and_quarantine_move_by_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.prepare()
    good, bad = store.new_staging(), store.new_staging()
    good.path.write_bytes(b"good")
    bad.path.write_bytes(b"bad")
    good_sha = hashlib.sha256(b"good").hexdigest()
    bad_sha = hashlib.sha256(b"bad").hexdigest()

    assert store.commit(good, good_sha).read_bytes() == b"good"
    store.quarantine(bad, bad_sha)
    assert store.path(good_sha) is not None
    assert store.path(bad_sha) is None  # quarantined bytes are never servable
    assert store.quarantined(bad_sha) is not None
    assert list(store.staging_dir.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "A" * 64, "abc", "/etc/passwd", "a" * 63 + "/"])
def test_blob_names_must_be_sha256_hex(tmp_path: Path, name: str) -> None:
    store = BlobStore(tmp_path)
    store.prepare()
    with pytest.raises(ValueError):
        store.path(name)


def test_migrations_are_idempotent_and_versioned(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "r.sqlite3")
    assert registry.migrate() == len(MIGRATIONS)
    assert registry.migrate() == len(MIGRATIONS)
    assert registry.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert registry.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_registry_round_trips(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "r.sqlite3")
    registry.migrate()
    sha = "b" * 64
    registry.record_blob(
        sha256=sha, git_sha1="c" * 40, size_bytes=3, state=BlobState.CLEARED, format=None,
        reason=None,
    )  # fmt: skip
    row = FileRow("model", "acme/m", "d" * 40, "w.bin", sha, sha, True, 3)
    registry.record_file(row)
    assert registry.file("model", "acme/m", "d" * 40, "w.bin") == row
    assert registry.blob_by_git_sha1("c" * 40) == registry.blob(sha)
    registry.record_blob(
        sha256=sha, git_sha1=None, size_bytes=3, state=BlobState.BLOCKED, format="x",
        reason="because",
    )  # fmt: skip
    blob = registry.blob(sha)
    assert blob is not None and blob.state is BlobState.BLOCKED and blob.git_sha1 == "c" * 40
    registry.record_revision("model", "acme/m", "main", "d" * 40)
    known = registry.revision("model", "acme/m", "main")
    assert known is not None and known[0] == "d" * 40
