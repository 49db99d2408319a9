"""POST /v1/chat/completions: authenticate, validate, enqueue, relay (DESIGN §6.2)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from orbyt.api import queue
from orbyt.api.auth import Principal
from orbyt.api.byok import byok_map, seal_sidecar
from orbyt.api.errors import error_response
from orbyt.api.metrics import observe_request
from orbyt.api.relay import Reply, finish_once, lost_error, start_stream, wait_for_pickup
from orbyt.api.replies import ReplyLost
from orbyt.api.state import AppState
from orbyt.api.usage import UsageEvent
from orbyt.shared import metrics
from orbyt.shared.contract import Candidate, ChatJob, reply_channel
from orbyt.shared.errors import PermissionDenied, RequestTooLarge, ServiceUnavailable
from orbyt.shared.logs import request_id_var, safe_name
from orbyt.shared.routing import resolve_plan
from orbyt.shared.wire import ChatRequest, chat_request_schema, check_fields, parse_chat_request

router = APIRouter()
log = logging.getLogger("orbyt.api")


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
    plan = allowed_plan(resolve_plan(req.model, extra, st.catalog, settings), principal)
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


@router.post(
    "/v1/chat/completions",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": chat_request_schema()}},
        }
    },
)
async def chat_completions(request: Request) -> Response:
    """The documented route; `orbyt api` serves the same handler through api.fastpath."""
    return await handle_chat(request.app.state.orbyt, request)


async def handle_chat(st: AppState, request: Request) -> Response:
    settings = st.settings
    rid = uuid.uuid4().hex
    request.state.request_id = rid
    request_id_var.set(rid)
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

    async def finish(status: int, meta: dict[str, Any] | None) -> None:
        """How the request ended: usage record and limit release (never fails a request)."""
        meta = meta or {}
        event = UsageEvent(
            principal.key_id,
            safe_name(str(meta.get("model") or job["plan"][0]["model"])),
            str(meta.get("provider") or job["plan"][0]["provider"]),
            str(meta.get("key_source") or job["plan"][0]["key_source"]),
            status,
            int(meta.get("attempts") or 0),
            (time.monotonic() - started) * 1000,
            meta.get("usage"),
        )
        observe_request(st.catalog, event)
        log.info(
            "request finished",
            extra={
                "event": "request",
                "model": event.model,
                "provider": event.provider,
                "status": status,
                "attempts": event.attempts,
                "key_source": event.key_source,
                "key_id": event.key_id,
                "latency_ms": round(event.latency_ms, 1),
            },
        )
        st.usage.add(event)
        try:
            await st.auth.release(principal, rid)
        except Exception as exc:  # accounting must never fail a request
            log.warning("concurrency release failed: %s", type(exc).__name__)

    return await dispatch(st, request, job, byok_keys, finish)


async def dispatch(
    st: AppState, request: Request, job: ChatJob, byok_keys: dict[str, str] | None, finish: Any
) -> Response:
    rid = job["rid"]
    started = time.monotonic()
    try:
        sub = await st.hub.subscribe(job["channel"])
    except (OSError, TimeoutError):
        st.spawn(finish(503, None))
        raise ServiceUnavailable(
            "The gateway cannot reach Redis.", code="redis_unavailable"
        ) from None
    reply = Reply(sub, st.settings.heartbeat_timeout)
    handed_off = False
    try:
        sidecar = seal_sidecar(st.settings, rid, byok_keys) if byok_keys is not None else None
        await queue.enqueue(
            st.fast, st.settings.chat_queue, job, st.settings.pickup_timeout, sidecar
        )
        metrics.ENQUEUE_SECONDS.observe(time.monotonic() - started)
        await wait_for_pickup(st, reply, rid)
        if job["stream"]:
            response = await start_stream(st, reply, rid, finish)
            handed_off = True
            return response
        return await finish_once(reply, rid, request, finish)
    except (ReplyLost, TimeoutError) as exc:
        st.spawn(queue.cancel(st.redis, rid))
        err = lost_error(exc)
        st.spawn(finish(err.status, None))
        return error_response(err, rid)
    except asyncio.CancelledError:
        st.spawn(queue.cancel(st.redis, rid))
        st.spawn(finish(499, None))
        raise
    except (OSError, RedisError):
        st.spawn(finish(503, None))
        raise ServiceUnavailable(
            "The gateway cannot reach Redis.", code="redis_unavailable"
        ) from None
    except Exception:
        st.spawn(finish(503, None))
        raise
    finally:
        if not handed_off:
            st.hub.unsubscribe(sub)
