"""The API's edge: everything between the socket and a route's handler.

- **Header rendering** that cannot fail, and the plain responses built on it: whole JSON
  answers, a worker's ERROR frame as the HTTP answer, the route headers (`x-request-id`,
  `x-orbyt-*`) and the SSE headers every queued endpoint sends. Header values come from
  places the API does not control (a model id as the caller spelled it, an upstream's own
  error headers). HTTP carries bytes, and Starlette encodes `str` values as latin-1, so a
  CJK or emoji model id used to raise `UnicodeEncodeError` (a 500 after the upstream had
  already answered) and a CR/LF could only be refused by the server. Here a value made of
  visible ASCII and spaces goes out as is; any other value is percent-encoded (UTF-8,
  RFC 3986 style, `%` itself included), so every header renders, always.
- **The one error mapper**: every error leaves the API as OpenAI's error JSON (DESIGN §2),
  never a bare 500. `render_exception` maps an exception to a response; FastAPI's
  exception handlers (`install`) and the queued endpoints (`api.endpoint`) both call it, so
  every route answers an error the same way.
- **`EDGE`**, the one list of pure ASGI middleware every response passes through (cheap on
  the hot path): `api.main` installs it on the FastAPI app and `FastPath` wraps the queued
  endpoints in the same list (`edge`), so middleware added here cannot skip the busiest
  routes.
- **`FastPath`**: `POST /v1/chat/completions`, `/v1/embeddings` and `/v1/responses` are the
  hot routes: every request and every streamed chunk used to pass through FastAPI's
  routing, dependency and exception layers (bench/README.md "Ablations" measures what that
  costs). `FastPath` wraps the FastAPI app and serves the paths `api.main` gives it with
  the very endpoints the app routes to (each route module's `ENDPOINT`, an
  `api.endpoint.QueuedEndpoint`), wrapped in `EDGE`. Everything else (and lifespan) goes
  to FastAPI unchanged.
- **`RequireKey`** puts operator endpoints (`/metrics`, `/openapi.json`) behind a bearer
  key when one is configured.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orbyt.shared.contract import DONE, Frame
from orbyt.shared.errors import AuthenticationFailed, InvalidRequest, NotFound, OrbytError

log = logging.getLogger("orbyt.api")


# ------------------------------------------------------------------ header rendering
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


# ------------------------------------------------------------------ the error mapper
def error_response(err: OrbytError, request_id: str | None = None) -> Response:
    headers = err.response_headers()
    if request_id:
        headers["x-request-id"] = request_id
    response = JSONResponse(err.body(), status_code=err.status)
    response.raw_headers.extend(header_list(headers))
    return response


def render_exception(exc: Exception, path: str, request_id: str | None = None) -> Response:
    """The response for an exception raised while serving `path` (nothing sent yet)."""
    if isinstance(exc, OrbytError):
        return error_response(exc, request_id)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        invalid = InvalidRequest(f"Invalid request: {first.get('msg')}.", param=param)
        return error_response(invalid, request_id)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return error_response(NotFound(f"Unknown path {path!r}."), request_id)
        err = OrbytError(str(exc.detail), status=exc.status_code, type="invalid_request_error")
        return error_response(err, request_id)
    log.error("unhandled %s on %s", type(exc).__name__, path)
    return error_response(OrbytError("The gateway hit an internal error."), request_id)


async def _handle(request: Request, exc: Exception) -> Response:
    return render_exception(exc, request.url.path, getattr(request.state, "request_id", None))


def install(app: FastAPI) -> None:
    for kind in (OrbytError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, _handle)


# ------------------------------------------------------------------ middleware
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_NAMES = {name for name, _ in SECURITY_HEADERS}


def with_security_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0] not in _NAMES]
            message["headers"] = headers + SECURITY_HEADERS
        await send(message)

    return send_with_headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_security_headers(send))


EDGE: list[Callable[[ASGIApp], ASGIApp]] = [SecurityHeaders]  # outermost first


def edge(app: ASGIApp) -> ASGIApp:
    """`app` wrapped in the EDGE middleware, in the order FastAPI would apply them."""
    for middleware in reversed(EDGE):
        app = middleware(app)
    return app


class FastPath:
    def __init__(self, app: FastAPI, endpoints: Mapping[str, ASGIApp]) -> None:
        """`endpoints`: path -> the queued endpoint the app routes that path to."""
        self.app = app
        self._routes: dict[str, ASGIApp] = {path: edge(ep) for path, ep in endpoints.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._routes.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        await endpoint(scope, receive, send)


class RequireKey:
    """401 on `paths` unless the request carries `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, key: str, paths: frozenset[str]) -> None:
        self.app = app
        self._expected = f"Bearer {key}".encode()
        self._paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._paths:
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                denied = AuthenticationFailed("This endpoint needs the operator's metrics key.")
                await error_response(denied)(scope, receive, send)
                return
        await self.app(scope, receive, send)
