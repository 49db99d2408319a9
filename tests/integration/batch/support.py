"""Helpers of the batch suite: a fake OpenAI whose behaviour depends on the line's text,
JSONL inputs, polling, and reading the output and error files back."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
from aiohttp import web

from tests.fakes import Error, FakeOpenAI, Reply
from tests.fakes.wire import Call
from tests.gateway import GATEWAY_KEY

MODEL = "openai/gpt-5-mini"


class MarkerOpenAI(FakeOpenAI):
    """Answers by a marker in the last user message: FAIL -> 400 (final), DOWN -> 503 (fails
    over), LIMIT<n> -> 429 with Retry-After for the first n calls of that text, SLOW -> 0.3 s.
    Anything else: the scripted/default behaviour."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limited: dict[str, int] = {}

    async def respond(self, call: Call) -> web.StreamResponse:
        text = str(call.body["messages"][-1]["content"])
        if "FAIL" in text:
            return self.error_response(call.request, Error(400, message="bad line"))
        if "DOWN" in text and call.body.get("model") == "gpt-5-mini":
            return self.error_response(call.request, Error(503))
        if "LIMIT" in text:
            seen = self.limited.get(text, 0)
            self.limited[text] = seen + 1
            if seen < int(text.split("LIMIT")[1].split()[0]):
                return self.error_response(call.request, Error(429, retry_after=1))
        if "SLOW" in text:
            return await self._body(call, Reply(text="slow", ttft=0.3))
        return await super().respond(call)


def client(gw_url: str, key: str = GATEWAY_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw_url, max_retries=0, timeout=30)


def line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": text}], **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def upload(c: openai.OpenAI, lines: list[dict[str, Any]] | bytes) -> str:
    data = lines if isinstance(lines, bytes) else jsonl(lines)
    return c.files.create(file=("input.jsonl", data), purpose="batch").id


def submit(c: openai.OpenAI, lines: list[dict[str, Any]] | bytes, **kw: Any) -> Any:
    fid = upload(c, lines)
    return c.batches.create(
        input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h", **kw
    )


def wait(
    c: openai.OpenAI, batch_id: str, timeout: float = 60.0, until: tuple[str, ...] = ()
) -> Any:
    done = until or ("completed", "failed", "expired", "cancelled")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        batch = c.batches.retrieve(batch_id)
        if batch.status in done:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout}s")


def read_lines(c: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = c.files.content(file_id).text
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def results(c: openai.OpenAI, batch: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return read_lines(c, batch.output_file_id), read_lines(c, batch.error_file_id)
