"""Publishing reply frames for one job, with gap-free `seq`, heartbeats and cancel detection.

Frames go out on the worker's pipelined publisher connection: the frame is numbered and
written synchronously (so order and `seq` agree without a lock), then its reply is awaited.
A PUBLISH that reaches no subscriber means the API side is gone (client disconnected, API
crashed or gave up on pickup): the job is cancelled through the `cancel` callback it was
given (`Jobs.cancel`, the worker's one cancellation path), or, when the frame's reply is
awaited in the job itself, by `ReplyGone`. A lost Redis connection ends the job the same way
(`RedisLost`, a `ReplyGone`): no frame could reach the caller any more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from orbyt.shared.contract import (
    DELTA,
    DONE,
    ERROR,
    HEARTBEAT,
    START,
    ErrorMeta,
    FrameMeta,
    RouteMeta,
    StartMeta,
    encode_frame,
)
from orbyt.shared.redis.fast import PipelinedConnection, publish
from orbyt.shared.redis.link import Conn


class ReplyGone(Exception):
    """Nobody listens on the reply channel any more."""


class RedisLost(ReplyGone):
    """The connection to Redis failed: no frame can reach the caller (whose API side has
    lost its subscription too and answers with a clear error), so the job ends like one
    whose caller went away. An expected event (a Redis restart or failover), not a bug."""


class Publisher:
    def __init__(
        self,
        conn: PipelinedConnection,
        channel: str,
        heartbeat_interval: float,
        cancel: Callable[[], None],
    ) -> None:
        self._conn = conn
        self._channel = channel.encode()
        self._seq = 0
        self._interval = heartbeat_interval
        self._last = 0.0
        self._cancel = cancel
        self._beat: asyncio.Task[None] | None = None
        self.closed = False
        self.gone = False

    async def _connection(self) -> Conn:
        try:
            return self._conn.current() or await self._conn.connection()
        except ConnectionError as exc:
            self.gone = True
            raise RedisLost(self._channel.decode()) from exc

    def _next(self, kind: bytes, meta: FrameMeta | None, payload: bytes) -> bytes:
        """The next frame, numbered; the caller writes it before its next await."""
        frame = encode_frame(kind, self._seq, meta, payload)
        self._seq += 1
        self._last = asyncio.get_running_loop().time()
        return frame

    async def _send(
        self, kind: bytes, meta: FrameMeta | None, payload: bytes, urgent: bool = True
    ) -> None:
        conn = await self._connection()
        if self.closed:
            return
        # numbering and writing happen with no await in between: frames leave in seq order
        frame = self._next(kind, meta, payload)
        try:
            (receivers,) = await publish(conn, self._channel, frame, urgent)
        except ConnectionError as exc:
            self.gone = True
            raise RedisLost(self._channel.decode()) from exc
        if receivers == 0:
            self.gone = True
            raise ReplyGone(self._channel)

    async def start(self, meta: StartMeta) -> None:
        """Announce the pickup. Its reply is checked by callback, so the upstream call
        starts without waiting for a Redis round trip (nobody listening cancels the job)."""
        conn = await self._connection()
        frame = self._next(START, meta, b"")
        publish(conn, self._channel, frame, True).add_done_callback(self._on_reply)
        self._beat = asyncio.create_task(self._heartbeat())

    async def delta(self, payload: bytes, meta: RouteMeta | None = None) -> None:
        """The first delta (it carries meta) goes out at once and its reply is awaited: it
        is the caller's first token. Later ones may wait a couple of milliseconds to share
        a write, and their replies are checked by callback, so relaying a stream does not
        yield to the event loop once per frame."""
        conn = self._conn.current()
        if meta is not None or conn is None:
            await self._send(DELTA, meta, payload, urgent=meta is not None)
            return
        if self.closed:
            return
        frame = self._next(DELTA, None, payload)
        publish(conn, self._channel, frame, False).add_done_callback(self._on_reply)
        if self.gone:
            raise ReplyGone(self._channel.decode())
        if conn.backlogged:  # Redis reads slower than the upstream writes: wait for it
            await self._conn.drain(conn)

    def _on_reply(self, future: asyncio.Future[list[Any]]) -> None:
        """A delta nobody received (caller gone) or that Redis refused ends the job."""
        if future.cancelled():
            return
        error = future.exception()
        if error is None and future.result()[0] != 0:
            return
        self.gone = True
        if not self.closed:
            self._cancel()

    async def done(self, meta: RouteMeta, payload: bytes = b"") -> None:
        await self._send(DONE, meta, payload)
        await self.close()

    async def error(self, meta: ErrorMeta, payload: bytes) -> None:
        with contextlib.suppress(ReplyGone):
            await self._send(ERROR, meta, payload)
        await self.close()

    async def close(self) -> None:
        self.closed = True
        if self._beat is not None and self._beat is not asyncio.current_task():
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
        self._beat = None

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            await asyncio.sleep(self._interval)
            if self.closed or loop.time() - self._last < self._interval * 0.9:
                continue
            try:
                await self._send(HEARTBEAT, None, b"")
            except ReplyGone:
                self._cancel()
                return
            except Exception:  # Redis trouble: the job's own publishes will surface it
                continue
