"""The review web UI at /ui/: server-rendered pages (Jinja2, autoescaped, no scripts, no assets
from elsewhere) over the review service, behind AdminAuth sessions.

Every page but /ui/login needs a session; without one the answer is a 303 to /ui/login and
nothing else. Every POST needs the session's CSRF token (see proxy.admin.auth).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from proxy.admin.auth import ADMIN_AUTH, AdminAuth, LoginThrottle, Session, setup_auth
from proxy.context import SERVICES
from proxy.review import MAX_REASON_CHARS, AuditEntry, ReviewError
from proxy.times import parse_since

Page = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOGIN_PATH = "/ui/login"
QUEUE_STATES = ("quarantine", "block")
QUEUE_PAGE = 100
AUDIT_PAGE = 100
DASHBOARD_DAYS = 14
MAX_FILTER_CHARS = 200

# No scripts at all, styles only inline, nothing fetched from elsewhere, never framed.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

TEMPLATES = web.AppKey("admin_ui_templates", jinja2.Environment)
THROTTLE = web.AppKey("admin_ui_login_throttle", LoginThrottle)
# scrypt takes tens of MiB and milliseconds per login: bound how many run at once.
LOGIN_SLOTS = web.AppKey("admin_ui_login_slots", asyncio.Semaphore)


def setup_ui(app: web.Application) -> None:
    """Register the /ui/ routes. Call before any catch-all route."""
    setup_auth(app)
    app[TEMPLATES] = _environment()
    app[THROTTLE] = LoginThrottle()
    app[LOGIN_SLOTS] = asyncio.Semaphore(2)
    app.on_response_prepare.append(_secure_headers)
    router = app.router
    router.add_get("/ui", _to_queue)
    router.add_get(LOGIN_PATH, login_page)
    router.add_post(LOGIN_PATH, login_submit)
    router.add_post("/ui/logout", _action(logout))
    router.add_get("/ui/", _page(queue))
    router.add_get(r"/ui/decisions/{decision_id:\d{1,18}}", _page(decision))
    router.add_post(r"/ui/decisions/{decision_id:\d{1,18}}/approve", _action(approve))
    router.add_post(r"/ui/decisions/{decision_id:\d{1,18}}/deny", _action(deny))
    router.add_get("/ui/audit", _page(audit))
    router.add_get("/ui/dashboard", _page(dashboard))
    # Anything else under /ui/: a 404 for reviewers, the login page for everyone else.
    router.add_route("*", "/ui/{tail:.*}", _page(not_found))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("proxy.admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_ts
    env.filters["size"] = format_size
    return env


def format_ts(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return ""
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/ui" or request.path.startswith("/ui/"):
        for name, value in _SECURITY_HEADERS.items():
            response.headers[name] = value


def see_other(location: str) -> web.Response:
    """303 to a path of ours (a response, not a raised HTTPException: aiohttp deprecates
    returning those, and the app's middleware returns what is raised)."""
    return web.Response(status=303, headers={"Location": location})


def _auth(request: web.Request) -> AdminAuth:
    return request.app[ADMIN_AUTH]


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    session: Session | None,
    status: int = 200,
) -> web.Response:
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(session=session, path=request.path, **context)
    )
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def _page(handler: Page) -> Handler:
    """A page that needs a session: without one, 303 to the login page and nothing else."""

    async def page(request: web.Request) -> web.StreamResponse:
        session = _auth(request).session(request)
        if session is None:
            return see_other(LOGIN_PATH)
        return await handler(request, session)

    return page


def _action(
    handler: Callable[[web.Request, Session, MultiDictProxy[Any]], Awaitable[web.StreamResponse]],
) -> Handler:
    """A POST that changes something: needs a session and its CSRF token, else nothing happens."""

    async def action(request: web.Request) -> web.StreamResponse:
        auth = _auth(request)
        session = auth.session(request)
        if session is None:
            return see_other(LOGIN_PATH)
        form = await request.post()
        submitted = form.get("csrf")
        if not isinstance(submitted, str) or not auth.csrf_ok(request, session, submitted):
            return render(
                request,
                "refused.html",
                {"message": "This form was not sent from an Airlock page (CSRF check failed)."},
                session=session,
                status=403,
            )
        return await handler(request, session, form)

    return action


