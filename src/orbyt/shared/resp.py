"""A minimal RESP connection for the two hot pub/sub paths (the API's multiplexed
subscriber and the worker's pipelined publisher), where redis-py's per-command overhead
dominated the profile. Parsing is hiredis; everything else stays on redis-py."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis


def command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def open_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (TLS for rediss://), authenticate from the URL's credentials and select the
    URL's database (`/N`)."""
    parsed = urlparse(url)
    context = ssl.create_default_context() if parsed.scheme == "rediss" else None
    reader, writer = await asyncio.open_connection(
        parsed.hostname or "127.0.0.1", parsed.port or 6379, ssl=context
    )
    if parsed.password:
        auth = [b"AUTH"]
        if parsed.username:
            auth.append(unquote(parsed.username).encode())
        auth.append(unquote(parsed.password).encode())
        writer.write(command(*auth))
        line = await reader.readline()
        if not line.startswith(b"+OK"):
            writer.close()
            raise ConnectionError("Redis rejected AUTH")
    db = parsed.path.lstrip("/")
    if db and db != "0":
        writer.write(command(b"SELECT", db.encode()))
        line = await reader.readline()
        if not line.startswith(b"+OK"):
            writer.close()
            raise ConnectionError(f"Redis rejected SELECT {db}")
    return reader, writer


class _Batch:
    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []


class _Conn:
    """One connection's state: commands queued for the next write, batches awaiting their
    replies (Redis answers in order).

    Writes coalesce: the first command after a quiet spell goes out on the next loop
    iteration; while commands keep coming, writes are spaced `coalesce` seconds apart, so
    a busy worker makes hundreds of writes a second instead of one per frame."""

    __slots__ = ("coalesce", "last_flush", "out", "pending", "urgent", "writer")

    def __init__(self, writer: asyncio.StreamWriter, coalesce: float) -> None:
        self.writer = writer
        self.pending: deque[_Batch] = deque()
        self.out: list[bytes] = []
        self.coalesce = coalesce
        self.last_flush = 0.0
        self.urgent = False  # a latency-critical command is queued: write this iteration

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

    def flush(self) -> None:
        """One socket write for every command queued since the last one (order kept)."""
        self.urgent = False
        out, self.out = self.out, []
        self.last_flush = asyncio.get_running_loop().time()
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    def fail_all(self, error: BaseException) -> None:
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(error)


class PipelinedConnection:
    """Commands over one connection without waiting for each reply before the next write:
    each call queues a batch of commands (written together with everything else of this
    loop iteration) and gets a future of the batch's replies. Hot-path commands only
    (PUBLISH, the enqueue transaction, cleanup DELs); reconnects lazily after a failure,
    and a connection's unanswered batches fail with it."""

    def __init__(self, url: str, coalesce: float = 0.0) -> None:
        self._url = url
        self._coalesce = coalesce
        self._conn: _Conn | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def current(self) -> _Conn | None:
        """The live connection, if there is one (no await)."""
        conn = self._conn
        return conn if conn is not None and not conn.writer.is_closing() else None

    async def connection(self) -> _Conn:
        conn = self._conn
        if conn is not None and not conn.writer.is_closing():
            return conn
        async with self._lock:
            if self._conn is None or self._conn.writer.is_closing():
                reader, writer = await open_connection(self._url)
                self._conn = _Conn(writer, self._coalesce)
                self._reader_task = asyncio.create_task(self._read(reader, self._conn))
            return self._conn

    @staticmethod
    def send(conn: _Conn, *commands: bytes, urgent: bool = True) -> asyncio.Future[list[Any]]:
        """Queue encoded commands now (callers keep their own order); replies later.
        `urgent=False` lets the write wait for the coalescing window."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        conn.pending.append(_Batch(future, len(commands)))
        if not conn.out or (urgent and not conn.urgent):
            conn.schedule(loop, urgent)
        conn.out.extend(commands)
        return future

    async def execute(self, *commands: bytes) -> list[Any]:
        return await self.send(await self.connection(), *commands)

    async def _read(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        parser = hiredis.Reader()
        error: BaseException = ConnectionError("Redis connection closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    batch = conn.pending[0]
                    batch.replies.append(reply)
                    batch.left -= 1
                    if batch.left == 0:
                        conn.pending.popleft()
                        if not batch.future.done():
                            batch.future.set_result(batch.replies)
        except (OSError, hiredis.ProtocolError) as exc:
            error = ConnectionError(f"Redis connection failed: {type(exc).__name__}")
        finally:
            if self._conn is conn:
                self._conn = None
            with contextlib.suppress(Exception):
                conn.writer.close()
            conn.fail_all(error)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task


def _retrieve(future: asyncio.Future[list[Any]]) -> None:
    if not future.cancelled():
        future.exception()


def send_and_forget(conn: _Conn, *commands: bytes) -> None:
    """Queue commands whose replies nobody needs (a lost reply is not worth a warning)."""
    PipelinedConnection.send(conn, *commands, urgent=False).add_done_callback(_retrieve)


def publish(
    conn: _Conn, channel: bytes, payload: bytes, urgent: bool = True
) -> asyncio.Future[list[Any]]:
    return PipelinedConnection.send(conn, command(b"PUBLISH", channel, payload), urgent=urgent)


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
