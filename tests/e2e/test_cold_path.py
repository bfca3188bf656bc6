"""The cold path's release points: held formats wait for verification and scan; safetensors
streams once its header is checked; HEADs wait a little, then ask the client to come back."""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
from pathlib import Path

import pytest

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub, Fault
from tests.http import raw_request

REPO = "acme/cold"
HELD = "pytorch_model.bin"
STREAMED = "model.safetensors"


@pytest.fixture
def files(hub: FakeHub) -> dict[str, bytes]:
    content = {
        "config.json": CONFIG_JSON,
        "tokenizer.json": b'{"version": "1.0"}' + b" " * 50_000,
        HELD: pickled_weights(4_000_000),
        STREAMED: safetensors_bytes(6_000_000),
    }
    hub.add_repo(REPO, content)
    return content


def head_statuses(airlock: RunningAirlock, path: str) -> list[int]:
    return [
        row["status"]
        for row in airlock.registry().audit_rows()
        if row["method"] == "HEAD" and row["path"] == path
    ]


def test_small_files_never_see_a_503(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    # Slow enough that the fetch outlasts a naive zero wait, well inside head_wait_s.
    hub.set_fault(Fault.THROTTLE, path="tokenizer.json", times=None, rate_bytes_s=100_000)
    ok = client.run("download", repo_id=REPO, filename="tokenizer.json").ok()
    assert ok["sha256"] == hashlib.sha256(files["tokenizer.json"]).hexdigest()
    assert head_statuses(airlock, "tokenizer.json") == [200]


def test_held_file_answers_503_with_retry_after_and_progress(
    hub: FakeHub, files: dict[str, bytes], make_airlock: AirlockFactory, tmp_path: Path
) -> None:
    airlock = make_airlock(head_wait_s=0.5)
    hub.set_fault(Fault.THROTTLE, path=HELD, times=None, rate_bytes_s=1_000_000)

    first = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/{HELD}")
    assert first.status == 503
    retry_after = int(first.header("Retry-After") or "0")
    assert 1 <= retry_after <= 10  # about 3.5 s left at 1 MB/s
    message = first.header("X-Error-Message") or ""
    assert f"of {len(files[HELD])} bytes" in message
    assert "fetching and scanning" in message

    # The real client honours Retry-After and gets the file once it is verified and scanned.
    result = HubClient(airlock.url, tmp_path).run("download", repo_id=REPO, filename=HELD)
    assert result.ok()["sha256"] == hashlib.sha256(files[HELD]).hexdigest()
    assert 503 in head_statuses(airlock, HELD)
    assert head_statuses(airlock, HELD)[-1] == 200


def test_held_file_is_not_sent_before_it_is_verified_and_cleared(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock
) -> None:
    hub.set_fault(Fault.THROTTLE, path=HELD, times=None, rate_bytes_s=2_000_000)
    blob = airlock.settings.data_dir / "blobs" / hashlib.sha256(files[HELD]).hexdigest()
    seen: dict[str, float | bytes] = {}

    def get() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", airlock.port, timeout=30)
        conn.request("GET", f"/{REPO}/resolve/main/{HELD}")
        resp = conn.getresponse()
        seen["headers_at"] = time.monotonic()
        seen["blob_existed"] = b"yes" if blob.exists() else b"no"
        seen["body"] = resp.read()
        conn.close()

    thread = threading.Thread(target=get)
    thread.start()
    thread.join(timeout=30)
    assert seen["blob_existed"] == b"yes"
    assert seen["body"] == files[HELD]


def test_safetensors_streams_while_it_is_fetched(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock
) -> None:
    size = len(files[STREAMED])
    hub.set_fault(Fault.THROTTLE, path=STREAMED, times=None, rate_bytes_s=2_000_000)
    started = time.monotonic()

    head = raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/{STREAMED}")
    assert head.status == 200  # the header is checked: no 503 for a streamable file
    assert time.monotonic() - started < 2.0
    assert head.header("X-Linked-Size") == str(size)

    conn = http.client.HTTPConnection("127.0.0.1", airlock.port, timeout=30)
    conn.request("GET", f"/{REPO}/resolve/main/{STREAMED}")
    resp = conn.getresponse()
    first = resp.read(1 << 16)
    first_at = time.monotonic() - started
    rest = resp.read()
    done_at = time.monotonic() - started
    conn.close()

    assert first + rest == files[STREAMED]
    assert first_at < 2.0  # bytes flowed long before the 3 s upstream transfer ended
    assert done_at > 2.5


def test_concurrent_head_and_range_during_streaming(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock
) -> None:
    hub.set_fault(Fault.THROTTLE, path=STREAMED, times=None, rate_bytes_s=3_000_000)
    raw_request("HEAD", airlock.url, f"/{REPO}/resolve/main/{STREAMED}")
    part = raw_request(
        "GET", airlock.url, f"/{REPO}/resolve/main/{STREAMED}", {"Range": "bytes=0-99999"}
    )
    assert part.status == 206
    assert part.body == files[STREAMED][:100_000]
    assert part.header("Content-Range") == f"bytes 0-99999/{len(files[STREAMED])}"
    cdn = [r for r in hub.requests if r.origin == "cdn"]
    assert len(cdn) == 1


def test_a_streamed_file_that_fails_verification_is_cut_before_its_last_byte(
    hub: FakeHub, files: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    size = len(files[STREAMED])
    hub.set_fault(
        Fault.WRONG_BYTES, path=STREAMED, times=None, throttle=True, rate_bytes_s=4_000_000
    )
    conn = http.client.HTTPConnection("127.0.0.1", airlock.port, timeout=30)
    conn.request("GET", f"/{REPO}/resolve/main/{STREAMED}")
    resp = conn.getresponse()
    assert resp.status == 200  # streaming began: the header was fine
    received = b""
    with pytest.raises(http.client.IncompleteRead) as cut:
        received = resp.read()
    conn.close()
    received = received or cut.value.partial
    assert len(received) < size
    assert len(received) >= size // 2  # the bytes flowed until verification failed

    # The real client, retrying within the cooldown, gets the reason rather than bytes.
    error = client.run("download", repo_id=REPO, filename=STREAMED).error
    assert error is not None
    assert "Airlock refused model.safetensors" in error["message"]
    assert not list((client.home / "hf").rglob(STREAMED))
