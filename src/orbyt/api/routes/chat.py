"""POST /v1/chat/completions: authenticate, validate, build the job, render the answer
(DESIGN §6.2); `api.exchange` owns everything in between.

The endpoint is a plain ASGI callable, not a FastAPI handler: it renders straight to `send`
a JSON answer, an error, or a lean SSE stream whose headers go out only with the first
content frame (so a request that fails everywhere gets a real HTTP error status). FastAPI
serves it as a Starlette route (its OpenAPI entry is `openapi_operation`); `orbyt api`
serves it through `api.fastpath`. Errors go through the one mapper, `errors.render_exception`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orbyt.api.auth import Principal
from orbyt.api.byok import byok_map, seal_sidecar
from orbyt.api.errors import render_exception
from orbyt.api.exchange import ClientGone, Exchange, Sidecar, frame_status
from orbyt.api.ledger import Ledger, log_rejected
from orbyt.api.rendering import header_list, send_whole
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import DELTA, DONE, ERROR, Candidate, ChatJob, Frame, reply_channel
from orbyt.shared.embeddings import check_chat_plan
from orbyt.shared.errors import OrbytError, PermissionDenied, RequestTooLarge
from orbyt.shared.logs import request_id_var
from orbyt.shared.routing import resolve_plan
from orbyt.shared.sse import DONE as SSE_DONE
from orbyt.shared.sse import encode_data
from orbyt.shared.wire import ChatRequest, chat_request_schema, check_fields, parse_chat_request

PATH = "/v1/chat/completions"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"x-accel-buffering", b"no"),
]


async def read_limited(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise RequestTooLarge(f"Request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"Request body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def allowed_plan(plan: list[Candidate], principal: Principal) -> list[Candidate]:
    """Keys without pool permission may only use their own provider keys (BYOK)."""
    if principal.pool_allowed:
        return plan
    allowed = [c for c in plan if c["key_source"] == "byok"]
    if not allowed:
        raise PermissionDenied(
            "This API key may only be used with your own provider keys (extra.byok).",
            code="pool_not_allowed",
        )
    return allowed


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
    timeout = extra.timeout if extra and extra.timeout else settings.default_timeout
    return ChatJob(
        rid=rid,
        channel=reply_channel(rid),
        body=body,
        plan=plan,
        strategy=(extra.provider if extra else None) or "ordered",
        key_id=principal.key_id,
        deadline=time.time() + timeout,
        byok=bool(extra and extra.byok is not None),
        retry=extra.retry if extra and extra.retry is not None else settings.default_retry,
        stream=stream,
        include_usage=stream and bool(req.stream_options and req.stream_options.include_usage),
    )


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


async def open_exchange(st: AppState, request: Request, rid: str) -> Exchange:
    """Authenticate, parse and validate: the exchange that will serve the request."""
    request.state.request_id = rid
    request_id_var.set(rid)
    settings = st.settings
    principal = await st.auth.authenticate(
        request.headers.get("authorization"), rid, hold_for=settings.default_timeout * 2
    )
    started = time.monotonic()
    try:
        body, req = parse_chat_request(
            await read_limited(request, settings.max_body_bytes), settings.max_messages
        )
        job = build_job(st, rid, body, req, principal)
        byok_keys = byok_map(req.extra, job["plan"]) if job["byok"] and req.extra else None
    except BaseException:
        st.spawn(st.auth.release(principal, rid))
        raise
    caller_trace = request.headers.get("traceparent")
    ledger = Ledger(st, principal, rid, job["plan"][0], started, caller_trace)
    sidecar: Sidecar | None = None
    if byok_keys is not None:
        try:
            sidecar = seal_sidecar(settings, rid, byok_keys)
        except OrbytError as err:
            await ledger.close(err.status, None)
            raise
    return Exchange(st, job, sidecar, ledger, request.receive)


class ChatEndpoint:
    """The ASGI endpoint of POST /v1/chat/completions (the app's state in `scope["app"]`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.orbyt
        rid = uuid.uuid4().hex
        started = time.monotonic()
        try:
            exchange = await open_exchange(st, Request(scope, receive), rid)
            async with exchange:
                await answer(exchange, await exchange.start(), send)
        except ClientDisconnect:  # gone before its body arrived: nobody to answer
            return
        except Exception as exc:  # nothing was sent yet: the one error mapper
            response = render_exception(exc, PATH, rid)
            log_rejected(rid, response.status_code, started)  # unless a ledger logged it
            await response(scope, receive, send)


router = APIRouter()
router.routes.append(Route(PATH, ChatEndpoint(), methods=["POST"], include_in_schema=False))


def route_headers(rid: str, meta: dict[str, Any] | None) -> list[tuple[bytes, bytes]]:
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
    headers: dict[str, object] = dict(meta.get("headers") or {})
    headers["x-request-id"] = rid
    if meta.get("attempts"):
        headers["x-orbyt-attempts"] = meta["attempts"]
    await send_whole(send, frame_status(frame), frame.payload, header_list(headers))


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
