"""The engine's attempt walk, in process: `serve` against the fake OpenAI upstream on
loopback, with the reply frames read back from a real redis-server."""

from __future__ import annotations

import time

import orjson
from redis.asyncio import Redis

from orbyt.shared.contract import DELTA, DONE, ERROR, HEARTBEAT, START, Frame
from orbyt.shared.secret import Secret
from orbyt.worker.context import WorkerContext
from orbyt.worker.engine import run_chat
from orbyt.worker.publisher import Publisher
from orbyt.worker.reply import Reply as JobReply
from orbyt.worker.serve import serve
from tests.fakes import DEFAULT_TEXT, Error, FakeOpenAI, Reply

from .conftest import Frames, candidate, chat_job


def _text(frames: list[Frame]) -> str:
    out = []
    for frame in frames:
        if frame.kind != DELTA:
            continue
        for line in frame.payload.split(b"\n\n"):
            if line.startswith(b"data: "):
                for choice in orjson.loads(line[6:])["choices"]:
                    out.append(choice["delta"].get("content") or "")
    return "".join(out)


def _kinds(frames: list[Frame]) -> list[bytes]:
    return [f.kind for f in frames if f.kind != HEARTBEAT]


async def _serve(ctx: WorkerContext, redis: Redis, job: dict) -> list[Frame]:
    async with Frames(redis, job["channel"]) as frames:
        await serve(ctx, job, int(time.time() * 1000))  # type: ignore[arg-type]
        return await frames.until_end()


async def test_stream_answer_frames(context: WorkerContext, redis: Redis) -> None:
    frames = await _serve(context, redis, chat_job("openai/gpt-4o-mini"))
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert frames[0].kind == START and frames[0].meta == {"worker": context.worker_id}
    assert frames[1].kind == DELTA
    assert frames[1].meta == {
        "model": "openai/gpt-4o-mini",
        "provider": "openai",
        "attempts": 1,
        "key_source": "pool",
    }
    assert all(f.meta is None for f in frames[2:-1])
    assert frames[-1].kind == DONE and frames[-1].meta["attempts"] == 1
    assert _text(frames) == DEFAULT_TEXT


async def test_retry_on_the_same_route_then_answer(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Error(500), Reply(text="second time"))
    frames = await _serve(context, redis, chat_job("openai/gpt-4o-mini", retry=1))
    assert _kinds(frames)[-1] == DONE and frames[-1].meta["attempts"] == 2
    assert _text(frames) == "second time"
    assert len(fake_openai.requests) == 2


async def test_fallback_to_the_next_route(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Error(503), Reply(text="from the fallback"))
    job = chat_job("openai/gpt-4o-mini", "myvllm/local-model")
    frames = await _serve(context, redis, job)
    assert frames[-1].kind == DONE
    assert frames[-1].meta["model"] == "myvllm/local-model"
    assert frames[-1].meta["attempts"] == 2
    assert _text(frames) == "from the fallback"
    assert [r.json["model"] for r in fake_openai.requests] == ["gpt-4o-mini", "local-model"]


async def test_final_refusal_of_the_primary_ends_the_walk(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Error(400, message="bad request"))
    frames = await _serve(context, redis, chat_job("openai/gpt-4o-mini", "myvllm/local-model"))
    assert _kinds(frames) == [START, ERROR]
    assert frames[-1].meta["status"] == 400 and frames[-1].meta["attempts"] == 1
    assert len(fake_openai.requests) == 1


async def test_non_stream_answer(context: WorkerContext, redis: Redis) -> None:
    job = chat_job("openai/gpt-4o-mini", stream=False)
    frames = await _serve(context, redis, job)
    assert _kinds(frames) == [START, DONE]
    body = orjson.loads(frames[-1].payload)
    assert body["id"] == f"chatcmpl-{job['rid']}" and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert frames[-1].meta["usage"] == body["usage"]


async def test_stream_cut_after_content_ends_with_an_in_band_error(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tokens=6, cut_after=3))
    frames = await _serve(context, redis, chat_job("openai/gpt-4o-mini"))
    kinds = _kinds(frames)
    assert kinds[0] == START and kinds[-1] == ERROR and DELTA in kinds
    assert _text(frames) == "tok0 tok1 tok2"
    assert orjson.loads(frames[-1].payload)["error"]["code"] == "upstream_stream_cut"


async def test_every_route_failing_reports_the_primary_error(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Error(503), Error(502))
    frames = await _serve(context, redis, chat_job("openai/gpt-4o-mini", "myvllm/local-model"))
    assert frames[-1].kind == ERROR
    assert frames[-1].meta["status"] == 503 and frames[-1].meta["attempts"] == 2


async def test_a_quoted_byok_key_is_scrubbed_at_the_attempt_boundary(
    context: WorkerContext, redis: Redis, fake_openai: FakeOpenAI
) -> None:
    key = "sk-caller-0123456789abcdef"
    # a refusal that is not about the key keeps its text, with the quoted key masked (an
    # upstream 401 on a BYOK route gets Orbyt's own message instead: test_byok_scrub.py)
    fake_openai.script(Error(400, message=f"Bad request made with key {key}"))
    job = chat_job("openai/gpt-4o-mini")
    job["plan"] = [candidate("openai/gpt-4o-mini", key_source="byok")]
    pub = Publisher(context.publisher, job["channel"], 10.0, lambda: None)
    async with Frames(redis, job["channel"]) as frames:
        reply = JobReply(pub, "chatcmpl-x", 0)
        await run_chat(context, job, reply, {"openai": Secret(key)})
        got = await frames.until_end()
    assert fake_openai.last.headers["authorization"] == f"Bearer {key}"
    assert got[-1].kind == ERROR and got[-1].meta["status"] == 400
    assert key not in got[-1].payload.decode() and "***" in got[-1].payload.decode()
