"""The chat endpoint without the framework's layers.

`POST /v1/chat/completions` is the only hot route: every request and every streamed chunk
used to pass through FastAPI's routing, dependency and exception layers and five
middlewares (measured: see the commit that introduced this module). `ChatFastPath` wraps
the FastAPI app and serves that one route with the very endpoint the app routes to
(`api.routes.chat.ChatEndpoint`), wrapped in the same edge middleware (`middleware.edge`);
errors go through the same mapper. `POST /v1/embeddings` is served the same way (its
endpoint is `api.routes.embeddings.EmbeddingsEndpoint`). Everything else (and lifespan) goes
to FastAPI unchanged.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from orbyt.api.middleware import edge
from orbyt.api.routes import embeddings
from orbyt.api.routes.chat import PATH, ChatEndpoint


class ChatFastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._chat = edge(ChatEndpoint())
        self._embeddings = edge(embeddings.EmbeddingsEndpoint())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
        elif scope["path"] == PATH:
            scope["app"] = self.app
            await self._chat(scope, receive, send)
        elif scope["path"] == embeddings.PATH:
            scope["app"] = self.app
            await self._embeddings(scope, receive, send)
        else:
            await self.app(scope, receive, send)
