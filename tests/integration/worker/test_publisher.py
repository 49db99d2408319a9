"""The publisher on a real redis-server: frame order and `seq`, coalesced writes,
heartbeats, and a reply nobody hears cancelling the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from orbyt.shared.contract import (
    DELTA,
    DONE,
    ERROR,
    HEARTBEAT,
    START,
    ErrorMeta,
    RouteMeta,
    StartMeta,
)
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.worker.publisher import Publisher, ReplyGone

from .conftest import Frames

META = RouteMeta(model="openai/m", provider="openai", attempts=1, key_source="pool")


@pytest.fixture
async def conn(redis_url: str) -> AsyncIterator[PipelinedConnection]:
    connection = PipelinedConnection(redis_url, coalesce=0.002)
    yield connection
    await connection.close()


class Cancels:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_frames_are_numbered_without_gaps_in_order(
    conn: PipelinedConnection, redis: Redis
) -> None:
    pub = Publisher(conn, "orbyt:reply:t1", 10.0, Cancels())
    async with Frames(redis, "orbyt:reply:t1") as frames:
        await pub.start(StartMeta(worker="w1"))
        await pub.delta(b"data: first\n\n", META)
        for i in range(50):
            await pub.delta(b"data: %d\n\n" % i)
        await pub.done({**META, "usage": {"total_tokens": 3}})
        got = await frames.until_end()
    assert [f.seq for f in got] == list(range(53))
    assert [f.kind for f in got] == [START, DELTA] + [DELTA] * 50 + [DONE]
    assert got[0].meta == {"worker": "w1"} and got[1].meta == dict(META)
    assert [f.payload for f in got[2:-1]] == [b"data: %d\n\n" % i for i in range(50)]
    assert got[-1].meta == {**META, "usage": {"total_tokens": 3}}
    assert pub.closed


async def test_later_deltas_coalesce_into_one_write(redis_url: str, redis: Redis) -> None:
    """After the first delta (written at once), deltas queued together leave together, no
    sooner than `coalesce` after the previous write."""
    conn = PipelinedConnection(redis_url, coalesce=0.3)
    pub = Publisher(conn, "orbyt:reply:t2", 10.0, Cancels())
    loop = asyncio.get_running_loop()
    try:
        async with Frames(redis, "orbyt:reply:t2") as frames:
            await pub.delta(b"first", META)
            first_sent = loop.time()
            for i in range(20):
                await pub.delta(b"%d" % i)  # returns at once: replies checked by callback
            queued = loop.time()
            arrivals: list[float] = []
            while len(arrivals) < 21:
                await frames.drain(0.05)
                arrivals += [loop.time()] * (len(frames.frames) - len(arrivals))
        assert queued - first_sent < 0.1
        assert min(arrivals[1:]) - first_sent >= 0.2  # held for the coalescing window
        assert max(arrivals[1:]) - min(arrivals[1:]) < 0.1  # and then all at once
        assert [f.seq for f in frames.frames] == list(range(21))
    finally:
        await pub.close()
        await conn.close()


async def test_a_start_nobody_hears_cancels_the_job(conn: PipelinedConnection) -> None:
    cancels = Cancels()
    pub = Publisher(conn, "orbyt:reply:nobody", 10.0, cancels)
    await pub.start(StartMeta(worker="w1"))
    async with asyncio.timeout(2):
        while not cancels.count:
            await asyncio.sleep(0.01)
    assert pub.gone
    with pytest.raises(ReplyGone):
        await pub.delta(b"x", META)
    await pub.close()


async def test_an_error_frame_nobody_hears_is_not_an_exception(conn: PipelinedConnection) -> None:
    pub = Publisher(conn, "orbyt:reply:nobody2", 10.0, Cancels())
    await pub.error(ErrorMeta(status=502, headers={}, attempts=1), b"{}")
    assert pub.closed


async def test_heartbeats_while_quiet_and_none_after_close(
    conn: PipelinedConnection, redis: Redis
) -> None:
    pub = Publisher(conn, "orbyt:reply:t3", 0.05, Cancels())
    async with Frames(redis, "orbyt:reply:t3") as frames:
        await pub.start(StartMeta(worker="w1"))
        await frames.drain(0.3)
        await pub.error(ErrorMeta(status=500, headers={}, attempts=0), b"{}")
        got = await frames.until_end()
        after = await frames.drain(0.2)
    kinds = [f.kind for f in got]
    assert kinds[0] == START and kinds[-1] == ERROR
    assert kinds.count(HEARTBEAT) >= 3
    assert after == got  # nothing once closed
    assert [f.seq for f in got] == list(range(len(got)))
