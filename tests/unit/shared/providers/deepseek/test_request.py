"""DeepSeek adapter: the OpenAI body -> upstream request translation."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.deepseek import ADAPTER
from tests.unit.shared.providers.deepseek.helpers import (
    KEY,
    TARGET,
    USER,
    build,
)


def test_discovered_with_its_identity() -> None:
    assert get_adapter("deepseek") is ADAPTER
    assert ADAPTER.key_env == "ORBYT_PROVIDERS__DEEPSEEK__KEYS"
    assert ADAPTER.default_base_url == "https://api.deepseek.com"
    assert ADAPTER.needs_key is True


def test_request_url_headers_and_field_mapping() -> None:
    body: Json = {
        "model": "deepseek/deepseek-v4-flash",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "n": 1,
        "max_completion_tokens": 100,
        "max_tokens": 5,
        "stop": ["a"] * 16,
        "stream": True,
        "stream_options": {"include_usage": False, "include_obfuscation": True},
        "user": "u-1",
        "store": True,
        "metadata": {"a": "b"},
        "parallel_tool_calls": True,
        "logit_bias": {"1": 2},
        "prompt_cache_key": "k",
        "response_format": {"type": "json_object"},
        "thinking": {"type": "enabled"},
        "tool_choice": "required",
        "extra": {"retry": 2},
    }
    req = ADAPTER.build_request(body, TARGET)
    assert (req.method, req.url, req.stream) == (
        "POST",
        "https://api.deepseek.com/chat/completions",
        True,
    )
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert orjson.loads(req.body) == {
        "model": "deepseek-v4-flash",
        "messages": [{"role": "system", "content": "Be brief."}, body["messages"][1]],
        "max_tokens": 100,
        "stop": ["a"] * 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_object"},
        "thinking": {"type": "enabled"},
        "tool_choice": "required",
    }


def test_non_stream_drops_stream_options() -> None:
    payload = build({"messages": [USER], "stream_options": {"include_usage": True}})
    assert payload == {"model": "deepseek-v4-flash", "messages": [USER]}


@pytest.mark.parametrize(
    ("effort", "sent"),
    [
        ("minimal", "low"),
        ("low", "low"),
        ("medium", "high"),
        ("high", "high"),
        ("xhigh", "high"),
        ("max", "max"),
        ("ultra", "max"),
    ],
)
def test_reasoning_effort_mapped(effort: str, sent: str) -> None:
    assert build({"messages": [USER], "reasoning_effort": effort})["reasoning_effort"] == sent


def test_reasoning_effort_none_disables_thinking() -> None:
    payload = build({"messages": [USER], "reasoning_effort": "none"})
    assert payload["thinking"] == {"type": "disabled"} and "reasoning_effort" not in payload
    explicit = build(
        {"messages": [USER], "reasoning_effort": "none", "thinking": {"type": "enabled"}}
    )
    assert explicit["thinking"] == {"type": "enabled"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 42}, "seed"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {}},
                }
            },
            "response_format.type",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        (
            {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]},
            "tools",
        ),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                        ],
                    }
                ]
            },
            "messages[0].content[1]",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_unsupported_fields_rejected(extra: Json, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.build_request({"messages": [USER], **extra}, TARGET)
    assert info.value.param == param and info.value.status == 400


def _assistant(**fields: object) -> Json:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_00_Xk9TqWm3Lp2Rs8Vn4Bc7Hd1F",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
        **fields,
    }


def test_reasoning_content_echoed_back() -> None:
    # What the OpenAI SDK echoes: the returned message object, unknown fields included.
    echoed = _assistant(
        reasoning_content="I should call the weather tool.",
        refusal=None,
        annotations=[],
        audio=None,
        function_call=None,
    )
    tool = {"role": "tool", "tool_call_id": "call_00_Xk9TqWm3Lp2Rs8Vn4Bc7Hd1F", "content": "sunny"}
    sent = build({"messages": [USER, echoed, tool]})["messages"]
    assert sent[1] == _assistant(reasoning_content="I should call the weather tool.")
    assert sent[2] == tool


def test_missing_reasoning_content_sent_empty_on_tool_turns_only() -> None:
    plain = {"role": "assistant", "content": "Hello"}
    sent = build({"messages": [USER, _assistant(), USER, plain, USER]})["messages"]
    assert sent[1]["reasoning_content"] == ""
    assert sent[3] == plain
