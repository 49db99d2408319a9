"""What the admin API answers and the console shows: one function per view, each reading
Redis through the stores that own the data. `api.routes.admin` serves these as JSON and
`api.console.pages` renders the same values as HTML, so there is one source of truth.

Route health is read from the keys the workers write (`worker.health`, in the state role):

    orbyt:cb:{route}                      hash  fails, open_until (ms), probe (ms)
    orbyt:stats:{route}                   hash  ttft (EWMA ms), err (EWMA 0..1), n
    orbyt:poolkey:{provider@deployment}:{sha256 prefix}   "cool" | "off"

where route is `{provider}/{model}@{deployment}`. Only counts of cooled or disabled pool
keys leave this module, never a key or its hash.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from orbyt.api.keystore import KeyStore
from orbyt.api.routes.files import file_store
from orbyt.api.state import AppState
from orbyt.shared import batchfiles
from orbyt.shared.batchkeys import batch_key, batches_index, file_object
from orbyt.shared.batchstate import BatchState, render
from orbyt.shared.contract import BREAKER_PREFIX, POOLKEY_PREFIX, STATS_PREFIX, wake_channel
from orbyt.shared.errors import NotFound, shown_id
from orbyt.shared.filestore import FileMissing
from orbyt.shared.redis.queue import alive_key, workers_alive
from orbyt.shared.usage import last_used, read_days

MAX_BATCHES = 500


async def keys(st: AppState) -> list[dict[str, Any]]:
    """Every gateway key in Redis with its last-used time (unix seconds or None)."""
    found = await KeyStore(st.redis).list()
    used = await last_used(st.redis, [k.id for k in found])
    return [{**k.public(), "last_used": used.get(k.id)} for k in found]


async def usage_rows(st: AppState, days: list[str]) -> list[Any]:
    return await read_days(st.redis, days)


async def _scan(redis: Redis, prefix: str) -> list[str]:
    return sorted({k.decode() async for k in redis.scan_iter(match=prefix + "*", count=500)})


def _route_parts(route: str) -> tuple[str, str, str]:
    model, _, deployment = route.rpartition("@")
    provider = model.partition("/")[0] if "/" in model else "unknown"
    return provider, model, deployment or "default"


def _state(open_until: int, now_ms: int) -> str:
    if open_until == 0:
        return "closed"
    return "open" if now_ms < open_until else "half_open"


async def routes(st: AppState) -> dict[str, Any]:
    """Every route the workers have seen (breaker, error rate, TTFT), every configured
    provider pool (how many keys, how many cooled or disabled), queue depths and workers."""
    redis, now_ms = st.redis, int(time.time() * 1000)
    breakers = [k[len(BREAKER_PREFIX) :] for k in await _scan(redis, BREAKER_PREFIX)]
    stats = [k[len(STATS_PREFIX) :] for k in await _scan(redis, STATS_PREFIX)]
    names = sorted(set(breakers) | set(stats))
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(BREAKER_PREFIX + name, ["fails", "open_until"])
            pipe.hmget(STATS_PREFIX + name, ["ttft", "err", "n"])
        replies = await pipe.execute()
    pools = await _pools(st)
    rows = []
    for i, name in enumerate(names):
        (fails, open_until), (ttft, err, n) = replies[2 * i], replies[2 * i + 1]
        provider, model, deployment = _route_parts(name)
        until = int(float(open_until or 0))
        pool = pools.get(f"{provider}@{deployment}", {})
        rows.append(
            {
                "route": name,
                "provider": provider,
                "model": model,
                "deployment": deployment,
                "breaker": _state(until, now_ms),
                "consecutive_failures": int(fails or 0),
                "open_until_ms": until or None,
                "error_rate": round(float(err), 4) if err is not None else None,
                "ttft_ewma_ms": round(float(ttft), 1) if ttft is not None else None,
                "observations": int(n or 0),
                "cooled_pool_keys": pool.get("cooled", 0),
                "disabled_pool_keys": pool.get("disabled", 0),
            }
        )
    return {
        "routes": rows,
        "pools": [{"pool": name, **counts} for name, counts in sorted(pools.items())],
        **await _queues(st),
    }


async def _pools(st: AppState) -> dict[str, dict[str, int]]:
    """provider@deployment -> configured / cooled / disabled key counts."""
    pools: dict[str, dict[str, int]] = {}
    for name, cfg in st.settings.providers.items():
        if cfg.deployments:
            for dep in cfg.deployments:
                pools[f"{name}@{dep.name}"] = {"keys": len(dep.keys), "cooled": 0, "disabled": 0}
        else:
            pools[f"{name}@default"] = {"keys": len(cfg.keys), "cooled": 0, "disabled": 0}
    found = await _scan(st.redis, POOLKEY_PREFIX)
    if found:
        flags = await st.redis.mget(found)
        for name, flag in zip(found, flags, strict=True):
            pool = name[len(POOLKEY_PREFIX) :].rpartition(":")[0]
            counts = pools.setdefault(pool, {"keys": 0, "cooled": 0, "disabled": 0})
            if flag == b"off":
                counts["disabled"] += 1
            elif flag is not None:
                counts["cooled"] += 1
    return pools


async def _queues(st: AppState) -> dict[str, Any]:
    queue_redis, chat = st.queue_redis, st.settings.chat_queue
    hosts = await _scan(queue_redis, alive_key(chat, ""))
    return {
        "chat_queue_depth": int(await queue_redis.zcard(chat)),
        "batch_queue_depth": int(await st.redis.zcard(st.settings.batch_queue)),
        "live_worker_hosts": len(hosts),
        "workers_alive": await workers_alive(queue_redis, chat),
    }


def _state_of(st: AppState) -> BatchState:
    return BatchState(st.redis, st.settings.batch_queue)


async def batches(st: AppState, limit: int = 100) -> list[dict[str, Any]]:
    """The newest `limit` batches of every key, each with its owner's key id."""
    limit = min(limit, MAX_BATCHES)
    entries: list[tuple[float, str]] = []
    for index in await _scan(st.redis, batches_index("")):  # each key's newest `limit`
        for bid, score in await st.redis.zrange(index, 0, limit - 1, desc=True, withscores=True):
            entries.append((score, bid.decode()))
    chosen = [bid for _, bid in sorted(entries, reverse=True)[:limit]]
    async with st.redis.pipeline(transaction=False) as pipe:
        for bid in chosen:
            pipe.hgetall(batch_key(bid))
        raws = await pipe.execute()
    out = []
    for raw in raws:
        record = {k.decode(): v.decode() for k, v in raw.items()}
        if record:
            out.append({**render(record), "owner": record.get("owner", "")})
    return out


async def batch(st: AppState, batch_id: str) -> dict[str, str]:
    record = await _state_of(st).get(batch_id)
    if record is None:
        raise NotFound(f"No such Batch object: {shown_id(batch_id)}", param="batch_id")
    return record


async def cancel_batch(st: AppState, batch_id: str) -> dict[str, Any]:
    """Cancel any key's batch (as `POST /v1/batches/{id}/cancel` does for its owner)."""
    await batch(st, batch_id)
    await _state_of(st).cancel(batch_id)
    await st.queue_redis.publish(wake_channel(st.settings.batch_queue), b"1")
    record = await batch(st, batch_id)
    return {**render(record), "owner": record.get("owner", "")}


async def batch_file(st: AppState, batch_id: str, which: str) -> bytes:
    """The bytes of a batch's output or error file ("output" | "error")."""
    record = await batch(st, batch_id)
    file_id = record.get(f"{which}_file_id") or ""
    missing = NotFound(f"Batch {shown_id(batch_id)} has no {which} file.", param="batch_id")
    if not file_id or await batchfiles.get(st.redis, file_id, record["owner"]) is None:
        raise missing
    try:
        return await file_store(st).get(file_object(file_id))
    except FileMissing:
        raise missing from None
