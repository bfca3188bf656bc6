"""A TCP relay between the client and Airlock that cuts one response part-way, so tests can
watch the real client resume from Airlock with a Range request."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from tests.loop_thread import LoopThread


class CuttingProxy:
    def __init__(self, target_port: int, *, cut_after_bytes: int) -> None:
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.cuts = 0
        self.port = 0
        self._loop = LoopThread("cutting-proxy")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._loop.start()
        self._loop.run(self._start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.run(self._stop())
        self._loop.stop()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            sent = 0
            with contextlib.suppress(ConnectionError):
                while data := await src.read(1 << 16):
                    if cut and self.cuts == 0 and sent + len(data) > self.cut_after_bytes:
                        dst.write(data[: self.cut_after_bytes - sent])
                        await dst.drain()
                        self.cuts += 1
                        break
                    dst.write(data)
                    await dst.drain()
                    sent += len(data)
            for stream in (dst, writer, up_writer):
                stream.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))
