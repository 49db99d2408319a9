"""Usage records aggregated in Redis per gateway key, day and model (DESIGN §5, §9);
written by the API (interactive requests) and by batch workers (batch lines).

    orbyt:usage:{key_id}:{YYYY-MM-DD}   hash  "{model}|{field}" -> counter
fields: requests, errors, prompt_tokens, completion_tokens, cached_tokens, attempts,
latency_ms, cost_micros (gateway-billed, USD millionths), byok_requests,
provider_billed_cost_micros (what the caller's own provider account pays, for BYOK),
batch_requests and batch_cost_micros (the part of requests / cost_micros that were batch
lines; the worker bills those with the line's recorded outcome, see worker.batch), and one
latency histogram bucket per request: `lat_le_{ms}` for the first bound in
`LATENCY_BUCKETS_MS` at or above its latency, `lat_inf` past the last (p50 / p95 are read
from these, `api.console.reports.percentile`).

    orbyt:lastused   hash  key_id -> unix seconds of its last finished request, written in
                           the same pipeline as the counters (no extra round trip)

An answer served by more than one attempt (a stream cut after content and continued on a
fallback) carries `usage.by_model`, each attempt's share (`worker.billing`): its tokens and
cost go to its own model's fields, the request itself to the model that answered.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from orbyt.shared.catalog import Catalog
from orbyt.shared.logs import safe_name

RETENTION_SECONDS = 90 * 86400
LAST_USED_KEY = "orbyt:lastused"
# Upper bounds (ms) of the latency histogram; a request past the last one counts in lat_inf.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000)
LATENCY_OVERFLOW = "lat_inf"


_BUCKET_FIELDS = (*(f"lat_le_{bound}" for bound in LATENCY_BUCKETS_MS), LATENCY_OVERFLOW)


def latency_bucket(latency_ms: float) -> str:
    """The histogram field one request's latency counts in (pure)."""
    return _BUCKET_FIELDS[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)]


@dataclass(frozen=True, slots=True)
class UsageEvent:
    key_id: str
    model: str  # the model that answered (or the primary, for failures)
    provider: str
    key_source: str  # byok | pool
    status: int
    attempts: int
    latency_ms: float
    usage: dict[str, Any] | None
    batch: bool = False  # a batch line (billed by the worker that ran it)


def cost_micros(catalog: Catalog, model: str, prompt: int, completion: int) -> int:
    info = catalog.get(model)
    if info is None or info.input_price is None or info.output_price is None:
        return 0
    return round(prompt * info.input_price + completion * info.output_price)  # per 1M tokens


def counters(event: UsageEvent, catalog: Catalog) -> dict[str, int]:
    """The counter increments for one finished request (pure)."""
    usage = event.usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    out = {"requests": 1, "attempts": event.attempts, "latency_ms": round(event.latency_ms)}
    if event.batch:
        out["batch_requests"] = 1
    if event.status >= 400:
        out["errors"] = 1
        return out
    out.update(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)
    cost = cost_micros(catalog, event.model, prompt, completion)
    if event.key_source == "byok":
        out["byok_requests"] = 1
        out["provider_billed_cost_micros"] = cost
    else:
        out["cost_micros"] = cost
        if event.batch:
            out["batch_cost_micros"] = cost
    return out


def increments(event: UsageEvent, catalog: Catalog) -> dict[tuple[str, str], int]:
    """(model, field) -> increment for one finished request (pure): `counters` on the
    answering model, or, with `usage.by_model`, each share's tokens on its own model; and
    the request's latency histogram bucket on the answering model."""
    shares = (event.usage or {}).get("by_model")
    if not isinstance(shares, list) or not shares:
        out = {(event.model, name): value for name, value in counters(event, catalog).items()}
        out[(event.model, latency_bucket(event.latency_ms))] = 1
        return out
    model = event.model
    out = {
        (model, "requests"): 1,
        (model, "attempts"): event.attempts,
        (model, "latency_ms"): round(event.latency_ms),
        (model, latency_bucket(event.latency_ms)): 1,
    }
    if event.batch:
        out[(model, "batch_requests")] = 1
    if event.status >= 400:
        out[(model, "errors")] = 1
    elif event.key_source == "byok":
        out[(model, "byok_requests")] = 1
    for share in shares:
        if isinstance(share, dict):
            for key, value in _share(share, catalog).items():
                out[key] = out.get(key, 0) + value
    return out


