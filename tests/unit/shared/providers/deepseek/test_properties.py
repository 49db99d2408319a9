"""DeepSeek adapter: properties: any input translates or is refused cleanly."""

from __future__ import annotations

import contextlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import InvalidRequest, UpstreamError
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.deepseek import ADAPTER
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.deepseek.helpers import (
    TARGET,
    build,
)

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
