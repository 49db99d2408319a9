"""The chat queue protocol, shared by the API (enqueue, withdraw, abandon) and the workers
(claim, finish, liveness). All of it lives on the queue role's Redis.

Keys: the job `arq:job:{rid}` (arq's format, JSON serializer, PX = pickup timeout), its
entry in the queue sorted set (score: enqueue time ms), the claimed marker
`arq:in-progress:{rid}`, the wake-up channel `orbyt:wake:{queue}`, the cancel key and
channel (`orbyt:cancel:{rid}`, `orbyt:cancel`), the BYOK side-car `orbyt:byok:{rid}`, and
arq's worker health record `{queue}:health-check`, and one liveness key per worker host
`orbyt:alive:{queue}:{host}` (the container health check). arq's names come from `arq_fence`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from orbyt.shared.contract import CANCEL_CHANNEL, JOB_FUNCTION, ChatJob, byok_key, cancel_key
from orbyt.shared.contract import wake_channel as wake_channel
from orbyt.shared.redis import arq_fence
from orbyt.shared.redis.fast import PipelinedConnection, reply_error, send_and_forget
from orbyt.shared.redis.link import Conn, command


def job_key(rid: str) -> str:
    return arq_fence.JOB_PREFIX + rid


def in_progress_key(rid: str) -> str:
    return arq_fence.IN_PROGRESS_PREFIX + rid


def encode_job(job: ChatJob, now_ms: int) -> bytes:
    """A chat job in arq's wire format (what `decode_job` and arq itself read)."""
    return arq_fence.serialize_job(JOB_FUNCTION, (job,), {}, 1, now_ms, serializer=orjson.dumps)


def decode_job(data: bytes) -> tuple[ChatJob, int]:
    """(job, enqueue time ms) of a claimed job; ValueError if it is not a chat job."""
    function, args, _, _, enqueued_ms = arq_fence.deserialize_job_raw(
        data, deserializer=orjson.loads
    )
    if function != JOB_FUNCTION or len(args) != 1:
        raise ValueError(f"unknown job function {function!r}")
    return cast("ChatJob", args[0]), enqueued_ms


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
    data = encode_job(job, now_ms)
    rid = job["rid"].encode()
    commands = [command(b"MULTI")]
    if sidecar is not None:
        key, blob, ttl_ms = sidecar
        commands.append(command(b"SET", key.encode(), blob, b"PX", b"%d" % ttl_ms))
    commands += [
        command(
            b"SET",
            arq_fence.JOB_PREFIX.encode() + rid,
            data,
            b"PX",
            b"%d" % (int(expires * 1000) + 1000),
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
        pipe.delete(job_key(rid), byok_key(rid))
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
    keys = [cancel_key(rid), queue, job_key(rid), byok_key(rid)]
    withdrawn = await cast("Awaitable[int]", redis.eval(_ABANDON, 4, *keys, rid, CANCEL_CHANNEL))
    return bool(withdrawn)


# KEYS: queue. ARGV: now_ms, limit, in-progress PX ms, in-progress key prefix, job prefix,
# cancel key prefix, BYOK key prefix. Returns [job_id, job data, ...] of the jobs this worker
# now owns. A job whose data is gone (withdrawn by the API after the pickup timeout, or
# expired) or whose caller cancelled it before pickup (its cancel key exists) is dropped
# here, with its data and BYOK side-car: it never starts.
_CLAIM = """
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
                         tonumber(ARGV[2]))
local out = {}
for i = 1, #ready do
  local id = ready[i]
  redis.call('ZREM', KEYS[1], id)
  if redis.call('SET', ARGV[4] .. id, '1', 'NX', 'PX', tonumber(ARGV[3])) then
    local data = redis.call('GET', ARGV[5] .. id)
    if data and redis.call('EXISTS', ARGV[6] .. id) == 0 then
      out[#out + 1] = id
      out[#out + 1] = data
    else
      redis.call('DEL', ARGV[4] .. id, ARGV[5] .. id, ARGV[7] .. id)
    end
  end
end
return out
"""


class Claimer:
    """The worker's side: one Lua call per poll claims every ready job it has room for
    (removed from the queue, marked in progress, data read, atomically)."""

    def __init__(self, redis: Redis, queue: str, in_progress_s: float) -> None:
        self._script: Callable[..., Awaitable[Any]] = redis.register_script(_CLAIM)
        self._queue = queue
        self._in_progress_ms = int(in_progress_s * 1000)

    async def claim(self, limit: int) -> list[tuple[str, bytes]]:
        """(job id, job data) of up to `limit` ready jobs, now this worker's."""
        claimed = await self._script(
            keys=[self._queue],
            args=[
                arq_fence.timestamp_ms(),
                limit,
                self._in_progress_ms,
                arq_fence.IN_PROGRESS_PREFIX,
                arq_fence.JOB_PREFIX,
                cancel_key(""),
                byok_key(""),
            ],
        )
        return [(claimed[i].decode(), claimed[i + 1]) for i in range(0, len(claimed), 2)]


def finished(conn: Conn, rid: str) -> None:
    """A job ended: its data and claimed marker go, fire-and-forget on the fast connection."""
    send_and_forget(conn, command(b"DEL", job_key(rid).encode(), in_progress_key(rid).encode()))


ALIVE_EVERY = 2.0  # seconds between a worker's liveness writes
ALIVE_FOR = 10.0  # a worker not heard from this long is not alive


def alive_key(queue: str, host: str) -> str:
    return f"orbyt:alive:{queue}:{host}"


async def mark_alive(redis: Redis, queue: str, host: str) -> None:
    """A worker on `host` (its container) is polling `queue`."""
    await redis.set(alive_key(queue, host), b"1", px=int(ALIVE_FOR * 1000))


async def host_alive(redis: Redis, queue: str, host: str) -> bool:
    """Whether a worker on `host` polled `queue` recently (`orbyt worker --check`)."""
    return bool(await redis.exists(alive_key(queue, host)))


async def workers_alive(redis: Redis, queue: str) -> bool:
    """Whether some worker of `queue` refreshed arq's health record recently."""
    return bool(await redis.exists(arq_fence.health_key(queue)))
