"""Helpers shared by the Anthropic adapter tests: targets, transcripts, stream replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from orbyt.shared.providers.anthropic import ADAPTER, AnthropicStreamState
from orbyt.shared.providers.base import Json, Target
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts"
KEY = "sk-ant-api03-" + "x" * 93 + "AA"


def target(
    upstream: str = "claude-sonnet-4-6",
    max_output: int | None = 64000,
    base_url: str = "https://api.anthropic.com",
) -> Target:
    return Target(
        provider="anthropic",
        model=f"anthropic/{upstream}",
        upstream_model=upstream,
        base_url=base_url,
        api_key=Secret(KEY),
        max_output_tokens=max_output,
    )


def payload_of(body: Json, tgt: Target | None = None) -> Json:
    out: Json = orjson.loads(ADAPTER.build_request(body, tgt or target()).body)
    return out


def chat(*messages: Json, **fields: Any) -> Json:
    return {"model": "anthropic/claude-sonnet-4-6", "messages": list(messages), **fields}


def user(content: Any = "Hi") -> Json:
    return {"role": "user", "content": content}


def read(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def sse_events(name: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(read(name)) + decoder.flush()


def run_stream(name: str, body: Json | None = None) -> tuple[list[Json], AnthropicStreamState]:
    state = ADAPTER.new_stream_state(body or chat(user()), target())
    chunks = [c for ev in sse_events(name) for c in ADAPTER.parse_event(ev, state)]
    return chunks, state


def accumulate(chunks: list[Json]) -> Json:
    """What an OpenAI client (the SDK's stream helper) rebuilds from the chunks."""
    out: Json = {
        "content": "",
        "reasoning": "",
        "tool_calls": {},
        "finish_reason": None,
        "usage": None,
    }
    for chunk in chunks:
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls", []):
                slot = out["tool_calls"].setdefault(call["index"], {"arguments": ""})
                slot.update({k: call[k] for k in ("id", "type") if k in call})
                slot.setdefault("name", call["function"].get("name"))
                slot["arguments"] += call["function"].get("arguments", "")
            out["finish_reason"] = choice["finish_reason"] or out["finish_reason"]
    return out
