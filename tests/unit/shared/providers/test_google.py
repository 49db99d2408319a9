"""The Gemini adapter on wire transcripts (transcripts/google/): requests, answers, streams, errors.

The transcripts follow the documented Generative Language API shapes (PROVIDERS.md §3);
thought signatures in them are opaque base64 of the real length class (hundreds of bytes).
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import Disposition, InvalidRequest, UpstreamError
from orbyt.shared.providers.base import StreamState, Target
from orbyt.shared.providers.google import ADAPTER
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "google"
KEY = "AQ.Ab8RN6test-key-never-in-urls"
BASE = "https://generativelanguage.googleapis.com"


def target(model: str = "gemini-3-flash-preview") -> Target:
    return Target("google", f"google/{model}", model, BASE, Secret(KEY))


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def gemini_body(body: dict[str, Any], model: str = "gemini-3-flash-preview") -> Any:
    return orjson.loads(ADAPTER.build_request(body, target(model)).body)


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "google/x", "messages": list(messages), **fields}


USER = {"role": "user", "content": "hi"}


def replay(name: str, body: dict[str, Any] | None = None, split: int = 7) -> tuple[list[Any], Any]:
    """Feed an SSE transcript through the decoder in small network chunks."""
    raw = transcript(name)
    state = ADAPTER.new_stream_state(body or {}, target())
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for start in range(0, len(raw), split):
        events += decoder.feed(raw[start : start + split])
    events += decoder.flush()
    items: list[Any] = []
    for event in events:
        items += ADAPTER.parse_event(event, state)
    return items, state


def data(payload: Any) -> SSEEvent:
    return SSEEvent(None, payload if isinstance(payload, str) else orjson.dumps(payload).decode())


# --- adapter identity and request envelope -------------------------------------------------


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


# --- messages ------------------------------------------------------------------------------


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


# --- non-stream responses ------------------------------------------------------------------


def test_text_answer_with_thought_summary_and_usage() -> None:
    out = ADAPTER.parse_response(transcript("response_text_thoughts.json"), target())
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": 'There are three r\'s in "strawberry".',
                "reasoning_content": "**Counting the letters**\n\nThe user wants the "
                "number of r's in strawberry.",
            },
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 217,
        "total_tokens": 229,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 206},
    }


def test_parallel_tool_calls_carry_the_signature_on_the_first_call() -> None:
    out = ADAPTER.parse_response(transcript("response_parallel_tools.json"), target())
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both cities."
    first, second = choice["message"]["tool_calls"]
    assert first["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris","unit":"celsius"}',
    }
    signature = orjson.loads(transcript("response_parallel_tools.json"))["candidates"][0][
        "content"
    ]["parts"][2]["thoughtSignature"]
    assert first["extra_content"] == {"google": {"thought_signature": signature}}
    assert "extra_content" not in second
    assert first["id"] != second["id"]
    assert all(len(call["id"]) <= 40 and call["type"] == "function" for call in (first, second))
    assert out["usage"]["prompt_tokens"] == 105  # prompt + toolUsePrompt
    assert out["usage"]["completion_tokens"] == 166  # candidates + thoughts


def test_tool_round_trip_restores_the_signature_exactly() -> None:
    raw = transcript("response_parallel_tools.json")
    message = ADAPTER.parse_response(raw, target())["choices"][0]["message"]
    signature = message["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 11}'}
        for call in reversed(message["tool_calls"])
    ]
    body = gemini_body(chat({"role": "user", "content": "Weather?"}, message, *results))
    model_turn, results_turn = body["contents"][1], body["contents"][2]
    assert [p.get("thoughtSignature") for p in model_turn["parts"]] == [None, signature, None]
    assert [p["functionCall"]["args"]["city"] for p in model_turn["parts"][1:]] == [
        "Paris",
        "Tokyo",
    ]
    assert results_turn == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 11}}}] * 2,
    }


def test_ids_are_deterministic() -> None:
    raw = transcript("response_parallel_tools.json")
    first = ADAPTER.parse_response(raw, target())["choices"][0]["message"]["tool_calls"]
    again = ADAPTER.parse_response(raw, target())["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in first] == [c["id"] for c in again]


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    out = ADAPTER.parse_response(transcript("response_blocked.json"), target())
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert out["usage"]["prompt_tokens"] == 21


@pytest.mark.parametrize(
    ("reason", "with_call", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("IMAGE_SAFETY", False, "content_filter"),
        ("LANGUAGE", False, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("UNEXPECTED_TOOL_CALL", False, "stop"),
        ("MISSING_THOUGHT_SIGNATURE", False, "stop"),
        ("OTHER", False, "stop"),
        ("SOMETHING_NEW", False, "stop"),
    ],
)
def test_finish_reasons(reason: str, with_call: bool, expected: str) -> None:
    parts: list[Any] = [{"text": "x"}]
    if with_call:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    raw = orjson.dumps(
        {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}]}
    )
    assert ADAPTER.parse_response(raw, target())["choices"][0]["finish_reason"] == expected


def test_logprobs_are_translated() -> None:
    raw = orjson.dumps(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "Hi"}]},
                    "finishReason": "STOP",
                    "logprobsResult": {
                        "topCandidates": [
                            {
                                "candidates": [
                                    {"token": "Hi", "logProbability": -0.1},
                                    {"token": "Hey", "logProbability": -2.5},
                                ]
                            }
                        ],
                        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                    },
                }
            ]
        }
    )
    logprobs = ADAPTER.parse_response(raw, target())["choices"][0]["logprobs"]
    assert logprobs["content"] == [
        {
            "token": "Hi",
            "logprob": -0.1,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]},
            ],
        }
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html>502</html>",
        b"[]",
        b"{}",
        b'{"candidates": 3}',
        b'{"candidates": [{"content": {"parts": "x"}}]}',
    ],
)
def test_malformed_responses_are_502(raw: bytes) -> None:
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.parse_response(raw, target())
    assert exc.value.status == 502 and exc.value.disposition is Disposition.RETRY


# --- streams -------------------------------------------------------------------------------


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


# --- errors --------------------------------------------------------------------------------


def test_invalid_key_400_becomes_401_auth() -> None:
    err = ADAPTER.map_error(400, {}, transcript("error_api_key_invalid.json"))
    assert (err.status, err.disposition, err.code) == (401, Disposition.AUTH, "invalid_api_key")
    assert err.type == "authentication_error"
    assert err.message == "google: API key not valid. Please pass a valid API key."


def test_rate_limit_carries_retry_info() -> None:
    err = ADAPTER.map_error(429, {}, transcript("error_rate_limit.json"))
    assert (err.status, err.disposition, err.retry_after) == (429, Disposition.RETRY, 37.0)
    assert err.code == "rate_limit_exceeded" and err.should_retry
    assert err.response_headers()["retry-after"] == "37"


def test_per_day_quota_is_final_for_the_key() -> None:
    err = ADAPTER.map_error(429, {}, transcript("error_quota_per_day.json"))
    assert (err.disposition, err.code, err.retry_after) == (
        Disposition.QUOTA,
        "insufficient_quota",
        1.5,
    )
    assert err.response_headers()["x-should-retry"] == "false"


def test_zero_quota_is_final_for_the_key() -> None:
    body = orjson.loads(transcript("error_rate_limit.json"))
    body["error"]["details"][1]["violations"][0]["quotaValue"] = "0"
    assert ADAPTER.map_error(429, {}, orjson.dumps(body)).disposition is Disposition.QUOTA


def test_token_limit_is_a_context_error() -> None:
    err = ADAPTER.map_error(400, {}, transcript("error_context.json"))
    assert (err.status, err.code, err.disposition) == (
        400,
        "context_length_exceeded",
        Disposition.CONTEXT,
    )


@pytest.mark.parametrize(
    ("status", "name", "disposition"),
    [
        (400, "error_missing_signature.json", Disposition.FINAL),
        (403, "error_permission_denied.json", Disposition.AUTH),
        (503, "error_unavailable.json", Disposition.RETRY),
    ],
)
def test_status_dispositions(status: int, name: str, disposition: Disposition) -> None:
    err = ADAPTER.map_error(status, {}, transcript(name))
    assert (err.status, err.disposition) == (status, disposition)
    assert err.message.startswith("google: ")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html><body>Bad gateway</body></html>",
        b"upstream connect error",
        b'{"error": "oops"}',
        b"[]",
    ],
)
def test_non_json_errors_map_cleanly(status: int, raw: bytes) -> None:
    err = ADAPTER.map_error(status, {"retry-after": "2"}, raw)
    assert err.status == status and err.disposition is Disposition.RETRY
    assert err.message.startswith("google: ") and err.retry_after == 2.0
    assert "<html" not in err.message


# --- properties ----------------------------------------------------------------------------


def _encodable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
TEXT = st.text(max_size=10)
TEXT_PART = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
PART = st.one_of(
    TEXT_PART,
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from(
                        [
                            "data:image/png;base64,iVBORw0KGgo=",
                            "https://x.test/a.webp",
                            f"{BASE}/v1beta/files/f1",
                        ]
                    )
                },
                optional={"detail": st.sampled_from(["auto", "low", "high"])},
            ),
        }
    ),
    st.just({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}}),
    st.just({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}),
)
CONTENT = TEXT | st.lists(PART, min_size=1, max_size=3)
ARGUMENTS = (
    st.dictionaries(st.text(max_size=4), JSON, max_size=2)
    .filter(lambda args: _encodable(args))
    .map(lambda args: orjson.dumps(args).decode())
)
SIGNED = st.just({"google": {"thought_signature": "c2ln"}})
TOOL = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["f", "g"])},
            optional={
                "description": TEXT,
                "parameters": st.just({"type": "object"}),
                "strict": st.booleans(),
            },
        ),
    }
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "stream": st.booleans(),
        "tools": st.lists(TOOL, max_size=2),
        "tool_choice": st.sampled_from(
            ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}]
        ),
        "stop": TEXT | st.lists(TEXT, max_size=4),
        "n": st.integers(1, 4),
        "response_format": st.sampled_from(
            [
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
            ]
        ),
        "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high"]),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 10**6),
        "max_completion_tokens": st.integers(1, 10**6),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "modalities": st.just(["text"]),
        "parallel_tool_calls": st.booleans(),
        "logit_bias": st.just({"50256": -100}),
        "user": TEXT,
        "extra": st.just({"retry": 1, "fallback_models": ["openai/gpt-5-mini"]}),
    },
)
MODELS = st.sampled_from(
    [
        "gemini-3-flash-preview",
        "gemini-2.5-flash",
        "gemini-2.0-flash",
        "gemma-3-4b-it",
        "gemini-flash-latest",
    ]
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid OpenAI conversation: tool results answer earlier calls, in any order."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(st.text(min_size=1))}]
    steps = st.sampled_from(["system", "developer", "user", "assistant", "tools"])
    for step in draw(st.lists(steps, max_size=6)):
        if step == "assistant":
            messages.append({"role": step, "content": draw(st.none() | TEXT)})
        elif step == "tools":
            ids = [f"call_{len(messages)}_{k}" for k in range(draw(st.integers(1, 3)))]
            calls = [
                {
                    "id": i,
                    "type": "function",
                    "function": {
                        "name": draw(st.sampled_from(["f", "g"])),
                        "arguments": draw(ARGUMENTS),
                    },
                    **({"extra_content": draw(SIGNED)} if draw(st.booleans()) else {}),
                }
                for i in ids
            ]
            messages.append(
                {"role": "assistant", "content": draw(st.none() | TEXT), "tool_calls": calls}
            )
            messages += [
                {"role": "tool", "tool_call_id": i, "content": draw(TEXT)}
                for i in draw(st.permutations(ids))
            ]
        else:
            content = CONTENT if step == "user" else TEXT | st.lists(TEXT_PART, max_size=2)
            messages.append({"role": step, "content": draw(content)})
    return messages


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree."""
    keys = value.keys() if isinstance(value, dict) else range(len(value))
    for key in list(keys):
        out.append((value, key))
        if isinstance(value[key], dict | list) and value[key]:
            _slots(value[key], out)
    return out


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """The body with one to three values anywhere in it replaced by arbitrary JSON."""
    body = orjson.loads(orjson.dumps(body))
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(body, [])))
        container[key] = draw(JSON)
    return body


