"""In-process worker tests: a real redis-server (one database per test), the fake upstreams
on loopback, and the worker's own objects driven directly (no worker process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from orbyt.shared.contract import (
    DONE,
    ERROR,
    Candidate,
    ChatJob,
    Frame,
    decode_frame,
    reply_channel,
)
from orbyt.shared.settings import ProviderConfig, Settings
from orbyt.worker.context import WorkerContext
from tests.fakes import FakeOpenAI
from tests.gateway import RedisServer


def settings_for(redis_url: str, fake: FakeOpenAI, **overrides: Any) -> Settings:
    providers = {
        "openai": ProviderConfig(base_url=fake.base_url, keys=["sk-pool-openai-1"]),
        "myvllm": ProviderConfig(adapter="openai", base_url=fake.base_url, keys=["sk-vllm-1"]),
    }
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "providers": providers,
        "worker_metrics_port": 0,
        "backoff_base": 0.01,
        "backoff_cap": 0.02,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.new_db_url()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def context(
    redis_url: str, redis: Redis, fake_openai: FakeOpenAI
) -> AsyncIterator[WorkerContext]:
    ctx = WorkerContext.create(settings_for(redis_url, fake_openai), redis)
    yield ctx
    await ctx.close()


def candidate(model: str, key_source: str = "pool") -> Candidate:
    provider, _, upstream = model.partition("/")
    return Candidate(model=model, provider=provider, upstream=upstream, key_source=key_source)


def chat_job(
    *models: str, stream: bool = True, retry: int = 0, timeout: float = 10.0, **body: Any
) -> ChatJob:
    rid = uuid.uuid4().hex
    return ChatJob(
        rid=rid,
        channel=reply_channel(rid),
        body={
            "model": models[0],
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
            **body,
        },
        plan=[candidate(m) for m in models],
        strategy="ordered",
        key_id="test",
        deadline=time.time() + timeout,
        byok=False,
        retry=retry,
        stream=stream,
        include_usage=False,
    )


class Frames:
    """Subscribes to one reply channel and collects its frames."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._pubsub = redis.pubsub()
        self._channel = channel
        self.frames: list[Frame] = []

    async def __aenter__(self) -> Frames:
        await self._pubsub.subscribe(self._channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()

    async def until_end(self, timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the terminal one."""
        async with asyncio.timeout(timeout):
            while not self.frames or self.frames[-1].kind not in (DONE, ERROR):
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if msg is not None:
                    self.frames.append(decode_frame(msg["data"]))
        return self.frames

    async def drain(self, seconds: float) -> list[Frame]:
        """Whatever arrives within `seconds`."""
        end = asyncio.get_running_loop().time() + seconds
        while (left := end - asyncio.get_running_loop().time()) > 0:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if msg is not None:
                self.frames.append(decode_frame(msg["data"]))
        return self.frames
