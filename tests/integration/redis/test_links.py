"""The hardened hot-path connections (`shared/redis/link.py`, `fast.py`, `hub.py`) against a
real redis-server, through a loopback proxy that can go silent (half-open) or add latency,
and against tiny fake servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from orbyt.cli.embedded_redis import free_port
from orbyt.shared.redis.fast import PipelinedConnection
from orbyt.shared.redis.hub import PubSubHub, SubscriptionFailed, SubscriptionResumed
from orbyt.shared.redis.link import Liveness, command
from tests.gateway import RedisServer
from tests.integration.redis.proxy import Proxy

pytestmark = pytest.mark.integration

QUICK = Liveness(ping_interval=0.2, dead_after=0.6, backoff_cap=0.2)
PING = command(b"PING")


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[Proxy]:
    with Proxy(redis_server.port) as p:
        yield p


async def test_half_open_with_a_command_waiting_fails_it_and_reconnects(proxy: Proxy) -> None:
    conn = PipelinedConnection(proxy.url(), liveness=QUICK)
    try:
        assert await conn.execute(PING) == [b"PONG"]
        assert proxy.freeze() == 1
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="stopped answering"):
            await asyncio.wait_for(conn.execute(PING), 5)
        assert time.monotonic() - started < 1.5  # ping_interval + dead_after, plus slack
        assert await conn.execute(PING) == [b"PONG"]  # a fresh connection
        assert proxy.accepted == 2
    finally:
        await conn.close()


async def test_an_idle_half_open_connection_is_noticed_by_its_ping(proxy: Proxy) -> None:
    conn = PipelinedConnection(proxy.url(), liveness=QUICK)
    try:
        await conn.execute(PING)
        proxy.freeze()
        deadline = time.monotonic() + 3
        while conn.current() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert conn.current() is None  # dropped without anyone sending a command
        assert await conn.execute(PING) == [b"PONG"]
    finally:
        await conn.close()


async def test_a_slow_redis_is_not_a_dead_one(proxy: Proxy) -> None:
    proxy.latency = 0.05
    conn = PipelinedConnection(proxy.url(), liveness=QUICK)
    try:
        for _ in range(5):
            replies = await asyncio.gather(*(conn.execute(PING) for _ in range(50)))
            assert replies == [[b"PONG"]] * 50
        await asyncio.sleep(1.0)  # idle pings answered late, still alive
        assert conn.current() is not None and proxy.accepted == 1
    finally:
        await conn.close()


async def test_hub_resumes_subscriptions_on_half_open_and_serves_new_ones(
    proxy: Proxy, redis_server: RedisServer
) -> None:
    url = proxy.url(db=0)
    hub = PubSubHub(url, 16, QUICK)
    direct = Redis(port=redis_server.port)
    try:
        sub = await hub.subscribe("orbyt:test:a")
        assert await direct.publish("orbyt:test:a", b"one") == 1
        assert await sub.next(2) == b"one"
        proxy.freeze()
        started = time.monotonic()
        # noticed, reconnected, re-subscribed (issue 11): the reader is told once, to ask
        # its publisher for what it may have missed
        with pytest.raises(SubscriptionResumed):
            await sub.next(5)
        assert time.monotonic() - started < 1.5
        # Redis still counts the silent connection's subscription (it cannot know)
        assert await direct.publish("orbyt:test:a", b"two") == 2
        assert await sub.next(2) == b"two"
        new = await hub.subscribe("orbyt:test:c", timeout=2)  # Redis reachable: works
        assert await direct.publish("orbyt:test:c", b"three") == 1
        assert await new.next(2) == b"three"
    finally:
        await hub.close()
        await direct.aclose()


async def test_hub_with_resume_off_fails_subscriptions_on_half_open(
    proxy: Proxy, redis_server: RedisServer
) -> None:
    hub = PubSubHub(proxy.url(db=0), 16, QUICK, resume=0)
    try:
        sub = await hub.subscribe("orbyt:test:d")
        proxy.freeze()
        started = time.monotonic()
        with pytest.raises(SubscriptionFailed, match="lost its connection"):
            await sub.next(5)
        assert time.monotonic() - started < 1.5
        again = await hub.subscribe("orbyt:test:d", timeout=2)
        assert again is not sub
    finally:
        await hub.close()


async def test_hub_subscribe_while_redis_is_down_fails_fast() -> None:
    hub = PubSubHub(f"redis://127.0.0.1:{free_port()}/0", 16, QUICK)
    try:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(ConnectionError):
                await hub.subscribe("orbyt:test:b")
            assert time.monotonic() - started < 0.5
    finally:
        await hub.close()


async def test_concurrent_callers_share_one_connect_attempt() -> None:
    conn = PipelinedConnection(f"redis://127.0.0.1:{free_port()}/0", liveness=QUICK)
    results = await asyncio.gather(
        *(conn.execute(PING) for _ in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert conn._failures == 1  # one attempt for all hundred
    await conn.close()


# --- fake servers that misbehave


async def _serve(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, int]:
    port = free_port()
    server = await asyncio.start_server(handler, "127.0.0.1", port)
    return server, port


@pytest.fixture
async def chatty() -> AsyncIterator[int]:
    """Sends an unsolicited reply, then answers each PING with +PONG and a stray :42."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+HELLO\r\n")
        while data := await reader.read(65536):
            n = data.count(b"PING")
            writer.write(b"+PONG\r\n" * n)
            await asyncio.sleep(0.05)
            writer.write(b":42\r\n")
        writer.close()

    server, port = await _serve(handle)
    yield port
    server.close()
    await server.wait_closed()


