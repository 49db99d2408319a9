"""Gemini adapter: the OpenAI body -> upstream request translation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.errors import InvalidRequest
from orbyt.shared.providers.google import ADAPTER
from tests.unit.shared.providers.google.helpers import (
    BASE,
    KEY,
    USER,
    chat,
    gemini_body,
    target,
    transcript,
)


def test_adapter_declares_itself() -> None:
    assert (ADAPTER.name, ADAPTER.key_env, ADAPTER.default_base_url, ADAPTER.needs_key) == (
        "google",
        "ORBYT_PROVIDERS__GOOGLE__KEYS",
        BASE,
        True,
    )


def test_non_stream_request_envelope() -> None:
    request = ADAPTER.build_request(chat(USER, extra={"retry": 1}), target())
    assert request.method == "POST" and request.stream is False
    assert request.url == f"{BASE}/v1beta/models/gemini-3-flash-preview:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in request.url and b"extra" not in request.body


def test_stream_request_uses_sse_endpoint() -> None:
    request = ADAPTER.build_request(chat(USER, stream=True), target("gemini-2.5-flash"))
    assert request.stream is True
    assert request.url == f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert KEY not in request.url


@pytest.mark.parametrize("model", ["../files", "gemini-2.5-flash?key=x", "a/b", "", "gemini#x"])
def test_model_names_cannot_leave_the_models_path(model: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        ADAPTER.build_request(chat(USER), target(model))
    assert exc.value.param == "model"


def test_full_conversation_matches_the_recorded_gemini_body() -> None:
    case = orjson.loads(transcript("request_conversation.json"))
    assert gemini_body(case["openai"], case["upstream_model"]) == case["gemini"]


def test_tool_content_that_is_not_an_object_is_wrapped() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    body = chat(
        USER,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "[1, 2]"},
        model="google/gemini-2.5-flash",
    )
    parts = gemini_body(body, "gemini-2.5-flash")["contents"]
    assert parts[1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]
    assert parts[2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": "[1, 2]"}}}
    ]


def test_tool_name_is_recovered_from_the_latest_assistant_message() -> None:
    first = {"id": "same", "type": "function", "function": {"name": "old", "arguments": "{}"}}
    second = {"id": "same", "type": "function", "function": {"name": "new", "arguments": "{}"}}
    body = chat(
        USER,
        {"role": "assistant", "tool_calls": [first]},
        {"role": "tool", "tool_call_id": "same", "content": "a"},
        USER,
        {"role": "assistant", "tool_calls": [second]},
        {"role": "tool", "tool_call_id": "same", "content": "b"},
    )
    contents = gemini_body(body)["contents"]
    assert contents[-1]["parts"][0]["functionResponse"]["name"] == "new"


def test_missing_signature_gets_the_placeholder_on_gemini_3_only() -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in range(2)
    ]
    body = chat(USER, {"role": "assistant", "tool_calls": calls})
    parts = gemini_body(body)["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in parts[1]
    parts = gemini_body(body, "gemini-2.5-pro")["contents"][1]["parts"]
    assert all("thoughtSignature" not in part for part in parts)


def test_files_api_uri_needs_no_extension() -> None:
    uri = f"{BASE}/v1beta/files/abc-123"
    content = [{"type": "image_url", "image_url": {"url": uri}}]
    parts = gemini_body(chat({"role": "user", "content": content}))["contents"][0]["parts"]
    assert parts == [{"fileData": {"fileUri": uri}}]


def test_audio_and_pdf_parts_are_inlined() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
        },
    ]
    parts = gemini_body(chat({"role": "user", "content": content}))["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


def test_dropped_fields_never_go_upstream() -> None:
    body = gemini_body(
        chat(
            USER,
            user="u",
            parallel_tool_calls=False,
            logit_bias={"1": 5},
            stream_options={"include_usage": True},
            metadata={"a": "b"},
            store=True,
            service_tier="auto",
        )
    )
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("gemini-3.1-pro", "none", {"thinkingLevel": "MINIMAL"}),
        ("gemini-flash-latest", "medium", {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", "none", {"thinkingBudget": 0}),
        ("gemini-2.0-flash", "high", None),
        ("gemma-3-27b-it", "high", None),
    ],
)
def test_reasoning_effort_per_model_family(model: str, effort: str, expected: Any) -> None:
    config = gemini_body(chat(USER, reasoning_effort=effort), model).get("generationConfig", {})
    assert config.get("thinkingConfig") == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
    ],
)
def test_tool_choice_modes(choice: str, expected: Any) -> None:
    body = gemini_body(chat(USER, tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_logprobs_and_json_object() -> None:
    config = gemini_body(
        chat(USER, logprobs=True, top_logprobs=3, stop="x", response_format={"type": "json_object"})
    )["generationConfig"]
    assert config == {
        "responseLogprobs": True,
        "logprobs": 3,
        "stopSequences": ["x"],
        "responseMimeType": "application/json",
    }


def _call(arguments: Any) -> dict[str, Any]:
    return {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(USER, stop=["a", "b", "c", "d", "e", "f"]), "stop"),
        (
            chat(USER, {"role": "assistant", "tool_calls": [_call("{nope")]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(USER, {"role": "assistant", "tool_calls": [_call("[1]")]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.tiff"}}
                    ],
                }
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "ftp://x.test/cat.png"}}
                    ],
                }
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
                    ],
                }
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat(
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "http://[::1/a.png"}],
                }
            ),
            "messages[0].content[0].image_url",
        ),
        (
            chat(
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}}
                    ],
                }
            ),
            "messages[0].content[0].input_audio.format",
        ),
        (
            chat(USER, {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}),
            "messages[1].function_call",
        ),
        (
            chat({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}),
            "messages[0].content[0].file.file_data",
        ),
        (
            chat(USER, {"role": "tool", "tool_call_id": "nobody", "content": "x"}),
            "messages[1].tool_call_id",
        ),
        (chat(USER, {"role": "function", "name": "f", "content": "x"}), "messages[1].role"),
        (chat({"role": "system", "content": "only a system prompt"}), "messages"),
        (chat(USER, audio={"voice": "alloy", "format": "wav"}), "audio"),
        (chat(USER, modalities=["text", "audio"]), "modalities"),
        (chat(USER, tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type"),
        (chat(USER, tool_choice={"type": "allowed_tools"}), "tool_choice"),
        (chat(USER, response_format={"type": "xml"}), "response_format.type"),
        (
            chat(USER, response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
            "response_format.json_schema.schema",
        ),
        (chat(USER, reasoning_effort="maximum"), "reasoning_effort"),
    ],
)
def test_unsupported_input_is_rejected_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        ADAPTER.build_request(body, target())
    assert exc.value.param == param
    assert exc.value.status == 400
