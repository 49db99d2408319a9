"""Anthropic adapter: the official SDK reads the same transcripts the same way."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orbyt.shared.providers.anthropic import ADAPTER
from tests.unit.shared.providers.anthropic.helpers import (
    KEY,
    accumulate,
    read,
    run_stream,
    target,
)


class TestTranscriptsMatchTheSDK:
    @staticmethod
    def client(raw: bytes, content_type: str) -> Any:
        anthropic = pytest.importorskip("anthropic")
        httpx2 = pytest.importorskip("httpx2")  # the HTTP client of anthropic >= 2

        def reply(request: Any) -> Any:
            return httpx2.Response(200, content=raw, headers={"content-type": content_type})

        http = httpx2.Client(transport=httpx2.MockTransport(reply))
        return anthropic.Anthropic(
            api_key=KEY, base_url="http://fake", http_client=http, max_retries=0
        )

    @pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_use.sse"])
    def test_streams(self, name: str) -> None:
        client = self.client(read(name), "text/event-stream")
        with client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        ours = accumulate(run_stream(name)[0])
        assert ours["content"] == "".join(b.text for b in final.content if b.type == "text")
        assert ours["reasoning"] == "".join(
            b.thinking for b in final.content if b.type == "thinking"
        )
        tools = [b for b in final.content if b.type == "tool_use"]
        assert [
            (c["id"], c["name"], orjson.loads(c["arguments"])) for c in ours["tool_calls"].values()
        ] == [(b.id, b.name, b.input) for b in tools]
        assert ours["usage"]["completion_tokens"] == final.usage.output_tokens

    @pytest.mark.parametrize("name", ["message_text.json", "message_tool_use.json"])
    def test_messages(self, name: str) -> None:
        client = self.client(read(name), "application/json")
        msg = client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
        ours = ADAPTER.parse_response(read(name), target())["choices"][0]["message"]
        text = "".join(b.text for b in msg.content if b.type == "text")
        assert ours["content"] == text
        assert [orjson.loads(c["function"]["arguments"]) for c in ours.get("tool_calls", [])] == [
            b.input for b in msg.content if b.type == "tool_use"
        ]

    def test_error_events_are_errors_to_the_sdk_too(self) -> None:
        anthropic = pytest.importorskip("anthropic")
        client = self.client(read("stream_overloaded.sse"), "text/event-stream")
        with pytest.raises(anthropic.APIStatusError):
            for _ in client.messages.create(
                model="m", max_tokens=10, stream=True, messages=[{"role": "user", "content": "Hi"}]
            ):
                pass
