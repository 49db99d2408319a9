"""Fault injection, part 2: streams that break after content reached the caller, malformed
and unterminated streams, in-stream errors, client disconnects (DESIGN §4.4, §11)."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.fakes import Error, Recorded, Reply
from tests.gateway import Gateway
from tests.integration.faults_support import (
    MSG,
    STALL_TIMEOUT,
    Fakes,
    client,
    extra,
    stream_chat,
    tokens,
)

pytestmark = pytest.mark.integration


def prefill_of(request: Recorded) -> str:
    """The text of the trailing assistant message of an upstream request."""
    last: Any = request.json["messages"][-1]
    assert last["role"] == "assistant", last
    content = last["content"]
    if isinstance(content, list):
        return "".join(part["text"] for part in content if part.get("type") == "text")
    return str(content)


def assert_healthy(gw: Gateway, fakes: Fakes) -> None:
    """The worker still serves: a following request succeeds, stream and non-stream."""
    fakes.primary.script(Reply(text="still here"), Reply(text="still streaming"))
    r = client(gw).chat.completions.create(model="openai/gpt-5-mini", messages=MSG)
    assert r.choices[0].message.content == "still here"
    got = stream_chat(gw, "openai/gpt-5-mini")
    assert got.error is None and got.text == "still streaming" and got.finishes == ["stop"]


# 8 -----------------------------------------------------------------------------------
def test_cut_stream_continues_on_a_prefill_fallback(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=60, cut_after=40))
    fakes.anthropic.script(Reply(text=tokens(40, 60), usage=(90, 20)))
    got = stream_chat(
        gw,
        "openai/gpt-5-mini",
        stream_options={"include_usage": True},
        extra_body=extra(fallback_models=["backup/plain", "anthropic/claude-3-haiku"]),
    )
    assert got.error is None
    assert got.text == tokens(0, 60)  # one seamless answer: partial + continuation
    assert got.finishes == ["stop"]
    assert got.usage is not None
    assert got.headers["x-orbyt-model"] == "openai/gpt-5-mini"
    # the non-prefill fallback is skipped; the prefill one gets exactly the partial text
    assert fakes.backup.requests == []
    assert len(fakes.primary.requests) == 1 and len(fakes.anthropic.requests) == 1
    assert prefill_of(fakes.anthropic.requests[0]) == tokens(0, 40)
    assert fakes.anthropic.requests[0].json["messages"][0]["role"] == "user"


@pytest.mark.parametrize("fallbacks", [[], ["backup/plain"]])
def test_cut_stream_without_prefill_fallback_ends_with_an_in_band_error(
    gw: Gateway, fakes: Fakes, fallbacks: list[str]
) -> None:
    fakes.primary.script(Reply(tokens=60, cut_after=40))
    got = stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=fallbacks))
    assert got.text == tokens(0, 40)  # the partial answer arrived ...
    assert isinstance(got.error, openai.APIError)  # ... and never a clean end
    assert "ended before the answer was complete" in got.error.message
    assert got.error.code == "upstream_stream_cut"
    assert got.finishes == []
    assert len(fakes.primary.requests) == 1  # content was sent: no invisible retry
    assert fakes.backup.requests == []


# 9 -----------------------------------------------------------------------------------
def test_stalled_stream_continues_on_a_prefill_fallback(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=60, stall_after=20, stall=30))
    fakes.backup.script(Reply(text=" and the rest."))
    started = time.monotonic()
    got = stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/prefill"]))
    took = time.monotonic() - started
    assert got.error is None
    assert got.text == tokens(0, 20) + " and the rest."
    assert got.finishes == ["stop"]
    assert took < STALL_TIMEOUT + 1.5
    assert prefill_of(fakes.backup.requests[0]) == tokens(0, 20)
    assert fakes.primary.wait_for_disconnects(1, timeout=2)
    assert_healthy(gw, fakes)


def test_stalled_stream_without_prefill_fallback_errors_in_band(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=60, stall_after=20, stall=30))
    started = time.monotonic()
    got = stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/plain"]))
    took = time.monotonic() - started
    assert got.text == tokens(0, 20)
    assert isinstance(got.error, openai.APIError)
    assert "stalled" in got.error.message
    assert STALL_TIMEOUT - 0.1 <= took < STALL_TIMEOUT + 1.5
    assert fakes.backup.requests == []
    assert fakes.primary.wait_for_disconnects(1, timeout=2)
    assert_healthy(gw, fakes)


# 10 ----------------------------------------------------------------------------------
def test_malformed_event_is_skipped(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=10, malformed_at=5))
    got = stream_chat(gw, "openai/gpt-5-mini", stream_options={"include_usage": True})
    assert got.error is None
    assert got.text == tokens(0, 10)
    assert got.finishes == ["stop"]
    assert got.usage is not None and got.usage.completion_tokens == 10
    assert len(fakes.primary.requests) == 1
    assert_healthy(gw, fakes)


# 11 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_missing_terminator_with_finish_reason_is_finalised(
    gw: Gateway, fakes: Fakes, provider: str
) -> None:
    model = {"openai": "openai/gpt-5-mini", "anthropic": "anthropic/claude-3-haiku"}[provider]
    fake = fakes.primary if provider == "openai" else fakes.anthropic
    fake.script(Reply(tokens=8, usage=(5, 8), no_terminator=True))
    started = time.monotonic()
    got = stream_chat(gw, model, stream_options={"include_usage": True})
    assert time.monotonic() - started < STALL_TIMEOUT
    assert got.error is None
    assert got.text == tokens(0, 8)
    assert got.finishes == ["stop"]
    assert got.usage is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (5, 8)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("end", ["open", "dropped"])
def test_missing_terminator_then_silence_or_drop_is_finalised(
    gw: Gateway, fakes: Fakes, end: str
) -> None:
    """Finish reason and usage arrive, then neither [DONE] nor the end of the body: the
    connection stays open, or drops. The answer is complete and ends well at once (not as
    a stall error after the stall timeout, nor as a cut)."""
    fakes.primary.linger, fakes.primary.drop = (30, False) if end == "open" else (0.05, True)
    fakes.primary.script(Reply(tokens=8, usage=(5, 8), no_terminator=True))
    started = time.monotonic()
    got = stream_chat(gw, "openai/gpt-5-mini", stream_options={"include_usage": True})
    assert time.monotonic() - started < STALL_TIMEOUT
    assert got.error is None
    assert got.text == tokens(0, 8)
    assert got.finishes == ["stop"]
    assert got.usage is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (5, 8)
    assert len(fakes.primary.requests) == 1
    if end == "open":
        assert fakes.primary.wait_for_disconnects(1, timeout=2)


# 14 ----------------------------------------------------------------------------------
def test_rejected_prefill_reports_the_cut_not_the_rejection(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=60, cut_after=40))
    fakes.backup.script(Error(400, message="This model does not support assistant prefill."))
    got = stream_chat(gw, "openai/gpt-5-mini", extra_body=extra(fallback_models=["backup/prefill"]))
    assert got.text == tokens(0, 40)
    assert isinstance(got.error, openai.APIError)
    assert "ended before the answer was complete" in got.error.message
    assert got.error.code == "upstream_stream_cut"
    assert "prefill" not in got.error.message
    assert len(fakes.backup.requests) == 1
    assert prefill_of(fakes.backup.requests[0]) == tokens(0, 40)


# In-stream error events --------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_in_stream_error_before_content_is_retried_invisibly(
    gw: Gateway, fakes: Fakes, provider: str
) -> None:
    model = {"openai": "openai/gpt-5-mini", "anthropic": "anthropic/claude-3-haiku"}[provider]
    fake = fakes.primary if provider == "openai" else fakes.anthropic
    fake.script(Reply(text="never shown", midstream_error=0), Reply(text="the real answer"))
    got = stream_chat(gw, model)
    assert got.error is None
    assert got.text == "the real answer"
    assert got.finishes == ["stop"]
    assert got.headers["x-orbyt-attempts"] == "2"
    assert len(fake.requests) == 2


def test_in_stream_error_after_content_is_an_in_band_error(gw: Gateway, fakes: Fakes) -> None:
    fakes.anthropic.script(Reply(tokens=30, midstream_error=10))
    got = stream_chat(
        gw, "anthropic/claude-3-haiku", extra_body=extra(fallback_models=["backup/plain"])
    )
    assert got.text == tokens(0, 10)
    assert isinstance(got.error, openai.APIError)
    assert "Overloaded" in got.error.message
    assert got.finishes == []
    assert fakes.backup.requests == []


# 18 (client side) --------------------------------------------------------------------------
def test_client_disconnect_mid_stream_closes_the_upstream(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=400, per_token=0.05))
    stream = client(gw).chat.completions.create(
        model="openai/gpt-5-mini", messages=MSG, stream=True
    )
    got = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got += 1
        if got == 5:
            break
    stream.close()
    closed_at = time.monotonic()
    assert fakes.primary.wait_for_disconnects(1, timeout=3)
    assert fakes.primary.disconnects[0] - closed_at < 1.0
    assert len(fakes.primary.requests) == 1
    assert_healthy(gw, fakes)