def _share(share: dict[str, Any], catalog: Catalog) -> dict[tuple[str, str], int]:
    """One attempt's tokens and cost, on its own model."""
    model = safe_name(str(share.get("model") or "unknown/unknown"))
    prompt = _int(share.get("prompt_tokens"))
    completion = _int(share.get("completion_tokens"))
    cost = cost_micros(catalog, model, prompt, completion)
    field = "provider_billed_cost_micros" if share.get("key_source") == "byok" else "cost_micros"
    return {
        (model, "prompt_tokens"): prompt,
        (model, "completion_tokens"): completion,
        (model, "cached_tokens"): _int(share.get("cached_tokens")),
        (model, field): cost,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def day(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def usage_key(key_id: str, on: str) -> str:
    return f"orbyt:usage:{key_id}:{on}"


class UsageBuffer:
    """Aggregates usage in memory and writes it with one pipeline per interval (default
    1 s), so accounting costs no Redis round trip per request. Each key's last-used time
    rides in the same pipeline. `flush()` on shutdown."""

    def __init__(self, redis: Redis, catalog: Catalog) -> None:
        self._redis = redis
        self._catalog = catalog
        self._pending: dict[tuple[str, str], int] = defaultdict(int)
        self._last_used: dict[str, int] = {}
        self._day = (-1, "")  # (days since the epoch, its YYYY-MM-DD)

    def add(self, event: UsageEvent) -> None:
        now = time.time()
        epoch_day = int(now) // 86400  # UTC days; the date string is made once a day
        if epoch_day != self._day[0]:
            self._day = (epoch_day, day(now))
        key = usage_key(event.key_id, self._day[1])
        for (model, name), value in increments(event, self._catalog).items():
            if value:
                self._pending[(key, f"{model}|{name}")] += value
        self._last_used[event.key_id] = int(now)

    async def flush(self) -> None:
        if not self._pending and not self._last_used:
            return
        pending, self._pending = self._pending, defaultdict(int)
        last_used, self._last_used = self._last_used, {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (key, field), value in pending.items():
                    pipe.hincrby(key, field, value)
                for key in {key for key, _ in pending}:
                    pipe.expire(key, RETENTION_SECONDS)
                if last_used:
                    pipe.hset(LAST_USED_KEY, mapping=last_used)
                await pipe.execute()
        except Exception:
            for item, value in pending.items():  # keep it for the next flush
                self._pending[item] += value
            for key_id, ts in last_used.items():
                self._last_used[key_id] = max(ts, self._last_used.get(key_id, 0))
            raise


async def record(redis: Redis, catalog: Catalog, event: UsageEvent) -> None:
    """Write one event at once (tools and tests; the API uses UsageBuffer)."""
    buffer = UsageBuffer(redis, catalog)
    buffer.add(event)
    await buffer.flush()


def parse(raw: dict[bytes, bytes]) -> dict[str, dict[str, int]]:
    """One usage hash as model -> field -> counter (pure)."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for field, value in raw.items():
        model, _, name = field.decode().rpartition("|")
        out[model][name] = int(value)
    return dict(out)


async def read(redis: Redis, key_id: str, on: str) -> dict[str, dict[str, int]]:
    return parse(await redis.hgetall(usage_key(key_id, on)))  # type: ignore[misc]


async def read_days(
    redis: Redis, days: list[str]
) -> list[tuple[str, str, dict[str, dict[str, int]]]]:
    """Every key's usage on each of `days`: (day, key_id, model -> field -> counter). Found
    by one SCAN over the usage hashes, so keys from ORBYT_GATEWAY_KEYS count too."""
    wanted = set(days)
    found: list[tuple[str, str, str]] = []
    async for raw_name in redis.scan_iter(match=usage_key("*", "*"), count=1000):
        name = raw_name.decode()
        key_id, _, on = name[len("orbyt:usage:") :].rpartition(":")
        if on in wanted and key_id:
            found.append((on, key_id, name))
    found.sort()
    if not found:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for _, _, name in found:
            pipe.hgetall(name)
        hashes = await pipe.execute()
    return [
        (on, key_id, parse(raw)) for (on, key_id, _), raw in zip(found, hashes, strict=True) if raw
    ]


async def last_used(redis: Redis, key_ids: list[str]) -> dict[str, int]:
    """key_id -> unix seconds of its last finished request (absent: never used)."""
    if not key_ids:
        return {}
    values = await redis.hmget(LAST_USED_KEY, key_ids)  # type: ignore[misc]
    return {k: int(v) for k, v in zip(key_ids, values, strict=True) if v is not None}
