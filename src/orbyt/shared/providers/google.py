"""Google Gemini (Generative Language API, `generateContent`), model ids `google/gemini-...`.

Requests go to `POST {base}/v1beta/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse` when streaming, with the key in `x-goog-api-key` (never
in the URL). The model id must be a plain name (`[A-Za-z0-9._-]`), so it cannot reach
another path on Google's host.

Request mapping (OpenAI -> Gemini):

    system / developer messages    systemInstruction.parts (text only, in order, wherever
                                   they appear in the conversation)
    user / assistant               contents[] with role user / model; consecutive turns of
                                   one role are merged; empty messages are skipped
    text parts, refusal parts      {"text"}
    image_url data URL             {"inlineData": {mimeType, data}}
    image_url http(s) URL          {"fileData": {mimeType, fileUri}}, mimeType from the
                                   extension (png, jpg, jpeg, webp, heic, heif, gif); a Files
                                   API URI may have none. Gemini itself may reject URIs that
                                   are not Files API / allowed URLs. Unknown type: rejected.
    input_audio (wav, mp3)         {"inlineData": {"audio/wav" | "audio/mp3"}}
    file.file_data (data URL)      {"inlineData"}; file.file_id: rejected
    assistant tool_calls           {"functionCall": {name, args}, "thoughtSignature"?}
    tool messages                  one user turn of {"functionResponse": {name, response}}
                                   in call order; the name comes from the assistant message
                                   that made the call; a JSON-object result is sent as is,
                                   anything else as {"result": "<content>"}
    temperature, top_p             generationConfig.temperature, .topP
    max_completion_tokens          generationConfig.maxOutputTokens (else max_tokens)
    stop                           .stopSequences; more than 5: rejected
    n                              .candidateCount (when > 1)
    seed, presence_penalty,        .seed, .presencePenalty, .frequencyPenalty
    frequency_penalty
    logprobs, top_logprobs         .responseLogprobs, .logprobs (answered as OpenAI logprobs)
    response_format                json_object -> .responseMimeType "application/json";
                                   json_schema -> also .responseJsonSchema; text -> nothing
    reasoning_effort               .thinkingConfig: thinkingLevel for Gemini 3+ (none and
                                   minimal -> MINIMAL, xhigh -> HIGH), thinkingBudget for 2.5
                                   (0/1024/1024/8192/24576/24576), includeThoughts unless
                                   "none"; ignored for models that do not think
    tools (function)               tools[0].functionDeclarations[{name, description,
                                   parametersJsonSchema}]; other tool types: rejected
    tool_choice                    toolConfig.functionCallingConfig.mode AUTO / NONE / ANY;
                                   a named function -> ANY + allowedFunctionNames
    dropped                        user, parallel_tool_calls, logit_bias, stream_options,
                                   tools[].function.strict, image detail, message name,
                                   assistant reasoning_content, metadata, store,
                                   service_tier, and any field not listed here
    rejected (InvalidRequest)      audio, prediction, web_search_options, functions,
                                   function_call, modalities other than ["text"], role
                                   "function", tool_call_id matching no earlier call,
                                   tool-call arguments that are not a JSON object

Tool call ids and thought signatures. Gemini does not always give function calls an id,
so each gets a deterministic OpenAI id, `call_<n>_<16 hex of sha256(responseId, choice,
n, name, arguments)>` (at most 40 characters, the longest id OpenAI accepts when the
conversation is later replayed to it). Ids are never sent back to Gemini: results are
matched to calls by name and order. Gemini 3 puts a `thoughtSignature` on function-call
parts (only the first of parallel calls) and requires it back exactly. The gateway is
stateless, so the signature travels inside the OpenAI tool call as
`extra_content: {"google": {"thought_signature": sig}}`, as Google's own OpenAI layer
does, and is restored from there. It is NOT encoded into the id: real signatures are
hundreds of bytes, which would break the 40-character limit above (and Mistral's 9).
When a Gemini 3 assistant turn comes back without one (a client that drops unknown
fields), its first call gets the documented placeholder `skip_thought_signature_validator`.

Responses: text parts -> content (None when empty), `thought: true` parts ->
reasoning_content, functionCall parts -> tool_calls; finish reasons STOP -> stop (tool_calls
when the choice has a call), MAX_TOKENS -> length, the safety family -> content_filter,
everything else -> stop; a blocked prompt (promptFeedback.blockReason, no candidates) ->
content_filter. Streams have no terminator: the stream is done once every choice has a
finishReason, and the latest usage is then emitted as a `{"choices": [], "usage"}` item.
Non-text output parts (executableCode, inline images, ...) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from orbyt.shared.errors import (
    Disposition,
    InvalidRequest,
    UpstreamError,
    parse_retry_after,
    upstream_error,
)
from orbyt.shared.providers._google_config import (
    generation_config,
    reject_unsupported,
    thinking_family,
    tool_config,
    tools,
)
from orbyt.shared.providers._google_contents import convert_messages
from orbyt.shared.providers._google_response import (
    GoogleStreamState,
    Malformed,
    response_choices,
    stream_items,
    usage,
)
from orbyt.shared.providers.base import Json, StreamState, Target, UpstreamRequest
from orbyt.shared.sse import SSEEvent

_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)s", re.ASCII)
_TYPE_PREFIX = "type.googleapis.com/google.rpc."
_CONTEXT_MESSAGE = "exceeds the maximum number of tokens"


class GoogleAdapter:
    name: ClassVar[str] = "google"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__GOOGLE__KEYS"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    needs_key: ClassVar[bool] = True

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        model = upstream_model(target.upstream_model)
        stream = body.get("stream") is True
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        base = (target.base_url or self.default_base_url).rstrip("/")
        headers = {"content-type": "application/json", "accept": "application/json"}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key.reveal()
        try:
            payload = orjson.dumps(build_payload(body, model))
        except orjson.JSONEncodeError:
            raise InvalidRequest("The request holds a value JSON cannot carry.") from None
        return UpstreamRequest(
            method="POST",
            url=f"{base}/v1beta/models/{model}:{method}",
            headers=headers,
            body=payload,
            stream=stream,
        )

    def parse_response(self, raw: bytes, target: Target) -> Json:
        body = _loads(raw)
        if body is not None and body.get("error"):
            raise _in_band_error(body["error"])
        try:
            if body is None:
                raise Malformed("not a JSON object")
            out: Json = {"choices": response_choices(body)}
        except Malformed:
            raise upstream_error(
                502, "google: malformed response body", type="server_error"
            ) from None
        tokens = usage(body.get("usageMetadata"))
        if tokens is not None:
            out["usage"] = tokens
        return out

    def new_stream_state(self, body: Json, target: Target) -> StreamState:
        n = body.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            n = 1
        return GoogleStreamState(candidates=n)

    def parse_event(self, event: SSEEvent, state: StreamState) -> list[Json]:
        if not isinstance(state, GoogleStreamState):
            raise TypeError("google.parse_event needs the state from new_stream_state")
        data = event.data.strip()
        if not data:
            return []
        body = _loads(data)
        if body is None:
            state.malformed += 1
            return []
        if body.get("error"):
            raise _in_band_error(body["error"])
        try:
            return stream_items(body, state)
        except Malformed:
            state.malformed += 1
            return []

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        body = _loads(raw)
        if body is None:
            return upstream_error(
                status,
                f"google: {_plain_message(status, raw)}",
                retry_after=parse_retry_after(headers),
            )
        error = body.get("error")
        if isinstance(error, str):
            error = {"message": error}
        return error_from(status, error if isinstance(error, dict) else {}, headers)


def upstream_model(model: str) -> str:
    name = model.removeprefix("models/")
    if not _MODEL.fullmatch(name):
        raise InvalidRequest("Invalid google model name.", param="model", code="model_not_found")
    return name


def build_payload(body: Json, model: str) -> Json:
    """The generateContent request body for a validated OpenAI chat body."""
    reject_unsupported(body)
    family = thinking_family(model)
    system, contents = convert_messages(body.get("messages"), needs_signature=family == "level")
    payload: Json = {"contents": contents}
    if system is not None:
        payload["systemInstruction"] = system
    config = generation_config(body, model)
    if config:
        payload["generationConfig"] = config
    declarations = tools(body)
    if declarations:
        payload["tools"] = declarations
    choice = tool_config(body.get("tool_choice"))
    if choice is not None:
        payload["toolConfig"] = choice
    return payload


def _loads(raw: bytes | str) -> Json | None:
    """A JSON object (the first element of a JSON array, as non-SSE streams send), or None."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    return value if isinstance(value, dict) else None


