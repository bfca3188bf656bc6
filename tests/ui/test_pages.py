"""The review UI over HTTP, against a fake review service that records every call: who may see
what, CSRF, and that each page shows what the service returned (escaped).

Threat model: OWASP CSRF Prevention Cheat Sheet (synchronizer token, Origin check, SameSite) and
OWASP Session Management Cheat Sheet (HttpOnly, SameSite, Secure, server-side logout)."""

from __future__ import annotations

import re

import pytest

from tests.airlock_server import RunningAirlock
from tests.ui.conftest import PASSWORD, REVIEWER
from tests.ui.fake_review import T0, FakeReviewService
from tests.ui.web import WebClient

PAGES = [
    "/ui",
    "/ui/",
    "/ui/?state=quarantine&repo=acme",
    "/ui/decisions/1",
    "/ui/decisions/999",
    "/ui/audit",
    "/ui/audit?since=2026-01-01",
    "/ui/dashboard",
    "/ui/no-such-page",
]
SECRETS_ON_PAGES = ["acme/evil", "other/model", "pytorch_model.bin", "posix.system", "Logged"]


def logged_in(web: WebClient) -> WebClient:
    assert web.login(REVIEWER, PASSWORD).status == 303
    return web


@pytest.mark.parametrize("path", PAGES)
def test_unauthenticated_gets_redirect_to_login_and_show_nothing(
    web: WebClient, fake_review: FakeReviewService, path: str
) -> None:
    page = web.get(path)
    assert page.status == 303
    assert page.location in ("/ui/login", "/ui/")  # /ui only adds its slash
    for secret in SECRETS_ON_PAGES:
        assert secret not in page.text
    if page.location == "/ui/":
        assert web.get("/ui/").location == "/ui/login"
    assert fake_review.calls == []  # the service was never even asked


@pytest.mark.parametrize(
    "path", ["/ui/decisions/1/approve", "/ui/decisions/1/deny", "/ui/logout", "/ui/audit"]
)
def test_unauthenticated_posts_change_nothing(
    web: WebClient, fake_review: FakeReviewService, path: str
) -> None:
    page = web.post(path, {"reason": "looks fine", "csrf": "guess"})
    assert page.status == 303
    assert page.location == "/ui/login"
    assert fake_review.calls == []


