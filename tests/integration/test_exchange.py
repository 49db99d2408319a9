"""The chat exchange at ASGI level, in-process, against a real redis-server.

The API app is driven by hand (`receive` / `send`), and the worker is played by the test:
it takes the job off the queue and publishes frames as a worker would (`encode_frame`).
So each step of `api.exchange` can be stopped at will: a client leaving before pickup,
after pickup, a reply whose headers carry any characters at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from orbyt.api.main import create_asgi
from orbyt.shared.contract import (
    ARQ_JOB_PREFIX,
    CANCEL_CHANNEL,
    DELTA,
    DONE,
    ERROR,
    START,
    cancel_key,
    encode_frame,
    reply_channel,
)
from orbyt.shared.settings import ProviderConfig, Settings
from tests.gateway import GATEWAY_KEY, RedisServer

QUEUE = "orbyt:chat"
MSG = [{"role": "user", "content": "Say hi"}]
ODD_MODEL = "模型-🙂-\u202eevil\r\nx-injected: 1"


def settings(url: str, **kw: Any) -> Settings:
    return Settings(
        redis_url=url,
        gateway_keys=[SecretStr(GATEWAY_KEY)],
        providers={"openai": ProviderConfig(keys=[SecretStr("sk-pool")])},
        pickup_timeout=5,
        heartbeat_timeout=5,
        **kw,
    )


class Caller:
    """One HTTP client, hand-driven: sends its body, then waits until told to hang up."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = orjson.dumps(body)
        self.sent: list[dict[str, Any]] = []
        self.hang_up = asyncio.Event()
        self._read = False

    async def receive(self) -> dict[str, Any]:
        if not self._read:
            self._read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def content(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {GATEWAY_KEY}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


class Env:
    def __init__(self, asgi: Any, redis: Redis) -> None:
        self.asgi = asgi
        self.redis = redis

    def call(self, caller: Caller) -> asyncio.Task[None]:
        return asyncio.create_task(self.asgi(scope(), caller.receive, caller.send))

    async def claim(self) -> str:
        """Play the worker's claim: the next job off the queue; its request id."""
        for _ in range(200):
            ready = await self.redis.zrange(QUEUE, 0, 0)
            if ready and await self.redis.zrem(QUEUE, ready[0]):
                return str(ready[0].decode())
            await asyncio.sleep(0.01)
        raise AssertionError("no job was enqueued")

    async def publish(self, rid: str, *frames: tuple[bytes, dict[str, Any] | None, bytes]) -> None:
        for seq, (kind, meta, payload) in enumerate(frames):
            await self.redis.publish(reply_channel(rid), encode_frame(kind, seq, meta, payload))


@pytest.fixture
async def env(redis_server: RedisServer) -> AsyncIterator[Env]:
    url = redis_server.new_db_url()
    asgi = create_asgi(settings(url))
    redis = Redis.from_url(url)
    await redis.flushdb()
    async with asgi.app.router.lifespan_context(asgi.app):
        yield Env(asgi, redis)
    await redis.aclose()


def meta(model: str = "openai/gpt-5-mini") -> dict[str, Any]:
    return {"model": model, "provider": "openai", "attempts": 1, "key_source": "pool"}


async def test_a_client_gone_before_pickup_withdraws_the_job_quietly(env: Env) -> None:
    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG})
    task = env.call(caller)
    for _ in range(200):
        if await env.redis.zcard(QUEUE):
            break
        await asyncio.sleep(0.01)
    (rid,) = [r.decode() for r in await env.redis.zrange(QUEUE, 0, -1)]
    caller.hang_up.set()
    await asyncio.wait_for(task, 2)  # returns: no exception reaches the server
    assert caller.sent == []
    for _ in range(100):
        if await env.redis.exists(cancel_key(rid)):
            break
        await asyncio.sleep(0.01)
    assert await env.redis.exists(cancel_key(rid)) == 1  # set first: a racing claim sees it
    assert await env.redis.zcard(QUEUE) == 0
    assert await env.redis.exists(ARQ_JOB_PREFIX + rid) == 0


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
async def test_a_client_gone_after_pickup_cancels_the_job_quietly(env: Env, stream: bool) -> None:
    cancels = env.redis.pubsub()
    await cancels.subscribe(CANCEL_CHANNEL)
    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG, "stream": stream})
    task = env.call(caller)
    rid = await env.claim()
    await env.publish(rid, (START, {"worker": "test"}, b""))
    await asyncio.sleep(0.05)
    caller.hang_up.set()
    await asyncio.wait_for(task, 2)
    assert caller.sent == []
    message = None
    for _ in range(100):
        message = await cancels.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message:
            break
    assert message is not None and message["data"] == rid.encode()
    assert await env.redis.exists(cancel_key(rid)) == 1
    await cancels.aclose()


