"""The raw pipelined RESP connection on the hot path, against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from orbyt.shared.redis.fast import PipelinedConnection, publish, publish_checked, reply_error
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


async def test_checked_commands_hand_their_replies_over_in_order(
    redis_server: RedisServer,
) -> None:
    """`send_checked` (a stream's deltas): the reader hands each reply to its check, in
    order with the future-backed batches around it; a lost connection hands over the error."""
    url = redis_server.new_db_url()
    conn = PipelinedConnection(url, coalesce=0.002)
    admin = Redis.from_url(url)
    pubsub = admin.pubsub()
    try:
        await pubsub.subscribe("listened")
        c = await conn.connection()
        seen: list[object] = []
        first = conn.send(c, command(b"SET", b"a", b"1"))
        publish_checked(c, b"listened", b"x", seen.append)
        publish_checked(c, b"nobody-listens", b"y", seen.append)
        last = conn.send(c, command(b"GET", b"a"))
        assert await first == [b"OK"] and await last == [b"1"]
        assert seen == [1, 0]  # replies in order, before the batch queued after them
        slow = PipelinedConnection(url, coalesce=30.0)  # non-urgent commands wait to be sent
        s = await slow.connection()
        assert await slow.execute(command(b"PING")) == [b"PONG"]  # a write: the window starts
        lost: list[object] = []
        PipelinedConnection.send_checked(s, command(b"PING"), lost.append)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        for _ in range(40):
            if lost:
                break
            await asyncio.sleep(0.05)
        assert len(lost) == 1 and isinstance(lost[0], ConnectionError)
        await slow.close()
    finally:
        await pubsub.aclose()
        await admin.aclose()
        await conn.close()
