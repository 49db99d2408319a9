"""Response headers that cannot fail to encode, and the plain responses built on them:
whole JSON answers, a worker's ERROR frame as the HTTP answer, the route headers
(`x-request-id`, `x-orbyt-*`) and the SSE headers every queued endpoint sends.

Header values come from places the API does not control (a model id as the caller spelled it,
an upstream's own error headers). HTTP carries bytes, and Starlette encodes `str` values as
latin-1, so a CJK or emoji model id used to raise `UnicodeEncodeError` (a 500 after the
upstream had already answered) and a CR/LF could only be refused by the server. Here a
value made of visible ASCII and spaces goes out as is; any other value is percent-encoded
(UTF-8, RFC 3986 style, `%` itself included), so every header renders, always.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from starlette.responses import Response
from starlette.types import Send

from orbyt.shared.contract import DONE, Frame

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"x-accel-buffering", b"no"),
]

# everything printable in ASCII except "%": kept as is when the value needs encoding at all
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(value: object) -> bytes:
    """One header value as bytes: visible ASCII unchanged, anything else percent-encoded."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text.encode("ascii")
    return quote(text, safe=_SAFE).encode("ascii")


def header_list(headers: Mapping[str, object]) -> list[tuple[bytes, bytes]]:
    """ASGI header pairs (lower-case names; names are Orbyt's or an upstream's token names)."""
    return [(header_value(k).lower(), header_value(v)) for k, v in headers.items()]


def json_response(body: bytes, status: int, headers: Mapping[str, object]) -> Response:
    """Pre-rendered JSON bytes with headers that always encode."""
    response = Response(body, status_code=status, media_type="application/json")
    response.raw_headers.extend(header_list(headers))
    return response


async def send_whole(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """A complete JSON response, straight to ASGI `send`."""
    start = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": start + headers})
    await send({"type": "http.response.body", "body": body})


def frame_status(frame: Frame) -> int:
    """The HTTP status a DONE or ERROR frame ends the request with."""
    return 200 if frame.kind == DONE else int((frame.meta or {}).get("status", 502))


def route_headers(rid: str, meta: Mapping[str, object] | None) -> list[tuple[bytes, bytes]]:
    """`x-request-id` and, once a worker said who answers, the `x-orbyt-*` headers."""
    headers: dict[str, object] = {"x-request-id": rid}
    if meta:
        headers["x-orbyt-model"] = meta.get("model")
        headers["x-orbyt-provider"] = meta.get("provider")
        headers["x-orbyt-attempts"] = meta.get("attempts")
        headers["x-orbyt-key-source"] = meta.get("key_source")
    return header_list(headers)


async def send_frame_error(send: Send, frame: Frame, rid: str) -> None:
    """A worker's ERROR frame as the HTTP answer: its status, its (upstream) headers."""
    meta = frame.meta or {}
    upstream = meta.get("headers")
    headers: dict[str, object] = dict(upstream) if isinstance(upstream, Mapping) else {}
    headers["x-request-id"] = rid
    if meta.get("attempts"):
        headers["x-orbyt-attempts"] = meta["attempts"]
    await send_whole(send, frame_status(frame), frame.payload, header_list(headers))
