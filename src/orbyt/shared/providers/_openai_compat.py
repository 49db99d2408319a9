"""Shared pieces for upstreams that speak OpenAI's Chat Completions format."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from orbyt.shared.errors import (
    Disposition,
    InvalidRequest,
    UpstreamError,
    parse_retry_after,
    upstream_error,
)
from orbyt.shared.providers.base import Json, StreamState, UpstreamRequest
from orbyt.shared.secret import Secret
from orbyt.shared.sse import SSEEvent

# Orbyt's own fields never go upstream.
GATEWAY_FIELDS = frozenset({"extra"})

QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})

# A key as providers quote it in 401 messages, masked ("...provided: sk-pro****q2Rs."): its
# visible ends are still key material (the gateway's own pool key), so the quote goes.
MASKED_KEY = re.compile(r":?\s*[A-Za-z0-9_-]*\*{4,}[A-Za-z0-9_-]*")


def scrub_masked_key(message: str) -> str:
    return MASKED_KEY.sub("", message)


def loads_object(raw: bytes) -> Json | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def error_fields(body: Json | None) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-shaped error body."""
    err: Any = (body or {}).get("error")
    if isinstance(err, dict):
        code = err.get("code")
        return (
            scrub_masked_key(str(err.get("message") or "upstream error")),
            err.get("type") if isinstance(err.get("type"), str) else None,
            str(code) if code is not None else None,
            err.get("param") if isinstance(err.get("param"), str) else None,
        )
    if isinstance(err, str):
        return scrub_masked_key(err), None, None, None
    return "upstream error", None, None, None


def map_openai_error(
    provider: str, status: int, headers: Mapping[str, str], raw: bytes
) -> UpstreamError:
    body = loads_object(raw.strip())
    message, etype, code, param = error_fields(body)
    disposition: Disposition | None = None
    if code in QUOTA_CODES:
        disposition = Disposition.QUOTA
    elif code == "context_length_exceeded" or "maximum context length" in message.lower():
        disposition = Disposition.CONTEXT
        code = "context_length_exceeded"
    err = upstream_error(
        status,
        f"{provider}: {message}",
        type=etype,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )
    return err


def load_chunk(data: str, state: StreamState) -> Json | None:
    """One stream event's JSON object, or None (counted as malformed, skipped)."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        chunk = None
    if not isinstance(chunk, dict):
        state.malformed += 1
        return None
    return chunk


def chunk_choices(chunk: Json, state: StreamState) -> list[Any] | None:
    """A chunk's `choices` list, or None (counted as malformed, skipped)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        state.malformed += 1
        return None
    return choices


def parse_openai_event(provider: str, event: SSEEvent, state: StreamState) -> list[Json]:
    data = event.data
    if not data.strip():
        return []
    if data.startswith("[DONE]"):
        state.done = True
        return []
    chunk = load_chunk(data, state)
    if chunk is None:
        return []
    if chunk.get("error"):
        message, etype, code, _ = error_fields(chunk)
        status = 503 if etype in (None, "server_error", "overloaded_error") else 400
        raise upstream_error(status, f"{provider}: {message}", type=etype, code=code)
    choices = chunk_choices(chunk, state)
    if choices is None:
        return []
    for choice in choices:
        if isinstance(choice, dict) and choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    out: Json = {"choices": choices}
    usage = chunk.get("usage")
    if usage:
        out["usage"] = usage
    return [out]


def parse_openai_response(provider: str, raw: bytes) -> Json:
    body = loads_object(raw.strip())
    if body is None or not isinstance(body.get("choices"), list):
        raise upstream_error(502, f"{provider}: malformed response body", type="server_error")
    out: Json = {"choices": body["choices"]}
    if body.get("usage"):
        out["usage"] = body["usage"]
    if body.get("system_fingerprint"):
        out["system_fingerprint"] = body["system_fingerprint"]
    return out


# -- helpers shared by the adapters of OpenAI-shaped providers (Mistral, DeepSeek)


def reject(provider: str, param: str, message: str) -> InvalidRequest:
    """A request field this provider cannot take: a 400 naming the field."""
    return InvalidRequest(
        f"{message} (provider {provider}).", param=param, code="unsupported_parameter"
    )


def message_list(provider: str, messages: Any) -> list[Any]:
    if not isinstance(messages, list) or not messages:
        raise reject(provider, "messages", "'messages' must be a non-empty list")
    return messages


def reject_fields(provider: str, label: str, payload: Json, names: Iterable[str]) -> None:
    """Fields with no equivalent upstream, and output modalities other than text."""
    for name in names:
        if name in payload:
            raise reject(provider, name, f"'{name}' is not supported by {label}")
    modalities = payload.pop("modalities", None)
    if modalities is not None and modalities != ["text"]:
        raise reject(provider, "modalities", f"{label} only produces text")


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def malformed(provider: str) -> UpstreamError:
    return upstream_error(502, f"{provider}: malformed response body", type="server_error")


def json_post(url: str, payload: Json, api_key: Secret | None) -> UpstreamRequest:
    """A Bearer-authenticated JSON POST, as OpenAI-shaped APIs take it."""
    try:
        raw = orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError
        raise InvalidRequest("Request body cannot be encoded as JSON.") from None
    headers = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        headers["authorization"] = "Bearer " + api_key.reveal()
    return UpstreamRequest(
        method="POST", url=url, headers=headers, body=raw, stream=bool(payload.get("stream"))
    )
