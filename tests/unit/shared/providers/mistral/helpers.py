"""Helpers shared by the Mistral adapter tests: targets, transcripts, stream replay."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from orbyt.shared.providers.base import Json, StreamState, Target
from orbyt.shared.providers.mistral import ADAPTER
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts"
KEY = "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4f"
TARGET = Target(
    provider="mistral",
    model="mistral/mistral-large-latest",
    upstream_model="mistral-large-latest",
    base_url="https://api.mistral.ai",
    api_key=Secret(KEY),
)
VALID_ID = re.compile(r"[A-Za-z0-9]{9}")


def load(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def build(body: Json, target: Target = TARGET) -> Json:
    payload: Json = orjson.loads(ADAPTER.build_request(body, target).body)
    return payload


def events(raw: bytes, step: int = 7) -> list[SSEEvent]:
    """Decode a transcript fed in small pieces, as the network would deliver it."""
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
