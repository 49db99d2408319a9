"""Opening one RESP connection: the encoding of commands, and the connect (Sentinel's
master, TLS, keepalive, AUTH, SELECT, ROLE) every hot-path link starts with."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import hiredis
from redis.asyncio.sentinel import Sentinel

from orbyt.shared.redis.clients import master_address
from orbyt.shared.redis.options import RedisOptions


def command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def open_connection(
    opts: RedisOptions, manager: Sentinel | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the server (or Sentinel's master) with TLS if asked, authenticate, select
    the database and, behind Sentinel, check the server is the master; all within
    `connect_timeout`."""
    async with asyncio.timeout(opts.connect_timeout):
        host, port = await master_address(opts, manager)
        context = opts.ssl_context()
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None
        )
        try:
            _keepalive(writer)
            await _handshake(reader, writer, opts)
        except BaseException:
            writer.transport.abort()
            raise
    return reader, writer


def _keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def _handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opts: RedisOptions
) -> None:
    commands = []
    if opts.password:
        user = [opts.username.encode()] if opts.username else []
        commands.append(command(b"AUTH", *user, opts.password.encode()))
    if opts.db:
        commands.append(command(b"SELECT", b"%d" % opts.db))
    if opts.sentinel:
        commands.append(command(b"ROLE"))
    if not commands:
        return
    writer.write(b"".join(commands))
    parser = hiredis.Reader()
    replies: list[Any] = []
    while len(replies) < len(commands):
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("Redis closed the connection during the handshake")
        parser.feed(data)
        while len(replies) < len(commands) and (reply := parser.gets()) is not False:
            replies.append(reply)
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis refused the connection: {str(reply)[:80]}")
    if opts.sentinel and not (isinstance(replies[-1], list) and replies[-1][0] == b"master"):
        raise ConnectionError("Sentinel named a server that is not a master (failover running)")
