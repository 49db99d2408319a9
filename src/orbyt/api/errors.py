"""Every error leaves the API as OpenAI's error JSON (DESIGN §2); never a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from orbyt.shared.errors import InvalidRequest, NotFound, OrbytError

log = logging.getLogger("orbyt.api")


def error_response(err: OrbytError, request_id: str | None = None) -> JSONResponse:
    headers = err.response_headers()
    if request_id:
        headers["x-request-id"] = request_id
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(OrbytError)
    async def _orbyt(request: Request, exc: OrbytError) -> Response:
        return error_response(exc, getattr(request.state, "request_id", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_response(InvalidRequest(f"Invalid request: {first.get('msg')}.", param=param))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(NotFound(f"Unknown path {request.url.path!r}."))
        err = OrbytError(str(exc.detail), status=exc.status_code, type="invalid_request_error")
        return error_response(err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
        return error_response(OrbytError("The gateway hit an internal error."))
