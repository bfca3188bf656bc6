"""Webhook: events reach a real HTTP receiver, signed, retried on 5xx/429 and connection errors,
not retried on other 4xx, and never block or fail the code that sends them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

from proxy.errors import ConfigError
from proxy.metrics import Metrics
from proxy.settings import Settings
from proxy.webhook import Webhook, parse_retry_after
from tests.conftest import AirlockFactory
from tests.http import free_port
from tests.loop_thread import LoopThread

SECRET = "webhook-s3cret-value"


@dataclass(frozen=True)
class Hit:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real aiohttp server on 127.0.0.1 that answers with `answers` in turn, then 200."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hits.append(Hit(time.monotonic(), dict(request.headers), body))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.Response(status=status, headers=headers, text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks/airlock", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}/hooks/airlock"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The structlog events named `name` (the stdlib records carry the event dicts as `msg`)."""
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == name]


def test_retries_two_503s_then_delivers_the_same_signed_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    metrics = Metrics()

    async def scenario() -> tuple[Receiver, Webhook, float, float]:
        async with Receiver([(503, {}), (503, {})]) as receiver:
            hook = Webhook(
                receiver.url, secret=SECRET, retries=5, metrics=metrics, backoff_base_s=0.05
            )
            await hook.start()
            started = time.monotonic()
            hook.notify("blob_quarantined", {"sha256": "ab" * 32, "repo_id": "acme/evil"})
            returned = time.monotonic()
            await hook.close(timeout_s=10)
            return receiver, hook, started, returned

    receiver, hook, started, returned = asyncio.run(scenario())
    assert returned - started < 0.05  # notify does not wait for the network
    assert len(receiver.hits) == 3
    bodies = {hit.body for hit in receiver.hits}
    assert len(bodies) == 1  # every attempt sends the same event, same id
    body = receiver.hits[-1].body
    envelope = json.loads(body)
    assert set(envelope) == {"event", "id", "ts", "data"}
    assert envelope["event"] == "blob_quarantined"
    assert envelope["data"] == {"sha256": "ab" * 32, "repo_id": "acme/evil"}
    assert uuid.UUID(envelope["id"]).version == 4
    assert datetime.fromisoformat(envelope["ts"]).tzinfo is not None
    headers = receiver.hits[-1].headers
    assert headers["X-Airlock-Event"] == "blob_quarantined"
    assert headers["X-Airlock-Delivery"] == envelope["id"]
    assert headers["Content-Type"] == "application/json"
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Airlock-Signature"] == f"sha256={expected}"
    # Exponential backoff: 0.05 s, then 0.1 s.
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1
    assert (hook.delivered, hook.failed, hook.dropped) == (1, 0, 0)
    [delivered] = logged(caplog, "webhook_delivered")
    assert delivered["attempts"] == 3
    assert delivered["status"] == 200
    assert delivered["webhook_event"] == "blob_quarantined"
    assert delivered["event_id"] == envelope["id"]
    assert len(logged(caplog, "webhook_retrying")) == 2
    assert SECRET not in caplog.text and "/hooks/airlock" not in caplog.text
    text = metrics.render()[0].decode()
    assert 'airlock_webhook_events_total{outcome="delivered"} 1.0' in text


def test_a_400_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> tuple[Receiver, Webhook]:
        async with Receiver([(400, {})]) as receiver:
            hook = Webhook(receiver.url, retries=5, backoff_base_s=0.01)
            await hook.start()
            hook.notify("review_action", {"decision_id": 7, "action": "approve"})
            await hook.close(timeout_s=10)
            return receiver, hook

    receiver, hook = asyncio.run(scenario())
    assert len(receiver.hits) == 1
    assert "X-Airlock-Signature" not in receiver.hits[0].headers  # no secret, no signature
    assert (hook.delivered, hook.failed) == (0, 1)
    [failed] = logged(caplog, "webhook_failed")
    assert failed["attempts"] == 1 and failed["status"] == 400
    assert failed["reason"] == "not retryable"


def test_a_429_is_retried_after_its_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> tuple[Receiver, Webhook]:
        async with Receiver([(429, {"Retry-After": "1"})]) as receiver:
            hook = Webhook(receiver.url, retries=3, backoff_base_s=0.01)
            await hook.start()
            hook.notify("review_action", {"decision_id": 8})
            await hook.close(timeout_s=10)
            return receiver, hook

    receiver, hook = asyncio.run(scenario())
    assert len(receiver.hits) == 2
    assert receiver.hits[1].at - receiver.hits[0].at >= 0.95  # not the 0.01 s backoff
    assert hook.delivered == 1
    [retrying] = logged(caplog, "webhook_retrying")
    assert retrying["status"] == 429 and retrying["delay_s"] == 1.0


