"""Anthropic adapter: pure translations, checked against wire transcripts.

Transcripts live in `transcripts/anthropic/`: request pairs (`requests.json`), message and
error bodies (`*.json`) and SSE streams (`*.sse`, byte-for-byte as Anthropic frames them).
They are written to Anthropic's documented wire format; `TestTranscriptsMatchTheSDK` reads
the same bytes with the official `anthropic` SDK so a drifting transcript fails loudly.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import Disposition, InvalidRequest, UpstreamError
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.anthropic import ADAPTER, AnthropicStreamState
from orbyt.shared.providers.base import Json, Target
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "anthropic"
KEY = "sk-ant-api03-" + "x" * 93 + "AA"


def target(
    upstream: str = "claude-sonnet-4-6",
    max_output: int | None = 64000,
    base_url: str = "https://api.anthropic.com",
) -> Target:
    return Target(
        provider="anthropic",
        model=f"anthropic/{upstream}",
        upstream_model=upstream,
        base_url=base_url,
        api_key=Secret(KEY),
        max_output_tokens=max_output,
    )


def payload_of(body: Json, tgt: Target | None = None) -> Json:
    out: Json = orjson.loads(ADAPTER.build_request(body, tgt or target()).body)
    return out


def chat(*messages: Json, **fields: Any) -> Json:
    return {"model": "anthropic/claude-sonnet-4-6", "messages": list(messages), **fields}


def user(content: Any = "Hi") -> Json:
    return {"role": "user", "content": content}


def read(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def sse_events(name: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(read(name)) + decoder.flush()


def run_stream(name: str, body: Json | None = None) -> tuple[list[Json], AnthropicStreamState]:
    state = ADAPTER.new_stream_state(body or chat(user()), target())
    chunks = [c for ev in sse_events(name) for c in ADAPTER.parse_event(ev, state)]
    return chunks, state


def accumulate(chunks: list[Json]) -> Json:
    """What an OpenAI client (the SDK's stream helper) rebuilds from the chunks."""
    out: Json = {
        "content": "",
        "reasoning": "",
        "tool_calls": {},
        "finish_reason": None,
        "usage": None,
    }
    for chunk in chunks:
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls", []):
                slot = out["tool_calls"].setdefault(call["index"], {"arguments": ""})
                slot.update({k: call[k] for k in ("id", "type") if k in call})
                slot.setdefault("name", call["function"].get("name"))
                slot["arguments"] += call["function"].get("arguments", "")
            out["finish_reason"] = choice["finish_reason"] or out["finish_reason"]
    return out


# --- adapter surface ----------------------------------------------------------------------


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


# --- requests -----------------------------------------------------------------------------

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


# --- non-streaming responses --------------------------------------------------------------


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


# --- streams ------------------------------------------------------------------------------


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


# --- errors -------------------------------------------------------------------------------

ERROR_CASES = [
    # file, status, headers -> status, type, code, disposition, retryable, retry_after
    (
        "error_rate_limit.json",
        429,
        {"retry-after": "7"},
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        Disposition.RETRY,
        True,
        7.0,
    ),
    (
        "error_rate_limit.json",
        429,
        {"Retry-After": "3"},
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        Disposition.RETRY,
        True,
        3.0,
    ),
    (
        "error_spend_limit.json",
        429,
        {},
        429,
        "insufficient_quota",
        "insufficient_quota",
        Disposition.QUOTA,
        False,
        None,
    ),
    (
        "error_overloaded.json",
        529,
        {},
        503,
        "server_error",
        "overloaded",
        Disposition.RETRY,
        True,
        None,
    ),
    (
        "error_prompt_too_long.json",
        400,
        {},
        400,
        "invalid_request_error",
        "context_length_exceeded",
        Disposition.CONTEXT,
        False,
        None,
    ),
    (
        "error_context_limit.json",
        400,
        {},
        400,
        "invalid_request_error",
        "context_length_exceeded",
        Disposition.CONTEXT,
        False,
        None,
    ),
    (
        "error_authentication.json",
        401,
        {},
        401,
        "authentication_error",
        "invalid_api_key",
        Disposition.AUTH,
        False,
        None,
    ),
    (
        "error_permission.json",
        403,
        {},
        403,
        "permission_error",
        "permission_denied",
        Disposition.AUTH,
        False,
        None,
    ),
    (
        "error_credit_balance.json",
        400,
        {},
        400,
        "insufficient_quota",
        "insufficient_quota",
        Disposition.QUOTA,
        False,
        None,
    ),
    (
        "error_model_not_found.json",
        404,
        {},
        404,
        "invalid_request_error",
        "model_not_found",
        Disposition.FINAL,
        False,
        None,
    ),
    (
        "error_invalid_request.json",
        400,
        {},
        400,
        "invalid_request_error",
        None,
        Disposition.FINAL,
        False,
        None,
    ),
    ("error_api.json", 500, {}, 500, "server_error", None, Disposition.RETRY, True, None),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[f"{c[0]}-{c[1]}" for c in ERROR_CASES])
def test_error_transcripts(case: tuple[Any, ...]) -> None:
    name, status, headers, *expected = case
    err = ADAPTER.map_error(status, headers, read(name))
    raw_message = orjson.loads(read(name))["error"]["message"]
    assert err.message == f"anthropic: {raw_message}"
    assert [
        err.status,
        err.type,
        err.code,
        err.disposition,
        err.should_retry,
        err.retry_after,
    ] == expected
    assert err.body()["error"]["code"] == expected[2]


@pytest.mark.parametrize(
    ("status", "raw", "code", "retryable"),
    [
        (529, b"", "overloaded", True),
        (502, b"<html><body>Bad gateway</body></html>", None, True),
        (503, b"upstream connect error or disconnect/reset before headers", "overloaded", True),
        (401, b"Unauthorized", "invalid_api_key", False),
        (413, b"<html>Request Entity Too Large</html>", "request_too_large", False),
        (400, b'{"type":"error","error":"bad"}', None, False),
        (418, b"\xff\xfe", None, False),
    ],
)
def test_non_json_error_bodies_map_cleanly(
    status: int, raw: bytes, code: str | None, retryable: bool
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert err.message.startswith("anthropic: ") and "<html" not in err.message
    assert (err.code, err.should_retry) == (code, retryable)
    assert err.status == (503 if status == 529 else status)


# --- the official SDK reads the same transcripts the same way -----------------------------


class TestTranscriptsMatchTheSDK:
    @staticmethod
    def client(raw: bytes, content_type: str) -> Any:
        anthropic = pytest.importorskip("anthropic")
        httpx2 = pytest.importorskip("httpx2")  # the HTTP client of anthropic >= 2

        def reply(request: Any) -> Any:
            return httpx2.Response(200, content=raw, headers={"content-type": content_type})

        http = httpx2.Client(transport=httpx2.MockTransport(reply))
        return anthropic.Anthropic(
            api_key=KEY, base_url="http://fake", http_client=http, max_retries=0
        )

    @pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_use.sse"])
    def test_streams(self, name: str) -> None:
        client = self.client(read(name), "text/event-stream")
        with client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        ours = accumulate(run_stream(name)[0])
        assert ours["content"] == "".join(b.text for b in final.content if b.type == "text")
        assert ours["reasoning"] == "".join(
            b.thinking for b in final.content if b.type == "thinking"
        )
        tools = [b for b in final.content if b.type == "tool_use"]
        assert [
            (c["id"], c["name"], orjson.loads(c["arguments"])) for c in ours["tool_calls"].values()
        ] == [(b.id, b.name, b.input) for b in tools]
        assert ours["usage"]["completion_tokens"] == final.usage.output_tokens

    @pytest.mark.parametrize("name", ["message_text.json", "message_tool_use.json"])
    def test_messages(self, name: str) -> None:
        client = self.client(read(name), "application/json")
        msg = client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
        ours = ADAPTER.parse_response(read(name), target())["choices"][0]["message"]
        text = "".join(b.text for b in msg.content if b.type == "text")
        assert ours["content"] == text
        assert [orjson.loads(c["function"]["arguments"]) for c in ours.get("tool_calls", [])] == [
            b.input for b in msg.content if b.type == "tool_use"
        ]

    def test_error_events_are_errors_to_the_sdk_too(self) -> None:
        anthropic = pytest.importorskip("anthropic")
        client = self.client(read("stream_overloaded.sse"), "text/event-stream")
        with pytest.raises(anthropic.APIStatusError):
            for _ in client.messages.create(
                model="m", max_tokens=10, stream=True, messages=[{"role": "user", "content": "Hi"}]
            ):
                pass


# --- properties ---------------------------------------------------------------------------

# Request bodies arrive as parsed JSON, which never holds lone surrogates.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
ints64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | ints64 | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def mostly(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Valid values most of the time, so most generated requests get all the way through."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda ok: valid if ok else invalid)


image_urls = mostly(
    st.sampled_from(
        [
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/jpg;base64,/9j/",
            "data:image/webp;base64,UklG",
            "https://example.com/a.png",
            "HTTP://EXAMPLE.COM/A.GIF",
        ]
    ),
    st.sampled_from(
        [
            "data:image/svg+xml;base64,PHN2Zz4=",
            "data:image/png,raw",
            "data:",
            "ftp://example.com/a.png",
            "",
        ]
    )
    | text,
)
text_part = st.fixed_dictionaries({"type": st.just("text"), "text": text})
image_part = st.fixed_dictionaries(
    {
        "type": st.just("image_url"),
        "image_url": st.fixed_dictionaries(
            {"url": image_urls}, optional={"detail": st.sampled_from(["auto", "low", "high"])}
        ),
    }
)
odd_parts = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("input_audio"), "input_audio": st.fixed_dictionaries({"data": text})}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("file"),
            "file": st.fixed_dictionaries(
                {},
                optional={
                    "file_data": st.sampled_from(
                        ["data:application/pdf;base64,JVBERi0=", "data:text/plain;base64,aGk="]
                    ),
                    "file_id": text,
                },
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": text}),
)
user_content = st.none() | text | st.lists(mostly(text_part | image_part, odd_parts), max_size=3)
text_content = st.none() | text | st.lists(mostly(text_part, odd_parts | image_part), max_size=3)
call_ids = mostly(st.sampled_from(["call_1", "call_2", "call.3", "toolu_01A"]), st.just(""))
names = st.sampled_from(["get_weather", "search"])
arguments = mostly(
    st.sampled_from(['{"city": "Paris"}', "{}", "", "  ", '{"a": {"b": [1, 2]}}']),
    st.sampled_from(["not json", "[1, 2]", "null"]) | text,
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": call_ids,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": names, "arguments": arguments}),
        }
    ),
    min_size=1,
    max_size=2,
)
messages = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer"]), "content": text_content}
    ),
    st.fixed_dictionaries(
        {"role": st.just("user"), "content": user_content}, optional={"name": text}
    ),
    st.fixed_dictionaries({"role": st.just("user"), "content": text}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": text_content}, optional={"tool_calls": tool_calls}
    ),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "content": user_content, "tool_call_id": call_ids}
    ),
)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": names},
                optional={
                    "description": text,
                    "strict": st.booleans(),
                    "parameters": st.just(
                        {"type": "object", "properties": {"city": {"type": "string"}}}
                    ),
                },
            ),
        }
    ),
    max_size=2,
)
tool_choice = mostly(
    st.sampled_from(["auto", "required", "none"])
    | st.fixed_dictionaries(
        {"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}
    ),
    st.just("bogus"),
)
response_format = mostly(
    st.sampled_from(
        [
            {"type": "text"},
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        ]
    ),
    st.sampled_from([{"type": "json_schema", "json_schema": {"name": "x"}}, {"type": "yaml"}]),
)
requests = st.fixed_dictionaries(
    {
        "model": st.just("anthropic/claude-sonnet-4-6"),
        "messages": st.tuples(
            st.lists(messages, max_size=4),
            st.fixed_dictionaries(
                {"role": st.just("user"), "content": mostly(text.filter(str.strip), text)}
            ),
            st.lists(messages, max_size=2),
        ).map(lambda t: [*t[0], t[1], *t[2]]),
    },
    optional={
        "max_tokens": st.integers(1, 200_000),
        "max_completion_tokens": st.integers(1, 200_000),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "n": mostly(st.just(1), st.integers(2, 3)),
        "stop": text | st.lists(text, max_size=4),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "seed": ints64,
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
        "logit_bias": st.dictionaries(text, st.integers(-100, 100), max_size=2),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "tools": tools,
        "tool_choice": tool_choice,
        "parallel_tool_calls": st.booleans(),
        "response_format": response_format,
        "user": text,
        "reasoning_effort": mostly(
            st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"]), st.just("turbo")
        ),
        "extra": st.fixed_dictionaries({"retry": st.integers(0, 10)}),
        "metadata": st.dictionaries(text, text, max_size=2),
        "unknown_field": json_values,
    },
)
PAYLOAD_KEYS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "metadata",
    "stream",
}


