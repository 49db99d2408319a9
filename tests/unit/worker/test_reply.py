"""worker.reply (ChunkRenderer): adapter chunks -> the SSE bytes the OpenAI SDK reads."""

from __future__ import annotations

import orjson
from openai.types.chat import ChatCompletionChunk

from orbyt.worker.reply import ChunkRenderer

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


def test_the_last_chunk_names_the_final_route_and_the_sdk_keeps_it() -> None:
    """Stream headers are fixed at the first token; after a continuation the last chunk
    says which route finished the answer. The official SDK keeps the unknown field."""
    orbyt = {"model": "backup/prefill", "provider": "backup", "attempts": 2, "key_source": "pool"}
    usage = {"prompt_tokens": 9, "completion_tokens": 60, "total_tokens": 69}
    with_usage = ChunkRenderer("chatcmpl-1", 1767225600, "backup/prefill", include_usage=True)
    chunk = ChatCompletionChunk.model_validate(_parse(with_usage.usage_chunk(usage, orbyt)))
    assert chunk.usage is not None and chunk.usage.completion_tokens == 60
    assert chunk.model_extra == {"orbyt": orbyt}
    plain = ChunkRenderer("chatcmpl-1", 1767225600, "backup/prefill")
    body = _parse(plain.usage_chunk(usage, orbyt))
    assert "usage" not in body and body["choices"] == [] and body["orbyt"] == orbyt
    assert ChatCompletionChunk.model_validate(body).model_extra == {"orbyt": orbyt}
