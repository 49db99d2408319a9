"""Helpers shared by the Gemini adapter tests: targets, transcripts, stream replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from orbyt.shared.providers.base import Target
from orbyt.shared.providers.google import ADAPTER
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts"
KEY = "AQ.Ab8RN6test-key-never-in-urls"
BASE = "https://generativelanguage.googleapis.com"


def target(model: str = "gemini-3-flash-preview") -> Target:
    return Target("google", f"google/{model}", model, BASE, Secret(KEY))


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def gemini_body(body: dict[str, Any], model: str = "gemini-3-flash-preview") -> Any:
    return orjson.loads(ADAPTER.build_request(body, target(model)).body)


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "google/x", "messages": list(messages), **fields}


USER = {"role": "user", "content": "hi"}


def replay(name: str, body: dict[str, Any] | None = None, split: int = 7) -> tuple[list[Any], Any]:
    """Feed an SSE transcript through the decoder in small network chunks."""
    raw = transcript(name)
    state = ADAPTER.new_stream_state(body or {}, target())
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for start in range(0, len(raw), split):
        events += decoder.feed(raw[start : start + split])
    events += decoder.flush()
    items: list[Any] = []
    for event in events:
        items += ADAPTER.parse_event(event, state)
    return items, state


def data(payload: Any) -> SSEEvent:
    return SSEEvent(None, payload if isinstance(payload, str) else orjson.dumps(payload).decode())
