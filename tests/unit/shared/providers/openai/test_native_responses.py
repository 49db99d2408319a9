"""OpenAI's own Responses API as the native route: request, Response and stream checks,
usage in the chat shape, and the conversation as input items."""

from __future__ import annotations

import orjson
import pytest

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.base import StreamState, Target
from orbyt.shared.providers.openai.responses import (
    chat_usage,
    native_request,
    parse_native,
    parse_native_event,
)
from orbyt.shared.responses.request import native_body, output_as_input
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEEvent

TARGET = Target("openai", "openai/gpt-5-mini", "gpt-5-mini", "https://x.test/v1", Secret("sk-a"))


def test_the_request_keeps_the_callers_fields_and_no_state_upstream() -> None:
    body = {
        "model": "openai/gpt-5-mini",
        "input": "Hi",
        "tools": [{"type": "web_search"}],
        "previous_response_id": "resp_1",
        "store": True,
        "metadata": {"k": "v"},
        "stream": True,
    }
    history = [
        {"id": "msg_1", "type": "message", "status": "completed", "role": "user",
         "content": [{"type": "input_text", "text": "Before"}]},
    ]  # fmt: skip
    req = native_request(native_body(body, history), TARGET)
    assert req.url == "https://x.test/v1/responses" and req.stream
    assert req.headers["authorization"] == "Bearer sk-a"
    assert orjson.loads(req.body) == {
        "model": "gpt-5-mini",
        "input": [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "Before"}]},
            {"role": "user", "content": "Hi"},
        ],
        "tools": [{"type": "web_search"}],
        "metadata": {"k": "v"},
        "stream": True,
        "store": False,
    }  # fmt: skip


def test_output_continues_as_input_without_reasoning() -> None:
    output = [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hi", "annotations": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "c1",
         "name": "f", "arguments": "{}"},
    ]  # fmt: skip
    assert output_as_input(output) == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    ]


def test_a_failed_or_shapeless_response_is_an_upstream_error() -> None:
    ok = {"id": "resp_x", "status": "completed", "output": []}
    assert parse_native(orjson.dumps(ok)) == ok
    with pytest.raises(UpstreamError) as info:
        parse_native(b'{"status": "failed", "output": [], "error": {"code": "server_error"}}')
    assert info.value.status == 503 and info.value.disposition is Disposition.RETRY
    with pytest.raises(UpstreamError) as info:
        parse_native(b"not json")
    assert info.value.status == 502


def test_stream_events() -> None:
    state = StreamState()
    delta = {"type": "response.output_text.delta", "delta": "Hi", "sequence_number": 4}
    assert parse_native_event(SSEEvent(None, orjson.dumps(delta).decode()), state) == [delta]
    assert parse_native_event(SSEEvent(None, "{oops"), state) == [] and state.malformed == 1
    done = {"type": "response.completed", "response": {}}
    parse_native_event(SSEEvent(None, orjson.dumps(done).decode()), state)
    assert state.done
    for failed in (
        {"type": "error", "code": "invalid_prompt", "message": "no"},
        {"type": "response.failed", "response": {"error": {"code": "invalid_prompt"}}},
    ):
        with pytest.raises(UpstreamError) as info:
            parse_native_event(SSEEvent(None, orjson.dumps(failed).decode()), StreamState())
        assert info.value.status == 400 and info.value.disposition is Disposition.FINAL


def test_usage_in_the_chat_shape() -> None:
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }
    assert chat_usage(usage) == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert chat_usage(None) is None
