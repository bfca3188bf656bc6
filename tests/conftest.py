"""Shared fixtures: a loopback-only guard, the fake hub, Airlock, and the real client."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from proxy import log
from proxy.scan import Scanner
from proxy.settings import Settings
from tests.airlock_server import RunningAirlock
from tests.client import HubClient, client_python
from tests.fakehub import FakeHub

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: Any) -> None:
    if isinstance(address, tuple):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Nothing in the test process may reach beyond loopback (client subprocesses only ever get
    loopback endpoints)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def quiet_json_logs() -> Iterator[None]:
    """Airlock's JSON logs go through stdlib logging (pytest shows them for failing tests)
    instead of structlog's default printer, which writes past pytest's capture from server
    threads."""
    with open(os.devnull, "w") as devnull:
        log.configure("info", stream=devnull)
        yield
    structlog.reset_defaults()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(page_size=3) as fake:
        yield fake


AirlockFactory = Callable[..., RunningAirlock]


@pytest.fixture
def make_airlock(tmp_path: Path, hub: FakeHub) -> Iterator[AirlockFactory]:
    """Start Airlock against the fake hub; keyword arguments override settings."""
    started: list[RunningAirlock] = []

    def make(*, scanner: Scanner | None = None, **overrides: Any) -> RunningAirlock:
        values: dict[str, Any] = {
            "upstream": hub.url,
            "data_dir": tmp_path / f"airlock-data-{len(started)}",
            "upstream_cdn_hosts": ("127.0.0.1",),
            "upstream_read_timeout_s": 3.0,
            "upstream_connect_timeout_s": 3.0,
            "head_wait_s": 5.0,
        }
        values.update(overrides)
        airlock = RunningAirlock(Settings(**values), scanner=scanner).start()
        started.append(airlock)
        return airlock

    yield make
    for airlock in started:
        airlock.stop()


@pytest.fixture
def airlock(make_airlock: AirlockFactory) -> RunningAirlock:
    return make_airlock()


@pytest.fixture
def client(airlock: RunningAirlock, tmp_path: Path) -> HubClient:
    if not client_python().exists():
        pytest.fail(f"client environment missing at {client_python()}; run tests/run.sh")
    home = tmp_path / "client-home"
    home.mkdir()
    return HubClient(airlock.url, home)
