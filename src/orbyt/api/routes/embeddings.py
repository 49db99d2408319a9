"""POST /v1/embeddings: authenticate, validate, build an `embeddings` job, answer with the
worker's list body. The same exchange, queue and worker engine as chat serve it (so
`extra` fallbacks, retries, strategies, BYOK, key pools, breakers, usage and the
`x-orbyt-*` headers all apply); the job is never a stream. Validation is
`shared.embeddings`; errors go through the one mapper, `errors.render_exception`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orbyt.api.auth import Principal
from orbyt.api.byok import byok_map, seal_sidecar
from orbyt.api.errors import render_exception
from orbyt.api.exchange import Exchange, Sidecar
from orbyt.api.ledger import Ledger
from orbyt.api.rendering import send_whole
from orbyt.api.routes.chat import allowed_plan, read_limited, route_headers, send_frame_error
from orbyt.api.state import AppState
from orbyt.shared.contract import EMBEDDINGS, ERROR, ChatJob, reply_channel
from orbyt.shared.embeddings import (
    EmbeddingsRequest,
    InputKind,
    check_embeddings_plan,
    embeddings_request_schema,
    parse_embeddings_request,
)
from orbyt.shared.errors import OrbytError
from orbyt.shared.logs import request_id_var
from orbyt.shared.providers import adapters
from orbyt.shared.routing import known_providers, resolve_plan

PATH = "/v1/embeddings"


def build_job(
    st: AppState,
    rid: str,
    body: dict[str, Any],
    req: EmbeddingsRequest,
    kind: InputKind,
    principal: Principal,
) -> ChatJob:
    settings = st.settings
    extra = req.extra
    plan = resolve_plan(req.model, extra, st.catalog, settings)
    found = adapters()
    providers = {name: found[a] for name, a in known_providers(settings).items()}
    check_embeddings_plan(plan, req, kind, st.catalog, providers)
    plan = allowed_plan(plan, principal)
    body.pop("extra", None)  # Orbyt's own field, and it may hold a BYOK key
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
        stream=False,
        include_usage=False,
        kind=EMBEDDINGS,
    )


def openapi_operation() -> dict[str, Any]:
    """The OpenAPI entry of the embeddings route (FastAPI documents only its own handlers)."""
    return {
        "summary": "Embeddings",
        "description": "OpenAI's embeddings, routed with fallbacks (`extra`).",
        "operationId": "embeddings_v1_embeddings_post",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": embeddings_request_schema()}},
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
        raw = await read_limited(request, settings.max_body_bytes)
        body, req, kind = parse_embeddings_request(raw)
        job = build_job(st, rid, body, req, kind, principal)
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


class EmbeddingsEndpoint:
    """The ASGI endpoint of POST /v1/embeddings (the app's state in `scope["app"]`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.orbyt
        rid = uuid.uuid4().hex
        try:
            exchange = await open_exchange(st, Request(scope, receive), rid)
            async with exchange:
                frame = await exchange.start()  # a non-stream reply is one DONE frame
                if frame.kind == ERROR:
                    await send_frame_error(send, frame, rid)
                else:
                    await send_whole(send, 200, frame.payload, route_headers(rid, frame.meta))
        except ClientDisconnect:  # gone before its body arrived: nobody to answer
            return
        except Exception as exc:  # nothing was sent yet: the one error mapper
            await render_exception(exc, PATH, rid)(scope, receive, send)


router = APIRouter()
router.routes.append(Route(PATH, EmbeddingsEndpoint(), methods=["POST"], include_in_schema=False))
