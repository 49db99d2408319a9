"""A Responses job's side of the worker: its renderer and its reply (job kind "responses").

The routing engine and the attempts serve a Responses job exactly as a chat job (its body
is the chat translation); only the bytes differ. `ResponsesRenderer` stands in for
`ChunkRenderer` (same observations: text for a prefill continuation, content started,
finish reason, usage) and renders the Responses events instead of chat chunks; its
`usage_chunk` is the closing events, sent with every answer. `ResponsesReply` keeps the
response's `EventStream` across attempts (a continuation goes on with the same items and
sequence numbers), renders a non-stream answer as a Response, and stores the final Response
(`store`, the default) before the DONE frame, so that a `previous_response_id` or a GET
right after the answer finds it on any API. `NativeRenderer` is the renderer of a native
OpenAI route (`worker.native`): OpenAI's own events, relabelled (`relabel`: Orbyt's id, the
public model id) and renumbered, the upstream's `response.completed` held back as the
closing event. It keeps no text, so a native stream cut after content is not continued.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbyt.shared.contract import ChatJob
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.openai.responses import ENDS, chat_usage
from orbyt.shared.responses import store
from orbyt.shared.responses.events import EventStream, event
from orbyt.shared.responses.output import ResponsesView, assistant_message, from_chat
from orbyt.shared.responses.request import output_as_input
from orbyt.worker.deployments import Route
from orbyt.worker.publisher import Publisher
from orbyt.worker.reply import ChunkRenderer, Reply

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
    __slots__ = ("_events", "_native", "_redis", "_ttl", "_view", "final", "job")

    def __init__(self, pub: Publisher, job: ChatJob, redis: Redis, ttl: float) -> None:
        view = job["responses"]
        super().__init__(pub, view["id"], view["created_at"])
        self.job = job
        self._view: ResponsesView = view
        self._redis = redis
        self._ttl = ttl
        self._events: EventStream | None = None
        self._native: NativeRenderer | None = None
        self.final: Json | None = None  # the Response, once rendered whole

    def renderer(self, model: str, continuation: bool) -> ResponsesRenderer:
        """A stream attempt's renderer: a fresh stream, or the one a continuation resumes."""
        if not continuation or self._events is None:
            self._events = EventStream(self._view, model)
        self._native = None
        return ResponsesRenderer(self._events, continuation)

    def native_renderer(self, model: str) -> NativeRenderer:
        """A native OpenAI stream attempt's renderer (`worker.native`)."""
        self._events = None
        self._native = NativeRenderer(self._view, model)
        return self._native

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
        if self._native is not None:
            return self._native.final
        return self._events.final if self._events is not None else None

    async def _keep(self) -> None:
        """Store the Response; a Redis failure costs the stored copy, not the answer."""
        response = self._final()
        if response is None:
            return
        skip = self._view["skip"]
        messages = [*self.job["body"]["messages"][skip:], assistant_message(response["output"])]
        view = self._view
        conversation = view["request"]["input"]
        items = [*conversation, *output_as_input(response["output"])]
        record = {
            "owner": self.job["key_id"],
            "response": response,
            "input": store.input_items(conversation[view["history"] :], view["id"]),
            "messages": messages,
            "items": items,
        }
        try:
            await store.save(self._redis, record, self._ttl)
        except (OSError, RedisError) as exc:
            log.warning("response %s not stored: %s", self._view["id"], type(exc).__name__)


LIFECYCLE = ("response.created", "response.in_progress", "response.queued")


def relabel(view: ResponsesView, model: str, response: Json) -> Json:
    """OpenAI's Response as Orbyt's: Orbyt's id, the public model id, Orbyt's state."""
    return {
        **response,
        "id": view["id"],
        "model": model,
        "store": view["store"],
        "previous_response_id": view["echo"]["previous_response_id"],
    }


class NativeRenderer(ChunkRenderer):
    """OpenAI's stream events in, Orbyt's out (same events, relabelled, renumbered)."""

    __slots__ = ("_model", "_seq", "_view", "final")
    closes = True

    def __init__(self, view: ResponsesView, model: str) -> None:
        super().__init__(view["id"], view["created_at"], model)
        self._view = view
        self._model = model
        self._seq = 0
        self.final: Json | None = None

    def render(self, chunk: Json) -> bytes:
        kind = str(chunk.pop("type"))
        chunk.pop("sequence_number", None)
        if kind in ENDS:  # held back: `usage_chunk` sends it, after the answer is stored
            self.final = relabel(self._view, self._model, chunk.get("response") or {})
            self.usage = chat_usage(self.final.get("usage"))
            self.finish_reason = "length" if kind == "response.incomplete" else "stop"
            self.content_started = True
            return b""
        if kind in LIFECYCLE and isinstance(chunk.get("response"), dict):
            chunk["response"] = relabel(self._view, self._model, chunk["response"])
        else:
            self.content_started = True
        if kind == "response.output_item.added" and (chunk.get("item") or {}).get("type") not in (
            "message",
            "reasoning",
        ):
            self._tool_calls = True
        out = event(kind, self._seq, chunk)
        self._seq += 1
        return out

    def usage_chunk(self, usage: Json | None = None, orbyt: Json | None = None) -> bytes:
        final = self.final or {}
        kind = (
            "response.incomplete" if final.get("status") == "incomplete" else "response.completed"
        )
        out = event(kind, self._seq, {"response": final})
        self._seq += 1
        return out