async def test_any_model_id_renders_in_the_headers_of_an_answer(env: Env) -> None:
    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG})
    task = env.call(caller)
    rid = await env.claim()
    answer = orjson.dumps({"object": "chat.completion", "model": ODD_MODEL})
    await env.publish(rid, (START, None, b""), (DONE, meta(ODD_MODEL), answer))
    await asyncio.wait_for(task, 2)
    assert caller.status == 200 and caller.content == answer
    value = caller.headers[b"x-orbyt-model"]
    assert value.isascii() and b"\r" not in value and b"\n" not in value
    assert unquote(value.decode()) == ODD_MODEL
    assert caller.headers[b"x-content-type-options"] == b"nosniff"


async def test_any_header_renders_in_a_stream_and_in_an_error(env: Env) -> None:
    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG, "stream": True})
    task = env.call(caller)
    rid = await env.claim()
    await env.publish(
        rid,
        (START, None, b""),
        (DELTA, meta(ODD_MODEL), b"data: {}\n\n"),
        (DONE, meta(ODD_MODEL), b""),
    )
    await asyncio.wait_for(task, 2)
    assert caller.status == 200
    assert unquote(caller.headers[b"x-orbyt-model"].decode()) == ODD_MODEL
    assert caller.content == b"data: {}\n\ndata: [DONE]\n\n"

    caller = Caller({"model": "openai/gpt-5-mini", "messages": MSG})
    task = env.call(caller)
    rid = await env.claim()
    error = orjson.dumps({"error": {"message": "no", "type": "server_error"}})
    upstream = {"status": 503, "attempts": 2, "headers": {"x-upstream-note": "café ☕"}}
    await env.publish(rid, (START, None, b""), (ERROR, upstream, error))
    await asyncio.wait_for(task, 2)
    assert caller.status == 503 and caller.content == error
    assert unquote(caller.headers[b"x-upstream-note"].decode()) == "café ☕"
    assert caller.headers[b"x-orbyt-attempts"] == b"2"


@pytest.mark.parametrize("key", [None, "metrics-secret-1"])
async def test_metrics_openapi_and_docs_behind_the_metrics_key_when_set(
    redis_server: RedisServer, key: str | None
) -> None:
    extra = {"metrics_key": SecretStr(key)} if key else {}
    asgi = create_asgi(settings(redis_server.new_db_url(), **extra))
    transport = httpx.ASGITransport(app=asgi)
    async with (
        asgi.app.router.lifespan_context(asgi.app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
            bare = await client.get(path)
            keyed = await client.get(path, headers={"authorization": f"Bearer {key}"})
            if key is None:
                assert bare.status_code == 200
            else:
                assert bare.status_code == 401
                assert bare.json()["error"]["type"] == "authentication_error"
                assert keyed.status_code == 200
        assert (await client.get("/healthz")).status_code == 200  # never behind the key
        schema = await client.get("/openapi.json", headers={"authorization": f"Bearer {key}"})
        chat = schema.json()["paths"]["/v1/chat/completions"]["post"]
        assert chat["requestBody"]["content"]["application/json"]["schema"]["properties"]["model"]


async def test_a_client_gone_before_its_body_arrived_is_no_error(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(env.asgi(scope(), receive, send), 2)
    assert sent == []
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert await env.redis.zcard(QUEUE) == 0
