"""Mistral adapter: properties: any input translates or is refused cleanly."""

from __future__ import annotations

import contextlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import InvalidRequest, UpstreamError
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.mistral import ADAPTER, mistral_tool_id
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.mistral.helpers import (
    TARGET,
    VALID_ID,
    build,
)

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
