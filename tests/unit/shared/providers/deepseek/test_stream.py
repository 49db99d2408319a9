"""DeepSeek adapter: stream events -> OpenAI chunk dicts, with the adapter's stream state."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.deepseek import ADAPTER
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.deepseek.helpers import (
    TARGET,
    deltas,
    events,
    load,
    run_stream,
)


def test_stream_reasoning_before_content_without_nulls() -> None:
    items, state = run_stream(load("stream_reasoning.sse"))  # with `: keep-alive` comments
    ds = deltas(items)
    assert all(v is not None for d in ds for v in d.values())
    assert ds[0] == {"role": "assistant", "reasoning_content": ""}
    assert "".join(d.get("reasoning_content", "") for d in ds) == "Two plus two is four."
    assert "".join(d.get("content", "") for d in ds) == "4"
    assert state.done and state.finish_reason == "stop" and state.malformed == 0
    assert items[0]["system_fingerprint"] == "fp_8802369eaa_prod0623_fp8_kvcache"
    assert items[-1] == {
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 6},
        },
    }


def test_stream_tool_call_fragments_pass_through() -> None:
    items, state = run_stream(load("stream_tools.sse"))
    calls = [tc for d in deltas(items) for tc in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "call_00_Xk9TqWm3Lp2Rs8Vn4Bc7Hd1F",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert state.finish_reason == "tool_calls"
    # usage on the finish chunk is split into its own item
    assert items[-2]["choices"][0]["finish_reason"] == "tool_calls" and "usage" not in items[-2]
    assert items[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 256}


def test_stream_insufficient_resource_after_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    with pytest.raises(UpstreamError) as info:
        for event in events(load("stream_insufficient_resource.sse")):
            ADAPTER.parse_event(event, state)
    assert info.value.status == 503 and info.value.should_retry
    assert info.value.before_content is False


def test_stream_insufficient_resource_before_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"content": None, "reasoning_content": None},
                "finish_reason": "insufficient_system_resource",
            }
        ]
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
    assert info.value.before_content is True


def test_stream_error_event_and_blank_data() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    assert ADAPTER.parse_event(SSEEvent(None, ""), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "  \n "), state) == []
    assert state.malformed == 0
    error = {
        "error": {
            "message": "Server Overloaded",
            "type": "server_error",
            "param": None,
            "code": "server_overloaded",
        }
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(error).decode()), state)
    assert info.value.status == 503 and info.value.should_retry
