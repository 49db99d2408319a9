"""Provider contract suite (issue 3): the same conversations, sent with the official `openai`
SDK through Orbyt, against all five provider fakes at once.

For every provider it checks both ends:
- what the caller gets: answers that parse as the SDK's own types (ChatCompletion /
  ChatCompletionChunk) with the content, tool calls, finish reasons, reasoning and usage the
  fake produced, and errors as the right `openai` exception class with an OpenAI-shaped body;
- what the provider got: the translated request body (PROVIDERS.md §1-5) and the auth and
  version headers, never Orbyt's own `extra` field nor the caller's gateway key.

One gateway (API + one worker) serves the whole module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.fakes import (
    SKIP_SIGNATURE,
    Error,
    FakeAnthropic,
    FakeDeepSeek,
    FakeGemini,
    FakeMistral,
    FakeOpenAI,
    FakeServer,
    Recorded,
    Reply,
)
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer

pytestmark = pytest.mark.integration

PROVIDERS = ("openai", "anthropic", "google", "mistral", "deepseek")
MODELS = {
    "openai": "openai/gpt-5-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "google": "google/gemini-3-flash-preview",
    "mistral": "mistral/mistral-large-latest",
    "deepseek": "deepseek/deepseek-v4-flash",
}
# Pool keys in each provider's real shape (PROVIDERS.md §7); each fake accepts only its own.
KEYS = {
    "openai": "sk-proj-Qx7Lm2Np9Rs4Tv6WbE1aZ0T3BlbkFJYb3Cd5Ef8Gh1Jk0MnPq2Rs",
    "anthropic": "sk-ant-api03-" + ("Zq8Xw2Lm5Np7Rt4Vy1Bc3Df6Gh9Jk0Ms_T-" * 3)[:93] + "AA",
    "google": "AIzaSyD3Fq8Lm2Np9Rs4Tv6WbE1aZ0Yb3Cd5Ef8",
    "mistral": "Zq8Xw2Lm5Np7Rt4Vy1Bc3Df6Gh9Jk0Ms",
    "deepseek": "sk-3f9a0c47e1b2d58869ac1e0b7d2f4a65",
}
# Callers' own keys (BYOK): one each provider accepts, one of the right shape it refuses.
BYOK_GOOD = {
    "openai": "sk-proj-Hn3Kp8Wq1Zr6Tv4YbM2aX9T3BlbkFJCd7Ef0Gh5Jk2Lm8Np4Qr1SsZ",
    "anthropic": "sk-ant-api03-" + ("Hn3Kp8Wq1Zr6Tv4YbM2aX9Cd7Ef0Gh5_-" * 3)[:93] + "AA",
    "google": "AIzaSyHn3Kp8Wq1Zr6Tv4YbM2aX9Cd7Ef0Gh5Jk",
    "mistral": "Hn3Kp8Wq1Zr6Tv4YbM2aX9Cd7Ef0Gh5J",
    "deepseek": "sk-9be1c0d27a3f48e6b5d4c3a2f1e0d9c8",
}
BYOK_BAD = {
    "openai": "sk-proj-Rt5Yu8Io2Pa4Sd6Fg9HjT3BlbkFJKl1Zx3Cv5Bn7Mq0Wz2Ec4Rv6Tb8",
    "anthropic": "sk-ant-api03-" + ("Rt5Yu8Io2Pa4Sd6Fg9HjKl1Zx3Cv5Bn7_-" * 3)[:93] + "AA",
    "google": "AIzaSyRt5Yu8Io2Pa4Sd6Fg9HjKl1Zx3Cv5Bn7M",
    "mistral": "Rt5Yu8Io2Pa4Sd6Fg9HjKl1Zx3Cv5Bn7",
    "deepseek": "sk-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
}
# The ids each provider gives tool calls, as the caller sees them.
TOOL_IDS = {
    "openai": re.compile(r"call_[A-Za-z0-9]{24}"),
    "anthropic": re.compile(r"toolu_01[A-Za-z0-9]{22}"),
    "google": re.compile(r"call_\d+_[0-9a-f]{16}"),
    "mistral": re.compile(r"[A-Za-z0-9]{9}"),
    "deepseek": re.compile(r"call_00_[A-Za-z0-9]{24}"),
}
# Providers whose usage reports cached prompt tokens (Mistral's has no such field).
CACHES = {"openai", "anthropic", "google", "deepseek"}

SYSTEM = "You are terse."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a time zone.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
    "RU5ErkJggg=="
)
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}

by_provider = pytest.mark.parametrize("name", PROVIDERS)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    servers: dict[str, FakeServer] = {
        "openai": FakeOpenAI(keys=[KEYS["openai"], BYOK_GOOD["openai"]]),
        "anthropic": FakeAnthropic(keys=[KEYS["anthropic"], BYOK_GOOD["anthropic"]]),
        "google": FakeGemini(keys=[KEYS["google"], BYOK_GOOD["google"]]),
        "mistral": FakeMistral(keys=[KEYS["mistral"], BYOK_GOOD["mistral"]]),
        "deepseek": FakeDeepSeek(keys=[KEYS["deepseek"], BYOK_GOOD["deepseek"]]),
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
    env: dict[str, str] = {}
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


# ---------------------------------------------------------------- helpers


def sent(
    fakes: dict[str, FakeServer],
    name: str,
    count: int = 1,
    model: str | None = None,
    key: str | None = None,
) -> list[Recorded]:
    """The requests the provider received (exactly `count`), after the common checks:
    the provider's own auth and version headers, and nothing of Orbyt's or the caller's."""
    got = fakes[name].requests
    assert len(got) == count, [r.path for r in got]
    upstream_model = (model or MODELS[name]).split("/", 1)[1]
    key = key or KEYS[name]
    for rec in got:
        assert rec.method == "POST"
        assert isinstance(rec.json, dict) and "extra" not in rec.json
        assert not any(GATEWAY_KEY in v for v in rec.headers.values())
        assert not any(k.startswith("x-stainless") for k in rec.headers)
        assert rec.headers["content-type"].startswith("application/json")
        if name == "anthropic":
            assert rec.path == "/v1/messages"
            assert rec.headers["anthropic-version"] == "2023-06-01"
            assert rec.headers["x-api-key"] == key
            assert "authorization" not in rec.headers
            assert rec.json["model"] == upstream_model
            assert isinstance(rec.json["max_tokens"], int)
        elif name == "google":
            assert rec.path.startswith(f"/v1beta/models/{upstream_model}:")
            assert rec.headers["x-goog-api-key"] == key
            assert "key" not in rec.query and "authorization" not in rec.headers
            assert "model" not in rec.json
        else:
            assert rec.headers["authorization"] == f"Bearer {key}"
            path = {
                "openai": "/v1/chat/completions",
                "mistral": "/v1/chat/completions",
                "deepseek": "/chat/completions",
            }[name]
            assert rec.path == path
            assert rec.json["model"] == upstream_model
    return got


