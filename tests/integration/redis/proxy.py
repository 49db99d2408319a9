"""A loopback TCP proxy between Orbyt and Redis, run in its own thread, for chaos tests.

- `freeze()`: every connection open now goes silent in both directions without closing
  (what a NAT or load balancer that dropped its mapping, or a paused VM, looks like): bytes
  are swallowed, sockets stay open. Connections made afterwards work normally.
- `latency`: seconds added to every chunk in each direction (order kept, throughput not
  serialised behind the delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

from orbyt.cli.embedded_redis import free_port


class _Link:
    __slots__ = ("frozen", "writers")

    def __init__(self) -> None:
        self.frozen = False
        self.writers: list[asyncio.StreamWriter] = []


class Proxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target = target_port
        self.port = free_port()
        self.latency = 0.0
        self.accepted = 0
        self._links: list[_Link] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None

    def url(self, db: int = 0, scheme: str = "redis") -> str:
        return f"{scheme}://{self.host}:{self.port}/{db}"

    def start(self) -> Proxy:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("proxy did not start")
        return self

    def freeze(self) -> int:
        """Silence every connection open now (both directions); returns how many."""
        links = list(self._links)
        for link in links:
            link.frozen = True
        return len(links)

    def live_links(self) -> int:
        return sum(1 for link in self._links if not link.frozen)

    def stop(self) -> None:
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            future.result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self._links:
            for writer in link.writers:
                writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, self.host, self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        link = _Link()
        link.writers = [writer, up_writer]
        self._links.append(link)
        await asyncio.gather(
            self._pipe(reader, up_writer, link),
            self._pipe(up_reader, writer, link),
            return_exceptions=True,
        )

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, dst, link))
        try:
            while data := await src.read(65536):
                if not link.frozen:
                    queue.put_nowait((time.monotonic() + self.latency, data))
        finally:
            if not link.frozen:  # a frozen link never tells the other side anything
                await queue.put((0.0, b""))
                await sender
                with contextlib.suppress(Exception):
                    dst.close()

    @staticmethod
    async def _send(
        queue: asyncio.Queue[tuple[float, bytes]], dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not link.frozen:
                dst.write(data)
