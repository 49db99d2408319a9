"""An upstream that echoes the caller's key back, in every error field and every form
(issue 10, items 4 and 5), against real `orbyt api` / `orbyt worker` processes.

For each provider (OpenAI, Anthropic, Google, Mistral, DeepSeek) the fake upstream quotes
the BYOK key of the request it answers (`tests/fakes/echo.py`) — whole, as its 24-character
prefix, base64 at all three alignments, URL-safe base64, URL-encoded and hex — in every
field of its error body and in response headers: a non-stream 401 and 400, a stream that
fails with an HTTP 429, and in-stream error events before and after content. The key, in
any of those forms, must appear nowhere: not in the caller's response, not in any command
Redis received (a `MONITOR` capture: job, side-car, reply frames), not in any log line
(`--log-level debug`). A refusal of the caller's key (401) carries Orbyt's own message with
the provider's status and code. A gateway pool key echoed the same way is scrubbed too.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes import (
    Error,
    FakeAnthropic,
    FakeDeepSeek,
    FakeGemini,
    FakeMistral,
    FakeOpenAI,
    Reply,
    key_forms,
)
from tests.gateway import GATEWAY_KEY, Gateway, RedisServer
from tests.integration.leakscan import Needles, RedisMonitor

pytestmark = pytest.mark.integration

_ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = _ALNUM + "-_") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


KEYS = {
    "openai": "sk-proj-" + _rand(74) + "T3BlbkFJ" + _rand(74),
    "anthropic": "sk-ant-api03-" + _rand(93) + "AA",
    "google": "AIza" + _rand(35),
    "mistral": _rand(32, _ALNUM),
    "deepseek": "sk-" + secrets.token_hex(16),
}
POOL_OPENAI = "sk-pool-openai-echo-" + _rand(32, _ALNUM)
MODELS = {
    "openai": "openai/gpt-5-mini",
    "anthropic": "anthropic/claude-3-haiku",
    "google": "google/gemini-2.5-flash",
    "mistral": "mistral/mistral-small-latest",
    "deepseek": "deepseek/deepseek-v4-flash",
}
FAKES = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "google": FakeGemini,
    "mistral": FakeMistral,
    "deepseek": FakeDeepSeek,
}
MSG = [{"role": "user", "content": "Count to four."}]
# every form the fakes can echo, in one string
ALL = " ".join(f"${{{name}}}" for name in key_forms("x"))


def error_body(provider: str, status: int, code: str | None) -> dict[str, Any]:
    """The provider's error shape with the key, in every form, in every field."""
    message = f"bad key {ALL}"
    if provider == "anthropic":
        error: dict[str, Any] = {"type": code or ALL, "message": message}
        error["details"] = {"error_code": ALL}
        return {"type": "error", "error": error, "request_id": ALL}
    if provider == "google":
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": ALL}
        details = [{**info, "domain": ALL, "metadata": {"service": ALL}}]
        error = {"code": status, "message": message, "status": code or ALL}
        return {"error": {**error, "details": details}}
    fields = {"message": message, "type": ALL, "param": ALL, "code": code or ALL}
    return {"error": fields, **fields, "object": "error", "detail": ALL}  # Mistral: top level


AUTH_CODES = {
    "openai": "invalid_api_key",
    "anthropic": "authentication_error",
    "google": "UNAUTHENTICATED",
    "mistral": "invalid_api_key",
    "deepseek": "invalid_api_key",
}
HEADERS = {"x-echo": ALL, "www-authenticate": f"Bearer realm={ALL}"}


@dataclass
class Env:
    gw: Gateway
    fakes: dict[str, Any]
    monitor: RedisMonitor


@pytest.fixture(scope="module")
def env(redis_server: RedisServer) -> Iterator[Env]:
    fakes = {name: cls() for name, cls in FAKES.items()}
    for fake in fakes.values():
        fake.start()
    settings = {"ORBYT_PROVIDERS__OPENAI__KEYS": POOL_OPENAI}
    for name, fake in fakes.items():
        settings[f"ORBYT_PROVIDERS__{name.upper()}__BASE_URL"] = fake.base_url
    monitor = RedisMonitor(redis_server.port).start()  # before the gateway: sees everything
    try:
        with Gateway(redis_server.new_db_url(), settings, workers=1, log_level="debug") as gw:
            yield Env(gw, fakes, monitor)
            for line in gw.all_logs().splitlines():
                assert '"level":"error"' not in line and "Traceback" not in line, line
    finally:
        monitor.stop()
        for fake in fakes.values():
            fake.stop()


def post(gw: Gateway, payload: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=20) as client:
        resp = client.post(
            gw.url() + "/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {GATEWAY_KEY}"},
        )
        resp.read()
    return resp


def as_text(resp: httpx.Response) -> bytes:
    head = f"HTTP {resp.status_code}\n" + "".join(
        f"{k}: {v}\n" for k, v in resp.headers.multi_items()
    )
    return head.encode() + b"\n" + resp.content


def leaks(key: str, haystack: bytes, where: str) -> list[str]:
    """Each form the fakes echo, found whole, and any 23+ character fragment of the key in
    any encoding (leakscan)."""
    found = [
        f"{name} in {where}" for name, form in key_forms(key).items() if form.encode() in haystack
    ]
    needles = Needles()
    needles.add("key", key)
    return found + [str(hit) for hit in needles.search(haystack, where)]