REQUESTS = st.builds(
    lambda messages, fields: {"model": "google/m", "messages": messages, **fields},
    conversations(),
    FIELDS,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=REQUESTS, model=MODELS)
def test_any_valid_request_translates(body: dict[str, Any], model: str) -> None:
    request = ADAPTER.build_request(body, target(model))
    payload = orjson.loads(request.body)
    assert KEY not in request.url and "extra" not in payload
    roles = [turn["role"] for turn in payload["contents"]]
    assert roles[0] == "user" and set(roles) <= {"user", "model"}
    assert all(a != b for a, b in itertools.pairwise(roles))  # same-role turns merged
    assert all(turn["parts"] for turn in payload["contents"])
    parts = [part for turn in payload["contents"] for part in turn["parts"]]
    tools = [m for m in body["messages"] if m["role"] == "tool"]
    assert sum("functionResponse" in part for part in parts) == len(tools)
    calls = [part for part in parts if "functionCall" in part]
    assert sum(len(m.get("tool_calls", [])) for m in body["messages"]) == len(calls)
    for turn in payload["contents"]:
        signatures = [p.get("thoughtSignature") for p in turn["parts"] if "functionCall" in p]
        if signatures and model in ("gemini-3-flash-preview", "gemini-flash-latest"):
            assert signatures[0] in ("c2ln", "skip_thought_signature_validator")
        assert set(signatures[1:]) <= {"c2ln", None}
        if model not in ("gemini-3-flash-preview", "gemini-flash-latest"):
            assert set(signatures) <= {"c2ln", None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), model=MODELS)