def check_completion(r: Any, name: str, model: str | None = None) -> ChatCompletion:
    assert isinstance(r, ChatCompletion)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == (model or MODELS[name])
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].message.role == "assistant"
    return r


def check_usage(usage: Any, prompt: int, completion: int, cached: int | None = None) -> None:
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        prompt,
        completion,
        prompt + completion,
    )
    if cached is not None:
        assert usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == cached


def extra_of(obj: Any, key: str) -> Any:
    """A non-standard field the SDK kept (`reasoning_content`, `extra_content`)."""
    return (obj.model_extra or {}).get(key)


@dataclass
class Streamed:
    chunks: list[ChatCompletionChunk]
    text: str = ""
    reasoning: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finishes: list[str] = field(default_factory=list)
    usage: list[Any] = field(default_factory=list)

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message a careful caller rebuilds from the deltas."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.calls:
            msg["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        if self.reasoning:
            msg["reasoning_content"] = self.reasoning
        return msg


def collect(stream: Any, name: str, model: str | None = None) -> Streamed:
    """Read a whole SDK stream, checking every chunk's envelope; tool-call deltas are
    accumulated by index, as the SDK's own stream helper does."""
    with stream:
        assert stream.response.headers["x-request-id"]
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        out = Streamed(list(stream))
    assert out.chunks, "empty stream"
    ids = {c.id for c in out.chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    for chunk in out.chunks:
        assert isinstance(chunk, ChatCompletionChunk)
        assert chunk.object == "chat.completion.chunk"
        assert chunk.model == (model or MODELS[name])
        if chunk.usage is not None:
            out.usage.append(chunk.usage)
            assert chunk.choices == []
        for choice in chunk.choices:
            assert choice.index == 0
            delta = choice.delta
            out.text += delta.content or ""
            out.reasoning += extra_of(delta, "reasoning_content") or ""
            if choice.finish_reason:
                out.finishes.append(choice.finish_reason)
            for tc in delta.tool_calls or []:
                if tc.index not in out.calls:
                    assert tc.id and tc.type == "function" and tc.function and tc.function.name
                    out.calls[tc.index] = {
                        "id": tc.id,
                        "type": "function",
                        "function": {"name": tc.function.name, "arguments": ""},
                    }
                else:
                    assert tc.id is None or tc.id == out.calls[tc.index]["id"]
                call = out.calls[tc.index]
                call["function"]["arguments"] += (tc.function and tc.function.arguments) or ""
                if extra_of(tc, "extra_content"):
                    call["extra_content"] = extra_of(tc, "extra_content")
    first = out.chunks[0].choices[0].delta
    assert first.role == "assistant"
    return out


def no_retry() -> dict[str, Any]:
    """Orbyt's `extra` asking for one attempt only (and `extra` must never reach a provider)."""
    return {"extra_body": {"extra": {"retry": 0}}}


# ---------------------------------------------------------------- (a) system + user, fields


@by_provider
def test_system_and_user(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text="Paris.", usage=(21, 2), cached_tokens=8))
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Capital of France?"},
    ]
    r = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=messages,
            temperature=0.3,
            max_completion_tokens=256,
            stop=["END"],
            user="user-42",
            **no_retry(),
        ),
        name,
    )
    assert r.choices[0].message.content == "Paris."
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.tool_calls is None
    check_usage(r.usage, 21, 2, 8 if name in CACHES else None)

    body = sent(fakes, name)[0].json
    if name == "openai":  # passed through unchanged (model renamed, `extra` removed)
        assert body == {
            "model": "gpt-5-mini",
            "messages": messages,
            "temperature": 0.3,
            "max_completion_tokens": 256,
            "stop": ["END"],
            "user": "user-42",
        }
    elif name == "anthropic":
        assert body == {
            "model": "claude-haiku-4-5",
            "system": SYSTEM,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}
            ],
            "max_tokens": 256,
            "temperature": 0.3,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "user-42"},
        }
    elif name == "google":
        assert body == {
            "systemInstruction": {"parts": [{"text": SYSTEM}]},
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "generationConfig": {
                "temperature": 0.3,
                "maxOutputTokens": 256,
                "stopSequences": ["END"],
            },
        }
        assert sent(fakes, name)[0].path.endswith(":generateContent")
    else:  # mistral, deepseek: `max_completion_tokens` -> `max_tokens`, `user` dropped
        assert body == {
            "model": MODELS[name].split("/", 1)[1],
            "messages": messages,
            "temperature": 0.3,
            "max_tokens": 256,
            "stop": ["END"],
        }


@by_provider
def test_default_max_tokens_and_developer_role(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Reply(text="ok"))
    messages: list[Any] = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
    ]
    r = check_completion(sdk.chat.completions.create(model=MODELS[name], messages=messages), name)
    assert r.choices[0].message.content == "ok"
    body = sent(fakes, name)[0].json
    if name == "openai":
        assert body["messages"] == messages
    elif name == "anthropic":
        assert body["system"] == "Answer in French."
        assert body["max_tokens"] == 64000  # the catalog's max_output_tokens
    elif name == "google":
        assert body["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
        assert "generationConfig" not in body
    else:
        assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert "max_tokens" not in body


@by_provider
def test_optional_fields_mapped_or_dropped(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Reply(text="ok"))
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    fields: dict[str, Any] = {
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 100,
        "stop": "STOP",
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "metadata": {"team": "a"},
        "store": False,
        "prompt_cache_key": "pc-1",
        "service_tier": "default",
        "safety_identifier": "sid-9",
    }
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, **fields), name
    )
    assert r.choices[0].message.content == "ok"
    body = sent(fakes, name)[0].json
    if name == "openai":
        assert body == {"model": "gpt-5-mini", "messages": messages, **fields}
    elif name == "anthropic":
        assert body == {
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "max_tokens": 100,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["STOP"],
            "metadata": {"user_id": "sid-9"},
        }
    elif name == "google":
        assert body == {
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {
                "temperature": 0.5,
                "topP": 0.9,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.2,
                "maxOutputTokens": 100,
                "stopSequences": ["STOP"],
            },
        }
    elif name == "mistral":
        assert body == {
            "model": "mistral-large-latest",
            "messages": messages,
            "temperature": 0.5,
            "top_p": 0.9,
            "max_tokens": 100,
            "stop": "STOP",
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "metadata": {"team": "a"},
            "prompt_cache_key": "pc-1",
        }
    else:
        assert body == {
            "model": "deepseek-v4-flash",
            "messages": messages,
            "temperature": 0.5,
            "top_p": 0.9,
            "max_tokens": 100,
            "stop": "STOP",
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
        }


