"""Shared route health in Redis (DESIGN §4.3): circuit breakers, TTFT / error-rate statistics
for the `fast` and `reliable` strategies, and pool-key cooldowns. Every worker reads and
writes the same keys, so what one worker learns all of them act on.

Keys (no secret in any of them; pool keys appear only as a short SHA-256 prefix):
    orbyt:cb:{route}        hash  fails, open_until (ms), probe (ms)
    orbyt:stats:{route}     hash  ttft (EWMA ms), err (EWMA 0..1), n
    orbyt:poolkey:{provider}:{key hash}   "cool" (PX = Retry-After) or "off" (auth failure)
    orbyt:rr:{provider}     round-robin counter
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbyt.shared.contract import BREAKER_PREFIX, POOLKEY_PREFIX, STATS_PREFIX
from orbyt.shared.secret import Secret
from orbyt.worker.policy import BreakerState, Verdict

log = logging.getLogger("orbyt.worker")

# KEYS: breaker hash, stats hash. ARGV: outcome (ok|fail|neutral), ttft_ms (or -1), now_ms,
# threshold, cooldown_ms, alpha.
_RECORD = """
local now = tonumber(ARGV[3])
if ARGV[1] == 'ok' then
  redis.call('DEL', KEYS[1])
elseif ARGV[1] == 'fail' then
  local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
  local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
  if fails >= tonumber(ARGV[4]) or probe > 0 then
    redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[5]), 'probe', 0)
  end
  redis.call('PEXPIRE', KEYS[1], 3600000)
end
if ARGV[1] ~= 'neutral' then
  local alpha = tonumber(ARGV[6])
  local err = (ARGV[1] == 'fail') and 1 or 0
  local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
  local old_err = tonumber(redis.call('HGET', KEYS[2], 'err') or tostring(err))
  redis.call('HSET', KEYS[2], 'err', old_err + alpha * (err - old_err))
  local ttft = tonumber(ARGV[2])
  if ttft >= 0 then
    local old = tonumber(redis.call('HGET', KEYS[2], 'ttft') or tostring(ttft))
    redis.call('HSET', KEYS[2], 'ttft', old + alpha * (ttft - old))
  end
  redis.call('PEXPIRE', KEYS[2], 86400000)
end
return 1
"""

# KEYS: breaker hash. ARGV: now_ms, cooldown_ms. Returns 1 if this caller may probe.
_CLAIM_PROBE = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local now = tonumber(ARGV[1])
if open_until == 0 or open_until > now then return 0 end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
if probe > 0 and now - probe < tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'probe', now)
return 1
"""


def key_hash(key: Secret) -> str:
    return hashlib.sha256(key.reveal().encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class BreakerView:
    open_until: int  # ms since epoch; 0 = closed
    probe: int  # ms since epoch of the last probe granted

    def state(self, now_ms: int) -> BreakerState:
        if self.open_until == 0:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now_ms < self.open_until else BreakerState.HALF_OPEN


class Health:
    def __init__(
        self,
        redis: Redis,
        threshold: int,
        cooldown: float,
        alpha: float = 0.3,
        flush_interval: float = 0.2,
    ) -> None:
        self._redis = redis
        self._threshold = threshold
        self._cooldown_ms = int(cooldown * 1000)
        self._alpha = alpha
        self._record = redis.register_script(_RECORD)
        self._ok: dict[str, tuple[int, float, int]] = {}  # route -> (count, ttft sum, n)
        self._flusher: asyncio.Task[None] | None = None
        self._flush_interval = flush_interval
        self._claim = redis.register_script(_CLAIM_PROBE)

    async def breakers(self, routes: Sequence[str]) -> dict[str, BreakerView]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.hmget(BREAKER_PREFIX + route, ["open_until", "probe"])
            rows = await pipe.execute()
        return {
            route: BreakerView(int(float(row[0] or 0)), int(float(row[1] or 0)))
            for route, row in zip(routes, rows, strict=True)
        }

    async def stats(self, routes: Sequence[str], field: str) -> dict[str, float]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.hget(STATS_PREFIX + route, field)
            rows = await pipe.execute()
        return {route: float(v) for route, v in zip(routes, rows, strict=True) if v is not None}

    async def claim_probe(self, route: str, now_ms: int) -> bool:
        return bool(
            await self._claim(keys=[BREAKER_PREFIX + route], args=[now_ms, self._cooldown_ms])
        )

    async def record(
        self, route: str, outcome: Verdict, ttft_ms: float | None, now_ms: int
    ) -> None:
        """Failures are written at once (breakers must see them); successes are folded per
        route and written every `flush_interval` (one EWMA step with their mean TTFT), so a
        healthy route costs no Redis call per request."""
        if outcome is not Verdict.OK:
            folded = self._ok.pop(route, None)
            if folded is not None:  # keep the order: earlier successes first
                _, ttft_sum, ttft_n = folded
                await self._write(route, Verdict.OK, ttft_sum / ttft_n if ttft_n else None, now_ms)
            await self._write(route, outcome, ttft_ms, now_ms)
            return
        count, ttft_sum, ttft_n = self._ok.get(route, (0, 0.0, 0))
        if ttft_ms is not None:
            ttft_sum, ttft_n = ttft_sum + ttft_ms, ttft_n + 1
        self._ok[route] = (count + 1, ttft_sum, ttft_n)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_interval)
        pending, self._ok = self._ok, {}
        now_ms = int(time.time() * 1000)
        try:
            for route, (_, ttft_sum, ttft_n) in pending.items():
                mean = ttft_sum / ttft_n if ttft_n else None
                await self._write(route, Verdict.OK, mean, now_ms)
        except (OSError, RedisError) as exc:  # the state Redis restarting: statistics wait
            log.warning("route health flush failed (%s)", type(exc).__name__)

    async def _write(
        self, route: str, outcome: Verdict, ttft_ms: float | None, now_ms: int
    ) -> None:
        await self._record(
            keys=[BREAKER_PREFIX + route, STATS_PREFIX + route],
            args=[
                outcome.value,
                -1 if ttft_ms is None else round(ttft_ms, 1),
                now_ms,
                self._threshold,
                self._cooldown_ms,
                self._alpha,
            ],
        )

    async def pool_status(self, provider: str, keys: Sequence[Secret]) -> tuple[int, list[bool]]:
        """(round-robin counter, healthy flag per key) in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(f"orbyt:rr:{provider}")
            pipe.mget([f"{POOLKEY_PREFIX}{provider}:{key_hash(k)}" for k in keys])
            counter, flags = await pipe.execute()
        return int(counter), [flag is None for flag in flags]

    async def cool_key(self, provider: str, key: Secret, seconds: float) -> None:
        await self._redis.set(
            f"{POOLKEY_PREFIX}{provider}:{key_hash(key)}", b"cool", px=max(1, int(seconds * 1000))
        )

    async def disable_key(self, provider: str, key: Secret, seconds: float = 3600) -> None:
        await self._redis.set(
            f"{POOLKEY_PREFIX}{provider}:{key_hash(key)}", b"off", px=int(seconds * 1000)
        )