def test_any_request_translates_or_is_rejected(data: st.DataObject, model: str) -> None:
    body = data.draw(REQUESTS.flatmap(mutated))
    try:
        request = ADAPTER.build_request(body, target(model))
    except InvalidRequest as exc:
        assert exc.status == 400
        return
    payload = orjson.loads(request.body)
    assert KEY not in request.url and "extra" not in payload
    assert all(turn["parts"] for turn in payload["contents"])


STRUCTURED_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "candidates": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.fixed_dictionaries(
                        {},
                        optional={
                            "parts": st.lists(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "text": JSON,
                                        "thought": JSON,
                                        "thoughtSignature": JSON,
                                        "functionCall": st.fixed_dictionaries(
                                            {}, optional={"name": JSON, "args": JSON}
                                        )
                                        | JSON,
                                    },
                                )
                                | JSON,
                                max_size=3,
                            )
                            | JSON
                        },
                    )
                    | JSON,
                    "finishReason": st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]) | JSON,
                    "index": JSON,
                    "logprobsResult": JSON,
                },
            )
            | JSON,
            max_size=2,
        )
        | JSON,
        "usageMetadata": st.dictionaries(
            st.sampled_from(["promptTokenCount", "thoughtsTokenCount", "totalTokenCount"]), JSON
        )
        | JSON,
        "promptFeedback": JSON,
        "responseId": JSON,
        "error": JSON,
    },
)


EVENT_DATA = st.text(max_size=40) | STRUCTURED_EVENT.filter(_encodable).map(
    lambda event: orjson.dumps(event).decode()
)


@settings(max_examples=250, deadline=None)
@given(events=st.lists(EVENT_DATA, max_size=6))
def test_parse_event_only_raises_upstream_errors(events: list[str]) -> None:
    state = ADAPTER.new_stream_state({"n": 2}, target())
    for payload in events:
        try:
            items = ADAPTER.parse_event(SSEEvent(None, payload), state)
        except UpstreamError:
            continue
        assert isinstance(items, list) and all(isinstance(item, dict) for item in items)
        orjson.dumps(items)  # every item can be rendered


@settings(max_examples=200, deadline=None)
@given(
    raw=st.binary(max_size=60) | STRUCTURED_EVENT.filter(_encodable).map(orjson.dumps),
    status=st.integers(400, 599),
)
def test_parse_response_and_map_error_are_total(raw: bytes, status: int) -> None:
    with contextlib.suppress(UpstreamError):
        ADAPTER.parse_response(raw, target())
    err = ADAPTER.map_error(status, {}, raw)
    assert isinstance(err, UpstreamError) and err.message.startswith("google: ")
