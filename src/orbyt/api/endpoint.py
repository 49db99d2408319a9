"""What every queued endpoint (chat, embeddings, responses) shares, so a new one is a
parser, a job builder and a renderer:

- `QueuedEndpoint`: the ASGI endpoint — accept, run the exchange, render the answer; any
  exception before the answer starts goes through the one error mapper
  (`edge.render_exception`) and gets its access line;
- `accept`: authenticate, read the body within the limit, build the job (the endpoint's
  own `JobBuilder`), seal the BYOK side-car and open the ledger — the `Exchange` that owns
  the rest of the request (`api.exchange`);
- `new_job`: the job fields every kind fills the same way (deadline, strategy, retry, BYOK
  flag); `allowed_plan`: a key without pool permission keeps only its BYOK candidates;
- `answer`: the worker's ERROR frame as the HTTP error, a DONE frame as the whole JSON
  answer, or a lean SSE relay (`relay_stream`) whose bytes an endpoint's `StreamDialect`
  chooses (chat chunks, Responses events). Headers go out only with the first content
  frame, so a request that fails everywhere gets a real HTTP status.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from orbyt.api.auth import Principal, byok_map, seal_sidecar
from orbyt.api.edge import (
    SSE_HEADERS,
    render_exception,
    route_headers,
    send_frame_error,
    send_whole,
)
from orbyt.api.exchange import ClientGone, Exchange, Sidecar
from orbyt.api.ledger import Ledger, log_rejected
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import DELTA, ERROR, Candidate, ChatJob, Frame, reply_channel
from orbyt.shared.errors import OrbytError, PermissionDenied, RequestTooLarge
from orbyt.shared.logs import request_id_var
from orbyt.shared.wire import Extra

# (state, request id, raw body, caller) -> (the job, the request's `extra`)
JobBuilder = Callable[[AppState, str, bytes, Principal], Awaitable[tuple[ChatJob, Extra | None]]]
# (the exchange, its first frame, ASGI send): write the whole answer
Answer = Callable[[Exchange, Frame, Send], Awaitable[None]]


class QueuedEndpoint:
    """An ASGI endpoint served by the queue (the app's state in `scope["app"]`)."""

    def __init__(self, path: str, build: JobBuilder, answer: Answer) -> None:
        self.path = path
        self.build = build
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.orbyt
        rid = uuid.uuid4().hex
        started = time.monotonic()
        try:
            exchange = await accept(st, Request(scope, receive), rid, self.build)
            async with exchange:
                await self.answer(exchange, await exchange.start(), send)
        except ClientDisconnect:  # gone before its body arrived: nobody to answer
            return
        except Exception as exc:  # nothing was sent yet: the one error mapper
            response = render_exception(exc, self.path, rid)
            log_rejected(rid, response.status_code, started)  # unless a ledger logged it
            await response(scope, receive, send)


async def accept(st: AppState, request: Request, rid: str, build: JobBuilder) -> Exchange:
    """Authenticate, parse and validate: the exchange that will serve the request."""
    request.state.request_id = rid
    request_id_var.set(rid)
    settings = st.settings
    principal = await st.auth.authenticate(
        request.headers.get("authorization"), rid, hold_for=settings.default_timeout * 2
    )
    started = time.monotonic()
    try:
        job, extra = await build(
            st, rid, await read_limited(request, settings.max_body_bytes), principal
        )
        byok_keys = byok_map(extra, job["plan"]) if job["byok"] and extra else None
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


def new_job(
    st: AppState,
    rid: str,
    body: dict[str, Any],
    plan: list[Candidate],
    extra: Extra | None,
    principal: Principal,
    *,
    stream: bool,
    include_usage: bool = False,
) -> ChatJob:
    """The job's common fields; `body` must no longer hold `extra` (it may carry a key)."""
    settings = st.settings
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
        include_usage=include_usage,
    )


def queued_operation(
    summary: str, description: str, operation_id: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """The OpenAPI entry of a queued route (FastAPI documents only its own handlers)."""
    return {
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {
            "200": {"description": "Successful Response", "content": {"application/json": {}}}
        },
    }


class StreamDialect(Protocol):
    """How an endpoint's stream looks on the wire."""

    def render(self, frame: Frame) -> bytes:
        """The bytes of a DELTA, DONE or ERROR frame."""
        ...

    def broken(self, err: OrbytError) -> bytes:
        """The in-band end of a stream whose reply broke (never a success terminator)."""
        ...


async def answer(
    ex: Exchange,
    first: Frame,
    send: Send,
    dialect: Callable[[Exchange, Frame], StreamDialect] | None = None,
) -> None:
    """The whole HTTP answer from the first frame on."""
    rid = ex.job["rid"]
    if first.kind == ERROR:
        await send_frame_error(send, first, rid)
    elif ex.job["stream"] and dialect is not None:
        await relay_stream(ex, first, send, dialect(ex, first))
    else:  # a non-stream reply is one DONE frame
        await send_whole(send, 200, first.payload, route_headers(rid, first.meta))


async def relay_stream(ex: Exchange, frame: Frame, send: Send, dialect: StreamDialect) -> None:
    """Frames to the client as they come, the stream ended by the DONE/ERROR frame, or
    in-band when the reply breaks. Frames that arrived together (a DELTA frame already
    holds every chunk the worker coalesced; several frames can still be waiting when the
    API falls behind) leave in one write, and the last one carries the end of the body.
    Measured (bench/README.md, `frame-per-write`): no gain in the bench scenarios, where
    the worker's coalescing leaves few frames per stream; it bounds the writes per stream
    when the API is the bottleneck."""
    headers = SSE_HEADERS + route_headers(ex.job["rid"], frame.meta)
    metrics.ACTIVE_STREAMS.inc()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pending: list[bytes] = []
        while True:
            pending.append(dialect.render(frame))
            if frame.kind != DELTA:
                break
            if not ex.ready():  # nothing else has arrived: write what there is
                body = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            try:
                frame = await ex.next()
            except OrbytError as err:  # the reply broke: said in-band, then the stream ends
                pending.append(dialect.broken(err))
                break
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
    except OSError:  # a server that raises on a write to a closed socket
        raise ClientGone from None
    finally:
        metrics.ACTIVE_STREAMS.dec()
