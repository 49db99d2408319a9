"""Proof the fakes are faithful: the official SDKs talk to them and parse every answer."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from mistralai.client import Mistral
from mistralai.client import errors as mistral_errors

from . import (
    DEFAULT_TEXT,
    SKIP_SIGNATURE,
    Error,
    FakeAnthropic,
    FakeDeepSeek,
    FakeGemini,
    FakeMistral,
    FakeOpenAI,
    Reply,
)

pytestmark = pytest.mark.timeout(10)

KEY = "sk-test-key-0123456789"
USER: Any = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}
OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


# ---------------------------------------------------------------------------- OpenAI
@pytest.fixture(scope="module")
def oai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def oai(oai_fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    oai_fake.reset()
    with openai.OpenAI(api_key=KEY, base_url=oai_fake.base_url, max_retries=0) as client:
        yield client


def test_openai_non_stream(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(Reply(text="Hi there", usage=(9, 2), cached_tokens=4))
    res = oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert res.object == "chat.completion"
    assert res.model == "gpt-5-mini"
    assert res.choices[0].message.content == "Hi there"
    assert res.choices[0].finish_reason == "stop"
    assert res.usage is not None and res.usage.total_tokens == 11
    assert res.usage.prompt_tokens_details is not None
    assert res.usage.prompt_tokens_details.cached_tokens == 4
    assert res._request_id and res._request_id.startswith("req_")
    rec = oai_fake.last
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    assert rec.json["messages"] == USER


def test_openai_stream(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(Reply(tokens=5))
    chunks = list(
        oai.chat.completions.create(
            model="gpt-5-mini",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 tok4"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_tool_call_stream_helper(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(Reply(text="", tool_calls=[WEATHER]))
    with oai.chat.completions.stream(
        model="gpt-5-mini",
        messages=USER,
        tools=OPENAI_TOOLS,
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call: Any = (choice.message.tool_calls or [])[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_openai_tool_call_non_stream(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(Reply(text="", tool_calls=[WEATHER, {"name": "noop", "arguments": {}}]))
    res = oai.chat.completions.create(model="gpt-5-mini", messages=USER, tools=OPENAI_TOOLS)
    msg = res.choices[0].message
    assert msg.content is None and res.choices[0].finish_reason == "tool_calls"
    calls: Any = msg.tool_calls
    assert [tc.function.name for tc in calls] == ["get_weather", "noop"]


def test_openai_errors(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(
        Error(429, kind="insufficient_quota"),
        Error(429, retry_after=2),
        Error(400, kind="context_length_exceeded"),
    )
    with pytest.raises(openai.RateLimitError) as quota:
        oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert quota.value.code == "insufficient_quota" and quota.value.status_code == 429
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.BadRequestError) as ctx:
        oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert ctx.value.code == "context_length_exceeded" and ctx.value.param == "messages"
    with (
        openai.OpenAI(
            api_key="sk-wrong-0000000000", base_url=oai_fake.base_url, max_retries=0
        ) as bad,
        pytest.raises(openai.AuthenticationError) as auth,
    ):
        bad.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert auth.value.code == "invalid_api_key" and "Incorrect API key" in auth.value.message


def test_openai_midstream_error_and_validation(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    oai_fake.script(Reply(tokens=4, midstream_error=2))
    stream = oai.chat.completions.create(model="gpt-5-mini", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as err:
        list(stream)
    assert not isinstance(err.value, openai.APIStatusError)
    assert "Sorry about that" in err.value.message
    tool_first: Any = [{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        oai.chat.completions.create(model="gpt-5-mini", messages=tool_first)
    assert [m.id for m in oai.models.list()][:2] == ["gpt-5", "gpt-5-mini"]


# ---------------------------------------------------------------------------- DeepSeek
@pytest.fixture(scope="module")
def ds_fake() -> Iterator[FakeDeepSeek]:
    with FakeDeepSeek() as fake:
        yield fake


@pytest.fixture
def ds(ds_fake: FakeDeepSeek) -> Iterator[openai.OpenAI]:
    ds_fake.reset()
    with openai.OpenAI(api_key=KEY, base_url=ds_fake.base_url, max_retries=0) as client:
        yield client


def test_deepseek_non_stream_and_stream(ds: openai.OpenAI, ds_fake: FakeDeepSeek) -> None:
    ds_fake.script(Reply(text="Four.", reasoning="Two plus two.", usage=(10, 5), cached_tokens=6))
    res = ds.chat.completions.create(model="deepseek-v4-flash", messages=USER)
    msg = res.choices[0].message
    assert (
        msg.content == "Four." and (msg.model_extra or {})["reasoning_content"] == "Two plus two."
    )
    assert res.usage is not None
    usage = res.usage.model_extra or {}
    assert usage["prompt_cache_hit_tokens"] == 6 and usage["prompt_cache_miss_tokens"] == 4
    ds_fake.script(Reply(tokens=3, reasoning="Hmm ok"))
    chunks = list(ds.chat.completions.create(model="deepseek-v4-flash", messages=USER, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [(d.model_extra or {}).get("reasoning_content") for d in deltas]
    assert "".join(r for r in reasoning if r) == "Hmm ok"
    assert "".join(d.content or "" for d in deltas) == "tok0 tok1 tok2"
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert all(d.content is None for d in deltas[1:first_content])


def test_deepseek_tool_calls_and_errors(ds: openai.OpenAI, ds_fake: FakeDeepSeek) -> None:
    ds_fake.script(Reply(text="", tool_calls=[WEATHER]), Error(402))
    res = ds.chat.completions.create(model="deepseek-v4-pro", messages=USER, tools=OPENAI_TOOLS)
    call: Any = (res.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"
    with pytest.raises(openai.APIStatusError) as balance:
        ds.chat.completions.create(model="deepseek-v4-pro", messages=USER)
    assert balance.value.status_code == 402 and balance.value.message.endswith(
        "Insufficient Balance"
    )
    replay = [
        *USER,
        res.choices[0].message.model_dump(exclude_none=True, exclude={"reasoning_content"}),
    ]
    replay.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    with pytest.raises(openai.BadRequestError, match="reasoning_content in the thinking mode"):
        ds.chat.completions.create(model="deepseek-v4-pro", messages=replay)


# ---------------------------------------------------------------------------- Anthropic
@pytest.fixture(scope="module")
def ant_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def ant(ant_fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    ant_fake.reset()
    with anthropic.Anthropic(api_key=KEY, base_url=ant_fake.base_url, max_retries=0) as client:
        yield client


def test_anthropic_non_stream(ant: anthropic.Anthropic, ant_fake: FakeAnthropic) -> None:
    ant_fake.script(Reply(text="Hello!", usage=(30, 2), cached_tokens=20))
    msg = ant.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=USER)
    assert msg.type == "message" and msg.model == "claude-sonnet-4-6"
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello!"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 10 and msg.usage.cache_read_input_tokens == 20
    rec = ant_fake.last
    # SDK 2.x sends Bearer + 2026-10-21; older majors send x-api-key + 2023-06-01.
    assert KEY in (rec.headers.get("x-api-key"), rec.headers.get("authorization", "")[7:])
    assert rec.headers["anthropic-version"] in ("2023-06-01", "2026-10-21")


def test_anthropic_stream_events_and_helper(
    ant: anthropic.Anthropic, ant_fake: FakeAnthropic
) -> None:
    ant_fake.script(Reply(tokens=3), Reply(tokens=4))
    events = list(
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=USER, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 3
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3"
    assert final.usage.output_tokens == 4 and final.stop_reason == "end_turn"


def test_anthropic_tool_use_and_thinking(ant: anthropic.Anthropic, ant_fake: FakeAnthropic) -> None:
    ant_fake.script(Reply(text="Checking.", reasoning="Use the tool.", tool_calls=[WEATHER]))
    tools: Any = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    with ant.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        messages=USER,
        tools=tools,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final: Any = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == "Use the tool."
    tool = final.content[2]
    assert (
        tool.type == "tool_use" and tool.input == {"city": "Paris"} and tool.id.startswith("toolu_")
    )
    assert final.stop_reason == "tool_use"


def test_anthropic_errors(ant: anthropic.Anthropic, ant_fake: FakeAnthropic) -> None:
    ant_fake.script(Error(529), Error(429, kind="spend_limit"), Reply(tokens=5, midstream_error=2))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=USER)
    assert overloaded.value.status_code == 529 and overloaded.value.request_id
    with pytest.raises(anthropic.RateLimitError) as spend:
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=USER)
    body: Any = spend.value.body
    assert body["error"]["details"]["error_code"] == "enforced_spend_limit_reached"
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        list(
            ant.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=USER, stream=True)
        )
    # 2026-10-21 rejects sampling parameters; 2023-06-01 accepts them.
    # (SDK 2.x no longer has a ``temperature`` argument, hence extra_body.)
    sampling = {"temperature": 0.2}
    new = ant.with_options(default_headers={"anthropic-version": "2026-10-21"})
    with pytest.raises(
        anthropic.BadRequestError, match="temperature: Extra inputs are not permitted"
    ):
        new.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=USER, extra_body=sampling
        )
    old = ant.with_options(default_headers={"anthropic-version": "2023-06-01"})
    assert old.messages.create(
        model="claude-sonnet-4-6", max_tokens=8, messages=USER, extra_body=sampling
    ).content
    assert ant_fake.last.headers["anthropic-version"] == "2023-06-01"
    # Claude 4.7+ accepts only default sampling values, on either version.
    for model in ("claude-opus-4-7", "claude-sonnet-5-20270101"):
        with pytest.raises(anthropic.BadRequestError, match="temperature: only the default"):
            old.messages.create(model=model, max_tokens=8, messages=USER, extra_body=sampling)
        assert old.messages.create(
            model=model, max_tokens=8, messages=USER, extra_body={"temperature": 1.0}
        ).content
    with (
        anthropic.Anthropic(
            api_key="sk-ant-wrong", base_url=ant_fake.base_url, max_retries=0
        ) as bad,
        pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"),
    ):
        bad.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=USER)


# ---------------------------------------------------------------------------- Gemini
@pytest.fixture(scope="module")
def gem_fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def gem(gem_fake: FakeGemini) -> Iterator[genai.Client]:
    gem_fake.reset()
    options = gtypes.HttpOptions(base_url=gem_fake.base_url, api_version="v1beta")
    client = genai.Client(api_key=KEY, http_options=options)
    yield client
    client.close()


def test_gemini_non_stream_and_stream(gem: genai.Client, gem_fake: FakeGemini) -> None:
    gem_fake.script(Reply(text="Bonjour", usage=(5, 2)), Reply(tokens=4))
    res = gem.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert res.text == "Bonjour" and res.model_version == "gemini-2.5-flash"
    assert res.usage_metadata is not None and res.usage_metadata.total_token_count == 7
    assert gem_fake.last.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert gem_fake.last.headers["x-goog-api-key"] == KEY
    chunks = list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))
    assert "".join(c.text or "" for c in chunks) == "tok0 tok1 tok2 tok3"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count == 4
    assert gem_fake.last.query == {"alt": "sse"}


def test_gemini3_tool_call_thought_signature(gem: genai.Client, gem_fake: FakeGemini) -> None:
    gem_fake.script(Reply(text="", tool_calls=[WEATHER]))
    model = "gemini-3-flash-preview"
    res = gem.models.generate_content(model=model, contents="Weather in Paris?")
    assert res.function_calls and res.function_calls[0].name == "get_weather"
    assert res.function_calls[0].args == {"city": "Paris"}
    content: Any = res.candidates[0].content  # type: ignore[index]
    part = content.parts[0]
    assert part.thought_signature  # bytes, base64-decoded by the SDK
    answer = gtypes.Part.from_function_response(name="get_weather", response={"sky": "sunny"})
    history = [
        gtypes.Content(role="user", parts=[gtypes.Part(text="Weather in Paris?")]),
        content,
        gtypes.Content(role="user", parts=[answer]),
    ]
    assert gem.models.generate_content(model=model, contents=history).text == DEFAULT_TEXT
    stripped = gtypes.Part(function_call=part.function_call)
    history[1] = gtypes.Content(role="model", parts=[stripped])
    with pytest.raises(genai_errors.ClientError) as err:
        gem.models.generate_content(model=model, contents=history)
    assert err.value.code == 400 and "missing a thought_signature" in (err.value.message or "")
    # The SDK URL-safe-base64-encodes bytes: this puts the literal placeholder on the wire.
    placeholder = urlsafe_b64decode(SKIP_SIGNATURE)
    skip = gtypes.Part(function_call=part.function_call, thought_signature=placeholder)
    history[1] = gtypes.Content(role="model", parts=[skip])
    assert gem.models.generate_content(model=model, contents=history).text
    assert gem_fake.last.json["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    forged = gtypes.Part(function_call=part.function_call, thought_signature=b"forged")
    history[1] = gtypes.Content(role="model", parts=[forged])
    with pytest.raises(genai_errors.ClientError, match="Corrupted thought signature"):
        gem.models.generate_content(model=model, contents=history)


def test_gemini_errors(gem: genai.Client, gem_fake: FakeGemini) -> None:
    gem_fake.script(Error(429, retry_after=12), Reply(tokens=3, midstream_error=1))
    with pytest.raises(genai_errors.ClientError) as limited:
        gem.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    details = limited.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in details
    with pytest.raises(genai_errors.ServerError) as mid:
        list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))
    assert mid.value.code == 500 and mid.value.status == "INTERNAL"
    bad = genai.Client(
        api_key="AIza-wrong", http_options=gtypes.HttpOptions(base_url=gem_fake.base_url)
    )
    try:
        with pytest.raises(genai_errors.ClientError) as invalid:
            bad.models.generate_content(
                model="gemini-2.5-flash", contents="Hi"
            )  # default api_version v1
    finally:
        bad.close()
    assert invalid.value.code == 400 and invalid.value.status == "INVALID_ARGUMENT"
    assert invalid.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert gem_fake.last.path.startswith("/v1/models/")


# ---------------------------------------------------------------------------- Mistral
@pytest.fixture(scope="module")
def mis_fake() -> Iterator[FakeMistral]:
    with FakeMistral(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def mis(mis_fake: FakeMistral) -> Iterator[Mistral]:
    mis_fake.reset()
    with Mistral(api_key=KEY, server_url=mis_fake.base_url) as client:
        yield client


def test_mistral_non_stream_and_stream(mis: Mistral, mis_fake: FakeMistral) -> None:
    mis_fake.script(Reply(text="Salut", usage=(7, 1)), Reply(tokens=3))
    res = mis.chat.complete(model="mistral-small-latest", messages=USER)
    message: Any = res.choices[0].message
    assert message.content == "Salut" and res.usage.total_tokens == 8
    assert len(res.id) == 32 and res.model == "mistral-small-latest"
    events = list(mis.chat.stream(model="mistral-small-latest", messages=USER))
    chunks = [e.data for e in events]
    assert "".join(str(c.choices[0].delta.content or "") for c in chunks) == "tok0 tok1 tok2"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_mistral_tool_calls_and_id_rule(mis: Mistral, mis_fake: FakeMistral) -> None:
    mis_fake.script(Reply(text="", tool_calls=[WEATHER]))
    tools = OPENAI_TOOLS
    events = list(mis.chat.stream(model="mistral-large-latest", messages=USER, tools=tools))
    calls = [tc for e in events for tc in e.data.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert len(calls[0].id or "") == 9 and (calls[0].id or "").isalnum()
    bad_history = [
        *USER,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "name": "get_weather", "content": "sunny"},
    ]
    with pytest.raises(mistral_errors.SDKError) as err:
        mis.chat.complete(model="mistral-large-latest", messages=bad_history)
    assert err.value.status_code == 400
    body = json.loads(err.value.body)
    assert body["object"] == "error" and body["code"] == "3280"
    assert body["message"].startswith("Tool call id was call_abc123 but must be a-z, A-Z, 0-9")


def test_mistral_errors(mis: Mistral, mis_fake: FakeMistral) -> None:
    mis_fake.script(Error(429))
    with pytest.raises(mistral_errors.SDKError) as limited:
        mis.chat.complete(model="mistral-small-latest", messages=USER)
    assert limited.value.status_code == 429
    assert json.loads(limited.value.body)["type"] == "rate_limited"
    with (
        Mistral(api_key="wrong", server_url=mis_fake.base_url) as bad,
        pytest.raises(mistral_errors.SDKError) as auth,
    ):
        bad.chat.complete(model="mistral-small-latest", messages=USER)
    assert auth.value.status_code == 401 and json.loads(auth.value.body) == {
        "detail": "Unauthorized"
    }
    # Mistral forbids extra inputs (e.g. OpenAI's stream_options) with a 422.
    bad_body = {
        "model": "mistral-small-latest",
        "messages": USER,
        "stream_options": {"include_usage": True},
    }
    res = httpx.post(
        f"{mis_fake.base_url}/v1/chat/completions",
        json=bad_body,
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert res.status_code == 422
    assert res.json()["message"]["detail"][0]["type"] == "extra_forbidden"
