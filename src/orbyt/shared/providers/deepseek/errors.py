"""DeepSeek error bodies -> `UpstreamError` (OpenAI-shaped, key material scrubbed), over
HTTP, in a 200 body and inside a stream. See `shared.providers.deepseek`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from orbyt.shared.errors import Disposition, UpstreamError, parse_retry_after, upstream_error
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.openai.errors import error_fields
from orbyt.shared.providers.openai.response import loads_object

PROVIDER = "deepseek"
MAX_MESSAGE = 1000

# The masked key of 401 messages (": ****abcd") and anything that looks like a whole key.
MASKED_KEY = re.compile(r":?\s*\*{2,}[A-Za-z0-9_-]*")
WHOLE_KEY = re.compile(r"sk-[A-Za-z0-9_-]{8,}")
CONTEXT_MARKERS = ("maximum context length", "context length exceeded")


def capacity_error(before_content: bool) -> UpstreamError:
    """finish_reason `insufficient_system_resource`: a retryable 503."""
    err = upstream_error(
        503,
        f"{PROVIDER}: generation stopped for lack of capacity "
        "(finish_reason 'insufficient_system_resource')",
        type="server_error",
        code="insufficient_system_resource",
    )
    err.before_content = before_content
    return err


def in_band_error(body: Json, started: bool) -> UpstreamError:
    """The `{"error": ...}` of a 200 body or a stream chunk (`started`: content went out)."""
    message, etype, code, _ = error_fields(body)
    status = 503 if etype in (None, "server_error", "overloaded_error") else 400
    err = upstream_error(status, f"{PROVIDER}: {scrub(message)}", type=etype, code=code)
    err.before_content = not started
    return err


def scrub(message: str) -> str:
    """Remove key material: DeepSeek's 401 says "Your api key: ****abcd is invalid"."""
    return WHOLE_KEY.sub("sk-***", MASKED_KEY.sub("", message))[:MAX_MESSAGE]


def map_error(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    body = loads_object(raw.strip())
    message, etype, code, param = error_fields(body)
    if body is None:
        message = f"upstream returned HTTP {status}"
    if code == "invalid_request_error":  # DeepSeek's catch-all code says nothing
        code = None
    disposition: Disposition | None = None
    if status == 402:
        etype, code, disposition = "billing_error", "insufficient_quota", Disposition.QUOTA
    elif status == 401:
        code = code or "invalid_api_key"
    elif status == 429:
        code = code or "rate_limit_exceeded"
    elif status == 400 and any(m in message.lower() for m in CONTEXT_MARKERS):
        code, disposition = "context_length_exceeded", Disposition.CONTEXT
    if etype == "unknown_error":
        etype = None
    return upstream_error(
        status,
        f"{PROVIDER}: {scrub(message)}",
        type=etype,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )
