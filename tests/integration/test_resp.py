"""The raw pipelined RESP connection on the hot path, against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from orbyt.shared.redis.fast import PipelinedConnection, publish, reply_error
from orbyt.shared.redis.link import command
from tests.gateway import RedisServer

pytestmark = pytest.mark.integration


async def test_batches_resolve_in_order_and_select_the_database(redis_server: RedisServer) -> None:
    url = redis_server.new_db_url()
    conn = PipelinedConnection(url, coalesce=0.002)
    try:
        replies = await asyncio.gather(
            *(
                conn.execute(command(b"SET", b"k%d" % i, b"v%d" % i), command(b"GET", b"k%d" % i))
                for i in range(200)
            )
        )
        assert [r[1] for r in replies] == [b"v%d" % i for i in range(200)]
        tx = await conn.execute(
            command(b"MULTI"), command(b"INCR", b"n"), command(b"INCR", b"n"), command(b"EXEC")
        )
        assert tx[-1] == [1, 2] and reply_error(tx) is None
        bad = await conn.execute(command(b"INCR", b"k1"))
        assert reply_error(bad)
        plain = Redis.from_url(url)
        assert await plain.get("k7") == b"v7"  # written to the URL's database, not db 0
        await plain.aclose()
        c = await conn.connection()
        assert (await publish(c, b"nobody-listens", b"x")) == [0]
    finally:
        await conn.close()


async def test_a_lost_connection_fails_pending_batches_and_reconnects(
    redis_server: RedisServer,
) -> None:
    url = redis_server.new_db_url()
    conn = PipelinedConnection(url)
    try:
        assert await conn.execute(command(b"PING")) == [b"PONG"]
        admin = Redis.from_url(url)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await admin.aclose()
        await asyncio.sleep(0.05)
        for _ in range(20):  # the next call after the loss reconnects
            try:
                assert await conn.execute(command(b"PING")) == [b"PONG"]
                break
            except ConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("never reconnected")
    finally:
        await conn.close()
