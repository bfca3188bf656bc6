"""A data directory written before policies existed (registry schema 1: blob states, decisions
with plain-text reasons, no stored scan reports) keeps working after the upgrade: cleared files
are served without a new download, refused ones stay refused, and every decision is made again
under the current policy and scanner."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from cache.registry import MIGRATIONS
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.e2e.test_scanning import system_pickle
from tests.fakehub import FakeHub


def _schema_1_data_dir(hub: FakeHub, data_dir: Path, files: dict[str, str]) -> None:
    """What an Airlock of the previous release left: `files` maps a path of acme/legacy to
    "cleared" (in blobs/) or "blocked" (in quarantine/, with its old decision)."""
    for folder in ("blobs", "quarantine", "staging"):
        (data_dir / folder).mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data_dir / "registry.sqlite3")
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
    commit = hub.head_commit("acme/legacy")
    now = time.time()
    for path, state in files.items():
        info = hub.file_info("acme/legacy", path)
        folder = "blobs" if state == "cleared" else "quarantine"
        (data_dir / folder / info.sha256).write_bytes(hub.file_bytes("acme/legacy", path))
        db.execute(
            "INSERT INTO blobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (info.sha256, info.content_sha1, info.size, state, "pickle", None, now, now),
        )
        etag = info.sha256 if info.lfs else info.git_sha1
        db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "model",
                "acme/legacy",
                commit,
                path,
                info.sha256,
                etag,
                int(info.lfs),
                info.size,
                now,
            ),
        )
        verdict = "allow" if state == "cleared" else "block"
        reasons = [] if state == "cleared" else ["pickle-dangerous-call (critical): posix.system"]
        for _ in range(2):  # the old table kept every decision; the new one keeps one per file
            db.execute(
                "INSERT INTO decisions (sha256, repo_type, repo_id, commit_sha, path, verdict,"
                " reasons, scanner, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (info.sha256, "model", "acme/legacy", commit, path, verdict,
                 json.dumps(reasons), "airlock-engine", now),
            )  # fmt: skip
    db.commit()
    db.close()


def test_a_schema_1_data_dir_is_upgraded_in_place(
    hub: FakeHub, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    hub.add_repo(
        "acme/legacy",
        {"weights.pkl": b"\x80\x04K\x01.", "pytorch_model.bin": system_pickle(marker)},
    )
    data_dir = tmp_path / "old-data"
    _schema_1_data_dir(hub, data_dir, {"weights.pkl": "cleared", "pytorch_model.bin": "blocked"})
    airlock = make_airlock(data_dir=data_dir)
    client = HubClient(airlock.url, tmp_path / "home")
    hub.clear_log()

    result = client.run("download", repo_id="acme/legacy", filename="weights.pkl").ok()
    assert result["sha256"] == hub.file_sha256("acme/legacy", "weights.pkl")
    error = client.run("download", repo_id="acme/legacy", filename="pytorch_model.bin").error
    assert error is not None and error["type"] == "GatedRepoError"
    assert "posix.system" in error["message"] and "/ui/decisions/" in error["message"]
    assert not [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]

    rows = list(airlock.registry().db.query("SELECT * FROM decisions ORDER BY path"))
    assert [(r["path"], r["verdict"]) for r in rows] == [
        ("pytorch_model.bin", "block"),
        ("weights.pkl", "allow"),
    ]
    assert all(r["policy_version"] and r["scanner_version"] for r in rows)
    blobs = {r["sha256"]: r for r in airlock.registry().db.query("SELECT * FROM blobs")}
    assert all(b["report"] for b in blobs.values())  # scanned again, reports kept
    assert not marker.exists()
