"""POST /v1/chat/completions: validate, enqueue, relay the worker's frames (DESIGN §6.2)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from api import queue
from api.byok import byok_map, park_byok
from api.errors import error_response
from api.replies import ReplyLost, Subscription
from api.state import AppState
from shared.contract import (
    DELTA,
    DONE,
    ERROR,
    HEARTBEAT,
    START,
    ChatJob,
    Frame,
    decode_frame,
    reply_channel,
)
from shared.errors import GatewayTimeout, OrbytError, RequestTooLarge, ServiceUnavailable
from shared.routing import resolve_plan
from shared.sse import DONE as SSE_DONE
from shared.sse import encode_data
from shared.wire import parse_chat_request

router = APIRouter()

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


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


def route_headers(rid: str, meta: dict[str, Any] | None) -> dict[str, str]:
    headers = {"x-request-id": rid}
    if meta:
        headers["x-orbyt-model"] = str(meta.get("model"))
        headers["x-orbyt-provider"] = str(meta.get("provider"))
        headers["x-orbyt-attempts"] = str(meta.get("attempts"))
        headers["x-orbyt-key-source"] = str(meta.get("key_source"))
    return headers


class Reply:
    """The frames of one request, in order, with gap and liveness checks."""

    def __init__(self, sub: Subscription, heartbeat_timeout: float) -> None:
        self.sub = sub
        self.timeout = heartbeat_timeout
        self.seq = 0

    async def next(self, timeout: float | None = None) -> Frame:
        while True:
            try:
                frame = decode_frame(await self.sub.next(timeout or self.timeout))
            except ValueError:
                raise ReplyLost("malformed reply frame") from None
            if frame.seq != self.seq:
                raise ReplyLost(f"reply frames lost (expected {self.seq}, got {frame.seq})")
            self.seq += 1
            if frame.kind != HEARTBEAT:
                return frame


def frame_error(frame: Frame, rid: str) -> Response:
    meta = frame.meta or {}
    headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
    headers.update(route_headers(rid, None))
    if meta.get("attempts"):
        headers["x-orbyt-attempts"] = str(meta["attempts"])
    return Response(frame.payload, status_code=int(meta.get("status", 502)),
                    media_type="application/json", headers=headers)


def lost_error(exc: BaseException) -> OrbytError:
    if isinstance(exc, TimeoutError):
        return GatewayTimeout("The worker serving this request stopped responding.",
                              code="worker_lost")
    return ServiceUnavailable(f"The reply stream broke: {exc}.", code="reply_lost")


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    st: AppState = request.app.state.orbyt
    settings = st.settings
    key_id = st.keys.authenticate(request.headers.get("authorization"))
    rid = uuid.uuid4().hex
    request.state.request_id = rid
    body, req = parse_chat_request(await read_limited(request, settings.max_body_bytes),
                                   settings.max_messages)
    extra = req.extra
    plan = resolve_plan(req.model, extra, st.catalog, settings)
    body.pop("extra", None)
    stream = bool(req.stream)
    include_usage = stream and bool(req.stream_options and req.stream_options.include_usage)
    byok = bool(extra and extra.byok is not None)
    if byok:
        assert extra is not None
        keys = byok_map(extra, plan)
    timeout = extra.timeout if extra and extra.timeout else settings.default_timeout
    retry = extra.retry if extra and extra.retry is not None else settings.default_retry
    job = ChatJob(rid=rid, channel=reply_channel(rid), body=body, plan=plan,
                  strategy=(extra.provider if extra else None) or "ordered", key_id=key_id,
                  deadline=time.time() + timeout, byok=byok, retry=retry, stream=stream,
                  include_usage=include_usage)
    try:
        sub = await st.hub.subscribe(job["channel"])
    except (OSError, TimeoutError):
        raise ServiceUnavailable("The gateway cannot reach Redis.", code="redis_unavailable"
                                 ) from None
    reply = Reply(sub, settings.heartbeat_timeout)
    handed_off = False
    try:
        if byok:
            await park_byok(st.redis, settings, rid, keys)
        await queue.enqueue(st.redis, settings.chat_queue, job, settings.pickup_timeout)
        await wait_for_pickup(st, reply, rid)
        if stream:
            response = await start_stream(st, reply, rid, request)
            handed_off = True
            return response
        return await finish_once(st, reply, rid, request)
    except (ReplyLost, TimeoutError) as exc:
        st.spawn(queue.cancel(st.redis, rid))
        return error_response(lost_error(exc), rid)
    except asyncio.CancelledError:
        st.spawn(queue.cancel(st.redis, rid))
        raise
    finally:
        if not handed_off:
            st.hub.unsubscribe(sub)


async def wait_for_pickup(st: AppState, reply: Reply, rid: str) -> None:
    timeout = st.settings.pickup_timeout
    try:
        frame = await reply.next(timeout)
    except TimeoutError:
        if await queue.withdraw(st.redis, st.settings.chat_queue, rid):
            raise ServiceUnavailable(
                f"No worker picked up the request within {timeout:g} s; the gateway's "
                "workers are down or overloaded.", code="no_worker") from None
        frame = await reply.next()  # a worker took it just now
    if frame.kind != START:
        raise ReplyLost("reply did not start with a start frame")


async def finish_once(st: AppState, reply: Reply, rid: str, request: Request) -> Response:
    handler = asyncio.current_task()
    assert handler is not None
    watcher = asyncio.create_task(_cancel_on_disconnect(request, handler))
    try:
        frame = await reply.next()
    finally:
        watcher.cancel()
    if frame.kind == DONE:
        return Response(frame.payload, media_type="application/json",
                        headers=route_headers(rid, frame.meta))
    if frame.kind == ERROR:
        return frame_error(frame, rid)
    raise ReplyLost(f"unexpected frame {frame.kind!r} in a non-stream reply")


async def _cancel_on_disconnect(request: Request, handler: asyncio.Task[Any]) -> None:
    """Cancels the handler waiting on the reply when the client goes away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            handler.cancel()
            return


async def start_stream(st: AppState, reply: Reply, rid: str, request: Request) -> Response:
    """Headers go out only with the first content frame, so a request that fails
    everywhere gets a real HTTP error status."""
    frame = await reply.next()
    if frame.kind == ERROR:
        st.hub.unsubscribe(reply.sub)
        return frame_error(frame, rid)
    if frame.kind not in (DELTA, DONE):
        raise ReplyLost(f"unexpected frame {frame.kind!r}")
    return StreamingResponse(relay(st, reply, rid, frame), media_type="text/event-stream",
                             headers={**SSE_HEADERS, **route_headers(rid, frame.meta)})


async def relay(st: AppState, reply: Reply, rid: str, first: Frame) -> AsyncIterator[bytes]:
    finished = False
    try:
        frame = first
        while True:
            if frame.kind == DELTA:
                yield frame.payload
            elif frame.kind == DONE:
                finished = True
                yield frame.payload + SSE_DONE if frame.payload else SSE_DONE
                return
            elif frame.kind == ERROR:
                finished = True
                yield encode_data(frame.payload)
                return
            try:
                frame = await reply.next()
            except (ReplyLost, TimeoutError) as exc:
                finished = True
                yield encode_data(orjson.dumps(lost_error(exc).body()))
                st.spawn(queue.cancel(st.redis, rid))
                return
    finally:
        st.hub.unsubscribe(reply.sub)
        if not finished:
            st.spawn(queue.cancel(st.redis, rid))

