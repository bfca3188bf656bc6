"""The JSON admin API (/admin/api/) answers only requests with a configured bearer token: no
token, a wrong one, the web UI's session cookie or the token's stored digest all get 401 JSON,
and the review service is never reached."""

from __future__ import annotations

import json

import pytest

from proxy.admin.auth import hash_token
from tests.ui.conftest import API_TOKEN, PASSWORD, REVIEWER
from tests.ui.fake_review import FakeReviewService
from tests.ui.web import WebClient

ENDPOINTS = [
    ("GET", "/admin/api/decisions"),
    ("GET", "/admin/api/decisions/1"),
    ("POST", "/admin/api/decisions/1/approve"),
    ("POST", "/admin/api/decisions/1/deny"),
    ("GET", "/admin/api/audit"),
    ("GET", "/admin/api/dashboard"),
    ("GET", "/admin/api/policy"),
    ("POST", "/admin/api/policy/reload"),
    ("POST", "/admin/api/rescan"),
    ("GET", "/admin/api/no-such-endpoint"),
]
BAD_AUTHORIZATION = [
    None,
    "Bearer wrong-token",
    f"Bearer {hash_token(API_TOKEN)}",
    f"Basic {API_TOKEN}",
    f"Bearer {API_TOKEN[:-1]}",
    "Bearer",
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_the_api_refuses_requests_without_a_valid_bearer_token(
    web: WebClient, fake_review: FakeReviewService, method: str, path: str
) -> None:
    for authorization in BAD_AUTHORIZATION:
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        page = web.request(method, path, headers=headers)
        assert page.status == 401, (authorization, page.text)
        assert (page.header("Content-Type") or "").startswith("application/json")
        assert "error" in json.loads(page.text)
        assert "acme/evil" not in page.text
    assert fake_review.calls == []


def test_the_web_session_cookie_does_not_open_the_api(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    assert web.login(REVIEWER, PASSWORD).status == 303
    csrf = web.get("/ui/").hidden("csrf")
    page = web.request("GET", "/admin/api/decisions", headers={"X-CSRF-Token": csrf})
    assert page.status == 401  # the cookie's path is /ui, and the API takes tokens only
    assert not fake_review.changed()


def test_a_valid_bearer_token_is_accepted_and_named(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    page = web.request("GET", "/admin/api/decisions", headers=auth)
    assert page.status == 200
    assert [d["id"] for d in json.loads(page.text)["decisions"]] == [1, 2, 3]
    page = web.request(
        "POST",
        "/admin/api/decisions/1/approve",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"reason": "checked"}).encode(),
    )
    assert page.status == 200, page.text
    assert ("approve", {"id": 1, "reviewer": "ci", "reason": "checked"}) in fake_review.calls
