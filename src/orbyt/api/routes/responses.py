"""OpenAI's Responses API: `POST /v1/responses`, `GET|DELETE /v1/responses/{id}` and
`GET /v1/responses/{id}/input_items`.

A POST is served like a chat request (`routes.chat`): the same authentication, validation
helpers (`shared.wire`), plan, BYOK side-car, `Exchange`, queue and workers, as a job of
kind "responses" whose body is the chat translation (`shared.responses.request.to_chat`)
and whose `responses.request` is the Responses body for OpenAI's own API (the native route
of provider `openai`, `worker.native`). Tool types other than `function` are accepted only
when every route of the plan is native. The worker renders the Response (or its events) and
stores it; this module relays the bytes. A stream that breaks after content ends with
`error` and `response.failed` events (numbered on from the events relayed so far), never
with `response.completed`.
Stored responses belong to the gateway key that made them: any other key gets a 404.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orbyt.api.auth import Principal
from orbyt.api.byok import byok_map, seal_sidecar
from orbyt.api.errors import render_exception
from orbyt.api.exchange import ClientGone, Exchange, Sidecar, redis_unavailable
from orbyt.api.ledger import Ledger
from orbyt.api.rendering import send_whole
from orbyt.api.routes.chat import (
    SSE_HEADERS,
    allowed_plan,
    read_limited,
    route_headers,
    send_frame_error,
)
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import DELTA, ERROR, Candidate, ChatJob, Frame, reply_channel
from orbyt.shared.errors import NotFound, OrbytError
from orbyt.shared.logs import request_id_var
from orbyt.shared.responses import store
from orbyt.shared.responses.events import count_events, failed_events
from orbyt.shared.responses.output import ResponsesView
from orbyt.shared.responses.request import (
    RESPONSES_FIELDS,
    ResponsesRequest,
    echo_fields,
    native_body,
    to_chat,
)
from orbyt.shared.routing import resolve_plan
from orbyt.shared.wire import check_fields, parse_body

PATH = "/v1/responses"


def _not_found(response_id: str, param: str | None = None) -> NotFound:
    shown = response_id if len(response_id) <= 140 and response_id.isprintable() else "given"
    return NotFound(
        f"Response with id '{shown}' not found.", param=param, code="response_not_found"
    )


def native_only(plan: list[Candidate], st: AppState) -> bool:
    """Every route is OpenAI's own Responses API: any tool type OpenAI knows may be used."""
    adapter = st.settings.provider("openai").adapter or "openai"
    return adapter == "openai" and all(c["provider"] == "openai" for c in plan)


def function_tools_only(body: dict[str, Any]) -> dict[str, Any]:
    """The body the chat translation sees when only native routes serve it."""
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    return {**body, "tools": tools}


async def build_job(
    st: AppState, rid: str, body: dict[str, Any], req: ResponsesRequest, principal: Principal
) -> ChatJob:
    settings = st.settings
    check_fields(body, req.model, settings, RESPONSES_FIELDS)
    extra = req.extra
    plan = allowed_plan(resolve_plan(req.model, extra, st.catalog, settings), principal)
    body.pop("extra", None)  # Orbyt's own field, and it may hold a BYOK key
    history: list[dict[str, Any]] = []
    history_items: list[dict[str, Any]] = []
    if req.previous_response_id:
        try:
            record = await store.load(st.redis, req.previous_response_id, principal.key_id)
        except (OSError, RedisError):
            raise redis_unavailable() from None
        if record is None:
            raise _not_found(req.previous_response_id, "previous_response_id")
        history, history_items = record["messages"], record.get("items", [])
    chat = to_chat(function_tools_only(body) if native_only(plan, st) else body, history)
    stream = bool(req.stream)
    keep = req.store is not False
    view = ResponsesView(
        id=f"resp_{rid}",
        created_at=int(time.time()),
        echo=echo_fields(body),
        store=keep,
        skip=1 if body.get("instructions") else 0,
        history=len(history_items),
        request=native_body(body, history_items),
    )
    timeout = extra.timeout if extra and extra.timeout else settings.default_timeout
    return ChatJob(
        rid=rid,
        channel=reply_channel(rid),
        body=chat,
        plan=plan,
        strategy=(extra.provider if extra else None) or "ordered",
        key_id=principal.key_id,
        deadline=time.time() + timeout,
        byok=bool(extra and extra.byok is not None),
        retry=extra.retry if extra and extra.retry is not None else settings.default_retry,
        stream=stream,
        include_usage=False,
        kind="responses",
        responses=view,
    )


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
        raw = await read_limited(request, settings.max_body_bytes)
        body, req = parse_body(raw, ResponsesRequest)
        job = await build_job(st, rid, body, req, principal)
        byok_keys = byok_map(req.extra, job["plan"]) if job["byok"] and req.extra else None
    except BaseException:
        st.spawn(st.auth.release(principal, rid))
        raise
    ledger = Ledger(st, principal, rid, job["plan"][0], started)
    sidecar: Sidecar | None = None
    if byok_keys is not None:
        try:
            sidecar = seal_sidecar(settings, rid, byok_keys)
        except OrbytError as err:
            await ledger.close(err.status, None)
            raise
    return Exchange(st, job, sidecar, ledger, request.receive)