def test_the_login_page_reveals_nothing_else(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    page = web.get("/ui/login")
    assert page.status == 200
    assert "<form" in page.text and 'name="password"' in page.text
    for secret in [*SECRETS_ON_PAGES, "/ui/audit", "/ui/dashboard", REVIEWER]:
        assert secret not in page.text
    assert fake_review.calls == []


def test_wrong_password_and_unknown_user_are_refused(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    for username, password in [(REVIEWER, "wrong"), ("mallory", PASSWORD), (REVIEWER, "")]:
        page = web.login(username, password)
        assert page.status == 401
        assert "Wrong username or password" in page.text
        assert not any(c.startswith("airlock_session=") for c in page.set_cookies)
    assert web.get("/ui/").location == "/ui/login"


def test_login_sets_a_strict_httponly_session_cookie(web: WebClient) -> None:
    page = web.login(REVIEWER, PASSWORD)
    assert page.status == 303
    assert page.location == "/ui/"
    (cookie,) = [c for c in page.set_cookies if c.startswith("airlock_session=")]
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert attributes["path"].strip() == "Path=/ui"
    assert "secure" not in attributes  # plain http here; see test_admin_auth for https
    assert web.get("/ui/").status == 200


def test_login_needs_the_login_forms_nonce(web: WebClient) -> None:
    """Login CSRF: another site must not log the reviewer in under its own account."""
    web.get("/ui/login")
    page = web.post("/ui/login", {"username": REVIEWER, "password": PASSWORD, "csrf": "x"})
    assert page.status == 403
    assert not any(c.startswith("airlock_session=") for c in page.set_cookies)
    fresh = WebClient(web.base_url)  # no login cookie at all
    token = web.get("/ui/login").hidden("csrf")
    page = fresh.post("/ui/login", {"username": REVIEWER, "password": PASSWORD, "csrf": token})
    assert page.status == 403


def test_login_is_throttled_after_repeated_failures(web: WebClient) -> None:
    for _ in range(10):
        assert web.login(REVIEWER, "guess").status == 401
    page = web.login(REVIEWER, PASSWORD)
    assert page.status == 429
    assert not any(c.startswith("airlock_session=") for c in page.set_cookies)


def test_the_queue_lists_quarantined_and_blocked_decisions(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    page = logged_in(web).get("/ui/")
    assert page.status == 200
    rows = re.findall(r'<tr data-decision-id="(\d+)">', page.text)
    assert rows == ["1", "2", "3"]
    assert fake_review.calls[-1] == (
        "queue",
        {"states": ("quarantine", "block"), "repo": None, "format": None, "offset": 0},
    )
    assert 'href="/ui/decisions/1"' in page.text


def test_queue_filters_reach_the_service(web: WebClient, fake_review: FakeReviewService) -> None:
    logged_in(web)
    page = web.get("/ui/?state=quarantine&repo=other&format=gguf")
    assert re.findall(r'<tr data-decision-id="(\d+)">', page.text) == ["2"]
    assert fake_review.calls[-1] == (
        "queue",
        {"states": ("quarantine",), "repo": "other", "format": "gguf", "offset": 0},
    )
    page = web.get("/ui/?state=allow&offset=abc")  # not a queue state: both queue states
    assert fake_review.calls[-1][1]["states"] == ("quarantine", "block")
    assert fake_review.calls[-1][1]["offset"] == 0


def test_pages_escape_what_they_show(web: WebClient, fake_review: FakeReviewService) -> None:
    logged_in(web)
    for path in ("/ui/", "/ui/decisions/3"):
        page = web.get(path)
        assert "<script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.bin" in page.text


def test_ui_pages_forbid_scripts_and_framing(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    pages = [web.get("/ui/login"), web.get("/ui/")]
    logged_in(web)
    pages += [web.get(path) for path in ("/ui/", "/ui/decisions/1", "/ui/dashboard")]
    for page in pages:
        policy = page.header("Content-Security-Policy") or ""
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.header("X-Frame-Options") == "DENY"
        assert page.header("Cache-Control") == "no-store"
        assert "<script" not in page.text


def test_the_detail_page_shows_findings_hashes_metadata_and_requests(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    page = logged_in(web).get("/ui/decisions/1")
    assert page.status == 200
    for expected in [
        "pickle-global",  # finding rule
        "CRITICAL",
        "imports posix.system, which runs a shell command",
        "pytorch_model.bin:data.pkl@12",  # location
        f"{1:064x}",  # sha256
        "ab" * 20,  # git sha1
        "&#34;etag-",  # etag, escaped quotes
        f"{1:040x}",  # commit
        "policy-v1",
        "the scan found content that could run code when the model is loaded",  # reason
        "pickle-global posix.system",  # reason detail
        "GET /acme/evil/resolve/main/file-1",  # who requested it
        "127.0.0.1",
        "2026-01-01 00:01:00 UTC",  # when
        "airlock-engine 9.9",
    ]:
        assert expected in page.text, expected
    assert page.text.count('name="csrf"') == 3  # approve, deny, logout


def test_an_unknown_decision_is_a_404(web: WebClient, fake_review: FakeReviewService) -> None:
    assert logged_in(web).get("/ui/decisions/999").status == 404
    assert web.get("/ui/nowhere").status == 404


def test_approve_with_reason_redirects_back_and_records_the_reviewer(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    csrf = logged_in(web).get("/ui/decisions/1").hidden("csrf")
    page = web.post("/ui/decisions/1/approve", {"csrf": csrf, "reason": "  checked by hand "})
    assert page.status == 303
    assert page.location == "/ui/decisions/1?done=approved"
    assert ("approve", {"id": 1, "reviewer": REVIEWER, "reason": "checked by hand"}) in (
        fake_review.calls
    )
    after = web.get(page.location)
    assert "Decision approved" in after.text
    assert "checked by hand" in after.text  # review history
    assert re.findall(r'<tr data-decision-id="(\d+)">', web.get("/ui/").text) == ["2", "3"]


def test_deny_without_a_reason_is_refused_and_changes_nothing(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    csrf = logged_in(web).get("/ui/decisions/1").hidden("csrf")
    page = web.post("/ui/decisions/1/deny", {"csrf": csrf, "reason": "   "})
    assert page.status == 400
    assert "A reason is required" in page.text
    assert not fake_review.changed()


def test_the_services_refusal_is_shown_and_changes_nothing(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    csrf = logged_in(web).get("/ui/decisions/1").hidden("csrf")
    page = web.post("/ui/decisions/1/approve", {"csrf": csrf, "reason": "x" * 2001})
    assert page.status == 400
    assert "the reason is longer than 2000 characters" in page.text
    assert fake_review.decisions[1].review_state == "none"
    page = web.post("/ui/decisions/999/approve", {"csrf": csrf, "reason": "ok"})
    assert page.status == 404
    assert fake_review.decisions.keys() == {1, 2, 3}


@pytest.mark.parametrize(
    "form, headers",
    [
        ({"reason": "no token"}, {}),
        ({"reason": "wrong token", "csrf": "0" * 43}, {}),
        ({"reason": "empty token", "csrf": ""}, {}),
        ({"reason": "two tokens", "csrf": "x"}, {}),
        ("right token", {"Origin": "http://evil.example"}),
        ("right token", {"Origin": "null"}),
    ],
)
def test_posts_without_the_sessions_csrf_token_are_refused(
    web: WebClient,
    fake_review: FakeReviewService,
    form: dict[str, str] | str,
    headers: dict[str, str],
) -> None:
    csrf = logged_in(web).get("/ui/decisions/1").hidden("csrf")
    if isinstance(form, str):
        form = {"reason": form, "csrf": csrf}
    for action in ("approve", "deny"):
        page = web.post(f"/ui/decisions/1/{action}", form, headers)
        assert page.status == 403
        assert "CSRF" in page.text
    page = web.post("/ui/logout", form, headers)
    assert page.status == 403
    assert not fake_review.changed()
    assert web.get("/ui/").status == 200  # still logged in


def test_the_csrf_token_belongs_to_its_session(
    ui_airlock: RunningAirlock, fake_review: FakeReviewService
) -> None:
    first = logged_in(WebClient(ui_airlock.url))
    second = logged_in(WebClient(ui_airlock.url))
    token = first.get("/ui/decisions/1").hidden("csrf")
    page = second.post("/ui/decisions/1/approve", {"csrf": token, "reason": "ok"})
    assert page.status == 403
    assert not fake_review.changed()


def test_a_same_origin_post_with_the_token_is_accepted(
    ui_airlock: RunningAirlock, web: WebClient, fake_review: FakeReviewService
) -> None:
    csrf = logged_in(web).get("/ui/decisions/2").hidden("csrf")
    origin = {"Origin": ui_airlock.url}
    page = web.post("/ui/decisions/2/deny", {"csrf": csrf, "reason": "not needed"}, origin)
    assert page.status == 303
    assert fake_review.decisions[2].review_state == "denied"


def test_logout_ends_the_session_even_for_a_kept_cookie(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    csrf = logged_in(web).get("/ui/").hidden("csrf")
    kept = dict(web.cookies)
    page = web.post("/ui/logout", {"csrf": csrf})
    assert page.status == 303 and page.location == "/ui/login"
    assert "airlock_session" not in web.cookies
    web.cookies.update(kept)  # a copy of the cookie taken before logout
    assert web.get("/ui/").location == "/ui/login"
    assert web.post("/ui/decisions/1/approve", {"csrf": csrf, "reason": "x"}).status == 303
    assert not fake_review.changed()


def test_the_audit_page_filters_by_since_and_pages_backwards(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    page = logged_in(web).get("/ui/audit")
    assert page.status == 200
    assert "GET /acme/evil/resolve/main/file-250" in page.text
    assert fake_review.calls[-1] == ("audit", {"since": 0.0, "limit": 100, "before": None})
    older = re.search(r'href="(/ui/audit\?[^"]*before=([\d.]+))"', page.text)
    assert older and float(older.group(2)) == T0 + 151 * 60
    page = web.get(older.group(1).replace("&amp;", "&"))
    assert "file-150<" in page.text and "file-151<" not in page.text
    page = web.get("/ui/audit?since=2026-01-01T03:00")
    assert fake_review.calls[-1][1]["since"] == 1_767_225_600.0 + 3 * 3600
    assert "file-180<" in page.text and "file-179<" not in page.text
    assert "Older" not in page.text  # 71 entries: one page
    page = web.get("/ui/audit?since=yesterday")
    assert page.status == 400
    assert "Since must be" in page.text


def test_the_dashboard_shows_counts_by_verdict_and_format(
    web: WebClient, fake_review: FakeReviewService
) -> None:
    page = logged_in(web).get("/ui/dashboard")
    assert page.status == 200
    assert fake_review.calls[-1] == ("dashboard", {"days": 14})
    assert page.text.count("<rect") >= 14 * 2  # columns drawn inline
    assert "2026-01-14" in page.text
    assert "<title>2026-01-14: 23 allow</title>" in page.text
    assert re.search(r"<td>safetensors</td>(<td class=\"num\">7</td>){14}", page.text)
    assert "<strong>98</strong>" in page.text  # 14 days of 7
