"""POST /v1/chat/completions: authenticate, validate, build the job, render the answer
(DESIGN §6.2); `api.endpoint` accepts it and `api.exchange` owns everything in between.

The endpoint is a plain ASGI callable (`ENDPOINT`), not a FastAPI handler: it renders
straight to `send` a JSON answer, an error, or a lean SSE stream whose headers go out only
with the first content frame (so a request that fails everywhere gets a real HTTP error
status). FastAPI serves it as a Starlette route (its OpenAPI entry is `openapi_operation`);
`orbyt api` serves it through `api.edge.FastPath`. Errors go through the one mapper,
`edge.render_exception`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.routing import Route

from orbyt.api.auth import Principal
from orbyt.api.endpoint import QueuedEndpoint, allowed_plan, answer, new_job, queued_operation
from orbyt.api.exchange import Exchange
from orbyt.api.state import AppState
from orbyt.shared.contract import DELTA, DONE, ChatJob, Frame
from orbyt.shared.errors import OrbytError
from orbyt.shared.routing import check_chat_plan, resolve_plan
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
    return queued_operation(
        "Chat Completions",
        "OpenAI's chat completions, routed with fallbacks (`extra`).",
        "chat_completions_v1_chat_completions_post",
        chat_request_schema(),
    )


class ChatStream:
    """Chat's SSE: DELTA payloads are rendered chunks already; DONE adds `[DONE]`; an
    ERROR frame or a broken reply is one `data: {"error": …}` event and no `[DONE]`."""

    def __init__(self, ex: Exchange, first: Frame) -> None:
        pass

    def render(self, frame: Frame) -> bytes:
        if frame.kind == DELTA:
            return frame.payload
        if frame.kind == DONE:
            return frame.payload + SSE_DONE if frame.payload else SSE_DONE
        return encode_data(frame.payload)

    def broken(self, err: OrbytError) -> bytes:
        return encode_data(orjson.dumps(err.body()))


ENDPOINT = QueuedEndpoint(PATH, parse_and_build, partial(answer, dialect=ChatStream))
router = APIRouter()
router.routes.append(Route(PATH, ENDPOINT, methods=["POST"], include_in_schema=False))
