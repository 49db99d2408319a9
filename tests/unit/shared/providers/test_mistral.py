"""Mistral adapter: request translation, responses, streams and errors on wire transcripts."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import Disposition, InvalidRequest, UpstreamError
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.base import Json, StreamState, Target
from orbyt.shared.providers.mistral import ADAPTER, mistral_tool_id
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "mistral"
KEY = "Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4f"
TARGET = Target(
    provider="mistral",
    model="mistral/mistral-large-latest",
    upstream_model="mistral-large-latest",
    base_url="https://api.mistral.ai",
    api_key=Secret(KEY),
)
VALID_ID = re.compile(r"[A-Za-z0-9]{9}")


def load(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def build(body: Json, target: Target = TARGET) -> Json:
    payload: Json = orjson.loads(ADAPTER.build_request(body, target).body)
    return payload


def events(raw: bytes, step: int = 7) -> list[SSEEvent]:
    """Decode a transcript fed in small pieces, as the network would deliver it."""
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for i in range(0, len(raw), step):
        out += decoder.feed(raw[i : i + step])
    return out + decoder.flush()


def run_stream(raw: bytes) -> tuple[list[Json], StreamState]:
    state = ADAPTER.new_stream_state({}, TARGET)
    items: list[Json] = []
    for event in events(raw):
        items += ADAPTER.parse_event(event, state)
    return items, state


def deltas(items: list[Json]) -> list[Json]:
    return [c["delta"] for item in items for c in item["choices"]]


# ---------------------------------------------------------------- requests


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


# ---------------------------------------------------------------- responses


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


# ---------------------------------------------------------------- streams


def test_stream_usage_split_off_finish_chunk() -> None:
    items, state = run_stream(load("stream_text.sse"))
    assert state.done and state.finish_reason == "stop" and state.malformed == 0
    assert "".join(d.get("content", "") for d in deltas(items)) == (
        "Paris is the capital of France."
    )
    assert deltas(items)[0] == {"role": "assistant", "content": ""}
    assert items[-2] == {
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]
    }
    assert items[-1] == {
        "choices": [],
        "usage": {"prompt_tokens": 34, "completion_tokens": 7, "total_tokens": 41},
    }
    assert all("usage" not in item for item in items[:-1])


def test_stream_whole_tool_calls_get_index_id_type() -> None:
    items, state = run_stream(load("stream_tools.sse"))  # CRLF line endings
    calls = [tc for d in deltas(items) for tc in d.get("tool_calls", [])]
    assert calls == [
        {
            "index": 0,
            "id": "D681PevKs",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        # Mistral numbered this one 0 again; it is a new call, so it gets index 1.
        {
            "index": 1,
            "id": "x9Yq2LmN4",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'},
        },
    ]
    assert state.finish_reason == "tool_calls"
    assert items[-1]["usage"]["total_tokens"] == 151


def test_stream_split_tool_call_fragments_keep_their_index() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    first = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {
                    "tool_calls": [
                        {
                            "id": "abcDEF123",
                            "index": 0,
                            "function": {"name": "f", "arguments": '{"a"'},
                        }
                    ]
                },
            }
        ]
    }
    rest = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
            }
        ]
    }
    tail = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {"tool_calls": [{"index": 0, "function": {}}]},
            }
        ]
    }
    calls = [
        tc
        for chunk in (first, rest, tail)
        for item in ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
        for tc in item["choices"][0]["delta"]["tool_calls"]
    ]
    assert calls[1:] == [
        {"index": 0, "function": {"arguments": ": 1}"}},
        {"index": 0, "function": {"arguments": ""}},
    ]
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a": 1}'


def test_prediction_parts_become_a_string() -> None:
    prediction = {
        "type": "content",
        "content": [{"type": "text", "text": "def f():"}, {"type": "text", "text": " pass"}],
    }
    payload = build({"messages": [{"role": "user", "content": "x"}], "prediction": prediction})
    assert payload["prediction"] == {"type": "content", "content": "def f(): pass"}


def test_stream_magistral_thinking_then_text() -> None:
    items, state = run_stream(load("stream_magistral.sse"))
    ds = deltas(items)
    assert "".join(d.get("reasoning_content", "") for d in ds) == "Two plus two is four."
    assert "".join(d.get("content", "") for d in ds) == "4"
    assert all(isinstance(d.get("content", ""), str) for d in ds)
    assert state.finish_reason == "length"


def test_stream_finish_error_after_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    evs = events(load("stream_finish_error.sse"))
    assert ADAPTER.parse_event(evs[0], state) and ADAPTER.parse_event(evs[1], state)
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(evs[2], state)
    assert info.value.should_retry and info.value.before_content is False


def test_stream_finish_error_before_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    chunk = {"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
    assert info.value.before_content is True


def test_stream_error_event_and_junk() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    assert ADAPTER.parse_event(SSEEvent(None, ""), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "{not json"), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "[1, 2]"), state) == []
    assert state.malformed == 2
    error = {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(error).decode()), state)
    assert info.value.status == 429 and info.value.before_content is True


# ---------------------------------------------------------------- errors


def _flat(message: str, etype: str, code: str | None = None, **extra: Any) -> bytes:
    return orjson.dumps(
        {"object": "error", "message": message, "type": etype, "param": None, "code": code, **extra}
    )


TOOL_ID_MSG = "Tool call id was call_0fypS1hVX but must be a-z, A-Z, 0-9, with a length of 9."
CONTEXT_MSG = (
    "Prompt contains 40015 tokens and 0 draft tokens, too large for model "
    "with 32768 maximum context length"
)
ERRORS: list[tuple[str, int, bytes, int, Disposition, str | None]] = [
    (
        "tool id",
        400,
        _flat(TOOL_ID_MSG, "invalid_function_call", "3280"),
        400,
        Disposition.FINAL,
        "3280",
    ),
    ("auth", 401, b'{"detail":"Unauthorized"}', 401, Disposition.AUTH, None),
    ("forbidden", 403, _flat("Forbidden", "authentication_error"), 403, Disposition.AUTH, None),
    (
        "rate limited",
        429,
        _flat("Rate limit exceeded", "rate_limited", "1300", raw_status_code=429),
        429,
        Disposition.RETRY,
        "1300",
    ),
    (
        "rate limit, bare",
        429,
        b'{"message":"Requests rate limit exceeded"}',
        429,
        Disposition.RETRY,
        None,
    ),
    (
        "rate type on 400",
        400,
        _flat("Too many tokens per minute", "rate_limit_error"),
        429,
        Disposition.RETRY,
        "rate_limit_exceeded",
    ),
    (
        "raw status 5xx",
        400,
        _flat("Upstream model crashed", "server_error", "1000", raw_status_code=503),
        503,
        Disposition.RETRY,
        "1000",
    ),
    (
        "server",
        500,
        _flat("Internal server error", "server_error", "1000"),
        500,
        Disposition.RETRY,
        "1000",
    ),
    (
        "context",
        400,
        _flat(CONTEXT_MSG, "invalid_request_error", "3051"),
        400,
        Disposition.CONTEXT,
        "context_length_exceeded",
    ),
    ("non-json", 502, b"<html><body>502 Bad Gateway</body></html>", 502, Disposition.RETRY, None),
    ("empty", 503, b"", 503, Disposition.RETRY, None),
]


@pytest.mark.parametrize(
    ("status", "raw", "want_status", "disposition", "code"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_map_error(
    status: int, raw: bytes, want_status: int, disposition: Disposition, code: str | None
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert (err.status, err.disposition, err.code) == (want_status, disposition, code)
    assert err.message.startswith("mistral: ")
    body = err.body()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] in {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "rate_limit_error",
        "server_error",
    }


def test_map_error_422_detail_without_input() -> None:
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "store"],
            "msg": "Extra inputs are not permitted",
            "input": f"secret {KEY}",
        },
        {
            "type": "string_type",
            "loc": ["body", "messages", 0, "system", "content", "str"],
            "msg": "Input should be a valid string",
            "input": [{"type": "text"}],
        },
    ]
    nested = orjson.dumps(
        {
            "object": "error",
            "message": {"detail": detail},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    )
    for raw in (orjson.dumps({"detail": detail}), nested):
        err = ADAPTER.map_error(422, {}, raw)
        assert err.status == 422 and err.disposition is Disposition.FINAL
        assert err.param == "store"
        assert err.message == (
            "mistral: store: Extra inputs are not permitted; "
            "messages[0].system.content.str: Input should be a valid string"
        )
        assert KEY not in err.message


def test_map_error_retry_after() -> None:
    err = ADAPTER.map_error(429, {"retry-after": "3"}, _flat("Rate limit", "rate_limited"))
    assert err.retry_after == 3.0
    assert err.response_headers()["retry-after"] == "3"


# ---------------------------------------------------------------- properties

# JSON text: no lone surrogates (a request body decoded from JSON cannot hold them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
# Fast and reproducible: no example database, bounded examples.
FUZZ = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
INT64 = st.integers(-(2**63), 2**63 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
TOOL_IDS = st.one_of(
    st.from_regex(r"[A-Za-z0-9]{9}", fullmatch=True),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
)
PARTS = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, TEXT),
    st.just({"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}),
    st.just({"type": "file", "file": {"file_id": "f-1"}}),
    st.just({"type": "file", "file": {"file_data": "AA=="}}),
)
CONTENT = st.one_of(TEXT, st.lists(PARTS, max_size=3))
ARGS = st.one_of(TEXT, st.dictionaries(TEXT, INT64, max_size=2))


@st.composite
def conversations(draw: st.DrawFn) -> list[Json]:
    messages: list[Json] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["system", "developer", "user", "tools", "function"]))
        if kind == "tools":
            ids = draw(st.lists(TOOL_IDS, min_size=1, max_size=3))
            messages.append(
                {
                    "role": "assistant",
                    "content": draw(st.none() | TEXT),
                    "tool_calls": [
                        {
                            "id": i,
                            "type": "function",
                            "function": {"name": "f", "arguments": draw(ARGS)},
                        }
                        for i in ids
                    ],
                }
            )
            messages += [{"role": "tool", "tool_call_id": i, "content": draw(CONTENT)} for i in ids]
        else:
            messages.append({"role": kind, "content": draw(CONTENT)})
    return messages


OPTIONAL = {
    "tools": st.just([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    "tool_choice": st.sampled_from(
        ["none", "auto", "required", {"type": "function", "function": {"name": "f"}}]
    ),
    "stop": st.one_of(TEXT, st.lists(TEXT, max_size=20)),
    "prediction": st.just({"type": "content", "content": [{"type": "text", "text": "x"}]}),
    "n": st.integers(1, 8),
    "seed": INT64,
    "response_format": st.sampled_from(
        [
            {"type": "text"},
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            {"type": ["x"]},
        ]
    ),
    "reasoning_effort": st.sampled_from(["none", "minimal", "low", "high", "max", "bogus"]) | JSON,
    "stream": st.booleans(),
    "stream_options": st.just({"include_usage": True}),
    "max_completion_tokens": st.integers(1, 10_000),
    "user": TEXT,
    "logit_bias": st.just({"1": 5}),
    "modalities": st.sampled_from([["text"], ["text", "audio"]]),
    "extra": st.just({"retry": 1}),
}
REQUESTS = st.fixed_dictionaries(
    {"model": st.just("mistral/mistral-large-latest"), "messages": conversations()},
    optional=OPTIONAL,
)


@FUZZ
@given(REQUESTS)
def test_any_request_translates_or_is_rejected(body: Json) -> None:
    try:
        payload = build(body)
    except InvalidRequest as exc:
        assert exc.param
        return
    for original, sent in zip(body["messages"], payload["messages"], strict=True):
        for call, out in zip(
            original.get("tool_calls") or [], sent.get("tool_calls") or [], strict=True
        ):
            assert VALID_ID.fullmatch(out["id"]) and out["id"] == mistral_tool_id(call["id"])
        if original["role"] == "tool":
            assert sent["tool_call_id"] == mistral_tool_id(original["tool_call_id"])
    assert not {"seed", "user", "logit_bias", "stream_options", "extra"} & set(payload)


DELTA = st.fixed_dictionaries(
    {},
    optional={
        "role": JSON,
        "content": JSON
        | st.just([{"type": "thinking", "thinking": [{"type": "text", "text": "t"}]}]),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": JSON,
                    "index": JSON,
                    "function": st.fixed_dictionaries(
                        {}, optional={"name": JSON, "arguments": JSON}
                    ),
                },
            )
            | JSON,
            max_size=2,
        ),
    },
)
CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": JSON,
                    "delta": DELTA | JSON,
                    "finish_reason": JSON
                    | st.sampled_from(["stop", "length", "model_length", "error", "tool_calls"]),
                },
            )
            | JSON,
            max_size=2,
        )
        | JSON,
        "usage": JSON,
        "object": JSON,
        "error": JSON,
        "message": JSON,
    },
)
DATA = st.one_of(
    st.text(),
    CHUNK.map(lambda c: orjson.dumps(c).decode()),
    JSON.map(lambda c: orjson.dumps(c).decode()),
)


@FUZZ
@given(st.lists(DATA, max_size=5))
def test_parse_event_only_raises_upstream_errors(datas: list[str]) -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    for data in datas:
        try:
            items = ADAPTER.parse_event(SSEEvent(None, data), state)
        except UpstreamError:
            return
        orjson.dumps(items)  # always JSON-renderable
        for item in items:
            for choice in item["choices"]:
                content = choice["delta"].get("content")
                assert content is None or isinstance(content, str)


ERROR_KEYS = ("object", "message", "type", "param", "code", "raw_status_code", "detail")
ERROR_BODY = st.fixed_dictionaries({}, optional={k: JSON for k in ERROR_KEYS})
ERROR_BODIES = st.one_of(
    ERROR_BODY,
    st.fixed_dictionaries({"error": ERROR_BODY}),
    st.fixed_dictionaries(
        {
            "detail": st.lists(
                st.fixed_dictionaries({}, optional={"loc": JSON, "msg": JSON, "input": JSON})
            )
        }
    ),
)


@FUZZ
@given(ERROR_BODIES.map(orjson.dumps), st.integers(100, 599))
def test_map_error_total_on_error_shapes(raw: bytes, status: int) -> None:
    err = ADAPTER.map_error(status, {"retry-after": "x"}, raw)
    assert err.message.startswith("mistral: ") and len(err.message) <= 1100
    orjson.dumps(err.body())


@FUZZ
@given(
    st.one_of(
        st.binary(),
        CHUNK.map(orjson.dumps),
        ERROR_BODIES.map(orjson.dumps),
        st.builds(
            lambda c: orjson.dumps({"choices": [c]}),
            st.fixed_dictionaries({}, optional={"message": DELTA | JSON, "finish_reason": JSON}),
        ),
    )
)
def test_parse_response_and_map_error_total(raw: bytes) -> None:
    with contextlib.suppress(UpstreamError):
        orjson.dumps(ADAPTER.parse_response(raw, TARGET))
    err = ADAPTER.map_error(400, {}, raw)
    assert isinstance(err, UpstreamError) and err.message.startswith("mistral: ")
