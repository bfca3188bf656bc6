"""The real huggingface_hub client (in its own venv) against the fake hub, directly.

Skipped unless the client interpreter exists: AIRLOCK_CLIENT_PYTHON, default
/work/main/.venv-client/bin/python.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakehub import FakeHub, Fault

CLIENT_PYTHON = Path(os.environ.get("AIRLOCK_CLIENT_PYTHON", "/work/main/.venv-client/bin/python"))
pytestmark = pytest.mark.skipif(
    not CLIENT_PYTHON.exists(), reason=f"client python {CLIENT_PYTHON} not found"
)

PRIVATE = "hf_private_token"
GATED = "hf_gated_token"
WEIGHTS = hashlib.sha256(b"weights").digest() * 700  # 22400 bytes
FILES: dict[str, bytes] = {
    "config.json": b'{"model_type": "tiny"}\n',
    "README.md": b"# tiny\n",
    "model.safetensors": WEIGHTS,
    "sub/extra.txt": b"extra\n",
    "sub/deeper/leaf.txt": b"leaf\n",
    "tokenizer.json": b'{"version": "1.0"}\n',
}
DATA: dict[str, bytes] = {
    "README.md": b"# data\n",
    "data/train.csv": b"a,b\n1,2\n",
    "data/train.parquet": hashlib.sha256(b"parquet").digest() * 100,
}
FLAKY = hashlib.sha256(b"flaky").digest() * 1000

# Runs under the client's Python; checks results itself and prints one JSON line.
SCRIPT = r"""
import hashlib, json, os, sys
from pathlib import Path
from huggingface_hub import (HfApi, hf_hub_download, snapshot_download, file_exists,
                             get_paths_info)
from huggingface_hub.errors import GatedRepoError, RevisionNotFoundError
from huggingface_hub.hf_api import RepoFile, RepoFolder

spec = json.loads(sys.argv[1])
mode = spec["mode"]
api = HfApi()
out = {}

def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()

def check(path, want):
    got = sha(path)
    assert got == want, (path, got, want)

if mode == "main":
    repo, files = spec["repo"], spec["files"]
    check(hf_hub_download(repo, "config.json"), files["config.json"])
    check(hf_hub_download(repo, "model.safetensors", revision="v1.0"), files["model.safetensors"])
    check(hf_hub_download(repo, "config.json", revision=spec["main_sha"]), files["config.json"])
    check(hf_hub_download(repo, "config.json", revision="refs/pr/1"), spec["pr_config"])
    try:
        hf_hub_download(repo, "config.json", revision="nope")
        raise AssertionError("bad revision accepted")
    except RevisionNotFoundError:
        pass
    snap = Path(snapshot_download(repo))
    got = {str(p.relative_to(snap)): sha(p) for p in snap.rglob("*") if p.is_file()}
    assert got == files, got
    data = Path(snapshot_download(spec["dataset"], repo_type="dataset"))
    got = {str(p.relative_to(data)): sha(p) for p in data.rglob("*") if p.is_file()}
    assert got == spec["data_files"], got
    info = api.model_info(repo, files_metadata=True)
    assert info.sha == spec["main_sha"], info.sha
    sib = {s.rfilename: s for s in info.siblings}
    assert sib["model.safetensors"].lfs.sha256 == files["model.safetensors"]
    assert sib["model.safetensors"].size == spec["weights_size"]
    tree = list(api.list_repo_tree(repo, recursive=True))
    out["tree"] = sorted(e.path for e in tree)
    sub = list(api.list_repo_tree(repo, path_in_repo="sub", expand=True))
    out["sub"] = sorted((e.path, type(e).__name__) for e in sub)
    assert all(e.last_commit is not None for e in sub)
    infos = get_paths_info(repo, ["config.json", "model.safetensors", "sub", "nope"])
    out["paths_info"] = [(e.path, type(e).__name__) for e in infos]
    lfs = [e for e in infos if isinstance(e, RepoFile) and e.lfs]
    assert lfs[0].lfs.sha256 == files["model.safetensors"]
    assert file_exists(repo, "config.json") is True
    assert file_exists(repo, "nope.json") is False
    assert file_exists("acme/does-not-exist", "config.json") is False
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    out["refs"] = {
        "branches": [b.name for b in refs.branches],
        "tags": [t.name for t in refs.tags],
        "prs": [p.ref for p in refs.pull_requests],
    }
    out["commits"] = len(api.list_repo_commits(repo))
    check(hf_hub_download(spec["renamed_from"], "config.json"), files["config.json"])
    check(hf_hub_download(spec["cached"], "config.json"), files["config.json"])
    check(hf_hub_download(spec["cached"], "model.safetensors"), files["model.safetensors"])
    check(hf_hub_download(spec["private"], "config.json", token=spec["private_token"]),
          files["config.json"])
    try:
        hf_hub_download(spec["gated"], "config.json", token=False)
        raise AssertionError("gated repo served anonymously")
    except GatedRepoError:
        pass
    check(hf_hub_download(spec["gated"], "model.safetensors", token=spec["gated_token"]),
          files["model.safetensors"])
    check(hf_hub_download(spec["flaky"], "flaky.bin"), spec["flaky_sha"])
    try:
        hf_hub_download(spec["huge"], "huge.safetensors")
        raise AssertionError("50 GB file accepted over plain HTTP")
    except ValueError as exc:
        out["huge_error"] = str(exc)[:60]
