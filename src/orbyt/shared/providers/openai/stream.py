"""OpenAI-shaped stream chunks: loading and checking one event, and OpenAI's own items.

`load_chunk` and `chunk_choices` count what they skip in `state.malformed`; the dialects
(Mistral, DeepSeek) call them before their own per-choice translation.
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.providers.base import Json, StreamState


def load_chunk(data: str, state: StreamState) -> Json | None:
    """One stream event's JSON object, or None (counted as malformed, skipped)."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        chunk = None
    if not isinstance(chunk, dict):
        state.malformed += 1
        return None
    return chunk


def chunk_choices(chunk: Json, state: StreamState) -> list[Any] | None:
    """A chunk's `choices` list, or None (counted as malformed, skipped)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        state.malformed += 1
        return None
    return choices


def openai_stream_items(chunk: Json, choices: list[Any], state: StreamState) -> list[Json]:
    """OpenAI's own chunk: choices as sent (the last finish_reason remembered), usage kept."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    out: Json = {"choices": choices}
    usage = chunk.get("usage")
    if usage:
        out["usage"] = usage
    return [out]