class ResponsesEndpoint:
    """The ASGI endpoint of POST /v1/responses (the app's state in `scope["app"]`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.orbyt
        rid = uuid.uuid4().hex
        try:
            exchange = await open_exchange(st, Request(scope, receive), rid)
            async with exchange:
                await answer(exchange, await exchange.start(), send)
        except ClientDisconnect:  # gone before its body arrived: nobody to answer
            return
        except Exception as exc:  # nothing was sent yet: the one error mapper
            await render_exception(exc, PATH, rid)(scope, receive, send)


async def answer(ex: Exchange, first: Frame, send: Send) -> None:
    rid = ex.job["rid"]
    if first.kind == ERROR:
        await send_frame_error(send, first, rid)
    elif ex.job["stream"]:
        await stream(ex, first, send)
    else:  # a non-stream reply is one DONE frame: the Response
        await send_whole(send, 200, first.payload, route_headers(rid, first.meta))


async def stream(ex: Exchange, frame: Frame, send: Send) -> None:
    headers = SSE_HEADERS + route_headers(ex.job["rid"], frame.meta)
    view = ex.job["responses"]
    model = str((frame.meta or {}).get("model") or ex.job["plan"][0]["model"])
    seq = 0  # events relayed so far: the next sequence number
    metrics.ACTIVE_STREAMS.inc()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while True:
            if frame.kind == ERROR:
                body = failed_events(view, model, seq, _error_of(frame.payload))
            else:
                body = frame.payload
                seq += count_events(body)
            await send({"type": "http.response.body", "body": body, "more_body": True})
            if frame.kind != DELTA:
                break
            try:
                frame = await ex.next()
            except OrbytError as err:  # the reply broke: said in-band, then the stream ends
                body = failed_events(view, model, seq, err.body()["error"])
                await send({"type": "http.response.body", "body": body, "more_body": True})
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # a server that raises on a write to a closed socket
        raise ClientGone from None
    finally:
        metrics.ACTIVE_STREAMS.dec()


def _error_of(payload: bytes) -> dict[str, Any]:
    try:
        error = orjson.loads(payload).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {"message": "The response failed."}


router = APIRouter()
router.routes.append(Route(PATH, ResponsesEndpoint(), methods=["POST"], include_in_schema=False))


async def _record(request: Request, response_id: str) -> tuple[AppState, str, dict[str, Any]]:
    st: AppState = request.app.state.orbyt
    principal = await st.auth.authenticate(request.headers.get("authorization"), limits=False)
    try:
        record = await store.load(st.redis, response_id, principal.key_id)
    except (OSError, RedisError):
        raise redis_unavailable() from None
    if record is None:
        raise _not_found(response_id)
    return st, principal.key_id, record


@router.get(PATH + "/{response_id}")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    _, _, record = await _record(request, response_id)
    response: dict[str, Any] = record["response"]
    return response


@router.delete(PATH + "/{response_id}")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    st, owner, _ = await _record(request, response_id)
    if not await store.delete(st.redis, response_id, owner):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get(PATH + "/{response_id}/input_items")
async def input_items(response_id: str, request: Request, order: str = "desc") -> dict[str, Any]:
    _, _, record = await _record(request, response_id)
    items: list[dict[str, Any]] = record["input"]
    if order != "asc":
        items = items[::-1]
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }
