"""A minimal RESP connection for the two hot pub/sub paths (the API's multiplexed
subscriber and the worker's pipelined publisher), where redis-py's per-command overhead
dominated the profile. Parsing is hiredis; everything else stays on redis-py."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from urllib.parse import unquote, urlparse

import hiredis


def command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def open_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (TLS for rediss://) and authenticate from the URL's credentials."""
    parsed = urlparse(url)
    context = ssl.create_default_context() if parsed.scheme == "rediss" else None
    reader, writer = await asyncio.open_connection(
        parsed.hostname or "127.0.0.1", parsed.port or 6379, ssl=context)
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
    return reader, writer


class _PubConn:
    """One connection's state: commands queued this loop iteration, replies awaited."""

    __slots__ = ("out", "pending", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: deque[asyncio.Future[int]] = deque()
        self.out: list[bytes] = []

    def flush(self) -> None:
        """One socket write for every PUBLISH of the loop iteration (order kept)."""
        out, self.out = self.out, []
        if not self.writer.is_closing():
            self.writer.write(b"".join(out))

    def fail_all(self, error: BaseException) -> None:
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)


class PipelinedPublisher:
    """PUBLISH over one connection without waiting for each reply before the next write:
    replies arrive in order and resolve futures FIFO. Reconnects lazily after a failure;
    a connection's unanswered publishes fail with it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: _PubConn | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> _PubConn:
        conn = self._conn
        if conn is not None and not conn.writer.is_closing():
            return conn
        async with self._lock:
            if self._conn is None or self._conn.writer.is_closing():
                reader, writer = await open_connection(self._url)
                self._conn = _PubConn(writer)
                self._reader_task = asyncio.create_task(self._read(reader, self._conn))
            return self._conn

    @staticmethod
    def publish_nowait(conn: _PubConn, channel: bytes, payload: bytes) -> asyncio.Future[int]:
        """Queue now (callers keep their own order), written this loop iteration."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        conn.pending.append(future)
        if not conn.out:
            loop.call_soon(conn.flush)
        conn.out.append(command(b"PUBLISH", channel, payload))
        return future

    async def _read(self, reader: asyncio.StreamReader, conn: _PubConn) -> None:
        parser = hiredis.Reader()
        error: BaseException = ConnectionError("Redis publisher connection closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = conn.pending.popleft()
                    if future.done():
                        continue
                    if isinstance(reply, hiredis.ReplyError):
                        future.set_exception(ConnectionError(str(reply)))
                    else:
                        future.set_result(int(reply))
        except (OSError, hiredis.ProtocolError) as exc:
            error = ConnectionError(f"Redis publisher connection failed: {type(exc).__name__}")
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
