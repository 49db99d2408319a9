"""The API's edge: what every HTTP exchange passes through before any route.

- `EDGE`, the one list of pure ASGI middleware every response passes through (cheap on the
  hot path): `api.main` installs it on the FastAPI app and `FastPath` wraps the queued
  endpoints in the same list (`edge`), so middleware added here cannot skip the busiest
  routes.
- `FastPath`: `POST /v1/chat/completions`, `/v1/embeddings` and `/v1/responses` are the hot
  routes: every request and every streamed chunk used to pass through FastAPI's routing,
  dependency and exception layers (bench/README.md "Ablations" measures what that costs).
  `FastPath` wraps the FastAPI app and serves those routes with the very endpoints the app
  routes to (each route module's `ENDPOINT`, an `api.endpoint.QueuedEndpoint`), wrapped in
  `EDGE`; errors go through the same mapper. Everything else (and lifespan) goes to
  FastAPI unchanged.
- `RequireKey` puts operator endpoints (`/metrics`, `/openapi.json`) behind a bearer key
  when one is configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orbyt.api.errors import error_response
from orbyt.api.routes import chat, embeddings, responses
from orbyt.shared.errors import AuthenticationFailed

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


class FastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._routes: dict[str, ASGIApp] = {
            module.PATH: edge(module.ENDPOINT) for module in (chat, embeddings, responses)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._routes.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        await endpoint(scope, receive, send)
