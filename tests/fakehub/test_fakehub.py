"""Self-tests of the fake hub against the contract in docs/hub-protocol.md."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakehub import FakeHub, Fault
from tests.fakehub.content import git_blob_sha1, lfs_pointer
from tests.http import RawResponse as Resp
from tests.http import call

CONFIG = b'{"model_type": "tiny", "hidden_size": 8}\n'
WEIGHTS = bytes(range(256)) * 80  # 20480 bytes, LFS by name and size
BIG_TEXT = b"0123456789abcdef" * 256  # 4096 bytes: LFS by size (> 1024)
EXTRA = b"extra\n"
PRIVATE = "hf_private_secret"
GATED = "hf_gated_ok"
REPO = "acme/tiny-model"
FILES: dict[str, bytes] = {
    "config.json": CONFIG,
    "model.safetensors": WEIGHTS,
    "notes/big.txt": BIG_TEXT,
    "sub/extra.txt": EXTRA,
    "sub/deeper/leaf.md": b"# leaf\n",
    "empty.txt": b"",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    disk = tmp_path_factory.mktemp("content") / "weights.bin"
    disk.write_bytes(WEIGHTS)
    with FakeHub(page_size=3) as fake:
        fake.add_repo(REPO, FILES)
        fake.add_repo("acme/on-disk", {"model.bin": disk, "small.txt": b"hi\n"})
        fake.add_repo(
            "acme/tiny-data",
            {"data/train.csv": b"a,b\n1,2\n", "README.md": b"# data\n"},
            repo_type="dataset",
        )
        fake.add_repo("acme/cached", FILES, resolve_style="resolve-cache")
        fake.add_repo(
            "acme/cached-data",
            {"x.txt": b"x\n"},
            repo_type="dataset",
            resolve_style="resolve-cache",
        )
        fake.add_repo("acme/private", FILES, private_token=PRIVATE, resolve_style="resolve-cache")
        fake.add_repo("acme/gated", FILES, gated_tokens={GATED})
        fake.add_repo("acme/xet", FILES, xet=True)
        fake.add_repo("acme/old-name", FILES)
        fake.rename("acme/old-name", "acme/renamed")
        fake.add_huge_file("acme/huge", "huge.safetensors", size=60_000_000_000)
        fake.open_pr(REPO, {"config.json": b'{"pr": 1}\n'})
        yield fake


@pytest.fixture(autouse=True)
def _clean(hub: FakeHub) -> None:
    hub.clear_faults()
    hub.clear_log()


def resolve(hub: FakeHub, path: str, *, repo: str = REPO, rev: str = "main") -> str:
    return f"{hub.url}/{repo}/resolve/{rev}/{path}"


def cdn_location(hub: FakeHub, path: str, repo: str = REPO) -> str:
    head = call(resolve(hub, path, repo=repo), "HEAD")
    assert head.status == 302, head
    return head.headers["location"]


def api(hub: FakeHub, tail: str, repo: str = REPO, kind: str = "models") -> Resp:
    return call(f"{hub.url}/api/{kind}/{repo}{tail}")


# --- content identity ----------------------------------------------------------------------
def test_git_identity_helpers() -> None:
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    sha = hashlib.sha256(b"x").hexdigest()
    assert lfs_pointer(sha, 1) == (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 1\n".encode()
    )


def test_tree_identity(hub: FakeHub) -> None:
    entries = {e["path"]: e for e in _all_pages(hub, "/tree/main?recursive=true&expand=false")}
    small = entries["config.json"]
    assert small == {
        "type": "file",
        "oid": git_blob_sha1(CONFIG),
        "size": len(CONFIG),
        "path": "config.json",
    }
    lfs = entries["model.safetensors"]
    sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    pointer = lfs_pointer(sha256, len(WEIGHTS))
    assert lfs["oid"] == git_blob_sha1(pointer) == hub.file_git_sha1(REPO, "model.safetensors")
    assert lfs["size"] == len(WEIGHTS)
    assert lfs["lfs"] == {"oid": sha256, "size": len(WEIGHTS), "pointerSize": len(pointer)}
    assert "lfs" in entries["notes/big.txt"]  # LFS by size
    assert entries[".gitattributes"]["type"] == "file" and "lfs" not in entries[".gitattributes"]
    assert entries["sub"]["type"] == "directory" and entries["sub"]["size"] == 0
    assert len(entries["sub"]["oid"]) == 40
    assert hub.file_sha256(REPO, "model.safetensors") == sha256


def test_path_content_streams_from_disk(hub: FakeHub) -> None:
    assert hub.file_sha256("acme/on-disk", "model.bin") == hashlib.sha256(WEIGHTS).hexdigest()
    body = call(cdn_location(hub, "model.bin", repo="acme/on-disk")).body
    assert body == WEIGHTS
    part = call(cdn_location(hub, "model.bin", repo="acme/on-disk"), headers={"Range": "bytes=5-9"})
    assert part.status == 206 and part.body == WEIGHTS[5:10]


def test_lfs_paths_forces_lfs() -> None:
    fake = FakeHub()
    fake.add_repo("a/b", {"tiny.txt": b"t"}, lfs_paths={"tiny.txt"})
    assert fake.file_info("a/b", "tiny.txt").lfs
    assert fake.file_info("a/b", ".gitattributes").lfs is False


# --- resolve -------------------------------------------------------------------------------
def test_direct_small_file(hub: FakeHub) -> None:
    head = call(resolve(hub, "config.json"), "HEAD")
    get = call(resolve(hub, "config.json"))
    sha = hub.head_commit(REPO)
    for resp in (head, get):
        assert resp.status == 200
        assert resp.headers["x-repo-commit"] == sha
        assert resp.headers["etag"] == f'"{git_blob_sha1(CONFIG)}"'
        assert resp.headers["content-length"] == str(len(CONFIG))
        assert resp.headers["accept-ranges"] == "bytes"
        assert resp.headers["x-request-id"]
        assert "config.json" in resp.headers["content-disposition"]
    assert head.body == b"" and get.body == CONFIG


def test_range_on_resolve(hub: FakeHub) -> None:
    url = resolve(hub, "config.json")
    part = call(url, headers={"Range": "bytes=2-5"})
    assert part.status == 206 and part.body == CONFIG[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(CONFIG)}"
    tail = call(url, headers={"Range": "bytes=-4"})
    assert tail.status == 206 and tail.body == CONFIG[-4:]
    open_end = call(url, headers={"Range": "bytes=10-"})
    assert open_end.body == CONFIG[10:]
    bad = call(url, headers={"Range": f"bytes={len(CONFIG)}-"})
    assert bad.status == 416 and bad.headers["content-range"] == f"bytes */{len(CONFIG)}"


def test_resolve_cache_style(hub: FakeHub) -> None:
    sha = hub.head_commit("acme/cached")
    head = call(resolve(hub, "sub/extra.txt", repo="acme/cached"), "HEAD")
    assert head.status == 307
    oid = git_blob_sha1(EXTRA)
    expected = (
        f"/api/resolve-cache/models/acme/cached/{sha}/sub/extra.txt"
        f"?%2Facme%2Fcached%2Fresolve%2Fmain%2Fsub%2Fextra.txt=&etag=%22{oid}%22"
    )
    assert head.headers["location"] == expected
    for method in ("HEAD", "GET"):
        final = call(hub.url + expected, method)
        assert final.status == 200
        assert final.headers["x-repo-commit"] == sha
        assert final.headers["etag"] == f'"{oid}"'
        assert final.headers["content-length"] == str(len(EXTRA))
    assert call(hub.url + expected).body == EXTRA
    # LFS files still 302 to the CDN; 0-byte files and private repos answer directly
    assert call(resolve(hub, "model.safetensors", repo="acme/cached"), "HEAD").status == 302
    assert call(resolve(hub, "empty.txt", repo="acme/cached"), "HEAD").status == 200
    auth = {"Authorization": f"Bearer {PRIVATE}"}
    private = call(resolve(hub, "config.json", repo="acme/private"), "HEAD", headers=auth)
    assert private.status == 200
    data = call(f"{hub.url}/datasets/acme/cached-data/resolve/main/x.txt", "HEAD")
    assert data.status == 307
    assert data.headers["location"].startswith("/api/resolve-cache/datasets/acme/cached-data/")
    assert "%2Fdatasets%2Facme%2Fcached-data%2Fresolve%2Fmain%2Fx.txt=" in data.headers["location"]


def test_lfs_redirect_headers(hub: FakeHub) -> None:
    sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    for method in ("HEAD", "GET"):
        resp = call(resolve(hub, "model.safetensors"), method)
        assert resp.status == 302
        location = resp.headers["location"]
        assert location.startswith(f"{hub.cdn_url}/lfs/{sha256}?")
        query = dict(parse_qsl(urlsplit(location).query))
        assert query["X-Amz-Expires"] == "3600" and len(query["X-Amz-Signature"]) == 64
        assert "model.safetensors" in query["response-content-disposition"]
        assert resp.headers["x-repo-commit"] == hub.head_commit(REPO)
        assert resp.headers["x-linked-etag"] == f'"{sha256}"'
        assert resp.headers["x-linked-size"] == str(len(WEIGHTS))
        assert resp.headers["etag"] == f'"{hub.file_git_sha1(REPO, "model.safetensors")}"'
        assert resp.headers["accept-ranges"] == "bytes"
        assert resp.headers["x-request-id"]
        assert "X-Linked-Size" in resp.headers["access-control-expose-headers"]
        assert "x-xet-hash" not in resp.headers and "link" not in resp.headers


def test_cdn_serves_and_rejects(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    ok = call(location)
    assert ok.status == 200 and ok.body == WEIGHTS
    assert ok.headers["content-length"] == str(len(WEIGHTS))
    assert call(location, "HEAD").headers["content-length"] == str(len(WEIGHTS))
    leaked = call(location, headers={"Authorization": "Bearer hf_user"})
    assert leaked.status == 400 and b"auth mechanism" in leaked.body
    unsigned = location.split("?")[0]
    assert call(unsigned).status == 403
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert call(tampered).status == 403
    other = location.replace("/lfs/", "/lfs/0")  # signature bound to the path
    assert call(other).status == 403
    part = call(location, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body == WEIGHTS[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(WEIGHTS)}"
    bad = call(location, headers={"Range": f"bytes={len(WEIGHTS)}-"})
    assert bad.status == 416 and bad.headers["content-range"] == f"bytes */{len(WEIGHTS)}"
    cdn_log = [r for r in hub.requests if r.origin == "cdn"]
    assert [r.status for r in cdn_log] == [200, 200, 400, 403, 403, 403, 206, 416]


def test_xet_repo(hub: FakeHub) -> None:
    sha = hub.head_commit("acme/xet")
    info = hub.file_info("acme/xet", "model.safetensors")
    assert info.xet_hash is not None and len(info.xet_hash) == 64
    head = call(resolve(hub, "model.safetensors", repo="acme/xet"), "HEAD")
    assert head.status == 302
    assert head.headers["x-xet-hash"] == info.xet_hash
    link = head.headers["link"]
    assert f'<{hub.url}/api/models/acme/xet/xet-read-token/{sha}>; rel="xet-auth"' in link
    assert f'<{hub.cas_url}/reconstruction/{info.xet_hash}>; rel="xet-reconstruction-info"' in link
    location = head.headers["location"]
    assert "/xet-bridge-us/" in location and location.split("?")[0].endswith(info.xet_hash)
    assert call(location).body == WEIGHTS
    small = call(resolve(hub, "config.json", repo="acme/xet"), "HEAD")
    assert "x-xet-hash" not in small.headers
    tree = {e["path"]: e for e in _all_pages(hub, "/tree/main?recursive=true", repo="acme/xet")}
    assert tree["model.safetensors"]["xetHash"] == info.xet_hash
    assert "xetHash" not in tree["config.json"]
    token = api(hub, f"/xet-read-token/{sha}", repo="acme/xet")
    assert token.status == 200 and token.headers["x-xet-cas-url"] == hub.cas_url
    assert token.headers["x-xet-access-token"] and int(token.headers["x-xet-token-expiration"])
    cas = call(f"{hub.cas_url}/v1/reconstructions/{info.xet_hash}")
    assert cas.status == 404
    assert [r.path for r in hub.requests if r.origin == "cas"] == [
        f"/v1/reconstructions/{info.xet_hash}"
    ]


def test_huge_file(hub: FakeHub) -> None:
    head = call(resolve(hub, "huge.safetensors", repo="acme/huge"), "HEAD")
    assert head.status == 302 and head.headers["x-linked-size"] == "60000000000"
    assert call(head.headers["location"], "HEAD").headers["content-length"] == "60000000000"
    assert call(head.headers["location"]).status == 500


# --- revisions -----------------------------------------------------------------------------
def test_revisions_and_pr_routing(hub: FakeHub) -> None:
    main = hub.head_commit(REPO)
    pr = call(resolve(hub, "config.json", rev="refs%2Fpr%2F1"))
    assert pr.status == 200 and pr.body == b'{"pr": 1}\n'
    pr_sha = pr.headers["x-repo-commit"]
    assert pr_sha != main
    by_sha = call(resolve(hub, "config.json", rev=main))
    assert by_sha.body == CONFIG and by_sha.headers["x-repo-commit"] == main
    info = api(hub, "/revision/refs%2Fpr%2F1").json()
    assert isinstance(info, dict) and info["sha"] == pr_sha
    bad = call(resolve(hub, "config.json", rev="nope"), "HEAD")
    assert bad.status == 404 and bad.headers["x-error-code"] == "RevisionNotFound"
    assert bad.headers["x-error-message"] == "Invalid rev id: nope" and bad.body == b""
    bad_api = api(hub, "/revision/nope")
    assert bad_api.status == 404 and bad_api.headers["x-error-code"] == "RevisionNotFound"
    assert bad_api.json() == {"error": "Invalid rev id: nope"}
    assert hub.requests[0].path == f"/{REPO}/resolve/refs%2Fpr%2F1/config.json"


def test_refs_and_commits(hub: FakeHub) -> None:
    fake_sha = hub.head_commit(REPO)
    refs = api(hub, "/refs").json()
    assert isinstance(refs, dict)
    assert refs["branches"] == [
        {"name": "main", "ref": "refs/heads/main", "targetCommit": fake_sha}
    ]
    assert refs["tags"] == [] and refs["converts"] == [] and "pullRequests" not in refs
    with_prs = api(hub, "/refs?include_prs=1").json()
    assert isinstance(with_prs, dict)
    assert with_prs["pullRequests"][0]["ref"] == "refs/pr/1"
    commits = _all_pages(hub, "/commits/main")
    assert commits[0]["id"] == fake_sha and len(commits) == 2
    assert set(commits[0]) == {"id", "title", "message", "authors", "date"}


def test_commit_tag_move_branch() -> None:
    with FakeHub() as fake:
        first = fake.add_repo("acme/moving", {"a.txt": b"one\n"})
        fake.tag("acme/moving", "v1.0", first)
        second = fake.commit("acme/moving", {"a.txt": b"two\n"}, delete=())
        url = f"{fake.url}/acme/moving/resolve/main/a.txt"
        assert call(url).headers["x-repo-commit"] == second
        assert call(url).body == b"two\n"
        tagged = call(f"{fake.url}/acme/moving/resolve/v1.0/a.txt")
        assert tagged.body == b"one\n" and tagged.headers["x-repo-commit"] == first
        fake.move_branch("acme/moving", "main", first)
        assert call(url).body == b"one\n"
        third = fake.commit("acme/moving", {"b.txt": b"b\n"}, delete=("a.txt",))
        assert call(url).status == 404
        assert call(url, "HEAD").headers["x-repo-commit"] == third
        assert fake.list_files("acme/moving") == [".gitattributes", "b.txt"]
        refs = call(f"{fake.url}/api/models/acme/moving/refs").json()
        assert isinstance(refs, dict) and refs["tags"][0]["targetCommit"] == first


# --- API JSON ------------------------------------------------------------------------------
def test_repo_info(hub: FakeHub) -> None:
    info = api(hub, "").json()
    assert isinstance(info, dict)
    assert info["id"] == REPO and info["sha"] == hub.head_commit(REPO)
    assert info["private"] is False and info["gated"] is False and info["lastModified"]
    assert {"rfilename": "config.json"} in info["siblings"]
    blobs = api(hub, "?blobs=true").json()
    assert isinstance(blobs, dict)
    siblings = {s["rfilename"]: s for s in blobs["siblings"]}
    weights = siblings["model.safetensors"]
    assert weights["blobId"] == hub.file_git_sha1(REPO, "model.safetensors")
    assert weights["size"] == len(WEIGHTS)
    assert weights["lfs"]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights["lfs"]["pointerSize"] == len(
        hub.file_info(REPO, "model.safetensors").pointer or b""
    )
    assert siblings["config.json"]["blobId"] == git_blob_sha1(CONFIG)
    assert "lfs" not in siblings["config.json"]
    data = api(hub, "", repo="acme/tiny-data", kind="datasets").json()
    assert isinstance(data, dict) and data["id"] == "acme/tiny-data"
    assert api(hub, "", repo="acme/tiny-data").status == 401  # not a model


def _all_pages(
    hub: FakeHub, tail: str, repo: str = REPO, kind: str = "models"
) -> list[dict[str, Any]]:
    url: str | None = f"{hub.url}/api/{kind}/{repo}{tail}"
    out: list[dict[str, Any]] = []
    while url is not None:
        resp = call(url)
        assert resp.status == 200, resp
        page = resp.json()
        assert isinstance(page, list)
        out.extend(page)
        link = resp.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    return out


def test_tree_pagination(hub: FakeHub) -> None:
    first = api(hub, "/tree/main?recursive=true&expand=false")
    page = first.json()
    assert isinstance(page, list) and len(page) == 3
    link = first.headers["link"]
    assert link.startswith(
        f"<{hub.url}/api/models/{REPO}/tree/main?recursive=true&expand=false&cursor="
    )
    assert link.endswith('>; rel="next"')
    everything = _all_pages(hub, "/tree/main?recursive=true&expand=false")
    paths = [e["path"] for e in everything]
    assert len(paths) == len(set(paths))
    assert set(paths) == {*FILES, ".gitattributes", "sub", "sub/deeper", "notes"}
    limited = api(hub, "/tree/main?recursive=true&limit=100").json()
    assert isinstance(limited, list) and len(limited) == len(paths)
    assert api(hub, "/tree/main?cursor=garbage").status == 400


def test_tree_listing_shapes(hub: FakeHub) -> None:
    top = {e["path"] for e in _all_pages(hub, "/tree/main?recursive=false&expand=false")}
    assert top == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "empty.txt",
        "sub",
        "notes",
    }
    sub = _all_pages(hub, "/tree/main/sub?recursive=false&expand=true")
    assert {e["path"] for e in sub} == {"sub/extra.txt", "sub/deeper"}
    for entry in sub:
        assert set(entry["lastCommit"]) == {"id", "title", "date"}
    files = [e for e in sub if e["type"] == "file"]
    assert files[0]["securityFileStatus"]["status"] == "safe"
    assert set(files[0]["securityFileStatus"]) >= {"avScan", "pickleImportScan"}
    missing = api(hub, "/tree/main/nope")
    assert missing.status == 404 and missing.headers["x-error-code"] == "EntryNotFound"
    bad_rev = api(hub, "/tree/nope")
    assert bad_rev.status == 404 and bad_rev.headers["x-error-code"] == "RevisionNotFound"
    data = _all_pages(hub, "/tree/main/data", repo="acme/tiny-data", kind="datasets")
    assert [e["path"] for e in data] == ["data/train.csv"]


def test_paths_info(hub: FakeHub) -> None:
    body = b"paths=config.json&paths=model.safetensors&paths=sub&paths=nope&expand=true"
    resp = call(
        f"{hub.url}/api/models/{REPO}/paths-info/main",
        "POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=body,
    )
    assert resp.status == 200
    entries = resp.json()
    assert isinstance(entries, list)
    assert [e["path"] for e in entries] == ["config.json", "model.safetensors", "sub"]
    assert entries[1]["lfs"]["oid"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert entries[2]["type"] == "directory" and "lastCommit" in entries[0]
    assert hub.requests[-1].body == body
    xet = call(
        f"{hub.url}/api/models/acme/xet/paths-info/main",
        "POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"paths=model.safetensors",
    ).json()
    assert isinstance(xet, list) and len(xet[0]["xetHash"]) == 64


# --- errors --------------------------------------------------------------------------------
def test_unknown_and_private_repos(hub: FakeHub) -> None:
    for url in (f"{hub.url}/api/models/acme/nope", resolve(hub, "config.json", repo="acme/nope")):
        anon = call(url)
        assert anon.status == 401 and anon.headers["x-error-code"] == "RepoNotFound"
        assert anon.headers["x-error-message"] == "Repository not found"
        assert anon.headers["www-authenticate"].startswith('Bearer realm="Authentication required"')
        assert anon.json() == {"error": "Repository not found"} and anon.headers["x-request-id"]
    private_url = resolve(hub, "config.json", repo="acme/private")
    assert call(private_url, "HEAD").status == 401
    wrong = call(private_url, "HEAD", headers={"Authorization": "Bearer hf_wrong"})
    assert wrong.status == 404 and wrong.headers["x-error-code"] == "RepoNotFound"
    lower = call(private_url, "HEAD", headers={"Authorization": f"bearer {PRIVATE}"})
    assert lower.status == 404
    right = call(private_url, headers={"Authorization": f"Bearer {PRIVATE}"})
    assert right.status == 200 and right.body == CONFIG
    info = call(
        f"{hub.url}/api/models/acme/private", headers={"Authorization": f"Bearer {PRIVATE}"}
    )
    assert info.status == 200 and info.json()["private"] is True
    assert call(f"{hub.url}/api/models/acme/private/tree/main").status == 401


def test_gated_repo(hub: FakeHub) -> None:
    info = api(hub, "", repo="acme/gated").json()
    assert isinstance(info, dict) and info["gated"] == "auto"
    assert api(hub, "/tree/main", repo="acme/gated").status == 200
    url = resolve(hub, "config.json", repo="acme/gated")
    anon = call(url, "HEAD")
    assert anon.status == 401 and anon.headers["x-error-code"] == "GatedRepo"
    assert "Access to model acme/gated is restricted" in anon.headers["x-error-message"]
    denied = call(url, headers={"Authorization": "Bearer hf_other"})
    assert denied.status == 403 and denied.headers["x-error-code"] == "GatedRepo"
    assert "acme/gated" in denied.json()["error"]
    ok = call(url, headers={"Authorization": f"Bearer {GATED}"})
    assert ok.status == 200 and ok.body == CONFIG


def test_missing_file(hub: FakeHub) -> None:
    for method in ("HEAD", "GET"):
        resp = call(resolve(hub, "nope.json"), method)
        assert resp.status == 404 and resp.headers["x-error-code"] == "EntryNotFound"
        assert resp.headers["x-error-message"] == "Entry not found"
        assert resp.headers["x-repo-commit"] == hub.head_commit(REPO)
    assert call(resolve(hub, "nope.json")).json() == {"error": "Entry not found"}


def test_renamed_repo(hub: FakeHub) -> None:
    res = call(resolve(hub, "config.json", repo="acme/old-name"), "HEAD")
    assert res.status == 307 and res.headers["location"] == "/acme/renamed/resolve/main/config.json"
    tree = call(f"{hub.url}/api/models/acme/old-name/tree/main?recursive=true")
    assert tree.status == 307
    assert tree.headers["location"] == "/api/models/acme/renamed/tree/main?recursive=true"
    assert call(hub.url + res.headers["location"]).body == CONFIG


def test_misc_endpoints(hub: FakeHub) -> None:
    harness = call(f"{hub.url}/api/agent-harnesses")
    assert harness.status == 200 and harness.json() == {"standardEnvVars": [], "harnesses": {}}
    assert call(f"{hub.url}/api/whoami-v2").status == 401
    me = call(f"{hub.url}/api/whoami-v2", headers={"Authorization": "Bearer x"})
    assert me.status == 200 and me.json()["name"] == "user"


# --- faults --------------------------------------------------------------------------------
def test_fault_cut(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.CUT, path="model.safetensors", times=1)
    cut = call(location)
    assert cut.incomplete and len(cut.body) == len(WEIGHTS) // 2
    assert cut.body == WEIGHTS[: len(WEIGHTS) // 2]
    assert call(location).body == WEIGHTS  # used up


def test_fault_stall(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.STALL, path="model.safetensors", stall_s=0.4)
    started = time.monotonic()
    resp = call(location)
    assert time.monotonic() - started >= 0.4
    assert resp.body == WEIGHTS
    hub.set_fault(Fault.STALL, path="model.safetensors", stall_s=5.0)
    timed_out = False
    try:
        call(location, timeout=0.5)
    except TimeoutError:
        timed_out = True
    assert timed_out


def test_fault_wrong_bytes_and_length(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.WRONG_BYTES, path="model.safetensors")
    wrong = call(location)
    assert wrong.status == 200 and len(wrong.body) == len(WEIGHTS) and wrong.body != WEIGHTS
    hub.set_fault(Fault.WRONG_LENGTH, path="model.safetensors")
    short = call(location)
    assert short.headers["content-length"] == str(len(WEIGHTS) - 1)
    assert short.body == WEIGHTS[:-1] and not short.incomplete
    hub.set_fault(Fault.WRONG_LENGTH, path="model.safetensors", length_delta=1)
    longer = call(location)
    assert len(longer.body) == len(WEIGHTS) + 1 and longer.body.startswith(WEIGHTS)


def test_fault_status(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.SERVER_ERROR, path="model.safetensors", times=2)
    assert call(location).status == 500
    assert call(location).status == 500
    assert call(location).status == 200
    hub.set_fault(Fault.SERVER_ERROR, path="model.safetensors", status=503, retry_after=2)
    unavailable = call(location)
    assert unavailable.status == 503 and unavailable.headers["retry-after"] == "2"
    assert "error" in unavailable.json()
    hub.set_fault(Fault.RATE_LIMIT, path="model.safetensors")
    limited = call(location)
    assert limited.status == 429 and limited.headers["retry-after"] == "1"
    # a small file's fault lands on the /resolve GET, not on its HEAD
    hub.set_fault(Fault.SERVER_ERROR, path="config.json")
    assert call(resolve(hub, "config.json"), "HEAD").status == 200
    assert call(resolve(hub, "config.json")).status == 500
    # other files are unaffected by path-scoped faults, forever-faults stay
    hub.set_fault(Fault.SERVER_ERROR, path="sub/extra.txt", times=None)
    assert call(resolve(hub, "config.json")).status == 200
    for _ in range(3):
        assert call(resolve(hub, "sub/extra.txt")).status == 500
    assert len(hub.faults) == 1
    hub.clear_faults()
    assert call(resolve(hub, "sub/extra.txt")).body == EXTRA


def test_fault_endpoints(hub: FakeHub) -> None:
    hub.set_fault(Fault.SERVER_ERROR, endpoint="api", status=502)
    assert api(hub, "/tree/main").status == 502
    assert api(hub, "/tree/main").status == 200
    hub.set_fault(Fault.SERVER_ERROR, endpoint="resolve", status=503, method="HEAD", retry_after=1)
    head = call(resolve(hub, "model.safetensors"), "HEAD")
    assert head.status == 503 and head.headers["retry-after"] == "1"
    assert call(resolve(hub, "model.safetensors"), "HEAD").status == 302
    hub.set_fault(Fault.RATE_LIMIT, endpoint="api", path="/paths-info/")
    assert api(hub, "/refs").status == 200
    info = call(f"{hub.url}/api/models/{REPO}/paths-info/main", "POST", body=b"paths=a")
    assert info.status == 429


def test_fault_slow_head(hub: FakeHub) -> None:
    hub.set_fault(Fault.SLOW_HEAD, path="config.json", delay_s=0.4)
    started = time.monotonic()
    assert call(resolve(hub, "config.json")).status == 200  # GET unaffected
    assert time.monotonic() - started < 0.3
    started = time.monotonic()
    assert call(resolve(hub, "config.json"), "HEAD").status == 200
    assert time.monotonic() - started >= 0.4


def test_fault_gzip(hub: FakeHub) -> None:
    url = resolve(hub, "config.json")
    hub.set_fault(Fault.GZIP, path="config.json", times=None)
    identity = call(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in identity.headers and identity.body == CONFIG
    zipped = call(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-length" not in zipped.headers
    assert zipped.headers["transfer-encoding"] == "chunked"
    assert gzip.decompress(zipped.body) == CONFIG


def test_fault_throttle(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.THROTTLE, path="model.safetensors", rate_bytes_s=50_000)
    started = time.monotonic()
    assert call(location).body == WEIGHTS
    assert time.monotonic() - started >= 0.35  # 20480 bytes at 50 kB/s


def test_fault_scoped_by_repo(hub: FakeHub) -> None:
    hub.set_fault(Fault.SERVER_ERROR, path="config.json", repo_id="acme/gated")
    assert call(resolve(hub, "config.json")).status == 200
    ok = call(
        resolve(hub, "config.json", repo="acme/gated"), headers={"Authorization": f"Bearer {GATED}"}
    )
    assert ok.status == 500


# --- request log ---------------------------------------------------------------------------
def test_request_log(hub: FakeHub, tmp_path: Path) -> None:
    location = cdn_location(hub, "model.safetensors")
    call(location)
    call(f"{hub.url}/api/models/{REPO}/tree/main?recursive=true&expand=false")
    records = hub.requests
    assert [(r.origin, r.method, r.status) for r in records] == [
        ("hub", "HEAD", 302),
        ("cdn", "GET", 200),
        ("hub", "GET", 200),
    ]
    assert records[2].query == "recursive=true&expand=false"
    assert records[2].path == f"/api/models/{REPO}/tree/main"
    assert "authorization" not in records[1].headers and "host" in records[1].headers
    records.clear()  # a snapshot: the hub's log is untouched
    assert len(hub.requests) == 3
    out = tmp_path / "log.jsonl"
    hub.write_log(out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["origin"] for row in rows] == ["hub", "cdn", "hub"]
    hub.clear_log()
    assert hub.requests == []


def test_log_records_cut_status(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.CUT, path="model.safetensors")
    call(location)
    assert hub.requests[-1].status == 200


# --- standalone ----------------------------------------------------------------------------
def test_standalone_demo() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakehub", "--demo", "--page-size", "2"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert {"hub", "cdn", "cas", "repos"} <= set(line)
        resp = call(f"{line['hub']}/acme/tiny-model/resolve/main/config.json", "HEAD")
        assert resp.status == 200
        assert call(f"{line['hub']}/api/datasets/acme/tiny-data").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_client_abort_keeps_logged_status(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    hub.set_fault(Fault.THROTTLE, path="model.safetensors", rate_bytes_s=20_000)
    parts = urlsplit(location)
    with socket.create_connection((parts.hostname or "", parts.port or 0)) as sock:
        sock.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 3
    while hub.requests[-1].status == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert hub.requests[-1].status == 200


def test_concurrent_downloads(hub: FakeHub) -> None:
    location = cdn_location(hub, "model.safetensors")
    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(lambda _: call(location).body, range(16)))
    assert all(body == WEIGHTS for body in bodies)
    assert len([r for r in hub.requests if r.origin == "cdn"]) == 16