async def _to_queue(request: web.Request) -> web.StreamResponse:
    return see_other("/ui/")


# Login and logout


async def login_page(request: web.Request) -> web.StreamResponse:
    auth = _auth(request)
    if auth.session(request) is not None:
        return see_other("/ui/")
    return _login_form(request, auth, error=None, username="", status=200)


def _login_form(
    request: web.Request, auth: AdminAuth, *, error: str | None, username: str, status: int
) -> web.Response:
    nonce = auth.login_nonce(request)
    response = render(
        request,
        "login.html",
        {"csrf": nonce, "error": error, "username": username},
        session=None,
        status=status,
    )
    auth.set_login_cookie(response, nonce)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    auth = _auth(request)
    form = await request.post()
    username = _field(form, "username", 200)
    password = _field(form, "password", 1024)
    if not auth.login_csrf_ok(request, _field(form, "csrf", 512)):
        return _login_form(
            request,
            auth,
            error="The login form expired or came from elsewhere; please try again.",
            username=username,
            status=403,
        )
    throttle = request.app[THROTTLE]
    client = request.remote or "unknown"
    if throttle.blocked(client):
        return _login_form(
            request,
            auth,
            error="Too many failed logins from this address; wait a few minutes.",
            username=username,
            status=429,
        )
    async with request.app[LOGIN_SLOTS]:
        cookie = await asyncio.to_thread(auth.login, username, password)
    if cookie is None:
        throttle.failed(client)
        return _login_form(
            request, auth, error="Wrong username or password.", username=username, status=401
        )
    throttle.succeeded(client)
    response = see_other("/ui/")
    auth.set_session_cookie(response, cookie)
    return response


