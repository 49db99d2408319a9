"""Mistral error bodies -> `UpstreamError`: its flat `{"object": "error", "message", "type",
"code", "raw_status_code"}`, FastAPI's 422 `{"detail": [...]}` (never echoing `input`) and
non-JSON bodies; over HTTP, in a 200 body and inside a stream. See `shared.providers.mistral`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orbyt.shared.errors import Disposition, UpstreamError, parse_retry_after, upstream_error
from orbyt.shared.providers.base import Json
from orbyt.shared.providers.openai.response import loads_object

PROVIDER = "mistral"

CONTEXT_MARKERS = ("too large for model", "exceeds the context", "maximum context length")
RATE_LIMIT_TYPES = frozenset({"rate_limited", "rate_limit_error"})
OPENAI_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "rate_limit_error",
        "server_error",
    }
)
MAX_MESSAGE = 1000


def _param(loc: Any) -> str | None:
    if not isinstance(loc, list):
        return None
    out = ""
    for part in loc[1:] if loc[:1] == ["body"] else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _detail(detail: Any) -> tuple[str, str | None]:
    """Message and param of a FastAPI `detail` (a string, or a list of {loc, msg, type})."""
    if isinstance(detail, str):
        return detail, None
    parts: list[str] = []
    first: str | None = None
    for item in detail[:5] if isinstance(detail, list) else []:
        if not isinstance(item, dict):
            continue
        where = _param(item.get("loc"))
        msg = str(item.get("msg") or item.get("type") or "invalid value")
        parts.append(f"{where}: {msg}" if where else msg)
        first = first or where
    return "; ".join(parts) or "invalid request", first


def _fields(body: Json | None) -> tuple[str, str | None, Any, str | None, Any]:
    """(message, type, code, param, raw_status_code) of any Mistral error body."""
    if body is None:
        return "", None, None, None, None
    source: Json = body["error"] if isinstance(body.get("error"), dict) else body
    message: Any = source.get("message")
    param = source.get("param") if isinstance(source.get("param"), str) else None
    if isinstance(message, dict) and "detail" in message:
        message, param = _detail(message["detail"])
    elif message is None and "detail" in source:
        message, param = _detail(source["detail"])
    elif message is None and isinstance(body.get("error"), str):
        message = body["error"]
    etype = source.get("type") if isinstance(source.get("type"), str) else None
    return str(message or ""), etype, source.get("code"), param, source.get("raw_status_code")


def error_from_body(status: int, body: Json | None, headers: Mapping[str, str]) -> UpstreamError:
    message, etype, code, param, raw_status = _fields(body)
    message = (message or f"upstream returned HTTP {status}")[:MAX_MESSAGE]
    code = str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else None
    disposition: Disposition | None = None
    if etype in RATE_LIMIT_TYPES:
        status, etype, code = 429, "rate_limit_error", code or "rate_limit_exceeded"
    elif isinstance(raw_status, int) and 500 <= raw_status <= 599:
        disposition = Disposition.RETRY
        status = status if status >= 500 else raw_status
    if any(marker in message.lower() for marker in CONTEXT_MARKERS):
        code, disposition = "context_length_exceeded", Disposition.CONTEXT
    if etype == "invalid_function_call":
        etype = "invalid_request_error"
    return upstream_error(
        status,
        f"{PROVIDER}: {message}",
        type=etype if etype in OPENAI_TYPES else None,
        code=code,
        param=param,
        retry_after=parse_retry_after(headers),
        disposition=disposition,
    )


def map_error(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    return error_from_body(status, loads_object(raw.strip()), headers)


def body_error(body: Json) -> UpstreamError | None:
    """The error a 200 body or a stream chunk carries (a retryable 502), or None."""
    if body.get("object") == "error" or body.get("error"):
        return error_from_body(502, body, {})
    return None
