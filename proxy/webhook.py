"""Webhook: Airlock's events, POSTed as JSON to one URL, in order, with retries.

    notify(event, data)  -> never blocks, never raises: the event is queued (bounded; when the
                            queue is full it is dropped, logged and counted)
    one background task  -> POST {"event", "id", "ts", "data"} with headers
                              X-Airlock-Event: <event>, X-Airlock-Delivery: <id>, and (when a
                              secret is set) X-Airlock-Signature: sha256=<hex HMAC-SHA256 of body>
                            2xx: delivered. Connection error, timeout, 5xx, 429: retried with
                            exponential backoff (or after Retry-After), up to `retries` times.
                            Any other answer (4xx, 3xx): given up at once.

Every attempt of one event sends the same bytes, so a receiver can drop duplicates by `id`, and
the signature covers `ts`, so it can refuse old replays. Each outcome is logged with the event
name, id, attempts and last status; the secret and the URL (which may embed a token) never are.
Events are sent one at a time, so a receiver that is down holds the later events back until the
current one is delivered or given up, and receives events in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from proxy import __version__
from proxy.metrics import Metrics
from proxy.settings import Settings

log = structlog.get_logger(__name__)

QUEUE_SIZE = 1000
ATTEMPT_TIMEOUT_S = 10.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# A Retry-After longer than this is shortened to it: one receiver must not stall the queue.
MAX_RETRY_AFTER_S = 300.0
CLOSE_TIMEOUT_S = 5.0
USER_AGENT = f"airlock/{__version__}"


@dataclass(frozen=True)
class _Event:
    event: str
    id: str
    body: bytes


class Webhook:
    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        retries: int = 5,
        metrics: Metrics | None = None,
        queue_size: int = QUEUE_SIZE,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        self.url = url
        self.host = urlsplit(url).hostname or "?"
        self._secret = secret.encode() if secret else None
        self.retries = retries
        self.metrics = metrics
        self.attempt_timeout_s = attempt_timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self._queue: asyncio.Queue[_Event] = asyncio.Queue(maxsize=queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Outcomes since start-up (also in /metrics when `metrics` is given).
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> Webhook | None:
        if settings.webhook_url is None:
            return None
        return cls(
            settings.webhook_url,
            secret=settings.webhook_secret,
            retries=settings.webhook_retries,
            metrics=metrics,
        )

    # --- the caller's side ----------------------------------------------------------------

    def notify(self, event: str, data: dict[str, Any]) -> None:
        """Queue `event` for delivery. Returns at once and never raises. Safe to call from the
        event loop (the usual case) and from other threads once `start()` has run."""
        try:
            item = self._envelope(event, data)
        except Exception:  # notify must never fail its caller
            log.exception("webhook_event_unserialisable", webhook_event=event)
            self._count("dropped")
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and running is not self._loop:
            try:
                self._loop.call_soon_threadsafe(self._enqueue, item)
            except RuntimeError:  # the loop is closed
                self._drop(item, "closed")
            return
        self._enqueue(item)

    def _envelope(self, event: str, data: dict[str, Any]) -> _Event:
        event_id = str(uuid.uuid4())
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # Serialised now: the event is what `data` was when it happened, and a later change to
        # the caller's dict cannot reach the receiver. Values JSON lacks become strings.
        body = json.dumps(
            {"event": event, "id": event_id, "ts": ts, "data": data},
            default=str,
            separators=(",", ":"),
        ).encode()
        return _Event(event, event_id, body)

    def _enqueue(self, item: _Event) -> None:
        if self._closed:
            self._drop(item, "closed")
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop(item, "queue_full")

    def _drop(self, item: _Event, reason: str) -> None:
        self._count("dropped")
        log.warning(
            "webhook_dropped",
            webhook_event=item.event,
            event_id=item.id,
            reason=reason,
            dropped_total=self.dropped,
        )

    def _count(self, outcome: str) -> None:
        if outcome == "delivered":
            self.delivered += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.dropped += 1
        if self.metrics is not None:
            self.metrics.webhook_event(outcome)

    # --- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # trust_env=False, as for upstream: Airlock's own traffic does not take the egress proxy.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.attempt_timeout_s),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        self._task = asyncio.create_task(self._run(), name="airlock-webhook")
        log.info("webhook_started", host=self.host, signed=self._secret is not None)

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop taking events, give the queued ones up to `timeout_s` to go out, then stop.
        Whatever is left is logged and counted as dropped."""
        self._closed = True
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "closing")
            self._queue.task_done()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- delivery ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
            except asyncio.CancelledError:  # close() ran out of time during this one
                self._drop(item, "closing")
                raise
            except Exception:  # one bad event must not stop the ones after it
                log.exception("webhook_failed", webhook_event=item.event, event_id=item.id)
                self._count("failed")
            finally:
                self._queue.task_done()

    def _headers(self, item: _Event) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "X-Airlock-Event": item.event,
            "X-Airlock-Delivery": item.id,
        }
        if self._secret is not None:
            digest = hmac.new(self._secret, item.body, hashlib.sha256).hexdigest()
            headers["X-Airlock-Signature"] = f"sha256={digest}"
        return headers

    async def _deliver(self, item: _Event) -> None:
        assert self._session is not None
        headers = self._headers(item)
        attempts = 0
        while True:
            attempts += 1
            status: int | None = None
            error: str | None = None
            retry_after_s: float | None = None
            try:
                async with self._session.post(
                    self.url, data=item.body, headers=headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    retry_after_s = parse_retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            outcome = {
                "webhook_event": item.event,
                "event_id": item.id,
                "attempts": attempts,
                "status": status,
            }
            if status is not None and 200 <= status < 300:
                self._count("delivered")
                log.info("webhook_delivered", **outcome)
                return
            retryable = status is None or status == 429 or status >= 500
            if not retryable or attempts > self.retries:
                self._count("failed")
                log.warning(
                    "webhook_failed",
                    **outcome,
                    error=error,
                    reason="not retryable" if not retryable else "retries exhausted",
                )
                return
            delay_s = self.backoff_s(attempts, retry_after_s)
            log.info("webhook_retrying", **outcome, error=error, delay_s=round(delay_s, 3))
            await asyncio.sleep(delay_s)

    def backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): the receiver's
        Retry-After when it gave one, else base * 2^(attempt-1); both capped."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        delay_s: float = self.backoff_base_s * 2.0 ** max(attempt - 1, 0)
        return min(delay_s, self.backoff_cap_s)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta_s: float = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, delta_s)
