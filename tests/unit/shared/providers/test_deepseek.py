"""DeepSeek adapter: request translation, responses, streams and errors on wire transcripts."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import Disposition, InvalidRequest, UpstreamError
from orbyt.shared.providers import get_adapter
from orbyt.shared.providers.base import Json, StreamState, Target
from orbyt.shared.providers.deepseek import ADAPTER
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEDecoder, SSEEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "deepseek"
KEY = "sk-0123456789abcdef0123456789abcdef"
TARGET = Target(
    provider="deepseek",
    model="deepseek/deepseek-v4-flash",
    upstream_model="deepseek-v4-flash",
    base_url="https://api.deepseek.com",
    api_key=Secret(KEY),
)
USER = {"role": "user", "content": "hi"}


def load(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def build(body: Json) -> Json:
    payload: Json = orjson.loads(ADAPTER.build_request(body, TARGET).body)
    return payload


def events(raw: bytes, step: int = 5) -> list[SSEEvent]:
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


# ---------------------------------------------------------------- responses


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


# ---------------------------------------------------------------- streams


def test_stream_reasoning_before_content_without_nulls() -> None:
    items, state = run_stream(load("stream_reasoning.sse"))  # with `: keep-alive` comments
    ds = deltas(items)
    assert all(v is not None for d in ds for v in d.values())
    assert ds[0] == {"role": "assistant", "reasoning_content": ""}
    assert "".join(d.get("reasoning_content", "") for d in ds) == "Two plus two is four."
    assert "".join(d.get("content", "") for d in ds) == "4"
    assert state.done and state.finish_reason == "stop" and state.malformed == 0
    assert items[0]["system_fingerprint"] == "fp_8802369eaa_prod0623_fp8_kvcache"
    assert items[-1] == {
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 6},
        },
    }


def test_stream_tool_call_fragments_pass_through() -> None:
    items, state = run_stream(load("stream_tools.sse"))
    calls = [tc for d in deltas(items) for tc in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "call_00_Xk9TqWm3Lp2Rs8Vn4Bc7Hd1F",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert state.finish_reason == "tool_calls"
    # usage on the finish chunk is split into its own item
    assert items[-2]["choices"][0]["finish_reason"] == "tool_calls" and "usage" not in items[-2]
    assert items[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 256}


def test_stream_insufficient_resource_after_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    with pytest.raises(UpstreamError) as info:
        for event in events(load("stream_insufficient_resource.sse")):
            ADAPTER.parse_event(event, state)
    assert info.value.status == 503 and info.value.should_retry
    assert info.value.before_content is False


def test_stream_insufficient_resource_before_content() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"content": None, "reasoning_content": None},
                "finish_reason": "insufficient_system_resource",
            }
        ]
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(chunk).decode()), state)
    assert info.value.before_content is True


def test_stream_error_event_and_blank_data() -> None:
    state = ADAPTER.new_stream_state({}, TARGET)
    assert ADAPTER.parse_event(SSEEvent(None, ""), state) == []
    assert ADAPTER.parse_event(SSEEvent(None, "  \n "), state) == []
    assert state.malformed == 0
    error = {
        "error": {
            "message": "Server Overloaded",
            "type": "server_error",
            "param": None,
            "code": "server_overloaded",
        }
    }
    with pytest.raises(UpstreamError) as info:
        ADAPTER.parse_event(SSEEvent(None, orjson.dumps(error).decode()), state)
    assert info.value.status == 503 and info.value.should_retry


# ---------------------------------------------------------------- errors


def _err(message: str, etype: str, code: str | None = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}})


CONTEXT_MSG = (
    "This model's maximum context length is 131072 tokens. However, you requested "
    "140000 tokens (139000 in the messages, 1000 in the completion)."
)
ERRORS: list[tuple[str, int, bytes, Disposition, str | None, str]] = [
    (
        "bad request",
        400,
        _err("Invalid request format.", "invalid_request_error"),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "reasoning echo",
        400,
        _err(
            "The reasoning_content in the thinking mode must be passed back to the API.",
            "invalid_request_error",
        ),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "context",
        400,
        _err(CONTEXT_MSG, "invalid_request_error"),
        Disposition.CONTEXT,
        "context_length_exceeded",
        "invalid_request_error",
    ),
    (
        "auth",
        401,
        _err("Authentication Fails, Your api key: ****cdef is invalid", "authentication_error"),
        Disposition.AUTH,
        "invalid_api_key",
        "authentication_error",
    ),
    (
        "balance",
        402,
        _err("Insufficient Balance", "unknown_error"),
        Disposition.QUOTA,
        "insufficient_quota",
        "billing_error",
    ),
    (
        "params",
        422,
        _err("Invalid Parameters", "invalid_request_error"),
        Disposition.FINAL,
        None,
        "invalid_request_error",
    ),
    (
        "rate",
        429,
        _err("Rate Limit Reached", "rate_limit_error", "rate_limit_exceeded"),
        Disposition.RETRY,
        "rate_limit_exceeded",
        "rate_limit_error",
    ),
    (
        "server",
        500,
        _err("Server Error", "server_error", "server_error"),
        Disposition.RETRY,
        "server_error",
        "server_error",
    ),
    (
        "overloaded",
        503,
        _err("Server Overloaded", "server_error", "server_overloaded"),
        Disposition.RETRY,
        "server_overloaded",
        "server_error",
    ),
    ("non-json", 502, b"<html>Bad Gateway</html>", Disposition.RETRY, None, "server_error"),
    ("empty", 503, b"\n\n", Disposition.RETRY, None, "server_error"),
]


@pytest.mark.parametrize(
    ("status", "raw", "disposition", "code", "etype"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_map_error(
    status: int, raw: bytes, disposition: Disposition, code: str | None, etype: str
) -> None:
    err = ADAPTER.map_error(status, {}, raw)
    assert (err.status, err.disposition, err.code, err.type) == (status, disposition, code, etype)
    assert err.message.startswith("deepseek: ")


def test_map_error_never_echoes_the_key() -> None:
    raw = _err(
        f"Authentication Fails, Your api key: ****{KEY[-4:]} is invalid (got {KEY})",
        "authentication_error",
    )
    err = ADAPTER.map_error(401, {}, raw)
    assert "****" not in err.message and KEY[-4:] not in err.message
    assert err.message == "deepseek: Authentication Fails, Your api key is invalid (got sk-***)"


def test_map_error_quota_is_not_retried_by_sdk() -> None:
    err = ADAPTER.map_error(402, {}, _err("Insufficient Balance", "unknown_error"))
    assert err.response_headers()["x-should-retry"] == "false"


def test_map_error_retry_after() -> None:
    err = ADAPTER.map_error(
        429, {"retry-after-ms": "1500"}, _err("Rate Limit Reached", "rate_limit_error")
    )
    assert err.retry_after == 1.5


# ---------------------------------------------------------------- properties

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
PARTS = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, TEXT),
    st.just({"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}),
)
CONTENT = st.one_of(TEXT, st.lists(PARTS, max_size=3))


@st.composite
def conversations(draw: st.DrawFn) -> list[Json]:
    messages: list[Json] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["system", "developer", "user", "tools", "function"]))
        if kind == "tools":
            ids = draw(st.lists(TEXT, min_size=1, max_size=3))
            message: Json = {
                "role": "assistant",
                "content": draw(st.none() | TEXT),
                "tool_calls": [
                    {
                        "id": i,
                        "type": "function",
                        "function": {"name": "f", "arguments": draw(TEXT)},
                    }
                    for i in ids
                ],
            }
            if draw(st.booleans()):
                message["reasoning_content"] = draw(TEXT)
            messages.append(message)
            messages += [{"role": "tool", "tool_call_id": i, "content": draw(CONTENT)} for i in ids]
        else:
            messages.append({"role": kind, "content": draw(CONTENT)})
    return messages


OPTIONAL = {
    "tools": st.lists(st.just({"type": "function", "function": {"name": "f"}}), max_size=130),
    "tool_choice": st.sampled_from(
        ["none", "auto", "required", {"type": "function", "function": {"name": "f"}}]
    ),
    "stop": st.one_of(TEXT, st.lists(TEXT, max_size=20)),
    "prediction": st.just({"type": "content", "content": [{"type": "text", "text": "x"}]}),
    "n": st.integers(1, 3),
    "seed": INT64,
    "response_format": st.sampled_from(
        [
            {"type": "text"},
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            {"type": ["x"]},
        ]
    ),
    "reasoning_effort": st.sampled_from(["none", "minimal", "medium", "xhigh", "max", "x"]) | JSON,
    "stream": st.booleans(),
    "stream_options": st.just({"include_usage": True}),
    "max_completion_tokens": st.integers(1, 10_000),
    "user": TEXT,
    "extra": st.just({"retry": 1}),
}
REQUESTS = st.fixed_dictionaries(
    {"model": st.just("deepseek/deepseek-v4-flash"), "messages": conversations()},
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
    assert not {"n", "seed", "user", "extra", "max_completion_tokens"} & set(payload)
    for message in payload["messages"]:
        assert message["role"] in {"system", "user", "assistant", "tool"}
        if message["role"] == "assistant" and message.get("tool_calls"):
            assert isinstance(message["reasoning_content"], str)
        if isinstance(message.get("content"), list):
            assert all(part["type"] == "text" for part in message["content"])
    assert payload.get("stream_options") == (
        {"include_usage": True} if body.get("stream") else None
    )


DELTA = st.fixed_dictionaries(
    {}, optional={"role": JSON, "content": JSON, "reasoning_content": JSON, "tool_calls": JSON}
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
                    | st.sampled_from(["stop", "length", "insufficient_system_resource"]),
                },
            )
            | JSON,
            max_size=2,
        )
        | JSON,
        "usage": st.fixed_dictionaries(
            {},
            optional={
                "prompt_tokens": JSON,
                "prompt_tokens_details": JSON,
                "prompt_cache_hit_tokens": JSON,
            },
        )
        | JSON,
        "error": JSON,
        "system_fingerprint": JSON,
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
        orjson.dumps(items)


ERROR_BODY = st.fixed_dictionaries(
    {}, optional={k: JSON for k in ("message", "type", "param", "code")}
)
ERROR_BODIES = st.one_of(st.fixed_dictionaries({"error": ERROR_BODY | JSON}), JSON)


@FUZZ
@given(ERROR_BODIES.map(orjson.dumps), st.integers(100, 599))
def test_map_error_total_on_error_shapes(raw: bytes, status: int) -> None:
    err = ADAPTER.map_error(status, {"retry-after": "x"}, raw)
    assert err.message.startswith("deepseek: ")
    orjson.dumps(err.body())


@FUZZ
@given(st.one_of(st.binary(), CHUNK.map(orjson.dumps), ERROR_BODIES.map(orjson.dumps)))
def test_parse_response_and_map_error_total(raw: bytes) -> None:
    with contextlib.suppress(UpstreamError):
        orjson.dumps(ADAPTER.parse_response(raw, TARGET))
    err = ADAPTER.map_error(401, {}, raw)
    assert isinstance(err, UpstreamError) and err.message.startswith("deepseek: ")
