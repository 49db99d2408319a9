"""The fast pipelined connection: commands without waiting for each reply before the next
write. Each call queues a batch of commands (written with everything else of this loop
iteration) and gets a future of the batch's replies. Hot-path commands only (PUBLISH, the
enqueue transaction, cleanup DELs); everything else stays on redis-py. The connection's
guarantees (timeouts, liveness, backpressure, reconnects) are `link.Link`'s."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis

from orbyt.shared.redis.link import PING, Conn, Link, command

log = logging.getLogger("orbyt.redis")


# Gets a command's reply as the reader parses it, or the ConnectionError that lost it.
Check = Callable[[Any], None]


class _Batch:
    __slots__ = ("check", "future", "left", "replies")

    def __init__(
        self, future: asyncio.Future[list[Any]] | None, count: int, check: Check | None = None
    ) -> None:
        self.future = future
        self.check = check
        self.left = count
        self.replies: list[Any] = []


class PipelinedConnection(Link):
    """Batches of commands over one connection; a lost connection fails every batch still
    owed a reply at once, and the next use reconnects."""

    # a worker's reply frames kept for resuming (`worker.publisher.Replays`); None: off
    replays: Any = None

    def new_conn(self, writer: asyncio.StreamWriter) -> Conn:
        conn = super().new_conn(writer)
        conn.pending = deque()
        return conn

    @staticmethod
    def send(conn: Conn, *commands: bytes, urgent: bool = True) -> asyncio.Future[list[Any]]:
        """Queue encoded commands now (callers keep their own order); replies later.
        `urgent=False` lets the write wait for the coalescing window."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if conn.closed:
            future.set_exception(ConnectionError("Redis connection lost"))
            return future
        conn.pending.append(_Batch(future, len(commands)))
        conn.queue(*commands, urgent=urgent)
        return future

    @staticmethod
    def send_checked(conn: Conn, cmd: bytes, check: Check, urgent: bool = False) -> None:
        """Queue one command whose reply the reader hands to `check` as it arrives (or the
        ConnectionError that lost it): no future and no event-loop callback per command.
        A stream's deltas go this way, one PUBLISH per token."""
        if conn.closed:
            _call(check, ConnectionError("Redis connection lost"))
            return
        conn.pending.append(_Batch(None, 1, check))
        conn.queue(cmd, urgent=urgent)

    async def execute(self, *commands: bytes) -> list[Any]:
        return await self.send(await self.connection(), *commands)

    def on_reply(self, conn: Conn, reply: Any) -> None:
        pending: deque[_Batch] = conn.pending
        if not pending:
            log.warning("unexpected reply from Redis skipped (%s)", type(reply).__name__)
            return
        batch = pending[0]
        if batch.check is not None:
            pending.popleft()
            _call(batch.check, reply)
            return
        batch.replies.append(reply)
        batch.left -= 1
        if batch.left == 0:
            pending.popleft()
            if batch.future is not None and not batch.future.done():
                batch.future.set_result(batch.replies)

    def ping(self, conn: Conn) -> None:
        """A PING is a batch like any other, so replies stay in order."""
        self.send(conn, PING).add_done_callback(_retrieve)

    def owed(self, conn: Conn) -> bool:
        return bool(conn.pending)

    def lost(self, conn: Conn, error: ConnectionError) -> None:
        pending: deque[_Batch] = conn.pending
        while pending:
            batch = pending.popleft()
            if batch.check is not None:
                _call(batch.check, error)
            elif batch.future is not None and not batch.future.done():
                batch.future.set_exception(error)


def _call(check: Check, reply: Any) -> None:
    """Run a reply check inside the reader, which must never raise."""
    try:
        check(reply)
    except Exception:  # a bug in the check, not a Redis event
        log.exception("reply check failed")


def _retrieve(future: asyncio.Future[list[Any]]) -> None:
    if not future.cancelled():
        future.exception()


def send_and_forget(conn: Conn, *commands: bytes) -> None:
    """Queue commands whose replies nobody needs (a lost reply is not worth a warning)."""
    PipelinedConnection.send(conn, *commands, urgent=False).add_done_callback(_retrieve)


def publish(
    conn: Conn, channel: bytes, payload: bytes, urgent: bool = True
) -> asyncio.Future[list[Any]]:
    return PipelinedConnection.send(conn, command(b"PUBLISH", channel, payload), urgent=urgent)


def publish_checked(conn: Conn, channel: bytes, payload: bytes, check: Check) -> None:
    """PUBLISH within the coalescing window; `check` gets the receiver count (or the error)."""
    PipelinedConnection.send_checked(conn, command(b"PUBLISH", channel, payload), check)


def reply_error(replies: list[Any]) -> str | None:
    """The first error among a batch's replies (a MULTI's EXEC carries its own)."""
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            return str(reply)
        if isinstance(reply, list):
            nested = reply_error(reply)
            if nested:
                return nested
    return None
