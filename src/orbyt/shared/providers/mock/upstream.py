"""The in-process upstream behind `mock://`: OpenAI-format answers made from the request.

The answer is `max_tokens` (default 16) tokens: the words of the last user message
repeated, then `mock` filler. Model `error-<status>` answers that status. The worker's
transport (`worker.upstream`) serves these on the `mock://` scheme, with the delays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from orbyt.shared.providers.base import Json
from orbyt.shared.sse import DONE

DEFAULT_TOKENS = 16
MAX_TOKENS = 4096  # the mock never builds an unbounded answer, whatever max_tokens says


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def mock_tokens(body: Json) -> list[str]:
    raw = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_TOKENS
    count = max(0, min(int(raw), MAX_TOKENS)) if isinstance(raw, int) else DEFAULT_TOKENS
    words = _last_user_text(body.get("messages")).split() or ["mock"]
    return [("" if i == 0 else " ") + words[i % len(words)] for i in range(count)]


def mock_error(model: str) -> tuple[int, bytes] | None:
    if model.startswith("error-"):
        status = int(model.removeprefix("error-")) if model[6:].isdigit() else 500
        body = {
            "error": {
                "message": f"mock error {status}",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        return status, orjson.dumps(body)
    return None


def mock_completion(body: Json) -> bytes:
    tokens = mock_tokens(body)
    prompt = len(_last_user_text(body.get("messages")).split())
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "finish_reason": "length",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(tokens),
                "total_tokens": prompt + len(tokens),
            },
        }
    )


async def mock_stream(body: Json, ttft: float, per_token: float) -> AsyncIterator[bytes]:
    tokens = mock_tokens(body)
    base = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
    }

    def chunk(delta: Json, finish: str | None = None) -> bytes:
        event = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(event) + b"\n\n"

    if ttft:
        await asyncio.sleep(ttft)
    yield chunk({"role": "assistant", "content": ""})
    for i, token in enumerate(tokens):
        if i and per_token:
            await asyncio.sleep(per_token)
        yield chunk({"content": token})
    yield chunk({}, "length")
    prompt = len(_last_user_text(body.get("messages")).split())
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": len(tokens),
        "total_tokens": prompt + len(tokens),
    }
    yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield DONE
