"""Issue 10 item 6, worker side, in process on a real redis-server: a job cancelled before
pickup never starts, and a cancel that races the claim is honoured before the upstream is
called; a cancel of a running job closes its upstream call."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator

import orjson
import pytest
from arq.constants import in_progress_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

from orbyt.shared.contract import (
    ARQ_JOB_PREFIX,
    CANCEL_CHANNEL,
    JOB_FUNCTION,
    ChatJob,
    byok_key,
    cancel_key,
)
from orbyt.worker.app import OrbytWorker, build_worker
from tests.fakes import FakeOpenAI, Hang

from .conftest import Frames, chat_job, settings_for

QUEUE = "orbyt:chat"


@pytest.fixture
async def worker(
    redis_url: str, redis: Redis, fake_openai: FakeOpenAI
) -> AsyncIterator[OrbytWorker]:
    worker = build_worker(settings_for(redis_url, fake_openai), burst=True)
    yield worker
    with warnings.catch_warnings():  # arq's close() calls redis-py's deprecated close()
        warnings.simplefilter("ignore", DeprecationWarning)
        await worker.close()


async def _enqueue(redis: Redis, job: ChatJob) -> None:
    """What the API's enqueue writes: the job in arq's format, its queue entry, a side-car."""
    now_ms = int(time.time() * 1000)
    data = serialize_job(JOB_FUNCTION, (job,), {}, 1, now_ms, serializer=orjson.dumps)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(byok_key(job["rid"]), b"sealed", px=30_000)
        pipe.set(ARQ_JOB_PREFIX + job["rid"], data, px=30_000)
        pipe.zadd(QUEUE, {job["rid"]: now_ms})
        await pipe.execute()


async def test_a_job_cancelled_before_pickup_never_starts(
    worker: OrbytWorker, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    job = chat_job("openai/gpt-4o-mini")
    await redis.set(cancel_key(job["rid"]), b"1", ex=60)
    await _enqueue(redis, job)
    async with Frames(redis, job["channel"]) as frames:
        async with asyncio.timeout(10):
            await worker.main()  # burst: returns once the queue is empty and nothing runs
        assert await frames.drain(0.2) == []
    assert fake_openai.requests == []
    assert worker.jobs_complete == 0 and not worker.tasks
    for key in (ARQ_JOB_PREFIX, in_progress_key_prefix, "orbyt:byok:"):
        assert not await redis.exists(key + job["rid"])
    assert not await redis.zcard(QUEUE)


async def test_a_cancel_that_races_the_claim_is_honoured_before_the_upstream_call(
    worker: OrbytWorker, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    await worker.prepare()
    listener = asyncio.create_task(worker.listen())
    try:
        await asyncio.sleep(0.1)  # subscribed
        job = chat_job("openai/gpt-4o-mini")
        await _enqueue(redis, job)
        claimed = await worker.claim()
        assert [job_id for job_id, _ in claimed] == [job["rid"]]
        await redis.publish(CANCEL_CHANNEL, job["rid"])  # after the claim, before the start
        async with asyncio.timeout(2):
            while not worker.context.jobs.cancelled(job["rid"]):
                await asyncio.sleep(0.01)
        async with Frames(redis, job["channel"]) as frames:
            await worker.start_job(*claimed[0])
            assert await frames.drain(0.2) == []
    finally:
        listener.cancel()
    assert fake_openai.requests == []


async def test_a_cancel_of_a_running_job_closes_its_upstream_call(
    worker: OrbytWorker, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Hang())
    await worker.prepare()
    listener = asyncio.create_task(worker.listen())
    try:
        await asyncio.sleep(0.1)
        job = chat_job("openai/gpt-4o-mini")
        await _enqueue(redis, job)
        async with Frames(redis, job["channel"]) as frames:
            (claimed,) = await worker.claim()
            task = worker.start_job(*claimed)
            async with asyncio.timeout(5):
                while not fake_openai.requests:
                    await asyncio.sleep(0.01)
            await redis.publish(CANCEL_CHANNEL, job["rid"])
            async with asyncio.timeout(2):
                await task
            assert fake_openai.wait_for_disconnects(1, timeout=2.0)
            assert [f.kind for f in await frames.drain(0.1)] == [b"S"]
    finally:
        listener.cancel()
