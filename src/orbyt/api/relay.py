"""Relaying one request's reply frames to the HTTP client (DESIGN §6.2).

`Reply` reads frames in order with gap and liveness checks; `respond` turns them into a
non-stream JSON response or an SSE stream whose headers go out only with the first content
frame. `Ledger` is told how the request ended (usage, limits)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from orbyt.api import queue
from orbyt.api.replies import ReplyLost, Subscription
from orbyt.api.state import AppState
from orbyt.shared import metrics
from orbyt.shared.contract import DELTA, DONE, ERROR, HEARTBEAT, START, Frame, decode_frame
from orbyt.shared.errors import GatewayTimeout, OrbytError, ServiceUnavailable
from orbyt.shared.sse import DONE as SSE_DONE
from orbyt.shared.sse import encode_data

SSE_HEADERS = {"x-accel-buffering": "no"}

Finish = Callable[[int, dict[str, Any] | None], Awaitable[None]]


class SSEResponse(Response):
    """A server-sent event stream, lean: Starlette's StreamingResponse wraps every stream in
    an anyio task group to notice a disconnect; here one plain task waits for it and
    cancels the relay, which then cleans up (unsubscribe, cancel the job)."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        # no Response.__init__: it would add `content-length: 0` for the missing body
        self.status_code = 200
        self.background = None
        self._body = body
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8")] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay_task = asyncio.current_task()
        assert relay_task is not None
        state = {"streaming": True, "gone": False}
        watcher = asyncio.create_task(_cancel_on_disconnect_raw(receive, relay_task, state))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async with contextlib.aclosing(self._body) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            state["streaming"] = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (asyncio.CancelledError, OSError):
            if not state["gone"]:
                raise
            relay_task.uncancel()  # the client went away; the relay's cleanup already ran
        finally:
            state["streaming"] = False
            watcher.cancel()


async def _cancel_on_disconnect_raw(
    receive: Receive, task: asyncio.Task[Any], state: dict[str, bool]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if state["streaming"]:
                state["gone"] = True
                task.cancel()
            return


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


def route_headers(rid: str, meta: dict[str, Any] | None) -> dict[str, str]:
    headers = {"x-request-id": rid}
    if meta:
        headers["x-orbyt-model"] = str(meta.get("model"))
        headers["x-orbyt-provider"] = str(meta.get("provider"))
        headers["x-orbyt-attempts"] = str(meta.get("attempts"))
        headers["x-orbyt-key-source"] = str(meta.get("key_source"))
    return headers


def frame_error(frame: Frame, rid: str) -> Response:
    meta = frame.meta or {}
    headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
    headers["x-request-id"] = rid
    if meta.get("attempts"):
        headers["x-orbyt-attempts"] = str(meta["attempts"])
    return Response(
        frame.payload,
        status_code=int(meta.get("status", 502)),
        media_type="application/json",
        headers=headers,
    )


def lost_error(exc: BaseException) -> OrbytError:
    if isinstance(exc, TimeoutError):
        return GatewayTimeout(
            "The worker serving this request stopped responding.", code="worker_lost"
        )
    return ServiceUnavailable(f"The reply stream broke: {exc}.", code="reply_lost")


async def wait_for_pickup(st: AppState, reply: Reply, rid: str) -> None:
    timeout = st.settings.pickup_timeout
    started = time.monotonic()
    try:
        frame = await reply.next(timeout)
    except TimeoutError:
        if await queue.withdraw(st.redis, st.settings.chat_queue, rid):
            raise ServiceUnavailable(
                f"No worker picked up the request within {timeout:g} s; the gateway's "
                "workers are down or overloaded.",
                code="no_worker",
            ) from None
        frame = await reply.next()  # a worker took it just now
    if frame.kind != START:
        raise ReplyLost("reply did not start with a start frame")
    metrics.PICKUP_SECONDS.observe(time.monotonic() - started)


async def finish_once(reply: Reply, rid: str, request: Request, finish: Finish) -> Response:
    handler = asyncio.current_task()
    assert handler is not None
    watcher = asyncio.create_task(_cancel_on_disconnect(request, handler))
    try:
        frame = await reply.next()
    finally:
        watcher.cancel()
    if frame.kind == DONE:
        await finish(200, frame.meta)
        return Response(
            frame.payload, media_type="application/json", headers=route_headers(rid, frame.meta)
        )
    if frame.kind == ERROR:
        await finish(int((frame.meta or {}).get("status", 502)), frame.meta)
        return frame_error(frame, rid)
    raise ReplyLost(f"unexpected frame {frame.kind!r} in a non-stream reply")


async def _cancel_on_disconnect(request: Request, handler: asyncio.Task[Any]) -> None:
    """Cancels the handler waiting on the reply when the client goes away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            handler.cancel()
            return


async def start_stream(st: AppState, reply: Reply, rid: str, finish: Finish) -> Response:
    """Headers go out only with the first content frame, so a request that fails
    everywhere gets a real HTTP error status."""
    started = time.monotonic()
    frame = await reply.next()
    if frame.kind == ERROR:
        st.hub.unsubscribe(reply.sub)
        await finish(int((frame.meta or {}).get("status", 502)), frame.meta)
        return frame_error(frame, rid)
    if frame.kind not in (DELTA, DONE):
        raise ReplyLost(f"unexpected frame {frame.kind!r}")
    provider = str((frame.meta or {}).get("provider", "other"))
    metrics.TTFT_SECONDS.labels(provider).observe(time.monotonic() - started)
    return SSEResponse(
        relay(st, reply, rid, frame, finish), {**SSE_HEADERS, **route_headers(rid, frame.meta)}
    )


async def relay(
    st: AppState, reply: Reply, rid: str, first: Frame, finish: Finish
) -> AsyncIterator[bytes]:
    status: int | None = None
    meta = first.meta
    by_worker = False  # the worker ended the reply (else: client gone or reply lost)
    metrics.ACTIVE_STREAMS.inc()
    try:
        frame = first
        while True:
            if frame.kind == DELTA:
                yield frame.payload
            elif frame.kind == DONE:
                status, meta, by_worker = 200, frame.meta, True
                yield frame.payload + SSE_DONE if frame.payload else SSE_DONE
                return
            elif frame.kind == ERROR:
                status, by_worker = int((frame.meta or {}).get("status", 502)), True
                yield encode_data(frame.payload)
                return
            try:
                frame = await reply.next()
            except (ReplyLost, TimeoutError) as exc:
                err = lost_error(exc)
                status = err.status
                yield encode_data(orjson.dumps(err.body()))
                return
    finally:
        metrics.ACTIVE_STREAMS.dec()
        st.hub.unsubscribe(reply.sub)
        if not by_worker:
            st.spawn(queue.cancel(st.redis, rid))
        st.spawn(finish(status or 499, meta))
