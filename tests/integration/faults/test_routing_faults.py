"""Fault injection, part 1: retries, backoff, failover and final errors (DESIGN §4.1, §11).

Each test asserts what the caller (official SDK, no client retries) got and what the fake
upstream saw: how many attempts, and how far apart.
"""

from __future__ import annotations

import time

import openai
import pytest

from tests.fakes import Error, Hang, Reply, Reset
from tests.gateway import Gateway
from tests.integration.faults_support import (
    MSG,
    NONSTREAM_TIMEOUT,
    TTFT_TIMEOUT,
    Fakes,
    client,
    extra,
    gaps,
    models_seen,
    stream_chat,
)

pytestmark = pytest.mark.integration


# 1 -----------------------------------------------------------------------------------
def test_429_retry_after_is_honoured(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Error(429, retry_after=2), Reply(text="after the wait"))
    r = client(gw).chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini", messages=MSG
    )
    assert r.parse().choices[0].message.content == "after the wait"
    assert r.headers["x-orbyt-attempts"] == "2"
    seen = fakes.primary.requests
    assert len(seen) == 2
    assert gaps(seen)[0] >= 1.8


def test_retry_after_ms_is_honoured(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Error(429, headers={"retry-after-ms": "1200"}), Reply(text="ok"))
    r = client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert r.choices[0].message.content == "ok"
    assert gaps(fakes.primary.requests)[0] >= 1.1


def test_retry_after_over_the_cap_fails_over_at_once(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(429, retry_after=30)
    started = time.monotonic()
    r = client(gw).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, extra_body=extra(fallback_models=["backup/plain"])
    )
    assert r.model == "backup/plain"
    assert time.monotonic() - started < 1.0
    assert len(fakes.primary.requests) == 1
    # with nothing to fall back to, the caller gets the 429 and when to come back
    with pytest.raises(openai.RateLimitError) as info:
        client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert info.value.response.headers["retry-after"] == "30"
    assert info.value.response.headers["x-should-retry"] == "true"
    assert len(fakes.primary.requests) == 2


def test_retry_after_beyond_the_deadline_fails_over_at_once(gw: Gateway, fakes: Fakes) -> None:
    # the 429 itself takes 1.2 s; waiting 2 s more would pass the 3 s deadline
    fakes.primary.script(Error(429, retry_after=2, delay=1.2))
    started = time.monotonic()
    r = client(gw).chat.completions.create(
        model="openai/gpt-5-mini",
        messages=MSG,
        extra_body=extra(fallback_models=["backup/plain"], timeout=3),
    )
    assert r.model == "backup/plain"
    assert time.monotonic() - started < 2.0
    assert len(fakes.primary.requests) == 1


def test_quota_exhausted_429_is_not_retried(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(429, kind="insufficient_quota")
    with pytest.raises(openai.RateLimitError) as info:
        client(gw).chat.completions.create(
            model="openai/gpt-5-mini", messages=MSG, extra_body=extra(retry=3)
        )
    assert info.value.code == "insufficient_quota"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fakes.primary.requests) == 1


# 2 -----------------------------------------------------------------------------------
def test_persistent_429_backs_off_with_jitter_then_falls_back(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(429)
    fakes.backup.script(Reply(text="from the fallback"))
    started = time.monotonic()
    r = client(gw).chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini",
        messages=MSG,
        extra_body=extra(fallback_models=["backup/plain"], retry=3),
    )
    assert r.parse().choices[0].message.content == "from the fallback"
    assert r.parse().model == "backup/plain"
    seen = fakes.primary.requests
    assert len(seen) == 4  # the first try and 3 retries
    assert len([q for q in seen if q.at - started < 3.0]) <= 4
    assert len(seen) + len(fakes.backup.requests) <= 6
    # full jitter: the n-th wait is at most min(cap, base * 2**n) (+ scheduling slack)
    for n, gap in enumerate(gaps(seen)):
        assert gap <= 0.5 * 2**n + 0.3, (n, gap)
    assert r.headers["x-orbyt-attempts"] == "5"


# 3 -----------------------------------------------------------------------------------
def test_500_once_is_retried_on_the_same_model(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Error(500), Reply(text="second time lucky"))
    r = client(gw).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, extra_body=extra(fallback_models=["backup/plain"])
    )
    assert r.choices[0].message.content == "second time lucky"
    assert r.model == "openai/gpt-5-mini"
    assert models_seen(fakes.primary) == ["gpt-5-mini", "gpt-5-mini"]
    assert fakes.backup.requests == []