def check_payload(payload: Json) -> None:
    assert set(payload) <= PAYLOAD_KEYS
    turns = payload["messages"]
    assert turns and all(t["content"] for t in turns)
    assert all(a["role"] != b["role"] for a, b in itertools.pairwise(turns))
    for turn in turns:
        for block in turn["content"]:
            if block["type"] == "text":
                assert block["text"].strip()
            allowed = {
                "user": {"text", "image", "document", "tool_result"},
                "assistant": {"text", "tool_use"},
            }[turn["role"]]
            assert block["type"] in allowed
    last = turns[-1]["content"][-1]
    if turns[-1]["role"] == "assistant" and last["type"] == "text":
        assert last["text"] == last["text"].rstrip()
    assert isinstance(payload["max_tokens"], int) and payload["max_tokens"] >= 1
    if "thinking" in payload:
        assert 1024 <= payload["thinking"]["budget_tokens"] < payload["max_tokens"]
        assert "temperature" not in payload and "top_p" not in payload
        assert turns[-1]["role"] == "user"
    for name in ("temperature", "top_p"):
        assert 0 <= payload.get(name, 0) <= 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=requests)
def test_any_request_translates_or_is_rejected_with_a_param(body: Json) -> None:
    try:
        req = ADAPTER.build_request(body, target())
    except InvalidRequest as exc:
        assert exc.param
        event(f"rejected {exc.param}")
        return
    event("translated")
    check_payload(orjson.loads(req.body))


