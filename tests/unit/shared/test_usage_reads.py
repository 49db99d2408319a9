"""shared.usage reads and the last-used time that rides in the counters' flush (one
pipeline, no extra round trip per request)."""

from __future__ import annotations

import time

import fakeredis
import pytest

from orbyt.shared.catalog import default_catalog
from orbyt.shared.usage import (
    LAST_USED_KEY,
    UsageBuffer,
    UsageEvent,
    day,
    last_used,
    read_days,
)


@pytest.fixture
def redis() -> fakeredis.aioredis.FakeRedis:
    return fakeredis.aioredis.FakeRedis()


def event(key_id: str, latency_ms: float = 120.0) -> UsageEvent:
    usage = {"prompt_tokens": 3, "completion_tokens": 2}
    return UsageEvent(key_id, "openai/gpt-5-mini", "openai", "pool", 200, 1, latency_ms, usage)


async def test_flush_writes_counters_buckets_and_last_used(
    redis: fakeredis.aioredis.FakeRedis,
) -> None:
    buffer = UsageBuffer(redis, default_catalog())
    before = int(time.time())
    buffer.add(event("key_a", 40))
    buffer.add(event("key_a", 400))
    buffer.add(event("key_b"))
    await buffer.flush()
    rows = await read_days(redis, [day(), "2000-01-01"])
    got = {key_id: models["openai/gpt-5-mini"] for _, key_id, models in rows}
    assert got["key_a"]["requests"] == 2 and got["key_b"]["requests"] == 1
    assert got["key_a"]["lat_le_50"] == 1 and got["key_a"]["lat_le_500"] == 1
    used = await last_used(redis, ["key_a", "key_b", "key_never"])
    assert set(used) == {"key_a", "key_b"} and all(ts >= before for ts in used.values())
    assert await redis.exists(LAST_USED_KEY)


async def test_read_days_only_returns_the_days_asked_for(
    redis: fakeredis.aioredis.FakeRedis,
) -> None:
    await redis.hset("orbyt:usage:key_a:2026-11-01", "m/x|requests", 4)  # type: ignore[misc]
    await redis.hset("orbyt:usage:key_a:2026-11-02", "m/x|requests", 5)  # type: ignore[misc]
    rows = await read_days(redis, ["2026-11-02"])
    assert rows == [("2026-11-02", "key_a", {"m/x": {"requests": 5}})]
    assert await read_days(redis, []) == []
    assert await last_used(redis, []) == {}
