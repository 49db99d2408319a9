"""A client that leaves costs nothing more (issue 10, items 6 and 7), with real processes.

The API watches the client from the moment it accepted the request: a request abandoned
before any worker picked it up never reaches an upstream; one abandoned after pickup but
before its first token has its upstream call closed at once and no fallback starts; a storm
of abandoned requests leaves no ERROR line and no traceback in any log, and a Redis outage
while requests are abandoned is a WARNING, never "Task exception was never retrieved".

The gateways here use long upstream timeouts (3 s to the first token) so that only the
disconnect, not a timeout, can explain an upstream call closed within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.fakes import Hang, Reply
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer
from tests.integration.faults_support import (
    MSG,
    Fakes,
    forget_health,
    running_fakes,
    wait_until,
)

SLOW_TIMEOUTS = {"ORBYT_TTFT_TIMEOUT": "3", "ORBYT_NONSTREAM_TIMEOUT": "3"}
HEADERS = {"authorization": f"Bearer {GATEWAY_KEY}"}


def body(stream: bool, fallback: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "openai/gpt-5-mini", "messages": MSG, "stream": stream}
    if fallback:
        out["extra"] = {"fallback_models": ["backup/plain"]}
    return out


def abandon(gw: Gateway, payload: dict[str, Any], after: float) -> float:
    """Send a request and hang up after `after` seconds without an answer; when it hung up."""
    url = gw.base_url + "/chat/completions"
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.Client(timeout=after) as c,
        c.stream("POST", url, headers=HEADERS, json=payload),
    ):
        pass
    return time.monotonic()


def log_problems(text: str) -> list[str]:
    bad = ('"level":"error"', '"level":"critical"', "Traceback", "never retrieved")
    return [line for line in text.splitlines() if any(b in line for b in bad)]


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest, fakes: Fakes) -> None:
    fakes.reset()
    if "gw" in request.fixturenames:
        forget_health(request.getfixturevalue("gw"))


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fakes: Fakes) -> Iterator[Gateway]:
    env = {**fakes.env(), **SLOW_TIMEOUTS}
    with Gateway(redis_server.new_db_url(), env, workers=1) as gateway:
        yield gateway


def test_a_request_abandoned_before_pickup_never_starts(
    redis_server: RedisServer, fakes: Fakes
) -> None:
    env = {**fakes.env(), **SLOW_TIMEOUTS, "ORBYT_PICKUP_TIMEOUT": "10"}
    with Gateway(redis_server.new_db_url(), env, workers=0) as late:
        for stream in (False, True):
            abandon(late, body(stream), after=0.5)
        r = redis.Redis.from_url(late.redis_url)
        try:
            assert wait_until(lambda: not r.keys("arq:job:*"), 2)  # withdrawn
            assert r.zcard("orbyt:chat") == 0
        finally:
            r.close()
        late.start_worker()
        late.wait_ready()
        time.sleep(1.0)  # a worker that found the jobs would have called the upstream by now
        assert fakes.primary.requests == []
        assert log_problems(late.all_logs()) == []


@pytest.mark.parametrize("fallback", [False, True], ids=["alone", "with fallback"])
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_request_abandoned_before_its_first_token_closes_the_upstream_at_once(
    gw: Gateway, fakes: Fakes, stream: bool, fallback: bool
) -> None:
    fakes.primary.default = Reply(ttft=30) if stream else Hang()
    closed_at = abandon(gw, body(stream, fallback), after=1.0)
    assert fakes.primary.wait_for_requests(1, timeout=1)
    assert fakes.primary.wait_for_disconnects(1, timeout=3)
    assert fakes.primary.disconnects[0] - closed_at < 1.0
    time.sleep(3.5)  # past the first-token timeout: a fallback would have started by now
    assert fakes.backup.requests == []
    assert len(fakes.primary.requests) == 1
    assert log_problems(gw.all_logs()) == []  # e.g. "Exception in ASGI application"


def test_an_abandoned_request_storm_logs_no_error(gw: Gateway, fakes: Fakes) -> None:
    """200 requests (stream or not, a third with a fallback) abandoned after 1.5 s. Under
    this burst a request may legitimately reach the backup first (the primary refusing
    connections in time), so each upstream call is matched to its own caller: it started
    while that caller was there (a fallback after the hang-up would start 3 s later), and
    every call is closed."""
    fakes.primary.default = Reply(ttft=30)
    fakes.backup.default = Reply(ttft=30)
    hung_up: dict[int, float] = {}

    async def one(client: httpx.AsyncClient, i: int) -> None:
        payload = body(stream=i % 2 == 0, fallback=i % 3 == 0)
        payload["messages"] = [{"role": "user", "content": f"storm {i}"}]
        with contextlib.suppress(httpx.TimeoutException):
            async with client.stream(
                "POST", gw.base_url + "/chat/completions", headers=HEADERS, json=payload
            ):
                pass
        hung_up[i] = time.monotonic()

    async def storm() -> None:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=1.5, limits=limits) as client:
            await asyncio.gather(*(one(client, i) for i in range(200)))

    asyncio.run(storm())
    last_hang_up = max(hung_up.values())
    assert fakes.primary.requests
    time.sleep(3.5)  # past the first-token timeout: any fallback would have started
    for fake in (fakes.primary, fakes.backup):
        calls = fake.requests
        for call in calls:
            assert isinstance(call.json, dict)
            caller = int(str(call.json["messages"][0]["content"]).split()[1])
            assert call.at < hung_up[caller] + 0.5
        assert fake.wait_for_disconnects(len(calls), timeout=2)
        assert all(at - last_hang_up < 2.0 for at in fake.disconnects)
    assert log_problems(gw.all_logs()) == []


def test_a_redis_outage_while_requests_are_abandoned_is_a_warning(fakes: Fakes) -> None:
    server = RedisServer().start()
    try:
        env = {**fakes.env(), **SLOW_TIMEOUTS}
        with Gateway(server.new_db_url(), env, workers=1) as gw:
            fakes.primary.default = Reply(tokens=400, per_token=0.05)

            async def abandoned(client: httpx.AsyncClient, stream: bool) -> None:
                with contextlib.suppress(httpx.HTTPError):
                    async with client.stream(
                        "POST",
                        gw.base_url + "/chat/completions",
                        headers=HEADERS,
                        json=body(stream),
                    ) as resp:
                        async for _ in resp.aiter_raw():
                            pass

            async def outage() -> None:
                async with httpx.AsyncClient(timeout=2.0) as client:
                    tasks = [asyncio.create_task(abandoned(client, i % 2 == 0)) for i in range(20)]
                    await asyncio.sleep(0.8)
                    server.stop()
                    await asyncio.gather(*tasks)

            asyncio.run(outage())
            time.sleep(1.0)
            api_log = (gw.logdir / "api0.log").read_text(errors="replace")
            assert log_problems(api_log) == []
            assert "never retrieved" not in gw.all_logs()
    finally:
        server.stop()
