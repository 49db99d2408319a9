"""The API's pub/sub hub in-process, against a real redis-server (DESIGN §6.2)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from orbyt.shared.redis.hub import PubSubHub, SubscriptionFailed, SubscriptionResumed
from tests.gateway import RedisServer


@pytest.fixture
async def hub(redis_server: RedisServer) -> AsyncIterator[tuple[PubSubHub, Redis]]:
    url = redis_server.new_db_url()
    hub = PubSubHub(url, queue_limit=8)
    redis = Redis.from_url(url)
    try:
        yield hub, redis
    finally:
        await hub.close()
        await redis.aclose()


async def test_a_confirmed_subscription_receives_every_message_in_order(
    hub: tuple[PubSubHub, Redis],
) -> None:
    h, redis = hub
    sub = await h.subscribe("orbyt:reply:a")
    other = await h.subscribe("orbyt:reply:b")
    assert h.active == 2
    for i in range(5):  # subscribed means confirmed: nothing published now is lost
        assert await redis.publish("orbyt:reply:a", b"m%d" % i) == 1
    await redis.publish("orbyt:reply:b", b"other")
    assert [await sub.next(1.0) for _ in range(5)] == [b"m%d" % i for i in range(5)]
    assert await other.next(1.0) == b"other"
    with pytest.raises(TimeoutError):
        await sub.next(0.05)


async def test_unsubscribe_stops_delivery(hub: tuple[PubSubHub, Redis]) -> None:
    h, redis = hub
    sub = await h.subscribe("orbyt:reply:gone")
    h.unsubscribe(sub)
    h.unsubscribe(sub)  # twice is harmless
    assert h.active == 0
    for _ in range(50):  # the UNSUBSCRIBE goes out with the next loop iteration
        if await redis.publish("orbyt:reply:gone", b"x") == 0:
            break
        await asyncio.sleep(0.01)
    assert await redis.publish("orbyt:reply:gone", b"x") == 0


async def test_a_reader_too_slow_fails_alone(hub: tuple[PubSubHub, Redis]) -> None:
    h, redis = hub
    slow = await h.subscribe("orbyt:reply:slow")
    fine = await h.subscribe("orbyt:reply:fine")
    for i in range(9):  # one more than the limit
        await redis.publish("orbyt:reply:slow", b"%d" % i)
    await redis.publish("orbyt:reply:fine", b"ok")
    assert await fine.next(1.0) == b"ok"
    got = [await slow.next(1.0) for _ in range(8)]  # what was buffered is still read
    assert got == [b"%d" % i for i in range(8)]
    with pytest.raises(SubscriptionFailed, match="too slowly"):
        await slow.next(1.0)


async def test_a_closed_subscription_wakes_its_reader(hub: tuple[PubSubHub, Redis]) -> None:
    h, _ = hub
    sub = await h.subscribe("orbyt:reply:closed")
    reader = asyncio.create_task(sub.next(5.0))
    await asyncio.sleep(0.01)
    sub.fail("the client went away")
    with pytest.raises(SubscriptionFailed, match="client went away"):
        await reader


async def test_with_resume_off_a_lost_connection_fails_every_reply_and_the_hub_reconnects(
    redis_server: RedisServer,
) -> None:
    url = redis_server.new_db_url()
    h = PubSubHub(url, queue_limit=8, resume=0)
    redis = Redis.from_url(url)
    try:
        subs = [await h.subscribe(f"orbyt:reply:{i}") for i in range(3)]
        readers = [asyncio.create_task(s.next(5.0)) for s in subs]
        await asyncio.sleep(0.01)
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        for reader in readers:
            with pytest.raises(SubscriptionFailed, match="lost its connection"):
                await reader
        assert h.active == 0
        again = await h.subscribe("orbyt:reply:again")
        assert await redis.publish("orbyt:reply:again", b"back") == 1
        assert await again.next(1.0) == b"back"
    finally:
        await h.close()
        await redis.aclose()


async def test_a_lost_connection_resumes_every_subscription(
    hub: tuple[PubSubHub, Redis],
) -> None:
    h, redis = hub
    subs = [await h.subscribe(f"orbyt:reply:{i}") for i in range(3)]
    await redis.publish("orbyt:reply:0", b"before")
    readers = [asyncio.create_task(s.next(5.0)) for s in subs[1:]]
    await asyncio.sleep(0.01)
    await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert await subs[0].next(1.0) == b"before"  # what was received is still read
    for reader in readers:  # woken once, re-subscribed: time to ask for a replay
        with pytest.raises(SubscriptionResumed):
            await reader
    with pytest.raises(SubscriptionResumed):
        await subs[0].next(1.0)
    assert h.active == 3 and h.resuming == 0
    for i, sub in enumerate(subs):
        assert await redis.publish(f"orbyt:reply:{i}", b"after") == 1
        assert await sub.next(1.0) == b"after"
    again = await h.subscribe("orbyt:reply:again")
    assert await redis.publish("orbyt:reply:again", b"back") == 1
    assert await again.next(1.0) == b"back"


async def test_a_subscription_not_resumed_within_the_window_fails_clearly() -> None:
    from tests.gateway import RedisServer as Server

    server = Server().start()
    h = PubSubHub(server.url(1), queue_limit=8, resume=0.6)
    try:
        sub = await h.subscribe("orbyt:reply:w")
        reader = asyncio.create_task(sub.next(0.2))
        await asyncio.sleep(0.01)
        server.kill()
        with pytest.raises(TimeoutError):  # the reader's own timeout still applies
            await reader
        assert sub.resuming
        started = asyncio.get_running_loop().time()
        with pytest.raises(SubscriptionFailed, match=r"could not resume within 0\.6 s"):
            while asyncio.get_running_loop().time() - started < 3:
                with contextlib.suppress(TimeoutError):
                    await sub.next(0.1)
        assert asyncio.get_running_loop().time() - started < 1.5
        assert h.active == 0
    finally:
        await h.close()
        server.stop()


async def test_next_times_out_from_each_call_with_one_timer(
    hub: tuple[PubSubHub, Redis],
) -> None:
    h, _ = hub
    sub = await h.subscribe("orbyt:reply:t")
    loop = asyncio.get_running_loop()
    for i in range(20):  # a frame each wait: one timer armed, never a timeout
        asyncio.get_running_loop().call_later(0.005, sub.push, b"%d" % i)
        assert await sub.next(0.3) == b"%d" % i
    started = loop.time()
    with pytest.raises(TimeoutError):
        await sub.next(0.1)  # shorter than the armed timer: re-armed earlier
    assert 0.09 <= loop.time() - started < 0.25
    started = loop.time()
    with pytest.raises(TimeoutError):
        await sub.next(0.3)
    assert 0.29 <= loop.time() - started < 0.5
