"""Gemini errors -> `UpstreamError`: HTTP error bodies, `{"error": ...}` inside a 200 body or
a stream, and non-JSON bodies. `load_object` reads every Gemini body. See
`shared.providers.google`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from orbyt.shared.errors import Disposition, UpstreamError, parse_retry_after, upstream_error
from orbyt.shared.providers.base import Json

_DURATION = re.compile(r"(\d+(?:\.\d+)?)s", re.ASCII)
_TYPE_PREFIX = "type.googleapis.com/google.rpc."
_CONTEXT_MESSAGE = "exceeds the maximum number of tokens"


def map_error(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    body = load_object(raw)
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


def load_object(raw: bytes | str) -> Json | None:
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


def in_band_error(error: Any) -> UpstreamError:
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
