"""Anthropic `message` bodies -> OpenAI response dicts (finish reasons, usage). Pure; see
`shared.providers.anthropic`."""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.errors import upstream_error
from orbyt.shared.providers.anthropic.errors import PROVIDER, error_from_object, load_object
from orbyt.shared.providers.base import Json

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: Any) -> Json | None:
    """OpenAI usage from Anthropic's (whose input_tokens exclude cache reads and writes)."""
    if not isinstance(usage, dict):
        return None
    fresh = _count(usage.get("input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    output = _count(usage.get("output_tokens"))
    prompt = fresh + written + read
    details: Json = {"cached_tokens": read}
    if written:
        details["cache_write_tokens"] = written
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": details,
    }
    thinking = usage.get("output_tokens_details")
    if isinstance(thinking, dict) and "thinking_tokens" in thinking:
        out["completion_tokens_details"] = {"reasoning_tokens": _count(thinking["thinking_tokens"])}
    return out


def parse_message(raw: bytes) -> Json:
    """An Anthropic `message` body -> OpenAI's {"choices": [...], "usage": {...}}."""
    body = load_object(raw)
    if body is not None and body.get("type") == "error":
        raise error_from_object(body.get("error"))
    content = body.get("content") if body is not None else None
    if body is None or not isinstance(content, list):
        raise upstream_error(502, f"{PROVIDER}: malformed response body", type="server_error")
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[Json] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thinking.append(block["thinking"])
        elif (
            kind == "tool_use"
            and isinstance(block.get("id"), str)
            and isinstance(block.get("name"), str)
        ):
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {
                        "name": block["name"],
                        "arguments": _arguments(block.get("input")),
                    },
                }
            )
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    out: Json = {
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(body.get("stop_reason")),
            }
        ]
    }
    usage = openai_usage(body.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out


def _arguments(value: Any) -> str:
    try:
        return orjson.dumps({} if value is None else value).decode()
    except TypeError:  # not representable (e.g. an integer beyond 64 bits)
        return "{}"
