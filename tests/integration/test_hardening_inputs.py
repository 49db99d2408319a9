"""Inputs an attacker or a careless client sends, against real `orbyt api` / `orbyt worker`
processes and independent fake upstreams (issue 10, items 1-3, the "Also" list).

- JSON nested 200, 254, 1000 or 1025 levels deep in any pass-through field is a 400 naming
  the field (it was a 500: the queued job could not be encoded); at the limit it works.
- A model id with non-ASCII, control characters, whitespace or 10 kB is a 400 before any
  upstream call (it was a 500 after the upstream had answered, or a dropped connection
  that made the SDK call the upstream again).
- An unknown top-level field is a 400 like OpenAI's (a key pasted into `extras` was
  forwarded upstream and written into the queued job); fields an operator allows for an
  OpenAI-compatible upstream reach it.
- Worker metrics listen on loopback unless told otherwise.
Every case: the fake upstreams record no call for a refused request, the connection stays
usable, and no process logs an ERROR line.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from orbyt.shared.wire import MAX_JSON_DEPTH
from tests.fakes import FakeAnthropic, FakeDeepSeek, FakeGemini, FakeMistral, FakeOpenAI
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer, free_port
from tests.integration.leakscan import Needles, RedisMonitor

pytestmark = pytest.mark.integration

MSG = [{"role": "user", "content": "Say hi"}]
MODELS = {
    "openai": "openai/gpt-5-mini",
    "anthropic": "anthropic/claude-3-haiku",
    "google": "google/gemini-2.5-flash",
    "mistral": "mistral/mistral-small-latest",
    "deepseek": "deepseek/deepseek-v4-flash",
    "myvllm": "myvllm/llama-3-8b",
}
PASTED = "sk-proj-" + secrets.token_urlsafe(60).replace("-", "x").replace("_", "y")


@dataclass
class Env:
    gw: Gateway
    fakes: dict[str, Any]
    monitor: RedisMonitor

    @property
    def calls(self) -> int:
        return sum(len(f.requests) for f in self.fakes.values())

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset()


@pytest.fixture(scope="module")
def env(redis_server: RedisServer) -> Iterator[Env]:
    fakes: dict[str, Any] = {
        "openai": FakeOpenAI(),
        "anthropic": FakeAnthropic(),
        "google": FakeGemini(),
        "mistral": FakeMistral(),
        "deepseek": FakeDeepSeek(),
        "myvllm": FakeOpenAI(),
    }
    for fake in fakes.values():
        fake.start()
    settings = {
        "ORBYT_PROVIDERS__MYVLLM__ADAPTER": "openai",
        "ORBYT_PROVIDERS__MYVLLM__EXTRA_FIELDS": "top_k,repetition_penalty",
        "ORBYT_PROVIDERS__MYVLLM__KEYS": "sk-vllm-local-key",
        "ORBYT_DEFAULT_RETRY": "0",
    }
    for name, fake in fakes.items():
        settings[f"ORBYT_PROVIDERS__{name.upper()}__BASE_URL"] = fake.base_url
        settings.setdefault(f"ORBYT_PROVIDERS__{name.upper()}__KEYS", f"sk-pool-{name}-key-x")
    monitor = RedisMonitor(redis_server.port).start()
    try:
        with Gateway(redis_server.new_db_url(), settings, workers=1) as gw:
            yield Env(gw, fakes, monitor)
            assert_no_error_lines(gw)
    finally:
        monitor.stop()
        for fake in fakes.values():
            fake.stop()


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> None:
    env.reset()


def assert_no_error_lines(gw: Gateway) -> None:
    for line in gw.all_logs().splitlines():
        low = line.lower()
        assert '"level":"error"' not in low and '"level":"critical"' not in low, line
        assert "traceback" not in low and " error " not in low, line


def post(
    client: httpx.Client, gw: Gateway, payload: bytes | dict[str, Any], stream: bool = False
) -> httpx.Response:
    """A raw request on `client` (so a dropped connection shows as an exception)."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    resp = client.post(
        gw.url() + "/v1/chat/completions",
        content=content,
        headers={"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"},
    )
    resp.read()
    return resp


