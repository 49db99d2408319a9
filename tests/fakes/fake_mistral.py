"""FakeMistral: Mistral La Plateforme chat (``/v1/chat/completions``, ``/v1/models``) and
embeddings (``/v1/embeddings``, see ``embeddings.py``)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from aiohttp import web

from . import embeddings
from .behaviours import Error, Reply
from .chat_compat import ChatCompletionsFake
from .wire import HEX, Call, ErrorSpec

TOOL_CALL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")

# Mistral's request schema forbids extra inputs (422 extra_forbidden), taken from mistralai 3.7.
REQUEST_FIELDS = frozenset(
    [
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
        "metadata",
        "guardrails",
        "min_tokens",
        "top_k",
        "repetition_penalty",
        "reasoning_effort",
        "prompt_cache_key",
        "service_tier",
        "logprobs",
        "top_logprobs",
        "prompt_logprobs",
        "top_prompt_logprobs",
    ]
)
MESSAGE_FIELDS = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "prefix"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def _detail(kind: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


class FakeMistral(ChatCompletionsFake):
    """Mistral. ``base_url`` = ``http://127.0.0.1:<port>`` (``Mistral(server_url=...)``)."""

    name = "mistral"
    owned_by = "mistralai"
    whole_tool_calls = True
    usage_on_finish_chunk = True
    serves_embeddings = True
    stream_content_type = "text/event-stream"
    choice_extra: ClassVar[dict[str, Any]] = {}
    finish_delta: ClassVar[dict[str, Any]] = {"content": ""}
    listed_models = (
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "magistral-medium-latest",
    )
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {
        "invalid_request": ErrorSpec(400, "Invalid request", "invalid_request_error", None, "3000"),
        "invalid_json": ErrorSpec(400, "Invalid JSON body", "invalid_request_error", None, "3000"),
        "tool_call_id": ErrorSpec(
            400,
            "Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9.",
            "invalid_function_call",
            None,
            "3280",
        ),
        "invalid_model": ErrorSpec(400, "Invalid model: {model}", "invalid_model", None, "1500"),
        "missing_api_key": ErrorSpec(401, "Unauthorized", "detail"),
        "invalid_api_key": ErrorSpec(401, "Unauthorized", "detail"),
        "not_found": ErrorSpec(404, "Not Found", "detail"),
        "validation": ErrorSpec(422, "Field required", "invalid_request_error"),
        "rate_limited": ErrorSpec(
            429, "Requests rate limit exceeded", "rate_limited", None, "1300"
        ),
        "capacity_exceeded": ErrorSpec(
            429,
            "Service tier capacity exceeded for this model.",
            "service_tier_capacity_exceeded",
            None,
            "3505",
        ),
        "server_error": ErrorSpec(500, "Internal server error", "server_error", None, "1000"),
        "unavailable": ErrorSpec(503, "Service unavailable.", "server_error", None, "1000"),
    }
    STATUS_KINDS: ClassVar[dict[int, str]] = {
        400: "invalid_request",
        401: "invalid_api_key",
        404: "not_found",
        422: "validation",
        429: "rate_limited",
        500: "server_error",
        503: "unavailable",
    }

    def completion_id(self) -> str:
        return self.new_id(32, HEX)

    def tool_call_id(self) -> str:
        return self.new_id(9)

    def make_request_id(self) -> str:
        h = self.new_id(32, HEX)
        return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{h[16:20]}-{h[20:32]}"

    def extra_headers(self, request: web.Request) -> dict[str, str]:
        rid = self.request_id(request)
        return {"mistral-correlation-id": rid, "x-kong-request-id": rid}

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self.fail(request, 404, kind="not_found")

    def render_error(
        self,
        request: web.Request,
        status: int,
        spec: ErrorSpec,
        message: str,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        if spec.type == "detail":  # FastAPI-level errors (auth, routing)
            return {"detail": message}
        message = message.replace("{id}", "call_Xa81c9d2")
        if status == 422:
            loc = ["body", "model"]
            return self.validation_body([_detail("missing", loc, message, None)])
        return {
            "object": "error",
            "message": message,
            "type": spec.type,
            "param": spec.param,
            "code": spec.code,
        }

    @staticmethod
    def validation_body(details: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "object": "error",
            "message": {"detail": details},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }

    def validate_embeddings(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse | None:
        problem = embeddings.mistral_problem(body)
        if problem is None:
            return None
        message, field = problem
        if field is None:
            return self.fail(request, 400, message, kind="invalid_request")
        detail = _detail("extra_forbidden", ["body", field], message, body.get(field))
        return self.error_response(request, Error(422, body=self.validation_body([detail])))

    def embeddings_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        out: dict[str, Any] = embeddings.mistral_body(call, reply, self.new_id(32, HEX))
        return out

    def validate(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
        details = [
            _detail("missing", ["body", f], "Field required", body)
            for f in ("model", "messages")
            if f not in body
        ]
        details += [
            _detail("extra_forbidden", ["body", k], "Extra inputs are not permitted", v)
            for k, v in body.items()
            if k not in REQUEST_FIELDS
        ]
        messages = body.get("messages")
        for i, msg in enumerate(messages if isinstance(messages, list) else []):
            role = msg.get("role") if isinstance(msg, dict) else None
            if role not in MESSAGE_FIELDS:
                tags = "'system', 'user', 'assistant', 'tool'"
                text = f"Input tag '{role}' found using 'role' does not match any of the expected "
                text += f"tags: {tags}"
                details.append(_detail("union_tag_invalid", ["body", "messages", i], text, msg))
                continue
            details += [
                _detail(
                    "extra_forbidden",
                    ["body", "messages", i, role, k],
                    "Extra inputs are not permitted",
                    v,
                )
                for k, v in msg.items()
                if k not in MESSAGE_FIELDS[role]
            ]
        if details:
            return self.error_response(request, Error(422, body=self.validation_body(details)))
        if self.models is not None and body["model"] not in self.models:
            return self.fail(request, 400, kind="invalid_model")
        for msg in messages or []:
            ids = [tc.get("id") for tc in msg.get("tool_calls") or [] if isinstance(tc, dict)]
            if msg.get("role") == "tool":
                ids.append(msg.get("tool_call_id"))
            for tid in ids:
                if not isinstance(tid, str) or not TOOL_CALL_ID.match(tid):
                    text = self.ERRORS["tool_call_id"].message.replace("{id}", str(tid))
                    return self.fail(request, 400, text, kind="tool_call_id")
        return None

    # ------------------------------------------------------------------ wire format
    def envelope(
        self, call: Call, reply: Reply, obj: str, cid: str, created: int
    ) -> dict[str, Any]:
        return {"id": cid, "object": obj, "created": created, "model": reply.model or call.model}

    def message(self, call: Call, reply: Reply, calls: list[dict[str, Any]]) -> dict[str, Any]:
        content: Any = reply.full_text
        if reply.reasoning:
            thinking = {"type": "thinking", "thinking": [{"type": "text", "text": reply.reasoning}]}
            content = [thinking, {"type": "text", "text": reply.full_text}]
        return {"role": "assistant", "tool_calls": calls or None, "content": content}

    def reasoning_deltas(self, call: Call, reply: Reply) -> list[dict[str, Any]]:
        return [
            {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": t}]}]}
            for t in reply.reasoning_tokens
        ]
