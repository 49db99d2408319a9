"""Anthropic adapter: non-stream answers -> OpenAI response dicts."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.anthropic import ADAPTER
from tests.unit.shared.providers.anthropic.helpers import (
    read,
    target,
)


def test_response_with_thinking_text_and_tool_use() -> None:
    assert ADAPTER.parse_response(read("message_tool_use.json"), target()) == {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "The user wants the weather.",
                    "tool_calls": [
                        {
                            "id": "toolu_01A",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"city":"Paris","days":[1,2]}',
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 52,
            "completion_tokens": 30,
            "total_tokens": 82,
            "prompt_tokens_details": {"cached_tokens": 40},
            "completion_tokens_details": {"reasoning_tokens": 11},
        },
    }


def test_response_text_and_cache_writes() -> None:
    out = ADAPTER.parse_response(read("message_text.json"), target())
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Paris is the capital of France.",
    }
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"] == {
        "prompt_tokens": 1032,
        "completion_tokens": 6,
        "total_tokens": 1038,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1024},
    }


def test_tool_only_response_has_null_content() -> None:
    raw = orjson.dumps(
        {
            "type": "message",
            "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
        }
    )
    message = ADAPTER.parse_response(raw, target())["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish: str) -> None:
    raw = orjson.dumps(
        {
            "type": "message",
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": stop_reason,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    assert ADAPTER.parse_response(raw, target())["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    "raw", [b"", b"<html>502</html>", b"[]", b'{"type":"message"}', b'{"content": "text"}']
)
def test_malformed_response_is_a_502(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(raw, target())
    assert info.value.status == 502 and info.value.should_retry


def test_error_object_in_a_200_body_is_raised() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(read("error_overloaded.json"), target())
    assert info.value.status == 503 and info.value.disposition is Disposition.RETRY
