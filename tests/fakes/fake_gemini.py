"""FakeGemini: Gemini Developer API.

``POST /{v1,v1beta}/models/{model}:generateContent`` and ``:streamGenerateContent[?alt=sse]``;
embeddings ``:embedContent`` and ``:batchEmbedContents`` (see ``embeddings.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar

from aiohttp import web

from . import embeddings
from .behaviours import Reply, estimate_tokens, tool_arguments_obj
from .server import FakeServer
from .wire import Call, ErrorSpec, Frame, FrameKind

SIGNATURE_PREFIX = b"fake-thought-signature:"
SKIP_SIGNATURE = "skip_thought_signature_validator"
FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
EMBED_METHODS = ("embedContent", "batchEmbedContents")
METHODS = ("generateContent", "streamGenerateContent", "countTokens", *EMBED_METHODS)
_QUOTA = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
_HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """The REST API accepts lowerCamel and snake_case field names."""
    return d[camel] if camel in d else d.get(snake)


def _quota_details(quota_id: str, model: str) -> list[dict[str, Any]]:
    violation = {
        "quotaMetric": _QUOTA,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": "10",
    }
    return [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        _HELP,
    ]


def _quota_message(retry: str) -> str:
    return (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
        "To monitor your current usage, head to: "
        f"https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: {_QUOTA}, limit: "
        "10, model: "
        "{model}\nPlease retry in " + retry + "."
    )


class FakeGemini(FakeServer):
    """Gemini. ``base_url`` = ``http://127.0.0.1:<port>`` (genai ``HttpOptions(base_url=...)``).

    Key via ``x-goog-api-key`` or ``?key=``: a missing key gets Google's 403 PERMISSION_DENIED,
    a wrong one the 400 INVALID_ARGUMENT / API_KEY_INVALID. gemini-3* models attach a
    ``thoughtSignature`` to function calls and reject replays without it (the placeholder
    ``skip_thought_signature_validator`` is accepted).
    """

    name = "gemini"
    retry_after_header = False  # Gemini puts the delay in RetryInfo.retryDelay
    stream_content_type = "text/event-stream"
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {
        "invalid_argument": ErrorSpec(
            400, "Request contains an invalid argument.", "INVALID_ARGUMENT"
        ),
        "api_key_invalid": ErrorSpec(
            400,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            extra=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
            ],
        ),
        "failed_precondition": ErrorSpec(
            400, "User location is not supported for the API use.", "FAILED_PRECONDITION"
        ),
        "thought_signature": ErrorSpec(
            400,
            "Function call is missing a thought_signature in functionCall parts.",
            "INVALID_ARGUMENT",
        ),
        "unauthenticated": ErrorSpec(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
            "cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "UNAUTHENTICATED",
        ),
        "missing_api_key": ErrorSpec(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
        ),
        "permission_denied": ErrorSpec(
            403, "The caller does not have permission", "PERMISSION_DENIED"
        ),
        "not_found": ErrorSpec(
            404,
            "models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
            "NOT_FOUND",
        ),
        "resource_exhausted": ErrorSpec(
            429,
            _quota_message("{retry}"),
            "RESOURCE_EXHAUSTED",
            extra="GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ),
        "per_day_quota": ErrorSpec(
            429,
            _quota_message("{retry}"),
            "RESOURCE_EXHAUSTED",
            extra="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        ),
        "internal": ErrorSpec(
            500,
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
        ),
        "unavailable": ErrorSpec(
            503, "The model is overloaded. Please try again later.", "UNAVAILABLE"
        ),
        "deadline_exceeded": ErrorSpec(
            504, "Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"
        ),
    }
    STATUS_KINDS: ClassVar[dict[int, str]] = {
        400: "invalid_argument",
        401: "unauthenticated",
        403: "permission_denied",
        404: "not_found",
        429: "resource_exhausted",
        500: "internal",
        503: "unavailable",
        504: "deadline_exceeded",
    }

    def __init__(self, *, models: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models = models

    def add_routes(self, app: web.Application) -> None:
        for version in ("v1", "v1beta"):
            app.router.add_post(f"/{version}/models/{{target}}", self._generate)

    def render_error(
        self,
        request: web.Request,
        status: int,
        spec: ErrorSpec,
        message: str,
        retry_after: float | None,
    ) -> dict[str, Any] | str:
        error: dict[str, Any] = {"code": status, "message": message, "status": spec.type}
        if status == 429 and isinstance(spec.extra, str):
            retry = f"{retry_after if retry_after is not None else 37:g}s"
            retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry}
            error["message"] = message.replace("{retry}", retry)
            error["details"] = [
                *_quota_details(spec.extra, self.exchange(request).model),
                retry_info,
            ]
        elif spec.extra:
            error["details"] = spec.extra
        return {"error": error}

    # ------------------------------------------------------------------ request handling
    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].rpartition(":")
        self.exchange(request).model = model
        if method not in METHODS:
            return self.fail(request, 404, f"Method not found: {method}", kind="not_found")
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        self.exchange(request).api_key = key
        if not key:
            return self.fail(request, 403, kind="missing_api_key")
        if not self.key_ok(key):
            return self.fail(request, 400, kind="api_key_invalid")
        body = self.exchange(request).json
        if not isinstance(body, dict):
            return self.fail(
                request, 400, "Invalid JSON payload received.", kind="invalid_argument"
            )
        if self.models is not None and model not in self.models:
            version = request.path.split("/")[1]
            return self.fail(
                request, 404, self.ERRORS["not_found"].message.replace("v1beta", version)
            )
        if method in EMBED_METHODS:
            return await self._embed(request, model, method, body)
        problem = self.validate(model, body)
        if problem is not None:
            return self.fail(request, 400, problem, kind="invalid_argument")
        call = Call(request, body, model, method == "streamGenerateContent")
        if method == "countTokens":
            return web.json_response({"totalTokens": self.prompt_tokens(call)})
        return await self.respond(call)

    async def _embed(
        self, request: web.Request, model: str, method: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        requests = embeddings.gemini_requests(model, method, body)
        problem = requests if isinstance(requests, str) else embeddings.gemini_problem(requests)
        if problem is not None:
            return self.fail(request, 400, problem, kind="invalid_argument")
        return await self.respond(Call(request, body, model, False, kind=method))

    def embeddings_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        requests = embeddings.gemini_requests(call.model, call.kind, call.body)
        assert isinstance(requests, list)
        out: dict[str, Any] = embeddings.gemini_body(call, call.kind, requests)
        return out

    def validate(self, model: str, body: dict[str, Any]) -> str | None:
        contents = body.get("contents")
        if not contents or not isinstance(contents, list):
            return "* GenerateContentRequest.contents: contents is not specified\n"
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or content.get("role", "user") not in (
                "user",
                "model",
            ):
                return "Please use a valid role: user, model."
            if not content.get("parts"):
                where = f"GenerateContentRequest.contents[{i}].parts"
                return f"* {where}: contents.parts must not be empty.\n"
        if "gemini-3" in model:
            return self.check_signatures(contents)
        return None

    def check_signatures(self, contents: list[dict[str, Any]]) -> str | None:
        """Gemini 3: in the current turn, each model step's first functionCall needs a signature."""

        def is_user_text(c: dict[str, Any]) -> bool:
            return c.get("role", "user") == "user" and any(
                "text" in p for p in c["parts"] if isinstance(p, dict)
            )

        start = max((i for i, c in enumerate(contents) if is_user_text(c)), default=-1) + 1
        for i in range(start, len(contents)):
            parts = [p for p in contents[i]["parts"] if isinstance(p, dict)]
            calls = [p for p in parts if _get(p, "functionCall", "function_call")]
            if contents[i].get("role") != "model" or not calls:
                continue
            signature = _get(calls[0], "thoughtSignature", "thought_signature")
            name = _get(calls[0], "functionCall", "function_call").get("name")
            if not signature:
                return (
                    "Function call is missing a thought_signature in functionCall parts. This is "
                    "required for tools to work correctly, and missing thought_signature may lead "
                    "to degraded model performance. "
                    f"Additional data, function call `default_api:{name}` , position {i + 1}. "
                    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for "
                    "more details."
                )
            if not self.valid_signature(signature):
                return "Corrupted thought signature."
        return None

    @staticmethod
    def valid_signature(signature: str) -> bool:
        """Issued by a FakeGemini (standard or URL-safe base64), or the documented placeholder."""
        if signature == SKIP_SIGNATURE:
            return True
        text = signature.replace("+", "-").replace("/", "_")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return False
        return raw.startswith(SIGNATURE_PREFIX)

    def new_signature(self) -> str:
        return base64.b64encode(SIGNATURE_PREFIX + self.new_id(48).encode()).decode()

    # ------------------------------------------------------------------ wire format
    def prompt_tokens(self, call: Call) -> int:
        b = call.body
        return estimate_tokens(
            b.get("contents"), _get(b, "systemInstruction", "system_instruction"), b.get("tools")
        )

    def include_thoughts(self, call: Call) -> bool:
        config = _get(call.body, "generationConfig", "generation_config") or {}
        thinking = _get(config, "thinkingConfig", "thinking_config") or {}
        return bool(_get(thinking, "includeThoughts", "include_thoughts"))

    def usage(self, call: Call, reply: Reply, final: bool = True) -> dict[str, Any]:
        u = reply.counts(self.prompt_tokens(call))
        usage: dict[str, Any] = {"promptTokenCount": u.prompt}
        if final:
            usage["candidatesTokenCount"] = u.completion - u.reasoning
        usage["totalTokenCount"] = u.total if final else u.prompt
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.prompt}]
        if final and u.reasoning:
            usage["thoughtsTokenCount"] = u.reasoning
        if u.cached:
            usage["cachedContentTokenCount"] = u.cached
        return usage

    def call_parts(self, call: Call, reply: Reply) -> list[dict[str, Any]]:
        parts = []
        for i, tc in enumerate(reply.tool_calls):
            fc: dict[str, Any] = {"name": tc["name"], "args": tool_arguments_obj(tc)}
            if tc.get("id"):
                fc["id"] = tc["id"]
            part: dict[str, Any] = {"functionCall": fc}
            if i == 0 and "gemini-3" in call.model:
                part["thoughtSignature"] = self.new_signature()
            parts.append(part)
        return parts

    def chunk(
        self, call: Call, reply: Reply, rid: str, parts: list[dict[str, Any]], finish: str | None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": self.usage(call, reply, final=finish is not None),
            "modelVersion": reply.model or call.model,
            "responseId": rid,
        }

    def finish(self, reply: Reply) -> str:
        return FINISH.get(reply.finish_reason(), reply.finish_reason())

    def response_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if reply.reasoning and self.include_thoughts(call):
            parts.append({"text": reply.reasoning, "thought": True})
        if reply.full_text or not reply.tool_calls:
            parts.append({"text": reply.full_text})
        parts += self.call_parts(call, reply)
        return self.chunk(call, reply, self.new_id(23), parts, self.finish(reply))

    def stream_ctype(self, call: Call) -> str:
        return (
            self.stream_content_type
            if call.request.query.get("alt") == "sse"
            else "application/json; charset=UTF-8"
        )

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        rid = self.new_id(23)
        steps: list[list[dict[str, Any]]] = []
        if self.include_thoughts(call):
            steps += [[{"text": t, "thought": True}] for t in reply.reasoning_tokens]
        steps += [[{"text": t}] for t in reply.text_tokens]
        if reply.tool_calls:
            steps.append(self.call_parts(call, reply))
        chunks: list[tuple[dict[str, Any], FrameKind]] = [
            (self.chunk(call, reply, rid, parts, None), "token") for parts in steps
        ]
        chunks.append((self.chunk(call, reply, rid, [{"text": ""}], self.finish(reply)), "tail"))
        if call.request.query.get("alt") == "sse":
            return [Frame(f"data: {json.dumps(c)}\r\n\r\n".encode(), kind) for c, kind in chunks]
        # Without alt=sse the stream is one JSON array, written piecewise.
        frames = [
            Frame(((",\r\n" if i else "[") + json.dumps(c)).encode(), k)
            for i, (c, k) in enumerate(chunks)
        ]
        return [*frames, Frame(b"]", "end")]

    def stream_error_frame(self, call: Call, reply: Reply) -> bytes:
        internal = self.ERRORS["internal"]
        body = reply.error_body or self.render_error(
            call.request, 500, internal, internal.message, None
        )
        data = json.dumps(body)
        return (
            f"data: {data}\r\n\r\n".encode()
            if call.request.query.get("alt") == "sse"
            else f",\r\n{data}]".encode()
        )
