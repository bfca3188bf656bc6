"""`airlock serve` as a user runs it: a real process, configured by flags and AIRLOCK_* vars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifacts import CONFIG_JSON, pickled_weights
from tests.fakehub import FakeHub, Fault
from tests.http import free_port, raw_request

AIRLOCK = Path(sys.executable).parent / "airlock"
TOKEN = "hf_cliSECRETtoken123456"


def start_airlock(
    upstream: str, data_dir: Path, log_path: Path, **env: str
) -> tuple[str, subprocess.Popen[str]]:
    """`airlock serve` in its own process, once it answers /healthz."""
    port = free_port()
    full_env = {**os.environ, "AIRLOCK_UPSTREAM_CDN_HOSTS": "127.0.0.1", **env}
    with log_path.open("a") as log_file:
        proc = subprocess.Popen(
            [
                str(AIRLOCK),
                "serve",
                "--upstream",
                upstream,
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if raw_request("GET", url, "/healthz", timeout_s=1).status == 200:
                return url, proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)


@pytest.fixture
def served(hub: FakeHub, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    log_path = tmp_path / "airlock.log"
    url, proc = start_airlock(hub.url, tmp_path / "data", log_path, AIRLOCK_REVISION_TTL_S="5")
    try:
        yield url, log_path, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_answers_health_and_hub_requests_with_json_logs(
    hub: FakeHub, served: tuple[str, Path, subprocess.Popen[str]]
) -> None:
    url, log_path, _ = served
    hub.add_repo("acme/cli", {"config.json": CONFIG_JSON}, private_token=TOKEN)

    assert raw_request("GET", url, "/healthz").status == 200
    ready = raw_request("GET", url, "/readyz")
    assert ready.status == 200
    assert json.loads(ready.body)["checks"] == {"registry": True, "blob_store": True}

    auth = {"Authorization": f"Bearer {TOKEN}"}
    got = raw_request("GET", url, "/acme/cli/resolve/main/config.json", auth)
    assert got.status == 200 and got.body == CONFIG_JSON
    assert got.header("ETag") == f'"{hub.file_git_sha1("acme/cli", "config.json")}"'

    time.sleep(0.3)  # let the log line land
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    finished = [line for line in lines if line["event"] == "request_finished"]
    resolve = [line for line in finished if line.get("path") == "config.json"]
    assert len(resolve) == 1
    assert resolve[0]["status"] == 200
    assert resolve[0]["verdict"] == "cleared"
    assert resolve[0]["bytes_sent"] == len(CONFIG_JSON)
    assert resolve[0]["token_fp"] and resolve[0]["request_id"] == got.header("X-Request-Id")
    assert any(line["event"] == "policy_decided" for line in lines)
    assert TOKEN not in log_path.read_text()


def test_bad_configuration_stops_the_process_and_names_the_variable(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(AIRLOCK), "serve", "--data-dir", str(tmp_path)],
        env={**os.environ, "AIRLOCK_REVISION_TTL_S": "soon"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "AIRLOCK_REVISION_TTL_S" in proc.stderr


def test_a_crash_mid_fetch_leaves_nothing_that_can_be_served(hub: FakeHub, tmp_path: Path) -> None:
    weights = pickled_weights(3_000_000)
    hub.add_repo("acme/crash", {"pytorch_model.bin": weights})
    hub.set_fault(Fault.THROTTLE, path="pytorch_model.bin", times=1, rate_bytes_s=500_000)
    data_dir = tmp_path / "data"
    url, proc = start_airlock(hub.url, data_dir, tmp_path / "log", AIRLOCK_HEAD_WAIT_S="0.2")
    try:
        pending = raw_request("HEAD", url, "/acme/crash/resolve/main/pytorch_model.bin")
        assert pending.status == 503
        time.sleep(1.0)  # part of the file is on disk, in staging
        staging = list((data_dir / "staging").iterdir())
        assert len(staging) == 1 and staging[0].stat().st_size > 0
    finally:
        proc.kill()  # no clean-up code runs
        proc.wait(timeout=10)
    assert list((data_dir / "blobs").iterdir()) == []

    url, proc = start_airlock(hub.url, data_dir, tmp_path / "log", AIRLOCK_HEAD_WAIT_S="10")
    try:
        assert list((data_dir / "staging").iterdir()) == []
        got = raw_request("GET", url, "/acme/crash/resolve/main/pytorch_model.bin")
        assert got.status == 200 and got.body == weights
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_applies_the_header_limit(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, log_path, _ = served
    resp = raw_request("GET", url, "/healthz", {"X-Big": "a" * 9000})
    assert resp.status in (400, 431)
    time.sleep(0.2)
    assert "custom kwargs" not in log_path.read_text()  # aiohttp took every server setting
