"""What handlers share: the services built at start-up, and what a request learns on its way
(for the audit row and the `request_finished` log line)."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiohttp import web

from cache.blobs import BlobStore
from cache.registry import AsyncRegistry
from proxy.auth import Caller, Fingerprinter
from proxy.hub import FileRef, RepoRef
from proxy.metrics import Metrics
from proxy.pipeline import Pipeline
from proxy.review import ReviewService
from proxy.settings import Settings
from proxy.upstream import UpstreamClient
from proxy.webhook import Webhook


@dataclass
class Services:
    settings: Settings
    store: BlobStore
    registry: AsyncRegistry
    upstream: UpstreamClient
    pipeline: Pipeline
    fingerprinter: Fingerprinter
    metrics: Metrics
    review: ReviewService
    # None when AIRLOCK_WEBHOOK_URL is not set.
    webhook: Webhook | None = None


@dataclass
class RequestContext:
    request_id: str
    caller: Caller
    repo: RepoRef | None = None
    revision: str | None = None
    commit: str | None = None
    path: str | None = None
    verdict: str | None = None
    # Body bytes sent, when the handler sent the body itself (streaming).
    bytes_sent: int | None = None

    def about(self, file: FileRef) -> None:
        self.repo = file.repo
        self.revision = file.revision
        self.path = file.path
        structlog.contextvars.bind_contextvars(repo_id=file.repo.repo_id, path=file.path)


SERVICES = web.AppKey("services", Services)
CONTEXT = web.RequestKey("airlock_context", RequestContext)


def public_base(request: web.Request) -> str:
    """Airlock's URL as clients know it: AIRLOCK_PUBLIC_URL, else the request's own host."""
    configured = request.app[SERVICES].settings.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"
