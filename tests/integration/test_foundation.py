"""The spine: OpenAI SDK -> API -> arq job -> worker process -> fake upstream -> pub/sub -> SDK."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import FakeOpenAI, Reply
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

pytestmark = pytest.mark.integration

MSG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)


def test_non_stream_matches_the_upstream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(text="Hello there, friend.", usage=(12, 4)))
    via = client(gateway).chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini", messages=MSG, temperature=0.5
    )
    r = via.parse()
    fake_openai.script(Reply(text="Hello there, friend.", usage=(12, 4)))
    direct = openai.OpenAI(
        base_url=fake_openai.base_url, api_key="sk-direct", max_retries=0
    ).chat.completions.create(model="gpt-5-mini", messages=MSG)
    assert r.choices[0].message.content == direct.choices[0].message.content
    assert r.choices[0].finish_reason == direct.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.prompt_tokens == 12 and r.usage.completion_tokens == 4
    assert r.model == "openai/gpt-5-mini" and r.object == "chat.completion"
    assert via.headers["x-orbyt-model"] == "openai/gpt-5-mini"
    assert via.headers["x-orbyt-provider"] == "openai"
    assert via.headers["x-orbyt-attempts"] == "1"
    assert via.headers["x-orbyt-key-source"] == "pool"
    assert via.headers["x-request-id"] and r._request_id == via.headers["x-request-id"]
    seen = fake_openai.requests[0]
    assert seen.json["model"] == "gpt-5-mini" and seen.json["temperature"] == 0.5
    assert "extra" not in seen.json
    assert seen.headers["authorization"] == "Bearer sk-pool-openai-1"


def test_stream_with_usage_matches_the_upstream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(tokens=30, usage=(7, 30)))
    chunks = list(
        client(gateway).chat.completions.create(
            model="openai/gpt-5-mini",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"tok{i}" if i == 0 else f" tok{i}" for i in range(30))
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 30
    assert all(c.model == "openai/gpt-5-mini" for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage_chunk(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tokens=3))
    chunks: list[Any] = list(
        client(gateway).chat.completions.create(
            model="openai/gpt-5-mini", messages=MSG, stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert fake_openai.requests[0].json["stream_options"] == {"include_usage": True}


def test_tool_call_deltas_pass_through_intact(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    calls = [
        {
            "name": "get_weather",
            "arguments": {"city": "Paris", "unit": "celsius"},
            "id": "call_weather1",
        },
        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}, "id": "call_time2"},
    ]
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    fake_openai.script(Reply(tool_calls=calls))
    direct_chunks = list(
        openai.OpenAI(
            base_url=fake_openai.base_url, api_key="k", max_retries=0
        ).chat.completions.create(model="gpt-5-mini", messages=MSG, tools=tools, stream=True)
    )  # type: ignore[arg-type]
    fake_openai.script(Reply(tool_calls=calls))
    via_chunks = list(
        client(gateway).chat.completions.create(
            model="openai/gpt-5-mini", messages=MSG, tools=tools, stream=True
        )
    )  # type: ignore[arg-type]

    def deltas(chunks: list[Any]) -> list[object]:
        return [
            c.choices[0].delta.tool_calls
            for c in chunks  # type: ignore[attr-defined]
            if c.choices and c.choices[0].delta.tool_calls
        ]  # type: ignore[attr-defined]

    assert deltas(via_chunks) == deltas(direct_chunks) and deltas(via_chunks)
    fake_openai.script(Reply(tool_calls=calls))
    with client(gateway).chat.completions.stream(
        model="openai/gpt-5-mini", messages=MSG, tools=tools
    ) as s:  # type: ignore[arg-type]
        final = s.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed is not None and [t.id for t in streamed] == ["call_weather1", "call_time2"]
    assert streamed[0].function.arguments == '{"city": "Paris", "unit": "celsius"}' or json.loads(
        streamed[0].function.arguments
    ) == {"city": "Paris", "unit": "celsius"}
    fake_openai.script(Reply(tool_calls=calls))
    r = client(gateway).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, tools=tools
    )  # type: ignore[arg-type]
    got = r.choices[0].message.tool_calls
    assert got is not None and [t.function.name for t in got] == ["get_weather", "get_time"]
    assert r.choices[0].finish_reason == "tool_calls"


async def test_async_sdk_stream_and_non_stream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    aclient = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    fake_openai.script(Reply(text="async works"))
    r = await aclient.chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert r.choices[0].message.content == "async works"
    fake_openai.script(Reply(text="async streams too"))
    stream = await aclient.chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async streams too"
    await aclient.close()


def test_configured_openai_compatible_upstream(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    r = client(gateway).chat.completions.create(model="myvllm/llama-3-8b", messages=MSG)
    assert r.model == "myvllm/llama-3-8b"
    assert fake_openai.requests[0].json["model"] == "llama-3-8b"


def test_two_workers_share_the_queue(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    assert len(gateway.workers) == 2
    c = client(gateway)
    seen: set[str] = set()
    for _ in range(3):  # a burst of concurrent requests lands on both workers
        threads = []
        for _ in range(16):

            def one() -> None:
                r = c.chat.completions.with_raw_response.create(
                    model="openai/gpt-5-mini", messages=MSG
                )
                seen.add(r.headers["x-request-id"])

            threads.append(threading.Thread(target=one))
        fake_openai.default = Reply(text="x", ttft=0.05)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    fake_openai.default = Reply()
    assert len(seen) == 48
    logs = [(gateway.logdir / f"worker{i}.log") for i in range(2)]
    assert all(p.exists() for p in logs)


async def test_100_concurrent_streams_every_chunk_once_in_order(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Reply(tokens=40, ttft=0.05, per_token=0.002)
    expected = "".join(f"tok{i}" if i == 0 else f" tok{i}" for i in range(40))
    aclient = openai.AsyncOpenAI(
        base_url=gateway.base_url,
        api_key=GATEWAY_KEY,
        max_retries=0,
        http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=200)),
    )

    async def one() -> tuple[str, int]:
        stream = await aclient.chat.completions.create(
            model="openai/gpt-5-mini", messages=MSG, stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return "".join(parts), sum(1 for p in parts if p)

    try:
        results = await asyncio.gather(*(one() for _ in range(100)))
    finally:
        fake_openai.default = Reply()
        await aclient.close()
    assert all(text == expected and n == 40 for text, n in results)


def test_client_disconnect_closes_the_upstream_within_a_second(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tokens=400, per_token=0.05))
    stream = client(gateway).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, stream=True
    )
    got = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got += 1
        if got == 5:
            break
    stream.close()
    closed_at = time.monotonic()
    assert fake_openai.wait_for_disconnects(1, timeout=3)
    assert fake_openai.disconnects[0] - closed_at < 1.0


def test_non_stream_disconnect_cancels_the_job(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(text="slow", headers_delay=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.base_url + "/chat/completions",
            timeout=1.0,
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
            json={"model": "openai/gpt-5-mini", "messages": MSG},
        )
    closed_at = time.monotonic()
    assert fake_openai.wait_for_disconnects(1, timeout=3)
    assert fake_openai.disconnects[0] - closed_at < 1.0


def test_no_worker_gives_503_within_the_pickup_timeout(
    redis_server: RedisServer, fake_openai: FakeOpenAI
) -> None:
    env = {
        "ORBYT_PROVIDERS__OPENAI__BASE_URL": fake_openai.base_url,
        "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-x",
        "ORBYT_PICKUP_TIMEOUT": "1",
    }
    with Gateway(redis_server.new_db_url(), env, workers=0) as gw:
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as info:
            client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
        assert time.monotonic() - started < 2.5
        assert info.value.status_code == 503
        assert "No worker picked up" in info.value.message
        # the job was taken back: a worker that starts later never runs it
        gw.start_worker()
        gw.wait_ready()
        time.sleep(0.5)
        assert fake_openai.requests == []


def test_upstream_error_is_an_openai_error(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    from tests.fakes import Error

    fake_openai.script(Error(400, kind="content_policy"))
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.body is not None
