"""The review UI in headless Chromium, against a real Airlock: a file held by the policy is
reviewed in the browser, and the approval reaches the real huggingface_hub client.

Also, from the browser's side: unauthenticated visits land on the login page with nothing else
shown, a wrong password is refused, and a cross-origin form post (the classic CSRF attack, OWASP
CSRF Prevention Cheat Sheet) changes nothing."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.airlock_server import RunningAirlock
from tests.artifacts import CONFIG_JSON
from tests.client import HubClient, client_python
from tests.conftest import AirlockFactory
from tests.e2e.test_scanning import system_pickle
from tests.fakehub import FakeHub
from tests.ui.conftest import PASSWORD, REVIEWER, admin_settings

# Every repo not on the allow list waits for a reviewer (issue 4: publishers.quarantine_unknown).
POLICY = """
[publishers]
allow = ["trusted/*"]
quarantine_unknown = true
"""
NEWCOMER_CONFIG = json.dumps({"model_type": "bert", "hidden_size": 16}).encode()


@pytest.fixture
def policy_airlock(make_airlock: AirlockFactory, tmp_path: Path) -> RunningAirlock:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    return make_airlock(policy=policy, **admin_settings())


@pytest.fixture
def hub_client(policy_airlock: RunningAirlock, tmp_path: Path) -> HubClient:
    if not client_python().exists():
        pytest.fail(f"client environment missing at {client_python()}; run tests/run.sh")
    home = tmp_path / "client-home"
    home.mkdir()
    return HubClient(policy_airlock.url, home)


def log_in(page: Page, base_url: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/ui/")
    expect(page).to_have_url(f"{base_url}/ui/login")
    page.get_by_label("Username").fill(REVIEWER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def queue_row(page: Page, repo_id: str) -> object:
    return page.locator("table.queue tr", has_text=repo_id)


def test_a_quarantined_file_is_approved_in_the_browser_and_then_served(
    hub: FakeHub, policy_airlock: RunningAirlock, hub_client: HubClient, page: Page
) -> None:
    hub.add_repo("newcomer/model", {"config.json": NEWCOMER_CONFIG})
    hub.add_repo("trusted/model", {"config.json": CONFIG_JSON})
    hub_client.run("download", repo_id="trusted/model", filename="config.json").ok()
    error = hub_client.run("download", repo_id="newcomer/model", filename="config.json").error
    assert error is not None and error["type"] == "GatedRepoError"
    assert "newcomer/model is not on the allow list" in error["message"]

    base = policy_airlock.url
    log_in(page, base)
    expect(page).to_have_url(f"{base}/ui/")
    row = page.locator("table.queue tbody tr", has_text="newcomer/model")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("config.json")
    expect(row).to_contain_text("quarantine")
    expect(page.locator("table.queue")).not_to_contain_text("trusted/model")  # allowed: not queued

    row.get_by_role("link", name="config.json").click()
    expect(page).to_have_url(re.compile(rf"{base}/ui/decisions/\d+$"))
    expect(page.locator("h1")).to_contain_text("config.json")
    expect(page.locator("table.reasons")).to_contain_text("newcomer/model is not on the allow list")
    expect(page.locator("table.requests")).to_contain_text(
        "/newcomer/model/resolve/main/config.json"
    )
    page.get_by_label("Reason to approve").fill(
        "Known research group; config only, checked by hand"
    )
    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status")).to_contain_text("Decision approved")
    expect(page.locator("table.reviews")).to_contain_text("checked by hand")
    expect(page.locator("table.reviews")).to_contain_text(REVIEWER)

    page.get_by_role("link", name="Queue", exact=True).click()
    expect(page.locator("body")).to_contain_text("Nothing waiting for review")
    assert hub_client.run("download", repo_id="newcomer/model", filename="config.json").ok()

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table.audit")).to_contain_text("approve")


def test_a_blocked_malicious_pickle_shows_its_finding_and_is_denied(
    hub: FakeHub,
    policy_airlock: RunningAirlock,
    hub_client: HubClient,
    page: Page,
    tmp_path: Path,
) -> None:
    """threats.md: pickle code execution (GLOBAL posix.system + REDUCE), as in
    tests/e2e/test_scanning.py."""
    marker = tmp_path / "marker"
    hub.add_repo("trusted/evil", {"pytorch_model.bin": system_pickle(marker)})
    error = hub_client.run("download", repo_id="trusted/evil", filename="pytorch_model.bin").error
    assert error is not None and error["type"] == "GatedRepoError"

    base = policy_airlock.url
    log_in(page, base)
    page.goto(f"{base}/ui/?state=block&repo=trusted")
    row = page.locator("table.queue tbody tr", has_text="trusted/evil")
    expect(row).to_contain_text("block")
    row.get_by_role("link", name="pytorch_model.bin").click()
    expect(page.locator("table.findings")).to_contain_text("posix.system")
    page.get_by_label("Reason to deny").fill("Runs a shell command on load")
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("status")).to_contain_text("Decision denied")
    error = hub_client.run("download", repo_id="trusted/evil", filename="pytorch_model.bin").error
    assert error is not None and error["type"] == "GatedRepoError"
    assert not marker.exists()

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("table.by-verdict")).to_contain_text("block")


def test_unauthenticated_visits_land_on_the_login_page(
    policy_airlock: RunningAirlock, page: Page
) -> None:
    base = policy_airlock.url
    for path in ("/ui/", "/ui/decisions/1", "/ui/audit", "/ui/dashboard"):
        page.goto(base + path)
        expect(page).to_have_url(f"{base}/ui/login")
        expect(page.locator("nav")).to_have_count(0)
        expect(page.locator("table")).to_have_count(0)


def test_a_wrong_password_is_refused_in_the_browser(
    policy_airlock: RunningAirlock, page: Page
) -> None:
    base = policy_airlock.url
    log_in(page, base, password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    page.goto(f"{base}/ui/")
    expect(page).to_have_url(f"{base}/ui/login")
    assert not [c for c in page.context.cookies() if c["name"] == "airlock_session"]


class _AttackerPage(BaseHTTPRequestHandler):
    """Another origin's page that posts an approval form to Airlock as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><html><body>
<form id="f" method="post" action="{self.target}">
<input name="reason" value="approved by a forged request"></form>
<script>document.getElementById("f").submit()</script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def attacker_site(policy_airlock: RunningAirlock) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_cross_origin_form_post_changes_nothing(
    hub: FakeHub,
    policy_airlock: RunningAirlock,
    hub_client: HubClient,
    page: Page,
    attacker_site: ThreadingHTTPServer,
) -> None:
    hub.add_repo("newcomer/model", {"config.json": NEWCOMER_CONFIG})
    assert hub_client.run("download", repo_id="newcomer/model", filename="config.json").error
    registry = policy_airlock.registry()
    (decision_id,) = [r["id"] for r in registry.db.query("SELECT id FROM decisions")]

    base = policy_airlock.url
    log_in(page, base)  # the reviewer is logged in, in this browser
    expect(page).to_have_url(f"{base}/ui/")
    _AttackerPage.target = f"{base}/ui/decisions/{decision_id}/approve"
    port = attacker_site.server_address[1]
    with page.expect_response(_AttackerPage.target) as answer:
        page.goto(f"http://127.0.0.1:{port}/")  # same site, other origin: the cookie is sent
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("CSRF check failed")

    page.goto(f"{base}/ui/decisions/{decision_id}")
    expect(page.locator("body")).to_contain_text("Not reviewed yet")
    assert hub_client.run("download", repo_id="newcomer/model", filename="config.json").error
