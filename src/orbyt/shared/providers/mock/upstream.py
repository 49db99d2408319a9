"""The in-process upstream behind `mock://`: OpenAI-format answers made from the request.

The answer is `max_tokens` (default 16) tokens: the words of the last user message
repeated, then `mock` filler. A request ending in an assistant message (a prefill
continuation) gets the rest of that answer. Models (`MODELS`):

    echo, echo-backup   answer as above
    flaky-503           always 503 (retryable): watch the retries, then the fallback
    rate-limited        always 429 with `Retry-After: 1`: retried after 1 s, then fallback
    cut                 streams half the answer, then the connection drops (a non-stream
                        body breaks off half-way): watch a prefill continuation
    error-<status>      always that status
    anything else       404 `model_not_found`, as a real provider answers

The worker's transport (`worker.upstream`) serves these on the `mock://` scheme, with the
delays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbyt.shared.providers.base import Json
from orbyt.shared.sse import DONE

DEFAULT_TOKENS = 16
MAX_TOKENS = 4096  # the mock never builds an unbounded answer, whatever max_tokens says
MODELS = ("echo", "echo-backup", "flaky-503", "rate-limited", "cut")
CUT_MODEL = "cut"


@dataclass(frozen=True, slots=True)
class MockFailure:
    """An error answer: status, OpenAI-shaped body, headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class MockCut(Exception):
    """Raised by the answer of `mock/cut` half-way, as a dropped connection would be."""


def _error(status: int, message: str, etype: str, code: str | None) -> bytes:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return orjson.dumps(body)


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _prefill(messages: Any) -> str:
    """The text of a trailing assistant message (a prefill continuation), else ""."""
    if not isinstance(messages, list) or not messages:
        return ""
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") == "assistant":
        content = last.get("content")
        return content if isinstance(content, str) else ""
    return ""


def mock_tokens(body: Json) -> list[str]:
    raw = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_TOKENS
    count = max(0, min(int(raw), MAX_TOKENS)) if isinstance(raw, int) else DEFAULT_TOKENS
    words = _last_user_text(body.get("messages")).split() or ["mock"]
    tokens = [("" if i == 0 else " ") + words[i % len(words)] for i in range(count)]
    prefill = _prefill(body.get("messages"))
    if not prefill:
        return tokens
    sent = 0  # tokens the prefill already holds
    while sent < len(tokens) and len("".join(tokens[: sent + 1])) <= len(prefill):
        sent += 1
    return tokens[sent:]


def mock_error(model: str) -> MockFailure | None:
    """The failure model `model` answers with, or None if it answers normally."""
    if model.startswith("error-"):
        status = int(model.removeprefix("error-")) if model[6:].isdigit() else 500
        return MockFailure(status, _error(status, f"mock error {status}", "server_error", None))
    if model == "flaky-503":
        return MockFailure(503, _error(503, "mock overloaded", "server_error", None))
    if model == "rate-limited":
        body = _error(429, "mock rate limit reached", "requests", "rate_limit_exceeded")
        return MockFailure(429, body, {"retry-after": "1"})
    if model not in MODELS:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return MockFailure(404, _error(404, message, "invalid_request_error", "model_not_found"))
    return None


def _usage(body: Json, completion: int) -> Json:
    prompt = len(_last_user_text(body.get("messages")).split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def mock_completion(body: Json) -> bytes:
    tokens = mock_tokens(body)
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
            "usage": _usage(body, len(tokens)),
        }
    )


async def mock_cut_body(body: Json) -> AsyncIterator[bytes]:
    """`mock/cut` without streaming: half the body, then the connection drops."""
    raw = mock_completion(body)
    yield raw[: len(raw) // 2]
    raise MockCut


async def mock_stream(body: Json, ttft: float, per_token: float) -> AsyncIterator[bytes]:
    tokens = mock_tokens(body)
    cut = len(tokens) // 2 if body.get("model") == CUT_MODEL else None
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
        if i == cut:
            raise MockCut
        if i and per_token:
            await asyncio.sleep(per_token)
        yield chunk({"content": token})
    yield chunk({}, "length")
    usage = _usage(body, len(tokens))
    yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield DONE
