"""Behaviour engine, faults, recording and provider quirks, checked on the raw wire."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from . import (
    DEFAULT_TEXT,
    Error,
    FakeAnthropic,
    FakeDeepSeek,
    FakeGemini,
    FakeOpenAI,
    Hang,
    Reply,
    Reset,
    Timing,
)

pytestmark = pytest.mark.timeout(10)

AUTH = {"Authorization": "Bearer sk-test"}
CHAT = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True}
ANT_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
ANT_BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture
def oai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def post(fake: FakeOpenAI, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/chat/completions", json=body, headers=AUTH, **kwargs)


def sse_payloads(raw: str) -> list[str]:
    return [line[6:] for line in raw.splitlines() if line.startswith("data: ")]


def test_script_fifo_default_and_recording(oai: FakeOpenAI) -> None:
    oai.script(Reply(text="one"), Error(500))
    assert oai.pending == 2
    assert post(oai, CHAT).json()["choices"][0]["message"]["content"] == "one"
    failed = post(oai, CHAT)
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert post(oai, CHAT).json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    recs = oai.requests
    assert [r.path for r in recs] == ["/v1/chat/completions"] * 3
    assert recs[0].headers["authorization"] == "Bearer sk-test" and recs[0].json == CHAT
    assert recs[0].at < recs[1].at < recs[2].at and recs[0].query == {}
    oai.reset()
    assert oai.requests == [] and oai.disconnects == []
    with pytest.raises(ValueError, match="no error kind"):
        oai.script(Error(400, kind="nope"))


def test_reset_hard_and_soft(oai: FakeOpenAI) -> None:
    oai.script(Reset(), Reset(hard=False))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(oai, CHAT)
    with pytest.raises(httpx.RemoteProtocolError):
        post(oai, CHAT)
    assert oai.disconnects == []  # the server closed, not the client


def test_hang_until_client_gives_up(oai: FakeOpenAI) -> None:
    oai.script(Hang())
    with pytest.raises(httpx.ReadTimeout):
        post(oai, CHAT, timeout=0.3)
    gave_up = time.monotonic()
    assert oai.wait_for_disconnects(1, timeout=1.0)
    assert oai.disconnects[0] - gave_up < 1.0


def test_stop_does_not_wait_for_hanging_requests() -> None:
    fake = FakeOpenAI().start()
    fake.script(Hang())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(fake, CHAT, timeout=5)
        except httpx.HTTPError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert fake.wait_for_requests(1)
    started = time.monotonic()
    fake.stop()
    worker.join(5)
    assert time.monotonic() - started < 1.5 and errors and fake.disconnects == []
    fake.start()  # restartable, on the same port
    assert post(fake, CHAT).status_code == 200
    fake.stop()


def test_client_disconnect_mid_stream_is_recorded(oai: FakeOpenAI) -> None:
    oai.script(Reply(tokens=10, stall_after=2, stall=5))
    with httpx.stream("POST", f"{oai.base_url}/chat/completions", json=STREAM, headers=AUTH) as res:
        seen = 0
        for line in res.iter_lines():
            seen += '"content":"tok0"' in line or '"content":" tok1"' in line
            if seen == 2:
                break  # leave the stream during the stall
    closed = time.monotonic()
    assert oai.wait_for_disconnects(1, timeout=1.0)
    assert oai.disconnects[0] - closed < 1.0


def test_timing_ttft_and_per_token(oai: FakeOpenAI) -> None:
    oai.script(Reply(tokens=3, ttft=0.3, per_token=0.1), Timing(headers_delay=0.2))
    started = time.monotonic()
    arrivals: list[float] = []
    with httpx.stream("POST", f"{oai.base_url}/chat/completions", json=STREAM, headers=AUTH) as res:
        headers_at = time.monotonic() - started
        for line in res.iter_lines():
            if '"content":"tok' in line or '"content":" tok' in line:
                arrivals.append(time.monotonic() - started)
    assert headers_at < 0.25 and arrivals[0] >= 0.3
    assert arrivals[2] - arrivals[0] >= 0.18
    started = time.monotonic()
    post(oai, CHAT)
    assert time.monotonic() - started >= 0.2


def test_cut_after_stream_and_body(oai: FakeOpenAI) -> None:
    oai.script(Reply(tokens=5, cut_after=2), Reply(cut_after=0))
    got: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{oai.base_url}/chat/completions", json=STREAM, headers=AUTH) as res,
    ):
        got.extend(line for line in res.iter_lines() if line.startswith("data: "))
    assert len(got) == 3 and "tok1" in got[-1]  # role chunk + 2 tokens, no finish, no [DONE]
    with pytest.raises(httpx.RemoteProtocolError):
        post(oai, CHAT)


def test_malformed_no_terminator_and_midstream_error(oai: FakeOpenAI) -> None:
    oai.script(
        Reply(tokens=3, malformed_at=1),
        Reply(tokens=2, no_terminator=True),
        Reply(tokens=3, midstream_error=1),
        Reply(malformed_at=0),
    )
    payloads = sse_payloads(post(oai, STREAM).text)
    bad = [p for p in payloads if p != "[DONE]" and not p.endswith("}")]
    assert len(bad) == 1 and payloads[-1] == "[DONE]" and len(payloads) == 1 + 1 + 3 + 1 + 1
    payloads = sse_payloads(post(oai, STREAM).text)
    assert (
        payloads[-1] != "[DONE]"
        and json.loads(payloads[-1])["choices"][0]["finish_reason"] == "stop"
    )
    payloads = sse_payloads(post(oai, STREAM).text)
    assert json.loads(payloads[-1])["error"]["type"] == "server_error" and len(payloads) == 3
    with pytest.raises(json.JSONDecodeError):
        post(oai, CHAT).json()


def test_stall_non_stream_body(oai: FakeOpenAI) -> None:
    oai.script(Reply(stall_after=0, stall=0.3))
    started = time.monotonic()
    with httpx.stream("POST", f"{oai.base_url}/chat/completions", json=CHAT, headers=AUTH) as res:
        headers_at = time.monotonic() - started
        body = res.read()
    assert headers_at < 0.2 and time.monotonic() - started >= 0.3
    assert json.loads(body)["object"] == "chat.completion"


def test_openai_http_surface(oai: FakeOpenAI) -> None:
    res = httpx.post(f"{oai.url}/v1/completions", json={}, headers=AUTH)
    assert (
        res.status_code == 404
        and res.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"
    )
    res = post(oai, {"messages": CHAT["messages"]})
    assert res.status_code == 400 and "model parameter" in res.json()["error"]["message"]
    res = post(oai, {**CHAT, "stream_options": {"include_usage": True}})
    assert res.status_code == 400 and res.json()["error"]["param"] == "stream_options"
    assert post(oai, {**CHAT, "stream_options": None}).status_code == 200  # null == absent
    chunk = json.loads(sse_payloads(post(oai, STREAM).text)[1])
    assert "usage" not in chunk and chunk["obfuscation"]
    assert post(oai, CHAT).headers["x-request-id"].startswith("req_")


def test_deepseek_keepalives() -> None:
    with FakeDeepSeek() as fake:
        fake.keepalive_interval = 0.1
        fake.script(Reply(tokens=2, ttft=0.35), Reply(ttft=0.25))
        res = httpx.post(
            f"{fake.base_url}/chat/completions",
            json={**STREAM, "model": "deepseek-v4-flash"},
            headers=AUTH,
        )
        assert res.text.startswith(": keep-alive\n\n") and res.text.count(": keep-alive") >= 3
        payloads = sse_payloads(res.text)
        assert json.loads(payloads[0])["choices"][0]["delta"]["reasoning_content"] == ""
        assert payloads[-1] == "[DONE]"
        res = httpx.post(
            f"{fake.url}/v1/chat/completions",
            json={**CHAT, "model": "deepseek-v4-flash"},
            headers=AUTH,
        )
        assert (
            res.text.startswith("\n\n")
            and res.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
        )


def test_gemini_wire_details() -> None:
    with FakeGemini(keys={"AQ.good"}) as fake:
        url = f"{fake.url}/v1beta/models/gemini-2.5-flash"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        assert httpx.post(f"{url}:generateContent", json=body).json()["error"]["code"] == 403
        ok = httpx.post(f"{url}:generateContent?key=AQ.good", json=body)
        assert ok.json()["candidates"][0]["content"]["parts"][0]["text"] == DEFAULT_TEXT
        fake.script(Reply(tokens=2))
        res = httpx.post(
            f"{url}:streamGenerateContent?alt=sse", json=body, headers={"x-goog-api-key": "AQ.good"}
        )
        assert res.text.endswith("\r\n\r\n") and "[DONE]" not in res.text
        chunks = [json.loads(p) for p in sse_payloads(res.text)]
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert "candidatesTokenCount" not in chunks[0]["usageMetadata"]
        fake.script(Reply(tokens=2))
        res = httpx.post(
            f"{url}:streamGenerateContent", json=body, headers={"x-goog-api-key": "AQ.good"}
        )
        array = res.json()  # without alt=sse: one JSON array
        assert len(array) == 3 and array[-1]["usageMetadata"]["totalTokenCount"] > 0
        bad = httpx.post(f"{url}:generateContent?key=AQ.good", json={"contents": []})
        assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_anthropic_wire_details() -> None:
    with FakeAnthropic() as fake:
        url = f"{fake.url}/v1/messages"
        res = httpx.post(
            url, json={k: v for k, v in ANT_BODY.items() if k != "max_tokens"}, headers=ANT_HEADERS
        )
        assert res.status_code == 400
        assert res.json()["error"] == {
            "type": "invalid_request_error",
            "message": "max_tokens: Field required",
        }
        assert res.json()["request_id"] == res.headers["request-id"]
        res = httpx.post(url, json=ANT_BODY, headers={"x-api-key": "k"})
        assert res.json()["error"]["message"] == "anthropic-version: header is required"
        res = httpx.post(url, json=ANT_BODY, headers={"anthropic-version": "2023-06-01"})
        assert res.status_code == 401 and res.json()["error"]["type"] == "authentication_error"
        orphan = [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}],
            }
        ]
        res = httpx.post(url, json={**ANT_BODY, "messages": orphan}, headers=ANT_HEADERS)
        assert (
            res.status_code == 400 and "unexpected `tool_use_id`" in res.json()["error"]["message"]
        )
        use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}
        for content, ok in (
            ([result, {"type": "text", "text": "thanks"}], True),
            ([{"type": "text", "text": "thanks"}, result], False),
        ):
            loop = [
                ANT_BODY["messages"][0],
                {"role": "assistant", "content": [use]},
                {"role": "user", "content": content},
            ]
            res = httpx.post(url, json={**ANT_BODY, "messages": loop}, headers=ANT_HEADERS)
            assert (res.status_code == 200) is ok, res.text
            assert ok or "tool_result blocks must come first" in res.json()["error"]["message"]
        fake.script(Reply(tokens=2, midstream_error=1), Reply(tokens=2, no_terminator=True))
        res = httpx.post(url, json={**ANT_BODY, "stream": True}, headers=ANT_HEADERS)
        assert res.text.rstrip().endswith(
            'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        )
        assert "event: error\n" in res.text
        res = httpx.post(url, json={**ANT_BODY, "stream": True}, headers=ANT_HEADERS)
        assert "event: message_delta" in res.text and "message_stop" not in res.text
        with FakeAnthropic(keys={"right"}) as strict:
            both = {
                "x-api-key": "wrong",
                "Authorization": "Bearer right",
                "anthropic-version": "2023-06-01",
            }
            assert (
                httpx.post(f"{strict.url}/v1/messages", json=ANT_BODY, headers=both).status_code
                == 401
            )


async def test_async_client_cancel_mid_stream() -> None:
    with FakeAnthropic() as fake:
        fake.script(Reply(tokens=50, per_token=0.05))
        body = {**ANT_BODY, "stream": True}
        async with (
            httpx.AsyncClient(base_url=fake.base_url) as client,
            client.stream("POST", "/v1/messages", json=body, headers=ANT_HEADERS) as res,
        ):
            async for line in res.aiter_lines():
                if "text_delta" in line:
                    break  # the client walks away after the first token
        left = time.monotonic()
        assert fake.wait_for_disconnects(1, timeout=1.0)
        assert fake.disconnects[0] - left < 1.0
