"""Mistral stream chunks -> OpenAI chunk dicts, with `MistralStreamState`. Pure; see
`shared.providers.mistral`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Json, StreamState
from orbyt.shared.providers.mistral.errors import PROVIDER, body_error
from orbyt.shared.providers.mistral.response import (
    call_id,
    finish_reason,
    flatten,
    function,
    usage_of,
)
from orbyt.shared.providers.openai.response import as_int, malformed


@dataclass(slots=True)
class MistralStreamState(StreamState):
    started: bool = False  # content, reasoning or a tool call was emitted
    next_tool: dict[int, int] = field(default_factory=dict)  # choice -> next OpenAI index
    tool_map: dict[tuple[int, Any], int] = field(default_factory=dict)  # upstream -> ours


def _stream_tool_call(call: Json, choice: int, state: MistralStreamState) -> Json:
    fn = function(call)
    upstream = call.get("index")
    upstream = upstream if isinstance(upstream, int) else None
    new_call = bool(call.get("id")) or "name" in fn
    if new_call or (choice, upstream) not in state.tool_map:
        index = state.next_tool.get(choice, 0)
        state.next_tool[choice] = index + 1
        state.tool_map[(choice, upstream)] = index
    else:
        return {"index": state.tool_map[(choice, upstream)], "function": function(call, "")}
    fn.setdefault("name", "")
    return {
        "index": index,
        "id": call_id(call, choice, index, fn),
        "type": "function",
        "function": fn,
    }


def _stream_choice(choice: Any, state: MistralStreamState) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    index = as_int(choice.get("index"))
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    finish = finish_reason(choice.get("finish_reason"), state.started)
    out: Json = {}
    if isinstance(delta.get("role"), str):
        out["role"] = delta["role"]
    text, thinking = flatten(delta.get("content"))
    if text is not None:
        out["content"] = text
    if thinking:
        out["reasoning_content"] = thinking
    calls = delta.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [
            _stream_tool_call(c, index, state) for c in calls if isinstance(c, dict)
        ]
    state.started = state.started or bool(text or thinking or out.get("tool_calls"))
    if finish:
        state.finish_reason = finish
    result: Json = {"index": index, "delta": out, "finish_reason": finish}
    if "logprobs" in choice:
        result["logprobs"] = choice["logprobs"]
    return result


def chunk_error(chunk: Json, state: MistralStreamState) -> UpstreamError | None:
    err = body_error(chunk)
    if err is not None:
        err.before_content = not state.started
    return err


def stream_items(chunk: Json, choices: list[Any], state: MistralStreamState) -> list[Json]:
    out: list[Json] = []
    if choices:
        out.append({"choices": [_stream_choice(c, state) for c in choices]})
    usage = usage_of(chunk.get("usage"))
    if usage:
        out.append({"choices": [], "usage": usage})
    return out