async def test_unexpected_replies_are_logged_and_skipped(
    chatty: int, caplog: pytest.LogCaptureFixture
) -> None:
    conn = PipelinedConnection(f"redis://127.0.0.1:{chatty}/0", liveness=QUICK)
    try:
        await conn.connection()
        await asyncio.sleep(0.05)
        assert await conn.execute(PING) == [b"PONG"]
        await asyncio.sleep(0.1)
        assert conn.current() is not None  # the stray replies did not end the connection
        hub = PubSubHub(f"redis://127.0.0.1:{chatty}/0", 4, QUICK)
        await hub.connection()
        await asyncio.sleep(0.1)
        assert hub.current() is not None
        await hub.close()
    finally:
        await conn.close()
    skipped = [r for r in caplog.records if "unexpected" in r.getMessage()]
    assert skipped and all(r.levelno == logging.WARNING for r in skipped)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_connect_is_bounded_when_the_server_never_answers() -> None:
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await release.wait()
        writer.close()

    server, port = await _serve(handle)
    conn = PipelinedConnection(
        f"redis://:pw@127.0.0.1:{port}/0?socket_connect_timeout=0.3", liveness=QUICK
    )
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="TimeoutError"):
            await conn.execute(PING)
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        await conn.close()
        server.close()
        await server.wait_closed()


async def test_output_buffer_is_bounded_when_redis_stops_reading() -> None:
    stalled = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stalled.wait()  # never reads
        writer.close()

    server, port = await _serve(handle)
    live = Liveness(ping_interval=5, dead_after=10, buffer_limit=64 << 10)
    conn = PipelinedConnection(f"redis://127.0.0.1:{port}/0", liveness=live)
    try:
        c = await conn.connection()
        big = command(b"PUBLISH", b"ch", b"x" * 65536)
        futures = []
        drained = None
        for _ in range(400):
            futures.append(conn.send(c, big))
            await asyncio.sleep(0)
            if c.backlogged and drained is None:
                drained = asyncio.ensure_future(conn.drain(c))
            if c.closed:
                break
        assert drained is not None  # writers were asked to wait
        assert c.closed  # past 4x the limit: dropped, not buffered without end
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        await drained  # a waiting writer is released when the connection goes
    finally:
        stalled.set()
        await asyncio.sleep(0.05)  # the fake server's handler closes its side
        await conn.close()
        server.close()
        await server.wait_closed()
