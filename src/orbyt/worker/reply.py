"""The caller's side of one job: what has been sent, and the frames that send it.

`Reply` is the single owner of a job's state across its attempts (attempt count, whether
content has reached the caller, the text sent so far for a prefill continuation, the time
to first token, the bills of attempts cut after content); the engine and the attempts
change it only through its methods.
"""

from __future__ import annotations

from typing import Any

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
