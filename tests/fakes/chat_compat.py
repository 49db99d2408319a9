"""Shared machinery of the OpenAI-shaped chat APIs (OpenAI, Mistral, DeepSeek)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from aiohttp import web

from .behaviours import Reply, Usage, estimate_tokens, fragments, tool_arguments
from .server import FakeServer
from .wire import Call, ErrorSpec, Frame, sse

_UNSET: Any = object()


class ChatCompletionsFake(FakeServer):
    """``POST {prefix}/chat/completions`` and ``GET {prefix}/models`` with Bearer auth.

    models: model ids listed by /models and accepted by chat (None: accept any model).
    """

    prefixes: tuple[str, ...] = ("/v1",)
    owned_by = "system"
    whole_tool_calls = False  # Mistral: a tool call arrives whole in one delta
    usage_on_finish_chunk = False  # Mistral: usage rides on the finish chunk
    listed_models: tuple[str, ...] = ()
    choice_extra: ClassVar[dict[str, Any]] = {"logprobs": None}  # extra keys of each choice
    finish_delta: ClassVar[dict[str, Any]] = {}  # the delta of the finish chunk
    serves_embeddings = False  # POST {prefix}/embeddings (tests/fakes/embeddings.py)

    def __init__(self, *, models: Iterable[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models: list[str] | None = list(models) if models is not None else None

    def add_routes(self, app: web.Application) -> None:
        for prefix in self.prefixes:
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_get(f"{prefix}/models", self._list_models)
            if self.serves_embeddings:
                app.router.add_post(f"{prefix}/embeddings", self._embeddings)

    def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        key = self.bearer(request)
        self.exchange(request).api_key = key
        if self.key_ok(key):
            return None
        return self.fail(request, 401, kind="missing_api_key" if not key else "invalid_api_key")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.check_auth(request)) is not None:
            return denied
        body = self.exchange(request).json
        if not isinstance(body, dict):
            return self.fail(request, 400, kind="invalid_json")
        problem = self.validate(request, body)
        if problem is not None:
            return problem
        return await self.respond(
            Call(request, body, str(body["model"]), body.get("stream") is True)
        )

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.check_auth(request)) is not None:
            return denied
        body = self.exchange(request).json
        if not isinstance(body, dict):
            return self.fail(request, 400, kind="invalid_json")
        problem = self.validate_embeddings(request, body)
        if problem is not None:
            return problem
        return await self.respond(Call(request, body, str(body["model"]), False, kind="embeddings"))

    def validate_embeddings(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse | None:
        return None

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.check_auth(request)) is not None:
            return denied
        ids = self.models if self.models is not None else list(self.listed_models)
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": self.owned_by}
            for m in ids
        ]
        return web.json_response(
            {"object": "list", "data": data}, headers=self.extra_headers(request)
        )

    # ------------------------------------------------------------------ hooks
    def validate(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
        return None

    def completion_id(self) -> str:
        return "chatcmpl-" + self.new_id(29)

    def tool_call_id(self) -> str:
        return "call_" + self.new_id(24)

    def finish_reason(self, reply: Reply) -> str:
        return reply.finish_reason()

    def usage(self, call: Call, reply: Reply) -> dict[str, Any]:
        u = self.counts(call, reply)
        return {
            "prompt_tokens": u.prompt,
            "completion_tokens": u.completion,
            "total_tokens": u.total,
        }

    def message(self, call: Call, reply: Reply, calls: list[dict[str, Any]]) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": reply.full_text or (None if calls else ""),
        }
        if calls:
            msg["tool_calls"] = calls
        return msg

    def envelope(
        self, call: Call, reply: Reply, obj: str, cid: str, created: int
    ) -> dict[str, Any]:
        return {"id": cid, "object": obj, "created": created, "model": reply.model or call.model}

    def trailer(self, call: Call) -> dict[str, Any]:
        """Keys after ``choices``/``usage`` (e.g. system_fingerprint)."""
        return {}

    def first_delta(self, call: Call, reply: Reply) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def reasoning_deltas(self, call: Call, reply: Reply) -> list[dict[str, Any]]:
        return []

    def decorate_chunk(self, call: Call, chunk: dict[str, Any]) -> dict[str, Any]:
        return chunk

    # ------------------------------------------------------------------ building
    def counts(self, call: Call, reply: Reply) -> Usage:
        return reply.counts(estimate_tokens(call.body.get("messages"), call.body.get("tools")))

    def include_usage(self, call: Call) -> bool:
        opts = call.body.get("stream_options")
        return isinstance(opts, dict) and opts.get("include_usage") is True

    def tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        out = []
        for i, tc in enumerate(reply.tool_calls):
            function = {"name": tc["name"], "arguments": tool_arguments(tc)}
            out.append(
                {
                    "id": tc.get("id") or self.tool_call_id(),
                    "type": "function",
                    "function": function,
                }
            )
            if self.whole_tool_calls:
                out[-1]["index"] = i
        return out

    def response_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        calls = self.tool_calls(reply)
        choice = {"index": 0, "message": self.message(call, reply, calls), **self.choice_extra}
        choice["finish_reason"] = self.finish_reason(reply)
        head = self.envelope(call, reply, "chat.completion", self.completion_id(), int(time.time()))
        return {**head, "choices": [choice], "usage": self.usage(call, reply), **self.trailer(call)}

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        head = self.envelope(
            call, reply, "chat.completion.chunk", self.completion_id(), int(time.time())
        )
        with_usage = self.include_usage(call)

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = _UNSET) -> bytes:
            choice = {"index": 0, "delta": delta, **self.choice_extra, "finish_reason": finish}
            body: dict[str, Any] = {**head, "choices": [choice], **self.trailer(call)}
            if with_usage:
                body["usage"] = None
            if usage is not _UNSET:
                body["usage"] = usage
            return sse(self.decorate_chunk(call, body))

        frames = [Frame(chunk(self.first_delta(call, reply)), "meta")]
        frames += [Frame(chunk(d)) for d in self.reasoning_deltas(call, reply)]
        frames += [Frame(chunk({"content": t})) for t in reply.text_tokens]
        for i, tc in enumerate(self.tool_calls(reply)):
            if self.whole_tool_calls:
                frames.append(Frame(chunk({"content": "", "tool_calls": [tc]})))
                continue
            fn = tc["function"]
            first = {
                "index": i,
                "id": tc["id"],
                "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }
            frames.append(Frame(chunk({"tool_calls": [first]})))
            for part in fragments(fn["arguments"]):
                frames.append(
                    Frame(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
                )
        usage = self.usage(call, reply)
        finish = self.finish_reason(reply)
        if self.usage_on_finish_chunk:
            frames.append(Frame(chunk(dict(self.finish_delta), finish, usage), "tail"))
        else:
            frames.append(Frame(chunk(dict(self.finish_delta), finish), "tail"))
            if with_usage:
                tail = {**head, "choices": [], **self.trailer(call), "usage": usage}
                frames.append(Frame(sse(self.decorate_chunk(call, tail)), "tail"))
        frames.append(Frame(b"data: [DONE]\n\n", "end"))
        return frames

    def stream_error_frame(self, call: Call, reply: Reply) -> bytes:
        body = reply.error_body or self.error_body(call.request, 500, None, None, None)
        return sse(body)

    def render_error(
        self,
        request: web.Request,
        status: int,
        spec: ErrorSpec,
        message: str,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        """OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {"message": message, "type": spec.type, "param": spec.param, "code": spec.code}
        }
