"""Mistral adapter: non-stream answers -> OpenAI response dicts."""

from __future__ import annotations

import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.mistral import ADAPTER
from tests.unit.shared.providers.mistral.helpers import (
    TARGET,
    load,
)


def test_response_plain() -> None:
    out = ADAPTER.parse_response(load("chat.json"), TARGET)
    assert out == {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Bonjour! How can I help?"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17},
    }


def test_response_tool_calls_normalised() -> None:
    message = ADAPTER.parse_response(load("tool_calls.json"), TARGET)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "D681PevKs",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "x9Yq2LmN4",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'},
        },
    ]


def test_response_magistral_chunks_flattened() -> None:
    message = ADAPTER.parse_response(load("magistral.json"), TARGET)["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "2 + 2 = 4",
        "reasoning_content": "The user asks for 2+2. That is 4.",
    }


def test_response_model_length_is_length() -> None:
    out = ADAPTER.parse_response(load("model_length.json"), TARGET)
    assert out["choices"][0]["finish_reason"] == "length"


def test_response_finish_error_raises_retryable() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(load("finish_error.json"), TARGET)
    assert info.value.status == 502
    assert info.value.disposition is Disposition.RETRY
    assert info.value.message.startswith("mistral: ")


@pytest.mark.parametrize("raw", [b"", b"<html>502</html>", b"[]", b'{"id": "x"}'])
def test_response_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(raw, TARGET)
    assert info.value.status == 502
