"""Mistral adapter: the OpenAI body -> upstream request translation."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.base import Json, Target
from orbyt.shared.providers.mistral import ADAPTER, mistral_tool_id
from orbyt.shared.secret import Secret
from tests.unit.shared.providers.mistral.helpers import (
    KEY,
    TARGET,
    VALID_ID,
    build,
)


def test_discovered_with_its_identity() -> None:
    assert get_adapter("mistral") is ADAPTER
    assert ADAPTER.key_env == "ORBYT_PROVIDERS__MISTRAL__KEYS"
    assert ADAPTER.default_base_url == "https://api.mistral.ai"
    assert ADAPTER.needs_key is True


def test_request_url_headers_and_field_mapping() -> None:
    body: Json = {
        "model": "mistral/mistral-large-latest",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                    },
                ],
            },
        ],
        "seed": 7,
        "max_completion_tokens": 64,
        "max_tokens": 10,
        "tool_choice": "required",
        "user": "u-1",
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
        "store": False,
        "service_tier": "default",
        "n": 2,
        "parallel_tool_calls": False,
        "reasoning_effort": "high",
        "stream": True,
        "safe_prompt": True,
        "extra": {"fallback_models": ["openai/gpt-5-mini"]},
    }
    req = ADAPTER.build_request(body, TARGET)
    assert (req.method, req.url, req.stream) == (
        "POST",
        "https://api.mistral.ai/v1/chat/completions",
        True,
    )
    assert req.headers["authorization"] == f"Bearer {KEY}"
    payload = orjson.loads(req.body)
    assert payload == {
        "model": "mistral-large-latest",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": body["messages"][1]["content"]},  # image_url as is
        ],
        "random_seed": 7,
        "max_tokens": 64,
        "tool_choice": "any",
        "n": 2,
        "parallel_tool_calls": False,
        "reasoning_effort": "high",
        "stream": True,
        "safe_prompt": True,
    }


@pytest.mark.parametrize("base", ["https://api.eu.mistral.ai/", "https://api.eu.mistral.ai/v1"])
def test_base_url_with_or_without_v1(base: str) -> None:
    target = Target("mistral", "mistral/m", "m", base, Secret(KEY))
    req = ADAPTER.build_request({"messages": [{"role": "user", "content": "hi"}]}, target)
    assert req.url == "https://api.eu.mistral.ai/v1/chat/completions"


def test_tool_call_ids_rewritten_consistently() -> None:
    messages = [
        {"role": "user", "content": "weather and time?"},
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "audio": None,
            "function_call": None,
            "reasoning_content": "hmm",
            "tool_calls": [
                {
                    "id": "call_PTLP8xhu3uwZk4l3nlnrrJha",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "D681PevKs",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": {"tz": "UTC"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_PTLP8xhu3uwZk4l3nlnrrJha", "content": "sunny"},
        {"role": "tool", "tool_call_id": "D681PevKs", "content": "12:00"},
    ]
    payload = build({"messages": messages})
    assistant, tool_a, tool_b = payload["messages"][1:]
    first, second = assistant["tool_calls"]
    assert VALID_ID.fullmatch(first["id"]) and first["id"] == tool_a["tool_call_id"]
    assert second["id"] == tool_b["tool_call_id"] == "D681PevKs"  # conforming: unchanged
    assert second["function"]["arguments"] == {"tz": "UTC"}  # objects are accepted
    # Echoed SDK fields Mistral would 422 on are gone; content null is kept.
    assert set(assistant) == {"role", "content", "tool_calls"}
    # Deterministic: the next turn rewrites the same id the same way.
    assert build({"messages": messages})["messages"][1]["tool_calls"][0]["id"] == first["id"]
    assert mistral_tool_id("call_PTLP8xhu3uwZk4l3nlnrrJha") == first["id"]


def test_parts_mapped_to_mistral_shapes() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "0f3b-file"}},
    ]
    payload = build({"messages": [{"role": "user", "content": content}]})
    assert payload["messages"][0]["content"] == [
        {"type": "input_audio", "input_audio": "UklGRg=="},
        {"type": "file", "file_id": "0f3b-file"},
    ]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "file",
                                "file": {"file_data": "data:application/pdf;base64,AA=="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].file",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]},
            "messages[0].tool_calls[0].id",
        ),
    ],
)
def test_unsupported_fields_rejected(extra: Json, param: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.build_request(body, TARGET)
    assert info.value.param == param
    assert info.value.status == 400


def test_text_modality_and_non_stream_are_plain() -> None:
    req = ADAPTER.build_request(
        {"messages": [{"role": "user", "content": "hi"}], "modalities": ["text"]}, TARGET
    )
    assert req.stream is False
    assert orjson.loads(req.body) == {
        "model": "mistral-large-latest",
        "messages": [{"role": "user", "content": "hi"}],
    }