@pytest.mark.parametrize(
    ("model", "forwarded"),
    [
        ("anthropic/claude-haiku-4-5", True),
        ("anthropic/claude-3-haiku", True),
        ("anthropic/claude-opus-4-7", False),
    ],
)
def test_anthropic_sampling_only_where_the_model_accepts_it(
    model: str, forwarded: bool, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """Claude 4.7+ accepts only default sampling values (PROVIDERS.md §2): the gateway
    drops temperature/top_p for them instead of forwarding a request Anthropic refuses."""
    fakes["anthropic"].script(Reply(text="ok"))
    r = check_completion(
        sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], temperature=0.2, top_p=0.5
        ),
        "anthropic",
        model,
    )
    assert r.choices[0].message.content == "ok"
    body = fakes["anthropic"].last.json
    upstream = {"anthropic/claude-3-haiku": "claude-3-haiku-20240307"}.get(
        model, model.split("/", 1)[1]
    )
    assert body["model"] == upstream
    assert (body.get("temperature"), body.get("top_p")) == (
        (0.2, 0.5) if forwarded else (None, None)
    )


# (field, value) -> per provider: the translated {key: value} expected upstream, or the
# `param` of the 400 the gateway answers without calling the provider.
FIELDS: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "seed",
        7,
        {
            "openai": {"seed": 7},
            "anthropic": {},
            "google": {"generationConfig": {"seed": 7}},
            "mistral": {"random_seed": 7},
            "deepseek": "seed",
        },
    ),
    (
        "n",
        2,
        {
            "openai": {"n": 2},
            "anthropic": "n",
            "google": {"generationConfig": {"candidateCount": 2}},
            "mistral": {"n": 2},
            "deepseek": "n",
        },
    ),
    (
        "reasoning_effort",
        "medium",
        {
            "openai": {"reasoning_effort": "medium"},
            "anthropic": {"thinking": {"type": "enabled", "budget_tokens": 8192}},
            "google": {
                "generationConfig": {
                    "thinkingConfig": {"thinkingLevel": "MEDIUM", "includeThoughts": True}
                }
            },
            "mistral": {"reasoning_effort": "medium"},
            "deepseek": {"reasoning_effort": "high"},
        },
    ),
    (
        "reasoning_effort",
        "none",
        {
            "openai": {"reasoning_effort": "none"},
            "anthropic": {},
            "google": {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}},
            "mistral": {"reasoning_effort": "none"},
            "deepseek": {"thinking": {"type": "disabled"}},
        },
    ),
    (
        "audio",
        {"voice": "alloy", "format": "wav"},
        {
            "openai": {"audio": {"voice": "alloy", "format": "wav"}},
            "anthropic": "audio",
            "google": "audio",
            "mistral": "audio",
            "deepseek": "audio",
        },
    ),
    (
        "web_search_options",
        {},
        {
            "openai": {"web_search_options": {}},
            "anthropic": "web_search_options",
            "google": "web_search_options",
            "mistral": "web_search_options",
            "deepseek": "web_search_options",
        },
    ),
]


@by_provider
@pytest.mark.parametrize(
    ("field_name", "value", "expected"),
    FIELDS,
    ids=[c[0] if isinstance(c[1], dict) else f"{c[0]}={c[1]}" for c in FIELDS],
)
def test_fields_mapped_or_rejected(
    name: str,
    field_name: str,
    value: Any,
    expected: dict[str, Any],
    sdk: openai.OpenAI,
    fakes: dict[str, FakeServer],
) -> None:
    fakes[name].script(Reply(text="ok"))
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    want = expected[name]
    if isinstance(want, str):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(
                model=MODELS[name], messages=messages, **{field_name: value}
            )
        assert info.value.param == want and info.value.code == "unsupported_parameter"
        assert name in info.value.message.lower()
        assert fakes[name].requests == []
        return
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, **{field_name: value}),
        name,
    )
    assert r.choices[0].message.content == "ok"
    body = sent(fakes, name)[0].json
    assert field_name not in body or field_name in want
    for key, translated in want.items():
        assert body[key] == translated
    if name == "anthropic" and not want:
        assert "thinking" not in body


TOOL_CHOICES: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "required",
        "required",
        {
            "openai": "required",
            "anthropic": {"type": "any", "disable_parallel_tool_use": True},
            "google": {"functionCallingConfig": {"mode": "ANY"}},
            "mistral": "any",
            "deepseek": "required",
        },
    ),
    (
        "named",
        {"type": "function", "function": {"name": "get_time"}},
        {
            "openai": {"type": "function", "function": {"name": "get_time"}},
            "anthropic": {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
            "google": {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
            },
            "mistral": {"type": "function", "function": {"name": "get_time"}},
            "deepseek": {"type": "function", "function": {"name": "get_time"}},
        },
    ),
    (
        "none",
        "none",
        {
            "openai": "none",
            "anthropic": {"type": "none"},
            "google": {"functionCallingConfig": {"mode": "NONE"}},
            "mistral": "none",
            "deepseek": "none",
        },
    ),
]


@by_provider
@pytest.mark.parametrize(
    ("choice", "expected"), [c[1:] for c in TOOL_CHOICES], ids=[c[0] for c in TOOL_CHOICES]
)
def test_tool_choice_and_parallel_tool_calls(
    name: str,
    choice: Any,
    expected: dict[str, Any],
    sdk: openai.OpenAI,
    fakes: dict[str, FakeServer],
) -> None:
    fakes[name].script(Reply(text="ok"))
    r = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=[{"role": "user", "content": "Time?"}],
            tools=[WEATHER, TIME],
            tool_choice=choice,
            parallel_tool_calls=False,
        ),
        name,
    )
    assert r.choices[0].message.content == "ok"
    body = sent(fakes, name)[0].json
    key = "toolConfig" if name == "google" else "tool_choice"
    assert body[key] == expected[name]
    # parallel_tool_calls: passed on where it exists, folded into tool_choice (Anthropic),
    # dropped where there is no equivalent (Gemini, DeepSeek)
    assert body.get("parallel_tool_calls") == (False if name in ("openai", "mistral") else None)


def test_mistral_specific_fields_pass_and_unknown_ones_are_named(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """Fields Orbyt does not map go to Mistral as is: its own extras work, and its 422 for
    a field it does not know reaches the caller naming that field."""
    fakes["mistral"].script(Reply(text="ok"))
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    r = check_completion(
        sdk.chat.completions.create(
            model=MODELS["mistral"],
            messages=messages,
            extra_body={"safe_prompt": True, "top_k": 20, "random_seed": 3},
        ),
        "mistral",
    )
    assert r.choices[0].message.content == "ok"
    body = sent(fakes, "mistral")[0].json
    assert (body["safe_prompt"], body["top_k"], body["random_seed"]) == (True, 20, 3)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        sdk.chat.completions.create(
            model=MODELS["mistral"], messages=messages, prompt_cache_retention="24h", **no_retry()
        )
    err = check_error_body(info.value, "mistral")
    assert err["param"] == "prompt_cache_retention"
    assert "Extra inputs are not permitted" in err["message"]
    assert info.value.response.headers["x-should-retry"] == "false"


# ---------------------------------------------------------------- (b) multi-turn


@by_provider
def test_multi_turn(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text="Your name is Ada.", usage=(30, 5)))
    messages: list[Any] = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada!"},
        {"role": "user", "content": "What is my name?"},
    ]
    r = check_completion(sdk.chat.completions.create(model=MODELS[name], messages=messages), name)
    assert r.choices[0].message.content == "Your name is Ada."
    assert r.choices[0].finish_reason == "stop"
    check_usage(r.usage, 30, 5)

    body = sent(fakes, name)[0].json
    if name == "anthropic":
        assert "system" not in body
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "My name is Ada."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello Ada!"}]},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
        ]
    elif name == "google":
        assert "systemInstruction" not in body
        assert body["contents"] == [
            {"role": "user", "parts": [{"text": "My name is Ada."}]},
            {"role": "model", "parts": [{"text": "Hello Ada!"}]},
            {"role": "user", "parts": [{"text": "What is my name?"}]},
        ]
    else:
        assert body["messages"] == messages