def last_event(resp: httpx.Response) -> Any:
    data = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    return orjson.loads([d for d in data if d != "[DONE]"][-1])


def content_of(resp: httpx.Response) -> str:
    text = ""
    for line in resp.text.splitlines():
        if line.startswith("data: {"):
            event = orjson.loads(line[6:])
            for choice in event.get("choices") or []:
                text += choice["delta"].get("content") or ""
    return text


@pytest.mark.parametrize("provider", list(FAKES))
def test_the_fake_really_echoes_the_key(env: Env, provider: str) -> None:
    """Positive control: the fakes put every form of the key in the body and headers."""
    fake, key = env.fakes[provider], KEYS[provider]
    fake.script(Error(400, body=error_body(provider, 400, None), headers=HEADERS))
    if provider == "google":
        url = f"{fake.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
        headers = {"x-goog-api-key": key}
        payload: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    elif provider == "anthropic":
        url = f"{fake.base_url}/v1/messages"
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        payload = {"model": "claude-3-haiku", "max_tokens": 5, "messages": MSG}
    else:
        url = f"{fake.url}/v1/chat/completions"
        headers = {"authorization": f"Bearer {key}"}
        payload = {"model": MODELS[provider].partition("/")[2], "messages": MSG}
    resp = httpx.post(url, json=payload, headers=headers, timeout=10)
    assert resp.status_code == 400
    forms = key_forms(key)
    assert all(form in resp.text for form in forms.values())
    assert forms["key_b64"] in resp.headers["x-echo"]


@pytest.mark.parametrize("provider", list(FAKES))
def test_an_echoed_byok_key_is_repeated_nowhere(env: Env, provider: str) -> None:
    fake, key = env.fakes[provider], KEYS[provider]
    fake.reset()
    mark = len(env.monitor.data())
    fake.script(
        Error(401, body=error_body(provider, 401, AUTH_CODES[provider]), headers=HEADERS),
        Error(400, body=error_body(provider, 400, None), headers=HEADERS),
        Error(429, body=error_body(provider, 429, None), headers=HEADERS),
        Reply(tokens=4, midstream_error=0, error_body=error_body(provider, 500, None)),
        Reply(
            text="one two three four", midstream_error=2, error_body=error_body(provider, 500, None)
        ),
    )

    def ask(stream: bool) -> httpx.Response:
        payload = {"model": MODELS[provider], "messages": MSG, "stream": stream}
        payload["extra"] = {"byok": key, "retry": 0}
        if provider == "deepseek":  # no reasoning deltas before the answer
            payload["thinking"] = {"type": "disabled"}
        return post(env.gw, payload)

    refused, bad, limited, cut_early = ask(False), ask(False), ask(True), ask(True)
    cut_late = ask(True)
    # the caller's key refused: Orbyt's words, the provider's status and code
    assert refused.status_code == 401, refused.text
    err = refused.json()["error"]
    assert "refused the API key given in extra.byok (HTTP 401)" in err["message"]
    assert err["code"] in (AUTH_CODES[provider], "invalid_api_key"), err
    assert refused.headers["x-should-retry"] == "false"
    assert bad.status_code == 400 and "***" in bad.json()["error"]["message"]
    assert limited.status_code == 429
    assert cut_early.status_code >= 400, cut_early.text
    assert cut_late.status_code == 200 and content_of(cut_late) == "one two"
    assert "error" in last_event(cut_late)
    # the upstream got the key each time, and echoed it
    sent = fake.requests
    assert len(sent) == 5 and all(key in str(q.headers) + str(q.query) for q in sent)
    env.monitor.mark()
    found = []
    for resp in (refused, bad, limited, cut_early, cut_late):
        found += leaks(key, as_text(resp), "the caller's response")
    found += leaks(key, env.monitor.data()[mark:], "redis MONITOR")
    found += leaks(key, env.gw.all_logs().encode(), "logs")
    assert not found, "\n".join(found)


def test_an_echoed_pool_key_is_repeated_nowhere(env: Env) -> None:
    fake = env.fakes["openai"]
    fake.reset()
    fake.script(
        Error(401, body=error_body("openai", 401, "invalid_api_key"), headers=HEADERS),
        Reply(
            text="one two three four", midstream_error=2, error_body=error_body("openai", 500, None)
        ),
    )
    mark = len(env.monitor.data())
    payload = {"model": MODELS["openai"], "messages": MSG, "extra": {"retry": 0}}
    refused = post(env.gw, payload)
    cut = post(env.gw, {**payload, "stream": True})
    assert refused.status_code == 502  # the gateway's own key: its problem, not the caller's
    assert cut.status_code == 200 and "error" in last_event(cut)
    assert [q.headers["authorization"] for q in fake.requests] == [f"Bearer {POOL_OPENAI}"] * 2
    env.monitor.mark()
    found = leaks(POOL_OPENAI, as_text(refused) + as_text(cut), "the caller's response")
    found += leaks(POOL_OPENAI, env.monitor.data()[mark:], "redis MONITOR")
    found += leaks(POOL_OPENAI, env.gw.all_logs().encode(), "logs")
    assert not found, "\n".join(found)
