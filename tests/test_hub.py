"""The Hub dialect: routes parsed from raw paths, headers, links and Xet stripping."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequest, NotFound
from proxy.hub import (
    ApiKind,
    FileRef,
    HarnessesRoute,
    PassThroughApiRoute,
    RepoApiRoute,
    RepoRef,
    RepoType,
    ResolveRoute,
    parse_etag,
    parse_route,
    resolve_url_path,
    rewrite_link_header,
    strip_xet_json,
)

MODEL = RepoType.MODEL
SHA = "a" * 40


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            "/acme/m/resolve/main/config.json",
            ResolveRoute(FileRef(RepoRef(MODEL, "acme/m"), "main", "config.json")),
        ),
        (
            "/gpt2/resolve/main/config.json",
            ResolveRoute(FileRef(RepoRef(MODEL, "gpt2"), "main", "config.json")),
        ),
        (
            "/acme/m/resolve/refs%2Fpr%2F1/sub/dir/w.bin",
            ResolveRoute(FileRef(RepoRef(MODEL, "acme/m"), "refs/pr/1", "sub/dir/w.bin")),
        ),
        (
            "/datasets/acme/d/resolve/v1.0/data/train%20set.csv",
            ResolveRoute(
                FileRef(RepoRef(RepoType.DATASET, "acme/d"), "v1.0", "data/train set.csv")
            ),
        ),
        (
            f"/api/resolve-cache/models/acme/m/{SHA}/config.json",
            ResolveRoute(FileRef(RepoRef(MODEL, "acme/m"), SHA, "config.json")),
        ),
        ("/api/models/acme/m", RepoApiRoute(ApiKind.INFO, RepoRef(MODEL, "acme/m"))),
        ("/api/models/gpt2", RepoApiRoute(ApiKind.INFO, RepoRef(MODEL, "gpt2"))),
        (
            "/api/models/acme/m/revision/refs%2Fpr%2F2",
            RepoApiRoute(ApiKind.REVISION, RepoRef(MODEL, "acme/m"), "refs/pr/2"),
        ),
        (
            "/api/models/gpt2/tree/main",
            RepoApiRoute(ApiKind.TREE, RepoRef(MODEL, "gpt2"), "main"),
        ),
        (
            "/api/datasets/acme/d/tree/main/data/sub",
            RepoApiRoute(ApiKind.TREE, RepoRef(RepoType.DATASET, "acme/d"), "main", "data/sub"),
        ),
        (
            "/api/models/acme/m/paths-info/main",
            RepoApiRoute(ApiKind.PATHS_INFO, RepoRef(MODEL, "acme/m"), "main"),
        ),
        ("/api/models/acme/m/refs", RepoApiRoute(ApiKind.REFS, RepoRef(MODEL, "acme/m"))),
        ("/api/agent-harnesses", HarnessesRoute()),
        ("/api/whoami-v2", PassThroughApiRoute("/api/whoami-v2")),
        ("/api/models", PassThroughApiRoute("/api/models")),
    ],
)
def test_routes_parse_from_the_raw_path(raw: str, expected: object) -> None:
    assert parse_route(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "/acme/m/resolve/main/../secret",
        "/acme/m/resolve/main/%2E%2E/secret",
        "/acme/m/resolve/main/a/./b",
        "/acme/m/resolve/main//abs",
        "/acme/m/resolve/main/a%00b",
        "/acme/m/resolve/main/a%2Fb",
        "/acme/m/resolve/main/a%0Ab",
        "/acme/m/resolve/ma..in/x",
        "/acme/m/resolve/main.lock/x",
        "/acme/m/resolve/-x/x",
        "/acme/m/resolve/a%20b/x",
        "/acme/m/resolve/%ff/x",
        "/ac--me/m/resolve/main/x",
        "/acme/m.git/resolve/main/x",
        "/acme/.m/resolve/main/x",
        "/" + "a" * 5000,
    ],
)
def test_hostile_paths_are_bad_requests(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_route(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "/favicon.ico",
        "/acme/m/blob/main/x",
        "/acme/m/resolve",
        "/api/whoami-v2/../../acme/m/resolve/main/config.json",
        "/api/spaces-by-author/x",
        "/api/models/acme/m/unknown-action/main",
    ],
)
def test_non_hub_paths_are_not_found(raw: str) -> None:
    with pytest.raises(NotFound):
        parse_route(raw)


def test_upstream_urls_keep_revision_as_one_segment() -> None:
    file = FileRef(RepoRef(RepoType.DATASET, "acme/d"), "refs/pr/1", "dir/a b.txt")
    assert resolve_url_path(file) == "/datasets/acme/d/resolve/refs%2Fpr%2F1/dir/a%20b.txt"


def test_etags_are_read_like_the_client() -> None:
    assert parse_etag('W/"abc"') == "abc"
    assert parse_etag('"abc"') == "abc"
    assert parse_etag(None) is None


def test_xet_fields_are_stripped_everywhere() -> None:
    tree = [
        {"type": "file", "path": "w", "xetHash": "x" * 64, "lfs": {"oid": "s", "size": 1}},
        {"type": "directory", "path": "d"},
    ]
    assert strip_xet_json(tree) == [
        {"type": "file", "path": "w", "lfs": {"oid": "s", "size": 1}},
        {"type": "directory", "path": "d"},
    ]


def test_links_point_back_at_airlock_and_lose_xet_relations() -> None:
    upstream = "https://huggingface.co"
    link = (
        "<https://huggingface.co/api/models/a/b/tree/main?cursor=xyz&recursive=true>; "
        'rel="next", <https://huggingface.co/api/models/a/b/xet-read-token/abc>; rel="xet-auth", '
        '<https://cas-server.xethub.hf.co/reconstruction/h>; rel="xet-reconstruction-info"'
    )
    assert rewrite_link_header(link, upstream, "http://airlock:8080") == (
        '<http://airlock:8080/api/models/a/b/tree/main?cursor=xyz&recursive=true>; rel="next"'
    )
    assert rewrite_link_header('<https://elsewhere.example/x>; rel="next"', upstream, "h") is None
