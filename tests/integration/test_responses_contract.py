"""Responses API contract (issue 13): `client.responses.*` of the official `openai` SDK
through Orbyt against all five provider fakes, as the SDK's own types (`Response`, the
stream events and the `responses.stream()` helper's final response), and the request each
fake received. Also the stored responses (owner, 404s, `store: false`, TTL).

One gateway (API + one worker) serves the whole module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis
from openai.types.responses import Response, ResponseStreamEvent

from tests.fakes import (
    FakeAnthropic,
    FakeDeepSeek,
    FakeGemini,
    FakeMistral,
    FakeOpenAI,
    FakeServer,
    Reply,
)
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer
from tests.integration.test_provider_contract import KEYS, MODELS, PNG, SCHEMA

pytestmark = pytest.mark.integration

PROVIDERS = tuple(MODELS)
OTHER_KEY = "sk-or-v1-" + "8" * 64  # a second gateway key: it must not see the first's
TTL = 600
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
by_provider = pytest.mark.parametrize("name", PROVIDERS)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    servers: dict[str, FakeServer] = {
        "openai": FakeOpenAI(keys=[KEYS["openai"]]),
        "anthropic": FakeAnthropic(keys=[KEYS["anthropic"]]),
        "google": FakeGemini(keys=[KEYS["google"]]),
        "mistral": FakeMistral(keys=[KEYS["mistral"]]),
        "deepseek": FakeDeepSeek(keys=[KEYS["deepseek"]]),
    }
    started: list[FakeServer] = []
    try:
        for server in servers.values():
            started.append(server.start())
        yield servers
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer, fakes: dict[str, FakeServer]) -> Iterator[Gateway]:
    env = {"ORBYT_RESPONSES_TTL": str(TTL), "ORBYT_GATEWAY_KEYS": f"{GATEWAY_KEY},{OTHER_KEY}"}
    for name, fake in fakes.items():
        env[f"ORBYT_PROVIDERS__{name.upper()}__BASE_URL"] = fake.base_url
        env[f"ORBYT_PROVIDERS__{name.upper()}__KEYS"] = KEYS[name]
    with Gateway(redis_server.new_db_url(), env, workers=1) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def sdk(gw: Gateway) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: dict[str, FakeServer]) -> None:
    for fake in fakes.values():
        fake.reset()


def received(fakes: dict[str, FakeServer], name: str, count: int = 1) -> list[dict[str, Any]]:
    """The bodies the provider received (exactly `count`), never with Orbyt's fields:
    OpenAI's own Responses API for `openai` (Orbyt keeps the state: `store: false`, no
    `previous_response_id`), a chat request (translated) for the others."""
    got = fakes[name].requests
    assert len(got) == count, [r.path for r in got]
    bodies = [r.json for r in got]
    for rec, body in zip(got, bodies, strict=True):
        assert isinstance(body, dict) and "extra" not in body
        assert GATEWAY_KEY not in json.dumps(body)
        if name == "openai":
            assert rec.path == "/v1/responses" and body["store"] is False
            assert "previous_response_id" not in body and isinstance(body["input"], list)
            continue
        for field in ("input", "instructions", "metadata", "store", "text"):
            assert field not in body
    return bodies


def check_response(r: Any, name: str) -> Response:
    assert isinstance(r, Response)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.model == MODELS[name]
    return r


# ---------------------------------------------------------------- create


@by_provider
def test_text(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text="Hello there", usage=(11, 2)))
    r = check_response(
        sdk.responses.create(
            model=MODELS[name], instructions="Be terse.", input="Hi", metadata={"k": "v"}
        ),
        name,
    )
    assert r.status == "completed" and r.output_text == "Hello there"
    assert r.instructions == "Be terse." and r.metadata == {"k": "v"}
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 2, 13)
    [body] = received(fakes, name)
    sent = json.dumps(body)
    assert "Be terse." in sent and "Hi" in sent


@by_provider
def test_multi_turn(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text="Paris is sunny"), Reply(text="Yes"))
    first = sdk.responses.create(model=MODELS[name], instructions="Be terse.", input="Weather?")
    second = sdk.responses.create(model=MODELS[name], input="Sure?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "Yes"
    _, body = received(fakes, name, 2)
    sent = json.dumps(body)
    # the conversation goes on; the first turn's instructions do not (as with OpenAI)
    assert "Weather?" in sent and "Paris is sunny" in sent and "Sure?" in sent
    assert "Be terse." not in sent
    # a chained response's input items are its own request's, not the whole conversation
    items = sdk.responses.input_items.list(second.id, order="asc").data
    assert [(i.type, i.content[0].text) for i in items] == [("message", "Sure?")]  # type: ignore[union-attr]


@by_provider
def test_function_call_round_trip(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str
) -> None:
    fakes[name].script(
        Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Reply(text="It is sunny."),
    )
    first = check_response(
        sdk.responses.create(model=MODELS[name], input="Weather in Paris?", tools=[WEATHER]),
        name,
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = sdk.responses.create(
        model=MODELS[name],
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "It is sunny."
    first_body, second_body = received(fakes, name, 2)
    assert "get_weather" in json.dumps(first_body)
    sent = json.dumps(second_body)
    assert "sunny" in sent
    if name != "google":  # Gemini pairs a function response with its call by name
        assert call.call_id in sent


IMAGE_INPUT: Any = [
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        ],
    }
]
WITH_IMAGES = tuple(p for p in PROVIDERS if p != "deepseek")  # DeepSeek takes text only
WITH_SCHEMAS = WITH_IMAGES  # and json_object, not json_schema


@pytest.mark.parametrize("name", WITH_IMAGES)
def test_image_input(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text="A pixel."))
    r = sdk.responses.create(model=MODELS[name], input=IMAGE_INPUT)
    assert r.output_text == "A pixel."
    [body] = received(fakes, name)
    assert PNG in json.dumps(body) and "What is this?" in json.dumps(body)


def test_provider_limits_are_a_400(sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model=MODELS["deepseek"], input=IMAGE_INPUT)
    assert "text content parts" in info.value.message
    fakes["deepseek"].script(Reply(text='{"answer": 4}'))
    r = sdk.responses.create(
        model=MODELS["deepseek"], input="2+2? JSON", text={"format": {"type": "json_object"}}
    )
    assert json.loads(r.output_text) == {"answer": 4}
    [body] = received(fakes, "deepseek")
    assert body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("name", WITH_SCHEMAS)
def test_json_schema(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text='{"answer": 4}'))
    r = sdk.responses.create(
        model=MODELS[name],
        input="2+2?",
        text={"format": {"type": "json_schema", "name": "sum", "schema": SCHEMA, "strict": True}},
    )
    assert json.loads(r.output_text) == {"answer": 4}
    assert r.text is not None and r.text.format is not None and r.text.format.type == "json_schema"
    [body] = received(fakes, name)
    assert "answer" in json.dumps(body)  # the schema reached the provider in its own form


def test_max_output_tokens_incomplete(sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes["openai"].script(Reply(text="cut short", finish="length"))
    r = sdk.responses.create(model=MODELS["openai"], input="Long story", max_output_tokens=3)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    [body] = received(fakes, "openai")
    assert body["max_output_tokens"] == 3


def test_other_tool_types_are_refused(sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(
            model=MODELS["anthropic"], input="Search", tools=[{"type": "web_search"}]
        )
    assert "web_search" in info.value.message
    assert info.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert not fakes["anthropic"].requests


def test_openai_gets_other_tool_types_natively(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes["openai"].script(Reply(text="Found it."))
    r = sdk.responses.create(
        model=MODELS["openai"], input="Search", tools=[{"type": "web_search"}, WEATHER]
    )
    assert r.output_text == "Found it." and r.model == MODELS["openai"]
    [body] = received(fakes, "openai")
    assert body["tools"] == [{"type": "web_search"}, WEATHER]
    # with a fallback that is not OpenAI's own API, the other tool type is refused
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(
            model=MODELS["openai"],
            input="Search",
            tools=[{"type": "web_search"}],
            extra_body={"extra": {"fallback_models": [MODELS["anthropic"]]}},
        )
    assert info.value.body["param"] == "tools[0].type"  # type: ignore[index]


def test_openai_stream_is_relayed_with_orbyts_ids(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes["openai"].script(Reply(text="Hello there", reasoning="hmm"))
    got = events_of(sdk.responses.create(model=MODELS["openai"], input="Hi", stream=True))
    ids = {e.response.id for e in got if hasattr(e, "response")}
    assert len(ids) == 1 and len(next(iter(ids))) == len("resp_") + 32  # Orbyt's, not OpenAI's
    final = got[-1].response
    assert final.model == MODELS["openai"] and final.output_text == "Hello there"
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert sdk.responses.retrieve(final.id).output_text == "Hello there"


def test_unknown_field_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model=MODELS["openai"], input="x", extra_body={"extr": {}})
    assert "extra" in info.value.message


# ---------------------------------------------------------------- stream


def events_of(stream: Any) -> list[ResponseStreamEvent]:
    with stream as events:
        got = list(events)
    assert [e.sequence_number for e in got] == list(range(len(got)))
    assert got[0].type == "response.created" and got[1].type == "response.in_progress"
    return got


@by_provider
def test_stream_text(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text="Hello there world"))
    got = events_of(sdk.responses.create(model=MODELS[name], input="Hi", stream=True))
    deltas = [e.delta for e in got if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello there world"
    assert got[-1].type == "response.completed"
    final = got[-1].response
    assert final.output_text == "Hello there world" and final.usage is not None
    [body] = received(fakes, name)
    assert body.get("stream") is True or name == "google"


@by_provider
def test_stream_helper_tool_calls(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str
) -> None:
    fakes[name].script(
        Reply(
            text="Checking.",
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
            ],
        )
    )
    with sdk.responses.stream(model=MODELS[name], input="Paris and Rome?", tools=[WEATHER]) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert len({c.call_id for c in calls}) == 2
    received(fakes, name)


@pytest.mark.parametrize("name", ["anthropic", "google", "mistral", "deepseek"])
def test_stream_reasoning(sdk: openai.OpenAI, fakes: dict[str, FakeServer], name: str) -> None:
    fakes[name].script(Reply(text="42", reasoning="Think hard"))
    with sdk.responses.stream(
        model=MODELS[name], input="Answer?", reasoning={"effort": "high"}
    ) as s:
        got = list(s)
        final = s.get_final_response()
    reasoning = [e.delta for e in got if e.type == "response.reasoning_text.delta"]
    assert "".join(reasoning) == "Think hard"
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "42"


# ---------------------------------------------------------------- stored responses


def test_stored_response_and_owner(
    gw: Gateway, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes["openai"].script(Reply(text="Kept"))
    r = sdk.responses.create(model=MODELS["openai"], input="Keep this")
    got = sdk.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == "Kept"
    items = sdk.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    ttl: int = redis.Redis.from_url(gw.redis_url).ttl(f"orbyt:response:{r.id}")  # type: ignore[assignment]
    assert 0 < ttl <= TTL
    other = openai.OpenAI(base_url=gw.base_url, api_key=OTHER_KEY, max_retries=0)
    with other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(r.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(r.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model=MODELS["openai"], input="x", previous_response_id=r.id)
    sdk.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model=MODELS["openai"], input="x", previous_response_id=r.id)
    assert len(fakes["openai"].requests) == 1


def test_store_false_keeps_nothing(
    gw: Gateway, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes["openai"].script(Reply(text="Forgotten"))
    r = sdk.responses.create(model=MODELS["openai"], input="Forget this", store=False)
    assert r.store is False  # type: ignore[attr-defined]
    assert not redis.Redis.from_url(gw.redis_url).exists(f"orbyt:response:{r.id}")
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(r.id)


def test_a_conversation_moves_between_providers(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """A translated response continued natively, and back: each gets the conversation."""
    fakes["anthropic"].script(Reply(text="Paris is sunny"), Reply(text="Bye"))
    fakes["openai"].script(Reply(text="Rome is rainy"))
    first = sdk.responses.create(model=MODELS["anthropic"], input="Weather?")
    second = sdk.responses.create(
        model=MODELS["openai"], input="And Rome?", previous_response_id=first.id
    )
    third = sdk.responses.create(
        model=MODELS["anthropic"], input="Thanks", previous_response_id=second.id
    )
    assert third.output_text == "Bye"
    [native] = received(fakes, "openai")
    assert native["input"] == [
        {"role": "user", "content": "Weather?"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Paris is sunny"}]},
        {"role": "user", "content": "And Rome?"},
    ]  # fmt: skip
    last = json.dumps(received(fakes, "anthropic", 2)[1])
    assert all(t in last for t in ("Weather?", "Paris is sunny", "Rome is rainy", "Thanks"))


def test_zz_nothing_was_logged_as_an_error(gw: Gateway) -> None:
    """Every answer above (errors included) is an expected event: no ERROR line."""
    bad = ('"level":"error"', '"level":"critical"', "Traceback", "never retrieved")
    assert [line for line in gw.all_logs().splitlines() if any(b in line for b in bad)] == []