elif mode == "xet":
    try:
        hf_hub_download(spec["repo"], "model.safetensors")
        out["xet_result"] = "downloaded"
    except Exception as exc:
        out["xet_result"] = type(exc).__name__
elif mode == "plain":
    check(hf_hub_download(spec["repo"], "config.json"), spec["want"])
elif mode == "xet-disabled":
    check(hf_hub_download(spec["repo"], "model.safetensors"), spec["weights_sha"])
    out["xet_result"] = "downloaded"
print(json.dumps(out))
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub(page_size=3) as fake:
        main = fake.add_repo("acme/tiny-model", FILES)
        fake.tag("acme/tiny-model", "v1.0", main)
        fake.open_pr("acme/tiny-model", {"config.json": b'{"pr": 1}\n'})
        fake.add_repo("acme/tiny-data", DATA, repo_type="dataset")
        fake.add_repo("acme/old-name", FILES)
        fake.rename("acme/old-name", "acme/renamed")
        fake.add_repo("acme/cached", FILES, resolve_style="resolve-cache")
        fake.add_repo("acme/private", FILES, private_token=PRIVATE)
        fake.add_repo("acme/gated", FILES, gated_tokens={GATED})
        fake.add_repo("acme/xet", FILES, xet=True)
        fake.add_repo("acme/flaky", {"flaky.bin": FLAKY})
        fake.add_huge_file("acme/huge", "huge.safetensors")
        yield fake


