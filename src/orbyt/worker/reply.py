"""The caller's side of one job: what has been sent, and the bytes that send it.

`Reply` is the single owner of a job's state across its attempts (attempt count, whether
content has reached the caller, the text sent so far for a prefill continuation, the time
to first token, the bills of attempts cut after content); the engine and the attempts
change it only through its methods. `ChunkRenderer` stamps id/object/created/model on an
adapter's normalised chunks and renders the SSE bytes the OpenAI SDK reads (hot path:
orjson only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from orbyt.shared.contract import ErrorMeta, RouteMeta
from orbyt.shared.errors import OrbytError
from orbyt.shared.providers.base import Json
from orbyt.worker.billing import Billed, total_usage
from orbyt.worker.deployments import Route
from orbyt.worker.publisher import Publisher


class Reply:
    __slots__ = (
        "_attempts",
        "_bills",
        "completion_id",
        "created",
        "pub",
        "sent",
        "text",
        "tool_calls_sent",
        "ttft_ms",
    )

    def __init__(self, pub: Publisher, completion_id: str, created: int) -> None:
        self.pub = pub
        self.completion_id = completion_id
        self.created = created
        self._attempts = 0
        self.sent = False  # content has reached the caller
        self.text: list[str] = []  # plain text sent so far
        self.tool_calls_sent = False
        self.ttft_ms: float | None = None  # of the last successful attempt (stream only)
        self._bills: list[Billed] = []  # attempts cut after content, then the final one

    @property
    def attempts(self) -> int:
        return self._attempts

    def count_attempt(self) -> None:
        self._attempts += 1

    @property
    def continued(self) -> bool:
        """An attempt was cut after content: the answer came from more than one route."""
        return bool(self._bills)

    def cut(self, bill: Billed | None) -> None:
        """Record the bill of an attempt cut after content reached the caller (None: it
        sent nothing and reported nothing)."""
        if bill is not None:
            self._bills.append(bill)

    def settle(self, route: Route, usage: Json | None) -> Json | None:
        """The usage the caller gets: the answering attempt's own, plus every cut
        attempt's before it."""
        if not self._bills:
            return usage
        if usage:
            self._bills.append(Billed(route.cand["model"], route.cand["key_source"], usage))
        return total_usage(self._bills)

    def trailer(self, route: Route) -> Json:
        """The final route, for the last chunk (stream headers name the first one)."""
        out: Json = {
            "model": route.cand["model"],
            "provider": route.cand["provider"],
            "attempts": self._attempts,
            "key_source": route.cand["key_source"],
        }
        if self._bills:
            out["usage_by_model"] = [bill.entry() for bill in self._bills]
        return out

    def meta(self, route: Route, usage: dict[str, Any] | None = None) -> RouteMeta:
        out = RouteMeta(
            model=route.cand["model"],
            provider=route.cand["provider"],
            attempts=self._attempts,
            key_source=route.cand["key_source"],
        )
        if usage is not None:
            out["usage"] = usage
            if self._bills:  # each model's share, for the usage records
                out["usage"] = {**usage, "by_model": [bill.entry() for bill in self._bills]}
        return out

    def took(self, text: list[str], tool_calls: bool) -> None:
        """Record what an attempt has rendered (sent now or held back until content)."""
        self.text.extend(text)
        self.tool_calls_sent = self.tool_calls_sent or tool_calls

    async def first(self, payload: bytes, route: Route, ttft_ms: float) -> None:
        """The first content: it carries the route's meta, and the caller now has content."""
        self.sent = True
        self.ttft_ms = ttft_ms
        await self.pub.delta(payload, self.meta(route))

    async def delta(self, payload: bytes) -> None:
        await self.pub.delta(payload)

    async def done(self, route: Route, usage: dict[str, Any] | None, payload: bytes) -> None:
        await self.pub.done(self.meta(route, usage), payload)

    async def fail(self, err: OrbytError) -> None:
        """End with `err`; the usage of attempts cut after content is still recorded."""
        usage = None
        if self._bills:
            usage = {**total_usage(self._bills), "by_model": [b.entry() for b in self._bills]}
        await send_error(self.pub, err, self._attempts, usage)