def test_an_unreachable_url_gives_up_after_the_retries_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    url = f"http://127.0.0.1:{free_port()}/hooks/airlock"

    async def scenario() -> Webhook:
        hook = Webhook(url, secret=SECRET, retries=2, backoff_base_s=0.01)
        await hook.start()
        hook.notify("blob_quarantined", {"sha256": "cd" * 32})
        await hook.close(timeout_s=10)
        return hook

    hook = asyncio.run(scenario())
    assert (hook.delivered, hook.failed) == (0, 1)
    [failed] = logged(caplog, "webhook_failed")
    assert failed["attempts"] == 3  # the first try and two retries
    assert failed["status"] is None
    assert failed["error"] == "ClientConnectorError"
    assert failed["reason"] == "retries exhausted"
    assert SECRET not in caplog.text


def test_notify_never_raises_and_a_full_queue_drops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> tuple[Receiver, Webhook]:
        async with Receiver() as receiver:
            hook = Webhook(receiver.url, queue_size=2, backoff_base_s=0.01)
            circular: dict[str, Any] = {}
            circular["self"] = circular
            hook.notify("a", {"n": 1})  # queued before start: sent once started
            hook.notify("b", {"when": datetime(2024, 1, 2)})  # not JSON: sent as a string
            hook.notify("c", {"n": 3})  # the queue is full
            hook.notify("d", circular)  # cannot be serialised
            await hook.start()
            await hook.close(timeout_s=10)
            hook.notify("e", {"n": 5})  # after close
            return receiver, hook

    receiver, hook = asyncio.run(scenario())
    sent = [json.loads(hit.body) for hit in receiver.hits]
    assert [e["event"] for e in sent] == ["a", "b"]  # in order
    assert sent[1]["data"] == {"when": "2024-01-02 00:00:00"}
    assert (hook.delivered, hook.failed, hook.dropped) == (2, 0, 3)
    reasons = [e["reason"] for e in logged(caplog, "webhook_dropped")]
    assert reasons == ["queue_full", "closed"]
    assert len(logged(caplog, "webhook_event_unserialisable")) == 1


def test_close_gives_up_on_a_receiver_that_keeps_failing() -> None:
    async def scenario() -> tuple[Webhook, float]:
        async with Receiver([(503, {})] * 100) as receiver:
            hook = Webhook(receiver.url, retries=50, backoff_base_s=0.2)
            await hook.start()
            hook.notify("a", {})
            hook.notify("b", {})
            started = time.monotonic()
            await hook.close(timeout_s=0.5)
            return hook, time.monotonic() - started

    hook, took = asyncio.run(scenario())
    assert took < 2
    assert hook.delivered == 0 and hook.dropped == 2  # the one being retried and the queued one


def test_retry_after_dates_and_backoff_cap() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    hook = Webhook("http://127.0.0.1:9/x", backoff_base_s=0.5, backoff_cap_s=4.0)
    assert [hook.backoff_s(n, None) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert hook.backoff_s(1, 100_000.0) == hook.max_retry_after_s


def test_webhook_settings() -> None:
    assert Webhook.from_settings(Settings()) is None
    settings = Settings.from_env(
        {
            "AIRLOCK_WEBHOOK_URL": "https://hooks.example/airlock?token=abc",
            "AIRLOCK_WEBHOOK_SECRET": SECRET,
            "AIRLOCK_WEBHOOK_RETRIES": "2",
        }
    )
    hook = Webhook.from_settings(settings)
    assert hook is not None
    assert hook.url == "https://hooks.example/airlock?token=abc"
    assert hook.retries == 2 and hook.host == "hooks.example"
    for bad in ("ftp://hooks.example/x", "hooks.example/x", "http://", "http://[::1"):
        with pytest.raises(ConfigError) as error:
            Settings(webhook_url=bad)
        assert error.value.variable == "AIRLOCK_WEBHOOK_URL"
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"AIRLOCK_WEBHOOK_RETRIES": "-1"})
    assert error.value.variable == "AIRLOCK_WEBHOOK_RETRIES"


def test_airlock_starts_the_webhook_and_drains_it_on_stop(make_airlock: AirlockFactory) -> None:
    receiver = Receiver([(503, {})])
    loop = LoopThread("receiver")
    loop.start()
    try:
        loop.run(receiver.__aenter__())
        airlock = make_airlock(webhook_url=receiver.url, webhook_secret=SECRET)
        hook = airlock.services.webhook
        assert hook is not None
        # From another thread than Airlock's loop, as the pipeline's callers never do; still safe.
        hook.notify("review_action", {"decision_id": 1, "action": "approve"})
        airlock.stop()  # close() drains the queue, including the retry after the 503
        assert len(receiver.hits) == 2
        body = receiver.hits[-1].body
        assert json.loads(body)["data"] == {"decision_id": 1, "action": "approve"}
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert receiver.hits[-1].headers["X-Airlock-Signature"] == f"sha256={expected}"
    finally:
        loop.run(receiver.__aexit__(None, None, None))
        loop.stop()
