"""FakeDeepSeek: DeepSeek chat (``/chat/completions`` and ``/v1/chat/completions``)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from aiohttp import web

from .behaviours import Error, Reply
from .chat_compat import ChatCompletionsFake
from .wire import Call, ErrorSpec, Frame

_IRE = "invalid_request_error"


def thinking_enabled(body: dict[str, Any]) -> bool:
    """DeepSeek thinking mode is on unless ``thinking: {"type": "disabled"}``."""
    thinking = body.get("thinking")
    return not (isinstance(thinking, dict) and thinking.get("type") == "disabled")


def _missing_reasoning(messages: list[Any]) -> bool:
    """Since the last user turn, an assistant tool-call message lacks its reasoning_content."""
    turns = [m for m in messages if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(turns) if m.get("role") == "user"), default=-1)
    return any(
        m.get("role") == "assistant" and m.get("tool_calls") and m.get("reasoning_content") is None
        for m in turns[last_user + 1 :]
    )


class FakeDeepSeek(ChatCompletionsFake):
    """DeepSeek. ``base_url`` = ``http://127.0.0.1:<port>`` (``/v1`` also served).

    In thinking mode (the default) a reply without ``reasoning`` gets ``default_reasoning``.
    Streams start with a ``: keep-alive`` comment (repeated during ttft/stall pauses); non-stream
    bodies are preceded by blank lines.
    """

    name = "deepseek"
    prefixes = ("", "/v1")
    owned_by = "deepseek"
    listed_models = ("deepseek-v4-flash", "deepseek-v4-pro")
    stream_keepalive = b": keep-alive\n\n"
    body_keepalive = b"\n"
    finish_delta: ClassVar[dict[str, Any]] = {"content": ""}
    default_reasoning = "Let me think about this."
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {
        "invalid_request": ErrorSpec(400, "Invalid request format.", _IRE, None, _IRE),
        "invalid_json": ErrorSpec(
            400, "Failed to parse the request body as JSON", _IRE, None, _IRE
        ),
        "reasoning_content": ErrorSpec(
            400,
            "The reasoning_content in the thinking mode must be passed back to the API.",
            _IRE,
            None,
            _IRE,
        ),
        "context_length_exceeded": ErrorSpec(
            400,
            "This model's maximum context length is 131072 tokens. However, you requested 140000 "
            "tokens (139000 in the messages, 1000 in the completion). Please reduce the length of "
            "the messages or completion.",
            _IRE,
            None,
            _IRE,
        ),
        "model_not_found": ErrorSpec(400, "Model Not Exist", _IRE, None, _IRE),
        "missing_api_key": ErrorSpec(
            401,
            "Authentication Fails, Your api key: {key} is invalid",
            "authentication_error",
            None,
            _IRE,
        ),
        "invalid_api_key": ErrorSpec(
            401,
            "Authentication Fails, Your api key: {key} is invalid",
            "authentication_error",
            None,
            _IRE,
        ),
        "insufficient_balance": ErrorSpec(402, "Insufficient Balance", "unknown_error", None, _IRE),
        "invalid_parameters": ErrorSpec(422, "Invalid Parameters", _IRE, None, _IRE),
        "not_found": ErrorSpec(404, "Not Found", _IRE, None, _IRE),
        "rate_limit": ErrorSpec(
            429, "Rate Limit Reached", "rate_limit_error", None, "rate_limit_exceeded"
        ),
        "server_error": ErrorSpec(500, "Server Error", "server_error", None, "server_error"),
        "overloaded": ErrorSpec(
            503, "Server Overloaded", "server_error", None, "server_overloaded"
        ),
    }
    STATUS_KINDS: ClassVar[dict[int, str]] = {
        400: "invalid_request",
        401: "invalid_api_key",
        402: "insufficient_balance",
        404: "not_found",
        422: "invalid_parameters",
        429: "rate_limit",
        500: "server_error",
        503: "overloaded",
    }

    def mask_key(self, key: str) -> str:
        return f"****{key[-4:]}"

    def make_request_id(self) -> str:
        h = self.new_id(32, "0123456789abcdef")
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def extra_headers(self, request: web.Request) -> dict[str, str]:
        return {"x-ds-trace-id": self.request_id(request)}

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self.fail(request, 404, kind="not_found")

    def tool_call_id(self) -> str:
        return "call_00_" + self.new_id(24)

    def completion_id(self) -> str:
        h = self.new_id(32, "0123456789abcdef")
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def validate(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
        for field in ("model", "messages"):
            if body.get(field) is None:
                text = "Failed to deserialize the JSON body into the target type: "
                return self.fail(request, 422, f"{text}missing field `{field}`")
        if self.models is not None and body["model"] not in self.models:
            return self.fail(request, 400, kind="model_not_found")
        messages = body["messages"]
        if not isinstance(messages, list):
            return self.fail(
                request, 422, "Failed to deserialize the JSON body into the target type: messages"
            )
        if thinking_enabled(body) and _missing_reasoning(messages):
            return self.error_response(request, Error(400, kind="reasoning_content"))
        return None

    def prepare_reply(self, call: Call, reply: Reply) -> Reply:
        if not thinking_enabled(call.body):
            return dataclasses.replace(reply, reasoning=None)
        if reply.reasoning is None:
            return dataclasses.replace(reply, reasoning=self.default_reasoning)
        return reply

    # ------------------------------------------------------------------ wire format
    def usage(self, call: Call, reply: Reply) -> dict[str, Any]:
        u = self.counts(call, reply)
        return {
            "prompt_tokens": u.prompt,
            "completion_tokens": u.completion,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cached},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning},
            "prompt_cache_hit_tokens": u.cached,
            "prompt_cache_miss_tokens": u.prompt - u.cached,
        }

    def message(self, call: Call, reply: Reply, calls: list[dict[str, Any]]) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": reply.full_text}
        if reply.reasoning is not None:
            msg["reasoning_content"] = reply.reasoning
        if calls:
            msg["tool_calls"] = calls
        return msg

    def trailer(self, call: Call) -> dict[str, Any]:
        return {"system_fingerprint": "fp_fake0000_prod0820_fp8_kvcache"}

    def first_delta(self, call: Call, reply: Reply) -> dict[str, Any]:
        if reply.reasoning is not None:
            return {"role": "assistant", "content": None, "reasoning_content": ""}
        return {"role": "assistant", "content": ""}

    def reasoning_deltas(self, call: Call, reply: Reply) -> list[dict[str, Any]]:
        return [{"content": None, "reasoning_content": t} for t in reply.reasoning_tokens]

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        return [Frame(b": keep-alive\n\n", "meta"), *super().stream_frames(call, reply)]
