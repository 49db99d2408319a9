"""One self-healing RESP connection, the base of the fast pipelined connection and the
API's pub/sub hub (the hot paths where redis-py's per-command overhead dominated).

What every link guarantees:
- connecting is bounded (`connect_timeout`, TLS and AUTH/SELECT included), TCP keepalive is
  on, and with Sentinel the master is asked of the sentinels on every connect (ROLE checked);
- liveness: every `ping_interval` a quiet link sends a PING; a link with replies owed and
  nothing received for `dead_after` seconds is declared dead (half-open: a NAT dropped it,
  a VM paused) and aborted, so it is noticed within `ping_interval + dead_after`;
- the output buffer is bounded: past `buffer_limit` bytes unsent writers are asked to
  `drain()`, past four times that the link is declared dead (Redis stopped reading);
- losing the link fails everything owed at once (the subclass's `lost`), and the next use
  reconnects: callers share one attempt, and failed attempts are spaced by a jittered
  exponential backoff (at most `backoff_cap`, so Redis back means requests back within it);
- the reader never raises: a protocol error ends the link, an unexpected reply is logged and
  skipped by the subclass;
- an outage is dated: `lost_at` is when the latest one began (the connection lost, or a first
  attempt failed with none live), the clock the reply-resume grace windows run on.

Writes coalesce: commands queued in one loop iteration leave in one write; non-urgent ones
may wait `coalesce` seconds so a busy worker makes hundreds of writes a second, not one per
frame.

A little over 300 lines: connect, keepalive, idle PING, backpressure and reconnection are
one connection's lifecycle, shared by the pipelined connection and the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from orbyt.shared.redis.clients import options, sentinel_manager
from orbyt.shared.redis.connect import command, open_connection
from orbyt.shared.redis.options import RedisOptions

__all__ = ["PING", "Conn", "Link", "Liveness", "command", "open_connection"]

log = logging.getLogger("orbyt.redis")


PING = command(b"PING")


@dataclass(frozen=True, slots=True)
class Liveness:
    """How a link notices it is dead (module docstring); `Settings.redis_*` carry them."""

    ping_interval: float = 1.0
    dead_after: float = 3.0
    buffer_limit: int = 8 << 20
    backoff_base: float = 0.05
    backoff_cap: float = 1.0


class Conn:
    """One live connection: its writer, commands queued for the next write, replies owed
    (`pending`, for the pipelined connection), and what the liveness check counts."""

    __slots__ = (
        "backlogged",
        "closed",
        "coalesce",
        "last_flush",
        "limit",
        "out",
        "pending",
        "pings",
        "quiet",
        "rx",
        "seen",
        "timer",
        "urgent",
        "writer",
    )

    def __init__(self, writer: asyncio.StreamWriter, coalesce: float, limit: int) -> None:
        self.writer = writer
        self.pending: Any = None  # the subclass's bookkeeping of replies owed
        self.out: list[bytes] = []
        self.coalesce = coalesce
        self.last_flush = 0.0
        self.urgent = False  # a latency-critical command is queued: write this iteration
        self.limit = limit
        self.backlogged = False  # over `limit` unsent: writers should `drain()`
        self.closed = False
        self.rx = 0  # reads so far; `seen` is its value at the last liveness tick
        self.seen = 0
        self.quiet = 0.0  # seconds with nothing received
        self.pings = 0  # PINGs owed a PONG
        self.timer: asyncio.TimerHandle | None = None

    def schedule(self, loop: asyncio.AbstractEventLoop, urgent: bool) -> None:
        """Called for the first command queued since the last write, or an urgent one."""
        if urgent:
            if not self.urgent:
                self.urgent = True
                loop.call_soon(self.flush)
            return
        due = self.last_flush + self.coalesce
        if due <= loop.time():
            loop.call_soon(self.flush)
        else:
            loop.call_at(due, self.flush)

    def queue(self, *data: bytes, urgent: bool = True) -> None:
        """Queue encoded commands for the next write (see `schedule`)."""
        if not self.out or (urgent and not self.urgent):
            self.schedule(asyncio.get_running_loop(), urgent)
        self.out.extend(data)

    def flush(self) -> None:
        """One socket write for every command queued since the last one (order kept)."""
        self.urgent = False
        out, self.out = self.out, []
        self.last_flush = asyncio.get_running_loop().time()
        if not out or self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():  # lost just now: the reader fails what is owed
            return
        try:
            transport.write(b"".join(out))
        except (RuntimeError, OSError):  # closed under us (uvloop raises): same
            self.abort()
            return
        size = transport.get_write_buffer_size()
        self.backlogged = size > self.limit
        if size > 4 * self.limit:
            log.warning("Redis is not reading (%d bytes unsent); dropping the connection", size)
            self.abort()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class Link:
    """The connection management shared by the pipelined connection and the hub; the
    subclass handles replies (`on_reply`), says whether replies are owed (`owed`) and fails
    what it holds when the connection is lost (`lost`)."""

    name = "Redis"

    def __init__(
        self, url: str | RedisOptions, coalesce: float = 0.0, liveness: Liveness | None = None
    ) -> None:
        self._opts = options(url)
        self._coalesce = coalesce
        self._live = liveness or Liveness()
        self._manager: Sentinel | None = (
            sentinel_manager(self._opts) if self._opts.sentinel else None
        )
        self._conn: Conn | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._attempt: asyncio.Task[Conn] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.lost_at = -1e18  # loop time the latest outage began (module docstring)
        self._down = False  # within an outage: no live connection since `lost_at`

    def current(self) -> Conn | None:
        """The live connection, if there is one (no await)."""
        conn = self._conn
        return conn if conn is not None and not conn.closed else None

    async def connection(self) -> Conn:
        """The live connection, or one attempt to connect shared by every caller waiting
        for it (after a failed attempt, the next one waits out the backoff first)."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        attempt = self._attempt
        if attempt is None or attempt.done():
            attempt = self._attempt = asyncio.create_task(self._connect())
            attempt.add_done_callback(_retrieve)
        return await asyncio.shield(attempt)

    def reconnect_soon(self) -> None:
        """Start (or keep) an attempt to connect without waiting for it."""
        if self.current() is None and (self._attempt is None or self._attempt.done()):
            self._attempt = asyncio.create_task(self._connect())
            self._attempt.add_done_callback(_retrieve)

    def _outage(self, now: float) -> None:
        if not self._down:
            self._down = True
            self.lost_at = now

    async def _connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        wait = self._retry_at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            reader, writer = await open_connection(self._opts, self._manager)
        except (OSError, TimeoutError, RedisError) as exc:
            self._outage(loop.time())
            self._failures += 1
            delay = min(self._live.backoff_cap, self._live.backoff_base * 2**self._failures)
            self._retry_at = loop.time() + delay * random.uniform(0.5, 1.0)
            if self._failures == 1:
                log.warning("cannot connect to %s (%s); retrying", self.name, type(exc).__name__)
            raise ConnectionError(f"cannot connect to {self.name}: {type(exc).__name__}") from exc
        if self._failures:
            log.info("reconnected to %s", self.name)
        self._failures = 0
        self._down = False
        writer.transport.set_write_buffer_limits(high=self._live.buffer_limit)
        conn = self._conn = self.new_conn(writer)
        conn.timer = loop.call_later(self._live.ping_interval, self._tick, conn)
        self._reader_task = asyncio.create_task(self._read(reader, conn))
        return conn

    def new_conn(self, writer: asyncio.StreamWriter) -> Conn:
        return Conn(writer, self._coalesce, self._live.buffer_limit)

    async def drain(self, conn: Conn) -> None:
        """Wait until the connection's output buffer is back under its limit."""
        if conn.backlogged and not conn.closed:
            await conn.writer.drain()
            conn.backlogged = False

    def _tick(self, conn: Conn) -> None:
        """Liveness, every `ping_interval` (module docstring)."""
        if conn.closed:
            return
        live = self._live
        if conn.rx != conn.seen:
            conn.seen, conn.quiet = conn.rx, 0.0
        else:
            conn.quiet += live.ping_interval
        if self.owed(conn) or conn.pings:
            if conn.quiet >= live.dead_after:
                log.warning("%s did not answer for %.1f s; reconnecting", self.name, conn.quiet)
                self._end(conn, ConnectionError(f"{self.name} stopped answering"))
                return
        elif conn.quiet >= live.ping_interval:
            self.ping(conn)
        conn.timer = asyncio.get_running_loop().call_later(live.ping_interval, self._tick, conn)

    async def _read(self, reader: asyncio.StreamReader, conn: Conn) -> None:
        parser = hiredis.Reader()
        error = ConnectionError(f"{self.name} connection closed")
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                conn.rx += 1
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    self.on_reply(conn, reply)
        except (OSError, hiredis.ProtocolError) as exc:
            error = ConnectionError(f"{self.name} connection failed: {type(exc).__name__}")
        except Exception as exc:  # a bug in reply handling must not leave owed replies hanging
            log.warning("%s reader stopped: %s", self.name, type(exc).__name__)
            error = ConnectionError(f"{self.name} connection failed: {type(exc).__name__}")
        finally:
            self._end(conn, error)

    def _end(self, conn: Conn, error: ConnectionError) -> None:
        if conn.closed:
            return
        conn.closed = True
        if conn.timer is not None:
            conn.timer.cancel()
        if self._conn is conn:
            self._conn = None
            self._outage(asyncio.get_running_loop().time())
        conn.abort()
        self.lost(conn, error)

    def on_reply(self, conn: Conn, reply: Any) -> None:
        raise NotImplementedError

    def owed(self, conn: Conn) -> bool:
        raise NotImplementedError

    def lost(self, conn: Conn, error: ConnectionError) -> None:
        raise NotImplementedError

    def ping(self, conn: Conn) -> None:
        conn.pings += 1
        conn.queue(PING)

    def pong(self, conn: Conn) -> bool:
        """Account for a PONG; False if no PING was owed one (the reply is someone's)."""
        if conn.pings:
            conn.pings -= 1
            return True
        return False

    async def close(self) -> None:
        if self._attempt is not None and not self._attempt.done():
            self._attempt.cancel()
        conn = self._conn
        if conn is not None:
            self._end(conn, ConnectionError(f"{self.name} connection closed"))
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        if self._manager is not None:
            for sentinel in self._manager.sentinels:
                with contextlib.suppress(Exception):
                    await sentinel.aclose()


def _retrieve(task: asyncio.Task[Conn]) -> None:
    if not task.cancelled():
        task.exception()  # every waiter got it; nobody waiting is no "never retrieved"
