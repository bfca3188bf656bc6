"""Fixtures for the review UI: an Airlock with one reviewer account and one API token, a
cookie-keeping HTTP client, and headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from proxy.admin.auth import hash_password, hash_token
from tests.airlock_server import RunningAirlock
from tests.conftest import AirlockFactory
from tests.ui.fake_review import FakeReviewService, decision
from tests.ui.web import WebClient

REVIEWER = "alice"
PASSWORD = "correct horse battery staple"
API_TOKEN = "airlock_test_token_0123456789"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def admin_settings() -> dict[str, Any]:
    return {
        "admin_users": (f"{REVIEWER}:{password_hash()}",),
        "admin_tokens": (f"ci:{hash_token(API_TOKEN)}",),
    }


@pytest.fixture
def ui_airlock(make_airlock: AirlockFactory) -> RunningAirlock:
    return make_airlock(**admin_settings())


@pytest.fixture
def fake_review(ui_airlock: RunningAirlock) -> FakeReviewService:
    """The fake service in place of the real one, with two quarantined decisions and a blocked
    one whose path would run script if it were not escaped."""
    fake = FakeReviewService(
        [
            decision(1),
            decision(2, repo_id="other/model", path="weights.gguf", fmt="gguf"),
            decision(3, verdict="block", path="<script>alert(1)</script>.bin"),
        ]
    )
    setattr(ui_airlock.services, "review", fake)  # noqa: B010  (the fake is not a ReviewService)
    return fake


@pytest.fixture
def web(ui_airlock: RunningAirlock) -> WebClient:
    return WebClient(ui_airlock.url)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run tests/run.sh (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