# ---------------------------------------------------------------- (c) tool-call round trip


@by_provider
@pytest.mark.parametrize("echo", ["dump", "object"])
def test_tool_call_round_trip(
    name: str, echo: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fake = fakes[name]
    fake.script(
        Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], usage=(40, 9)),
        Reply(text="It is 18 degrees in Paris.", usage=(60, 8)),
    )
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    first = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name], messages=messages, tools=[WEATHER], tool_choice="auto"
        ),
        name,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content in (None, "")
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and TOOL_IDS[name].fullmatch(call.id)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    check_usage(first.usage, 40, 9)
    signature = None
    if name == "google":  # the thought signature travels inside the tool call
        signature = extra_of(call, "extra_content")["google"]["thought_signature"]
        assert FakeGemini.valid_signature(signature) and signature != SKIP_SIGNATURE
    if name == "deepseek":  # thinking is DeepSeek's default
        assert extra_of(choice.message, "reasoning_content") == FakeDeepSeek.default_reasoning

    # The ways real callers continue: append the SDK's message (as a dict, or the object
    # itself), then the tool result.
    echoed = choice.message.model_dump(exclude_none=True)
    result = {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}
    final = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=[*messages, echoed if echo == "dump" else choice.message, result],
            tools=[WEATHER],
        ),
        name,
    )
    assert final.choices[0].message.content == "It is 18 degrees in Paris."
    assert final.choices[0].finish_reason == "stop"
    check_usage(final.usage, 60, 8)

    one, two = (r.json for r in sent(fakes, name, 2))
    # OpenAI-shaped upstreams: the assistant message as it went out, minus the explicit
    # nulls (content, refusal) the SDK sends when given its message object
    chat = name in ("openai", "mistral", "deepseek")
    assistant = {k: v for k, v in two["messages"][2].items() if v is not None} if chat else {}
    if name == "openai":
        assert one["tools"] == [WEATHER] and one["tool_choice"] == "auto"
        assert two["messages"] == [*messages, two["messages"][2], result]
        assert assistant == echoed
    elif name == "anthropic":
        tool = {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": WEATHER["function"]["parameters"],
        }
        assert one["tools"] == [tool] and one["tool_choice"] == {"type": "auto"}
        assert two["system"] == SYSTEM and "tool_choice" not in two
        assert two["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp_c": 18}'}
                ],
            },
        ]
    elif name == "google":
        declaration = {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parametersJsonSchema": WEATHER["function"]["parameters"],
        }
        assert one["tools"] == [{"functionDeclarations": [declaration]}]
        assert one["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
        assert two["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
        assert two["contents"] == [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": signature,
                    }
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}
                ],
            },
        ]
    elif name == "mistral":
        assert one["tools"] == [WEATHER] and one["tool_choice"] == "auto"
        tool_msg = two["messages"][3]
        assert assistant == {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        }
        assert tool_msg == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}
    else:  # deepseek: the reasoning goes back with the tool-call message
        assert one["tools"] == [WEATHER] and one["tool_choice"] == "auto"
        assert assistant["reasoning_content"] == FakeDeepSeek.default_reasoning
        assert assistant["tool_calls"] == echoed["tool_calls"]
        assert two["messages"][3] == result


@by_provider
def test_agent_loop_of_two_tool_steps(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """call -> result -> another call -> result -> answer, in one user turn: every step's
    call goes back with what its provider needs (Gemini: each step's own signature)."""
    fakes[name].script(
        Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Reply(tool_calls=[{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]),
        Reply(text="Sunny at noon."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather, then time, in Paris?"}]
    steps = []
    for content in ("Sunny", "12:00"):
        r = check_completion(
            sdk.chat.completions.create(
                model=MODELS[name], messages=messages, tools=[WEATHER, TIME]
            ),
            name,
        )
        assert r.choices[0].finish_reason == "tool_calls"
        message = r.choices[0].message
        steps.append(message)
        call = (message.tool_calls or [])[0]
        messages += [
            message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": content},
        ]
    final = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER, TIME]),
        name,
    )
    assert final.choices[0].message.content == "Sunny at noon."
    body = sent(fakes, name, 3)[2].json
    calls = [(m.tool_calls or [])[0] for m in steps]
    if name == "anthropic":
        assert [m["role"] for m in body["messages"]] == [
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
        ]
        assert [m["content"][0]["tool_use_id"] for m in body["messages"][2::2]] == [
            c.id for c in calls
        ]
    elif name == "google":
        signatures = [extra_of(c, "extra_content")["google"]["thought_signature"] for c in calls]
        assert signatures[0] != signatures[1]
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user", "model", "user"]
        assert [c["parts"][0]["thoughtSignature"] for c in body["contents"][1::2][:2]] == signatures
    elif name == "deepseek":
        assert [m.get("reasoning_content") for m in body["messages"][1::2]] == [
            FakeDeepSeek.default_reasoning
        ] * 2
    else:
        assert [m["role"] for m in body["messages"]] == [
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
        ]


@by_provider
def test_tool_history_rebuilt_by_the_caller(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """A history whose tool calls came from elsewhere (OpenAI-style ids, no thought
    signature, no reasoning_content): every provider still accepts it."""
    fakes[name].script(Reply(text="Done."))
    foreign_id = "call_Xa81c9d2eF5"
    messages: list[Any] = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": foreign_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_Yb92d0e3fG6",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": foreign_id, "content": "18C"},
        {"role": "tool", "tool_call_id": "call_Yb92d0e3fG6", "content": "24C"},
    ]
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER]), name
    )
    assert r.choices[0].message.content == "Done."
    body = sent(fakes, name)[0].json
    if name == "openai":
        assert body["messages"] == messages
    elif name == "anthropic":
        assert [b["id"] for b in body["messages"][1]["content"]] == [foreign_id, "call_Yb92d0e3fG6"]
        assert body["messages"][2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": foreign_id, "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_Yb92d0e3fG6", "content": "24C"},
            ],
        }
    elif name == "google":
        model_parts = body["contents"][1]["parts"]
        assert model_parts[0]["thoughtSignature"] == SKIP_SIGNATURE
        assert "thoughtSignature" not in model_parts[1]
        assert body["contents"][2] == {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "24C"}}},
            ],
        }
    elif name == "mistral":  # ids rewritten to 9 characters, the same in both places
        ids = [c["id"] for c in body["messages"][1]["tool_calls"]]
        assert all(re.fullmatch(r"[A-Za-z0-9]{9}", i) for i in ids) and len(set(ids)) == 2
        assert [m["tool_call_id"] for m in body["messages"][2:]] == ids
    else:  # deepseek: an empty reasoning_content satisfies thinking mode
        assert body["messages"][1]["reasoning_content"] == ""


