"""POST /v1/chat/completions: authenticate, validate, build the job, render the answer
(DESIGN §6.2); `api.endpoint` accepts it and `api.exchange` owns everything in between.

The endpoint is a plain ASGI callable (`ENDPOINT`), not a FastAPI handler: it renders
straight to `send` a JSON answer, an error, or a lean SSE stream whose headers go out only
with the first content frame (so a request that fails everywhere gets a real HTTP error
status). FastAPI serves it as a Starlette route (its OpenAPI entry is `openapi_operation`);
`orbyt api` serves it through `api.fastpath`. Errors go through the one mapper,
`errors.render_exception`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.routing import Route
from starlette.types import Send

from orbyt.api.auth import Principal
from orbyt.api.endpoint import QueuedEndpoint, allowed_plan, new_job
from orbyt.api.exchange import ClientGone, Exchange
from orbyt.api.rendering import SSE_HEADERS, route_headers, send_frame_error, send_whole
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import DELTA, DONE, ERROR, ChatJob, Frame
from orbyt.shared.embeddings import check_chat_plan
from orbyt.shared.errors import OrbytError
from orbyt.shared.routing import resolve_plan
from orbyt.shared.sse import DONE as SSE_DONE
from orbyt.shared.sse import encode_data
from orbyt.shared.wire import (
    ChatRequest,
    Extra,
    chat_request_schema,
    check_fields,
    parse_chat_request,
)

PATH = "/v1/chat/completions"


def build_job(
    st: AppState, rid: str, body: dict[str, Any], req: ChatRequest, principal: Principal
) -> ChatJob:
    settings = st.settings
    check_fields(body, req.model, settings)  # unknown top-level fields: 400, never forwarded
    extra = req.extra
    plan = resolve_plan(req.model, extra, st.catalog, settings)
    check_chat_plan(plan, st.catalog)  # embedding models answer on /v1/embeddings only
    plan = allowed_plan(plan, principal)
    body.pop("extra", None)  # Orbyt's own field, and it may hold a BYOK key
    stream = bool(req.stream)
    usage = stream and bool(req.stream_options and req.stream_options.include_usage)
    return new_job(st, rid, body, plan, extra, principal, stream=stream, include_usage=usage)


async def parse_and_build(
    st: AppState, rid: str, raw: bytes, principal: Principal
) -> tuple[ChatJob, Extra | None]:
    body, req = parse_chat_request(raw, st.settings.max_messages)
    return build_job(st, rid, body, req, principal), req.extra


def openapi_operation() -> dict[str, Any]:
    """The OpenAPI entry of the chat route (FastAPI documents only its own handlers)."""
    return {
        "summary": "Chat Completions",
        "description": "OpenAI's chat completions, routed with fallbacks (`extra`).",
        "operationId": "chat_completions_v1_chat_completions_post",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": chat_request_schema()}},
        },
        "responses": {
            "200": {"description": "Successful Response", "content": {"application/json": {}}}
        },
    }


async def answer(ex: Exchange, first: Frame, send: Send) -> None:
    rid = ex.job["rid"]
    if first.kind == ERROR:
        await send_frame_error(send, first, rid)
    elif ex.job["stream"]:
        await stream(ex, first, send)
    else:  # a non-stream reply is one DONE frame
        await send_whole(send, 200, first.payload, route_headers(rid, first.meta))


async def stream(ex: Exchange, frame: Frame, send: Send) -> None:
    headers = SSE_HEADERS + route_headers(ex.job["rid"], frame.meta)
    metrics.ACTIVE_STREAMS.inc()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while True:
            await send({"type": "http.response.body", "body": sse_bytes(frame), "more_body": True})
            if frame.kind != DELTA:
                break
            try:
                frame = await ex.next()
            except OrbytError as err:  # the reply broke: said in-band, then the stream ends
                body = encode_data(orjson.dumps(err.body()))
                await send({"type": "http.response.body", "body": body, "more_body": True})
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # a server that raises on a write to a closed socket
        raise ClientGone from None
    finally:
        metrics.ACTIVE_STREAMS.dec()


def sse_bytes(frame: Frame) -> bytes:
    """A DELTA frame's payload is SSE already; DONE adds `[DONE]`; ERROR is wrapped."""
    if frame.kind == DELTA:
        return frame.payload
    if frame.kind == DONE:
        return frame.payload + SSE_DONE if frame.payload else SSE_DONE
    return encode_data(frame.payload)


ENDPOINT = QueuedEndpoint(PATH, parse_and_build, answer)
router = APIRouter()
router.routes.append(Route(PATH, ENDPOINT, methods=["POST"], include_in_schema=False))
