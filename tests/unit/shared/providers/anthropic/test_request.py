"""Anthropic adapter: the OpenAI body -> upstream request translation."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.anthropic import ADAPTER
from orbyt.shared.providers.base import Json, Target
from tests.unit.shared.providers.anthropic.helpers import (
    KEY,
    chat,
    payload_of,
    read,
    target,
    user,
)


def test_discovered_with_its_declared_attributes() -> None:
    assert get_adapter("anthropic") is ADAPTER
    assert ADAPTER.name == "anthropic"
    assert ADAPTER.key_env == "ORBYT_PROVIDERS__ANTHROPIC__KEYS"
    assert ADAPTER.default_base_url == "https://api.anthropic.com"
    assert ADAPTER.needs_key is True


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("http://127.0.0.1:9000/v1", "http://127.0.0.1:9000/v1/messages"),
        ("https://api.deepseek.com/anthropic", "https://api.deepseek.com/anthropic/v1/messages"),
    ],
)
def test_url_and_headers(base: str, url: str) -> None:
    req = ADAPTER.build_request(chat(user()), target(base_url=base))
    assert (req.method, req.url, req.stream) == ("POST", url, False)
    assert req.headers == {
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "accept": "application/json",
    }


def test_stream_flag_and_no_key_header_without_a_key() -> None:
    keyless = Target("anthropic", "anthropic/m", "m", "http://fake", None)
    req = ADAPTER.build_request(chat(user(), stream=True), keyless)
    assert req.stream is True and orjson.loads(req.body)["stream"] is True
    assert "x-api-key" not in req.headers and req.headers["accept"] == "text/event-stream"


REQUEST_CASES = orjson.loads(read("requests.json"))


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c["name"] for c in REQUEST_CASES])
def test_request_transcripts(case: Json) -> None:
    tgt = target(upstream=case["anthropic"]["model"], max_output=case["max_output_tokens"])
    assert payload_of(case["openai"], tgt) == case["anthropic"]


def test_max_tokens_default_and_precedence() -> None:
    assert payload_of(chat(user()), target(max_output=None))["max_tokens"] == 4096
    assert payload_of(chat(user()), target(max_output=8192))["max_tokens"] == 8192
    both = chat(user(), max_tokens=10, max_completion_tokens=20)
    assert payload_of(both)["max_tokens"] == 20


def test_blank_text_is_dropped_and_empty_messages_vanish() -> None:
    body = chat(
        user("Hi"),
        user("   "),
        {"role": "assistant", "content": ""},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": ""}, {"type": "refusal", "refusal": "No."}],
        },
        user([{"type": "text", "text": "\n"}, {"type": "text", "text": "Why?"}]),
    )
    assert payload_of(body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "No."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why?"}]},
    ]


def test_tool_ids_are_made_anthropic_safe_on_both_sides() -> None:
    call = {
        "id": "functions.get:0",
        "type": "function",
        "function": {"name": "get", "arguments": ""},
    }
    body = chat(
        user(),
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "functions.get:0", "content": ""},
        user("ok"),
    )
    messages = payload_of(body)["messages"]
    assert messages[1]["content"] == [
        {"type": "tool_use", "id": "functions_get_0", "name": "get", "input": {}}
    ]
    assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": "functions_get_0"}


def test_pdf_file_part_and_jpg_alias() -> None:
    body = chat(
        user(
            [
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/"}},
            ]
        )
    )
    blocks = payload_of(body)["messages"][0]["content"]
    assert blocks[0]["source"] == {
        "type": "base64",
        "media_type": "application/pdf",
        "data": "JVBE",
    }
    assert blocks[1]["source"]["media_type"] == "image/jpeg"


def test_parallel_tool_calls_false_without_tool_choice() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert payload_of(chat(user(), tools=tools, parallel_tool_calls=False))["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert payload_of(chat(user(), tools=tools, tool_choice="none"))["tool_choice"] == {
        "type": "none"
    }
    assert "tool_choice" not in payload_of(chat(user(), tool_choice="auto"))


def test_prefill_whitespace_is_stripped_across_blocks() -> None:
    body = chat(
        user(),
        {"role": "assistant", "content": "The answer"},
        {"role": "assistant", "content": [{"type": "text", "text": " is "}]},
    )
    assert payload_of(body)["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The answer"}, {"type": "text", "text": " is"}],
    }
    assert ADAPTER.new_stream_state(body, target()).prefill_ws == " "


TOOLS = [{"type": "function", "function": {"name": "f"}}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("body", "budget"),
    [
        (chat(user(), reasoning_effort="low"), 2048),
        (chat(user(), reasoning_effort="xhigh"), 32000),  # capped at max_tokens // 2
        (chat(user(), reasoning_effort="high", max_tokens=1500), 1024),
        (chat(user(), reasoning_effort="none"), None),
        (chat(user(), reasoning_effort="low", max_tokens=1024), None),  # no room for 1024
        (chat(user(), {"role": "assistant", "content": "Sure"}, reasoning_effort="low"), None),
        (chat(user(), reasoning_effort="low", tools=TOOLS, tool_choice="required"), None),
        (
            chat(
                user(),
                {"role": "assistant", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r"},
                reasoning_effort="low",
                tools=TOOLS,
            ),
            None,
        ),  # signatures cannot be replayed
        (
            chat(
                user(),
                {"role": "assistant", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r"},
                user("thanks"),
                reasoning_effort="low",
                tools=TOOLS,
            ),
            2048,
        ),
    ],
    ids=[
        "low",
        "capped",
        "small-max",
        "none",
        "too-small",
        "prefill",
        "forced-tool",
        "open-tool-loop",
        "closed-tool-loop",
    ],
)
def test_reasoning_effort_to_thinking_budget(body: Json, budget: int | None) -> None:
    body["temperature"] = 0.5
    payload = payload_of(body)
    if budget is None:
        assert "thinking" not in payload and payload["temperature"] == 0.5
    else:
        assert payload["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in payload  # Anthropic rejects non-default sampling here


@pytest.mark.parametrize(
    ("upstream", "forwarded"),
    [
        ("claude-sonnet-4-6", True),
        ("claude-haiku-4-5-20251001", True),
        ("claude-3-haiku-20240307", True),
        ("claude-3-7-sonnet-20250219", True),
        ("claude-opus-4-20250514", True),
        ("claude-opus-4-7", False),
        ("claude-sonnet-5", False),
        ("claude-opus-5-1-20270101", False),
    ],
)
def test_sampling_dropped_for_models_that_accept_only_defaults(
    upstream: str, forwarded: bool
) -> None:
    payload = payload_of(chat(user(), temperature=0.2, top_p=0.5), target(upstream))
    assert (payload.get("temperature"), payload.get("top_p")) == (
        (0.2, 0.5) if forwarded else (None, None)
    )


IMAGE = "data:image/png;base64,iVBOR"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(user(), n=2), "n"),
        (
            chat(
                user([{"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN"}}])
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(user([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(user([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(user([{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}])),
            "messages[0].content[0].type",
        ),
        (
            chat(user([{"type": "file", "file": {"file_id": "file-1"}}])),
            "messages[0].content[0].file",
        ),
        (
            chat(user([{"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}])),
            "messages[0].content[0].file.file_data",
        ),
        (
            chat(
                user(),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ],
                },
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(
                user(),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                },
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(
                user(),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            ),
            "messages[1].tool_calls[0].id",
        ),
        (chat(user(), {"role": "tool", "content": "r"}), "messages[1].tool_call_id"),
        (chat(user(), {"role": "function", "name": "f", "content": "r"}), "messages[1].role"),
        (
            chat(
                {
                    "role": "assistant",
                    "content": [{"type": "image_url", "image_url": {"url": IMAGE}}],
                }
            ),
            "messages[0].content[0]",
        ),
        (chat({"role": "system", "content": "Only a system prompt"}), "messages"),
        (chat(user(), functions=[{"name": "f"}]), "functions"),
        (chat(user(), modalities=["text", "audio"]), "modalities"),
        (chat(user(), tool_choice="required"), "tool_choice"),
        (chat(user(), tools=TOOLS, tool_choice="sometimes"), "tool_choice"),
        (chat(user(), tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0]"),
        (chat(user(), reasoning_effort="extreme"), "reasoning_effort"),
        (
            chat(user(), response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
            "response_format.json_schema.schema",
        ),
        (chat(user(), response_format={"type": "yaml"}), "response_format.type"),
        (chat(user(), stop=["a", 1]), "stop"),
    ],
)
def test_rejections_name_the_param(body: Json, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.build_request(body, target())
    assert info.value.param == param and info.value.status == 400


def test_rejection_messages_do_not_echo_values() -> None:
    secret_url = "data:image/svg+xml;base64,c2stYW50LXNlY3JldA=="
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.build_request(
            chat(user([{"type": "image_url", "image_url": {"url": secret_url}}])), target()
        )
    assert "c2st" not in info.value.message and "svg" not in info.value.message