def error_of(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    return dict(err)


# --------------------------------------------------------------------------- deep JSON
def raw_nested(levels: int) -> bytes:
    """`levels` containers, one inside the other, as JSON text (objects and arrays)."""
    opens = [b"[" if i % 2 else b'{"a":' for i in range(levels - 1)]
    closes = [b"]" if i % 2 else b"}" for i in range(levels - 1)]
    return b"".join(opens) + b"{}" + b"".join(reversed(closes))


HOLE = b'"@@"'
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "@@"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": "@@"}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "s", "schema": "@@"}}
# field path, the request's fields around the nested value, containers above the value
FIELDS = [
    ("metadata", {"metadata": "@@"}, 1),
    ("tools[0].function.parameters", {"tools": [TOOL]}, 4),
    ("response_format.json_schema.schema", {"response_format": SCHEMA}, 3),
    ("messages[0].content[0]", {"messages": [{"role": "user", "content": [{"x": "@@"}]}]}, 5),
    (
        "messages[1].tool_calls[0].function",
        {"messages": [*MSG, {"role": "assistant", "tool_calls": [CALL]}]},
        6,
    ),
]


def deep_request(model: str, fields: dict[str, Any], value: bytes, stream: bool) -> bytes:
    body = {"model": model, "messages": MSG, "stream": stream, **fields}
    return orjson.dumps(body).replace(HOLE, value)


@pytest.mark.parametrize(("param", "fields", "above"), FIELDS, ids=[f[0] for f in FIELDS])
def test_deep_json_is_a_clean_400_naming_the_field(
    env: Env, param: str, fields: dict[str, Any], above: int
) -> None:
    with httpx.Client(timeout=20) as client:
        for levels in (200, 254, 1000, 1025):
            for stream in (False, True):
                raw = deep_request(MODELS["openai"], fields, raw_nested(levels), stream)
                err = error_of(post(client, env.gw, raw))
                assert err["code"] == "invalid_value" and err["param"].startswith(param), err
                assert f"deeper than {MAX_JSON_DEPTH} levels" in err["message"]
        assert post(client, env.gw, {"model": MODELS["openai"], "messages": MSG}).status_code == 200
    assert env.calls == 1  # only the last, valid request reached an upstream


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google", "mistral", "deepseek"])
def test_json_nested_to_the_limit_goes_through_every_provider(env: Env, provider: str) -> None:
    """Job encoding, the adapter and the upstream encoder all carry the deepest request
    the API lets in."""
    value = raw_nested(MAX_JSON_DEPTH - 4)  # tools[0].function.parameters: 4 levels above
    with httpx.Client(timeout=20) as client:
        for stream in (False, True):
            resp = post(
                client, env.gw, deep_request(MODELS[provider], {"tools": [TOOL]}, value, stream)
            )
            assert resp.status_code == 200, resp.text[:500]
    sent = env.fakes[provider].requests
    assert len(sent) == 2
    if provider == "openai":
        assert sent[0].json["tools"][0]["function"]["parameters"] == orjson.loads(value)


# --------------------------------------------------------------------------- model ids
BAD_MODEL_IDS = {
    "cjk": "openai/gpt-5-mini\u4e2d\u6587",
    "emoji": "openai/gpt-\U0001f600",
    "bidi": "openai/gpt-5\u202e",
    "crlf": "openai/gpt-5\r\nx-injected: yes",
    "lf": "openai/gpt-5\n",
    "nul": "openai/gpt-5\x00",
    "space": "openai/gpt 5",
    "tab": "openai/gpt-5\t",
    "10kb": "openai/" + "x" * 10_000,
}


@pytest.mark.parametrize("case", list(BAD_MODEL_IDS))
def test_bad_model_ids_are_a_400_before_any_upstream_call(env: Env, case: str) -> None:
    model = BAD_MODEL_IDS[case]
    with httpx.Client(timeout=20) as client:
        for stream in (False, True):
            plain = {"model": model, "messages": MSG, "stream": stream}
            err = error_of(post(client, env.gw, plain))
            assert (err["code"], err["param"]) == ("invalid_value", "model")
            fallback = {
                "model": MODELS["openai"],
                "messages": MSG,
                "stream": stream,
                "extra": {"fallback_models": [MODELS["anthropic"], model]},
            }
            err = error_of(post(client, env.gw, fallback))
            assert (err["code"], err["param"]) == ("invalid_value", "extra.fallback_models[1]")
        # the same connection still serves (nothing was dropped)
        assert post(client, env.gw, {"model": MODELS["openai"], "messages": MSG}).status_code == 200
    assert env.calls == 1


def test_bad_model_ids_through_the_openai_sdk(env: Env) -> None:
    """The SDK gets a 400 it does not retry: no dropped connection, no second upstream call."""
    sdk = openai.OpenAI(base_url=env.gw.base_url, api_key=GATEWAY_KEY, max_retries=2, timeout=20)
    for case, model in BAD_MODEL_IDS.items():
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as info:
                sdk.chat.completions.create(model=model, messages=MSG, stream=stream)  # type: ignore[call-overload]
            assert info.value.status_code == 400, case
            body = info.value.body
            assert isinstance(body, dict) and body["param"] == "model", case
            with pytest.raises(openai.BadRequestError):
                sdk.chat.completions.create(
                    model=MODELS["openai"],
                    messages=MSG,  # type: ignore[arg-type]
                    extra_body={"extra": {"fallback_models": [model]}},
                )
    assert env.calls == 0


# ------------------------------------------------------------------------ unknown fields
def test_a_key_pasted_into_a_misspelled_field_goes_nowhere(env: Env) -> None:
    sdk = openai.OpenAI(base_url=env.gw.base_url, api_key=GATEWAY_KEY, max_retries=2, timeout=20)
    mark = len(env.monitor.data())
    for field in ("extras", "Extra", "extra_body"):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(
                model=MODELS["openai"],
                messages=MSG,  # type: ignore[arg-type]
                extra_body={field: {"byok": PASTED}},
            )
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == field
        assert body["message"] == (
            f"Unrecognized request argument supplied: {field}. Did you mean `extra`?"
        )
        assert body["code"] == "unknown_parameter"
    with pytest.raises(openai.BadRequestError):  # unknown for OpenAI itself
        sdk.chat.completions.create(
            model=MODELS["openai"],
            messages=MSG,  # type: ignore[arg-type]
            extra_body={"top_k": 5},
        )
    assert env.calls == 0
    needles = Needles()
    needles.add("pasted", PASTED)
    env.monitor.mark()
    hits = needles.search(env.monitor.data()[mark:], "redis MONITOR")
    hits += needles.search(env.gw.all_logs().encode(), "logs")
    assert not hits, "\n".join(map(str, hits))


def test_fields_an_operator_allows_reach_the_upstream(env: Env) -> None:
    sdk = openai.OpenAI(base_url=env.gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    done = sdk.chat.completions.create(
        model=MODELS["myvllm"],
        messages=MSG,  # type: ignore[arg-type]
        extra_body={"top_k": 5, "repetition_penalty": 1.1},
    )
    assert done.choices[0].message.content
    sent = env.fakes["myvllm"].last.json
    assert (sent["top_k"], sent["repetition_penalty"]) == (5, 1.1)
    # every parameter of OpenAI's API passes, as before (the SDK builds the request)
    sdk.chat.completions.create(
        model=MODELS["openai"],
        messages=MSG,  # type: ignore[arg-type]
        temperature=0.5,
        top_p=0.9,
        seed=7,
        user="u1",
        safety_identifier="s1",
        prompt_cache_key="p1",
        metadata={"k": "v"},
        store=False,
        verbosity="low",
        service_tier="auto",
    )
    sent = env.fakes["openai"].last.json
    assert (sent["seed"], sent["verbosity"], sent["metadata"]) == (7, "low", {"k": "v"})


# ----------------------------------------------------------------------- worker metrics
def listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a listening socket on `port`."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, _, hexport = fields[1].rpartition(":")
            if int(hexport, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                out.append(addr)
    return out


def test_worker_metrics_listen_on_loopback_by_default(redis_server: RedisServer) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    port = free_port()
    with Gateway(redis_server.new_db_url(), {"ORBYT_WORKER_METRICS_PORT": str(port)}) as gw:
        assert "orbyt_" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert listening(port) == ["0100007F"], listening(port)  # 127.0.0.1 only
        assert_no_error_lines(gw)


def test_the_fakes_would_have_answered(env: Env) -> None:
    """Positive control: a valid request of every kind used above reaches the upstream."""
    with httpx.Client(timeout=20) as client:
        for provider, model in MODELS.items():
            resp = post(client, env.gw, {"model": model, "messages": MSG})
            assert resp.status_code == 200, (provider, resp.text[:300])
            assert json.loads(resp.text)["choices"][0]["message"]["content"]
    assert env.calls == len(MODELS)