# 4 -----------------------------------------------------------------------------------
def test_persistent_503_falls_back_within_the_retry_budget(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(503)
    r = client(gw).chat.completions.with_raw_response.create(
        model="openai/gpt-5-mini",
        messages=MSG,
        extra_body=extra(fallback_models=["backup/plain"], retry=2),
    )
    assert r.parse().model == "backup/plain"
    assert len(fakes.primary.requests) == 3 and len(fakes.backup.requests) == 1
    assert r.headers["x-orbyt-attempts"] == "4"


@pytest.mark.parametrize("stream", [False, True])
def test_persistent_503_without_fallback_returns_the_original_503(
    gw: Gateway, fakes: Fakes, stream: bool
) -> None:
    fakes.primary.default = Error(503)
    with pytest.raises(openai.InternalServerError) as info:
        if stream:  # a real HTTP status: headers wait for the first content
            stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(retry=1))
        else:
            client(gw).chat.completions.create(
                model="openai/gpt-5-mini", messages=MSG, extra_body=extra(retry=1)
            )
    assert info.value.status_code == 503
    assert "The engine is currently overloaded" in info.value.message
    # the gateway spent its retries: the SDK must not retry on top
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-orbyt-attempts"] == "2"
    assert len(fakes.primary.requests) == 2


# 5 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_headers_is_retried(gw: Gateway, fakes: Fakes, stream: bool) -> None:
    fakes.primary.script(Reset(), Reply(text="after the reset"))
    if stream:
        got = stream_chat(
            gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/plain"])
        )
        assert got.error is None and got.text == "after the reset"
        assert got.finishes == ["stop"]
    else:
        r = client(gw).chat.completions.create(
            model="openai/gpt-5-mini",
            messages=MSG,
            extra_body=extra(fallback_models=["backup/plain"]),
        )
        assert r.choices[0].message.content == "after the reset"
    assert len(fakes.primary.requests) + len(fakes.backup.requests) == 2


# 6 -----------------------------------------------------------------------------------
def test_silent_upstream_stream_fails_over_without_retry(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Hang()
    fakes.backup.script(Reply(text="the fallback speaks"))
    started = time.monotonic()
    got = stream_chat(
        gw,
        "openai/gpt-5-mini",
        extra_body=extra(fallback_models=["backup/plain"], retry=2, timeout=10),
    )
    took = time.monotonic() - started
    assert got.error is None and got.text == "the fallback speaks"
    assert got.models == {"backup/plain"}
    assert len(fakes.primary.requests) == 1  # a silent route is not retried
    assert TTFT_TIMEOUT - 0.1 <= took < TTFT_TIMEOUT + 1.5
    assert fakes.primary.wait_for_disconnects(1, timeout=2)


def test_silent_upstream_non_stream_fails_over_without_retry(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Hang()
    fakes.backup.script(Reply(text="the fallback speaks"))
    started = time.monotonic()
    r = client(gw).chat.completions.create(
        model="openai/gpt-5-mini",
        messages=MSG,
        extra_body=extra(fallback_models=["backup/plain"], retry=2, timeout=10),
    )
    took = time.monotonic() - started
    assert r.choices[0].message.content == "the fallback speaks"
    assert len(fakes.primary.requests) == 1
    assert NONSTREAM_TIMEOUT - 0.1 <= took < NONSTREAM_TIMEOUT + 1.5


@pytest.mark.parametrize("stream", [False, True])
def test_silent_upstream_alone_ends_inside_the_deadline(
    gw: Gateway, fakes: Fakes, stream: bool
) -> None:
    fakes.primary.default = Hang()
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        if stream:
            stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(timeout=2))
        else:
            client(gw).chat.completions.create(
                model="openai/gpt-5-mini", messages=MSG, extra_body=extra(timeout=2)
            )
    took = time.monotonic() - started
    assert info.value.status_code == 504
    assert 1.9 <= took < 3.5
    assert len(fakes.primary.requests) == 1


# 7 -----------------------------------------------------------------------------------
def test_slow_first_token_fails_over_after_the_ttft_limit(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(text="too late", ttft=20))
    fakes.backup.script(Reply(text="on time"))
    started = time.monotonic()
    got = stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/plain"]))
    took = time.monotonic() - started
    assert got.error is None and got.text == "on time"
    assert got.headers["x-orbyt-model"] == "backup/plain"
    assert got.headers["x-orbyt-attempts"] == "2"
    assert TTFT_TIMEOUT - 0.1 <= took < TTFT_TIMEOUT + 1.5
    assert len(fakes.primary.requests) == 1
    assert fakes.primary.wait_for_disconnects(1, timeout=2)


# 12 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_context_length_exceeded_skips_smaller_windows(
    gw: Gateway, fakes: Fakes, stream: bool
) -> None:
    fakes.primary.script(Error(400, kind="context_length_exceeded"))
    fakes.backup.script(Reply(text="a bigger window"))
    body = extra(fallback_models=["backup/small-ctx", "backup/big-ctx"], retry=2)
    if stream:
        got = stream_chat(gw, "openai/gpt-4o-mini", extra_body=body)
        assert got.error is None and got.text == "a bigger window"
        assert got.models == {"backup/big-ctx"}
    else:
        r = client(gw).chat.completions.create(
            model="openai/gpt-4o-mini", messages=MSG, extra_body=body
        )
        assert r.choices[0].message.content == "a bigger window"
        assert r.model == "backup/big-ctx"
    assert models_seen(fakes.primary, fakes.backup) == ["gpt-4o-mini", "big-ctx"]


