"""Wire-level building blocks shared by the fakes: records, frames, error specs, SSE."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it. ``json`` is None when the body is not JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any
    at: float  # time.monotonic()
    body: bytes = b""


FrameKind = Literal["meta", "token", "tail", "end"]


@dataclass(frozen=True)
class Frame:
    """One chunk of a streamed answer.

    kind: "token" (one generated delta; fault positions count these and ttft/per_token delays
    precede them), "meta" (structure such as role chunks or block starts, written as is),
    "tail" (finish/usage after the tokens) or "end" (terminator, dropped when no_terminator).
    """

    data: bytes
    kind: FrameKind = "token"


@dataclass(frozen=True)
class ErrorSpec:
    """A provider error variant. ``message`` may contain {model} and {key} placeholders.

    ``type`` is the provider's error type (Gemini: the ``status`` string); ``extra`` holds
    provider-specific parts (Anthropic ``details``, Gemini ``details`` list, ...).
    """

    status: int
    message: str
    type: str
    param: str | None = None
    code: Any = None
    extra: Any = None


@dataclass
class Exchange:
    """Per-request scratch state of a fake (``fake.exchange(request)``)."""

    json: Any = None
    api_key: str | None = None
    model: str = ""
    request_id: str | None = None
    closed_by_server: bool = False
    disconnect_noted: bool = False


@dataclass
class Call:
    """Context of one generation request, handed to the provider hooks."""

    request: web.Request
    body: dict[str, Any]
    model: str
    stream: bool
    kind: str = "chat"  # or the embeddings method ("embeddings", Gemini's "embedContent"...)


def sse(data: Any, event: str | None = None, newline: str = "\n") -> bytes:
    """Encode one server-sent event (compact JSON unless ``data`` is already a string)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


def malformed(frame: bytes) -> bytes:
    """The same frame with its JSON payload cut in half (still a complete SSE event)."""
    body = frame.rstrip(b"\r\n")
    tail = frame[len(body) :] or b"\n\n"
    idx = body.rfind(b"data: ")
    start = idx + len(b"data: ") if idx >= 0 else 0
    payload = body[start:]
    return body[:start] + payload[: max(1, len(payload) // 2)] + tail
