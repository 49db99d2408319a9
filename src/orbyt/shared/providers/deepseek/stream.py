"""DeepSeek stream chunks -> OpenAI chunk dicts, with `DeepSeekStreamState`. Pure; see
`shared.providers.deepseek`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Json, StreamState
from orbyt.shared.providers.deepseek.errors import PROVIDER, capacity_error, in_band_error
from orbyt.shared.providers.deepseek.response import usage_of
from orbyt.shared.providers.openai.response import as_int, malformed


@dataclass(slots=True)
class DeepSeekStreamState(StreamState):
    started: bool = False  # content, reasoning or a tool call was emitted


def _stream_choice(choice: Any, position: int, state: DeepSeekStreamState) -> Json:
    if not isinstance(choice, dict):
        raise malformed(PROVIDER)
    delta = choice.get("delta")
    delta = {k: v for k, v in delta.items() if v is not None} if isinstance(delta, dict) else {}
    if delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
        state.started = True
    finish = choice.get("finish_reason")
    if finish == "insufficient_system_resource":
        raise capacity_error(not state.started)
    finish = finish if isinstance(finish, str) and finish else None
    if finish:
        state.finish_reason = finish
    return {
        **choice,
        "index": as_int(choice.get("index"), position),
        "delta": delta,
        "finish_reason": finish,
    }


def chunk_error(chunk: Json, state: DeepSeekStreamState) -> UpstreamError | None:
    return in_band_error(chunk, state.started) if chunk.get("error") else None


def stream_items(chunk: Json, choices: list[Any], state: DeepSeekStreamState) -> list[Json]:
    out: list[Json] = []
    if choices:
        item: Json = {"choices": [_stream_choice(c, i, state) for i, c in enumerate(choices)]}
        if isinstance(chunk.get("system_fingerprint"), str):
            item["system_fingerprint"] = chunk["system_fingerprint"]
        out.append(item)
    usage = usage_of(chunk.get("usage"))
    if usage:
        out.append({"choices": [], "usage": usage})
    return out
