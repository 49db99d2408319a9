"""DeepSeek adapter: non-stream answers -> OpenAI response dicts."""

from __future__ import annotations

import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.deepseek import ADAPTER
from tests.unit.shared.providers.deepseek.helpers import (
    TARGET,
    load,
)


def test_response_after_keepalive_blank_lines() -> None:
    raw = load("chat.json")
    assert raw.startswith(b"\n\n\n")
    out = ADAPTER.parse_response(raw, TARGET)
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "The answer is 4.",
        "reasoning_content": "2 + 2 equals 4.",
    }
    assert out["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 15,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 8},
    }
    assert out["system_fingerprint"] == "fp_8802369eaa_prod0623_fp8_kvcache"


def test_response_tool_calls_and_cache_hits() -> None:
    out = ADAPTER.parse_response(load("tool_calls.json"), TARGET)
    message = out["choices"][0]["message"]
    assert message["reasoning_content"] == "I should call the weather tool."
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    # prompt_tokens_details missing upstream: derived from prompt_cache_hit_tokens.
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 256}
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 12}


def test_response_insufficient_resource_is_retryable() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(load("insufficient_resource.json"), TARGET)
    err = info.value
    assert (err.status, err.disposition, err.code) == (
        503,
        Disposition.RETRY,
        "insufficient_system_resource",
    )
    assert err.should_retry and err.before_content


@pytest.mark.parametrize("raw", [b"\n\n", b"\n\n<html>", b"[]", b'{"id": "x"}'])
def test_response_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_response(raw, TARGET)
    assert info.value.status == 502
