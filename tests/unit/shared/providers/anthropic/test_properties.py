"""Anthropic adapter: properties: any input translates or is refused cleanly."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import InvalidRequest, UpstreamError
from orbyt.shared.providers.anthropic import ADAPTER
from orbyt.shared.providers.base import Json
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.anthropic.helpers import (
    chat,
    target,
    user,
)

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
