"""FakeAnthropic: Anthropic Messages API (``/v1/messages``)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from .behaviours import Reply, estimate_tokens, fragments, tool_arguments, tool_arguments_obj
from .server import FakeServer
from .wire import Call, ErrorSpec, Frame, FrameKind, sse

VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
STRICT_VERSION = (
    "2026-10-21"  # rejects temperature/top_p/top_k, assistant documents, user citations
)
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# Claude 4.7+ ("claude-opus-4-7", "claude-sonnet-5", dated ids too) accepts only the default
# sampling values, on either API version (PROVIDERS.md §2). The 400 wording is the fake's own.
_MODERN_CLAUDE = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?")
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_IRE = "invalid_request_error"


def default_sampling_only(model: str) -> bool:
    """Claude 4.7 and later reject non-default temperature / top_p / top_k."""
    match = _MODERN_CLAUDE.fullmatch(model)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (4, 7)


def _sampling_problem(body: dict[str, Any], strict: bool) -> str | None:
    for field in ("temperature", "top_p", "top_k"):
        if field not in body:
            continue
        if strict:
            return f"{field}: Extra inputs are not permitted"
        if default_sampling_only(str(body["model"])) and (field == "top_k" or body[field] != 1):
            return f"{field}: only the default value is supported for this model"
    return None


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _unanswered(index: int, ids: list[str]) -> str:
    return (
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
        f"after: {', '.join(ids)}. Each `tool_use` block must have a corresponding `tool_result` "
        "block in the next message."
    )


def _block_problem(
    where: str,
    role: str,
    block: dict[str, Any],
    open_ids: list[str],
    strict: bool,
    after_other: bool = False,
) -> str | None:
    kind = block.get("type")
    if kind == "tool_result" and after_other:  # the wording is the fake's own
        return f"{where}: tool_result blocks must come first in the content, before other blocks"
    if kind == "tool_result" and block.get("tool_use_id") not in open_ids:
        return (
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
            "`tool_use` block in the previous message."
        )
    if kind == "tool_use" and not TOOL_ID.match(str(block.get("id", ""))):
        return f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
    if strict and role == "assistant" and kind == "document":
        return f"{where}: document blocks are not permitted in assistant messages"
    if strict and role == "user" and kind == "text" and block.get("citations"):
        return f"{where}.text.citations: Extra inputs are not permitted"
    return None


class FakeAnthropic(FakeServer):
    """Anthropic. ``base_url`` = ``http://127.0.0.1:<port>`` (``Anthropic(base_url=...)``).

    Auth: ``x-api-key`` (wins) or ``Authorization: Bearer``. ``anthropic-version`` is required.
    """

    name = "anthropic"
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {
        "invalid_request": ErrorSpec(400, "Invalid request", _IRE),
        "invalid_json": ErrorSpec(
            400, "There was an error parsing the body of your request as JSON.", _IRE
        ),
        "prompt_too_long": ErrorSpec(
            400, "prompt is too long: 210000 tokens > 200000 maximum", _IRE
        ),
        "missing_api_key": ErrorSpec(401, "x-api-key header is required", "authentication_error"),
        "invalid_api_key": ErrorSpec(401, "invalid x-api-key", "authentication_error"),
        "billing": ErrorSpec(
            402,
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
            "Billing to upgrade or purchase credits.",
            "billing_error",
        ),
        "permission": ErrorSpec(
            403,
            "Your API key does not have permission to use the specified resource.",
            "permission_error",
        ),
        "not_found": ErrorSpec(404, "model: {model}", "not_found_error"),
        "conflict": ErrorSpec(409, "Conflict", "conflict_error"),
        "request_too_large": ErrorSpec(
            413, "Request exceeds the maximum allowed number of bytes.", "request_too_large"
        ),
        "rate_limit": ErrorSpec(
            429,
            "This request would exceed the rate limit for your organization of 50 requests per "
            "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
            "see the response headers for current usage. Please reduce the prompt length or the "
            "maximum tokens requested, or try again later.",
            "rate_limit_error",
        ),
        "spend_limit": ErrorSpec(
            429,
            "You have reached your specified workspace API usage limits. You will regain access "
            "on 2027-01-01 at 00:00 UTC.",
            "rate_limit_error",
            extra={"error_code": "enforced_spend_limit_reached"},
        ),
        "api_error": ErrorSpec(500, "Internal server error", "api_error"),
        "timeout": ErrorSpec(504, "Request timed out", "timeout_error"),
        "overloaded": ErrorSpec(529, "Overloaded", "overloaded_error"),
    }
    STATUS_KINDS: ClassVar[dict[int, str]] = {
        400: "invalid_request",
        401: "invalid_api_key",
        402: "billing",
        403: "permission",
        404: "not_found",
        409: "conflict",
        413: "request_too_large",
        429: "rate_limit",
        500: "api_error",
        504: "timeout",
        529: "overloaded",
    }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._messages)

    def make_request_id(self) -> str:
        return "req_011C" + self.new_id(20)

    def extra_headers(self, request: web.Request) -> dict[str, str]:
        reset = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        headers = {
            "request-id": self.request_id(request),
            "anthropic-organization-id": "00000000-fake-org",
        }
        for kind, limit in (
            ("requests", 4000),
            ("tokens", 2000000),
            ("input-tokens", 2000000),
            ("output-tokens", 400000),
        ):
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - 1)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
        return headers

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self.fail(request, 404, "Not Found", kind="not_found")

    def render_error(
        self,
        request: web.Request,
        status: int,
        spec: ErrorSpec,
        message: str,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        error: dict[str, Any] = {"type": spec.type, "message": message}
        if spec.extra:
            error["details"] = spec.extra
        return {"type": "error", "error": error, "request_id": self.request_id(request)}

    # ------------------------------------------------------------------ request handling
    async def _messages(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-api-key") or self.bearer(request)
        self.exchange(request).api_key = key
        if not self.key_ok(key):
            return self.fail(request, 401, kind="missing_api_key" if not key else "invalid_api_key")
        version = request.headers.get("anthropic-version")
        if not version:
            return self.fail(request, 400, "anthropic-version: header is required")
        if version not in VERSIONS:
            return self.fail(request, 400, f'anthropic-version: "{version}" is not a valid version')
        body = self.exchange(request).json
        if not isinstance(body, dict):
            return self.fail(request, 400, kind="invalid_json")
        problem = self.validate(body, version, counting=request.path.endswith("count_tokens"))
        if problem is not None:
            return self.fail(request, 400, problem)
        call = Call(request, body, str(body["model"]), body.get("stream") is True)
        if request.path.endswith("count_tokens"):
            return web.json_response(
                {"input_tokens": self.prompt_tokens(call)}, headers=self.extra_headers(request)
            )
        return await self.respond(call)

    def validate(self, body: dict[str, Any], version: str, counting: bool = False) -> str | None:
        """The message of Anthropic's 400 for an invalid body, or None."""
        for field in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
            if body.get(field) is None:
                return f"{field}: Field required"
        strict = version == STRICT_VERSION
        if problem := _sampling_problem(body, strict):
            return problem
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        open_ids: list[str] = []
        for i, msg in enumerate(messages):
            role = msg.get("role") if isinstance(msg, dict) else None
            if role not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            blocks = _blocks(msg.get("content"))
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if missing := [t for t in open_ids if t not in results]:
                return _unanswered(i - 1, missing)
            for j, block in enumerate(blocks):
                after_other = any(b.get("type") != "tool_result" for b in blocks[:j])
                if problem := _block_problem(
                    f"messages.{i}.content.{j}", role, block, open_ids, strict, after_other
                ):
                    return problem
            open_ids = [str(b.get("id")) for b in blocks if b.get("type") == "tool_use"]
        return _unanswered(len(messages) - 1, open_ids) if open_ids else None

    def prepare_reply(self, call: Call, reply: Reply) -> Reply:
        thinking = call.body.get("thinking")
        if not (isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")):
            return dataclasses.replace(reply, reasoning=None)
        return reply

    # ------------------------------------------------------------------ wire format
    def prompt_tokens(self, call: Call) -> int:
        body = call.body
        return estimate_tokens(body.get("system"), body.get("messages"), body.get("tools"))

    def usage(self, call: Call, reply: Reply, output: int | None = None) -> dict[str, Any]:
        u = reply.counts(self.prompt_tokens(call))
        return {
            "input_tokens": u.prompt - u.cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": u.cached,
            "output_tokens": u.completion if output is None else output,
        }

    def stop_info(self, call: Call, reply: Reply) -> tuple[str, str | None]:
        reason = STOP_REASONS.get(reply.finish_reason(), reply.finish_reason())
        sequences = call.body.get("stop_sequences") or ["\n\nHuman:"]
        return reason, (sequences[0] if reason == "stop_sequence" else None)

    def blocks(self, reply: Reply) -> list[dict[str, Any]]:
        """Content blocks of the full answer (tool_use inputs parsed)."""
        out: list[dict[str, Any]] = []
        if reply.reasoning:
            out.append(
                {
                    "type": "thinking",
                    "thinking": reply.reasoning,
                    "signature": "Eu" + self.new_id(86),
                }
            )
        if reply.full_text or not reply.tool_calls:
            out.append({"type": "text", "text": reply.full_text})
        for tc in reply.tool_calls:
            tool_id = tc.get("id") or "toolu_01" + self.new_id(22)
            out.append(
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": tc["name"],
                    "input": tool_arguments_obj(tc),
                }
            )
        return out

    def response_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        reason, sequence = self.stop_info(call, reply)
        return {
            "id": "msg_01" + self.new_id(22),
            "type": "message",
            "role": "assistant",
            "model": reply.model or call.model,
            "content": self.blocks(reply),
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": {**self.usage(call, reply), "service_tier": "standard"},
        }

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        def ev(kind: str, data: dict[str, Any], frame_kind: FrameKind = "meta") -> Frame:
            return Frame(sse({"type": kind, **data}, event=kind), frame_kind)

        message: dict[str, Any] = {
            "id": "msg_01" + self.new_id(22),
            "type": "message",
            "role": "assistant",
            "model": reply.model or call.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.usage(call, reply, output=1),
        }
        frames = [ev("message_start", {"message": message})]
        for index, block in enumerate(self.blocks(reply)):
            kind = block["type"]
            start = {
                "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                "text": {"type": "text", "text": ""},
            }
            empty = start.get(kind, {**block, "input": {}})
            frames.append(ev("content_block_start", {"index": index, "content_block": empty}))
            if index == 0:
                frames.append(ev("ping", {}))
            if kind == "thinking":
                deltas = [{"type": "thinking_delta", "thinking": t} for t in reply.reasoning_tokens]
            elif kind == "text":
                deltas = [{"type": "text_delta", "text": t} for t in reply.text_tokens]
            else:
                args = tool_arguments({"arguments": block["input"]})
                deltas = [
                    {"type": "input_json_delta", "partial_json": p} for p in ["", *fragments(args)]
                ]
            frames += [
                ev("content_block_delta", {"index": index, "delta": d}, "token") for d in deltas
            ]
            if kind == "thinking":
                signature = {"type": "signature_delta", "signature": block["signature"]}
                frames.append(ev("content_block_delta", {"index": index, "delta": signature}))
            frames.append(ev("content_block_stop", {"index": index}))
        reason, sequence = self.stop_info(call, reply)
        delta = {
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": self.usage(call, reply),
        }
        frames.append(ev("message_delta", delta, "tail"))
        frames.append(ev("message_stop", {}, "end"))
        return frames

    def stream_error_frame(self, call: Call, reply: Reply) -> bytes:
        body = reply.error_body or {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        return sse(body, event="error")