def _plain_message(status: int, raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    if not text or text.startswith("<"):
        return f"upstream returned HTTP {status}"
    return text.splitlines()[0][:200]


def _in_band_error(error: Any) -> UpstreamError:
    """An `{"error": ...}` object inside a 200 body or a stream."""
    if not isinstance(error, dict):
        return upstream_error(500, f"google: {str(error)[:200]}")
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return error_from(status, error, {})


def error_from(status: int, error: Json, headers: Mapping[str, str]) -> UpstreamError:
    """Translate Gemini's `{"code", "message", "status", "details"}` error object."""
    message = error.get("message")
    text = f"google: {message if isinstance(message, str) and message else f'HTTP {status}'}"
    details = _details(error.get("details"))
    state = error.get("status")
    code = state.lower() if isinstance(state, str) and state else None
    retry_after = _retry_delay(details) or parse_retry_after(headers)
    if status == 400 and _reason(details) == "API_KEY_INVALID":
        return upstream_error(401, text, code="invalid_api_key", disposition=Disposition.AUTH)
    if status == 400 and _CONTEXT_MESSAGE in text.lower():
        return upstream_error(
            400, text, code="context_length_exceeded", disposition=Disposition.CONTEXT
        )
    if status == 429 and _quota_exhausted(details):
        return upstream_error(
            429,
            text,
            code="insufficient_quota",
            retry_after=retry_after,
            disposition=Disposition.QUOTA,
        )
    if status == 429:
        code = "rate_limit_exceeded"
    elif status == 401:
        code = "invalid_api_key"
    return upstream_error(status, text, code=code, retry_after=retry_after)


def _details(raw: Any) -> dict[str, Json]:
    """`details[]` keyed by the short type name (ErrorInfo, RetryInfo, QuotaFailure...)."""
    out: dict[str, Json] = {}
    for item in raw if isinstance(raw, list) else []:
        kind = item.get("@type") if isinstance(item, dict) else None
        if isinstance(kind, str):
            out.setdefault(kind.removeprefix(_TYPE_PREFIX), item)
    return out


def _reason(details: dict[str, Json]) -> str | None:
    reason = details.get("ErrorInfo", {}).get("reason")
    return reason if isinstance(reason, str) else None


def _retry_delay(details: dict[str, Json]) -> float | None:
    delay = details.get("RetryInfo", {}).get("retryDelay")
    match = _DURATION.fullmatch(delay) if isinstance(delay, str) else None
    return float(match.group(1)) if match else None


def _quota_exhausted(details: dict[str, Json]) -> bool:
    """A per-day quota, or a quota of zero (model not available on this key's tier)."""
    violations = details.get("QuotaFailure", {}).get("violations")
    for violation in violations if isinstance(violations, list) else []:
        if not isinstance(violation, dict):
            continue
        quota_id = violation.get("quotaId")
        if isinstance(quota_id, str) and "PerDay" in quota_id:
            return True
        if str(violation.get("quotaValue")) == "0":
            return True
    return False


ADAPTER = GoogleAdapter()
