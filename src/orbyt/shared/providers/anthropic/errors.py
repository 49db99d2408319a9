"""Anthropic error bodies and in-band error objects -> `UpstreamError`. Pure.

The classification (status, OpenAI type/code, disposition) is in `classify`; the table of
how each Anthropic error type maps is `ERROR_TYPES`. See the module docstring of
`shared.providers.anthropic` for the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from orbyt.shared.errors import Disposition, UpstreamError, parse_retry_after, upstream_error
from orbyt.shared.providers.base import Json

PROVIDER = "anthropic"

# Anthropic error.type -> (HTTP status it comes with, OpenAI error type, OpenAI code)
ERROR_TYPES: dict[str, tuple[int, str, str | None]] = {
    "invalid_request_error": (400, "invalid_request_error", None),
    "authentication_error": (401, "authentication_error", "invalid_api_key"),
    "billing_error": (402, "insufficient_quota", "insufficient_quota"),
    "permission_error": (403, "permission_error", "permission_denied"),
    "not_found_error": (404, "invalid_request_error", "not_found"),
    "conflict_error": (409, "conflict_error", "conflict"),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "rate_limit_error", "rate_limit_exceeded"),
    "api_error": (500, "server_error", None),
    "timeout_error": (504, "timeout_error", "timeout"),
    "overloaded_error": (529, "server_error", "overloaded"),
}
_TYPE_BY_STATUS = {status: name for name, (status, _, _) in ERROR_TYPES.items()}
_TYPE_BY_STATUS[503] = "overloaded_error"

# `error.details.error_code` values that mean "this key/org cannot spend more": not retryable.
SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)
# Anthropic has no code for these; its messages are the only signal (lower-cased substrings).
CONTEXT_MESSAGES = ("prompt is too long", "exceed context limit", "exceeds the context window")
QUOTA_MESSAGES = ("credit balance is too low",)


def load_object(raw: bytes) -> Json | None:
    """A JSON object, or None for anything else (not JSON, an array, a number...)."""
    try:
        value = orjson.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def map_anthropic_error(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    body = load_object(raw.strip())
    err = body.get("error") if body is not None else None
    if isinstance(err, dict):
        etype = err.get("type") if isinstance(err.get("type"), str) else None
        message = err.get("message") if isinstance(err.get("message"), str) else None
        details = err.get("details")
        code = details.get("error_code") if isinstance(details, dict) else None
    else:
        etype, message, code = None, _snippet(raw), None
    lowered = {k.lower(): v for k, v in headers.items()}
    return classify(
        status,
        etype,
        message or f"upstream returned HTTP {status}",
        code if isinstance(code, str) else None,
        parse_retry_after(lowered),
    )


def error_from_object(err: Any) -> UpstreamError:
    """An error object that arrived without an HTTP error status (stream `error` event, or a
    200 body of type "error"): its status comes from its type."""
    if not isinstance(err, dict):
        return classify(502, None, "malformed error event", None, None)
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    status = ERROR_TYPES[etype][0] if etype in ERROR_TYPES else 500
    message = err.get("message") if isinstance(err.get("message"), str) else None
    details = err.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    return classify(
        status,
        etype,
        message or etype or "stream error",
        code if isinstance(code, str) else None,
        None,
    )


def classify(
    status: int, etype: str | None, message: str, detail_code: str | None, retry_after: float | None
) -> UpstreamError:
    """The one place an Anthropic failure becomes an UpstreamError with OpenAI's type/code."""
    if etype not in ERROR_TYPES:
        etype = _TYPE_BY_STATUS.get(status)
    otype: str | None = None
    code: str | None = None
    if etype in ERROR_TYPES:
        _, otype, code = ERROR_TYPES[etype]
    lowered = message.lower()
    disposition: Disposition | None = None
    if (
        detail_code in SPEND_LIMIT_CODES
        or etype == "billing_error"
        or any(m in lowered for m in QUOTA_MESSAGES)
    ):
        otype, code, disposition = "insufficient_quota", "insufficient_quota", Disposition.QUOTA
    elif 400 <= status < 500 and any(m in lowered for m in CONTEXT_MESSAGES):
        otype, code = "invalid_request_error", "context_length_exceeded"
        disposition = Disposition.CONTEXT
    elif etype == "not_found_error" and "model" in lowered:
        code = "model_not_found"
    return upstream_error(
        status,
        f"{PROVIDER}: {message}",
        type=otype,
        code=code,
        retry_after=retry_after,
        disposition=disposition,
    )


def _snippet(raw: bytes) -> str | None:
    """A short plain-text body (a proxy's "upstream connect error"); HTML pages are noise."""
    text = " ".join(raw.decode("utf-8", errors="replace").split())[:200]
    return text if text and not text.startswith("<") else None
