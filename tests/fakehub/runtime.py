"""Running the three listeners on a private event loop in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

from .context import Ctx
from .records import Origin
from .server import build_app

ORIGINS: tuple[Origin, ...] = ("hub", "cdn", "cas")
SHUTDOWN_TIMEOUT_S = 0.5


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class ServerThread:
    """Owns the sockets, the loop thread and the aiohttp runners."""

    def __init__(self, ctx: Ctx, host: str, ports: dict[Origin, int]) -> None:
        self._ctx = ctx
        self._host = host
        self._ports = ports
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runners: list[web.AppRunner] = []
        self.urls: dict[Origin, str] = {}

    def start(self) -> None:
        socks: dict[Origin, socket.socket] = {}
        try:
            for origin in ORIGINS:
                socks[origin] = bind(self._host, self._ports.get(origin, 0))
        except OSError:
            for sock in socks.values():
                sock.close()
            raise
        for origin, sock in socks.items():
            self.urls[origin] = f"http://{self._host}:{sock.getsockname()[1]}"
        self._ctx.hub_url = self.urls["hub"]
        self._ctx.cdn_url = self.urls["cdn"]
        self._ctx.cas_url = self.urls["cas"]
        self._thread = threading.Thread(
            target=self._run, args=(socks,), name="fakehub", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("fakehub failed to start") from self._error

    def _run(self, socks: dict[Origin, socket.socket]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(socks))
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            for sock in socks.values():
                sock.close()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            # Handlers still inside a fault (a stall) outlive the shutdown timeout: end them
            # here rather than leave them pending when the loop closes.
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, socks: dict[Origin, socket.socket]) -> None:
        for origin in ORIGINS:
            runner = web.AppRunner(
                build_app(self._ctx, origin),
                access_log=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                handle_signals=False,
            )
            await runner.setup()
            self._runners.append(runner)
            await web.SockSite(runner, socks[origin]).start()

    async def _shutdown(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
        self._loop = None
        self._thread = None
