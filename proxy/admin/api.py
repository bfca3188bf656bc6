"""The JSON admin API under /admin/api/: what the review CLI and automation use.

Every request needs `Authorization: Bearer <admin token>` (AIRLOCK_ADMIN_TOKENS); the token's
name is recorded as the reviewer. Bearer tokens are never sent by browsers on their own, so
these endpoints need no CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from proxy.admin.auth import setup_auth
from proxy.context import SERVICES
from proxy.errors import ConfigError
from proxy.review import ReviewError

PREFIX = "/admin/api"
MAX_LIMIT = 1000
Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def setup_api(app: web.Application) -> None:
    """Register the admin API routes. Call before any catch-all route."""
    setup_auth(app)
    router = app.router
    router.add_get(f"{PREFIX}/decisions", _authed(list_decisions))
    router.add_get(rf"{PREFIX}/decisions/{{decision_id:\d{{1,18}}}}", _authed(show_decision))
    router.add_post(
        rf"{PREFIX}/decisions/{{decision_id:\d{{1,18}}}}/{{action:approve|deny}}",
        _authed(review_decision),
    )
    router.add_get(f"{PREFIX}/audit", _authed(audit))
    router.add_get(f"{PREFIX}/dashboard", _authed(dashboard))
    router.add_get(f"{PREFIX}/policy", _authed(show_policy))
    router.add_post(f"{PREFIX}/policy/reload", _authed(reload_policy))
    router.add_post(f"{PREFIX}/rescan", _authed(rescan))
    router.add_route("*", f"{PREFIX}/{{tail:.*}}", _authed(not_found))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _authed(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def guarded(request: web.Request) -> web.StreamResponse:
        principal = setup_auth(request.app).bearer(request)
        if principal is None:
            response = _error(401, "an admin bearer token is required (AIRLOCK_ADMIN_TOKENS)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="airlock-admin"'
            return response
        return await handler(request, principal)

    return guarded


def _int(request: web.Request, name: str, default: int, *, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer"}),
            content_type="application/json",
        ) from None
    if value < 0:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must not be negative"}),
            content_type="application/json",
        )
    return min(value, maximum) if maximum is not None else value


def _float(request: web.Request, name: str) -> float:
    raw = request.query.get(name, "")
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be a Unix timestamp"}),
            content_type="application/json",
        ) from None


async def list_decisions(request: web.Request, principal: str) -> web.StreamResponse:
    review = request.app[SERVICES].review
    states = [s for s in request.query.get("state", "quarantine,block").split(",") if s]
    views = await review.queue(
        states=states,
        repo=request.query.get("repo") or None,
        format=request.query.get("format") or None,
        limit=_int(request, "limit", 100, maximum=MAX_LIMIT),
        offset=_int(request, "offset", 0),
    )
    return web.json_response({"decisions": [v.to_json() for v in views]})


async def show_decision(request: web.Request, principal: str) -> web.StreamResponse:
    decision_id = int(request.match_info["decision_id"])
    detail = await request.app[SERVICES].review.detail(decision_id)
    if detail is None:
        return _error(404, f"there is no decision #{decision_id}")
    return web.json_response(detail.to_json())


async def review_decision(request: web.Request, principal: str) -> web.StreamResponse:
    decision_id = int(request.match_info["decision_id"])
    try:
        body: Any = await request.json()
    except ValueError:
        return _error(400, 'the body must be JSON: {"reason": "..."}')
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        return _error(400, 'the body must be JSON: {"reason": "..."}')
    review = request.app[SERVICES].review
    act = review.approve if request.match_info["action"] == "approve" else review.deny
    try:
        view = await act(decision_id, reviewer=principal, reason=reason)
    except ReviewError as exc:
        status = 404 if "no decision" in str(exc) else 400
        return _error(status, str(exc))
    return web.json_response(view.to_json())


async def audit(request: web.Request, principal: str) -> web.StreamResponse:
    entries = await request.app[SERVICES].review.audit(
        since=_float(request, "since"),
        limit=_int(request, "limit", 1000, maximum=10_000),
        before=_float(request, "before") or None,
    )
    return web.json_response({"entries": [e.to_json() for e in entries]})


async def dashboard(request: web.Request, principal: str) -> web.StreamResponse:
    board = await request.app[SERVICES].review.dashboard(
        days=max(1, _int(request, "days", 14, maximum=366))
    )
    return web.json_response(board.to_json())


async def show_policy(request: web.Request, principal: str) -> web.StreamResponse:
    policy = request.app[SERVICES].pipeline.policy
    return web.json_response(
        {"version": policy.version, "source": policy.source, "mode": policy.mode.value}
    )


async def reload_policy(request: web.Request, principal: str) -> web.StreamResponse:
    try:
        policy = await request.app[SERVICES].review.reload_from_file(actor=principal)
    except ConfigError as exc:
        return _error(400, f"the policy was not reloaded: {exc}")
    return web.json_response({"version": policy.version, "source": policy.source})


async def rescan(request: web.Request, principal: str) -> web.StreamResponse:
    everything = request.query.get("all", "") in ("1", "true", "yes")
    review = request.app[SERVICES].review
    await review.rescan(actor=principal, everything=everything)
    return web.json_response({"started": True, "everything": everything}, status=202)


async def not_found(request: web.Request, principal: str) -> web.StreamResponse:
    return _error(404, f"no admin endpoint {request.method} {request.path}")
