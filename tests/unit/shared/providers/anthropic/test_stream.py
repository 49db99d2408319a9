"""Anthropic adapter: stream events -> OpenAI chunk dicts, with the adapter's stream state."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.anthropic import ADAPTER
from orbyt.shared.providers.base import Json
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.anthropic.helpers import (
    accumulate,
    chat,
    run_stream,
    sse_events,
    target,
    user,
)


def test_text_stream_chunks() -> None:
    chunks, state = run_stream("stream_text.sse")
    assert chunks == [
        {
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ]
        },
        {"choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 25,
                "completion_tokens": 15,
                "total_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        },
    ]
    assert state.done and state.finish_reason == "stop" and state.malformed == 0


def test_tool_use_stream() -> None:
    chunks, state = run_stream("stream_tool_use.sse")
    first_call = next(
        c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    )
    assert first_call["choices"][0]["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    got = accumulate(chunks)
    assert got["content"] == "Checking both."
    assert got["reasoning"] == "Two cities, so two calls."
    assert got["tool_calls"] == {
        0: {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        1: {
            "id": "toolu_01WzS6b5XgJ8d3P1XyWgXk8R",
            "type": "function",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
    }
    assert got["finish_reason"] == "tool_calls" and state.finish_reason == "tool_calls"
    assert got["usage"] == {
        "prompt_tokens": 2620,
        "completion_tokens": 89,
        "total_tokens": 2709,
        "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 31},
    }
    assert state.done and state.malformed == 0


def test_mid_stream_overloaded_error_is_a_retryable_503() -> None:
    state = ADAPTER.new_stream_state(chat(user()), target())
    seen: list[Json] = []
    with pytest.raises(UpstreamError) as info:
        for ev in sse_events("stream_overloaded.sse"):
            seen.extend(ADAPTER.parse_event(ev, state))
    assert accumulate(seen)["content"] == "Once upon"
    err = info.value
    assert (err.status, err.disposition, err.should_retry) == (503, Disposition.RETRY, True)
    assert err.message == "anthropic: Overloaded" and err.code == "overloaded"


def test_malformed_events_are_counted_and_skipped() -> None:
    state = ADAPTER.new_stream_state(chat(user()), target())
    for ev in [
        SSEEvent("content_block_delta", "{not json"),
        SSEEvent(None, ""),
        SSEEvent("content_block_delta", '{"type":"content_block_delta","index":0}'),
        SSEEvent(
            "content_block_delta",
            '{"type":"content_block_delta","index":9,'
            '"delta":{"type":"input_json_delta","partial_json":"{"}}',
        ),
        SSEEvent(None, '{"no": "type"}'),
    ]:
        assert ADAPTER.parse_event(ev, state) == []
    assert state.malformed == 5
    for ev in [
        SSEEvent("ping", ""),
        SSEEvent("ping", '{"type":"ping"}'),
        SSEEvent("content_block_stop", '{"type":"content_block_stop","index":0}'),
        SSEEvent("brand_new_event", '{"type":"brand_new_event"}'),
    ]:
        assert ADAPTER.parse_event(ev, state) == []
    assert state.malformed == 5


def test_undecodable_error_event_still_raises() -> None:
    state = ADAPTER.new_stream_state(chat(user()), target())
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent("error", "Internal Server Error"), state)
    assert info.value.should_retry


def test_stream_cut_after_message_delta_has_a_finish_reason() -> None:
    events = [ev for ev in sse_events("stream_text.sse") if ev.event != "message_stop"]
    state = ADAPTER.new_stream_state(chat(user()), target())
    for ev in events:
        ADAPTER.parse_event(ev, state)
    assert state.finish_reason == "stop" and not state.done


def continuation(*deltas: str, prefill: str = "The answer is ") -> str:
    body = chat(user("Q?"), {"role": "assistant", "content": prefill}, stream=True)
    state = ADAPTER.new_stream_state(body, target())
    chunks: list[Json] = []
    for text in deltas:
        data = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }
        chunks += ADAPTER.parse_event(
            SSEEvent("content_block_delta", orjson.dumps(data).decode()), state
        )
    return str(accumulate(chunks)["content"])


@pytest.mark.parametrize(
    ("deltas", "prefill", "sent"),
    [
        ((" 42", "."), "The answer is ", "42."),  # the space the prefill lost is not doubled
        ((" ", "42"), "The answer is ", "42"),
        (("42",), "The answer is ", "42"),
        ((" 42",), "The answer is", " 42"),  # nothing stripped, nothing dropped
        (("\n", "Next", " line\n"), "Para one.\n\n", "Next line\n"),
        (("\n", "\nNext"), "Para one.\n", "\nNext"),  # only the lost part is dropped
        (("\n\nNext",), "Para one.\n\n", "Next"),
    ],
)
def test_prefill_continuation_joins_seamlessly(
    deltas: tuple[str, ...], prefill: str, sent: str
) -> None:
    assert continuation(*deltas, prefill=prefill) == sent
