"""Injectable faults and the table that decides which request gets which one."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

Endpoint = Literal["api", "resolve", "cdn"]
Point = Literal["pre", "hub-body", "cdn-body"]


class Fault(enum.Enum):
    CUT = "cut"  # full Content-Length, connection closed after half of the bytes
    STALL = "stall"  # some bytes, then silence for stall_s, then the rest
    WRONG_BYTES = "wrong_bytes"  # right length, some bytes flipped in the middle
    WRONG_LENGTH = "wrong_length"  # body and Content-Length off by length_delta
    SERVER_ERROR = "server_error"  # `status` (default 500) with a JSON error body
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After
    SLOW_HEAD = "slow_head"  # HEAD /resolve sleeps delay_s before answering
    GZIP = "gzip"  # Content-Encoding: gzip, chunked, no Content-Length
    THROTTLE = "throttle"  # body streamed at rate_bytes_s


BODY_FAULTS = frozenset(
    {Fault.CUT, Fault.STALL, Fault.WRONG_BYTES, Fault.WRONG_LENGTH, Fault.GZIP, Fault.THROTTLE}
)
STATUS_FAULTS = frozenset({Fault.SERVER_ERROR, Fault.RATE_LIMIT})


@dataclass(frozen=True)
class FaultRule:
    kind: Fault
    path: str | None = None  # repo file path (api endpoint: substring of the raw URL path)
    endpoint: Endpoint | None = None  # None: the byte-serving request of the file
    repo_id: str | None = None
    method: str | None = None
    times: int | None = 1  # None = forever
    status: int = 500
    stall_s: float = 15.0
    delay_s: float = 12.0
    rate_bytes_s: int = 1_000_000
    retry_after: int | None = None
    length_delta: int = -1
    throttle: bool = False  # also stream the body at rate_bytes_s (combines with body faults)


@dataclass(frozen=True)
class Site:
    """Where a request is in its handling, for fault matching."""

    point: Point
    endpoint: Endpoint
    method: str
    raw_path: str
    repo_ids: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()


def _applies(rule: FaultRule, site: Site) -> bool:
    if rule.repo_id is not None and rule.repo_id not in site.repo_ids:
        return False
    if site.point == "pre":
        if rule.kind is Fault.SLOW_HEAD:
            ok_endpoint = rule.endpoint == site.endpoint or (
                rule.endpoint is None and site.endpoint == "resolve"
            )
            if not ok_endpoint or site.method != "HEAD":
                return False
        elif rule.endpoint != site.endpoint or rule.kind not in (*STATUS_FAULTS, Fault.STALL):
            return False
        if rule.method is not None and rule.method != site.method:
            return False
    else:
        wanted: tuple[Endpoint | None, ...] = (
            (None, "cdn") if site.point == "cdn-body" else (None, "resolve")
        )
        if rule.endpoint not in wanted or rule.kind is Fault.SLOW_HEAD:
            return False
        if site.method != (rule.method or "GET"):
            return False
    if rule.path is None:
        return True
    if site.endpoint == "api":
        return rule.path in site.raw_path
    return rule.path in site.paths


class FaultTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def active(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(
        self, site: Site, usable: Callable[[FaultRule], bool] | None = None
    ) -> FaultRule | None:
        """Consume one use of the first rule matching ``site`` (and ``usable``)."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not _applies(rule, site) or (usable is not None and not usable(rule)):
                    continue
                if rule.times is not None:
                    if rule.times <= 1:
                        del self._rules[i]
                    else:
                        self._rules[i] = replace(rule, times=rule.times - 1)
                return rule
        return None
