"""Concurrent chat streams against a gateway, each judged on its own: a complete answer, or
a clear error — never a hang past its deadline, never a truncated success."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.gateway import GATEWAY_KEY

MODEL = "openai/gpt-5-mini"


@dataclass
class Outcome:
    tag: str
    status: int = 0
    text: str = ""
    finishes: list[str] = field(default_factory=list)
    done: bool = False  # `data: [DONE]` arrived
    error: str | None = None  # an HTTP error body or an in-band error event
    seconds: float = 0.0
    hung: bool = False  # still running at its deadline

    @property
    def complete(self) -> bool:
        return self.status == 200 and self.done and self.finishes == ["stop"] and not self.error

    def verdict(self, expected: str) -> str:
        """ "ok", "error" (clear) or what is wrong with it."""
        if self.hung:
            return f"{self.tag}: hung past its deadline"
        if self.complete:
            return "ok" if self.text == expected else f"{self.tag}: [DONE] after a wrong answer"
        if self.done or self.finishes:
            return f"{self.tag}: truncated success (finish/[DONE] without a clean answer)"
        if self.error:
            return "error"
        return f"{self.tag}: ended with neither an answer nor an error (status {self.status})"


async def stream_one(
    client: httpx.AsyncClient, base_url: str, tag: str, deadline: float, stream: bool = True
) -> Outcome:
    out = Outcome(tag)
    started = time.monotonic()
    body = {"model": MODEL, "messages": [{"role": "user", "content": tag}], "stream": stream}
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(
                "POST", base_url + "/v1/chat/completions", json=body, headers=headers
            ) as resp:
                out.status = resp.status_code
                if resp.status_code != 200 or not stream:
                    _whole(out, await resp.aread())
                else:
                    await _events(out, resp)
    except TimeoutError:
        out.hung = True
    except httpx.HTTPError as exc:  # the connection broke: an error, visibly
        out.error = out.error or f"transport: {type(exc).__name__}"
    out.seconds = time.monotonic() - started
    return out


def _whole(out: Outcome, data: bytes) -> None:
    doc: Any = orjson.loads(data) if data else {}
    if out.status != 200:
        out.error = str(doc.get("error", {}).get("message") or out.status)
        return
    choice = doc["choices"][0]
    out.text = choice["message"]["content"] or ""
    out.finishes = [choice["finish_reason"]]
    out.done = True  # a whole 200 body is the non-stream form of [DONE]


async def _events(out: Outcome, resp: httpx.Response) -> None:
    parts: list[str] = []
    async for line in resp.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            out.done = True
            continue
        event = orjson.loads(data)
        if "error" in event:
            out.error = str(event["error"].get("message"))
            continue
        for choice in event.get("choices", []):
            parts.append(choice.get("delta", {}).get("content") or "")
            if choice.get("finish_reason"):
                out.finishes.append(choice["finish_reason"])
    out.text = "".join(parts)


async def run_streams(
    base_url: str, tags: list[str], deadline: float, stream: bool = True, stagger: float = 0.0
) -> list[Outcome]:
    limits = httpx.Limits(max_connections=len(tags) + 10)
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        tasks = []
        for tag in tags:
            tasks.append(asyncio.create_task(stream_one(client, base_url, tag, deadline, stream)))
            if stagger:
                await asyncio.sleep(stagger)
        return list(await asyncio.gather(*tasks))


def judge(outcomes: list[Outcome], expected: str) -> dict[str, int]:
    """Counts of "ok" and "error"; any other verdict fails the test with its reason."""
    verdicts = [o.verdict(expected) for o in outcomes]
    bad = [v for v in verdicts if v not in ("ok", "error")]
    assert not bad, bad[:5]
    return {"ok": verdicts.count("ok"), "error": verdicts.count("error")}


BAD_LOG = ('"level":"error"', '"level":"critical"', "Traceback", "never retrieved")


def log_errors(logs: str) -> list[str]:
    """Log lines that mean a bug (an expected Redis blip is INFO/WARNING)."""
    return [line[:300] for line in logs.splitlines() if any(b in line for b in BAD_LOG)]