@by_provider
def test_tool_results_then_a_user_comment(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """Tool results followed by more user text: Anthropic needs one user turn that starts
    with the tool_result blocks; Gemini one user turn of responses, then the text."""
    fakes[name].script(
        Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]),
        Reply(text="Rome: 24C, so yes."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Rome?"}]
    first = sdk.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    call = (message.tool_calls or [])[0]
    messages += [
        message,
        {"role": "tool", "tool_call_id": call.id, "content": "24C"},
        {"role": "user", "content": "Warm enough for a swim?"},
    ]
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, tools=[WEATHER]), name
    )
    assert r.choices[0].message.content == "Rome: 24C, so yes."
    body = sent(fakes, name, 2)[1].json
    if name == "anthropic":
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": call.id, "content": "24C"},
            {"type": "text", "text": "Warm enough for a swim?"},
        ]
    elif name == "google":
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][2]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"result": "24C"}}},
            {"text": "Warm enough for a swim?"},
        ]
    else:
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]


# ---------------------------------------------------------------- (d) images


@by_provider
def test_image_data_url(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text="A single pixel."))
    url = f"data:image/png;base64,{PNG}"
    content: list[Any] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]
    messages: list[Any] = [{"role": "user", "content": content}]
    if name == "deepseek":  # text-only: refused before anything goes upstream
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=MODELS[name], messages=messages)
        assert info.value.status_code == 400
        assert info.value.param == "messages[0].content[1]"
        assert info.value.type == "invalid_request_error"
        assert "image" in info.value.message and "deepseek" in info.value.message.lower()
        assert fakes[name].requests == []
        return
    r = check_completion(sdk.chat.completions.create(model=MODELS[name], messages=messages), name)
    assert r.choices[0].message.content == "A single pixel."
    body = sent(fakes, name)[0].json
    if name == "anthropic":
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ]
    elif name == "google":
        assert body["contents"][0]["parts"] == [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
        ]
    else:  # openai, mistral: the part as is
        assert body["messages"] == messages


@pytest.mark.parametrize("name", ["anthropic", "google"])
def test_unsupported_image_type_names_the_field(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,SUkqAA=="}}
    messages: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "?"}, part]}]
    if name == "google":  # Gemini takes any inline type; an unguessable URL is refused
        part["image_url"] = {"url": "https://example.com/picture"}
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model=MODELS[name], messages=messages)
    assert info.value.param == "messages[0].content[1].image_url.url"
    assert fakes[name].requests == []


@by_provider
def test_image_http_url(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text="A cat."))
    url = "https://example.com/images/cat.png"
    content: list[Any] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    messages: list[Any] = [{"role": "user", "content": content}]
    if name == "deepseek":
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=MODELS[name], messages=messages)
        assert info.value.param == "messages[0].content[1]"
        return
    r = check_completion(sdk.chat.completions.create(model=MODELS[name], messages=messages), name)
    assert r.choices[0].message.content == "A cat."
    body = sent(fakes, name)[0].json
    if name == "anthropic":
        assert body["messages"][0]["content"][1] == {
            "type": "image",
            "source": {"type": "url", "url": url},
        }
    elif name == "google":
        assert body["contents"][0]["parts"][1] == {
            "fileData": {"mimeType": "image/png", "fileUri": url}
        }
    else:
        assert body["messages"] == messages


# ---------------------------------------------------------------- (e) JSON mode


@by_provider
def test_json_object(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text='{"answer": 42}'))
    messages: list[Any] = [{"role": "user", "content": "Reply in JSON: what is 6*7?"}]
    r = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name], messages=messages, response_format={"type": "json_object"}
        ),
        name,
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": 42}
    body = sent(fakes, name)[0].json
    if name == "anthropic":  # no native JSON mode: an instruction in `system`
        assert "JSON object" in body["system"] and "output_config" not in body
    elif name == "google":
        assert body["generationConfig"] == {"responseMimeType": "application/json"}
    else:
        assert body["response_format"] == {"type": "json_object"}


@by_provider
def test_json_schema(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text='{"answer": 42}'))
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    messages: list[Any] = [{"role": "user", "content": "What is 6*7?"}]
    if name == "deepseek":  # json_object only: refused rather than silently unvalidated
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model=MODELS[name], messages=messages, response_format=fmt)
        assert info.value.param == "response_format.type"
        assert "response_format" in info.value.message
        assert fakes[name].requests == []
        return
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, response_format=fmt),
        name,
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": 42}
    body = sent(fakes, name)[0].json
    if name == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
        assert "system" not in body
    elif name == "google":
        assert body["generationConfig"] == {
            "responseMimeType": "application/json",
            "responseJsonSchema": SCHEMA,
        }
    else:
        assert body["response_format"] == fmt


# ---------------------------------------------------------------- (f) streaming


