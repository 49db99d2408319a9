"""OpenAI-shaped non-stream answers -> the OpenAI response dict the worker renders."""

from __future__ import annotations

from typing import Any

import orjson

from orbyt.shared.errors import UpstreamError, upstream_error
from orbyt.shared.providers.base import Json


def loads_object(raw: bytes | str) -> Json | None:
    """A JSON object, or None for anything else (not JSON, an array, a number...)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def malformed(provider: str) -> UpstreamError:
    return upstream_error(502, f"{provider}: malformed response body", type="server_error")


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def openai_response(body: Json, choices: list[Any]) -> Json:
    """OpenAI's own answer: `choices` as sent, with `usage` and `system_fingerprint` if set."""
    out: Json = {"choices": choices}
    if body.get("usage"):
        out["usage"] = body["usage"]
    if body.get("system_fingerprint"):
        out["system_fingerprint"] = body["system_fingerprint"]
    return out
