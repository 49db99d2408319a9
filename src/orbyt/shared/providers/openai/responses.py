"""OpenAI's own Responses API (`POST {base}/responses`): the native route of a
`/v1/responses` request whose provider is `openai` (nothing lost in translation).

Pure functions: `native_request` sends the caller's Responses body (its conversation
already rebuilt as input items, `store: false` upstream: Orbyt keeps the state), the
upstream model id and the pool or BYOK key; `parse_native` checks a non-stream Response;
`parse_native_event` checks one stream event and raises the `UpstreamError` an `error` or
`response.failed` event stands for; `chat_usage` gives Responses usage the chat shape the
usage records take. Errors of a status >= 400 have OpenAI's shape (`map_openai_error`).
"""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.errors import Disposition, UpstreamError
from orbyt.shared.providers.base import Json, StreamState, Target, UpstreamRequest
from orbyt.shared.providers.openai.request import json_post
from orbyt.shared.providers.openai.response import malformed
from orbyt.shared.sse import SSEEvent

PROVIDER = "openai"
ENDS = ("response.completed", "response.incomplete")


def native_request(request: Json, target: Target) -> UpstreamRequest:
    payload = {**request, "model": target.upstream_model, "store": False}
    return json_post(target.base_url.rstrip("/") + "/responses", payload, target.api_key)


def failure(error: Any) -> UpstreamError:
    """The UpstreamError for a failed Response's `error` (or an `error` event): a server
    error or rate limit may be retried elsewhere, anything else is the caller's (400)."""
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = str(error.get("message") or "the response failed")
    retry = code in (None, "server_error", "rate_limit_exceeded")
    return UpstreamError(
        f"{PROVIDER}: {message}",
        status=503 if retry else 400,
        disposition=Disposition.RETRY if retry else Disposition.FINAL,
        code=str(code) if code else "upstream_error",
    )


def parse_native(raw: bytes) -> Json:
    """A non-stream Response; a 502 if it is none, the upstream's failure if it failed."""
    try:
        body = orjson.loads(raw.strip())
    except orjson.JSONDecodeError:
        raise malformed(PROVIDER) from None
    if not isinstance(body, dict) or not isinstance(body.get("output"), list):
        raise malformed(PROVIDER)
    if body.get("status") == "failed":
        raise failure(body.get("error"))
    return body


def parse_native_event(event: SSEEvent, state: StreamState) -> list[Json]:
    """One stream event as a dict ([] for keep-alives and malformed events)."""
    data = event.data
    if not data.strip() or data.startswith("[DONE]"):
        return []
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        state.malformed += 1
        return []
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        state.malformed += 1
        return []
    kind = body["type"]
    if kind == "error":
        raise failure(body)
    if kind == "response.failed":
        raise failure((body.get("response") or {}).get("error"))
    if kind in ENDS:
        state.done = True
    return [body]


def chat_usage(usage: Any) -> Json | None:
    """Responses usage in the chat shape (`prompt_tokens`, ...) the usage records take."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(cached)},
        "completion_tokens_details": {"reasoning_tokens": int(reasoning)},
    }
