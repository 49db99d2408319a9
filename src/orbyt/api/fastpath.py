"""The queued endpoints without the framework's layers.

`POST /v1/chat/completions`, `/v1/embeddings` and `/v1/responses` are the hot routes: every
request and every streamed chunk used to pass through FastAPI's routing, dependency and
exception layers (bench/README.md "Ablations" measures what that costs). `FastPath` wraps
the FastAPI app and serves those routes with the very endpoints the app routes to (each
route module's `ENDPOINT`, an `api.endpoint.QueuedEndpoint`), wrapped in the same edge
middleware (`middleware.edge`); errors go through the same mapper. Everything else (and
lifespan) goes to FastAPI unchanged.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from orbyt.api.middleware import edge
from orbyt.api.routes import chat, embeddings, responses


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
