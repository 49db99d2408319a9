"""Batch records and line bookkeeping in the state Redis (DESIGN §7), shared by the API
(create, read, list, cancel) and the worker (claim, record, defer, renew, finish).

A batch record is one hash (`shared.batchkeys.batch_key`): the OpenAI fields, the owner,
the counters (`total`, `completed`, `failed`, `inflight`), the cursor `next` (the position
reached: lines below it have been handed out) and `end` (why a batch stops early: cancel or
expire). Line state changes are the Lua scripts of `shared.batchlua`, so each is atomic.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from orbyt.shared import batchlua
from orbyt.shared.batchkeys import (
    BATCH_PREFIX,
    batch_key,
    batches_index,
    finalize_key,
    line_member,
    outcomes_key,
    retry_key,
    running_key,
)

GKID_PREFIX = "orbyt:gkid:"  # api.keystore's names: a revoked owner stops its batches
GK_PREFIX = "orbyt:gk:"
_TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


def _int(record: dict[str, str], name: str) -> int | None:
    value = record.get(name)
    return int(value) if value else None


def render(record: dict[str, str]) -> dict[str, Any]:
    """The OpenAI `batch` object of a record."""
    out: dict[str, Any] = {
        "id": record["id"],
        "object": "batch",
        "endpoint": record["endpoint"],
        "model": record.get("model") or None,
        "errors": orjson.loads(record["errors"]) if record.get("errors") else None,
        "input_file_id": record["input_file_id"],
        "completion_window": record["completion_window"],
        "status": record["status"],
        "output_file_id": record.get("output_file_id") or None,
        "error_file_id": record.get("error_file_id") or None,
        "created_at": int(record["created_at"]),
        "request_counts": {
            "total": int(record.get("total") or 0),
            "completed": int(record.get("completed") or 0),
            "failed": int(record.get("failed") or 0),
        },
        "metadata": orjson.loads(record["metadata"]) if record.get("metadata") else None,
    }
    for name in _TIMESTAMPS:
        out[name] = _int(record, name)
    inp, outp = int(record.get("input_tokens") or 0), int(record.get("output_tokens") or 0)
    out["usage"] = {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": outp,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + outp,
    }
    return out


@dataclass(frozen=True, slots=True)
class Claimed:
    lines: list[tuple[str, int]]  # (batch id, line index), leased to this worker
    finals: list[str]  # batch ids whose finalization this worker owns


class BatchState:
    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis = redis
        self.queue = queue
        self.running = running_key(queue)
        self.finalize = finalize_key(queue)
        self._claim = redis.register_script(batchlua.CLAIM)
        self._record = redis.register_script(batchlua.RECORD)
        self._defer = redis.register_script(batchlua.DEFER)
        self._cancel = redis.register_script(batchlua.CANCEL)

    # ---------------------------------------------------------------- API side
    async def create(self, record: dict[str, str], runnable: bool) -> None:
        """Write a new batch; a runnable one joins the queue in the same transaction."""
        bid, now_ms = record["id"], int(record["created_ms"])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(batch_key(bid), mapping=record)
            pipe.zadd(batches_index(record["owner"]), {bid: now_ms})
            if runnable:
                pipe.zadd(self.queue, {bid: now_ms})
            await pipe.execute()

    async def get(self, batch_id: str, owner: str | None = None) -> dict[str, str] | None:
        raw = await self.redis.hgetall(batch_key(batch_id))  # type: ignore[misc]
        record = {k.decode(): v.decode() for k, v in raw.items()}
        if not record or (owner is not None and record.get("owner") != owner):
            return None
        return record

    async def list_ids(self, owner: str) -> list[str]:
        ids = await self.redis.zrange(batches_index(owner), 0, -1, desc=True)
        return [i.decode() for i in ids]

    async def cancel(self, batch_id: str) -> bool:
        keys = [batch_key(batch_id), self.queue, self.finalize]
        return bool(await self._cancel(keys=keys, args=[batch_id, _now_ms()]))

    # ---------------------------------------------------------------- worker side
    async def claim(self, want: int, cap: int, lease: float, chat_queue: str) -> Claimed:
        lines, finals = await self._claim(
            keys=[self.queue, self.running, self.finalize, chat_queue],
            args=[_now_ms(), want, cap, int(lease * 1000), BATCH_PREFIX, GKID_PREFIX, GK_PREFIX],
        )
        pairs = [(lines[i].decode(), int(lines[i + 1])) for i in range(0, len(lines), 2)]
        return Claimed(pairs, [b.decode() for b in finals])

    async def record(
        self,
        batch_id: str,
        line: int,
        ok: bool,
        output: bytes,
        tokens: tuple[int, int],
        usage: tuple[str, int, dict[str, int]] | None,
    ) -> bool:
        """Record a line's outcome and mark it done, atomically; False if it already had one.
        `usage` = (usage hash key, TTL seconds, counter increments), billed in the same step."""
        keys = [batch_key(batch_id), self.running, self.finalize, self.queue]
        args: list[Any] = [batch_id, line, (b"1" if ok else b"0") + output, int(ok), _now_ms()]
        args += [tokens[0], tokens[1]]
        if usage is None:
            keys.append(batch_key(batch_id))  # unused
            args.append(0)
        else:
            key, ttl, counters = usage
            keys.append(key)
            args.append(ttl)
            for name, value in counters.items():
                args += [name, value]
        return bool(await self._record(keys=keys, args=args))

    async def defer(self, batch_id: str, line: int, delay: float) -> None:
        now = _now_ms()
        keys = [batch_key(batch_id), self.running, self.finalize, self.queue]
        await self._defer(keys=keys, args=[batch_id, line, now + int(delay * 1000), now])

    async def renew(self, lines: list[tuple[str, int]], lease: float) -> None:
        """Extend the leases of lines still running here (never re-adds a reaped one)."""
        if not lines:
            return
        until = _now_ms() + int(lease * 1000)
        await self.redis.zadd(self.running, {line_member(b, i): until for b, i in lines}, xx=True)

    async def outcomes(self, batch_id: str) -> dict[int, bytes]:
        raw = await self.redis.hgetall(outcomes_key(batch_id))  # type: ignore[misc]
        return {int(k): v for k, v in raw.items()}

    async def finish(self, batch_id: str, fields: dict[str, str]) -> None:
        """The batch's final state; its outcomes now live in its output files."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(batch_key(batch_id), mapping=fields)
            pipe.delete(outcomes_key(batch_id), retry_key(batch_id))
            pipe.zrem(self.finalize, batch_id)
            pipe.zrem(self.queue, batch_id)
            await pipe.execute()

    async def drop_final(self, batch_id: str) -> None:
        await self.redis.zrem(self.finalize, batch_id)


def _now_ms() -> int:
    return int(time.time() * 1000)
