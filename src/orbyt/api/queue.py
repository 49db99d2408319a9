"""Putting chat jobs on the arq queue, taking them back, and calling them off.

The job is written in arq's own format (`arq.jobs.serialize_job`, JSON serializer) with one
pipelined round trip: job key with a short expiry (= the pickup timeout), queue entry, and a
wake-up message for idle workers. `withdraw` takes back a job nobody picked up in time;
`abandon` calls off a job whose caller went away, wherever it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import cast

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


# KEYS: cancel key, queue, job key, BYOK side-car. ARGV: rid, cancel channel.
# The cancel key is set first, so a worker claiming the job at this very moment sees it
# before calling the upstream; a job still queued is withdrawn (it never starts); a job a
# worker already holds is told over the cancel channel. Returns 1 if withdrawn.
_ABANDON = """
redis.call('SET', KEYS[1], '1', 'EX', 60)
redis.call('DEL', KEYS[4])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 1
end
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 0
"""


async def abandon(redis: Redis, queue: str, rid: str) -> bool:
    """The caller went away: the job never starts, or its worker stops; its BYOK side-car
    is deleted either way. True if it was still queued (withdrawn)."""
    keys = [cancel_key(rid), queue, ARQ_JOB_PREFIX + rid, byok_key(rid)]
    withdrawn = await cast("Awaitable[int]", redis.eval(_ABANDON, 4, *keys, rid, CANCEL_CHANNEL))
    return bool(withdrawn)