@by_provider
def test_stream_text_with_usage(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    text = "Streaming works — ünïcödé, 漢字 and 🚀 — across every provider."
    fakes[name].script(Reply(text=text, usage=(17, 5), cached_tokens=4), Reply(text=text))
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Say something."},
    ]
    out = collect(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        ),
        name,
    )
    thinking = FakeDeepSeek.default_reasoning if name == "deepseek" else ""
    assert (out.text, out.reasoning, out.calls) == (text, thinking, {})
    assert out.finishes == ["stop"]
    assert len(out.usage) == 1 and out.chunks[-1].usage is out.usage[0]
    check_usage(out.usage[0], 17, 5, 4 if name in CACHES else None)

    plain = collect(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, stream=True), name
    )
    assert plain.text == text and plain.finishes == ["stop"] and plain.usage == []
    assert all(c.choices for c in plain.chunks)

    for rec in sent(fakes, name, 2):
        body = rec.json
        if name == "google":
            assert rec.path.endswith(":streamGenerateContent") and rec.query == {"alt": "sse"}
            assert body["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
        elif name == "anthropic":
            assert body["stream"] is True and "stream_options" not in body
            assert body["system"] == SYSTEM
        elif name == "mistral":  # usage always rides on Mistral's finish chunk
            assert body["stream"] is True and "stream_options" not in body
        else:  # the worker always asks for usage, to account for it
            assert body["stream"] is True
            assert body["stream_options"] == {"include_usage": True}


@by_provider
def test_stream_tool_calls_round_trip(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fake = fakes[name]
    fake.script(
        Reply(
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
            ],
            usage=(30, 12),
        ),
        Reply(text="Sunny, and it is noon."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    out = collect(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=messages,
            tools=[WEATHER, TIME],
            stream=True,
            stream_options={"include_usage": True},
        ),
        name,
    )
    assert out.text == "" and sorted(out.calls) == [0, 1]
    assert out.finishes == ["tool_calls"]
    check_usage(out.usage[0], 30, 12)
    weather, clock = out.calls[0], out.calls[1]
    assert weather["function"]["name"] == "get_weather"
    assert clock["function"]["name"] == "get_time"
    assert json.loads(weather["function"]["arguments"]) == {"city": "Paris"}
    assert json.loads(clock["function"]["arguments"]) == {"tz": "Europe/Paris"}
    assert all(TOOL_IDS[name].fullmatch(c["id"]) for c in (weather, clock))
    assert weather["id"] != clock["id"]
    if name == "google":  # only the first of parallel calls carries the signature
        signature = weather["extra_content"]["google"]["thought_signature"]
        assert FakeGemini.valid_signature(signature) and "extra_content" not in clock
    if name == "deepseek":
        assert out.reasoning == FakeDeepSeek.default_reasoning

    results = [
        {"role": "tool", "tool_call_id": weather["id"], "content": "Sunny"},
        {"role": "tool", "tool_call_id": clock["id"], "content": "12:00"},
    ]
    final = check_completion(
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=[*messages, out.assistant_message(), *results],
            tools=[WEATHER, TIME],
        ),
        name,
    )
    assert final.choices[0].message.content == "Sunny, and it is noon."

    one, two = (r.json for r in sent(fakes, name, 2))
    if name == "anthropic":
        assert [t["name"] for t in one["tools"]] == ["get_weather", "get_time"]
        assert [b["type"] for b in two["messages"][1]["content"]] == ["tool_use", "tool_use"]
        assert two["messages"][2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": weather["id"], "content": "Sunny"},
                {"type": "tool_result", "tool_use_id": clock["id"], "content": "12:00"},
            ],
        }
    elif name == "google":
        parts = two["contents"][1]["parts"]
        assert parts[0]["thoughtSignature"] == signature and "thoughtSignature" not in parts[1]
        assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "get_time"]
        assert two["contents"][2]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"result": "Sunny"}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
        ]
    elif name == "mistral":
        ids = [c["id"] for c in two["messages"][1]["tool_calls"]]
        assert ids == [weather["id"], clock["id"]]
        assert [m["tool_call_id"] for m in two["messages"][2:]] == ids
    elif name == "deepseek":
        assert two["messages"][1]["reasoning_content"] == FakeDeepSeek.default_reasoning
    else:
        assert two["messages"][1]["tool_calls"] == out.assistant_message()["tool_calls"]


