"""Shared pieces of the routing fault-injection suite (test_routing_faults*.py).

Each suite module starts its own gateway (module scope) against these fakes:

    openai    -> TailOpenAI  "primary"   one pool key  (sk-primary)
    backup    -> FakeOpenAI  "backup"    one pool key  (sk-backup), adapter openai
    pooled    -> the primary FakeOpenAI, two pool keys (sk-pool-a, sk-pool-b), adapter openai
    anthropic -> FakeAnthropic           one pool key
    google    -> FakeGemini              one pool key

Every timeout is small (env), so a fault is detected in about a second. The catalog is
`faults_catalog.json` (backup models with chosen prices, context windows, prefill).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import redis
from aiohttp import web

from tests.fakes import (
    Call,
    FakeAnthropic,
    FakeGemini,
    FakeOpenAI,
    FakeServer,
    Recorded,
    Reply,
)
from tests.gateway import GATEWAY_KEY, Gateway

CATALOG = Path(__file__).with_name("faults_catalog.json")
MSG: list[Any] = [{"role": "user", "content": "Say hi"}]

TTFT_TIMEOUT = 1.0
STALL_TIMEOUT = 1.0
NONSTREAM_TIMEOUT = 1.5
BREAKER_COOLDOWN = 2.0
HEARTBEAT_TIMEOUT = 3.0

TIMEOUTS = {
    "ORBYT_TTFT_TIMEOUT": str(TTFT_TIMEOUT),
    "ORBYT_STALL_TIMEOUT": str(STALL_TIMEOUT),
    "ORBYT_NONSTREAM_TIMEOUT": str(NONSTREAM_TIMEOUT),
    "ORBYT_CONNECT_TIMEOUT": "1",
    "ORBYT_BREAKER_FAILURES": "3",
    "ORBYT_BREAKER_COOLDOWN": str(BREAKER_COOLDOWN),
    "ORBYT_HEARTBEAT_INTERVAL": "0.5",
    "ORBYT_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    "ORBYT_PICKUP_TIMEOUT": "2",
    "ORBYT_CATALOG_PATH": str(CATALOG),
}


def tokens(start: int, stop: int) -> str:
    """The text of FakeServer's numbered tokens start..stop-1 ("tok0 tok1 ...")."""
    return "".join(f"tok{i}" if i == 0 else f" tok{i}" for i in range(start, stop))


class TailOpenAI(FakeOpenAI):
    """FakeOpenAI with a configurable end of stream: after the last event it stays silent
    with the connection open for `linger` seconds, then, with `drop`, drops the connection
    instead of ending the body. With `no_terminator` the finish reason and usage have
    arrived but neither `[DONE]` nor a clean end of the body."""

    linger: float = 0.0
    drop: bool = False

    async def _stream(self, call: Call, reply: Reply) -> web.StreamResponse:
        resp = await super()._stream(call, reply)
        if self.linger:
            await asyncio.sleep(self.linger)
        if self.drop:
            self._drop(call.request, hard=False)
        return resp


@dataclass
class Fakes:
    primary: TailOpenAI = field(default_factory=TailOpenAI)
    backup: FakeOpenAI = field(default_factory=FakeOpenAI)
    anthropic: FakeAnthropic = field(default_factory=FakeAnthropic)
    gemini: FakeGemini = field(default_factory=FakeGemini)

    @property
    def all(self) -> list[FakeServer]:
        return [self.primary, self.backup, self.anthropic, self.gemini]

    def reset(self) -> None:
        for fake in self.all:
            fake.reset()
            fake.default = Reply()
        self.primary.linger, self.primary.drop = 0.0, False

    def env(self) -> dict[str, str]:
        return {
            **TIMEOUTS,
            "ORBYT_PROVIDERS__OPENAI__BASE_URL": self.primary.base_url,
            "ORBYT_PROVIDERS__OPENAI__KEYS": "sk-primary",
            "ORBYT_PROVIDERS__BACKUP__ADAPTER": "openai",
            "ORBYT_PROVIDERS__BACKUP__BASE_URL": self.backup.base_url,
            "ORBYT_PROVIDERS__BACKUP__KEYS": "sk-backup",
            "ORBYT_PROVIDERS__POOLED__ADAPTER": "openai",
            "ORBYT_PROVIDERS__POOLED__BASE_URL": self.primary.base_url,
            "ORBYT_PROVIDERS__POOLED__KEYS": "sk-pool-a,sk-pool-b",
            "ORBYT_PROVIDERS__ANTHROPIC__BASE_URL": self.anthropic.base_url,
            "ORBYT_PROVIDERS__ANTHROPIC__KEYS": "sk-ant-api03-fake",
            "ORBYT_PROVIDERS__GOOGLE__BASE_URL": self.gemini.base_url,
            "ORBYT_PROVIDERS__GOOGLE__KEYS": "AIzaFakeKeyForTests",
        }


@contextmanager
def running_fakes() -> Iterator[Fakes]:
    fakes = Fakes()
    for fake in fakes.all:
        fake.start()
    try:
        yield fakes
    finally:
        for fake in fakes.all:
            fake.stop()


def forget_health(gw: Gateway) -> None:
    """Drop breakers, route statistics and pool-key state, so tests do not leak into
    each other through the shared Redis health keys."""
    r = redis.Redis.from_url(gw.redis_url)
    try:
        for pattern in ("orbyt:cb:*", "orbyt:stats:*", "orbyt:poolkey:*", "orbyt:rr:*"):
            keys = list(r.scan_iter(pattern))
            if keys:
                r.delete(*keys)
    finally:
        r.close()


def client(gw: Gateway, timeout: float = 20) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=timeout)


def extra(**fields: Any) -> dict[str, Any]:
    """`extra_body` carrying Orbyt's `extra` object."""
    return {"extra": fields}


@dataclass
class Streamed:
    """What a caller saw while iterating a stream."""

    text: str = ""
    finishes: list[str] = field(default_factory=list)
    usage: Any = None
    models: set[str] = field(default_factory=set)
    error: openai.APIError | None = None
    chunks: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def read_stream(stream: Any, out: Streamed | None = None) -> Streamed:
    """Iterate an SDK stream to its end, keeping an APIError raised mid-iteration."""
    seen = out or Streamed()
    parts: list[str] = []
    try:
        for chunk in stream:
            seen.chunks += 1
            seen.models.add(chunk.model)
            if chunk.usage is not None:
                seen.usage = chunk.usage
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                if choice.finish_reason:
                    seen.finishes.append(choice.finish_reason)
    except openai.APIError as exc:
        seen.error = exc
    seen.text = "".join(parts)
    return seen


def stream_chat(gw: Gateway, model: str, **kwargs: Any) -> Streamed:
    """Stream one request; the HTTP status error of a stream that failed before its first
    content token propagates (it is a real HTTP error, not an in-band one)."""
    seen = Streamed()
    with client(gw).chat.completions.with_streaming_response.create(
        model=model, messages=MSG, stream=True, **kwargs
    ) as resp:
        seen.headers = dict(resp.headers)
        return read_stream(resp.parse(), seen)


def gaps(requests: list[Recorded]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(requests)]


def models_seen(*fakes: FakeServer) -> list[str]:
    """The upstream model of every request the fakes received, in arrival order."""
    recs = sorted((r for f in fakes for r in f.requests), key=lambda r: r.at)
    return [str(r.json["model"]) if isinstance(r.json, dict) else r.path for r in recs]


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
