"""Fault injection against `/v1/responses` (issue 13): the routing guarantees of chat hold
for the Responses API too — 429 with Retry-After, 503 then fallback, a stream cut after
content (prefill continuation, else `error` + `response.failed`, never
`response.completed`), a hung upstream (timeout, then failover)."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.fakes import Error, Hang, Reply
from tests.gateway import Gateway
from tests.integration.faults_support import (
    TTFT_TIMEOUT,
    Fakes,
    client,
    extra,
    gaps,
    tokens,
)

pytestmark = pytest.mark.integration


def stream_events(
    gw: Gateway, model: str = "openai/gpt-5-mini", **kwargs: Any
) -> tuple[list[Any], dict[str, str]]:
    """Every event of one Responses stream, and the response headers."""
    with (
        client(gw) as sdk,
        sdk.responses.with_streaming_response.create(
            model=model, input="Say hi", stream=True, **kwargs
        ) as resp,
    ):
        headers = dict(resp.headers)
        events = list(resp.parse())
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events, headers


def text_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_429_with_retry_after_is_retried(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Error(429, headers={"retry-after": "1"}), Reply(text="ok"))
    with client(gw) as sdk:
        r = sdk.responses.create(model="openai/gpt-5-mini", input="Say hi")
    assert r.output_text == "ok" and r.status == "completed"
    assert len(fakes.primary.requests) == 2
    assert gaps(fakes.primary.requests)[0] >= 0.9


def test_503_then_fallback(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(503)
    fakes.anthropic.script(Reply(text="from the fallback"))
    with client(gw) as sdk:
        raw = sdk.responses.with_raw_response.create(
            model="openai/gpt-5-mini",
            input="Say hi",
            extra_body=extra(fallback_models=["anthropic/claude-3-haiku"], retry=0),
        )
    r = raw.parse()
    assert r.output_text == "from the fallback" and r.model == "anthropic/claude-3-haiku"
    assert raw.headers["x-orbyt-model"] == "anthropic/claude-3-haiku"
    assert raw.headers["x-orbyt-attempts"] == "2"
    assert len(fakes.primary.requests) == 1 and len(fakes.anthropic.requests) == 1


def test_503_everywhere_is_an_http_error(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.default = Error(503)
    with client(gw) as sdk, pytest.raises(openai.InternalServerError):
        sdk.responses.create(model="openai/gpt-5-mini", input="Say hi", extra_body=extra(retry=0))


def test_cut_stream_continues_on_a_prefill_fallback(gw: Gateway, fakes: Fakes) -> None:
    fakes.backup.script(Reply(tokens=30, cut_after=20))  # a translated (chat) route
    fakes.anthropic.script(Reply(text=tokens(20, 30)))
    events, headers = stream_events(
        gw, model="backup/plain", extra_body=extra(fallback_models=["anthropic/claude-3-haiku"])
    )
    assert text_of(events) == tokens(0, 30)  # one seamless answer
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == tokens(0, 30)
    assert headers["x-orbyt-model"] == "backup/plain"
    assert [e.type for e in events].count("response.created") == 1
    last = fakes.anthropic.requests[0].json["messages"][-1]
    assert last["role"] == "assistant"


def test_cut_native_stream_fails_in_band(gw: Gateway, fakes: Fakes) -> None:
    """OpenAI's own Responses stream is not continued elsewhere (its items are OpenAI's)."""
    fakes.primary.script(Reply(tokens=30, cut_after=20))
    events, _ = stream_events(gw, extra_body=extra(fallback_models=["anthropic/claude-3-haiku"]))
    kinds = [e.type for e in events]
    assert text_of(events) == tokens(0, 20)
    assert "response.completed" not in kinds and kinds[-2:] == ["error", "response.failed"]
    assert fakes.primary.requests[0].path == "/v1/responses"
    assert fakes.anthropic.requests == []


def test_cut_stream_without_prefill_fallback_fails_in_band(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Reply(tokens=30, cut_after=20))
    events, _ = stream_events(gw, extra_body=extra(fallback_models=["backup/plain"]))
    kinds = [e.type for e in events]
    assert text_of(events) == tokens(0, 20)
    assert "response.completed" not in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-2].code == "upstream_stream_cut"
    assert events[-1].response.status == "failed" and events[-1].response.error is not None
    assert fakes.backup.requests == []


def test_hang_times_out_then_fails_over(gw: Gateway, fakes: Fakes) -> None:
    fakes.primary.script(Hang())
    fakes.backup.script(Reply(text="backup answers"))
    started = time.monotonic()
    events, headers = stream_events(gw, extra_body=extra(fallback_models=["backup/plain"]))
    assert time.monotonic() - started < TTFT_TIMEOUT + 1.5
    assert text_of(events) == "backup answers"
    assert events[-1].type == "response.completed"
    assert headers["x-orbyt-model"] == "backup/plain"


def test_zz_nothing_was_logged_as_an_error(gw: Gateway) -> None:
    """Faults are expected events: no ERROR line, no traceback."""
    bad = ('"level":"error"', '"level":"critical"', "Traceback", "never retrieved")
    assert [line for line in gw.all_logs().splitlines() if any(b in line for b in bad)] == []
