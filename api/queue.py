"""Putting chat jobs on the arq queue, and taking them back when nobody picks them up.

The job is written in arq's own format (`arq.jobs.serialize_job`, JSON serializer) with one
pipelined round trip: job key with a short expiry (= the pickup timeout), queue entry, and a
wake-up message for idle workers.
"""

from __future__ import annotations

import time

import orjson
from arq.jobs import serialize_job
from redis.asyncio import Redis

from shared.contract import (
    ARQ_JOB_PREFIX,
    CANCEL_CHANNEL,
    JOB_FUNCTION,
    ChatJob,
    byok_key,
    cancel_key,
    wake_channel,
)


async def enqueue(redis: Redis, queue: str, job: ChatJob, expires: float) -> None:
    now_ms = int(time.time() * 1000)
    data = serialize_job(JOB_FUNCTION, (job,), {}, 1, now_ms, serializer=orjson.dumps)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.psetex(ARQ_JOB_PREFIX + job["rid"], int(expires * 1000) + 1000, data)
        pipe.zadd(queue, {job["rid"]: now_ms})
        pipe.publish(wake_channel(queue), b"1")
        await pipe.execute()


async def withdraw(redis: Redis, queue: str, rid: str) -> bool:
    """Take a job back off the queue; False if a worker already started it."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(queue, rid)
        pipe.delete(ARQ_JOB_PREFIX + rid, byok_key(rid))
        removed, _ = await pipe.execute()
    return bool(removed)


async def cancel(redis: Redis, rid: str) -> None:
    """The caller went away: tell whichever worker runs the job, and drop its BYOK key."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(cancel_key(rid), b"1", ex=60)
        pipe.delete(byok_key(rid))
        pipe.publish(CANCEL_CHANNEL, rid.encode())
        await pipe.execute()
