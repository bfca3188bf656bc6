"""The real huggingface_hub client downloads through Airlock and gets exactly what the Hub has."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub
from tests.http import raw_request

REPO = "acme/tiny-model"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def model(hub: FakeHub) -> dict[str, bytes]:
    files = {
        "config.json": CONFIG_JSON,
        "model.safetensors": safetensors_bytes(20_000),
        "README.md": b"---\nlicense: mit\n---\n# tiny\n",
        "sub/extra.txt": b"extra",
        "sub/deeper/notes.txt": b"notes",
    }
    hub.add_repo(REPO, files)
    return files


def file_requests(hub: FakeHub) -> list[str]:
    """Upstream requests for file metadata or bytes (not API listings)."""
    return [
        f"{r.origin} {r.method} {r.path}"
        for r in hub.requests
        if r.origin == "cdn" or "/resolve/" in r.path or "resolve-cache" in r.path
    ]


def test_download_by_branch_returns_upstream_bytes(
    hub: FakeHub, model: dict[str, bytes], client: HubClient
) -> None:
    for name in ("config.json", "model.safetensors", "sub/extra.txt"):
        result = client.run("download", repo_id=REPO, filename=name).ok()
        assert result["sha256"] == sha256(model[name])


def test_download_by_tag_commit_and_pr(
    hub: FakeHub, model: dict[str, bytes], client: HubClient
) -> None:
    first = hub.head_commit(REPO)
    hub.tag(REPO, "v1.0", first)
    second_config = b'{"model_type": "bert", "hidden_size": 16}'
    hub.commit(REPO, {"config.json": second_config})
    pr_config = b'{"model_type": "bert", "hidden_size": 32}'
    hub.open_pr(REPO, {"config.json": pr_config})

    by_tag = client.run("download", repo_id=REPO, filename="config.json", revision="v1.0").ok()
    assert by_tag["sha256"] == sha256(model["config.json"])
    by_commit = client.run("download", repo_id=REPO, filename="config.json", revision=first).ok()
    assert by_commit["sha256"] == sha256(model["config.json"])
    by_branch = client.run("download", repo_id=REPO, filename="config.json").ok()
    assert by_branch["sha256"] == sha256(second_config)
    by_pr = client.run("download", repo_id=REPO, filename="config.json", revision="refs/pr/1").ok()
    assert by_pr["sha256"] == sha256(pr_config)
    # The PR revision travelled as one percent-encoded segment, upstream as at Airlock.
    assert any("/resolve/refs%2Fpr%2F1/config.json" in r.path for r in hub.requests)


def test_snapshot_download_of_model_and_dataset(
    hub: FakeHub, model: dict[str, bytes], client: HubClient
) -> None:
    data = {"data/train.csv": b"a,b\n1,2\n", "README.md": b"# data\n", "big.parquet": b"P" * 5000}
    hub.add_repo("acme/tiny-data", data, repo_type="dataset")

    snap = client.run("snapshot", repo_id=REPO).ok()
    expected = {name: sha256(body) for name, body in model.items()}
    assert {k: v for k, v in snap["files"].items() if k != ".gitattributes"} == expected

    ds = client.run("snapshot", repo_id="acme/tiny-data", repo_type="dataset").ok()
    assert {k: v for k, v in ds["files"].items() if k != ".gitattributes"} == {
        name: sha256(body) for name, body in data.items()
    }
    assert any(r.path.startswith("/datasets/acme/tiny-data/resolve/") for r in hub.requests)


def test_api_calls_info_tree_paths_info_and_file_exists(
    hub: FakeHub, model: dict[str, bytes], client: HubClient
) -> None:
    info = client.run("model_info", repo_id=REPO).ok()
    assert info["sha"] == hub.head_commit(REPO)
    by_name = {s["rfilename"]: s for s in info["siblings"]}
    st = by_name["model.safetensors"]
    assert st["lfs_sha256"] == sha256(model["model.safetensors"])
    assert st["size"] == len(model["model.safetensors"])

    # page_size=3 forces several pages: the client follows Airlock's rewritten Link.
    tree = client.run("list_tree", repo_id=REPO, recursive=True).ok()
    assert set(model) <= set(tree["paths"])
    assert len(tree["paths"]) > 3
    assert any("cursor=" in r.query for r in hub.requests if "/tree/" in r.path)

    sub = client.run("list_tree", repo_id=REPO, path="sub").ok()
    assert sorted(sub["paths"]) == ["sub/deeper", "sub/extra.txt"]

    paths = client.run("paths_info", repo_id=REPO, paths=["config.json", "sub", "missing.bin"]).ok()
    assert {e["path"]: e["type"] for e in paths["entries"]} == {
        "config.json": "RepoFile",
        "sub": "RepoFolder",
    }

    assert client.run("file_exists", repo_id=REPO, filename="config.json").ok()["exists"]
    assert not client.run("file_exists", repo_id=REPO, filename="nope.json").ok()["exists"]


def test_hf_cli_download(hub: FakeHub, model: dict[str, bytes], client: HubClient) -> None:
    target = client.home / "out"
    proc = client.hf_cli(
        "download", REPO, "config.json", "model.safetensors", "--local-dir", str(target)
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("config.json", "model.safetensors"):
        assert (target / name).read_bytes() == model[name]


def test_warm_cache_makes_no_upstream_file_requests(
    hub: FakeHub, model: dict[str, bytes], airlock: RunningAirlock, tmp_path: Path
) -> None:
    first = HubClient(airlock.url, _home(tmp_path, "first"))
    first.run("snapshot", repo_id=REPO).ok()
    hub.clear_log()

    second = HubClient(airlock.url, _home(tmp_path, "second"))
    snap = second.run("snapshot", repo_id=REPO).ok()
    assert snap["files"]["model.safetensors"] == sha256(model["model.safetensors"])
    assert file_requests(hub) == []


def test_commit_pinned_cached_file_never_contacts_upstream(
    hub: FakeHub, model: dict[str, bytes], airlock: RunningAirlock, tmp_path: Path
) -> None:
    commit = hub.head_commit(REPO)
    HubClient(airlock.url, _home(tmp_path, "a")).run(
        "download", repo_id=REPO, filename="model.safetensors", revision=commit
    ).ok()
    hub.clear_log()
    HubClient(airlock.url, _home(tmp_path, "b")).run(
        "download", repo_id=REPO, filename="model.safetensors", revision=commit
    ).ok()
    assert hub.requests == []


def test_xet_repo_is_served_over_plain_http(
    hub: FakeHub, airlock: RunningAirlock, tmp_path: Path
) -> None:
    weights = safetensors_bytes(30_000)
    hub.add_repo(
        "acme/xet-model", {"config.json": CONFIG_JSON, "model.safetensors": weights}, xet=True
    )
    client = HubClient(airlock.url, _home(tmp_path, "xet"))

    snap = client.run("snapshot", repo_id="acme/xet-model").ok()
    assert snap["files"]["model.safetensors"] == sha256(weights)
    single = HubClient(airlock.url, _home(tmp_path, "xet2"))
    single.run("download", repo_id="acme/xet-model", filename="model.safetensors").ok()
    paths = single.run("paths_info", repo_id="acme/xet-model", paths=["model.safetensors"]).ok()
    assert paths["entries"][0]["xet_hash"] is None

    for method in ("HEAD", "GET"):
        resp = raw_request(method, airlock.url, "/acme/xet-model/resolve/main/model.safetensors")
        assert resp.status == 200
        assert not [h for h in resp.headers if h.startswith("x-xet")]
        assert "link" not in resp.headers
    tree = raw_request("GET", airlock.url, "/api/models/acme/xet-model/tree/main")
    assert b"xetHash" not in tree.body and b"lfs" in tree.body

    assert [r for r in hub.requests if r.origin == "cas"] == []
    assert [r for r in hub.requests if "xet-read-token" in r.path] == []
    # Airlock fetched the Xet-backed bytes from the bridge URL over plain HTTP.
    assert any(r.origin == "cdn" and "xet-bridge" in r.path for r in hub.requests)


def test_renamed_repo_and_resolve_cache_style(
    hub: FakeHub, airlock: RunningAirlock, tmp_path: Path
) -> None:
    hub.add_repo("acme/new-name", {"config.json": CONFIG_JSON})
    hub.rename("acme/old-name", "acme/new-name")
    hub.add_repo("acme/modern", {"config.json": CONFIG_JSON}, resolve_style="resolve-cache")
    client = HubClient(airlock.url, _home(tmp_path, "c"))

    renamed = client.run("download", repo_id="acme/old-name", filename="config.json").ok()
    assert renamed["sha256"] == sha256(CONFIG_JSON)
    assert "models--acme--old-name" in renamed["path"]
    modern = client.run("snapshot", repo_id="acme/modern").ok()
    assert modern["files"]["config.json"] == sha256(CONFIG_JSON)
    assert any("/api/resolve-cache/" in r.path for r in hub.requests)


def _home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / f"home-{name}"
    home.mkdir()
    return home


def test_every_request_leaves_an_audit_row(
    hub: FakeHub, model: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    client.run("download", repo_id=REPO, filename="model.safetensors").ok()
    rows = airlock.registry().audit_rows()
    head, get = (r for r in rows if r["path"] == "model.safetensors")
    assert (head["method"], head["status"], head["bytes_sent"]) == ("HEAD", 200, 0)
    assert (get["method"], get["status"]) == ("GET", 200)
    assert get["bytes_sent"] == len(model["model.safetensors"])
    for row in (head, get):
        assert row["repo_id"] == REPO and row["repo_type"] == "model"
        assert row["commit_sha"] == hub.head_commit(REPO)
        assert row["client_addr"] == "127.0.0.1"
        assert row["token_fp"] is None
        assert row["verdict"] in ("cleared", "streaming")
        assert len(row["request_id"]) == 32


def test_refs_list_branches_tags_and_pull_requests(
    hub: FakeHub, model: dict[str, bytes], client: HubClient
) -> None:
    main = hub.head_commit(REPO)
    hub.tag(REPO, "v1", main)
    pr = hub.open_pr(REPO, {"config.json": b"{}"})
    found = client.run("refs", repo_id=REPO).ok()
    assert found["branches"] == {"main": main}
    assert found["tags"] == {"v1": main}
    assert list(found["pull_requests"].values()) == [pr]


def test_empty_files_are_served(hub: FakeHub, client: HubClient) -> None:
    hub.add_repo("acme/empty", {"empty.txt": b"", "config.json": CONFIG_JSON})
    got = client.run("download", repo_id="acme/empty", filename="empty.txt").ok()
    assert got["size"] == 0
    snap = client.run("snapshot", repo_id="acme/empty").ok()
    assert snap["files"]["empty.txt"] == sha256(b"")


def test_a_moved_branch_is_seen_after_the_revision_ttl(
    hub: FakeHub, model: dict[str, bytes], make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    cached = make_airlock(revision_ttl_s=3600.0)
    fresh = make_airlock(revision_ttl_s=0.0)
    for airlock in (cached, fresh):
        before = HubClient(airlock.url, _home(tmp_path, f"before-{airlock.port}"))
        before.run("download", repo_id=REPO, filename="config.json").ok()
        before.run("download", repo_id=REPO, filename="sub/extra.txt").ok()
    new_config = b'{"model_type": "bert", "hidden_size": 64}'
    new_commit = hub.commit(REPO, {"config.json": new_config})
    hub.clear_log()

    old = HubClient(cached.url, _home(tmp_path, "after-cached")).run(
        "download", repo_id=REPO, filename="config.json"
    )
    assert old.ok()["sha256"] == sha256(model["config.json"])  # within the TTL: same commit
    after = HubClient(fresh.url, _home(tmp_path, "after-fresh"))
    new = after.run("download", repo_id=REPO, filename="config.json").ok()
    assert new["sha256"] == sha256(new_config)
    assert new_commit in new["path"]
    # An unchanged file of the new commit is the same blob: it is not fetched again.
    extra = after.run("download", repo_id=REPO, filename="sub/extra.txt").ok()
    assert new_commit in extra["path"]
    fetched = [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert fetched == [f"/{REPO}/resolve/{new_commit}/config.json"]
