"""The chat endpoint without the framework's layers.

`POST /v1/chat/completions` is the only hot route: every request and every streamed chunk
used to pass through FastAPI's routing, dependency and exception layers and five
middlewares. `ChatFastPath` wraps the FastAPI app and serves that one route with the same
handler (`api.routes.chat.handle_chat`), the same OpenAI error bodies and the same security
headers; everything else (and lifespan) goes to FastAPI unchanged. The FastAPI route stays
for the OpenAPI document and in-process tests.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from orbyt.api.errors import error_response
from orbyt.api.middleware import with_security_headers
from orbyt.api.routes.chat import handle_chat
from orbyt.shared.errors import OrbytError

log = logging.getLogger("orbyt.api")
PATH = "/v1/chat/completions"


class ChatFastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await handle_chat(self.app.state.orbyt, request)
        except OrbytError as exc:
            response = error_response(exc, getattr(request.state, "request_id", None))
        except Exception as exc:
            log.error("unhandled %s on %s", type(exc).__name__, PATH)
            response = error_response(OrbytError("The gateway hit an internal error."))
        await response(scope, receive, with_security_headers(send))