def run_client(
    hub: FakeHub,
    tmp_path: Path,
    spec: dict[str, Any],
    extra_env: dict[str, str] | None = None,
    *,
    telemetry: bool = False,
) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "10",
        "HF_HUB_DOWNLOAD_TIMEOUT": "10",
        **(extra_env or {}),
    }
    if not telemetry:
        env["HF_HUB_DISABLE_TELEMETRY"] = "1"  # also skips the agent-harnesses fetch
    proc = subprocess.run(
        [str(CLIENT_PYTHON), "-c", SCRIPT, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_real_client_end_to_end(hub: FakeHub, tmp_path: Path) -> None:
    hub.clear_log()
    hub.set_fault(Fault.CUT, repo_id="acme/flaky", path="flaky.bin", times=1)
    spec = {
        "mode": "main",
        "repo": "acme/tiny-model",
        "files": {path: _sha(data) for path, data in FILES.items()}
        | {".gitattributes": hub.file_sha256("acme/tiny-model", ".gitattributes")},
        "main_sha": hub.head_commit("acme/tiny-model"),
        "pr_config": _sha(b'{"pr": 1}\n'),
        "weights_size": len(WEIGHTS),
        "dataset": "acme/tiny-data",
        "data_files": {path: _sha(data) for path, data in DATA.items()}
        | {".gitattributes": hub.file_sha256("acme/tiny-data", ".gitattributes", "dataset")},
        "renamed_from": "acme/old-name",
        "cached": "acme/cached",
        "private": "acme/private",
        "private_token": PRIVATE,
        "gated": "acme/gated",
        "gated_token": GATED,
        "flaky": "acme/flaky",
        "flaky_sha": _sha(FLAKY),
        "huge": "acme/huge",
    }
    out = run_client(hub, tmp_path, spec)
    assert set(out["tree"]) == {*FILES, ".gitattributes", "sub", "sub/deeper"}
    assert out["sub"] == [["sub/deeper", "RepoFolder"], ["sub/extra.txt", "RepoFile"]]
    assert out["paths_info"] == [
        ["config.json", "RepoFile"],
        ["model.safetensors", "RepoFile"],
        ["sub", "RepoFolder"],
    ]
    assert out["refs"] == {"branches": ["main"], "tags": ["v1.0"], "prs": ["refs/pr/1"]}
    assert out["commits"] == 2
    assert "too large" in out["huge_error"]

    log = hub.requests
    cdn = [r for r in log if r.origin == "cdn"]
    assert cdn and all("authorization" not in r.headers for r in cdn)
    assert not [r for r in log if r.origin == "cas"]
    assert not [r for r in log if "xet-read-token" in r.path]
    tree_pages = [r for r in log if "/tree/" in r.path and "cursor=" in r.query]
    assert tree_pages, "the client never followed a Link: rel=next page"
    assert any(r.path.endswith("/resolve/refs%2Fpr%2F1/config.json") for r in log)
    assert any(r.path.startswith("/api/resolve-cache/models/acme/cached/") for r in log)
    assert any(r.path == "/acme/old-name/resolve/main/config.json" and r.status == 307 for r in log)
    flaky = [r for r in cdn if r.method == "GET" and r.status == 200 and _sha(FLAKY) in r.path]
    assert len(flaky) == 2  # cut once, then downloaded again
    assert not [r for r in cdn if "huge" in r.path or r.status >= 500]
    private = [r for r in log if r.path.startswith("/acme/private/")]
    assert private and all(r.headers.get("authorization") == f"Bearer {PRIVATE}" for r in private)


def test_real_client_follows_xet_advertisement(hub: FakeHub, tmp_path: Path) -> None:
    """Proof the Xet headers are faithful: hf_xet takes the bait and calls the CAS stub."""
    hub.clear_log()
    out = run_client(hub, tmp_path, {"mode": "xet", "repo": "acme/xet"})
    assert out["xet_result"] != "downloaded"
    log = hub.requests
    assert any("/xet-read-token/" in r.path for r in log)
    assert any(r.origin == "cas" for r in log)
    assert not [r for r in log if r.origin == "cdn"]


def test_real_client_without_xet_uses_bridge_url(hub: FakeHub, tmp_path: Path) -> None:
    hub.clear_log()
    spec = {"mode": "xet-disabled", "repo": "acme/xet", "weights_sha": _sha(WEIGHTS)}
    out = run_client(hub, tmp_path, spec, {"HF_HUB_DISABLE_XET": "1"})
    assert out["xet_result"] == "downloaded"
    log = hub.requests
    assert not [r for r in log if r.origin == "cas" or "/xet-read-token/" in r.path]
    assert any(r.origin == "cdn" and r.path.startswith("/xet-bridge-us/") for r in log)
    # the client still parses the Xet headers: it GETs /resolve again and follows the 302
    gets = [r for r in log if r.method == "GET"]
    assert [(r.origin, r.status) for r in gets] == [("hub", 302), ("cdn", 200)]
    assert gets[0].path == "/acme/xet/resolve/main/model.safetensors"


def test_real_client_agent_harnesses(hub: FakeHub, tmp_path: Path) -> None:
    """With telemetry on, each fresh HF_HOME asks /api/agent-harnesses once, then caches it."""
    hub.clear_log()
    spec = {"mode": "plain", "repo": "acme/tiny-model", "want": _sha(FILES["config.json"])}
    for _ in range(2):
        run_client(hub, tmp_path, spec, telemetry=True)
    harness = [r for r in hub.requests if r.path == "/api/agent-harnesses"]
    assert [(r.status, "authorization" in r.headers) for r in harness] == [(200, False)]
    assert (tmp_path / "hf-home" / ".agent_harnesses.json").exists()
