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


class PipelinedPublisher:
    """PUBLISH over one connection without waiting for each reply before the next write:
    replies arrive in order and resolve futures FIFO. Reconnects lazily after a failure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[asyncio.Future[int]] = deque()
        self._out: list[bytes] = []  # commands written in this loop iteration, sent together
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        async with self._lock:
            if self._writer is None or self._writer.is_closing():
                reader, writer = await open_connection(self._url)
                self._writer = writer
                self._reader_task = asyncio.create_task(self._read(reader, writer))
            return self._writer

    def publish_nowait(self, writer: asyncio.StreamWriter, channel: bytes, payload: bytes
                       ) -> asyncio.Future[int]:
        """Write now (callers keep their own order), reply later."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append(future)
        if not self._out:
            loop.call_soon(self._flush, writer)
        self._out.append(command(b"PUBLISH", channel, payload))
        return future

    def _flush(self, writer: asyncio.StreamWriter) -> None:
        """One socket write for every PUBLISH of the loop iteration (order kept)."""
        out, self._out = self._out, []
        if writer.is_closing():
            return  # the reader task fails the pending futures
        writer.write(b"".join(out))

    async def writer(self) -> asyncio.StreamWriter:
        return await self._ensure()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        error: BaseException = ConnectionError("Redis publisher connection closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = self._pending.popleft()
                    if not future.done():
                        if isinstance(reply, hiredis.ReplyError):
                            future.set_exception(ConnectionError(str(reply)))
                        else:
                            future.set_result(int(reply))
        except (OSError, hiredis.ProtocolError) as exc:
            error = ConnectionError(f"Redis publisher connection failed: {type(exc).__name__}")
        finally:
            if self._writer is writer:
                self._writer = None
            with contextlib.suppress(Exception):
                writer.close()
            while self._pending:
                future = self._pending.popleft()
                if not future.done():
                    future.set_exception(error)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