async def logout(
    request: web.Request, session: Session, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    response = see_other(LOGIN_PATH)
    _auth(request).logout(session, response)
    return response


# Pages


async def queue(request: web.Request, session: Session) -> web.StreamResponse:
    query = request.query
    state = query.get("state", "")
    states: Sequence[str] = (state,) if state in QUEUE_STATES else QUEUE_STATES
    repo = query.get("repo", "").strip()[:MAX_FILTER_CHARS]
    fmt = query.get("format", "").strip()[:MAX_FILTER_CHARS]
    offset = _int(query.get("offset"), maximum=10**9) or 0
    decisions = await request.app[SERVICES].review.queue(
        states=states,
        repo=repo or None,
        format=fmt or None,
        limit=QUEUE_PAGE,
        offset=offset,
    )
    return render(
        request,
        "queue.html",
        {
            "decisions": decisions,
            "state": state if state in QUEUE_STATES else "",
            "states": QUEUE_STATES,
            "repo": repo,
            "format": fmt,
            "offset": offset,
            "page": QUEUE_PAGE,
            "more": len(decisions) >= QUEUE_PAGE,
        },
        session=session,
    )


async def decision(request: web.Request, session: Session) -> web.StreamResponse:
    return await _decision_page(request, session, error=None, reason="", status=200)


async def _decision_page(
    request: web.Request, session: Session, *, error: str | None, reason: str, status: int
) -> web.StreamResponse:
    decision_id = int(request.match_info["decision_id"])
    detail = await request.app[SERVICES].review.detail(decision_id)
    if detail is None:
        return render(
            request,
            "missing.html",
            {"what": f"Decision {decision_id}"},
            session=session,
            status=404,
        )
    done = request.query.get("done")
    return render(
        request,
        "decision.html",
        {
            "detail": detail,
            "d": detail.decision,
            "error": error,
            "reason": reason,
            "done": done if done in ("approved", "denied") else None,
            "max_reason_chars": MAX_REASON_CHARS,
        },
        session=session,
        status=status,
    )


async def approve(
    request: web.Request, session: Session, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    return await _review(request, session, form, "approve")


async def deny(
    request: web.Request, session: Session, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    return await _review(request, session, form, "deny")


async def _review(
    request: web.Request, session: Session, form: MultiDictProxy[Any], action: str
) -> web.StreamResponse:
    decision_id = int(request.match_info["decision_id"])
    # Longer than the service takes: it refuses with its message rather than being cut here.
    reason = _field(form, "reason", 64 * 1024).strip()
    review = request.app[SERVICES].review
    if not reason:
        error = "A reason is required."
    else:
        act = review.approve if action == "approve" else review.deny
        try:
            await act(decision_id, reviewer=session.username, reason=reason)
        except ReviewError as err:
            error = str(err)
        else:
            done = "approved" if action == "approve" else "denied"
            return see_other(f"/ui/decisions/{decision_id}?done={done}")
    return await _decision_page(request, session, error=error, reason=reason, status=400)


async def audit(request: web.Request, session: Session) -> web.StreamResponse:
    since_text = request.query.get("since", "").strip()[:40]
    before = _timestamp(request.query.get("before"))
    error = None
    since = 0.0
    if since_text:
        try:
            since = parse_since(since_text)
        except ValueError:
            error = (
                "Since must be a date (YYYY-MM-DD), a date and time (YYYY-MM-DDTHH:MM) in UTC, "
                "or an age such as 24h or 7d."
            )
    entries = (
        []
        if error
        else await request.app[SERVICES].review.audit(since=since, limit=AUDIT_PAGE, before=before)
    )
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "since": since_text,
            "before": before,
            "error": error,
            "older": _older(entries),
        },
        session=session,
        status=400 if error else 200,
    )


def _older(entries: Sequence[AuditEntry]) -> float | None:
    """Where the next page starts: before the oldest entry shown."""
    if len(entries) < AUDIT_PAGE:
        return None
    return min(e.ts for e in entries)


def _timestamp(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


async def dashboard(request: web.Request, session: Session) -> web.StreamResponse:
    board = await request.app[SERVICES].review.dashboard(days=DASHBOARD_DAYS)
    return render(
        request,
        "dashboard.html",
        {"board": board, "chart": verdict_chart(board.days, board.by_verdict)},
        session=session,
    )


async def not_found(request: web.Request, session: Session) -> web.StreamResponse:
    return render(request, "missing.html", {"what": "This page"}, session=session, status=404)


# Helpers


VERDICT_COLOURS = {"allow": "#2e7d32", "quarantine": "#ef8f00", "block": "#c62828"}
CHART_HEIGHT = 120
BAR_WIDTH = 28
BAR_GAP = 8


def verdict_chart(days: Sequence[str], by_verdict: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Stacked columns, one per day, as SVG rectangles (no script, no external asset)."""
    totals = [
        sum(counts[i] for counts in by_verdict.values() if i < len(counts))
        for i in range(len(days))
    ]
    peak = max(totals, default=0) or 1
    columns = []
    for i, day in enumerate(days):
        x = i * (BAR_WIDTH + BAR_GAP)
        y = CHART_HEIGHT
        segments = []
        for verdict, counts in sorted(by_verdict.items()):
            count = counts[i] if i < len(counts) else 0
            if count <= 0:
                continue
            height = max(1, round(count * CHART_HEIGHT / peak))
            y -= height
            segments.append(
                {
                    "verdict": verdict,
                    "count": count,
                    "y": y,
                    "height": height,
                    "colour": VERDICT_COLOURS.get(verdict, "#607d8b"),
                }
            )
        columns.append({"day": day, "x": x, "total": totals[i], "segments": segments})
    return {
        "columns": columns,
        "width": max(1, len(days) * (BAR_WIDTH + BAR_GAP)),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "colours": VERDICT_COLOURS,
        "peak": peak,
    }


def _field(form: MultiDictProxy[Any], name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _int(text: str | None, *, maximum: int) -> int | None:
    if text is None or not text.isdigit() or len(text) > 20:
        return None
    return min(int(text), maximum)
