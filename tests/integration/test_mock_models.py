"""The built-in mock provider's models through real API and worker processes: unknown
models are a 404 like any provider's, and the failing models show retries, fallbacks and a
prefill continuation with no account (what `orbyt dev` serves)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.gateway import GATEWAY_KEY, Gateway, RedisServer
from tests.integration.faults_support import read_stream

pytestmark = pytest.mark.integration

ASK: list[Any] = [{"role": "user", "content": "one two three four"}]


@pytest.fixture(scope="module")
def gw(redis_server: RedisServer) -> Iterator[Gateway]:
    env = {"ORBYT_BACKOFF_BASE": "0.05", "ORBYT_MOCK__TOKEN_MS": "1"}
    with Gateway(redis_server.new_db_url(), env) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def sdk(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=20
    ) as client:
        yield client


def fallback(*models: str, **fields: Any) -> dict[str, Any]:
    return {"extra_body": {"extra": {"fallback_models": list(models), **fields}}}


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_mock_model_is_a_404(sdk: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.chat.completions.create(model="mock/no-such-model", messages=ASK, stream=stream)
    body: Any = info.value.body
    assert body["code"] == "model_not_found" and "no-such-model" in body["message"]
    assert info.value.response.headers["x-orbyt-attempts"] == "1"


def test_flaky_503_is_retried_then_falls_back(sdk: openai.OpenAI) -> None:
    resp = sdk.chat.completions.with_raw_response.create(
        model="mock/flaky-503", messages=ASK, **fallback("mock/echo-backup")
    )
    assert resp.parse().model == "mock/echo-backup"
    assert resp.headers["x-orbyt-attempts"] == "4"  # 1 + 2 retries, then the fallback
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="mock/flaky-503", messages=ASK)
    assert info.value.response.headers["x-should-retry"] == "false"


def test_rate_limited_waits_for_retry_after_then_falls_back(sdk: openai.OpenAI) -> None:
    started = time.monotonic()
    resp = sdk.chat.completions.with_raw_response.create(
        model="mock/rate-limited", messages=ASK, **fallback("mock/echo", retry=1)
    )
    assert resp.parse().model == "mock/echo"
    assert resp.headers["x-orbyt-attempts"] == "3"
    assert time.monotonic() - started >= 1.0  # the one retry waited for Retry-After: 1
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model="mock/rate-limited", messages=ASK, **fallback(retry=0))
    assert info.value.response.headers["retry-after"] == "1"


def test_cut_continues_on_a_prefill_fallback_as_one_answer(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model="mock/echo", messages=ASK, max_tokens=12)
    chunks = list(
        sdk.chat.completions.create(
            model="mock/cut",
            messages=ASK,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
            **fallback("mock/echo-backup"),
        )
    )
    got = read_stream(iter(chunks))
    assert got.error is None and got.text == whole.choices[0].message.content
    orbyt = (chunks[-1].model_extra or {})["orbyt"]
    assert orbyt["model"] == "mock/echo-backup" and orbyt["attempts"] == 2
    shares = orbyt["usage_by_model"]
    assert [s["model"] for s in shares] == ["mock/cut", "mock/echo-backup"]
    assert shares[0]["estimated"] is True and shares[1]["completion_tokens"] == 6
    assert (
        got.usage is not None and got.usage.completion_tokens == shares[0]["completion_tokens"] + 6
    )


def test_cut_without_a_fallback_ends_with_an_in_band_error(sdk: openai.OpenAI) -> None:
    got = read_stream(
        sdk.chat.completions.create(model="mock/cut", messages=ASK, max_tokens=12, stream=True)
    )
    assert isinstance(got.error, openai.APIError) and got.text
    assert "ended before the answer was complete" in got.error.message
    with pytest.raises(openai.APIStatusError) as info:  # non-stream: the body breaks off
        sdk.chat.completions.create(model="mock/cut", messages=ASK, **fallback(retry=0))
    assert info.value.status_code == 502
