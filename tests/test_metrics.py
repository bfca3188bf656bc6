"""GET /metrics: Prometheus counters move as a real Airlock serves real downloads."""

from __future__ import annotations

import hashlib
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import Metrics
from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON, pickled_weights, safetensors_bytes
from tests.client import HubClient
from tests.conftest import AirlockFactory
from tests.fakehub import FakeHub
from tests.fakehub.faults import Fault
from tests.http import raw_request

REPO = "acme/metered"


def scrape(airlock: RunningAirlock) -> str:
    answer = raw_request("GET", airlock.url, "/metrics")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/plain; version=0.0.4")
    return answer.body.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (histogram buckets aside), 0 if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
def files(hub: FakeHub) -> dict[str, bytes]:
    files = {
        "config.json": CONFIG_JSON,
        "model.safetensors": safetensors_bytes(20_000),
        "pytorch_model.bin": pickled_weights(4000),
    }
    hub.add_repo(REPO, files)
    return files


def test_requests_bytes_and_a_miss_then_a_hit_for_the_same_file(
    files: dict[str, bytes], airlock: RunningAirlock
) -> None:
    before = scrape(airlock)
    assert value(before, "airlock_cache_hits_total") == 0
    assert value(before, "airlock_cache_misses_total") == 0
    path = f"/{REPO}/resolve/main/config.json"

    first = raw_request("GET", airlock.url, path)
    assert first.status == 200 and first.body == CONFIG_JSON
    after_first = scrape(airlock)
    assert value(after_first, "airlock_cache_misses_total") == 1
    assert value(after_first, "airlock_cache_hits_total") == 0

    second = raw_request("GET", airlock.url, path)
    assert second.status == 200 and second.body == CONFIG_JSON
    text = scrape(airlock)
    assert value(text, "airlock_cache_misses_total") == 1
    assert value(text, "airlock_cache_hits_total") == 1

    # Two file GETs and the two earlier scrapes, all 2xx (a scrape is counted once answered).
    assert value(text, "airlock_http_requests_total", method="GET", status_class="2xx") == 4
    assert value(text, "airlock_http_request_duration_seconds_count") == 4
    sent = value(text, "airlock_http_response_bytes_total")
    scraped = len(before) + len(after_first)
    assert sent == 2 * len(CONFIG_JSON) + scraped
    # Scrapes are about Airlock itself: no audit rows for them.
    paths = [row["url_path"] for row in airlock.registry().audit_rows()]
    assert paths == [path, path]


def test_real_client_downloads_are_counted(
    files: dict[str, bytes], airlock: RunningAirlock, client: HubClient
) -> None:
    for name in ("model.safetensors", "config.json"):
        result = client.run("download", repo_id=REPO, filename=name).ok()
        assert result["sha256"] == hashlib.sha256(files[name]).hexdigest()
    text = scrape(airlock)
    # huggingface_hub sends a HEAD for the metadata, then a GET for the bytes.
    heads = value(text, "airlock_http_requests_total", method="HEAD", status_class="2xx")
    gets = value(text, "airlock_http_requests_total", method="GET", status_class="2xx")
    assert heads >= 2 and gets >= 2
    assert value(text, "airlock_http_response_bytes_total") >= sum(
        len(files[n]) for n in ("model.safetensors", "config.json")
    )
    misses = value(text, "airlock_cache_misses_total")
    hits = value(text, "airlock_cache_hits_total")
    assert misses >= 2  # each file's first request found it uncached
    assert hits + misses == 4  # one lookup per HEAD and per GET of a file

    # A second download of the same file, into a fresh client cache, is all hits.
    client.home = client.home.parent / "second-home"
    client.home.mkdir()
    client.run("download", repo_id=REPO, filename="config.json").ok()
    again = scrape(airlock)
    assert value(again, "airlock_cache_misses_total") == misses
    assert value(again, "airlock_cache_hits_total") == hits + 2


@pytest.mark.parametrize(
    ("fault", "kind"), [(Fault.SERVER_ERROR, "5xx"), (Fault.RATE_LIMIT, "429")]
)
def test_upstream_error_statuses_are_counted_by_kind(
    files: dict[str, bytes], hub: FakeHub, airlock: RunningAirlock, fault: Fault, kind: str
) -> None:
    hub.set_fault(fault, path="pytorch_model.bin", times=2, status=503, retry_after=1)
    answer = raw_request("GET", airlock.url, f"/{REPO}/resolve/main/pytorch_model.bin")
    assert answer.status == 200  # retried past both failures
    assert answer.body == files["pytorch_model.bin"]
    text = scrape(airlock)
    assert value(text, "airlock_upstream_errors_total", kind=kind) == 2


def test_upstream_stall_counts_as_timeout(
    files: dict[str, bytes], hub: FakeHub, make_airlock: AirlockFactory
) -> None:
    airlock = make_airlock(upstream_read_timeout_s=1.0)
    hub.set_fault(Fault.STALL, path="pytorch_model.bin", times=1, stall_s=5.0)
    answer = raw_request("GET", airlock.url, f"/{REPO}/resolve/main/pytorch_model.bin")
    assert answer.status == 200 and answer.body == files["pytorch_model.bin"]
    assert value(scrape(airlock), "airlock_upstream_errors_total", kind="timeout") == 1


def test_unreachable_upstream_counts_as_connection(make_airlock: AirlockFactory) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    airlock = make_airlock(upstream=f"http://127.0.0.1:{port}")
    answer = raw_request("GET", airlock.url, f"/{REPO}/resolve/main/config.json")
    assert answer.status >= 500
    text = scrape(airlock)
    assert value(text, "airlock_upstream_errors_total", kind="connection") >= 1
    assert value(text, "airlock_http_requests_total", method="GET", status_class="5xx") == 1


def test_metrics_instances_are_independent_and_labels_stay_bounded() -> None:
    one, two = Metrics(), Metrics()
    one.request_finished("BREW", 418, 10, 0.01)
    one.request_finished("get", 204, 0, 0.002)
    one.request_finished("GET", 999, 0, 0.002)
    one.decision("block", "pickle")
    one.decision("allow", "safetensors")
    one.scan_finished(0.2, "pickle")
    one.upstream_error("timeout")
    one.cache_lookup(hit=True)
    one.cache_lookup(hit=False)
    one.cache_lookup(hit=False)
    body, content_type = one.render()
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(text, "airlock_http_requests_total", method="OTHER", status_class="4xx") == 1
    assert value(text, "airlock_http_requests_total", method="GET", status_class="2xx") == 1
    assert value(text, "airlock_http_requests_total", method="GET", status_class="other") == 1
    assert value(text, "airlock_http_response_bytes_total") == 10
    assert value(text, "airlock_decisions_total", verdict="block", format="pickle") == 1
    assert value(text, "airlock_decisions_total", verdict="allow", format="safetensors") == 1
    assert value(text, "airlock_scan_duration_seconds_count", format="pickle") == 1
    assert value(text, "airlock_scan_duration_seconds_sum", format="pickle") == pytest.approx(0.2)
    assert value(text, "airlock_upstream_errors_total", kind="timeout") == 1
    assert value(text, "airlock_cache_hits_total") == 1
    assert value(text, "airlock_cache_misses_total") == 2
    # The second instance (another app in the same process) saw none of that.
    other = two.render()[0].decode()
    assert value(other, "airlock_cache_misses_total") == 0
    assert value(other, "airlock_http_response_bytes_total") == 0
    assert "BREW" not in text
