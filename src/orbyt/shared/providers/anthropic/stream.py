"""Anthropic Messages SSE events -> OpenAI chat.completion.chunk dicts. Pure, one event at a
time; bookkeeping lives in `AnthropicStreamState`. See `shared.providers.anthropic`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from orbyt.shared.errors import upstream_error
from orbyt.shared.providers.anthropic.errors import PROVIDER, error_from_object
from orbyt.shared.providers.anthropic.response import finish_reason, openai_usage
from orbyt.shared.providers.base import Json, StreamState
from orbyt.shared.sse import SSEEvent

_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "output_tokens_details",
)


@dataclass(slots=True)
class AnthropicStreamState(StreamState):
    started: bool = False  # the role chunk went out
    tool_calls: dict[int, int] = field(default_factory=dict)  # content block -> tool_calls index
    tools_seen: int = 0  # per-message counter of tool_use blocks
    usage: Json = field(default_factory=dict)  # Anthropic usage so far (message_delta: cumulative)
    # Whitespace stripped off a final assistant prefill (Anthropic rejects it) that the caller
    # already has: dropped again from the start of the continuation so the text joins seamlessly.
    prefill_ws: str = ""


def parse_anthropic_event(event: SSEEvent, state: AnthropicStreamState) -> list[Json]:
    try:
        data = orjson.loads(event.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if event.event == "error":  # an error, even a garbled one, ends the stream
            raise upstream_error(
                502, f"{PROVIDER}: unreadable error event in stream", type="server_error"
            )
        if event.event != "ping":
            state.malformed += 1
        return []
    kind = data["type"] if isinstance(data.get("type"), str) else event.event
    if kind is None:
        state.malformed += 1
        return []
    handler = _HANDLERS.get(kind)
    if handler is None:  # ping, content_block_stop, and event types added later
        return []
    chunks = handler(data, state)
    if chunks is None:
        state.malformed += 1
        return []
    return chunks


def _chunk(delta: Json) -> Json:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def _message_start(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    message = data.get("message")
    if not isinstance(message, dict):
        return None
    _merge_usage(state, message.get("usage"))
    if state.started:
        return []
    state.started = True
    return [_chunk({"role": "assistant", "content": ""})]


def _block_start(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    index, block = data.get("index"), data.get("content_block")
    if not isinstance(index, int) or not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return _text(block.get("text"), state)
    if kind == "thinking":
        return _reasoning(block.get("thinking"))
    if kind != "tool_use":
        return []  # redacted_thinking, server tools: nothing an OpenAI client can use
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        return None
    position = state.tool_calls[index] = state.tools_seen
    state.tools_seen += 1
    return [
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": position,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )
    ]


def _block_delta(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    delta = data.get("delta")
    if not isinstance(delta, dict):
        return None
    kind = delta.get("type")
    if kind == "text_delta":
        return _text(delta.get("text"), state)
    if kind == "thinking_delta":
        return _reasoning(delta.get("thinking"))
    if kind != "input_json_delta":
        return []  # signature_delta, citations_delta
    index, fragment = data.get("index"), delta.get("partial_json")
    position = state.tool_calls.get(index) if isinstance(index, int) else None
    if position is None or not isinstance(fragment, str):
        return None
    if not fragment:
        return []
    return [_chunk({"tool_calls": [{"index": position, "function": {"arguments": fragment}}]})]


def _message_delta(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    delta = data.get("delta")
    if not isinstance(delta, dict):
        return None
    _merge_usage(state, data.get("usage"))
    out: list[Json] = []
    if delta.get("stop_reason") is not None:
        state.finish_reason = finish_reason(delta["stop_reason"])
        out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": state.finish_reason}]})
    usage = openai_usage(state.usage) if state.usage else None
    if usage is not None:
        out.append({"choices": [], "usage": usage})
    return out


def _message_stop(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    state.done = True
    return []


def _error(data: Json, state: AnthropicStreamState) -> list[Json] | None:
    raise error_from_object(data.get("error"))


_HANDLERS: dict[str, Callable[[Json, AnthropicStreamState], list[Json] | None]] = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_delta": _block_delta,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
    "error": _error,
}


def _text(text: Any, state: AnthropicStreamState) -> list[Json] | None:
    if not isinstance(text, str):
        return None
    if state.prefill_ws and text:
        text = _after_prefill(text, state)
    return [_chunk({"content": text})] if text else []


def _after_prefill(text: str, state: AnthropicStreamState) -> str:
    """Drop the continuation's leading whitespace where it repeats what the prefill lost."""
    pending, i = state.prefill_ws, 0
    while i < len(text) and i < len(pending) and text[i] == pending[i]:
        i += 1
    state.prefill_ws = pending[i:] if i == len(text) else ""
    return text[i:]


def _reasoning(text: Any) -> list[Json] | None:
    if not isinstance(text, str):
        return None
    return [_chunk({"reasoning_content": text})] if text else []


def _merge_usage(state: AnthropicStreamState, usage: Any) -> None:
    if isinstance(usage, dict):
        state.usage.update((k, usage[k]) for k in _USAGE_KEYS if usage.get(k) is not None)
