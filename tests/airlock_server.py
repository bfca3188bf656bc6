"""Airlock running in a background thread of the test process, on a loopback port."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from aiohttp import web

from cache.registry import Registry
from proxy.app import create_app
from proxy.context import SERVICES, Services
from proxy.scan import Scanner
from proxy.settings import Settings
from tests.loop_thread import LoopThread


class RunningAirlock:
    def __init__(self, settings: Settings, *, scanner: Scanner | None = None) -> None:
        self.settings = settings
        self.scanner = scanner
        self._loop = LoopThread("airlock")
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self) -> Services:
        assert self._runner is not None
        return self._runner.app[SERVICES]

    def start(self) -> RunningAirlock:
        self._loop.start()
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        app = create_app(self.settings, scanner=self.scanner)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            max_line_size=self.settings.max_header_bytes,
            max_field_size=self.settings.max_header_bytes,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.settings.port if self.port else 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._runner is not None:
            self._loop.run(self._runner.cleanup())
            self._runner = None
        self._loop.stop()

    def registry(self) -> Registry:
        """A direct, synchronous registry connection for assertions."""
        return Registry(self.settings.data_dir / "registry.sqlite3")

    def blob_files(self, folder: str = "blobs") -> list[Path]:
        return sorted((self.settings.data_dir / folder).iterdir())

    def __enter__(self) -> RunningAirlock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
