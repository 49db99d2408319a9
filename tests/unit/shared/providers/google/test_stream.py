"""Gemini adapter: stream events -> OpenAI chunk dicts, with the adapter's stream state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import StreamState
from orbyt.shared.providers.google import ADAPTER
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.google.helpers import (
    data,
    replay,
    target,
    transcript,
)


def test_text_stream() -> None:
    items, state = replay("stream_text.sse")
    deltas = [item["choices"][0]["delta"] for item in items if item["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "The capital of France"},
        {"content": " is Paris. It is known for the Eiffel"},
        {"content": " Tower."},
        {},
    ]
    assert items[-2]["choices"][0]["finish_reason"] == "stop"
    assert items[-1] == {
        "choices": [],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 15,
            "total_tokens": 23,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert state.done and state.finish_reason == "stop" and state.malformed == 0


def test_tool_stream_matches_the_non_stream_answer() -> None:
    items, state = replay("stream_parallel_tools.sse", split=13)  # CRLF-framed transcript
    deltas = [item["choices"][0]["delta"] for item in items if item["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1]["reasoning_content"].startswith("**Planning the lookups**")
    assert deltas[2] == {"content": "Checking both cities."}
    calls = deltas[3]["tool_calls"] + deltas[4]["tool_calls"]
    assert [call["index"] for call in calls] == [0, 1]
    expected = ADAPTER.parse_response(transcript("response_parallel_tools.json"), target())
    for streamed, whole in zip(calls, expected["choices"][0]["message"]["tool_calls"], strict=True):
        assert {k: v for k, v in streamed.items() if k != "index"} == whole
    assert items[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert items[-1]["usage"] == expected["usage"]
    assert state.done and state.finish_reason == "tool_calls"


def test_malformed_events_are_skipped_and_counted() -> None:
    state = ADAPTER.new_stream_state({}, target())
    for payload in [
        "{not json",
        "[1, 2]",
        '"text"',
        '{"candidates": {"0": 1}}',
        '{"candidates": [{"content": {"parts": [{"functionCall": "f"}]}}]}',
    ]:
        assert ADAPTER.parse_event(data(payload), state) == []
    assert state.malformed == 5 and not state.done
    assert ADAPTER.parse_event(data(""), state) == []
    assert state.malformed == 5


def test_error_object_in_stream_raises() -> None:
    state = ADAPTER.new_stream_state({}, target())
    error = orjson.loads(transcript("error_unavailable.json"))
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.parse_event(data(error), state)
    assert exc.value.status == 503 and exc.value.should_retry
    assert exc.value.message.startswith("google: ")


def test_blocked_stream_finishes_with_content_filter() -> None:
    state = ADAPTER.new_stream_state({}, target())
    items = ADAPTER.parse_event(data(orjson.loads(transcript("response_blocked.json"))), state)
    assert [i["choices"][0]["finish_reason"] for i in items if i["choices"]] == [
        None,
        "content_filter",
    ]
    assert items[-1]["usage"]["prompt_tokens"] == 21
    assert state.done and state.finish_reason == "content_filter"


def test_stream_with_two_choices_is_done_when_both_finish() -> None:
    state = ADAPTER.new_stream_state({"n": 2}, target())
    assert isinstance(state, StreamState)

    def event(index: int, finish: str | None) -> SSEEvent:
        cand: dict[str, Any] = {"content": {"parts": [{"text": "x"}]}, "index": index}
        if finish:
            cand["finishReason"] = finish
        return data({"candidates": [cand], "usageMetadata": {"promptTokenCount": 1}})

    ADAPTER.parse_event(event(0, None), state)
    ADAPTER.parse_event(event(1, None), state)
    ADAPTER.parse_event(event(0, "STOP"), state)
    assert not state.done
    items = ADAPTER.parse_event(event(1, "MAX_TOKENS"), state)
    assert state.done and state.finish_reason == "length"
    assert items[-1] == {"choices": [], "usage": state.extra["usage"]}
