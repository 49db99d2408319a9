"""A Responses job's side of the worker: its renderer and its reply (job kind "responses").

The routing engine and the attempts serve a Responses job exactly as a chat job (its body
is the chat translation); only the bytes differ. `ResponsesRenderer` stands in for
`ChunkRenderer` (same observations: text for a prefill continuation, content started,
finish reason, usage) and renders the Responses events instead of chat chunks; its
`usage_chunk` is the closing events, sent with every answer. `ResponsesReply` keeps the
response's `EventStream` across attempts (a continuation goes on with the same items and
sequence numbers), renders a non-stream answer as a Response, and stores the final Response
(`store`, the default) before the DONE frame, so that a `previous_response_id` or a GET
right after the answer finds it on any API.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbyt.shared.contract import ChatJob
from orbyt.shared.providers.base import Json
from orbyt.shared.responses import store
from orbyt.shared.responses.events import EventStream
from orbyt.shared.responses.output import ResponsesView, assistant_message, from_chat
from orbyt.worker.deployments import Route
from orbyt.worker.publisher import Publisher
from orbyt.worker.render import ChunkRenderer
from orbyt.worker.reply import Reply

log = logging.getLogger("orbyt.worker")


class ResponsesRenderer(ChunkRenderer):
    """Chat chunks in, Responses events out (`choices[0]`: a Responses job has n = 1)."""

    __slots__ = ("events",)
    closes = True

    def __init__(self, events: EventStream, continuation: bool) -> None:
        view = events.view
        super().__init__(view["id"], view["created_at"], events.model, continuation)
        self.events = events

    def render(self, chunk: Json) -> bytes:
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return b""
        choice = choices[0]
        self._observe(choice)
        return self.events.feed(choice)

    def usage_chunk(self, usage: Json | None = None, orbyt: Json | None = None) -> bytes:
        """The closing events, ending with `response.completed` (or `.incomplete`)."""
        tail, _ = self.events.close(self.finish_reason, self.usage if usage is None else usage)
        return tail


class ResponsesReply(Reply):
    __slots__ = ("_events", "_redis", "_ttl", "_view", "final", "job")

    def __init__(self, pub: Publisher, job: ChatJob, redis: Redis, ttl: float) -> None:
        view = job["responses"]
        super().__init__(pub, view["id"], view["created_at"])
        self.job = job
        self._view: ResponsesView = view
        self._redis = redis
        self._ttl = ttl
        self._events: EventStream | None = None
        self.final: Json | None = None  # the Response, once rendered whole

    def renderer(self, model: str, continuation: bool) -> ResponsesRenderer:
        """A stream attempt's renderer: a fresh stream, or the one a continuation resumes."""
        if not continuation or self._events is None:
            self._events = EventStream(self._view, model)
        return ResponsesRenderer(self._events, continuation)

    def whole(self, model: str, parsed: Json) -> bytes:
        """A non-stream answer as the Response object's JSON."""
        self.final = from_chat(self._view, model, parsed)
        return orjson.dumps(self.final)

    async def done(self, route: Route, usage: dict[str, Any] | None, payload: bytes) -> None:
        if self._view["store"]:
            await self._keep()
        await super().done(route, usage, payload)

    def _final(self) -> Json | None:
        if self.final is not None:
            return self.final
        return self._events.final if self._events is not None else None

    async def _keep(self) -> None:
        """Store the Response; a Redis failure costs the stored copy, not the answer."""
        response = self._final()
        if response is None:
            return
        skip = self._view["skip"]
        messages = [*self.job["body"]["messages"][skip:], assistant_message(response["output"])]
        record = {
            "owner": self.job["key_id"],
            "response": response,
            "input": self._view["input"],
            "messages": messages,
        }
        try:
            await store.save(self._redis, record, self._ttl)
        except (OSError, RedisError) as exc:
            log.warning("response %s not stored: %s", self._view["id"], type(exc).__name__)
