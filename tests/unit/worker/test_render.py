"""worker.render: adapter chunks -> the SSE bytes the OpenAI SDK reads."""

from __future__ import annotations

import orjson
from openai.types.chat import ChatCompletionChunk

from orbyt.worker.render import ChunkRenderer

CHUNK = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}


def _parse(raw: bytes) -> dict[str, object]:
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    value: dict[str, object] = orjson.loads(raw[6:])
    return value


def test_chunks_carry_usage_null_when_the_caller_asked_for_usage() -> None:
    renderer = ChunkRenderer("chatcmpl-1", 1767225600, "openai/gpt-5-mini", include_usage=True)
    body = _parse(renderer.render(CHUNK))
    assert body["usage"] is None and body["id"] == "chatcmpl-1"
    assert ChatCompletionChunk.model_validate(body).choices[0].delta.content == "Hi"
    assert renderer.render({"choices": [], "usage": {"prompt_tokens": 3}}) == b""
    tail = _parse(renderer.usage_chunk())
    assert tail["choices"] == [] and tail["usage"] == {"prompt_tokens": 3}


def test_chunks_have_no_usage_key_otherwise() -> None:
    body = _parse(ChunkRenderer("chatcmpl-1", 1767225600, "m").render(CHUNK))
    assert "usage" not in body
    assert list(body)[:4] == ["id", "object", "created", "model"]
