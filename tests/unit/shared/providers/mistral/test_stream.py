"""Mistral adapter: stream events -> OpenAI chunk dicts, with the adapter's stream state."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.mistral import ADAPTER
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.mistral.helpers import (
    TARGET,
    build,
    deltas,
    events,
    load,
    run_stream,
)


def test_stream_usage_split_off_finish_chunk() -> None:
    items, state = run_stream(load("stream_text.sse"))
    assert state.done and state.finish_reason == "stop" and state.malformed == 0
    assert "".join(d.get("content", "") for d in deltas(items)) == (
        "Paris is the capital of France."
    )
    assert deltas(items)[0] == {"role": "assistant", "content": ""}
    assert items[-2] == {
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]
    }
    assert items[-1] == {
        "choices": [],
        "usage": {"prompt_tokens": 34, "completion_tokens": 7, "total_tokens": 41},
    }
    assert all("usage" not in item for item in items[:-1])


def test_stream_whole_tool_calls_get_index_id_type() -> None:
    items, state = run_stream(load("stream_tools.sse"))  # CRLF line endings
    calls = [tc for d in deltas(items) for tc in d.get("tool_calls", [])]
    assert calls == [
        {
            "index": 0,
            "id": "D681PevKs",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        # Mistral numbered this one 0 again; it is a new call, so it gets index 1.
        {
            "index": 1,
            "id": "x9Yq2LmN4",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'},
        },
    ]
    assert state.finish_reason == "tool_calls"
    assert items[-1]["usage"]["total_tokens"] == 151


def test_stream_split_tool_call_fragments_keep_their_index() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    first = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {
                    "tool_calls": [
                        {
                            "id": "abcDEF123",
                            "index": 0,
                            "function": {"name": "f", "arguments": '{"a"'},
                        }
                    ]
                },
            }
        ]
    }
    rest = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
            }
        ]
    }
    tail = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {"tool_calls": [{"index": 0, "function": {}}]},
            }
        ]
    }
    calls = [
        tc
        for chunk in (first, rest, tail)
        for item in ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
        for tc in item["choices"][0]["delta"]["tool_calls"]
    ]
    assert calls[1:] == [
        {"index": 0, "function": {"arguments": ": 1}"}},
        {"index": 0, "function": {"arguments": ""}},
    ]
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a": 1}'


def test_prediction_parts_become_a_string() -> None:
    prediction = {
        "type": "content",
        "content": [{"type": "text", "text": "def f():"}, {"type": "text", "text": " pass"}],
    }
    payload = build({"messages": [{"role": "user", "content": "x"}], "prediction": prediction})
    assert payload["prediction"] == {"type": "content", "content": "def f(): pass"}


def test_stream_magistral_thinking_then_text() -> None:
    items, state = run_stream(load("stream_magistral.sse"))
    ds = deltas(items)
    assert "".join(d.get("reasoning_content", "") for d in ds) == "Two plus two is four."
    assert "".join(d.get("content", "") for d in ds) == "4"
    assert all(isinstance(d.get("content", ""), str) for d in ds)
    assert state.finish_reason == "length"


def test_stream_finish_error_after_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    evs = events(load("stream_finish_error.sse"))
    assert ADAPTER.parse_event(evs[0], state) and ADAPTER.parse_event(evs[1], state)
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(evs[2], state)
    assert info.value.should_retry and info.value.before_content is False


def test_stream_finish_error_before_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    chunk = {"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
    assert info.value.before_content is True


def test_stream_error_event_and_junk() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    assert ADAPTER.parse_event(SSEEvent(None, ""), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "{not json"), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "[1, 2]"), state) == []
    assert state.malformed == 2
    error = {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(error).decode()), state)
    assert info.value.status == 429 and info.value.before_content is True
