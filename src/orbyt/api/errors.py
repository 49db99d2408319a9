"""Every error leaves the API as OpenAI's error JSON (DESIGN §2); never a bare 500.

`render_exception` is the one mapper from an exception to a response: FastAPI's exception
handlers and the chat endpoint (`api.routes.chat`, also served by `api.edge.FastPath`) both call
it, so every route answers an error the same way. Header values are rendered by
`api.rendering`, which cannot fail on any input.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from orbyt.api.rendering import header_list
from orbyt.shared.errors import InvalidRequest, NotFound, OrbytError

log = logging.getLogger("orbyt.api")


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
