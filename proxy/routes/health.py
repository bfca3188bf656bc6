"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from proxy.context import SERVICES


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Airlock can do its job: the registry answers and the blob store is writable. Upstream is
    not checked: with upstream down Airlock still serves what it has cleared."""
    services = request.app[SERVICES]
    checks: dict[str, bool] = {}
    try:
        await services.registry.read(lambda r: r.counts())
        checks["registry"] = True
    except Exception:  # any failure means not ready
        checks["registry"] = False
    checks["blob_store"] = services.store.writable()
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
