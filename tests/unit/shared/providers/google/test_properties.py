"""Gemini adapter: properties: any input translates or is refused cleanly."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbyt.shared.errors import InvalidRequest, UpstreamError
from orbyt.shared.providers.google import ADAPTER
from orbyt.shared.sse import SSEEvent
from tests.unit.shared.providers.google.helpers import (
    BASE,
    KEY,
    target,
)


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
