"""OpenAI-shaped error bodies (`{"error": {"message", "type", "code", "param"}}`) ->
`UpstreamError`, over HTTP and inside a stream."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orbyt.shared.errors import Disposition, UpstreamError, parse_retry_after, upstream_error
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.openai.response import loads_object

QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})

# A key as providers quote it in 401 messages, masked ("...provided: sk-pro****q2Rs."): its
# visible ends are still key material (the gateway's own pool key), so the quote goes.
MASKED_KEY = re.compile(r":?\s*[A-Za-z0-9_-]*\*{4,}[A-Za-z0-9_-]*")


def scrub_masked_key(message: str) -> str:
    return MASKED_KEY.sub("", message)


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
    return upstream_error(
        status,
        f"{provider}: {message}",
        type=etype,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )


def openai_chunk_error(provider: str, chunk: Json) -> UpstreamError | None:
    """The error a stream chunk carries (`{"error": ...}`), or None: server-side types are
    a retryable 503, anything else a 400."""
    if not chunk.get("error"):
        return None
    message, etype, code, _ = error_fields(chunk)
    status = 503 if etype in (None, "server_error", "overloaded_error") else 400
    return upstream_error(status, f"{provider}: {message}", type=etype, code=code)