@by_provider
def test_sdk_stream_helper(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    """`client.chat.completions.stream()` accumulates the chunks into a final completion."""
    fakes[name].script(
        Reply(
            text="Checking.",
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
            usage=(25, 9),
        ),
        Reply(text="Plain text, streamed.", usage=(8, 4)),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with sdk.chat.completions.stream(
        model=MODELS[name],
        messages=messages,
        tools=[WEATHER],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert TOOL_IDS[name].fullmatch(calls[0].id)
    check_usage(final.usage, 25, 9)
    if name == "google":  # the helper keeps the signature for the caller to echo
        signature = extra_of(calls[0], "extra_content")["google"]["thought_signature"]
        assert FakeGemini.valid_signature(signature)

    with sdk.chat.completions.stream(model=MODELS[name], messages=messages) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert text == final.choices[0].message.content == "Plain text, streamed."
    assert final.choices[0].finish_reason == "stop"


def raw_stream(gw: Gateway, name: str, **body: Any) -> list[dict[str, Any]]:
    """The SSE frames of a streamed answer, read without the SDK: data-only events (no
    `event:` lines, which the JS SDK would surface), each one JSON object, then [DONE]."""
    payload = {
        "model": MODELS[name],
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        **body,
    }
    with httpx.Client(timeout=20) as http:
        r = http.post(
            gw.base_url + "/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
        )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if e]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    assert events[-1] == "data: [DONE]"
    return [json.loads(e[6:]) for e in events[:-1]]


@by_provider
def test_raw_sse_frames(name: str, gw: Gateway, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(
        Reply(
            text="Hello there", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]
        )
    )
    frames = raw_stream(gw, name, tools=[WEATHER], stream_options={"include_usage": True})
    ids = {f["id"] for f in frames}
    assert len(ids) == 1
    for frame in frames:
        assert frame["object"] == "chat.completion.chunk" and frame["model"] == MODELS[name]
        assert isinstance(frame["created"], int)
        assert all(set(c) >= {"index", "delta", "finish_reason"} for c in frame["choices"])
    first = frames[0]["choices"][0]["delta"]
    assert first["role"] == "assistant"
    assert first.get("content") == ("" if name != "deepseek" else None)  # DeepSeek: reasoning
    calls = [tc for f in frames for c in f["choices"] for tc in c["delta"].get("tool_calls", [])]
    assert calls[0]["index"] == 0 and calls[0]["type"] == "function" and calls[0]["id"]
    assert frames[-1]["choices"] == [] and frames[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("name", ["anthropic", "mistral"])
def test_chunks_carry_usage_null_when_usage_was_asked_for(
    name: str, gw: Gateway, fakes: dict[str, FakeServer]
) -> None:
    """PROVIDERS.md §1: with include_usage every chunk has "usage": null."""
    fakes[name].script(Reply(text="Hello there"))
    frames = raw_stream(gw, name, stream_options={"include_usage": True})
    assert all("usage" in f and f["usage"] is None for f in frames[:-1])


# ---------------------------------------------------------------- finish reasons


# (provider, the fake's finish: generic or provider-native, what the caller gets)
FINISHES: list[tuple[str, str, str]] = [
    *((name, "length", "length") for name in PROVIDERS),
    *(
        (name, "content_filter", "content_filter")
        for name in ("openai", "anthropic", "google", "deepseek")
    ),
    ("anthropic", "stop_sequence", "stop"),
    ("anthropic", "pause_turn", "stop"),
    ("anthropic", "model_context_window_exceeded", "length"),
    ("google", "RECITATION", "content_filter"),
    ("google", "OTHER", "stop"),
    ("mistral", "model_length", "length"),
]


@pytest.mark.parametrize(
    ("name", "finish", "expected"), FINISHES, ids=[f"{n}-{f}" for n, f, _ in FINISHES]
)
def test_finish_reasons(
    name: str, finish: str, expected: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(
        Reply(text="Cut short", finish=finish), Reply(text="Cut short", finish=finish)
    )
    messages: list[Any] = [{"role": "user", "content": "Write a lot."}]
    r = check_completion(sdk.chat.completions.create(model=MODELS[name], messages=messages), name)
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("Cut short", expected)
    out = collect(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, stream=True), name
    )
    assert (out.text, out.finishes) == ("Cut short", [expected])


@by_provider
def test_empty_answer(name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]) -> None:
    fakes[name].script(Reply(text=""), Reply(text=""))
    messages: list[Any] = [{"role": "user", "content": "Say nothing."}]
    extra_body = {"thinking": {"type": "disabled"}} if name == "deepseek" else None
    r = check_completion(
        sdk.chat.completions.create(model=MODELS[name], messages=messages, extra_body=extra_body),
        name,
    )
    assert r.choices[0].message.content in ("", None)
    assert r.choices[0].finish_reason == "stop"
    out = collect(
        sdk.chat.completions.create(
            model=MODELS[name], messages=messages, stream=True, extra_body=extra_body
        ),
        name,
    )
    assert (out.text, out.reasoning, out.finishes) == ("", "", ["stop"])


# ---------------------------------------------------------------- reasoning


# Reasoning: DeepSeek thinks by default; Anthropic and Gemini when reasoning_effort asks;
# Mistral's Magistral answers with thinking chunks; OpenAI only counts reasoning tokens.
REASONING_MODELS = {**MODELS, "mistral": "mistral/magistral-medium-latest"}
THOUGHT = "Six times seven is forty-two."


@by_provider
@pytest.mark.parametrize("stream", [False, True], ids=["once", "stream"])
def test_reasoning_surfaces(
    name: str, stream: bool, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Reply(text="42.", reasoning=THOUGHT, usage=(10, 8)))
    model = REASONING_MODELS[name]
    kwargs: dict[str, Any] = {} if name in ("deepseek", "mistral") else {"reasoning_effort": "low"}
    messages: list[Any] = [{"role": "user", "content": "What is 6*7?"}]
    expected = "" if name == "openai" else THOUGHT
    if stream:
        out = collect(
            sdk.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            ),
            name,
            model,
        )
        assert (out.text, out.reasoning, out.finishes) == ("42.", expected, ["stop"])
        usage = out.usage[0]
    else:
        r = check_completion(
            sdk.chat.completions.create(model=model, messages=messages, **kwargs), name, model
        )
        assert r.choices[0].message.content == "42."
        assert (extra_of(r.choices[0].message, "reasoning_content") or "") == expected
        usage = r.usage
    check_usage(usage, 10, 8)
    if name in ("openai", "google", "deepseek"):  # the fakes that report reasoning tokens
        assert usage.completion_tokens_details is not None
        assert usage.completion_tokens_details.reasoning_tokens == len(THOUGHT.split())

    body = sent(fakes, name, model=model)[0].json
    if name == "anthropic":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    elif name == "google":
        assert body["generationConfig"]["thinkingConfig"] == {
            "thinkingLevel": "LOW",
            "includeThoughts": True,
        }
    elif name == "openai":
        assert body["reasoning_effort"] == "low"
    else:
        assert "reasoning_effort" not in body and "thinking" not in body


@by_provider
def test_reasoning_with_a_tool_round_trip(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(
        Reply(
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}],
            reasoning="I should look up the weather.",
        ),
        Reply(text="It is cold in Oslo.", reasoning="The tool said -3."),
    )
    model = REASONING_MODELS[name]
    kwargs: dict[str, Any] = {} if name in ("deepseek", "mistral") else {"reasoning_effort": "low"}
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = check_completion(
        sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER], **kwargs),
        name,
        model,
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    thought = extra_of(message, "reasoning_content")
    assert thought == (None if name == "openai" else "I should look up the weather.")
    call = (message.tool_calls or [])[0]
    echoed = message.model_dump(exclude_none=True)
    result = {"role": "tool", "tool_call_id": call.id, "content": "-3C"}
    final = check_completion(
        sdk.chat.completions.create(
            model=model, messages=[*messages, echoed, result], tools=[WEATHER], **kwargs
        ),
        name,
        model,
    )
    assert final.choices[0].message.content == "It is cold in Oslo."
    one, two = (r.json for r in sent(fakes, name, 2, model))
    if name == "anthropic":
        # thinking cannot continue a tool loop whose thinking blocks (and signatures) an
        # OpenAI client cannot replay: it is left off for that request, which still goes
        assert one["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert "thinking" not in two
        assert [b["type"] for b in two["messages"][1]["content"]] == ["tool_use"]
        assert extra_of(final.choices[0].message, "reasoning_content") is None
    elif name == "google":
        assert two["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
        parts = two["contents"][1]["parts"]
        assert parts == [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                "thoughtSignature": extra_of(call, "extra_content")["google"]["thought_signature"],
            }
        ]
        assert extra_of(final.choices[0].message, "reasoning_content") == "The tool said -3."
    elif name == "deepseek":
        assert two["messages"][1]["reasoning_content"] == "I should look up the weather."
        assert extra_of(final.choices[0].message, "reasoning_content") == "The tool said -3."
    elif name == "mistral":  # Mistral forbids reasoning_content on input messages
        assert "reasoning_content" not in two["messages"][1]
        assert extra_of(final.choices[0].message, "reasoning_content") == "The tool said -3."
    else:
        assert two["messages"][1] == echoed


# ---------------------------------------------------------------- errors


def check_error_body(exc: openai.APIStatusError, provider: str) -> dict[str, Any]:
    raw = exc.response.json()
    assert set(raw) == {"error"}
    assert set(raw["error"]) == {"message", "type", "param", "code"}
    assert exc.body == raw["error"]
    assert raw["error"]["message"].startswith(f"{provider}: ")
    assert exc.response.headers["content-type"].startswith("application/json")
    assert exc.response.headers["x-request-id"]
    return dict(raw["error"])


@by_provider
def test_upstream_rate_limit_is_a_rate_limit_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    # Gemini carries the hint as RetryInfo.retryDelay "7s" in the body; the others as a header
    fakes[name].script(Error(429, retry_after=7))
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    headers = info.value.response.headers
    assert info.value.status_code == 429
    assert headers["retry-after"] == "7" and headers["retry-after-ms"] == "7000"
    assert headers["x-should-retry"] == "true"
    # OpenAI's own TPM limit error has type "tokens"; the others are OpenAI's rate_limit_error
    assert err["type"] == ("tokens" if name == "openai" else "rate_limit_error")
    assert err["code"] == ("1300" if name == "mistral" else "rate_limit_exceeded")
    assert len(fakes[name].requests) == 1  # retry 0: one attempt


@by_provider
def test_upstream_bad_request_is_a_bad_request_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Error(400))
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    assert info.value.response.headers["x-should-retry"] == "false"
    assert err["type"] == "invalid_request_error"
    assert "retry-after" not in info.value.response.headers
    assert len(fakes[name].requests) == 1


