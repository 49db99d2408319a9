"""Streamed Gemini `GenerateContentResponse`s -> OpenAI chunk dicts, with
`GoogleStreamState`. Gemini streams have no terminator: the stream is done once every choice
has a finishReason. Pure; see `shared.providers.google`."""

from __future__ import annotations

from dataclasses import dataclass, field

from orbyt.shared.providers.base import Json, StreamState
from orbyt.shared.providers.google.errors import in_band_error, load_object
from orbyt.shared.providers.google.response import (
    Malformed,
    Pieces,
    blocked,
    candidate_pieces,
    candidates,
    finish_reason,
    logprobs,
    text_of,
    usage,
)
from orbyt.shared.sse import SSEEvent


@dataclass(slots=True)
class GoogleStreamState(StreamState):
    candidates: int = 1  # choices asked for (n); the stream is done when all have finished
    started: set[int] = field(default_factory=set)  # choices whose role delta went out
    tool_counts: dict[int, int] = field(default_factory=dict)  # tool calls emitted per choice
    finished: set[int] = field(default_factory=set)
    usage: Json | None = None  # latest usage seen (also in extra["usage"])


def new_stream_state(body: Json) -> GoogleStreamState:
    n = body.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        n = 1
    return GoogleStreamState(candidates=n)


def parse_event(event: SSEEvent, state: GoogleStreamState) -> list[Json]:
    data = event.data.strip()
    if not data:
        return []
    body = load_object(data)
    if body is None:
        state.malformed += 1
        return []
    if body.get("error"):
        raise in_band_error(body["error"])
    try:
        return stream_items(body, state)
    except Malformed:
        state.malformed += 1
        return []


def chunk(index: int, delta: Json, reason: str | None = None, lp: Json | None = None) -> Json:
    return {"choices": [{"index": index, "delta": delta, "logprobs": lp, "finish_reason": reason}]}


def stream_items(body: Json, state: GoogleStreamState) -> list[Json]:
    """Chunk dicts for one streamed GenerateContentResponse; raises Malformed first, if at all."""
    seed = text_of(body, "responseId")
    parsed = [
        (index, cand, candidate_pieces(cand, seed, index, state.tool_counts.get(index, 0)))
        for index, cand in candidates(body)
    ]
    latest = usage(body.get("usageMetadata"))
    if latest is not None:
        state.usage = state.extra["usage"] = latest
    items: list[Json] = []
    if not parsed and blocked(body):
        for index in range(state.candidates):
            items += _finish(index, "content_filter", state)
    for index, cand, pieces in parsed:
        items += _candidate_items(index, cand, pieces, state)
    if not state.done and len(state.finished) >= state.candidates:
        state.done = True
        if state.usage is not None:
            items.append({"choices": [], "usage": state.usage})
    return items


def _candidate_items(
    index: int, cand: Json, pieces: Pieces, state: GoogleStreamState
) -> list[Json]:
    items = _start(index, state)
    delta: Json = {}
    if pieces.reasoning:
        delta["reasoning_content"] = pieces.reasoning
    if pieces.text:
        delta["content"] = pieces.text
    if pieces.tool_calls:
        delta["tool_calls"] = pieces.tool_calls
        state.tool_counts[index] = state.tool_counts.get(index, 0) + len(pieces.tool_calls)
    lp = logprobs(cand)
    if delta or lp:
        items.append(chunk(index, delta, None, lp))
    raw = cand.get("finishReason")
    if isinstance(raw, str) and raw and raw != "FINISH_REASON_UNSPECIFIED":
        reason = finish_reason(raw, state.tool_counts.get(index, 0) > 0)
        items += _finish(index, reason, state)
    return items


def _start(index: int, state: GoogleStreamState) -> list[Json]:
    if index in state.started:
        return []
    state.started.add(index)
    return [chunk(index, {"role": "assistant", "content": ""})]


def _finish(index: int, reason: str, state: GoogleStreamState) -> list[Json]:
    items = _start(index, state)
    state.finished.add(index)
    state.finish_reason = reason
    return [*items, chunk(index, {}, reason)]
