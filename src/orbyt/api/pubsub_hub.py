"""The API's pub/sub hub: one multiplexed connection per API process (DESIGN §6.2).

A single reader task parses RESP push messages (hiredis) and fans frames out to bounded
per-request buffers. `subscribe` returns only once Redis has confirmed the subscription,
so a worker can never publish into the void. A request whose buffer overflows is dropped
alone; a lost connection fails every in-flight subscription cleanly and is re-established.
The hub knows channels and bytes only; `api.exchange` gives the frames their meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import hiredis

from orbyt.shared.resp import command, open_connection

log = logging.getLogger("orbyt.api.pubsub")


class SubscriptionFailed(Exception):
    """A subscription broke: connection lost, the caller fell too far behind, or its owner
    closed it (the API side; the worker's `ReplyGone` means nobody listens any more)."""


class Subscription:
    __slots__ = ("_event", "_limit", "channel", "failed", "frames")

    def __init__(self, channel: bytes, limit: int) -> None:
        self.channel = channel
        self.frames: deque[bytes] = deque()
        self._event = asyncio.Event()
        self._limit = limit
        self.failed: str | None = None

    def push(self, data: bytes) -> None:
        if self.failed:
            return
        if len(self.frames) >= self._limit:
            self.fail("the client is reading too slowly")
            return
        self.frames.append(data)
        self._event.set()

    def fail(self, reason: str) -> None:
        self.failed = reason
        self._event.set()

    async def next(self, timeout: float) -> bytes:
        """The next message; TimeoutError if none comes in time; SubscriptionFailed if broken."""
        while not self.frames:
            if self.failed:
                raise SubscriptionFailed(self.failed)
            self._event.clear()
            async with asyncio.timeout(timeout):
                await self._event.wait()
        return self.frames.popleft()


class PubSubHub:
    def __init__(self, redis_url: str, queue_limit: int) -> None:
        self._url = redis_url
        self._limit = queue_limit
        self._subs: dict[bytes, Subscription] = {}
        self._confirm: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        self._out: list[bytes] = []  # commands of this loop iteration, written together

    def _write(self, cmd: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(cmd)

    def _flush(self) -> None:
        out, self._out = self._out, []
        writer = self._writer
        if out and writer is not None and not writer.is_closing():
            writer.write(b"".join(out))

    @property
    def active(self) -> int:
        return len(self._subs)

    async def _connect(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            return
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return
            reader, writer = await open_connection(self._url)
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader, writer))

    async def subscribe(self, channel: str, timeout: float = 5.0) -> Subscription:
        await self._connect()
        key = channel.encode()
        sub = Subscription(key, self._limit)
        self._subs[key] = sub
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(key, deque()).append(future)
        assert self._writer is not None
        self._write(command(b"SUBSCRIBE", key))
        try:
            async with asyncio.timeout(timeout):
                await future
        except BaseException:
            self._subs.pop(key, None)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]
            writer = self._writer
            if writer is not None and not writer.is_closing():
                self._write(command(b"UNSUBSCRIBE", sub.channel))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                parser.feed(data)
                while (msg := parser.gets()) is not False:
                    self._dispatch(msg)
        except (OSError, hiredis.ProtocolError) as exc:
            log.warning("reply pub/sub connection failed: %s", type(exc).__name__)
        finally:
            self._lost(writer)

    def _dispatch(self, msg: list[bytes]) -> None:
        kind = msg[0]
        if kind == b"message":
            sub = self._subs.get(msg[1])
            if sub is not None:
                sub.push(msg[2])
        elif kind == b"subscribe":
            waiters = self._confirm.get(msg[1])
            if waiters:
                future = waiters.popleft()
                if not waiters:
                    del self._confirm[msg[1]]
                if not future.done():
                    future.set_result(None)

    def _lost(self, writer: asyncio.StreamWriter) -> None:
        if self._writer is writer:
            self._writer = None
            self._out.clear()
        with contextlib.suppress(Exception):
            writer.close()
        for sub in self._subs.values():
            sub.fail("the gateway lost its connection to Redis")
        self._subs.clear()
        for waiters in self._confirm.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ConnectionError("Redis pub/sub connection lost"))
        self._confirm.clear()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
