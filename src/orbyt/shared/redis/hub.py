"""The API's pub/sub hub: one multiplexed connection per API process (DESIGN §6.2).

A single reader parses RESP push messages (hiredis) and fans frames out to bounded
per-request buffers. `subscribe` returns only once Redis has confirmed the subscription,
so a worker can never publish into the void. A request whose buffer overflows is dropped
alone. The connection is a `link.Link` (idle PING, half-open noticed, jittered reconnects).
The hub knows channels and bytes only; `api.exchange` gives the frames their meaning.

A lost connection (a Redis restart, a Sentinel failover, a half-open link) does not end the
subscriptions at once: each enters a *resuming* state for `resume` seconds (the grace
window, `Settings.reply_resume_s`) while the hub reconnects and re-SUBSCRIBEs every live
channel in one command. Once Redis confirms a channel again, its reader gets
`SubscriptionResumed` (once): messages published meanwhile may be lost, and the reader asks
its publisher to replay from the next sequence it expects. A subscription not re-confirmed
within the window fails with a clear reason. `resume=0` restores fail-at-once. New
`subscribe` calls succeed as soon as Redis is reachable again.

A little over 300 lines: re-subscribing after a loss is part of the hub's own connection
lifecycle (the subscriptions it keeps are what it re-confirms).
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
RESUME_S = 10.0  # default grace window (`Settings.reply_resume_s`)


class SubscriptionFailed(Exception):
    """A subscription broke: connection lost, the caller fell too far behind, or its owner
    closed it (the API side; the worker's `ReplyGone` means nobody listens any more)."""


class SubscriptionResumed(Exception):
    """The hub re-subscribed after losing its connection: messages published while it was
    away may be lost (ask the publisher to replay); the subscription goes on."""


class Subscription:
    """One channel's buffer. `next` waits with one timer per subscription, re-armed only
    when it fires before the reader's latest deadline (not one `asyncio.timeout` per frame).
    `resuming` is true while the hub reconnects (`lost_at`: when it lost the connection)."""

    __slots__ = (
        "_deadline",
        "_limit",
        "_timer",
        "_waiter",
        "channel",
        "failed",
        "frames",
        "lost_at",
        "resumed",
        "resuming",
    )

    def __init__(self, channel: bytes, limit: int) -> None:
        self.channel = channel
        self.frames: deque[bytes] = deque()
        self._limit = limit
        self.failed: str | None = None
        self.resuming = False
        self.resumed = False  # re-subscribed: `next` raises SubscriptionResumed once
        self.lost_at = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def push(self, data: bytes) -> None:
        if self.failed:
            return
        if len(self.frames) >= self._limit:
            self.fail("the client is reading too slowly")
            return
        self.frames.append(data)
        self._wake()

    def fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
        self.resuming = False
        self._wake()

    def suspend(self, now: float) -> None:
        """The hub lost its connection: wait for it to come back (`lost_at` kept from the
        first loss until the subscription is confirmed again)."""
        if not self.resuming:
            self.resuming = True
            self.lost_at = now

    def resume(self) -> None:
        """Redis confirmed the subscription again."""
        if self.resuming and not self.failed:
            self.resuming = False
            self.resumed = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms a new timer
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:  # the reader waited again since: its new deadline
            self._timer = loop.call_at(self._deadline, self._expire)
        else:
            waiter.set_exception(TimeoutError())

    async def next(self, timeout: float) -> bytes:
        """The next message; TimeoutError if none comes within `timeout`; SubscriptionFailed
        if broken; SubscriptionResumed once after a re-subscription (module docstring)."""
        frames = self.frames
        while not frames:
            if self.failed:
                raise SubscriptionFailed(self.failed)
            if self.resumed:
                self.resumed = False
                raise SubscriptionResumed(self.channel.decode())
            loop = asyncio.get_running_loop()
            self._deadline = deadline = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._expire)
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return frames.popleft()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class PubSubHub(Link):
    name = "Redis pub/sub"

    def __init__(
        self,
        redis_url: str | RedisOptions,
        queue_limit: int,
        liveness: Liveness | None = None,
        resume: float = RESUME_S,
        coalesce: float = 0.0,
    ) -> None:
        """`coalesce`: how long an UNSUBSCRIBE may wait to share a write (nobody awaits
        it); SUBSCRIBEs always leave at once."""
        super().__init__(redis_url, coalesce=coalesce, liveness=liveness)
        self._limit = queue_limit
        self._resume = resume
        self._subs: dict[bytes, Subscription] = {}
        self._confirm: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._reviving: set[bytes] = set()  # re-SUBSCRIBEd after a loss, not confirmed yet
        self._revive: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        return len(self._subs)

    @property
    def resuming(self) -> int:
        return sum(1 for sub in self._subs.values() if sub.resuming)

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
            sub.close()
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]
            conn = self.current()
            if conn is not None:  # nobody waits for it: a busy API sends them together
                conn.queue(command(b"UNSUBSCRIBE", sub.channel), urgent=False)

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
            return
        if channel in self._reviving:
            self._reviving.discard(channel)
            sub = self._subs.get(channel)
            if sub is not None:
                sub.resume()

    def owed(self, conn: Conn) -> bool:
        return bool(self._confirm) or bool(self._reviving)

    def lost(self, conn: Conn, error: ConnectionError) -> None:
        if self._subs or self._confirm:
            log.warning("reply pub/sub connection lost (%s)", error)
        for waiters in self._confirm.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ConnectionError("Redis pub/sub connection lost"))
        self._confirm.clear()
        self._reviving.clear()
        if self._resume <= 0 or self._closing:
            for sub in self._subs.values():
                sub.fail(LOST)
            self._subs.clear()
            return
        now = asyncio.get_running_loop().time()
        for sub in self._subs.values():
            sub.suspend(now)
        if self._subs and (self._revive is None or self._revive.done()):
            self._revive = asyncio.create_task(self._revive_all())

    async def _revive_all(self) -> None:
        """Reconnect and re-SUBSCRIBE every resuming channel until each is confirmed again
        or its grace window ran out (then it fails with a clear reason)."""
        revived = 0
        try:
            while waiting := self._waiting():
                try:
                    conn = await self.connection()
                except ConnectionError:
                    await asyncio.sleep(0.05)  # `connection` spaces attempts itself
                    continue
                channels = [s.channel for s in waiting if s.channel not in self._reviving]
                if channels:
                    self._reviving.update(channels)
                    conn.queue(command(b"SUBSCRIBE", *channels))
                    revived += len(channels)
                await self._confirmations(conn, min(s.lost_at for s in waiting) + self._resume)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave subscriptions hanging
            log.warning("reply pub/sub resume stopped: %s", type(exc).__name__)
            for sub in self._subs.values():
                if sub.resuming:
                    sub.fail(LOST)
        if revived:
            log.info("reply pub/sub resumed: %d channel(s) re-subscribed", revived)

    def _waiting(self) -> list[Subscription]:
        """The subscriptions still resuming; those past their window fail."""
        now = asyncio.get_running_loop().time()
        waiting = []
        for sub in list(self._subs.values()):
            if not sub.resuming:
                continue
            if now - sub.lost_at >= self._resume:
                del self._subs[sub.channel]
                sub.fail(f"{LOST} and could not resume within {self._resume:g} s")
            else:
                waiting.append(sub)
        return waiting

    async def _confirmations(self, conn: Conn, until: float) -> None:
        """Wait until the re-SUBSCRIBEd channels are confirmed, the connection is lost
        again, or `until` (loop time)."""
        loop = asyncio.get_running_loop()
        while self._reviving and not conn.closed and loop.time() < until:
            await asyncio.sleep(0.02)

    _closing = False

    async def close(self) -> None:
        self._closing = True
        if self._revive is not None:
            self._revive.cancel()
        await super().close()
        for sub in self._subs.values():
            sub.fail(LOST)
            sub.close()
        self._subs.clear()
