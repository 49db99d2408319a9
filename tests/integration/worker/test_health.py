"""The route-health scripts on a real redis-server: breakers open, half-open and close,
statistics fold, pool keys cool down and are disabled."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from orbyt.shared.secret import Secret
from orbyt.worker.health import Health
from orbyt.worker.policy import BreakerState, Verdict

ROUTE = "openai/gpt-4o-mini@default"
NOW = 1_000_000


async def _state(health: Health, now: int) -> BreakerState:
    return (await health.breakers([ROUTE]))[ROUTE].state(now)


async def test_breaker_opens_after_the_threshold_and_success_closes_it(redis: Redis) -> None:
    health = Health(redis, threshold=3, cooldown=10.0, flush_interval=0.01)
    for _ in range(2):
        await health.record(ROUTE, Verdict.FAIL, None, NOW)
    assert await _state(health, NOW) is BreakerState.CLOSED
    await health.record(ROUTE, Verdict.FAIL, None, NOW)
    assert await _state(health, NOW + 1) is BreakerState.OPEN
    assert await _state(health, NOW + 10_000) is BreakerState.HALF_OPEN
    await health.record(ROUTE, Verdict.OK, None, NOW + 10_001)
    await asyncio.sleep(0.1)  # successes are written by the flusher
    assert await _state(health, NOW + 10_002) is BreakerState.CLOSED
    assert not await redis.exists(f"orbyt:cb:{ROUTE}")


async def test_neutral_outcomes_do_not_count(redis: Redis) -> None:
    health = Health(redis, threshold=1, cooldown=10.0)
    await health.record(ROUTE, Verdict.NEUTRAL, None, NOW)
    assert await _state(health, NOW) is BreakerState.CLOSED
    assert not await redis.exists(f"orbyt:stats:{ROUTE}")


async def test_half_open_grants_one_probe_and_a_failed_probe_reopens(redis: Redis) -> None:
    health = Health(redis, threshold=1, cooldown=10.0)
    await health.record(ROUTE, Verdict.FAIL, None, NOW)
    assert not await health.claim_probe(ROUTE, NOW + 5_000)  # still open
    assert await health.claim_probe(ROUTE, NOW + 10_000)
    assert not await health.claim_probe(ROUTE, NOW + 10_001)  # one probe per cooldown
    await health.record(ROUTE, Verdict.FAIL, None, NOW + 10_002)
    assert await _state(health, NOW + 10_003) is BreakerState.OPEN
    view = (await health.breakers([ROUTE]))[ROUTE]
    assert view.open_until == NOW + 10_002 + 10_000 and view.probe == 0


async def test_successes_fold_into_one_statistics_write(redis: Redis) -> None:
    health = Health(redis, threshold=3, cooldown=10.0, flush_interval=0.05)
    for ttft in (100.0, 200.0, 300.0):
        await health.record(ROUTE, Verdict.OK, ttft, NOW)
    assert not await redis.exists(f"orbyt:stats:{ROUTE}")  # not written yet
    await asyncio.sleep(0.2)
    stats = await redis.hgetall(f"orbyt:stats:{ROUTE}")  # type: ignore[misc]
    assert int(stats[b"n"]) == 1 and float(stats[b"ttft"]) == 200.0
    assert float(stats[b"err"]) == 0.0
    assert await health.stats([ROUTE, "other@default"], "ttft") == {ROUTE: 200.0}


async def test_a_failure_flushes_earlier_successes_first(redis: Redis) -> None:
    health = Health(redis, threshold=3, cooldown=10.0, flush_interval=10.0)
    await health.record(ROUTE, Verdict.OK, 100.0, NOW)
    await health.record(ROUTE, Verdict.FAIL, None, NOW)
    stats = await redis.hgetall(f"orbyt:stats:{ROUTE}")  # type: ignore[misc]
    assert int(stats[b"n"]) == 2
    assert abs(float(stats[b"err"]) - 0.3) < 1e-9  # 0 (ok) then one EWMA step towards 1


async def test_pool_keys_cool_down_and_are_disabled(redis: Redis) -> None:
    health = Health(redis, threshold=3, cooldown=10.0)
    keys = (Secret("sk-pool-key-one-1234"), Secret("sk-pool-key-two-5678"))
    first, healthy = await health.pool_status("openai@default", keys)
    assert healthy == [True, True]
    await health.cool_key("openai@default", keys[0], 0.1)
    await health.disable_key("openai@default", keys[1])
    second, healthy = await health.pool_status("openai@default", keys)
    assert healthy == [False, False] and second == first + 1
    await asyncio.sleep(0.2)
    _, healthy = await health.pool_status("openai@default", keys)
    assert healthy == [True, False]
    stored = [k.decode() for k in await redis.keys("orbyt:poolkey:*")]
    assert all("sk-pool" not in k for k in stored)  # only a hash of the key
