"""The API's pub/sub hub: one multiplexed connection per API process (DESIGN §6.2).

A single reader parses RESP push messages (hiredis) and fans frames out to bounded
per-request buffers. `subscribe` returns only once Redis has confirmed the subscription,
so a worker can never publish into the void. A request whose buffer overflows is dropped
alone. The connection is a `link.Link`: a lost or half-open connection (noticed by the idle
PING) fails every in-flight subscription at once with a clear reason, and the next
`subscribe` reconnects. The hub knows channels and bytes only; `api.exchange` gives the
frames their meaning.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from orbyt.shared.redis.link import Conn, Link, Liveness, command
from orbyt.shared.redis.options import RedisOptions

log = logging.getLogger("orbyt.api.pubsub")

LOST = "the gateway lost its connection to Redis"


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


class PubSubHub(Link):
    name = "Redis pub/sub"

    def __init__(
        self, redis_url: str | RedisOptions, queue_limit: int, liveness: Liveness | None = None
    ) -> None:
        super().__init__(redis_url, liveness=liveness)
        self._limit = queue_limit
        self._subs: dict[bytes, Subscription] = {}
        self._confirm: dict[bytes, deque[asyncio.Future[None]]] = {}

    @property
    def active(self) -> int:
        return len(self._subs)

    async def subscribe(self, channel: str, timeout: float = 5.0) -> Subscription:
        """Subscribe and wait for Redis's confirmation; ConnectionError if Redis cannot be
        reached or the connection is lost meanwhile, TimeoutError past `timeout`."""
        conn = await self.connection()
        key = channel.encode()
        sub = Subscription(key, self._limit)
        self._subs[key] = sub
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(key, deque()).append(future)
        conn.queue(command(b"SUBSCRIBE", key))
        try:
            async with asyncio.timeout(timeout):
                await future
        except BaseException:
            if self._subs.get(key) is sub:
                del self._subs[key]
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]
            conn = self.current()
            if conn is not None:
                conn.queue(command(b"UNSUBSCRIBE", sub.channel))

    def on_reply(self, conn: Conn, msg: Any) -> None:
        if isinstance(msg, list) and len(msg) >= 3:
            kind = msg[0]
            if kind == b"message":
                sub = self._subs.get(msg[1])
                if sub is not None:
                    sub.push(msg[2])
                return
            if kind == b"subscribe":
                self._confirmed(msg[1])
                return
            if kind == b"unsubscribe":
                return
        if (msg == b"PONG" or (isinstance(msg, list) and msg[:1] == [b"pong"])) and self.pong(conn):
            return
        log.warning("unexpected pub/sub reply from Redis skipped (%s)", type(msg).__name__)

    def _confirmed(self, channel: bytes) -> None:
        waiters = self._confirm.get(channel)
        if waiters:
            future = waiters.popleft()
            if not waiters:
                del self._confirm[channel]
            if not future.done():
                future.set_result(None)

    def owed(self, conn: Conn) -> bool:
        return bool(self._confirm)

    def lost(self, conn: Conn, error: ConnectionError) -> None:
        if self._subs or self._confirm:
            log.warning("reply pub/sub connection lost (%s)", error)
        for sub in self._subs.values():
            sub.fail(LOST)
        self._subs.clear()
        for waiters in self._confirm.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ConnectionError("Redis pub/sub connection lost"))
        self._confirm.clear()
