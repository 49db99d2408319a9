"""FakeOpenAI's Responses wire, read by the official `openai` SDK pointed straight at it
(non-stream, `responses.create(stream=True)` and the `responses.stream()` helper)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from openai.types.responses import Response

from tests.fakes import FakeOpenAI, Reply

KEY = "sk-test-responses"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys=[KEY]) as server:
        yield server


@pytest.fixture
def sdk(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    fake.reset()
    client = openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10)
    yield client
    client.close()


def test_non_stream(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="Hello there", reasoning="hmm", usage=(12, 5), cached_tokens=2))
    r = sdk.responses.create(model="gpt-5-mini", input="Hi", instructions="Be terse.")
    assert isinstance(r, Response) and r.id.startswith("resp_")
    assert r.status == "completed" and r.output_text == "Hello there"
    assert [item.type for item in r.output] == ["reasoning", "message"]
    assert r.instructions == "Be terse." and r.model == "gpt-5-mini"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (12, 5)
    assert r.usage.input_tokens_details.cached_tokens == 2
    assert fake.last.path == "/v1/responses" and fake.last.json["input"] == "Hi"


def test_stream_events(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="Hello there world"))
    with sdk.responses.create(model="gpt-5-mini", input="Hi", stream=True) as stream:
        events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello there world"


def test_stream_helper_with_tool_calls(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="Checking.", tool_calls=[{"name": "f", "arguments": {"a": 1}}]))
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}
    with sdk.responses.stream(model="gpt-5-mini", input="Go", tools=[tool]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    call = final.output[-1]
    assert call.type == "function_call" and json.loads(call.arguments) == {"a": 1}
    assert final.output_text == "Checking."


def test_incomplete_and_errors(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="Once upon", finish="length"))
    r = sdk.responses.create(model="gpt-5-mini", input="Story", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details is not None
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model="gpt-5-mini", input=openai.omit)
    bad = openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="gpt-5-mini", input="Hi")