event_names = (
    st.none()
    | st.sampled_from(
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "ping",
            "error",
        ]
    )
    | text
)


@settings(max_examples=300, deadline=None)
@given(name=event_names, data=st.text(max_size=200))
def test_parse_event_survives_any_data(name: str | None, data: str) -> None:
    state = ADAPTER.new_stream_state(chat(user()), target())
    try:
        chunks = ADAPTER.parse_event(SSEEvent(name, data), state)
    except UpstreamError:
        return
    assert all(isinstance(c["choices"], list) for c in chunks)


def event_dicts() -> st.SearchStrategy[Json]:
    delta = st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "text_delta",
                    "thinking_delta",
                    "input_json_delta",
                    "signature_delta",
                    "citations_delta",
                ]
            )
        },
        optional={
            "text": json_values,
            "thinking": json_values,
            "partial_json": json_values,
            "stop_reason": json_values,
        },
    )
    block = st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "thinking", "tool_use", "redacted_thinking"])},
        optional={
            "text": json_values,
            "thinking": json_values,
            "id": json_values,
            "name": json_values,
            "input": json_values,
        },
    )
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                [
                    "message_start",
                    "content_block_start",
                    "content_block_delta",
                    "content_block_stop",
                    "message_delta",
                    "message_stop",
                    "ping",
                    "error",
                ]
            )
        },
        optional={
            "index": st.integers(0, 3) | json_values,
            "delta": delta | json_values,
            "content_block": block | json_values,
            "usage": json_values,
            "message": st.fixed_dictionaries({}, optional={"usage": json_values}),
            "error": json_values,
        },
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_dicts(), max_size=6))
def test_parse_event_survives_any_event_sequence(events: list[Json]) -> None:
    state = ADAPTER.new_stream_state(chat(user()), target())
    started = 0  # tool calls announced so far: each new one takes the next index
    for data in events:
        try:
            chunks = ADAPTER.parse_event(SSEEvent(data["type"], orjson.dumps(data).decode()), state)
        except UpstreamError:
            return
        for chunk in chunks:
            for choice in chunk["choices"]:
                assert choice["index"] == 0 and isinstance(choice["delta"], dict)
                for call in choice["delta"].get("tool_calls", []):
                    assert call["index"] < started or (call["index"] == started and "id" in call)
                    started += "id" in call


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(400, 599),
    raw=st.binary(max_size=200) | json_values.map(orjson.dumps),
    retry_after=st.none() | text,
)
def test_map_error_and_parse_response_never_crash(
    status: int, raw: bytes, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    err = ADAPTER.map_error(status, headers, raw)
    assert err.message.startswith("anthropic: ")
    assert err.status == (503 if status == 529 else status)
    with contextlib.suppress(UpstreamError):
        ADAPTER.parse_response(raw, target())