@by_provider
def test_rejected_pool_key_is_a_gateway_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """The provider refusing the gateway's own key is not the caller's auth failure: 502."""
    # Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
    fakes[name].script(Error(400, kind="api_key_invalid") if name == "google" else Error(401))
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    assert info.value.status_code == 502
    assert err["code"] == "upstream_auth_failed" and err["type"] == "server_error"
    assert KEYS[name] not in err["message"] and KEYS[name][-4:] not in err["message"]


@by_provider
def test_streamed_request_refused_upstream_is_an_http_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """An error before the first byte of a stream is a real HTTP error, never SSE."""
    fakes[name].script(Error(400))
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model=MODELS[name],
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
            **no_retry(),
        )
    check_error_body(info.value, name)


@by_provider
def test_callers_own_key_and_its_refusal(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    """BYOK: the caller's key is sent in the provider's own auth header, and a key the
    provider refuses is the caller's authentication failure (401), key not quoted back."""
    fakes[name].script(Reply(text="ok"))
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODELS[name],
        messages=messages,
        extra_body={"extra": {"byok": BYOK_GOOD[name], "retry": 0}},
    )
    assert check_completion(raw.parse(), name).choices[0].message.content == "ok"
    assert raw.headers["x-orbyt-key-source"] == "byok"
    sent(fakes, name, key=BYOK_GOOD[name])
    fakes[name].reset()
    with pytest.raises(openai.AuthenticationError) as info:
        sdk.chat.completions.create(
            model=MODELS[name],
            messages=messages,
            extra_body={"extra": {"byok": BYOK_BAD[name], "retry": 2}},
        )
    err = check_error_body(info.value, name)
    assert info.value.status_code == 401 and err["code"] in ("invalid_api_key", None)
    # OpenAI's own 401 says invalid_request_error (passed on); the others are translated
    assert err["type"] == ("invalid_request_error" if name == "openai" else "authentication_error")
    assert info.value.response.headers["x-should-retry"] == "false"
    assert BYOK_BAD[name][-4:] not in err["message"] and "****" not in err["message"]
    assert len(fakes[name].requests) == 1  # a refused key is not retried


OVERLOADED = {
    "openai": Error(503),
    "anthropic": Error(529),
    "google": Error(503),
    "mistral": Error(503),
    "deepseek": Error(503),
}


@by_provider
def test_upstream_overload_is_a_retryable_503(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(OVERLOADED[name])
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    assert info.value.status_code == 503  # Anthropic's 529 is no HTTP status for clients
    assert info.value.response.headers["x-should-retry"] == "true"
    assert err["type"] == "server_error"


# Permanent quota errors: the OpenAI SDK must not retry them (x-should-retry: false).
QUOTA = {
    "openai": (Error(429, kind="insufficient_quota"), 429),
    "anthropic": (Error(429, kind="spend_limit"), 429),
    "google": (Error(429, kind="per_day_quota"), 429),
    "deepseek": (Error(402), 402),
}


@pytest.mark.parametrize("name", list(QUOTA))
def test_exhausted_quota_is_not_retryable(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    error, status = QUOTA[name]
    fakes[name].script(error)
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    assert info.value.status_code == status
    assert isinstance(info.value, openai.RateLimitError) == (status == 429)
    assert err["code"] == "insufficient_quota"
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers


CONTEXT = {
    "openai": Error(400, kind="context_length_exceeded"),
    "anthropic": Error(400, kind="prompt_too_long"),
    "google": Error(
        400,
        message="The input token count (1200000) exceeds the maximum number "
        "of tokens allowed (1048576).",
    ),
    "mistral": Error(
        400,
        message="Prompt contains 140000 tokens and 0 draft tokens, too large "
        "for model with 131072 maximum context length",
    ),
    "deepseek": Error(400, kind="context_length_exceeded"),
}


@by_provider
def test_context_overflow_has_one_code(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(CONTEXT[name])
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model=MODELS[name], messages=[{"role": "user", "content": "hi"}], **no_retry()
        )
    err = check_error_body(info.value, name)
    assert err["code"] == "context_length_exceeded"
    assert info.value.response.headers["x-should-retry"] == "false"


@by_provider
def test_midstream_error_after_content_is_an_in_band_api_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Reply(text="one two three four", midstream_error=2))
    extra_body: dict[str, Any] = {"extra": {"retry": 0}}
    if name == "deepseek":  # no reasoning deltas first: `thinking` passes through
        extra_body["thinking"] = {"type": "disabled"}
    stream = sdk.chat.completions.create(
        model=MODELS[name],
        stream=True,
        extra_body=extra_body,
        messages=[{"role": "user", "content": "Count."}],
    )
    got = ""
    with pytest.raises(openai.APIError) as info, stream:
        for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk)
            got += "".join(c.delta.content or "" for c in chunk.choices)
    assert got == "one two"
    assert not isinstance(info.value, openai.APIStatusError)  # the status was already 200
    if name == "deepseek":
        assert sent(fakes, name)[0].json["thinking"] == {"type": "disabled"}
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    assert body["message"].startswith(f"{name}: ")


@by_provider
def test_midstream_error_before_content_is_an_http_error(
    name: str, sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes[name].script(Reply(text="one two", midstream_error=0))
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(
            model=MODELS[name],
            stream=True,
            **no_retry(),
            messages=[{"role": "user", "content": "Count."}],
        )
    check_error_body(info.value, name)
    assert info.value.response.headers["x-should-retry"] == "true"


def test_deepseek_capacity_cut_is_a_retryable_error(
    sdk: openai.OpenAI, fakes: dict[str, FakeServer]
) -> None:
    fakes["deepseek"].script(Reply(text="partial", finish="insufficient_system_resource"))
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(
            model=MODELS["deepseek"], **no_retry(), messages=[{"role": "user", "content": "Hi"}]
        )
    err = check_error_body(info.value, "deepseek")
    assert info.value.status_code == 503 and err["code"] == "insufficient_system_resource"


# ---------------------------------------------------------------- models


def test_models_lists_every_provider_with_capabilities(sdk: openai.OpenAI) -> None:
    models = {m.id: m for m in sdk.models.list()}
    for name, model in MODELS.items():
        assert model in models, model
        entry = models[model]
        assert entry.object == "model" and entry.owned_by == name
        assert extra_of(entry, "provider") == name
        capabilities = extra_of(entry, "capabilities")
        assert isinstance(capabilities, list) and "tools" in capabilities
        assert ("vision" in capabilities) == (name != "deepseek")
    assert {extra_of(m, "provider") for m in models.values()} >= set(PROVIDERS)
    assert "prefill" in extra_of(models["anthropic/claude-haiku-4-5"], "capabilities")
    assert "reasoning" in extra_of(models["mistral/magistral-medium-latest"], "capabilities")
