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

from orbyt.shared.contract import (
    ARQ_JOB_PREFIX,
    CANCEL_CHANNEL,
    JOB_FUNCTION,
    ChatJob,
    byok_key,
    cancel_key,
    wake_channel,
)
from orbyt.shared.resp import PipelinedConnection, command, reply_error


async def enqueue(
    fast: PipelinedConnection,
    queue: str,
    job: ChatJob,
    expires: float,
    sidecar: tuple[str, bytes, int] | None = None,
) -> None:
    """One MULTI on the API's pipelined connection: the BYOK side-car (if any) is written
    before the job can exist, then the job, its queue entry and the wake-up."""
    now_ms = int(time.time() * 1000)
    data = serialize_job(JOB_FUNCTION, (job,), {}, 1, now_ms, serializer=orjson.dumps)
    rid = job["rid"].encode()
    commands = [command(b"MULTI")]
    if sidecar is not None:
        key, blob, ttl_ms = sidecar
        commands.append(command(b"SET", key.encode(), blob, b"PX", b"%d" % ttl_ms))
    commands += [
        command(
            b"SET", ARQ_JOB_PREFIX.encode() + rid, data, b"PX", b"%d" % (int(expires * 1000) + 1000)
        ),
        command(b"ZADD", queue.encode(), b"%d" % now_ms, rid),
        command(b"PUBLISH", wake_channel(queue).encode(), b"1"),
        command(b"EXEC"),
    ]
    replies = await fast.execute(*commands)
    problem = reply_error(replies)
    if problem:
        raise ConnectionError(f"enqueue failed: {problem}")


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