async def send_error(
    pub: Publisher, err: OrbytError, attempts: int, usage: Json | None = None
) -> None:
    meta = ErrorMeta(status=err.status, headers=err.response_headers(), attempts=attempts)
    if usage is not None:
        meta["usage"] = usage
    await pub.error(meta, orjson.dumps(err.body()))


class ChunkRenderer:
    """Stamps id/object/created/model on adapter chunks and renders SSE bytes."""

    __slots__ = (
        "_continuation",
        "_include_usage",
        "_prefix",
        "_tool_calls",
        "content_started",
        "finish_reason",
        "text",
        "usage",
    )
    closes: ClassVar[bool] = False  # its `usage_chunk` ends every answer (not only on request)

    def __init__(
        self,
        completion_id: str,
        created: int,
        model: str,
        continuation: bool = False,
        include_usage: bool = False,
    ) -> None:
        """`include_usage`: the caller asked for `stream_options.include_usage`, so every
        chunk carries `"usage": null` as OpenAI's do (the usage chunk then has the numbers)."""
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b","
        self.usage: Json | None = None
        self.content_started = False
        self.finish_reason: str | None = None
        self.text: list[str] = []  # plain text sent so far (for prefill continuation)
        self._tool_calls = False
        self._continuation = continuation
        self._include_usage = include_usage

    def render(self, chunk: Json) -> bytes:
        """SSE bytes for one adapter chunk ("" if it carries nothing for the caller)."""
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return b""
        if self._continuation:  # the caller already has the role delta of this answer
            choices = [c for c in map(_without_role, choices) if c is not None]
            if not choices:
                return b""
        for choice in choices:
            self._observe(choice)
        out: dict[str, Any] = {"choices": choices}
        if "system_fingerprint" in chunk:
            out["system_fingerprint"] = chunk["system_fingerprint"]
        if self._include_usage:
            out["usage"] = None
        return self._prefix + orjson.dumps(out)[1:] + b"\n\n"

    def _observe(self, choice: Json) -> None:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            self.content_started = True
            self.text.append(content)
        if delta.get("tool_calls"):
            self.content_started = True
            self._tool_calls = True
        if delta.get("reasoning_content"):
            self.content_started = True
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            self.content_started = True

    def take_text(self) -> list[str]:
        text, self.text = self.text, []
        return text

    @property
    def plain_text_only(self) -> bool:
        return not self._tool_calls

    def usage_chunk(self, usage: Json | None = None, orbyt: Json | None = None) -> bytes:
        """The last chunk: `usage` (default: the upstream's) if the caller asked for it, and
        Orbyt's `orbyt` object naming the final route (the SDKs keep unknown fields)."""
        out: dict[str, Any] = {"choices": []}
        if self._include_usage or orbyt is None:
            out["usage"] = self.usage if usage is None else usage
        if orbyt is not None:
            out["orbyt"] = orbyt
        return self._prefix + orjson.dumps(out)[1:] + b"\n\n"


def _without_role(choice: Json) -> Json | None:
    delta = choice.get("delta")
    if not isinstance(delta, dict) or "role" not in delta:
        return choice
    delta = {k: v for k, v in delta.items() if k != "role"}
    if not any(v for v in delta.values()) and not choice.get("finish_reason"):
        return None
    return {**choice, "delta": delta}


def completion_body(completion_id: str, created: int, model: str, parsed: Json) -> bytes:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": parsed["choices"],
    }
    if parsed.get("usage"):
        body["usage"] = parsed["usage"]
    if parsed.get("system_fingerprint"):
        body["system_fingerprint"] = parsed["system_fingerprint"]
    return orjson.dumps(body)
