"""Helpers shared by the DeepSeek adapter tests: targets, transcripts, stream replay."""

from __future__ import annotations

from pathlib import Path

import orjson

from orbyt.shared.providers.base import Json, StreamState, Target
from orbyt.shared.providers.deepseek import ADAPTER
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts"
KEY = "sk-0123456789abcdef0123456789abcdef"
TARGET = Target(
    provider="deepseek",
    model="deepseek/deepseek-v4-flash",
    upstream_model="deepseek-v4-flash",
    base_url="https://api.deepseek.com",
    api_key=Secret(KEY),
)
USER = {"role": "user", "content": "hi"}


def load(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def build(body: Json) -> Json:
    payload: Json = orjson.loads(ADAPTER.build_request(body, TARGET).body)
    return payload


def events(raw: bytes, step: int = 5) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for i in range(0, len(raw), step):
        out += decoder.feed(raw[i : i + step])
    return out + decoder.flush()


def run_stream(raw: bytes) -> tuple[list[Json], StreamState]:
    state = ADAPTER.new_stream_state({}, TARGET)
    items: list[Json] = []
    for event in events(raw):
        items += ADAPTER.parse_event(event, state)
    return items, state


def deltas(items: list[Json]) -> list[Json]:
    return [c["delta"] for item in items for c in item["choices"]]
