"""Errors speak the Hub's dialect, refusals reach the user, and bad input is turned away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.scan.report import Finding, Format, ScanReport, Severity
from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub
from tests.http import raw_request

REPO = "acme/errors"
EVIL = b"\x80\x04EVIL-PAYLOAD" + b"\x00" * 3000


@pytest.fixture
def repo(hub: FakeHub) -> None:
    hub.add_repo(
        REPO, {"config.json": CONFIG_JSON, "evil.bin": EVIL, "ok.bin": pickled_weights(4000)}
    )


class MarkerScanner:
    """Test scanner: a finding for any file containing the EVIL marker."""

    name = "test-marker-scanner"
    version = "1"

    def scan(self, path: Path, size_bytes: int, name: str) -> ScanReport:
        findings: tuple[Finding, ...] = ()
        if b"EVIL-PAYLOAD" in path.read_bytes():
            findings = (Finding("test-marker", Severity.CRITICAL, "marker found", "byte 2"),)
        return ScanReport(Format.UNKNOWN, self.name, findings)

    def close(self) -> None:
        pass


class CrashingScanner:
    name = "crashing-scanner"
    version = "1"

    def scan(self, path: Path, size_bytes: int, name: str) -> ScanReport:
        raise RuntimeError("parser exploded")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "repo_id, filename, revision, expected",
    [
        ("acme/missing", "config.json", None, "RepositoryNotFoundError"),
        (REPO, "config.json", "no-such-branch", "RevisionNotFoundError"),
        (REPO, "nope.json", None, "RemoteEntryNotFoundError"),
    ],
)
def test_hub_errors_keep_their_codes(
    repo: None, client: HubClient, repo_id: str, filename: str, revision: str | None, expected: str
) -> None:
    result = client.run("download", repo_id=repo_id, filename=filename, revision=revision)
    assert result.error is not None
    assert result.error["type"] == expected


def test_entry_not_found_carries_the_commit(
    hub: FakeHub, repo: None, airlock: RunningAirlock
) -> None:
    resp = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/nope.json")
    assert resp.status == 404
    assert resp.header("X-Error-Code") == "EntryNotFound"
    assert resp.header("X-Repo-Commit") == hub.head_commit(REPO)


def test_blocked_file_message_reaches_the_user(
    hub: FakeHub, repo: None, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(scanner=MarkerScanner())
    client = HubClient(airlock.url, tmp_path)

    for _ in range(2):  # the second time the verdict comes from the registry
        error = client.run("download", repo_id=REPO, filename="evil.bin").error
        assert error is not None
        assert error["type"] == "GatedRepoError"
        assert f"Airlock blocked evil.bin in {REPO}@{hub.head_commit(REPO)}" in error["message"]
        assert "test-marker (critical) at byte 2: marker found" in error["message"]
        assert f"Review: {airlock.url}/ui/decisions/1" in error["message"]

    head = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/evil.bin")
    assert head.status == 403
    assert head.header("X-Error-Code") == "GatedRepo"
    assert json.loads(raw_request("GET", airlock.url, f"/{REPO}/resolve/main/evil.bin").body)[
        "error"
    ].startswith("Airlock blocked evil.bin")
    assert [p.name for p in airlock.blob_files("quarantine")] == [hub.file_sha256(REPO, "evil.bin")]
    assert airlock.blob_files("blobs") == []
    assert client.run("download", repo_id=REPO, filename="ok.bin").error is None
    assert len([r for r in hub.requests if r.origin == "cdn" and "evil" in r.query]) <= 1


def test_a_scanner_crash_blocks_the_file(
    hub: FakeHub, repo: None, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(scanner=CrashingScanner())
    error = HubClient(airlock.url, tmp_path).run("download", repo_id=REPO, filename="ok.bin").error
    assert error is not None
    assert "scanner-error" in error["message"]
    assert "parser exploded" in error["message"]
    assert airlock.blob_files("blobs") == []


BAD_PATHS = [
    (f"/{REPO}/resolve/main/../../../etc/passwd", "dot-dot"),
    (f"/{REPO}/resolve/main/%2e%2e/%2e%2e/etc/passwd", "encoded dot-dot"),
    (f"/{REPO}/resolve/main/sub/%2E%2E/config.json", "upper-case encoded dot-dot"),
    (f"/{REPO}/resolve/main//etc/passwd", "absolute path"),
    (f"/{REPO}/resolve/main/config.json%00.txt", "NUL"),
    (f"/{REPO}/resolve/main/a%2Fb", "encoded slash in a file name"),
    (f"/{REPO}/resolve/main/%ff%fe", "invalid UTF-8"),
    ("/ac..me/model/resolve/main/config.json", "repo id with dot-dot"),
    ("/acme/-model-/resolve/main/config.json", "repo id edge characters"),
    ("/a/b/c/resolve/main/config.json", "three-part repo id"),
    (f"/{REPO}/resolve/bad..rev/config.json", "revision with dot-dot"),
    (f"/{REPO}/resolve/refs%2F..%2Fheads/config.json", "revision climbing"),
    (f"/{REPO}/resolve/%00/config.json", "NUL revision"),
]


@pytest.mark.parametrize("path, why", BAD_PATHS, ids=[why for _, why in BAD_PATHS])
def test_bad_input_is_refused_with_a_message(
    hub: FakeHub, repo: None, airlock: RunningAirlock, path: str, why: str
) -> None:
    resp = raw_request("GET", airlock.url, path)
    assert 400 <= resp.status < 500, why
    assert resp.header("X-Request-Id")
    if resp.status != 404:
        assert resp.header("X-Error-Message")
    # Nothing was asked upstream for a request Airlock refused.
    assert [r for r in hub.requests if "/resolve/" in r.path] == []


def test_oversized_headers_are_refused(repo: None, airlock: RunningAirlock) -> None:
    resp = raw_request(
        "GET", airlock.url, f"/{REPO}/resolve/main/config.json", {"X-Big": "a" * 20_000}
    )
    assert resp.status in (400, 431)
    # The server is still fine afterwards.
    assert raw_request("GET", airlock.url, "/healthz").status == 200


def test_every_response_carries_a_request_id(repo: None, airlock: RunningAirlock) -> None:
    for method, path in (
        ("GET", "/healthz"),
        ("HEAD", f"/{REPO}/resolve/main/config.json"),
        ("GET", f"/{REPO}/resolve/main/config.json"),
        ("GET", "/acme/missing/resolve/main/x"),
        ("GET", "/api/models/acme/missing"),
        ("PUT", f"/{REPO}/resolve/main/config.json"),
        ("GET", "/api/agent-harnesses"),
    ):
        resp = raw_request(method, airlock.url, path)
        assert resp.header("X-Request-Id"), (method, path, resp.status)


def test_xet_tokens_are_never_handed_out(hub: FakeHub, repo: None, airlock: RunningAirlock) -> None:
    commit = hub.head_commit(REPO)
    resp = raw_request("GET", airlock.url, f"/api/models/{REPO}/xet-read-token/{commit}")
    assert resp.status == 404
    assert "Xet" in (resp.header("X-Error-Message") or "")
    assert not [r for r in hub.requests if "xet-read-token" in r.path]


def test_agent_harnesses_and_tree_links(hub: FakeHub, repo: None, airlock: RunningAirlock) -> None:
    harness = raw_request("GET", airlock.url, "/api/agent-harnesses")
    assert harness.status == 200
    assert json.loads(harness.body) == {"standardEnvVars": [], "harnesses": {}}

    tree = raw_request("GET", airlock.url, f"/api/models/{REPO}/tree/main?recursive=true")
    link = tree.header("Link") or ""
    assert link.startswith(f"<{airlock.url}/api/models/{REPO}/tree/main?")
    assert 'rel="next"' in link
    assert hub.url not in link


def test_write_methods_are_refused(repo: None, airlock: RunningAirlock) -> None:
    for method, path in (
        ("PUT", f"/{REPO}/resolve/main/config.json"),
        ("DELETE", f"/api/models/{REPO}"),
        ("POST", "/api/repos/create"),
    ):
        resp = raw_request(method, airlock.url, path, body=b"{}")
        assert resp.status == 405, (method, path)


def test_api_paths_cannot_climb_around_the_pipeline(
    hub: FakeHub, repo: None, airlock: RunningAirlock
) -> None:
    for path in (
        f"/api/whoami-v2/../../{REPO}/resolve/main/config.json",
        f"/api/whoami-v2/%2E%2E/%2E%2E/{REPO}/resolve/main/config.json",
        f"/api/models/{REPO}/tree/main/%2E%2E/%2E%2E/%2E%2E/{REPO}/resolve/main/config.json",
    ):
        resp = raw_request("GET", airlock.url, path)
        if resp.status == 200:  # the server normalised the path: it went through /resolve
            assert resp.body == CONFIG_JSON
        else:
            assert 400 <= resp.status < 500
    assert not [r.path for r in hub.requests if "whoami" in r.path or "/tree/" in r.path]


def test_files_above_the_size_limit_are_refused_before_any_byte_moves(
    hub: FakeHub, repo: None, make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(max_file_size_bytes=1000)
    error = HubClient(airlock.url, tmp_path).run("download", repo_id=REPO, filename="ok.bin").error
    assert error is not None and error["type"] == "GatedRepoError"
    assert "above this mirror's limit of 1000 bytes" in error["message"]
    assert not [r for r in hub.requests if r.origin == "cdn"]