def test_context_length_exceeded_without_a_larger_window_is_reported(
    gw: Gateway, fakes: Fakes
) -> None:
    fakes.primary.script(Error(400, kind="context_length_exceeded"))
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=MSG,
            extra_body=extra(fallback_models=["backup/small-ctx"], retry=2),
        )
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fakes.primary.requests) == 1 and fakes.backup.requests == []


# 13 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_content_policy_rejection_is_final(gw: Gateway, fakes: Fakes, stream: bool) -> None:
    fakes.primary.script(Error(400, kind="content_policy"))
    with pytest.raises(openai.BadRequestError) as info:
        if stream:
            stream_chat(
                gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/plain"], retry=3)
            )
        else:
            client(gw).chat.completions.create(
                model="openai/gpt-5-mini",
                messages=MSG,
                extra_body=extra(fallback_models=["backup/plain"], retry=3),
            )
    assert "flagged as potentially violating our usage policy" in info.value.message
    assert info.value.code == "invalid_prompt"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert len(fakes.primary.requests) == 1 and fakes.backup.requests == []


# 16 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_answer_reports_the_fallback(gw: Gateway, fakes: Fakes, stream: bool) -> None:
    fakes.primary.default = Error(503)
    fakes.backup.script(Reply(text="fallback words", usage=(21, 2)))
    plan = extra(fallback_models=["backup/plain"], retry=1)
    if stream:
        got = stream_chat(
            gw, "openai/gpt-5-mini", stream_options={"include_usage": True}, extra_body=plan
        )
        assert got.error is None and got.text == "fallback words"
        assert got.models == {"backup/plain"}
        assert got.usage.prompt_tokens == 21 and got.usage.completion_tokens == 2
        headers = got.headers
    else:
        r = client(gw).chat.completions.with_raw_response.create(
            model="openai/gpt-5-mini", messages=MSG, extra_body=plan
        )
        body = r.parse()
        assert body.model == "backup/plain"
        assert body.usage is not None
        assert (body.usage.prompt_tokens, body.usage.completion_tokens) == (21, 2)
        headers = dict(r.headers)
    assert headers["x-orbyt-model"] == "backup/plain"
    assert headers["x-orbyt-provider"] == "backup"
    assert headers["x-orbyt-attempts"] == "3"  # two on the primary, one on the fallback
    assert len(fakes.primary.requests) == 2 and len(fakes.backup.requests) == 1


# Anthropic and Gemini specifics ------------------------------------------------------------
def test_anthropic_529_is_retried(gw: Gateway, fakes: Fakes) -> None:
    fakes.anthropic.script(Error(529), Reply(text="no longer overloaded"))
    r = client(gw).chat.completions.create(model="anthropic/claude-3-haiku", messages=MSG)
    assert r.choices[0].message.content == "no longer overloaded"
    assert len(fakes.anthropic.requests) == 2


def test_anthropic_529_everywhere_is_a_503(gw: Gateway, fakes: Fakes) -> None:
    fakes.anthropic.default = Error(529)
    with pytest.raises(openai.InternalServerError) as info:
        client(gw).chat.completions.create(
            model="anthropic/claude-3-haiku", messages=MSG, extra_body=extra(retry=1)
        )
    assert info.value.status_code == 503
    assert "Overloaded" in info.value.message
    assert info.value.response.headers["x-should-retry"] == "false"  # retried already
    assert len(fakes.anthropic.requests) == 2


def test_anthropic_529_fails_over(gw: Gateway, fakes: Fakes) -> None:
    fakes.anthropic.default = Error(529)
    r = client(gw).chat.completions.create(
        model="anthropic/claude-3-haiku",
        messages=MSG,
        extra_body=extra(fallback_models=["backup/plain"], retry=1),
    )
    assert r.model == "backup/plain"
    assert len(fakes.anthropic.requests) == 2 and len(fakes.backup.requests) == 1


def test_gemini_retry_info_delay_is_honoured(gw: Gateway, fakes: Fakes) -> None:
    fakes.gemini.script(Error(429, retry_after=1.5), Reply(text="quota is back"))
    r = client(gw).chat.completions.create(model="google/gemini-2.5-flash", messages=MSG)
    assert r.choices[0].message.content == "quota is back"
    seen = fakes.gemini.requests
    assert len(seen) == 2
    assert "retry-after" not in seen[0].headers
    assert gaps(seen)[0] >= 1.4
