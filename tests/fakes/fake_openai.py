"""FakeOpenAI: OpenAI Chat Completions (``/v1/chat/completions``, ``/v1/models``),
embeddings (``/v1/embeddings``, see ``embeddings.py``) and the Responses API
(``/v1/responses``, wire in ``responses_wire``)."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from . import embeddings
from .behaviours import Error, Reply
from .chat_compat import ChatCompletionsFake
from .responses_wire import ResponseBuilder, error_event
from .wire import HEX, Call, ErrorSpec, Frame

_IRE = "invalid_request_error"
_PARSE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
    "not valid JSON. If you have trouble figuring out how to fix this, please contact us through "
    "our help center at help.openai.com.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


def _present(body: dict[str, Any], key: str) -> bool:
    return body.get(key) is not None  # an explicit null counts as absent


class FakeOpenAI(ChatCompletionsFake):
    """OpenAI. ``base_url`` = ``http://127.0.0.1:<port>/v1`` (``openai.OpenAI(base_url=...)``)."""

    name = "openai"
    owned_by = "openai"
    listed_models = ("gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4o-mini")
    serves_embeddings = True
    ERRORS: ClassVar[dict[str, ErrorSpec]] = {
        "invalid_request": ErrorSpec(400, "Invalid request.", _IRE),
        "invalid_json": ErrorSpec(400, _PARSE, _IRE),
        "context_length_exceeded": ErrorSpec(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 131072 tokens. Please reduce the length of the messages.",
            _IRE,
            "messages",
            "context_length_exceeded",
        ),
        "content_policy": ErrorSpec(
            400,
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
            "Please try again with a different prompt: "
            "https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
            _IRE,
            None,
            "invalid_prompt",
        ),
        "missing_api_key": ErrorSpec(401, _NO_KEY, _IRE),
        "invalid_api_key": ErrorSpec(
            401,
            "Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            _IRE,
            None,
            "invalid_api_key",
        ),
        "unsupported_country": ErrorSpec(
            403,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            "unsupported_country_region_territory",
        ),
        "model_not_found": ErrorSpec(
            404,
            "The model `{model}` does not exist or you do not have access to it.",
            _IRE,
            None,
            "model_not_found",
        ),
        "rate_limit": ErrorSpec(
            429,
            "Rate limit reached for {model} in organization org-fake on tokens per min (TPM): "
            "Limit 30000, Used 29950, Requested 120. Please try again in 140ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "tokens",
            None,
            "rate_limit_exceeded",
        ),
        "insufficient_quota": ErrorSpec(
            429,
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            None,
            "insufficient_quota",
        ),
        "server_error": ErrorSpec(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
        "overloaded": ErrorSpec(
            503, "The engine is currently overloaded, please try again later", "server_error"
        ),
        "not_found": ErrorSpec(404, "Invalid URL", _IRE),
    }
    STATUS_KINDS: ClassVar[dict[int, str]] = {
        400: "invalid_request",
        401: "invalid_api_key",
        403: "unsupported_country",
        404: "model_not_found",
        429: "rate_limit",
        500: "server_error",
        503: "overloaded",
    }

    def first_delta(self, call: Call, reply: Reply) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "refusal": None}

    # ------------------------------------------------------------------ Responses API
    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post("/v1/responses", self._responses)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.check_auth(request)) is not None:
            return denied
        body = self.exchange(request).json
        if not isinstance(body, dict):
            return self.fail(request, 400, kind="invalid_json")
        if not _present(body, "model"):
            return self.error_response_raw(
                request, 400, "Missing required parameter: 'model'.", "model", None
            )
        if self.models is not None and body["model"] not in self.models:
            return self.fail(request, 404, kind="model_not_found")
        if not _present(body, "input"):
            return self.error_response_raw(
                request, 400, "Missing required parameter: 'input'.", "input", None
            )
        return await self.respond(
            Call(request, body, str(body["model"]), body.get("stream") is True)
        )

    @staticmethod
    def _is_responses(call: Call) -> bool:
        return call.request.path.endswith("/responses")

    def response_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        if self._is_responses(call):
            return ResponseBuilder(call.body, reply, self.new_id).whole()
        return super().response_body(call, reply)

    def stream_frames(self, call: Call, reply: Reply) -> list[Frame]:
        if self._is_responses(call):
            return ResponseBuilder(call.body, reply, self.new_id).frames()
        return super().stream_frames(call, reply)

    def stream_error_frame(self, call: Call, reply: Reply) -> bytes:
        if self._is_responses(call):
            error = (reply.error_body or {}).get("error") or {}
            message = error.get("message") or "The server had an error processing your request."
            return error_event(message, error.get("code") or "server_error", 0)
        return super().stream_error_frame(call, reply)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def make_request_id(self) -> str:
        return "req_" + self.new_id(32, HEX)

    def extra_headers(self, request: web.Request) -> dict[str, str]:
        return {
            "x-request-id": self.request_id(request),
            "openai-organization": "org-fake",
            "openai-processing-ms": "42",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "2ms",
        }

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return self.fail(
            request, 404, f"Invalid URL ({request.method} {request.path})", kind="not_found"
        )

    def validate(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
        def bad(
            message: str, param: str | None = None, code: str | None = None
        ) -> web.StreamResponse:
            return self.error_response_raw(request, 400, message, param, code)

        if not _present(body, "model"):
            return bad("you must provide a model parameter")
        if self.models is not None and body["model"] not in self.models:
            return self.fail(request, 404, kind="model_not_found")
        messages = body.get("messages")
        if messages is None:
            return bad(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        if not isinstance(messages, list) or not messages:
            return bad(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.",
                "messages",
                "empty_array",
            )
        if _present(body, "stream_options") and body.get("stream") is not True:
            return bad(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
            )
        pending: list[str] = []
        for i, msg in enumerate([*messages, None]):
            role = msg.get("role") if isinstance(msg, dict) else None
            if role == "tool":
                if msg.get("tool_call_id") not in pending:
                    return bad(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.",
                        f"messages.[{i}].role",
                    )
                pending.remove(msg["tool_call_id"])
                continue
            if pending:
                return bad(
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                    "response messages: "
                    f"{', '.join(pending)}",
                    f"messages.[{i}].role",
                )
            if role == "assistant" and msg.get("tool_calls"):
                pending = [str(tc.get("id")) for tc in msg["tool_calls"] if isinstance(tc, dict)]
        return None

    def validate_embeddings(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse | None:
        problem = embeddings.openai_problem(body)
        if problem is not None:
            return self.error_response_raw(request, 400, problem[0], problem[1], None)
        if self.models is not None and body["model"] not in self.models:
            return self.fail(request, 404, kind="model_not_found")
        return None

    def embeddings_body(self, call: Call, reply: Reply) -> dict[str, Any]:
        out: dict[str, Any] = embeddings.openai_body(call, reply)
        return out

    def error_response_raw(
        self, request: web.Request, status: int, message: str, param: str | None, code: str | None
    ) -> web.StreamResponse:
        body = {"error": {"message": message, "type": _IRE, "param": param, "code": code}}
        return self.error_response(request, Error(status, body=body))

    # ------------------------------------------------------------------ wire format
    def usage(self, call: Call, reply: Reply) -> dict[str, Any]:
        u = self.counts(call, reply)
        return {
            "prompt_tokens": u.prompt,
            "completion_tokens": u.completion,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def message(self, call: Call, reply: Reply, calls: list[dict[str, Any]]) -> dict[str, Any]:
        msg = super().message(call, reply, calls)
        msg.update(refusal=None, annotations=[])
        return msg

    def trailer(self, call: Call) -> dict[str, Any]:
        return {"service_tier": "default", "system_fingerprint": None}

    def decorate_chunk(self, call: Call, chunk: dict[str, Any]) -> dict[str, Any]:
        opts = call.body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_obfuscation") is False:
            return chunk
        return {**chunk, "obfuscation": self.new_id(6)}
