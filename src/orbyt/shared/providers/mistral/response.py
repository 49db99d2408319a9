"""Mistral chat answers -> OpenAI response dicts: content chunks flattened, tool-call
arguments JSON-encoded, finish reasons mapped. Pure; see `shared.providers.mistral`."""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.errors import upstream_error
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.mistral.errors import PROVIDER
from orbyt.shared.providers.mistral.request import mistral_tool_id
from orbyt.shared.providers.openai.response import as_int, malformed


def translate(body: Json, choices: list[Any]) -> Json:
    out: Json = {"choices": [_response_choice(c, i) for i, c in enumerate(choices)]}
    usage = usage_of(body.get("usage"))
    if usage:
        out["usage"] = usage
    return out


def usage_of(raw: Any) -> Json | None:
    if not isinstance(raw, dict) or not raw:
        return None
    prompt, completion = as_int(raw.get("prompt_tokens")), as_int(raw.get("completion_tokens"))
    total = raw.get("total_tokens")
    out: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": as_int(total) if "total_tokens" in raw else prompt + completion,
    }
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if isinstance(raw.get(key), dict):
            out[key] = raw[key]
    return out


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    return [
        c["text"]
        for c in value
        if isinstance(c, dict)
        and c.get("type", "text") == "text"
        and isinstance(c.get("text"), str)
    ]


def flatten(content: Any) -> tuple[str | None, str | None]:
    """(text, thinking) of a Mistral `content`: a string or a list of chunks."""
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        return None, None
    text: list[str] = []
    thinking: list[str] = []
    for chunk in content:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text" and isinstance(chunk.get("text"), str):
            text.append(chunk["text"])
        elif chunk.get("type") == "thinking":
            thinking.extend(_texts(chunk.get("thinking")))
    return ("".join(text) if text else None), ("".join(thinking) if thinking else None)


def _arguments(value: Any, missing: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return missing
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: not JSON-encodable, keep some text
        return str(value)


def function(call: Json, missing: str = "{}") -> Json:
    """OpenAI's `function` of a tool call: `arguments` always a JSON string (`missing` when
    absent: "{}" for a whole call, "" for a continuation fragment)."""
    fn = call.get("function")
    fn = fn if isinstance(fn, dict) else {}
    out: Json = {"arguments": _arguments(fn.get("arguments"), missing)}
    if isinstance(fn.get("name"), str):
        out = {"name": fn["name"], **out}
    return out


def finish_reason(reason: Any, started: bool | None = None) -> str | None:
    """OpenAI's finish_reason; `error` raises a 502 (`started`: content went out already)."""
    if not isinstance(reason, str) or not reason:
        return None
    if reason == "model_length":
        return "length"
    if reason == "error":
        err = upstream_error(
            502,
            f"{PROVIDER}: the model failed while generating (finish_reason 'error')",
            type="server_error",
            code="upstream_generation_error",
        )
        if started is not None:
            err.before_content = not started
        raise err
    return reason


def _response_tool_calls(calls: Any, choice: int) -> list[Json]:
    out: list[Json] = []
    for j, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            continue
        fn = function(call)
        out.append({"id": call_id(call, choice, j, fn), "type": "function", "function": fn})
    return out


def call_id(call: Json, choice: int, position: int, fn: Json) -> str:
    value = call.get("id")
    if isinstance(value, str) and value and value != "null":
        return value
    return mistral_tool_id(f"{choice}:{position}:{fn.get('name')}")


def _response_choice(choice: Any, position: int) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    finish = finish_reason(choice.get("finish_reason"))
    index = as_int(choice.get("index"), position)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text, thinking = flatten(message.get("content"))
    calls = _response_tool_calls(message.get("tool_calls"), index)
    out: Json = {"role": "assistant", "content": text or (None if calls else "")}
    if thinking:
        out["reasoning_content"] = thinking
    if calls:
        out["tool_calls"] = calls
    return {
        "index": index,
        "message": out,
        "finish_reason": finish,
        "logprobs": choice.get("logprobs"),
    }
